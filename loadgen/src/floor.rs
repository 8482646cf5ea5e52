//! The floor: how many hosts per second this machine could appraise if appraisal were only
//! its signature verifications (one P-256 quote, G P-384 GPU reports), with the same crypto
//! library the verifier uses, on `threads` threads. It bounds what any verifier could reach.

use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};

/// Hosts per second: `gpus` P-384 and one P-256 verification each.
pub fn measure(gpus: usize, threads: usize, seconds: f64) -> Result<f64, String> {
    let rng = SystemRandom::new();
    let message = vec![0x5au8; 2048];
    let p256 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "floor: P-256 key")?;
    let p256 = crate::crypto::ecdsa_from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p256.as_ref())?;
    let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
        .map_err(|_| "floor: P-384 key")?;
    let p384 = crate::crypto::ecdsa_from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, p384.as_ref())?;
    let sig256 = p256.sign(&rng, &message).map_err(|_| "floor: sign")?;
    let sig384 = p384.sign(&rng, &message).map_err(|_| "floor: sign")?;
    let pub256 = p256.public_key().as_ref().to_vec();
    let pub384 = p384.public_key().as_ref().to_vec();
    let duration = Duration::from_secs_f64(seconds);
    let hosts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let mut count = 0u64;
                    while started.elapsed() < duration {
                        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &pub256)
                            .verify(&message, sig256.as_ref())
                            .map_err(|_| "floor: P-256 verification failed".to_string())?;
                        for _ in 0..gpus {
                            UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &pub384)
                                .verify(&message, sig384.as_ref())
                                .map_err(|_| "floor: P-384 verification failed".to_string())?;
                        }
                        count += 1;
                    }
                    Ok(count)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("floor thread panicked".into()))
            })
            .collect()
    });
    let mut total = 0u64;
    for count in hosts {
        total += count?;
    }
    Ok(total as f64 / seconds)
}
