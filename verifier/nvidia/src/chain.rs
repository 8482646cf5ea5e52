//! Certificate chains to a pinned NVIDIA root: the device identity chain that signs SPDM
//! reports and the chain inside each RIM. PEM in, leaf first; every link is checked for
//! names, signature (ECDSA P-384/P-256 via ring), validity at the verification time, CA
//! status, key usage, path length and unknown critical extensions. The chain may end with
//! the pinned root itself or with a certificate the pinned root issued; any other root ends
//! verification.

use serde::Serialize;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;

use crate::cache::{CacheStats, DigestCache, digest_parts};
use crate::time::format_rfc3339;

/// Longest chain accepted (NVIDIA GPU chains have five certificates, RIM chains four).
pub const MAX_CHAIN_CERTS: usize = 8;
/// Largest PEM text accepted for a chain.
pub const MAX_CHAIN_PEM_BYTES: usize = 64 * 1024;

pub const OID_ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
pub const OID_ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
const ACCEPTED_SIGNATURE_ALGORITHMS: [&str; 2] = [OID_ECDSA_WITH_SHA384, OID_ECDSA_WITH_SHA256];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate chain is empty")]
    Empty,
    #[error("certificate chain text of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("certificate chain has more than {max} certificates")]
    TooMany { max: usize },
    #[error("certificate {index}: PEM: {reason}")]
    Pem { index: usize, reason: String },
    #[error("certificate {index}: not a DER certificate: {reason}")]
    Parse { index: usize, reason: String },
    #[error(
        "certificate {index} ({subject}) is not valid at {at}: valid {not_before} .. {not_after}"
    )]
    NotValidAt {
        index: usize,
        subject: String,
        at: String,
        not_before: String,
        not_after: String,
    },
    #[error(
        "certificate {index} ({subject}) names issuer {issuer_name}, but the next certificate is {issuer}"
    )]
    NameMismatch {
        index: usize,
        subject: String,
        issuer_name: String,
        issuer: String,
    },
    #[error("certificate {index} ({subject}): signature does not verify with the key of {issuer}")]
    BadSignature {
        index: usize,
        subject: String,
        issuer: String,
    },
    #[error(
        "certificate {index} ({subject}): signature algorithm {algorithm} is not accepted (ECDSA with SHA-384 or SHA-256)"
    )]
    UnsupportedAlgorithm {
        index: usize,
        subject: String,
        algorithm: String,
    },
    #[error(
        "certificate {index} ({subject}) issues a certificate but is not a CA (basicConstraints)"
    )]
    NotCa { index: usize, subject: String },
    #[error("certificate {index} ({subject}): key usage lacks {needed}")]
    KeyUsage {
        index: usize,
        subject: String,
        needed: &'static str,
    },
    #[error(
        "certificate {index} ({subject}): path length constraint {limit} allows fewer CAs below it than the chain has"
    )]
    PathLength {
        index: usize,
        subject: String,
        limit: u32,
    },
    #[error("certificate {index} ({subject}): critical extension {oid} is not understood")]
    UnknownCriticalExtension {
        index: usize,
        subject: String,
        oid: String,
    },
    #[error("certificate {index} ({subject}): {reason}")]
    BadExtension {
        index: usize,
        subject: String,
        reason: String,
    },
    #[error("chain ends at {subject}, which is neither the pinned root ({root}) nor issued by it")]
    UntrustedRoot { subject: String, root: String },
    #[error("no trusted root is configured")]
    NoRoots,
}

/// One certificate of a verified chain, for display and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub signature_algorithm: String,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub sha256: [u8; 32],
    /// True for the certificate Vigil pins (whether or not the chain included it).
    pub pinned_root: bool,
}

/// A chain that verified at a given time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedChain {
    /// Leaf first, pinned root last.
    pub certificates: Vec<CertificateSummary>,
    /// The chain is valid from the latest notBefore to the earliest notAfter.
    pub valid_from: i64,
    pub valid_until: i64,
    /// Whether the supplied chain carried the pinned root itself.
    pub root_supplied: bool,
    #[serde(skip)]
    pub leaf_der: Vec<u8>,
}

impl VerifiedChain {
    pub fn valid_until_rfc3339(&self) -> String {
        format_rfc3339(self.valid_until)
    }
}

/// DER certificates from PEM text (blocks labelled CERTIFICATE, in order).
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, ChainError> {
    if pem.len() > MAX_CHAIN_PEM_BYTES {
        return Err(ChainError::TooLarge {
            size: pem.len(),
            max: MAX_CHAIN_PEM_BYTES,
        });
    }
    let mut out = Vec::new();
    for (index, block) in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        if index >= MAX_CHAIN_CERTS {
            return Err(ChainError::TooMany {
                max: MAX_CHAIN_CERTS,
            });
        }
        let block = block.map_err(|e| ChainError::Pem {
            index,
            reason: e.to_string(),
        })?;
        if block.label != "CERTIFICATE" {
            return Err(ChainError::Pem {
                index,
                reason: format!("block labelled {:?}, expected CERTIFICATE", block.label),
            });
        }
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err(ChainError::Empty);
    }
    Ok(out)
}

fn parse_cert(der: &[u8], index: usize) -> Result<X509Certificate<'_>, ChainError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| ChainError::Parse {
        index,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(ChainError::Parse {
            index,
            reason: format!("{} bytes after the certificate", rest.len()),
        });
    }
    Ok(cert)
}

/// Verifies `chain` (DER, leaf first) up to `root_der` at Unix time `at`.
pub fn verify_chain(
    chain: &[Vec<u8>],
    root_der: &[u8],
    at: i64,
) -> Result<VerifiedChain, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    if chain.len() > MAX_CHAIN_CERTS {
        return Err(ChainError::TooMany {
            max: MAX_CHAIN_CERTS,
        });
    }
    let root_supplied = chain.last().is_some_and(|last| last.as_slice() == root_der);
    // The path checked: the supplied certificates, then the pinned root unless supplied.
    let mut path: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    if !root_supplied {
        path.push(root_der);
    }
    let root_index = path.len() - 1;
    let certs = path
        .iter()
        .enumerate()
        .map(|(i, der)| parse_cert(der, i))
        .collect::<Result<Vec<_>, _>>()?;

    let mut summaries = Vec::with_capacity(certs.len());
    let (mut valid_from, mut valid_until) = (i64::MIN, i64::MAX);
    for (index, cert) in certs.iter().enumerate() {
        let subject = cert.subject().to_string();
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        if at < not_before || at > not_after {
            return Err(ChainError::NotValidAt {
                index,
                subject,
                at: format_rfc3339(at),
                not_before: format_rfc3339(not_before),
                not_after: format_rfc3339(not_after),
            });
        }
        valid_from = valid_from.max(not_before);
        valid_until = valid_until.min(not_after);
        check_critical_extensions(cert, index)?;
        summaries.push(CertificateSummary {
            subject,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: format_rfc3339(not_before),
            not_after: format_rfc3339(not_after),
            signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
            sha256: sha256(path.get(index).copied().unwrap_or_default()),
            pinned_root: index == root_index,
        });
    }

    for (index, pair) in certs.windows(2).enumerate() {
        let [child, issuer] = pair else { continue };
        check_link(child, index, issuer, index + 1, &certs, root_index)?;
    }
    if let Some(leaf) = certs.first()
        && let Some(usage) = key_usage(leaf, 0)?
        && !usage.digital_signature()
    {
        return Err(ChainError::KeyUsage {
            index: 0,
            subject: leaf.subject().to_string(),
            needed: "digitalSignature",
        });
    }
    Ok(VerifiedChain {
        certificates: summaries,
        valid_from,
        valid_until,
        root_supplied,
        leaf_der: chain.first().cloned().unwrap_or_default(),
    })
}

/// `child` (at `index`) is issued by `issuer` (at `issuer_index`).
fn check_link(
    child: &X509Certificate<'_>,
    index: usize,
    issuer: &X509Certificate<'_>,
    issuer_index: usize,
    certs: &[X509Certificate<'_>],
    root_index: usize,
) -> Result<(), ChainError> {
    let subject = child.subject().to_string();
    if child.issuer() != issuer.subject() {
        // The last supplied certificate is a root of its own: say so plainly.
        if issuer_index == root_index && child.issuer() == child.subject() {
            return Err(ChainError::UntrustedRoot {
                subject,
                root: issuer.subject().to_string(),
            });
        }
        return Err(ChainError::NameMismatch {
            index,
            subject,
            issuer_name: child.issuer().to_string(),
            issuer: issuer.subject().to_string(),
        });
    }
    let algorithm = child.signature_algorithm.algorithm.to_id_string();
    if !ACCEPTED_SIGNATURE_ALGORITHMS.contains(&algorithm.as_str()) {
        return Err(ChainError::UnsupportedAlgorithm {
            index,
            subject,
            algorithm,
        });
    }
    if child.verify_signature(Some(issuer.public_key())).is_err() {
        return Err(ChainError::BadSignature {
            index,
            subject,
            issuer: issuer.subject().to_string(),
        });
    }
    let issuer_subject = issuer.subject().to_string();
    let constraints = issuer
        .basic_constraints()
        .map_err(|e| ChainError::BadExtension {
            index: issuer_index,
            subject: issuer_subject.clone(),
            reason: format!("basicConstraints: {e}"),
        })?;
    let Some(constraints) = constraints.filter(|c| c.value.ca) else {
        return Err(ChainError::NotCa {
            index: issuer_index,
            subject: issuer_subject,
        });
    };
    // CA certificates between this issuer and the leaf (self-issued ones do not count).
    let cas_below = certs
        .get(1..issuer_index)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.subject() != c.issuer())
        .count();
    if let Some(limit) = constraints.value.path_len_constraint
        && cas_below > limit as usize
    {
        return Err(ChainError::PathLength {
            index: issuer_index,
            subject: issuer_subject,
            limit,
        });
    }
    if let Some(usage) = key_usage(issuer, issuer_index)?
        && !usage.key_cert_sign()
    {
        return Err(ChainError::KeyUsage {
            index: issuer_index,
            subject: issuer_subject,
            needed: "keyCertSign",
        });
    }
    Ok(())
}

fn key_usage<'a>(
    cert: &'a X509Certificate<'_>,
    index: usize,
) -> Result<Option<&'a KeyUsage>, ChainError> {
    cert.key_usage()
        .map(|ku| ku.map(|ext| ext.value))
        .map_err(|e| ChainError::BadExtension {
            index,
            subject: cert.subject().to_string(),
            reason: format!("keyUsage: {e}"),
        })
}

/// RFC 5280 4.2: a critical extension the verifier does not understand rejects the
/// certificate.
fn check_critical_extensions(cert: &X509Certificate<'_>, index: usize) -> Result<(), ChainError> {
    for ext in cert.extensions() {
        if !ext.critical {
            continue;
        }
        match ext.parsed_extension() {
            ParsedExtension::UnsupportedExtension { .. } => {
                return Err(ChainError::UnknownCriticalExtension {
                    index,
                    subject: cert.subject().to_string(),
                    oid: ext.oid.to_id_string(),
                });
            }
            ParsedExtension::ParseError { error } => {
                return Err(ChainError::BadExtension {
                    index,
                    subject: cert.subject().to_string(),
                    reason: format!("critical extension {}: {error}", ext.oid.to_id_string()),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Remembers chains that verified, keyed by the SHA-256 of root and certificates. A hit is
/// used only when the verification time falls inside the chain's validity window, so the
/// answer is the same as verifying again (the only time-dependent check is validity).
#[derive(Debug)]
pub struct ChainCache {
    cache: DigestCache<VerifiedChain>,
}

/// Most chains remembered; the cache is cleared when full (fleets have few distinct chains
/// per GPU model, and a miss only costs a verification).
pub const MAX_CACHED_CHAINS: usize = 4096;

impl Default for ChainCache {
    fn default() -> Self {
        Self::with_capacity(MAX_CACHED_CHAINS)
    }
}

impl ChainCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        ChainCache {
            cache: DigestCache::with_capacity(capacity),
        }
    }

    fn key(chain: &[Vec<u8>], root_der: &[u8]) -> [u8; 32] {
        digest_parts(std::iter::once(root_der).chain(chain.iter().map(Vec::as_slice)))
    }

    /// Like [`verify_chain`], answering from the cache when it can.
    pub fn verify(
        &self,
        chain: &[Vec<u8>],
        root_der: &[u8],
        at: i64,
    ) -> Result<VerifiedChain, ChainError> {
        let key = Self::key(chain, root_der);
        if let Some(hit) = self
            .cache
            .get(&key, |hit| hit.valid_from <= at && at <= hit.valid_until)
        {
            return Ok(hit);
        }
        let verified = verify_chain(chain, root_der, at)?;
        self.cache.insert(key, verified.clone());
        Ok(verified)
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

/// Verifies `chain` to one of `roots` and says which. The candidates are the root the chain
/// carries, else the roots named as the issuer of its last certificate; with none, the first
/// root is tried so that the error says why the chain is not trusted.
pub fn verify_chain_to_roots<'r>(
    chain: &[Vec<u8>],
    roots: &'r [Vec<u8>],
    at: i64,
    cache: Option<&ChainCache>,
) -> Result<(VerifiedChain, &'r [u8]), ChainError> {
    let verify = |root: &[u8]| match cache {
        Some(cache) => cache.verify(chain, root, at),
        None => verify_chain(chain, root, at),
    };
    let candidates = root_candidates(chain, roots);
    let mut first_error = None;
    for root in candidates {
        match verify(root) {
            Ok(verified) => return Ok((verified, root)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ChainError::NoRoots))
}

fn root_candidates<'r>(chain: &[Vec<u8>], roots: &'r [Vec<u8>]) -> Vec<&'r [u8]> {
    if roots.len() <= 1 {
        return roots.iter().map(Vec::as_slice).collect();
    }
    let Some(last) = chain.last() else {
        return roots.iter().take(1).map(Vec::as_slice).collect();
    };
    let supplied: Vec<&[u8]> = roots
        .iter()
        .filter(|r| r.as_slice() == last.as_slice())
        .map(Vec::as_slice)
        .collect();
    if !supplied.is_empty() {
        return supplied;
    }
    let issuer = parse_cert(last, chain.len().saturating_sub(1))
        .ok()
        .map(|c| c.issuer().as_raw().to_vec());
    let named: Vec<&[u8]> = roots
        .iter()
        .filter(|r| {
            parse_cert(r, 0).is_ok_and(|root| Some(root.subject().as_raw()) == issuer.as_deref())
        })
        .map(Vec::as_slice)
        .collect();
    if named.is_empty() {
        roots.iter().take(1).map(Vec::as_slice).collect()
    } else {
        named
    }
}
