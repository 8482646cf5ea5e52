//! The report signature: ECDSA P-384 with SHA-384 over request ‖ response (without the
//! signature), by the key in the leaf of the device chain. NVIDIA devices sign with raw
//! r ‖ s (96 bytes), ring's `ECDSA_P384_SHA384_FIXED`.

use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use x509_parser::prelude::*;

use crate::spdm::AttestationReport;

pub const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub const OID_SECP384R1: &str = "1.3.132.0.34";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("leaf certificate: {0}")]
    LeafKey(String),
    #[error("report signature does not verify with the leaf certificate's key")]
    Invalid,
}

/// The uncompressed P-384 point of a certificate's key.
pub fn p384_public_key(cert: &X509Certificate<'_>) -> Result<Vec<u8>, SignatureError> {
    let spki = cert.public_key();
    let algorithm = spki.algorithm.algorithm.to_id_string();
    if algorithm != OID_EC_PUBLIC_KEY {
        return Err(SignatureError::LeafKey(format!(
            "key algorithm {algorithm} is not an EC key"
        )));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    if curve.as_deref() != Some(OID_SECP384R1) {
        return Err(SignatureError::LeafKey(format!(
            "key curve {} is not P-384",
            curve.unwrap_or_else(|| "(missing)".into())
        )));
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// ECDSA P-384/SHA-384 (raw r ‖ s) over `message`.
pub fn verify_p384(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key)
        .verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// Verifies the report's signature with the key of the DER leaf certificate.
pub fn verify_report_signature(
    report: &AttestationReport,
    leaf_der: &[u8],
) -> Result<(), SignatureError> {
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|e| SignatureError::LeafKey(format!("does not parse: {e}")))?;
    let key = p384_public_key(&leaf)?;
    verify_p384(&key, report.signed_bytes(), report.signature())
}
