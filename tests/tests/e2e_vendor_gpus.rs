//! GPUs of other vendors end to end: a software-TPM host with 8 AMD Instinct GPUs (the fake
//! amdsmi, `tests/fakes/`) and one with a Biren board (the fake BRML), each registered,
//! baselined by capture and attested through the real attester; then a downgraded firmware, a
//! denied VBIOS, a missing device and an inventory changed after the quote each fail, naming
//! the device and the rule.

use tonic::transport::Channel;
use vigil_e2e::fakes::build_fake;
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::{Evidence, GetEvidenceRequest, PcrSelection};
use vigil_verifier::attest::{DEFAULT_REQUIRED_PCRS, check_evidence};
use vigil_verifier::evidence::gpu::GpuContext;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// (rule, claim) of every baseline rule the verdict did not meet.
fn not_met(report: &serde_json::Value) -> Vec<(String, String)> {
    report["appraisal"]["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter(|r| r["outcome"] != "pass")
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap_or_default().to_owned(),
                        r["claim"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn evidence_for(address: &str, nonce: &[u8]) -> Evidence {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AttesterClient::new(channel)
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

/// A registered host whose attester can be restarted at the same address with other fake
/// library settings.
struct Host<'a> {
    tpm: &'a Swtpm,
    dir: &'a TempDir,
    name: &'static str,
    listen: String,
    args: Vec<String>,
}

impl Host<'_> {
    fn start(&self, env: &[(&str, &str)]) -> Server {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        start_attester_with(
            self.tpm,
            &self.dir.join(self.name),
            self.name,
            &self.listen,
            &args,
            env,
        )
    }
}

#[test]
fn amd_and_biren_hosts_pass_captured_baselines_and_drift_fails_naming_device_and_rule() {
    require_tools(&["cc"]);
    let amdsmi = build_fake("fake_amdsmi");
    let brml = build_fake("fake_brml");
    let ca = EkCa::new();
    let amd_tpm = Swtpm::start_with_ek_certificate(&ca);
    let biren_tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("vendor-gpus");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let amd = Host {
        tpm: &amd_tpm,
        dir: &dir,
        name: "mi300x-1",
        listen: format!("127.0.0.1:{}", free_port()),
        args: vec![
            "--gpus".into(),
            "amd".into(),
            "--gpu-lib".into(),
            format!("amd={}", amdsmi.display()),
        ],
    };
    let biren = Host {
        tpm: &biren_tpm,
        dir: &dir,
        name: "br104-1",
        listen: format!("127.0.0.1:{}", free_port()),
        args: vec![
            "--gpus".into(),
            "biren".into(),
            "--gpu-lib".into(),
            format!("biren={}", brml.display()),
        ],
    };
    let verify = |host: &Host| vigil(&["verify", "--node", &host.listen, "--db", db, "--json"]);

    for (host, group, devices) in [
        (&amd, "mi300x", ("FAKE_AMDSMI_DEVICES", "8")),
        (&biren, "br104", ("FAKE_BRML_DEVICES", "1")),
    ] {
        let attester = host.start(&[devices]);
        let out = vigil(&[
            "node",
            "register",
            &host.listen,
            "--group",
            group,
            "--db",
            db,
            "--ek-roots",
            trust.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        let file = dir.join(&format!("{group}.toml"));
        let out = vigil(&[
            "baseline",
            "capture",
            "--node",
            &host.listen,
            "--db",
            db,
            "--name",
            group,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        let captured = std::fs::read_to_string(&file).unwrap();
        let vendor = if group == "mi300x" { "amd" } else { "biren" };
        assert!(
            captured.contains(&format!("[gpus.{vendor}]\ncount = {}", devices.1)),
            "{captured}"
        );
        assert!(captured.contains("firmware."), "{captured}");
        for args in [
            vec![
                "baseline",
                "put",
                file.to_str().unwrap(),
                "--author",
                "e2e",
                "--reason",
                "golden",
            ],
            vec![
                "baseline", "assign", group, group, "--author", "e2e", "--reason", "rollout",
            ],
        ] {
            let mut args = args;
            args.extend(["--db", db]);
            let out = vigil(&args);
            assert_eq!(code(&out), 0, "{args:?}: {}{}", stdout(&out), stderr(&out));
        }
        let out = verify(host);
        let report = json(&out);
        assert_eq!(code(&out), 0, "{group}: {:?}", not_met(&report));
        attester.stop();
    }

    // A downgraded PSP_SOSDRV on every GPU: each GPU is named, by the minimum rule.
    let attester = amd.start(&[
        ("FAKE_AMDSMI_DEVICES", "8"),
        ("FAKE_AMDSMI_FW_PSP_SOSDRV", "0x00010000"),
    ]);
    let out = verify(&amd);
    assert_eq!(code(&out), 1);
    let failed = not_met(&json(&out));
    for gpu in 0..8 {
        assert!(
            failed.contains(&(
                "gpus.amd.firmware.PSP_SOSDRV.min".to_owned(),
                format!("gpu[{gpu}].firmware.PSP_SOSDRV")
            )),
            "gpu {gpu}: {failed:?}"
        );
    }
    attester.stop();

    // A missing GPU: the count rule names what was found.
    let attester = amd.start(&[("FAKE_AMDSMI_DEVICES", "7")]);
    let out = verify(&amd);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    let count = report["appraisal"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "gpus.amd.count")
        .unwrap();
    assert_eq!(count["outcome"], "fail", "{count:#}");
    assert_eq!(count["found"], "7");
    attester.stop();

    // A VBIOS (IFWI) version the operator denies: a new baseline version says so.
    let attester = amd.start(&[("FAKE_AMDSMI_DEVICES", "8")]);
    let golden = std::fs::read_to_string(dir.join("mi300x.toml")).unwrap();
    let vbios = golden
        .lines()
        .find_map(|l| l.strip_prefix("vbios_versions = [\"")?.split('"').next())
        .unwrap()
        .to_owned();
    let denied = dir.join("mi300x-deny.toml");
    std::fs::write(
        &denied,
        golden.replace(
            "[gpus.amd]\n",
            &format!("[gpus.amd]\ndeny_vbios_versions = [\"{vbios}\"]\n"),
        ),
    )
    .unwrap();
    let out = vigil(&[
        "baseline",
        "put",
        denied.to_str().unwrap(),
        "--author",
        "e2e",
        "--reason",
        "IFWI recalled",
        "--db",
        db,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = verify(&amd);
    assert_eq!(code(&out), 1);
    let failed = not_met(&json(&out));
    assert_eq!(
        failed
            .iter()
            .filter(|(rule, _)| rule == "gpus.amd.vbios.deny")
            .count(),
        8,
        "{failed:?}"
    );
    assert!(failed.contains(&(
        "gpus.amd.vbios.deny".to_owned(),
        "gpu[4].vbios_version".to_owned()
    )));

    // An inventory changed after the quote: the quote committed to the original.
    let nonce = [0x42u8; 32];
    let mut evidence = evidence_for(&amd.listen, &nonce);
    assert_eq!(evidence.gpus.len(), 8);
    let context = GpuContext {
        rims: None,
        at: 0,
        npu_roots: None,
        nvidia: Default::default(),
    };
    let outcome = check_evidence(&nonce, &evidence, &DEFAULT_REQUIRED_PCRS, &context);
    assert!(
        outcome.checks.iter().all(|c| c.passed),
        "{:?}",
        outcome.checks
    );
    evidence.gpus[3].firmware[0].version = "99.99.99.99".into();
    let outcome = check_evidence(&nonce, &evidence, &DEFAULT_REQUIRED_PCRS, &context);
    let binding = outcome
        .checks
        .iter()
        .find(|c| c.name == "quote.qualifying_data")
        .unwrap_or_else(|| panic!("{:?}", outcome.checks));
    assert!(!binding.passed, "{binding:?}");
    attester.stop();
}
