//! The claims appraisal works on: every fact the evidence checks established about one host
//! and its GPUs, by name, with how far it is proven and where it came from.
//!
//! This is the boundary between evidence and policy: `evidence::*` and `vigil-nvidia` turn
//! bytes into claims; [`crate::baseline`] compares claims with reference values and never
//! sees a byte. A new kind of evidence plugs in by adding claims here (and their names to
//! [`CATALOGUE`]); the appraisal engine does not change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A claim's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Value {
    Bool(bool),
    Int(i64),
    Text(String),
    /// Lowercase hex.
    Digest(String),
    List(Vec<String>),
    /// What one IMA entry measured: a file (or a buffer) with its digest.
    Measurement(FileMeasurement),
}

/// One IMA measurement as appraisal sees it (from `vigil_ima::Measurement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeasurement {
    /// File path, or the buffer's name for `ima-buf` entries (a keyring, `kexec-cmdline`).
    pub path: String,
    /// `file` or `buffer`.
    pub kind: String,
    /// Digest algorithm as the kernel names it (`sha256`, `sha1`, `sm3_256`, …).
    pub algorithm: String,
    /// Lowercase hex; empty for a violation.
    pub digest: String,
    pub template: String,
    /// The file's IMA signature (`security.ima`), hex, when the template carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// A violation: measured while open for writing (or open-writers), digest unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub violation: bool,
}

impl std::fmt::Display for FileMeasurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.violation {
            write!(f, "{} (violation: digest unknown)", self.path)
        } else {
            write!(f, "{} {}:{}", self.path, self.algorithm, self.digest)
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(t) | Value::Digest(t) => f.write_str(t),
            Value::List(items) => write!(f, "[{}]", items.join(", ")),
            Value::Measurement(m) => write!(f, "{m}"),
        }
    }
}

/// How far a claim's value is proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "trust", content = "why")]
pub enum Trust {
    /// Shown by a signature or by data hashing to a measured digest.
    Verified,
    /// Carried by signed evidence (a verified quote whose log replays), but the value itself
    /// cannot be recomputed (an Authenticode digest, a GPU inventory the host reported).
    Attested(String),
    /// Nothing proves it (an event on a PCR outside the quote, a value from a report whose
    /// signature did not verify, a check that could not be made).
    Unproven(String),
    /// The evidence contradicts it (data that does not hash to its digest, a failed check).
    Failed(String),
}

impl Trust {
    /// Whether a rule may rely on the value.
    pub fn usable(&self) -> bool {
        matches!(self, Trust::Verified | Trust::Attested(_))
    }
}

/// Where a claim came from, so an appraisal can point at the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum Source {
    /// A verified PCR value of the quote.
    Quote { bank: String, pcr: u32 },
    /// An event of the measured-boot log (number from 0, PCR, byte offset).
    Event {
        event: usize,
        pcr: u32,
        offset: usize,
    },
    /// A claim of GPU `gpu`'s signed report (`claim` is vigil-nvidia's name for it).
    GpuReport { gpu: u32, claim: String },
    /// An unsigned GPU inventory value the host's attester reported for GPU `gpu`.
    GpuInventory { gpu: u32 },
    /// An entry of the IMA list (number since boot, template). `carried`: verified in an
    /// earlier attestation of the same boot and kept by the verifier (incremental lists).
    ImaEntry {
        entry: u64,
        template: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        carried: bool,
    },
    /// Established by the verifier itself (check name).
    Verifier { check: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Quote { bank, pcr } => write!(f, "quote {bank}:{pcr}"),
            Source::Event { event, pcr, offset } => {
                write!(f, "event {event} (PCR {pcr}, offset {offset})")
            }
            Source::GpuReport { gpu, claim } => write!(f, "GPU {gpu} report ({claim})"),
            Source::GpuInventory { gpu } => write!(f, "GPU {gpu} inventory (unsigned)"),
            Source::ImaEntry {
                entry,
                template,
                carried,
            } => {
                write!(f, "IMA entry {entry} ({template})")?;
                if *carried {
                    f.write_str(", verified earlier this boot")?;
                }
                Ok(())
            }
            Source::Verifier { check } => write!(f, "verifier ({check})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostClaim {
    /// Dotted name, with `[N]` for a numbered instance: `boot.apps[2].authenticode_sha256`.
    pub name: String,
    pub value: Option<Value>,
    #[serde(flatten)]
    pub trust: Trust,
    pub source: Source,
    /// What the evidence check found, when it says more than the value (a mismatch list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything known about one host at one verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimSet {
    pub node_id: String,
    /// When the evidence was verified with a fresh nonce (Unix seconds).
    pub verified_at: i64,
    pub claims: Vec<HostClaim>,
}

impl ClaimSet {
    pub fn push(
        &mut self,
        name: impl Into<String>,
        value: Option<Value>,
        trust: Trust,
        source: Source,
    ) {
        self.claims.push(HostClaim {
            name: name.into(),
            value,
            trust,
            source,
            detail: None,
        });
    }

    pub fn get(&self, name: &str) -> Option<&HostClaim> {
        self.claims.iter().find(|c| c.name == name)
    }

    /// Claims whose names match `pattern` (see [`name_matches`]).
    pub fn matching<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = &'a HostClaim> + 'a {
        self.claims
            .iter()
            .filter(move |c| name_matches(pattern, &c.name))
    }

    /// The GPU indices that appear in claim names (`gpu[3].…`).
    pub fn gpu_indices(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .claims
            .iter()
            .filter_map(|c| gpu_index(&c.name))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Values by name, for display and for `baseline capture`.
    pub fn by_name(&self) -> BTreeMap<&str, &HostClaim> {
        self.claims.iter().map(|c| (c.name.as_str(), c)).collect()
    }
}

/// The GPU a claim is about, from a name like `gpu[3].driver_version`.
pub fn gpu_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("gpu[")?;
    let (index, _) = rest.split_once(']')?;
    index.parse().ok()
}

/// Does a concrete claim name match a pattern? `*` matches one name segment or one index:
/// `gpu[*].driver_version` matches `gpu[0].driver_version`, `pcr.*.7` matches `pcr.sha256.7`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern_parts = split_name(pattern);
    let name_parts = split_name(name);
    pattern_parts.len() == name_parts.len()
        && pattern_parts
            .iter()
            .zip(&name_parts)
            .all(|(p, n)| *p == "*" || p == n)
}

/// Whether the tokens of a name match the tokens of a pattern (see [`split_name`]).
pub fn tokens_match(pattern: &[&str], name: &[&str]) -> bool {
    pattern.len() == name.len() && pattern.iter().zip(name).all(|(p, n)| *p == "*" || p == n)
}

/// `boot.apps[2].path` → `["boot", "apps", "[]", "2", "path"]`: segments and bracketed
/// indices are separate tokens so `*` can stand for either.
pub fn split_name(name: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for segment in name.split('.') {
        match segment.split_once('[') {
            Some((head, tail)) => {
                parts.push(head);
                parts.push("[]");
                parts.push(tail.trim_end_matches(']'));
            }
            None => parts.push(segment),
        }
    }
    parts
}

/// Every claim name Vigil produces, as patterns. A baseline naming a claim that matches none
/// of these is refused at load time: a typo must not become a rule that never applies.
pub const CATALOGUE: &[(&str, &str)] = &[
    // Established by the verifier.
    (
        "evidence.age_seconds",
        "seconds between verification and appraisal",
    ),
    (
        "tpm.ak_trust",
        "how the AK is bound to a TPM: ek-certified, ek-allowlisted, tofu, unregistered, untrusted",
    ),
    (
        "tpm.quote_verified",
        "the quote's signature, nonce binding and PCR digest verified",
    ),
    ("tpm.event_log", "present-and-replayed, absent, or failed"),
    (
        "gpu.count",
        "number of GPUs the host presented evidence for",
    ),
    (
        "gpu.count.*",
        "number of devices of one vendor: gpu.count.<nvidia|amd|huawei|biren>",
    ),
    // TPM quote.
    ("pcr.*.*", "a verified PCR value: pcr.<bank>.<index>"),
    // Runtime integrity (IMA list).
    (
        "ima.log",
        "replayed (the IMA list reproduces the quoted PCR 10), absent, or failed",
    ),
    (
        "ima.entries",
        "IMA entries verified since boot (the prefix the quote covers)",
    ),
    (
        "ima.entries_new",
        "IMA entries verified in this attestation",
    ),
    ("ima.violations", "IMA violations verified since boot"),
    (
        "ima.boot_aggregate",
        "matches: the IMA boot_aggregate entry equals the quoted PCRs 0-7 (or 0-9)",
    ),
    (
        "ima.entries[*]",
        "an IMA measurement: path, digest, template, signature (entry number since boot)",
    ),
    // Measured boot (event log).
    (
        "boot.secure_boot.enabled",
        "SecureBoot variable as measured",
    ),
    (
        "boot.secure_boot.*.sha256",
        "digest of a Secure Boot variable (pk, kek, db, dbx)",
    ),
    (
        "boot.secure_boot.*.entries",
        "number of signature list entries",
    ),
    (
        "boot.secure_boot.*.certificates",
        "X.509 certificates in a Secure Boot variable",
    ),
    (
        "boot.secure_boot.*.sha256_entries",
        "SHA-256 hashes in a Secure Boot variable",
    ),
    (
        "boot.apps[*].authenticode_sha256",
        "Authenticode digest of a booted EFI application",
    ),
    (
        "boot.apps[*].authenticode_sha1",
        "Authenticode digest (SHA-1 log) of an EFI application",
    ),
    ("boot.apps[*].path", "file path of a booted EFI application"),
    (
        "boot.authorities[*]",
        "Secure Boot authority (db/MokList/Shim certificate or hash) that verified a boot application",
    ),
    (
        "boot.kernel_cmdline",
        "kernel command line as measured by the boot loader",
    ),
    ("boot.grub.linux", "GRUB linux command"),
    ("boot.grub.initrd", "GRUB initrd command"),
    ("boot.boot_order", "BootOrder variable"),
    (
        "boot.entries.*.description",
        "description of a Boot#### entry",
    ),
    ("boot.separators.*", "separator kind per PCR"),
    ("boot.exit_boot_services", "ExitBootServices action"),
    ("boot.firmware.crtm_version", "S-CRTM version string"),
    ("boot.gpt.disk_guid", "GPT disk GUID"),
    ("boot.gpt.partitions", "GPT partition count"),
    // GPUs (signed SPDM report or unsigned inventory).
    (
        "gpu[*].evidence",
        "signed (device-signed report) or inventory (unsigned)",
    ),
    ("gpu[*].uuid", "GPU UUID"),
    ("gpu[*].device", "hopper, blackwell, nv_switch, gpu"),
    ("gpu[*].report_parsed", "report structure"),
    (
        "gpu[*].signature_verified",
        "P-384 signature over request and response",
    ),
    (
        "gpu[*].cert_chain.valid",
        "device chain to the pinned NVIDIA root",
    ),
    ("gpu[*].cert_chain.expiry", "earliest expiry in the chain"),
    ("gpu[*].cert_chain.revocation", "OCSP status of the chain"),
    (
        "gpu[*].arch",
        "architecture named by the certificate and report",
    ),
    (
        "gpu[*].fwid_match",
        "leaf certificate FWID equals the report's",
    ),
    ("gpu[*].nonce_match", "report carries the verifier's nonce"),
    (
        "gpu[*].measurements.match",
        "every measurement equals a RIM golden value",
    ),
    (
        "gpu[*].measurements.uncovered",
        "measurement blocks no RIM covers",
    ),
    (
        "gpu[*].*.version_match",
        "RIM (driver_rim, vbios_rim) is for the running version",
    ),
    ("gpu[*].*.device_match", "RIM is for this device"),
    ("gpu[*].*.signature_verified", "RIM signature verifies"),
    (
        "gpu[*].*.cert_chain.valid",
        "RIM signing chain to the pinned NVIDIA RIM root",
    ),
    ("gpu[*].*.cert_chain.expiry", "RIM signing chain expiry"),
    ("gpu[*].driver_version", "GPU driver version"),
    ("gpu[*].vbios_version", "VBIOS version"),
    (
        "gpu[*].inforom_version",
        "InfoROM image version (inventory)",
    ),
    ("gpu[*].name", "product name (inventory)"),
    ("gpu[*].chip_sku", "chip SKU"),
    ("gpu[*].project", "board project"),
    ("gpu[*].project_sku", "board project SKU"),
    (
        "gpu[*].cc_mode",
        "confidential computing mode: spt, mpt, ppcie, on, off, devtools, simulation",
    ),
    ("gpu[*].protected_pcie", "protected PCIe enabled"),
    ("gpu[*].nvdec0_enabled", "NVDEC0 enabled"),
    ("gpu[*].opaque_data_version", "opaque data layout version"),
    ("gpu[*].measurement_blocks", "number of measurement blocks"),
    (
        "gpu[*].hwmodel",
        "hardware model from the device certificate",
    ),
    ("gpu[*].device_serial", "device certificate serial"),
];

/// Every claim name pattern: the catalogue, and an Ascend NPU's attestation claims under
/// each device (`gpu[*].npu.…`).
pub fn catalogue() -> Vec<(String, &'static str)> {
    let mut all: Vec<(String, &'static str)> = CATALOGUE
        .iter()
        .map(|(pattern, description)| ((*pattern).to_owned(), *description))
        .collect();
    all.extend(
        crate::evidence::ascend::ASCEND_CLAIMS
            .iter()
            .map(|(name, description)| (format!("gpu[*].{name}"), *description)),
    );
    all
}

/// Whether `name` (a concrete name or a pattern with `*`) names claims Vigil can produce.
pub fn is_known_claim(name: &str) -> bool {
    let parts = split_name(name);
    catalogue().iter().any(|(pattern, _)| {
        let known = split_name(pattern);
        known.len() == parts.len()
            && known
                .iter()
                .zip(&parts)
                .all(|(k, p)| *k == "*" || *p == "*" || k == p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_segments_and_indices() {
        assert!(name_matches(
            "gpu[*].driver_version",
            "gpu[3].driver_version"
        ));
        assert!(!name_matches(
            "gpu[*].driver_version",
            "gpu[3].vbios_version"
        ));
        assert!(name_matches("pcr.*.7", "pcr.sha256.7"));
        assert!(!name_matches("pcr.*.7", "pcr.sha256.17"));
        assert!(name_matches(
            "boot.apps[*].authenticode_sha256",
            "boot.apps[12].authenticode_sha256"
        ));
        assert!(!name_matches(
            "boot.apps[*].path",
            "boot.apps[1].authenticode_sha256"
        ));
        assert_eq!(gpu_index("gpu[7].cc_mode"), Some(7));
        assert_eq!(gpu_index("gpu.count"), None);
    }

    #[test]
    fn catalogue_knows_produced_names_and_refuses_typos() {
        for name in [
            "pcr.sha256.7",
            "boot.secure_boot.enabled",
            "boot.secure_boot.dbx.sha256_entries",
            "gpu[0].vbios_version",
            "gpu[*].measurements.match",
            "boot.apps[*].authenticode_sha256",
        ] {
            assert!(is_known_claim(name), "{name}");
        }
        for name in [
            "boot.secureboot.enabled",
            "gpu[0].vbios",
            "pcr.sha256",
            "gpu.driver_version",
        ] {
            assert!(!is_known_claim(name), "{name}");
        }
    }
}
