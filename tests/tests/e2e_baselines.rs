//! Baselines end to end: three registered nodes (one swtpm each, with a measured-boot log the
//! test "firmware" extends into it), a baseline captured from one, versioned, assigned to
//! their group and appraised; a signed result checked offline; a what-if that revokes one
//! boot application names exactly the nodes that boot it.

use vigil_e2e::*;

const SHIM: &[u8] = b"shim 15.8";
const GRUB_A: &[u8] = b"grub 2.12 build a";
const GRUB_B: &[u8] = b"grub 2.12 build b";

/// A booted host: shim, a boot loader, the kernel command line; extended into `tpm`.
fn boot(tpm: &Swtpm, dir: &std::path::Path, loader: &[u8]) -> std::path::PathBuf {
    firmware_boot(tpm, dir, &[SHIM, loader], "root=/dev/sda1 ro quiet")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

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

#[test]
fn baselines_appraise_a_fleet_and_impact_names_exactly_the_affected_nodes() {
    require_tools(&["tpm2_pcrextend"]);
    let ca = EkCa::new();
    let tpms: Vec<Swtpm> = (0..3)
        .map(|_| Swtpm::start_with_ek_certificate(&ca))
        .collect();
    let trust = ca.trust_dir();
    let dir = TempDir::new("baselines");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let trust = trust.to_str().unwrap();
    // gpu-a and gpu-b boot loader A, gpu-c boots loader B.
    let mut nodes = Vec::new();
    for ((name, loader), tpm) in [("gpu-a", GRUB_A), ("gpu-b", GRUB_A), ("gpu-c", GRUB_B)]
        .into_iter()
        .zip(tpms)
    {
        let node_dir = dir.join(name);
        std::fs::create_dir_all(&node_dir).unwrap();
        let log = boot(&tpm, &node_dir, loader);
        let attester = start_attester(
            &tpm,
            &node_dir.join("state"),
            name,
            &["--event-log", log.to_str().unwrap()],
        );
        let out = vigil(&[
            "node",
            "register",
            &attester.address,
            "--group",
            "fleet",
            "--db",
            db,
            "--ek-roots",
            trust,
        ]);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        nodes.push((name, tpm, attester));
    }
    let verify = |address: &str| vigil(&["verify", "--node", address, "--db", db, "--json"]);
    let address = |name: &str| {
        nodes
            .iter()
            .find(|n| n.0 == name)
            .unwrap()
            .2
            .address
            .clone()
    };

    // Deny by default: no baseline for the group yet.
    let out = verify(&address("gpu-a"));
    assert_eq!(code(&out), 1);
    let first = json(&out);
    let failed: Vec<&str> = first["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["baseline.assigned"], "{first:#}");
    assert_eq!(first["status"], "contraindicated");

    // Capture from gpu-a's verified claims: it affirms gpu-a, and refuses gpu-c (other loader).
    let evidence = dir.join("gpu-a.json");
    std::fs::write(&evidence, stdout(&out)).unwrap();
    let captured = dir.join("captured.toml");
    let out = vigil(&[
        "baseline",
        "capture",
        "--evidence",
        evidence.to_str().unwrap(),
        "--name",
        "golden",
        "--out",
        captured.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&captured).unwrap();
    // Evidence that failed an authenticity check is never learned from.
    let mut forged = first.clone();
    for check in forged["checks"].as_array_mut().unwrap() {
        if check["name"] == "quote.signature" {
            check["passed"] = serde_json::Value::Bool(false);
        }
    }
    let forged_path = dir.join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let out = vigil(&[
        "baseline",
        "capture",
        "--evidence",
        forged_path.to_str().unwrap(),
        "--out",
        dir.join("no.toml").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("quote.signature") && stderr(&out).contains("never captured"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("no.toml").exists());
    assert!(text.contains(&hex::encode(sha256(GRUB_A))), "{text}");
    let put = |file: &std::path::Path, reason: &str| {
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
    assert_eq!(code(&put(&captured, "captured from gpu-a")), 0);
    let out = vigil(&[
        "baseline", "assign", "fleet", "golden", "--author", "alice", "--reason", "try it", "--db",
        db,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = verify(&address("gpu-a"));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json(&out)["status"], "affirming");
    let out = verify(&address("gpu-c"));
    assert_eq!(code(&out), 1);
    let refused = json(&out);
    let not_met: Vec<&str> = refused["appraisal"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "pass")
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(
        not_met.contains(&"boot.applications") && not_met.contains(&"pcr.sha256.4"),
        "{not_met:?}"
    );

    // The fleet baseline allows both loaders: version 1 of "fleet", assigned to the group.
    let fleet = dir.join("fleet.toml");
    std::fs::write(&fleet, fleet_baseline(&[GRUB_A, GRUB_B])).unwrap();
    assert_eq!(code(&put(&fleet, "both loaders")), 0);
    let out = vigil(&[
        "baseline", "assign", "fleet", "fleet", "--author", "alice", "--reason", "rollout", "--db",
        db,
    ]);
    assert_eq!(code(&out), 0);
    let mut token = String::new();
    for name in ["gpu-a", "gpu-b", "gpu-c"] {
        let out = verify(&address(name));
        assert_eq!(code(&out), 0, "{name}: {}", stdout(&out));
        let report = json(&out);
        assert_eq!(report["status"], "affirming");
        assert_eq!(report["baseline"], "fleet@1");
        token = report["result_token"].as_str().unwrap().to_owned();
    }
    // The readable table: one line per rule, with a tick.
    let out = vigil(&["verify", "--node", &address("gpu-b"), "--db", db]);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with('\u{2714}') && l.contains("boot.applications")),
        "{table}"
    );
    assert!(table.contains("baseline fleet@1"), "{table}");

    // The signed result (gpu-c's) verifies offline with the published keys, and only then.
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, stdout(&vigil(&["keys", "jwks", "--db", db]))).unwrap();
    let jwks = jwks.to_str().unwrap();
    let result = |token: &str, extra: &[&str]| {
        let mut args = vec!["result", "verify", token, "--jwks", jwks];
        args.extend_from_slice(extra);
        vigil(&args)
    };
    let out = result(&token, &["--json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let ear = json(&out);
    assert_eq!(ear["sub"], "gpu-c");
    assert_eq!(ear["submods"]["host"]["ear_status"], "affirming");
    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        code(&result(&String::from_utf8(flipped).unwrap(), &[])),
        1,
        "flipped byte"
    );
    let iat = ear["iat"].as_i64().unwrap();
    assert_eq!(
        code(&result(&token, &["--at", &(iat + 601).to_string()])),
        1,
        "expired"
    );
    let other = TempDir::new("other-verifier");
    let other_db = other.join("other.db");
    let other_jwks = other.join("jwks.json");
    std::fs::write(
        &other_jwks,
        stdout(&vigil(&[
            "keys",
            "jwks",
            "--db",
            other_db.to_str().unwrap(),
        ])),
    )
    .unwrap();
    let out = vigil(&[
        "result",
        "verify",
        &token,
        "--jwks",
        other_jwks.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "another verifier's key: {}", stdout(&out));

    // What-if: revoking loader B changes exactly gpu-c, and says why.
    let proposed = dir.join("proposed.toml");
    std::fs::write(&proposed, fleet_baseline(&[GRUB_A])).unwrap();
    let out = vigil(&[
        "baseline",
        "impact",
        proposed.to_str().unwrap(),
        "--db",
        db,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let impact = json(&out);
    let changed: Vec<&str> = impact["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["changes"] == true)
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["gpu-c"], "{impact:#}");
    assert_eq!(impact["nodes"].as_array().unwrap().len(), 3);
    let reasons = impact["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == "gpu-c")
        .unwrap()["reasons"]
        .to_string();
    assert!(
        reasons.contains("boot.applications") && reasons.contains(&hex::encode(sha256(GRUB_B))),
        "{reasons}"
    );
    // Nothing was applied: gpu-c still passes under the assigned baseline.
    assert_eq!(code(&verify(&address("gpu-c"))), 0);

    // Every baseline version and assignment is in the audit log.
    let out = vigil(&[
        "audit",
        "list",
        "--db",
        db,
        "--kind",
        "baseline.version",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        json(&out).as_array().map(Vec::len),
        Some(2),
        "{}",
        stdout(&out)
    );
    let out = vigil(&["baseline", "list", "--db", db, "--json"]);
    let listing = json(&out);
    assert_eq!(listing["assignments"]["fleet"], "fleet");
    assert_eq!(listing["baselines"][0]["author"], "alice");
}

#[test]
fn baseline_files_are_validated_and_signatures_enforced() {
    let dir = TempDir::new("baseline-files");
    let db = dir.join("v.db");
    let db = db.to_str().unwrap();
    let file = dir.join("b.toml");
    let file_s = file.to_str().unwrap();
    std::fs::write(
        &file,
        "format = 1\nname = \"b\"\n[boot]\nsecureboot = true\n",
    )
    .unwrap();
    let out = vigil(&["baseline", "check", file_s]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("b.toml: line 4, column 1: unknown field `secureboot`"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        &file,
        "format = 1\nname = \"b\"\n[[rule]]\nclaim = \"gpu[*].vbios\"\nequals = \"x\"\n",
    )
    .unwrap();
    let out = vigil(&[
        "baseline", "put", file_s, "--author", "a", "--reason", "r", "--db", db,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("rule[0]: unknown claim \"gpu[*].vbios\""),
        "{}",
        stderr(&out)
    );

    // With trusted baseline-signing keys, only a signed, unchanged file is accepted.
    std::fs::write(
        &file,
        "format = 1\nname = \"b\"\n[boot]\nsecure_boot = true\n",
    )
    .unwrap();
    let key = dir.join("signing.pk8");
    let out = vigil(&["baseline", "keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let keys = dir.join("trusted-keys");
    std::fs::write(&keys, stdout(&out)).unwrap();
    let keys = keys.to_str().unwrap();
    let put = || {
        vigil(&[
            "baseline",
            "put",
            file_s,
            "--author",
            "a",
            "--reason",
            "r",
            "--db",
            db,
            "--baseline-keys",
            keys,
        ])
    };
    let out = put();
    assert_eq!(code(&out), 2, "unsigned");
    assert!(
        stderr(&out).contains("signature: required"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        code(&vigil(&[
            "baseline",
            "sign",
            file_s,
            "--key",
            key.to_str().unwrap()
        ])),
        0
    );
    let out = put();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(
        &file,
        "format = 1\nname = \"b\"\n[boot]\nsecure_boot = false\n",
    )
    .unwrap();
    let out = put();
    assert_eq!(code(&out), 2, "changed after signing");
    assert!(
        stderr(&out).contains("does not verify with any of the 1 trusted"),
        "{}",
        stderr(&out)
    );
}
