//! Each certificate-chain check made to fail, on forged chains (fresh P-384 keys) and on
//! real NVIDIA chains: wrong root, missing or reordered links, expiry at both ends, non-CA
//! issuers, key usage, path length, unknown critical extensions, and the cache.

mod common;

use common::forge::*;
use common::*;
use vigil_nvidia::chain::{
    ChainCache, ChainError, pem_certificates, verify_chain, verify_chain_to_roots,
};
use vigil_nvidia::roots::{device_root_der, rim_root_der};

const NOW: i64 = 1_780_000_000; // 2026-05-28

fn three_level(leaf_spec: Spec<'_>, ica_spec: Spec<'_>) -> (Cert, Cert, Cert) {
    let root = issue(&Spec::ca("Test Root"), None);
    let ica = issue(&ica_spec, Some(&root));
    let leaf = issue(&leaf_spec, Some(&ica));
    (root, ica, leaf)
}

#[test]
fn forged_chain_verifies_to_its_own_root_only() {
    let (root, ica, leaf) = three_level(Spec::leaf("Leaf"), Spec::ca("ICA"));
    let chain = vec![leaf.der.clone(), ica.der.clone()];
    let v = verify_chain(&chain, &root.der, NOW).unwrap();
    assert_eq!(v.certificates.len(), 3);
    assert!(!v.root_supplied);
    // Same chain with the root included.
    let with_root = vec![leaf.der.clone(), ica.der.clone(), root.der.clone()];
    assert!(
        verify_chain(&with_root, &root.der, NOW)
            .unwrap()
            .root_supplied
    );
    // To NVIDIA's pinned root it is untrusted.
    assert!(matches!(
        verify_chain(&with_root, &device_root_der(), NOW),
        Err(ChainError::UntrustedRoot { .. })
    ));
    assert!(matches!(
        verify_chain(&chain, &device_root_der(), NOW),
        Err(ChainError::NameMismatch { index: 1, .. })
    ));
}

#[test]
fn issuer_that_is_not_a_ca_is_refused() {
    for ica_spec in [
        Spec {
            basic_constraints: None,
            ..Spec::ca("ICA")
        },
        Spec {
            basic_constraints: Some((false, None)),
            ..Spec::ca("ICA")
        },
    ] {
        let (root, ica, leaf) = three_level(Spec::leaf("Leaf"), ica_spec);
        assert!(matches!(
            verify_chain(&[leaf.der, ica.der], &root.der, NOW),
            Err(ChainError::NotCa { index: 1, .. })
        ));
    }
}

#[test]
fn key_usage_is_enforced() {
    let (root, ica, leaf) = three_level(
        Spec::leaf("Leaf"),
        Spec {
            key_usage: Some(KU_DIGITAL_SIGNATURE),
            ..Spec::ca("ICA")
        },
    );
    assert!(matches!(
        verify_chain(&[leaf.der, ica.der], &root.der, NOW),
        Err(ChainError::KeyUsage {
            index: 1,
            needed: "keyCertSign",
            ..
        })
    ));
    let (root, ica, leaf) = three_level(
        Spec {
            key_usage: Some(KU_KEY_CERT_SIGN),
            ..Spec::leaf("Leaf")
        },
        Spec::ca("ICA"),
    );
    assert!(matches!(
        verify_chain(&[leaf.der, ica.der], &root.der, NOW),
        Err(ChainError::KeyUsage {
            index: 0,
            needed: "digitalSignature",
            ..
        })
    ));
}

#[test]
fn path_length_constraint_is_enforced() {
    let root = issue(
        &Spec {
            basic_constraints: Some((true, Some(0))),
            ..Spec::ca("Root0")
        },
        None,
    );
    let ica = issue(&Spec::ca("ICA"), Some(&root));
    let leaf = issue(&Spec::leaf("Leaf"), Some(&ica));
    assert!(matches!(
        verify_chain(&[leaf.der.clone(), ica.der.clone()], &root.der, NOW),
        Err(ChainError::PathLength { .. })
    ));
    // Directly under the root, path length 0 is fine.
    let leaf2 = issue(&Spec::leaf("Leaf2"), Some(&root));
    assert!(verify_chain(&[leaf2.der], &root.der, NOW).is_ok());
}

#[test]
fn unknown_critical_extension_is_refused_but_non_critical_is_fine() {
    let oid = vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x99, 0x01];
    let root = issue(&Spec::ca("Root"), None);
    let bad = issue(
        &Spec {
            extra: vec![(oid.clone(), true, vec![0x05, 0x00])],
            ..Spec::leaf("L")
        },
        Some(&root),
    );
    assert!(matches!(
        verify_chain(&[bad.der], &root.der, NOW),
        Err(ChainError::UnknownCriticalExtension { index: 0, .. })
    ));
    let ok = issue(
        &Spec {
            extra: vec![(oid, false, vec![0x05, 0x00])],
            ..Spec::leaf("L")
        },
        Some(&root),
    );
    assert!(verify_chain(&[ok.der], &root.der, NOW).is_ok());
}

#[test]
fn validity_is_checked_at_the_given_time_for_every_certificate() {
    let (root, ica, leaf) = three_level(
        Spec {
            not_before: NOW - 100,
            not_after: NOW + 100,
            ..Spec::leaf("Leaf")
        },
        Spec::ca("ICA"),
    );
    let chain = vec![leaf.der, ica.der];
    assert!(verify_chain(&chain, &root.der, NOW).is_ok());
    for when in [NOW - 101, NOW + 101] {
        match verify_chain(&chain, &root.der, when) {
            Err(ChainError::NotValidAt { index: 0, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    // An expired intermediate fails too.
    let (root, ica, leaf) = three_level(
        Spec::leaf("Leaf"),
        Spec {
            not_after: NOW - 1,
            ..Spec::ca("ICA")
        },
    );
    assert!(matches!(
        verify_chain(&[leaf.der, ica.der], &root.der, NOW),
        Err(ChainError::NotValidAt { index: 1, .. })
    ));
}

#[test]
fn tampered_certificate_signature_fails() {
    let (root, ica, leaf) = three_level(Spec::leaf("Leaf"), Spec::ca("ICA"));
    let mut bad = leaf.der.clone();
    let last = bad.len() - 5;
    bad[last] ^= 0x01;
    assert!(matches!(
        verify_chain(&[bad, ica.der], &root.der, NOW),
        Err(ChainError::BadSignature { index: 0, .. })
    ));
}

#[test]
fn real_gpu_chain_checks() {
    let Some(dir) = fixtures() else { return };
    let pem = read_text(&dir, &format!("{NV_LOCAL}/samples/hopperCertChain.txt"));
    let certs = pem_certificates(&pem).unwrap();
    assert_eq!(certs.len(), 5);
    let when = at("2026-05-01T00:00:00Z");
    let ok = verify_chain(&certs, &device_root_der(), when).unwrap();
    assert!(ok.root_supplied);
    assert!(ok.certificates[0].subject.contains("GH100 A01 GSP FMC LF"));
    // Without the root certificate, the pinned root completes the chain.
    assert!(
        !verify_chain(&certs[..4], &device_root_der(), when)
            .unwrap()
            .root_supplied
    );
    // To the RIM root it does not verify.
    assert!(matches!(
        verify_chain(&certs, &rim_root_der(), when),
        Err(ChainError::UntrustedRoot { .. })
    ));
    // A missing intermediate or a reordered chain breaks the name links.
    let gap = vec![
        certs[0].clone(),
        certs[2].clone(),
        certs[3].clone(),
        certs[4].clone(),
    ];
    assert!(matches!(
        verify_chain(&gap, &device_root_der(), when),
        Err(ChainError::NameMismatch { index: 0, .. })
    ));
    let swapped = vec![certs[1].clone(), certs[0].clone(), certs[2].clone()];
    assert!(verify_chain(&swapped, &device_root_der(), when).is_err());
    // Before the leaf's notBefore (2020-10-17) and after notAfter (9999-12-31).
    assert!(matches!(
        verify_chain(&certs, &device_root_der(), at("2020-01-01T00:00:00Z")),
        Err(ChainError::NotValidAt { .. })
    ));
    assert!(matches!(
        verify_chain(&certs, &device_root_der(), 253_402_300_800),
        Err(ChainError::NotValidAt { .. })
    ));
    // A truncated certificate does not parse.
    let mut cut = certs.clone();
    cut[1].truncate(200);
    assert!(matches!(
        verify_chain(&cut, &device_root_der(), when),
        Err(ChainError::Parse { index: 1, .. })
    ));
}

#[test]
fn pem_input_limits() {
    assert_eq!(pem_certificates(""), Err(ChainError::Empty));
    assert!(matches!(
        pem_certificates(&"x".repeat(70_000)),
        Err(ChainError::TooLarge { .. })
    ));
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        pem_certificates(key),
        Err(ChainError::Pem { index: 0, .. })
    ));
    let root = issue(&Spec::ca("R"), None);
    let nine: Vec<&[u8]> = (0..9).map(|_| root.der.as_slice()).collect();
    assert!(matches!(
        pem_certificates(&pem(&nine)),
        Err(ChainError::TooMany { .. })
    ));
    let corrupt = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(pem_certificates(corrupt).is_err());
}

#[test]
fn cache_answers_only_inside_the_validity_window() {
    let (root, ica, leaf) = three_level(
        Spec {
            not_before: NOW - 100,
            not_after: NOW + 100,
            ..Spec::leaf("Leaf")
        },
        Spec::ca("ICA"),
    );
    let chain = vec![leaf.der, ica.der];
    let cache = ChainCache::new();
    let first = cache.verify(&chain, &root.der, NOW).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.verify(&chain, &root.der, NOW + 50).unwrap(), first);
    assert!(matches!(
        cache.verify(&chain, &root.der, NOW + 101),
        Err(ChainError::NotValidAt { .. })
    ));
    // A different root is a different entry and fails.
    let other = issue(&Spec::ca("Other"), None);
    assert!(cache.verify(&chain, &other.der, NOW).is_err());
}

#[test]
fn several_trusted_roots_pick_the_issuer_and_only_configured_ones_count() {
    let a = issue(&Spec::ca("Root A"), None);
    let (b, ica, leaf) = three_level(Spec::leaf("Leaf"), Spec::ca("ICA"));
    let chain = vec![leaf.der.clone(), ica.der.clone()];
    let both = vec![a.der.clone(), b.der.clone()];
    let cache = ChainCache::new();
    for cache in [None, Some(&cache)] {
        let (verified, root) = verify_chain_to_roots(&chain, &both, NOW, cache).unwrap();
        assert_eq!(root, b.der.as_slice());
        assert_eq!(verified, verify_chain(&chain, &b.der, NOW).unwrap());
        // The chain carrying its root: that root is the one used.
        let carried = vec![leaf.der.clone(), ica.der.clone(), b.der.clone()];
        let (_, root) = verify_chain_to_roots(&carried, &both, NOW, cache).unwrap();
        assert_eq!(root, b.der.as_slice());
        // Without B (even after B's chain was cached), nothing else vouches for it.
        let only_a = vec![a.der.clone()];
        assert!(matches!(
            verify_chain_to_roots(&chain, &only_a, NOW, cache),
            Err(ChainError::NameMismatch { .. } | ChainError::UntrustedRoot { .. })
        ));
        assert!(matches!(
            verify_chain_to_roots(&chain, &[], NOW, cache),
            Err(ChainError::NoRoots)
        ));
        // A root of the same name but another key is not B.
        let impostor = vec![issue(&Spec::ca("Test Root"), None).der];
        assert!(matches!(
            verify_chain_to_roots(&chain, &impostor, NOW, cache),
            Err(ChainError::BadSignature { .. })
        ));
    }
}
