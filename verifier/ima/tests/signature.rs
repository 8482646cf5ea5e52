//! IMA file signatures: headers as evmctl writes them, RSA and ECDSA, versions 2 and 3, and
//! every way a signature can fail to stand.
//!
//! The keys, certificates and two reference signatures in `tests/data/` were made with the
//! openssl CLI by `tests/data/make-keys.sh` (its comments say what each file is). The other
//! signatures are made here with the RSA/ECDSA crates over the digest, as evmctl signs it,
//! with the header built by hand.

mod common;

use std::borrow::Cow;
use std::path::Path;

use ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::Digest;
use vigil_ima::signature::{self, IMA_VERITY_DIGSIG, KeyAlgorithm};
use vigil_ima::*;

/// Key ids computed by openssl, independently of the code under test: the tail of the
/// certificate's subjectKeyIdentifier (RSA-2048), or of the SHA-1 of the key bits
/// (`openssl pkey -pubin -outform DER | tail -c 65 | sha1sum` for P-256, 97 bytes for P-384).
const RSA_ID: [u8; 4] = [0x52, 0xc1, 0xca, 0x47];
const P256_ID: [u8; 4] = [0x61, 0xe2, 0x9e, 0x25];
const P384_ID: [u8; 4] = [0xf2, 0xc7, 0x6c, 0x0b];

const SHA256: u8 = 4;
const SHA384: u8 = 5;
const SHA512: u8 = 6;

fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys(name: &str) -> Vec<VerificationKey> {
    parse_keys(name, &data(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn all_keys() -> Vec<VerificationKey> {
    let mut all = keys("rsa2048.crt.pem");
    all.extend(keys("p256.pub.pem"));
    all.extend(keys("p384.crt.der"));
    all
}

/// The header evmctl writes in front of a signature.
fn header(xattr_type: u8, version: u8, hash_algo: u8, key_id: [u8; 4], sig: &[u8]) -> Vec<u8> {
    let mut out = vec![xattr_type, version, hash_algo];
    out.extend_from_slice(&key_id);
    out.extend_from_slice(&u16::try_from(sig.len()).unwrap().to_be_bytes());
    out.extend_from_slice(sig);
    out
}

/// What IMA measured: an `ima-sig` entry (or `ima-sigv2` with a digest type), decoded the way
/// the verifier decodes one from a list.
fn measurement(
    digest_type: Option<&str>,
    alg: &str,
    digest: &[u8],
    signature: &[u8],
) -> Measurement {
    let mut digest_field = Vec::new();
    if let Some(kind) = digest_type {
        digest_field.extend_from_slice(format!("{kind}:").as_bytes());
    }
    digest_field.extend_from_slice(format!("{alg}:\0").as_bytes());
    digest_field.extend_from_slice(digest);
    let mut data = Vec::new();
    for field in [&digest_field[..], b"/usr/bin/vigil-test\0", signature] {
        data.extend_from_slice(&u32::try_from(field.len()).unwrap().to_le_bytes());
        data.extend_from_slice(field);
    }
    let template = if digest_type.is_some() {
        "ima-sigv2"
    } else {
        "ima-sig"
    };
    let entry = Entry {
        index: 7,
        location: Location::Offset(0),
        pcr: 10,
        template_hash: Cow::Owned(HashAlg::Sha1.digest(&data)),
        template: Cow::Borrowed(template),
        hashed: Cow::Owned(data),
    };
    decode(&entry).unwrap()
}

fn file_digest(alg: HashAlg) -> Vec<u8> {
    alg.digest(b"vigil ima test file\n")
}

/// What a version 3 signature signs: the hash of the used part of `struct ima_file_id`.
fn file_id_hash(xattr_type: u8, hash_algo: u8, digest: &[u8]) -> Vec<u8> {
    let mut file_id = vec![xattr_type, hash_algo];
    file_id.extend_from_slice(digest);
    match hash_algo {
        SHA256 => sha2::Sha256::digest(&file_id).to_vec(),
        SHA384 => sha2::Sha384::digest(&file_id).to_vec(),
        SHA512 => sha2::Sha512::digest(&file_id).to_vec(),
        _ => unreachable!(),
    }
}

fn rsa_sign(key: &str, hash_algo: u8, digest: &[u8]) -> Vec<u8> {
    let key = RsaPrivateKey::from_pkcs8_der(&data(key)).unwrap();
    let padding = match hash_algo {
        SHA256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        SHA384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        SHA512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        _ => unreachable!(),
    };
    key.sign(padding, digest).unwrap()
}

fn p256_sign(digest: &[u8]) -> Vec<u8> {
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&data("p256.key.der")).unwrap();
    let sig: p256::ecdsa::Signature = key.sign_prehash(digest).unwrap();
    sig.to_der().as_bytes().to_vec()
}

fn p384_sign(digest: &[u8]) -> Vec<u8> {
    let key = p384::ecdsa::SigningKey::from_pkcs8_der(&data("p384.key.der")).unwrap();
    let sig: p384::ecdsa::Signature = key.sign_prehash(digest).unwrap();
    sig.to_der().as_bytes().to_vec()
}

/// The DER inside a one-block PEM file.
fn pem_body(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents
}

// ---- keys ----

#[test]
fn key_ids_are_the_subject_key_identifier_tail_or_the_sha1_of_the_key_bits() {
    let rsa = keys("rsa2048.crt.pem");
    assert_eq!(rsa.len(), 1);
    assert_eq!(rsa[0].key_id, RSA_ID);
    assert_eq!(rsa[0].algorithm, KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(rsa[0].label, "rsa2048.crt.pem");
    assert_eq!(
        rsa[0].subject.as_deref(),
        Some("CN=Vigil IMA test RSA-2048")
    );
    let p256 = keys("p256.pub.pem");
    assert_eq!(p256[0].key_id, P256_ID);
    assert_eq!(p256[0].algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(p256[0].subject, None);
    // A DER certificate without a subjectKeyIdentifier: the SHA-1 of its key bits.
    let p384 = keys("p384.crt.der");
    assert_eq!(p384[0].key_id, P384_ID);
    assert_eq!(p384[0].algorithm, KeyAlgorithm::EcdsaP384);
    // An explicit subjectKeyIdentifier wins over the key's own hash.
    let other = keys("rsa3072-same-id.crt.pem");
    assert_eq!(other[0].key_id, RSA_ID);
    assert_eq!(other[0].algorithm, KeyAlgorithm::Rsa { bits: 3072 });
}

#[test]
fn several_certificates_in_one_pem_file_each_become_a_key() {
    let bundle = keys("bundle.pem");
    let found: Vec<(&str, [u8; 4])> = bundle
        .iter()
        .map(|k| (k.label.as_str(), k.key_id))
        .collect();
    assert_eq!(
        found,
        [("bundle.pem[1]", RSA_ID), ("bundle.pem[2]", P384_ID)]
    );
}

#[test]
fn keys_vigil_cannot_use_are_refused_by_name() {
    let cases: [(&str, Vec<u8>, &str); 11] = [
        ("rsa1024.pub.pem", data("rsa1024.pub.pem"), "RSA-1024"),
        (
            "short-skid.crt.pem",
            data("short-skid.crt.pem"),
            "subjectKeyIdentifier of 2 bytes",
        ),
        (
            "inline.pem",
            b"text -----BEGIN X\n".to_vec(),
            "no PEM block",
        ),
        (
            "no-block.pem",
            b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            "PEM block 1",
        ),
        (
            "spki-trailing.der",
            [pem_body(&data("p256.pub.pem")), vec![0]].concat(),
            "1 bytes after the public key",
        ),
        ("ed25519.pub.pem", data("ed25519.pub.pem"), "1.3.101.112"),
        ("p521.pub.pem", data("p521.pub.pem"), "1.3.132.0.35"),
        (
            "private.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            "\"PRIVATE KEY\" block",
        ),
        ("garbage.der", b"\x30\x03\x02\x01".to_vec(), "neither a DER"),
        ("empty", Vec::new(), "neither a DER"),
        (
            "trailing.der",
            [data("p384.crt.der"), vec![0]].concat(),
            "1 bytes after",
        ),
    ];
    for (label, bytes, expected) in cases {
        let error = parse_keys(label, &bytes).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with(label), "{text}");
        assert!(text.contains(expected), "{label}: {text}");
    }
    // Text before a block (as openssl writes "Bag Attributes") is skipped.
    let with_text = [
        b"Bag Attributes\n    friendlyName: ima\n".as_slice(),
        &data("p256.pub.pem"),
    ]
    .concat();
    assert_eq!(
        parse_keys("bag.pem", &with_text).unwrap()[0].key_id,
        P256_ID
    );
    // The second block of a bundle is named when it is the bad one.
    let mut bundle = data("rsa2048.crt.pem");
    bundle.extend_from_slice(&data("rsa1024.pub.pem"));
    let error = parse_keys("mixed.pem", &bundle).unwrap_err();
    assert_eq!(error.block, Some(2), "{error}");
    assert!(error.to_string().contains("PEM block 2"), "{error}");
}

// ---- signatures that verify ----

#[test]
fn rsa_and_p256_version_2_signatures_made_by_openssl_verify() {
    let digest = data("file.sha256");
    assert_eq!(digest, file_digest(HashAlg::Sha256));
    for (sig_file, key_id, label) in [
        ("rsa2048-v2.sig", RSA_ID, "rsa2048.crt.pem"),
        ("p256-v2.sig", P256_ID, "p256.pub.pem"),
    ] {
        let sig = header(3, 2, SHA256, key_id, &data(sig_file));
        let m = measurement(None, "sha256", &digest, &sig);
        let verified = verify(&m, &all_keys()).unwrap_or_else(|e| panic!("{sig_file}: {e}"));
        assert_eq!(verified.key_label, label);
        assert_eq!(verified.key_id, key_id);
        assert_eq!(verified.version, 2);
        assert_eq!(verified.hash_algorithm, "sha256");
    }
}

#[test]
fn rsa_version_2_signatures_verify_with_sha256_384_and_512() {
    for (alg, id) in [
        (HashAlg::Sha256, SHA256),
        (HashAlg::Sha384, SHA384),
        (HashAlg::Sha512, SHA512),
    ] {
        let digest = file_digest(alg);
        let sig = header(3, 2, id, RSA_ID, &rsa_sign("rsa2048.key.der", id, &digest));
        let verified = verify(&measurement(None, alg.name(), &digest, &sig), &all_keys())
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.key_algorithm, KeyAlgorithm::Rsa { bits: 2048 });
        assert_eq!(verified.hash_algorithm, alg.name());
    }
}

#[test]
fn ecdsa_p256_and_p384_version_2_signatures_verify() {
    let digest = file_digest(HashAlg::Sha256);
    let sig = header(3, 2, SHA256, P256_ID, &p256_sign(&digest));
    let verified = verify(&measurement(None, "sha256", &digest, &sig), &all_keys()).unwrap();
    assert_eq!(verified.key_label, "p256.pub.pem");
    assert_eq!(verified.key_algorithm, KeyAlgorithm::EcdsaP256);

    let digest = file_digest(HashAlg::Sha384);
    let sig = header(3, 2, SHA384, P384_ID, &p384_sign(&digest));
    let verified = verify(&measurement(None, "sha384", &digest, &sig), &all_keys()).unwrap();
    assert_eq!(verified.key_label, "p384.crt.der");
    assert_eq!(verified.key_algorithm, KeyAlgorithm::EcdsaP384);
    assert_eq!(verified.hash_algorithm, "sha384");
}

#[test]
fn version_3_signatures_cover_the_file_id_hash_and_verify() {
    let digest = file_digest(HashAlg::Sha256);
    let signed = file_id_hash(3, SHA256, &digest);
    for (sig, label) in [
        (
            header(
                3,
                3,
                SHA256,
                RSA_ID,
                &rsa_sign("rsa2048.key.der", SHA256, &signed),
            ),
            "rsa2048.crt.pem",
        ),
        (
            header(3, 3, SHA256, P256_ID, &p256_sign(&signed)),
            "p256.pub.pem",
        ),
    ] {
        let m = measurement(None, "sha256", &digest, &sig);
        let verified = verify(&m, &all_keys()).unwrap();
        assert_eq!(verified.version, 3);
        assert_eq!(verified.key_label, label);
        // The same signature presented as version 2 (over the bare digest) does not verify.
        let mut as_v2 = sig.clone();
        as_v2[1] = 2;
        let error = verify(&measurement(None, "sha256", &digest, &as_v2), &all_keys()).unwrap_err();
        assert!(
            matches!(error, SignatureError::BadSignature { .. }),
            "{error}"
        );
    }
    // A version 2 signature over the digest does not pass as version 3.
    let v2 = rsa_sign("rsa2048.key.der", SHA256, &digest);
    let error = verify(
        &measurement(None, "sha256", &digest, &header(3, 3, SHA256, RSA_ID, &v2)),
        &all_keys(),
    )
    .unwrap_err();
    assert!(
        matches!(error, SignatureError::BadSignature { .. }),
        "{error}"
    );
}

#[test]
fn fs_verity_signatures_verify_only_against_verity_digests() {
    let digest = file_digest(HashAlg::Sha256); // stands in for an fs-verity digest
    let signed = file_id_hash(IMA_VERITY_DIGSIG, SHA256, &digest);
    let sig = header(IMA_VERITY_DIGSIG, 3, SHA256, P256_ID, &p256_sign(&signed));
    let verified = verify(
        &measurement(Some("verity"), "sha256", &digest, &sig),
        &all_keys(),
    )
    .unwrap();
    assert_eq!(verified.version, 3);
    let error = verify(
        &measurement(Some("ima"), "sha256", &digest, &sig),
        &all_keys(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("fs-verity signature"), "{error}");
    // A regular file signature does not cover a verity digest.
    let file_sig = header(3, 2, SHA256, P256_ID, &p256_sign(&digest));
    let error = verify(
        &measurement(Some("verity"), "sha256", &digest, &file_sig),
        &all_keys(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("fs-verity digest"), "{error}");
}

// ---- signatures that do not ----

#[test]
fn a_flipped_signature_byte_fails() {
    let digest = file_digest(HashAlg::Sha256);
    for (key_id, sig) in [
        (RSA_ID, rsa_sign("rsa2048.key.der", SHA256, &digest)),
        (P256_ID, p256_sign(&digest)),
    ] {
        for at in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[at] ^= 0x01;
            let m = measurement(None, "sha256", &digest, &header(3, 2, SHA256, key_id, &bad));
            let error = verify(&m, &all_keys()).unwrap_err();
            assert!(
                matches!(error, SignatureError::BadSignature { .. }),
                "{error}"
            );
            let text = error.to_string();
            assert!(text.contains("does not verify"), "{text}");
            assert!(text.contains(&hex::encode(key_id)), "{text}");
            assert!(text.contains("/usr/bin/vigil-test"), "{text}");
        }
    }
}

#[test]
fn a_flipped_digest_fails() {
    let digest = file_digest(HashAlg::Sha256);
    for (key_id, sig) in [
        (RSA_ID, rsa_sign("rsa2048.key.der", SHA256, &digest)),
        (P256_ID, p256_sign(&digest)),
    ] {
        let mut other = digest.clone();
        other[31] ^= 0x80;
        let m = measurement(None, "sha256", &other, &header(3, 2, SHA256, key_id, &sig));
        let error = verify(&m, &all_keys()).unwrap_err();
        assert!(
            matches!(error, SignatureError::BadSignature { .. }),
            "{error}"
        );
    }
}

#[test]
fn another_key_with_the_same_id_fails_and_the_right_one_among_them_passes() {
    let digest = file_digest(HashAlg::Sha256);
    let sig = header(
        3,
        2,
        SHA256,
        RSA_ID,
        &rsa_sign("rsa2048.key.der", SHA256, &digest),
    );
    let m = measurement(None, "sha256", &digest, &sig);
    let impostor = keys("rsa3072-same-id.crt.pem");
    let error = verify(&m, &impostor).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/usr/bin/vigil-test: the signature does not verify with rsa3072-same-id.crt.pem (RSA-3072) (key id 52c1ca47)"
    );
    let mut both = impostor;
    both.extend(keys("rsa2048.crt.pem"));
    assert_eq!(verify(&m, &both).unwrap().key_label, "rsa2048.crt.pem");
    // The signature of a key whose id the header does not name is not tried under another id.
    let p256_sig = header(3, 2, SHA256, RSA_ID, &p256_sign(&digest));
    let error = verify(
        &measurement(None, "sha256", &digest, &p256_sig),
        &all_keys(),
    )
    .unwrap_err();
    assert!(
        matches!(error, SignatureError::BadSignature { .. }),
        "{error}"
    );
}

#[test]
fn an_unknown_key_id_fails_naming_the_id() {
    let digest = file_digest(HashAlg::Sha256);
    let sig = header(3, 2, SHA256, [0xde, 0xad, 0xbe, 0xef], &p256_sign(&digest));
    let error = verify(&measurement(None, "sha256", &digest, &sig), &all_keys()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/usr/bin/vigil-test: no configured key has key id deadbeef (the signature names it)"
    );
    // No keys at all: the same.
    let error = verify(&measurement(None, "sha256", &digest, &sig), &[]).unwrap_err();
    assert!(
        matches!(error, SignatureError::UnknownKey { ref key_id, .. } if key_id == "deadbeef"),
        "{error}"
    );
}

#[test]
fn a_truncated_header_fails_naming_the_field() {
    let digest = file_digest(HashAlg::Sha256);
    let full = header(3, 2, SHA256, P256_ID, &p256_sign(&digest));
    let expected = [
        (1, "version at offset 1"),
        (2, "hash_algo at offset 2"),
        (3, "keyid at offset 3"),
        (6, "keyid at offset 3"),
        (7, "sig_size at offset 7"),
        (8, "sig_size at offset 7"),
        (9, "signature at offset 9"),
        (full.len() - 1, "signature at offset 9"),
    ];
    for (len, field) in expected {
        let m = measurement(None, "sha256", &digest, &full[..len]);
        let error = verify(&m, &all_keys()).unwrap_err();
        assert!(
            matches!(error, SignatureError::Malformed { .. }),
            "{len}: {error}"
        );
        let text = error.to_string();
        assert!(text.contains("malformed signature header"), "{text}");
        assert!(text.contains(field), "{len}: {text}");
    }
    // A header announcing an empty signature.
    let error = signature::parse_signature(&header(3, 2, SHA256, P256_ID, &[])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "signature at offset 9: sig_size announces 0 bytes, 0 follow the header"
    );
    // Bytes beyond sig_size are refused as the kernel refuses them.
    let mut long = full.clone();
    long.push(0);
    let error = signature::parse_signature(&long).unwrap_err();
    assert_eq!(error.field, "signature");
    assert!(error.reason.contains("follow the header"), "{error}");
}

#[test]
fn a_wrong_type_or_version_byte_fails_naming_the_field() {
    let digest = file_digest(HashAlg::Sha256);
    let good = header(3, 2, SHA256, P256_ID, &p256_sign(&digest));
    for (at, value, field, reason) in [
        (0, 0x04, "type at offset 0", "bare file digest"),
        (0, 0x02, "type at offset 0", "EVM HMAC"),
        (0, 0x05, "type at offset 0", "portable"),
        (1, 0x01, "version at offset 1", "pre-asymmetric-key"),
        (1, 0x04, "version at offset 1", "version 4"),
    ] {
        let mut bad = good.clone();
        bad[at] = value;
        let error = signature::parse_signature(&bad).unwrap_err().to_string();
        assert!(error.starts_with(field), "{error}");
        assert!(error.contains(reason), "{error}");
    }
    // fs-verity signatures exist only in version 3.
    let mut verity_v2 = good.clone();
    verity_v2[0] = IMA_VERITY_DIGSIG;
    let error = signature::parse_signature(&verity_v2).unwrap_err();
    assert_eq!(error.field, "version");
}

#[test]
fn a_hash_algorithm_other_than_the_digests_fails() {
    let digest = file_digest(HashAlg::Sha256);
    let sig = rsa_sign("rsa2048.key.der", SHA256, &digest);
    // The header says sha512, the measured digest is sha256.
    let m = measurement(None, "sha256", &digest, &header(3, 2, SHA512, RSA_ID, &sig));
    let error = verify(&m, &all_keys()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/usr/bin/vigil-test: the signature's hash algorithm is sha512, the measured digest's is sha256"
    );
    let m = measurement(None, "sha256", &digest, &header(3, 2, 200, RSA_ID, &sig));
    let error = verify(&m, &all_keys()).unwrap_err();
    assert!(error.to_string().contains("hash_algo 200"), "{error}");
    // A digest of the wrong length for its algorithm.
    let m = measurement(
        None,
        "sha256",
        &digest[..31],
        &header(3, 2, SHA256, RSA_ID, &sig),
    );
    let error = verify(&m, &all_keys()).unwrap_err();
    assert!(error.to_string().contains("31 bytes"), "{error}");
}

#[test]
fn md5_and_sha1_signatures_are_unsupported() {
    for (alg, id, len) in [("sha1", 2, 20), ("md5", 1, 16)] {
        let digest = vec![0x11; len];
        let m = measurement(None, alg, &digest, &header(3, 2, id, RSA_ID, &[1; 256]));
        let error = verify(&m, &all_keys()).unwrap_err();
        assert!(
            matches!(error, SignatureError::Unsupported { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains(&format!("{alg} signatures")),
            "{error}"
        );
    }
}

#[test]
fn sm3_signatures_match_sm3_digests_but_are_unsupported() {
    // The kernel names SM3 "sm3"; some lists write "sm3_256". Either is the same algorithm.
    for name in ["sm3", "sm3_256"] {
        let m = measurement(
            None,
            name,
            &[0x22; 32],
            &header(3, 2, 17, RSA_ID, &[1; 256]),
        );
        let error = verify(&m, &all_keys()).unwrap_err();
        assert!(
            matches!(error, SignatureError::Unsupported { .. }),
            "{name}: {error}"
        );
    }
}

#[test]
fn an_entry_without_a_signature_says_so() {
    let digest = file_digest(HashAlg::Sha256);
    let error = verify(&measurement(None, "sha256", &digest, &[]), &all_keys()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/usr/bin/vigil-test: no signature (template ima-sig carries none, or the file has no security.ima signature)"
    );
}

#[test]
fn a_signature_that_is_not_der_ecdsa_fails_to_verify() {
    let digest = file_digest(HashAlg::Sha256);
    let m = measurement(
        None,
        "sha256",
        &digest,
        &header(3, 2, SHA256, P256_ID, &[0x30; 64]),
    );
    let error = verify(&m, &all_keys()).unwrap_err();
    assert!(
        matches!(error, SignatureError::BadSignature { .. }),
        "{error}"
    );
}

// ---- real lists ----

#[test]
fn signatures_in_the_fixture_lists_parse_and_name_their_key_when_it_is_missing() {
    let Some(root) = common::fixtures("immune-guard-oss") else {
        return;
    };
    // (list, ima-sig entries, entries with a signature). Both lists were recorded with
    // `ima-sig` but on machines whose files carry no security.ima signature: every `sig`
    // field is empty. The counts say so, so that nobody takes this test for a check of real
    // signatures.
    for (path, entries, signed) in [
        (
            "immune-guard-oss/test-raw/sr630.binary_measurements",
            3696,
            0,
        ),
        ("tpm2-tss/eventlog/sml-ima-sig-sha256.bin", 9, 0),
    ] {
        let bytes = std::fs::read(root.join(path)).unwrap();
        let list = parse(&bytes, HashAlg::Sha1, 0).unwrap();
        let not_theirs = keys("p256.pub.pem");
        let (mut seen, mut with_signature) = (0, 0);
        for entry in &list.entries {
            let m = decode(entry).unwrap();
            assert_eq!(m.template, "ima-sig", "{path} entry {}", entry.index);
            seen += 1;
            match &m.signature {
                Some(bytes) => {
                    with_signature += 1;
                    let header = signature::parse_signature(bytes)
                        .unwrap_or_else(|e| panic!("{path} entry {}: {e}", entry.index));
                    let error = verify(&m, &not_theirs).unwrap_err();
                    let text = error.to_string();
                    assert!(text.contains("no configured key"), "{text}");
                    assert!(text.contains(&header.key_id_hex()), "{text}");
                }
                None => {
                    let error = verify(&m, &not_theirs).unwrap_err();
                    assert!(
                        matches!(error, SignatureError::NoSignature { .. }),
                        "{error}"
                    );
                }
            }
        }
        assert_eq!((seen, with_signature), (entries, signed), "{path}");
    }
}

#[test]
fn an_ascii_ima_sig_line_carries_its_signature_to_verification() {
    let digest = file_digest(HashAlg::Sha256);
    let sig = header(3, 2, SHA256, P256_ID, &p256_sign(&digest));
    let mut fields = Vec::new();
    let digest_field = [b"sha256:\0".as_slice(), &digest].concat();
    for field in [&digest_field[..], b"/usr/bin/vigil-test\0", &sig] {
        fields.extend_from_slice(&u32::try_from(field.len()).unwrap().to_le_bytes());
        fields.extend_from_slice(field);
    }
    let line = format!(
        "10 {} ima-sig sha256:{} /usr/bin/vigil-test {}\n",
        hex::encode(HashAlg::Sha1.digest(&fields)),
        hex::encode(&digest),
        hex::encode(&sig)
    );
    let list = parse(line.as_bytes(), HashAlg::Sha1, 0).unwrap();
    let m = decode(&list.entries[0]).unwrap();
    assert_eq!(verify(&m, &all_keys()).unwrap().key_label, "p256.pub.pem");
}
