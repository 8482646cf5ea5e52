//! Huawei Ascend NPU device attestation, verified offline.
//!
//! An Ascend NPU with remote attestation answers through DCMI: `dcmiv2_get_attest_cert` gives
//! the NPU's IAK (identity attestation key) certificate, and `dcmiv2_get_attest_evidence`
//! with a 32-byte challenge gives a TPM 2.0-style quote (TPMS_ATTEST and TPMT_SIGNATURE) over
//! SHA-256 PCRs, optionally with the NPU's boot log and IMA list. Those API facts are from
//! Vigil issue #12; they could not be confirmed in any public document the project's search
//! reaches (the CANN driver headers are under a non-OSI licence and were not read). Nothing
//! below depends on more of DCMI than "a quote whose extraData is the 32-byte challenge".
//!
//! # The evidence format (openEuler Global Trust Authority, GTA)
//!
//! Vigil reads the JSON document GTA's `ascend_npu` verifier plugin takes. What GTA does with
//! each field was read in `openeuler-mirror/global-trust-authority` (Mulan PSL v2), commit
//! `a087e9f` ("support ascend npu verifier"): `attestation_server/verifier/ascendnpu/src/
//! {evidence,verifier,log_verifier}.rs`, `attestation_server/verifier/tpm/common/src/
//! {quote,pcr}.rs` and `attestation_server/verifier/common/src/measurement_log.rs`. Only the
//! format was taken from there; the code here is Vigil's own.
//!
//! ```text
//! { "ak_cert": STRING,
//!   "quote": { "quote_data": STRING, "signature": STRING },
//!   "pcrs": { "hash_alg": "sha256", "pcr_values": [ { "pcr_index": INT, "pcr_value": STRING } ] },
//!   "logs": [ { "log_type": "boot_measurement" | "runtime_measurement", "log_data": STRING } ] }
//! ```
//!
//! | field | GTA | Vigil accepts |
//! |---|---|---|
//! | `ak_cert` | base64 (RFC 4648 standard, padded) of the DER certificate: its parser decodes base64 and reads DER, and its sample output says `base64(der)`; its own tests, however, pass base64 of PEM text | base64 of DER, base64 of PEM, PEM text itself, or hex of DER; exactly one certificate |
//! | `quote.quote_data` | base64 of TPMS_ATTEST | base64 or hex (hex when the text is hex and decodes to the TPM_GENERATED magic) |
//! | `quote.signature` | base64 of TPMT_SIGNATURE | base64 or hex (hex when it decodes to an RSASSA/RSAPSS/ECDSA sigAlg) |
//! | `pcrs.hash_alg` | optional, default `sha256`; only `sha256` is supported | optional, default `sha256`; any bank name Vigil knows (the values must match the quoted selection) |
//! | `pcr_values[].pcr_index` | integer 0..=23, no duplicates | the same, at most 24 values |
//! | `pcr_values[].pcr_value` | hex | hex, or base64 of the digest |
//! | `boot_measurement` `log_data` | base64; GTA calls the format "undetermined" and reports every boot log as a replay failure | base64 or hex of a TCG PC Client event log (crypto-agile or SHA-1 format, as [`crate::evidence::eventlog`] reads host logs): Vigil's decision, since the NPU's boot log format is not publicly documented |
//! | `runtime_measurement` `log_data` | base64 of a binary IMA list, `ima-ng`, 32-byte (SHA-256) template hashes, PCR 10 (GTA's test list) | base64 or hex of a binary IMA list (template hash of the PCR bank, falling back to SHA-1) or of an ASCII list |
//!
//! The document may also be wrapped as `{"evidence": {...}}` (the shape of GTA's sample
//! output). Unknown fields are ignored; unknown log types and a second log of one type are
//! refused. Base64 is strict (padded, canonical), as GTA's decoder is.
//!
//! # Differences from GTA, on purpose
//!
//! - GTA hashes every supplied PCR value, sorted by index, and compares with pcrDigest; Vigil
//!   recomputes pcrDigest over exactly the quote's selection, in selection order, and refuses
//!   values outside the selection (see `docs/architecture.md`, GHSA-99cg-575x-774p).
//! - GTA checks the IAK certificate's validity at "now"; Vigil at the verification time given.
//! - The challenge: GTA compares extraData with its nonce directly. Vigil derives the NPU's
//!   challenge from the verifier's nonce and the device index ([`challenge_for`]), so one nonce
//!   can challenge several NPUs (and the host's TPM) without one answer standing for another.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value as Json;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::claims::{HostClaim, Source, Trust, Value};
use crate::evidence::eventlog;
use crate::evidence::tpm::quote::{PcrValues, QuoteExpectations, check_pcr_digest, verify_quote};
use crate::evidence::tpm::structures::{
    Attest, HashAlg, Signature, decode_attest, decode_signature, decode_spki,
};
use crate::registration::trust::{TrustError, TrustStore, certificates_in};
use crate::report::{Check, Verdict, format_unix_utc};

/// Largest evidence document accepted.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024 * 1024;
/// Most PCR values accepted (a TPM-style bank has 24).
pub const MAX_PCRS: usize = 24;
/// Highest PCR index accepted.
pub const MAX_PCR_INDEX: u32 = 23;
/// Most logs accepted: one boot log and one IMA list.
pub const MAX_LOGS: usize = 2;
/// Largest decoded boot log (as for host event logs).
pub const MAX_BOOT_LOG_BYTES: usize = eventlog::parse::MAX_LOG_BYTES;
/// Largest decoded IMA list (bounded further by [`MAX_EVIDENCE_BYTES`]).
pub const MAX_IMA_LOG_BYTES: usize = vigil_ima::list::MAX_LIST_BYTES;
/// Largest decoded certificate, TPMS_ATTEST or TPMT_SIGNATURE text field.
pub const MAX_SMALL_FIELD_BYTES: usize = 64 * 1024;
/// Length of the challenge an NPU signs.
pub const CHALLENGE_LEN: usize = 32;

/// The label that separates NPU challenges from every other use of the verifier's nonce.
pub const CHALLENGE_LABEL: &[u8] = b"vigil-npu-v1";

/// The 32-byte challenge for NPU `index` from the verifier's `nonce`:
/// `SHA-256("vigil-npu-v1" || nonce || u32_be(index))`.
///
/// The label keeps NPU challenges apart from the host quote's qualifying data (which starts
/// with "vigil-v1") and from any other protocol; the device index makes each NPU's challenge
/// different, so an answer from NPU 0 cannot be presented as NPU 1's. The index is a fixed
/// four bytes at the end and the label a fixed prefix, so the input is unambiguous for any
/// nonce length.
pub fn challenge_for(nonce: &[u8], index: u32) -> [u8; CHALLENGE_LEN] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(CHALLENGE_LABEL);
    context.update(nonce);
    context.update(&index.to_be_bytes());
    let mut out = [0u8; CHALLENGE_LEN];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Why evidence or a CA directory could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AscendError {
    #[error("NPU evidence of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("NPU evidence is not JSON (line {line}, column {column}): {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("NPU evidence field {field}: {reason}")]
    Field { field: String, reason: String },
    #[error("NPU CA directory {path}: {reason}")]
    Roots { path: String, reason: String },
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> AscendError {
    AscendError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The certificates IAK certificates must chain to: self-signed ones are roots, the others
/// candidate intermediates (which must themselves chain to a root), as for TPM vendor CAs.
#[derive(Debug, Default, Clone)]
pub struct AscendRoots {
    store: TrustStore,
}

impl AscendRoots {
    /// No roots at all: every IAK chain fails (fuzzing, inspection).
    pub fn empty() -> AscendRoots {
        AscendRoots::default()
    }

    /// Every certificate (PEM bundles, or DER `.cer/.crt/.der`) below `dir`.
    pub fn load_dir(dir: &Path) -> Result<AscendRoots, AscendError> {
        let store = TrustStore::load_dir(dir).map_err(|e| AscendError::Roots {
            path: dir.display().to_string(),
            reason: match e {
                TrustError::Load { path, reason } => format!("{path}: {reason}"),
                other => other.to_string(),
            },
        })?;
        Ok(AscendRoots { store })
    }

    /// Adds one DER certificate; a self-signed one becomes a root.
    pub fn add_der(&mut self, der: Vec<u8>) -> Result<(), AscendError> {
        self.store.add(der).map_err(|reason| AscendError::Roots {
            path: "(in memory)".into(),
            reason,
        })
    }

    pub fn root_count(&self) -> usize {
        self.store.anchor_count()
    }

    pub fn intermediate_count(&self) -> usize {
        self.store.intermediate_count()
    }
}

/// Which log a `logs[]` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogType {
    /// `boot_measurement`: read as a TCG event log.
    BootMeasurement,
    /// `runtime_measurement`: an IMA measurement list.
    RuntimeMeasurement,
}

impl LogType {
    pub fn name(self) -> &'static str {
        match self {
            LogType::BootMeasurement => "boot_measurement",
            LogType::RuntimeMeasurement => "runtime_measurement",
        }
    }
}

/// Decoded NPU evidence: bytes in their structures, nothing judged yet.
#[derive(Debug, Clone)]
pub struct AscendEvidence {
    /// The IAK certificate, DER.
    pub iak_cert: Vec<u8>,
    /// TPMS_ATTEST as signed.
    pub quote: Vec<u8>,
    pub attest: Attest,
    /// TPMT_SIGNATURE.
    pub signature_bytes: Vec<u8>,
    pub signature: Signature,
    /// The bank `pcr_values` belong to.
    pub pcr_bank: HashAlg,
    /// PCR index → value, as presented (not yet proven).
    pub pcrs: BTreeMap<u32, Vec<u8>>,
    pub boot_log: Option<Vec<u8>>,
    pub ima_log: Option<Vec<u8>>,
    /// How each field was encoded (field, encoding), for the report.
    pub encodings: Vec<(String, &'static str)>,
}

impl AscendEvidence {
    /// The presented PCR values as the quote code keys them.
    pub fn pcr_values(&self) -> PcrValues {
        let mut values = PcrValues::new();
        values.insert(self.pcr_bank, self.pcrs.clone());
        values
    }

    fn summary(&self) -> String {
        let encodings: Vec<String> = self
            .encodings
            .iter()
            .map(|(field, encoding)| format!("{field} {encoding}"))
            .collect();
        format!(
            "{} PCR values ({}), boot log {}, IMA list {} [{}]",
            self.pcrs.len(),
            self.pcr_bank.name(),
            self.boot_log
                .as_ref()
                .map_or_else(|| "absent".to_string(), |l| format!("{} bytes", l.len())),
            self.ima_log
                .as_ref()
                .map_or_else(|| "absent".to_string(), |l| format!("{} bytes", l.len())),
            encodings.join(", ")
        )
    }
}

/// Parses GTA-format NPU evidence (see the module documentation), bounded.
pub fn parse_evidence(json: &[u8]) -> Result<AscendEvidence, AscendError> {
    if json.len() > MAX_EVIDENCE_BYTES {
        return Err(AscendError::TooLarge {
            size: json.len(),
            limit: MAX_EVIDENCE_BYTES,
        });
    }
    let document: Json = serde_json::from_slice(json).map_err(|e| AscendError::Json {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;
    let mut root = document
        .as_object()
        .ok_or_else(|| field_error("(document)", "is not a JSON object"))?;
    if !root.contains_key("ak_cert")
        && let Some(inner) = root.get("evidence")
    {
        root = inner
            .as_object()
            .ok_or_else(|| field_error("evidence", "is not a JSON object"))?;
    }
    let mut encodings = Vec::new();

    let ak_text = string_field(root.get("ak_cert"), "ak_cert")?;
    let (iak_cert, encoding) = decode_certificate(ak_text)?;
    encodings.push(("ak_cert".to_string(), encoding));

    let quote_object = root
        .get("quote")
        .ok_or_else(|| field_error("quote", "missing"))?
        .as_object()
        .ok_or_else(|| field_error("quote", "is not a JSON object"))?;
    let (quote, encoding) = decode_binary(
        "quote.quote_data",
        string_field(quote_object.get("quote_data"), "quote.quote_data")?,
        MAX_SMALL_FIELD_BYTES,
        |b| b.starts_with(&[0xff, 0x54, 0x43, 0x47]),
    )?;
    encodings.push(("quote.quote_data".to_string(), encoding));
    let attest =
        decode_attest(&quote).map_err(|e| field_error("quote.quote_data", e.to_string()))?;
    let (signature_bytes, encoding) = decode_binary(
        "quote.signature",
        string_field(quote_object.get("signature"), "quote.signature")?,
        MAX_SMALL_FIELD_BYTES,
        |b| matches!(b, [0x00, 0x14 | 0x16 | 0x18, ..]),
    )?;
    encodings.push(("quote.signature".to_string(), encoding));
    let signature = decode_signature(&signature_bytes)
        .map_err(|e| field_error("quote.signature", e.to_string()))?;

    let (pcr_bank, pcrs) = parse_pcrs(root.get("pcrs"))?;

    let mut boot_log = None;
    let mut ima_log = None;
    match root.get("logs") {
        None | Some(Json::Null) => {}
        Some(Json::Array(logs)) => {
            if logs.len() > MAX_LOGS {
                return Err(field_error(
                    "logs",
                    format!("{} logs (at most {MAX_LOGS}: one of each type)", logs.len()),
                ));
            }
            for (i, log) in logs.iter().enumerate() {
                let at = format!("logs[{i}]");
                let log = log
                    .as_object()
                    .ok_or_else(|| field_error(&at, "is not a JSON object"))?;
                let type_field = format!("{at}.log_type");
                let log_type = match string_field(log.get("log_type"), &type_field)? {
                    "boot_measurement" => LogType::BootMeasurement,
                    "runtime_measurement" => LogType::RuntimeMeasurement,
                    other => {
                        return Err(field_error(
                            type_field,
                            format!(
                                "unknown log type {other:?} (boot_measurement or runtime_measurement)"
                            ),
                        ));
                    }
                };
                let data_field = format!("{at}.log_data");
                let text = string_field(log.get("log_data"), &data_field)?;
                let (slot, limit) = match log_type {
                    LogType::BootMeasurement => (&mut boot_log, MAX_BOOT_LOG_BYTES),
                    LogType::RuntimeMeasurement => (&mut ima_log, MAX_IMA_LOG_BYTES),
                };
                if slot.is_some() {
                    return Err(field_error(
                        type_field,
                        format!("a second {} log", log_type.name()),
                    ));
                }
                let (data, encoding) = decode_binary(&data_field, text, limit, looks_like_log)?;
                if data.is_empty() {
                    return Err(field_error(data_field, "is empty"));
                }
                encodings.push((format!("{at} ({})", log_type.name()), encoding));
                *slot = Some(data);
            }
        }
        Some(_) => return Err(field_error("logs", "is not a JSON array")),
    }

    Ok(AscendEvidence {
        iak_cert,
        quote,
        attest,
        signature_bytes,
        signature,
        pcr_bank,
        pcrs,
        boot_log,
        ima_log,
        encodings,
    })
}

fn string_field<'a>(value: Option<&'a Json>, field: &str) -> Result<&'a str, AscendError> {
    match value {
        None => Err(field_error(field, "missing")),
        Some(Json::String(text)) => Ok(text.trim()),
        Some(_) => Err(field_error(field, "is not a string")),
    }
}

fn parse_pcrs(value: Option<&Json>) -> Result<(HashAlg, BTreeMap<u32, Vec<u8>>), AscendError> {
    let pcrs = value
        .ok_or_else(|| field_error("pcrs", "missing"))?
        .as_object()
        .ok_or_else(|| field_error("pcrs", "is not a JSON object"))?;
    let bank = match pcrs.get("hash_alg") {
        None | Some(Json::Null) => HashAlg::Sha256,
        Some(Json::String(name)) => HashAlg::from_name(name.trim()).ok_or_else(|| {
            field_error(
                "pcrs.hash_alg",
                format!("unknown hash algorithm {name:?} (sha1, sha256, sha384, sha512, sm3_256)"),
            )
        })?,
        Some(_) => return Err(field_error("pcrs.hash_alg", "is not a string")),
    };
    let list = pcrs
        .get("pcr_values")
        .ok_or_else(|| field_error("pcrs.pcr_values", "missing"))?
        .as_array()
        .ok_or_else(|| field_error("pcrs.pcr_values", "is not a JSON array"))?;
    if list.len() > MAX_PCRS {
        return Err(field_error(
            "pcrs.pcr_values",
            format!("{} values (at most {MAX_PCRS})", list.len()),
        ));
    }
    let mut values = BTreeMap::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("pcrs.pcr_values[{i}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| field_error(&at, "is not a JSON object"))?;
        let index = entry
            .get("pcr_index")
            .ok_or_else(|| field_error(format!("{at}.pcr_index"), "missing"))?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_PCR_INDEX)
            .ok_or_else(|| {
                field_error(
                    format!("{at}.pcr_index"),
                    format!("is not an integer 0..={MAX_PCR_INDEX}"),
                )
            })?;
        let value_field = format!("{at}.pcr_value");
        let text = string_field(entry.get("pcr_value"), &value_field)?;
        let value = decode_digest(&value_field, text, bank, index)?;
        if values.insert(index, value).is_some() {
            return Err(field_error(
                format!("{at}.pcr_index"),
                format!("PCR {index} given twice"),
            ));
        }
    }
    Ok((bank, values))
}

/// A PCR value: hex (GTA's encoding), or base64 of the digest. The digest length decides, so
/// the two readings never compete.
fn decode_digest(
    field: &str,
    text: &str,
    bank: HashAlg,
    index: u32,
) -> Result<Vec<u8>, AscendError> {
    let expected = bank.digest_len();
    if is_hex(text) {
        let value = hex::decode(text).map_err(|e| field_error(field, e.to_string()))?;
        if value.len() == expected {
            return Ok(value);
        }
    }
    if let Ok(value) = vigil_audit::b64::decode(text)
        && value.len() == expected
    {
        return Ok(value);
    }
    Err(field_error(
        field,
        format!(
            "PCR {index} is not a {expected}-byte {} digest in hex (or base64): {:?}",
            bank.name(),
            abbreviate(text)
        ),
    ))
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn abbreviate(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// A binary field in base64 (GTA's encoding) or hex. Text that is valid hex is read as hex
/// only when the bytes look like the field's structure (`looks_right`); otherwise it is read
/// as base64. `limit` bounds the decoded size.
fn decode_binary(
    field: &str,
    text: &str,
    limit: usize,
    looks_right: impl Fn(&[u8]) -> bool,
) -> Result<(Vec<u8>, &'static str), AscendError> {
    // Hex takes two characters a byte, base64 four per three: longer text cannot fit.
    if text.len() > limit.saturating_mul(2).saturating_add(4) {
        return Err(field_error(
            field,
            format!(
                "{} characters of text exceeds the limit of {limit} bytes",
                text.len()
            ),
        ));
    }
    let hex_bytes = if is_hex(text) {
        hex::decode(text).ok()
    } else {
        None
    };
    let decoded = match hex_bytes {
        Some(bytes) if looks_right(&bytes) => (bytes, "hex"),
        hex_bytes => match vigil_audit::b64::decode(text) {
            Ok(bytes) => (bytes, "base64"),
            Err(base64_error) => match hex_bytes {
                Some(bytes) => (bytes, "hex"),
                None => {
                    return Err(field_error(
                        field,
                        format!("neither base64 ({base64_error}) nor hex"),
                    ));
                }
            },
        },
    };
    if decoded.0.len() > limit {
        return Err(field_error(
            field,
            format!("{} bytes exceeds the limit of {limit}", decoded.0.len()),
        ));
    }
    Ok(decoded)
}

/// A TCG event log or a binary IMA list starts with a u32 little-endian PCR index; an ASCII
/// IMA list starts with a decimal PCR index.
fn looks_like_log(bytes: &[u8]) -> bool {
    match bytes {
        [a, b, c, d, ..] if u32::from_le_bytes([*a, *b, *c, *d]) <= MAX_PCR_INDEX => true,
        [first, ..] => first.is_ascii_digit(),
        [] => false,
    }
}

/// The IAK certificate from `ak_cert`: PEM text, or base64/hex of DER or of PEM.
fn decode_certificate(text: &str) -> Result<(Vec<u8>, &'static str), AscendError> {
    let (bytes, encoding) = if text.starts_with("-----BEGIN") {
        (text.as_bytes().to_vec(), "PEM")
    } else {
        let (bytes, encoding) = decode_binary("ak_cert", text, MAX_SMALL_FIELD_BYTES, |b| {
            b.first() == Some(&0x30) || b.starts_with(b"-----BEGIN")
        })?;
        if bytes.starts_with(b"-----BEGIN") {
            (
                bytes,
                if encoding == "hex" {
                    "hex(PEM)"
                } else {
                    "base64(PEM)"
                },
            )
        } else {
            (
                bytes,
                if encoding == "hex" {
                    "hex(DER)"
                } else {
                    "base64(DER)"
                },
            )
        }
    };
    let der = if bytes.starts_with(b"-----BEGIN") {
        let mut certificates = certificates_in(&bytes);
        match (certificates.pop(), certificates.is_empty()) {
            (Some(der), true) => der,
            (None, _) => {
                return Err(field_error(
                    "ak_cert",
                    "PEM text holds no CERTIFICATE block",
                ));
            }
            (Some(_), false) => {
                return Err(field_error(
                    "ak_cert",
                    format!(
                        "PEM text holds {} certificates; exactly one (the IAK's) is expected, intermediates belong in the CA directory",
                        certificates.len() + 1
                    ),
                ));
            }
        }
    } else {
        bytes
    };
    let (rest, _) = X509Certificate::from_der(&der)
        .map_err(|e| field_error("ak_cert", format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(field_error(
            "ak_cert",
            format!("{} bytes after the certificate", rest.len()),
        ));
    }
    Ok((der, encoding))
}

/// The IAK certificate as read (not necessarily trusted: see the `npu.iak_chain` check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IakCertificate {
    pub subject: String,
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    /// The public key, e.g. "ECC NIST P-256".
    pub key: String,
    /// Subjects from the IAK up to the root, when the chain verified.
    pub chain: Vec<String>,
}

/// What the quote says besides the PCRs (proven only when `npu.quote.signature` passed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteFacts {
    pub signature: String,
    /// Quoted PCRs per bank, in selection order.
    pub selection: Vec<String>,
    pub extra_data: String,
    pub qualified_signer: String,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    /// TPMS_ATTEST.firmwareVersion, `0x` and 16 hex digits.
    pub firmware_version: String,
}

/// The outcome of verifying one NPU's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct AscendVerification {
    pub verdict: Verdict,
    pub verified_at: String,
    pub verified_at_unix: i64,
    /// The challenge the quote had to carry, hex.
    pub expected_challenge: String,
    pub checks: Vec<Check>,
    pub iak: Option<IakCertificate>,
    pub quote: Option<QuoteFacts>,
    /// Named under `npu.` (see [`ASCEND_CLAIMS`]).
    pub claims: Vec<HostClaim>,
}

impl AscendVerification {
    fn finish(
        checks: Vec<Check>,
        iak: Option<IakCertificate>,
        quote: Option<QuoteFacts>,
        claims: Vec<HostClaim>,
        expected_challenge: &[u8],
        at_unix: i64,
    ) -> Self {
        let verdict = if !checks.is_empty() && checks.iter().all(|c| c.passed) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        AscendVerification {
            verdict,
            verified_at: format_unix_utc(at_unix),
            verified_at_unix: at_unix,
            expected_challenge: hex::encode(expected_challenge),
            checks,
            iak,
            quote,
            claims,
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn claim(&self, name: &str) -> Option<&HostClaim> {
        self.claims.iter().find(|c| c.name == name)
    }

    /// The claims renamed for NPU `index` of a host: `npu.pcr.sha256.0` → `npu[2].pcr.sha256.0`.
    pub fn claims_for_device(&self, index: u32) -> Vec<HostClaim> {
        self.claims
            .iter()
            .map(|claim| {
                let mut claim = claim.clone();
                if let Some(rest) = claim.name.strip_prefix("npu.") {
                    claim.name = format!("npu[{index}].{rest}");
                }
                claim
            })
            .collect()
    }

    /// A readable table: one line per check (✓ or ✗), the IAK, the quote, the claims.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "Huawei Ascend NPU evidence at {}: {}\n",
            self.verified_at,
            match self.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
            }
        );
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            out.push_str(&format!(
                "  {} {:<width$}  {}\n",
                if check.passed { "✓" } else { "✗" },
                check.name,
                check.detail
            ));
        }
        if let Some(iak) = &self.iak {
            out.push_str(&format!(
                "  IAK certificate  {} (serial {}, {}, valid {} .. {})\n",
                iak.subject, iak.serial, iak.key, iak.not_before, iak.not_after
            ));
        }
        if let Some(quote) = &self.quote {
            out.push_str(&format!(
                "  quote            {}; firmware {}, clock {}, resets {}, restarts {}\n",
                quote.selection.join(" "),
                quote.firmware_version,
                quote.clock,
                quote.reset_count,
                quote.restart_count
            ));
        }
        let width = self.claims.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for claim in &self.claims {
            let (label, why) = match &claim.trust {
                Trust::Verified => ("verified", None),
                Trust::Attested(why) => ("attested", Some(why)),
                Trust::Unproven(why) => ("unproven", Some(why)),
                Trust::Failed(why) => ("FAILED", Some(why)),
            };
            let value = claim
                .value
                .as_ref()
                .map_or_else(|| "-".to_string(), ToString::to_string);
            out.push_str(&format!("  {label:<8}  {:<width$}  {value}", claim.name));
            if let Some(why) = why {
                out.push_str(&format!("  ({why})"));
            }
            out.push('\n');
        }
        out
    }
}

/// Claim names produced by [`verify_evidence`] (patterns as in [`crate::claims::CATALOGUE`]),
/// with what they mean. Inside a host verdict they are renamed `npu[N].…`
/// ([`AscendVerification::claims_for_device`]).
pub const ASCEND_CLAIMS: &[(&str, &str)] = &[
    (
        "npu.quote_verified",
        "the NPU quote's IAK chain, signature, challenge and PCR digest all verified",
    ),
    ("npu.iak.subject", "subject of the NPU's IAK certificate"),
    ("npu.iak.issuer", "issuer of the NPU's IAK certificate"),
    (
        "npu.iak.serial",
        "serial number of the IAK certificate, hex",
    ),
    ("npu.iak.not_after", "end of the IAK certificate's validity"),
    (
        "npu.iak.chain",
        "subjects from the IAK certificate to the configured root",
    ),
    (
        "npu.pcr.*.*",
        "a PCR value the NPU quoted: npu.pcr.<bank>.<index>",
    ),
    (
        "npu.quote.firmware_version",
        "TPMS_ATTEST.firmwareVersion of the NPU's quote, hex",
    ),
    ("npu.quote.clock", "the NPU's TPMS_CLOCK_INFO.clock (ms)"),
    ("npu.quote.reset_count", "TPMS_CLOCK_INFO.resetCount"),
    ("npu.quote.restart_count", "TPMS_CLOCK_INFO.restartCount"),
    ("npu.quote.clock_safe", "TPMS_CLOCK_INFO.safe"),
    (
        "npu.quote.qualified_signer",
        "TPMS_ATTEST.qualifiedSigner, hex",
    ),
    (
        "npu.boot_log",
        "replayed (the NPU boot log reproduces the quoted PCRs it extends), absent, or failed",
    ),
    ("npu.boot_log.events", "events in the NPU boot log"),
    (
        "npu.ima.log",
        "replayed (the NPU IMA list reproduces its quoted PCR 10), absent, or failed",
    ),
    (
        "npu.ima.entries",
        "NPU IMA entries verified (the prefix the quote covers)",
    ),
    (
        "npu.ima.entries_new",
        "NPU IMA entries verified in this attestation",
    ),
    ("npu.ima.violations", "NPU IMA violations verified"),
    (
        "npu.ima.boot_aggregate",
        "matches: the NPU IMA boot_aggregate equals its quoted PCRs 0-7 (or 0-9)",
    ),
    (
        "npu.ima.entries[*]",
        "an NPU IMA measurement: path, digest, template, signature",
    ),
];

fn verifier_claim(name: &str, value: Value, trust: Trust, check: &str) -> HostClaim {
    HostClaim {
        name: name.to_owned(),
        value: Some(value),
        trust,
        source: Source::Verifier {
            check: check.to_owned(),
        },
        detail: None,
    }
}

/// Parses and verifies in one step: a document that does not parse fails `npu.evidence`.
pub fn verify_evidence_bytes(
    json: &[u8],
    roots: &AscendRoots,
    expected_challenge: &[u8],
    at_unix: i64,
) -> AscendVerification {
    match parse_evidence(json) {
        Ok(evidence) => verify_evidence(&evidence, roots, expected_challenge, at_unix),
        Err(error) => AscendVerification::finish(
            vec![Check::fail("npu.evidence", error.to_string())],
            None,
            None,
            vec![verifier_claim(
                "npu.quote_verified",
                Value::Bool(false),
                Trust::Verified,
                "npu.evidence",
            )],
            expected_challenge,
            at_unix,
        ),
    }
}

/// Verifies parsed NPU evidence against `roots`, the challenge the NPU was sent, at Unix
/// time `at_unix`. Every check is reported, in order: `npu.evidence`, `npu.iak_chain`,
/// `npu.quote.signature`, `npu.quote.qualifying_data`, `npu.quote.pcr_digest`,
/// `npu.boot_log`, `npu.ima_log`.
pub fn verify_evidence(
    evidence: &AscendEvidence,
    roots: &AscendRoots,
    expected_challenge: &[u8],
    at_unix: i64,
) -> AscendVerification {
    let mut checks = vec![Check::pass("npu.evidence", evidence.summary())];
    let mut claims = Vec::new();

    // The IAK certificate and its chain.
    let mut iak = certificate_facts(&evidence.iak_cert);
    let chain = roots.store.validate(&evidence.iak_cert, at_unix);
    let chain_ok = match &chain {
        Ok(subjects) => {
            checks.push(Check::pass(
                "npu.iak_chain",
                format!("{} at {}", subjects.join(" <- "), format_unix_utc(at_unix)),
            ));
            if let Some(iak) = &mut iak {
                iak.chain = subjects.clone();
            }
            true
        }
        Err(error) => {
            checks.push(Check::fail("npu.iak_chain", describe_trust_error(error)));
            false
        }
    };

    // The quote's signature with the certificate's key (decode, magic, type, signature).
    let signature_result = iak_key(&evidence.iak_cert).and_then(|key| {
        verify_quote(
            &key,
            &evidence.quote,
            &evidence.signature_bytes,
            QuoteExpectations {
                qualifying_data: None,
                pcrs: None,
                allow_sha1_signatures: false,
            },
        )
        .map_err(|e| e.to_string())
    });
    let signature_ok = match &signature_result {
        Ok(quote) => {
            checks.push(Check::pass(
                "npu.quote.signature",
                format!(
                    "{} by the IAK certificate's key{}",
                    quote.signature,
                    if chain_ok {
                        ""
                    } else {
                        " (but the certificate is not trusted)"
                    }
                ),
            ));
            true
        }
        Err(detail) => {
            checks.push(Check::fail("npu.quote.signature", detail.clone()));
            false
        }
    };
    let unsigned = if signature_ok {
        ""
    } else {
        " (and the quote's signature did not verify)"
    };

    // The challenge.
    let extra = &evidence.attest.extra_data;
    let challenge_ok = constant_time_eq(extra, expected_challenge);
    checks.push(if challenge_ok {
        Check::pass(
            "npu.quote.qualifying_data",
            format!(
                "extraData equals the expected challenge {}{unsigned}",
                hex::encode(expected_challenge)
            ),
        )
    } else {
        Check::fail(
            "npu.quote.qualifying_data",
            format!(
                "extraData is {}, expected the challenge {}: the quote does not answer this challenge",
                if extra.is_empty() {
                    "empty".to_string()
                } else {
                    hex::encode(extra)
                },
                hex::encode(expected_challenge)
            ),
        )
    });

    // The PCR values against pcrDigest, over exactly the quoted selection.
    let presented = evidence.pcr_values();
    let verified_pcrs = match &evidence.attest.quote {
        None => {
            checks.push(Check::fail(
                "npu.quote.pcr_digest",
                "not compared: the structure is not a TPM quote (no PCR selection)",
            ));
            None
        }
        Some(info) => match check_pcr_digest(
            &info.selection,
            &info.pcr_digest,
            evidence.signature.hash(),
            &presented,
        ) {
            Ok(values) => {
                let count: usize = values.values().map(BTreeMap::len).sum();
                checks.push(Check::pass(
                    "npu.quote.pcr_digest",
                    format!(
                        "pcrDigest recomputed over the {count} quoted PCR values {}{unsigned}",
                        describe_selection(&values)
                    ),
                ));
                Some(values)
            }
            Err(error) => {
                checks.push(Check::fail("npu.quote.pcr_digest", error.to_string()));
                None
            }
        },
    };

    // Logs are compared only with PCR values a verified signature proves.
    let proven_pcrs = verified_pcrs.as_ref().filter(|_| signature_ok);

    let mut failures: Vec<&str> = Vec::new();
    if !chain_ok {
        failures.push("npu.iak_chain");
    }
    if !signature_ok {
        failures.push("npu.quote.signature");
    }
    if !challenge_ok {
        failures.push("npu.quote.qualifying_data");
    }
    let quote_trust = if failures.is_empty() {
        Trust::Verified
    } else {
        Trust::Unproven(format!("failed: {}", failures.join(", ")))
    };

    let (boot_check, boot_claims) =
        boot_log_check(evidence.boot_log.as_deref(), proven_pcrs, &quote_trust);
    checks.push(boot_check);
    let (ima_check, ima_claims) = ima_log_check(
        evidence.ima_log.as_deref(),
        evidence.pcr_bank,
        proven_pcrs,
        evidence.attest.clock_info.reset_count,
        &quote_trust,
    );
    checks.push(ima_check);

    // Claims.
    let all_verified = quote_trust == Trust::Verified && verified_pcrs.is_some();
    claims.push(verifier_claim(
        "npu.quote_verified",
        Value::Bool(all_verified),
        Trust::Verified,
        "npu.quote.pcr_digest",
    ));
    if let Some(iak) = &iak {
        let trust = if chain_ok {
            Trust::Verified
        } else {
            Trust::Unproven("the IAK certificate does not chain to a configured root".into())
        };
        for (name, value) in [
            ("npu.iak.subject", Value::Text(iak.subject.clone())),
            ("npu.iak.issuer", Value::Text(iak.issuer.clone())),
            ("npu.iak.serial", Value::Text(iak.serial.clone())),
            ("npu.iak.not_after", Value::Text(iak.not_after.clone())),
        ] {
            claims.push(verifier_claim(name, value, trust.clone(), "npu.iak_chain"));
        }
        if chain_ok {
            claims.push(verifier_claim(
                "npu.iak.chain",
                Value::List(iak.chain.clone()),
                Trust::Verified,
                "npu.iak_chain",
            ));
        }
    }
    if let Some(values) = &verified_pcrs {
        for (bank, pcrs) in values {
            for (index, value) in pcrs {
                claims.push(HostClaim {
                    name: format!("npu.pcr.{}.{index}", bank.name()),
                    value: Some(Value::Digest(hex::encode(value))),
                    trust: quote_trust.clone(),
                    source: Source::Quote {
                        bank: bank.name().to_owned(),
                        pcr: *index,
                    },
                    detail: None,
                });
            }
        }
    }
    let attest = &evidence.attest;
    let clock = &attest.clock_info;
    for (name, value) in [
        (
            "npu.quote.firmware_version",
            Value::Text(format!("0x{:016x}", attest.firmware_version)),
        ),
        (
            "npu.quote.clock",
            Value::Int(i64::try_from(clock.clock).unwrap_or(i64::MAX)),
        ),
        (
            "npu.quote.reset_count",
            Value::Int(i64::from(clock.reset_count)),
        ),
        (
            "npu.quote.restart_count",
            Value::Int(i64::from(clock.restart_count)),
        ),
        ("npu.quote.clock_safe", Value::Bool(clock.safe)),
        (
            "npu.quote.qualified_signer",
            Value::Digest(hex::encode(&attest.qualified_signer)),
        ),
    ] {
        claims.push(verifier_claim(
            name,
            value,
            quote_trust.clone(),
            "npu.quote.signature",
        ));
    }
    claims.extend(boot_claims);
    claims.extend(ima_claims);

    let quote = Some(QuoteFacts {
        signature: evidence.signature.describe(),
        selection: attest
            .quote
            .as_ref()
            .map(|q| {
                q.selection
                    .iter()
                    .map(|s| {
                        let pcrs: Vec<String> = s.pcrs.iter().map(u32::to_string).collect();
                        format!("{}:{}", s.bank.name(), pcrs.join(","))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        extra_data: hex::encode(&attest.extra_data),
        qualified_signer: hex::encode(&attest.qualified_signer),
        clock: clock.clock,
        reset_count: clock.reset_count,
        restart_count: clock.restart_count,
        safe: clock.safe,
        firmware_version: format!("0x{:016x}", attest.firmware_version),
    });
    AscendVerification::finish(checks, iak, quote, claims, expected_challenge, at_unix)
}

fn describe_selection(values: &PcrValues) -> String {
    let banks: Vec<String> = values
        .iter()
        .map(|(bank, pcrs)| {
            let indices: Vec<String> = pcrs.keys().map(u32::to_string).collect();
            format!("{}:{}", bank.name(), indices.join(","))
        })
        .collect();
    banks.join(" ")
}

fn certificate_facts(der: &[u8]) -> Option<IakCertificate> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let validity = cert.validity();
    Some(IakCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial()),
        not_before: format_unix_utc(validity.not_before.timestamp()),
        not_after: format_unix_utc(validity.not_after.timestamp()),
        key: iak_key(der).map_or_else(|e| format!("unusable key: {e}"), |k| k.key.describe()),
        chain: Vec::new(),
    })
}

/// The IAK certificate's public key as a quote-verification key.
fn iak_key(der: &[u8]) -> Result<crate::evidence::tpm::AkPublic, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the IAK certificate does not parse: {e}"))?;
    decode_spki(cert.public_key().raw).map_err(|e| format!("the IAK certificate's public key: {e}"))
}

/// A chain failure in IAK words (the trust store words its errors for EK certificates).
fn describe_trust_error(error: &TrustError) -> String {
    match error {
        TrustError::Parse(reason) => format!("the IAK certificate does not parse: {reason}"),
        TrustError::NoIssuer { subject } => format!(
            "no issuer of {subject:?} among the configured NPU CAs (is the vendor's CA in --ca-dir?)"
        ),
        TrustError::BadSignature { subject, issuer } => format!(
            "the signature on {subject:?} does not verify with the key of the configured CA {issuer:?} (a CA of the same name but another key)"
        ),
        TrustError::Expired {
            subject,
            at,
            not_before,
            not_after,
        } => format!(
            "{subject:?} is not valid at {} (valid {not_before} .. {not_after})",
            format_unix_utc(*at)
        ),
        TrustError::NotCa { subject } => {
            format!("issuer {subject:?} is not a CA (basicConstraints)")
        }
        TrustError::UnsupportedAlgorithm { subject, detail } => {
            format!("{subject:?} is signed with an algorithm Vigil cannot verify ({detail})")
        }
        TrustError::TooDeep => format!(
            "the chain is longer than {} certificates",
            crate::registration::trust::MAX_CHAIN_DEPTH
        ),
        other => other.to_string(),
    }
}

fn log_state_claim(name: &str, state: &str, trust: Trust, check: &str) -> HostClaim {
    verifier_claim(name, Value::Text(state.into()), trust, check)
}

/// `npu.boot_log`: the log parses as a TCG event log and reproduces every quoted PCR it
/// extends (at least one).
fn boot_log_check(
    log: Option<&[u8]>,
    quoted: Option<&PcrValues>,
    quote_trust: &Trust,
) -> (Check, Vec<HostClaim>) {
    const CHECK: &str = "npu.boot_log";
    let Some(data) = log else {
        return (
            Check::pass(CHECK, "none sent (the NPU boot chain is not appraised)"),
            vec![log_state_claim(CHECK, "absent", Trust::Verified, CHECK)],
        );
    };
    let failed = |detail: String| {
        (
            Check::fail(CHECK, detail),
            vec![log_state_claim(CHECK, "failed", Trust::Verified, CHECK)],
        )
    };
    let parsed = match eventlog::parse(data) {
        Ok(parsed) => parsed,
        Err(error) => return failed(format!("does not parse as a TCG event log: {error}")),
    };
    let Some(quoted) = quoted else {
        return failed(format!(
            "{} events parsed, not compared: the quote did not verify, so no PCR value is proven",
            parsed.events.len()
        ));
    };
    let replayed = eventlog::replay(&parsed);
    let mismatches: Vec<String> = eventlog::compare(&replayed, quoted, &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    if !mismatches.is_empty() {
        return failed(mismatches.join("; "));
    }
    let mut compared = Vec::new();
    for (bank, pcrs) in quoted {
        if let Some(replayed_bank) = replayed.banks.get(bank) {
            for index in pcrs.keys().filter(|i| replayed_bank.contains_key(i)) {
                compared.push(format!("{}:{index}", bank.name()));
            }
        }
    }
    if compared.is_empty() {
        return failed(format!(
            "{} events, but the log extends none of the quoted PCRs in a bank it replays",
            parsed.events.len()
        ));
    }
    let mut detail = format!(
        "{} events reproduce the quoted {}",
        parsed.events.len(),
        compared.join(", ")
    );
    if !replayed.missing_digests.is_empty() {
        detail.push_str(&format!(
            "; events {:?} lack a digest for a replayed bank",
            replayed.missing_digests
        ));
    }
    if !replayed.not_replayed.is_empty() {
        detail.push_str(&format!(
            "; banks not replayed (Vigil cannot compute them): {:04x?}",
            replayed.not_replayed
        ));
    }
    let events = i64::try_from(parsed.events.len()).unwrap_or(i64::MAX);
    (
        Check::pass(CHECK, detail),
        vec![
            log_state_claim(CHECK, "replayed", Trust::Verified, CHECK),
            verifier_claim(
                "npu.boot_log.events",
                Value::Int(events),
                quote_trust.clone(),
                CHECK,
            ),
        ],
    )
}

/// `npu.ima_log`: the list parses, every entry's template hash matches its data, and a prefix
/// reproduces the quoted PCR 10 (as for host IMA lists, `crate::evidence::ima::check_ima`).
fn ima_log_check(
    log: Option<&[u8]>,
    bank: HashAlg,
    quoted: Option<&PcrValues>,
    reset_count: u32,
    quote_trust: &Trust,
) -> (Check, Vec<HostClaim>) {
    const CHECK: &str = "npu.ima_log";
    let Some(data) = log else {
        return (
            Check::pass(
                CHECK,
                "none sent (the NPU's runtime integrity is not appraised)",
            ),
            vec![log_state_claim(
                "npu.ima.log",
                "absent",
                Trust::Verified,
                CHECK,
            )],
        );
    };
    // A binary list's template hash is not self-describing: GTA's lists use the PCR bank's
    // (SHA-256); the kernel's default list uses SHA-1.
    let bank_alg = vigil_ima::HashAlg::from_name(bank.name()).unwrap_or(vigil_ima::HashAlg::Sha256);
    let template_hash = [bank_alg, vigil_ima::HashAlg::Sha1]
        .into_iter()
        .find(|alg| vigil_ima::parse(data, *alg, 0).is_ok())
        .unwrap_or(bank_alg);
    let list = vigil_proto::v1::ImaLog {
        present: true,
        data: data.to_vec(),
        first_entry: 0,
        source: "NPU runtime_measurement".into(),
        note: String::new(),
        template_hash: template_hash.name().into(),
    };
    let state = quoted.map(|pcrs| crate::evidence::ima::QuotedState { pcrs, reset_count });
    let outcome = crate::evidence::ima::check_ima(Some(&list), state.as_ref(), None);
    let passed = !outcome.checks.is_empty() && outcome.checks.iter().all(|c| c.passed);
    let details: Vec<String> = outcome
        .checks
        .iter()
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    let claims = outcome
        .claims
        .into_iter()
        .map(|mut claim| {
            if let Some(rest) = claim.name.strip_prefix("ima.") {
                claim.name = format!("npu.ima.{rest}");
            }
            // The list is only as trustworthy as the quote that proves PCR 10.
            if claim.trust == Trust::Verified
                && claim.name != "npu.ima.log"
                && *quote_trust != Trust::Verified
            {
                claim.trust = quote_trust.clone();
            }
            claim
        })
        .collect();
    let detail = details.join("; ");
    (
        if passed {
            Check::pass(CHECK, detail)
        } else {
            Check::fail(CHECK, detail)
        },
        claims,
    )
}

/// Equality whose timing does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_depends_on_nonce_and_index() {
        let a = challenge_for(b"nonce", 0);
        assert_ne!(a, challenge_for(b"nonce", 1));
        assert_ne!(a, challenge_for(b"nonce2", 0));
        let mut input = CHALLENGE_LABEL.to_vec();
        input.extend_from_slice(b"nonce");
        input.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            a.as_slice(),
            ring::digest::digest(&ring::digest::SHA256, &input).as_ref()
        );
    }

    #[test]
    fn hex_only_when_the_structure_fits() {
        // "ff544347..." as hex is the TPM_GENERATED magic.
        let (bytes, encoding) =
            decode_binary("f", "ff5443478018", 100, |b| b.starts_with(&[0xff, 0x54])).unwrap();
        assert_eq!(encoding, "hex");
        assert_eq!(bytes, vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18]);
        // Hex text that does not look like the structure is read as base64.
        let (_, encoding) = decode_binary("f", "abcd", 100, |_| false).unwrap();
        assert_eq!(encoding, "base64");
        // Hex text that is not base64 is still read as hex.
        let (_, encoding) = decode_binary("f", "abcdef", 100, |_| false).unwrap();
        assert_eq!(encoding, "hex");
        let error = decode_binary("quote.signature", "not base64!", 100, |_| true).unwrap_err();
        assert!(error.to_string().contains("quote.signature"));
        let error = decode_binary("f", &"AAAA".repeat(100), 10, |_| true).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("400 characters of text exceeds the limit")
        );
        let error = decode_binary("f", &"QUFB".repeat(4), 10, |_| true).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("12 bytes exceeds the limit of 10")
        );
        assert!(decode_binary("f", &"QUFB".repeat(3), 10, |_| true).is_ok());
    }

    #[test]
    fn logs_are_recognised_by_their_first_pcr_index() {
        assert!(looks_like_log(&[0, 0, 0, 0, 3, 0, 0, 0]));
        assert!(looks_like_log(&[10, 0, 0, 0]));
        assert!(looks_like_log(b"10 abc"));
        assert!(!looks_like_log(&[0x69, 0xb7, 0x1d, 0x79]));
        assert!(!looks_like_log(&[]));
    }
}
