//! The baseline file (TOML, `docs/baselines.md`): what a person writes and reviews. It is
//! validated against a typed schema (unknown keys, wrong types and unknown claim names are
//! errors with line and column) and compiled into [`Rule`]s; the appraisal engine only ever
//! sees rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::rules::{Category, Expect, Quantifier, Rule, Severity};
use crate::claims::{Value, is_known_claim};

/// The only format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Largest baseline file accepted: a few KiB without IMA; an IMA allow-list of a whole
/// distribution (one line per file) reaches several MiB.
pub const MAX_BASELINE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BaselineError {
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {field}: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },
    #[error("{source_name}: {size} bytes is over the {MAX_BASELINE_BYTES}-byte limit")]
    TooLarge { source_name: String, size: usize },
    #[error("{source_name}: signature: {message}")]
    Signature {
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    format: u32,
    name: String,
    #[serde(default)]
    description: String,
    freshness: Option<Freshness>,
    identity: Option<Identity>,
    #[serde(default)]
    pcrs: BTreeMap<String, BTreeMap<String, OneOrMany>>,
    boot: Option<Boot>,
    gpu: Option<Gpu>,
    /// Per-vendor device rules: `[gpus.amd]`, `[gpus.huawei]`, `[gpus.biren]`, `[gpus.nvidia]`.
    #[serde(default)]
    gpus: BTreeMap<String, VendorGpus>,
    ima: Option<Ima>,
    #[serde(default, rename = "rule")]
    rules: Vec<GenericRule>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Freshness {
    max_evidence_age_seconds: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    ak_trust: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Boot {
    secure_boot: Option<bool>,
    event_log: Option<Requirement>,
    boot_applications: Option<Vec<String>>,
    kernel_cmdline: Option<Vec<String>>,
    dbx_contains: Option<Vec<String>>,
    crtm_version: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Requirement {
    Required,
    Optional,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RevocationPolicy {
    /// No verified "good" OCSP answer is a contraindication.
    Required,
    /// No verified answer is a warning (the default: offline verifiers rarely have one).
    Warn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gpu {
    count: Option<u32>,
    require_signed_evidence: Option<bool>,
    driver_versions: Option<Vec<String>>,
    min_driver_version: Option<String>,
    deny_driver_versions: Option<Vec<String>>,
    vbios_versions: Option<Vec<String>>,
    min_vbios_version: Option<String>,
    deny_vbios_versions: Option<Vec<String>>,
    require_rim_match: Option<bool>,
    require_cc_mode: Option<bool>,
    revocation: Option<RevocationPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorGpus {
    /// Devices of this vendor the host must present.
    count: Option<u32>,
    /// Device-signed evidence required. Default: true for nvidia and huawei, whose devices
    /// can sign; false for amd and biren, which offer none (their inventory is host-reported).
    require_signed_evidence: Option<bool>,
    driver_versions: Option<Vec<String>>,
    min_driver_version: Option<String>,
    deny_driver_versions: Option<Vec<String>>,
    vbios_versions: Option<Vec<String>>,
    min_vbios_version: Option<String>,
    deny_vbios_versions: Option<Vec<String>>,
    /// Firmware id (as the vendor library names it) → allowed / minimum / denied versions.
    #[serde(default)]
    firmware: BTreeMap<String, FirmwareRule>,
    /// The vendor's kernel modules and management libraries, measured by IMA since boot with
    /// one of these digests (`[[ima.require]]` entries).
    #[serde(default)]
    files: Vec<ImaRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirmwareRule {
    allowed: Option<Vec<String>>,
    min: Option<String>,
    deny: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ima {
    /// Default required: the list must be present and replay to the quoted PCR 10.
    list: Option<Requirement>,
    /// Default true: the boot_aggregate entry must equal the quoted PCRs 0-7 (or 0-9).
    boot_aggregate: Option<bool>,
    #[serde(default)]
    allow: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_regex: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    keyrings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    require: Vec<ImaRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImaRequire {
    path: String,
    #[serde(default)]
    digests: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericRule {
    id: Option<String>,
    claim: String,
    description: Option<String>,
    equals: Option<toml::Value>,
    one_of: Option<Vec<String>>,
    none_of: Option<Vec<String>>,
    min_version: Option<String>,
    matches: Option<Vec<String>>,
    contains: Option<Vec<String>>,
    at_most: Option<i64>,
    category: Option<Category>,
    severity: Option<Severity>,
}

/// A validated baseline: its name, description and compiled rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledBaseline {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
}

/// Parses and validates a baseline file. `source_name` names it in errors (a path).
pub fn parse_baseline(source_name: &str, text: &str) -> Result<CompiledBaseline, BaselineError> {
    if text.len() > MAX_BASELINE_BYTES {
        return Err(BaselineError::TooLarge {
            source_name: source_name.to_owned(),
            size: text.len(),
        });
    }
    let file: BaselineFile = toml::from_str(text).map_err(|e| BaselineError::Syntax {
        source_name: source_name.to_owned(),
        message: describe_toml_error(text, &e),
    })?;
    let invalid = |field: &str, message: String| BaselineError::Invalid {
        source_name: source_name.to_owned(),
        field: field.to_owned(),
        message,
    };
    if file.format != FORMAT_VERSION {
        return Err(invalid(
            "format",
            format!(
                "format {} is not supported (this build reads {FORMAT_VERSION})",
                file.format
            ),
        ));
    }
    if file.name.trim().is_empty()
        || file.name.len() > 128
        || file.name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name",
            "must be 1..=128 printable characters".into(),
        ));
    }
    let mut rules = Vec::new();
    compile_sections(&file, &mut rules).map_err(|(field, message)| invalid(&field, message))?;
    for (position, raw) in file.rules.iter().enumerate() {
        let field = format!("rule[{position}]");
        rules.push(compile_generic(raw).map_err(|message| invalid(&field, message))?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for rule in &rules {
        if !seen.insert(rule.id.clone()) {
            return Err(invalid(
                "rule",
                format!("two rules have the id {:?}; ids must be unique", rule.id),
            ));
        }
    }
    if rules.is_empty() {
        return Err(invalid(
            "rules",
            "a baseline without rules would affirm anything; add at least one".into(),
        ));
    }
    Ok(CompiledBaseline {
        name: file.name,
        description: file.description,
        rules,
    })
}

/// toml's message plus the line and column it points at.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().to_owned();
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn rule(
    id: impl Into<String>,
    claim: impl Into<String>,
    expect: Expect,
    category: Category,
    description: impl Into<String>,
) -> Rule {
    Rule {
        id: id.into(),
        claim: claim.into(),
        expect,
        category,
        severity: Severity::Contraindicated,
        description: description.into(),
        quantifier: Quantifier::Each,
        vendor: None,
    }
}

fn hex_digests(field: &str, values: Vec<String>) -> Result<Vec<String>, (String, String)> {
    values
        .into_iter()
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            if v.is_empty() || v.len() % 2 != 0 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                Err((field.to_owned(), format!("{v:?} is not a hex digest")))
            } else {
                Ok(v)
            }
        })
        .collect()
}

/// The category a PCR's contents fall under (TCG PC Client PCR usage).
fn pcr_category(index: u32) -> Category {
    match index {
        0 => Category::Hardware,
        2 | 4 | 8 | 9 | 10 | 11 | 12 | 13 | 14 => Category::Executables,
        _ => Category::Configuration,
    }
}

fn compile_sections(file: &BaselineFile, rules: &mut Vec<Rule>) -> Result<(), (String, String)> {
    if let Some(freshness) = &file.freshness {
        if freshness.max_evidence_age_seconds < 0 {
            return Err((
                "freshness.max_evidence_age_seconds".into(),
                "must not be negative".into(),
            ));
        }
        rules.push(rule(
            "freshness.max_evidence_age",
            "evidence.age_seconds",
            Expect::AtMost(freshness.max_evidence_age_seconds),
            Category::InstanceIdentity,
            "evidence is recent enough",
        ));
    }
    if let Some(identity) = &file.identity {
        if identity.ak_trust.is_empty() {
            return Err((
                "identity.ak_trust".into(),
                "lists no accepted AK binding".into(),
            ));
        }
        rules.push(rule(
            "identity.ak_trust",
            "tpm.ak_trust",
            Expect::OneOf(identity.ak_trust.clone()),
            Category::InstanceIdentity,
            "the AK is bound to a genuine TPM",
        ));
    }
    for (bank, values) in &file.pcrs {
        if !matches!(bank.as_str(), "sha1" | "sha256" | "sha384" | "sha512") {
            return Err((format!("pcrs.{bank}"), "unknown PCR bank".into()));
        }
        for (index, allowed) in values {
            let field = format!("pcrs.{bank}.{index}");
            let number: u32 = index
                .parse()
                .ok()
                .filter(|i| *i < 24)
                .ok_or_else(|| (field.clone(), "PCR index must be 0..=23".into()))?;
            let allowed = hex_digests(
                &field,
                match allowed {
                    OneOrMany::One(v) => vec![v.clone()],
                    OneOrMany::Many(v) => v.clone(),
                },
            )?;
            rules.push(rule(
                format!("pcr.{bank}.{number}"),
                format!("pcr.{bank}.{number}"),
                Expect::OneOf(allowed),
                pcr_category(number),
                format!("PCR {number} ({bank}) holds a known value"),
            ));
        }
    }
    if let Some(boot) = &file.boot {
        if let Some(on) = boot.secure_boot {
            rules.push(rule(
                "boot.secure_boot",
                "boot.secure_boot.enabled",
                Expect::Equals(Value::Bool(on)),
                Category::Configuration,
                if on {
                    "Secure Boot is on"
                } else {
                    "Secure Boot is off"
                },
            ));
        }
        if boot.event_log == Some(Requirement::Required) {
            rules.push(rule(
                "boot.event_log",
                "tpm.event_log",
                Expect::Equals(Value::Text("replayed".into())),
                Category::Executables,
                "a measured-boot log is present and replays to the quote",
            ));
        }
        if let Some(apps) = &boot.boot_applications {
            rules.push(rule(
                "boot.applications",
                "boot.apps[*].authenticode_sha256",
                Expect::OneOf(hex_digests("boot.boot_applications", apps.clone())?),
                Category::Executables,
                "every booted EFI application is an allowed one",
            ));
        }
        if let Some(patterns) = &boot.kernel_cmdline {
            rules.push(rule(
                "boot.kernel_cmdline",
                "boot.kernel_cmdline",
                Expect::Matches(patterns.clone()),
                Category::Configuration,
                "the kernel command line matches an allowed pattern",
            ));
        }
        if let Some(entries) = &boot.dbx_contains {
            rules.push(rule(
                "boot.dbx_contains",
                "boot.secure_boot.dbx.sha256_entries",
                Expect::Contains(hex_digests("boot.dbx_contains", entries.clone())?),
                Category::Configuration,
                "dbx revokes the listed hashes",
            ));
        }
        if let Some(versions) = &boot.crtm_version {
            rules.push(rule(
                "boot.crtm_version",
                "boot.firmware.crtm_version",
                Expect::OneOf(versions.clone()),
                Category::Hardware,
                "platform firmware (S-CRTM) version is an allowed one",
            ));
        }
    }
    if let Some(gpu) = &file.gpu {
        compile_gpu(gpu, rules)?;
    }
    for (vendor, section) in &file.gpus {
        compile_vendor(vendor, section, rules)?;
    }
    if let Some(ima) = &file.ima {
        compile_ima(ima, rules)?;
    }
    Ok(())
}

/// `[gpus.<vendor>]`: rules over that vendor's devices only. Host-reported values (every
/// vendor but a signing NVIDIA or Ascend device) are the host's word, so their rules count as
/// configuration in the trust vector, never as hardware.
fn compile_vendor(
    vendor: &str,
    section: &VendorGpus,
    rules: &mut Vec<Rule>,
) -> Result<(), (String, String)> {
    let field = |name: &str| format!("gpus.{vendor}.{name}");
    if !crate::evidence::gpu::VENDORS.contains(&vendor) {
        return Err((
            format!("gpus.{vendor}"),
            format!(
                "unknown vendor (one of {})",
                crate::evidence::gpu::VENDORS.join(", ")
            ),
        ));
    }
    let scoped = |mut rule: Rule| {
        rule.vendor = Some(vendor.to_owned());
        rule
    };
    if let Some(count) = section.count {
        rules.push(rule(
            format!("gpus.{vendor}.count"),
            format!("gpu.count.{vendor}"),
            Expect::Equals(Value::Int(i64::from(count))),
            Category::Hardware,
            format!("the host presents {count} {vendor} devices"),
        ));
    }
    let signs = matches!(vendor, "nvidia" | "huawei");
    if section.require_signed_evidence.unwrap_or(signs) {
        rules.push(scoped(rule(
            format!("gpus.{vendor}.signed_evidence"),
            "gpu[*].evidence",
            Expect::Equals(Value::Text("signed".into())),
            Category::InstanceIdentity,
            format!("each {vendor} device presents device-signed evidence (not a host-reported inventory)"),
        )));
    }
    let category = Category::Configuration;
    let versions = [
        (
            "driver",
            "gpu[*].driver_version",
            &section.driver_versions,
            &section.min_driver_version,
            &section.deny_driver_versions,
        ),
        (
            "vbios",
            "gpu[*].vbios_version",
            &section.vbios_versions,
            &section.min_vbios_version,
            &section.deny_vbios_versions,
        ),
    ];
    let mut version_rules = |id: String,
                             claim: String,
                             allowed: Option<&Vec<String>>,
                             minimum: Option<&String>,
                             denied: Option<&Vec<String>>,
                             what: &str| {
        if let Some(allowed) = allowed {
            rules.push(scoped(rule(
                format!("{id}.allowed"),
                claim.clone(),
                Expect::OneOf(allowed.clone()),
                category,
                format!("{vendor} {what} version is an allowed one"),
            )));
        }
        if let Some(minimum) = minimum {
            rules.push(scoped(rule(
                format!("{id}.min"),
                claim.clone(),
                Expect::MinVersion(minimum.clone()),
                category,
                format!("{vendor} {what} version is at least {minimum} (no downgrade)"),
            )));
        }
        if let Some(denied) = denied {
            rules.push(scoped(rule(
                format!("{id}.deny"),
                claim,
                Expect::NoneOf(denied.clone()),
                category,
                format!("{vendor} {what} version is not a known-bad one"),
            )));
        }
    };
    for (what, claim, allowed, minimum, denied) in versions {
        version_rules(
            format!("gpus.{vendor}.{what}"),
            claim.to_owned(),
            allowed.as_ref(),
            minimum.as_ref(),
            denied.as_ref(),
            what,
        );
    }
    for (id, firmware) in &section.firmware {
        let segment = crate::evidence::gpu::firmware_segment(id);
        if segment != *id || id.is_empty() {
            return Err((
                field(&format!("firmware.{id}")),
                "a firmware id is letters, digits, `_` and `-`".into(),
            ));
        }
        if firmware.allowed.is_none() && firmware.min.is_none() && firmware.deny.is_none() {
            return Err((
                field(&format!("firmware.{id}")),
                "says nothing to check: give allowed, min or deny".into(),
            ));
        }
        version_rules(
            format!("gpus.{vendor}.firmware.{id}"),
            format!("gpu[*].firmware.{id}"),
            firmware.allowed.as_ref(),
            firmware.min.as_ref(),
            firmware.deny.as_ref(),
            &format!("firmware {id}"),
        );
    }
    for (index, required) in section.files.iter().enumerate() {
        let requirement = super::ima::RequiredFile {
            path: required.path.clone(),
            digests: required.digests.clone(),
        };
        if requirement.path.trim().is_empty() {
            return Err((field(&format!("files[{index}]")), "path is empty".into()));
        }
        requirement
            .validate()
            .map_err(|message| (field(&format!("files[{index}]")), message))?;
        let mut must = rule(
            format!("gpus.{vendor}.files[{}]", required.path),
            "ima.entries[*]",
            Expect::ImaRequired(requirement),
            Category::Executables,
            format!(
                "{vendor} software {} was measured with an allowed digest",
                required.path
            ),
        );
        must.quantifier = Quantifier::Any;
        rules.push(must);
    }
    Ok(())
}

fn compile_ima(ima: &Ima, rules: &mut Vec<Rule>) -> Result<(), (String, String)> {
    if ima.list.unwrap_or(Requirement::Required) == Requirement::Required {
        rules.push(rule(
            "ima.list",
            "ima.log",
            Expect::Equals(Value::Text("replayed".into())),
            Category::Executables,
            "an IMA list is present and replays to the quoted PCR 10",
        ));
    }
    if ima.boot_aggregate.unwrap_or(true) {
        rules.push(rule(
            "ima.boot_aggregate",
            "ima.boot_aggregate",
            Expect::Equals(Value::Text("matches".into())),
            Category::Executables,
            "the IMA list belongs to this boot (boot_aggregate equals the quoted PCRs)",
        ));
    }
    let judges_files = !ima.allow.is_empty() || !ima.keys.is_empty() || !ima.keyrings.is_empty();
    if judges_files {
        let policy = super::ima::ImaPolicy::new(
            ima.allow.clone(),
            ima.exclude.clone(),
            ima.exclude_regex.clone(),
            ima.keys.clone(),
            ima.keyrings.clone(),
        )
        .map_err(|message| ("ima".to_owned(), message))?;
        let mut allowed = rule(
            "ima.allowlist",
            "ima.entries[*]",
            Expect::ImaAllowed(policy),
            Category::Executables,
            "every file measured since boot is allowed (digest in the allow-list, excluded, or signed by a trusted key)",
        );
        allowed.quantifier = Quantifier::All;
        rules.push(allowed);
    } else if !ima.exclude.is_empty() || !ima.exclude_regex.is_empty() {
        return Err((
            "ima.exclude".into(),
            "excludes without an allow-list, keys or keyrings exclude from nothing".into(),
        ));
    }
    for (index, required) in ima.require.iter().enumerate() {
        let field = format!("ima.require[{index}]");
        let requirement = super::ima::RequiredFile {
            path: required.path.clone(),
            digests: required.digests.clone(),
        };
        if requirement.path.trim().is_empty() {
            return Err((field, "path is empty".into()));
        }
        requirement
            .validate()
            .map_err(|message| (field.clone(), message))?;
        let mut must = rule(
            format!("ima.require[{}]", required.path),
            "ima.entries[*]",
            Expect::ImaRequired(requirement),
            Category::Executables,
            format!("{} was measured with an allowed digest", required.path),
        );
        must.quantifier = Quantifier::Any;
        rules.push(must);
    }
    Ok(())
}

fn compile_gpu(gpu: &Gpu, rules: &mut Vec<Rule>) -> Result<(), (String, String)> {
    if let Some(count) = gpu.count {
        rules.push(rule(
            "gpu.count",
            "gpu.count",
            Expect::Equals(Value::Int(i64::from(count))),
            Category::Hardware,
            format!("the host presents evidence for {count} GPUs"),
        ));
    }
    if gpu.require_signed_evidence.unwrap_or(true) {
        rules.push(rule(
            "gpu.signed_evidence",
            "gpu[*].evidence",
            Expect::Equals(Value::Text("signed".into())),
            Category::InstanceIdentity,
            "each GPU presents a device-signed report (not an unsigned inventory)",
        ));
    }
    let versions = [
        (
            "driver",
            "gpu[*].driver_version",
            Category::Executables,
            &gpu.driver_versions,
            &gpu.min_driver_version,
            &gpu.deny_driver_versions,
        ),
        (
            "vbios",
            "gpu[*].vbios_version",
            Category::Hardware,
            &gpu.vbios_versions,
            &gpu.min_vbios_version,
            &gpu.deny_vbios_versions,
        ),
    ];
    for (what, claim, category, allowed, minimum, denied) in versions {
        if let Some(allowed) = allowed {
            rules.push(rule(
                format!("gpu.{what}_versions"),
                claim,
                Expect::OneOf(allowed.clone()),
                category,
                format!("GPU {what} version is an allowed one"),
            ));
        }
        if let Some(minimum) = minimum {
            rules.push(rule(
                format!("gpu.min_{what}_version"),
                claim,
                Expect::MinVersion(minimum.clone()),
                category,
                format!("GPU {what} version is at least {minimum} (no downgrade)"),
            ));
        }
        if let Some(denied) = denied {
            rules.push(rule(
                format!("gpu.deny_{what}_versions"),
                claim,
                Expect::NoneOf(denied.clone()),
                category,
                format!("GPU {what} version is not a known-bad one"),
            ));
        }
    }
    if gpu.require_rim_match.unwrap_or(true) {
        rules.push(rule(
            "gpu.measurements",
            "gpu[*].measurements.match",
            Expect::Equals(Value::Bool(true)),
            Category::Executables,
            "every GPU measurement equals a golden value of NVIDIA's signed RIMs",
        ));
    }
    if gpu.require_cc_mode.unwrap_or(true) {
        rules.push(rule(
            "gpu.cc_mode",
            "gpu[*].cc_mode",
            Expect::OneOf(vec![
                "spt".into(),
                "mpt".into(),
                "ppcie".into(),
                "on".into(),
            ]),
            Category::RuntimeOpaque,
            "confidential computing is on (not off, not devtools)",
        ));
    }
    let revocation = gpu.revocation.unwrap_or(RevocationPolicy::Warn);
    let mut revoked = rule(
        "gpu.revocation",
        "gpu[*].cert_chain.revocation",
        Expect::Equals(Value::Text("good".into())),
        Category::InstanceIdentity,
        "no certificate of the device chain is revoked (verified OCSP answer)",
    );
    if revocation == RevocationPolicy::Warn {
        revoked.severity = Severity::Warning;
    }
    rules.push(revoked);
    Ok(())
}

fn compile_generic(raw: &GenericRule) -> Result<Rule, String> {
    if !is_known_claim(&raw.claim) {
        return Err(format!(
            "unknown claim {:?}: see `vigil baseline claims` for the names Vigil produces",
            raw.claim
        ));
    }
    let mut expectations = Vec::new();
    if let Some(value) = &raw.equals {
        expectations.push(Expect::Equals(match value {
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Integer(i) => Value::Int(*i),
            toml::Value::String(s) => Value::Text(s.clone()),
            other => {
                return Err(format!(
                    "equals: {} values are not supported",
                    other.type_str()
                ));
            }
        }));
    }
    if let Some(v) = &raw.one_of {
        expectations.push(Expect::OneOf(v.clone()));
    }
    if let Some(v) = &raw.none_of {
        expectations.push(Expect::NoneOf(v.clone()));
    }
    if let Some(v) = &raw.min_version {
        expectations.push(Expect::MinVersion(v.clone()));
    }
    if let Some(v) = &raw.matches {
        expectations.push(Expect::Matches(v.clone()));
    }
    if let Some(v) = &raw.contains {
        expectations.push(Expect::Contains(v.clone()));
    }
    if let Some(v) = raw.at_most {
        expectations.push(Expect::AtMost(v));
    }
    let expect = match expectations.len() {
        1 => expectations.remove(0),
        0 => return Err("says nothing to check: give one of equals, one_of, none_of, min_version, matches, contains, at_most".into()),
        _ => return Err("gives more than one check; write one rule per check".into()),
    };
    Ok(Rule {
        id: raw
            .id
            .clone()
            .unwrap_or_else(|| format!("rule.{}", raw.claim)),
        claim: raw.claim.clone(),
        category: raw.category.unwrap_or(Category::Configuration),
        severity: raw.severity.unwrap_or(Severity::Contraindicated),
        description: raw.description.clone().unwrap_or_default(),
        expect,
        quantifier: super::rules::Quantifier::Each,
        vendor: None,
    })
}
