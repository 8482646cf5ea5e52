//! One error type for signing, key handling and offline verification.
//!
//! Every variant says which part of the token, which claim or which key failed, so that an
//! orchestrator's log line is enough to tell a forged token from a stale one.

use std::fmt;
use std::path::PathBuf;

use crate::status::Status;

/// The three base64url segments of a compact JWS, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsPart {
    Header,
    Payload,
    Signature,
}

impl fmt::Display for JwsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwsPart::Header => "header",
            JwsPart::Payload => "payload",
            JwsPart::Signature => "signature",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EarError {
    #[error("token is {len} bytes, larger than the {max}-byte limit")]
    TokenTooLarge { len: usize, max: usize },

    #[error("token has {parts} dot-separated parts, a compact JWS has 3")]
    Structure { parts: usize },

    #[error("JWS {part} is empty")]
    EmptyPart { part: JwsPart },

    #[error("JWS {part} is not unpadded base64url: {detail}")]
    Base64 { part: JwsPart, detail: String },

    #[error("JWS {part} is not the expected JSON: {detail}")]
    Json { part: JwsPart, detail: String },

    #[error("algorithm {alg:?} refused: only ES256 is accepted")]
    AlgorithmRefused { alg: String },

    #[error("JWS header type {typ:?} refused: expected \"JWT\"")]
    TypeRefused { typ: String },

    #[error("JWS header has critical extensions {crit:?}, none of which are understood")]
    CriticalHeader { crit: String },

    #[error("JWS header has no \"kid\"")]
    MissingKid,

    #[error("unknown kid {kid:?}: no key with that id in the key set")]
    UnknownKid { kid: String },

    #[error("key {kid:?} in the key set is unusable: {reason}")]
    UnsupportedKey { kid: String, reason: String },

    #[error("signature is {len} bytes, ES256 signatures are 64 (raw r||s)")]
    SignatureLength { len: usize },

    #[error("signature does not verify with key {kid}")]
    SignatureInvalid { kid: String },

    #[error("token expired at {exp}, now {now}")]
    Expired { exp: i64, now: i64 },

    #[error("token issued at {iat}, later than now {now} plus {skew} s allowed clock skew")]
    NotYetValid { iat: i64, now: i64, skew: i64 },

    #[error("claim {claim}: {reason}")]
    InvalidClaim { claim: String, reason: String },

    #[error(
        "submodule {submod:?}: ear_status {status:?} is better than its trust vector allows ({vector_status:?})"
    )]
    InconsistentStatus {
        submod: String,
        status: Status,
        vector_status: Status,
    },

    #[error("key file {path}: {source}")]
    KeyIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("key file {path} is {len} bytes, larger than the {max}-byte limit")]
    KeyFileTooLarge { path: PathBuf, len: u64, max: u64 },

    #[error("key file {path} is not a usable P-256 PKCS#8 key: {reason}")]
    KeyRejected { path: PathBuf, reason: String },

    #[error("key generation failed in the system random source")]
    KeyGeneration,

    #[error("signing failed in the system random source")]
    Signing,

    #[error("claims could not be serialised: {detail}")]
    Serialize { detail: String },
}

impl EarError {
    pub(crate) fn claim(claim: impl Into<String>, reason: impl Into<String>) -> Self {
        EarError::InvalidClaim {
            claim: claim.into(),
            reason: reason.into(),
        }
    }
}
