//! `vigil verify` with a measured-boot log: the log the attester sends is replayed against
//! the PCR values the quote proves. The "firmware" here is the test: it writes a log and
//! extends the same digests into the software TPM, as firmware would.

use vigil_e2e::*;

fn boot_events() -> Vec<LogEvent> {
    let separator = vec![0u8; 4];
    let action = b"Exit Boot Services Invocation".to_vec();
    let kernel = b"kernel_cmdline: root=/dev/sda1 ro quiet".to_vec();
    vec![
        LogEvent {
            pcr: 4,
            event_type: 0x8000_0003,
            digest: sha256(b"shim image"),
            data: vec![0u8; 32],
        },
        LogEvent {
            pcr: 7,
            event_type: 0x4,
            digest: sha256(&separator),
            data: separator,
        },
        LogEvent {
            pcr: 5,
            event_type: 0x8000_0007,
            digest: sha256(&action),
            data: action,
        },
        LogEvent {
            pcr: 8,
            event_type: 0xd,
            digest: sha256(&kernel[16..]),
            data: kernel,
        },
    ]
}

fn checks(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or(serde_json::Value::Null)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

#[test]
fn the_event_log_must_replay_to_the_quoted_pcrs() {
    require_tools(&["tpm2_pcrextend"]);
    let tpm = Swtpm::start();
    let dir = TempDir::new("eventlog");
    let events = boot_events();
    for event in &events {
        tpm2(
            &tpm,
            dir.path(),
            "tpm2_pcrextend",
            &[&format!(
                "{}:sha256={}",
                event.pcr,
                hex::encode(&event.digest)
            )],
        );
    }
    let log_path = dir.join("binary_bios_measurements");
    std::fs::write(&log_path, synthetic_event_log(&events)).unwrap();
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "booted-node",
        &["--event-log", log_path.to_str().unwrap()],
    );
    let db = dir.join("vigil.db");
    let verify = || {
        vigil(&[
            "verify",
            "--node",
            &attester.address,
            "--db",
            db.to_str().unwrap(),
            "--tofu",
            "--allow-no-baseline",
            "--json",
        ])
    };

    let out = verify();
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let report = checks(&out);
    assert_eq!(check(&report, "eventlog.replay")["passed"], true);
    let claims: Vec<&str> = report["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "boot.apps[0].authenticode_sha256",
        "boot.separators.pcr7",
        "boot.exit_boot_services",
        "boot.kernel_cmdline",
    ] {
        assert!(claims.contains(&name), "{claims:?}");
    }

    // A log whose shim digest was altered no longer explains PCR 4.
    let mut tampered = boot_events();
    tampered[0].digest[0] ^= 1;
    std::fs::write(&log_path, synthetic_event_log(&tampered)).unwrap();
    let out = verify();
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let detail = check(&checks(&out), "eventlog.replay")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("sha256:4") && detail.contains("events [1]"),
        "{detail}"
    );

    // A log with the kernel command line event left out cannot explain PCR 8.
    let mut truncated = boot_events();
    truncated.pop();
    std::fs::write(&log_path, synthetic_event_log(&truncated)).unwrap();
    let out = verify();
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let detail = check(&checks(&out), "eventlog.replay")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("sha256:8") && detail.contains("no event"),
        "{detail}"
    );

    // Garbage instead of a log is a parse failure, not a pass.
    std::fs::write(&log_path, b"not an event log at all, just text").unwrap();
    let out = verify();
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert_eq!(check(&checks(&out), "eventlog.parse")["passed"], false);
}
