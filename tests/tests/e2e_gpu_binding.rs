//! One nonce, one verdict: the GPU reports answer the verifier's nonce and the TPM quote
//! commits to exactly the GPU evidence presented. A real attester on a software TPM presents
//! NVIDIA's recorded Hopper sample (`--gpu-replay`, read in place from the fixtures); the
//! composite passes only when the verifier's nonce is the one that sample answers, and a
//! swapped report, a report from another session, and a quote over other GPU evidence fail.

use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::{Evidence, GetEvidenceRequest, PcrSelection};
use vigil_verifier::attest::{DEFAULT_REQUIRED_PCRS, check_evidence};
use vigil_verifier::evidence::gpu::GpuContext;

/// The nonce NVIDIA's Hopper sample answers (bytes 4..36 of its request).
const SAMPLE_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

fn evidence_for(address: &str, nonce: &[u8]) -> Evidence {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = AttesterClient::connect(format!("http://{address}"))
            .await
            .unwrap();
        client
            .get_evidence(GetEvidenceRequest {
                nonce: nonce.to_vec(),
                selection: Some(PcrSelection {
                    pcrs: DEFAULT_REQUIRED_PCRS.to_vec(),
                    banks: Vec::new(),
                }),
                ima_offset: 0,
            })
            .await
            .unwrap()
            .into_inner()
    })
}

fn failed(checks: &[vigil_verifier::report::Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

#[test]
fn gpu_evidence_is_bound_to_the_nonce_and_the_quote() {
    let Some(root) = fixtures("nvidia-rims-matching") else {
        return;
    };
    let samples = root.join("nv-local-gpu-verifier-2.7.3/samples");
    let report = samples.join("hopperAttestationReport.txt");
    let chain = samples.join("hopperCertChain.txt");
    let other = root.join("nvidia-attestation-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/sample_attestation_data/gpu/hopperAttestationReport.txt");
    let rims = vigil_nvidia::RimStore::load_dir(&root.join("nvidia-rims-matching")).unwrap();
    // Inside the RIMs' validity (2026-01-07 .. 2026-06-01), see the fixtures README.
    let at = vigil_nvidia::parse_rfc3339("2026-05-01T00:00:00Z").unwrap();
    let context = GpuContext {
        rims: Some(&rims),
        at,
        npu_roots: None,
        nvidia: Default::default(),
    };

    let tpm = Swtpm::start();
    let dir = TempDir::new("gpu-binding");
    let replay = format!("{},{}", report.display(), chain.display());
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "hgx-1",
        &["--gpu-replay", &replay],
    );
    let sample_nonce = hex::decode(SAMPLE_NONCE).unwrap();

    // The verifier's nonce is the one the GPU report answers: the composite verifies.
    let evidence = evidence_for(&attester.address, &sample_nonce);
    assert_eq!(evidence.gpus.len(), 1);
    let outcome = check_evidence(&sample_nonce, &evidence, &DEFAULT_REQUIRED_PCRS, &context);
    assert!(
        failed(&outcome.checks).is_empty(),
        "{:#?}",
        failed(&outcome.checks)
    );
    for check in [
        "quote.qualifying_data",
        "gpu[0].signature",
        "gpu[0].cert_chain",
        "gpu[0].nonce",
    ] {
        assert!(
            outcome.checks.iter().any(|c| c.name == check && c.passed),
            "{check}"
        );
    }
    let claims = &outcome.host_claims;
    let value = |name: &str| {
        claims
            .get(name)
            .and_then(|c| c.value.clone())
            .map(|v| v.to_string())
    };
    assert_eq!(value("gpu[0].measurements.match").as_deref(), Some("true"));
    assert_eq!(value("gpu[0].driver_version").as_deref(), Some("550.90.07"));
    assert_eq!(value("gpu.count").as_deref(), Some("1"));

    // The same through the verifier itself, at that time, against a GPU baseline: the host
    // passes (warning: no OCSP answer offline), and the registry records the GPU's identity.
    let store = vigil_verifier::store::Store::in_memory().unwrap();
    store
        .insert_nonce(&sample_nonce, "hgx-1", at, at + 60)
        .unwrap();
    let verifier = vigil_verifier::attest::Verifier::new(
        store,
        vigil_verifier::attest::VerifierConfig {
            allow_tofu: true,
            ..Default::default()
        },
    )
    .with_rims(vigil_nvidia::RimStore::load_dir(&root.join("nvidia-rims-matching")).unwrap());
    let baseline = "format = 1\nname = \"hgx\"\n[identity]\nak_trust = [\"tofu\"]\n[gpu]\ncount = 1\n\
        driver_versions = [\"550.90.07\"]\nmin_vbios_version = \"96.00.74.00.01\"\nrequire_cc_mode = false\n";
    verifier
        .put_baseline("hgx.toml", baseline, None, "test", "gpu host", at)
        .unwrap();
    verifier
        .assign_baseline("default", "hgx", "test", "gpu host", at)
        .unwrap();
    let report = verifier
        .appraise(
            "hgx-1",
            Some(&sample_nonce),
            &evidence,
            &vigil_verifier::attest::Origin::Pushed,
            at,
        )
        .unwrap();
    assert_eq!(
        report.verdict,
        vigil_verifier::report::Verdict::Pass,
        "{}",
        report.render_text()
    );
    assert_eq!(report.status, "warning", "{}", report.render_text());
    let appraisal = report.appraisal.as_ref().unwrap();
    let not_met: Vec<&str> = appraisal.failures().map(|r| r.rule.as_str()).collect();
    assert_eq!(not_met, ["gpu.revocation"], "{}", report.render_text());
    assert_eq!(appraisal.submods["gpu0"].status, vigil_ear::Status::Warning);
    let identities = verifier
        .read(|s| s.gpu_identities("hgx-1"))
        .unwrap()
        .unwrap();
    let identities: serde_json::Value = serde_json::from_str(&identities).unwrap();
    assert_eq!(identities[0]["device"], "hopper", "{identities}");
    assert!(
        identities[0]["device_certificate_serial"].is_string(),
        "{identities}"
    );

    // A swapped GPU report: the quote does not commit to it (and it answers another nonce).
    let mut swapped = evidence.clone();
    swapped.gpus[0].report = std::fs::read(&other).unwrap();
    let outcome = check_evidence(&sample_nonce, &swapped, &DEFAULT_REQUIRED_PCRS, &context);
    let failures = failed(&outcome.checks);
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("quote.qualifying_data")),
        "{failures:#?}"
    );

    // A quote over other GPU evidence: the GPU list presented is not the one quoted.
    let mut dropped = evidence.clone();
    dropped.gpus.clear();
    let outcome = check_evidence(&sample_nonce, &dropped, &DEFAULT_REQUIRED_PCRS, &context);
    assert!(
        failed(&outcome.checks)
            .iter()
            .any(|f| f.starts_with("quote.qualifying_data"))
    );

    // A GPU report from another session: the verifier's fresh nonce is not the one it answers.
    let fresh = [7u8; 32];
    let evidence = evidence_for(&attester.address, &fresh);
    let outcome = check_evidence(&fresh, &evidence, &DEFAULT_REQUIRED_PCRS, &context);
    let failures = failed(&outcome.checks);
    assert!(
        outcome
            .checks
            .iter()
            .any(|c| c.name == "quote.qualifying_data" && c.passed),
        "the quote itself is fresh"
    );
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("gpu[0].nonce") && failures[0].contains(SAMPLE_NONCE),
        "{failures:#?}"
    );

    // And end to end through `vigil verify`: the recorded report fails its nonce check.
    let db = dir.join("vigil.db");
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db.to_str().unwrap(),
        "--tofu",
        "--allow-no-baseline",
        "--json",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let nonce_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gpu[0].nonce")
        .unwrap();
    assert_eq!(nonce_check["passed"], false, "{nonce_check}");
    assert_eq!(report["status"], "contraindicated");
}
