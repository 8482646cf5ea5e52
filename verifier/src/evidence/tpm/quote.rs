//! Quote verification: is this TPMS_ATTEST a quote, signed by this AK, over exactly these
//! PCR values, carrying the expected qualifying data? Each failed step is its own error.

use std::collections::BTreeMap;

use ring::signature::{self, UnparsedPublicKey};
use serde::Serialize;

use super::DecodeError;
use super::structures::{
    AkPublic, Attest, EccCurve, HashAlg, PcrSelection, PublicKey, SigScheme, Signature,
    TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, decode_attest, decode_signature, left_pad,
};

/// PCR values: bank → PCR index → digest.
pub type PcrValues = BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>;

/// Why a quote did not verify; each variant is one check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("quote message: {0}")]
    DecodeAttest(DecodeError),
    #[error("quote signature: {0}")]
    DecodeSignature(DecodeError),
    #[error("magic is 0x{found:08x}, not TPM_GENERATED (0xff544347): not made by a TPM")]
    Magic { found: u32 },
    #[error("attestation type is 0x{found:04x}, not TPM_ST_ATTEST_QUOTE (0x8018)")]
    AttestType { found: u16 },
    #[error("signature scheme {signature} does not match the AK ({key})")]
    SchemeMismatch { signature: String, key: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("signature does not verify with the AK ({0})")]
    BadSignature(String),
    #[error("qualifying data is {found}, expected {expected}")]
    QualifyingData { found: String, expected: String },
    #[error("PCR {bank}:{index} was offered as evidence but is not in the quote's selection")]
    PcrNotQuoted { bank: &'static str, index: u32 },
    #[error("PCR {bank}:{index} is in the quote's selection but no value was supplied")]
    PcrMissing { bank: &'static str, index: u32 },
    #[error("PCR {bank}:{index} value has {found} bytes, a {bank} digest has {expected}")]
    PcrLength {
        bank: &'static str,
        index: u32,
        found: usize,
        expected: usize,
    },
    #[error("PCR digest in the quote is {quoted}, the supplied PCR values hash to {computed}")]
    PcrDigest { quoted: String, computed: String },
}

impl QuoteError {
    /// The dotted check name this error fails.
    pub fn check(&self) -> &'static str {
        match self {
            QuoteError::DecodeAttest(_) | QuoteError::DecodeSignature(_) => "quote.decode",
            QuoteError::Magic { .. } => "quote.magic",
            QuoteError::AttestType { .. } => "quote.type",
            QuoteError::SchemeMismatch { .. }
            | QuoteError::Unsupported(_)
            | QuoteError::BadSignature(_) => "quote.signature",
            QuoteError::QualifyingData { .. } => "quote.qualifying_data",
            QuoteError::PcrNotQuoted { .. }
            | QuoteError::PcrMissing { .. }
            | QuoteError::PcrLength { .. } => "quote.pcr_selection",
            QuoteError::PcrDigest { .. } => "quote.pcr_digest",
        }
    }
}

/// What a verified quote proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedQuote {
    pub signature: String,
    pub selection: PcrSelection,
    /// Values of exactly the quoted PCRs (only known when values were supplied).
    #[serde(serialize_with = "serialize_pcrs")]
    pub pcrs: PcrValues,
    #[serde(with = "hex_bytes")]
    pub extra_data: Vec<u8>,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub firmware_version: u64,
}

impl VerifiedQuote {
    pub fn pcr_count(&self) -> usize {
        self.pcrs.values().map(BTreeMap::len).sum()
    }
}

fn serialize_pcrs<S: serde::Serializer>(
    pcrs: &PcrValues,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let as_hex: BTreeMap<&str, BTreeMap<u32, String>> = pcrs
        .iter()
        .map(|(bank, values)| {
            (
                bank.name(),
                values.iter().map(|(i, v)| (*i, hex::encode(v))).collect(),
            )
        })
        .collect();
    serde::Serialize::serialize(&as_hex, serializer)
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }
}

/// What to check a quote against.
#[derive(Debug, Clone, Copy)]
pub struct QuoteExpectations<'a> {
    /// The qualifying data the quote must carry; `None` skips the check (offline use only).
    pub qualifying_data: Option<&'a [u8]>,
    /// The PCR values presented as evidence; `None` skips the PCR digest (offline use only).
    pub pcrs: Option<&'a PcrValues>,
    /// Accept SHA-1 signatures (older Windows AKs sign quotes with RSASSA-SHA1). Only the
    /// offline check allows it, and says so; live evidence never does.
    pub allow_sha1_signatures: bool,
}

/// Verifies a quote. Order: decode, magic, type, signature, qualifying data, PCR values.
pub fn verify_quote(
    ak: &AkPublic,
    attest_bytes: &[u8],
    signature_bytes: &[u8],
    expect: QuoteExpectations<'_>,
) -> Result<VerifiedQuote, QuoteError> {
    let attest = decode_attest(attest_bytes).map_err(QuoteError::DecodeAttest)?;
    let quote = check_quote_header(&attest)?;
    let signature = decode_signature(signature_bytes).map_err(QuoteError::DecodeSignature)?;
    if signature.hash() == HashAlg::Sha1 && !expect.allow_sha1_signatures {
        return Err(QuoteError::Unsupported(format!(
            "{} signatures are not accepted for live evidence",
            signature.describe()
        )));
    }
    verify_signature(ak, attest_bytes, &signature)?;
    if let Some(expected) = expect.qualifying_data
        && !constant_time_eq(&attest.extra_data, expected)
    {
        return Err(QuoteError::QualifyingData {
            found: hex::encode(&attest.extra_data),
            expected: hex::encode(expected),
        });
    }
    let pcrs = match expect.pcrs {
        Some(values) => check_pcr_digest(
            &quote.selection,
            &quote.pcr_digest,
            signature.hash(),
            values,
        )?,
        None => PcrValues::new(),
    };
    Ok(VerifiedQuote {
        signature: signature.describe(),
        selection: quote.selection.clone(),
        pcrs,
        extra_data: attest.extra_data.clone(),
        clock: attest.clock_info.clock,
        reset_count: attest.clock_info.reset_count,
        restart_count: attest.clock_info.restart_count,
        firmware_version: attest.firmware_version,
    })
}

fn check_quote_header(attest: &Attest) -> Result<&super::structures::QuoteInfo, QuoteError> {
    if attest.magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::Magic {
            found: attest.magic,
        });
    }
    if attest.attest_type != TPM_ST_ATTEST_QUOTE {
        return Err(QuoteError::AttestType {
            found: attest.attest_type,
        });
    }
    attest.quote.as_ref().ok_or(QuoteError::AttestType {
        found: attest.attest_type,
    })
}

/// Recomputes the quote's PCR digest from `values` over exactly `selection` (banks in
/// selection order, PCRs ascending), hashed with `hash` (the signing scheme's hash, which
/// is what the TPM uses). A value outside the selection is an error, never ignored: the
/// signature does not cover it. Returns the values of the quoted PCRs.
pub fn check_pcr_digest(
    selection: &PcrSelection,
    quoted_digest: &[u8],
    hash: HashAlg,
    values: &PcrValues,
) -> Result<PcrValues, QuoteError> {
    for (bank, bank_values) in values {
        for index in bank_values.keys() {
            let quoted = selection
                .iter()
                .any(|s| s.bank == *bank && s.pcrs.contains(index));
            if !quoted {
                return Err(QuoteError::PcrNotQuoted {
                    bank: bank.name(),
                    index: *index,
                });
            }
        }
    }
    let mut concatenated = Vec::new();
    let mut verified = PcrValues::new();
    for bank_selection in selection {
        let bank = bank_selection.bank;
        for index in &bank_selection.pcrs {
            let value =
                values
                    .get(&bank)
                    .and_then(|b| b.get(index))
                    .ok_or(QuoteError::PcrMissing {
                        bank: bank.name(),
                        index: *index,
                    })?;
            if value.len() != bank.digest_len() {
                return Err(QuoteError::PcrLength {
                    bank: bank.name(),
                    index: *index,
                    found: value.len(),
                    expected: bank.digest_len(),
                });
            }
            concatenated.extend_from_slice(value);
            verified
                .entry(bank)
                .or_default()
                .insert(*index, value.clone());
        }
    }
    let computed = hash
        .digest(&concatenated)
        .ok_or_else(|| QuoteError::Unsupported(format!("PCR digest with {}", hash.name())))?;
    if !constant_time_eq(&computed, quoted_digest) {
        return Err(QuoteError::PcrDigest {
            quoted: hex::encode(quoted_digest),
            computed: hex::encode(&computed),
        });
    }
    Ok(verified)
}

/// Checks `signature` over `message` with the AK, refusing weak or mismatched schemes.
pub fn verify_signature(
    ak: &AkPublic,
    message: &[u8],
    signature: &Signature,
) -> Result<(), QuoteError> {
    if let Some((scheme, hash)) = ak.scheme
        && (scheme != signature.scheme() || hash != signature.hash())
    {
        return Err(QuoteError::SchemeMismatch {
            signature: signature.describe(),
            key: format!("{scheme:?} with {}", hash.name().to_uppercase()),
        });
    }
    match (&ak.key, signature) {
        (
            PublicKey::Rsa { modulus, exponent },
            Signature::Rsa {
                scheme,
                hash,
                signature,
            },
        ) => {
            let params: &'static signature::RsaParameters = match (scheme, hash) {
                (SigScheme::RsaSsa, HashAlg::Sha1) => {
                    &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
                }
                (SigScheme::RsaSsa, HashAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
                (SigScheme::RsaSsa, HashAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
                (SigScheme::RsaSsa, HashAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
                (SigScheme::RsaPss, HashAlg::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
                (SigScheme::RsaPss, HashAlg::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
                (SigScheme::RsaPss, HashAlg::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
                _ => {
                    return Err(QuoteError::Unsupported(format!(
                        "{} signatures are not accepted",
                        signature_describe(*scheme, *hash)
                    )));
                }
            };
            signature::RsaPublicKeyComponents {
                n: modulus.as_slice(),
                e: exponent.as_slice(),
            }
            .verify(params, message, signature)
            .map_err(|_| QuoteError::BadSignature(format!("RSA-{}", modulus.len() * 8)))
        }
        (PublicKey::Ecc { curve, x, y }, Signature::Ecdsa { hash, r, s }) => {
            let size = curve.coordinate_len();
            let too_long =
                || QuoteError::BadSignature("ECDSA r or s is longer than the curve order".into());
            let r = left_pad(r, size).ok_or_else(too_long)?;
            let s = left_pad(s, size).ok_or_else(too_long)?;
            // ring has fixed-width forms only for matching curve/hash pairs; the others take
            // the ASN.1 form.
            let (algorithm, encoded): (&'static signature::EcdsaVerificationAlgorithm, Vec<u8>) =
                match (curve, hash) {
                    (EccCurve::NistP256, HashAlg::Sha256) => {
                        (&signature::ECDSA_P256_SHA256_FIXED, [r, s].concat())
                    }
                    (EccCurve::NistP384, HashAlg::Sha384) => {
                        (&signature::ECDSA_P384_SHA384_FIXED, [r, s].concat())
                    }
                    (EccCurve::NistP256, HashAlg::Sha384) => (
                        &signature::ECDSA_P256_SHA384_ASN1,
                        der_ecdsa_signature(&r, &s),
                    ),
                    (EccCurve::NistP384, HashAlg::Sha256) => (
                        &signature::ECDSA_P384_SHA256_ASN1,
                        der_ecdsa_signature(&r, &s),
                    ),
                    _ => {
                        return Err(QuoteError::Unsupported(format!(
                            "ECDSA with {} on {curve:?}",
                            hash.name()
                        )));
                    }
                };
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            UnparsedPublicKey::new(algorithm, &point)
                .verify(message, &encoded)
                .map_err(|_| QuoteError::BadSignature(format!("{curve:?}")))
        }
        (key, signature) => Err(QuoteError::SchemeMismatch {
            signature: signature.describe(),
            key: key.describe(),
        }),
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from fixed-width big-endian r and s.
fn der_ecdsa_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn integer(value: &[u8]) -> Vec<u8> {
        let trimmed = super::structures::strip_leading_zeros(value);
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend(trimmed);
        let mut out = vec![0x02, content.len() as u8];
        out.extend(content);
        out
    }
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

fn signature_describe(scheme: SigScheme, hash: HashAlg) -> String {
    format!("{scheme:?} with {}", hash.name().to_uppercase())
}

/// Equality whose timing does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
