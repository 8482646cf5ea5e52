//! Evidence retention end to end: `vigil serve --retain-evidence DAYS` deletes the stored
//! evidence of older verdicts at start; the audit log keeps every entry (and its evidence
//! digest) and still verifies, and `vigil audit reappraise` of a pruned verdict says the
//! evidence was pruned by the retention policy.

use vigil_e2e::*;

fn entries(db: &str, kind: &str) -> Vec<serde_json::Value> {
    let out = vigil(&["audit", "list", "--db", db, "--kind", kind, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn serve_prunes_old_evidence_and_the_audit_log_still_verifies() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("retention");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let attester = start_attester(&tpm, &dir.join("attester"), "retained-node", &[]);
    let verify = || {
        vigil(&[
            "verify",
            "--address",
            &attester.address,
            "--db",
            db,
            "--tofu",
            "--allow-no-baseline",
        ])
    };
    for _ in 0..3 {
        let out = verify();
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    }
    let out = vigil(&["audit", "reappraise", "0", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let digests: Vec<String> = entries(db, "verdict")
        .iter()
        .map(|e| e["entry"]["body"]["evidence"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(digests.len(), 3);

    // A retention of a day keeps these verdicts' evidence.
    let server = start_verifier(
        std::path::Path::new(db),
        &["--retain-evidence", "1", "--poll-interval", "0"],
    );
    server.stop();
    assert!(entries(db, "evidence.pruned").is_empty());
    let out = vigil(&["audit", "reappraise", "2", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // Retention 0: everything recorded before now is pruned, at start (before listening).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let server = start_verifier(
        std::path::Path::new(db),
        &["--retain-evidence", "0", "--poll-interval", "0"],
    );
    server.stop();
    let pruned = entries(db, "evidence.pruned");
    assert_eq!(pruned.len(), 1, "{pruned:#?}");
    assert_eq!(pruned[0]["entry"]["body"]["blobs"], 3);

    // Every entry is still there, with its evidence digest, and the log verifies.
    let after: Vec<String> = entries(db, "verdict")
        .iter()
        .map(|e| e["entry"]["body"]["evidence"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, digests);
    let out = vigil(&["audit", "verify", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK: 4 entries"), "{}", stdout(&out));

    // Re-appraisal says why the evidence is gone (nothing concluded: exit 2).
    let out = vigil(&["audit", "reappraise", "0", "--db", db]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "evidence {} was pruned by the retention policy (--retain-evidence)",
            digests[0]
        )),
        "{message}"
    );

    // A verdict recorded after the prune keeps its evidence and re-appraises.
    let out = verify();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = vigil(&["audit", "reappraise", "4", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // An exported bundle still verifies; the pruned evidence is listed as missing.
    let bundle = dir.join("bundle.json");
    let out = vigil(&[
        "audit",
        "export",
        "--out",
        bundle.to_str().unwrap(),
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let key = stdout(&vigil(&["audit", "key", "--db", db]))
        .trim()
        .to_owned();
    let out = vigil(&[
        "audit",
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["missing_blobs"].as_array().unwrap().len(),
        3,
        "{report:#}"
    );
}
