//! Logs and metrics of both servers (issue #15, items 4 and 5): `vigil serve` and
//! `vigil-attester serve` with `--metrics-listen` and `--log-format json`, one pull-mode
//! verification, then `GET /metrics` on both and the verifier's log lines, down to shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vigil_e2e::*;

/// `GET /metrics` over plain HTTP/1.0; the body of a 200 answer.
fn scrape(address: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("openmetrics-text"), "{head}");
    body.to_owned()
}

/// The value of the sample `name{labels}` (the exact text before the value).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Runs `program args...` with stderr appended to `log` (through `sh`, which execs it, so
/// SIGTERM reaches the server itself).
fn with_stderr_to(program: &Path, args: &[&str], log: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("log=$1; shift; exec \"$@\" 2>>\"$log\"")
        .arg("sh")
        .arg(log)
        .arg(program)
        .args(args);
    command
}

/// Waits until `log` has a line containing `needle` (the server writes it asynchronously).
fn wait_for_line(log: &Path, needle: &str) -> String {
    for _ in 0..100 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no line with {needle:?} in {}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn verdicts_are_logged_as_json_and_counted_in_both_servers_metrics() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("logs-metrics");
    let attester_metrics = format!("127.0.0.1:{}", free_port());
    let attester_log = dir.join("attester.log");
    let tcti = tpm.tcti();
    let state = dir.join("attester");
    let attester = Server::start({
        let mut command = with_stderr_to(
            &binary("vigil-attester"),
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--tcti",
                &tcti,
                "--state-dir",
                state.to_str().unwrap(),
                "--node-id",
                "metrics-node-1",
                "--event-log",
                "/nonexistent/vigil-e2e/binary_bios_measurements",
                "--ima-log",
                "/nonexistent/vigil-e2e/binary_runtime_measurements",
                "--metrics-listen",
                &attester_metrics,
            ],
            &attester_log,
        );
        command.env("TSS2_LOG", "all+none");
        command
    });

    let verifier_metrics = format!("127.0.0.1:{}", free_port());
    let verifier_log = dir.join("verifier.log");
    let db = dir.join("vigil.db");
    let verifier = Server::start(with_stderr_to(
        &binary("vigil"),
        &[
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
            "--tofu",
            "--allow-no-baseline",
            "--log-format",
            "json",
            "--metrics-listen",
            &verifier_metrics,
        ],
        &verifier_log,
    ));

    // Before any verdict: the phase histogram and node gauges are there, at zero.
    let before = scrape(&verifier_metrics);
    assert_eq!(
        sample(
            &before,
            "vigil_appraisal_phase_seconds_count{phase=\"record\"}"
        ),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "vigil_nodes{status=\"trusted\"}"),
        Some(0.0),
        "{before}"
    );

    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--verifier",
        &verifier.url(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    let metrics = scrape(&verifier_metrics);
    let verdicts: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("vigil_verdicts_total{") && l.contains("verdict=\"pass\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(verdicts >= 1.0, "{metrics}");
    for phase in ["nonce", "evidence", "appraisal", "record"] {
        let count = sample(
            &metrics,
            &format!("vigil_appraisal_phase_seconds_count{{phase=\"{phase}\"}}"),
        );
        assert!(count.is_some_and(|c| c >= 1.0), "{phase}: {metrics}");
        assert!(
            metrics.contains(&format!(
                "vigil_appraisal_phase_seconds_bucket{{le=\"+Inf\",phase=\"{phase}\"}}"
            )),
            "{metrics}"
        );
    }
    assert!(
        metrics.contains("# TYPE vigil_poll_lag_seconds histogram"),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "vigil_audit_entries").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    let attester_text = scrape(&attester_metrics);
    assert!(
        sample(&attester_text, "vigil_attester_quote_seconds_count").is_some_and(|n| n >= 1.0),
        "{attester_text}"
    );
    assert_eq!(
        sample(
            &attester_text,
            "vigil_attester_collector_errors_total{source=\"tpm\"}"
        ),
        Some(0.0),
        "{attester_text}"
    );

    // The verdict's log line names the node, as JSON; every line is JSON.
    let log = wait_for_line(&verifier_log, "\"verdict recorded\"");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let verdict = lines
        .iter()
        .find(|l| l["fields"]["event"] == "verdict")
        .unwrap_or_else(|| panic!("no verdict event in\n{log}"));
    assert_eq!(verdict["fields"]["node"], "metrics-node-1", "{verdict}");
    assert_eq!(verdict["fields"]["verdict"], "pass", "{verdict}");
    assert_eq!(verdict["level"], "INFO", "{verdict}");
    assert!(verdict["fields"]["duration_ms"].is_number(), "{verdict}");
    let start = lines
        .iter()
        .find(|l| l["fields"]["event"] == "start")
        .unwrap_or_else(|| panic!("no start event in\n{log}"));
    assert_eq!(
        start["fields"]["listen"],
        verifier.address.as_str(),
        "{start}"
    );
    assert!(
        start["fields"]["mode"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dev"),
        "{start}"
    );
    // No nonce in full, no result token, in any line.
    assert!(!log.contains("result_token"), "{log}");

    verifier.stop();
    let log = wait_for_line(&verifier_log, "\"vigil serve stopped\"");
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"shutdown\"")),
        "{log}"
    );

    attester.stop();
    let attester_text = wait_for_line(&attester_log, "vigil-attester serve stopped");
    assert!(
        attester_text.contains("vigil-attester serve started"),
        "{attester_text}"
    );
}
