//! Signed attestation results for Vigil: EAT Attestation Results (draft-ietf-rats-ear-04)
//! carrying AR4SI trustworthiness vectors (draft-ietf-rats-ar4si), as ES256 JWTs that
//! orchestrators verify offline against the verifier's published JWK set.
//!
//! Data flow: the appraisal fills an [`Ear`] (one [`Submodule`] per attester: "tpm",
//! "gpu0", ...), [`ResultSigningKey::sign`] turns it into a compact JWS, and relying parties
//! call [`verify`] with the [`Jwks`] and their own clock.
//!
//! Claim names follow draft-ietf-rats-ear-04 (`ear_status`, `ear_trustworthiness_vector`,
//! `ear_appraisal_policy_ids`, `ear_verifier_id`; profile [`EAR_PROFILE`]), as the current
//! Veraison EAR libraries do. The dotted names of the earlier draft-fv-rats-ear
//! (`ear.status`, profile `tag:github.com,2023:veraison/ear`) are neither produced nor
//! accepted. Vigil's own extensions are `vigil_detail` (per submodule) and
//! `vigil_baseline_version`.

mod claims;
mod error;
mod jws;
mod key;
mod status;

pub use claims::{
    EAR_PROFILE, Ear, MAX_SUBMOD_NAME_LEN, MAX_SUBMODS, MAX_TEXT_CLAIM_LEN, NONCE_LEN_RANGE,
    Submodule, VerifierId,
};
pub use error::{EarError, JwsPart};
pub use jws::{CLOCK_SKEW_SECS, MAX_TOKEN_LEN, decode_unverified, verify};
pub use key::{Jwk, Jwks, ResultSigningKey};
pub use status::{Status, TrustVector, ar4si};
