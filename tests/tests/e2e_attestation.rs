//! End to end over real gRPC on loopback: swtpm + `vigil-attester serve` + `vigil serve`,
//! in pull mode (`vigil verify`) and push mode (Challenge, then Attest).

use std::time::Duration;

use tonic::transport::Channel;
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{
    AttestRequest, AttestationResult, ChallengeRequest, Evidence, GetEvidenceRequest, Verdict,
};

fn verify_json(node: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["verify", "--node", node, "--json"];
    args.extend_from_slice(extra);
    let out = vigil(&args);
    let json = serde_json::from_str(&stdout(&out)).unwrap_or(serde_json::Value::Null);
    (
        code(&out),
        json,
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

#[test]
fn pull_mode_through_the_verifier_server_passes_with_a_fresh_nonce() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("pull");
    let attester = start_attester(&tpm, &dir.join("attester"), "gpu-host-1", &[]);
    // Trust on first use, development mode: registration is covered in e2e_registration.
    let verifier = start_verifier(&dir.join("vigil.db"), &["--tofu", "--allow-no-baseline"]);

    let (exit, report, text) = verify_json(&attester.address, &["--verifier", &verifier.url()]);
    assert_eq!(exit, 0, "{text}");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["node_id"], "gpu-host-1");
    assert_eq!(report["ak_trust"], "tofu");
    for name in [
        "nonce.fresh",
        "ak.attributes",
        "quote.signature",
        "quote.qualifying_data",
        "quote.pcr_digest",
        "quote.pcr_coverage",
    ] {
        assert_eq!(check(&report, name)["passed"], true, "{name}: {report:#}");
    }
    assert!(
        report["quoted_pcrs"]["sha256"]["0"].is_string(),
        "{report:#}"
    );
    assert!(
        check(&report, "ak.known")["detail"]
            .as_str()
            .unwrap()
            .contains("first contact")
    );

    // Second contact: the same AK is recognised, and a new nonce is used.
    let (exit, again, text) = verify_json(&attester.address, &["--verifier", &verifier.url()]);
    assert_eq!(exit, 0, "{text}");
    assert_ne!(again["nonce"], report["nonce"]);
    assert!(
        check(&again, "ak.known")["detail"]
            .as_str()
            .unwrap()
            .contains("same AK")
    );

    // The readable form says plainly that the AK is trusted on first use.
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--verifier",
        &verifier.url(),
    ]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("TRUST ON FIRST USE"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("PASS"), "{}", stdout(&out));
}

#[test]
fn a_node_presenting_another_ak_fails() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("wrong-ak");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let attester = start_attester(&tpm, &dir.join("first"), "gpu-host-2", &[]);
    let (exit, _, text) = verify_json(
        &attester.address,
        &["--db", db, "--tofu", "--allow-no-baseline"],
    );
    assert_eq!(exit, 0, "{text}");
    attester.stop();

    // Same node name, new AK (another state directory: as if another TPM answered).
    let impostor = start_attester(
        &tpm,
        &dir.join("second"),
        "gpu-host-2",
        &["--ak-alg", "rsa"],
    );
    let (exit, report, text) = verify_json(
        &impostor.address,
        &["--db", db, "--tofu", "--allow-no-baseline"],
    );
    assert_eq!(exit, 1, "{text}");
    assert_eq!(report["verdict"], "fail");
    let ak = check(&report, "ak.known");
    assert_eq!(ak["passed"], false);
    assert!(
        ak["detail"]
            .as_str()
            .unwrap()
            .contains("not the AK recorded"),
        "{ak}"
    );
}

#[test]
fn an_unreachable_attester_is_an_error_not_a_verdict() {
    let dir = TempDir::new("unreachable");
    let out = vigil(&[
        "verify",
        "--node",
        "127.0.0.1:1",
        "--db",
        dir.join("v.db").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

struct PushFixture {
    _tpm: Swtpm,
    _dir: TempDir,
    attester: Server,
    verifier: Server,
    runtime: tokio::runtime::Runtime,
}

impl PushFixture {
    fn start(verifier_args: &[&str]) -> PushFixture {
        let tpm = Swtpm::start();
        let dir = TempDir::new("push");
        let attester = start_attester(&tpm, &dir.join("attester"), "push-node", &[]);
        let mut args = vec!["--tofu", "--allow-no-baseline"];
        args.extend_from_slice(verifier_args);
        let verifier = start_verifier(&dir.join("vigil.db"), &args);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        PushFixture {
            _tpm: tpm,
            _dir: dir,
            attester,
            verifier,
            runtime,
        }
    }

    fn verifier(&self) -> VerifierClient<Channel> {
        self.runtime
            .block_on(VerifierClient::connect(self.verifier.url()))
            .unwrap()
    }

    fn challenge(&self, node: &str) -> Vec<u8> {
        self.runtime
            .block_on(self.verifier().challenge(ChallengeRequest {
                node_id: node.into(),
            }))
            .unwrap()
            .into_inner()
            .nonce
    }

    fn evidence(&self, nonce: Vec<u8>) -> Evidence {
        self.runtime.block_on(async {
            let mut attester = AttesterClient::connect(self.attester.url()).await.unwrap();
            attester
                .get_evidence(GetEvidenceRequest {
                    nonce,
                    selection: None,
                    ima_offset: 0,
                })
                .await
                .unwrap()
                .into_inner()
        })
    }

    fn attest(&self, node: &str, evidence: Evidence) -> AttestationResult {
        self.runtime
            .block_on(self.verifier().attest(AttestRequest {
                node_id: node.into(),
                evidence: Some(evidence),
            }))
            .unwrap()
            .into_inner()
    }
}

fn failed(result: &AttestationResult) -> Vec<String> {
    result
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn assert_fails_with(result: &AttestationResult, check: &str, words: &str) {
    assert_eq!(result.verdict, Verdict::Fail as i32, "{result:#?}");
    let failures = failed(result);
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with(check) && f.contains(words)),
        "expected {check} to fail with {words:?}; failures: {failures:#?}"
    );
}

#[test]
fn push_mode_passes_once_then_rejects_replay_foreign_unknown_and_tampered_evidence() {
    let fx = PushFixture::start(&[]);
    let nonce = fx.challenge("push-node");
    let evidence = fx.evidence(nonce);

    let first = fx.attest("push-node", evidence.clone());
    assert_eq!(first.verdict, Verdict::Pass as i32, "{:#?}", failed(&first));

    // The same evidence again: the nonce is spent.
    let replay = fx.attest("push-node", evidence.clone());
    assert_fails_with(&replay, "nonce.fresh", "replay");

    // A nonce issued to another node.
    let foreign = fx.evidence(fx.challenge("other-node"));
    assert_fails_with(
        &fx.attest("push-node", foreign),
        "nonce.fresh",
        "issued for node",
    );

    // A nonce this verifier never issued (the attester will sign anything it is given).
    let unknown = fx.evidence(vec![0x42; 32]);
    assert_fails_with(
        &fx.attest("push-node", unknown),
        "nonce.fresh",
        "never issued",
    );

    // A flipped byte in the quote message.
    let mut tampered = fx.evidence(fx.challenge("push-node"));
    if let Some(quote) = tampered.tpm.as_mut().and_then(|t| t.quote.as_mut()) {
        let last = quote.attest.len() - 1;
        quote.attest[last] ^= 0x01;
    }
    assert_fails_with(&fx.attest("push-node", tampered), "quote", "");

    // A flipped byte in one PCR value.
    let mut tampered = fx.evidence(fx.challenge("push-node"));
    let bank = tampered
        .tpm
        .as_mut()
        .unwrap()
        .pcrs
        .iter_mut()
        .find(|b| b.bank == "sha256")
        .unwrap();
    bank.values.get_mut(&0).unwrap()[0] ^= 0x01;
    assert_fails_with(&fx.attest("push-node", tampered), "quote.pcr_digest", "");

    // A PCR value outside the quoted selection offered as evidence.
    let mut padded = fx.evidence(fx.challenge("push-node"));
    let bank = padded
        .tpm
        .as_mut()
        .unwrap()
        .pcrs
        .iter_mut()
        .find(|b| b.bank == "sha256")
        .unwrap();
    bank.values.insert(23, vec![0u8; 32]);
    assert_fails_with(&fx.attest("push-node", padded), "quote", "23");

    // Evidence whose echoed nonce was swapped for another fresh one: the quote does not
    // commit to it.
    let mut swapped = fx.evidence(fx.challenge("push-node"));
    swapped.nonce = fx.challenge("push-node");
    assert_fails_with(
        &fx.attest("push-node", swapped),
        "quote.qualifying_data",
        "",
    );
}

#[test]
fn push_mode_rejects_an_expired_nonce() {
    let fx = PushFixture::start(&["--nonce-ttl", "1"]);
    let evidence = fx.evidence(fx.challenge("push-node"));
    std::thread::sleep(Duration::from_millis(2100));
    assert_fails_with(&fx.attest("push-node", evidence), "nonce.fresh", "expired");
}

#[test]
fn health_and_reflection_are_served_by_both_servers() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("health");
    let attester = start_attester(&tpm, &dir.join("attester"), "health-node", &[]);
    let verifier = start_verifier(&dir.join("vigil.db"), &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (server, service) in [
        (&attester, "vigil.v1.Attester"),
        (&verifier, "vigil.v1.Verifier"),
    ] {
        runtime.block_on(async {
            use tonic_health::pb::HealthCheckRequest;
            use tonic_health::pb::health_client::HealthClient;
            let channel = Channel::from_shared(server.url())
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut health = HealthClient::new(channel.clone());
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(
                status,
                tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            );

            use tonic_reflection::pb::v1::ServerReflectionRequest;
            use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
            let mut reflection = ServerReflectionClient::new(channel);
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut stream = reflection
                .server_reflection_info(tokio_stream_once(request))
                .await
                .unwrap()
                .into_inner();
            let response = stream.message().await.unwrap().unwrap();
            let Some(MessageResponse::ListServicesResponse(list)) = response.message_response
            else {
                panic!("unexpected reflection response");
            };
            let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            assert!(names.iter().any(|n| n == service), "{names:?}");
            assert!(
                names.iter().any(|n| n == "grpc.health.v1.Health"),
                "{names:?}"
            );
        });
    }
}

/// A one-message request stream without pulling in tokio-stream.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> {
    tonic::codegen::tokio_stream::once(item)
}
