//! The crate's error type. Tamper findings name the first bad entry index or
//! the bad checkpoint id, so an auditor knows where to look.

use crate::bundle::BundleError;
use crate::entry::EncodingError;
use crate::merkle::ProofError;
use crate::note::{CheckpointError, KeyError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit schema version {found} is newer than this library supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Bundle(#[from] BundleError),

    // Requests outside the log.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {requested} exceeds the log's {size} entries")]
    SizeBeyondLog { requested: u64, size: u64 },
    #[error("first tree size {first} exceeds second tree size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("blob is {len} bytes, limit {max}")]
    BlobTooLarge { len: usize, max: usize },
    #[error("blob digest {0:?} is not 64 lowercase hex characters")]
    BadDigest(String),
    #[error("no checkpoint has been made yet")]
    NoCheckpoint,

    // Tamper findings.
    #[error("audit entry {index} is missing (gap in entry indices)")]
    EntryMissing { index: u64 },
    #[error("audit entry {index}: encoding is invalid: {source}")]
    EntryEncoding {
        index: u64,
        #[source]
        source: EncodingError,
    },
    #[error("audit entry {index}: stored column `{field}` disagrees with the hashed encoding")]
    EntryFieldMismatch { index: u64, field: &'static str },
    #[error("audit entry {index}: bytes do not hash to the leaf recorded when it was appended")]
    EntryHashMismatch { index: u64 },
    #[error("audit tree node level {level} index {index} is missing")]
    NodeMissing { level: u32, index: u64 },
    #[error(
        "audit tree node level {level} index {index} does not match the hash recomputed from the entries"
    )]
    NodeMismatch { level: u32, index: u64 },
    #[error("stored hash of {what} is {len} bytes, expected 32")]
    StoredHashLength { what: String, len: usize },
    #[error("stored blob {digest} does not hash to its digest")]
    BlobCorrupt { digest: String },
    #[error("checkpoint {id}: {source}")]
    CheckpointInvalid {
        id: i64,
        #[source]
        source: CheckpointError,
    },
    #[error("checkpoint {id}: stored `{field}` disagrees with its signed note")]
    CheckpointFieldMismatch { id: i64, field: &'static str },
    #[error("checkpoint {id}: tree size {size} exceeds the log's {log_size} entries")]
    CheckpointBeyondLog { id: i64, size: u64, log_size: u64 },
    #[error(
        "checkpoint {id}: signed root for tree size {size} does not match the root recomputed from the entries"
    )]
    CheckpointRootMismatch { id: i64, size: u64 },
    #[error(
        "checkpoint {id} (size {size}) is smaller than the earlier checkpoint {earlier_id} (size {earlier_size})"
    )]
    CheckpointShrinks {
        id: i64,
        size: u64,
        earlier_id: i64,
        earlier_size: u64,
    },
    #[error("checkpoints {earlier_id} and {id} are not consistent: {source}")]
    CheckpointInconsistent {
        earlier_id: i64,
        id: i64,
        #[source]
        source: ProofError,
    },
}

impl From<crate::merkle::MissingNode> for AuditError {
    fn from(m: crate::merkle::MissingNode) -> Self {
        AuditError::NodeMissing {
            level: m.level,
            index: m.index,
        }
    }
}
