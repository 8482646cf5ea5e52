//! OCSP responses checked offline, each check made to fail on forged responses: the
//! signer (issuer, delegated responder, stranger), the CertID, freshness, the nonce, the
//! response status and malformed input. Without a verified response the status is unknown.

mod common;

use common::forge::*;
use common::*;
use vigil_nvidia::ocsp::{CertStatus, OcspError, check_ocsp_response};
use vigil_nvidia::{ClaimStatus, VerifyOptions, verify_gpu_evidence_with};

const NOW: i64 = 1_780_000_000;

fn pki() -> (Cert, Cert, Cert) {
    let root = issue(&Spec::ca("Root"), None);
    let ica = issue(&Spec::ca("Device Identity"), Some(&root));
    let leaf = issue(&Spec::leaf("Device"), Some(&ica));
    (root, ica, leaf)
}

fn check(spec: &Ocsp<'_>, at: i64) -> Result<CertStatus, OcspError> {
    check_ocsp_response(
        &ocsp_response(spec),
        &spec.cert.der,
        &spec.issuer.der,
        at,
        None,
    )
    .map(|s| s.status)
}

#[test]
fn issuer_signed_responses_give_the_status() {
    let (_, ica, leaf) = pki();
    assert_eq!(
        check(&Ocsp::good(&leaf, &ica, NOW), NOW),
        Ok(CertStatus::Good)
    );
    assert_eq!(
        check(
            &Ocsp {
                by_key: true,
                sha1: true,
                ..Ocsp::good(&leaf, &ica, NOW)
            },
            NOW
        ),
        Ok(CertStatus::Good)
    );
    assert_eq!(
        check(
            &Ocsp {
                status: Status::Revoked(NOW - 86_400, 6),
                ..Ocsp::good(&leaf, &ica, NOW)
            },
            NOW
        ),
        Ok(CertStatus::Revoked {
            revoked_at: vigil_nvidia::format_rfc3339(NOW - 86_400),
            reason: Some(6)
        })
    );
    assert_eq!(
        check(
            &Ocsp {
                status: Status::Unknown,
                ..Ocsp::good(&leaf, &ica, NOW)
            },
            NOW
        ),
        Ok(CertStatus::Unknown)
    );
}

#[test]
fn freshness_is_checked_at_the_given_time() {
    let (_, ica, leaf) = pki();
    let spec = Ocsp::good(&leaf, &ica, NOW);
    assert!(matches!(
        check(&spec, NOW + 3601),
        Err(OcspError::Stale { .. })
    ));
    assert!(matches!(
        check(&spec, NOW - 3600 - 301),
        Err(OcspError::Stale { .. })
    ));
    let no_next = Ocsp {
        next_update: None,
        ..Ocsp::good(&leaf, &ica, NOW)
    };
    assert_eq!(check(&no_next, NOW + 86_400), Ok(CertStatus::Good));
    assert!(matches!(
        check(&no_next, NOW + 8 * 86_400),
        Err(OcspError::Stale { .. })
    ));
}

#[test]
fn only_the_issuer_or_its_delegate_may_sign() {
    let (root, ica, leaf) = pki();
    let stranger = issue(&Spec::ca("Stranger"), None);
    assert!(matches!(
        check(
            &Ocsp {
                signer: &stranger,
                ..Ocsp::good(&leaf, &ica, NOW)
            },
            NOW
        ),
        Err(OcspError::Responder(_))
    ));
    let eku = seq(&[tlv(0x06, OID_KP_OCSP_SIGNING)]);
    let delegate = issue(
        &Spec {
            extra: vec![(OID_EXT_KEY_USAGE.to_vec(), false, eku.clone())],
            ..Spec::leaf("OCSP Responder")
        },
        Some(&ica),
    );
    let ok = Ocsp {
        signer: &delegate,
        embed: vec![&delegate.der],
        ..Ocsp::good(&leaf, &ica, NOW)
    };
    assert_eq!(check(&ok, NOW), Ok(CertStatus::Good));
    // Without id-kp-OCSPSigning, or issued by someone else, the delegate is refused.
    let no_eku = issue(&Spec::leaf("OCSP Responder"), Some(&ica));
    let bad = Ocsp {
        signer: &no_eku,
        embed: vec![&no_eku.der],
        ..Ocsp::good(&leaf, &ica, NOW)
    };
    assert!(matches!(check(&bad, NOW), Err(OcspError::Responder(r)) if r.contains("OCSPSigning")));
    let foreign = issue(
        &Spec {
            extra: vec![(OID_EXT_KEY_USAGE.to_vec(), false, eku)],
            ..Spec::leaf("OCSP Responder")
        },
        Some(&root),
    );
    let bad = Ocsp {
        signer: &foreign,
        embed: vec![&foreign.der],
        ..Ocsp::good(&leaf, &ica, NOW)
    };
    assert!(matches!(check(&bad, NOW), Err(OcspError::Responder(_))));
}

#[test]
fn tampered_or_foreign_responses_fail() {
    let (root, ica, leaf) = pki();
    let response = ocsp_response(&Ocsp::good(&leaf, &ica, NOW));
    // A byte inside the signed ResponseData (the thisUpdate digits near the end of it).
    let pos = response
        .windows(3)
        .position(|w| w == [0x18, 0x0f, b'2'])
        .unwrap()
        + 10;
    let mut bad = response.clone();
    bad[pos] ^= 0x01;
    assert_eq!(
        check_ocsp_response(&bad, &leaf.der, &ica.der, NOW, None),
        Err(OcspError::BadSignature)
    );
    // The response is about the leaf, not about the intermediate.
    assert!(matches!(
        check_ocsp_response(&response, &ica.der, &root.der, NOW, None),
        Err(OcspError::NotForCertificate { .. }) | Err(OcspError::Responder(_))
    ));
    let other_leaf = issue(&Spec::leaf("Device"), Some(&ica));
    assert!(matches!(
        check_ocsp_response(&response, &other_leaf.der, &ica.der, NOW, None),
        Err(OcspError::NotForCertificate { .. })
    ));
    let error = Ocsp {
        response_status: 1,
        ..Ocsp::good(&leaf, &ica, NOW)
    };
    assert_eq!(check(&error, NOW), Err(OcspError::NotSuccessful(1)));
    for len in 0..response.len() {
        assert!(check_ocsp_response(&response[..len], &leaf.der, &ica.der, NOW, None).is_err());
    }
    assert!(matches!(
        check_ocsp_response(&vec![0; 70_000], &leaf.der, &ica.der, NOW, None),
        Err(OcspError::TooLarge { .. })
    ));
}

#[test]
fn nonce_must_match_when_asked() {
    let (_, ica, leaf) = pki();
    let response = ocsp_response(&Ocsp {
        nonce: Some(vec![7; 16]),
        ..Ocsp::good(&leaf, &ica, NOW)
    });
    assert!(check_ocsp_response(&response, &leaf.der, &ica.der, NOW, Some(&[7; 16])).is_ok());
    assert!(matches!(
        check_ocsp_response(&response, &leaf.der, &ica.der, NOW, Some(&[8; 16])),
        Err(OcspError::NonceMismatch { .. })
    ));
    let without = ocsp_response(&Ocsp::good(&leaf, &ica, NOW));
    assert!(check_ocsp_response(&without, &leaf.der, &ica.der, NOW, Some(&[7; 16])).is_err());
}

#[test]
fn real_chain_revocation_is_unknown_without_a_verified_response() {
    let Some(dir) = fixtures() else { return };
    let report = read(
        &dir,
        &format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
    );
    let chain = read_text(&dir, &format!("{NV_LOCAL}/samples/hopperCertChain.txt"));
    let expected = nonce(SAMPLE_NONCE);
    // A response that NVIDIA did not sign (and that is about another certificate).
    let (_, ica, leaf) = pki();
    let responses = vec![
        ocsp_response(&Ocsp::good(&leaf, &ica, NOW)),
        b"garbage".to_vec(),
    ];
    let options = VerifyOptions {
        expected_nonce: Some(&expected),
        ocsp_responses: &responses,
        ..VerifyOptions::at(NOW)
    };
    let v = verify_gpu_evidence_with(&report, &chain, &options);
    match &v.claim("cert_chain.revocation").unwrap().status {
        ClaimStatus::Unknown { reason } => assert!(reason.contains("certificate 1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Unknown revocation does not fail the device, and is never reported as good.
    assert_eq!(v.verdict, vigil_nvidia::Verdict::Pass);
}
