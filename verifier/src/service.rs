//! The `vigil.v1.Verifier` gRPC service: a thin shell over [`Verifier`].

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vigil_proto::v1::verifier_server::Verifier as VerifierRpc;
use vigil_proto::v1::{
    AttestNodeRequest, AttestRequest, AttestationResult, ChallengeRequest, ChallengeResponse,
};

use crate::attest::{Verifier, VerifierError, unix_now};
use crate::pull::{PullError, attest_node};
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

#[tonic::async_trait]
impl VerifierRpc for VerifierService {
    async fn challenge(
        &self,
        request: Request<ChallengeRequest>,
    ) -> Result<Response<ChallengeResponse>, Status> {
        let node_id = request.into_inner().node_id;
        let verifier = Arc::clone(&self.verifier);
        let challenge = blocking(move || verifier.challenge(&node_id, unix_now())).await?;
        Ok(Response::new(ChallengeResponse {
            nonce: challenge.nonce,
            expires_at_unix: challenge.expires_at,
            selection: Some(challenge.selection),
        }))
    }

    async fn attest(
        &self,
        request: Request<AttestRequest>,
    ) -> Result<Response<AttestationResult>, Status> {
        let request = request.into_inner();
        let evidence = request
            .evidence
            .ok_or_else(|| Status::invalid_argument("AttestRequest.evidence is missing"))?;
        let verifier = Arc::clone(&self.verifier);
        let report =
            blocking(move || verifier.appraise(&request.node_id, None, &evidence, unix_now()))
                .await?;
        Ok(Response::new(report.to_proto()))
    }

    async fn attest_node(
        &self,
        request: Request<AttestNodeRequest>,
    ) -> Result<Response<AttestationResult>, Status> {
        let address = request.into_inner().address;
        let report = attest_node(Arc::clone(&self.verifier), &address)
            .await
            .map_err(pull_status)?;
        Ok(Response::new(report.to_proto()))
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
