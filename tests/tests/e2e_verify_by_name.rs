//! `vigil verify NODE-NAME`: an orchestrator names a registered node, the verifier attests it
//! at its registered address (locally with --db, or through `vigil serve` with --verifier);
//! `--address` checks an attester directly; an unknown name says what to do instead.

use vigil_e2e::*;

fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or(serde_json::Value::Null)
}

fn failed(report: &serde_json::Value, name: &str) -> bool {
    report["checks"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == name && c["passed"] == false))
}

const UNKNOWN: &str =
    "no registered node unknown-node; give --address to check an unregistered host";

#[test]
fn verify_by_registered_name_locally_and_through_the_verifier() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("verify-by-name");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let attester =
        start_attester_with(&tpm, &dir.join("attester"), "named-node", &listen, &[], &[]);

    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--db",
        db,
        "--ek-roots",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // By name: looked up in the registry, attested at the registered address.
    let out = vigil(&[
        "verify",
        "named-node",
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let report = json_of(&out);
    assert_eq!(report["node_id"], "named-node", "{report:#}");
    assert_eq!(report["ak_trust"], "ek-certified", "{report:#}");

    // An unknown name: usage error, and what to do instead.
    let out = vigil(&["verify", "unknown-node", "--db", db, "--allow-no-baseline"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(UNKNOWN), "{}", stderr(&out));

    // By address, and by the old --node spelling of it.
    for flag in ["--address", "--node"] {
        let out = vigil(&[
            "verify",
            flag,
            &attester.address,
            "--db",
            db,
            "--json",
            "--allow-no-baseline",
        ]);
        assert_eq!(code(&out), 0, "{flag}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(json_of(&out)["node_id"], "named-node");
    }
    // A name and an address at once, or neither: usage errors.
    let out = vigil(&[
        "verify",
        "named-node",
        "--address",
        &attester.address,
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = vigil(&["verify", "--db", db]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));

    // Through a running verifier (AttestNodeRequest.node_id).
    let verifier = start_verifier(
        std::path::Path::new(db),
        &["--allow-no-baseline", "--poll-interval", "0"],
    );
    let url = verifier.url();
    let out = vigil(&["verify", "named-node", "--verifier", &url, "--json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_of(&out)["node_id"], "named-node");
    let out = vigil(&["verify", "unknown-node", "--verifier", &url]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(UNKNOWN), "{}", stderr(&out));
    let out = vigil(&[
        "verify",
        "--address",
        &attester.address,
        "--verifier",
        &url,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    verifier.stop();

    // Another host now answers at the node's registered address: attesting the node by name
    // fails (it is not the node), instead of appraising that host under its own name.
    attester.stop();
    let other_tpm = Swtpm::start_with_ek_certificate(&ca);
    let _other = start_attester_with(
        &other_tpm,
        &dir.join("other"),
        "other-node",
        &listen,
        &[],
        &[],
    );
    let out = vigil(&[
        "verify",
        "named-node",
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let report = json_of(&out);
    assert_eq!(report["node_id"], "named-node", "{report:#}");
    assert!(failed(&report, "node.id"), "{report:#}");
    assert!(failed(&report, "ak.known"), "{report:#}");
}
