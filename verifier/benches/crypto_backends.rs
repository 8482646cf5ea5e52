//! The verifier's public-key operations with each candidate crypto backend, ring 0.17 and
//! aws-lc-rs 1, on the same keys, messages and signatures (all made in the setup below).
//! Figures and the choice they led to: BENCHMARKS.md, "Crypto backend".
//!
//! `cargo bench -p vigil-verifier --bench crypto_backends -- --warm-up-time 1 --measurement-time 3`
//!
//! aws-lc-rs is the verifier's own `ring` dependency (the workspace renames it); ring itself
//! is the dev-dependency `ring_backend`. Cargo does not let one crate name a package twice,
//! so aws-lc-rs cannot also come in under a name of its own: the aliases below say which is
//! which. If the workspace ever went back to ring, `ring_backend` would have to go and
//! aws-lc-rs come in as a dev-dependency instead.
//!
//! Operations: ECDSA P-256/SHA-256 and P-384/SHA-384 verification (TPM quotes, NVIDIA GPU and
//! NVSwitch reports and certificate chains), RSA-2048 PKCS#1 v1.5/SHA-256 and RSA-3072
//! PSS/SHA-256 verification (RSA attestation keys, vendor certificates), ECDSA P-256 signing
//! (EAR tokens) and Ed25519 signing (audit-log checkpoints). Messages are 1 KiB, the order of
//! a GPU attestation report; the hash is part of each figure, as it is in the verifier.

use ::ring as aws; // aws-lc-rs, renamed `ring` in the workspace's dependencies.
use ::ring::encoding::{AsDer, Pkcs8V1Der};
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ring_backend::signature::KeyPair as _;

const RSA_2048_TEST_KEY: &[u8] = include_bytes!("../tests/data/rsa2048-test-only.pk8");

/// One signature check: the verification algorithm of each backend, public key, message and
/// signature (made once, by ring, and checked by both).
struct VerifyCase {
    name: &'static str,
    ring_alg: &'static dyn ring_backend::signature::VerificationAlgorithm,
    aws_alg: &'static dyn aws::signature::VerificationAlgorithm,
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn message() -> Vec<u8> {
    (0..1024u32).map(|i| (i * 31 + 7) as u8).collect()
}

fn ecdsa_case(
    name: &'static str,
    signing: &'static ring_backend::signature::EcdsaSigningAlgorithm,
    ring_alg: &'static dyn ring_backend::signature::VerificationAlgorithm,
    aws_alg: &'static dyn aws::signature::VerificationAlgorithm,
) -> VerifyCase {
    let rng = ring_backend::rand::SystemRandom::new();
    let pkcs8 = ring_backend::signature::EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
    let key =
        ring_backend::signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
    let message = message();
    let signature = key.sign(&rng, &message).unwrap().as_ref().to_vec();
    VerifyCase {
        name,
        ring_alg,
        aws_alg,
        public_key: key.public_key().as_ref().to_vec(),
        message,
        signature,
    }
}

fn rsa_case(
    name: &'static str,
    pkcs8: &[u8],
    padding: &'static dyn ring_backend::signature::RsaEncoding,
    ring_alg: &'static dyn ring_backend::signature::VerificationAlgorithm,
    aws_alg: &'static dyn aws::signature::VerificationAlgorithm,
) -> VerifyCase {
    let rng = ring_backend::rand::SystemRandom::new();
    let key = ring_backend::signature::RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let message = message();
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(padding, &rng, &message, &mut signature).unwrap();
    VerifyCase {
        name,
        ring_alg,
        aws_alg,
        // DER RSAPublicKey (PKCS#1), which both backends take.
        public_key: key.public().as_ref().to_vec(),
        message,
        signature,
    }
}

fn verify_cases() -> Vec<VerifyCase> {
    // ring cannot generate RSA keys: the 3072-bit one comes from aws-lc-rs, as PKCS#8.
    let rsa_3072 = aws::rsa::KeyPair::generate(aws::rsa::KeySize::Rsa3072).unwrap();
    let rsa_3072_pkcs8: Pkcs8V1Der<'static> = rsa_3072.as_der().unwrap();
    vec![
        ecdsa_case(
            "ecdsa_p256_sha256_verify",
            &ring_backend::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring_backend::signature::ECDSA_P256_SHA256_FIXED,
            &aws::signature::ECDSA_P256_SHA256_FIXED,
        ),
        ecdsa_case(
            "ecdsa_p384_sha384_verify",
            &ring_backend::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &ring_backend::signature::ECDSA_P384_SHA384_FIXED,
            &aws::signature::ECDSA_P384_SHA384_FIXED,
        ),
        rsa_case(
            "rsa2048_pkcs1_sha256_verify",
            RSA_2048_TEST_KEY,
            &ring_backend::signature::RSA_PKCS1_SHA256,
            &ring_backend::signature::RSA_PKCS1_2048_8192_SHA256,
            &aws::signature::RSA_PKCS1_2048_8192_SHA256,
        ),
        rsa_case(
            "rsa3072_pss_sha256_verify",
            rsa_3072_pkcs8.as_ref(),
            &ring_backend::signature::RSA_PSS_SHA256,
            &ring_backend::signature::RSA_PSS_2048_8192_SHA256,
            &aws::signature::RSA_PSS_2048_8192_SHA256,
        ),
    ]
}

fn bench_verify(c: &mut Criterion) {
    for case in verify_cases() {
        let ring_key =
            ring_backend::signature::UnparsedPublicKey::new(case.ring_alg, &case.public_key);
        let aws_key = aws::signature::UnparsedPublicKey::new(case.aws_alg, &case.public_key);
        // Same inputs, both backends accept them (and reject a flipped bit) before timing.
        ring_key.verify(&case.message, &case.signature).unwrap();
        aws_key.verify(&case.message, &case.signature).unwrap();
        let mut bad = case.signature.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(ring_key.verify(&case.message, &bad).is_err());
        assert!(aws_key.verify(&case.message, &bad).is_err());

        let mut group = c.benchmark_group(case.name);
        group.bench_function("ring", |b| {
            b.iter(|| {
                ring_key
                    .verify(black_box(&case.message), black_box(&case.signature))
                    .unwrap()
            })
        });
        group.bench_function("aws-lc-rs", |b| {
            b.iter(|| {
                aws_key
                    .verify(black_box(&case.message), black_box(&case.signature))
                    .unwrap()
            })
        });
        group.finish();
    }
}

fn bench_sign(c: &mut Criterion) {
    let message = message();

    // ECDSA P-256 (EAR, ES256): one PKCS#8 key loaded by both.
    let ring_rng = ring_backend::rand::SystemRandom::new();
    let aws_rng = aws::rand::SystemRandom::new();
    let p256 = &ring_backend::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring_backend::signature::EcdsaKeyPair::generate_pkcs8(p256, &ring_rng).unwrap();
    let ring_key =
        ring_backend::signature::EcdsaKeyPair::from_pkcs8(p256, pkcs8.as_ref(), &ring_rng).unwrap();
    let aws_key = aws::signature::EcdsaKeyPair::from_pkcs8(
        &aws::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
    )
    .unwrap();
    // Each backend's signature verifies under the other's.
    let aws_sig = aws_key.sign(&aws_rng, &message).unwrap();
    ring_backend::signature::UnparsedPublicKey::new(
        &ring_backend::signature::ECDSA_P256_SHA256_FIXED,
        ring_key.public_key().as_ref(),
    )
    .verify(&message, aws_sig.as_ref())
    .unwrap();
    let mut group = c.benchmark_group("ecdsa_p256_sha256_sign");
    group.bench_function("ring", |b| {
        b.iter(|| ring_key.sign(&ring_rng, black_box(&message)).unwrap())
    });
    group.bench_function("aws-lc-rs", |b| {
        b.iter(|| aws_key.sign(&aws_rng, black_box(&message)).unwrap())
    });
    group.finish();

    // Ed25519 (audit checkpoints): deterministic, so both give the same signature.
    let pkcs8 = ring_backend::signature::Ed25519KeyPair::generate_pkcs8(&ring_rng).unwrap();
    let ring_key = ring_backend::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let aws_key = aws::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    assert_eq!(
        ring_key.sign(&message).as_ref(),
        aws_key.sign(&message).as_ref()
    );
    let mut group = c.benchmark_group("ed25519_sign");
    group.bench_function("ring", |b| b.iter(|| ring_key.sign(black_box(&message))));
    group.bench_function("aws-lc-rs", |b| {
        b.iter(|| aws_key.sign(black_box(&message)))
    });
    group.finish();
}

criterion_group!(benches, bench_verify, bench_sign);
criterion_main!(benches);
