//! Continuous attestation, pull mode: every registered node with an address is re-attested
//! on an interval (jittered, bounded concurrency). A node that cannot be reached, or whose
//! last verdict is older than two intervals, becomes `unknown`: it never stays `trusted`.

use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

use crate::attest::{Verifier, unix_now};
use crate::pull::attest_node;
use crate::store::STATUS_UNKNOWN;

#[derive(Debug, Clone, Copy)]
pub struct PollConfig {
    pub interval: Duration,
    /// Most attestations in flight at once.
    pub concurrency: usize,
}

/// Up to a tenth of the interval, so a fleet's attesters are not all challenged at once.
fn jitter(interval: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let max_ms = (interval.as_millis() / 10).max(1) as u64;
    Duration::from_millis(u64::from(u32::from_le_bytes(bytes)) % max_ms)
}

/// Runs forever (until the server stops), one round per interval.
pub async fn run(verifier: Arc<Verifier>, config: PollConfig) {
    loop {
        tokio::time::sleep(config.interval + jitter(config.interval)).await;
        poll_once(Arc::clone(&verifier), config).await;
    }
}

/// One round: attest every registered node with an address, then mark overdue ones unknown.
pub async fn poll_once(verifier: Arc<Verifier>, config: PollConfig) {
    let nodes = {
        let verifier = Arc::clone(&verifier);
        match tokio::task::spawn_blocking(move || verifier.nodes()).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(error)) => {
                eprintln!("vigil: poller cannot list nodes: {error}");
                return;
            }
            Err(error) => {
                eprintln!("vigil: poller task failed: {error}");
                return;
            }
        }
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = Vec::new();
    for node in nodes.into_iter().filter(|n| n.registered_at.is_some()) {
        let Some(address) = node.address.clone() else {
            continue;
        };
        let verifier = Arc::clone(&verifier);
        let permits = Arc::clone(&permits);
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let outcome = attest_node(Arc::clone(&verifier), &address).await;
            if let Err(error) = outcome {
                let reason = format!("not attested: {error}");
                let node_id = node.node_id.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    verifier.mark_unknown(&node_id, &reason, unix_now())
                })
                .await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    // Anything not freshly attested within two intervals is unknown, whatever it was.
    let window = (2 * config.interval.as_secs()).max(1) as i64;
    let now = unix_now();
    let verifier_for_check = Arc::clone(&verifier);
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(nodes) = verifier_for_check.nodes() {
            for node in nodes {
                if node.status != STATUS_UNKNOWN
                    && node.registered_at.is_some()
                    && now - node.last_seen > window
                {
                    let _ = verifier_for_check.mark_unknown(
                        &node.node_id,
                        "missed its attestation window",
                        now,
                    );
                }
            }
        }
    })
    .await;
}
