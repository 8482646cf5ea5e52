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

pub mod blob;
pub mod bundle;
pub mod entry;
mod error;
mod hexser;
pub mod merkle;
pub mod note;
mod store;
mod verify;

pub use blob::{blob_digest, get_blob, put_blob};
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
    AppendReceipt, SCHEMA_VERSION, StoredEntry, append, append_encoded, checkpoint,
    consistency_proof, get_entry, inclusion_proof, latest_checkpoint_note, migrate, read_entries,
    root_hash, tree_size,
};
pub use verify::{VerifyReport, verify_log};

/// Base64 as used in checkpoints and bundles, exposed for tools that display
/// or build them: standard alphabet (RFC 4648 §4), padded, strict.
///
/// Strict on purpose: a decoder that accepted non-zero padding bits, missing
/// padding or whitespace would let two different texts carry the same bytes,
/// and a flipped character in a checkpoint or bundle could go unnoticed. The
/// `base64` crate's `STANDARD` engine requires canonical padding and zero
/// trailing bits.
pub mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    /// Why a base64 text was rejected.
    pub use base64::DecodeError as Base64Error;

    /// Encodes `data` as padded standard base64.
    pub fn encode(data: &[u8]) -> String {
        STANDARD.encode(data)
    }

    /// Decodes padded standard base64, rejecting any text that is not the
    /// unique canonical encoding of its bytes.
    pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
        STANDARD.decode(text)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_all_lengths() {
            for len in 0..40u8 {
                let data: Vec<u8> = (0..len)
                    .map(|i| i.wrapping_mul(37).wrapping_add(len))
                    .collect();
                assert_eq!(decode(&encode(&data)).unwrap(), data);
            }
            assert_eq!(encode(b"foobar"), "Zm9vYmFy");
            assert_eq!(encode(b"fo"), "Zm8=");
        }

        #[test]
        fn rejects_non_canonical_text() {
            assert_eq!(decode("Zm8="), Ok(b"fo".to_vec()));
            for text in [
                "Zm9",      // truncated
                "Zm8",      // missing padding
                "Zm9=Zm9v", // padding before the end
                "Zm9=",     // same bytes as "Zm8=", non-zero padding bits
                "Zm!v",     // outside the alphabet
                "Zm-_",     // URL-safe alphabet
                "Zm 8=",    // whitespace
                "Z===", "Zm8==",
            ] {
                assert!(decode(text).is_err(), "{text:?}");
            }
        }
    }
}
