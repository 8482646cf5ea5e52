//! Registration of a node, pull mode: the verifier asks the attester for its identity,
//! validates the EK certificate against the TPM vendor roots (or an explicit allow-list),
//! seals a secret to the EK for the AK's name, and binds the AK to the node only if the
//! attester's TPM recovers that secret.

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use vigil_proto::v1::{ActivateCredentialRequest, GetIdentityRequest, Identity};

use super::credential::make_credential;
use super::trust::{TrustStore, certificate_key_matches};
use crate::attest::{Verifier, VerifierError, unix_now, validate_node_id};
use crate::evidence::tpm::structures::{HashAlg, decode_tpm2b_public};
use crate::pull::{PullError, call_error, connect_attester};
use crate::report::{AttestationReport, Check, Verdict};
use crate::store::NodeRecord;

/// How an AK came to be trusted, as recorded and reported.
pub const AK_TRUST_EK_CERTIFIED: &str = "ek-certified";
pub const AK_TRUST_EK_ALLOWLISTED: &str = "ek-allowlisted";

/// What registration accepts as proof that an EK belongs to a genuine TPM.
#[derive(Debug, Default, Clone)]
pub struct RegistrationPolicy {
    /// TPM vendor CAs.
    pub trust: TrustStore,
    /// SHA-256 of EK TPM2B_PUBLIC areas accepted without a certificate.
    pub ek_allowlist: Vec<Vec<u8>>,
}

/// SHA-256 of an EK's TPM2B_PUBLIC, the form the allow-list uses.
pub fn ek_fingerprint(ek_public: &[u8]) -> Vec<u8> {
    HashAlg::Sha256.digest(ek_public).unwrap_or_default()
}

/// Checks an identity up to (not including) credential activation. Returns the checks and,
/// if all passed, how the EK is trusted.
pub fn check_identity(
    identity: &Identity,
    policy: &RegistrationPolicy,
    now: i64,
) -> (Vec<Check>, Option<&'static str>) {
    let mut checks = Vec::new();
    let ak = match decode_tpm2b_public(&identity.ak_public) {
        Ok(ak) => ak,
        Err(e) => {
            checks.push(Check::fail("ak.decode", e.to_string()));
            return (checks, None);
        }
    };
    match &ak.name {
        Some(name) if name == &identity.ak_name => checks.push(Check::pass(
            "ak.name",
            format!("{} matches the AK public area", hex::encode(name)),
        )),
        _ => checks.push(Check::fail(
            "ak.name",
            "the reported AK name is not the name of the AK public area",
        )),
    }
    match ak.attributes {
        Some(a) if a.restricted && a.sign && !a.decrypt && a.fixed_tpm && a.fixed_parent => checks
            .push(Check::pass(
                "ak.attributes",
                "restricted signing key, fixedTPM, fixedParent",
            )),
        _ => checks.push(Check::fail(
            "ak.attributes",
            "an AK must be a restricted signing key with fixedTPM and fixedParent",
        )),
    }
    let ek = match decode_tpm2b_public(&identity.ek_public) {
        Ok(ek) => ek,
        Err(e) => {
            checks.push(Check::fail("ek.decode", e.to_string()));
            return (checks, None);
        }
    };
    let fingerprint = ek_fingerprint(&identity.ek_public);
    let mut trust = None;
    if !identity.ek_certificate.is_empty() {
        match policy
            .trust
            .validate(&identity.ek_certificate, now)
            .and_then(|chain| {
                certificate_key_matches(&identity.ek_certificate, &ek.key).map(|()| chain)
            }) {
            Ok(chain) => {
                checks.push(Check::pass(
                    "ek.certificate",
                    format!("chain: {}", chain.join(" <- ")),
                ));
                trust = Some(AK_TRUST_EK_CERTIFIED);
            }
            Err(e) => checks.push(Check::fail("ek.certificate", e.to_string())),
        }
    }
    if trust.is_none() {
        if policy
            .ek_allowlist
            .iter()
            .any(|allowed| allowed == &fingerprint)
        {
            checks.push(Check::pass(
                "ek.allowlisted",
                format!(
                    "EK {} is explicitly allow-listed",
                    hex::encode(&fingerprint)
                ),
            ));
            trust = Some(AK_TRUST_EK_ALLOWLISTED);
        } else if identity.ek_certificate.is_empty() {
            checks.push(Check::fail(
                "ek.certificate",
                format!(
                    "the TPM has no EK certificate and EK {} is not allow-listed",
                    hex::encode(&fingerprint)
                ),
            ));
        }
    }
    let all_passed = checks.iter().all(|c| c.passed);
    (checks, trust.filter(|_| all_passed))
}

/// Registers the node whose attester listens at `address` into `group`.
pub async fn register_node(
    verifier: Arc<Verifier>,
    policy: &RegistrationPolicy,
    address: &str,
    group: &str,
) -> Result<AttestationReport, PullError> {
    let (mut client, uri) = connect_attester(address, verifier.client_tls()).await?;
    let call = |name: &'static str| call_error(&uri, name);
    let identity = client
        .get_identity(GetIdentityRequest {})
        .await
        .map_err(call("GetIdentity"))?
        .into_inner();
    validate_node_id(&identity.node_id)?;
    let now = unix_now();
    let (mut checks, trust) = check_identity(&identity, policy, now);
    if let Some(trust) = trust {
        let random = SystemRandom::new();
        let mut secret = [0u8; 32];
        random
            .fill(&mut secret)
            .map_err(|_| VerifierError::InvalidRequest("system random generator failed".into()))?;
        let activation = match decode_tpm2b_public(&identity.ek_public)
            .map_err(|e| e.to_string())
            .and_then(|ek| {
                make_credential(&ek, &identity.ak_name, &secret, &random).map_err(|e| e.to_string())
            }) {
            Err(e) => Check::fail(
                "credential.activation",
                format!("cannot make a credential: {e}"),
            ),
            Ok(credential) => match client
                .activate_credential(ActivateCredentialRequest {
                    credential_blob: credential.credential_blob,
                    encrypted_secret: credential.encrypted_secret,
                })
                .await
            {
                Ok(answer) if constant_time_eq(&answer.get_ref().secret, &secret) => Check::pass(
                    "credential.activation",
                    "the TPM holding the EK recovered the secret for this AK",
                ),
                Ok(_) => Check::fail(
                    "credential.activation",
                    "the attester answered with the wrong secret",
                ),
                Err(status) => Check::fail(
                    "credential.activation",
                    format!(
                        "the attester could not activate the credential: {}",
                        status.message()
                    ),
                ),
            },
        };
        checks.push(activation);
        let mut report = AttestationReport::new(&identity.node_id, &[], now, checks);
        report.ak_name = hex::encode(&identity.ak_name);
        report.ak_trust = trust.to_owned();
        if report.verdict == Verdict::Pass {
            let record = NodeRecord {
                node_id: identity.node_id.clone(),
                ak_public: identity.ak_public.clone(),
                ak_name: identity.ak_name.clone(),
                ak_trust: trust.to_owned(),
                address: Some(address.to_owned()),
                first_seen: now,
                last_seen: now,
                last_verdict: None,
                ek_public: Some(identity.ek_public.clone()),
                ek_certificate: Some(identity.ek_certificate.clone()).filter(|c| !c.is_empty()),
                group: group.to_owned(),
                registered_at: Some(now),
                status: crate::store::STATUS_UNKNOWN.to_owned(),
            };
            let verifier = Arc::clone(&verifier);
            let outcome =
                tokio::task::spawn_blocking(move || verifier.record_registration(&record))
                    .await
                    .map_err(|e| {
                        VerifierError::InvalidRequest(format!("registration task: {e}"))
                    })?;
            if let Err(error) = outcome {
                report
                    .checks
                    .push(Check::fail("node.registration", error.to_string()));
                report.verdict = Verdict::Fail;
            }
        }
        return Ok(report);
    }
    let mut report = AttestationReport::new(&identity.node_id, &[], now, checks);
    report.ak_name = hex::encode(&identity.ak_name);
    report.ak_trust = "unproven".to_owned();
    Ok(report)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
