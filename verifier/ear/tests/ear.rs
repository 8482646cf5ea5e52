//! Public-API tests: each check of signing, key handling and offline verification has a test
//! here (or in `src/jws.rs` for hand-made headers and claims) that makes it fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use vigil_ear::{
    EAR_PROFILE, Ear, EarError, Jwks, JwsPart, MAX_TOKEN_LEN, ResultSigningKey, Status, Submodule,
    TrustVector, VerifierId, ar4si, decode_unverified, verify,
};

const NOW: i64 = 1_800_000_000;

/// Table-driven cases: a name and an edit or a predicate.
type JwkEdit = (&'static str, fn(&mut vigil_ear::Jwk));
type ErrorCase = (&'static str, fn(&EarError) -> bool);
type EarEdit = (&'static str, fn(&mut Ear));
const TTL: i64 = 300;

/// A fresh directory under the system temp dir, unique per test.
fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vigil-ear-test-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes a test directory when the test ends, pass or fail.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn new_key(name: &str) -> ResultSigningKey {
    let dir = temp_dir(name);
    let _cleanup = Cleanup(dir.clone());
    ResultSigningKey::load_or_generate(&dir.join("result-key.pk8")).unwrap()
}

#[test]
fn signing_key_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ResultSigningKey>();
    shareable::<Jwks>();
    shareable::<Ear>();
}

fn jwks(keys: &[&ResultSigningKey]) -> Jwks {
    Jwks {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    }
}

fn affirming_tpm() -> Submodule {
    Submodule {
        status: Status::Affirming,
        trust_vector: TrustVector {
            instance_identity: ar4si::INSTANCE_IDENTITY_TRUSTED,
            executables: ar4si::EXECUTABLES_APPROVED_BOOT,
            hardware: ar4si::HARDWARE_GENUINE,
            ..TrustVector::default()
        },
        policy_id: Some("vigil:baseline/default@3".to_owned()),
        detail: Some(json!({"pcrs": [0, 7]})),
    }
}

fn sample_ear() -> Ear {
    let mut submods = BTreeMap::new();
    submods.insert("tpm".to_owned(), affirming_tpm());
    submods.insert(
        "gpu0".to_owned(),
        Submodule {
            status: Status::Warning,
            trust_vector: TrustVector {
                hardware: ar4si::HARDWARE_KNOWN_VULNERABILITIES,
                configuration: ar4si::CONFIGURATION_APPROVED,
                ..TrustVector::default()
            },
            policy_id: None,
            detail: None,
        },
    );
    Ear {
        profile: EAR_PROFILE.to_owned(),
        issued_at: NOW,
        expires_at: NOW + TTL,
        nonce: Some((0u8..32).collect()),
        verifier_id: VerifierId {
            developer: "https://vigil.example".to_owned(),
            build: "vigil 0.1.0".to_owned(),
        },
        submods,
        subject: "node-0001".to_owned(),
        baseline_version: Some("3".to_owned()),
    }
}

/// The smallest valid result, so that byte-flip loops stay short.
fn short_ear() -> Ear {
    let mut submods = BTreeMap::new();
    submods.insert(
        "tpm".to_owned(),
        Submodule {
            status: Status::Affirming,
            trust_vector: TrustVector {
                hardware: 2,
                ..TrustVector::default()
            },
            policy_id: None,
            detail: None,
        },
    );
    Ear {
        profile: EAR_PROFILE.to_owned(),
        issued_at: NOW,
        expires_at: NOW + TTL,
        nonce: None,
        verifier_id: VerifierId {
            developer: "v".to_owned(),
            build: "1".to_owned(),
        },
        submods,
        subject: "n".to_owned(),
        baseline_version: None,
    }
}

fn segment(token: &str, index: usize) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.split('.').nth(index).unwrap())
        .unwrap()
}

// ---- round trip and wire format -------------------------------------------------------------

#[test]
fn sign_then_verify_returns_the_same_claims() {
    let key = new_key("round-trip");
    let ear = sample_ear();
    let token = key.sign(&ear).unwrap();
    let verified = verify(&token, &jwks(&[&key]), NOW).unwrap();
    assert_eq!(verified, ear);
    assert_eq!(verified.status(), Status::Warning);
}

#[test]
fn header_is_es256_jwt_with_the_thumbprint_kid() {
    let key = new_key("header");
    let token = key.sign(&sample_ear()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&segment(&token, 0)).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": key.key_id()})
    );
    assert_eq!(segment(&token, 2).len(), 64, "raw r||s signature");
}

#[test]
fn claim_names_match_draft_ietf_rats_ear_04() {
    let key = new_key("claim-names");
    let token = key.sign(&sample_ear()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&segment(&token, 1)).unwrap();
    let expected = json!({
        "eat_profile": "tag:ietf.org,2026:rats/ear#04",
        "iat": NOW,
        "exp": NOW + TTL,
        "eat_nonce": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "ear_verifier_id": {"developer": "https://vigil.example", "build": "vigil 0.1.0"},
        "sub": "node-0001",
        "vigil_baseline_version": "3",
        "submods": {
            "tpm": {
                "ear_status": "affirming",
                "ear_trustworthiness_vector": {
                    "instance-identity": 2, "executables": 3, "hardware": 2
                },
                "ear_appraisal_policy_ids": ["vigil:baseline/default@3"],
                "vigil_detail": {"pcrs": [0, 7]}
            },
            "gpu0": {
                "ear_status": "warning",
                "ear_trustworthiness_vector": {"configuration": 2, "hardware": 32}
            }
        }
    });
    assert_eq!(claims, expected);
}

#[test]
fn trust_vector_uses_every_ar4si_label_and_omits_zero() {
    let full = TrustVector {
        instance_identity: 2,
        configuration: 3,
        executables: 32,
        file_system: 33,
        hardware: 96,
        runtime_opaque: 97,
        storage_opaque: -2,
        sourced_data: 99,
    };
    assert_eq!(
        serde_json::to_value(full).unwrap(),
        json!({
            "instance-identity": 2, "configuration": 3, "executables": 32, "file-system": 33,
            "hardware": 96, "runtime-opaque": 97, "storage-opaque": -2, "sourced-data": 99
        })
    );
    assert_eq!(
        serde_json::to_value(TrustVector::default()).unwrap(),
        json!({})
    );
    let back: TrustVector = serde_json::from_value(json!({"file-system": 33})).unwrap();
    assert_eq!(back.file_system, 33);
    assert_eq!(back.hardware, ar4si::NO_CLAIM);
}

#[test]
fn submodule_without_claims_omits_the_vector() {
    let mut ear = short_ear();
    ear.submods.insert(
        "gpu1".to_owned(),
        Submodule {
            status: Status::None,
            trust_vector: TrustVector::default(),
            policy_id: None,
            detail: None,
        },
    );
    let claims = serde_json::to_value(&ear).unwrap();
    assert_eq!(claims["submods"]["gpu1"], json!({"ear_status": "none"}));
}

// ---- tampering --------------------------------------------------------------------------------

/// Flips one bit in each byte of the given segment and expects every result to be refused.
fn assert_every_flip_refused(segment_index: usize) {
    let key = new_key("flip");
    let keys = jwks(&[&key]);
    let token = key.sign(&short_ear()).unwrap();
    verify(&token, &keys, NOW).unwrap();
    let start: usize = token
        .split('.')
        .take(segment_index)
        .map(|s| s.len() + 1)
        .sum();
    let len = token.split('.').nth(segment_index).unwrap().len();
    assert!(len > 0);
    for offset in start..start + len {
        for bit in [0x01u8, 0x20] {
            let mut bytes = token.clone().into_bytes();
            bytes[offset] ^= bit;
            let Ok(tampered) = String::from_utf8(bytes) else {
                continue;
            };
            let result = verify(&tampered, &keys, NOW);
            assert!(
                result.is_err(),
                "segment {segment_index}, byte {offset} ^ {bit:#x} was accepted"
            );
        }
    }
}

#[test]
fn every_flipped_header_byte_is_refused() {
    assert_every_flip_refused(0);
}

#[test]
fn every_flipped_payload_byte_is_refused() {
    assert_every_flip_refused(1);
}

#[test]
fn every_flipped_signature_byte_is_refused() {
    assert_every_flip_refused(2);
}

#[test]
fn flipped_payload_is_refused_by_the_signature_check() {
    let key = new_key("flip-sig");
    let token = key.sign(&short_ear()).unwrap();
    // Re-encode a modified payload that still parses, so only the signature can catch it.
    let forged_claims = String::from_utf8(segment(&token, 1))
        .unwrap()
        .replace("\"sub\":\"n\"", "\"sub\":\"m\"");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(forged_claims);
    let forged = parts.join(".");
    assert!(decode_unverified(&forged).unwrap().subject == "m");
    assert!(matches!(
        verify(&forged, &jwks(&[&key]), NOW),
        Err(EarError::SignatureInvalid { kid }) if kid == key.key_id()
    ));
}

#[test]
fn signature_of_wrong_length_is_refused() {
    let key = new_key("sig-len");
    let token = key.sign(&short_ear()).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    let der_like = URL_SAFE_NO_PAD.encode([0x30u8; 70]);
    assert!(matches!(
        verify(&format!("{input}.{der_like}"), &jwks(&[&key]), NOW),
        Err(EarError::SignatureLength { len: 70 })
    ));
}

// ---- keys -------------------------------------------------------------------------------------

#[test]
fn token_from_a_key_with_another_kid_is_refused() {
    let issuer = new_key("issuer");
    let other = new_key("other");
    let token = issuer.sign(&short_ear()).unwrap();
    assert!(matches!(
        verify(&token, &jwks(&[&other]), NOW),
        Err(EarError::UnknownKid { kid }) if kid == issuer.key_id()
    ));
    // With both keys published, the issuer's entry is found and the token verifies.
    verify(&token, &jwks(&[&other, &issuer]), NOW).unwrap();
}

#[test]
fn token_whose_kid_names_other_key_material_is_refused() {
    let issuer = new_key("issuer");
    let impostor = new_key("impostor");
    let token = issuer.sign(&short_ear()).unwrap();
    let mut swapped = impostor.public_jwk();
    swapped.kid = issuer.key_id().to_owned();
    let keys = Jwks {
        keys: vec![swapped],
    };
    assert!(matches!(
        verify(&token, &keys, NOW),
        Err(EarError::SignatureInvalid { .. })
    ));
}

#[test]
fn unusable_published_keys_are_refused() {
    let key = new_key("unusable");
    let token = key.sign(&short_ear()).unwrap();
    let edits: [JwkEdit; 6] = [
        ("kty", |k| k.kty = "RSA".to_owned()),
        ("crv", |k| k.crv = "P-384".to_owned()),
        ("alg", |k| k.alg = "HS256".to_owned()),
        ("use", |k| k.key_use = "enc".to_owned()),
        ("x", |k| k.x.truncate(20)),
        ("y", |k| k.y.push('!')),
    ];
    for (member, edit) in edits {
        let mut jwk = key.public_jwk();
        edit(&mut jwk);
        let result = verify(&token, &Jwks { keys: vec![jwk] }, NOW);
        assert!(
            matches!(&result, Err(EarError::UnsupportedKey { reason, .. }) if reason.starts_with(member)),
            "{member}: {result:?}"
        );
    }
}

#[test]
fn alg_none_and_hs256_tokens_are_refused() {
    let key = new_key("alg");
    let token = key.sign(&short_ear()).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for alg in ["none", "HS256", "RS256", "ES384", "EdDSA"] {
        let header = URL_SAFE_NO_PAD
            .encode(json!({"alg": alg, "typ": "JWT", "kid": key.key_id()}).to_string());
        // An HMAC "signature" keyed with the public x coordinate: the classic confusion.
        let fake_mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.public_jwk().x.as_bytes()),
            format!("{header}.{payload}").as_bytes(),
        );
        for signature in [String::new(), URL_SAFE_NO_PAD.encode(fake_mac.as_ref())] {
            let forged = format!("{header}.{payload}.{signature}");
            assert!(
                matches!(
                    verify(&forged, &jwks(&[&key]), NOW),
                    Err(EarError::AlgorithmRefused { alg: refused }) if refused == alg
                ),
                "alg {alg} with signature {signature:?}"
            );
        }
    }
}

#[test]
fn key_is_persisted_and_reloaded() {
    let dir = temp_dir("persist");
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("nested/dir/result-key.pk8");
    let first = ResultSigningKey::load_or_generate(&path).unwrap();
    assert!(path.exists());
    let token = first.sign(&short_ear()).unwrap();
    let second = ResultSigningKey::load_or_generate(&path).unwrap();
    assert_eq!(first.key_id(), second.key_id());
    assert_eq!(first.public_jwk(), second.public_jwk());
    // Tokens signed before the restart verify with the reloaded key's JWK, and vice versa.
    verify(&token, &jwks(&[&second]), NOW).unwrap();
    verify(&second.sign(&short_ear()).unwrap(), &jwks(&[&first]), NOW).unwrap();
    // A different path gives a different key.
    let third = ResultSigningKey::load_or_generate(&path.with_file_name("other.pk8")).unwrap();
    assert_ne!(first.key_id(), third.key_id());
    // No temporary file is left next to the key.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn key_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("mode");
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("result-key.pk8");
    ResultSigningKey::load_or_generate(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
}

#[test]
fn corrupt_key_file_is_an_error_and_is_not_replaced() {
    let dir = temp_dir("corrupt");
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("result-key.pk8");
    std::fs::write(&path, b"not a key").unwrap();
    assert!(matches!(
        ResultSigningKey::load_or_generate(&path),
        Err(EarError::KeyRejected { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
}

#[test]
fn oversized_key_file_is_refused() {
    let dir = temp_dir("huge");
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("result-key.pk8");
    std::fs::write(&path, vec![0x30; 10_000]).unwrap();
    assert!(matches!(
        ResultSigningKey::load_or_generate(&path),
        Err(EarError::KeyFileTooLarge { max: 4096, .. })
    ));
}

#[test]
fn unreadable_key_path_is_an_io_error() {
    // A directory where the file should be.
    let path = temp_dir("is-dir");
    let _cleanup = Cleanup(path.clone());
    assert!(matches!(
        ResultSigningKey::load_or_generate(&path),
        Err(EarError::KeyIo { .. })
    ));
}

/// A fixed P-256 key (PKCS#8 DER), made once with
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | openssl pkcs8 -topk8 -nocrypt`.
const FIXED_PKCS8_HEX: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02010104202ce2b0bff0144bafc056b51d3f806f26273481081dd2708b30e18361f4d9144ca1440342000436d97d9420a81344ce8fc13b4cb31ad13bbd2dd23cee379148310c66561118e7eb4682b389089f7f82015ba6cb17cb07d496eaf74748fcc6374741cb03323f5b";

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn key_id_is_the_rfc7638_thumbprint() {
    // Expected values computed independently of this crate:
    //   point = `openssl pkey -inform DER -pubout -outform DER | tail -c 65`
    //   x, y  = base64url(point[1:33]), base64url(point[33:65])
    //   kid   = base64url(hashlib.sha256(json.dumps({"crv":"P-256","kty":"EC","x":x,"y":y},
    //             separators=(',', ':'), sort_keys=True).encode()).digest())   # python3
    let key = ResultSigningKey::from_pkcs8_bytes(
        &from_hex(FIXED_PKCS8_HEX),
        std::path::Path::new("fixed"),
    )
    .unwrap();
    let jwk = key.public_jwk();
    assert_eq!(jwk.x, "Ntl9lCCoE0TOj8E7TLMa0Tu9LdI87jeRSDEMZlYRGOc");
    assert_eq!(jwk.y, "60aCs4kIn3-CAVumyxfLB9SW6vdHSPzGN0dBywMyP1s");
    assert_eq!(key.key_id(), "zQHZuy3U10p9cipNInsqIP59Ry0g9cPizNWLcvKYkn0");
    assert_eq!(jwk.kid, key.key_id());
    assert_eq!(jwk.thumbprint(), key.key_id());
    // The thumbprint covers x and y: changing either changes it.
    let mut moved = jwk.clone();
    moved.y = jwk.x.clone();
    assert_ne!(moved.thumbprint(), key.key_id());
}

#[test]
fn jwk_serialises_with_jose_member_names() {
    let key = new_key("jwk");
    let value = serde_json::to_value(jwks(&[&key])).unwrap();
    let jwk = &value["keys"][0];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], key.key_id());
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let back: Jwks = serde_json::from_value(value).unwrap();
    assert_eq!(back.keys[0], key.public_jwk());
}

// ---- time ---------------------------------------------------------------------------------------

#[test]
fn expired_token_is_refused() {
    let key = new_key("expired");
    let keys = jwks(&[&key]);
    let token = key.sign(&short_ear()).unwrap();
    verify(&token, &keys, NOW + TTL - 1).unwrap();
    let err = verify(&token, &keys, NOW + TTL).unwrap_err();
    assert!(matches!(err, EarError::Expired { exp, now } if exp == NOW + TTL && now == NOW + TTL));
    assert_eq!(
        err.to_string(),
        format!("token expired at {}, now {}", NOW + TTL, NOW + TTL)
    );
    assert!(verify(&token, &keys, i64::MAX).is_err());
}

#[test]
fn token_issued_in_the_future_is_refused() {
    let key = new_key("future");
    let keys = jwks(&[&key]);
    let mut ear = short_ear();
    ear.issued_at = NOW + 86_400;
    ear.expires_at = NOW + 2 * 86_400;
    let far = key.sign(&ear).unwrap();
    assert!(matches!(
        verify(&far, &keys, NOW),
        Err(EarError::NotYetValid { skew: 60, .. })
    ));
    // Within the 60 s skew it is accepted; one second beyond, refused.
    let token = key.sign(&short_ear()).unwrap();
    verify(&token, &keys, NOW - 60).unwrap();
    assert!(matches!(
        verify(&token, &keys, NOW - 61),
        Err(EarError::NotYetValid { .. })
    ));
    assert!(verify(&token, &keys, i64::MIN).is_err());
}

// ---- malformed input ----------------------------------------------------------------------------

#[test]
fn garbage_tokens_give_errors() {
    let key = new_key("garbage");
    let keys = jwks(&[&key]);
    let cases: [ErrorCase; 9] = [
        ("", |e| matches!(e, EarError::Structure { parts: 1 })),
        ("not a token", |e| {
            matches!(e, EarError::Structure { parts: 1 })
        }),
        (".", |e| matches!(e, EarError::Structure { parts: 2 })),
        ("..", |e| {
            matches!(
                e,
                EarError::EmptyPart {
                    part: JwsPart::Header
                }
            )
        }),
        ("a.b.c.d", |e| matches!(e, EarError::Structure { parts: 4 })),
        ("a.b.c.d.e", |e| {
            matches!(e, EarError::Structure { parts: 5 })
        }),
        ("e30.e30.AA", |e| {
            matches!(
                e,
                EarError::Json {
                    part: JwsPart::Header,
                    ..
                }
            )
        }),
        ("eyJ=.e30.AA", |e| {
            matches!(
                e,
                EarError::Base64 {
                    part: JwsPart::Header,
                    ..
                }
            )
        }),
        ("\u{0}\u{ff}.\u{1}.\u{2}", |e| {
            matches!(e, EarError::Base64 { .. })
        }),
    ];
    for (token, expected) in cases {
        let err = verify(token, &keys, NOW).unwrap_err();
        assert!(expected(&err), "{token:?}: {err:?}");
        assert!(decode_unverified(token).is_err(), "{token:?}");
    }
}

#[test]
fn every_truncation_of_a_token_is_refused() {
    let key = new_key("truncate");
    let keys = jwks(&[&key]);
    let token = key.sign(&short_ear()).unwrap();
    for len in 0..token.len() {
        assert!(
            verify(&token[..len], &keys, NOW).is_err(),
            "prefix of {len} bytes"
        );
    }
    let (without_signature, _) = token.rsplit_once('.').unwrap();
    assert!(matches!(
        verify(&format!("{without_signature}."), &keys, NOW),
        Err(EarError::EmptyPart {
            part: JwsPart::Signature
        })
    ));
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let key = new_key("oversized");
    let token = key.sign(&short_ear()).unwrap();
    let padded = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
    assert!(matches!(
        verify(&padded, &jwks(&[&key]), NOW),
        Err(EarError::TokenTooLarge {
            max: MAX_TOKEN_LEN,
            ..
        })
    ));
    assert!(matches!(
        decode_unverified(&padded),
        Err(EarError::TokenTooLarge { .. })
    ));
}

#[test]
fn signing_refuses_a_result_too_large_to_verify() {
    let key = new_key("sign-oversized");
    let mut ear = short_ear();
    ear.submods.get_mut("tpm").unwrap().detail = Some(json!("x".repeat(MAX_TOKEN_LEN)));
    assert!(matches!(
        key.sign(&ear),
        Err(EarError::TokenTooLarge {
            max: MAX_TOKEN_LEN,
            ..
        })
    ));
}

#[test]
fn mutated_tokens_never_panic() {
    // Deterministic pseudo-random edits (xorshift); only "returns, does not panic" is asserted,
    // plus that no edit is accepted.
    let key = new_key("mutate");
    let keys = jwks(&[&key]);
    let token = key.sign(&sample_ear()).unwrap().into_bytes();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut bytes = token.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = (next() % 128) as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"._-A0{}\""[(next() % 8) as usize]),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let _ = decode_unverified(&text);
        if text.as_bytes() != token.as_slice() {
            assert!(verify(&text, &keys, NOW).is_err(), "accepted {text}");
        }
    }
}

// ---- signing-side validation ------------------------------------------------------------------

#[test]
fn signing_refuses_invalid_claims() {
    let key = new_key("sign-invalid");
    let cases: [EarEdit; 9] = [
        ("eat_profile", |e| {
            e.profile = "tag:github.com,2023:veraison/ear".to_owned()
        }),
        ("exp", |e| e.expires_at = e.issued_at),
        ("eat_nonce", |e| e.nonce = Some(vec![1; 7])),
        ("eat_nonce", |e| e.nonce = Some(vec![1; 65])),
        ("sub", |e| e.subject.clear()),
        ("ear_verifier_id.build", |e| e.verifier_id.build.clear()),
        ("submods", |e| e.submods.clear()),
        ("submods", |e| {
            let tpm = e.submods["tpm"].clone();
            e.submods.insert(String::new(), tpm);
        }),
        ("submods.tpm.ear_appraisal_policy_ids", |e| {
            e.submods.get_mut("tpm").unwrap().policy_id = Some("p".repeat(5000));
        }),
    ];
    for (claim, edit) in cases {
        let mut ear = short_ear();
        edit(&mut ear);
        let result = key.sign(&ear);
        assert!(
            matches!(&result, Err(EarError::InvalidClaim { claim: c, .. }) if c == claim),
            "{claim}: {result:?}"
        );
    }
    let mut too_many = short_ear();
    for i in 0..=vigil_ear::MAX_SUBMODS {
        too_many.submods.insert(format!("gpu{i}"), affirming_tpm());
    }
    assert!(matches!(
        key.sign(&too_many),
        Err(EarError::InvalidClaim { .. })
    ));
}

#[test]
fn status_better_than_the_trust_vector_is_refused() {
    let key = new_key("inconsistent");
    let mut ear = short_ear();
    let tpm = ear.submods.get_mut("tpm").unwrap();
    tpm.trust_vector.executables = ar4si::EXECUTABLES_UNRECOGNIZED;
    assert!(matches!(
        key.sign(&ear),
        Err(EarError::InconsistentStatus {
            status: Status::Affirming,
            vector_status: Status::Warning,
            ..
        })
    ));
    // A status worse than the vector (policy may be stricter than the claims) is fine.
    ear.submods.get_mut("tpm").unwrap().status = Status::Contraindicated;
    key.sign(&ear).unwrap();
}

#[test]
fn decode_unverified_reads_without_keys_or_clock() {
    let key = new_key("unverified");
    let token = key.sign(&sample_ear()).unwrap();
    let ear = decode_unverified(&token).unwrap();
    assert_eq!(ear, sample_ear());
    // It needs no key and ignores expiry; verify does not.
    assert!(verify(&token, &Jwks::default(), NOW + 10 * TTL).is_err());
}

// ---- tiers --------------------------------------------------------------------------------------

#[test]
fn status_order_puts_worse_above_better() {
    assert!(Status::None < Status::Affirming);
    assert!(Status::Affirming < Status::Warning);
    assert!(Status::Warning < Status::Contraindicated);
    assert_eq!(
        serde_json::to_value(Status::Contraindicated).unwrap(),
        "contraindicated"
    );
    assert_eq!(serde_json::to_value(Status::None).unwrap(), "none");
}

#[test]
fn trust_vector_status_is_the_worst_claim() {
    let tv = |hardware: i8, executables: i8| TrustVector {
        hardware,
        executables,
        ..TrustVector::default()
    };
    assert_eq!(TrustVector::default().status(), Status::None);
    assert_eq!(tv(ar4si::UNEVALUATED_ELEMENTS, 0).status(), Status::None);
    assert_eq!(
        tv(ar4si::VERIFIER_MALFUNCTION, 2).status(),
        Status::Affirming
    );
    assert_eq!(tv(2, 3).status(), Status::Affirming);
    assert_eq!(
        tv(2, ar4si::EXECUTABLES_UNRECOGNIZED).status(),
        Status::Warning
    );
    assert_eq!(
        tv(ar4si::HARDWARE_UNRECOGNIZED, 33).status(),
        Status::Contraindicated
    );
    assert_eq!(tv(-97, 2).status(), Status::Contraindicated);
    assert_eq!(tv(-33, -2).status(), Status::Warning);
    let only_sourced = TrustVector {
        sourced_data: ar4si::CRYPTO_VALIDATION_FAILED,
        ..TrustVector::default()
    };
    assert_eq!(only_sourced.status(), Status::Contraindicated);
}

#[test]
fn ear_status_is_the_worst_submodule() {
    let mut ear = sample_ear();
    assert_eq!(ear.status(), Status::Warning);
    ear.submods.get_mut("gpu0").unwrap().status = Status::Contraindicated;
    assert_eq!(ear.status(), Status::Contraindicated);
    ear.submods.clear();
    assert_eq!(ear.status(), Status::None);
}
