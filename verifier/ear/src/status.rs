//! AR4SI trustworthiness claims, tiers and vectors (draft-ietf-rats-ar4si).
//!
//! A claim is a signed 8-bit code; its range alone says which tier it falls in, so a relying
//! party can act on codes it has never seen. The tier, not the code, is what policy compares.

use serde::{Deserialize, Serialize};

/// AR4SI tier of a trust claim or of a whole submodule.
///
/// The order runs from "no verdict" to "worst": `None < Affirming < Warning < Contraindicated`,
/// so the overall tier of several claims is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    None,
    Affirming,
    Warning,
    Contraindicated,
}

impl Status {
    /// The tier of one claim value, by the ranges of the AR4SI enumeration encoding.
    ///
    /// Standard codes are non-negative, private ("non-standard") codes mirror them below zero:
    /// `-1..=1` none (0 no claim, 1 unevaluable evidence, -1 verifier malfunction);
    /// `2..=31` and `-32..=-2` affirming; `32..=95` and `-96..=-33` warning;
    /// `96..=127` and `-128..=-97` contraindicated.
    pub fn of_claim(value: i8) -> Status {
        match value {
            -1..=1 => Status::None,
            2..=31 | -32..=-2 => Status::Affirming,
            32..=95 | -96..=-33 => Status::Warning,
            96..=127 | -128..=-97 => Status::Contraindicated,
        }
    }
}

/// AR4SI trustworthiness vector; each field an AR4SI claim value, 0 = no claim made.
///
/// Serialised with the AR4SI JSON labels; fields equal to 0 are left out, as AR4SI says a 0
/// claim and an absent claim mean the same. Unknown labels are refused when decoding: a
/// dropped claim could hide a contraindication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TrustVector {
    #[serde(skip_serializing_if = "is_no_claim")]
    pub instance_identity: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub configuration: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub executables: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub file_system: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub hardware: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub runtime_opaque: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub storage_opaque: i8,
    #[serde(skip_serializing_if = "is_no_claim")]
    pub sourced_data: i8,
}

fn is_no_claim(value: &i8) -> bool {
    *value == ar4si::NO_CLAIM
}

impl TrustVector {
    /// The claims with their AR4SI labels, in the draft's order.
    pub fn claims(&self) -> [(&'static str, i8); 8] {
        [
            ("instance-identity", self.instance_identity),
            ("configuration", self.configuration),
            ("executables", self.executables),
            ("file-system", self.file_system),
            ("hardware", self.hardware),
            ("runtime-opaque", self.runtime_opaque),
            ("storage-opaque", self.storage_opaque),
            ("sourced-data", self.sourced_data),
        ]
    }

    /// True when no claim is made (every field 0).
    pub fn is_empty(&self) -> bool {
        self.claims().iter().all(|(_, value)| is_no_claim(value))
    }

    /// The worst tier among the claims made; `Status::None` when none is made.
    pub fn status(&self) -> Status {
        self.claims()
            .iter()
            .map(|&(_, value)| Status::of_claim(value))
            .max()
            .unwrap_or(Status::None)
    }
}

/// AR4SI claim values (draft-ietf-rats-ar4si, "Specific Claims").
///
/// Claim-specific names carry the claim they belong to: the same number means different
/// things under different claims (3 is "no known vulnerabilities" for configuration but
/// "approved boot executables" for executables).
pub mod ar4si {
    /// No assertion; AR4SI treats it exactly as an absent claim.
    pub const NO_CLAIM: i8 = 0;
    /// The evidence has elements the verifier cannot evaluate (tier none).
    pub const UNEVALUATED_ELEMENTS: i8 = 1;
    /// The verifier malfunctioned while appraising (tier none).
    pub const VERIFIER_MALFUNCTION: i8 = -1;

    /// Lowest standard affirming code; the generic "affirming" value of every claim.
    pub const AFFIRMING: i8 = 2;
    /// Lowest standard warning code; the generic "warning" value of every claim.
    pub const WARNING: i8 = 32;
    /// Lowest standard contraindicated code; the generic "contraindicated" value of every claim.
    pub const CONTRAINDICATED: i8 = 96;
    /// Cryptographic validation of the evidence failed (every claim, contraindicated).
    pub const CRYPTO_VALIDATION_FAILED: i8 = 99;

    /// instance-identity: the attesting environment is recognised and not known compromised.
    pub const INSTANCE_IDENTITY_TRUSTED: i8 = 2;
    /// instance-identity: recognised, but its key marks a device that is not trustworthy.
    pub const INSTANCE_IDENTITY_UNTRUSTED: i8 = 96;
    /// instance-identity: not recognised although the verifier believes it should be.
    pub const INSTANCE_IDENTITY_UNRECOGNIZED: i8 = 97;

    /// configuration: a known and approved configuration.
    pub const CONFIGURATION_APPROVED: i8 = 2;
    /// configuration: exposes no known vulnerabilities.
    pub const CONFIGURATION_NO_KNOWN_VULNERABILITIES: i8 = 3;
    /// configuration: exposes known vulnerabilities (warning).
    pub const CONFIGURATION_KNOWN_VULNERABILITIES: i8 = 32;
    /// configuration: security-relevant elements are unavailable to the verifier (warning).
    pub const CONFIGURATION_ELEMENTS_UNAVAILABLE: i8 = 36;
    /// configuration: unsupportable, exposes unacceptable vulnerabilities (contraindicated).
    pub const CONFIGURATION_UNSUPPORTABLE: i8 = 96;

    /// executables: only approved objects loaded during and after boot.
    pub const EXECUTABLES_APPROVED_RUNTIME: i8 = 2;
    /// executables: only approved executables loaded during boot.
    pub const EXECUTABLES_APPROVED_BOOT: i8 = 3;
    /// executables: recognised objects, some with known vulnerabilities (warning).
    pub const EXECUTABLES_KNOWN_VULNERABILITIES: i8 = 32;
    /// executables: unrecognised objects in runtime memory (warning).
    pub const EXECUTABLES_UNRECOGNIZED: i8 = 33;
    /// executables: contraindicated objects in runtime memory.
    pub const EXECUTABLES_CONTRAINDICATED: i8 = 96;

    /// file-system: only approved files found.
    pub const FILE_SYSTEM_APPROVED: i8 = 2;
    /// file-system: unrecognised files found (warning).
    pub const FILE_SYSTEM_UNRECOGNIZED: i8 = 32;
    /// file-system: contraindicated files found.
    pub const FILE_SYSTEM_CONTRAINDICATED: i8 = 96;

    /// hardware: hardware/firmware passed the checks showing it genuine and supported.
    pub const HARDWARE_GENUINE: i8 = 2;
    /// hardware: genuine, but with known security vulnerabilities (warning).
    pub const HARDWARE_KNOWN_VULNERABILITIES: i8 = 32;
    /// hardware: recognised, but its trustworthiness is contraindicated.
    pub const HARDWARE_CONTRAINDICATED: i8 = 96;
    /// hardware: not recognised although it should be (contraindicated).
    pub const HARDWARE_UNRECOGNIZED: i8 = 97;

    /// runtime-opaque: encrypted, inside a TEE opaque to OS, hypervisor and peers.
    pub const RUNTIME_OPAQUE_ENCRYPTED: i8 = 2;
    /// runtime-opaque: isolated from peers but visible to the root operator (warning).
    pub const RUNTIME_OPAQUE_ISOLATED: i8 = 32;
    /// runtime-opaque: memory unacceptably visible on the host (contraindicated).
    pub const RUNTIME_OPAQUE_VISIBLE: i8 = 96;

    /// storage-opaque: secrets encrypted with keys never visible outside HSM/TEE.
    pub const STORAGE_OPAQUE_HARDWARE_KEYS: i8 = 2;
    /// storage-opaque: secrets encrypted, but without hardware-backed keys (warning).
    pub const STORAGE_OPAQUE_SOFTWARE_KEYS: i8 = 32;
    /// storage-opaque: persistent secrets stored unencrypted (contraindicated).
    pub const STORAGE_OPAQUE_UNENCRYPTED: i8 = 96;

    /// sourced-data: all essential source data from affirmed attesters.
    pub const SOURCED_DATA_TRUSTED: i8 = 2;
    /// sourced-data: data from unattested or warned sources (warning).
    pub const SOURCED_DATA_UNTRUSTED: i8 = 32;
    /// sourced-data: data from contraindicated sources.
    pub const SOURCED_DATA_CONTRAINDICATED: i8 = 96;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_boundaries_follow_the_draft() {
        let cases = [
            (0, Status::None),
            (1, Status::None),
            (-1, Status::None),
            (2, Status::Affirming),
            (31, Status::Affirming),
            (-2, Status::Affirming),
            (-32, Status::Affirming),
            (32, Status::Warning),
            (95, Status::Warning),
            (-33, Status::Warning),
            (-96, Status::Warning),
            (96, Status::Contraindicated),
            (127, Status::Contraindicated),
            (-97, Status::Contraindicated),
            (-128, Status::Contraindicated),
        ];
        for (value, tier) in cases {
            assert_eq!(Status::of_claim(value), tier, "claim value {value}");
        }
    }

    #[test]
    fn every_value_has_the_tier_of_its_mirrored_standard_range() {
        // Private codes mirror the standard ones by bitwise complement (-1 -> 0, -2 -> 1,
        // -33 -> 32, -97 -> 96), except that only the standard 1 means "none".
        for value in i8::MIN..=i8::MAX {
            let expected = if value >= 0 {
                match value {
                    v if v < 2 => Status::None,
                    v if v < 32 => Status::Affirming,
                    v if v < 96 => Status::Warning,
                    _ => Status::Contraindicated,
                }
            } else {
                match !value {
                    0 => Status::None,
                    m if m < 32 => Status::Affirming,
                    m if m < 96 => Status::Warning,
                    _ => Status::Contraindicated,
                }
            };
            assert_eq!(Status::of_claim(value), expected, "claim value {value}");
        }
    }
}
