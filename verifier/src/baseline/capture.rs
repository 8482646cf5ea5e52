//! `vigil baseline capture`: a baseline written from one trusted ("golden") node's verified
//! claims, commented so a person can review it before it is imported. It only ever takes
//! values the evidence proved; the reviewer decides what to loosen.

use std::fmt::Write as _;

use crate::claims::{ClaimSet, Value};

/// PCRs whose values are stable across boots of the same software (firmware and boot chain).
const STABLE_PCRS: std::ops::RangeInclusive<u32> = 0..=9;

/// `text` as a TOML basic string.
pub fn toml_string(text: &str) -> String {
    quote(text)
}

fn quote(text: &str) -> String {
    // TOML basic string: escape backslash, quote and control characters.
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Text(t) | Value::Digest(t) => Some(t.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::List(_) | Value::Measurement(_) => None,
    }
}

/// Writes a baseline named `name` from `claims` (only usable claims are taken).
pub fn capture(name: &str, claims: &ClaimSet, captured_at: &str) -> String {
    let usable = |pattern: &'static str| {
        claims
            .matching(pattern)
            .filter(|c| c.trust.usable())
            .collect::<Vec<_>>()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Captured by `vigil baseline capture` from node {} at {captured_at}.\n\
         # Review every value before importing: this node's state becomes the definition of trusted.",
        claims.node_id
    );
    let _ = writeln!(out, "format = 1\nname = {}", quote(name));
    let _ = writeln!(
        out,
        "description = {}\n",
        quote(&format!("captured from {}", claims.node_id))
    );
    out.push_str("[freshness]\n# Evidence older than this (seconds since its nonce was verified) is not accepted.\nmax_evidence_age_seconds = 300\n\n");
    out.push_str("[identity]\n# The AK must be bound to a TPM by its EK certificate or an allow-listed EK.\nak_trust = [\"ek-certified\", \"ek-allowlisted\"]\n\n");

    let mut banks: std::collections::BTreeMap<String, Vec<(u32, String)>> = Default::default();
    for claim in usable("pcr.*.*") {
        let mut parts = claim.name.splitn(3, '.').skip(1);
        let (Some(bank), Some(index)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(index), Some(value)) = (index.parse::<u32>(), text_of(claim.value.as_ref())) else {
            continue;
        };
        if STABLE_PCRS.contains(&index) {
            banks
                .entry(bank.to_owned())
                .or_default()
                .push((index, value));
        }
    }
    // One bank is enough to pin the boot chain; prefer SHA-256.
    if let Some((bank, values)) = banks
        .iter()
        .find(|(b, _)| b.as_str() == "sha256")
        .or_else(|| banks.iter().next())
    {
        let _ = writeln!(
            out,
            "# PCRs 0-9 (firmware, boot loader) as quoted. Drop a PCR to stop pinning it; give a list\n# to allow several values.\n[pcrs.{bank}]"
        );
        let mut values = values.clone();
        values.sort();
        for (index, value) in values {
            let _ = writeln!(out, "{index} = {}", quote(&value));
        }
        out.push('\n');
    }

    out.push_str("[boot]\n");
    let replayed = claims
        .get("tpm.event_log")
        .and_then(|c| text_of(c.value.as_ref()))
        .is_some_and(|v| v == "replayed");
    if replayed {
        out.push_str("event_log = \"required\"\n");
    } else {
        out.push_str("# This node sent no measured-boot log that replayed; boot rules below would be unevaluable.\n# event_log = \"required\"\n");
    }
    match usable("boot.secure_boot.enabled")
        .first()
        .and_then(|c| c.value.clone())
    {
        Some(Value::Bool(on)) => {
            let _ = writeln!(out, "secure_boot = {on}");
        }
        _ => out.push_str("# Secure Boot state was not measured.\n# secure_boot = true\n"),
    }
    let apps = usable("boot.apps[*].authenticode_sha256");
    if !apps.is_empty() {
        out.push_str("boot_applications = [\n");
        for app in apps {
            let path = claims
                .get(&app.name.replace("authenticode_sha256", "path"))
                .and_then(|p| text_of(p.value.as_ref()))
                .unwrap_or_else(|| "path not logged".into());
            if let Some(digest) = text_of(app.value.as_ref()) {
                let _ = writeln!(out, "  {}, # {}", quote(&digest), path.replace('\n', " "));
            }
        }
        out.push_str("]\n");
    }
    let cmdlines = usable("boot.kernel_cmdline");
    if !cmdlines.is_empty() {
        out.push_str(
            "# Exact command lines seen; `*` and `?` are wildcards.\nkernel_cmdline = [\n",
        );
        for line in cmdlines {
            if let Some(text) = text_of(line.value.as_ref()) {
                let _ = writeln!(out, "  {},", quote(&text));
            }
        }
        out.push_str("]\n");
    }
    out.push('\n');

    capture_ima(claims, &mut out);

    let gpus = claims.gpu_indices();
    if gpus.is_empty() {
        out.push_str("# This node presented no GPU evidence; add a [gpu] section for GPU hosts.\n");
        return out;
    }
    let vendor_of = |gpu: &u32| {
        claims
            .get(&format!("gpu[{gpu}].vendor"))
            .and_then(|c| text_of(c.value.as_ref()))
            .unwrap_or_else(|| "nvidia".to_owned())
    };
    let mut by_vendor: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for gpu in &gpus {
        by_vendor.entry(vendor_of(gpu)).or_default().push(*gpu);
    }
    for (vendor, indices) in &by_vendor {
        if vendor == "nvidia" {
            capture_nvidia(claims, indices, &mut out);
            let files = vendor_files(claims, vendor);
            if !files.is_empty() {
                let signed = gpu_values(claims, indices, "evidence")
                    .iter()
                    .all(|e| e == "signed");
                let _ = writeln!(
                    out,
                    "[gpus.nvidia]\nrequire_signed_evidence = {signed}\n{files}"
                );
            }
        } else {
            capture_vendor(claims, vendor, indices, &mut out);
        }
    }
    out
}

/// Where each vendor's kernel modules and management libraries live: IMA measurements of
/// these paths become the vendor section's `files`.
const VENDOR_SOFTWARE: &[(&str, &[&str])] = &[
    ("nvidia", &["*/nvidia*.ko*", "*/libnvidia-ml.so*"]),
    ("amd", &["*/amdgpu.ko*", "*/libamd_smi.so*"]),
    ("huawei", &["*/drv_*.ko*", "*/libdcmi.so*"]),
    ("biren", &["*/biren*.ko*", "*/libbiren-ml.so*"]),
];

/// The `files = [...]` line for the vendor's software the golden node measured (empty when
/// IMA measured none of it).
fn vendor_files(claims: &ClaimSet, vendor: &str) -> String {
    let patterns = VENDOR_SOFTWARE
        .iter()
        .find(|(v, _)| *v == vendor)
        .map_or(&[][..], |(_, p)| *p);
    let mut files: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        Default::default();
    for claim in claims
        .matching("ima.entries[*]")
        .filter(|c| c.trust.usable())
    {
        if let Some(Value::Measurement(m)) = &claim.value
            && !m.violation
            && patterns.iter().any(|p| super::rules::glob(p, &m.path))
        {
            files
                .entry(&m.path)
                .or_default()
                .insert(format!("{}:{}", m.algorithm, m.digest));
        }
    }
    if files.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = files
        .iter()
        .map(|(path, digests)| {
            let digests: Vec<String> = digests.iter().cloned().collect();
            format!(
                "  {{ path = {}, digests = [{}] }},",
                quote(path),
                quoted_list(&digests)
            )
        })
        .collect();
    format!(
        "# The vendor's kernel modules and management libraries, as IMA measured them.\nfiles = [\n{}\n]\n",
        entries.join("\n")
    )
}

/// Distinct usable values of `gpu[N].<suffix>` over `gpus`, sorted.
fn gpu_values(claims: &ClaimSet, gpus: &[u32], suffix: &str) -> Vec<String> {
    let mut values: Vec<String> = gpus
        .iter()
        .filter_map(|g| claims.get(&format!("gpu[{g}].{suffix}")))
        .filter(|c| c.trust.usable())
        .filter_map(|c| text_of(c.value.as_ref()))
        .collect();
    values.sort();
    values.dedup();
    values
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `driver_versions`/`min_driver_version` style lines for one kind of version.
fn version_lines(out: &mut String, what: &str, values: &[String]) {
    if let Some(lowest) = values
        .iter()
        .min_by(|a, b| super::rules::compare_versions(a, b))
    {
        let _ = writeln!(out, "{what}_versions = [{}]", quoted_list(values));
        let _ = writeln!(
            out,
            "min_{what}_version = {}  # refuse downgrades below what the golden node runs",
            quote(lowest)
        );
    }
}

/// The `[gpu]` section for NVIDIA GPUs.
fn capture_nvidia(claims: &ClaimSet, gpus: &[u32], out: &mut String) {
    let _ = writeln!(out, "[gpu]\ncount = {}", gpus.len());
    let signed = gpu_values(claims, gpus, "evidence")
        .iter()
        .all(|e| e == "signed");
    let _ = writeln!(
        out,
        "require_signed_evidence = {signed}{}",
        if signed {
            ""
        } else {
            "  # this node's GPUs sent unsigned inventory only"
        }
    );
    for (what, claim) in [("driver", "driver_version"), ("vbios", "vbios_version")] {
        version_lines(out, what, &gpu_values(claims, gpus, claim));
    }
    let rim = gpu_values(claims, gpus, "measurements.match")
        .iter()
        .all(|m| m == "true");
    let _ = writeln!(out, "require_rim_match = {rim}");
    let cc = !gpu_values(claims, gpus, "cc_mode").is_empty();
    let _ = writeln!(out, "require_cc_mode = {cc}");
    out.push_str("# OCSP answers are rarely available offline: missing revocation data is a warning.\nrevocation = \"warn\"\n\n");
}

/// A `[gpus.<vendor>]` section: count, evidence kind, driver and VBIOS versions, and every
/// firmware component with the golden versions as the allowed ones and the lowest as minimum.
fn capture_vendor(claims: &ClaimSet, vendor: &str, gpus: &[u32], out: &mut String) {
    let _ = writeln!(out, "[gpus.{vendor}]\ncount = {}", gpus.len());
    let signed = gpu_values(claims, gpus, "evidence")
        .iter()
        .all(|e| e == "signed");
    let _ = writeln!(
        out,
        "require_signed_evidence = {signed}{}",
        if signed {
            ""
        } else {
            "  # host-reported inventory: the host's word, bound by the quote"
        }
    );
    for (what, claim) in [("driver", "driver_version"), ("vbios", "vbios_version")] {
        version_lines(out, what, &gpu_values(claims, gpus, claim));
    }
    let mut firmware: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for gpu in gpus {
        let prefix = format!("gpu[{gpu}].firmware.");
        for claim in claims.claims.iter().filter(|c| c.trust.usable()) {
            if let (Some(id), Some(version)) = (
                claim.name.strip_prefix(&prefix),
                text_of(claim.value.as_ref()),
            ) {
                firmware.entry(id.to_owned()).or_default().push(version);
            }
        }
    }
    for (id, mut versions) in firmware {
        versions.sort();
        versions.dedup();
        let lowest = versions
            .iter()
            .min_by(|a, b| super::rules::compare_versions(a, b))
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "firmware.{id} = {{ allowed = [{}], min = {} }}",
            quoted_list(&versions),
            quote(&lowest)
        );
    }
    out.push_str(&vendor_files(claims, vendor));
    out.push('\n');
}

/// The `[ima]` section: every file (and buffer) the golden node measured since boot, with the
/// digests it measured, as the allow-list. Only from a whole, replayed list: a list sent from
/// a later entry lacks what came before.
fn capture_ima(claims: &ClaimSet, out: &mut String) {
    let state = claims
        .get("ima.log")
        .and_then(|c| text_of(c.value.as_ref()))
        .unwrap_or_default();
    if state != "replayed" {
        out.push_str("# This node sent no IMA list that replayed to PCR 10; add an [ima] section for runtime integrity.\n\n");
        return;
    }
    let total = claims.get("ima.entries").and_then(|c| match c.value {
        Some(Value::Int(n)) => Some(n),
        _ => None,
    });
    let new = claims.get("ima.entries_new").and_then(|c| match c.value {
        Some(Value::Int(n)) => Some(n),
        _ => None,
    });
    if total != new {
        out.push_str("# This result carries only the IMA entries since an earlier attestation; capture from the node\n# (`--node`) to learn the whole list.\n\n");
        return;
    }
    let mut files: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        Default::default();
    let mut buffers: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        Default::default();
    let mut violations = std::collections::BTreeSet::new();
    for claim in claims
        .matching("ima.entries[*]")
        .filter(|c| c.trust.usable())
    {
        let Some(Value::Measurement(m)) = &claim.value else {
            continue;
        };
        if m.path == "boot_aggregate" && m.kind == "file" {
            continue;
        }
        if m.violation {
            violations.insert(m.path.as_str());
            continue;
        }
        let digest = format!("{}:{}", m.algorithm, m.digest);
        if m.kind == "buffer" {
            buffers.entry(&m.path).or_default().insert(digest);
        } else {
            files.entry(&m.path).or_default().insert(digest);
        }
    }
    let _ = writeln!(
        out,
        "[ima]\n# The runtime measurement list (IMA) must replay to the quoted PCR 10 and belong to this boot.\n\
         list = \"required\"\nboot_aggregate = true\n# Files whose content legitimately changes (logs, caches) are best excluded, by glob or\n\
         # Keylime-style regular expression; files signed by your keys need no digest:\n\
         # exclude = [\"/var/log/*\", \"/tmp/*\"]\n# keys = [\"\"\"-----BEGIN PUBLIC KEY----- ...\"\"\"]"
    );
    if !violations.is_empty() {
        let _ = writeln!(
            out,
            "# Measured while open for writing (violations, content unknown): exclude them or fix the\n# workload; they fail as they are:"
        );
        for path in &violations {
            let _ = writeln!(out, "#   {}", quote(path));
        }
    }
    out.push_str("\n# Every file measured since boot, with the digests measured (");
    let _ = write!(out, "{} files).\n[ima.allow]\n", files.len());
    for (path, digests) in &files {
        let list: Vec<String> = digests.iter().map(|d| quote(d)).collect();
        let _ = writeln!(out, "{} = [{}]", quote(path), list.join(", "));
    }
    if !buffers.is_empty() {
        out.push_str("\n# Buffers measured (ima-buf: keys loaded into keyrings, the kexec command line).\n[ima.keyrings]\n");
        for (name, digests) in &buffers {
            let list: Vec<String> = digests.iter().map(|d| quote(d)).collect();
            let _ = writeln!(out, "{} = [{}]", quote(name), list.join(", "));
        }
    }
    out.push('\n');
}
