//! Remote read commands and `vigil watch`, over mutual TLS with roles: an orchestrator watches
//! a polled node turn trusted, then unknown once its attester stops; a watch started with
//! `--from` resumes at exactly the next change and survives a verifier restart; an auditor
//! lists nodes and verdicts but cannot remove a node, an admin can; an attester reads nothing.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use vigil_e2e::*;

/// A running `vigil watch`: its stdout lines arrive on a channel, its stderr is kept.
struct Watcher {
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl Watcher {
    fn start(args: &[&str]) -> Watcher {
        let mut child = Command::new(binary("vigil"))
            .arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (line_sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_sender.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_sender, err_receiver) = channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_sender.send(text);
        });
        Watcher {
            child,
            lines,
            stderr: err_receiver,
        }
    }

    /// The next change printed (one JSON object per line), within `seconds`.
    fn next(&self, seconds: u64) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(seconds))
            .unwrap_or_else(|e| panic!("no change printed within {seconds}s: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    /// Sends SIGTERM; the exit status and everything it wrote to stderr.
    fn terminate(mut self) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            assert!(Instant::now() < deadline, "vigil watch ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vigil serve` with mutual TLS at a fixed address (so it can come back there).
fn serve_at(listen: &str, db: &std::path::Path, certs: &str, trust: &str) -> Server {
    let mut command = Command::new(binary("vigil"));
    command
        .args(["serve", "--listen", listen, "--db"])
        .arg(db)
        .args(["--tls-dir", certs, "--ek-roots", trust])
        .args(["--poll-interval", "1", "--allow-no-baseline"]);
    Server::start(command)
}

#[test]
fn watch_nodes_history_and_remove_over_mutual_tls_with_roles() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let trust_s = trust.to_str().unwrap();
    let dir = TempDir::new("remote-nodes");
    let certs = dir.join("certs");
    let certs_s = certs.to_str().unwrap();
    let out = vigil(&["dev-certs", certs_s]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let db = dir.join("vigil.db");
    let listen = format!("127.0.0.1:{}", free_port());
    let verifier = serve_at(&listen, &db, certs_s, trust_s);
    let url = verifier.tls_url();
    let attester_listen = format!("127.0.0.1:{}", free_port());
    let attester_state = dir.join("attester");
    let attester_extra = ["--tls-dir", certs_s];
    let node = "remote-node";
    let attester = start_attester_with(
        &tpm,
        &attester_state,
        node,
        &attester_listen,
        &attester_extra,
        &[],
    );
    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // Run `vigil ARGS --verifier URL --tls-dir CERTS --as ROLE`.
    let remote = |args: &[&str], role: &str| {
        let mut all = args.to_vec();
        all.extend(["--verifier", &url, "--tls-dir", certs_s, "--as", role]);
        vigil(&all)
    };

    // An attester may not watch: refused at once, exit 2, naming the role.
    let out = remote(&["watch", "--json"], "attester");
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stderr(&out).contains("attester"), "{}", stderr(&out));

    // An orchestrator watches the node turn trusted (the poller re-attests every second).
    let watcher = Watcher::start(&[
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
        "--as",
        "orchestrator",
        "--json",
        "--node",
        node,
    ]);
    let trusted = watcher.next(30);
    assert_eq!(trusted["node_id"], node, "{trusted}");
    assert_eq!(trusted["new_status"], "trusted", "{trusted}");
    assert!(trusted["result_token"].as_str().is_some(), "{trusted}");
    let trusted_seq = trusted["seq"].as_i64().unwrap();

    // An auditor lists the node and its status, and its verdicts; an attester may not.
    let out = remote(&["nodes", "--json"], "auditor");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let nodes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(nodes[0]["node_id"], node, "{nodes:#}");
    assert_eq!(nodes[0]["status"], "trusted", "{nodes:#}");
    assert_eq!(nodes[0]["ak_trust"], "ek-certified", "{nodes:#}");
    assert!(nodes[0]["registered_at"].is_i64(), "{nodes:#}");
    let out = remote(&["nodes", "status", node], "auditor");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("trusted"), "{}", stdout(&out));
    let out = remote(&["nodes", "status", "no-such-node"], "auditor");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no node"), "{}", stderr(&out));
    let out = remote(&["nodes"], "attester");
    assert_eq!(code(&out), 2, "an attester listed the nodes");
    assert!(stderr(&out).contains("attester"), "{}", stderr(&out));

    let out = remote(&["history"], "auditor");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains(node) && table.contains("PASS"), "{table}");
    // Once the poller has recorded a second verdict, --limit 1 shows one and says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = remote(
            &["history", "--node", node, "--limit", "1", "--json"],
            "auditor",
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let lines: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "--limit 1: {lines:?}");
        assert_eq!(lines[0]["verdict"], "pass", "{lines:?}");
        assert_eq!(lines[0]["node_id"], node, "{lines:?}");
        if stderr(&out).contains("older verdicts not shown") {
            break;
        }
        assert!(Instant::now() < deadline, "no second verdict within 20s");
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = remote(&["history"], "attester");
    assert_eq!(code(&out), 2, "an attester read the history");

    // The attester stops: the node turns unknown, and the watch prints it.
    attester.stop();
    let unknown = watcher.next(30);
    assert_eq!(unknown["new_status"], "unknown", "{unknown}");
    let unknown_seq = unknown["seq"].as_i64().unwrap();
    assert!(unknown_seq > trusted_seq);
    let (status, err) = watcher.terminate();
    assert!(
        status.success(),
        "SIGTERM ends a watch with 0: {status:?} {err}"
    );
    assert!(
        err.contains(&format!("resume with --from {}", unknown_seq + 1)),
        "{err}"
    );

    // Resuming after the first change gives exactly the next one.
    let resumed = Watcher::start(&[
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
        "--as",
        "auditor",
        "--json",
        "--from",
        &(trusted_seq + 1).to_string(),
    ]);
    let again = resumed.next(10);
    assert_eq!(again["seq"], unknown_seq, "{again}");
    assert_eq!(again["new_status"], "unknown", "{again}");

    // The verifier goes away and comes back at the same address; the attester too. The watch
    // reconnects and prints the next change, nothing twice.
    drop(verifier);
    std::thread::sleep(Duration::from_millis(500));
    let verifier = serve_at(&listen, &db, certs_s, trust_s);
    let _attester = start_attester_with(
        &tpm,
        &attester_state,
        node,
        &attester_listen,
        &attester_extra,
        &[],
    );
    let back = resumed.next(60);
    assert!(back["seq"].as_i64().unwrap() > unknown_seq, "{back}");
    assert_eq!(back["new_status"], "trusted", "{back}");
    let (status, err) = resumed.terminate();
    assert!(status.success(), "{status:?} {err}");
    assert!(err.contains("reconnecting"), "{err}");

    // Removing a node is for admins: an auditor is refused, naming its role.
    let out = remote(&["node", "remove", node], "auditor");
    assert_eq!(code(&out), 2, "an auditor removed a node");
    assert!(stderr(&out).contains("auditor"), "{}", stderr(&out));
    let out = remote(&["node", "remove", node], "admin");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("removed"), "{}", stdout(&out));
    let out = remote(&["node", "remove", node], "admin");
    assert_eq!(code(&out), 2, "removed twice");
    let out = remote(&["nodes", "--json"], "auditor");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]", "{}", stdout(&out));
    drop(verifier);
}
