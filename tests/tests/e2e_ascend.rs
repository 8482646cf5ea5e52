//! Issue #12, "Must show": a host with 8 attesting Huawei Ascend NPUs, end to end. A software
//! TPM (with an EK certificate) and the real attester (`--gpus huawei`) load the fake DCMI
//! library (`tests/fakes/fake_dcmi.c`), whose NPUs answer with the quotes `vigil_e2e::npu`
//! signs, each over its own challenge `challenge_for(nonce, N)` with a test IAK certified by a
//! test NPU CA. The verifier (in process, with that CA as its `--npu-ca-dir`) verifies every
//! NPU, the node is registered (EK certificate + credential activation), a baseline is captured
//! from its claims and the host passes it. Then each failure names the device and the
//! check or rule: one NPU whose quote answers another challenge, a verifier that trusts
//! another NPU CA, a missing NPU, a downgraded NPU firmware component.

use std::sync::Arc;

use tonic::transport::Channel;
use vigil_e2e::fakes::build_fake;
use vigil_e2e::npu::NpuCa;
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::{Evidence, GetEvidenceRequest, PcrSelection};
use vigil_verifier::attest::{
    DEFAULT_REQUIRED_PCRS, Origin, Verifier, VerifierConfig, check_evidence, unix_now,
};
use vigil_verifier::baseline::appraise::Outcome;
use vigil_verifier::evidence::ascend::{AscendRoots, challenge_for};
use vigil_verifier::evidence::gpu::GpuContext;
use vigil_verifier::registration::register::{RegistrationPolicy, register_node};
use vigil_verifier::registration::trust::TrustStore;
use vigil_verifier::report::{AttestationReport, Check, Verdict};

const NODE: &str = "atlas-800t-1";
const GROUP: &str = "ascend";
const NPUS: u32 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Evidence from the attester at `address` for `nonce` (what a verifier's pull asks for).
fn evidence_for(address: &str, nonce: &[u8], pcrs: &[u32]) -> Evidence {
    runtime().block_on(async {
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AttesterClient::new(channel)
            .get_evidence(GetEvidenceRequest {
                nonce: nonce.to_vec(),
                selection: Some(PcrSelection {
                    pcrs: pcrs.to_vec(),
                    banks: Vec::new(),
                }),
                ima_offset: 0,
            })
            .await
            .unwrap()
            .into_inner()
    })
}

fn failed(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

/// The failed checks about the evidence itself, without `baseline.appraisal` (which says that
/// rules were not met; `not_met` lists them).
fn evidence_failures(report: &AttestationReport) -> Vec<String> {
    failed(&report.checks)
        .into_iter()
        .filter(|f| !f.starts_with("baseline."))
        .collect()
}

/// (rule, claim, found) of every baseline rule the verdict did not meet.
fn not_met(report: &AttestationReport) -> Vec<(String, String, String)> {
    report
        .appraisal
        .as_ref()
        .map(|appraisal| {
            appraisal
                .failures()
                .map(|r| (r.rule.clone(), r.claim.clone(), r.found.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The NPU host: one swtpm, the attester restarted at the same address with other fake DCMI
/// settings, the fake's attestation directory the simulated NPUs write into.
struct Host<'a> {
    tpm: &'a Swtpm,
    dir: &'a TempDir,
    listen: String,
    dcmi: String,
    npu_ca: &'a NpuCa,
}

impl Host<'_> {
    fn attest_dir(&self) -> std::path::PathBuf {
        self.dir.join("dcmi")
    }

    fn start(&self, env: &[(&str, &str)]) -> Server {
        let attest_dir = self.attest_dir();
        let mut all = vec![("FAKE_DCMI_ATTEST_DIR", attest_dir.to_str().unwrap())];
        all.extend_from_slice(env);
        start_attester_with(
            self.tpm,
            &self.dir.join("attester"),
            NODE,
            &self.listen,
            &["--gpus", "huawei", "--gpu-lib", &self.dcmi],
            &all,
        )
    }

    /// One attestation through `verifier` as in push mode: a nonce the verifier issued to the
    /// node, every NPU prepared to answer it (then `tamper`, to make one answer otherwise),
    /// the attester's evidence, the verifier's appraisal at `now`.
    fn appraise(
        &self,
        verifier: &Verifier,
        now: i64,
        tamper: impl FnOnce(&[u8]),
    ) -> AttestationReport {
        let challenge = verifier.challenge(NODE, now).unwrap();
        self.npu_ca
            .prepare(&self.attest_dir(), &challenge.nonce, NPUS);
        tamper(&challenge.nonce);
        let evidence = evidence_for(&self.listen, &challenge.nonce, &challenge.selection.pcrs);
        verifier
            .appraise(NODE, None, &evidence, &Origin::Pushed, now)
            .unwrap()
    }
}

/// An in-memory verifier that trusts `roots` for NPU IAKs, with the node registered properly
/// (its EK certificate chains to the swtpm's local CA and its TPM activates a credential for
/// its AK), so the captured baseline's `ak_trust = ["ek-certified", ...]` holds without TOFU.
fn registered_verifier(
    roots: AscendRoots,
    ek_roots: &std::path::Path,
    address: &str,
) -> Arc<Verifier> {
    let verifier = Arc::new(
        Verifier::new(
            vigil_verifier::store::Store::in_memory().unwrap(),
            VerifierConfig::default(),
        )
        .with_npu_roots(roots),
    );
    let policy = RegistrationPolicy {
        trust: TrustStore::load_dir(ek_roots).unwrap(),
        ek_allowlist: Vec::new(),
    };
    let report = runtime()
        .block_on(register_node(verifier.clone(), &policy, address, GROUP))
        .unwrap();
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.render_text());
    assert_eq!(report.ak_trust, "ek-certified");
    verifier
}

#[test]
fn eight_attesting_ascend_npus_pass_a_captured_baseline_and_failures_name_device_and_rule() {
    require_tools(&["cc"]);
    let dcmi = build_fake("fake_dcmi");
    let ek_ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ek_ca);
    let ek_roots = ek_ca.trust_dir();
    let dir = TempDir::new("ascend");
    let npu_ca = NpuCa::new();
    npu_ca.write_ca_dir(&dir.join("npu-ca"));
    let roots = AscendRoots::load_dir(&dir.join("npu-ca")).unwrap();
    let host = Host {
        tpm: &tpm,
        dir: &dir,
        listen: format!("127.0.0.1:{}", free_port()),
        dcmi: format!("huawei={}", dcmi.display()),
        npu_ca: &npu_ca,
    };
    // The IAK is valid from 2024 to 2045: now is inside.
    let now = unix_now();

    // 1. The evidence itself, for a nonce chosen here: every NPU answers its own challenge.
    let attester = host.start(&[("FAKE_DCMI_NPUS", "8")]);
    let nonce: Vec<u8> = (0..32u8).map(|b| b ^ 0xa5).collect();
    npu_ca.prepare(&host.attest_dir(), &nonce, NPUS);
    let evidence = evidence_for(&host.listen, &nonce, &DEFAULT_REQUIRED_PCRS);
    assert_eq!(evidence.gpus.len(), NPUS as usize);
    for (i, npu) in evidence.gpus.iter().enumerate() {
        let i = i as u32;
        assert_eq!(npu.index, i);
        assert_eq!(
            (npu.vendor.as_str(), npu.kind.as_str(), npu.format.as_str()),
            ("huawei", "device-signed", "ascend-attestation"),
            "NPU {i}"
        );
        // What the fake DCMI was asked to sign is the verifier's challenge for this index.
        let asked = std::fs::read(host.attest_dir().join(format!("challenge-{i}.bin"))).unwrap();
        assert_eq!(asked, challenge_for(&nonce, i), "NPU {i}");
    }
    let context = GpuContext {
        rims: None,
        at: now,
        npu_roots: Some(&roots),
        nvidia: Default::default(),
    };
    let outcome = check_evidence(&nonce, &evidence, &DEFAULT_REQUIRED_PCRS, &context);
    assert!(
        failed(&outcome.checks).is_empty(),
        "{:#?}",
        failed(&outcome.checks)
    );
    let verified: Vec<&Check> = outcome
        .checks
        .iter()
        .filter(|c| {
            c.name.starts_with("gpu[")
                && c.name.ends_with("].evidence")
                && c.detail.starts_with("Ascend attestation verified")
        })
        .collect();
    assert_eq!(verified.len(), NPUS as usize, "{:#?}", outcome.checks);
    let claims = &outcome.host_claims;
    for i in 0..NPUS {
        let evidence = claims.get(&format!("gpu[{i}].evidence")).unwrap();
        assert_eq!(evidence.value.as_ref().unwrap().to_string(), "signed");
        assert!(evidence.trust.usable(), "gpu[{i}]: {:?}", evidence.trust);
        let quote = claims.get(&format!("gpu[{i}].npu.quote_verified")).unwrap();
        assert_eq!(quote.value.as_ref().unwrap().to_string(), "true");
    }
    let count = claims.get("gpu.count.huawei").unwrap();
    assert_eq!(count.value.as_ref().unwrap().to_string(), "8");
    // Each NPU quoted its own PCR 3 (its boot log names it): the per-device files were used.
    let pcr3 = |i: u32| {
        claims
            .get(&format!("gpu[{i}].npu.pcr.sha256.3"))
            .and_then(|c| c.value.clone())
            .map(|v| v.to_string())
    };
    assert!(pcr3(0).is_some() && pcr3(0) != pcr3(1));

    // 2. Through the verifier: registered, baseline captured from the first appraisal's
    // claims (as `vigil baseline capture` does), put, assigned to the node's group; PASS.
    let verifier = registered_verifier(roots.clone(), &ek_roots, &host.listen);
    let first = host.appraise(&verifier, now, |_| {});
    // No baseline is assigned yet, so only `baseline.*` fails; the evidence is authentic.
    assert!(
        evidence_failures(&first).is_empty(),
        "{:#?}",
        evidence_failures(&first)
    );
    let golden = vigil_verifier::baseline::capture::capture(
        GROUP,
        first.host_claims.as_ref().unwrap(),
        &vigil_verifier::report::format_unix_utc(now),
    );
    vigil_verifier::baseline::parse_baseline("captured", &golden).unwrap();
    assert!(
        golden.contains("[gpus.huawei]\ncount = 8\nrequire_signed_evidence = true\n"),
        "{golden}"
    );
    // DCMI lists the NPUs' firmware components, so capture pins each (the fake's four).
    for id in ["XLOADER", "UEFI", "TEE", "ATF"] {
        assert!(
            golden.contains(&format!(
                "firmware.{id} = {{ allowed = [\"7.1.0.5.220\"], min = \"7.1.0.5.220\" }}"
            )),
            "{id}: {golden}"
        );
    }
    verifier
        .put_baseline("ascend.toml", &golden, None, "e2e", "golden Atlas", now)
        .unwrap();
    verifier
        .assign_baseline(GROUP, GROUP, "e2e", "rollout", now)
        .unwrap();
    let report = host.appraise(&verifier, now, |_| {});
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.render_text());
    assert!(not_met(&report).is_empty(), "{:#?}", not_met(&report));
    // Every rule met, and the NPUs' evidence is device-signed: nothing to warn about.
    assert_eq!(report.status, "affirming", "{}", report.render_text());
    let appraisal = report.appraisal.as_ref().unwrap();
    for rule in ["gpus.huawei.count", "gpus.huawei.signed_evidence"] {
        assert!(
            appraisal
                .results
                .iter()
                .any(|r| r.rule == rule && r.outcome == Outcome::Pass),
            "{rule}"
        );
    }

    // 3. NPU 5 answers another challenge (a replayed or relayed quote): its evidence fails,
    // naming the device and the qualifying-data check; the other seven verify.
    let report = host.appraise(&verifier, now, |nonce| {
        let other: Vec<u8> = nonce.iter().map(|b| b ^ 0xff).collect();
        npu_ca.prepare_npu(&host.attest_dir(), &other, 5);
    });
    assert_eq!(report.verdict, Verdict::Fail);
    let failures = evidence_failures(&report);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("gpu[5].evidence: Ascend attestation: npu.quote.qualifying_data: ")
            && failures[0].contains("the quote does not answer this challenge"),
        "{failures:#?}"
    );
    assert!(
        not_met(&report)
            .iter()
            .any(|(rule, claim, _)| rule == "gpus.huawei.signed_evidence"
                && claim == "gpu[5].evidence"),
        "{:#?}",
        not_met(&report)
    );
    attester.stop();

    // 4. A verifier that trusts another NPU CA (same names, other keys): every NPU's evidence
    // fails on its IAK chain.
    let foreign = NpuCa::new();
    foreign.write_ca_dir(&dir.join("foreign-ca"));
    let attester = host.start(&[("FAKE_DCMI_NPUS", "8")]);
    let foreign_verifier = registered_verifier(
        AscendRoots::load_dir(&dir.join("foreign-ca")).unwrap(),
        &ek_roots,
        &host.listen,
    );
    foreign_verifier
        .put_baseline("ascend.toml", &golden, None, "e2e", "golden Atlas", now)
        .unwrap();
    foreign_verifier
        .assign_baseline(GROUP, GROUP, "e2e", "rollout", now)
        .unwrap();
    let report = host.appraise(&foreign_verifier, now, |_| {});
    assert_eq!(report.verdict, Verdict::Fail);
    let failures = evidence_failures(&report);
    assert_eq!(failures.len(), NPUS as usize, "{failures:#?}");
    for i in 0..NPUS {
        assert!(
            failures.iter().any(|f| f.starts_with(&format!(
                "gpu[{i}].evidence: Ascend attestation: npu.iak_chain: "
            ))),
            "NPU {i}: {failures:#?}"
        );
    }
    attester.stop();

    // 5. A missing NPU: the attester restarted (stopped, not dropped, so the swtpm frees its
    // objects) with 7. The seven verify; the baseline's count rule finds 7.
    let attester = host.start(&[("FAKE_DCMI_NPUS", "7")]);
    let report = host.appraise(&verifier, now, |_| {});
    assert!(
        evidence_failures(&report).is_empty(),
        "{:#?}",
        evidence_failures(&report)
    );
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.render_text());
    let missing = not_met(&report);
    assert!(
        missing.contains(&(
            "gpus.huawei.count".to_owned(),
            "gpu.count.huawei".to_owned(),
            "7".to_owned()
        )),
        "{missing:#?}"
    );
    attester.stop();

    // 6. A downgraded UEFI on every NPU (host-reported by DCMI, bound by the quote): each NPU
    // is named, by the minimum and the allowed-versions rules.
    let attester = host.start(&[
        ("FAKE_DCMI_NPUS", "8"),
        ("FAKE_DCMI_FW_UEFI", "7.1.0.3.100"),
    ]);
    let report = host.appraise(&verifier, now, |_| {});
    assert!(
        evidence_failures(&report).is_empty(),
        "{:#?}",
        evidence_failures(&report)
    );
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.render_text());
    let downgraded = not_met(&report);
    for i in 0..NPUS {
        for rule in [
            "gpus.huawei.firmware.UEFI.min",
            "gpus.huawei.firmware.UEFI.allowed",
        ] {
            assert!(
                downgraded.contains(&(
                    rule.to_owned(),
                    format!("gpu[{i}].firmware.UEFI"),
                    "7.1.0.3.100".to_owned()
                )),
                "{rule} on NPU {i}: {downgraded:#?}"
            );
        }
    }
    assert_eq!(downgraded.len(), 2 * NPUS as usize, "{downgraded:#?}");
    attester.stop();
}
