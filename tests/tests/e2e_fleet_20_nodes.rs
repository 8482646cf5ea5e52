//! Continuous attestation of a fleet: 20 simulated GPU hosts, each with its own software TPM
//! (one swtpm per node, each manufactured with an EK certificate by one local CA) and its own
//! attester, registered and then re-attested by the verifier every second. All become
//! `trusted`; stopping one attester turns exactly that node `unknown` within its window.
//! Slow by design (about a minute on two cores): it starts 40 processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigil_e2e::*;

const NODES: usize = 20;

#[test]
fn twenty_nodes_are_attested_continuously_and_a_stopped_one_turns_unknown() {
    let ca = EkCa::new();
    // Sequentially, from this thread: each swtpm dies with the thread that spawned it.
    let tpms: Vec<Swtpm> = (0..NODES)
        .map(|_| Swtpm::start_with_ek_certificate(&ca))
        .collect();
    let trust = ca.trust_dir();
    let dir = TempDir::new("fleet");
    let verifier = start_verifier(
        &dir.join("vigil.db"),
        &[
            "--ek-roots",
            trust.to_str().unwrap(),
            "--poll-interval",
            "1",
            "--poll-concurrency",
            "8",
            "--allow-no-baseline",
        ],
    );
    let mut attesters: Vec<Option<Server>> = tpms
        .iter()
        .enumerate()
        .map(|(i, tpm)| {
            Some(start_attester(
                tpm,
                &dir.join(&format!("attester-{i}")),
                &format!("gpu-{i:02}"),
                &[],
            ))
        })
        .collect();
    for attester in attesters.iter().flatten() {
        let out = vigil(&[
            "node",
            "register",
            &attester.address,
            "--group",
            "fleet",
            "--verifier",
            &verifier.url(),
        ]);
        assert_eq!(code(&out), 0, "{}", stdout(&out));
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut stream = watch_from(verifier.url(), 0).await;
        let mut status: BTreeMap<String, String> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while status.values().filter(|s| *s == "trusted").count() < NODES {
            let left = deadline.saturating_duration_since(Instant::now());
            let change = tokio::time::timeout(left, stream.message())
                .await
                .unwrap_or_else(|_| panic!("not all nodes became trusted: {status:?}"))
                .unwrap()
                .unwrap();
            status.insert(change.node_id, change.new_status);
        }
        let started = Instant::now();
        if let Some(attester) = attesters[7].take() {
            attester.stop();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let change = tokio::time::timeout(left, stream.message())
                .await
                .expect("gpu-07 turns unknown")
                .unwrap()
                .unwrap();
            if change.new_status == "unknown" {
                assert_eq!(
                    change.node_id, "gpu-07",
                    "only the stopped node may turn unknown: {change:?}"
                );
                eprintln!(
                    "{NODES} nodes trusted; gpu-07 unknown {:?} after its attester stopped",
                    started.elapsed()
                );
                break;
            }
        }
    });
}
