//! Vigil's tamper-evident audit log.
//!
//! - An append-only Merkle log with RFC 9162 hashing (leaf `SHA-256(0x00 ||
//!   entry)`, node `SHA-256(0x01 || left || right)`), stored in SQLite next
//!   to the verifier's own tables ([`migrate`], [`append`]).
//! - Entries are typed but open-ended ([`AuditEntry`]) with a canonical,
//!   versioned byte encoding (documented in [`entry`]).
//! - Signed checkpoints in the C2SP signed-note / tlog-checkpoint format
//!   ([`checkpoint`], [`verify_checkpoint`]).
//! - Inclusion and consistency proofs, with pure verifiers
//!   ([`verify_inclusion`], [`verify_consistency`]).
//! - Full re-verification ([`verify_log`]) and offline bundles
//!   ([`export_bundle`], [`verify_bundle`]).
//!
//! # Durability
//!
//! Open the database with `PRAGMA journal_mode=WAL` and
//! `PRAGMA synchronous=FULL`. All writes take `&Connection`; pass a
//! `rusqlite::Transaction` (it derefs) to make "record verdict + append audit
//! entry" one atomic commit. Nothing here commits the caller's transaction.

mod base64;
pub mod blob;
pub mod bundle;
pub mod entry;
mod error;
mod hexser;
pub mod merkle;
pub mod note;
mod store;
mod verify;

pub use blob::{get_blob, put_blob};
pub use bundle::{Bundle, BundleError, BundleReport, export_bundle, verify_bundle};
pub use entry::{AuditEntry, EncodingError};
pub use error::AuditError;
pub use merkle::{
    ConsistencyProof, Hash, InclusionProof, ProofError, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
pub use note::{
    AuditPublicKey, AuditSigningKey, Checkpoint, CheckpointError, KeyError, ParsedCheckpoint,
    generate_key, load_key, parse_checkpoint, verify_checkpoint,
};
pub use store::{
    AppendReceipt, SCHEMA_VERSION, StoredEntry, append, checkpoint, consistency_proof, get_entry,
    inclusion_proof, latest_checkpoint_note, migrate, read_entries, root_hash, tree_size,
};
pub use verify::{VerifyReport, verify_log};

/// Base64 as used in checkpoints and bundles (strict, canonical), exposed
/// for tools that display or build them.
pub mod b64 {
    pub use crate::base64::{Base64Error, decode, encode};
}
