//! Offline audit bundles: everything an auditor needs to re-check the log
//! without the database or Vigil's code beyond this verifier.
//!
//! JSON layout (`format` = `"vigil-audit-bundle/1"`):
//! - `entries`: `[{index, encoding (base64 of the canonical encoding), entry (decoded, for reading)}]`,
//!   indices `0..n` where `n` is the size of the newest checkpoint;
//! - `checkpoints`: signed C2SP checkpoint notes, oldest first;
//! - `public_keys`: signed-note verifier keys (`name+hash+base64`);
//! - `blobs`: `[{digest (lowercase hex SHA-256), data (base64)}]` referenced by the entries.
//!
//! Every field is checked: unknown fields are refused, base64 must be
//! canonical, the decoded `entry` must equal the decoded `encoding`, leaves
//! must rebuild the signed roots, blobs must hash to their digest.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::blob::{get_blob, is_digest};
use crate::entry::AuditEntry;
use crate::error::AuditError;
use crate::merkle::{self, Hash, MemoryTree, leaf_hash, sha256};
use crate::note::{AuditPublicKey, verify_checkpoint};
use crate::store::{checkpoint_rows, from_sql, read_entries};

pub const BUNDLE_FORMAT: &str = "vigil-audit-bundle/1";
/// Largest bundle [`verify_bundle`] reads.
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;
pub const MAX_BUNDLE_KEYS: usize = 64;
pub const MAX_BUNDLE_CHECKPOINTS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub entries: Vec<BundleEntry>,
    pub checkpoints: Vec<String>,
    pub public_keys: Vec<String>,
    pub blobs: Vec<BundleBlob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    pub index: u64,
    pub encoding: String,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleBlob {
    pub digest: String,
    pub data: String,
}

/// Why a bundle was rejected. Positions are 0-based array positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is {len} bytes, limit {MAX_BUNDLE_BYTES}")]
    TooLarge { len: usize },
    #[error("bundle is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("bundle format {0:?} is not {BUNDLE_FORMAT:?}")]
    Format(String),
    #[error("bundle lists {count} {what}, limit {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("bundle public key {position}: {reason}")]
    PublicKey { position: usize, reason: String },
    #[error("none of the trusted keys is listed in the bundle's public keys")]
    TrustedKeyNotListed,
    #[error("bundle entry at position {position} has index {found}")]
    EntryIndex { position: usize, found: u64 },
    #[error("bundle entry {index}: encoding is not canonical base64: {reason}")]
    EntryBase64 { index: u64, reason: String },
    #[error("bundle entry {index}: encoding is invalid: {reason}")]
    EntryEncoding { index: u64, reason: String },
    #[error("bundle entry {index}: decoded `entry` differs from its encoding")]
    EntryMismatch { index: u64 },
    #[error("bundle has no checkpoint")]
    NoCheckpoint,
    #[error("bundle checkpoint {position}: {reason}")]
    Checkpoint { position: usize, reason: String },
    #[error(
        "bundle checkpoint {position} (size {size}) is smaller than the previous one (size {previous})"
    )]
    CheckpointShrinks {
        position: usize,
        size: u64,
        previous: u64,
    },
    #[error(
        "bundle checkpoint {position}: root for tree size {size} does not match the bundle's entries"
    )]
    CheckpointRootMismatch { position: usize, size: u64 },
    #[error("bundle has {entries} entries but its newest checkpoint covers {checkpoint_size}")]
    EntryCountMismatch { entries: u64, checkpoint_size: u64 },
    #[error("bundle blob {position}: digest is not 64 lowercase hex characters")]
    BlobDigest { position: usize },
    #[error("bundle blob {position}: data is not canonical base64")]
    BlobBase64 { position: usize },
    #[error("bundle blob {position}: data does not hash to its digest {digest}")]
    BlobMismatch { position: usize, digest: String },
    #[error("bundle blob {position}: digest {digest} appears twice")]
    BlobDuplicate { position: usize, digest: String },
}

/// What [`verify_bundle`] established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub entries: u64,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub root_hash: Hash,
    pub checkpoints_verified: usize,
    pub blobs_verified: usize,
    /// Blob digests referenced by entries but absent from the bundle (pruned evidence).
    pub missing_blobs: Vec<String>,
}

/// Exports the log up to its newest checkpoint, with all checkpoints,
/// `public_keys` (the keys that signed them, for the auditor's reference)
/// and the blobs the exported entries reference (those still stored).
pub fn export_bundle(
    conn: &Connection,
    public_keys: &[AuditPublicKey],
) -> Result<Bundle, AuditError> {
    let rows = checkpoint_rows(conn)?;
    let size = rows
        .iter()
        .map(|r| from_sql(r.tree_size))
        .max()
        .ok_or(AuditError::NoCheckpoint)?;
    let mut entries = Vec::new();
    let mut blobs: Vec<BundleBlob> = Vec::new();
    for stored in read_entries(conn, 0, size)? {
        let encoding = stored.entry.encode()?;
        for digest in stored.entry.blob_refs() {
            if blobs.iter().any(|b| b.digest == digest) {
                continue;
            }
            if let Some(data) = get_blob(conn, &digest)? {
                blobs.push(BundleBlob {
                    digest,
                    data: b64::encode(&data),
                });
            }
        }
        entries.push(BundleEntry {
            index: stored.index,
            encoding: b64::encode(&encoding),
            entry: stored.entry,
        });
    }
    Ok(Bundle {
        format: BUNDLE_FORMAT.to_owned(),
        entries,
        checkpoints: rows.into_iter().map(|r| r.note).collect(),
        public_keys: public_keys
            .iter()
            .map(AuditPublicKey::to_verifier_key)
            .collect(),
        blobs,
    })
}

impl Bundle {
    pub fn to_json(&self) -> Result<Vec<u8>, AuditError> {
        serde_json::to_vec(self).map_err(|e| BundleError::Json(e.to_string()).into())
    }
}

/// Verifies a serialized bundle with nothing but the `trusted` keys.
pub fn verify_bundle(
    bytes: &[u8],
    trusted: &[AuditPublicKey],
) -> Result<BundleReport, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge { len: bytes.len() });
    }
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::Format(
            bundle.format.chars().take(64).collect(),
        ));
    }
    limit("public keys", bundle.public_keys.len(), MAX_BUNDLE_KEYS)?;
    limit(
        "checkpoints",
        bundle.checkpoints.len(),
        MAX_BUNDLE_CHECKPOINTS,
    )?;

    let mut listed = Vec::new();
    for (position, text) in bundle.public_keys.iter().enumerate() {
        let key = AuditPublicKey::from_verifier_key(text).map_err(|e| BundleError::PublicKey {
            position,
            reason: e.to_string(),
        })?;
        listed.push(key);
    }
    if !trusted.iter().any(|t| listed.contains(t)) {
        return Err(BundleError::TrustedKeyNotListed);
    }

    let mut tree = MemoryTree::new();
    let mut referenced: Vec<String> = Vec::new();
    for (position, item) in bundle.entries.iter().enumerate() {
        if item.index != position as u64 {
            return Err(BundleError::EntryIndex {
                position,
                found: item.index,
            });
        }
        let index = item.index;
        let encoding = b64::decode(&item.encoding).map_err(|e| BundleError::EntryBase64 {
            index,
            reason: e.to_string(),
        })?;
        let entry = AuditEntry::decode(&encoding).map_err(|e| BundleError::EntryEncoding {
            index,
            reason: e.to_string(),
        })?;
        if entry != item.entry {
            return Err(BundleError::EntryMismatch { index });
        }
        for digest in entry.blob_refs() {
            if !referenced.contains(&digest) {
                referenced.push(digest);
            }
        }
        tree.push(leaf_hash(&encoding));
    }

    let mut previous: Option<(u64, Hash)> = None;
    for (position, text) in bundle.checkpoints.iter().enumerate() {
        let cp = verify_checkpoint(text, trusted).map_err(|e| BundleError::Checkpoint {
            position,
            reason: e.to_string(),
        })?;
        if cp.tree_size > tree.size() {
            return Err(BundleError::EntryCountMismatch {
                entries: tree.size(),
                checkpoint_size: cp.tree_size,
            });
        }
        let root = tree
            .root(cp.tree_size)
            .map_err(|e| BundleError::Checkpoint {
                position,
                reason: e.to_string(),
            })?;
        if root != cp.root_hash {
            return Err(BundleError::CheckpointRootMismatch {
                position,
                size: cp.tree_size,
            });
        }
        if let Some((previous_size, previous_root)) = previous {
            if cp.tree_size < previous_size {
                return Err(BundleError::CheckpointShrinks {
                    position,
                    size: cp.tree_size,
                    previous: previous_size,
                });
            }
            let proof =
                merkle::consistency_path(&mut tree, previous_size, cp.tree_size).map_err(|e| {
                    BundleError::Checkpoint {
                        position,
                        reason: e.to_string(),
                    }
                })?;
            merkle::verify_consistency(
                previous_size,
                cp.tree_size,
                &previous_root,
                &cp.root_hash,
                &proof,
            )
            .map_err(|e| BundleError::Checkpoint {
                position,
                reason: e.to_string(),
            })?;
        }
        previous = Some((cp.tree_size, cp.root_hash));
    }
    let (newest_size, root_hash) = previous.ok_or(BundleError::NoCheckpoint)?;
    if newest_size != tree.size() {
        return Err(BundleError::EntryCountMismatch {
            entries: tree.size(),
            checkpoint_size: newest_size,
        });
    }

    let mut seen: Vec<&str> = Vec::new();
    for (position, blob) in bundle.blobs.iter().enumerate() {
        if !is_digest(&blob.digest) {
            return Err(BundleError::BlobDigest { position });
        }
        if seen.contains(&blob.digest.as_str()) {
            return Err(BundleError::BlobDuplicate {
                position,
                digest: blob.digest.clone(),
            });
        }
        let data = b64::decode(&blob.data).map_err(|_| BundleError::BlobBase64 { position })?;
        if hex::encode(sha256(&data)) != blob.digest {
            return Err(BundleError::BlobMismatch {
                position,
                digest: blob.digest.clone(),
            });
        }
        seen.push(&blob.digest);
    }
    let missing_blobs = referenced
        .into_iter()
        .filter(|d| !seen.contains(&d.as_str()))
        .collect();
    Ok(BundleReport {
        entries: tree.size(),
        root_hash,
        checkpoints_verified: bundle.checkpoints.len(),
        blobs_verified: bundle.blobs.len(),
        missing_blobs,
    })
}

fn limit(what: &'static str, count: usize, max: usize) -> Result<(), BundleError> {
    if count > max {
        return Err(BundleError::TooMany { what, count, max });
    }
    Ok(())
}
