//! OCSP (RFC 6960) responses, checked offline: a response someone fetched earlier (or a
//! stapled one) is accepted for a certificate only if it is a successful basic response,
//! signed by the certificate's issuer or by a responder the issuer delegated to
//! (id-kp-OCSPSigning), names exactly this certificate (CertID), and is fresh at the
//! verification time. Without such a response the revocation status is unknown; it is never
//! assumed good.

use serde::Serialize;
use x509_parser::prelude::*;

use crate::der::{self, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, Tlv};
use crate::time::{format_rfc3339, parse_rfc3339};

pub const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
pub const OID_OCSP_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Largest response accepted.
pub const MAX_OCSP_BYTES: usize = 64 * 1024;
/// Most single responses and embedded certificates read.
const MAX_ITEMS: usize = 64;
/// Clock skew tolerated on thisUpdate/producedAt being in the future.
pub const CLOCK_SKEW_SECS: i64 = 300;
/// How old a response without nextUpdate may be.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE_SECS: i64 = 7 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("OCSP response of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("OCSP response: malformed {field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    #[error("OCSP response status {0} is not successful")]
    NotSuccessful(u8),
    #[error("OCSP response type {0} is not id-pkix-ocsp-basic")]
    NotBasic(String),
    #[error("OCSP response does not cover certificate serial {serial}")]
    NotForCertificate { serial: String },
    #[error("OCSP responder: {0}")]
    Responder(String),
    #[error("OCSP response signature does not verify")]
    BadSignature,
    #[error("OCSP response signature algorithm {0} is not accepted")]
    UnsupportedAlgorithm(String),
    #[error(
        "OCSP response is not fresh at {at}: this update {this_update}, next update {next_update}"
    )]
    Stale {
        at: String,
        this_update: String,
        next_update: String,
    },
    #[error("OCSP response nonce {found} differs from the request's {expected}")]
    NonceMismatch { expected: String, found: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CertStatus {
    Good,
    Revoked {
        revoked_at: String,
        /// RFC 5280 CRLReason (6 = certificateHold).
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A response that verified for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OcspStatus {
    pub status: CertStatus,
    pub this_update: String,
    pub next_update: Option<String>,
    pub produced_at: String,
}

fn malformed(field: &'static str) -> impl Fn(String) -> OcspError {
    move |reason| OcspError::Malformed { field, reason }
}

fn expect_tag<'a>(
    tlv: Option<&Tlv<'a>>,
    tag: u8,
    field: &'static str,
) -> Result<Tlv<'a>, OcspError> {
    match tlv {
        Some(t) if t.tag == tag => Ok(*t),
        Some(t) => Err(OcspError::Malformed {
            field,
            reason: format!("tag 0x{:02x}, expected 0x{tag:02x}", t.tag),
        }),
        None => Err(OcspError::Malformed {
            field,
            reason: "missing".into(),
        }),
    }
}

/// `YYYYMMDDHHMMSS[.fff]Z`.
fn generalized_time(tlv: Tlv<'_>, field: &'static str) -> Result<i64, OcspError> {
    let bad = || OcspError::Malformed {
        field,
        reason: "not a GeneralizedTime".into(),
    };
    if tlv.tag != 0x18 {
        return Err(bad());
    }
    let s = std::str::from_utf8(tlv.value).map_err(|_| bad())?;
    let digits = s.strip_suffix('Z').ok_or_else(bad)?;
    let digits = digits.split('.').next().unwrap_or_default();
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let part = |r: std::ops::Range<usize>| digits.get(r).unwrap_or_default();
    parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        part(0..4),
        part(4..6),
        part(6..8),
        part(8..10),
        part(10..12),
        part(12..14)
    ))
    .map_err(|_| bad())
}

fn hash(algorithm: &str, data: &[u8]) -> Option<Vec<u8>> {
    let alg = match algorithm {
        OID_SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        OID_SHA256 => &ring::digest::SHA256,
        OID_SHA384 => &ring::digest::SHA384,
        OID_SHA512 => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(alg, data).as_ref().to_vec())
}

struct SingleResponse<'a> {
    hash_algorithm: String,
    issuer_name_hash: &'a [u8],
    issuer_key_hash: &'a [u8],
    serial: &'a [u8],
    status: CertStatus,
    this_update: i64,
    next_update: Option<i64>,
}

fn parse_single(tlv: Tlv<'_>) -> Result<SingleResponse<'_>, OcspError> {
    let parts = der::children(tlv.value).map_err(malformed("SingleResponse"))?;
    let cert_id = expect_tag(parts.first(), TAG_SEQUENCE, "CertID")?;
    let id = der::children(cert_id.value).map_err(malformed("CertID"))?;
    let alg = expect_tag(id.first(), TAG_SEQUENCE, "CertID hashAlgorithm")?;
    let alg_oid = der::children(alg.value).map_err(malformed("CertID hashAlgorithm"))?;
    let alg_oid = expect_tag(alg_oid.first(), TAG_OID, "CertID hashAlgorithm")?;
    let hash_algorithm =
        der::oid_to_string(alg_oid.value).map_err(malformed("CertID hashAlgorithm"))?;
    let issuer_name_hash = expect_tag(id.get(1), TAG_OCTET_STRING, "issuerNameHash")?.value;
    let issuer_key_hash = expect_tag(id.get(2), TAG_OCTET_STRING, "issuerKeyHash")?.value;
    let serial = expect_tag(id.get(3), der::TAG_INTEGER, "serialNumber")?.value;
    let status_tlv = parts.get(1).ok_or(OcspError::Malformed {
        field: "certStatus",
        reason: "missing".into(),
    })?;
    let status = match status_tlv.tag {
        0x80 => CertStatus::Good,
        0x82 => CertStatus::Unknown,
        0xA1 => {
            let info = der::children(status_tlv.value).map_err(malformed("RevokedInfo"))?;
            let when = generalized_time(
                *info.first().ok_or(OcspError::Malformed {
                    field: "revocationTime",
                    reason: "missing".into(),
                })?,
                "revocationTime",
            )?;
            let reason = match info.get(1) {
                Some(t) if t.tag == 0xA0 => {
                    let inner =
                        der::single(t.value, 0x0A).map_err(malformed("revocationReason"))?;
                    inner.value.first().copied()
                }
                _ => None,
            };
            CertStatus::Revoked {
                revoked_at: format_rfc3339(when),
                reason,
            }
        }
        other => {
            return Err(OcspError::Malformed {
                field: "certStatus",
                reason: format!("tag 0x{other:02x}"),
            });
        }
    };
    let this_update = generalized_time(
        *parts.get(2).ok_or(OcspError::Malformed {
            field: "thisUpdate",
            reason: "missing".into(),
        })?,
        "thisUpdate",
    )?;
    let next_update = match parts.get(3) {
        Some(t) if t.tag == 0xA0 => {
            let inner = der::read_tlv(t.value).map_err(malformed("nextUpdate"))?.0;
            Some(generalized_time(inner, "nextUpdate")?)
        }
        _ => None,
    };
    Ok(SingleResponse {
        hash_algorithm,
        issuer_name_hash,
        issuer_key_hash,
        serial,
        status,
        this_update,
        next_update,
    })
}

/// Verifies `response` (DER) for `cert` issued by `issuer` (both DER) at Unix time `at`,
/// and, if given, that it answers a request that carried `nonce`.
pub fn check_ocsp_response(
    response: &[u8],
    cert_der: &[u8],
    issuer_der: &[u8],
    at: i64,
    nonce: Option<&[u8]>,
) -> Result<OcspStatus, OcspError> {
    if response.len() > MAX_OCSP_BYTES {
        return Err(OcspError::TooLarge {
            size: response.len(),
            max: MAX_OCSP_BYTES,
        });
    }
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| OcspError::Responder(format!("certificate does not parse: {e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| OcspError::Responder(format!("issuer does not parse: {e}")))?;

    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ... }
    let outer = der::single(response, TAG_SEQUENCE).map_err(malformed("OCSPResponse"))?;
    let parts = der::children(outer.value).map_err(malformed("OCSPResponse"))?;
    let status = expect_tag(parts.first(), 0x0A, "responseStatus")?;
    match status.value {
        [0] => {}
        [s] => return Err(OcspError::NotSuccessful(*s)),
        _ => return Err(malformed("responseStatus")("bad length".into())),
    }
    let bytes = expect_tag(parts.get(1), 0xA0, "responseBytes")?;
    let bytes = der::single(bytes.value, TAG_SEQUENCE).map_err(malformed("responseBytes"))?;
    let bytes = der::children(bytes.value).map_err(malformed("responseBytes"))?;
    let kind = der::oid_to_string(expect_tag(bytes.first(), TAG_OID, "responseType")?.value)
        .map_err(malformed("responseType"))?;
    if kind != OID_OCSP_BASIC {
        return Err(OcspError::NotBasic(kind));
    }
    let basic = expect_tag(bytes.get(1), TAG_OCTET_STRING, "response")?.value;

    // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature, certs }
    let basic = der::single(basic, TAG_SEQUENCE).map_err(malformed("BasicOCSPResponse"))?;
    let (tbs, rest) = der::read_tlv(basic.value).map_err(malformed("tbsResponseData"))?;
    let tbs_der = basic
        .value
        .get(..basic.value.len() - rest.len())
        .unwrap_or_default();
    let others = der::children(rest).map_err(malformed("BasicOCSPResponse"))?;
    let sig_alg = expect_tag(others.first(), TAG_SEQUENCE, "signatureAlgorithm")?;
    let sig_alg = der::children(sig_alg.value).map_err(malformed("signatureAlgorithm"))?;
    let sig_alg =
        der::oid_to_string(expect_tag(sig_alg.first(), TAG_OID, "signatureAlgorithm")?.value)
            .map_err(malformed("signatureAlgorithm"))?;
    let signature = expect_tag(others.get(1), 0x03, "signature")?.value;
    let signature = match signature.split_first() {
        Some((0, bits)) => bits,
        _ => return Err(malformed("signature")("unused bits".into())),
    };
    let mut embedded: Vec<&[u8]> = Vec::new();
    if let Some(certs) = others.get(2).filter(|t| t.tag == 0xA0) {
        let list = der::single(certs.value, TAG_SEQUENCE).map_err(malformed("certs"))?;
        let mut input = list.value;
        while !input.is_empty() {
            if embedded.len() >= MAX_ITEMS {
                return Err(malformed("certs")("too many".into()));
            }
            let (_, rest) = der::read_tlv(input).map_err(malformed("certs"))?;
            embedded.push(input.get(..input.len() - rest.len()).unwrap_or_default());
            input = rest;
        }
    }

    // ResponseData
    let data = der::children(tbs.value).map_err(malformed("ResponseData"))?;
    let mut fields = data.iter().peekable();
    if fields.peek().is_some_and(|t| t.tag == 0xA0) {
        fields.next(); // version v1
    }
    let responder = *fields.next().ok_or(OcspError::Malformed {
        field: "responderID",
        reason: "missing".into(),
    })?;
    let produced_at = generalized_time(
        *fields.next().ok_or(OcspError::Malformed {
            field: "producedAt",
            reason: "missing".into(),
        })?,
        "producedAt",
    )?;
    let responses =
        fields
            .next()
            .filter(|t| t.tag == TAG_SEQUENCE)
            .ok_or(OcspError::Malformed {
                field: "responses",
                reason: "missing".into(),
            })?;
    let extensions = fields.next().filter(|t| t.tag == 0xA1);

    // The signer: the issuer itself, or a delegated responder certificate it issued.
    let signer_key = responder_key(responder, &issuer, &embedded, at)?;
    verify_ecdsa(&signer_key, &sig_alg, tbs_der, signature)?;

    // The single response for this certificate.
    let issuer_key_bits = issuer.public_key().subject_public_key.data.as_ref();
    let serial = cert.tbs_certificate.raw_serial();
    let singles = der::children(responses.value).map_err(malformed("responses"))?;
    if singles.len() > MAX_ITEMS {
        return Err(malformed("responses")("too many".into()));
    }
    let mut found = None;
    for single in singles {
        let s = parse_single(single)?;
        let matches = s.serial == serial
            && hash(&s.hash_algorithm, issuer.subject().as_raw()).as_deref()
                == Some(s.issuer_name_hash)
            && hash(&s.hash_algorithm, issuer_key_bits).as_deref() == Some(s.issuer_key_hash);
        if matches {
            found = Some(s);
            break;
        }
    }
    let single = found.ok_or_else(|| OcspError::NotForCertificate {
        serial: cert.raw_serial_as_string(),
    })?;

    let next = single
        .next_update
        .unwrap_or(single.this_update + MAX_AGE_WITHOUT_NEXT_UPDATE_SECS);
    if single.this_update > at + CLOCK_SKEW_SECS || produced_at > at + CLOCK_SKEW_SECS || at > next
    {
        return Err(OcspError::Stale {
            at: format_rfc3339(at),
            this_update: format_rfc3339(single.this_update),
            next_update: format_rfc3339(next),
        });
    }
    if let Some(expected) = nonce {
        let found = extensions
            .and_then(|e| response_nonce(e.value))
            .unwrap_or_default();
        if found != expected {
            return Err(OcspError::NonceMismatch {
                expected: hex::encode(expected),
                found: hex::encode(found),
            });
        }
    }
    Ok(OcspStatus {
        status: single.status,
        this_update: format_rfc3339(single.this_update),
        next_update: single.next_update.map(format_rfc3339),
        produced_at: format_rfc3339(produced_at),
    })
}

/// The nonce extension's value (an OCTET STRING, itself usually wrapping an OCTET STRING).
fn response_nonce(extensions: &[u8]) -> Option<Vec<u8>> {
    let list = der::single(extensions, TAG_SEQUENCE).ok()?;
    for ext in der::children(list.value).ok()? {
        let parts = der::children(ext.value).ok()?;
        let oid = der::oid_to_string(parts.first()?.value).ok()?;
        if oid == OID_OCSP_NONCE {
            let value = parts.last()?.value;
            return Some(match der::single(value, TAG_OCTET_STRING) {
                Ok(inner) => inner.value.to_vec(),
                Err(_) => value.to_vec(),
            });
        }
    }
    None
}

/// (curve OID, uncompressed point) of whoever signed the response.
fn responder_key(
    responder: Tlv<'_>,
    issuer: &X509Certificate<'_>,
    embedded: &[&[u8]],
    at: i64,
) -> Result<(String, Vec<u8>), OcspError> {
    let names_issuer = |candidate: &X509Certificate<'_>| match responder.tag {
        // byName [1] EXPLICIT Name
        0xA1 => candidate.subject().as_raw() == responder.value,
        // byKey [2] EXPLICIT OCTET STRING (SHA-1 of the key)
        0xA2 => der::single(responder.value, TAG_OCTET_STRING).is_ok_and(|k| {
            hash(
                OID_SHA1,
                candidate.public_key().subject_public_key.data.as_ref(),
            )
            .as_deref()
                == Some(k.value)
        }),
        _ => false,
    };
    if names_issuer(issuer) {
        return key_of(issuer);
    }
    for der in embedded {
        let Ok((_, delegate)) = X509Certificate::from_der(der) else {
            continue;
        };
        if !names_issuer(&delegate) {
            continue;
        }
        if delegate.issuer() != issuer.subject()
            || delegate
                .verify_signature(Some(issuer.public_key()))
                .is_err()
        {
            return Err(OcspError::Responder(format!(
                "{} is not issued by the certificate's issuer",
                delegate.subject()
            )));
        }
        let ocsp_signing = delegate
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|eku| eku.value.ocsp_signing);
        if !ocsp_signing {
            return Err(OcspError::Responder(format!(
                "{} lacks id-kp-OCSPSigning",
                delegate.subject()
            )));
        }
        let validity = delegate.validity();
        if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
            return Err(OcspError::Responder(format!(
                "{} is not valid at {}",
                delegate.subject(),
                format_rfc3339(at)
            )));
        }
        return key_of(&delegate);
    }
    Err(OcspError::Responder(
        "signed by neither the issuer nor a responder it delegated to".into(),
    ))
}

fn key_of(cert: &X509Certificate<'_>) -> Result<(String, Vec<u8>), OcspError> {
    let spki = cert.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    Ok((curve, spki.subject_public_key.data.to_vec()))
}

fn verify_ecdsa(
    key: &(String, Vec<u8>),
    algorithm: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), OcspError> {
    use ring::signature as sig;
    let alg: &dyn sig::VerificationAlgorithm = match (algorithm, key.0.as_str()) {
        (OID_ECDSA_SHA384, OID_P384) => &sig::ECDSA_P384_SHA384_ASN1,
        (OID_ECDSA_SHA256, OID_P384) => &sig::ECDSA_P384_SHA256_ASN1,
        (OID_ECDSA_SHA384, OID_P256) => &sig::ECDSA_P256_SHA384_ASN1,
        (OID_ECDSA_SHA256, OID_P256) => &sig::ECDSA_P256_SHA256_ASN1,
        _ => {
            return Err(OcspError::UnsupportedAlgorithm(format!(
                "{algorithm} with key curve {}",
                key.0
            )));
        }
    };
    sig::UnparsedPublicKey::new(alg, &key.1)
        .verify(message, signature)
        .map_err(|_| OcspError::BadSignature)
}
