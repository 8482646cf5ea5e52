//! One simulated GPU host: its TPM (AK, EK), its boot log, its GPUs, and the Attester gRPC
//! service the verifier pulls evidence from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ring::rand::SystemRandom;
use tonic::{Request, Response, Status};
use vigil_proto::v1::attester_server::Attester;
use vigil_proto::v1::{
    ActivateCredentialRequest, ActivateCredentialResponse, EventLog, Evidence, GetEvidenceRequest,
    GetIdentityRequest, GpuEvidence, Identity, ImaLog, PcrBank, TpmEvidence, TpmQuote,
};

use crate::eventlog::BootLog;
use crate::gpu::GpuFleet;
use crate::tpm::{Ak, Ek};

/// PCRs quoted when a request names none (the verifier's default set, plus IMA's PCR 10).
const DEFAULT_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

pub struct Host {
    pub node_id: String,
    pub index: usize,
    pub ak: Ak,
    pub ek: Ek,
    /// DER EK certificate from the test vendor CA; empty when the EK is allow-listed.
    pub ek_certificate: Vec<u8>,
    boot: Arc<BootLog>,
    gpus: Option<Arc<GpuFleet>>,
    started: Instant,
    rng: SystemRandom,
}

impl Host {
    pub fn new(
        index: usize,
        boot: Arc<BootLog>,
        gpus: Option<Arc<GpuFleet>>,
        ek_ca: Option<&crate::certs::EkCa>,
        rng: &SystemRandom,
    ) -> Result<Host, String> {
        let node_id = format!("loadgen-{index:05}");
        let ek = Ek::generate(rng)?;
        let ek_certificate = match ek_ca {
            Some(ca) => ca.issue(&ek.point, &node_id)?,
            None => Vec::new(),
        };
        Ok(Host {
            node_id,
            index,
            ak: Ak::generate(rng)?,
            ek,
            ek_certificate,
            boot,
            gpus,
            started: Instant::now(),
            rng: rng.clone(),
        })
    }

    /// Evidence for `nonce`: GPU reports signed for this nonce, then a quote whose
    /// qualifying data binds the nonce and those reports.
    pub fn evidence(&self, nonce: &[u8], requested: &[u32]) -> Result<Evidence, String> {
        if nonce.len() != vigil_proto::binding::NONCE_LEN {
            return Err(format!("nonce has {} bytes, expected 32", nonce.len()));
        }
        let mut pcrs: Vec<u32> = if requested.is_empty() {
            DEFAULT_PCRS.to_vec()
        } else {
            requested.to_vec()
        };
        pcrs.sort_unstable();
        pcrs.dedup();
        if pcrs.iter().any(|p| *p >= 24) {
            return Err("a requested PCR is outside 0..23".into());
        }
        let values: Vec<(u32, [u8; 32])> = pcrs
            .iter()
            .map(|p| (*p, self.boot.pcrs[*p as usize]))
            .collect();
        let gpus: Vec<GpuEvidence> = match &self.gpus {
            Some(fleet) => fleet.evidence(self.index, nonce)?,
            None => Vec::new(),
        };
        let qualifying = vigil_proto::binding::qualifying_data(nonce, &gpus);
        let clock = self.started.elapsed().as_millis() as u64 + 1_000_000;
        let (attest, signature) = self.ak.quote(&self.rng, &qualifying, &values, clock)?;
        Ok(Evidence {
            nonce: nonce.to_vec(),
            node_id: self.node_id.clone(),
            tpm: Some(TpmEvidence {
                ak_public: self.ak.public.clone(),
                quote: Some(TpmQuote { attest, signature }),
                pcrs: vec![PcrBank {
                    bank: "sha256".into(),
                    values: values
                        .iter()
                        .map(|(i, v)| (*i, v.to_vec()))
                        .collect::<HashMap<_, _>>(),
                }],
            }),
            event_log: Some(EventLog {
                present: true,
                data: self.boot.data.clone(),
                source: "/sys/kernel/security/tpm0/binary_bios_measurements".into(),
                note: String::new(),
            }),
            gpus,
            attester_version: concat!("vigil-loadgen ", env!("CARGO_PKG_VERSION")).into(),
            ima_log: Some(ImaLog {
                present: false,
                note: "IMA is not enabled on this simulated host".into(),
                source: "/sys/kernel/security/ima/binary_runtime_measurements".into(),
                ..Default::default()
            }),
        })
    }

    pub fn identity(&self) -> Identity {
        Identity {
            node_id: self.node_id.clone(),
            ak_public: self.ak.public.clone(),
            ak_name: self.ak.name.clone(),
            ek_certificate: self.ek_certificate.clone(),
            ek_public: self.ek.public.clone(),
        }
    }
}

/// The Attester service of one host.
pub struct AttesterService(pub Arc<Host>);

fn internal(e: String) -> Status {
    Status::internal(e)
}

#[tonic::async_trait]
impl Attester for AttesterService {
    async fn get_evidence(
        &self,
        request: Request<GetEvidenceRequest>,
    ) -> Result<Response<Evidence>, Status> {
        let request = request.into_inner();
        if !request.selection_banks_ok() {
            return Err(Status::invalid_argument(
                "this simulated TPM has only the sha256 bank",
            ));
        }
        let pcrs = request.selection.map(|s| s.pcrs).unwrap_or_default();
        let host = Arc::clone(&self.0);
        // Signing is CPU work: keep it off the I/O threads.
        let evidence = tokio::task::spawn_blocking(move || host.evidence(&request.nonce, &pcrs))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(internal)?;
        Ok(Response::new(evidence))
    }

    async fn get_identity(
        &self,
        _request: Request<GetIdentityRequest>,
    ) -> Result<Response<Identity>, Status> {
        Ok(Response::new(self.0.identity()))
    }

    async fn activate_credential(
        &self,
        request: Request<ActivateCredentialRequest>,
    ) -> Result<Response<ActivateCredentialResponse>, Status> {
        let request = request.into_inner();
        let secret = self
            .0
            .ek
            .activate_credential(
                &self.0.ak.name,
                &request.credential_blob,
                &request.encrypted_secret,
            )
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(ActivateCredentialResponse { secret }))
    }
}

trait BanksOk {
    fn selection_banks_ok(&self) -> bool;
}

impl BanksOk for GetEvidenceRequest {
    /// Empty banks mean "every allocated bank"; naming only sha256 is fine too.
    fn selection_banks_ok(&self) -> bool {
        self.selection
            .as_ref()
            .is_none_or(|s| s.banks.iter().all(|b| b.eq_ignore_ascii_case("sha256")))
    }
}
