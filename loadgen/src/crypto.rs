//! The few `ring` calls whose signatures differ between ring and aws-lc-rs (the workspace's
//! `ring` may be either), kept in one place so a backend switch touches only this file.

use ring::agreement;
use ring::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm};

/// Loads a PKCS#8 ECDSA key (ring takes an RNG here, aws-lc-rs does not).
pub fn ecdsa_from_pkcs8(
    algorithm: &'static EcdsaSigningAlgorithm,
    pkcs8: &[u8],
) -> Result<EcdsaKeyPair, String> {
    EcdsaKeyPair::from_pkcs8(algorithm, pkcs8).map_err(|e| format!("PKCS#8 ECDSA key: {e}"))
}

/// ECDH with a single-use private key and an uncompressed P-256 point: the shared x-coordinate.
pub fn ecdh(key: agreement::EphemeralPrivateKey, peer: &[u8]) -> Result<Vec<u8>, String> {
    agreement::agree_ephemeral(
        key,
        agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer),
        (),
        |z| Ok(z.to_vec()),
    )
    .map_err(|_| "ECDH with the EK failed (point not on the curve?)".to_string())
}
