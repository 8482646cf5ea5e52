//! IMA file signatures: the `security.ima` extended attribute that the `ima-sig`,
//! `ima-sigv2` and `ima-modsig` templates carry in their `sig` field, checked against the
//! digest the entry records.
//!
//! ```text
//! offset 0  type       0x03 (EVM_IMA_XATTR_DIGSIG) or 0x06 (IMA_VERITY_DIGSIG)
//!        1  version    2: the signature covers the file digest itself
//!                      3: it covers H(type || hash_algo || digest), the used part of the
//!                         kernel's `struct ima_file_id`, hashed with the digest's algorithm
//!        2  hash_algo  the kernel's `enum hash_algo` (sha256 = 4, sha384 = 5, ...)
//!        3  keyid      4 bytes, big-endian: the last 4 bytes of the signing certificate's
//!                      subjectKeyIdentifier, or of the SHA-1 of its public key bits
//!        7  sig_size   u16, big-endian
//!        9  signature  RSA PKCS#1 v1.5 (DigestInfo of hash_algo), or an ECDSA signature (DER)
//! ```
//!
//! The digest is never recomputed here: IMA measured the file, the template hash protects
//! the recorded digest, and this module checks that a configured key signed that digest.

use std::fmt;

use ecdsa::signature::hazmat::PrehashVerifier;
use rsa::{Pkcs1v15Sign, RsaPublicKey, pkcs1::DecodeRsaPublicKey, traits::PublicKeyParts};
use serde::Serialize;
use sha2::Digest;
use x509_parser::prelude::{FromDer, ParsedExtension, SubjectPublicKeyInfo, X509Certificate};

use crate::hash::HashAlg;
use crate::template::Measurement;

/// `enum evm_ima_xattr_type`: a digital signature over the file digest.
pub const EVM_IMA_XATTR_DIGSIG: u8 = 0x03;
/// `enum evm_ima_xattr_type`: a signature (version 3) over an fs-verity file digest.
pub const IMA_VERITY_DIGSIG: u8 = 0x06;
/// Bytes before the signature: type, version, hash_algo, keyid, sig_size.
pub const HEADER_LEN: usize = 9;

/// The kernel's `enum hash_algo` (include/uapi/linux/hash_info.h), by number.
const HASH_ALGO_NAMES: [&str; 23] = [
    "md4",
    "md5",
    "sha1",
    "rmd160",
    "sha256",
    "sha384",
    "sha512",
    "sha224",
    "rmd128",
    "rmd256",
    "rmd320",
    "wp256",
    "wp384",
    "wp512",
    "tgr128",
    "tgr160",
    "tgr192",
    "sm3",
    "streebog256",
    "streebog512",
    "sha3-256",
    "sha3-384",
    "sha3-512",
];

/// The kernel's name for hash algorithm `id` (`enum hash_algo`), if it has one.
pub fn hash_algo_name(id: u8) -> Option<&'static str> {
    HASH_ALGO_NAMES.get(usize::from(id)).copied()
}

/// The hash algorithms whose signatures Vigil checks. MD5 and SHA-1 signatures are refused:
/// a collision in the digest would let one signature cover two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl SigHash {
    fn from_id(id: u8) -> Option<SigHash> {
        match id {
            4 => Some(SigHash::Sha256),
            5 => Some(SigHash::Sha384),
            6 => Some(SigHash::Sha512),
            7 => Some(SigHash::Sha224),
            _ => None,
        }
    }

    fn digest_len(self) -> usize {
        match self {
            SigHash::Sha224 => 28,
            SigHash::Sha256 => 32,
            SigHash::Sha384 => 48,
            SigHash::Sha512 => 64,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            SigHash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            SigHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            SigHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            SigHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// PKCS#1 v1.5 padding with this hash's DigestInfo.
    fn pkcs1v15(self) -> Pkcs1v15Sign {
        match self {
            SigHash::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
            SigHash::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            SigHash::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            SigHash::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

/// A signature as the `security.ima` attribute holds it; `signature` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaSignature<'a> {
    /// [`EVM_IMA_XATTR_DIGSIG`] or [`IMA_VERITY_DIGSIG`].
    pub xattr_type: u8,
    /// 2 or 3.
    pub version: u8,
    /// The kernel's `enum hash_algo` number (see [`hash_algo_name`]).
    pub hash_algo: u8,
    pub key_id: [u8; 4],
    pub signature: &'a [u8],
}

impl ImaSignature<'_> {
    /// The key id as the kernel and evmctl print it (8 hex digits).
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id)
    }
}

/// A header that cannot be read: which field, at which byte offset, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} at offset {offset}: {reason}")]
pub struct HeaderError {
    pub field: &'static str,
    pub offset: usize,
    pub reason: String,
}

/// Reads the header of an IMA signature (`security.ima`) and checks that the announced
/// signature size is exactly what follows it, as the kernel does.
pub fn parse_signature(bytes: &[u8]) -> Result<ImaSignature<'_>, HeaderError> {
    let missing = |field: &'static str, offset: usize, len: usize| HeaderError {
        field,
        offset,
        reason: format!(
            "the signature is {} bytes, the field needs {len} from offset {offset}",
            bytes.len()
        ),
    };
    let byte = |field: &'static str, offset: usize| {
        bytes
            .get(offset)
            .copied()
            .ok_or_else(|| missing(field, offset, 1))
    };
    let xattr_type = byte("type", 0)?;
    if xattr_type != EVM_IMA_XATTR_DIGSIG && xattr_type != IMA_VERITY_DIGSIG {
        let what = match xattr_type {
            0x01 | 0x04 => "a bare file digest (IMA_XATTR_DIGEST), not a signature",
            0x02 => "an EVM HMAC, not a file signature",
            0x05 => "an EVM portable signature, not a file signature",
            _ => "not an IMA signature type",
        };
        return Err(HeaderError {
            field: "type",
            offset: 0,
            reason: format!("0x{xattr_type:02x} is {what} (expected 0x03 or 0x06)"),
        });
    }
    let version = byte("version", 1)?;
    let version_ok = match xattr_type {
        IMA_VERITY_DIGSIG => version == 3,
        _ => version == 2 || version == 3,
    };
    if !version_ok {
        let expected = if xattr_type == IMA_VERITY_DIGSIG {
            "3 for an fs-verity signature"
        } else {
            "2 or 3; version 1 is the pre-asymmetric-key format, not supported"
        };
        return Err(HeaderError {
            field: "version",
            offset: 1,
            reason: format!("version {version} (expected {expected})"),
        });
    }
    let hash_algo = byte("hash_algo", 2)?;
    let key_id: [u8; 4] = bytes
        .get(3..7)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| missing("keyid", 3, 4))?;
    let size: [u8; 2] = bytes
        .get(7..9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| missing("sig_size", 7, 2))?;
    let size = usize::from(u16::from_be_bytes(size));
    let signature = bytes.get(HEADER_LEN..).unwrap_or_default();
    if size == 0 || signature.len() != size {
        return Err(HeaderError {
            field: "signature",
            offset: HEADER_LEN,
            reason: format!(
                "sig_size announces {size} bytes, {} follow the header",
                signature.len()
            ),
        });
    }
    Ok(ImaSignature {
        xattr_type,
        version,
        hash_algo,
        key_id,
        signature,
    })
}

/// The algorithm of a verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum KeyAlgorithm {
    Rsa { bits: usize },
    EcdsaP256,
    EcdsaP384,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
        }
    }
}

#[derive(Clone)]
enum PublicKey {
    Rsa(Box<RsaPublicKey>),
    P256(Box<ecdsa::VerifyingKey<p256::NistP256>>),
    P384(Box<ecdsa::VerifyingKey<p384::NistP384>>),
}

/// A public key that may have signed files, with the id IMA signatures name it by.
#[derive(Clone)]
pub struct VerificationKey {
    pub key_id: [u8; 4],
    /// Where the key came from: the label given to [`parse_keys`], with `[n]` (from 1) when
    /// the input held several keys.
    pub label: String,
    /// The certificate's subject, when the key came from a certificate.
    pub subject: Option<String>,
    pub algorithm: KeyAlgorithm,
    key: PublicKey,
}

impl VerificationKey {
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id)
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("key_id", &self.key_id_hex())
            .field("label", &self.label)
            .field("subject", &self.subject)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key file that cannot be used: its label, the PEM block (from 1) if any, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}{}: {reason}", block.map(|b| format!(" (PEM block {b})")).unwrap_or_default())]
pub struct KeyError {
    pub label: String,
    pub block: Option<usize>,
    pub reason: String,
}

/// Smallest and largest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 4096;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Reads the keys in `data`: PEM public keys (`PUBLIC KEY`, SubjectPublicKeyInfo) and PEM
/// certificates, any number of them in one file, or one DER certificate or DER public key.
/// RSA keys of 2048 to 4096 bits and ECDSA keys on P-256 and P-384 are accepted; any other
/// block or key is an error naming it (a key file that only partly loads is not trusted).
pub fn parse_keys(label: &str, data: &[u8]) -> Result<Vec<VerificationKey>, KeyError> {
    let error = |block: Option<usize>, reason: String| KeyError {
        label: label.to_owned(),
        block,
        reason,
    };
    // PEM anywhere (openssl may put text such as "Bag Attributes" before a block).
    let is_pem = data.windows(10).any(|w| w == b"-----BEGIN");
    if !is_pem {
        let key = key_from_der(data).map_err(|reason| error(None, reason))?;
        return Ok(vec![key.finish(label.to_owned())]);
    }
    let mut keys = Vec::new();
    for (index, block) in x509_parser::pem::Pem::iter_from_buffer(data).enumerate() {
        let number = index + 1;
        let block = block.map_err(|e| error(Some(number), format!("not PEM: {e}")))?;
        let key = match block.label.as_str() {
            "CERTIFICATE" => key_from_certificate(&block.contents),
            "PUBLIC KEY" => key_from_spki(&block.contents),
            other => Err(format!(
                "a {other:?} block; expected CERTIFICATE or PUBLIC KEY"
            )),
        }
        .map_err(|reason| error(Some(number), reason))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(error(None, "no PEM block".into()));
    }
    let several = keys.len() > 1;
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(index, key)| {
            key.finish(if several {
                format!("{label}[{}]", index + 1)
            } else {
                label.to_owned()
            })
        })
        .collect())
}

/// A key before its label is known.
struct Loaded {
    key_id: [u8; 4],
    subject: Option<String>,
    algorithm: KeyAlgorithm,
    key: PublicKey,
}

impl Loaded {
    fn finish(self, label: String) -> VerificationKey {
        VerificationKey {
            key_id: self.key_id,
            label,
            subject: self.subject,
            algorithm: self.algorithm,
            key: self.key,
        }
    }
}

fn key_from_der(der: &[u8]) -> Result<Loaded, String> {
    match key_from_certificate(der) {
        Ok(key) => Ok(key),
        Err(as_certificate) => key_from_spki(der).map_err(|as_spki| {
            format!("neither a DER certificate ({as_certificate}) nor a DER public key ({as_spki})")
        }),
    }
}

fn key_from_certificate(der: &[u8]) -> Result<Loaded, String> {
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the certificate", rest.len()));
    }
    let mut skid = None;
    for extension in certificate.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = extension.parsed_extension() {
            skid = Some(id.0);
        }
    }
    let subject = certificate.subject().to_string();
    let mut key = key_from_info(certificate.public_key())
        .map_err(|e| format!("certificate {subject:?}: {e}"))?;
    if let Some(skid) = skid {
        // The kernel finds the key by the tail of its subjectKeyIdentifier.
        let tail = skid
            .len()
            .checked_sub(4)
            .and_then(|start| skid.get(start..))
            .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
            .ok_or_else(|| {
                format!(
                    "certificate {subject:?}: subjectKeyIdentifier of {} bytes is shorter than a key id",
                    skid.len()
                )
            })?;
        key.key_id = tail;
    }
    key.subject = Some(subject);
    Ok(key)
}

fn key_from_spki(der: &[u8]) -> Result<Loaded, String> {
    let (rest, info) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the public key", rest.len()));
    }
    key_from_info(&info)
}

/// The key and its id by default: the last 4 bytes of the SHA-1 of the public key bits
/// (what evmctl computes when no certificate gives a subjectKeyIdentifier).
fn key_from_info(info: &SubjectPublicKeyInfo<'_>) -> Result<Loaded, String> {
    let bits: &[u8] = &info.subject_public_key.data;
    let sha1 = HashAlg::Sha1.digest(bits);
    let key_id = sha1
        .get(16..20)
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .ok_or_else(|| "SHA-1 of the key is not 20 bytes".to_owned())?;
    let algorithm = info.algorithm.algorithm.to_id_string();
    let (algorithm, key) = match algorithm.as_str() {
        OID_RSA_ENCRYPTION => {
            let key =
                RsaPublicKey::from_pkcs1_der(bits).map_err(|e| format!("RSA public key: {e}"))?;
            let modulus_bits = key.n().bits();
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&modulus_bits) {
                return Err(format!(
                    "RSA-{modulus_bits}: only {RSA_MIN_BITS} to {RSA_MAX_BITS}-bit RSA keys are accepted"
                ));
            }
            (
                KeyAlgorithm::Rsa { bits: modulus_bits },
                PublicKey::Rsa(Box::new(key)),
            )
        }
        OID_EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .ok_or_else(|| "EC public key without a named curve".to_owned())?;
            match curve.as_str() {
                OID_P256 => (
                    KeyAlgorithm::EcdsaP256,
                    PublicKey::P256(Box::new(
                        ecdsa::VerifyingKey::from_sec1_bytes(bits)
                            .map_err(|_| "P-256 public key: not a point on the curve")?,
                    )),
                ),
                OID_P384 => (
                    KeyAlgorithm::EcdsaP384,
                    PublicKey::P384(Box::new(
                        ecdsa::VerifyingKey::from_sec1_bytes(bits)
                            .map_err(|_| "P-384 public key: not a point on the curve")?,
                    )),
                ),
                other => {
                    return Err(format!(
                        "EC curve {other} is not supported (P-256 and P-384 are)"
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "public key algorithm {other} is not supported (RSA and ECDSA P-256/P-384 are)"
            ));
        }
    };
    Ok(Loaded {
        key_id,
        subject: None,
        algorithm,
        key,
    })
}

/// A signature that verified, and with which key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub key_label: String,
    #[serde(serialize_with = "hex_key_id")]
    pub key_id: [u8; 4],
    pub key_algorithm: KeyAlgorithm,
    /// Signature format version (2 or 3).
    pub version: u8,
    /// The signature's hash algorithm, as the kernel names it.
    pub hash_algorithm: &'static str,
}

fn hex_key_id<S: serde::Serializer>(id: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

/// Why a measurement's signature does not stand. Each names the file (or buffer) measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "{name}: no signature (template {template} carries none, or the file has no security.ima signature)"
    )]
    NoSignature { template: String, name: String },
    #[error("{name}: malformed signature header: {error}")]
    Malformed { name: String, error: HeaderError },
    #[error(
        "{name}: the signature's hash algorithm is {signature}, the measured digest's is {measurement}"
    )]
    HashMismatch {
        name: String,
        signature: String,
        measurement: String,
    },
    #[error("{name}: {reason}")]
    DigestMismatch { name: String, reason: String },
    #[error("{name}: unsupported: {reason}")]
    Unsupported { name: String, reason: String },
    #[error("{name}: no configured key has key id {key_id} (the signature names it)")]
    UnknownKey { name: String, key_id: String },
    #[error("{name}: the signature does not verify with {tried} (key id {key_id})")]
    BadSignature {
        name: String,
        key_id: String,
        tried: String,
    },
}

/// Checks the signature `measurement` carries against `keys`: the key with the signature's
/// key id must have signed the recorded digest (version 2) or the hash of the kernel's
/// `struct ima_file_id` for it (version 3), with the digest's own hash algorithm. When
/// several keys share the id, one of them must verify.
pub fn verify(
    measurement: &Measurement,
    keys: &[VerificationKey],
) -> Result<Verified, SignatureError> {
    let name = || measurement.name.clone();
    let bytes = measurement
        .signature
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SignatureError::NoSignature {
            template: measurement.template.clone(),
            name: name(),
        })?;
    let header = parse_signature(bytes).map_err(|error| SignatureError::Malformed {
        name: name(),
        error,
    })?;
    let signature_alg = hash_algo_name(header.hash_algo);
    let measured_alg = measurement.algorithm.as_str();
    let same_alg = signature_alg.is_some_and(|alg| {
        alg.eq_ignore_ascii_case(measured_alg)
            || (alg == "sm3" && measured_alg.eq_ignore_ascii_case("sm3_256"))
    });
    if !same_alg {
        return Err(SignatureError::HashMismatch {
            name: name(),
            signature: signature_alg.map_or_else(
                || format!("hash_algo {} (unknown to the kernel)", header.hash_algo),
                str::to_owned,
            ),
            measurement: measured_alg.to_owned(),
        });
    }
    let alg_name = signature_alg.unwrap_or("unknown");
    let Some(hash) = SigHash::from_id(header.hash_algo) else {
        return Err(SignatureError::Unsupported {
            name: name(),
            reason: format!(
                "{alg_name} signatures are not accepted (sha224, sha256, sha384 and sha512 are)"
            ),
        });
    };
    if measurement.digest.len() != hash.digest_len() {
        return Err(SignatureError::DigestMismatch {
            name: name(),
            reason: format!(
                "the measured digest is {} bytes, a {alg_name} digest {}",
                measurement.digest.len(),
                hash.digest_len()
            ),
        });
    }
    // ima-ngv2/ima-sigv2 say what the digest is: only fs-verity signatures cover a verity
    // digest, and they cover nothing else.
    let verity_sig = header.xattr_type == IMA_VERITY_DIGSIG;
    match measurement.digest_type.as_deref() {
        Some("verity") if !verity_sig => {
            return Err(SignatureError::DigestMismatch {
                name: name(),
                reason: "the digest is an fs-verity digest, the signature is not an fs-verity signature (type 0x06)".into(),
            });
        }
        Some("ima") if verity_sig => {
            return Err(SignatureError::DigestMismatch {
                name: name(),
                reason: "the signature is an fs-verity signature (type 0x06), the digest is a file data digest".into(),
            });
        }
        _ => {}
    }
    let candidates: Vec<&VerificationKey> =
        keys.iter().filter(|k| k.key_id == header.key_id).collect();
    if candidates.is_empty() {
        return Err(SignatureError::UnknownKey {
            name: name(),
            key_id: header.key_id_hex(),
        });
    }
    let signed: Vec<u8> = if header.version == 3 {
        let mut file_id = Vec::with_capacity(2 + measurement.digest.len());
        file_id.push(header.xattr_type);
        file_id.push(header.hash_algo);
        file_id.extend_from_slice(&measurement.digest);
        hash.digest(&file_id)
    } else {
        measurement.digest.clone()
    };
    for key in &candidates {
        if verifies(key, hash, &signed, header.signature) {
            return Ok(Verified {
                key_label: key.label.clone(),
                key_id: key.key_id,
                key_algorithm: key.algorithm,
                version: header.version,
                hash_algorithm: alg_name,
            });
        }
    }
    let tried: Vec<String> = candidates
        .iter()
        .map(|k| format!("{} ({})", k.label, k.algorithm))
        .collect();
    Err(SignatureError::BadSignature {
        name: name(),
        key_id: header.key_id_hex(),
        tried: tried.join(", "),
    })
}

fn verifies(key: &VerificationKey, hash: SigHash, digest: &[u8], signature: &[u8]) -> bool {
    match &key.key {
        PublicKey::Rsa(key) => key.verify(hash.pkcs1v15(), digest, signature).is_ok(),
        PublicKey::P256(key) => ecdsa::Signature::<p256::NistP256>::from_der(signature)
            .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok()),
        PublicKey::P384(key) => ecdsa::Signature::<p384::NistP384>::from_der(signature)
            .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok()),
    }
}
