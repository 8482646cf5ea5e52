//! Every real GPU and NVSwitch report in the fixtures, read in place: each genuine one parses,
//! its signature and chain verify at a time inside validity, and its FWID matches where the
//! firmware reports one; the upstream negative variants fail for the reason their names give.

mod common;

use std::collections::BTreeSet;

use common::*;
use vigil_nvidia::{ClaimStatus, DeviceKind, Verdict, verify_gpu_evidence};

#[test]
fn every_genuine_device_verifies() {
    let Some(dir) = fixtures() else { return };
    let when = at("2026-05-01T00:00:00Z");
    let devices = genuine_devices(&dir);
    let mut identities = BTreeSet::new();
    let mut kinds = Vec::new();
    let mut fwid_bound = 0;
    for device in &devices {
        // Each report is checked against its own request nonce: the fixtures record it.
        let parsed = vigil_nvidia::parse_report_input(&device.report)
            .unwrap_or_else(|e| panic!("{}: {e}", device.name));
        let nonce = parsed.request.nonce;
        let v = verify_gpu_evidence(&device.report, &device.chain_pem, Some(&nonce), None, when);
        for suffix in [
            "report_parsed",
            "signature_verified",
            "cert_chain.valid",
            "nonce_match",
            "arch",
        ] {
            let claim = v.claim(suffix).unwrap();
            assert_eq!(
                claim.status,
                ClaimStatus::Verified,
                "{}: {suffix}: {claim:?}",
                device.name
            );
        }
        let fwid = v.claim("fwid_match").unwrap();
        match (&fwid.status, parsed.response.opaque.fwid()) {
            (ClaimStatus::Verified, Some(_)) => fwid_bound += 1,
            (ClaimStatus::Unknown { .. }, None) => {}
            other => panic!("{}: fwid {other:?}", device.name),
        }
        assert_eq!(v.verdict, Verdict::Pass, "{}: {:?}", device.name, v.claims);
        // The device identity is the BROM certificate that issued the per-boot leaf.
        identities.insert(v.leaf_certificate.as_ref().unwrap().issuer.clone());
        kinds.push(v.device);
    }
    let count = |k: DeviceKind| kinds.iter().filter(|d| **d == k).count();
    eprintln!(
        "{} reports from {} distinct devices verified ({} Hopper, {} Blackwell, {} NVSwitch reports); {} FWID-bound",
        devices.len(),
        identities.len(),
        count(DeviceKind::Hopper),
        count(DeviceKind::Blackwell),
        count(DeviceKind::NvSwitch),
        fwid_bound
    );
    assert_eq!(devices.len(), 32);
    assert_eq!(identities.len(), 19);
    assert_eq!(count(DeviceKind::Blackwell), 1);
    assert_eq!(count(DeviceKind::NvSwitch), 11);
}

#[test]
fn hgx_box_eight_gpus_and_four_switches_verify_with_one_nonce() {
    let Some(dir) = fixtures() else { return };
    let gpus = bundle(&dir, &format!("{PPCIE}/gpu_evidence.json"));
    let switches = bundle(&dir, &format!("{PPCIE}/switch_evidence.json"));
    assert_eq!((gpus.len(), switches.len()), (8, 4));
    let nonce = vigil_nvidia::parse_report_input(&gpus[0].report)
        .unwrap()
        .request
        .nonce;
    let when = at("2026-05-01T00:00:00Z");
    for d in gpus.iter().chain(&switches) {
        let v = verify_gpu_evidence(&d.report, &d.chain_pem, Some(&nonce), None, when);
        assert_eq!(v.verdict, Verdict::Pass, "{}", d.name);
    }
    // The GPUs run driver 590.12 / VBIOS 96.00.A5.00.01 in protected-PCIe mode.
    let v = verify_gpu_evidence(
        &gpus[3].report,
        &gpus[3].chain_pem,
        Some(&nonce),
        None,
        when,
    );
    assert_eq!(
        v.claim("driver_version").unwrap().value.to_string(),
        "590.12"
    );
    assert_eq!(
        v.claim("vbios_version").unwrap().value.to_string(),
        "96.00.A5.00.01"
    );
    assert_eq!(v.claim("cc_mode").unwrap().value.to_string(), "ppcie");
    assert_eq!(v.claim("protected_pcie").unwrap().value.to_string(), "true");
}

#[test]
fn upstream_invalid_signature_reports_fail_on_the_signature() {
    let Some(dir) = fixtures() else { return };
    for (report, chain) in [
        (
            "gpu/hopperAttestationReportInvalidSignature.txt",
            "gpu/hopperCertChain.txt",
        ),
        (
            "switch/switchAttestationReportInvalidSignature.txt",
            "switch/switchCertChain.txt",
        ),
    ] {
        let d = text_pair(
            &dir,
            &format!("{SDK_SAMPLES}/{report}"),
            &format!("{SDK_SAMPLES}/{chain}"),
        );
        let v = verify_gpu_evidence(
            &d.report,
            &d.chain_pem,
            None,
            None,
            at("2026-05-01T00:00:00Z"),
        );
        assert_eq!(v.verdict, Verdict::Fail, "{report}");
        assert!(v.claim("report_parsed").unwrap().status.is_verified());
        assert!(v.claim("cert_chain.valid").unwrap().status.is_verified());
        match &v.claim("signature_verified").unwrap().status {
            ClaimStatus::Failed { reason } => {
                assert!(reason.contains("does not verify"), "{reason}")
            }
            other => panic!("{report}: {other:?}"),
        }
    }
}

#[test]
fn sample_report_nonce_is_the_documented_one() {
    let Some(dir) = fixtures() else { return };
    let d = text_pair(
        &dir,
        &format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
        &format!("{NV_LOCAL}/samples/hopperCertChain.txt"),
    );
    let v = verify_gpu_evidence(
        &d.report,
        &d.chain_pem,
        Some(&nonce(SAMPLE_NONCE)),
        None,
        at("2026-11-28T00:00:00Z"),
    );
    assert_eq!(v.verdict, Verdict::Pass);
    assert_eq!(
        v.claim("driver_version").unwrap().value.to_string(),
        "550.90.07"
    );
    assert_eq!(
        v.claim("vbios_version").unwrap().value.to_string(),
        "96.00.9F.00.01"
    );
    assert_eq!(
        v.claim("hwmodel").unwrap().value.to_string(),
        "GH100 A01 GSP BROM"
    );
    assert_eq!(
        v.claim("cert_chain.expiry").unwrap().value.to_string(),
        "9999-12-31T23:59:59Z"
    );
    // This firmware predates the feature flag: CC mode is not claimed from the report.
    assert!(matches!(
        v.claim("cc_mode").unwrap().status,
        ClaimStatus::Unknown { .. }
    ));
    // Without a nonce the result is incomplete, not a pass.
    let v = verify_gpu_evidence(
        &d.report,
        &d.chain_pem,
        None,
        None,
        at("2026-11-28T00:00:00Z"),
    );
    assert_eq!(v.verdict, Verdict::Incomplete);
}

#[test]
fn show_prints_every_decoded_field() {
    let Some(dir) = fixtures() else { return };
    for (report, chain) in [
        (
            format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
            format!("{NV_LOCAL}/samples/hopperCertChain.txt"),
        ),
        (
            format!("{SDK_TESTDATA}/switchAttestationReport.txt"),
            format!("{SDK_TESTDATA}/switchCertChain.txt"),
        ),
    ] {
        let d = text_pair(&dir, &report, &chain);
        let parsed = vigil_nvidia::parse_report_input(&d.report).unwrap();
        let text = parsed.to_string();
        assert!(text.contains(&hex::encode(parsed.request.nonce)));
        assert!(text.contains(&hex::encode(parsed.response.nonce)));
        assert!(text.contains(&hex::encode(&parsed.response.signature)));
        for b in &parsed.response.blocks {
            assert!(
                text.contains(&hex::encode(&b.value)),
                "{report}: block {}",
                b.index
            );
        }
        for f in &parsed.response.opaque.fields {
            assert!(text.contains(f.name), "{report}: {}", f.name);
        }
        let v = verify_gpu_evidence(
            &d.report,
            &d.chain_pem,
            None,
            None,
            at("2026-05-01T00:00:00Z"),
        );
        let shown = v.to_string();
        for claim in v.claims.iter() {
            assert!(shown.contains(&claim.name), "{}", claim.name);
        }
        assert!(shown.contains("INCOMPLETE"));
    }
}
