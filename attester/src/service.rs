//! The `vigil.v1.Attester` gRPC service: a thin shell over [`Collector`].

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vigil_proto::v1::attester_server::Attester;
use vigil_proto::v1::{
    ActivateCredentialRequest, ActivateCredentialResponse, Evidence, GetEvidenceRequest,
    GetIdentityRequest, Identity,
};

use crate::collect::Collector;
use crate::tpm::TpmError;

/// Most PCR indices or bank names a request may carry.
const MAX_SELECTION_ITEMS: usize = 64;

pub struct AttesterService {
    collector: Arc<Collector>,
}

impl AttesterService {
    pub fn new(collector: Arc<Collector>) -> Self {
        AttesterService { collector }
    }
}

fn to_status(error: TpmError) -> Status {
    match error {
        TpmError::Request(reason) => Status::invalid_argument(reason),
        other => Status::internal(other.to_string()),
    }
}

#[tonic::async_trait]
impl Attester for AttesterService {
    async fn get_evidence(
        &self,
        request: Request<GetEvidenceRequest>,
    ) -> Result<Response<Evidence>, Status> {
        let request = request.into_inner();
        let selection = request.selection.unwrap_or_default();
        if selection.pcrs.len() > MAX_SELECTION_ITEMS || selection.banks.len() > MAX_SELECTION_ITEMS
        {
            return Err(Status::invalid_argument("PCR selection is too large"));
        }
        let collector = Arc::clone(&self.collector);
        let evidence = tokio::task::spawn_blocking(move || {
            collector.evidence(
                &request.nonce,
                &selection.pcrs,
                &selection.banks,
                request.ima_offset,
            )
        })
        .await
        .map_err(|e| Status::internal(format!("evidence task failed: {e}")))?
        .map_err(to_status)?;
        Ok(Response::new(evidence))
    }

    async fn get_identity(
        &self,
        _request: Request<GetIdentityRequest>,
    ) -> Result<Response<Identity>, Status> {
        let collector = Arc::clone(&self.collector);
        let identity = tokio::task::spawn_blocking(move || {
            collector.with_tpm(|tpm| {
                let ek = tpm.endorsement_key()?;
                Ok(Identity {
                    node_id: collector.node_id().to_owned(),
                    ak_public: tpm.ak_public_tpm2b()?,
                    ak_name: tpm.ak_name().to_vec(),
                    ek_certificate: ek.certificate.unwrap_or_default(),
                    ek_public: ek.public,
                })
            })
        })
        .await
        .map_err(|e| Status::internal(format!("identity task failed: {e}")))?
        .map_err(to_status)?;
        Ok(Response::new(identity))
    }

    async fn activate_credential(
        &self,
        request: Request<ActivateCredentialRequest>,
    ) -> Result<Response<ActivateCredentialResponse>, Status> {
        let request = request.into_inner();
        // TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET are bounded by the TPM's buffer sizes.
        if request.credential_blob.len() > 1024 || request.encrypted_secret.len() > 1024 {
            return Err(Status::invalid_argument("credential too large"));
        }
        let collector = Arc::clone(&self.collector);
        let secret = tokio::task::spawn_blocking(move || {
            collector.with_tpm(|tpm| {
                tpm.activate_credential(&request.credential_blob, &request.encrypted_secret)
            })
        })
        .await
        .map_err(|e| Status::internal(format!("activation task failed: {e}")))?
        .map_err(to_status)?;
        Ok(Response::new(ActivateCredentialResponse { secret }))
    }
}
