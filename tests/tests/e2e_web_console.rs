//! The read-only web console (`vigil serve --web-listen`) over a store filled by real runs:
//! three registered swtpm nodes with measured-boot logs (one named with markup), a failed
//! verdict before any baseline, a baseline changed twice, passing and failing verdicts, and an
//! HGX host presenting NVIDIA's real Hopper sample through a real attester (`--gpu-replay`). The
//! pages are read through mutual TLS with curl (content, escaping, JSON, refusals) and in
//! headless Chromium with an auditor certificate (screenshots of fleet, node, verdict, diff,
//! baselines, audit and charts pages).
//!
//! Chromium presents the client certificate from an NSS database in a temporary HOME and
//! picks it without a dialog through the managed policy `AutoSelectCertificateForUrls`,
//! written to /etc/chromium/policies/managed/ for the test's own URL and removed after.
//! Without chromium (or without write access there) the browser part is skipped with a
//! message, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_e2e::*;

const SHIM: &[u8] = b"shim 15.8";
const GRUB_A: &[u8] = b"grub 2.12 build a";
const GRUB_B: &[u8] = b"grub 2.12 build b";
/// A node whose name is markup: it must render as text everywhere.
const EVIL: &str = "evil<script>alert(1)</script>";

fn fleet_baseline(loaders: &[&[u8]]) -> String {
    let apps: Vec<String> = std::iter::once(SHIM)
        .chain(loaders.iter().copied())
        .map(|d| format!("  \"{}\",", hex::encode(sha256(d))))
        .collect();
    format!(
        "format = 1\nname = \"fleet\"\n\n[identity]\nak_trust = [\"ek-certified\"]\n\n[boot]\nevent_log = \"required\"\n\
         boot_applications = [\n{}\n]\nkernel_cmdline = [\"root=/dev/sda1 ro *\"]\n",
        apps.join("\n")
    )
}

fn ok(out: &std::process::Output) {
    assert_eq!(code(out), 0, "{}{}", stdout(out), stderr(out));
}

/// Percent-encodes one path segment (as the console's links do).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET over mutual TLS with curl as `role` (None: no client certificate). Returns the exit
/// code, the HTTP status and the body.
fn curl(
    certs: &Path,
    base: &str,
    path: &str,
    role: Option<&str>,
    extra: &[&str],
) -> (i32, u16, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "20", "--cacert"])
        .arg(certs.join("ca.pem"));
    if let Some(role) = role {
        command
            .arg("--cert")
            .arg(certs.join(format!("{role}.pem")))
            .arg("--key")
            .arg(certs.join(format!("{role}-key.pem")));
    }
    command.args(extra).arg(format!("{base}{path}"));
    let out = run(&mut command);
    let text = stdout(&out);
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code(&out),
        status.trim().parse().unwrap_or(0),
        body.to_owned(),
    )
}

fn get_json(certs: &Path, base: &str, path: &str) -> serde_json::Value {
    let (rc, status, body) = curl(
        certs,
        base,
        path,
        Some("auditor"),
        &["-H", "Accept: application/json"],
    );
    assert_eq!((rc, status), (0, 200), "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn the_console_shows_real_runs_through_mutual_tls_and_in_a_browser() {
    require_tools(&["tpm2_pcrextend", "curl"]);
    let ca = EkCa::new();
    let dir = TempDir::new("web-console");
    let db_path = dir.join("vigil.db");
    let db = db_path.to_str().unwrap();
    let certs = dir.join("certs");
    ok(&vigil(&["dev-certs", certs.to_str().unwrap()]));

    // Three hosts: gpu-a and the oddly named one boot loader A, gpu-b boots loader B.
    let mut nodes = Vec::new();
    for (name, loader) in [("gpu-a", GRUB_A), ("gpu-b", GRUB_B), (EVIL, GRUB_A)] {
        let tpm = Swtpm::start_with_ek_certificate(&ca);
        let node_dir = dir.join(&format!("node-{}", nodes.len()));
        std::fs::create_dir_all(&node_dir).unwrap();
        let log = firmware_boot(&tpm, &node_dir, &[SHIM, loader], "root=/dev/sda1 ro quiet");
        let attester = start_attester(
            &tpm,
            &node_dir.join("state"),
            name,
            &["--event-log", log.to_str().unwrap()],
        );
        nodes.push((name, tpm, attester));
    }
    let trust = ca.trust_dir();
    let group = |name: &str| if name == EVIL { "<b>lab</b>" } else { "hgx" };
    for (name, _, attester) in &nodes {
        ok(&vigil(&[
            "node",
            "register",
            &attester.address,
            "--group",
            group(name),
            "--db",
            db,
            "--ek-roots",
            trust.to_str().unwrap(),
        ]));
    }
    let verify = |name: &str| {
        let address = &nodes.iter().find(|n| n.0 == name).unwrap().2.address;
        vigil(&["verify", "--node", address, "--db", db, "--json"])
    };
    // Deny by default: gpu-a's first verdict fails (no baseline), and is kept.
    let first = verify("gpu-a");
    assert_eq!(code(&first), 1, "{}", stdout(&first));
    // Baseline "fleet" version 1 allows loader A only: gpu-b fails under it.
    let file = dir.join("fleet.toml");
    std::fs::write(&file, fleet_baseline(&[GRUB_A])).unwrap();
    let put = |reason: &str| {
        vigil(&[
            "baseline",
            "put",
            file.to_str().unwrap(),
            "--author",
            "alice",
            "--reason",
            reason,
            "--db",
            db,
        ])
    };
    ok(&put("loader A only"));
    for group in ["hgx", "<b>lab</b>"] {
        ok(&vigil(&[
            "baseline", "assign", group, "fleet", "--author", "alice", "--reason", "rollout",
            "--db", db,
        ]));
    }
    ok(&verify("gpu-a"));
    assert_eq!(code(&verify("gpu-b")), 1);
    ok(&verify(EVIL));
    // Version 2 allows both loaders: gpu-b passes.
    std::fs::write(&file, fleet_baseline(&[GRUB_A, GRUB_B])).unwrap();
    ok(&put("allow loader B <i>too</i>"));
    ok(&vigil(&[
        "baseline",
        "assign",
        "hgx",
        "fleet",
        "--author",
        "bob",
        "--reason",
        "both loaders",
        "--db",
        db,
    ]));
    ok(&verify("gpu-b"));
    ok(&verify("gpu-a"));

    let hopper = record_hopper_verdict(&db_path, dir.path());

    // The console, behind mutual TLS with the dev certificates.
    let web_port = free_port();
    let web_listen = format!("127.0.0.1:{web_port}");
    let server = start_verifier(
        &db_path,
        &[
            "--tls-dir",
            certs.to_str().unwrap(),
            "--web-listen",
            &web_listen,
            "--poll-interval",
            "0",
        ],
    );
    let base = format!("https://127.0.0.1:{web_port}");
    wait_for_console(&certs, &base);

    // No client certificate: refused at the handshake (curl exit 35 or 56, no HTTP status).
    let (rc, status, body) = curl(&certs, &base, "/nodes", None, &[]);
    assert!(
        rc != 0 && status == 0,
        "without a certificate: rc {rc}, status {status}, {body}"
    );
    // A certificate without a console role: 403. Writes: 405.
    let (_, status, _) = curl(&certs, &base, "/nodes", Some("attester"), &[]);
    assert_eq!(status, 403);
    let (_, status, _) = curl(&certs, &base, "/nodes", Some("admin"), &["-X", "POST"]);
    assert_eq!(status, 405);
    for role in ["auditor", "admin", "orchestrator"] {
        assert_eq!(
            curl(&certs, &base, "/nodes", Some(role), &[]).1,
            200,
            "{role}"
        );
    }

    // The fleet: three nodes, the odd one's name and group escaped, statuses with their "since".
    let headers_file = dir.join("headers.txt");
    let (_, status, html) = curl(
        &certs,
        &base,
        "/nodes",
        Some("auditor"),
        &["-D", headers_file.to_str().unwrap()],
    );
    assert_eq!(status, 200);
    let headers = std::fs::read_to_string(&headers_file)
        .unwrap()
        .to_lowercase();
    for header in [
        "content-security-policy: default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "content-type: text/html; charset=utf-8",
    ] {
        assert!(headers.contains(header), "{header}: {headers}");
    }
    assert!(
        !html.contains("<script") && !html.contains("<b>lab"),
        "{html}"
    );
    assert!(
        html.contains("evil&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;lab&lt;/b&gt;"), "{html}");
    let fleet = get_json(&certs, &base, "/nodes");
    assert_eq!(fleet["paging"]["total"], 3 + u64::from(hopper), "{fleet:#}");
    if hopper {
        let node = get_json(&certs, &base, &format!("/nodes/{HOPPER_NODE}"));
        let gpu = &node["node"]["gpu_identities"][0];
        assert_eq!(gpu["device"], "hopper", "{node:#}");
        assert!(gpu["device_certificate_serial"].is_string(), "{node:#}");
        let (_, status, html) = curl(
            &certs,
            &base,
            &format!("/nodes/{HOPPER_NODE}"),
            Some("auditor"),
            &[],
        );
        assert_eq!(status, 200);
        assert!(html.contains("hopper"), "{html}");
    }
    assert!(
        fleet["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "trusted" && n["since"].is_i64()),
        "{fleet:#}"
    );
    let filtered = get_json(
        &certs,
        &base,
        &format!("/nodes?group={}", segment("<b>lab</b>")),
    );
    assert_eq!(filtered["nodes"][0]["node_id"], EVIL, "{filtered:#}");

    // gpu-a: four verdicts (fail without baseline, pass, pass... newest first).
    let node = get_json(&certs, &base, "/nodes/gpu-a");
    let timeline = node["verdicts"].as_array().unwrap();
    assert_eq!(timeline.len(), 3, "{node:#}");
    let failed = timeline.last().unwrap();
    assert_eq!(failed["verdict"], "fail");
    assert_eq!(
        failed["failed_checks"],
        serde_json::json!(["baseline.assigned"])
    );
    let failed_id = failed["id"].as_i64().unwrap();
    let passed_id = timeline[0]["id"].as_i64().unwrap();
    let verdict = get_json(&certs, &base, &format!("/nodes/gpu-a/verdicts/{failed_id}"));
    assert_eq!(verdict["report"]["status"], "contraindicated");
    // The passing verdict has its rule table and a signed EAR token.
    let verdict = get_json(&certs, &base, &format!("/nodes/gpu-a/verdicts/{passed_id}"));
    assert!(
        verdict["report"]["appraisal"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "boot.applications")
    );
    let (_, _, verdict_html) = curl(
        &certs,
        &base,
        &format!("/nodes/gpu-a/verdicts/{passed_id}"),
        Some("auditor"),
        &[],
    );
    assert!(
        verdict_html.contains("boot.applications") && verdict_html.contains("class=\"token\">ey"),
        "{verdict_html}"
    );
    let diff = get_json(
        &certs,
        &base,
        &format!("/nodes/gpu-a/diff?from={failed_id}&to={passed_id}"),
    );
    let changed: Vec<&str> = diff["changes"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"baseline.assigned") || changed.contains(&"baseline.appraisal"),
        "{diff:#}"
    );
    // gpu-b's failure under version 1 names the boot applications rule.
    let gpu_b = get_json(&certs, &base, "/nodes/gpu-b");
    let fail_b = gpu_b["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["verdict"] == "fail")
        .unwrap()
        .clone();
    assert_eq!(fail_b["baseline"], "fleet@1");

    // Baselines: two versions with their reasons (escaped), impact per version, the diff.
    let versions = get_json(&certs, &base, "/baselines/fleet");
    let versions = versions["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["impact"]["fail"], 1, "{versions:#?}");
    assert_eq!(
        versions[0]["impact"]["failing_nodes"],
        serde_json::json!(["gpu-b"])
    );
    assert!(versions[1]["impact"]["pass"].as_i64().unwrap() >= 2);
    let (_, _, baselines_html) = curl(&certs, &base, "/baselines", Some("auditor"), &[]);
    assert!(
        baselines_html.contains("allow loader B &lt;i&gt;too&lt;/i&gt;")
            && !baselines_html.contains("<i>too")
    );
    let baseline_diff = get_json(&certs, &base, "/baselines/fleet/diff?from=1&to=2");
    assert_eq!(
        baseline_diff["changed_lines"].as_array().unwrap().len(),
        1,
        "{baseline_diff:#}"
    );

    // The audit log: every entry's inclusion proof and the consistency of two checkpoints
    // are computed and verified by the server.
    let audit = get_json(&certs, &base, "/audit?per_page=100");
    let size = audit["tree_size"].as_u64().unwrap();
    assert!(size >= 13, "{audit:#}");
    assert!(
        audit["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"]["verified"] == true)
    );
    for index in [0, size / 2, size - 1] {
        let entry = get_json(&certs, &base, &format!("/audit/{index}"));
        assert_eq!(entry["inclusion"]["check"]["verified"], true, "{entry:#}");
    }
    let newest = audit["checkpoints"][0]["id"].as_i64().unwrap();
    let consistency = get_json(
        &certs,
        &base,
        &format!("/audit/consistency?from=2&to={newest}"),
    );
    assert_eq!(consistency["check"]["verified"], true, "{consistency:#}");
    let charts = get_json(&certs, &base, "/charts");
    let failing: Vec<&str> = charts["failing_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert!(
        failing.contains(&"baseline.assigned") && failing.contains(&"baseline.appraisal"),
        "{charts:#}"
    );

    // The same pages in a real browser, through mutual TLS with the auditor's certificate.
    // (file name, path, window height): the verdict pages are long.
    let pages = [
        ("fleet", "/nodes".to_owned(), 900),
        ("node", "/nodes/gpu-b".to_owned(), 1100),
        (
            "verdict",
            format!("/nodes/gpu-a/verdicts/{passed_id}"),
            2000,
        ),
        (
            "verdict-failed",
            format!("/nodes/gpu-b/verdicts/{}", fail_b["id"]),
            2000,
        ),
        (
            "diff",
            format!("/nodes/gpu-a/diff?from={failed_id}&to={passed_id}"),
            1300,
        ),
        ("baselines", "/baselines/fleet".to_owned(), 900),
        ("audit", "/audit".to_owned(), 1300),
        ("audit-entry", format!("/audit/{}", size - 1), 1300),
        ("charts", "/charts".to_owned(), 900),
    ];
    let mut pages = pages.to_vec();
    if hopper {
        pages.push(("node-gpu", format!("/nodes/{HOPPER_NODE}"), 1100));
    }
    browse(&certs, &base, &pages);
    server.stop();
}

/// The HGX host's name in the console.
const HOPPER_NODE: &str = "hgx-hopper";
/// The nonce NVIDIA's Hopper sample answers (bytes 4..36 of its request).
const HOPPER_SAMPLE_NONCE: &str =
    "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

/// Records a verdict for an HGX host whose attester (on a swtpm) replays NVIDIA's real Hopper
/// sample: the report answers one fixed nonce, so that nonce is issued for the host and the
/// evidence appraised, at a time inside the RIMs' validity, through the verifier library on
/// the console's database (before `vigil serve` holds it). No GPU baseline is assigned to its
/// group: it passes on authenticity (`--allow-no-baseline`), with its GPU identity recorded.
/// False when the fixtures are absent (outside CI).
fn record_hopper_verdict(db: &Path, dir: &Path) -> bool {
    let Some(root) = fixtures("nvidia-rims-matching") else {
        return false;
    };
    let samples = root.join("nv-local-gpu-verifier-2.7.3/samples");
    let replay = format!(
        "{},{}",
        samples.join("hopperAttestationReport.txt").display(),
        samples.join("hopperCertChain.txt").display()
    );
    let tpm = Swtpm::start();
    let attester = start_attester(
        &tpm,
        &dir.join("hopper-attester"),
        HOPPER_NODE,
        &["--gpu-replay", &replay],
    );
    let nonce = hex::decode(HOPPER_SAMPLE_NONCE).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let evidence = runtime.block_on(async {
        vigil_proto::v1::attester_client::AttesterClient::connect(format!(
            "http://{}",
            attester.address
        ))
        .await
        .unwrap()
        .get_evidence(vigil_proto::v1::GetEvidenceRequest {
            nonce: nonce.clone(),
            selection: Some(vigil_proto::v1::PcrSelection {
                pcrs: vigil_verifier::attest::DEFAULT_REQUIRED_PCRS.to_vec(),
                banks: Vec::new(),
            }),
            ima_offset: 0,
        })
        .await
        .unwrap()
        .into_inner()
    });
    let at = vigil_nvidia::parse_rfc3339("2026-05-01T00:00:00Z").unwrap();
    let store = vigil_verifier::store::Store::open(db).unwrap();
    store
        .insert_nonce(&nonce, HOPPER_NODE, at, at + 60)
        .unwrap();
    let verifier = vigil_verifier::attest::Verifier::new(
        store,
        vigil_verifier::attest::VerifierConfig {
            allow_tofu: true,
            allow_no_baseline: true,
            ..Default::default()
        },
    )
    .with_rims(vigil_nvidia::RimStore::load_dir(&root.join("nvidia-rims-matching")).unwrap());
    let report = verifier
        .appraise(
            HOPPER_NODE,
            Some(&nonce),
            &evidence,
            &vigil_verifier::attest::Origin::Pushed,
            at,
        )
        .unwrap();
    assert_eq!(
        report.verdict,
        vigil_verifier::report::Verdict::Pass,
        "{}",
        report.render_text()
    );
    true
}

/// Waits until the console answers (it starts with the gRPC server).
fn wait_for_console(certs: &Path, base: &str) {
    for _ in 0..100 {
        if curl(certs, base, "/nodes", Some("auditor"), &[]).1 == 200 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the web console at {base} did not answer");
}

/// The policy file that lets headless Chromium pick the client certificate without a
/// dialog; removed on drop.
struct Policy(PathBuf);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set: the browser check may not be skipped)");
    }
    eprintln!("SKIPPED the browser part of e2e_web_console: {reason}");
}

fn browse(certs: &Path, base: &str, pages: &[(&str, String, u32)]) {
    if !have("chromium") {
        return skip_or_fail("chromium is not installed (Debian package `chromium`)");
    }
    if !have("certutil") || !have("pk12util") || !have("openssl") {
        return skip_or_fail("certutil/pk12util (libnss3-tools) or openssl is missing");
    }
    let home = TempDir::new("chromium-home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let p12 = home.join("auditor.p12");
    ok(&run(Command::new("certutil").args([
        "-N",
        "--empty-password",
        "-d",
        &db,
    ])));
    ok(&run(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-passout",
            "pass:",
            "-name",
            "vigil-auditor",
            "-in",
        ])
        .arg(certs.join("auditor.pem"))
        .arg("-inkey")
        .arg(certs.join("auditor-key.pem"))
        .arg("-out")
        .arg(&p12)));
    ok(&run(Command::new("pk12util")
        .args(["-W", "", "-d", &db, "-i"])
        .arg(&p12)));
    ok(&run(Command::new("certutil")
        .args(["-A", "-n", "vigil-test-ca", "-t", "C,,", "-d", &db, "-i"])
        .arg(certs.join("ca.pem"))));
    let policy_dir = Path::new("/etc/chromium/policies/managed");
    let policy_path = policy_dir.join(format!("vigil-e2e-{}.json", std::process::id()));
    let pattern = serde_json::json!({ "pattern": base, "filter": {} }).to_string();
    let policy = serde_json::json!({ "AutoSelectCertificateForUrls": [pattern] }).to_string();
    if let Err(error) =
        std::fs::create_dir_all(policy_dir).and_then(|()| std::fs::write(&policy_path, policy))
    {
        return skip_or_fail(&format!(
            "cannot write the Chromium policy {}: {error}",
            policy_path.display()
        ));
    }
    let _policy = Policy(policy_path);
    let out_dir = std::env::var_os("VIGIL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("web-console-screenshots"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let chromium = |extra: &[&str], url: &str| {
        run(Command::new("timeout")
            .arg("60")
            .arg("chromium")
            .env("HOME", home.path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                home.join("profile").display()
            ))
            .args(extra)
            .arg(url))
    };
    // The browser gets the page (not an error page) and runs no script from it.
    let dom = chromium(&["--dump-dom"], &format!("{base}/nodes"));
    let dom_text = stdout(&dom);
    assert!(
        dom_text.contains("<h1>Fleet</h1>") && dom_text.contains("gpu-a"),
        "chromium: {dom_text}{}",
        stderr(&dom)
    );
    assert!(
        dom_text.contains("evil&lt;script&gt;") && !dom_text.contains("<script"),
        "{dom_text}"
    );
    for (name, path, height) in pages {
        let file = out_dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        let out = chromium(
            &[
                &format!("--screenshot={}", file.display()),
                &format!("--window-size=1280,{height}"),
            ],
            &format!("{base}{path}"),
        );
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{name}: no screenshot of {path}: {}",
            stderr(&out)
        );
    }
    println!("screenshots of the web console in {}", out_dir.display());
}
