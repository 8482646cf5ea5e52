//! Quote verification cost: the whole check (decode, signature, qualifying data, PCR
//! digest over 24 sha256 PCRs) next to the bare `ring` signature verification it contains,
//! which is the floor. `cargo bench -p vigil-verifier --bench quote_verify`.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use vigil_verifier::evidence::tpm::quote::{QuoteExpectations, verify_quote};
use vigil_verifier::evidence::tpm::structures::{AkPublic, EccCurve, PublicKey};
use vigil_verifier::evidence::tpm::{HashAlg, PcrValues};

const RSA_TEST_KEY: &[u8] = include_bytes!("../tests/data/rsa2048-test-only.pk8");

fn sized(data: &[u8]) -> Vec<u8> {
    [&(data.len() as u16).to_be_bytes()[..], data].concat()
}

/// A TPMS_ATTEST quoting sha256 PCRs 0..=23 whose values are `pcrs`.
fn quote_message(nonce: &[u8], pcrs: &PcrValues) -> Vec<u8> {
    let concatenated: Vec<u8> = pcrs[&HashAlg::Sha256].values().flatten().copied().collect();
    let mut out = Vec::new();
    out.extend(0xff54_4347u32.to_be_bytes());
    out.extend(0x8018u16.to_be_bytes());
    out.extend(sized(&[0, 0x0b, 1, 2]));
    out.extend(sized(nonce));
    out.extend([0u8; 17]);
    out.extend([0u8; 8]);
    out.extend(1u32.to_be_bytes());
    out.extend(0x000bu16.to_be_bytes());
    out.extend([3, 0xff, 0xff, 0xff]);
    out.extend(sized(&HashAlg::Sha256.digest(&concatenated).unwrap()));
    out
}

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let nonce = [7u8; 32];
    let pcrs: PcrValues = [(
        HashAlg::Sha256,
        (0..24).map(|i| (i, vec![i as u8; 32])).collect(),
    )]
    .into();
    let message = quote_message(&nonce, &pcrs);
    let expect = QuoteExpectations {
        qualifying_data: Some(&nonce),
        pcrs: Some(&pcrs),
        allow_sha1_signatures: false,
    };

    // ECDSA P-256
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ecc = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap();
    let point = ecc.public_key().as_ref().to_vec();
    let raw = ecc.sign(&rng, &message).unwrap().as_ref().to_vec();
    let ecc_signature = [
        &[0x00, 0x18, 0x00, 0x0b][..],
        &sized(&raw[..32]),
        &sized(&raw[32..]),
    ]
    .concat();
    let ecc_ak = AkPublic {
        key: PublicKey::Ecc {
            curve: EccCurve::NistP256,
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        },
        attributes: None,
        scheme: None,
        name: None,
        name_alg: None,
        symmetric: None,
        format: "bench",
    };
    c.bench_function("quote verify ECDSA P-256 (24 PCRs)", |b| {
        b.iter(|| {
            verify_quote(
                black_box(&ecc_ak),
                black_box(&message),
                black_box(&ecc_signature),
                expect,
            )
            .unwrap()
        })
    });
    c.bench_function("ring ECDSA P-256 verify only", |b| {
        let key = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point);
        b.iter(|| key.verify(black_box(&message), black_box(&raw)).unwrap())
    });

    // RSA-2048 RSASSA
    let rsa = RsaKeyPair::from_pkcs8(RSA_TEST_KEY).unwrap();
    let components = signature::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let mut raw = vec![0u8; rsa.public_modulus_len()];
    rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut raw)
        .unwrap();
    let rsa_signature = [&[0x00, 0x14, 0x00, 0x0b][..], &sized(&raw)].concat();
    let rsa_ak = AkPublic {
        key: PublicKey::Rsa {
            modulus: components.n.clone(),
            exponent: components.e.clone(),
        },
        attributes: None,
        scheme: None,
        name: None,
        name_alg: None,
        symmetric: None,
        format: "bench",
    };
    c.bench_function("quote verify RSASSA RSA-2048 (24 PCRs)", |b| {
        b.iter(|| {
            verify_quote(
                black_box(&rsa_ak),
                black_box(&message),
                black_box(&rsa_signature),
                expect,
            )
            .unwrap()
        })
    });
    c.bench_function("ring RSA-2048 PKCS#1 verify only", |b| {
        let key = signature::RsaPublicKeyComponents {
            n: &components.n,
            e: &components.e,
        };
        b.iter(|| {
            key.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                black_box(&message),
                black_box(&raw),
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
