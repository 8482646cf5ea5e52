//! TPM vendor trust: a directory of EK CA certificates (roots and intermediates, PEM or DER)
//! and the validation of an EK certificate chain against it.
//!
//! Self-signed certificates in the directory are trust anchors; the others are candidate
//! intermediates, used only if they themselves chain to an anchor. TPMs store only their
//! leaf EK certificate, and fetching intermediates from the certificate's AIA URL would make
//! verification depend on the network, so operators put the intermediates they accept in
//! the trust directory too.

use std::path::Path;

use x509_parser::prelude::*;

/// Longest chain accepted (leaf, up to three intermediates, root).
pub const MAX_CHAIN_DEPTH: usize = 5;
/// Most certificates loaded from a trust directory.
pub const MAX_TRUST_CERTS: usize = 10_000;
/// Largest certificate file read.
pub const MAX_CERT_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("trust directory {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("EK certificate does not parse: {0}")]
    Parse(String),
    #[error(
        "EK certificate chain: no issuer for {subject:?} in the trust directory (is the vendor's CA trusted?)"
    )]
    NoIssuer { subject: String },
    #[error("EK certificate chain: signature of {subject:?} does not verify with {issuer:?}")]
    BadSignature { subject: String, issuer: String },
    #[error(
        "EK certificate chain: {subject:?} is not valid at {at} (valid {not_before} .. {not_after})"
    )]
    Expired {
        subject: String,
        at: i64,
        not_before: String,
        not_after: String,
    },
    #[error("EK certificate chain: issuer {subject:?} is not a CA (basicConstraints)")]
    NotCa { subject: String },
    #[error(
        "EK certificate chain: {subject:?} is signed with an algorithm Vigil cannot verify ({detail})"
    )]
    UnsupportedAlgorithm { subject: String, detail: String },
    #[error("EK certificate chain longer than {MAX_CHAIN_DEPTH}")]
    TooDeep,
    #[error("EK certificate's public key is not the TPM's EK")]
    KeyMismatch,
}

/// A set of DER certificates: anchors and intermediates.
#[derive(Debug, Default, Clone)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
}

impl TrustStore {
    /// Loads every certificate (PEM bundles, or DER `.cer/.crt/.der`) below `dir`.
    pub fn load_dir(dir: &Path) -> Result<TrustStore, TrustError> {
        let mut store = TrustStore::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let load_error = |reason: String| TrustError::Load {
                path: path.display().to_string(),
                reason,
            };
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).map_err(|e| load_error(e.to_string()))? {
                    pending.push(entry.map_err(|e| load_error(e.to_string()))?.path());
                }
                continue;
            }
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !matches!(extension.as_str(), "pem" | "crt" | "cer" | "der") {
                continue;
            }
            let size = std::fs::metadata(&path)
                .map_err(|e| load_error(e.to_string()))?
                .len();
            if size > MAX_CERT_FILE_BYTES {
                return Err(load_error(format!(
                    "{size} bytes is too large for a certificate file"
                )));
            }
            let data = std::fs::read(&path).map_err(|e| load_error(e.to_string()))?;
            for der in certificates_in(&data) {
                store.add(der).map_err(&load_error)?;
            }
        }
        Ok(store)
    }

    /// Adds one DER certificate; self-signed ones become anchors.
    pub fn add(&mut self, der: Vec<u8>) -> Result<(), String> {
        if self.anchors.len() + self.intermediates.len() >= MAX_TRUST_CERTS {
            return Err(format!("more than {MAX_TRUST_CERTS} certificates"));
        }
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|e| format!("not a certificate: {e}"))?;
        let self_signed = cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok();
        if self_signed {
            self.anchors.push(der);
        } else {
            self.intermediates.push(der);
        }
        Ok(())
    }

    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    pub fn intermediate_count(&self) -> usize {
        self.intermediates.len()
    }

    /// Validates `leaf` up to an anchor at time `at` (Unix seconds). Returns the chain's
    /// subjects, leaf first.
    pub fn validate(&self, leaf: &[u8], at: i64) -> Result<Vec<String>, TrustError> {
        let (rest, leaf_cert) =
            X509Certificate::from_der(leaf).map_err(|e| TrustError::Parse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TrustError::Parse(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        let time = ASN1Time::from_timestamp(at).map_err(|e| TrustError::Parse(e.to_string()))?;
        let mut chain = vec![leaf_cert.subject().to_string()];
        check_validity(&leaf_cert, time, at)?;
        let mut current = leaf.to_vec();
        for _ in 0..MAX_CHAIN_DEPTH {
            let (_, cert) = X509Certificate::from_der(&current)
                .map_err(|e| TrustError::Parse(e.to_string()))?;
            // An anchor that issued `cert` ends the chain.
            if let Some(anchor) = self.find_issuer(&cert, &self.anchors, time, at)? {
                let (_, anchor_cert) = X509Certificate::from_der(anchor)
                    .map_err(|e| TrustError::Parse(e.to_string()))?;
                chain.push(anchor_cert.subject().to_string());
                return Ok(chain);
            }
            match self.find_issuer(&cert, &self.intermediates, time, at)? {
                Some(issuer) => {
                    let (_, issuer_cert) = X509Certificate::from_der(issuer)
                        .map_err(|e| TrustError::Parse(e.to_string()))?;
                    chain.push(issuer_cert.subject().to_string());
                    current = issuer.to_vec();
                }
                None => {
                    return Err(TrustError::NoIssuer {
                        subject: cert.subject().to_string(),
                    });
                }
            }
        }
        Err(TrustError::TooDeep)
    }

    /// The candidate whose subject is `cert`'s issuer and whose key verifies `cert`.
    fn find_issuer<'s>(
        &self,
        cert: &X509Certificate<'_>,
        candidates: &'s [Vec<u8>],
        time: ASN1Time,
        at: i64,
    ) -> Result<Option<&'s [u8]>, TrustError> {
        let mut name_matched: Option<TrustError> = None;
        for der in candidates {
            let Ok((_, issuer)) = X509Certificate::from_der(der) else {
                continue;
            };
            if issuer.subject() != cert.issuer() {
                continue;
            }
            match cert.verify_signature(Some(issuer.public_key())) {
                Ok(()) => {}
                Err(X509Error::SignatureUnsupportedAlgorithm) => {
                    // ring has no P-521 and no ECDSA with mismatched large hashes. A bad
                    // signature from another same-named candidate is the more useful error.
                    if name_matched.is_some() {
                        continue;
                    }
                    name_matched = Some(TrustError::UnsupportedAlgorithm {
                        subject: cert.subject().to_string(),
                        detail: format!(
                            "{} by a {} key",
                            cert.signature_algorithm.algorithm,
                            issuer.public_key().algorithm.algorithm
                        ),
                    });
                    continue;
                }
                Err(_) => {
                    name_matched = Some(TrustError::BadSignature {
                        subject: cert.subject().to_string(),
                        issuer: issuer.subject().to_string(),
                    });
                    continue;
                }
            }
            check_validity(&issuer, time, at)?;
            let is_ca = issuer
                .basic_constraints()
                .ok()
                .flatten()
                .is_some_and(|bc| bc.value.ca);
            if !is_ca {
                return Err(TrustError::NotCa {
                    subject: issuer.subject().to_string(),
                });
            }
            return Ok(Some(der));
        }
        match name_matched {
            Some(error) => Err(error),
            None => Ok(None),
        }
    }
}

fn check_validity(cert: &X509Certificate<'_>, time: ASN1Time, at: i64) -> Result<(), TrustError> {
    if cert.validity().is_valid_at(time) {
        Ok(())
    } else {
        Err(TrustError::Expired {
            subject: cert.subject().to_string(),
            at,
            not_before: cert.validity().not_before.to_string(),
            not_after: cert.validity().not_after.to_string(),
        })
    }
}

/// DER certificates in a file: every PEM CERTIFICATE block, or the file itself as DER.
pub fn certificates_in(data: &[u8]) -> Vec<Vec<u8>> {
    if data.windows(10).any(|w| w == b"-----BEGIN") {
        Pem::iter_from_buffer(data)
            .filter_map(Result::ok)
            .filter(|pem| pem.label == "CERTIFICATE")
            .map(|pem| pem.contents)
            .collect()
    } else {
        vec![data.to_vec()]
    }
}

/// True if the certificate's public key is this RSA modulus / EC point.
pub fn certificate_key_matches(
    cert_der: &[u8],
    key: &crate::evidence::tpm::structures::PublicKey,
) -> Result<(), TrustError> {
    use crate::evidence::tpm::structures::PublicKey as TpmKey;
    use x509_parser::public_key::PublicKey as X509Key;
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| TrustError::Parse(e.to_string()))?;
    let parsed = cert
        .public_key()
        .parsed()
        .map_err(|e| TrustError::Parse(e.to_string()))?;
    let strip = |b: &[u8]| {
        b.iter()
            .copied()
            .skip_while(|x| *x == 0)
            .collect::<Vec<u8>>()
    };
    let matches = match (&parsed, key) {
        (X509Key::RSA(rsa), TpmKey::Rsa { modulus, .. }) => strip(rsa.modulus) == strip(modulus),
        (X509Key::EC(point), TpmKey::Ecc { x, y, .. }) => {
            point.data().get(1..) == Some([x.as_slice(), y.as_slice()].concat().as_slice())
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(TrustError::KeyMismatch)
    }
}
