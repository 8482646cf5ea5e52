//! Pull mode: the verifier challenges an attester itself (`AttestNode`, `vigil verify`).

use std::sync::Arc;

use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::{GetEvidenceRequest, GetIdentityRequest};

use crate::attest::{Origin, Verifier, VerifierError, unix_now};
use crate::report::AttestationReport;

/// Largest evidence message accepted. The bulk is a whole IMA list at the first attestation of
/// a boot (about 120 bytes an entry; later attestations send only new entries); event logs
/// are < 1 MiB.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("invalid attester address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot reach the attester at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("attester at {address} refused {call}: {status}")]
    Call {
        address: String,
        call: &'static str,
        status: String,
    },
    #[error(transparent)]
    Verifier(#[from] VerifierError),
}

/// `host:port` becomes `http://host:port`; explicit schemes are kept.
pub fn endpoint_uri(address: &str) -> String {
    crate::connect::endpoint_uri(address, false)
}

/// A client for the attester at `address` (mutual TLS with `tls`), and the URI used.
pub async fn connect_attester(
    address: &str,
    tls: Option<&crate::connect::ClientTls>,
) -> Result<(AttesterClient<tonic::transport::Channel>, String), PullError> {
    let (endpoint, uri) =
        crate::connect::endpoint(address, tls).map_err(|reason| PullError::Address {
            address: address.to_owned(),
            reason,
        })?;
    let channel = endpoint.connect().await.map_err(|e| PullError::Connect {
        address: uri.clone(),
        reason: format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
    })?;
    let client = AttesterClient::new(channel).max_decoding_message_size(MAX_EVIDENCE_BYTES);
    Ok((client, uri))
}

/// Maps a refused attester call to an error naming the attester and the call.
pub fn call_error(uri: &str, call: &'static str) -> impl FnOnce(tonic::Status) -> PullError {
    let uri = uri.to_owned();
    move |status| PullError::Call {
        address: uri,
        call,
        status: format!("{}: {}", status.code(), status.message()),
    }
}

/// Challenges the attester at `address`, appraises what it returns, records the verdict.
pub async fn attest_node(
    verifier: Arc<Verifier>,
    address: &str,
) -> Result<AttestationReport, PullError> {
    let (mut client, uri) = connect_attester(address, verifier.client_tls()).await?;
    let call_error = |call: &'static str| call_error(&uri, call);
    let identity = client
        .get_identity(GetIdentityRequest {})
        .await
        .map_err(call_error("GetIdentity"))?
        .into_inner();
    let node_id = identity.node_id;
    // At most twice: a host that rebooted since the verifier's last look sends IMA entries
    // the verifier cannot continue from; the second challenge then asks for the whole list.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let challenge = {
            let verifier = Arc::clone(&verifier);
            let node_id = node_id.clone();
            tokio::task::spawn_blocking(move || verifier.challenge(&node_id, unix_now()))
                .await
                .map_err(|e| VerifierError::InvalidRequest(format!("challenge task: {e}")))??
        };
        let evidence = client
            .get_evidence(GetEvidenceRequest {
                nonce: challenge.nonce.clone(),
                selection: Some(challenge.selection),
                ima_offset: challenge.ima_offset,
            })
            .await
            .map_err(call_error("GetEvidence"))?
            .into_inner();
        let origin = Origin::Pulled(address.to_owned());
        let appraised = {
            let verifier = Arc::clone(&verifier);
            let node_id = node_id.clone();
            tokio::task::spawn_blocking(move || {
                verifier.appraise(
                    &node_id,
                    Some(&challenge.nonce),
                    &evidence,
                    &origin,
                    unix_now(),
                )
            })
            .await
            .map_err(|e| VerifierError::InvalidRequest(format!("appraisal task: {e}")))?
        };
        match appraised {
            Err(VerifierError::ImaRestart(_)) if attempt < 2 => continue,
            other => return Ok(other?),
        }
    }
}
