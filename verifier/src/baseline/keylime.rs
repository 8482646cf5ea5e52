//! `vigil baseline import-keylime`: a Keylime runtime policy (JSON, `meta.version` 1) as the
//! `[ima]` section of a baseline, so fleets moving from Keylime keep their allow-lists.
//!
//! | Keylime | baseline |
//! |---|---|
//! | `digests` (path → hex digests) | `[ima.allow]` (bare hex: Keylime records no algorithm) |
//! | `excludes` (Python regexes, matched from the start of the path) | `exclude_regex` |
//! | `keyrings`, `ima-buf` (name → digests) | `[ima.keyrings]` |
//! | `ima.ignored_keyrings` | `exclude` (buffer names) |
//! | `verification-keys` (PEM keys, possibly inside a JSON string) | `keys` |
//!
//! The result is validated as a baseline before it is returned.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

/// Largest policy read (a distribution-wide allow-list is tens of MiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct Policy {
    meta: Meta,
    #[serde(default)]
    digests: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    keyrings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    ima: Option<ImaSection>,
    #[serde(default, rename = "ima-buf")]
    ima_buf: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "verification-keys")]
    verification_keys: String,
}

#[derive(Debug, Deserialize)]
struct Meta {
    version: u32,
}

#[derive(Debug, Deserialize)]
struct ImaSection {
    #[serde(default)]
    ignored_keyrings: Vec<String>,
}

/// What an import produced: the baseline text and a summary for the operator.
#[derive(Debug)]
pub struct Imported {
    pub baseline: String,
    pub files: usize,
    pub digests: usize,
    pub excludes: usize,
    pub keys: usize,
}

fn quote(text: &str) -> String {
    super::capture::toml_string(text)
}

fn list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// PEM blocks anywhere in `text` (Keylime stores keys as a JSON string).
fn pem_blocks(text: &str) -> Vec<String> {
    let text = text.replace("\\n", "\n");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(end_marker) = block.find("-----END ") else {
            break;
        };
        let after = &block[end_marker + 9..];
        let Some(close) = after.find("-----") else {
            break;
        };
        let end = end_marker + 9 + close + 5;
        out.push(block[..end].to_owned());
        rest = &block[end..];
    }
    out
}

/// Converts a Keylime runtime policy into a baseline named `name`.
pub fn import(source: &str, json: &str, name: &str) -> Result<Imported, String> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "{source}: {} bytes is over the {MAX_POLICY_BYTES}-byte limit",
            json.len()
        ));
    }
    let policy: Policy = serde_json::from_str(json)
        .map_err(|e| format!("{source}: not a Keylime runtime policy: {e}"))?;
    if policy.meta.version != 1 {
        return Err(format!(
            "{source}: runtime policy format version {} (this build reads version 1)",
            policy.meta.version
        ));
    }
    let keys = pem_blocks(&policy.verification_keys);
    if !policy.verification_keys.trim().is_empty() && keys.is_empty() {
        return Err(format!(
            "{source}: verification-keys holds no PEM key or certificate Vigil can read"
        ));
    }
    let mut buffers = policy.keyrings.clone();
    for (name, digests) in &policy.ima_buf {
        buffers
            .entry(name.clone())
            .or_default()
            .extend(digests.iter().cloned());
    }
    let ignored = policy.ima.map(|i| i.ignored_keyrings).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported by `vigil baseline import-keylime` from {source} (Keylime runtime policy, format 1).\n\
         # Review before importing: every path and digest here is trusted on this group's nodes.\n\
         format = 1\nname = {}\ndescription = {}\n",
        quote(name),
        quote(&format!("Keylime runtime policy {source}"))
    );
    out.push_str("[ima]\nlist = \"required\"\nboot_aggregate = true\n");
    if !ignored.is_empty() {
        let _ = writeln!(
            out,
            "# Keylime's ignored keyrings: their buffers are not judged.\nexclude = [{}]",
            list(&ignored)
        );
    }
    if !policy.excludes.is_empty() {
        let _ = writeln!(
            out,
            "# Keylime's excludes: regular expressions matched from the start of the path.\nexclude_regex = [{}]",
            list(&policy.excludes)
        );
    }
    if !keys.is_empty() {
        out.push_str("keys = [\n");
        for key in &keys {
            let _ = writeln!(out, "  \"\"\"\n{}\n\"\"\",", key.trim());
        }
        out.push_str("]\n");
    }
    let _ = writeln!(
        out,
        "\n# Keylime records digests without their algorithm: each matches by value.\n[ima.allow]"
    );
    let mut digests = 0;
    for (path, values) in &policy.digests {
        digests += values.len();
        let _ = writeln!(out, "{} = [{}]", quote(path), list(values));
    }
    if !buffers.is_empty() {
        out.push_str("\n[ima.keyrings]\n");
        for (name, values) in &buffers {
            let _ = writeln!(out, "{} = [{}]", quote(name), list(values));
        }
    }
    // Validated here, so a policy Vigil would refuse never reaches a file.
    super::parse_baseline(source, &out).map_err(|e| e.to_string())?;
    Ok(Imported {
        baseline: out,
        files: policy.digests.len(),
        digests,
        excludes: policy.excludes.len() + ignored.len(),
        keys: keys.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"meta": {"version": 1, "generator": 3}, "release": 0,
        "digests": {"/usr/bin/sh": ["aa", "bb"], "/usr/lib/x \"quoted\".so": ["cc"]},
        "excludes": ["/tmp/.*", "boot_aggregate"],
        "keyrings": {".ima": ["dd"]},
        "ima": {"ignored_keyrings": [".builtin_trusted_keys"], "log_hash_alg": "sha1", "dm_policy": null},
        "ima-buf": {"kexec-cmdline": ["ee"]},
        "verification-keys": ""}"#;

    #[test]
    fn a_keylime_policy_becomes_a_valid_ima_section() {
        let imported = import("policy.json", POLICY, "from-keylime").unwrap();
        assert_eq!(
            (imported.files, imported.digests, imported.excludes),
            (2, 3, 3)
        );
        let text = &imported.baseline;
        assert!(
            text.contains("\"/usr/bin/sh\" = [\"aa\", \"bb\"]"),
            "{text}"
        );
        assert!(text.contains("\"/usr/lib/x \\\"quoted\\\".so\""), "{text}");
        assert!(
            text.contains("exclude_regex = [\"/tmp/.*\", \"boot_aggregate\"]"),
            "{text}"
        );
        assert!(
            text.contains("exclude = [\".builtin_trusted_keys\"]"),
            "{text}"
        );
        assert!(text.contains("\"kexec-cmdline\" = [\"ee\"]"), "{text}");
        let compiled = crate::baseline::parse_baseline("imported", text).unwrap();
        assert!(compiled.rules.iter().any(|r| r.id == "ima.allowlist"));
    }

    #[test]
    fn other_versions_bad_json_bad_regexes_and_unreadable_keys_are_refused() {
        assert!(
            import(
                "p",
                &POLICY.replace("\"version\": 1", "\"version\": 2"),
                "n"
            )
            .unwrap_err()
            .contains("version 2")
        );
        assert!(
            import("p", "{", "n")
                .unwrap_err()
                .contains("not a Keylime runtime policy")
        );
        assert!(
            import("p", &POLICY.replace("/tmp/.*", "(unclosed"), "n")
                .unwrap_err()
                .contains("exclude_regex")
        );
        assert!(
            import(
                "p",
                &POLICY.replace(
                    "\"verification-keys\": \"\"",
                    "\"verification-keys\": \"junk\""
                ),
                "n"
            )
            .unwrap_err()
            .contains("verification-keys")
        );
    }
}
