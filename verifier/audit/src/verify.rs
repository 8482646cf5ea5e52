//! Full re-verification of the stored log, as an auditor would do it.

use rusqlite::Connection;
use serde::Serialize;

use crate::entry::AuditEntry;
use crate::error::AuditError;
use crate::merkle::{self, Hash, MemoryTree, leaf_hash};
use crate::note::{AuditPublicKey, verify_checkpoint};
use crate::store::{checkpoint_rows, from_sql, hash_from_blob};

/// What [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub tree_size: u64,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub root_hash: Hash,
    pub checkpoints_verified: usize,
    /// Size covered by the newest signed checkpoint (0 when none).
    pub checkpointed_size: u64,
    /// Entries appended after the newest checkpoint: consistent with the
    /// stored tree but not yet covered by a signature.
    pub unsigned_entries: u64,
}

/// Recomputes every leaf from the stored entry bytes, rebuilds the whole
/// tree, checks every stored tree node, every checkpoint's signature (by any
/// of `trusted` keys, so rotated keys still verify), its root against the
/// recomputed root at its size, and consistency between consecutive
/// checkpoints. The first problem found is returned, naming the entry index
/// or checkpoint id. Memory: about 64 bytes per entry.
///
/// What this can and cannot show: rewriting an entry, deleting or reordering
/// entries is named by index as long as the stored leaf hashes were left
/// alone; an attacker who also rewrites the tree nodes is still caught by
/// the first signed checkpoint covering the change (named by id).
pub fn verify_log(
    conn: &Connection,
    trusted: &[AuditPublicKey],
) -> Result<VerifyReport, AuditError> {
    let stored = load_stored_nodes(conn)?;
    let stored_leaves = stored.first().map_or(&[][..], Vec::as_slice);

    let mut tree = MemoryTree::new();
    let mut stmt =
        conn.prepare("SELECT idx, kind, time, subject, encoding FROM audit_entry ORDER BY idx")?;
    let mut rows = stmt.query([])?;
    let mut expected: u64 = 0;
    while let Some(row) = rows.next()? {
        let index = from_sql(row.get(0)?);
        if index != expected {
            return Err(AuditError::EntryMissing { index: expected });
        }
        let encoding: Vec<u8> = row.get(4)?;
        let entry = AuditEntry::decode(&encoding)
            .map_err(|source| AuditError::EntryEncoding { index, source })?;
        if entry.kind != row.get::<_, String>(1)? {
            return Err(AuditError::EntryFieldMismatch {
                index,
                field: "kind",
            });
        }
        if entry.time != row.get::<_, i64>(2)? {
            return Err(AuditError::EntryFieldMismatch {
                index,
                field: "time",
            });
        }
        if entry.subject != row.get::<_, String>(3)? {
            return Err(AuditError::EntryFieldMismatch {
                index,
                field: "subject",
            });
        }
        let leaf = leaf_hash(&encoding);
        let recorded = usize::try_from(index)
            .ok()
            .and_then(|i| stored_leaves.get(i));
        match recorded {
            None => return Err(AuditError::NodeMissing { level: 0, index }),
            Some(h) if *h != leaf => return Err(AuditError::EntryHashMismatch { index }),
            Some(_) => {}
        }
        tree.push(leaf);
        expected += 1;
    }
    drop(rows);
    let size = tree.size();
    if stored_leaves.len() as u64 > size {
        // A leaf was recorded for an entry that is gone: trailing deletion.
        return Err(AuditError::EntryMissing { index: size });
    }
    for (level, stored_row) in stored.iter().enumerate().skip(1) {
        let rebuilt = tree.level(level);
        for (i, hash) in stored_row.iter().enumerate() {
            if rebuilt.get(i) != Some(hash) {
                return Err(AuditError::NodeMismatch {
                    level: level as u32,
                    index: i as u64,
                });
            }
        }
        if let Some(missing) = rebuilt.get(stored_row.len()).map(|_| stored_row.len()) {
            return Err(AuditError::NodeMissing {
                level: level as u32,
                index: missing as u64,
            });
        }
    }
    if tree.height() > stored.len().max(1) {
        return Err(AuditError::NodeMissing {
            level: stored.len() as u32,
            index: 0,
        });
    }

    let mut earlier: Option<(i64, u64, Hash)> = None;
    let mut checkpoints_verified = 0;
    for row in checkpoint_rows(conn)? {
        let id = row.id;
        let cp = verify_checkpoint(&row.note, trusted)
            .map_err(|source| AuditError::CheckpointInvalid { id, source })?;
        let field_mismatch = |field| AuditError::CheckpointFieldMismatch { id, field };
        if row.tree_size < 0 || cp.tree_size != from_sql(row.tree_size) {
            return Err(field_mismatch("tree_size"));
        }
        if cp.root_hash.as_slice() != row.root.as_slice() {
            return Err(field_mismatch("root"));
        }
        if cp.time != row.time {
            return Err(field_mismatch("time"));
        }
        if cp.origin != row.origin {
            return Err(field_mismatch("origin"));
        }
        if cp.tree_size > size {
            return Err(AuditError::CheckpointBeyondLog {
                id,
                size: cp.tree_size,
                log_size: size,
            });
        }
        if tree.root(cp.tree_size)? != cp.root_hash {
            return Err(AuditError::CheckpointRootMismatch {
                id,
                size: cp.tree_size,
            });
        }
        if let Some((earlier_id, earlier_size, earlier_root)) = earlier {
            if cp.tree_size < earlier_size {
                return Err(AuditError::CheckpointShrinks {
                    id,
                    size: cp.tree_size,
                    earlier_id,
                    earlier_size,
                });
            }
            let proof = merkle::consistency_path(&mut tree, earlier_size, cp.tree_size)?;
            merkle::verify_consistency(
                earlier_size,
                cp.tree_size,
                &earlier_root,
                &cp.root_hash,
                &proof,
            )
            .map_err(|source| AuditError::CheckpointInconsistent {
                earlier_id,
                id,
                source,
            })?;
        }
        earlier = Some((id, cp.tree_size, cp.root_hash));
        checkpoints_verified += 1;
    }
    let checkpointed_size = earlier.map_or(0, |(_, s, _)| s);
    Ok(VerifyReport {
        tree_size: size,
        root_hash: tree.root(size)?,
        checkpoints_verified,
        checkpointed_size,
        unsigned_entries: size - checkpointed_size,
    })
}

/// All stored tree nodes, per level, checked to be contiguous from index 0.
fn load_stored_nodes(conn: &Connection) -> Result<Vec<Vec<Hash>>, AuditError> {
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut stmt = conn.prepare("SELECT level, idx, hash FROM audit_node ORDER BY level, idx")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let level_raw: i64 = row.get(0)?;
        let index = from_sql(row.get(1)?);
        let level = u32::try_from(level_raw).unwrap_or(u32::MAX);
        if level >= 64 {
            return Err(AuditError::NodeMismatch { level, index });
        }
        while levels.len() <= level as usize {
            levels.push(Vec::new());
        }
        let Some(row_hashes) = levels.get_mut(level as usize) else {
            return Err(AuditError::NodeMismatch { level, index });
        };
        let expected = row_hashes.len() as u64;
        if index != expected {
            // Lower index missing (index > expected); negative indices map to 0 and are caught here too.
            return Err(AuditError::NodeMissing {
                level,
                index: expected,
            });
        }
        let hash = hash_from_blob(row.get(2)?, || {
            format!("tree node level {level} index {index}")
        })?;
        row_hashes.push(hash);
    }
    Ok(levels)
}
