//! A software TPM, only as far as attestation needs: TPM 2.0 structures encoded byte for byte
//! as a TPM writes them (TCG TPM 2.0 Part 2, big-endian, TPM2B = u16 size || bytes), an ECDSA
//! P-256 AK that signs quotes, and the EK half of credential activation.
//!
//! Everything here is written from the specification, not from the verifier's decoder, so
//! the verifier is exercised against an independent encoder.

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use ring::agreement;
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

pub const TPM_ALG_SHA256: u16 = 0x000b;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_ECDSA: u16 = 0x0018;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ALG_AES: u16 = 0x0006;
const TPM_ALG_CFB: u16 = 0x0043;
const TPM_ECC_NIST_P256: u16 = 0x0003;
const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// TPMA_OBJECT of an AK: fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth |
/// restricted | sign.
pub const AK_ATTRIBUTES: u32 =
    0x0000_0002 | 0x0000_0010 | 0x0000_0020 | 0x0000_0040 | 0x0001_0000 | 0x0004_0000;
/// TPMA_OBJECT of the TCG default ECC EK (template L-2): fixedTPM | fixedParent |
/// sensitiveDataOrigin | adminWithPolicy | restricted | decrypt.
pub const EK_ATTRIBUTES: u32 =
    0x0000_0002 | 0x0000_0010 | 0x0000_0020 | 0x0000_0080 | 0x0001_0000 | 0x0002_0000;
/// The EK template's authPolicy: PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile).
const EK_AUTH_POLICY: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// Appends a TPM2B (u16 size, then the bytes).
pub fn put_tpm2b(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// Splits an uncompressed SEC1 P-256 point into x and y.
fn point_xy(point: &[u8]) -> Option<(&[u8], &[u8])> {
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == 64 => Some(xy.split_at(32)),
        _ => None,
    }
}

/// TPMT_PUBLIC of an ECC P-256 key (TPMS_ECC_PARMS: symmetric, scheme, curve, kdf; unique x, y).
fn ecc_tpmt_public(
    attributes: u32,
    auth_policy: &[u8],
    symmetric: Option<(u16, u16, u16)>,
    scheme: Option<(u16, u16)>,
    point: &[u8],
) -> Option<Vec<u8>> {
    let (x, y) = point_xy(point)?;
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&TPM_ALG_ECC.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    put_tpm2b(&mut out, auth_policy);
    match symmetric {
        Some((algorithm, bits, mode)) => {
            for v in [algorithm, bits, mode] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        None => out.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()),
    }
    match scheme {
        Some((scheme, hash)) => {
            out.extend_from_slice(&scheme.to_be_bytes());
            out.extend_from_slice(&hash.to_be_bytes());
        }
        None => out.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()),
    }
    out.extend_from_slice(&TPM_ECC_NIST_P256.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_NULL.to_be_bytes()); // kdf
    put_tpm2b(&mut out, x);
    put_tpm2b(&mut out, y);
    Some(out)
}

/// A TPM object name: nameAlg || SHA-256(TPMT_PUBLIC).
fn object_name(tpmt_public: &[u8]) -> Vec<u8> {
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&sha256(tpmt_public));
    name
}

fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    put_tpm2b(&mut out, bytes);
    out
}

/// The attestation key: signs quotes, as a TPM's restricted ECDSA P-256 key would.
pub struct Ak {
    key: EcdsaKeyPair,
    /// TPM2B_PUBLIC.
    pub public: Vec<u8>,
    pub name: Vec<u8>,
    /// The qualified name (the signer's name under the owner hierarchy), for qualifiedSigner.
    pub qualified_name: Vec<u8>,
}

impl Ak {
    pub fn generate(rng: &SystemRandom) -> Result<Ak, String> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
            .map_err(|_| "AK key generation failed".to_string())?;
        let key =
            crate::crypto::ecdsa_from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())?;
        let tpmt = ecc_tpmt_public(
            AK_ATTRIBUTES,
            &[],
            None,
            Some((TPM_ALG_ECDSA, TPM_ALG_SHA256)),
            key.public_key().as_ref(),
        )
        .ok_or("AK public key is not an uncompressed P-256 point")?;
        let name = object_name(&tpmt);
        // QN = nameAlg || H(QN(parent) || name); the parent here is the owner hierarchy,
        // whose qualified name is its handle (TPM_RH_OWNER).
        let mut qn_input = 0x4000_0001u32.to_be_bytes().to_vec();
        qn_input.extend_from_slice(&name);
        let mut qualified_name = TPM_ALG_SHA256.to_be_bytes().to_vec();
        qualified_name.extend_from_slice(&sha256(&qn_input));
        Ok(Ak {
            key,
            public: tpm2b(&tpmt),
            name,
            qualified_name,
        })
    }

    /// TPM2_Quote over `pcrs` (sha256 bank: index and value, ascending), returning
    /// (TPMS_ATTEST, TPMT_SIGNATURE).
    pub fn quote(
        &self,
        rng: &SystemRandom,
        extra_data: &[u8],
        pcrs: &[(u32, [u8; 32])],
        clock: u64,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let mut attest = Vec::with_capacity(160);
        attest.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
        attest.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
        put_tpm2b(&mut attest, &self.qualified_name);
        put_tpm2b(&mut attest, extra_data);
        // TPMS_CLOCK_INFO: clock, resetCount, restartCount, safe.
        attest.extend_from_slice(&clock.to_be_bytes());
        attest.extend_from_slice(&1u32.to_be_bytes());
        attest.extend_from_slice(&0u32.to_be_bytes());
        attest.push(1);
        // firmwareVersion (vendor-defined; this is a 1.59-era value).
        attest.extend_from_slice(&0x0002_0000_0016_0000u64.to_be_bytes());
        // TPML_PCR_SELECTION with one TPMS_PCR_SELECTION (sha256, 3-byte bitmap).
        attest.extend_from_slice(&1u32.to_be_bytes());
        attest.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        let mut bitmap = [0u8; 3];
        let mut concatenated = Vec::with_capacity(pcrs.len() * 32);
        for (index, value) in pcrs {
            let (byte, bit) = ((*index / 8) as usize, index % 8);
            if let Some(b) = bitmap.get_mut(byte) {
                *b |= 1 << bit;
            } else {
                return Err(format!("PCR {index} is outside a PC Client TPM's 24"));
            }
            concatenated.extend_from_slice(value);
        }
        attest.push(bitmap.len() as u8);
        attest.extend_from_slice(&bitmap);
        put_tpm2b(&mut attest, &sha256(&concatenated));

        let signature = self
            .key
            .sign(rng, &attest)
            .map_err(|_| "AK signing failed".to_string())?;
        let (r, s) = signature.as_ref().split_at(32);
        let mut tpmt_signature = Vec::with_capacity(72);
        tpmt_signature.extend_from_slice(&TPM_ALG_ECDSA.to_be_bytes());
        tpmt_signature.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        put_tpm2b(&mut tpmt_signature, r);
        put_tpm2b(&mut tpmt_signature, s);
        Ok((attest, tpmt_signature))
    }
}

/// The endorsement key: an ECC P-256 storage key from the TCG default template. Its private
/// half is single-use (one ECDH), which is all one registration needs.
pub struct Ek {
    key: std::sync::Mutex<Option<agreement::EphemeralPrivateKey>>,
    /// TPM2B_PUBLIC.
    pub public: Vec<u8>,
    /// Uncompressed SEC1 point, for the EK certificate.
    pub point: Vec<u8>,
    x: Vec<u8>,
}

impl Ek {
    pub fn generate(rng: &SystemRandom) -> Result<Ek, String> {
        let key = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, rng)
            .map_err(|_| "EK key generation failed".to_string())?;
        let point = key
            .compute_public_key()
            .map_err(|_| "EK public key".to_string())?;
        let x = point_xy(point.as_ref()).ok_or("EK point")?.0.to_vec();
        let tpmt = ecc_tpmt_public(
            EK_ATTRIBUTES,
            &EK_AUTH_POLICY,
            Some((TPM_ALG_AES, 128, TPM_ALG_CFB)),
            None,
            point.as_ref(),
        )
        .ok_or("EK public key is not an uncompressed P-256 point")?;
        Ok(Ek {
            key: std::sync::Mutex::new(Some(key)),
            public: tpm2b(&tpmt),
            point: point.as_ref().to_vec(),
            x,
        })
    }

    /// SHA-256 of the TPM2B_PUBLIC, the form `vigil serve --ek-allow` takes.
    pub fn fingerprint(&self) -> String {
        hex::encode(sha256(&self.public))
    }

    /// TPM2_ActivateCredential for an object named `ak_name`: recovers the seed by ECDH with
    /// the ephemeral point in `encrypted_secret`, checks the outer HMAC, decrypts the secret.
    pub fn activate_credential(
        &self,
        ak_name: &[u8],
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, String> {
        // encrypted_secret: TPMS_ECC_POINT (TPM2B x, TPM2B y).
        let mut reader = crate::wire::Reader::new(encrypted_secret);
        let ex = reader.tpm2b().ok_or("encrypted secret: x")?;
        let ey = reader.tpm2b().ok_or("encrypted secret: y")?;
        if !reader.is_empty() || ex.len() != 32 || ey.len() != 32 {
            return Err("encrypted secret is not a P-256 point".into());
        }
        let mut peer = vec![0x04];
        peer.extend_from_slice(ex);
        peer.extend_from_slice(ey);
        let key = self
            .key
            .lock()
            .map_err(|_| "EK lock poisoned".to_string())?
            .take()
            .ok_or("the EK was already used for an activation")?;
        let z = crate::crypto::ecdh(key, &peer)?;
        let seed = kdf_e(&z, "IDENTITY", ex, &self.x, 256);

        let mut reader = crate::wire::Reader::new(credential_blob);
        let outer_hmac = reader.tpm2b().ok_or("credential blob: integrity")?;
        let enc_identity = reader.rest();
        let hmac_key = kdf_a(&seed, "INTEGRITY", &[], &[], 256);
        let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, &hmac_key));
        ctx.update(enc_identity);
        ctx.update(ak_name);
        let expected = ctx.sign();
        if expected.as_ref() != outer_hmac {
            return Err("credential integrity check failed (wrong EK or AK name)".into());
        }
        let sym_key = kdf_a(&seed, "STORAGE", ak_name, &[], 128);
        let mut identity = enc_identity.to_vec();
        cfb_mode::Decryptor::<aes::Aes128>::new_from_slices(&sym_key, &[0u8; 16])
            .map_err(|_| "AES key size".to_string())?
            .decrypt(&mut identity);
        let mut reader = crate::wire::Reader::new(&identity);
        let secret = reader.tpm2b().ok_or("credential: secret size")?;
        if !reader.is_empty() {
            return Err("credential: trailing bytes".into());
        }
        Ok(secret.to_vec())
    }
}

/// KDFa (SP 800-108 counter mode, HMAC-SHA256) as TPM 2.0 Part 1 defines it.
fn kdf_a(key: &[u8], label: &str, context_u: &[u8], context_v: &[u8], bits: u32) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let wanted = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(wanted + 32);
    let mut counter = 1u32;
    while out.len() < wanted {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter += 1;
    }
    out.truncate(wanted);
    out
}

/// KDFe (SP 800-56A concatenation KDF, SHA-256) as TPM 2.0 Part 1 defines it.
fn kdf_e(z: &[u8], label: &str, party_u: &[u8], party_v: &[u8], bits: u32) -> Vec<u8> {
    let wanted = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(wanted + 32);
    let mut counter = 1u32;
    while out.len() < wanted {
        let mut input = counter.to_be_bytes().to_vec();
        input.extend_from_slice(z);
        input.extend_from_slice(label.as_bytes());
        input.push(0);
        input.extend_from_slice(party_u);
        input.extend_from_slice(party_v);
        out.extend_from_slice(&sha256(&input));
        counter += 1;
    }
    out.truncate(wanted);
    out
}
