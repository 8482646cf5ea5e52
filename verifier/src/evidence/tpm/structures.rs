//! TPM 2.0 structures the verifier reads: TPMT_PUBLIC (in a TPM2B or bare), TPMS_ATTEST,
//! TPMT_SIGNATURE and TPML_PCR_SELECTION. Decoding only: nothing here decides trust.

use serde::Serialize;

use super::DecodeError;
use super::reader::Reader;

/// Largest structure accepted from outside; real ones are a few hundred bytes.
pub const MAX_STRUCTURE_BYTES: usize = 4096;

/// Most banks a PCR selection may name (TPM2_NUM_PCR_BANKS).
pub const MAX_BANKS: usize = 16;

/// Longest PCR bitmap accepted, in bytes (PC Client TPMs use 3).
pub const MAX_SIZEOF_SELECT: usize = 8;

pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// A TPM hash algorithm (TPM_ALG_ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3_256,
}

impl HashAlg {
    pub fn from_id(id: u16) -> Option<HashAlg> {
        match id {
            0x0004 => Some(HashAlg::Sha1),
            0x000b => Some(HashAlg::Sha256),
            0x000c => Some(HashAlg::Sha384),
            0x000d => Some(HashAlg::Sha512),
            0x0012 => Some(HashAlg::Sm3_256),
            _ => None,
        }
    }

    pub fn id(self) -> u16 {
        match self {
            HashAlg::Sha1 => 0x0004,
            HashAlg::Sha256 => 0x000b,
            HashAlg::Sha384 => 0x000c,
            HashAlg::Sha512 => 0x000d,
            HashAlg::Sm3_256 => 0x0012,
        }
    }

    /// Bank name as tpm2-tools and Vigil's wire format spell it.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Sm3_256 => "sm3_256",
        }
    }

    pub fn from_name(name: &str) -> Option<HashAlg> {
        [
            HashAlg::Sha1,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
            HashAlg::Sm3_256,
        ]
        .into_iter()
        .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 | HashAlg::Sm3_256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The `ring` digest for this algorithm; SM3 has none.
    pub fn ring(self) -> Option<&'static ring::digest::Algorithm> {
        match self {
            HashAlg::Sha1 => Some(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            HashAlg::Sha256 => Some(&ring::digest::SHA256),
            HashAlg::Sha384 => Some(&ring::digest::SHA384),
            HashAlg::Sha512 => Some(&ring::digest::SHA512),
            HashAlg::Sm3_256 => None,
        }
    }

    pub fn digest(self, data: &[u8]) -> Option<Vec<u8>> {
        self.ring()
            .map(|alg| ring::digest::digest(alg, data).as_ref().to_vec())
    }
}

fn hash_alg(reader: &mut Reader<'_>, field: &'static str) -> Result<HashAlg, DecodeError> {
    let offset = reader.position();
    let id = reader.u16(field)?;
    HashAlg::from_id(id).ok_or_else(|| {
        reader.invalid_at(offset, field, format!("unknown hash algorithm 0x{id:04x}"))
    })
}

/// One bank of a PCR selection: PCR indices in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrBankSelection {
    pub bank: HashAlg,
    pub pcrs: Vec<u32>,
}

/// TPML_PCR_SELECTION, banks in the order the TPM gave them.
pub type PcrSelection = Vec<PcrBankSelection>;

pub(crate) fn decode_pcr_selection(reader: &mut Reader<'_>) -> Result<PcrSelection, DecodeError> {
    let offset = reader.position();
    let count = reader.u32("TPML_PCR_SELECTION.count")? as usize;
    if count > MAX_BANKS {
        return Err(reader.invalid_at(
            offset,
            "TPML_PCR_SELECTION.count",
            format!("{count} banks exceeds the maximum {MAX_BANKS}"),
        ));
    }
    let mut selection = Vec::with_capacity(count);
    for _ in 0..count {
        let bank = hash_alg(reader, "TPMS_PCR_SELECTION.hash")?;
        let size_offset = reader.position();
        let size = usize::from(reader.u8("TPMS_PCR_SELECTION.sizeofSelect")?);
        if size > MAX_SIZEOF_SELECT {
            return Err(reader.invalid_at(
                size_offset,
                "TPMS_PCR_SELECTION.sizeofSelect",
                format!("{size} exceeds the maximum {MAX_SIZEOF_SELECT}"),
            ));
        }
        let bitmap = reader.bytes(size, "TPMS_PCR_SELECTION.pcrSelect")?;
        if selection.iter().any(|s: &PcrBankSelection| s.bank == bank) {
            return Err(reader.invalid_at(
                size_offset - 2,
                "TPMS_PCR_SELECTION.hash",
                format!("bank {} selected twice", bank.name()),
            ));
        }
        selection.push(PcrBankSelection {
            bank,
            pcrs: pcrs_from_bitmap(bitmap),
        });
    }
    Ok(selection)
}

/// PCR indices set in a TPM bitmap: byte i, bit j is PCR 8i + j.
pub fn pcrs_from_bitmap(bitmap: &[u8]) -> Vec<u32> {
    let mut pcrs = Vec::new();
    for (byte_index, byte) in bitmap.iter().enumerate() {
        for bit in 0..8u32 {
            if byte & (1 << bit) != 0 {
                pcrs.push(byte_index as u32 * 8 + bit);
            }
        }
    }
    pcrs
}

/// Decodes a bare TPML_PCR_SELECTION (no trailing bytes).
pub fn decode_selection_bytes(data: &[u8]) -> Result<PcrSelection, DecodeError> {
    let mut reader = Reader::new("TPML_PCR_SELECTION", data);
    let selection = decode_pcr_selection(&mut reader)?;
    reader.finish()?;
    Ok(selection)
}

/// TPMA_OBJECT bits that matter for an attestation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ObjectAttributes {
    pub raw: u32,
    pub fixed_tpm: bool,
    pub fixed_parent: bool,
    pub sensitive_data_origin: bool,
    pub restricted: bool,
    pub decrypt: bool,
    pub sign: bool,
}

impl ObjectAttributes {
    pub fn from_raw(raw: u32) -> Self {
        ObjectAttributes {
            raw,
            fixed_tpm: raw & 0x0000_0002 != 0,
            fixed_parent: raw & 0x0000_0010 != 0,
            sensitive_data_origin: raw & 0x0000_0020 != 0,
            restricted: raw & 0x0001_0000 != 0,
            decrypt: raw & 0x0002_0000 != 0,
            sign: raw & 0x0004_0000 != 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EccCurve {
    NistP256,
    NistP384,
}

impl EccCurve {
    pub fn coordinate_len(self) -> usize {
        match self {
            EccCurve::NistP256 => 32,
            EccCurve::NistP384 => 48,
        }
    }
}

/// The public key material of an AK, from whichever format it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus and public exponent, big-endian, without leading zeros.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// Affine coordinates, left-padded to the curve size.
    Ecc {
        curve: EccCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

impl PublicKey {
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { modulus, .. } => format!("RSA-{}", modulus.len() * 8),
            PublicKey::Ecc { curve, .. } => match curve {
                EccCurve::NistP256 => "ECC NIST P-256".into(),
                EccCurve::NistP384 => "ECC NIST P-384".into(),
            },
        }
    }
}

/// Signature schemes Vigil verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigScheme {
    RsaSsa,
    RsaPss,
    EcDsa,
}

impl SigScheme {
    fn from_id(id: u16) -> Option<SigScheme> {
        match id {
            0x0014 => Some(SigScheme::RsaSsa),
            0x0016 => Some(SigScheme::RsaPss),
            0x0018 => Some(SigScheme::EcDsa),
            _ => None,
        }
    }
}

/// An AK as the verifier sees it. A TPMT_PUBLIC gives attributes, scheme and name; a
/// SubjectPublicKeyInfo gives only the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkPublic {
    pub key: PublicKey,
    pub attributes: Option<ObjectAttributes>,
    /// The key's fixed signing scheme, if it has one.
    pub scheme: Option<(SigScheme, HashAlg)>,
    /// TPM object name: nameAlg || H_nameAlg(TPMT_PUBLIC).
    pub name: Option<Vec<u8>>,
    /// The name algorithm (also the hash of credential protection for an EK).
    pub name_alg: Option<HashAlg>,
    /// The symmetric algorithm of a storage key (an EK's is AES-128-CFB), if any.
    pub symmetric: Option<SymmetricDef>,
    /// Which format it was read from, for messages.
    pub format: &'static str,
}

/// TPMT_SYM_DEF_OBJECT of a storage key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SymmetricDef {
    pub algorithm: u16,
    pub key_bits: u16,
    pub mode: u16,
}

pub const TPM_ALG_AES: u16 = 0x0006;
pub const TPM_ALG_CFB: u16 = 0x0043;

const TPM_ALG_RSA: u16 = 0x0001;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ALG_ECDAA: u16 = 0x001a;

/// Decodes a TPM2B_PUBLIC (size-prefixed, what `tpm2_readpublic -f tss` writes).
pub fn decode_tpm2b_public(data: &[u8]) -> Result<AkPublic, DecodeError> {
    check_size("TPM2B_PUBLIC", data)?;
    let mut reader = Reader::new("TPM2B_PUBLIC", data);
    let inner = reader.sized("TPM2B_PUBLIC.size", MAX_STRUCTURE_BYTES)?;
    reader.finish()?;
    let mut ak = decode_tpmt_public(inner)?;
    ak.format = "TPM2B_PUBLIC";
    Ok(ak)
}

/// Decodes a bare TPMT_PUBLIC.
pub fn decode_tpmt_public(data: &[u8]) -> Result<AkPublic, DecodeError> {
    check_size("TPMT_PUBLIC", data)?;
    let mut r = Reader::new("TPMT_PUBLIC", data);
    let type_offset = r.position();
    let key_type = r.u16("type")?;
    let name_alg = hash_alg(&mut r, "nameAlg")?;
    let attributes = ObjectAttributes::from_raw(r.u32("objectAttributes")?);
    r.sized("authPolicy", 64)?;
    // TPMT_SYM_DEF_OBJECT: algorithm, then key bits and mode unless NULL.
    let symmetric_algorithm = r.u16("parameters.symmetric.algorithm")?;
    let symmetric = if symmetric_algorithm == TPM_ALG_NULL {
        None
    } else {
        Some(SymmetricDef {
            algorithm: symmetric_algorithm,
            key_bits: r.u16("parameters.symmetric.keyBits")?,
            mode: r.u16("parameters.symmetric.mode")?,
        })
    };
    let scheme_id = r.u16("parameters.scheme")?;
    let scheme = if scheme_id == TPM_ALG_NULL {
        None
    } else {
        let hash = hash_alg(&mut r, "parameters.scheme.hashAlg")?;
        if scheme_id == TPM_ALG_ECDAA {
            r.u16("parameters.scheme.count")?;
        }
        // ECDAA and decryption schemes (OAEP, ECDH, ...) are valid structures but not a
        // signing scheme Vigil verifies: recorded as "no signing scheme".
        SigScheme::from_id(scheme_id).map(|scheme| (scheme, hash))
    };
    let key = match key_type {
        TPM_ALG_RSA => {
            let bits = r.u16("parameters.keyBits")?;
            let exponent = r.u32("parameters.exponent")?;
            let modulus = r.sized("unique.rsa", 1024)?;
            if modulus.len() * 8 != usize::from(bits) {
                return Err(r.invalid_at(
                    type_offset,
                    "unique.rsa",
                    format!("modulus is {} bits, keyBits says {bits}", modulus.len() * 8),
                ));
            }
            let exponent = if exponent == 0 { 65_537 } else { exponent };
            PublicKey::Rsa {
                modulus: strip_leading_zeros(modulus),
                exponent: strip_leading_zeros(&exponent.to_be_bytes()),
            }
        }
        TPM_ALG_ECC => {
            let curve_offset = r.position();
            let curve = match r.u16("parameters.curveID")? {
                0x0003 => EccCurve::NistP256,
                0x0004 => EccCurve::NistP384,
                other => {
                    return Err(r.invalid_at(
                        curve_offset,
                        "parameters.curveID",
                        format!("unsupported curve 0x{other:04x}"),
                    ));
                }
            };
            if r.u16("parameters.kdf.scheme")? != TPM_ALG_NULL {
                r.u16("parameters.kdf.hashAlg")?;
            }
            let size = curve.coordinate_len();
            let x_offset = r.position();
            let x = left_pad(r.sized("unique.ecc.x", 66)?, size).ok_or_else(|| {
                r.invalid_at(x_offset, "unique.ecc.x", "longer than the curve".into())
            })?;
            let y_offset = r.position();
            let y = left_pad(r.sized("unique.ecc.y", 66)?, size).ok_or_else(|| {
                r.invalid_at(y_offset, "unique.ecc.y", "longer than the curve".into())
            })?;
            PublicKey::Ecc { curve, x, y }
        }
        other => {
            return Err(r.invalid_at(
                type_offset,
                "type",
                format!("key type 0x{other:04x} cannot sign quotes (need RSA or ECC)"),
            ));
        }
    };
    r.finish()?;
    let name = name_alg.digest(data).map(|digest| {
        let mut name = name_alg.id().to_be_bytes().to_vec();
        name.extend(digest);
        name
    });
    Ok(AkPublic {
        key,
        attributes: Some(attributes),
        scheme,
        name,
        name_alg: Some(name_alg),
        symmetric,
        format: "TPMT_PUBLIC",
    })
}

/// Decodes a DER or PEM SubjectPublicKeyInfo (what `tpm2_createak -f pem` writes).
pub fn decode_spki(data: &[u8]) -> Result<AkPublic, DecodeError> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey as X509Key;
    check_size("SubjectPublicKeyInfo", data)?;
    let invalid = |reason: String| DecodeError::Invalid {
        structure: "SubjectPublicKeyInfo",
        field: "document",
        offset: 0,
        reason,
    };
    let der = if data.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(data)
            .map_err(|e| invalid(format!("PEM does not decode: {e}")))?;
        if pem.label != "PUBLIC KEY" {
            return Err(invalid(format!(
                "PEM label is {:?}, expected PUBLIC KEY",
                pem.label
            )));
        }
        pem.contents
    } else {
        data.to_vec()
    };
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
        .map_err(|e| invalid(format!("DER does not decode: {e}")))?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            structure: "SubjectPublicKeyInfo",
            offset: der.len() - rest.len(),
            extra: rest.len(),
        });
    }
    let key = match spki
        .parsed()
        .map_err(|e| invalid(format!("key does not decode: {e}")))?
    {
        X509Key::RSA(rsa) => PublicKey::Rsa {
            modulus: strip_leading_zeros(rsa.modulus),
            exponent: strip_leading_zeros(rsa.exponent),
        },
        X509Key::EC(point) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            let curve = match curve_oid.as_str() {
                "1.2.840.10045.3.1.7" => EccCurve::NistP256,
                "1.3.132.0.34" => EccCurve::NistP384,
                other => return Err(invalid(format!("unsupported EC curve {other:?}"))),
            };
            let size = curve.coordinate_len();
            let bytes = point.data();
            match bytes.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * size => {
                    let (x, y) = xy.split_at(size);
                    PublicKey::Ecc {
                        curve,
                        x: x.to_vec(),
                        y: y.to_vec(),
                    }
                }
                _ => {
                    return Err(invalid(
                        "EC point is not an uncompressed point of the curve".into(),
                    ));
                }
            }
        }
        _ => return Err(invalid("key is neither RSA nor EC".into())),
    };
    Ok(AkPublic {
        key,
        attributes: None,
        scheme: None,
        name: None,
        name_alg: None,
        symmetric: None,
        format: "SubjectPublicKeyInfo",
    })
}

/// Reads an AK in any format tpm2-tools writes: PEM, DER SPKI, TPM2B_PUBLIC or TPMT_PUBLIC.
pub fn decode_ak_public(data: &[u8]) -> Result<AkPublic, DecodeError> {
    check_size("AK public key", data)?;
    if data.starts_with(b"-----BEGIN") || data.first() == Some(&0x30) {
        return decode_spki(data);
    }
    // A TPM2B_PUBLIC starts with its size, which equals the rest of the input.
    let prefixed = match data {
        [high, low, rest @ ..] => usize::from(u16::from_be_bytes([*high, *low])) == rest.len(),
        _ => false,
    };
    if prefixed {
        decode_tpm2b_public(data)
    } else {
        decode_tpmt_public(data)
    }
}

/// TPMS_CLOCK_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// TPMS_ATTEST; `quote` is set for TPM_ST_ATTEST_QUOTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    pub magic: u32,
    pub attest_type: u16,
    pub qualified_signer: Vec<u8>,
    pub extra_data: Vec<u8>,
    pub clock_info: ClockInfo,
    pub firmware_version: u64,
    pub quote: Option<QuoteInfo>,
}

/// TPMS_QUOTE_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    pub selection: PcrSelection,
    pub pcr_digest: Vec<u8>,
}

/// Decodes a TPMS_ATTEST. The magic and type are returned, not judged: a wrong type is a
/// verification failure, reported as such by the caller.
pub fn decode_attest(data: &[u8]) -> Result<Attest, DecodeError> {
    check_size("TPMS_ATTEST", data)?;
    let mut r = Reader::new("TPMS_ATTEST", data);
    let magic = r.u32("magic")?;
    let attest_type = r.u16("type")?;
    let qualified_signer = r.sized("qualifiedSigner", 2 + 64)?.to_vec();
    let extra_data = r.sized("extraData", 64)?.to_vec();
    let clock_info = ClockInfo {
        clock: r.u64("clockInfo.clock")?,
        reset_count: r.u32("clockInfo.resetCount")?,
        restart_count: r.u32("clockInfo.restartCount")?,
        safe: r.u8("clockInfo.safe")? != 0,
    };
    let firmware_version = r.u64("firmwareVersion")?;
    let quote = if magic == TPM_GENERATED_VALUE && attest_type == TPM_ST_ATTEST_QUOTE {
        let selection = decode_pcr_selection(&mut r)?;
        let pcr_digest = r.sized("attested.quote.pcrDigest", 64)?.to_vec();
        r.finish()?;
        Some(QuoteInfo {
            selection,
            pcr_digest,
        })
    } else {
        None
    };
    Ok(Attest {
        magic,
        attest_type,
        qualified_signer,
        extra_data,
        clock_info,
        firmware_version,
        quote,
    })
}

/// TPMT_SIGNATURE for the schemes Vigil verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    Rsa {
        scheme: SigScheme,
        hash: HashAlg,
        signature: Vec<u8>,
    },
    Ecdsa {
        hash: HashAlg,
        r: Vec<u8>,
        s: Vec<u8>,
    },
}

impl Signature {
    pub fn scheme(&self) -> SigScheme {
        match self {
            Signature::Rsa { scheme, .. } => *scheme,
            Signature::Ecdsa { .. } => SigScheme::EcDsa,
        }
    }

    pub fn hash(&self) -> HashAlg {
        match self {
            Signature::Rsa { hash, .. } | Signature::Ecdsa { hash, .. } => *hash,
        }
    }

    pub fn describe(&self) -> String {
        let scheme = match self.scheme() {
            SigScheme::RsaSsa => "RSASSA-PKCS1-v1_5",
            SigScheme::RsaPss => "RSASSA-PSS",
            SigScheme::EcDsa => "ECDSA",
        };
        format!("{scheme} with {}", self.hash().name().to_uppercase())
    }
}

pub fn decode_signature(data: &[u8]) -> Result<Signature, DecodeError> {
    check_size("TPMT_SIGNATURE", data)?;
    let mut r = Reader::new("TPMT_SIGNATURE", data);
    let offset = r.position();
    let algorithm = r.u16("sigAlg")?;
    let signature = match SigScheme::from_id(algorithm) {
        Some(scheme @ (SigScheme::RsaSsa | SigScheme::RsaPss)) => Signature::Rsa {
            scheme,
            hash: hash_alg(&mut r, "signature.hash")?,
            signature: r.sized("signature.sig", 1024)?.to_vec(),
        },
        Some(SigScheme::EcDsa) => Signature::Ecdsa {
            hash: hash_alg(&mut r, "signature.hash")?,
            r: r.sized("signature.signatureR", 66)?.to_vec(),
            s: r.sized("signature.signatureS", 66)?.to_vec(),
        },
        None => {
            return Err(r.invalid_at(
                offset,
                "sigAlg",
                format!("unsupported signature algorithm 0x{algorithm:04x} (need RSASSA, RSAPSS or ECDSA)"),
            ));
        }
    };
    r.finish()?;
    Ok(signature)
}

fn check_size(structure: &'static str, data: &[u8]) -> Result<(), DecodeError> {
    if data.len() > MAX_STRUCTURE_BYTES {
        return Err(DecodeError::TooLarge {
            structure,
            size: data.len(),
            limit: MAX_STRUCTURE_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default().to_vec()
}

/// Left-pads a big-endian integer to `size` bytes; None if it is longer (after leading zeros).
pub(crate) fn left_pad(bytes: &[u8], size: usize) -> Option<Vec<u8>> {
    let trimmed = strip_leading_zeros(bytes);
    if trimmed.len() > size {
        return None;
    }
    let mut out = vec![0u8; size - trimmed.len()];
    out.extend(trimmed);
    Some(out)
}
