//! Vigil's own negative tests on real evidence: every altered byte, a wrong nonce, another
//! device's chain, a chain to the wrong root, an expired verification time, truncated,
//! oversized and randomly mutated inputs. Nothing may panic and nothing may pass.

mod common;

use common::*;
use vigil_nvidia::signature::verify_report_signature;
use vigil_nvidia::spdm::{ReportError, parse_report};
use vigil_nvidia::{ClaimStatus, Verdict, parse_report_input, verify_gpu_evidence};

struct Sample {
    raw: Vec<u8>,
    text: Vec<u8>,
    chain: String,
    leaf: Vec<u8>,
}

fn sample(dir: &std::path::Path) -> Sample {
    let text = read(
        dir,
        &format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
    );
    let chain = read_text(dir, &format!("{NV_LOCAL}/samples/hopperCertChain.txt"));
    let leaf = vigil_nvidia::chain::pem_certificates(&chain)
        .unwrap()
        .remove(0);
    let raw = vigil_nvidia::input::decode_report_input(&text).unwrap();
    Sample {
        raw,
        text,
        chain,
        leaf,
    }
}

const MAY: i64 = 1_777_593_600; // 2026-05-01T00:00:00Z

/// Every byte outside the measurement record, and every 16th byte inside it (the record is
/// 3520 bytes of digests; each check costs an ECDSA verification in a debug build).
#[test]
fn flipped_bytes_in_every_field_are_caught() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let record = 37 + 8..37 + 8 + 3520;
    let positions: Vec<usize> = (0..s.raw.len())
        .filter(|p| !record.contains(p) || (p - record.start) % 16 == 0)
        .collect();
    let mut parse_errors = 0;
    for &pos in &positions {
        let mut bytes = s.raw.clone();
        bytes[pos] ^= 0x01;
        match parse_report(&bytes) {
            Err(_) => parse_errors += 1,
            Ok(report) => assert!(
                verify_report_signature(&report, &s.leaf).is_err(),
                "flipping byte {pos} went unnoticed"
            ),
        }
    }
    eprintln!(
        "{} flipped bytes: {parse_errors} refused by the parser, the rest by the signature",
        positions.len()
    );
}

#[test]
fn wrong_nonce_fails() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let mut wrong = nonce(SAMPLE_NONCE);
    wrong[31] ^= 0xff;
    let v = verify_gpu_evidence(&s.text, &s.chain, Some(&wrong), None, MAY);
    assert_eq!(v.verdict, Verdict::Fail);
    assert!(
        matches!(&v.claim("nonce_match").unwrap().status, ClaimStatus::Failed { reason } if reason.contains("not the expected"))
    );
    // Everything else still verifies: the failure is the nonce alone.
    assert!(v.claim("signature_verified").unwrap().status.is_verified());
    // Another fixture's (validly signed) report carries its own nonce, not ours.
    let other = read(&dir, &format!("{SDK_TESTDATA}/hopperAttestationReport.txt"));
    let other_chain = read_text(&dir, &format!("{SDK_TESTDATA}/hopperCertChain.txt"));
    let v = verify_gpu_evidence(&other, &other_chain, Some(&nonce(SAMPLE_NONCE)), None, MAY);
    assert!(v.claim("nonce_match").unwrap().status.is_failed());
}

#[test]
fn another_devices_chain_fails_signature_and_fwid() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let other = read_text(&dir, &format!("{SDK_SAMPLES}/gpu/blackwellCertChain.txt"));
    let v = verify_gpu_evidence(&s.text, &other, Some(&nonce(SAMPLE_NONCE)), None, MAY);
    assert_eq!(v.verdict, Verdict::Fail);
    assert!(v.claim("cert_chain.valid").unwrap().status.is_verified());
    assert!(v.claim("signature_verified").unwrap().status.is_failed());
    assert!(
        matches!(&v.claim("fwid_match").unwrap().status, ClaimStatus::Failed { reason } if reason.contains("differs"))
    );
    // A GPU report with an NVSwitch chain: the device kinds disagree too.
    let switch = read_text(&dir, &format!("{SDK_TESTDATA}/switchCertChain.txt"));
    let v = verify_gpu_evidence(&s.text, &switch, None, None, MAY);
    assert!(v.claim("arch").unwrap().status.is_failed());
}

#[test]
fn chain_to_the_rim_root_is_refused() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    // The RIM signer's chain (ends at NVIDIA's RIM root) offered as a device chain.
    let rim = read_text(
        &dir,
        &format!("{RIMS_MATCHING}/NV_GPU_DRIVER_GH100_550.90.07.swidtag"),
    );
    let ders: Vec<Vec<u8>> = rim
        .split("<ds:X509Certificate>")
        .skip(1)
        .map(|part| vigil_nvidia::base64::decode(part.split('<').next().unwrap(), 1 << 16).unwrap())
        .collect();
    let pem = forge::pem(&ders.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let v = verify_gpu_evidence(&s.text, &pem, Some(&nonce(SAMPLE_NONCE)), None, MAY);
    assert_eq!(v.verdict, Verdict::Fail);
    match &v.claim("cert_chain.valid").unwrap().status {
        ClaimStatus::Failed { reason } => {
            assert!(reason.contains("neither the pinned root"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn verification_after_expiry_fails() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let year_10000 = 253_402_300_800;
    let v = verify_gpu_evidence(
        &s.text,
        &s.chain,
        Some(&nonce(SAMPLE_NONCE)),
        None,
        year_10000,
    );
    assert_eq!(v.verdict, Verdict::Fail);
    match &v.claim("cert_chain.valid").unwrap().status {
        ClaimStatus::Failed { reason } => assert!(
            reason.contains("is not valid at 10000-01-01T00:00:00Z"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let before = vigil_nvidia::parse_rfc3339("2020-10-16T23:59:59Z").unwrap();
    let v = verify_gpu_evidence(&s.text, &s.chain, Some(&nonce(SAMPLE_NONCE)), None, before);
    assert!(v.claim("cert_chain.valid").unwrap().status.is_failed());
}

#[test]
fn every_truncation_is_a_located_error() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    for len in 0..s.raw.len() {
        let err = parse_report(&s.raw[..len]).expect_err("truncated report parsed");
        if let ReportError::Truncated { offset, .. } | ReportError::SignatureLength { offset, .. } =
            err
        {
            assert!(offset <= len, "offset {offset} beyond {len}");
        }
    }
    for len in 0..s.text.len() {
        assert!(parse_report_input(&s.text[..len]).is_err());
    }
    for len in (0..s.text.len()).step_by(499) {
        let v = verify_gpu_evidence(&s.text[..len], &s.chain, None, None, MAY);
        assert_eq!(v.verdict, Verdict::Fail);
    }
}

#[test]
fn oversized_and_trailing_input_is_refused() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let mut longer = s.raw.clone();
    longer.push(0);
    assert!(matches!(
        parse_report(&longer),
        Err(ReportError::SignatureLength { found: 97, .. })
    ));
    let huge = vec![0x11u8; vigil_nvidia::input::MAX_REPORT_BYTES + 1];
    assert!(matches!(
        parse_report_input(&huge),
        Err(ReportError::TooLarge { .. })
    ));
}

/// Sets bytes at `pos` and parses.
fn mutated(
    raw: &[u8],
    pos: usize,
    bytes: &[u8],
) -> Result<vigil_nvidia::AttestationReport, ReportError> {
    let mut m = raw.to_vec();
    m[pos..pos + bytes.len()].copy_from_slice(bytes);
    parse_report(&m)
}

#[test]
fn structural_mutations_name_the_field() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let r = 37; // response offset
    assert!(matches!(
        mutated(&s.raw, 0, &[0x10]),
        Err(ReportError::UnsupportedVersion { offset: 0, .. })
    ));
    assert!(matches!(
        mutated(&s.raw, 1, &[0x60]),
        Err(ReportError::UnexpectedCode { offset: 1, .. })
    ));
    assert!(matches!(
        mutated(&s.raw, 2, &[0x00]),
        Err(ReportError::SignatureNotRequested { offset: 2, .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r, &[0x12]),
        Err(ReportError::VersionMismatch { .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 1, &[0xe0]),
        Err(ReportError::UnexpectedCode { .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 4, &[0]),
        Err(ReportError::NoBlocks { .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 4, &[65]),
        Err(ReportError::Truncated { .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 4, &[63]),
        Err(ReportError::RecordLengthMismatch { .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 5, &[0xff, 0xff, 0xff]),
        Err(ReportError::Truncated {
            field: "response MeasurementRecord",
            ..
        })
    ));
    // First block: index 1 at offset 45; make it 2 (a duplicate of the next), 0 and non-DMTF.
    assert!(matches!(
        mutated(&s.raw, r + 8, &[2]),
        Err(ReportError::DuplicateBlockIndex { block: 1, .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 8, &[0]),
        Err(ReportError::ReservedBlockIndex { block: 0, .. })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 9, &[0x02]),
        Err(ReportError::NotDmtfMeasurement {
            block: 0,
            offset: 45,
            ..
        })
    ));
    assert!(matches!(
        mutated(&s.raw, r + 13, &[49]),
        Err(ReportError::BlockSizeMismatch { block: 0, .. })
    ));
    // Opaque data length beyond the report.
    let opaque_len_at = r + 8 + 3520 + 32;
    assert!(matches!(
        mutated(&s.raw, opaque_len_at, &[0xff, 0xff]),
        Err(ReportError::Truncated {
            field: "response OpaqueData",
            ..
        })
    ));
}

#[test]
fn random_mutations_never_panic_and_never_pass() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cache = vigil_nvidia::ChainCache::new();
    let expected = nonce(SAMPLE_NONCE);
    let options = vigil_nvidia::VerifyOptions {
        expected_nonce: Some(&expected),
        chain_cache: Some(&cache),
        ..vigil_nvidia::VerifyOptions::at(MAY)
    };
    for _ in 0..300 {
        let mut m = s.raw.clone();
        for _ in 0..=(next() % 4) {
            let pos = (next() as usize) % m.len();
            m[pos] = next() as u8;
        }
        if next() % 3 == 0 {
            let len = (next() as usize) % m.len();
            m.truncate(len);
        }
        let v = vigil_nvidia::verify_gpu_evidence_with(&m, &s.chain, &options);
        if m != s.raw {
            assert_ne!(v.verdict, Verdict::Pass);
        }
    }
}

#[test]
fn garbage_chain_fails_without_panicking() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    for chain in [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let v = verify_gpu_evidence(&s.text, chain, Some(&nonce(SAMPLE_NONCE)), None, MAY);
        assert_eq!(v.verdict, Verdict::Fail, "{chain:?}");
        assert!(v.claim("cert_chain.valid").unwrap().status.is_failed());
        assert!(!v.claim("signature_verified").unwrap().status.is_verified());
    }
}

#[test]
fn verification_serializes_to_json_claims() {
    let Some(dir) = fixtures() else { return };
    let s = sample(&dir);
    let v = verify_gpu_evidence(&s.text, &s.chain, Some(&nonce(SAMPLE_NONCE)), None, MAY);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["device"], "hopper");
    let claims = json["claims"].as_array().unwrap();
    let sig = claims
        .iter()
        .find(|c| c["name"] == "gpu.signature_verified")
        .unwrap();
    assert_eq!(sig["status"], "verified");
    assert_eq!(sig["value"], true);
    let rev = claims
        .iter()
        .find(|c| c["name"] == "gpu.cert_chain.revocation")
        .unwrap();
    assert_eq!(rev["status"], "unknown");
    assert_eq!(json["report"]["request"]["nonce"], SAMPLE_NONCE);
    assert_eq!(
        json["report"]["response"]["blocks"]
            .as_array()
            .unwrap()
            .len(),
        64
    );
}
