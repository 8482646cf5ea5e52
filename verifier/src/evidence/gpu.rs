//! GPU evidence inside a host's evidence: each GPU's signed SPDM report is verified with
//! `vigil-nvidia` against the verifier's own nonce (one nonce for the whole host, see
//! `docs/architecture.md`), and what it proves becomes `gpu[N].*` claims. A GPU without
//! signed evidence contributes its inventory as unsigned claims.
//!
//! Authenticity (report structure, signature, chain to NVIDIA's root, nonce) is decided
//! here, as evidence checks; whether the versions and measurements are acceptable is the
//! baseline's call.

use vigil_nvidia::{ClaimStatus as NvStatus, ClaimValue as NvValue, RimStore};
use vigil_proto::v1::GpuEvidence;

use crate::claims::{ClaimSet, HostClaim, Source, Trust, Value};
use crate::report::Check;

/// Most GPUs (and NVSwitches) one host may present: an 8-GPU HGX board has 8 GPUs and 4
/// switches; anything far beyond that is not a real host.
pub const MAX_GPUS: usize = 64;
/// Largest report or chain accepted per GPU (NVML's buffers are 8 KiB and 5 KiB).
pub const MAX_GPU_REPORT_BYTES: usize = 64 * 1024;
/// Largest device-signed evidence document per device (an Ascend quote with its boot and
/// IMA logs).
pub const MAX_DEVICE_EVIDENCE_BYTES: usize = 16 * 1024 * 1024;
/// Most firmware components one device may list, and the longest text field accepted.
pub const MAX_FIRMWARE_ENTRIES: usize = 64;
pub const MAX_INVENTORY_TEXT: usize = 256;

/// The vendors Vigil reads evidence of.
pub const VENDORS: &[&str] = &["nvidia", "amd", "huawei", "biren"];

/// What GPU verification needs besides the evidence.
#[derive(Debug, Clone, Copy)]
pub struct GpuContext<'a> {
    /// NVIDIA RIMs for measurement comparison; without them `measurements.match` is unknown.
    pub rims: Option<&'a RimStore>,
    /// Verification time for certificate and RIM validity (Unix seconds).
    pub at: i64,
    /// CAs an Ascend NPU's IAK certificate must chain to (none shipped: operators configure
    /// Huawei's); without them Ascend attestation cannot verify.
    pub npu_roots: Option<&'a crate::evidence::ascend::AscendRoots>,
    /// NVIDIA trust roots and verification caches (default: the pinned roots, no caches).
    pub nvidia: NvidiaTrust<'a>,
}

/// Which roots NVIDIA evidence must chain to, and the caches shared by appraisals. Device and
/// RIM roots are separate: a root trusted for one never authorises the other.
#[derive(Debug, Clone, Copy, Default)]
pub struct NvidiaTrust<'a> {
    /// Device identity roots (DER); `None`: NVIDIA's pinned root.
    pub device_roots: Option<&'a [Vec<u8>]>,
    /// RIM signing roots (DER); `None`: NVIDIA's pinned root.
    pub rim_roots: Option<&'a [Vec<u8>]>,
    pub caches: Option<&'a vigil_nvidia::GpuCaches>,
}

/// Device-reported check claims: true when verified, false (with the reason) when the check
/// failed, unproven when it could not be decided.
const CHECK_CLAIMS: &[&str] = &[
    "report_parsed",
    "signature_verified",
    "cert_chain.valid",
    "fwid_match",
    "nonce_match",
    "measurements.match",
    "driver_rim.version_match",
    "driver_rim.device_match",
    "driver_rim.signature_verified",
    "driver_rim.cert_chain.valid",
    "vbios_rim.version_match",
    "vbios_rim.device_match",
    "vbios_rim.signature_verified",
    "vbios_rim.cert_chain.valid",
];

/// Checks that must verify for a GPU's evidence to be authentic and fresh.
const AUTHENTICITY: &[(&str, &str)] = &[
    ("report_parsed", "report"),
    ("signature_verified", "signature"),
    ("cert_chain.valid", "cert_chain"),
    ("nonce_match", "nonce"),
];

/// What the verifier establishes about the GPU list itself (counts, vendors) is verified only
/// when the quote that commits to the list verified.
fn quoted(bound: bool) -> Trust {
    if bound {
        Trust::Verified
    } else {
        Trust::Unproven("the quote that would commit to the GPU list did not verify".into())
    }
}

/// Verifies every GPU's evidence; returns the checks and adds `gpu[N].*` claims to `claims`.
/// `bound` says whether the TPM quote verified (and so commits to this GPU evidence).
pub fn check_gpus(
    nonce: &[u8],
    gpus: &[GpuEvidence],
    context: &GpuContext<'_>,
    bound: bool,
    claims: &mut ClaimSet,
) -> Vec<Check> {
    let mut checks = Vec::new();
    claims.push(
        "gpu.count",
        Some(Value::Int(gpus.len() as i64)),
        quoted(bound),
        Source::Verifier {
            check: "quote.qualifying_data".into(),
        },
    );
    if gpus.is_empty() {
        return checks;
    }
    if gpus.len() > MAX_GPUS {
        checks.push(Check::fail(
            "gpu.evidence",
            format!(
                "{} GPUs presented; at most {MAX_GPUS} are accepted",
                gpus.len()
            ),
        ));
        return checks;
    }
    for vendor in VENDORS {
        let count = gpus.iter().filter(|g| g.vendor == *vendor).count();
        claims.push(
            format!("gpu.count.{vendor}"),
            Some(Value::Int(count as i64)),
            quoted(bound),
            Source::Verifier {
                check: "quote.qualifying_data".into(),
            },
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for gpu in gpus {
        if !seen.insert(gpu.index) {
            checks.push(Check::fail(
                "gpu.evidence",
                format!("GPU index {} appears twice", gpu.index),
            ));
            return checks;
        }
    }
    let expected_nonce = <[u8; 32]>::try_from(nonce).ok();
    for gpu in gpus {
        let prefix = format!("gpu[{}]", gpu.index);
        let check_name = |suffix: &str| format!("{prefix}.{suffix}");
        if !VENDORS.contains(&gpu.vendor.as_str()) {
            checks.push(Check::fail(
                &check_name("evidence"),
                format!(
                    "vendor {:?} is not supported ({})",
                    gpu.vendor,
                    VENDORS.join(", ")
                ),
            ));
            continue;
        }
        if let Err(why) = within_bounds(gpu) {
            checks.push(Check::fail(&check_name("evidence"), why));
            continue;
        }
        claims.push(
            format!("{prefix}.vendor"),
            Some(Value::Text(gpu.vendor.clone())),
            quoted(bound),
            Source::GpuInventory { gpu: gpu.index },
        );
        if gpu.vendor != "nvidia" {
            push_inventory(gpu, &prefix, bound, claims);
            checks.push(check_other_vendor(
                gpu, &prefix, bound, context, nonce, claims,
            ));
            continue;
        }
        push_inventory(gpu, &prefix, bound, claims);
        if gpu.report.is_empty() {
            checks.push(Check::pass(
                &check_name("evidence"),
                format!(
                    "unsigned inventory only (CC mode {}): values are the host's word, bound by the quote",
                    if gpu.cc_mode.is_empty() { "not reported" } else { gpu.cc_mode.as_str() }
                ),
            ));
            claims.push(
                format!("{prefix}.evidence"),
                Some(Value::Text("inventory".into())),
                Trust::Verified,
                Source::GpuInventory { gpu: gpu.index },
            );
            continue;
        }
        let mut options = vigil_nvidia::VerifyOptions {
            expected_nonce: expected_nonce.as_ref(),
            rims: context.rims,
            device_roots: context.nvidia.device_roots,
            rim_roots: context.nvidia.rim_roots,
            ..vigil_nvidia::VerifyOptions::at(context.at)
        };
        if let Some(caches) = context.nvidia.caches {
            options = options.with_caches(caches);
        }
        let verification =
            vigil_nvidia::verify_gpu_evidence_with(&gpu.report, &gpu.cert_chain_pem, &options);
        for (claim, check) in AUTHENTICITY {
            let name = check_name(check);
            match verification.claim(claim).map(|c| &c.status) {
                Some(NvStatus::Verified) => checks.push(Check::pass(&name, describe(claim))),
                Some(NvStatus::Failed { reason } | NvStatus::Unknown { reason }) => {
                    checks.push(Check::fail(&name, reason.clone()))
                }
                None => checks.push(Check::fail(&name, "not checked")),
            }
        }
        if let Some(NvStatus::Failed { reason }) =
            verification.claim("fwid_match").map(|c| &c.status)
        {
            checks.push(Check::fail(&check_name("fwid"), reason.clone()));
        }
        let authentic = AUTHENTICITY.iter().all(|(claim, _)| {
            verification
                .claim(claim)
                .is_some_and(|c| c.status.is_verified())
        });
        claims.push(
            format!("{prefix}.evidence"),
            Some(Value::Text("signed".into())),
            if authentic {
                Trust::Verified
            } else {
                Trust::Failed("the report is not authentic and fresh".into())
            },
            Source::GpuReport {
                gpu: gpu.index,
                claim: "signature_verified".into(),
            },
        );
        claims.push(
            format!("{prefix}.device"),
            Some(Value::Text(
                serde_json::to_value(verification.device)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            )),
            Trust::Verified,
            Source::GpuReport {
                gpu: gpu.index,
                claim: "arch".into(),
            },
        );
        for claim in verification.claims.iter() {
            let Some((_, suffix)) = claim.name.split_once('.') else {
                continue;
            };
            // The signed report wins over the host's inventory for the same name, unless it
            // cannot say (an older firmware that does not report the CC mode).
            let from_device = device_claim(&prefix, gpu.index, suffix, claim);
            let reported = claims
                .claims
                .iter()
                .position(|c| c.name == from_device.name);
            match reported {
                Some(_) if !from_device.trust.usable() => {}
                Some(position) => claims.claims[position] = from_device,
                None => claims.claims.push(from_device),
            }
        }
    }
    checks
}

fn describe(claim: &str) -> &'static str {
    match claim {
        "report_parsed" => "SPDM GET_MEASUREMENTS request and response parsed",
        "signature_verified" => "P-384 signature by the device key verifies",
        "cert_chain.valid" => {
            "device chain ends at a trusted device root (NVIDIA's unless --gpu-roots)"
        }
        "nonce_match" => "the report answers this verifier's nonce",
        _ => "verified",
    }
}

fn device_claim(prefix: &str, gpu: u32, suffix: &str, claim: &vigil_nvidia::Claim) -> HostClaim {
    let source = Source::GpuReport {
        gpu,
        claim: claim.name.clone(),
    };
    let name = format!("{prefix}.{suffix}");
    if CHECK_CLAIMS.contains(&suffix) {
        let (value, trust, detail) = match &claim.status {
            NvStatus::Verified => (Some(Value::Bool(true)), Trust::Verified, None),
            NvStatus::Failed { reason } => (
                Some(Value::Bool(false)),
                Trust::Verified,
                Some(reason.clone()),
            ),
            NvStatus::Unknown { reason } => (None, Trust::Unproven(reason.clone()), None),
        };
        return HostClaim {
            name,
            value,
            trust,
            source,
            detail,
        };
    }
    let value = match &claim.value {
        NvValue::None => None,
        NvValue::Bool(b) => Some(Value::Bool(*b)),
        NvValue::Integer(i) => Some(Value::Int(*i)),
        NvValue::Text(t) => Some(Value::Text(t.clone())),
        NvValue::List(items) => Some(Value::List(items.clone())),
    };
    let trust = match &claim.status {
        NvStatus::Verified => Trust::Verified,
        NvStatus::Failed { reason } => Trust::Failed(reason.clone()),
        NvStatus::Unknown { reason } => Trust::Unproven(reason.clone()),
    };
    HostClaim {
        name,
        value,
        trust,
        source,
        detail: None,
    }
}

/// The inventory text fields of a device, by claim-name suffix: one list for the size checks
/// and for the claims, so a new field cannot be claimed unbounded.
fn inventory_texts(gpu: &GpuEvidence) -> [(&'static str, &String); 8] {
    [
        ("uuid", &gpu.uuid),
        ("name", &gpu.name),
        ("driver_version", &gpu.driver_version),
        ("vbios_version", &gpu.vbios_version),
        ("inforom_version", &gpu.inforom_version),
        ("cc_mode", &gpu.cc_mode),
        ("serial", &gpu.serial),
        ("part_number", &gpu.part_number),
    ]
}

/// Sizes a host may report for one device.
fn within_bounds(gpu: &GpuEvidence) -> Result<(), String> {
    if gpu.report.len() > MAX_GPU_REPORT_BYTES || gpu.cert_chain_pem.len() > MAX_GPU_REPORT_BYTES {
        return Err(format!(
            "report or certificate chain over {MAX_GPU_REPORT_BYTES} bytes"
        ));
    }
    if gpu.evidence.len() > MAX_DEVICE_EVIDENCE_BYTES {
        return Err(format!(
            "device evidence of {} bytes is over {MAX_DEVICE_EVIDENCE_BYTES}",
            gpu.evidence.len()
        ));
    }
    if gpu.firmware.len() > MAX_FIRMWARE_ENTRIES {
        return Err(format!(
            "{} firmware entries; at most {MAX_FIRMWARE_ENTRIES}",
            gpu.firmware.len()
        ));
    }
    let texts = inventory_texts(gpu)
        .into_iter()
        .chain([("kind", &gpu.kind), ("format", &gpu.format)]);
    for (field, text) in texts {
        if text.len() > MAX_INVENTORY_TEXT {
            return Err(format!("{field}: over {MAX_INVENTORY_TEXT} bytes"));
        }
    }
    for firmware in &gpu.firmware {
        if firmware.id.is_empty()
            || firmware.id.len() > MAX_INVENTORY_TEXT
            || firmware.version.len() > MAX_INVENTORY_TEXT
        {
            return Err(format!(
                "firmware entry {:?}: id must be 1..={MAX_INVENTORY_TEXT} bytes, version at most {MAX_INVENTORY_TEXT}",
                firmware.id.chars().take(32).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// A firmware id as a claim-name segment: letters, digits, `_` and `-` kept, anything else
/// (dots, brackets, spaces) becomes `_`, so an id can never change the claim's structure.
pub fn firmware_segment(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A device of a vendor other than NVIDIA: host-reported inventory (amdsmi, DCMI, BRML), or
/// device-signed evidence in a format Vigil verifies.
fn check_other_vendor(
    gpu: &GpuEvidence,
    prefix: &str,
    bound: bool,
    context: &GpuContext<'_>,
    nonce: &[u8],
    claims: &mut ClaimSet,
) -> Check {
    let check_name = format!("{prefix}.evidence");
    match gpu.kind.as_str() {
        "host-reported" | "" => {
            claims.push(
                format!("{prefix}.evidence"),
                Some(Value::Text("inventory".into())),
                Trust::Verified,
                Source::GpuInventory { gpu: gpu.index },
            );
            Check::pass(
                &check_name,
                format!(
                    "{} {}: host-reported inventory ({}): the host's word, bound by the quote, not signed by the device",
                    gpu.vendor,
                    if gpu.name.is_empty() {
                        "device"
                    } else {
                        gpu.name.as_str()
                    },
                    if gpu.format.is_empty() {
                        "no format named"
                    } else {
                        gpu.format.as_str()
                    }
                ),
            )
        }
        "device-signed" => device_signed(gpu, prefix, bound, context, nonce, claims),
        other => Check::fail(
            &check_name,
            format!("evidence kind {other:?} is neither device-signed nor host-reported"),
        ),
    }
}

/// Device-signed evidence of vendors other than NVIDIA: Huawei Ascend attestation (IAK chain,
/// quote for the challenge derived from this verifier's nonce, PCRs, boot and IMA logs).
fn device_signed(
    gpu: &GpuEvidence,
    prefix: &str,
    bound: bool,
    context: &GpuContext<'_>,
    nonce: &[u8],
    claims: &mut ClaimSet,
) -> Check {
    if gpu.vendor == "huawei" && gpu.format == "ascend-attestation" {
        return ascend(gpu, prefix, bound, context, nonce, claims);
    }
    claims.push(
        format!("{prefix}.evidence"),
        Some(Value::Text("signed".into())),
        Trust::Failed(format!(
            "format {:?} is not verified by this build",
            gpu.format
        )),
        Source::GpuInventory { gpu: gpu.index },
    );
    Check::fail(
        &format!("{prefix}.evidence"),
        format!(
            "device-signed evidence in format {:?} is not one this build verifies",
            gpu.format
        ),
    )
}

/// An Ascend NPU's attestation, verified with `evidence::ascend`. Its checks are named
/// `gpu[N].npu.*` and its claims `gpu[N].npu.*`, so they belong to the device's submodule.
fn ascend(
    gpu: &GpuEvidence,
    prefix: &str,
    bound: bool,
    context: &GpuContext<'_>,
    nonce: &[u8],
    claims: &mut ClaimSet,
) -> Check {
    use crate::evidence::ascend;
    let empty = ascend::AscendRoots::empty();
    let roots = context.npu_roots.unwrap_or(&empty);
    let challenge = ascend::challenge_for(nonce, gpu.index);
    let verification = ascend::verify_evidence_bytes(&gpu.evidence, roots, &challenge, context.at);
    for claim in verification.claims_for_device(gpu.index) {
        let mut claim = claim;
        if let Some(rest) = claim
            .name
            .strip_prefix(&format!("npu[{}].", gpu.index))
            .map(str::to_owned)
        {
            claim.name = format!("{prefix}.npu.{rest}");
        }
        claims.claims.push(claim);
    }
    let failed: Vec<String> = verification
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    let authentic = failed.is_empty();
    claims.push(
        format!("{prefix}.evidence"),
        Some(Value::Text("signed".into())),
        if authentic && bound {
            Trust::Verified
        } else if !authentic {
            Trust::Failed("the NPU's attestation did not verify".into())
        } else {
            Trust::Unproven("the quote that would commit to it did not verify".into())
        },
        Source::GpuReport {
            gpu: gpu.index,
            claim: "npu.quote_verified".into(),
        },
    );
    let name = format!("{prefix}.evidence");
    if authentic {
        Check::pass(
            &name,
            format!(
                "Ascend attestation verified: IAK chain{}, quote for this verifier's challenge, PCR digest, logs ({} checks)",
                if context.npu_roots.is_none() {
                    " (no CA configured!)"
                } else {
                    ""
                },
                verification.checks.len()
            ),
        )
    } else {
        let configure = if context.npu_roots.is_none() {
            " (no Huawei CA is configured: `vigil serve --npu-ca-dir DIR`)"
        } else {
            ""
        };
        Check::fail(
            &name,
            format!("Ascend attestation: {}{configure}", failed.join("; ")),
        )
    }
}

/// The inventory the host reported for a GPU: attested by the quote (which commits to it)
/// but never signed by the GPU.
fn push_inventory(gpu: &GpuEvidence, prefix: &str, bound: bool, claims: &mut ClaimSet) {
    let trust = || {
        if bound {
            Trust::Attested("reported by the host's attester, not signed by the GPU".into())
        } else {
            Trust::Unproven("the quote that would commit to it did not verify".into())
        }
    };
    for (suffix, value) in inventory_texts(gpu) {
        if !value.is_empty() {
            claims.push(
                format!("{prefix}.{suffix}"),
                Some(Value::Text(value.clone())),
                trust(),
                Source::GpuInventory { gpu: gpu.index },
            );
        }
    }
    for firmware in &gpu.firmware {
        claims.push(
            format!("{prefix}.firmware.{}", firmware_segment(&firmware.id)),
            Some(Value::Text(firmware.version.clone())),
            trust(),
            Source::GpuInventory { gpu: gpu.index },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32) -> GpuEvidence {
        GpuEvidence {
            index,
            vendor: "nvidia".into(),
            uuid: format!("GPU-{index}"),
            driver_version: "550.90.07".into(),
            cc_mode: "off".into(),
            ..Default::default()
        }
    }

    fn run(gpus: &[GpuEvidence], bound: bool) -> (Vec<Check>, ClaimSet) {
        let mut claims = ClaimSet::default();
        let context = GpuContext {
            rims: None,
            at: 0,
            npu_roots: None,
            nvidia: NvidiaTrust::default(),
        };
        let checks = check_gpus(&[0; 32], gpus, &context, bound, &mut claims);
        (checks, claims)
    }

    /// NVIDIA's Hopper sample as a host would present it, if the fixtures are here.
    fn hopper_sample() -> Option<(GpuEvidence, vigil_nvidia::RimStore)> {
        let dir = std::env::var_os("VIGIL_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures").into()
            });
        let samples = dir.join("nv-local-gpu-verifier-2.7.3/samples");
        let (Ok(report), Ok(chain)) = (
            std::fs::read(samples.join("hopperAttestationReport.txt")),
            std::fs::read_to_string(samples.join("hopperCertChain.txt")),
        ) else {
            eprintln!("SKIPPED: fixtures not found at {}", dir.display());
            return None;
        };
        let rims = vigil_nvidia::RimStore::load_dir(&dir.join("nvidia-rims-matching")).ok()?;
        let gpu = GpuEvidence {
            report,
            cert_chain_pem: chain,
            ..gpu(0)
        };
        Some((gpu, rims))
    }

    /// 2026-05-01, inside the sample's and its RIMs' validity.
    const MAY: i64 = 1_777_593_600;
    const SAMPLE_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

    fn summary(checks: &[Check]) -> Vec<(String, bool, String)> {
        checks
            .iter()
            .map(|c| (c.name.clone(), c.passed, c.detail.clone()))
            .collect()
    }

    #[test]
    fn the_caches_and_roots_reach_gpu_verification() {
        let Some((sample, rims)) = hopper_sample() else {
            return;
        };
        let nonce = hex::decode(SAMPLE_NONCE).unwrap();
        let caches = vigil_nvidia::GpuCaches::new();
        let run = |nvidia: NvidiaTrust<'_>| {
            let context = GpuContext {
                rims: Some(&rims),
                at: MAY,
                npu_roots: None,
                nvidia,
            };
            let mut claims = ClaimSet::default();
            let checks = summary(&check_gpus(
                &nonce,
                std::slice::from_ref(&sample),
                &context,
                true,
                &mut claims,
            ));
            let rim_chain = claims
                .get("gpu[0].driver_rim.cert_chain.valid")
                .and_then(|c| c.value.clone());
            (checks, rim_chain)
        };
        let plain = run(NvidiaTrust::default());
        assert!(failed_of(&plain.0).is_empty(), "{plain:?}");
        assert_eq!(plain.1, Some(Value::Bool(true)));
        let cached = NvidiaTrust {
            caches: Some(&caches),
            ..NvidiaTrust::default()
        };
        assert_eq!(run(cached), plain);
        assert_eq!(run(cached), plain);
        assert_eq!(caches.chains.stats().hits, 1);
        assert_eq!(caches.rims.stats().hits, 2);
        // A configured device root replaces NVIDIA's: the sample's chain no longer verifies,
        // cached or not.
        let other_root = vec![vigil_nvidia::roots::rim_root_der()];
        for caches in [None, Some(&caches)] {
            let (checks, _) = run(NvidiaTrust {
                device_roots: Some(&other_root),
                caches,
                ..NvidiaTrust::default()
            });
            assert!(
                failed_of(&checks)
                    .iter()
                    .any(|c| c.starts_with("gpu[0].cert_chain")),
                "{checks:?}"
            );
        }
        // A configured RIM root replaces NVIDIA's for the RIMs alone (NVIDIA's device root
        // does not sign RIMs).
        let device_root = vec![vigil_nvidia::roots::device_root_der()];
        let (checks, rim_chain) = run(NvidiaTrust {
            rim_roots: Some(&device_root),
            caches: Some(&caches),
            ..NvidiaTrust::default()
        });
        assert!(failed_of(&checks).is_empty(), "{checks:?}");
        assert_eq!(rim_chain, Some(Value::Bool(false)));
    }

    fn failed_of(checks: &[(String, bool, String)]) -> Vec<String> {
        checks
            .iter()
            .filter(|c| !c.1)
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect()
    }

    fn failed(checks: &[Check]) -> Vec<String> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }

    #[test]
    fn lists_that_no_host_presents_are_refused() {
        let many: Vec<GpuEvidence> = (0..=MAX_GPUS as u32).map(gpu).collect();
        assert!(failed(&run(&many, true).0)[0].contains("at most 64"));
        let twice = [gpu(3), gpu(3)];
        assert!(failed(&run(&twice, true).0)[0].contains("GPU index 3 appears twice"));
    }

    #[test]
    fn unsupported_vendors_and_oversized_reports_fail_their_gpu() {
        let mut other = gpu(0);
        other.vendor = "acme".into();
        let mut big = gpu(1);
        big.report = vec![0; MAX_GPU_REPORT_BYTES + 1];
        let failures = failed(&run(&[other, big], true).0);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].starts_with("gpu[0].evidence: vendor \"acme\""));
        assert!(failures[1].starts_with("gpu[1].evidence: report or certificate chain over"));
    }

    #[test]
    fn every_inventory_text_is_bounded() {
        let mut long = gpu(0);
        long.cc_mode = "x".repeat(MAX_INVENTORY_TEXT + 1);
        let (checks, claims) = run(&[long], true);
        let failures = failed(&checks);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].contains("cc_mode: over 256 bytes"),
            "{failures:?}"
        );
        assert!(claims.get("gpu[0].cc_mode").is_none());
    }

    #[test]
    fn inventory_is_attested_only_when_the_quote_verified() {
        let (checks, claims) = run(&[gpu(0)], true);
        assert!(failed(&checks).is_empty());
        assert_eq!(
            claims.get("gpu[0].evidence").unwrap().value,
            Some(Value::Text("inventory".into()))
        );
        assert!(matches!(
            claims.get("gpu[0].driver_version").unwrap().trust,
            Trust::Attested(_)
        ));
        let (_, claims) = run(&[gpu(0)], false);
        assert!(matches!(
            claims.get("gpu[0].driver_version").unwrap().trust,
            Trust::Unproven(_)
        ));
        assert!(matches!(
            claims.get("gpu.count").unwrap().trust,
            Trust::Unproven(_)
        ));
    }

    #[test]
    fn a_report_that_does_not_parse_fails_and_proves_nothing() {
        let mut broken = gpu(0);
        broken.report = b"not an SPDM report".to_vec();
        broken.cert_chain_pem = "not PEM".into();
        let (checks, claims) = run(&[broken], true);
        let failures = failed(&checks);
        for check in [
            "gpu[0].report",
            "gpu[0].signature",
            "gpu[0].cert_chain",
            "gpu[0].nonce",
        ] {
            assert!(
                failures.iter().any(|f| f.starts_with(check)),
                "{check}: {failures:?}"
            );
        }
        assert!(matches!(
            claims.get("gpu[0].evidence").unwrap().trust,
            Trust::Failed(_)
        ));
        // The inventory the host sent is kept, but the signed evidence it came with failed.
        assert!(!claims.get("gpu[0].evidence").unwrap().trust.usable());
    }
}
