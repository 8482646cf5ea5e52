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
    #[error("no registered node {0}; give --address to check an unregistered host")]
    UnknownNode(String),
    #[error(
        "node {0} has no recorded address (it pushes its evidence, `Verifier.Attest`): \
         give --address HOST:PORT to challenge an attester directly"
    )]
    NoAddress(String),
    #[error(transparent)]
    Verifier(#[from] VerifierError),
}

/// `host:port` becomes `http://host:port`; explicit schemes are kept.
pub fn endpoint_uri(address: &str) -> String {
    crate::connect::endpoint_uri(address, false)
}

/// Open channels to attesters, by URI, so that polling a fleet does not pay a TCP and TLS
/// handshake per attestation (tonic reconnects a channel whose connection dropped). Bounded:
/// cleared when full.
#[derive(Debug, Default)]
pub struct AttesterChannels {
    channels: std::sync::Mutex<std::collections::HashMap<String, tonic::transport::Channel>>,
}

/// Most attester channels kept open.
pub const MAX_ATTESTER_CHANNELS: usize = 4096;

impl AttesterChannels {
    fn get(&self, uri: &str) -> Option<tonic::transport::Channel> {
        self.channels.lock().ok()?.get(uri).cloned()
    }

    fn put(&self, uri: &str, channel: tonic::transport::Channel) {
        if let Ok(mut channels) = self.channels.lock() {
            if channels.len() >= MAX_ATTESTER_CHANNELS {
                channels.clear();
            }
            channels.insert(uri.to_owned(), channel);
        }
    }

    /// Forgets the channel to `uri` after a failed call, so the next one connects afresh.
    fn forget(&self, uri: &str) {
        if let Ok(mut channels) = self.channels.lock() {
            channels.remove(uri);
        }
    }
}

/// Like [`connect_attester`], reusing the verifier's open channel to `address` if it has one.
async fn cached_attester(
    verifier: &Verifier,
    address: &str,
) -> Result<(AttesterClient<tonic::transport::Channel>, String), PullError> {
    let tls = verifier.client_tls();
    let uri = crate::connect::endpoint_uri(address, tls.is_some());
    if let Some(channel) = verifier.attester_channels().get(&uri) {
        return Ok((attester_client(channel), uri));
    }
    let (channel, uri) = connect_channel(address, tls).await?;
    verifier.attester_channels().put(&uri, channel.clone());
    Ok((attester_client(channel), uri))
}

/// A client for the attester at `address` (mutual TLS with `tls`), and the URI used.
pub async fn connect_attester(
    address: &str,
    tls: Option<&crate::connect::ClientTls>,
) -> Result<(AttesterClient<tonic::transport::Channel>, String), PullError> {
    let (channel, uri) = connect_channel(address, tls).await?;
    Ok((attester_client(channel), uri))
}

/// A connected channel to the attester at `address`, and the URI used.
async fn connect_channel(
    address: &str,
    tls: Option<&crate::connect::ClientTls>,
) -> Result<(tonic::transport::Channel, String), PullError> {
    let (endpoint, uri) =
        crate::connect::endpoint(address, tls).map_err(|reason| PullError::Address {
            address: address.to_owned(),
            reason,
        })?;
    let channel = endpoint.connect().await.map_err(|e| PullError::Connect {
        address: uri.clone(),
        reason: vigil_tls::explain_transport_error(
            &e,
            &crate::connect::target(&uri, tls, crate::connect::ATTESTER_PEER),
        ),
    })?;
    Ok((channel, uri))
}

fn attester_client(
    channel: tonic::transport::Channel,
) -> AttesterClient<tonic::transport::Channel> {
    AttesterClient::new(channel).max_decoding_message_size(MAX_EVIDENCE_BYTES)
}

/// Maps a failed attester call to an error naming the attester and the call; a transport
/// failure (the channel connects lazily, so TLS and connection errors surface here) says what
/// went wrong connecting and what to do.
pub fn call_error(uri: &str, call: &'static str) -> impl FnOnce(tonic::Status) -> PullError {
    let uri = uri.to_owned();
    move |status| {
        let tls_dir_given = uri.starts_with("https://");
        let target = vigil_tls::TransportTarget {
            uri: &uri,
            tls_dir_given,
            peer: crate::connect::ATTESTER_PEER,
        };
        match vigil_tls::explain_status(&status, &target) {
            Some(reason) => PullError::Connect {
                address: uri.clone(),
                reason,
            },
            None => PullError::Call {
                address: uri,
                call,
                status: format!("{}: {}", status.code(), status.message()),
            },
        }
    }
}

/// Challenges the attester at `address`, appraises what it returns, records the verdict.
pub async fn attest_node(
    verifier: Arc<Verifier>,
    address: &str,
) -> Result<AttestationReport, PullError> {
    attest_at(verifier, address, None).await
}

/// The registered address of node `node_id`: `UnknownNode` when no such node is known,
/// `NoAddress` when it was registered without one (push mode).
pub fn registered_address(verifier: &Verifier, node_id: &str) -> Result<String, PullError> {
    let node = verifier
        .read(|store| store.node(node_id))?
        .map_err(VerifierError::from)?
        .ok_or_else(|| PullError::UnknownNode(node_id.to_owned()))?;
    node.address
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PullError::NoAddress(node_id.to_owned()))
}

/// Attests the registered node `node_id` at its registered address (`vigil verify NAME`).
/// The challenge and the verdict are for `node_id` whatever the attester there calls itself:
/// a host at that address that is not the node fails (`node.id`, `ak.known`) instead of being
/// appraised under its own name.
pub async fn attest_registered_node(
    verifier: Arc<Verifier>,
    node_id: &str,
) -> Result<AttestationReport, PullError> {
    let address = {
        let verifier = Arc::clone(&verifier);
        let node_id = node_id.to_owned();
        tokio::task::spawn_blocking(move || registered_address(&verifier, &node_id))
            .await
            .map_err(|e| VerifierError::InvalidRequest(format!("node lookup task: {e}")))??
    };
    attest_at(verifier, &address, Some(node_id)).await
}

/// Challenges the attester at `address` for `expected` (default: the node id it reports).
async fn attest_at(
    verifier: Arc<Verifier>,
    address: &str,
    expected: Option<&str>,
) -> Result<AttestationReport, PullError> {
    let (mut client, uri) = cached_attester(&verifier, address).await?;
    let result = attest_with(&verifier, &mut client, &uri, address, expected).await;
    if result.is_err() {
        verifier.attester_channels().forget(&uri);
    }
    result
}

async fn attest_with(
    verifier: &Arc<Verifier>,
    client: &mut AttesterClient<tonic::transport::Channel>,
    uri: &str,
    address: &str,
    expected: Option<&str>,
) -> Result<AttestationReport, PullError> {
    let call_error = |call: &'static str| call_error(uri, call);
    // A registered node is challenged under its registered name, whatever the host there
    // calls itself (its evidence names it, and `node.id` fails on a mismatch), so only an
    // unregistered host is asked who it is.
    let node_id = match expected {
        Some(expected) => expected.to_owned(),
        None => {
            client
                .get_identity(GetIdentityRequest {})
                .await
                .map_err(call_error("GetIdentity"))?
                .into_inner()
                .node_id
        }
    };
    // At most twice: a host that rebooted since the verifier's last look sends IMA entries
    // the verifier cannot continue from; the second challenge then asks for the whole list.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let challenge = {
            let verifier = Arc::clone(verifier);
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
            let verifier = Arc::clone(verifier);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::VerifierConfig;
    use crate::store::{NodeRecord, STATUS_UNKNOWN, Store};

    fn node(node_id: &str, address: Option<&str>) -> NodeRecord {
        NodeRecord {
            node_id: node_id.to_owned(),
            ak_public: vec![1],
            ak_name: vec![2],
            ak_trust: "ek-certified".to_owned(),
            address: address.map(str::to_owned),
            first_seen: 1,
            last_seen: 1,
            last_verdict: None,
            ek_public: None,
            ek_certificate: None,
            group: "default".to_owned(),
            registered_at: Some(1),
            status: STATUS_UNKNOWN.to_owned(),
        }
    }

    #[test]
    fn a_registered_name_resolves_to_its_address_and_others_say_what_to_do() {
        let store = Store::in_memory().unwrap();
        store
            .insert_node(&node("pulled", Some("10.0.0.5:7443")))
            .unwrap();
        store.insert_node(&node("pushed", None)).unwrap();
        let verifier = Verifier::new(store, VerifierConfig::default());

        assert_eq!(
            registered_address(&verifier, "pulled").unwrap(),
            "10.0.0.5:7443"
        );
        let unknown = registered_address(&verifier, "nobody").unwrap_err();
        assert!(matches!(unknown, PullError::UnknownNode(_)), "{unknown}");
        assert_eq!(
            unknown.to_string(),
            "no registered node nobody; give --address to check an unregistered host"
        );
        let pushed = registered_address(&verifier, "pushed").unwrap_err();
        assert!(matches!(pushed, PullError::NoAddress(_)), "{pushed}");
        assert!(
            pushed.to_string().contains("no recorded address")
                && pushed.to_string().contains("--address"),
            "{pushed}"
        );
    }
}
