//! One error enum for the crate; every variant names what failed and where.

use std::path::PathBuf;

/// Why a certificate, key file, TLS configuration or dev PKI could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM/DER input is larger than the crate accepts.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { what: String, size: u64, limit: u64 },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing a file (or creating its directory) failed.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that `write_dev_certs` would create already exists and `force` was not given.
    #[error("{path} already exists (pass force to overwrite)")]
    AlreadyExists { path: PathBuf },
    /// A PEM file is malformed or holds none of the blocks it must hold.
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    /// A DER certificate does not parse as X.509.
    #[error("certificate {what} does not parse: {reason}")]
    CertificateParse { what: String, reason: String },
    /// The subject alternative name extension cannot be read (duplicate or malformed).
    #[error("certificate subjectAltName: {reason}")]
    SubjectAltName { reason: String },
    /// The certificate carries more subjectAltName entries than the crate reads.
    #[error("certificate subjectAltName has {count} entries, more than the limit of {limit}")]
    TooManyNames { count: usize, limit: usize },
    /// A `urn:vigil:node:<id>` URI is malformed, or more than one is present.
    #[error("certificate node id: {reason}")]
    NodeId { reason: String },
    /// Generating a dev key or certificate failed.
    #[error("generating {what}: {reason}")]
    Generate { what: String, reason: String },
}
