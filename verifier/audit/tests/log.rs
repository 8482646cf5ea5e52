//! The SQLite log: append, transactions, checkpoints, blobs and full
//! verification, including each kind of tampering named by index or id.

use rusqlite::Connection;
use serde_json::json;
use vigil_audit::{AuditEntry, AuditError, AuditPublicKey, AuditSigningKey, CheckpointError};

const ORIGIN: &str = "vigil.example/audit";

fn key() -> AuditSigningKey {
    vigil_audit::load_key(ORIGIN, &vigil_audit::generate_key().unwrap()).unwrap()
}

fn entry(i: i64) -> AuditEntry {
    AuditEntry {
        kind: if i % 3 == 0 {
            "node.registered"
        } else {
            "verdict"
        }
        .into(),
        time: 1_700_000_000 + i,
        subject: format!("node-{}", i % 4),
        body: json!({"n": i, "status": "affirming"}),
    }
}

/// A log of `n` entries with checkpoints after 5 and after all entries.
fn log(n: i64, key: &AuditSigningKey) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    for i in 0..n {
        vigil_audit::append(&conn, &entry(i)).unwrap();
        if i == 4 {
            vigil_audit::checkpoint(&conn, key, ORIGIN, 1_700_000_100).unwrap();
        }
    }
    vigil_audit::checkpoint(&conn, key, ORIGIN, 1_700_000_200).unwrap();
    conn
}

/// What someone with the database file can do: the triggers only stop the
/// application, not an attacker.
fn drop_guards(conn: &Connection) {
    for t in ["entry", "node", "checkpoint"] {
        for op in ["update", "delete"] {
            conn.execute_batch(&format!("DROP TRIGGER audit_{t}_no_{op}"))
                .unwrap();
        }
    }
}

#[test]
fn clean_log_verifies() {
    let key = key();
    let conn = log(12, &key);
    let report = vigil_audit::verify_log(&conn, &[key.public_key()]).unwrap();
    assert_eq!(report.tree_size, 12);
    assert_eq!(report.checkpoints_verified, 2);
    assert_eq!(report.checkpointed_size, 12);
    assert_eq!(report.unsigned_entries, 0);
    assert_eq!(report.root_hash, vigil_audit::root_hash(&conn, 12).unwrap());
    vigil_audit::append(&conn, &entry(12)).unwrap();
    assert_eq!(
        vigil_audit::verify_log(&conn, &[key.public_key()])
            .unwrap()
            .unsigned_entries,
        1
    );
}

#[test]
fn empty_log_verifies_and_migrate_is_idempotent() {
    let key = key();
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    vigil_audit::migrate(&conn).unwrap();
    assert_eq!(vigil_audit::tree_size(&conn).unwrap(), 0);
    let cp = vigil_audit::checkpoint(&conn, &key, ORIGIN, 5).unwrap();
    assert_eq!(cp.tree_size, 0);
    assert_eq!(cp.root_hash, vigil_audit::merkle::empty_root());
    vigil_audit::verify_log(&conn, &[key.public_key()]).unwrap();
    // The verifier's PRAGMA user_version is left alone.
    let uv: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(uv, 0);
}

#[test]
fn newer_schema_is_refused() {
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    conn.execute("INSERT INTO audit_schema_version VALUES (2)", [])
        .unwrap();
    assert!(matches!(
        vigil_audit::migrate(&conn),
        Err(AuditError::SchemaTooNew {
            found: 2,
            supported: 1
        })
    ));
}

#[test]
fn append_joins_the_callers_transaction() {
    let mut conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    conn.execute_batch("CREATE TABLE verdict (node TEXT)")
        .unwrap();
    {
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO verdict VALUES ('n1')", []).unwrap();
        let receipt = vigil_audit::append(&tx, &entry(0)).unwrap();
        assert_eq!(receipt.index, 0);
        tx.rollback().unwrap();
    }
    assert_eq!(
        vigil_audit::tree_size(&conn).unwrap(),
        0,
        "rolled-back append must vanish with the verdict"
    );
    let nodes: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_node", [], |r| r.get(0))
        .unwrap();
    assert_eq!(nodes, 0);
    {
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO verdict VALUES ('n1')", []).unwrap();
        vigil_audit::append(&tx, &entry(0)).unwrap();
        vigil_audit::append(&tx, &entry(1)).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(vigil_audit::tree_size(&conn).unwrap(), 2);
    let got = vigil_audit::get_entry(&conn, 1).unwrap().unwrap();
    assert_eq!(got.entry, entry(1));
    assert_eq!(vigil_audit::read_entries(&conn, 0, 10).unwrap().len(), 2);
    assert!(vigil_audit::get_entry(&conn, 2).unwrap().is_none());
}

#[test]
fn invalid_entry_is_refused_and_leaves_nothing() {
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    let mut bad = entry(0);
    bad.body = json!({"score": 0.5});
    assert!(matches!(
        vigil_audit::append(&conn, &bad),
        Err(AuditError::Encoding(_))
    ));
    assert_eq!(vigil_audit::tree_size(&conn).unwrap(), 0);
}

#[test]
fn application_cannot_rewrite_history() {
    let key = key();
    let conn = log(3, &key);
    assert!(
        conn.execute("UPDATE audit_entry SET subject = 'x' WHERE idx = 0", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM audit_entry WHERE idx = 2", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_node", []).is_err());
    assert!(
        conn.execute("UPDATE audit_checkpoint SET note = ''", [])
            .is_err()
    );
}

#[test]
fn proofs_from_the_store_verify_against_signed_checkpoints() {
    let key = key();
    let conn = log(9, &key);
    let notes: Vec<String> = conn
        .prepare("SELECT note FROM audit_checkpoint ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let trusted = [key.public_key()];
    let old = vigil_audit::verify_checkpoint(&notes[0], &trusted).unwrap();
    let new = vigil_audit::verify_checkpoint(&notes[1], &trusted).unwrap();
    assert_eq!((old.tree_size, new.tree_size), (5, 9));
    let incl = vigil_audit::inclusion_proof(&conn, 3, new.tree_size).unwrap();
    incl.verify(&new.root_hash).unwrap();
    assert!(incl.verify(&old.root_hash).is_err());
    let cons = vigil_audit::consistency_proof(&conn, old.tree_size, new.tree_size).unwrap();
    cons.verify(&old.root_hash, &new.root_hash).unwrap();
    assert!(cons.verify(&new.root_hash, &new.root_hash).is_err());
    assert_eq!(
        vigil_audit::latest_checkpoint_note(&conn)
            .unwrap()
            .as_deref(),
        Some(notes[1].as_str())
    );
    let json = serde_json::to_value(&incl).unwrap();
    assert_eq!(json["leaf_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn wrong_key_is_refused() {
    let key = key();
    let conn = log(6, &key);
    let other = key_with_name(ORIGIN);
    let err = vigil_audit::verify_log(&conn, &[other.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::CheckpointInvalid {
                id: 1,
                source: CheckpointError::NoTrustedSignature
            }
        ),
        "{err}"
    );
}

fn key_with_name(name: &str) -> AuditSigningKey {
    vigil_audit::load_key(name, &vigil_audit::generate_key().unwrap()).unwrap()
}

#[test]
fn rotated_keys_verify_when_both_are_trusted() {
    let old_key = key();
    let conn = log(4, &old_key);
    let new_key = key_with_name("vigil.example/audit-2");
    vigil_audit::append(&conn, &entry(100)).unwrap();
    vigil_audit::checkpoint(&conn, &new_key, ORIGIN, 1_700_000_300).unwrap();
    let both = [old_key.public_key(), new_key.public_key()];
    assert_eq!(
        vigil_audit::verify_log(&conn, &both)
            .unwrap()
            .checkpoints_verified,
        2
    );
    let err = vigil_audit::verify_log(&conn, &[old_key.public_key()]).unwrap_err();
    assert!(
        matches!(err, AuditError::CheckpointInvalid { id: 2, .. }),
        "{err}"
    );
}

fn verify(conn: &Connection, key: &AuditSigningKey) -> AuditError {
    let trusted: [AuditPublicKey; 1] = [key.public_key()];
    vigil_audit::verify_log(conn, &trusted).unwrap_err()
}

#[test]
fn tamper_changed_entry_bytes_names_the_entry() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    // Re-encode entry 6 with a different verdict: valid encoding, wrong bytes.
    let mut forged = entry(6);
    forged.body = json!({"n": 6, "status": "contraindicated"});
    conn.execute(
        "UPDATE audit_entry SET encoding = ?1 WHERE idx = 6",
        [forged.encode().unwrap()],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::EntryHashMismatch { index: 6 }),
        "{err}"
    );
    assert!(err.to_string().contains("entry 6"));
}

#[test]
fn tamper_flipped_byte_names_the_entry() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute("UPDATE audit_entry SET encoding = CAST(REPLACE(CAST(encoding AS TEXT), 'affirming', 'affirminG') AS BLOB) WHERE idx = 8", [])
        .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::EntryHashMismatch { index: 8 }),
        "{err}"
    );
}

#[test]
fn tamper_changed_query_column_names_the_entry() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute(
        "UPDATE audit_entry SET subject = 'node-9' WHERE idx = 2",
        [],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(
            err,
            AuditError::EntryFieldMismatch {
                index: 2,
                field: "subject"
            }
        ),
        "{err}"
    );
}

#[test]
fn tamper_deleted_entry_names_the_gap() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute("DELETE FROM audit_entry WHERE idx = 4", [])
        .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::EntryMissing { index: 4 }),
        "{err}"
    );
}

#[test]
fn tamper_deleted_last_entry_is_named() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute("DELETE FROM audit_entry WHERE idx = 9", [])
        .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::EntryMissing { index: 9 }),
        "{err}"
    );
}

#[test]
fn tamper_reordered_entries_names_the_first() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute_batch(
        "UPDATE audit_entry SET idx = -1 WHERE idx = 3;
         UPDATE audit_entry SET idx = 3 WHERE idx = 7;
         UPDATE audit_entry SET idx = 7 WHERE idx = -1;",
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::EntryHashMismatch { index: 3 }),
        "{err}"
    );
}

#[test]
fn tamper_rewritten_tree_is_caught_by_the_checkpoint() {
    // The attacker rewrites entry 2 AND every stored node above it: only the
    // signed checkpoints can tell, and they are named.
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    let mut forged = entry(2);
    forged.subject = "node-evil".into();
    conn.execute(
        "UPDATE audit_entry SET encoding = ?1, subject = 'node-evil' WHERE idx = 2",
        [forged.encode().unwrap()],
    )
    .unwrap();
    conn.execute_batch("DELETE FROM audit_node").unwrap();
    let mut tree = vigil_audit::merkle::MemoryTree::new();
    for e in vigil_audit::read_entries(&conn, 0, 100).unwrap() {
        tree.push(e.leaf_hash);
    }
    for level in 0..tree.height() {
        for (i, h) in tree.level(level).iter().enumerate() {
            conn.execute(
                "INSERT INTO audit_node VALUES (?1, ?2, ?3)",
                rusqlite::params![level as i64, i as i64, h.as_slice()],
            )
            .unwrap();
        }
    }
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::CheckpointRootMismatch { id: 1, size: 5 }),
        "{err}"
    );
}

#[test]
fn tamper_altered_checkpoint_is_named() {
    let key = key();
    // Note text changed: signature no longer verifies.
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute(
        "UPDATE audit_checkpoint SET note = REPLACE(note, '\n10\n', '\n11\n') WHERE id = 2",
        [],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(
            &err,
            AuditError::CheckpointInvalid {
                id: 2,
                source: CheckpointError::BadSignature { .. }
            }
        ),
        "{err}"
    );

    // Stored column changed, note intact.
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute(
        "UPDATE audit_checkpoint SET root = zeroblob(32) WHERE id = 1",
        [],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(
            err,
            AuditError::CheckpointFieldMismatch {
                id: 1,
                field: "root"
            }
        ),
        "{err}"
    );

    // A validly signed checkpoint for a root the log does not have.
    let conn = log(10, &key);
    drop_guards(&conn);
    let fake =
        vigil_audit::note::sign_checkpoint(&key, ORIGIN, 10, &[7u8; 32], 1_700_000_200).unwrap();
    conn.execute(
        "UPDATE audit_checkpoint SET note = ?1, root = ?2 WHERE id = 2",
        rusqlite::params![fake.note, [7u8; 32]],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::CheckpointRootMismatch { id: 2, size: 10 }),
        "{err}"
    );

    // Checkpoint claiming more entries than the log has.
    let conn = log(10, &key);
    drop_guards(&conn);
    let root = vigil_audit::root_hash(&conn, 10).unwrap();
    let beyond =
        vigil_audit::note::sign_checkpoint(&key, ORIGIN, 11, &root, 1_700_000_200).unwrap();
    conn.execute(
        "UPDATE audit_checkpoint SET note = ?1, tree_size = 11 WHERE id = 2",
        [beyond.note],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(
            err,
            AuditError::CheckpointBeyondLog {
                id: 2,
                size: 11,
                log_size: 10
            }
        ),
        "{err}"
    );

    // Checkpoints out of order (size shrinks).
    let conn = log(10, &key);
    drop_guards(&conn);
    vigil_audit::checkpoint(&conn, &key, ORIGIN, 1_700_000_300).unwrap();
    let early = vigil_audit::root_hash(&conn, 5).unwrap();
    let small = vigil_audit::note::sign_checkpoint(&key, ORIGIN, 5, &early, 1_700_000_300).unwrap();
    conn.execute(
        "UPDATE audit_checkpoint SET note = ?1, tree_size = 5, root = ?2 WHERE id = 3",
        rusqlite::params![small.note, early],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(
            err,
            AuditError::CheckpointShrinks {
                id: 3,
                size: 5,
                earlier_id: 2,
                earlier_size: 10
            }
        ),
        "{err}"
    );
}

#[test]
fn tamper_tree_node_is_named() {
    let key = key();
    let conn = log(10, &key);
    drop_guards(&conn);
    conn.execute(
        "UPDATE audit_node SET hash = zeroblob(32) WHERE level = 2 AND idx = 1",
        [],
    )
    .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::NodeMismatch { level: 2, index: 1 }),
        "{err}"
    );
    conn.execute("DELETE FROM audit_node WHERE level = 2 AND idx = 1", [])
        .unwrap();
    let err = verify(&conn, &key);
    assert!(
        matches!(err, AuditError::NodeMissing { level: 2, index: 1 }),
        "{err}"
    );
}

#[test]
fn blobs_are_content_addressed_and_checked() {
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    let d1 = vigil_audit::put_blob(&conn, b"quote bytes").unwrap();
    let d2 = vigil_audit::put_blob(&conn, b"quote bytes").unwrap();
    assert_eq!(d1, d2);
    assert_eq!(
        d1,
        hex::encode(ring::digest::digest(&ring::digest::SHA256, b"quote bytes"))
    );
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_blob", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        vigil_audit::get_blob(&conn, &d1).unwrap().unwrap(),
        b"quote bytes"
    );
    assert!(
        vigil_audit::get_blob(&conn, &"0".repeat(64))
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        vigil_audit::get_blob(&conn, "ABC"),
        Err(AuditError::BadDigest(_))
    ));
    assert!(matches!(
        vigil_audit::get_blob(&conn, &d1.to_uppercase()),
        Err(AuditError::BadDigest(_))
    ));
    conn.execute("UPDATE audit_blob SET data = X'00'", [])
        .unwrap();
    assert!(matches!(
        vigil_audit::get_blob(&conn, &d1),
        Err(AuditError::BlobCorrupt { .. })
    ));
    let huge = vec![0u8; vigil_audit::blob::MAX_BLOB_BYTES + 1];
    assert!(matches!(
        vigil_audit::put_blob(&conn, &huge),
        Err(AuditError::BlobTooLarge { .. })
    ));
}

#[test]
fn durable_file_database_round_trip() {
    let dir = std::env::temp_dir().join(format!("vigil-audit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.db");
    let _ = std::fs::remove_file(&path);
    let key = key();
    {
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .unwrap();
        vigil_audit::migrate(&conn).unwrap();
        for i in 0..5 {
            let tx = conn.transaction().unwrap();
            vigil_audit::append(&tx, &entry(i)).unwrap();
            tx.commit().unwrap();
        }
        vigil_audit::checkpoint(&conn, &key, ORIGIN, 9).unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        vigil_audit::verify_log(&conn, &[key.public_key()])
            .unwrap()
            .tree_size,
        5
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
