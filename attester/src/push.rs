//! Push mode: the attester attests itself to a verifier on its own interval (Challenge, then
//! Attest), for hosts the verifier cannot reach. The verifier judges freshness and windows
//! exactly as in pull mode; this loop only keeps the evidence coming.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{AttestRequest, ChallengeRequest, Verdict};

use crate::collect::Collector;

use vigil_tls::{endpoint_uri, host_of};

async fn connect(
    verifier: &str,
    tls_dir: Option<&Path>,
) -> Result<VerifierClient<tonic::transport::Channel>, String> {
    let uri = endpoint_uri(verifier, tls_dir.is_some());
    let mut endpoint = tonic::transport::Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("invalid verifier address {verifier:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    if let Some(dir) = tls_dir {
        let tls =
            vigil_tls::client_tls_config_from_dir(dir, vigil_tls::Role::Attester, host_of(&uri))
                .map_err(|e| format!("attester client certificate: {e}"))?;
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("TLS: {e}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot reach the verifier at {uri}: {e}"))?;
    Ok(VerifierClient::new(channel))
}

/// One push: a nonce from the verifier, evidence for it, the verdict back.
async fn push_once(
    collector: &Arc<Collector>,
    verifier: &str,
    tls_dir: Option<&Path>,
) -> Result<String, String> {
    let mut client = connect(verifier, tls_dir).await?;
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
        collector.evidence(
            &challenge.nonce,
            &selection.pcrs,
            &selection.banks,
            challenge.ima_offset,
        )
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
pub async fn run(
    collector: Arc<Collector>,
    verifier: String,
    interval: Duration,
    tls_dir: Option<PathBuf>,
) {
    loop {
        match push_once(&collector, &verifier, tls_dir.as_deref()).await {
            Ok(verdict) => println!("vigil-attester pushed evidence to {verifier}: {verdict}"),
            Err(error) => eprintln!("vigil-attester: push to {verifier} failed: {error}"),
        }
        tokio::time::sleep(interval).await;
    }
}
