//! Mutual TLS with roles, end to end: `vigil dev-certs`, `vigil serve --tls-dir` and
//! `vigil-attester serve --tls-dir`. A client without a certificate is refused; an attester
//! certificate cannot change baselines; an auditor reads but cannot write; the verifier pulls
//! from an attester with its own certificate, which an orchestrator's does not replace.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::baselines_client::BaselinesClient;
use vigil_proto::v1::{GetIdentityRequest, ListBaselinesRequest};

const BASELINE: &str = "format = 1\nname = \"lab\"\n[identity]\nak_trust = [\"ek-certified\"]\n";

#[test]
fn roles_decide_what_each_certificate_may_do() {
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("mtls");
    let certs = dir.join("certs");
    let out = vigil(&["dev-certs", certs.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let certs_s = certs.to_str().unwrap();
    assert_eq!(
        code(&vigil(&["dev-certs", certs_s])),
        2,
        "existing certificates are never overwritten"
    );

    // Without --tls-dir or --dev the servers refuse to start.
    let out = vigil(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        dir.join("x.db").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("refusing to serve without mutual TLS"),
        "{}",
        stderr(&out)
    );

    let db = dir.join("vigil.db");
    let verifier = start_verifier(
        &db,
        &[
            "--tls-dir",
            certs_s,
            "--ek-roots",
            trust.to_str().unwrap(),
            "--poll-interval",
            "0",
            "--allow-no-baseline",
        ],
    );
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "lab-node",
        &["--tls-dir", certs_s],
    );
    let url = verifier.tls_url();
    let baseline = dir.join("lab.toml");
    std::fs::write(&baseline, BASELINE).unwrap();
    let put = |role: &str| {
        vigil(&[
            "baseline",
            "put",
            baseline.to_str().unwrap(),
            "--author",
            "t",
            "--reason",
            "r",
            "--verifier",
            &url,
            "--tls-dir",
            certs_s,
            "--as",
            role,
        ])
    };

    // Plaintext to a TLS server: no answer.
    let out = vigil(&["baseline", "list", "--verifier", &verifier.url()]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));

    // TLS without a client certificate: refused (in the handshake or as unauthenticated).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca_pem = std::fs::read(certs.join("ca.pem")).unwrap();
    let refused = runtime.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(url.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await;
        match channel {
            Err(_) => true,
            Ok(channel) => BaselinesClient::new(channel)
                .list(ListBaselinesRequest {})
                .await
                .is_err(),
        }
    });
    assert!(refused, "a client without a certificate was served");

    // An attester certificate may not change baselines; an auditor may read, not write.
    let out = put("attester");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).to_lowercase().contains("not allowed") || stderr(&out).contains("may not"),
        "{}",
        stderr(&out)
    );
    let out = put("auditor");
    assert_eq!(code(&out), 2, "auditor wrote a baseline");
    let out = vigil(&[
        "baseline",
        "list",
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
        "--as",
        "auditor",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = put("admin");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Register (admin) and attest (orchestrator) through the verifier, which pulls from the
    // attester with its own `verifier` certificate.
    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--group",
        "lab",
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // Baselines.Impact over gRPC (orchestrator): a baseline demanding a boot log would turn
    // this log-less node contraindicated; nothing is applied.
    let proposed = dir.join("proposed.toml");
    std::fs::write(
        &proposed,
        "format = 1\nname = \"lab\"\n[boot]\nevent_log = \"required\"\n",
    )
    .unwrap();
    let out = vigil(&[
        "baseline",
        "impact",
        proposed.to_str().unwrap(),
        "--group",
        "lab",
        "--verifier",
        &url,
        "--tls-dir",
        certs_s,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let impact: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(impact["nodes"][0]["node_id"], "lab-node", "{impact:#}");
    assert_eq!(impact["nodes"][0]["changes"], true, "{impact:#}");
    assert_eq!(impact["nodes"][0]["proposed_status"], "contraindicated");

    // The attester answers only the verifier's (or an admin's) certificate.
    let attester_url = format!("https://{}", attester.address);
    let call_attester = |role: vigil_tls::Role| {
        let tls = vigil_tls::client_tls_config_from_dir(&certs, role, "127.0.0.1").unwrap();
        runtime.block_on(async {
            let channel = Endpoint::from_shared(attester_url.clone())
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap();
            AttesterClient::new(channel)
                .get_identity(GetIdentityRequest {})
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        })
    };
    assert_eq!(
        call_attester(vigil_tls::Role::Orchestrator),
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(call_attester(vigil_tls::Role::Verifier), Ok(()));

    // An attester certificate naming its node (dev-certs: "dev-node") challenges only as
    // itself: it cannot obtain nonces, or submit evidence, for another node.
    let challenge = |node_id: &str| {
        let tls =
            vigil_tls::client_tls_config_from_dir(&certs, vigil_tls::Role::Attester, "127.0.0.1")
                .unwrap();
        runtime.block_on(async {
            let channel = Endpoint::from_shared(url.clone())
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap();
            vigil_proto::v1::verifier_client::VerifierClient::new(channel)
                .challenge(vigil_proto::v1::ChallengeRequest {
                    node_id: node_id.into(),
                })
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        })
    };
    assert_eq!(challenge("lab-node"), Err(tonic::Code::PermissionDenied));
    assert_eq!(challenge(vigil_tls::DEV_NODE_ID), Ok(()));
}
