//! Load test (slow, ignored by default; loopback only, bounded): N attesters, one swtpm each,
//! and C concurrent orchestrator clients asking one verifier to attest them (`AttestNode`:
//! nonce, quote, appraisal against a baseline, signed result, durable audit append) for a
//! fixed time. Prints attestations/s and latency percentiles.
//!
//! cargo build --release --workspace --bins
//! VIGIL_LOAD_ATTESTERS=8 VIGIL_LOAD_CLIENTS=8 VIGIL_LOAD_SECONDS=20 \
//!   cargo test --release -p vigil-e2e --test load_attestation -- --ignored --nocapture

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_e2e::*;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{AttestNodeRequest, Verdict};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[test]
#[ignore = "slow load test: run with --ignored (see the file's doc comment)"]
fn attestations_per_second_and_latency() {
    let attesters = setting("VIGIL_LOAD_ATTESTERS", 8);
    let clients = setting("VIGIL_LOAD_CLIENTS", 8);
    let seconds = setting("VIGIL_LOAD_SECONDS", 20) as u64;
    let ca = EkCa::new();
    let tpms: Vec<Swtpm> = (0..attesters)
        .map(|_| Swtpm::start_with_ek_certificate(&ca))
        .collect();
    let trust = ca.trust_dir();
    let dir = TempDir::new("load");
    let db = dir.join("vigil.db");
    let verifier = start_verifier(
        &db,
        &[
            "--ek-roots",
            trust.to_str().unwrap(),
            "--poll-interval",
            "0",
        ],
    );
    let url = verifier.url();
    let servers: Vec<Server> = tpms
        .iter()
        .enumerate()
        .map(|(i, tpm)| {
            start_attester(
                tpm,
                &dir.join(&format!("a{i}")),
                &format!("load-{i:02}"),
                &[],
            )
        })
        .collect();
    for server in &servers {
        let out = vigil(&[
            "node",
            "register",
            &server.address,
            "--group",
            "load",
            "--verifier",
            &url,
        ]);
        assert_eq!(code(&out), 0, "{}", stdout(&out));
    }
    // A realistic baseline: identity, PCR pins (swtpm: all zero), freshness.
    let baseline = dir.join("load.toml");
    let mut text = String::from(
        "format = 1\nname = \"load\"\n[freshness]\nmax_evidence_age_seconds = 300\n[identity]\nak_trust = [\"ek-certified\"]\n[pcrs.sha256]\n",
    );
    for pcr in 0..10 {
        text.push_str(&format!("{pcr} = \"{}\"\n", "00".repeat(32)));
    }
    std::fs::write(&baseline, text).unwrap();
    let put = vigil(&[
        "baseline",
        "put",
        baseline.to_str().unwrap(),
        "--author",
        "load",
        "--reason",
        "load test",
        "--verifier",
        &url,
    ]);
    assert_eq!(code(&put), 0, "{}", stderr(&put));
    let assign = vigil(&[
        "baseline",
        "assign",
        "load",
        "load",
        "--author",
        "load",
        "--reason",
        "load test",
        "--verifier",
        &url,
    ]);
    assert_eq!(code(&assign), 0, "{}", stderr(&assign));

    let addresses: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.address.clone()).collect());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (latencies, failures) = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for client_index in 0..clients {
            let url = url.clone();
            let addresses = Arc::clone(&addresses);
            tasks.push(tokio::spawn(async move {
                let mut client = VerifierClient::connect(url).await.unwrap();
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                let mut next = client_index;
                while Instant::now() < deadline {
                    let address = addresses[next % addresses.len()].clone();
                    next += 1;
                    let started = Instant::now();
                    match client
                        .attest_node(AttestNodeRequest {
                            address,
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(reply) if reply.get_ref().verdict == Verdict::Pass as i32 => {
                            latencies.push(started.elapsed())
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            }));
        }
        let mut all = Vec::new();
        let mut failures = 0;
        for task in tasks {
            let (latencies, failed) = task.await.unwrap();
            all.extend(latencies);
            failures += failed;
        }
        (all, failures)
    });
    let mut sorted = latencies.clone();
    sorted.sort();
    let rate = sorted.len() as f64 / seconds as f64;
    println!(
        "load: {attesters} attesters, {clients} clients, {seconds} s: {} attestations ({rate:.1}/s), {failures} failed; \
         latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.90),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or_default()
    );
    assert_eq!(failures, 0, "every attestation under load passes");
    assert!(!sorted.is_empty());
    // Every acknowledged verdict is in the audit log.
    let out = vigil(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
