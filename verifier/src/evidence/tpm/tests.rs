//! Every quote check, made to fail. Quotes are built here and signed with `ring` keys
//! (ECDSA P-256/P-384) or a test-only RSA key, so each test controls exactly one defect.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use super::quote::{QuoteError, QuoteExpectations, verify_quote};
use super::structures::*;
use super::{DecodeError, PcrValues};

const RSA_TEST_KEY: &[u8] = include_bytes!("../../../tests/data/rsa2048-test-only.pk8");
const ATTRS_AK: u32 = 0x0005_0072; // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn tpm2b(data: &[u8]) -> Vec<u8> {
    [&be16(data.len() as u16)[..], data].concat()
}

/// TPMS_ATTEST for a quote over sha256 PCRs `pcrs` with `values`.
fn attest(magic: u32, kind: u16, extra: &[u8], pcrs: &[u32], digest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(magic.to_be_bytes());
    out.extend(be16(kind));
    out.extend(tpm2b(&[0x00, 0x0b, 1, 2, 3]));
    out.extend(tpm2b(extra));
    out.extend(1234u64.to_be_bytes());
    out.extend(7u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.push(1);
    out.extend(0x2016_0511u64.to_be_bytes());
    out.extend(1u32.to_be_bytes());
    out.extend(be16(0x000b));
    out.push(3);
    let mut bitmap = [0u8; 3];
    for pcr in pcrs {
        bitmap[(*pcr / 8) as usize] |= 1 << (pcr % 8);
    }
    out.extend(bitmap);
    out.extend(tpm2b(digest));
    out
}

fn values(pcrs: &[u32]) -> PcrValues {
    let mut bank = std::collections::BTreeMap::new();
    for pcr in pcrs {
        bank.insert(*pcr, vec![*pcr as u8; 32]);
    }
    PcrValues::from([(HashAlg::Sha256, bank)])
}

/// The quote's PCR digest uses the signing scheme's hash.
fn digest_of(values: &PcrValues, hash: HashAlg) -> Vec<u8> {
    let concatenated: Vec<u8> = values[&HashAlg::Sha256]
        .values()
        .flatten()
        .copied()
        .collect();
    hash.digest(&concatenated).unwrap()
}

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

struct Signer {
    public: Vec<u8>,
    hash: HashAlg,
    sign: SignFn,
}

fn ecc_public(curve: u16, scheme_hash: u16, x: &[u8], y: &[u8], attrs: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(be16(0x0023));
    t.extend(be16(0x000b));
    t.extend(attrs.to_be_bytes());
    t.extend(tpm2b(&[]));
    t.extend(be16(0x0010)); // symmetric NULL
    t.extend(be16(0x0018)); // ECDSA
    t.extend(be16(scheme_hash));
    t.extend(be16(curve));
    t.extend(be16(0x0010)); // kdf NULL
    t.extend(tpm2b(x));
    t.extend(tpm2b(y));
    tpm2b(&t)
}

fn ecdsa_signer(p384: bool) -> Signer {
    let rng = SystemRandom::new();
    let (alg, curve, hash, size) = if p384 {
        (
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            0x0004,
            0x000c,
            48,
        )
    } else {
        (
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            0x0003,
            0x000b,
            32,
        )
    };
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
    let point = key.public_key().as_ref().to_vec();
    let public = ecc_public(
        curve,
        hash,
        &point[1..1 + size],
        &point[1 + size..],
        ATTRS_AK,
    );
    Signer {
        public,
        hash: if p384 {
            HashAlg::Sha384
        } else {
            HashAlg::Sha256
        },
        sign: Box::new(move |message| {
            let sig = key.sign(&SystemRandom::new(), message).unwrap();
            let (r, s) = sig.as_ref().split_at(size);
            [&be16(0x0018)[..], &be16(hash), &tpm2b(r), &tpm2b(s)].concat()
        }),
    }
}

fn rsa_signer(pss: bool) -> Signer {
    let key = RsaKeyPair::from_pkcs8(RSA_TEST_KEY).unwrap();
    let components = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let mut t = Vec::new();
    t.extend(be16(0x0001));
    t.extend(be16(0x000b));
    t.extend(ATTRS_AK.to_be_bytes());
    t.extend(tpm2b(&[]));
    t.extend(be16(0x0010));
    t.extend(be16(if pss { 0x0016 } else { 0x0014 }));
    t.extend(be16(0x000b));
    t.extend(be16(2048));
    t.extend(0u32.to_be_bytes());
    t.extend(tpm2b(&components.n));
    Signer {
        public: tpm2b(&t),
        hash: HashAlg::Sha256,
        sign: Box::new(move |message| {
            let mut sig = vec![0u8; key.public_modulus_len()];
            let padding: &dyn signature::RsaEncoding = if pss {
                &signature::RSA_PSS_SHA256
            } else {
                &signature::RSA_PKCS1_SHA256
            };
            key.sign(padding, &SystemRandom::new(), message, &mut sig)
                .unwrap();
            let scheme = if pss { 0x0016 } else { 0x0014 };
            [&be16(scheme)[..], &be16(0x000b), &tpm2b(&sig)].concat()
        }),
    }
}

struct Case {
    ak: AkPublic,
    message: Vec<u8>,
    signature: Vec<u8>,
    pcrs: PcrValues,
    nonce: Vec<u8>,
}

fn case(signer: &Signer) -> Case {
    let nonce = vec![0xa5; 32];
    let pcrs = values(&[0, 1, 7]);
    let message = attest(
        TPM_GENERATED_VALUE,
        TPM_ST_ATTEST_QUOTE,
        &nonce,
        &[0, 1, 7],
        &digest_of(&pcrs, signer.hash),
    );
    Case {
        ak: decode_tpm2b_public(&signer.public).unwrap(),
        signature: (signer.sign)(&message),
        message,
        pcrs,
        nonce,
    }
}

fn check(c: &Case) -> Result<super::VerifiedQuote, QuoteError> {
    verify_quote(
        &c.ak,
        &c.message,
        &c.signature,
        QuoteExpectations {
            qualifying_data: Some(&c.nonce),
            pcrs: Some(&c.pcrs),
            allow_sha1_signatures: false,
        },
    )
}

fn signers() -> Vec<(&'static str, Signer)> {
    vec![
        ("ecdsa-p256", ecdsa_signer(false)),
        ("ecdsa-p384", ecdsa_signer(true)),
        ("rsassa-2048", rsa_signer(false)),
        ("rsapss-2048", rsa_signer(true)),
    ]
}

#[test]
fn a_correct_quote_verifies_with_every_supported_scheme() {
    for (name, signer) in signers() {
        let verified = check(&case(&signer)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.pcr_count(), 3, "{name}");
        assert_eq!(verified.clock, 1234);
    }
}

#[test]
fn every_flipped_message_byte_fails() {
    for (name, signer) in signers() {
        let good = case(&signer);
        for i in 0..good.message.len() {
            let mut c = case(&signer);
            c.message = good.message.clone();
            c.signature = good.signature.clone();
            c.message[i] ^= 0x01;
            assert!(check(&c).is_err(), "{name}: flipped byte {i} verified");
        }
    }
}

#[test]
fn a_flipped_signature_byte_fails_the_signature_check() {
    for (name, signer) in signers() {
        let mut c = case(&signer);
        let last = c.signature.len() - 1;
        c.signature[last] ^= 0x01;
        assert!(
            matches!(check(&c), Err(QuoteError::BadSignature(_))),
            "{name}"
        );
    }
}

#[test]
fn a_flipped_pcr_value_fails_the_digest_check() {
    let mut c = case(&ecdsa_signer(false));
    c.pcrs
        .get_mut(&HashAlg::Sha256)
        .unwrap()
        .get_mut(&7)
        .unwrap()[0] ^= 1;
    assert!(matches!(check(&c), Err(QuoteError::PcrDigest { .. })));
}

#[test]
fn a_foreign_nonce_fails_the_qualifying_data_check() {
    let mut c = case(&ecdsa_signer(false));
    c.nonce[0] ^= 1;
    let error = check(&c).unwrap_err();
    assert!(matches!(error, QuoteError::QualifyingData { .. }));
    assert_eq!(error.check(), "quote.qualifying_data");
}

#[test]
fn a_pcr_outside_the_selection_is_rejected_not_ignored() {
    let mut c = case(&ecdsa_signer(false));
    c.pcrs
        .get_mut(&HashAlg::Sha256)
        .unwrap()
        .insert(23, vec![0; 32]);
    assert_eq!(
        check(&c).unwrap_err(),
        QuoteError::PcrNotQuoted {
            bank: "sha256",
            index: 23
        }
    );
    let mut c = case(&ecdsa_signer(false));
    c.pcrs.insert(HashAlg::Sha1, [(0, vec![0; 20])].into());
    assert_eq!(
        check(&c).unwrap_err(),
        QuoteError::PcrNotQuoted {
            bank: "sha1",
            index: 0
        }
    );
}

#[test]
fn a_missing_or_misshapen_quoted_pcr_fails() {
    let mut c = case(&ecdsa_signer(false));
    c.pcrs.get_mut(&HashAlg::Sha256).unwrap().remove(&1);
    assert_eq!(
        check(&c).unwrap_err(),
        QuoteError::PcrMissing {
            bank: "sha256",
            index: 1
        }
    );
    let mut c = case(&ecdsa_signer(false));
    c.pcrs
        .get_mut(&HashAlg::Sha256)
        .unwrap()
        .insert(1, vec![0; 20]);
    assert!(matches!(
        check(&c),
        Err(QuoteError::PcrLength { index: 1, .. })
    ));
}

#[test]
fn another_ak_fails() {
    let c = case(&ecdsa_signer(false));
    let other = decode_tpm2b_public(&ecdsa_signer(false).public).unwrap();
    let c = Case { ak: other, ..c };
    assert!(matches!(check(&c), Err(QuoteError::BadSignature(_))));
    // An RSA signature against an ECC AK is a scheme mismatch, not a crash.
    let mut c = case(&ecdsa_signer(false));
    c.signature = case(&rsa_signer(false)).signature;
    assert!(matches!(check(&c), Err(QuoteError::SchemeMismatch { .. })));
}

#[test]
fn wrong_attest_type_and_magic_are_named_before_the_signature() {
    let signer = ecdsa_signer(false);
    let mut c = case(&signer);
    c.message = attest(TPM_GENERATED_VALUE, 0x8017, &c.nonce, &[0], &[0; 32]);
    c.signature = (signer.sign)(&c.message);
    assert_eq!(
        check(&c).unwrap_err(),
        QuoteError::AttestType { found: 0x8017 }
    );
    // Even with a valid signature over it, a certify structure is not a quote.
    let mut c = case(&signer);
    c.message[0..4].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    assert_eq!(
        check(&c).unwrap_err(),
        QuoteError::Magic { found: 0x1122_3344 }
    );
}

#[test]
fn sha1_signatures_are_refused_for_live_evidence() {
    let signer = rsa_signer(false);
    let mut c = case(&signer);
    // Rewrite the hash of the signature to SHA-1: refused before any verification.
    c.signature[2..4].copy_from_slice(&be16(0x0004));
    c.ak.scheme = None;
    assert!(matches!(check(&c), Err(QuoteError::Unsupported(_))));
}

#[test]
fn truncated_inputs_never_panic_and_never_pass() {
    let signer = ecdsa_signer(false);
    let good = case(&signer);
    for len in 0..good.message.len() {
        let c = Case {
            message: good.message[..len].to_vec(),
            signature: good.signature.clone(),
            ..case(&signer)
        };
        assert!(
            matches!(check(&c), Err(QuoteError::DecodeAttest(_))),
            "message cut at {len}"
        );
    }
    for len in 0..good.signature.len() {
        let mut c = case(&signer);
        c.signature.truncate(len);
        assert!(check(&c).is_err(), "signature cut at {len}");
    }
    for len in 0..signer.public.len() {
        assert!(
            decode_ak_public(&signer.public[..len]).is_err(),
            "public cut at {len}"
        );
        assert!(
            decode_tpmt_public(&signer.public[2..len.max(2)]).is_err(),
            "tpmt cut at {len}"
        );
    }
}

#[test]
fn truncation_errors_name_field_and_offset() {
    let good = case(&ecdsa_signer(false));
    let error = decode_attest(&good.message[..20]).unwrap_err();
    match &error {
        DecodeError::Truncated {
            structure,
            field,
            offset,
            ..
        } => {
            assert_eq!(*structure, "TPMS_ATTEST");
            assert_eq!(*field, "extraData");
            assert_eq!(*offset, 15);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().contains("offset 15"), "{error}");
}

#[test]
fn oversized_and_trailing_inputs_are_rejected() {
    let signer = ecdsa_signer(false);
    let good = case(&signer);
    let mut big = good.message.clone();
    big.resize(MAX_STRUCTURE_BYTES + 1, 0);
    assert!(matches!(
        decode_attest(&big),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut trailing = good.message.clone();
    trailing.push(0);
    assert!(matches!(
        decode_attest(&trailing),
        Err(DecodeError::Trailing { extra: 1, .. })
    ));
    let mut trailing = good.signature.clone();
    trailing.push(0);
    assert!(matches!(
        decode_signature(&trailing),
        Err(DecodeError::Trailing { .. })
    ));
    // A selection that claims 255 banks is refused by its count, before any allocation.
    let mut many = good.message.clone();
    let count_at = 4 + 2 + 7 + 34 + 17 + 8;
    many[count_at..count_at + 4].copy_from_slice(&255u32.to_be_bytes());
    assert!(matches!(
        decode_attest(&many),
        Err(DecodeError::Invalid {
            field: "TPML_PCR_SELECTION.count",
            ..
        })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let len = (state % 400) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        let _ = decode_attest(&bytes);
        let _ = decode_signature(&bytes);
        let _ = decode_ak_public(&bytes);
        let _ = super::pcr_files::parse_pcr_file(&bytes, &Vec::new());
    }
}

#[test]
fn ak_name_is_name_alg_and_hash_of_the_public_area() {
    let signer = ecdsa_signer(false);
    let ak = decode_tpm2b_public(&signer.public).unwrap();
    let name = ak.name.unwrap();
    assert_eq!(name[..2], [0x00, 0x0b]);
    assert_eq!(
        name[2..],
        HashAlg::Sha256.digest(&signer.public[2..]).unwrap()[..]
    );
    let attributes = ak.attributes.unwrap();
    assert!(attributes.restricted && attributes.sign && attributes.fixed_tpm);
}
