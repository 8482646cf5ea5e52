//! TPM2_MakeCredential in pure Rust (TPM 2.0 Part 1, "Credential Protection").
//!
//! (For an ECC EK the seed comes from an ephemeral ECDH key instead: see [`kdf_e`].)
//!
//! The verifier seals a random secret to a TPM's EK *for one AK's name*. Only the TPM that
//! holds that EK and has that AK loaded can recover the secret with TPM2_ActivateCredential,
//! so a correct answer proves the AK lives beside the EK. For an RSA EK:
//!
//! ```text
//! seed            random, |H_nameAlg| bytes
//! encryptedSecret RSA-OAEP(EK, H_nameAlg, label "IDENTITY\0", seed)
//! symKey          KDFa(nameAlg, seed, "STORAGE", name(AK), "", EK symmetric key bits)
//! encIdentity     AES-CFB(symKey, IV = 0, u16 size || secret)
//! hmacKey         KDFa(nameAlg, seed, "INTEGRITY", "", "", |H_nameAlg| bits)
//! outerHMAC       HMAC_nameAlg(hmacKey, encIdentity || name(AK))
//! credentialBlob  u16 size || outerHMAC || encIdentity
//! ```

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use ring::hmac;
use ring::rand::SecureRandom;

use crate::evidence::tpm::structures::{
    AkPublic, HashAlg, PublicKey, SymmetricDef, TPM_ALG_AES, TPM_ALG_CFB,
};

/// What the verifier sends to the attester, TPM2B contents without their size prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub credential_blob: Vec<u8>,
    pub encrypted_secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "the EK has no name algorithm or symmetric definition (is it a TPMT_PUBLIC of a storage key?)"
    )]
    NotAStorageKey,
    #[error("unsupported EK: {0}")]
    Unsupported(String),
    #[error("the credential secret must be 1..={max} bytes, got {len}")]
    SecretSize { len: usize, max: usize },
    #[error("random number generator failed")]
    Random,
    #[error("RSA-OAEP encryption to the EK failed: {0}")]
    Encrypt(String),
}

/// SP 800-108 counter-mode KDF with HMAC, as the TPM defines KDFa.
pub fn kdf_a(
    hash: HashAlg,
    key: &[u8],
    label: &str,
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Option<Vec<u8>> {
    let algorithm = hmac_algorithm(hash)?;
    let key = hmac::Key::new(algorithm, key);
    let wanted = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(wanted + 64);
    let mut counter: u32 = 1;
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
    Some(out)
}

fn hmac_algorithm(hash: HashAlg) -> Option<hmac::Algorithm> {
    match hash {
        HashAlg::Sha1 => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha256 => Some(hmac::HMAC_SHA256),
        HashAlg::Sha384 => Some(hmac::HMAC_SHA384),
        HashAlg::Sha512 => Some(hmac::HMAC_SHA512),
        HashAlg::Sm3_256 => None,
    }
}

/// Adapts `ring`'s system RNG to the `rand_core` traits the `rsa` crate asks for.
struct RingRng<'a>(&'a dyn SecureRandom);

impl rand_core::RngCore for RingRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The trait cannot fail; an RNG failure here is unrecoverable and must not yield
        // predictable padding, so abort loudly.
        if self.0.fill(dest).is_err() {
            panic!("system random number generator failed");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest).map_err(|_| {
            rand_core::Error::from(
                core::num::NonZeroU32::new(rand_core::Error::CUSTOM_START)
                    .unwrap_or(core::num::NonZeroU32::MIN),
            )
        })
    }
}

impl rand_core::CryptoRng for RingRng<'_> {}

/// Seals `secret` to `ek` for the object named `ak_name`.
pub fn make_credential(
    ek: &AkPublic,
    ak_name: &[u8],
    secret: &[u8],
    random: &dyn SecureRandom,
) -> Result<Credential, CredentialError> {
    let (Some(name_alg), Some(symmetric)) = (ek.name_alg, ek.symmetric) else {
        return Err(CredentialError::NotAStorageKey);
    };
    let digest_len = name_alg.digest_len();
    if secret.is_empty() || secret.len() > digest_len {
        return Err(CredentialError::SecretSize {
            len: secret.len(),
            max: digest_len,
        });
    }
    let SymmetricDef {
        algorithm,
        key_bits,
        mode,
    } = symmetric;
    if algorithm != TPM_ALG_AES || mode != TPM_ALG_CFB || key_bits != 128 {
        return Err(CredentialError::Unsupported(format!(
            "EK symmetric algorithm 0x{algorithm:04x}/{key_bits}/mode 0x{mode:04x} (need AES-128-CFB)"
        )));
    }
    let (seed, encrypted_secret) = match &ek.key {
        PublicKey::Rsa { modulus, exponent } => {
            let mut seed = vec![0u8; digest_len];
            random
                .fill(&mut seed)
                .map_err(|_| CredentialError::Random)?;
            let encrypted = oaep_encrypt(modulus, exponent, name_alg, &seed, random)?;
            (seed, encrypted)
        }
        PublicKey::Ecc { curve, x, y } => ecdh_seed(*curve, x, y, name_alg, random)?,
    };

    let unsupported =
        || CredentialError::Unsupported(format!("name algorithm {}", name_alg.name()));
    let sym_key = kdf_a(
        name_alg,
        &seed,
        "STORAGE",
        ak_name,
        &[],
        u32::from(key_bits),
    )
    .ok_or_else(unsupported)?;
    let mut enc_identity = Vec::with_capacity(secret.len() + 2);
    enc_identity.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    enc_identity.extend_from_slice(secret);
    cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(&sym_key, &[0u8; 16])
        .map_err(|_| CredentialError::Unsupported("AES-128 key size".into()))?
        .encrypt(&mut enc_identity);

    let hmac_key = kdf_a(
        name_alg,
        &seed,
        "INTEGRITY",
        &[],
        &[],
        (digest_len * 8) as u32,
    )
    .ok_or_else(unsupported)?;
    let algorithm = hmac_algorithm(name_alg).ok_or_else(unsupported)?;
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(algorithm, &hmac_key));
    ctx.update(&enc_identity);
    ctx.update(ak_name);
    let outer_hmac = ctx.sign();

    let mut credential_blob = Vec::with_capacity(2 + digest_len + enc_identity.len());
    credential_blob.extend_from_slice(&(outer_hmac.as_ref().len() as u16).to_be_bytes());
    credential_blob.extend_from_slice(outer_hmac.as_ref());
    credential_blob.extend_from_slice(&enc_identity);
    Ok(Credential {
        credential_blob,
        encrypted_secret,
    })
}

/// KDFe (SP 800-56A concatenation KDF as the TPM defines it): H(counter || Z || label NUL ||
/// partyU || partyV), repeated and truncated to `bits`.
pub fn kdf_e(
    hash: HashAlg,
    z: &[u8],
    label: &str,
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Option<Vec<u8>> {
    let wanted = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(wanted + 64);
    let mut counter: u32 = 1;
    while out.len() < wanted {
        let mut input =
            Vec::with_capacity(4 + z.len() + label.len() + 1 + party_u.len() + party_v.len());
        input.extend_from_slice(&counter.to_be_bytes());
        input.extend_from_slice(z);
        input.extend_from_slice(label.as_bytes());
        input.push(0);
        input.extend_from_slice(party_u);
        input.extend_from_slice(party_v);
        out.extend(hash.digest(&input)?);
        counter += 1;
    }
    out.truncate(wanted);
    Some(out)
}

/// The ECC form of the secret: an ephemeral ECDH key with the EK; the seed is derived from
/// the shared x-coordinate, and the ephemeral public point is what the TPM receives.
fn ecdh_seed(
    curve: crate::evidence::tpm::structures::EccCurve,
    ek_x: &[u8],
    ek_y: &[u8],
    name_alg: HashAlg,
    random: &dyn SecureRandom,
) -> Result<(Vec<u8>, Vec<u8>), CredentialError> {
    use crate::evidence::tpm::structures::EccCurve;
    use ring::agreement;
    let algorithm = match curve {
        EccCurve::NistP256 => &agreement::ECDH_P256,
        EccCurve::NistP384 => &agreement::ECDH_P384,
    };
    let size = curve.coordinate_len();
    let ephemeral = agreement::EphemeralPrivateKey::generate(algorithm, random)
        .map_err(|_| CredentialError::Random)?;
    let public = ephemeral
        .compute_public_key()
        .map_err(|_| CredentialError::Random)?;
    let (ephemeral_x, ephemeral_y) = public
        .as_ref()
        .get(1..)
        .map(|xy| xy.split_at(size))
        .ok_or_else(|| CredentialError::Unsupported("ephemeral point encoding".into()))?;
    let mut peer = Vec::with_capacity(1 + 2 * size);
    peer.push(0x04);
    peer.extend_from_slice(ek_x);
    peer.extend_from_slice(ek_y);
    let z = agreement::agree_ephemeral(
        ephemeral,
        agreement::UnparsedPublicKey::new(algorithm, &peer),
        (),
        |z| Ok(z.to_vec()),
    )
    .map_err(|_| CredentialError::Encrypt("the EK's point is not on its curve".into()))?;
    let bits = (name_alg.digest_len() * 8) as u32;
    let seed = kdf_e(name_alg, &z, "IDENTITY", ephemeral_x, ek_x, bits).ok_or_else(|| {
        CredentialError::Unsupported(format!("name algorithm {}", name_alg.name()))
    })?;
    // TPMS_ECC_POINT: TPM2B x, TPM2B y.
    let mut encrypted = Vec::with_capacity(4 + 2 * size);
    for coordinate in [ephemeral_x, ephemeral_y] {
        encrypted.extend_from_slice(&(coordinate.len() as u16).to_be_bytes());
        encrypted.extend_from_slice(coordinate);
    }
    Ok((seed, encrypted))
}

fn oaep_encrypt(
    modulus: &[u8],
    exponent: &[u8],
    hash: HashAlg,
    seed: &[u8],
    random: &dyn SecureRandom,
) -> Result<Vec<u8>, CredentialError> {
    use rsa::BigUint;
    let key = rsa::RsaPublicKey::new(
        BigUint::from_bytes_be(modulus),
        BigUint::from_bytes_be(exponent),
    )
    .map_err(|e| CredentialError::Encrypt(e.to_string()))?;
    // The label includes its terminating NUL, as the TPM specification requires.
    let padding = match hash {
        HashAlg::Sha256 => rsa::Oaep::new_with_label::<sha2::Sha256, _>("IDENTITY\0"),
        HashAlg::Sha384 => rsa::Oaep::new_with_label::<sha2::Sha384, _>("IDENTITY\0"),
        other => {
            return Err(CredentialError::Unsupported(format!(
                "OAEP with {} for the EK",
                other.name()
            )));
        }
    };
    key.encrypt(&mut RingRng(random), padding, seed)
        .map_err(|e| CredentialError::Encrypt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_is_counter_mode_hmac_with_label_nul_and_bit_length() {
        // Computed by hand from the definition: one block of HMAC-SHA256.
        let key = [0x0bu8; 32];
        let out = kdf_a(HashAlg::Sha256, &key, "STORAGE", b"u", b"v", 128).unwrap();
        let mut message = 1u32.to_be_bytes().to_vec();
        message.extend(b"STORAGE\0uv");
        message.extend(128u32.to_be_bytes());
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &message);
        assert_eq!(out, expected.as_ref()[..16]);
        // Longer outputs take more blocks with an incremented counter.
        assert_eq!(
            kdf_a(HashAlg::Sha256, &key, "X", &[], &[], 512)
                .unwrap()
                .len(),
            64
        );
    }
}
