//! The EAR claims set (draft-ietf-rats-ear-04, JSON serialisation) and its validation.
//!
//! The same `validate` runs before signing and after verifying, so the verifier never issues
//! a result it would itself refuse, and a relying party never accepts one it would not issue.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::EarError;
use crate::status::{Status, TrustVector};

/// EAT profile of draft-ietf-rats-ear-04; a token naming another profile is refused.
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";

/// At most this many submodules ("tpm" plus one per GPU leaves ample room).
pub const MAX_SUBMODS: usize = 256;
/// Longest submodule name, in bytes.
pub const MAX_SUBMOD_NAME_LEN: usize = 128;
/// Longest text claim (subject, verifier id parts, policy id, baseline version), in bytes.
pub const MAX_TEXT_CLAIM_LEN: usize = 2048;
/// EAT (RFC 9711) nonces are 8 to 64 bytes.
pub const NONCE_LEN_RANGE: std::ops::RangeInclusive<usize> = 8..=64;

/// Who produced the result: AR4SI "verifier developer" and "verifier build".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierId {
    pub developer: String,
    pub build: String,
}

/// One submodule's appraisal inside an EAR ("tpm", "gpu0", ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submodule {
    /// `ear_status`: the submodule's overall tier; never better than its trust vector.
    #[serde(rename = "ear_status")]
    pub status: Status,
    /// `ear_trustworthiness_vector`, left out when no claim is made.
    #[serde(
        rename = "ear_trustworthiness_vector",
        default,
        skip_serializing_if = "TrustVector::is_empty"
    )]
    pub trust_vector: TrustVector,
    /// `ear_appraisal_policy_ids` (a one-element array on the wire).
    #[serde(
        rename = "ear_appraisal_policy_ids",
        default,
        skip_serializing_if = "Option::is_none",
        with = "policy_ids"
    )]
    pub policy_id: Option<String>,
    /// Vigil extension `vigil_detail`: free-form appraisal detail for operators.
    #[serde(
        rename = "vigil_detail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub detail: Option<serde_json::Value>,
}

/// The claims set of one attestation result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ear {
    /// `eat_profile`; must be [`EAR_PROFILE`].
    #[serde(rename = "eat_profile")]
    pub profile: String,
    /// `iat`, seconds since the Unix epoch.
    #[serde(rename = "iat")]
    pub issued_at: i64,
    /// `exp`, seconds since the Unix epoch; the result is void from this second on.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// `eat_nonce`, base64url on the wire.
    #[serde(
        rename = "eat_nonce",
        default,
        skip_serializing_if = "Option::is_none",
        with = "nonce_b64url"
    )]
    pub nonce: Option<Vec<u8>>,
    /// `ear_verifier_id`.
    #[serde(rename = "ear_verifier_id")]
    pub verifier_id: VerifierId,
    /// `submods`: one appraisal per attester in the composite device.
    pub submods: BTreeMap<String, Submodule>,
    /// `sub`: the node id.
    #[serde(rename = "sub")]
    pub subject: String,
    /// Vigil extension `vigil_baseline_version`: which reference values were applied.
    #[serde(
        rename = "vigil_baseline_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub baseline_version: Option<String>,
}

impl Ear {
    /// The worst submodule status; `Status::None` when there are no submodules.
    pub fn status(&self) -> Status {
        self.submods
            .values()
            .map(|submod| submod.status)
            .max()
            .unwrap_or(Status::None)
    }

    /// Checks every rule the draft and this verifier put on a claims set, independent of time.
    pub fn validate(&self) -> Result<(), EarError> {
        if self.profile != EAR_PROFILE {
            return Err(EarError::claim(
                "eat_profile",
                format!("{:?} is not {EAR_PROFILE:?}", self.profile),
            ));
        }
        if self.expires_at <= self.issued_at {
            return Err(EarError::claim(
                "exp",
                format!("{} is not after iat {}", self.expires_at, self.issued_at),
            ));
        }
        if let Some(nonce) = &self.nonce
            && !NONCE_LEN_RANGE.contains(&nonce.len())
        {
            return Err(EarError::claim(
                "eat_nonce",
                format!("{} bytes, EAT nonces are 8 to 64", nonce.len()),
            ));
        }
        check_text("sub", &self.subject)?;
        check_text("ear_verifier_id.developer", &self.verifier_id.developer)?;
        check_text("ear_verifier_id.build", &self.verifier_id.build)?;
        if let Some(version) = &self.baseline_version {
            check_text("vigil_baseline_version", version)?;
        }
        if self.submods.is_empty() {
            return Err(EarError::claim(
                "submods",
                "empty, the draft requires at least one",
            ));
        }
        if self.submods.len() > MAX_SUBMODS {
            return Err(EarError::claim(
                "submods",
                format!("{} entries, at most {MAX_SUBMODS}", self.submods.len()),
            ));
        }
        for (name, submod) in &self.submods {
            if name.is_empty() || name.len() > MAX_SUBMOD_NAME_LEN {
                return Err(EarError::claim(
                    "submods",
                    format!("submodule name {name:?} must be 1 to {MAX_SUBMOD_NAME_LEN} bytes"),
                ));
            }
            submod.validate(name)?;
        }
        Ok(())
    }
}

impl Submodule {
    fn validate(&self, name: &str) -> Result<(), EarError> {
        let vector_status = self.trust_vector.status();
        if self.status < vector_status {
            return Err(EarError::InconsistentStatus {
                submod: name.to_owned(),
                status: self.status,
                vector_status,
            });
        }
        if let Some(policy_id) = &self.policy_id {
            check_text(
                &format!("submods.{name}.ear_appraisal_policy_ids"),
                policy_id,
            )?;
        }
        Ok(())
    }
}

fn check_text(claim: &str, value: &str) -> Result<(), EarError> {
    if value.is_empty() {
        return Err(EarError::claim(claim, "empty"));
    }
    if value.len() > MAX_TEXT_CLAIM_LEN {
        return Err(EarError::claim(
            claim,
            format!("{} bytes, at most {MAX_TEXT_CLAIM_LEN}", value.len()),
        ));
    }
    Ok(())
}

/// `eat_nonce` as unpadded base64url text.
mod nonce_b64url {
    use super::*;

    pub fn serialize<S: Serializer>(nonce: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match nonce {
            Some(bytes) => s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("eat_nonce is not base64url: {e}")))
    }
}

/// `ear_appraisal_policy_ids` is an array in draft-04; Vigil applies exactly one policy.
mod policy_ids {
    use super::*;

    pub fn serialize<S: Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => [id].serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let mut ids = Vec::<String>::deserialize(d)?;
        match (ids.pop(), ids.is_empty()) {
            (Some(id), true) => Ok(Some(id)),
            _ => Err(serde::de::Error::custom(
                "ear_appraisal_policy_ids must hold exactly one policy id",
            )),
        }
    }
}
