//! Offline bundles: round trip, and every flipped byte is caught.

use rusqlite::Connection;
use serde_json::json;
use vigil_audit::{AuditEntry, AuditSigningKey, BundleError};

const ORIGIN: &str = "vigil.example/audit";

fn build(with_blob: bool) -> (AuditSigningKey, Connection) {
    let key = vigil_audit::load_key(ORIGIN, &vigil_audit::generate_key().unwrap()).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    let digest = vigil_audit::put_blob(&conn, b"tpm quote bytes").unwrap();
    let pruned = "cd".repeat(32);
    for i in 0..3 {
        let body = if with_blob {
            json!({"n": i, "evidence": [format!("sha256:{digest}"), format!("sha256:{pruned}")]})
        } else {
            json!({"n": i})
        };
        let e = AuditEntry {
            kind: "verdict".into(),
            time: 100 + i,
            subject: format!("node-{i}"),
            body,
        };
        vigil_audit::append(&conn, &e).unwrap();
        if i == 0 {
            vigil_audit::checkpoint(&conn, &key, ORIGIN, 150).unwrap();
        }
    }
    vigil_audit::checkpoint(&conn, &key, ORIGIN, 200).unwrap();
    // Not covered by a checkpoint: not exported.
    let late = AuditEntry {
        kind: "node.removed".into(),
        time: 300,
        subject: "node-0".into(),
        body: json!(null),
    };
    vigil_audit::append(&conn, &late).unwrap();
    (key, conn)
}

#[test]
fn bundle_round_trip() {
    let (key, conn) = build(true);
    let bundle = vigil_audit::export_bundle(&conn, &[key.public_key()]).unwrap();
    assert_eq!(bundle.entries.len(), 3);
    assert_eq!(bundle.checkpoints.len(), 2);
    assert_eq!(bundle.blobs.len(), 1);
    let bytes = bundle.to_json().unwrap();
    let report = vigil_audit::verify_bundle(&bytes, &[key.public_key()]).unwrap();
    assert_eq!(report.entries, 3);
    assert_eq!(report.checkpoints_verified, 2);
    assert_eq!(report.blobs_verified, 1);
    assert_eq!(report.missing_blobs, vec!["cd".repeat(32)]);
    assert_eq!(report.root_hash, vigil_audit::root_hash(&conn, 3).unwrap());
}

#[test]
fn every_flipped_byte_is_caught() {
    let (key, conn) = build(true);
    let bytes = vigil_audit::export_bundle(&conn, &[key.public_key()])
        .unwrap()
        .to_json()
        .unwrap();
    let trusted = [key.public_key()];
    vigil_audit::verify_bundle(&bytes, &trusted).unwrap();
    for pos in 0..bytes.len() {
        for bit in [0x01u8, 0x20] {
            let mut copy = bytes.clone();
            copy[pos] ^= bit;
            assert!(
                vigil_audit::verify_bundle(&copy, &trusted).is_err(),
                "flip {bit:#x} at byte {pos} accepted: ...{}...",
                String::from_utf8_lossy(
                    &bytes[pos.saturating_sub(30)..(pos + 30).min(bytes.len())]
                )
            );
        }
    }
}

#[test]
fn wrong_trusted_key_and_structural_errors() {
    let (key, conn) = build(false);
    let bundle = vigil_audit::export_bundle(&conn, &[key.public_key()]).unwrap();
    let bytes = bundle.to_json().unwrap();
    let other = vigil_audit::load_key(ORIGIN, &vigil_audit::generate_key().unwrap()).unwrap();
    assert_eq!(
        vigil_audit::verify_bundle(&bytes, &[other.public_key()]),
        Err(BundleError::TrustedKeyNotListed)
    );

    // The bundle lists the attacker's key too; the trusted key still decides.
    let mut listed = bundle.clone();
    listed
        .public_keys
        .push(other.public_key().to_verifier_key());
    let err =
        vigil_audit::verify_bundle(&listed.to_json().unwrap(), &[other.public_key()]).unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { position: 0, .. }),
        "{err}"
    );

    let mut dropped_entry = bundle.clone();
    dropped_entry.entries.pop();
    let err = vigil_audit::verify_bundle(&dropped_entry.to_json().unwrap(), &[key.public_key()])
        .unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::EntryCountMismatch {
                entries: 2,
                checkpoint_size: 3
            }
        ),
        "{err}"
    );

    let mut swapped = bundle.clone();
    swapped.entries.swap(1, 2);
    let err =
        vigil_audit::verify_bundle(&swapped.to_json().unwrap(), &[key.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::EntryIndex {
                position: 1,
                found: 2
            }
        ),
        "{err}"
    );

    let mut no_cp = bundle.clone();
    no_cp.checkpoints.clear();
    no_cp.entries.clear();
    let err =
        vigil_audit::verify_bundle(&no_cp.to_json().unwrap(), &[key.public_key()]).unwrap_err();
    assert_eq!(err, BundleError::NoCheckpoint);

    let mut reordered = bundle.clone();
    reordered.checkpoints.reverse();
    let err =
        vigil_audit::verify_bundle(&reordered.to_json().unwrap(), &[key.public_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::CheckpointShrinks {
                position: 1,
                size: 1,
                previous: 3
            }
        ),
        "{err}"
    );

    let mut readable = bundle.clone();
    readable.entries[1].entry.subject = "node-evil".into();
    let err =
        vigil_audit::verify_bundle(&readable.to_json().unwrap(), &[key.public_key()]).unwrap_err();
    assert_eq!(err, BundleError::EntryMismatch { index: 1 });

    let err = vigil_audit::verify_bundle(b"{}", &[key.public_key()]).unwrap_err();
    assert!(matches!(err, BundleError::Json(_)));
    let empty = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&empty).unwrap();
    assert!(matches!(
        vigil_audit::export_bundle(&empty, &[]),
        Err(vigil_audit::AuditError::NoCheckpoint)
    ));
}
