//! Push mode: the attester attests itself to a verifier on its own interval (Challenge, then
//! Attest), for hosts the verifier cannot reach. The verifier judges freshness and windows
//! exactly as in pull mode; this loop only keeps the evidence coming.

use std::sync::Arc;
use std::time::Duration;

use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{AttestRequest, ChallengeRequest, Verdict};

use crate::collect::Collector;

/// `host:port` becomes `http://host:port`; explicit schemes are kept.
fn endpoint_uri(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// One push: a nonce from the verifier, evidence for it, the verdict back.
async fn push_once(collector: &Arc<Collector>, verifier: &str) -> Result<String, String> {
    let mut client = VerifierClient::connect(endpoint_uri(verifier))
        .await
        .map_err(|e| format!("cannot reach the verifier at {verifier}: {e}"))?;
    let node_id = collector.node_id().to_owned();
    let challenge = client
        .challenge(ChallengeRequest {
            node_id: node_id.clone(),
        })
        .await
        .map_err(|s| format!("Challenge refused: {}", s.message()))?
        .into_inner();
    let selection = challenge.selection.unwrap_or_default();
    let collector = Arc::clone(collector);
    let evidence = tokio::task::spawn_blocking(move || {
        collector.evidence(&challenge.nonce, &selection.pcrs, &selection.banks)
    })
    .await
    .map_err(|e| format!("evidence task failed: {e}"))?
    .map_err(|e| format!("collecting evidence: {e}"))?;
    let result = client
        .attest(AttestRequest {
            node_id,
            evidence: Some(evidence),
        })
        .await
        .map_err(|s| format!("Attest refused: {}", s.message()))?
        .into_inner();
    Ok(if result.verdict == Verdict::Pass as i32 {
        "PASS".to_owned()
    } else {
        format!("FAIL: {}", result.summary)
    })
}

/// Pushes evidence every `interval` until the process stops; failures are reported and the
/// loop goes on (the verifier marks the node unknown if pushes stop arriving).
pub async fn run(collector: Arc<Collector>, verifier: String, interval: Duration) {
    loop {
        match push_once(&collector, &verifier).await {
            Ok(verdict) => println!("vigil-attester pushed evidence to {verifier}: {verdict}"),
            Err(error) => eprintln!("vigil-attester: push to {verifier} failed: {error}"),
        }
        tokio::time::sleep(interval).await;
    }
}
