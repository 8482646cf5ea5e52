//! Cross-checks of the simulated evidence against the verifier's own decoders and checks
//! (test-only dependencies): the encoders in this crate are written from the specifications,
//! so agreement here means both sides read the formats the same way.

use std::sync::Arc;

use ring::rand::SystemRandom;
use vigil_verifier::evidence::tpm::structures::{HashAlg, decode_tpm2b_public};

use crate::eventlog::golden_boot;
use crate::gpu::GpuFleet;
use crate::host::Host;
use crate::tpm::{Ak, Ek};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("vigil-loadgen-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn ak_is_a_restricted_signing_key_with_the_reported_name() {
    let ak = Ak::generate(&SystemRandom::new()).expect("AK");
    let decoded = decode_tpm2b_public(&ak.public).expect("TPM2B_PUBLIC decodes");
    let attributes = decoded.attributes.expect("attributes");
    assert!(attributes.restricted && attributes.sign && !attributes.decrypt);
    assert!(attributes.fixed_tpm && attributes.fixed_parent && attributes.sensitive_data_origin);
    assert_eq!(decoded.name.as_deref(), Some(ak.name.as_slice()));
}

#[test]
fn quote_verifies_with_the_verifiers_decoder() {
    let rng = SystemRandom::new();
    let host = Host::new(7, Arc::new(golden_boot()), None, None, &rng).expect("host");
    let nonce = [0x42u8; 32];
    let evidence = host.evidence(&nonce, &[]).expect("evidence");
    let tpm = evidence.tpm.expect("tpm");
    let quote = tpm.quote.expect("quote");
    let expected = vigil_proto::binding::qualifying_data(&nonce, &[]);
    let verified = vigil_verifier::evidence::tpm::verify_wire_quote(
        &tpm.ak_public,
        &quote.attest,
        &quote.signature,
        &tpm.pcrs,
        &expected,
    )
    .unwrap_or_else(|f| panic!("quote does not verify: {}: {}", f.check, f.detail));
    assert_eq!(verified.pcr_count(), 11);
    // Another nonce is another quote.
    let other = vigil_proto::binding::qualifying_data(&[0x43u8; 32], &[]);
    assert!(
        vigil_verifier::evidence::tpm::verify_wire_quote(
            &tpm.ak_public,
            &quote.attest,
            &quote.signature,
            &tpm.pcrs,
            &other,
        )
        .is_err()
    );
}

#[test]
fn credential_activation_refuses_another_ak_name() {
    let rng = SystemRandom::new();
    let ak = Ak::generate(&rng).expect("AK");
    let ek = Ek::generate(&rng).expect("EK");
    let ek_public = decode_tpm2b_public(&ek.public).expect("EK decodes");
    let secret = [0x5au8; 32];
    let credential = vigil_verifier::registration::credential::make_credential(
        &ek_public, &ak.name, &secret, &rng,
    )
    .expect("make credential");
    // The wrong AK name fails the integrity check before the EK is used up.
    let mut wrong_name = ak.name.clone();
    if let Some(last) = wrong_name.last_mut() {
        *last ^= 1;
    }
    assert!(
        ek.activate_credential(
            &wrong_name,
            &credential.credential_blob,
            &credential.encrypted_secret
        )
        .is_err()
    );
}

#[test]
fn credential_activation_recovers_the_verifiers_secret_once() {
    let rng = SystemRandom::new();
    let ak = Ak::generate(&rng).expect("AK");
    let ek = Ek::generate(&rng).expect("EK");
    let ek_public = decode_tpm2b_public(&ek.public).expect("EK decodes");
    let secret = [0x17u8; 32];
    let credential = vigil_verifier::registration::credential::make_credential(
        &ek_public, &ak.name, &secret, &rng,
    )
    .expect("make credential");
    let recovered = ek
        .activate_credential(
            &ak.name,
            &credential.credential_blob,
            &credential.encrypted_secret,
        )
        .expect("activation");
    assert_eq!(recovered, secret);
    // The EK private key is single-use.
    assert!(
        ek.activate_credential(
            &ak.name,
            &credential.credential_blob,
            &credential.encrypted_secret
        )
        .is_err()
    );
}

#[test]
fn boot_log_replays_to_the_quoted_pcrs() {
    let boot = golden_boot();
    let parsed = vigil_verifier::evidence::eventlog::parse(&boot.data).expect("log parses");
    let replayed = vigil_verifier::evidence::eventlog::replay(&parsed);
    let bank = replayed.banks.get(&HashAlg::Sha256).expect("sha256 bank");
    for pcr in 0..=9u32 {
        assert_eq!(
            bank.get(&pcr).map(Vec::as_slice),
            Some(boot.pcrs[pcr as usize].as_slice()),
            "PCR {pcr}"
        );
    }
}

#[test]
fn gpu_reports_chain_fwid_and_rims_verify() {
    let dir = temp_dir("gpu");
    let fleet = GpuFleet::new(2, &dir).expect("fleet");
    let nonce = [0x33u8; 32];
    let gpus = fleet.evidence(3, &nonce).expect("evidence");
    assert_eq!(gpus.len(), 2);
    let roots = vigil_nvidia::roots::load_roots_dir(&dir.join("roots")).expect("roots");
    let rim_roots = vigil_nvidia::roots::load_roots_dir(&dir.join("rim-roots")).expect("roots");
    let rims = vigil_nvidia::RimStore::load_dir(&dir.join("rims")).expect("RIMs");
    for gpu in &gpus {
        let options = vigil_nvidia::verify::VerifyOptions {
            expected_nonce: Some(&nonce),
            rims: Some(&rims),
            device_roots: Some(&roots),
            rim_roots: Some(&rim_roots),
            ..vigil_nvidia::verify::VerifyOptions::at(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            )
        };
        let verification = vigil_nvidia::verify::verify_gpu_evidence_with(
            &gpu.report,
            &gpu.cert_chain_pem,
            &options,
        );
        for claim in [
            "signature_verified",
            "cert_chain.valid",
            "nonce_match",
            "fwid_match",
            "measurements.match",
        ] {
            assert!(
                verification
                    .claim(claim)
                    .is_some_and(|c| c.status.is_verified()),
                "{claim}: {:?}",
                verification.claim(claim)
            );
        }
    }
    // A second fleet over the same directory reuses the hierarchy (external verifiers).
    let again = GpuFleet::new(1, &dir).expect("reloaded fleet");
    let report = again.evidence(0, &nonce).expect("evidence");
    assert_eq!(report[0].cert_chain_pem, gpus[0].cert_chain_pem);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(crate::rim::base64(input.as_bytes()), output);
    }
}

/// A verdict recorded by a verifier trusting the test GPU hierarchy re-appraises the same only
/// when `vigil audit reappraise` is given those roots; under NVIDIA's pinned roots (the
/// default) the GPU chain no longer verifies and the re-appraisal says so.
#[test]
fn reappraisal_uses_the_gpu_roots_it_is_given() {
    let dir = temp_dir("reappraise");
    let fleet = Arc::new(GpuFleet::new(2, &dir).expect("fleet"));
    let rng = SystemRandom::new();
    let host = Host::new(0, Arc::new(golden_boot()), Some(fleet), None, &rng).expect("host");
    let roots = vigil_nvidia::roots::GpuRoots {
        device: Some(vigil_nvidia::roots::load_roots_dir(&dir.join("roots")).expect("roots")),
        rim: Some(vigil_nvidia::roots::load_roots_dir(&dir.join("rim-roots")).expect("roots")),
    };
    let now = vigil_verifier::attest::unix_now();
    let nonce = [0x5au8; 32];
    let store = vigil_verifier::store::Store::in_memory().expect("store");
    store
        .insert_nonce(&nonce, &host.node_id, now, now + 60)
        .expect("nonce");
    let verifier = vigil_verifier::attest::Verifier::new(
        store,
        vigil_verifier::attest::VerifierConfig {
            allow_tofu: true,
            allow_no_baseline: true,
            ..Default::default()
        },
    )
    .with_gpu_roots(roots.clone())
    .with_rims(vigil_nvidia::RimStore::load_dir(&dir.join("rims")).expect("RIMs"));
    let evidence = host.evidence(&nonce, &[]).expect("evidence");
    let report = verifier
        .appraise(
            &host.node_id,
            Some(&nonce),
            &evidence,
            &vigil_verifier::attest::Origin::Pushed,
            now,
        )
        .expect("appraisal");
    assert_eq!(
        report.verdict,
        vigil_verifier::report::Verdict::Pass,
        "{}",
        report.render_text()
    );
    let reappraise = |roots: &vigil_nvidia::roots::GpuRoots| {
        verifier
            .with_store(|store| {
                vigil_verifier::reappraise::reappraise(
                    store.connection(),
                    0,
                    &vigil_verifier::attest::DEFAULT_REQUIRED_PCRS,
                    None,
                    roots,
                )
            })
            .expect("store")
            .expect("reappraisal")
    };
    let with_roots = reappraise(&roots);
    assert!(with_roots.agrees, "{:?}", with_roots.differences);
    let pinned = reappraise(&vigil_nvidia::roots::GpuRoots::default());
    assert!(!pinned.agrees);
    assert!(
        pinned
            .differences
            .iter()
            .any(|d| d.contains("gpu[0].cert_chain")),
        "{:?}",
        pinned.differences
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replicas_take_turns_and_push_crosses_to_the_next() {
    use crate::replica_for;
    assert_eq!(replica_for(0, 0, 1), (0, 0));
    assert_eq!(replica_for(5, 7, 1), (0, 0));
    // Two replicas: a client alternates, and its Attest goes to the other one.
    assert_eq!(replica_for(0, 0, 2), (0, 1));
    assert_eq!(replica_for(0, 1, 2), (1, 0));
    assert_eq!(replica_for(1, 0, 2), (1, 0));
    // Three: every replica serves each client in turn.
    let firsts: Vec<usize> = (0..3).map(|r| replica_for(2, r, 3).0).collect();
    assert_eq!(firsts, vec![2, 0, 1]);
    assert_eq!(replica_for(2, 0, 3).1, 0);
}

#[test]
fn replicas_need_a_postgres_database() {
    use clap::Parser;
    let parse = |extra: &[&str]| {
        let mut argv = vec!["vigil-loadgen", "--spawn-verifier"];
        argv.extend_from_slice(extra);
        crate::validate(&crate::Args::try_parse_from(argv).expect("arguments"))
    };
    assert!(parse(&[]).is_ok());
    assert!(parse(&["--replicas", "2"]).is_err());
    assert!(parse(&["--replicas", "0"]).is_err());
    assert!(parse(&["--db", "vigil.db"]).is_err());
    assert!(
        parse(&[
            "--replicas",
            "2",
            "--db",
            "postgres://vigil@127.0.0.1:5432/vigil"
        ])
        .is_ok()
    );
    assert!(parse(&["--db", "postgresql://vigil@127.0.0.1:5432/vigil"]).is_ok());
}

#[test]
fn an_external_verifier_may_be_several_loopback_urls() {
    use clap::Parser;
    let parse = |verifier: &str, extra: &[&str]| {
        let mut argv = vec![
            "vigil-loadgen",
            "--verifier",
            verifier,
            "--tls-dir",
            "tls",
            "--out",
            "out",
        ];
        argv.extend_from_slice(extra);
        let args = crate::Args::try_parse_from(argv).expect("arguments");
        crate::validate(&args).map(|()| crate::verifier_urls(&args))
    };
    assert_eq!(
        parse("https://127.0.0.1:7444, https://localhost:7445", &[]),
        Ok(vec![
            "https://127.0.0.1:7444".to_string(),
            "https://localhost:7445".to_string()
        ])
    );
    assert!(parse("https://127.0.0.1:7444,https://10.0.0.1:7444", &[]).is_err());
    assert!(parse(",", &[]).is_err());
    assert!(parse("https://127.0.0.1:7444", &["--replicas", "2"]).is_err());
    assert!(
        parse(
            "https://127.0.0.1:7444",
            &["--db", "postgres://a@127.0.0.1/b"]
        )
        .is_err()
    );
}
