//! The console on an in-memory store: escaping, JSON, headers, methods, roles, proofs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt as _;
use vigil_tls::{Caller, Role};

use super::{CONTENT_SECURITY_POLICY, Peer, router};
use crate::attest::{Verifier, VerifierConfig};
use crate::store::{NodeRecord, Store};
use crate::store_baselines::NewBaseline;

const EVIL: &str = "<script>alert(1)</script>";

fn node(id: &str, group: &str) -> NodeRecord {
    NodeRecord {
        node_id: id.to_owned(),
        ak_public: vec![1, 2, 3],
        ak_name: vec![0, 11, 4],
        ak_trust: "ek-certified".to_owned(),
        address: Some("127.0.0.1:7443".to_owned()),
        first_seen: 1_800_000_000,
        last_seen: 1_800_000_000,
        last_verdict: None,
        ek_public: None,
        ek_certificate: None,
        group: group.to_owned(),
        registered_at: Some(1_800_000_000),
        status: "unknown".to_owned(),
    }
}

fn report(node: &str, passed: bool, baseline: &str, found: &str) -> String {
    serde_json::json!({
        "node_id": node,
        "verdict": if passed { "pass" } else { "fail" },
        "checks": [
            { "name": "quote.signature", "passed": true, "detail": "RSASSA SHA-256" },
            { "name": "baseline.appraisal", "passed": passed, "detail": format!("found {found}") },
        ],
        "ak_trust": "ek-certified",
        "ak_name": "000b",
        "nonce": "00",
        "verified_at": 1_800_000_100,
        "quoted_pcrs": {},
        "status": if passed { "affirming" } else { "contraindicated" },
        "baseline": baseline,
        "appraisal": { "results": [
            { "rule": "boot.applications", "claim": "boot.apps", "outcome": if passed { "pass" } else { "fail" },
              "expected": "shim, grub", "found": found, "category": "boot", "severity": "required",
              "source": { "event": 3, "pcr": 4, "offset": 120 } }
        ]},
        "host_claims": { "node_id": node, "verified_at": 1, "claims": [
            { "name": "boot.cmdline", "value": found, "trust": "verified", "source": { "quote": { "bank": "sha256", "pcr": 8 } } }
        ]},
        "result_token": "eyJhbGciOiJFUzI1NiJ9.e30.sig",
    })
    .to_string()
}

/// Two nodes (one named and grouped with markup), three verdicts, two baseline versions.
fn fixture() -> Arc<Verifier> {
    let mut store = Store::in_memory().unwrap();
    store.insert_node(&node("gpu-a", "hgx")).unwrap();
    store.insert_node(&node(EVIL, "<b>grp</b>")).unwrap();
    for (version, reason) in [(1, "first"), (2, "second <i>reason</i>")] {
        let body = format!("format = 1\nname = \"fleet\"\n# version {version}\n");
        store
            .put_baseline(&NewBaseline {
                name: "fleet",
                sha256: &format!("{version:064}"),
                body: &body,
                author: "alice",
                reason,
                signed_by: None,
                rules: 3,
                time: 1_800_000_000 + version,
            })
            .unwrap();
    }
    store
        .assign_baseline("hgx", "fleet", "alice", "rollout", 1_800_000_010)
        .unwrap();
    store
        .record_verdict(
            "gpu-a",
            &[1],
            1_800_000_100,
            "pass",
            &report("gpu-a", true, "fleet@1", "quiet"),
            b"e1",
            true,
        )
        .unwrap();
    store
        .record_verdict(
            "gpu-a",
            &[2],
            1_800_086_500,
            "fail",
            &report("gpu-a", false, "fleet@2", EVIL),
            b"e2",
            true,
        )
        .unwrap();
    store
        .record_verdict(
            EVIL,
            &[3],
            1_800_000_200,
            "fail",
            &report(EVIL, false, "fleet@2", "x"),
            b"e3",
            true,
        )
        .unwrap();
    Arc::new(Verifier::new(store, VerifierConfig::default()))
}

fn dev() -> Option<Peer> {
    Some(Peer::Dev(SocketAddr::from(([127, 0, 0, 1], 1))))
}

fn tls(role: Role) -> Option<Peer> {
    Some(Peer::Tls(
        SocketAddr::from(([127, 0, 0, 1], 1)),
        Ok(Caller {
            roles: [role].into_iter().collect(),
            node_id: None,
            subject: format!("CN={role}"),
            unknown_roles: Vec::new(),
        }),
    ))
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    peer: Option<Peer>,
    accept: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:7445");
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn page(app: &Router, uri: &str) -> String {
    let (status, _, body) = call(app, Method::GET, uri, dev(), None).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

async fn json(app: &Router, uri: &str) -> serde_json::Value {
    let (status, headers, body) =
        call(app, Method::GET, uri, dev(), Some("application/json")).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    assert_eq!(headers["content-type"], "application/json");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn markup_in_names_renders_as_text_everywhere() {
    let app = router(fixture());
    let evil_path = super::html::url_part(EVIL);
    for uri in [
        "/nodes".to_owned(),
        format!("/nodes/{evil_path}"),
        format!("/nodes/{evil_path}/verdicts/3"),
        "/nodes/gpu-a/verdicts/2".to_owned(),
        "/nodes/gpu-a/diff".to_owned(),
        "/baselines".to_owned(),
        "/baselines/fleet".to_owned(),
        "/audit".to_owned(),
        "/charts".to_owned(),
    ] {
        let body = page(&app, &uri).await;
        assert!(
            !body.contains("<script"),
            "{uri} carries a script tag: {body}"
        );
        assert!(
            !body.contains("<b>grp") && !body.contains("<i>reason"),
            "{uri}: {body}"
        );
    }
    let fleet = page(&app, "/nodes").await;
    assert!(
        fleet.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{fleet}"
    );
    assert!(
        fleet.contains(&format!("href=\"/nodes/{evil_path}\"")),
        "{fleet}"
    );
    assert!(fleet.contains("&lt;b&gt;grp&lt;/b&gt;"));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = router(fixture());
    for uri in ["/nodes", "/nodes/nope", "/static/vigil.css", "/nowhere"] {
        let (_, headers, _) = call(&app, Method::GET, uri, dev(), None).await;
        assert_eq!(
            headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{uri}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("script-src"));
    let (status, headers, body) = call(&app, Method::GET, "/static/vigil.css", dev(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(body.contains(".badge"));
}

#[tokio::test]
async fn only_get_and_head_are_answered() {
    let app = router(fixture());
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        for uri in ["/nodes", "/audit/0", "/nowhere"] {
            let (status, headers, _) = call(&app, method.clone(), uri, dev(), None).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(headers["allow"], "GET, HEAD");
        }
    }
    let (status, _, body) = call(&app, Method::HEAD, "/nodes", dev(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
}

#[tokio::test]
async fn roles_decide_who_reads() {
    let app = router(fixture());
    for role in [Role::Auditor, Role::Admin, Role::Orchestrator] {
        let (status, _, _) = call(&app, Method::GET, "/nodes", tls(role), None).await;
        assert_eq!(status, StatusCode::OK, "{role}");
    }
    for role in [Role::Attester, Role::Verifier] {
        let (status, _, body) = call(&app, Method::GET, "/nodes", tls(role), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert!(!body.contains("gpu-a"));
    }
    let unreadable = Some(Peer::Tls(
        SocketAddr::from(([127, 0, 0, 1], 1)),
        Err("bad".into()),
    ));
    assert_eq!(
        call(&app, Method::GET, "/nodes", unreadable, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, Method::GET, "/nodes", None, None).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn pages_are_json_too_and_filters_apply() {
    let app = router(fixture());
    let fleet = json(&app, "/nodes?status=untrusted&group=hgx").await;
    assert_eq!(fleet["paging"]["total"], 1, "{fleet:#}");
    assert_eq!(fleet["nodes"][0]["node_id"], "gpu-a");
    assert!(fleet["nodes"][0]["since"].is_i64());
    let (_, headers, body) = call(
        &app,
        Method::GET,
        "/nodes?name=SCRIPT&format=json",
        dev(),
        None,
    )
    .await;
    assert_eq!(headers["content-type"], "application/json");
    let named: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(named["nodes"][0]["node_id"], EVIL);
    let paged = json(&app, "/nodes?per_page=1&page=2").await;
    assert_eq!(paged["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(paged["paging"]["total"], 2);

    let node = json(&app, "/nodes/gpu-a").await;
    assert_eq!(node["verdicts"].as_array().unwrap().len(), 2);
    assert_eq!(
        node["verdicts"][0]["failed_checks"][0],
        "baseline.appraisal"
    );
    let verdict = json(&app, "/nodes/gpu-a/verdicts/1").await;
    assert_eq!(
        verdict["report"]["result_token"],
        "eyJhbGciOiJFUzI1NiJ9.e30.sig"
    );
    // A verdict is found only under its own node.
    assert_eq!(
        call(&app, Method::GET, "/nodes/gpu-a/verdicts/3", dev(), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/nodes/nobody", dev(), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/nodes?page=x", dev(), None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let diff = json(&app, "/nodes/gpu-a/diff?from=1&to=2").await;
    let checks = diff["changes"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{diff:#}");
    assert_eq!(checks[0]["name"], "baseline.appraisal");
    assert_eq!(diff["changes"]["rule_outcomes"][0]["change"], "changed");
    assert_eq!(
        diff["changes"]["claims"][0]["after"],
        format!("{EVIL} (verified)")
    );

    let versions = json(&app, "/baselines/fleet").await;
    assert_eq!(versions["versions"][0]["impact"]["pass"], 1);
    assert_eq!(versions["versions"][1]["impact"]["fail"], 2);
    assert!(versions["versions"][1]["audit_index"].is_u64());
    let baseline_diff = json(&app, "/baselines/fleet/diff?from=1&to=2").await;
    assert_eq!(
        baseline_diff["changed_lines"],
        serde_json::json!(["-# version 1", "+# version 2"])
    );
    let baselines = json(&app, "/baselines").await;
    assert_eq!(
        baselines["assignment_history"][0]["entry"]["body"]["reason"],
        "rollout"
    );
    let v2 = json(&app, "/baselines/fleet/2").await;
    assert_eq!(v2["reason"], "second <i>reason</i>");

    let charts = json(&app, "/charts").await;
    // A day apart (under three days): hour buckets.
    assert_eq!(charts["bucket_seconds"], 3600);
    assert_eq!(charts["verdicts"].as_array().unwrap().len(), 2);
    assert_eq!(
        charts["failing_checks"][0],
        serde_json::json!({ "check": "baseline.appraisal", "count": 2 })
    );
}

#[tokio::test]
async fn proofs_are_computed_and_verified_server_side() {
    let app = router(fixture());
    let audit = json(&app, "/audit").await;
    let size = audit["tree_size"].as_u64().unwrap();
    assert_eq!(size, 6, "{audit:#}");
    assert_eq!(
        audit["checkpoints"][0]["check"]["verified"], true,
        "{audit:#}"
    );
    for index in 0..size {
        let entry = json(&app, &format!("/audit/{index}")).await;
        assert_eq!(entry["inclusion"]["check"]["verified"], true, "{entry:#}");
    }
    let newest = audit["checkpoints"][0]["id"].as_i64().unwrap();
    let consistency = json(&app, &format!("/audit/consistency?from=1&to={newest}")).await;
    assert_eq!(consistency["check"]["verified"], true, "{consistency:#}");
    // A checkpoint that does not exist is a 404, not a verified proof.
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/audit/consistency?from=1&to=999",
            dev(),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/audit/99", dev(), None).await.0,
        StatusCode::NOT_FOUND
    );
    let html = page(&app, "/audit/2").await;
    assert!(html.contains("badge good\">verified"), "{html}");
}

#[tokio::test]
async fn a_wrong_audit_key_fails_the_checkpoints_with_the_reason() {
    let verifier = fixture();
    // Forge a checkpoint with another key: the page must say it does not verify.
    verifier
        .with_store(|store| {
            let other =
                vigil_audit::load_key("vigil-verifier", &vigil_audit::generate_key().unwrap())
                    .unwrap();
            vigil_audit::checkpoint(store.connection(), &other, "vigil-verifier", 1_800_100_000)
                .unwrap();
        })
        .unwrap();
    let app = router(verifier);
    let audit = json(&app, "/audit").await;
    assert_eq!(
        audit["checkpoints"][0]["check"]["verified"], false,
        "{audit:#}"
    );
    assert!(
        audit["checkpoints"][0]["check"]["reason"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
    let entry = json(&app, "/audit/0").await;
    assert_eq!(entry["inclusion"]["check"]["verified"], false);
}

/// `cargo test -p vigil-verifier --lib web::tests::fleet_of_10000 -- --ignored --nocapture`:
/// prints how long the fleet page of 10,000 nodes takes to render (no timing assertion).
#[tokio::test]
#[ignore]
async fn fleet_of_10000_nodes_render_time() {
    let store = Store::in_memory().unwrap();
    store.connection().execute_batch("BEGIN").unwrap();
    for i in 0..10_000 {
        let mut record = node(&format!("gpu-{i:05}"), &format!("rack-{}", i % 40));
        record.status = ["trusted", "untrusted", "unknown"][i % 3].to_owned();
        store.insert_node(&record).unwrap();
    }
    store.connection().execute_batch("COMMIT").unwrap();
    let mut store = store;
    // A status change for two nodes in three, so "since" has history to search.
    for i in 0..10_000 {
        let id = format!("gpu-{i:05}");
        store
            .mark_unknown(&id, "missed its window", 1_800_000_000 + i64::from(i))
            .unwrap();
    }
    let app = router(Arc::new(Verifier::new(store, VerifierConfig::default())));
    page(&app, "/nodes?per_page=10000").await;
    let start = std::time::Instant::now();
    let body = page(&app, "/nodes?per_page=10000").await;
    let elapsed = start.elapsed();
    assert!(body.contains("gpu-09999") && body.contains("2027-01-15T10:46:39Z"));
    println!(
        "fleet page of 10,000 nodes: {elapsed:?}, {} bytes of HTML",
        body.len()
    );
}

#[test]
fn baseline_diffs_name_the_changed_lines_small_and_large() {
    let small = super::pages::line_diff("a\nb\nc\n", "a\nc\nd\n");
    assert_eq!(small, vec![(' ', "a"), ('-', "b"), (' ', "c"), ('+', "d")]);
    // An allow-list of thousands of lines: no quadratic table, same answer for one change.
    let a: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    let b = a.replace("line 1500\n", "line 1500 changed\n");
    let large = super::pages::line_diff(&a, &b);
    assert_eq!(large, vec![('-', "line 1500"), ('+', "line 1500 changed")]);
}

#[tokio::test]
async fn gpu_identities_are_listed_escaped() {
    let verifier = fixture();
    verifier
        .with_store(|store| {
            store
                .set_gpu_identities("gpu-a", r#"[{"index":0,"uuid":"GPU-1234","fwid":"<abc>"}]"#)
                .unwrap()
        })
        .unwrap();
    let app = router(verifier);
    let html = page(&app, "/nodes/gpu-a").await;
    assert!(
        html.contains("GPU-1234") && html.contains("&lt;abc&gt;") && !html.contains("<abc>"),
        "{html}"
    );
    assert_eq!(
        json(&app, "/nodes/gpu-a").await["node"]["gpu_identities"][0]["uuid"],
        "GPU-1234"
    );
}

#[tokio::test]
async fn dev_mode_serves_loopback_only_and_tls_reads_the_dev_certificates() {
    let open = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let error = super::WebListener::start(open, None).err().unwrap();
    assert!(error.contains("loopback only"), "{error}");
    let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(super::WebListener::start(local, None).is_ok());

    let dir = std::env::temp_dir().join(format!("vigil-web-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    vigil_tls::write_dev_certs(&dir, false).unwrap();
    let config = super::web_tls_config(&dir).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    // The CA given where the server certificate belongs is refused with the file's name.
    std::fs::copy(dir.join("ca.pem"), dir.join("server.pem")).unwrap();
    let error = super::web_tls_config(&dir).err().unwrap();
    assert!(error.contains("server"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn dev_mode_answers_loopback_host_names_only() {
    let app = router(fixture());
    for (host, expected) in [
        ("localhost:7445", StatusCode::OK),
        ("[::1]:7445", StatusCode::OK),
        ("127.0.0.1", StatusCode::OK),
        ("attacker.example:7445", StatusCode::FORBIDDEN),
        ("127.0.0.1.attacker.example", StatusCode::FORBIDDEN),
    ] {
        let mut request = Request::builder()
            .uri("/nodes")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(dev().unwrap()));
        assert_eq!(
            app.clone().oneshot(request).await.unwrap().status(),
            expected,
            "{host}"
        );
    }
    let mut request = Request::builder()
        .uri("/nodes")
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(dev().unwrap()));
    assert_eq!(
        app.clone().oneshot(request).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
