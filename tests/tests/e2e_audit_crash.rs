//! Durability under crashes: attestations run concurrently (push mode, loopback, bounded)
//! while the verifier is killed with SIGKILL, three times. After each restart, every verdict
//! a client got an answer for must be in the audit log, and the log must verify.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{AttestRequest, ChallengeRequest, GetEvidenceRequest};

const CLIENTS: usize = 4;
const ROUNDS: usize = 3;
const ROUND_TIME: Duration = Duration::from_millis(1500);
const MAX_ATTEMPTS_PER_CLIENT: usize = 200;

/// One client: challenge, collect evidence, attest, until the verifier stops answering.
/// Returns the nonces whose verdicts were acknowledged.
async fn client(verifier: String, attester: String, deadline: Instant) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let (Ok(mut v), Ok(mut a)) = (
        VerifierClient::connect(verifier).await,
        AttesterClient::connect(attester).await,
    ) else {
        return acknowledged;
    };
    for _ in 0..MAX_ATTEMPTS_PER_CLIENT {
        if Instant::now() > deadline {
            break;
        }
        let Ok(challenge) = v
            .challenge(ChallengeRequest {
                node_id: "crash-node".into(),
            })
            .await
        else {
            break;
        };
        let nonce = challenge.into_inner().nonce;
        let Ok(evidence) = a
            .get_evidence(GetEvidenceRequest {
                nonce: nonce.clone(),
                selection: None,
                ima_offset: 0,
            })
            .await
        else {
            break;
        };
        match v
            .attest(AttestRequest {
                node_id: "crash-node".into(),
                evidence: Some(evidence.into_inner()),
            })
            .await
        {
            Ok(_) => acknowledged.push(hex::encode(&nonce)),
            Err(_) => break,
        }
    }
    acknowledged
}

#[test]
fn every_acknowledged_verdict_survives_kill_9() {
    let tpm = Swtpm::start();
    let dir = TempDir::new("crash");
    let db = dir.join("vigil.db");
    let attester = start_attester(&tpm, &dir.join("attester"), "crash-node", &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acknowledged = BTreeSet::new();
    for round in 0..ROUNDS {
        let verifier = start_verifier(&db, &["--tofu", "--allow-no-baseline"]);
        // Kill the verifier while the clients are mid-flight.
        let deadline = Instant::now() + ROUND_TIME * 10;
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| runtime.spawn(client(verifier.url(), attester.url(), deadline)))
            .collect();
        std::thread::sleep(ROUND_TIME);
        drop(verifier); // SIGKILL, no chance to flush anything
        let mut this_round = 0;
        for task in tasks {
            let nonces = runtime.block_on(task).unwrap();
            this_round += nonces.len();
            acknowledged.extend(nonces);
        }
        eprintln!("round {round}: {this_round} verdicts acknowledged before SIGKILL");
    }
    assert!(
        !acknowledged.is_empty(),
        "no verdict was acknowledged: the load did not run"
    );

    let out = vigil(&[
        "audit",
        "list",
        "--db",
        db.to_str().unwrap(),
        "--kind",
        "verdict",
        "--json",
    ]);
    let entries: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let logged: BTreeSet<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["body"]["nonce"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&logged).collect();
    assert!(
        lost.is_empty(),
        "acknowledged verdicts missing from the audit log: {lost:?}"
    );
    let out = vigil(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    eprintln!(
        "{} acknowledged verdicts checked, all in the audit log ({} entries); audit verify: {}",
        acknowledged.len(),
        logged.len(),
        stdout(&out).trim()
    );
}
