//! Audit keys and checkpoints in the C2SP `signed-note` / `tlog-checkpoint`
//! text formats, so any C2SP-aware tool can check Vigil's tree heads.
//!
//! A checkpoint note is:
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <base64 root hash>\n
//! time <unix seconds, decimal>\n      (Vigil extension line)
//! \n
//! — <key name> <base64(key hash[4] || Ed25519 signature[64])>\n
//! ```
//!
//! The signature covers the body up to and including the last body newline.
//! The key hash is `SHA-256(key name || "\n" || 0x01 || public key)[..4]`
//! (signed-note, Ed25519 signature type 0x01). Verifiers ignore signature
//! lines from keys they do not know and reject the note if a line from a
//! known key does not verify. The `time` line is the checkpoint's creation
//! time; it is signed like every other body line.

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Serialize;

use crate::b64;
use crate::merkle::{Hash, sha256};

/// Signature type byte of Ed25519 in signed-note key hashes.
const ED25519_TYPE: u8 = 0x01;
/// Largest note accepted by the parser.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines accepted on one note (same cap as Go's `note` package).
pub const MAX_SIGNATURE_LINES: usize = 100;
pub const MAX_NAME_BYTES: usize = 256;
const SIGNATURE_PREFIX: &str = "\u{2014} ";
const TIME_PREFIX: &str = "time ";

/// Why a key could not be generated, loaded or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate an Ed25519 key")]
    Generate,
    #[error("PKCS#8 document is not an Ed25519 key: {0}")]
    Pkcs8(String),
    #[error("key name {0:?} is invalid: must be 1..=256 bytes with no whitespace and no '+'")]
    Name(String),
    #[error("verifier key: {0}")]
    VerifierKey(&'static str),
}

/// Why a checkpoint note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint note is {len} bytes, limit {MAX_NOTE_BYTES}")]
    TooLarge { len: usize },
    #[error("checkpoint note has no blank line separating body from signatures")]
    NoSignatureBlock,
    #[error("checkpoint note contains a control character at byte offset {offset}")]
    ControlCharacter { offset: usize },
    #[error("checkpoint body line {line} (`{field}`): {reason}")]
    Body {
        line: usize,
        field: &'static str,
        reason: String,
    },
    #[error("checkpoint signature line {line}: {reason}")]
    SignatureLine { line: usize, reason: String },
    #[error("checkpoint note has more than {MAX_SIGNATURE_LINES} signature lines")]
    TooManySignatures,
    #[error("checkpoint note has no signature by a trusted key")]
    NoTrustedSignature,
    #[error("checkpoint signature by trusted key {key_name:?} does not verify")]
    BadSignature { key_name: String },
    #[error("checkpoint note has no `time` extension line")]
    MissingTime,
    #[error("checkpoint origin {0:?} is invalid: must be 1..=256 bytes of printable text")]
    Origin(String),
}

/// The audit signing key (Ed25519). The caller persists its PKCS#8 bytes.
pub struct AuditSigningKey {
    name: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigningKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Generates a new Ed25519 key as PKCS#8 v2 bytes, for the caller to persist.
pub fn generate_key() -> Result<Vec<u8>, KeyError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| KeyError::Generate)
}

/// Loads a PKCS#8 Ed25519 key; `name` becomes the signed-note key name
/// (conventionally the log origin).
pub fn load_key(name: &str, pkcs8: &[u8]) -> Result<AuditSigningKey, KeyError> {
    validate_key_name(name)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
    Ok(AuditSigningKey {
        name: name.to_owned(),
        pair,
    })
}

impl AuditSigningKey {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> AuditPublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        AuditPublicKey {
            name: self.name.clone(),
            key,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

fn validate_key_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.contains('+')
        || name.chars().any(char::is_whitespace)
    {
        return Err(KeyError::Name(name.chars().take(64).collect()));
    }
    Ok(())
}

/// A public audit key with its signed-note name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPublicKey {
    pub name: String,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub key: [u8; 32],
}

impl AuditPublicKey {
    pub fn new(name: &str, key: [u8; 32]) -> Result<Self, KeyError> {
        validate_key_name(name)?;
        Ok(AuditPublicKey {
            name: name.to_owned(),
            key,
        })
    }

    /// signed-note key hash: `SHA-256(name || "\n" || 0x01 || key)[..4]`.
    pub fn key_hash(&self) -> [u8; 4] {
        let mut msg = Vec::with_capacity(self.name.len() + 34);
        msg.extend_from_slice(self.name.as_bytes());
        msg.push(b'\n');
        msg.push(ED25519_TYPE);
        msg.extend_from_slice(&self.key);
        let h = sha256(&msg);
        [h[0], h[1], h[2], h[3]]
    }

    /// signed-note verifier key text: `<name>+<hex key hash>+<base64(0x01 || key)>`.
    pub fn to_verifier_key(&self) -> String {
        let mut typed = vec![ED25519_TYPE];
        typed.extend_from_slice(&self.key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash()),
            b64::encode(&typed)
        )
    }

    /// Parses a verifier key, checking its embedded key hash.
    pub fn from_verifier_key(text: &str) -> Result<Self, KeyError> {
        // The base64 key may itself contain '+': split at the first two only.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::VerifierKey(
                "expected <name>+<hex key hash>+<base64 key>",
            ));
        };
        let typed = b64::decode(key_b64)
            .map_err(|_| KeyError::VerifierKey("key is not canonical base64"))?;
        let (Some(&ED25519_TYPE), Some(raw)) = (typed.first(), typed.get(1..)) else {
            return Err(KeyError::VerifierKey("key type is not Ed25519 (0x01)"));
        };
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::VerifierKey("Ed25519 key is not 32 bytes"))?;
        let parsed = AuditPublicKey::new(name, key)?;
        if hash_hex != hex::encode(parsed.key_hash()) {
            return Err(KeyError::VerifierKey(
                "key hash does not match name and key",
            ));
        }
        Ok(parsed)
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(message, signature)
            .is_ok()
    }
}

/// One signature line of a note, undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub key_name: String,
    pub key_hash: [u8; 4],
    pub signature: Vec<u8>,
}

/// A checkpoint note split into fields; nothing about it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCheckpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    pub time: Option<i64>,
    /// Extension lines other than `time`, in order.
    pub extensions: Vec<String>,
    pub signatures: Vec<NoteSignature>,
    /// The signed text: body lines including the final newline.
    pub signed_body: String,
}

/// A checkpoint whose signature verified under a trusted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub root_hash: Hash,
    pub time: i64,
    /// Name of the key whose signature was checked (or made).
    pub key_name: String,
    /// The full signed note text.
    pub note: String,
}

pub(crate) fn validate_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() || origin.len() > MAX_NAME_BYTES || origin.chars().any(char::is_control) {
        return Err(CheckpointError::Origin(origin.chars().take(64).collect()));
    }
    Ok(())
}

/// Builds and signs a checkpoint note.
pub fn sign_checkpoint(
    key: &AuditSigningKey,
    origin: &str,
    tree_size: u64,
    root_hash: &Hash,
    time: i64,
) -> Result<Checkpoint, CheckpointError> {
    validate_origin(origin)?;
    let body = format!(
        "{origin}\n{tree_size}\n{}\n{TIME_PREFIX}{time}\n",
        b64::encode(root_hash)
    );
    let mut signed = key.public_key().key_hash().to_vec();
    signed.extend_from_slice(&key.sign(body.as_bytes()));
    let note = format!(
        "{body}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name,
        b64::encode(&signed)
    );
    Ok(Checkpoint {
        origin: origin.to_owned(),
        tree_size,
        root_hash: *root_hash,
        time,
        key_name: key.name.clone(),
        note,
    })
}

/// Splits a checkpoint note into fields. Decides nothing about trust.
pub fn parse_checkpoint(text: &str) -> Result<ParsedCheckpoint, CheckpointError> {
    if text.len() > MAX_NOTE_BYTES {
        return Err(CheckpointError::TooLarge { len: text.len() });
    }
    if let Some(offset) = text.bytes().position(|b| b < 0x20 && b != b'\n') {
        return Err(CheckpointError::ControlCharacter { offset });
    }
    let sep = text.find("\n\n").ok_or(CheckpointError::NoSignatureBlock)?;
    let signed_body = text
        .get(..sep + 1)
        .ok_or(CheckpointError::NoSignatureBlock)?;
    let sig_block = text
        .get(sep + 2..)
        .ok_or(CheckpointError::NoSignatureBlock)?;

    let mut lines = signed_body
        .strip_suffix('\n')
        .unwrap_or(signed_body)
        .split('\n');
    let body_err = |line, field, reason: &str| CheckpointError::Body {
        line,
        field,
        reason: reason.to_owned(),
    };
    let origin = lines.next().unwrap_or_default();
    validate_origin(origin)
        .map_err(|_| body_err(1, "origin", "empty, too long or not printable"))?;
    let size_text = lines
        .next()
        .ok_or_else(|| body_err(2, "tree size", "missing"))?;
    let tree_size = parse_decimal(size_text).ok_or_else(|| {
        body_err(
            2,
            "tree size",
            "not a decimal integer without leading zeros, at most 2^63-1",
        )
    })?;
    let root_text = lines
        .next()
        .ok_or_else(|| body_err(3, "root hash", "missing"))?;
    let root_bytes =
        b64::decode(root_text).map_err(|e| body_err(3, "root hash", &e.to_string()))?;
    let root_hash: Hash = root_bytes
        .try_into()
        .map_err(|_| body_err(3, "root hash", "not 32 bytes"))?;
    let mut time = None;
    let mut extensions = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 4;
        if let Some(value) = line.strip_prefix(TIME_PREFIX) {
            if time.is_some() {
                return Err(body_err(line_no, "time", "repeated"));
            }
            let parsed = match value.strip_prefix('-') {
                Some(abs) => parse_decimal(abs)
                    .and_then(|v| i64::try_from(v).ok())
                    .map(|v| -v),
                None => parse_decimal(value).and_then(|v| i64::try_from(v).ok()),
            };
            time = Some(parsed.ok_or_else(|| body_err(line_no, "time", "not a decimal integer"))?);
        } else {
            extensions.push(line.to_owned());
        }
    }

    if sig_block.is_empty() || !sig_block.ends_with('\n') {
        return Err(CheckpointError::SignatureLine {
            line: 1,
            reason: "signature block is empty or does not end with a newline".into(),
        });
    }
    let mut signatures = Vec::new();
    for (i, line) in sig_block
        .strip_suffix('\n')
        .unwrap_or(sig_block)
        .split('\n')
        .enumerate()
    {
        if signatures.len() == MAX_SIGNATURE_LINES {
            return Err(CheckpointError::TooManySignatures);
        }
        signatures.push(parse_signature_line(line).map_err(|reason| {
            CheckpointError::SignatureLine {
                line: i + 1,
                reason: reason.to_owned(),
            }
        })?);
    }
    Ok(ParsedCheckpoint {
        origin: origin.to_owned(),
        tree_size,
        root_hash,
        time,
        extensions,
        signatures,
        signed_body: signed_body.to_owned(),
    })
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, &'static str> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or("does not start with an em dash (U+2014) and a space")?;
    let (name, sig_b64) = rest
        .split_once(' ')
        .ok_or("expected `<key name> <base64 signature>`")?;
    validate_key_name(name).map_err(|_| "key name is empty or contains whitespace or '+'")?;
    let raw = b64::decode(sig_b64).map_err(|_| "signature is not canonical base64")?;
    let (Some(hash), Some(signature)) = (raw.get(..4), raw.get(4..)) else {
        return Err("signature is shorter than its 4-byte key hash");
    };
    if signature.is_empty() {
        return Err("signature is empty");
    }
    let key_hash: [u8; 4] = hash
        .try_into()
        .map_err(|_| "signature is shorter than its 4-byte key hash")?;
    Ok(NoteSignature {
        key_name: name.to_owned(),
        key_hash,
        signature: signature.to_vec(),
    })
}

/// Decimal without sign or leading zeros, at most `i64::MAX` (SQLite's range).
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|&v| i64::try_from(v).is_ok())
}

/// Parses a checkpoint note and checks it carries a valid signature by one
/// of `trusted` keys (signed-note rules, see module docs) and a `time` line.
pub fn verify_checkpoint(
    text: &str,
    trusted: &[AuditPublicKey],
) -> Result<Checkpoint, CheckpointError> {
    let parsed = parse_checkpoint(text)?;
    let mut verified_by = None;
    for sig in &parsed.signatures {
        let Some(key) = trusted
            .iter()
            .find(|k| k.name == sig.key_name && k.key_hash() == sig.key_hash)
        else {
            continue;
        };
        if !key.verify(parsed.signed_body.as_bytes(), &sig.signature) {
            return Err(CheckpointError::BadSignature {
                key_name: key.name.clone(),
            });
        }
        verified_by.get_or_insert_with(|| key.name.clone());
    }
    let key_name = verified_by.ok_or(CheckpointError::NoTrustedSignature)?;
    let time = parsed.time.ok_or(CheckpointError::MissingTime)?;
    Ok(Checkpoint {
        origin: parsed.origin,
        tree_size: parsed.tree_size,
        root_hash: parsed.root_hash,
        time,
        key_name,
        note: text.to_owned(),
    })
}
