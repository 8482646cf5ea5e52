//! NVIDIA RIMs, read in place: Canonical XML 1.1 against independently computed vectors,
//! XML-DSig signatures and signer chains of every RIM, and appraisal of real reports against
//! matching, mismatching, expired and tampered RIMs.

mod common;

use std::path::Path;

use common::*;
use vigil_nvidia::rim::xmldsig::{XmlDsigError, canonical_forms};
use vigil_nvidia::rim::{RimStore, check_rim_signature};
use vigil_nvidia::roots::rim_root_der;
use vigil_nvidia::{ChainError, ClaimStatus, Verdict, verify_gpu_evidence};

const DRIVER_RIM: &str = "NV_GPU_DRIVER_GH100_550.90.07";
const VBIOS_RIM: &str = "NV_GPU_VBIOS_1010_0200_882_96009F0001";

fn store(dir: &Path, files: &[String]) -> RimStore {
    let mut store = RimStore::new();
    for f in files {
        store
            .add_file(&dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    store
}

fn matching_store(dir: &Path) -> RimStore {
    store(
        dir,
        &[
            format!("{RIMS_MATCHING}/{DRIVER_RIM}.swidtag"),
            format!("{RIMS_MATCHING}/{VBIOS_RIM}.swidtag"),
        ],
    )
}

fn sample(dir: &Path) -> (Vec<u8>, String) {
    (
        read(
            dir,
            &format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
        ),
        read_text(dir, &format!("{NV_LOCAL}/samples/hopperCertChain.txt")),
    )
}

fn status<'a>(v: &'a vigil_nvidia::GpuVerification, suffix: &str) -> &'a ClaimStatus {
    &v.claim(suffix)
        .unwrap_or_else(|| panic!("no claim {suffix}"))
        .status
}

#[test]
fn canonicalization_matches_the_independent_vectors() {
    let Some(dir) = fixtures() else { return };
    for rim in [DRIVER_RIM, VBIOS_RIM] {
        let xml = read_text(&dir, &format!("{RIMS_MATCHING}/{rim}.swidtag"));
        let (document, signed_info) = canonical_forms(rim, &xml).unwrap();
        let expected_doc = read(
            &dir,
            &format!("{RIMS_MATCHING}/c14n-vectors/{rim}.doc-without-Signature.c14n.xml"),
        );
        let expected_si = read(
            &dir,
            &format!("{RIMS_MATCHING}/c14n-vectors/{rim}.SignedInfo.c14n.xml"),
        );
        assert!(
            document == expected_doc,
            "{rim}: document canonical form differs"
        );
        assert!(
            signed_info == expected_si,
            "{rim}: SignedInfo canonical form differs"
        );
    }
}

#[test]
fn matching_rims_pass_on_2026_05_01_with_all_33_measurements() {
    let Some(dir) = fixtures() else { return };
    let (report, chain) = sample(&dir);
    let rims = matching_store(&dir);
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce(SAMPLE_NONCE)),
        Some(&rims),
        at("2026-05-01T00:00:00Z"),
    );
    for suffix in [
        "driver_rim.version_match",
        "driver_rim.signature_verified",
        "driver_rim.cert_chain.valid",
        "vbios_rim.version_match",
        "vbios_rim.signature_verified",
        "vbios_rim.cert_chain.valid",
        "measurements.match",
    ] {
        assert_eq!(status(&v, suffix), &ClaimStatus::Verified, "{suffix}");
    }
    let c = &v.rims.as_ref().unwrap().comparison;
    assert_eq!((c.matched, c.compared), (33, 33));
    assert!(c.mismatches.is_empty() && c.conflicts.is_empty());
    eprintln!("uncovered report blocks: {:?}", c.uncovered_blocks);
    assert!(matches!(
        status(&v, "measurements.uncovered"),
        ClaimStatus::Unknown { .. }
    ));
    assert_eq!(
        v.claim("driver_rim.cert_chain.expiry")
            .unwrap()
            .value
            .to_string(),
        "2026-06-01T02:08:29Z"
    );
    assert_eq!(v.verdict, Verdict::Pass);
}

#[test]
fn matching_rims_fail_now_on_the_expired_rim_signer() {
    let Some(dir) = fixtures() else { return };
    let (report, chain) = sample(&dir);
    let rims = matching_store(&dir);
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce(SAMPLE_NONCE)),
        Some(&rims),
        at("2026-11-28T00:00:00Z"),
    );
    assert_eq!(v.verdict, Verdict::Fail);
    match status(&v, "driver_rim.cert_chain.valid") {
        ClaimStatus::Failed { reason } => {
            assert!(
                reason.contains("HCC RIM L4 Signer") && reason.contains("2026-06-01T02:08:29Z"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The signature itself is still good and the VBIOS RIM's chain is still valid.
    assert!(status(&v, "driver_rim.signature_verified").is_verified());
    assert!(status(&v, "vbios_rim.cert_chain.valid").is_verified());
    // The values still match, but a RIM that is not trusted cannot verify them.
    assert!(matches!(
        status(&v, "measurements.match"),
        ClaimStatus::Unknown { .. }
    ));
    // And before the VBIOS RIM's signer existed (2026-01-07) it fails as well.
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce(SAMPLE_NONCE)),
        Some(&rims),
        at("2026-01-06T00:00:00Z"),
    );
    assert!(status(&v, "vbios_rim.cert_chain.valid").is_failed());
}

#[test]
fn bundled_sample_rims_do_not_match_and_are_expired() {
    let Some(dir) = fixtures() else { return };
    let (report, chain) = sample(&dir);
    let rims = store(
        &dir,
        &[
            format!("{NV_LOCAL}/samples/Driver_RIM_test_no_gpu.swidtag"),
            format!("{NV_LOCAL}/samples/1010_0200_882_96005E0001_test_no_gpu.swidtag"),
        ],
    );
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce(SAMPLE_NONCE)),
        Some(&rims),
        at("2026-05-01T00:00:00Z"),
    );
    assert_eq!(v.verdict, Verdict::Fail);
    match status(&v, "driver_rim.version_match") {
        ClaimStatus::Failed { reason } => assert!(
            reason.contains("545.00") && reason.contains("550.90.07"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(status(&v, "vbios_rim.version_match").is_failed());
    for role in ["driver_rim", "vbios_rim"] {
        match status(&v, &format!("{role}.cert_chain.valid")) {
            ClaimStatus::Failed { reason } => assert!(reason.contains("2025-"), "{role}: {reason}"),
            other => panic!("{role}: {other:?}"),
        }
    }
    let c = &v.rims.as_ref().unwrap().comparison;
    let counts: Vec<(usize, usize)> = c.per_rim.iter().map(|r| (r.matched, r.active)).collect();
    assert_eq!(counts, vec![(6, 21), (7, 12)]);
    assert!(status(&v, "measurements.match").is_failed());
    eprintln!("first mismatch: {}", c.mismatches[0]);
}

#[test]
fn whole_sample_directory_loads_and_selects_by_version() {
    let Some(dir) = fixtures() else { return };
    let (report, chain) = sample(&dir);
    let rims = RimStore::load_dir(&dir.join(format!("{NV_LOCAL}/samples"))).unwrap();
    assert_eq!(rims.rims().len(), 26);
    let v = verify_gpu_evidence(
        &report,
        &chain,
        None,
        Some(&rims),
        at("2026-05-01T00:00:00Z"),
    );
    // One driver RIM (545.00) exists, so its mismatch is reported; many VBIOS RIMs exist and
    // none is for 96.00.9F.00.01, so none is chosen.
    assert!(status(&v, "driver_rim.version_match").is_failed());
    match status(&v, "vbios_rim.version_match") {
        ClaimStatus::Unknown { reason } => assert!(reason.contains("96.00.9F.00.01"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_rim_signature_verifies_while_its_signer_was_valid() {
    let Some(dir) = fixtures() else { return };
    let mut files: Vec<String> = std::fs::read_dir(dir.join(format!("{NV_LOCAL}/samples")))
        .unwrap()
        .map(|e| {
            format!(
                "{NV_LOCAL}/samples/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .filter(|f| f.ends_with(".swidtag"))
        .collect();
    files.sort();
    files.extend([
        format!("{RIMS_MATCHING}/{DRIVER_RIM}.swidtag"),
        format!("{RIMS_MATCHING}/{VBIOS_RIM}.swidtag"),
        format!("{SDK_TESTDATA}/NV_GPU_DRIVER_GH100_550.144.03.xml"),
        format!("{SDK_TESTDATA}/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"),
    ]);
    let root = rim_root_der();
    for f in &files {
        let rims = store(&dir, std::slice::from_ref(f));
        let rim = &rims.rims()[0];
        // The middle of the signer's validity.
        let signer = check_rim_signature(&rim.source, rim.xml(), &root, 0)
            .chain
            .unwrap_err();
        let ChainError::NotValidAt {
            not_before,
            not_after,
            ..
        } = signer
        else {
            panic!("{f}: {signer:?}")
        };
        let when = (at(&not_before) + at(&not_after)) / 2;
        let check = check_rim_signature(&rim.source, rim.xml(), &root, when);
        assert_eq!(check.signature, Ok(()), "{f}");
        assert!(check.chain.is_ok(), "{f}: {:?}", check.chain);
        // Now (2026-11-28) every sample RIM's signer has expired.
        if f.starts_with(NV_LOCAL) {
            assert!(
                check_rim_signature(&rim.source, rim.xml(), &root, at("2026-11-28T00:00:00Z"))
                    .chain
                    .is_err()
            );
        }
    }
    eprintln!("{} RIM signatures verified", files.len());
}

#[test]
fn upstream_negative_rims_fail_for_their_reason() {
    let Some(dir) = fixtures() else { return };
    let root = rim_root_der();
    let when = at("2026-05-01T00:00:00Z");
    let check = |rel: &str| {
        let rims = store(&dir, &[rel.to_string()]);
        let rim = &rims.rims()[0];
        check_rim_signature(&rim.source, rim.xml(), &root, when)
    };
    // Altered content: the reference digest no longer matches.
    let c = check(&format!(
        "{SDK_TESTDATA}/incorrect_signature_driver_rim.xml"
    ));
    assert!(
        matches!(
            c.signature,
            Err(XmlDsigError::DigestMismatch { .. }) | Err(XmlDsigError::BadSignature)
        ),
        "{:?}",
        c.signature
    );
    let c = check(&format!(
        "{SDK_SAMPLES}/../sample_rims/NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml"
    ));
    assert!(c.signature.is_err());
    // A debug-only chain that does not lead to NVIDIA's RIM root.
    let c = check(&format!(
        "{SDK_TESTDATA}/incorrect_cert_chain_driver_rim.xml"
    ));
    assert!(
        matches!(
            c.chain,
            Err(ChainError::UntrustedRoot { .. }) | Err(ChainError::NameMismatch { .. })
        ),
        "{:?}",
        c.chain
    );
    // A RIM whose signer was valid for one day in January 2025.
    let c = check(&format!(
        "{SDK_SAMPLES}/../sample_rims/NV_GPU_DRIVER_GH100_570.124.03_expired.xml"
    ));
    match c.chain {
        Err(ChainError::NotValidAt {
            index: 0,
            not_after,
            ..
        }) => assert_eq!(not_after, "2025-01-02T00:00:00Z"),
        other => panic!("{other:?}"),
    }
    // The good RIM's chain against the wrong root.
    let wrong_root = vigil_nvidia::chain::pem_certificates(&read_text(
        &dir,
        &format!("{SDK_TESTDATA}/incorrect_rim_root.crt"),
    ))
    .unwrap();
    let rims = store(
        &dir,
        &[format!("{SDK_TESTDATA}/NV_GPU_DRIVER_GH100_550.144.03.xml")],
    );
    let rim = &rims.rims()[0];
    assert!(
        check_rim_signature(
            &rim.source,
            rim.xml(),
            &wrong_root[0],
            at("2025-06-01T00:00:00Z")
        )
        .chain
        .is_err()
    );
    // NVIDIA's own copy of the RIM root is byte-identical to the pinned one.
    let theirs = vigil_nvidia::chain::pem_certificates(&read_text(
        &dir,
        &format!("{SDK_TESTDATA}/trusted_certs/rim_root.crt"),
    ))
    .unwrap();
    assert_eq!(theirs[0], root);
}

#[test]
fn measurement_mismatch_rims_list_the_mismatching_blocks() {
    let Some(dir) = fixtures() else { return };
    let report = read(
        &dir,
        &format!("{SDK_SAMPLES}/gpu/hopperAttestationReport.txt"),
    );
    let chain = read_text(&dir, &format!("{SDK_SAMPLES}/gpu/hopperCertChain.txt"));
    let rims = store(
        &dir,
        &[
            format!(
                "{SDK_SAMPLES}/../sample_rims/NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml"
            ),
            format!(
                "{SDK_SAMPLES}/../sample_rims/NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml"
            ),
        ],
    );
    let v = verify_gpu_evidence(
        &report,
        &chain,
        None,
        Some(&rims),
        at("2025-06-01T00:00:00Z"),
    );
    assert!(status(&v, "driver_rim.version_match").is_verified());
    assert!(status(&v, "vbios_rim.version_match").is_verified());
    let c = &v.rims.as_ref().unwrap().comparison;
    eprintln!(
        "mismatch RIMs: {}/{} match; mismatched blocks {:?}; driver sig {:?}; vbios sig {:?}",
        c.matched,
        c.compared,
        c.mismatches
            .iter()
            .map(|m| m.block_index)
            .collect::<Vec<_>>(),
        status(&v, "driver_rim.signature_verified"),
        status(&v, "vbios_rim.signature_verified"),
    );
    assert!(!c.mismatches.is_empty());
    assert!(status(&v, "measurements.match").is_failed());
    assert_eq!(v.verdict, Verdict::Fail);

    // NVSwitch: the genuine BIOS RIM matches the switch report; the altered one does not.
    let report = read(&dir, &format!("{SDK_TESTDATA}/switchAttestationReport.txt"));
    let chain = read_text(&dir, &format!("{SDK_TESTDATA}/switchCertChain.txt"));
    let good = store(
        &dir,
        &[format!(
            "{SDK_TESTDATA}/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"
        )],
    );
    let nonce = vigil_nvidia::parse_report_input(&report)
        .unwrap()
        .request
        .nonce;
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce),
        Some(&good),
        at("2026-11-28T00:00:00Z"),
    );
    let c = &v.rims.as_ref().unwrap().comparison;
    eprintln!(
        "switch: {}/{} match, uncovered {:?}",
        c.matched, c.compared, c.uncovered_blocks
    );
    assert_eq!(
        v.verdict,
        Verdict::Pass,
        "{:?}",
        v.claims.failed().collect::<Vec<_>>()
    );
    assert!(
        v.claim("vbios_rim.signature_verified")
            .unwrap()
            .name
            .starts_with("switch.")
    );
    // NVIDIA's "switch measurement mismatch" RIM is a GH100 VBIOS RIM relabelled with the
    // switch BIOS version: refused as the wrong device, and its values mismatch.
    let bad = store(
        &dir,
        &[format!(
            "{SDK_SAMPLES}/../sample_rims/NV_SWITCH_BIOS_5612_0002_890_9610550001_measurement_mismatch.xml"
        )],
    );
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce),
        Some(&bad),
        at("2025-06-01T00:00:00Z"),
    );
    assert_eq!(v.verdict, Verdict::Fail);
    assert!(status(&v, "vbios_rim.device_match").is_failed());
    assert!(status(&v, "measurements.match").is_failed());
    // With RIMs supplied but none for this device, the result is incomplete, not a pass.
    let driver_only = matching_store(&dir);
    let v = verify_gpu_evidence(
        &report,
        &chain,
        Some(&nonce),
        Some(&driver_only),
        at("2026-05-01T00:00:00Z"),
    );
    assert_ne!(v.verdict, Verdict::Pass);
}

#[test]
fn upstream_expired_pair_fails_on_the_expired_rim_signer() {
    let Some(dir) = fixtures() else { return };
    // NVIDIA's "expired" sample: the device evidence itself verifies; its driver RIM
    // (570.124.03) was signed by a certificate valid for one day in January 2025.
    let report = read(
        &dir,
        &format!("{SDK_SAMPLES}/gpu/hopperAttestationReportExpired.txt"),
    );
    let chain = read_text(
        &dir,
        &format!("{SDK_SAMPLES}/gpu/hopperCertChainExpired.txt"),
    );
    let rims = store(
        &dir,
        &[format!(
            "{SDK_SAMPLES}/../sample_rims/NV_GPU_DRIVER_GH100_570.124.03_expired.xml"
        )],
    );
    let v = verify_gpu_evidence(
        &report,
        &chain,
        None,
        Some(&rims),
        at("2026-05-01T00:00:00Z"),
    );
    assert!(status(&v, "signature_verified").is_verified());
    assert!(status(&v, "cert_chain.valid").is_verified());
    assert!(status(&v, "driver_rim.version_match").is_verified());
    match status(&v, "driver_rim.cert_chain.valid") {
        ClaimStatus::Failed { reason } => {
            assert!(reason.contains("2025-01-02T00:00:00Z"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        status(&v, "vbios_rim.version_match"),
        ClaimStatus::Unknown { .. }
    ));
    assert_eq!(v.verdict, Verdict::Fail);
}
