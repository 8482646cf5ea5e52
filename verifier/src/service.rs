//! The `vigil.v1.Verifier` gRPC service: a thin shell over [`Verifier`].

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vigil_proto::v1::verifier_server::Verifier as VerifierRpc;
use vigil_proto::v1::{
    AttestNodeRequest, AttestRequest, AttestationResult, ChallengeRequest, ChallengeResponse,
};

use crate::attest::{Verifier, VerifierError, unix_now};
use crate::pull::{PullError, attest_node};

pub struct VerifierService {
    verifier: Arc<Verifier>,
}

impl VerifierService {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        VerifierService { verifier }
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
            .map_err(|error| match error {
                PullError::Address { .. } => Status::invalid_argument(error.to_string()),
                PullError::Connect { .. } | PullError::Call { .. } => {
                    Status::unavailable(error.to_string())
                }
                PullError::Verifier(inner) => verifier_status(inner),
            })?;
        Ok(Response::new(report.to_proto()))
    }
}
