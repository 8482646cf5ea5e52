//! The `vigil.v1.Verifier` gRPC service: a thin shell over [`Verifier`].

use std::sync::Arc;

use crate::store_baselines::BaselineProto;
use tonic::{Request, Response, Status};
use vigil_proto::v1;
use vigil_proto::v1::verifier_server::Verifier as VerifierRpc;
use vigil_proto::v1::{
    AttestNodeRequest, AttestRequest, AttestationResult, ChallengeRequest, ChallengeResponse,
};

use crate::attest::{Verifier, VerifierError, unix_now};
use crate::pull::{PullError, attest_node, attest_registered_node};
use crate::registration::register::{RegistrationPolicy, register_node};
use vigil_proto::v1::registrar_server::Registrar;
use vigil_proto::v1::{DeregisterRequest, DeregisterResponse, RegisterNodeRequest};

pub struct VerifierService {
    verifier: Arc<Verifier>,
}

impl VerifierService {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        VerifierService { verifier }
    }
}

fn pull_status(error: PullError) -> Status {
    match error {
        PullError::Address { .. } => Status::invalid_argument(error.to_string()),
        PullError::Connect { .. } | PullError::Call { .. } => {
            Status::unavailable(error.to_string())
        }
        PullError::UnknownNode(_) => Status::not_found(error.to_string()),
        PullError::NoAddress(_) => Status::failed_precondition(error.to_string()),
        PullError::Verifier(inner) => verifier_status(inner),
    }
}

fn verifier_status(error: VerifierError) -> Status {
    match error {
        VerifierError::InvalidRequest(reason) => Status::invalid_argument(reason),
        VerifierError::Nonce(reason) => Status::failed_precondition(reason.to_string()),
        other => Status::internal(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VerifierError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("verifier task failed: {e}")))?
        .map_err(verifier_status)
}

/// A stream over a channel receiver (what server-streaming RPCs return).
pub struct ChannelStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> tonic::codegen::tokio_stream::Stream for ChannelStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// The authenticated caller (mTLS certificate, or everything in dev mode). The role layer
/// always inserts one; a request without it did not pass the layer and is refused.
fn caller<T>(request: &Request<T>) -> Result<&vigil_tls::Caller, Status> {
    vigil_tls::caller(request.extensions())
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// An attester's certificate may name its node: it then challenges and attests only as itself.
fn may_act_for<T>(request: &Request<T>, node_id: &str) -> Result<(), Status> {
    let caller = caller(request)?;
    if caller.may_act_for_node(node_id) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "certificate {} may not act for node {node_id:?}",
            caller.subject
        )))
    }
}

/// Who made a change, for the audit log: the name given, and the certificate that made it.
fn author_of<T>(request: &Request<T>, given: &str) -> Result<String, Status> {
    let caller = caller(request)?;
    Ok(
        if caller.subject.is_empty() || caller.subject.starts_with("dev-mode") {
            given.to_owned()
        } else {
            format!("{given} (certificate {})", caller.subject)
        },
    )
}

/// How often Watch looks for new changes when it has sent them all.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Verdicts one `History` call returns when the request names no limit.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;
/// Most verdicts one `History` call returns, whatever the request asks.
pub const MAX_HISTORY_LIMIT: u32 = 1000;

/// The number of verdicts a `History` request for `requested` gets (0: the default).
pub fn history_limit(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_HISTORY_LIMIT,
        n => n.min(MAX_HISTORY_LIMIT),
    }
}

/// The one-line summary of a stored result (`vigil history`'s last column).
pub fn summarize_result(result_json: &str) -> String {
    serde_json::from_str::<crate::report::AttestationReport>(result_json)
        .map(|r| r.summary())
        .unwrap_or_else(|_| "(unreadable result)".into())
}

/// The most recent `limit` verdicts (only `node_id`'s when given), oldest first, and whether
/// older ones exist.
pub fn recent_verdicts(
    store: &mut dyn crate::store_api::StoreOps,
    node_id: Option<&str>,
    limit: u32,
) -> Result<(Vec<v1::VerdictSummary>, bool), crate::store::StoreError> {
    let mut verdicts: Vec<v1::VerdictSummary> = store
        .recent_verdicts(node_id, i64::from(limit) + 1)?
        .into_iter()
        .map(|v| v1::VerdictSummary {
            summary: summarize_result(&v.result_json),
            id: v.id,
            node_id: v.node_id,
            verified_at_unix: v.verified_at,
            verdict: v.verdict,
        })
        .collect();
    let truncated = verdicts.len() > limit as usize;
    verdicts.truncate(limit as usize);
    verdicts.reverse();
    Ok((verdicts, truncated))
}

/// Every node the store knows (only `node_id` when given), as `ListNodes` returns them.
pub fn node_infos(
    store: &mut dyn crate::store_api::StoreOps,
    node_id: Option<&str>,
) -> Result<Vec<v1::NodeInfo>, crate::store::StoreError> {
    store
        .nodes()?
        .into_iter()
        .filter(|n| node_id.is_none_or(|id| n.node_id == id))
        .map(|n| {
            Ok(v1::NodeInfo {
                gpu_identities_json: store.gpu_identities(&n.node_id)?,
                ak_name_hex: hex::encode(&n.ak_name),
                node_id: n.node_id,
                group: n.group,
                status: n.status,
                ak_trust: n.ak_trust,
                address: n.address.unwrap_or_default(),
                registered_at_unix: n.registered_at.unwrap_or(0),
                last_seen_unix: n.last_seen,
                last_verdict: n.last_verdict.unwrap_or_default(),
            })
        })
        .collect()
}

#[tonic::async_trait]
impl VerifierRpc for VerifierService {
    type WatchStream = ChannelStream<Result<vigil_proto::v1::VerdictChange, Status>>;

    async fn watch(
        &self,
        request: Request<vigil_proto::v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let verifier = Arc::clone(&self.verifier);
        tokio::spawn(async move {
            let mut next = request.from_seq.max(1);
            loop {
                let batch = {
                    let verifier = Arc::clone(&verifier);
                    tokio::task::spawn_blocking(move || verifier.status_changes(next, 256)).await
                };
                let changes = match batch {
                    Ok(Ok(changes)) => changes,
                    Ok(Err(error)) => {
                        let _ = sender.send(Err(verifier_status(error))).await;
                        return;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(Status::internal(error.to_string()))).await;
                        return;
                    }
                };
                if changes.is_empty() {
                    if sender.is_closed() {
                        return;
                    }
                    tokio::time::sleep(WATCH_POLL).await;
                    continue;
                }
                for change in changes {
                    next = change.seq + 1;
                    if !request.node_id.is_empty() && change.node_id != request.node_id {
                        continue;
                    }
                    let message = vigil_proto::v1::VerdictChange {
                        seq: change.seq,
                        node_id: change.node_id,
                        old_status: change.old_status,
                        new_status: change.new_status,
                        reason: change.reason,
                        time_unix: change.time,
                        result_token: serde_json::from_str::<serde_json::Value>(
                            &change.result_json,
                        )
                        .ok()
                        .and_then(|r| r["result_token"].as_str().map(str::to_owned))
                        .unwrap_or_default(),
                        result_json: change.result_json,
                    };
                    if sender.send(Ok(message)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
        });
        Ok(Response::new(ChannelStream(receiver)))
    }

    async fn challenge(
        &self,
        request: Request<ChallengeRequest>,
    ) -> Result<Response<ChallengeResponse>, Status> {
        may_act_for(&request, &request.get_ref().node_id)?;
        let node_id = request.into_inner().node_id;
        let verifier = Arc::clone(&self.verifier);
        let challenge = blocking(move || verifier.challenge(&node_id, unix_now())).await?;
        Ok(Response::new(ChallengeResponse {
            nonce: challenge.nonce,
            expires_at_unix: challenge.expires_at,
            selection: Some(challenge.selection),
            ima_offset: challenge.ima_offset,
        }))
    }

    async fn attest(
        &self,
        request: Request<AttestRequest>,
    ) -> Result<Response<AttestationResult>, Status> {
        may_act_for(&request, &request.get_ref().node_id)?;
        let request = request.into_inner();
        let evidence = request
            .evidence
            .ok_or_else(|| Status::invalid_argument("AttestRequest.evidence is missing"))?;
        let verifier = Arc::clone(&self.verifier);
        let report = blocking(move || {
            verifier.appraise(
                &request.node_id,
                None,
                &evidence,
                &crate::attest::Origin::Pushed,
                unix_now(),
            )
        })
        .await?;
        Ok(Response::new(report.to_proto()))
    }

    async fn attest_node(
        &self,
        request: Request<AttestNodeRequest>,
    ) -> Result<Response<AttestationResult>, Status> {
        let request = request.into_inner();
        let report = match (request.address.is_empty(), request.node_id.is_empty()) {
            (false, true) => attest_node(Arc::clone(&self.verifier), &request.address).await,
            (true, false) => {
                attest_registered_node(Arc::clone(&self.verifier), &request.node_id).await
            }
            (true, true) => {
                return Err(Status::invalid_argument(
                    "AttestNode needs node_id (a registered node) or address (an attester endpoint)",
                ));
            }
            (false, false) => {
                return Err(Status::invalid_argument(
                    "AttestNode takes node_id or address, not both: give node_id to attest a \
                     registered node at its registered address",
                ));
            }
        }
        .map_err(pull_status)?;
        Ok(Response::new(report.to_proto()))
    }

    async fn list_nodes(
        &self,
        request: Request<v1::ListNodesRequest>,
    ) -> Result<Response<v1::ListNodesResponse>, Status> {
        let node_id = Some(request.into_inner().node_id).filter(|id| !id.is_empty());
        let verifier = Arc::clone(&self.verifier);
        let wanted = node_id.clone();
        let nodes =
            blocking(move || Ok(verifier.read(|store| node_infos(store, wanted.as_deref()))??))
                .await?;
        if let Some(id) = node_id
            && nodes.is_empty()
        {
            return Err(Status::not_found(format!(
                "no node {id:?} (`vigil nodes` lists the known ones)"
            )));
        }
        Ok(Response::new(v1::ListNodesResponse { nodes }))
    }

    async fn history(
        &self,
        request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        let request = request.into_inner();
        let node_id = Some(request.node_id).filter(|id| !id.is_empty());
        let limit = history_limit(request.limit);
        let verifier = Arc::clone(&self.verifier);
        let (verdicts, truncated) = tokio::task::spawn_blocking(move || {
            verifier.read(|store| recent_verdicts(store, node_id.as_deref(), limit))
        })
        .await
        .map_err(|e| Status::internal(format!("verifier task failed: {e}")))?
        .map_err(verifier_status)?
        .map_err(|e| Status::internal(format!("reading verdicts: {e}")))?;
        Ok(Response::new(v1::HistoryResponse {
            verdicts,
            truncated,
        }))
    }

    async fn get_result_keys(
        &self,
        _request: Request<vigil_proto::v1::GetResultKeysRequest>,
    ) -> Result<Response<vigil_proto::v1::ResultKeys>, Status> {
        let jwks_json = serde_json::to_string(&self.verifier.jwks())
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(vigil_proto::v1::ResultKeys { jwks_json }))
    }
}

/// The `vigil.v1.Baselines` service: versioned baselines, group assignment, what-if.
pub struct BaselinesService {
    verifier: Arc<Verifier>,
}

impl BaselinesService {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        BaselinesService { verifier }
    }
}

/// Largest baseline accepted over gRPC (the file format's own limit).
const MAX_BASELINE_REQUEST: usize = crate::baseline::file::MAX_BASELINE_BYTES;

fn baseline_status(error: VerifierError) -> Status {
    match error {
        VerifierError::Baseline(reason) => Status::invalid_argument(reason),
        VerifierError::Store(crate::store::StoreError::NotFound(reason)) => {
            Status::not_found(reason)
        }
        other => verifier_status(other),
    }
}

async fn blocking_baseline<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VerifierError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("verifier task failed: {e}")))?
        .map_err(baseline_status)
}

#[tonic::async_trait]
impl v1::baselines_server::Baselines for BaselinesService {
    async fn put(
        &self,
        request: Request<v1::PutBaselineRequest>,
    ) -> Result<Response<v1::BaselineVersion>, Status> {
        let author = author_of(&request, &request.get_ref().author)?;
        let request = request.into_inner();
        if request.toml.len() > MAX_BASELINE_REQUEST {
            return Err(Status::invalid_argument("baseline over the size limit"));
        }
        let verifier = Arc::clone(&self.verifier);
        let stored = blocking_baseline(move || {
            verifier.put_baseline(
                "baseline",
                &request.toml,
                Some(request.signature_hex.as_str()).filter(|s| !s.is_empty()),
                &author,
                &request.reason,
                unix_now(),
            )
        })
        .await?;
        Ok(Response::new(stored.to_proto(false)))
    }

    async fn get(
        &self,
        request: Request<v1::GetBaselineRequest>,
    ) -> Result<Response<v1::BaselineVersion>, Status> {
        let request = request.into_inner();
        let verifier = Arc::clone(&self.verifier);
        let version = Some(request.version).filter(|v| *v > 0);
        let stored = blocking_baseline(move || {
            verifier
                .read(|store| store.baseline(&request.name, version))?
                .map_err(VerifierError::from)
        })
        .await?
        .ok_or_else(|| Status::not_found("no such baseline version"))?;
        Ok(Response::new(stored.to_proto(true)))
    }

    async fn list(
        &self,
        _request: Request<v1::ListBaselinesRequest>,
    ) -> Result<Response<v1::ListBaselinesResponse>, Status> {
        let verifier = Arc::clone(&self.verifier);
        let (baselines, assignments) = blocking_baseline(move || {
            verifier
                .read(|store| {
                    Ok::<_, crate::store::StoreError>((
                        store.baselines()?,
                        store.baseline_assignments()?,
                    ))
                })?
                .map_err(VerifierError::from)
        })
        .await?;
        Ok(Response::new(v1::ListBaselinesResponse {
            baselines: baselines.iter().map(|b| b.to_proto(false)).collect(),
            assignments: assignments.into_iter().collect(),
        }))
    }

    async fn assign(
        &self,
        request: Request<v1::AssignBaselineRequest>,
    ) -> Result<Response<v1::AssignBaselineResponse>, Status> {
        let author = author_of(&request, &request.get_ref().author)?;
        let request = request.into_inner();
        let verifier = Arc::clone(&self.verifier);
        let group = request.group.clone();
        let stored = blocking_baseline(move || {
            verifier.assign_baseline(
                &request.group,
                &request.baseline,
                &author,
                &request.reason,
                unix_now(),
            )
        })
        .await?;
        Ok(Response::new(v1::AssignBaselineResponse {
            group,
            baseline: stored.name,
            version: stored.version,
        }))
    }

    async fn impact(
        &self,
        request: Request<v1::ImpactRequest>,
    ) -> Result<Response<v1::ImpactResponse>, Status> {
        let request = request.into_inner();
        if request.toml.len() > MAX_BASELINE_REQUEST {
            return Err(Status::invalid_argument("baseline over the size limit"));
        }
        let verifier = Arc::clone(&self.verifier);
        let report = blocking_baseline(move || {
            verifier.impact(
                &request.toml,
                Some(request.group.as_str()).filter(|g| !g.is_empty()),
            )
        })
        .await?;
        Ok(Response::new(v1::ImpactResponse {
            baseline: report.baseline,
            nodes: report.nodes.into_iter().map(Into::into).collect(),
        }))
    }
}

/// The `vigil.v1.Registrar` service: registration with the server's EK trust policy.
pub struct RegistrarService {
    verifier: Arc<Verifier>,
    policy: Arc<RegistrationPolicy>,
}

impl RegistrarService {
    pub fn new(verifier: Arc<Verifier>, policy: RegistrationPolicy) -> Self {
        RegistrarService {
            verifier,
            policy: Arc::new(policy),
        }
    }
}

#[tonic::async_trait]
impl Registrar for RegistrarService {
    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<AttestationResult>, Status> {
        let request = request.into_inner();
        let group = if request.group.is_empty() {
            "default".to_owned()
        } else {
            request.group
        };
        if group.len() > 128 || group.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "group must be 1..=128 printable characters",
            ));
        }
        let report = register_node(
            Arc::clone(&self.verifier),
            &self.policy,
            &request.address,
            &group,
        )
        .await
        .map_err(pull_status)?;
        Ok(Response::new(report.to_proto()))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let node_id = request.into_inner().node_id;
        let verifier = Arc::clone(&self.verifier);
        let removed = blocking(move || verifier.remove_node(&node_id)).await?;
        Ok(Response::new(DeregisterResponse { removed }))
    }
}

/// The `vigil.v1.Audit` service: read-only access to the audit log.
pub struct AuditService {
    verifier: Arc<Verifier>,
}

impl AuditService {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        AuditService { verifier }
    }
}

/// Most records one Query returns.
const MAX_QUERY_RECORDS: u64 = 10_000;

fn audit_status(error: crate::store::StoreError) -> Status {
    Status::internal(format!("audit log: {error}"))
}

fn latest_checkpoint(
    store: &mut dyn crate::store_api::StoreOps,
) -> Result<(String, vigil_audit::ParsedCheckpoint), Status> {
    let note = store
        .audit_latest_checkpoint()
        .map_err(audit_status)?
        .ok_or_else(|| Status::failed_precondition("the audit log has no checkpoint yet"))?;
    let parsed = vigil_audit::parse_checkpoint(&note)
        .map_err(|e| Status::internal(format!("stored checkpoint: {e}")))?;
    Ok((note, parsed))
}

type AuditRecordStream = std::pin::Pin<
    Box<
        dyn tonic::codegen::tokio_stream::Stream<
                Item = Result<vigil_proto::v1::AuditRecord, Status>,
            > + Send,
    >,
>;

#[tonic::async_trait]
impl vigil_proto::v1::audit_server::Audit for AuditService {
    type QueryStream = AuditRecordStream;

    async fn query(
        &self,
        request: Request<vigil_proto::v1::AuditQuery>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let query = request.into_inner();
        if !query.status.is_empty() && !matches!(query.status.as_str(), "pass" | "fail") {
            return Err(Status::invalid_argument(
                "status must be empty, pass or fail",
            ));
        }
        let limit = match u64::from(query.limit) {
            0 => MAX_QUERY_RECORDS,
            n => n.min(MAX_QUERY_RECORDS),
        };
        let verifier = Arc::clone(&self.verifier);
        let records = tokio::task::spawn_blocking(move || {
            verifier.read(|store| {
                let size = store.audit_tree_size()?;
                let mut out = Vec::new();
                let mut next = query.from_index;
                // Read in pages so a filter that matches little does not load the whole log.
                while next < size && (out.len() as u64) < limit {
                    let page = store.audit_entries(next, 1000)?;
                    let Some(last) = page.last() else { break };
                    next = last.index + 1;
                    for stored in page {
                        let entry = &stored.entry;
                        let matches = (query.node_id.is_empty() || entry.subject == query.node_id)
                            && (query.kind.is_empty() || entry.kind == query.kind)
                            && entry.time >= query.since_unix
                            && (query.status.is_empty()
                                || (entry.kind == "verdict"
                                    && entry.body["verdict"].as_str()
                                        == Some(query.status.as_str())));
                        if matches && (out.len() as u64) < limit {
                            out.push(vigil_proto::v1::AuditRecord {
                                index: stored.index,
                                kind: entry.kind.clone(),
                                time: entry.time,
                                subject: entry.subject.clone(),
                                body_json: entry.body.to_string(),
                                leaf_hash: stored.leaf_hash.to_vec(),
                            });
                        }
                    }
                }
                Ok::<_, crate::store::StoreError>(out)
            })
        })
        .await
        .map_err(|e| Status::internal(format!("audit task failed: {e}")))?
        .map_err(verifier_status)?
        .map_err(audit_status)?;
        let stream = tonic::codegen::tokio_stream::iter(records.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn checkpoint(
        &self,
        _request: Request<vigil_proto::v1::CheckpointRequest>,
    ) -> Result<Response<vigil_proto::v1::CheckpointResponse>, Status> {
        let verifier = Arc::clone(&self.verifier);
        let (note, parsed) =
            tokio::task::spawn_blocking(move || verifier.read(|store| latest_checkpoint(store)))
                .await
                .map_err(|e| Status::internal(format!("audit task failed: {e}")))?
                .map_err(verifier_status)??;
        Ok(Response::new(vigil_proto::v1::CheckpointResponse {
            note,
            tree_size: parsed.tree_size,
            root_hash: parsed.root_hash.to_vec(),
        }))
    }

    async fn prove(
        &self,
        request: Request<vigil_proto::v1::ProveRequest>,
    ) -> Result<Response<vigil_proto::v1::ProveResponse>, Status> {
        use vigil_proto::v1::prove_request::Proof;
        let proof = request.into_inner().proof.ok_or_else(|| {
            Status::invalid_argument("ask for an inclusion or a consistency proof")
        })?;
        let verifier = Arc::clone(&self.verifier);
        let response = tokio::task::spawn_blocking(move || {
            verifier.read(|store| {
                let (note, parsed) = latest_checkpoint(store)?;
                let invalid = |e: crate::store::StoreError| Status::invalid_argument(e.to_string());
                Ok::<_, Status>(match proof {
                    Proof::InclusionOfIndex(index) => {
                        let p = store
                            .audit_inclusion_proof(index, parsed.tree_size)
                            .map_err(invalid)?;
                        vigil_proto::v1::ProveResponse {
                            path: p.path.iter().map(|h| h.to_vec()).collect(),
                            tree_size: p.tree_size,
                            leaf_hash: p.leaf_hash.to_vec(),
                            checkpoint: note,
                        }
                    }
                    Proof::ConsistencyFromSize(first) => {
                        let p = store
                            .audit_consistency_proof(first, parsed.tree_size)
                            .map_err(invalid)?;
                        vigil_proto::v1::ProveResponse {
                            path: p.path.iter().map(|h| h.to_vec()).collect(),
                            tree_size: p.second_size,
                            leaf_hash: Vec::new(),
                            checkpoint: note,
                        }
                    }
                })
            })
        })
        .await
        .map_err(|e| Status::internal(format!("audit task failed: {e}")))?
        .map_err(verifier_status)??;
        Ok(Response::new(response))
    }

    async fn public_keys(
        &self,
        _request: Request<vigil_proto::v1::PublicKeysRequest>,
    ) -> Result<Response<vigil_proto::v1::PublicKeysResponse>, Status> {
        let key = self
            .verifier
            .audit_public_key()
            .map_err(verifier_status)?
            .to_verifier_key();
        Ok(Response::new(vigil_proto::v1::PublicKeysResponse {
            verifier_keys: vec![key],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_limit_has_a_default_and_a_ceiling() {
        assert_eq!(history_limit(0), DEFAULT_HISTORY_LIMIT);
        assert_eq!(history_limit(7), 7);
        assert_eq!(history_limit(MAX_HISTORY_LIMIT), MAX_HISTORY_LIMIT);
        assert_eq!(history_limit(u32::MAX), MAX_HISTORY_LIMIT);
    }

    fn store_with_verdicts(rows: &[(&str, &str)]) -> crate::store::Store {
        let store = crate::store::Store::in_memory().unwrap();
        for (time, (node, verdict)) in rows.iter().enumerate() {
            store
                .connection()
                .execute(
                    "INSERT INTO verdicts (node_id, nonce, verified_at, verdict, result_json)
                     VALUES (?1, x'00', ?2, ?3, 'not json')",
                    rusqlite::params![node, time as i64, verdict],
                )
                .unwrap();
        }
        store
    }

    #[test]
    fn recent_verdicts_are_the_newest_oldest_first_and_say_when_cut() {
        let mut store =
            store_with_verdicts(&[("a", "pass"), ("b", "fail"), ("a", "fail"), ("a", "pass")]);
        let (all, truncated) = recent_verdicts(&mut store, None, 10).unwrap();
        assert_eq!(all.iter().map(|v| v.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(!truncated);
        assert_eq!(all[0].summary, "(unreadable result)");

        let (last_two, truncated) = recent_verdicts(&mut store, None, 2).unwrap();
        assert_eq!(last_two.iter().map(|v| v.id).collect::<Vec<_>>(), [3, 4]);
        assert!(truncated);

        let (only_a, truncated) = recent_verdicts(&mut store, Some("a"), 3).unwrap();
        assert_eq!(only_a.iter().map(|v| v.id).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(only_a.iter().all(|v| v.node_id == "a"));
        assert!(!truncated, "exactly the limit is not truncated");

        let (none, truncated) = recent_verdicts(&mut store, Some("zzz"), 3).unwrap();
        assert!(none.is_empty() && !truncated);
    }

    #[test]
    fn node_infos_filter_by_id() {
        let mut store = crate::store::Store::in_memory().unwrap();
        for id in ["n1", "n2"] {
            store
                .connection()
                .execute(
                    "INSERT INTO nodes (node_id, ak_public, ak_name, ak_trust, first_seen, last_seen)
                     VALUES (?1, x'01', x'0a0b', 'tofu', 1, 2)",
                    rusqlite::params![id],
                )
                .unwrap();
        }
        let all = node_infos(&mut store, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].ak_name_hex, "0a0b");
        assert_eq!(all[0].registered_at_unix, 0, "never registered");
        assert_eq!(all[0].address, "");
        let one = node_infos(&mut store, Some("n2")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].node_id, "n2");
        assert!(node_infos(&mut store, Some("n3")).unwrap().is_empty());
    }
}
