//! Compact JWS (RFC 7515) with ES256 only, and offline verification of EAR tokens.
//!
//! Verification runs in the order that never trusts unauthenticated bytes more than needed:
//! size and shape, header (algorithm pinned to ES256), key lookup by `kid`, signature, and
//! only then the claims and their validity period.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::claims::Ear;
use crate::error::{EarError, JwsPart};
use crate::key::Jwks;

/// Largest token accepted or issued, in bytes.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// How far in the future `iat` may lie, to absorb clock differences between hosts.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// ES256 signatures in JOSE form are raw r || s, 32 bytes each.
const ES256_SIGNATURE_LEN: usize = 64;

#[derive(Serialize)]
struct SignedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The three segments of a compact JWS, still encoded.
struct CompactParts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> CompactParts<'a> {
    fn split(token: &'a str) -> Result<Self, EarError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(EarError::TokenTooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let mut segments = token.split('.');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some(header), Some(payload), Some(signature), None) => Ok(CompactParts {
                header,
                payload,
                signature,
            }),
            _ => Err(EarError::Structure {
                parts: token.split('.').count(),
            }),
        }
    }

    /// `header.payload`: the bytes the signature covers.
    fn signing_input(&self) -> String {
        format!("{}.{}", self.header, self.payload)
    }
}

fn decode_part(part: JwsPart, text: &str) -> Result<Vec<u8>, EarError> {
    if text.is_empty() {
        return Err(EarError::EmptyPart { part });
    }
    // The engine refuses padding and non-zero trailing bits, so each byte string has exactly
    // one encoding and no character of a signed segment can change unnoticed.
    URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .map_err(|e| EarError::Base64 {
            part,
            detail: e.to_string(),
        })
}

fn parse_json<T: for<'de> Deserialize<'de>>(part: JwsPart, bytes: &[u8]) -> Result<T, EarError> {
    // serde's derived structs also accept a JSON array, filled by position; JOSE headers and
    // JWT claims sets are objects, so anything else is refused before it reaches serde.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(EarError::Json {
            part,
            detail: "not a JSON object".to_owned(),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| EarError::Json {
        part,
        detail: e.to_string(),
    })
}

/// Serialises, signs with `signer` and assembles the compact token.
pub(crate) fn sign(
    ear: &Ear,
    kid: &str,
    signer: impl FnOnce(&[u8]) -> Result<Vec<u8>, EarError>,
) -> Result<String, EarError> {
    ear.validate()?;
    let serialize = |e: serde_json::Error| EarError::Serialize {
        detail: e.to_string(),
    };
    let header = serde_json::to_vec(&SignedHeader {
        alg: "ES256",
        typ: "JWT",
        kid,
    })
    .map_err(serialize)?;
    let payload = serde_json::to_vec(ear).map_err(serialize)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = signer(signing_input.as_bytes())?;
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    // Never issue a token that `verify` would refuse for its size.
    if token.len() > MAX_TOKEN_LEN {
        return Err(EarError::TokenTooLarge {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    Ok(token)
}

/// Verifies a token offline: structure, header (alg must be ES256; "none"/HS* refused), kid
/// known in `keys`, signature, claims, then `iat <= now + 60 s` and `now < exp`.
///
/// `now` is seconds since the Unix epoch, supplied by the caller.
pub fn verify(token: &str, keys: &Jwks, now: i64) -> Result<Ear, EarError> {
    let parts = CompactParts::split(token)?;

    let header: ReceivedHeader = parse_json(
        JwsPart::Header,
        &decode_part(JwsPart::Header, parts.header)?,
    )?;
    if header.alg != "ES256" {
        return Err(EarError::AlgorithmRefused { alg: header.alg });
    }
    if let Some(crit) = header.crit {
        return Err(EarError::CriticalHeader {
            crit: crit.to_string(),
        });
    }
    if let Some(typ) = header.typ
        && !typ.eq_ignore_ascii_case("JWT")
    {
        return Err(EarError::TypeRefused { typ });
    }
    let kid = header.kid.ok_or(EarError::MissingKid)?;
    let key = keys
        .keys
        .iter()
        .find(|key| key.kid == kid)
        .ok_or_else(|| EarError::UnknownKid { kid: kid.clone() })?;
    let point = key.p256_point()?;

    let signature = decode_part(JwsPart::Signature, parts.signature)?;
    if signature.len() != ES256_SIGNATURE_LEN {
        return Err(EarError::SignatureLength {
            len: signature.len(),
        });
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(parts.signing_input().as_bytes(), &signature)
        .map_err(|_| EarError::SignatureInvalid { kid })?;

    let ear: Ear = parse_json(
        JwsPart::Payload,
        &decode_part(JwsPart::Payload, parts.payload)?,
    )?;
    ear.validate()?;
    if ear.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(EarError::NotYetValid {
            iat: ear.issued_at,
            now,
            skew: CLOCK_SKEW_SECS,
        });
    }
    if now >= ear.expires_at {
        return Err(EarError::Expired {
            exp: ear.expires_at,
            now,
        });
    }
    Ok(ear)
}

/// Decodes the claims WITHOUT checking the signature, the header or the validity period.
///
/// For display only (e.g. `vigil result show`); never base a decision on its output.
pub fn decode_unverified(token: &str) -> Result<Ear, EarError> {
    let parts = CompactParts::split(token)?;
    parse_json(
        JwsPart::Payload,
        &decode_part(JwsPart::Payload, parts.payload)?,
    )
}

#[cfg(test)]
mod tests {
    //! Tokens with hand-made headers and payloads, signed with a real key, so that each
    //! header and claim check is shown to be what refuses them (the signature is valid).

    use super::*;
    use crate::claims::EAR_PROFILE;
    use crate::key::ResultSigningKey;
    use crate::status::Status;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;

    fn key() -> ResultSigningKey {
        let dir = std::env::temp_dir().join(format!(
            "vigil-ear-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let key = ResultSigningKey::load_or_generate(&dir.join("key.pk8")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        key
    }

    fn sign_raw(key: &ResultSigningKey, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = key.sign_bytes_for_tests(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn good_header(key: &ResultSigningKey) -> Value {
        json!({"alg": "ES256", "typ": "JWT", "kid": key.key_id()})
    }

    fn good_payload() -> Value {
        json!({
            "eat_profile": EAR_PROFILE,
            "iat": NOW,
            "exp": NOW + 300,
            "eat_nonce": "AAECAwQFBgc",
            "ear_verifier_id": {"developer": "https://vigil.example", "build": "vigil 0.1.0"},
            "sub": "node-1",
            "submods": {"tpm": {
                "ear_status": "affirming",
                "ear_trustworthiness_vector": {"instance-identity": 2, "hardware": 2},
                "ear_appraisal_policy_ids": ["vigil:baseline/1"]
            }}
        })
    }

    fn keys(key: &ResultSigningKey) -> Jwks {
        Jwks {
            keys: vec![key.public_jwk()],
        }
    }

    fn verify_payload(payload: Value) -> Result<Ear, EarError> {
        let key = key();
        verify(
            &sign_raw(&key, &good_header(&key), &payload),
            &keys(&key),
            NOW,
        )
    }

    fn with(mut payload: Value, pointer: &str, value: Value) -> Value {
        *payload.pointer_mut(pointer).unwrap() = value;
        payload
    }

    fn claim_error(result: Result<Ear, EarError>) -> String {
        match result {
            Err(EarError::InvalidClaim { claim, .. }) => claim,
            Err(EarError::Json { part, detail }) => format!("json {part}: {detail}"),
            other => panic!("expected a claim error, got {other:?}"),
        }
    }

    #[test]
    fn hand_made_good_token_verifies() {
        let ear = verify_payload(good_payload()).unwrap();
        assert_eq!(ear.status(), Status::Affirming);
        assert_eq!(ear.nonce.as_deref(), Some(&[0, 1, 2, 3, 4, 5, 6, 7][..]));
    }

    #[test]
    fn header_checks_each_refuse() {
        let key = key();
        let kid = key.key_id().to_owned();
        let cases = [
            (
                json!({"alg": "none", "typ": "JWT", "kid": kid}),
                "AlgorithmRefused",
            ),
            (
                json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                "AlgorithmRefused",
            ),
            (
                json!({"alg": "ES384", "typ": "JWT", "kid": kid}),
                "AlgorithmRefused",
            ),
            (
                json!({"alg": "es256", "typ": "JWT", "kid": kid}),
                "AlgorithmRefused",
            ),
            (json!({"typ": "JWT", "kid": kid}), "Json"),
            (json!({"alg": "ES256", "typ": "JWT"}), "MissingKid"),
            (
                json!({"alg": "ES256", "typ": "JWT", "kid": "other"}),
                "UnknownKid",
            ),
            (
                json!({"alg": "ES256", "typ": "JOSE+JSON", "kid": kid}),
                "TypeRefused",
            ),
            (
                json!({"alg": "ES256", "kid": kid, "crit": ["b64"], "b64": false}),
                "CriticalHeader",
            ),
            (json!(["ES256"]), "Json"),
        ];
        for (header, expected) in cases {
            let token = sign_raw(&key, &header, &good_payload());
            let err = verify(&token, &keys(&key), NOW).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(expected),
                "header {header}: expected {expected}, got {err:?}"
            );
        }
        // Without "typ" the header is still acceptable.
        let token = sign_raw(&key, &json!({"alg": "ES256", "kid": kid}), &good_payload());
        verify(&token, &keys(&key), NOW).unwrap();
    }

    #[test]
    fn profile_must_be_draft_04() {
        let legacy = with(
            good_payload(),
            "/eat_profile",
            json!("tag:github.com,2023:veraison/ear"),
        );
        assert_eq!(claim_error(verify_payload(legacy)), "eat_profile");
    }

    #[test]
    fn exp_must_follow_iat() {
        let payload = with(good_payload(), "/exp", json!(NOW));
        assert_eq!(claim_error(verify_payload(payload)), "exp");
    }

    #[test]
    fn missing_claims_are_refused() {
        for claim in [
            "eat_profile",
            "iat",
            "exp",
            "ear_verifier_id",
            "sub",
            "submods",
        ] {
            let mut payload = good_payload();
            payload.as_object_mut().unwrap().remove(claim);
            let err = claim_error(verify_payload(payload));
            assert!(err.contains(claim), "{claim}: {err}");
        }
    }

    #[test]
    fn nonce_length_and_encoding_are_checked() {
        let short = with(good_payload(), "/eat_nonce", json!("AAECAwQFBg"));
        assert_eq!(claim_error(verify_payload(short)), "eat_nonce");
        let long = with(
            good_payload(),
            "/eat_nonce",
            json!(URL_SAFE_NO_PAD.encode([0u8; 65])),
        );
        assert_eq!(claim_error(verify_payload(long)), "eat_nonce");
        let padded = with(good_payload(), "/eat_nonce", json!("AAECAwQFBgc="));
        assert!(claim_error(verify_payload(padded)).contains("eat_nonce"));
    }

    #[test]
    fn submodule_rules_are_checked() {
        let empty = with(good_payload(), "/submods", json!({}));
        assert_eq!(claim_error(verify_payload(empty)), "submods");

        let better_than_vector = with(
            good_payload(),
            "/submods/tpm/ear_trustworthiness_vector/hardware",
            json!(97),
        );
        assert!(matches!(
            verify_payload(better_than_vector),
            Err(EarError::InconsistentStatus {
                vector_status: Status::Contraindicated,
                ..
            })
        ));

        let unknown_label = with(
            good_payload(),
            "/submods/tpm/ear_trustworthiness_vector",
            json!({"hardware": 2, "firmware": 96}),
        );
        assert!(claim_error(verify_payload(unknown_label)).contains("firmware"));

        let out_of_range = with(
            good_payload(),
            "/submods/tpm/ear_trustworthiness_vector/hardware",
            json!(200),
        );
        assert!(claim_error(verify_payload(out_of_range)).contains("200"));

        let two_policies = with(
            good_payload(),
            "/submods/tpm/ear_appraisal_policy_ids",
            json!(["a", "b"]),
        );
        assert!(claim_error(verify_payload(two_policies)).contains("exactly one"));

        let bad_status = with(good_payload(), "/submods/tpm/ear_status", json!("fine"));
        assert!(claim_error(verify_payload(bad_status)).contains("fine"));
    }

    #[test]
    fn duplicate_claims_are_refused() {
        let key = key();
        let payload = good_payload().to_string().replacen(
            "\"sub\":\"node-1\"",
            "\"sub\":\"node-1\",\"sub\":\"node-2\"",
            1,
        );
        assert!(payload.contains("node-2"));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(good_header(&key).to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = key.sign_bytes_for_tests(input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let err = verify(&token, &keys(&key), NOW).unwrap_err();
        assert!(format!("{err}").contains("duplicate field"), "{err}");
    }

    #[test]
    fn payload_that_is_not_an_object_is_refused() {
        let positional = json!([EAR_PROFILE, NOW, NOW + 300]);
        for payload in [
            json!(null),
            json!([1, 2]),
            json!("ear"),
            json!(12),
            positional,
        ] {
            assert!(claim_error(verify_payload(payload)).starts_with("json payload"));
        }
    }
}
