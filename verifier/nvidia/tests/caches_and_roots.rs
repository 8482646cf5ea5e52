//! Caches and configured roots. Every negative case runs with the caches warm (filled by a
//! passing verification first) and must still fail; with and without caches the answers on
//! real evidence are identical; evidence under a test root passes only where that root is
//! configured, and a device root never authorises a RIM (nor a RIM root a device).

mod common;

use base64::Engine as _;
use common::forge::*;
use common::*;
use vigil_nvidia::rim::xmldsig::canonical_forms;
use vigil_nvidia::rim::{RimStore, check_rim_signature_to_roots};
use vigil_nvidia::{
    ClaimStatus, GpuCaches, GpuVerification, Verdict, VerifyOptions, parse_report,
    verify_gpu_evidence_with,
};

/// 2026-05-01: inside every validity window of the sample's chain and NVIDIA's RIM signers.
const MAY: i64 = 1_777_593_600;

const REPORT: &str = "nv-local-gpu-verifier-2.7.3/samples/hopperAttestationReport.txt";
const CHAIN: &str = "nv-local-gpu-verifier-2.7.3/samples/hopperCertChain.txt";
const DRIVER_RIM: &str = "nvidia-rims-matching/NV_GPU_DRIVER_GH100_550.90.07.swidtag";
const VBIOS_RIM: &str = "nvidia-rims-matching/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag";

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The Hopper sample's report and chain, and NVIDIA's two matching RIMs.
struct Real {
    report: Vec<u8>,
    chain: String,
    rims: RimStore,
    driver_xml: String,
    vbios_xml: String,
}

fn real(dir: &std::path::Path) -> Real {
    let driver_xml = read_text(dir, DRIVER_RIM);
    let vbios_xml = read_text(dir, VBIOS_RIM);
    let mut rims = RimStore::new();
    rims.add_xml("driver.swidtag", &driver_xml).unwrap();
    rims.add_xml("vbios.swidtag", &vbios_xml).unwrap();
    Real {
        report: read(dir, REPORT),
        chain: read_text(dir, CHAIN),
        rims,
        driver_xml,
        vbios_xml,
    }
}

/// The sample report re-signed by a device chain under a test root: the same content (so
/// NVIDIA's RIMs match it), another key.
struct Forged {
    root: Cert,
    ica: Cert,
    report: Vec<u8>,
    chain: String,
}

fn forge_device(raw_report: &[u8], leaf_not_after: i64) -> Forged {
    let raw = vigil_nvidia::input::decode_report_input(raw_report).unwrap();
    let parsed = parse_report(&raw).unwrap();
    let fwid = parsed.response.opaque.fwid().unwrap().to_vec();
    let root = issue(&Spec::ca("Vigil Test Device Root"), None);
    let ica = issue(&Spec::ca("GH100 A01 GSP BROM"), Some(&root));
    let leaf = issue(
        &Spec {
            extra: vec![(
                OID_TCG_DICE_TCB_INFO.to_vec(),
                false,
                dice_fwid_extension(&fwid),
            )],
            not_after: leaf_not_after,
            ..Spec::leaf("GH100 A01 GSP FMC LF")
        },
        Some(&ica),
    );
    let offset = parsed.response.signature_offset;
    let signed = &raw[..offset];
    let mut report = signed.to_vec();
    report.extend(leaf.key.sign_fixed(signed));
    report.extend(&raw[offset + 96..]);
    let chain = pem(&[&leaf.der, &ica.der]);
    Forged {
        root,
        ica,
        report,
        chain,
    }
}

/// `xml` (a real RIM) re-signed by a signer under `root` whose certificate ends at
/// `signer_not_after`.
fn forge_rim(xml: &str, root: &Cert, signer_not_after: i64) -> String {
    let ca = issue(&Spec::ca("Vigil Test RIM CA"), Some(root));
    let signer = issue(
        &Spec {
            not_after: signer_not_after,
            ..Spec::leaf("Vigil Test RIM Signer")
        },
        Some(&ca),
    );
    let replace_between = |text: &str, open: &str, close: &str, with: &str| {
        let start = text.find(open).unwrap() + open.len();
        let end = start + text[start..].find(close).unwrap();
        format!("{}{with}{}", &text[..start], &text[end..])
    };
    let certs = format!(
        "<ds:X509Certificate>{}</ds:X509Certificate><ds:X509Certificate>{}</ds:X509Certificate>",
        b64(&signer.der),
        b64(&ca.der)
    );
    let xml = replace_between(xml, "<ds:X509Data>", "</ds:X509Data>", &certs);
    let (document, _) = canonical_forms("forged", &xml).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA384, &document);
    let xml = replace_between(
        &xml,
        "<ds:DigestValue>",
        "</ds:DigestValue>",
        &b64(digest.as_ref()),
    );
    let (_, signed_info) = canonical_forms("forged", &xml).unwrap();
    let signature = signer.key.sign_fixed(&signed_info);
    replace_between(
        &xml,
        "<ds:SignatureValue>",
        "</ds:SignatureValue>",
        &b64(&signature),
    )
}

fn status<'a>(v: &'a GpuVerification, claim: &str) -> &'a ClaimStatus {
    &v.claim(claim)
        .unwrap_or_else(|| panic!("no claim {claim}"))
        .status
}

fn failed(v: &GpuVerification, claim: &str) -> String {
    match status(v, claim) {
        ClaimStatus::Failed { reason } => reason.clone(),
        other => panic!("{claim} should have failed: {other:?}"),
    }
}

fn json(v: &GpuVerification) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn caches_give_the_same_answers_as_no_cache_on_real_evidence() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    // In the windows, after the device chain's end, before NVIDIA's roots existed.
    for when in [MAY, MAY + 86_400, 4_102_444_800, 1_500_000_000, MAY] {
        let plain = VerifyOptions {
            expected_nonce: Some(&expected),
            rims: Some(&r.rims),
            ..VerifyOptions::at(when)
        };
        let uncached = verify_gpu_evidence_with(&r.report, &r.chain, &plain);
        for _ in 0..2 {
            let cached = verify_gpu_evidence_with(&r.report, &r.chain, &plain.with_caches(&caches));
            assert_eq!(json(&cached), json(&uncached), "at {when}");
        }
        if when == MAY {
            assert_eq!(uncached.verdict, Verdict::Pass);
        }
    }
    // Every genuine device, at a time inside and outside its windows.
    for device in genuine_devices(&dir) {
        for when in [MAY, 4_102_444_800] {
            let plain = VerifyOptions::at(when);
            let uncached = verify_gpu_evidence_with(&device.report, &device.chain_pem, &plain);
            let cached = verify_gpu_evidence_with(
                &device.report,
                &device.chain_pem,
                &plain.with_caches(&caches),
            );
            assert_eq!(json(&cached), json(&uncached), "{} at {when}", device.name);
        }
    }
    let chains = caches.chains.stats();
    let rims = caches.rims.stats();
    assert!(chains.hits > 0 && chains.misses > 0, "{chains:?}");
    assert!(rims.hits > 0 && rims.misses > 0, "{rims:?}");
    assert!(caches.rims.chain_stats().hits > 0);
}

#[test]
fn a_flipped_report_byte_fails_with_warm_caches() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let options = VerifyOptions {
        expected_nonce: Some(&expected),
        rims: Some(&r.rims),
        ..VerifyOptions::at(MAY)
    }
    .with_caches(&caches);
    assert_eq!(
        verify_gpu_evidence_with(&r.report, &r.chain, &options).verdict,
        Verdict::Pass
    );
    let raw = vigil_nvidia::input::decode_report_input(&r.report).unwrap();
    let signature_offset = parse_report(&raw).unwrap().response.signature_offset;
    let flip = |pos: usize| {
        let mut bytes = raw.clone();
        bytes[pos] ^= 0x01;
        bytes
    };
    // A measured byte that still parses, and a signature byte.
    let measured = (300..raw.len())
        .find(|&pos| parse_report(&flip(pos)).is_ok())
        .unwrap();
    for pos in [measured, signature_offset + 5] {
        let flipped = flip(pos);
        let v = verify_gpu_evidence_with(&flipped, &r.chain, &options);
        assert_eq!(v.verdict, Verdict::Fail, "byte {pos}");
        failed(&v, "signature_verified");
    }
    assert!(caches.chains.stats().hits >= 2);
    // The genuine report still passes: a failure poisons nothing.
    assert_eq!(
        verify_gpu_evidence_with(&r.report, &r.chain, &options).verdict,
        Verdict::Pass
    );
}

#[test]
fn evidence_under_a_test_root_passes_only_where_that_root_is_configured() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let f = forge_device(&r.report, 4_000_000_000);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let test_root = vec![f.root.der.clone()];
    let base = VerifyOptions {
        expected_nonce: Some(&expected),
        rims: Some(&r.rims),
        ..VerifyOptions::at(MAY)
    };
    for options in [base, base.with_caches(&caches)] {
        // By default only NVIDIA's root is trusted.
        let v = verify_gpu_evidence_with(&f.report, &f.chain, &options);
        assert_eq!(v.verdict, Verdict::Fail);
        let reason = failed(&v, "cert_chain.valid");
        assert!(reason.contains("Vigil Test Device Root"), "{reason}");
        // Configured as a device root: the forged device passes, NVIDIA's RIMs still verify.
        let configured = VerifyOptions {
            device_roots: Some(&test_root),
            ..options
        };
        let v = verify_gpu_evidence_with(&f.report, &f.chain, &configured);
        assert_eq!(v.verdict, Verdict::Pass, "{:#?}", v.claims);
        // ... and the real device, chained to NVIDIA's root, no longer does.
        let v = verify_gpu_evidence_with(&r.report, &r.chain, &configured);
        failed(&v, "cert_chain.valid");
        // Configured as a RIM root only: the device chain is still refused.
        let rim_only = VerifyOptions {
            rim_roots: Some(&test_root),
            ..options
        };
        let v = verify_gpu_evidence_with(&f.report, &f.chain, &rim_only);
        failed(&v, "cert_chain.valid");
        // Both NVIDIA's root and the test root: both devices pass.
        let both = vec![vigil_nvidia::roots::device_root_der(), f.root.der.clone()];
        let either = VerifyOptions {
            device_roots: Some(&both),
            ..options
        };
        for (report, chain) in [(&f.report, &f.chain), (&r.report, &r.chain)] {
            let v = verify_gpu_evidence_with(report, chain, &either);
            assert_eq!(v.verdict, Verdict::Pass, "{:#?}", v.claims);
        }
    }
    // The chain cached under the test root does not answer for NVIDIA's root.
    assert!(!caches.chains.is_empty());
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &base.with_caches(&caches));
    failed(&v, "cert_chain.valid");
}

#[test]
fn a_device_root_does_not_authorise_rims() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let f = forge_device(&r.report, 4_000_000_000);
    let forged_driver = forge_rim(&r.driver_xml, &f.root, 4_000_000_000);
    let test_root = vec![f.root.der.clone()];
    let check = check_rim_signature_to_roots("forged", &forged_driver, &test_root, MAY);
    assert!(check.signature.is_ok() && check.chain.is_ok(), "{check:?}");
    let mut rims = RimStore::new();
    rims.add_xml("forged-driver.swidtag", &forged_driver)
        .unwrap();
    rims.add_xml("vbios.swidtag", &r.vbios_xml).unwrap();
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let base = VerifyOptions {
        expected_nonce: Some(&expected),
        rims: Some(&rims),
        device_roots: Some(&test_root),
        ..VerifyOptions::at(MAY)
    };
    for options in [base, base.with_caches(&caches), base.with_caches(&caches)] {
        // The test root is trusted for devices only: the RIM it signed is refused.
        let v = verify_gpu_evidence_with(&f.report, &f.chain, &options);
        assert!(status(&v, "cert_chain.valid").is_verified());
        let reason = failed(&v, "driver_rim.cert_chain.valid");
        assert!(reason.contains("Vigil Test RIM CA"), "{reason}");
        assert_ne!(v.verdict, Verdict::Pass);
        // Trusted for RIMs too (with NVIDIA's RIM root for the VBIOS RIM): everything passes.
        let rim_roots = vec![vigil_nvidia::roots::rim_root_der(), f.root.der.clone()];
        let v = verify_gpu_evidence_with(
            &f.report,
            &f.chain,
            &VerifyOptions {
                rim_roots: Some(&rim_roots),
                ..options
            },
        );
        assert_eq!(v.verdict, Verdict::Pass, "{:#?}", v.claims);
    }
}

#[test]
fn a_rim_that_expires_between_two_verifications_fails_the_second() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let f = forge_device(&r.report, 4_000_000_000);
    let forged_driver = forge_rim(&r.driver_xml, &f.root, MAY + 1000);
    let mut rims = RimStore::new();
    rims.add_xml("forged-driver.swidtag", &forged_driver)
        .unwrap();
    rims.add_xml("vbios.swidtag", &r.vbios_xml).unwrap();
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let device_roots = vec![f.root.der.clone()];
    let rim_roots = vec![vigil_nvidia::roots::rim_root_der(), f.root.der.clone()];
    let at = |when| {
        VerifyOptions {
            expected_nonce: Some(&expected),
            rims: Some(&rims),
            device_roots: Some(&device_roots),
            rim_roots: Some(&rim_roots),
            ..VerifyOptions::at(when)
        }
        .with_caches(&caches)
    };
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &at(MAY));
    assert_eq!(v.verdict, Verdict::Pass, "{:#?}", v.claims);
    assert_eq!(caches.rims.len(), 2);
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &at(MAY + 2000));
    let reason = failed(&v, "driver_rim.cert_chain.valid");
    assert!(reason.contains("not valid at"), "{reason}");
    assert_ne!(v.verdict, Verdict::Pass);
    // The VBIOS RIM (NVIDIA's signer, still valid) came from the cache.
    assert!(caches.rims.stats().hits >= 2, "{:?}", caches.rims.stats());
}

#[test]
fn a_leaf_that_expired_at_the_later_time_fails_with_a_warm_chain_cache() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let f = forge_device(&r.report, MAY + 1000);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let roots = vec![f.root.der.clone()];
    let at = |when| {
        VerifyOptions {
            expected_nonce: Some(&expected),
            device_roots: Some(&roots),
            ..VerifyOptions::at(when)
        }
        .with_caches(&caches)
    };
    assert_eq!(
        verify_gpu_evidence_with(&f.report, &f.chain, &at(MAY)).verdict,
        Verdict::Pass
    );
    assert_eq!(
        verify_gpu_evidence_with(&f.report, &f.chain, &at(MAY + 500)).verdict,
        Verdict::Pass
    );
    assert_eq!(caches.chains.stats().hits, 1);
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &at(MAY + 2000));
    assert_eq!(v.verdict, Verdict::Fail);
    let reason = failed(&v, "cert_chain.valid");
    assert!(
        reason.contains("certificate 0") && reason.contains("not valid at"),
        "{reason}"
    );
    // The expired entry was dropped, not kept for later.
    assert!(caches.chains.is_empty());
}

#[test]
fn a_revoked_intermediate_fails_with_a_warm_chain_cache() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let f = forge_device(&r.report, 4_000_000_000);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let roots = vec![f.root.der.clone()];
    let good = vec![ocsp_response(&Ocsp::good(&f.ica, &f.root, MAY))];
    let revoked = vec![ocsp_response(&Ocsp {
        status: Status::Revoked(MAY - 60, 1),
        ..Ocsp::good(&f.ica, &f.root, MAY)
    })];
    let with = |responses| {
        VerifyOptions {
            expected_nonce: Some(&expected),
            device_roots: Some(&roots),
            ocsp_responses: responses,
            ..VerifyOptions::at(MAY)
        }
        .with_caches(&caches)
    };
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &with(&good));
    assert_eq!(v.verdict, Verdict::Pass);
    assert!(status(&v, "cert_chain.revocation").is_verified());
    let v = verify_gpu_evidence_with(&f.report, &f.chain, &with(&revoked));
    assert_eq!(caches.chains.stats().hits, 1);
    assert_eq!(v.verdict, Verdict::Fail);
    let reason = failed(&v, "cert_chain.revocation");
    assert!(reason.contains("certificate 1 was revoked"), "{reason}");
}

#[test]
fn cache_counters_count_hits_and_misses() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let options = VerifyOptions {
        expected_nonce: Some(&expected),
        rims: Some(&r.rims),
        ..VerifyOptions::at(MAY)
    }
    .with_caches(&caches);
    for _ in 0..3 {
        verify_gpu_evidence_with(&r.report, &r.chain, &options);
    }
    let chains = caches.chains.stats();
    assert_eq!((chains.hits, chains.misses, chains.entries), (2, 1, 1));
    let rims = caches.rims.stats();
    assert_eq!((rims.hits, rims.misses, rims.entries), (4, 2, 2));
    caches.clear();
    assert!(caches.chains.is_empty() && caches.rims.is_empty());
}

#[test]
fn parallel_verifications_share_the_caches() {
    let Some(dir) = fixtures() else { return };
    let r = real(&dir);
    let expected = nonce(SAMPLE_NONCE);
    let caches = GpuCaches::new();
    let plain = VerifyOptions {
        expected_nonce: Some(&expected),
        rims: Some(&r.rims),
        ..VerifyOptions::at(MAY)
    };
    let reference = json(&verify_gpu_evidence_with(&r.report, &r.chain, &plain));
    let options = plain.with_caches(&caches);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..5)
                        .map(|_| json(&verify_gpu_evidence_with(&r.report, &r.chain, &options)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            for result in worker.join().unwrap() {
                assert_eq!(result, reference);
            }
        }
    });
    let chains = caches.chains.stats();
    assert_eq!(chains.hits + chains.misses, 20);
    assert_eq!(chains.entries, 1);
}
