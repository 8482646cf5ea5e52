//! Continuous attestation, pull mode: every registered node with an address is re-attested
//! on an interval (jittered, bounded concurrency). A node that cannot be reached, or whose
//! last verdict is older than two intervals, becomes `unknown`: it never stays `trusted`.
//! Evidence retention (`vigil serve --retain-evidence`) runs here too, at start and hourly.

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
///
/// On PostgreSQL, replicas share the fleet through node leases instead: every quarter
/// interval each replica claims the nodes whose lease expired (`SKIP LOCKED`, so no node is
/// claimed twice), holds them for one interval and attests them. A node is re-attested about
/// once an interval by whichever replica claimed it, and a dead replica's nodes come due for
/// the others when their leases expire, at most one interval after it last attested them.
pub async fn run(verifier: Arc<Verifier>, config: PollConfig) {
    if verifier.replica_id().is_some() {
        let tick = (config.interval / 4).max(Duration::from_secs(1));
        loop {
            let due = tokio::time::Instant::now() + tick;
            tokio::time::sleep_until(due).await;
            poll_round(Arc::clone(&verifier), config, due.into_std()).await;
        }
    }
    loop {
        let due = tokio::time::Instant::now() + config.interval + jitter(config.interval);
        tokio::time::sleep_until(due).await;
        poll_round(Arc::clone(&verifier), config, due.into_std()).await;
    }
}

/// One round: attest every registered node with an address, then mark overdue ones unknown.
pub async fn poll_once(verifier: Arc<Verifier>, config: PollConfig) {
    poll_round(verifier, config, std::time::Instant::now()).await;
}

/// One round that was due at `due`: each node's attestation records how late it started
/// (`vigil_poll_lag_seconds`: timer lateness plus waiting for a concurrency slot).
async fn poll_round(verifier: Arc<Verifier>, config: PollConfig, due: std::time::Instant) {
    let nodes = {
        let verifier = Arc::clone(&verifier);
        let lease_secs = config.interval.as_secs().max(1) as i64;
        match tokio::task::spawn_blocking(move || verifier.nodes_to_poll(lease_secs)).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(error)) => {
                tracing::error!(event = "poll_failure", %error, "poller cannot list nodes");
                return;
            }
            Err(error) => {
                tracing::error!(event = "poll_failure", %error, "poller task failed");
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
            verifier
                .metrics()
                .poll_lag(std::time::Instant::now().saturating_duration_since(due));
            let outcome = attest_node(Arc::clone(&verifier), &address).await;
            if let Err(error) = outcome {
                tracing::warn!(
                    event = "poll_failure",
                    node = %node.node_id,
                    address = %address,
                    reason = %error,
                    "poll failed"
                );
                let reason = format!("not attested: {error}");
                let node_id = node.node_id.clone();
                match tokio::task::spawn_blocking(move || {
                    verifier.mark_unknown(&node_id, &reason, unix_now())
                })
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(node = %node.node_id, %error, "cannot mark node unknown")
                    }
                    Err(error) => tracing::error!(%error, "mark-unknown task failed"),
                }
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
                    && let Err(error) = verifier_for_check.mark_unknown(
                        &node.node_id,
                        "missed its attestation window",
                        now,
                    )
                {
                    tracing::error!(node = %node.node_id, %error, "cannot mark node unknown");
                }
            }
        }
    })
    .await;
}

/// How often `vigil serve --retain-evidence` prunes, after the prune at start.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Seconds in a retention day.
const DAY_SECS: i64 = 86_400;

/// The cutoff of a `retain_days` retention at `now`: verdicts recorded before it lose their
/// stored evidence (0 days: everything recorded before `now`).
pub fn retention_cutoff(now: i64, retain_days: u32) -> i64 {
    now.saturating_sub(i64::from(retain_days) * DAY_SECS)
}

/// One evidence prune (`--retain-evidence`): logs what it did; an error is logged, and the
/// next round tries again.
pub async fn prune_evidence_once(verifier: Arc<Verifier>, retain_days: u32) {
    let now = unix_now();
    let cutoff = retention_cutoff(now, retain_days);
    match tokio::task::spawn_blocking(move || verifier.prune_evidence(cutoff, now)).await {
        Ok(Ok(report)) => tracing::info!(
            event = "evidence_pruned",
            retain_days,
            cutoff,
            pruned = report.pruned,
            kept_shared = report.kept_shared,
            audit_index = report.audit_index.map(|i| i as i64).unwrap_or(-1),
            "evidence retention: pruned the evidence of verdicts older than {retain_days} days"
        ),
        Ok(Err(error)) => tracing::error!(
            event = "evidence_prune_failure",
            %error,
            "evidence retention failed (nothing was pruned); it is retried in an hour: check the database"
        ),
        Err(error) => {
            tracing::error!(event = "evidence_prune_failure", %error, "prune task failed")
        }
    }
}

/// Runs forever (until the server stops): a prune every [`RETENTION_INTERVAL`].
pub async fn retain_evidence(verifier: Arc<Verifier>, retain_days: u32) {
    loop {
        tokio::time::sleep(RETENTION_INTERVAL).await;
        prune_evidence_once(Arc::clone(&verifier), retain_days).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_cutoff_is_days_before_now() {
        assert_eq!(retention_cutoff(1_000_000, 0), 1_000_000);
        assert_eq!(retention_cutoff(1_000_000, 2), 1_000_000 - 2 * 86_400);
        // Absurd retentions keep everything instead of wrapping around.
        assert_eq!(retention_cutoff(i64::MIN + 5, u32::MAX), i64::MIN);
    }
}
