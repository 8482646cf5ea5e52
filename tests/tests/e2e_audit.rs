//! The audit log end to end: verdicts from real attestations land in the tamper-evident log,
//! `vigil audit verify` passes, an exported bundle verifies in a fresh directory with only
//! the key, and tampering with the database or the bundle is detected and named.

use vigil_e2e::*;

#[test]
fn verdicts_are_audited_and_tampering_is_detected() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("audit");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let attester = start_attester(&tpm, &dir.join("attester"), "audited-node", &[]);
    for _ in 0..3 {
        let out = vigil(&[
            "verify",
            "--node",
            &attester.address,
            "--db",
            db,
            "--tofu",
            "--allow-no-baseline",
            "--json",
        ]);
        assert_eq!(code(&out), 0, "{}", stdout(&out));
    }
    let out = vigil(&["audit", "list", "--db", db, "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["entry"]["kind"], "verdict");
    assert_eq!(entries[0]["entry"]["subject"], "audited-node");
    assert!(
        entries[0]["entry"]["body"]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let out = vigil(&["audit", "verify", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 entries"), "{}", stdout(&out));
    let key = stdout(&vigil(&["audit", "key", "--db", db]))
        .trim()
        .to_owned();
    let out = vigil(&["audit", "prove", "1", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // An auditor keeps the checkpoint; later the log must still contain that exact tree.
    let proof: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let saved = dir.join("checkpoint.note");
    std::fs::write(&saved, proof["checkpoint"].as_str().unwrap()).unwrap();
    let out = vigil(&[
        "audit",
        "verify",
        "--db",
        db,
        "--key",
        &key,
        "--from",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("consistent with the checkpoint of size 3"),
        "{}",
        stdout(&out)
    );
    let forged = dir.join("forged.note");
    std::fs::write(
        &forged,
        proof["checkpoint"].as_str().unwrap().replacen('3', "4", 1),
    )
    .unwrap();
    let out = vigil(&[
        "audit",
        "verify",
        "--db",
        db,
        "--key",
        &key,
        "--from",
        forged.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));

    // Offline: the bundle alone, in a fresh directory, with the key.
    let bundle = dir.join("bundle.json");
    assert_eq!(
        code(&vigil(&[
            "audit",
            "export",
            "--out",
            bundle.to_str().unwrap(),
            "--db",
            db
        ])),
        0
    );
    let offline = TempDir::new("audit-offline");
    let copy = offline.join("bundle.json");
    std::fs::copy(&bundle, &copy).unwrap();
    let out = vigil(&[
        "audit",
        "verify-bundle",
        copy.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // One flipped byte in the bundle: the node name of the first entry.
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"audited-node")
        .unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let out = vigil(&[
        "audit",
        "verify-bundle",
        copy.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("TAMPERED"), "{}", stdout(&out));
    // Another key does not verify the genuine bundle either.
    let other = TempDir::new("audit-other");
    let other_db = other.join("other.db");
    let _ = vigil(&["history", "--db", other_db.to_str().unwrap()]);
    let other_key = {
        let store = vigil_verifier::store::Store::open(&other_db).unwrap();
        store.audit_public_key().to_verifier_key()
    };
    let out = vigil(&[
        "audit",
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--key",
        &other_key,
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));

    // Filters.
    let count = |args: &[&str]| {
        let mut all = vec!["audit", "list", "--db", db, "--json"];
        all.extend_from_slice(args);
        let out = vigil(&all);
        serde_json::from_str::<serde_json::Value>(&stdout(&out))
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&["--status", "pass"]), 3);
    assert_eq!(count(&["--status", "fail"]), 0);
    assert_eq!(count(&["--node", "another-node"]), 0);
    assert_eq!(count(&["--since", "2100-01-01T00:00:00Z"]), 0);

    // Re-appraisal of a stored verdict agrees; with its stored evidence altered it does not.
    let out = vigil(&["audit", "reappraise", "0", "--db", db]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("AGREES"), "{}", stdout(&out));
    {
        let store = vigil_verifier::store::Store::open(std::path::Path::new(db)).unwrap();
        store
            .connection()
            .execute_batch("UPDATE audit_blob SET data = X'0a00' || data")
            .unwrap();
    }
    let out = vigil(&["audit", "reappraise", "0", "--db", db]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("DISAGREES") && stdout(&out).contains("altered"),
        "{}",
        stdout(&out)
    );

    // An attacker with the database rewrites the subject of entry 1 (dropping the
    // append-only guard first): `vigil audit verify` names entry 1.
    {
        let store = vigil_verifier::store::Store::open(std::path::Path::new(db)).unwrap();
        store
            .connection()
            .execute_batch(
                "DROP TRIGGER audit_entry_no_update;
                 UPDATE audit_entry SET subject = 'someone-else' WHERE idx = 1;",
            )
            .unwrap();
    }
    let out = vigil(&["audit", "verify", "--db", db, "--key", &key]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("TAMPERED") && stdout(&out).contains('1'),
        "{}",
        stdout(&out)
    );
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32-byte hash")
}

#[test]
fn the_audit_service_serves_records_checkpoints_and_proofs_an_auditor_can_check() {
    use vigil_proto::v1::audit_client::AuditClient;
    use vigil_proto::v1::prove_request::Proof;
    use vigil_proto::v1::{AuditQuery, CheckpointRequest, ProveRequest, PublicKeysRequest};

    let tpm = Swtpm::start();
    let dir = TempDir::new("audit-grpc");
    let attester = start_attester(&tpm, &dir.join("attester"), "grpc-audited", &[]);
    let verifier = start_verifier(&dir.join("vigil.db"), &["--tofu", "--allow-no-baseline"]);
    for _ in 0..3 {
        let out = vigil(&[
            "verify",
            "--node",
            &attester.address,
            "--verifier",
            &verifier.url(),
        ]);
        assert_eq!(code(&out), 0, "{}", stdout(&out));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut audit = AuditClient::connect(verifier.url()).await.unwrap();
        let mut stream = audit
            .query(AuditQuery {
                node_id: "grpc-audited".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut records = Vec::new();
        while let Some(record) = stream.message().await.unwrap() {
            records.push(record);
        }
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.kind == "verdict"));
        let mut failing = audit
            .query(AuditQuery {
                status: "fail".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(failing.message().await.unwrap().is_none());

        // The auditor takes the key, checks the checkpoint's signature, then the proofs.
        let keys = audit
            .public_keys(PublicKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .verifier_keys;
        let trusted = vigil_audit::AuditPublicKey::from_verifier_key(&keys[0]).unwrap();
        let checkpoint = audit
            .checkpoint(CheckpointRequest {})
            .await
            .unwrap()
            .into_inner();
        let verified = vigil_audit::verify_checkpoint(&checkpoint.note, &[trusted]).unwrap();
        assert_eq!(verified.tree_size, 3);
        let root = hash(&checkpoint.root_hash);

        let proof = audit
            .prove(ProveRequest {
                proof: Some(Proof::InclusionOfIndex(1)),
            })
            .await
            .unwrap()
            .into_inner();
        let path: Vec<[u8; 32]> = proof.path.iter().map(|h| hash(h)).collect();
        assert_eq!(hash(&proof.leaf_hash), hash(&records[1].leaf_hash));
        vigil_audit::verify_inclusion(1, 3, &hash(&proof.leaf_hash), &path, &root).unwrap();
        assert!(
            vigil_audit::verify_inclusion(1, 3, &hash(&records[0].leaf_hash), &path, &root)
                .is_err()
        );

        let consistency = audit
            .prove(ProveRequest {
                proof: Some(Proof::ConsistencyFromSize(1)),
            })
            .await
            .unwrap()
            .into_inner();
        let path: Vec<[u8; 32]> = consistency.path.iter().map(|h| hash(h)).collect();
        // A one-entry tree's root is its leaf hash.
        vigil_audit::verify_consistency(1, 3, &hash(&records[0].leaf_hash), &root, &path).unwrap();
        assert!(
            vigil_audit::verify_consistency(1, 3, &hash(&records[1].leaf_hash), &root, &path)
                .is_err()
        );
    });
}
