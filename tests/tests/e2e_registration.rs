//! Registration with EK validation and credential activation, end to end: swtpm manufactured
//! by `swtpm_setup` with an EK certificate from a local CA (trusted as a vendor root),
//! `vigil-attester`, and `vigil node register` / `vigil verify` without trust on first use.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::attester_server::{Attester, AttesterServer};
use vigil_proto::v1::{
    ActivateCredentialRequest, ActivateCredentialResponse, Evidence, GetEvidenceRequest,
    GetIdentityRequest, Identity,
};

fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or(serde_json::Value::Null)
}

fn failed_check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name && c["passed"] == false))
        .unwrap_or_else(|| panic!("expected failed check {name} in {report:#}"))
}

fn register(
    address: &str,
    db: &str,
    trust: Option<&std::path::Path>,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "node", "register", address, "--group", "gpu-a", "--db", db, "--json",
    ];
    let trust_dir;
    if let Some(dir) = trust {
        trust_dir = dir.display().to_string();
        args.extend(["--ek-roots", trust_dir.as_str()]);
    }
    args.extend_from_slice(extra);
    vigil(&args)
}

#[test]
fn register_then_attest_passes_and_other_tpms_fail() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("register");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let attester = start_attester(&tpm, &dir.join("attester"), "gpu-node-7", &[]);

    // Before registration, and without --tofu, the node's quotes are not trusted.
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        failed_check(&json_of(&out), "ak.known")["detail"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );

    let out = register(&attester.address, db, Some(&trust), &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let report = json_of(&out);
    assert_eq!(report["ak_trust"], "ek-certified");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "ak.name",
        "ak.attributes",
        "ek.certificate",
        "credential.activation",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }

    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json_of(&out)["ak_trust"], "ek-certified");

    let out = vigil(&["nodes", "--db", db, "--json"]);
    let nodes = json_of(&out);
    assert_eq!(nodes[0]["node_id"], "gpu-node-7");
    assert_eq!(nodes[0]["group"], "gpu-a");
    assert_eq!(nodes[0]["last_verdict"], "pass");

    // Another TPM (genuine, same CA) claiming to be the same node: its AK is not the one
    // registered, so its quotes fail, and it cannot re-register over the node.
    let other_tpm = Swtpm::start_with_ek_certificate(&ca);
    let impostor = start_attester(&other_tpm, &dir.join("impostor"), "gpu-node-7", &[]);
    let out = vigil(&[
        "verify",
        "--node",
        &impostor.address,
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let report = json_of(&out);
    assert!(
        failed_check(&report, "ak.known")["detail"]
            .as_str()
            .unwrap()
            .contains("not the AK recorded")
    );
    // It came from another address than the registered one: a claimed identity, audited,
    // and the genuine node stays trusted.
    assert!(
        failed_check(&report, "node.claimed_identity")["detail"]
            .as_str()
            .unwrap()
            .contains("status is unchanged")
    );
    let out = vigil(&["nodes", "--db", db, "--json"]);
    let nodes = json_of(&out);
    assert_eq!(nodes[0]["status"], "trusted", "{nodes:#}");
    assert_eq!(nodes[0]["last_verdict"], "pass", "{nodes:#}");
    let out = vigil(&["audit", "list", "--db", db, "--kind", "verdict", "--json"]);
    let audit = json_of(&out).to_string();
    assert!(
        audit.contains("\"claimed_identity\":true"),
        "the impostor's verdict is in the audit log: {audit}"
    );
    // The genuine node, pulled from its registered address, is still trusted.
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = register(&impostor.address, db, Some(&trust), &[]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        failed_check(&json_of(&out), "node.registration")["detail"]
            .as_str()
            .unwrap()
            .contains("already registered")
    );

    // After an operator removes the node, the new TPM can be registered deliberately.
    let out = vigil(&["node", "remove", "gpu-node-7", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = register(&impostor.address, db, Some(&trust), &[]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn an_ek_certificate_from_an_untrusted_ca_fails() {
    let trusted_ca = EkCa::new();
    let _ = Swtpm::start_with_ek_certificate(&trusted_ca); // creates the trusted CA's files
    let rogue_ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&rogue_ca);
    let dir = TempDir::new("untrusted");
    let db = dir.join("vigil.db");
    let attester = start_attester(&tpm, &dir.join("attester"), "rogue-node", &[]);
    let out = register(
        &attester.address,
        db.to_str().unwrap(),
        Some(&trusted_ca.trust_dir()),
        &[],
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let detail = failed_check(&json_of(&out), "ek.certificate")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    // Both local CAs are called "swtpm-localca": the rogue chain matches by name, and fails
    // on the signature, as an impostor CA copying a vendor's names would.
    assert!(detail.contains("does not verify"), "{detail}");
    // Nothing was registered.
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db.to_str().unwrap(),
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 1);
}

#[test]
fn a_tpm_without_ek_certificate_needs_an_explicit_allow_list_entry() {
    allow_listed_registration("rsa");
}

#[test]
fn an_ecc_ek_registers_through_credential_activation_too() {
    allow_listed_registration("ecc");
}

fn allow_listed_registration(ek_alg: &str) {
    let tpm = Swtpm::start();
    let dir = TempDir::new("allowlist");
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "vm-node",
        &["--ek-alg", ek_alg],
    );
    let out = register(&attester.address, db, None, &[]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let detail = failed_check(&json_of(&out), "ek.certificate")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("not allow-listed"), "{detail}");
    let fingerprint = detail
        .split_whitespace()
        .find(|w| w.len() == 64)
        .unwrap()
        .to_owned();

    let out = register(
        &attester.address,
        db,
        None,
        &["--ek-allow", &"00".repeat(32)],
    );
    assert_eq!(code(&out), 1, "another EK's fingerprint must not do");
    let out = register(&attester.address, db, None, &["--ek-allow", &fingerprint]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json_of(&out)["ak_trust"], "ek-allowlisted");
}

/// An attester that relays a real one but answers credential activation wrongly.
struct LyingAttester {
    upstream: String,
}

#[tonic::async_trait]
impl Attester for LyingAttester {
    async fn get_evidence(
        &self,
        request: Request<GetEvidenceRequest>,
    ) -> Result<Response<Evidence>, Status> {
        let mut client = AttesterClient::connect(self.upstream.clone())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        client.get_evidence(request.into_inner()).await
    }

    async fn get_identity(
        &self,
        request: Request<GetIdentityRequest>,
    ) -> Result<Response<Identity>, Status> {
        let mut client = AttesterClient::connect(self.upstream.clone())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        client.get_identity(request.into_inner()).await
    }

    async fn activate_credential(
        &self,
        _request: Request<ActivateCredentialRequest>,
    ) -> Result<Response<ActivateCredentialResponse>, Status> {
        Ok(Response::new(ActivateCredentialResponse {
            secret: vec![0x42; 32],
        }))
    }
}

#[test]
fn a_wrong_activation_answer_fails_registration() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let dir = TempDir::new("liar");
    let attester = start_attester(&tpm, &dir.join("attester"), "liar-node", &[]);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(AttesterServer::new(LyingAttester {
                upstream: attester.url(),
            }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let db = dir.join("vigil.db");
    let out = register(&address, db.to_str().unwrap(), Some(&ca.trust_dir()), &[]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let detail = failed_check(&json_of(&out), "credential.activation")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("wrong secret"), "{detail}");
}

#[test]
fn registration_through_the_registrar_service_then_attestation_through_the_verifier() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("registrar");
    let attester = start_attester(&tpm, &dir.join("attester"), "grpc-node", &[]);
    let verifier = start_verifier(
        &dir.join("vigil.db"),
        &["--ek-roots", trust.to_str().unwrap(), "--allow-no-baseline"],
    );

    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--verifier",
        &verifier.url(),
        "--json",
    ]);
    assert_eq!(code(&out), 1, "unregistered: {}", stdout(&out));

    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--group",
        "gpu-b",
        "--verifier",
        &verifier.url(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_of(&out)["ak_trust"], "ek-certified");

    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--verifier",
        &verifier.url(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json_of(&out)["ak_trust"], "ek-certified");
}

/// The vendor CAs delivered the way Microsoft delivers them, in a cabinet (built here with
/// gcab from the local CA that "manufactured" the TPM): `vigil certs import-tpm-cab` makes a
/// trust directory registration accepts.
#[test]
fn registration_trusts_vendor_cas_imported_from_a_cabinet() {
    require_tools(&["gcab"]);
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("cab-import");
    // TrustedTpm.cab's layout: <vendor>/RootCA and <vendor>/IntermediateCA.
    let staging = dir.join("staging");
    for (from, to) in [
        ("root.pem", "SwtpmLocalCA/RootCA/root.crt"),
        (
            "intermediate.pem",
            "SwtpmLocalCA/IntermediateCA/intermediate.crt",
        ),
    ] {
        let path = staging.join(to);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(trust.join(from), path).unwrap();
    }
    let cabinet = dir.join("TrustedTpm.cab");
    let out = run(std::process::Command::new("gcab")
        .current_dir(&staging)
        .arg("-cz")
        .arg(&cabinet)
        .args([
            "SwtpmLocalCA/RootCA/root.crt",
            "SwtpmLocalCA/IntermediateCA/intermediate.crt",
        ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let imported = dir.join("ek-roots");
    let out = vigil(&[
        "certs",
        "import-tpm-cab",
        cabinet.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("1 roots, 1 intermediates"),
        "{}",
        stdout(&out)
    );

    let attester = start_attester(&tpm, &dir.join("attester"), "cab-node", &[]);
    let db = dir.join("vigil.db");
    let out = register(
        &attester.address,
        db.to_str().unwrap(),
        Some(&imported),
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    // A cabinet that is not one is refused, naming why.
    std::fs::write(&cabinet, b"MSCF but not really").unwrap();
    let out = vigil(&[
        "certs",
        "import-tpm-cab",
        cabinet.to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("truncated: CFHEADER"),
        "{}",
        stderr(&out)
    );
}
