//! Shared by the fixture tests: where other projects' real NVIDIA evidence lives, and how
//! to read each kind of file in place.
#![allow(dead_code)]

pub mod forge;

use std::path::{Path, PathBuf};

/// `$VIGIL_FIXTURES`, else `../shared/fixtures` beside the workspace, if it holds the NVIDIA
/// fixtures. With `CI` set, missing fixtures fail the test; otherwise the test says loudly
/// that it was skipped and gets `None`.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    if dir.join("nv-local-gpu-verifier-2.7.3").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the fixtures are missing at {}",
        dir.display()
    );
    eprintln!(
        "SKIPPED: fixtures not found at {} (set VIGIL_FIXTURES)",
        dir.display()
    );
    None
}

pub const NV_LOCAL: &str = "nv-local-gpu-verifier-2.7.3";
pub const SDK_TESTDATA: &str = "nvidia-attestation-sdk/nv-attestation-sdk-cpp/unit-tests/testdata";
pub const SDK_SAMPLES: &str =
    "nvidia-attestation-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/sample_attestation_data";
pub const SDK_COMMON: &str = "nvidia-attestation-sdk/common-test-data/serialized_test_evidence";
pub const PPCIE: &str = "nvidia-nvtrust/ppcie-verifier-sdk-cpp/tests/data";
pub const NVTRUST_2023: &str = "nvidia-nvtrust/local_gpu_verifier-2023-initial-commit/samples";
pub const RIMS_MATCHING: &str = "nvidia-rims-matching";

/// The sample report's nonce (bytes 4..36 of its request).
pub const SAMPLE_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

pub fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn read_text(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn nonce(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

pub fn at(rfc3339: &str) -> i64 {
    vigil_nvidia::parse_rfc3339(rfc3339).unwrap()
}

/// One device's evidence from a fixture file.
pub struct Device {
    pub name: String,
    pub report: Vec<u8>,
    pub chain_pem: String,
}

/// A report in NVIDIA's hex text with its PEM chain file.
pub fn text_pair(dir: &Path, report: &str, chain: &str) -> Device {
    Device {
        name: report.to_string(),
        report: read(dir, report),
        chain_pem: read_text(dir, chain),
    }
}

/// Every device in one of NVIDIA's serialized evidence bundles.
pub fn bundle(dir: &Path, rel: &str) -> Vec<Device> {
    vigil_nvidia::evidence::parse_evidence_bundle(&read(dir, rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .into_iter()
        .enumerate()
        .map(|(i, item)| Device {
            name: format!("{rel}[{i}]"),
            report: item.report,
            chain_pem: item.certificate_chain_pem,
        })
        .collect()
}

/// Every genuine device report with its chain.
pub fn genuine_devices(dir: &Path) -> Vec<Device> {
    let mut out = vec![
        text_pair(
            dir,
            &format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
            &format!("{NV_LOCAL}/samples/hopperCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_TESTDATA}/hopperAttestationReport.txt"),
            &format!("{SDK_TESTDATA}/hopperCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_TESTDATA}/switchAttestationReport.txt"),
            &format!("{SDK_TESTDATA}/switchCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_SAMPLES}/gpu/hopperAttestationReport.txt"),
            &format!("{SDK_SAMPLES}/gpu/hopperCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_SAMPLES}/gpu/hopperAttestationReportExpired.txt"),
            &format!("{SDK_SAMPLES}/gpu/hopperCertChainExpired.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_SAMPLES}/gpu/blackwellAttestationReport.txt"),
            &format!("{SDK_SAMPLES}/gpu/blackwellCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{SDK_SAMPLES}/switch/switchAttestationReport.txt"),
            &format!("{SDK_SAMPLES}/switch/switchCertChain.txt"),
        ),
        text_pair(
            dir,
            &format!("{NVTRUST_2023}/attestationReport.txt"),
            &format!("{NVTRUST_2023}/gpuAkCertChain.txt"),
        ),
    ];
    for rel in [
        format!("{SDK_TESTDATA}/evidence_hopper_590_12.json"),
        format!("{SDK_COMMON}/hopper_evidence.json"),
        format!("{SDK_COMMON}/hopper_evidence_cert_hold.json"),
        format!("{SDK_COMMON}/multi_gpu_hopper.json"),
        format!("{SDK_COMMON}/switch_evidence_ls10.json"),
        format!("{SDK_COMMON}/multi_switch_ls10.json"),
        format!("{PPCIE}/gpu_evidence.json"),
        format!("{PPCIE}/switch_evidence.json"),
    ] {
        out.extend(bundle(dir, &rel));
    }
    out
}
