//! Continuous attestation and the Watch stream: the verifier re-attests a registered node on
//! its interval; the node turns `trusted`, and `unknown` within its window once its attester
//! stops; Watch reports both, and a client that reconnects from its last seq misses nothing.

use std::time::{Duration, Instant};

use vigil_e2e::*;
use vigil_proto::v1::WatchRequest;
use vigil_proto::v1::verifier_client::VerifierClient;

#[test]
fn a_stopped_attester_turns_unknown_and_watch_resumes_without_gaps() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("watch");
    let attester = start_attester(&tpm, &dir.join("attester"), "watched-node", &[]);
    let verifier = start_verifier(
        &dir.join("vigil.db"),
        &[
            "--ek-roots",
            trust.to_str().unwrap(),
            "--poll-interval",
            "1",
            "--allow-no-baseline",
        ],
    );
    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--verifier",
        &verifier.url(),
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = VerifierClient::connect(verifier.url()).await.unwrap();
        let mut stream = client
            .watch(WatchRequest {
                from_seq: 0,
                node_id: "watched-node".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let deadline = Instant::now() + Duration::from_secs(20);
        let trusted = next_change(&mut stream, deadline)
            .await
            .expect("a first verdict from the poller");
        assert_eq!(
            (trusted.old_status.as_str(), trusted.new_status.as_str()),
            ("unknown", "trusted"),
            "{trusted:?}"
        );
        assert!(
            trusted.result_json.contains("\"verdict\":\"pass\""),
            "{}",
            trusted.result_json
        );

        // Stop the attester: within its window the node must become unknown.
        attester.stop();
        let stopped_at = Instant::now();
        let unknown = next_change(&mut stream, Instant::now() + Duration::from_secs(20))
            .await
            .expect("the node turns unknown");
        assert_eq!(unknown.new_status, "unknown", "{unknown:?}");
        assert!(unknown.seq > trusted.seq);
        eprintln!(
            "trusted -> unknown {:?} after the attester stopped: {}",
            stopped_at.elapsed(),
            unknown.reason
        );
        drop(stream);

        // A client that reconnects after the first change resumes exactly at the next one.
        let mut resumed = client
            .watch(WatchRequest {
                from_seq: trusted.seq + 1,
                node_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let again = next_change(&mut resumed, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(again.seq, unknown.seq);
        assert_eq!(again.new_status, "unknown");
    });
}

#[test]
fn an_attester_in_push_mode_attests_itself_on_its_interval() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("push-mode");
    let db = dir.join("vigil.db");
    let verifier = start_verifier(
        &db,
        &["--tofu", "--allow-no-baseline", "--poll-interval", "0"],
    );
    let url = verifier.url();
    let _attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "pushing-node",
        &["--push-to", &url, "--push-interval", "1"],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = VerifierClient::connect(verifier.url()).await.unwrap();
        let mut stream = client
            .watch(WatchRequest {
                from_seq: 0,
                node_id: "pushing-node".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let change = next_change(&mut stream, Instant::now() + Duration::from_secs(20))
            .await
            .expect("the pushed evidence is appraised");
        assert_eq!(change.new_status, "trusted", "{change:?}");
    });
    // It keeps pushing: more than one verdict arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = vigil(&[
            "audit",
            "list",
            "--db",
            db.to_str().unwrap(),
            "--kind",
            "verdict",
            "--status",
            "pass",
            "--json",
        ]);
        let count = serde_json::from_str::<serde_json::Value>(&stdout(&out))
            .map(|v| v.as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        if count >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "only {count} pushed verdicts");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads one HTTP request (head and Content-Length body) and answers with `status`.
fn answer_one(listener: &std::net::TcpListener, status: &str) -> String {
    use std::io::{Read, Write};
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "connection closed mid-request");
        request.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
            if body.len() >= length {
                stream
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .unwrap();
                return text;
            }
        }
    }
}

#[test]
fn the_webhook_posts_each_change_with_its_signed_result_and_retries() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("webhook");
    let db = dir.join("vigil.db");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/vigil/changes", listener.local_addr().unwrap());
    let verifier = start_verifier(
        &db,
        &[
            "--tofu",
            "--allow-no-baseline",
            "--poll-interval",
            "0",
            "--webhook",
            &hook,
        ],
    );
    let _attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "hooked-node",
        &["--push-to", &verifier.url(), "--push-interval", "1"],
    );
    // The receiver fails once: the same change is delivered again.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let first = answer_one(&listener, "503 Service Unavailable");
        let second = answer_one(&listener, "200 OK");
        let _ = sender.send((first, second));
    });
    let (first, second) = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the webhook delivered the change (twice) within a minute");
    assert!(
        first.starts_with("POST /vigil/changes HTTP/1.1\r\n"),
        "{first}"
    );
    let body = |request: &str| -> serde_json::Value {
        serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap()
    };
    let (first, second) = (body(&first), body(&second));
    assert_eq!(first, second, "retried with the same change");
    assert_eq!(second["node_id"], "hooked-node");
    assert_eq!(second["new_status"], "trusted");
    let token = second["result_token"].as_str().unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        stdout(&vigil(&["keys", "jwks", "--db", db.to_str().unwrap()])),
    )
    .unwrap();
    let out = vigil(&["result", "verify", token, "--jwks", jwks.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
