//! The attester's only door to the TPM: open a TCTI, keep one attestation key (AK)
//! loaded, and produce quotes with the PCR values they cover.
//!
//! The AK is a restricted signing key created under the TCG default EK (so that a later
//! credential activation can prove it lives in the same TPM as the EK). Its public and
//! TPM-encrypted private parts are persisted in the state directory; the EK is a primary
//! key derived from the TPM's endorsement seed, so recreating it after a restart gives the
//! same EK, under which the same AK loads again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ak, ek};
use tss_esapi::constants::CapabilityType;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{
    AsymmetricAlgorithm, HashingAlgorithm, SignatureSchemeAlgorithm,
};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, EncryptedSecret, IdObject, PcrSelectionList, PcrSelectionListBuilder,
    PcrSlot, Private, Public, PublicBuffer, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};

/// Errors from the TPM or from the AK state on disk; each says which step failed.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error(
        "cannot open the TPM through TCTI {tcti:?}: {reason}; give --tcti device:/dev/tpmrm0 \
         (the kernel's TPM resource manager) or --tcti swtpm:host=HOST,port=PORT (a software \
         TPM, swtpm)"
    )]
    Open { tcti: String, reason: String },
    #[error("TPM command failed during {step}: {source}")]
    Tpm {
        step: &'static str,
        source: tss_esapi::Error,
    },
    #[error("AK state file {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("AK state in {dir} is unusable: {reason}")]
    BadState { dir: PathBuf, reason: String },
    #[error("invalid request: {0}")]
    Request(String),
}

/// Silences libtss2's own `ERROR:tcti:` lines (the attester reports a failed TCTI itself,
/// naming `--tcti`) unless `TSS2_LOG` is set. Call first thing in `main`, before any thread
/// exists: it sets an environment variable.
///
/// # Safety
/// No other thread may read or write the environment at the same time.
pub unsafe fn quiet_tcti_logs() {
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: the caller guarantees no other thread touches the environment.
        unsafe { std::env::set_var("TSS2_LOG", "tcti+none") };
    }
}

/// Why the TPM behind `tcti` cannot be opened, found by trying what the TCTI would try
/// (after it failed): the swtpm socket, or the device file.
fn diagnose_tcti(tcti: &str) -> Option<String> {
    let (kind, config) = tcti.split_once(':').unwrap_or((tcti, ""));
    match kind {
        "device" => {
            let path = if config.is_empty() {
                "/dev/tpmrm0"
            } else {
                config
            };
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Err(e) => Some(format!("cannot open {path}: {e}")),
                Ok(_) => Some(format!("{path} opens but does not answer as a TPM")),
            }
        }
        "swtpm" | "mssim" => {
            let mut host = "127.0.0.1";
            let mut port = "2321";
            for part in config.split(',') {
                match part.split_once('=') {
                    Some(("host", h)) => host = h,
                    Some(("port", p)) => port = p,
                    _ => {}
                }
            }
            let address = format!("{host}:{port}");
            let addrs: Vec<std::net::SocketAddr> =
                match std::net::ToSocketAddrs::to_socket_addrs(&address) {
                    Ok(addrs) => addrs.collect(),
                    Err(e) => return Some(format!("cannot resolve {address}: {e}")),
                };
            let Some(addr) = addrs.first() else {
                return Some(format!("cannot resolve {address}"));
            };
            match std::net::TcpStream::connect_timeout(addr, std::time::Duration::from_secs(3)) {
                Err(e) => Some(format!(
                    "cannot connect to {address} ({}); is swtpm running there?",
                    match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                        std::io::ErrorKind::TimedOut => "timed out".to_owned(),
                        _ => e.to_string(),
                    }
                )),
                Ok(_) => Some(format!(
                    "{address} accepts connections but the TPM did not answer (is it swtpm \
                     with --ctrl on port {port}+1, and --tpm2?)"
                )),
            }
        }
        _ => None,
    }
}

fn tpm_step(step: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Tpm { step, source }
}

/// Which kind of AK to create when the state directory has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AkAlgorithm {
    /// ECDSA NIST P-256 with SHA-256 (default).
    Ecc,
    /// RSASSA-PKCS1-v1_5 RSA-2048 with SHA-256.
    Rsa,
}

impl AkAlgorithm {
    fn file_stem(self) -> &'static str {
        match self {
            AkAlgorithm::Ecc => "ak-ecc-p256",
            AkAlgorithm::Rsa => "ak-rsa-2048",
        }
    }
}

/// PCR values by bank name ("sha256") and PCR index.
pub type PcrValues = BTreeMap<&'static str, BTreeMap<u32, Vec<u8>>>;

/// Which endorsement key the attester presents for registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EkAlgorithm {
    /// The TCG default RSA-2048 EK (certificate at NV 0x01c00002).
    Rsa,
    /// The TCG default ECC NIST P-256 EK (certificate at NV 0x01c0000a).
    Ecc,
}

impl EkAlgorithm {
    fn selection(self) -> AsymmetricAlgorithmSelection {
        match self {
            EkAlgorithm::Rsa => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            EkAlgorithm::Ecc => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        }
    }
}

/// The PCR banks Vigil quotes, in the order it asks for them.
pub const QUOTED_BANKS: [HashingAlgorithm; 3] = [
    HashingAlgorithm::Sha1,
    HashingAlgorithm::Sha256,
    HashingAlgorithm::Sha384,
];

/// Highest PCR index of a PC Client TPM.
pub const MAX_PCR_INDEX: u32 = 23;

/// Bank name as it appears on the wire and in tpm2-tools ("sha256").
pub fn bank_name(alg: HashingAlgorithm) -> &'static str {
    match alg {
        HashingAlgorithm::Sha1 => "sha1",
        HashingAlgorithm::Sha256 => "sha256",
        HashingAlgorithm::Sha384 => "sha384",
        HashingAlgorithm::Sha512 => "sha512",
        _ => "unknown",
    }
}

/// Parses a bank name from a request.
pub fn bank_from_name(name: &str) -> Option<HashingAlgorithm> {
    QUOTED_BANKS
        .into_iter()
        .chain([HashingAlgorithm::Sha512])
        .find(|alg| bank_name(*alg) == name)
}

/// A quote and everything needed to check it, in TPM wire format.
pub struct QuoteOutput {
    /// TPMS_ATTEST as the TPM returned it.
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE as the TPM returned it.
    pub signature: Vec<u8>,
    /// PCR values of the quoted selection, per bank, read around the quote.
    pub pcrs: PcrValues,
    /// The selection the TPM quoted, bank order as the TPM reported it.
    pub selection: Vec<(HashingAlgorithm, Vec<u32>)>,
}

/// An open TPM connection with a loaded AK. Calls are blocking FFI: use it from one thread
/// at a time (the service keeps it behind a mutex and calls it from `spawn_blocking`).
pub struct Tpm {
    context: Context,
    ek_algorithm: EkAlgorithm,
    ak: KeyHandle,
    ak_public: Public,
    ak_name: Vec<u8>,
    /// The EK derived once: deriving an RSA EK takes a prime search in the TPM (hundreds of
    /// milliseconds), and its public area cannot change while the AK under it still loads.
    ek_cache: Option<(EkAlgorithm, EndorsementKey)>,
}

impl Tpm {
    /// Connects to the TPM at `tcti` and loads the AK from `state_dir`, creating and
    /// persisting one of kind `algorithm` on first use.
    pub fn open(tcti: &str, state_dir: &Path, algorithm: AkAlgorithm) -> Result<Self, TpmError> {
        let conf = TctiNameConf::from_str(tcti).map_err(|source| TpmError::Open {
            tcti: tcti.to_owned(),
            reason: format!("not a TCTI this attester can use ({source})"),
        })?;
        let mut context = Context::new(conf).map_err(|source| TpmError::Open {
            tcti: tcti.to_owned(),
            reason: diagnose_tcti(tcti).unwrap_or_else(|| source.to_string()),
        })?;
        let (ak, ak_public) = load_or_create_ak(&mut context, state_dir, algorithm)?;
        let (_, name, _) = context
            .read_public(ak)
            .map_err(tpm_step("read AK public area"))?;
        Ok(Tpm {
            context,
            ek_algorithm: EkAlgorithm::Rsa,
            ak,
            ak_public,
            ak_name: name.value().to_vec(),
            ek_cache: None,
        })
    }

    /// TPM2B_PUBLIC of the AK.
    pub fn ak_public_tpm2b(&self) -> Result<Vec<u8>, TpmError> {
        PublicBuffer::try_from(self.ak_public.clone())
            .and_then(|buffer| buffer.marshall())
            .map_err(tpm_step("marshal AK public"))
    }

    /// The TPM object name of the AK (nameAlg || H(TPMT_PUBLIC)).
    pub fn ak_name(&self) -> &[u8] {
        &self.ak_name
    }

    /// The AK public area, for exporting it in other formats.
    pub fn ak_public(&self) -> &Public {
        &self.ak_public
    }

    /// The quotable banks this TPM has allocated with at least one PCR, in Vigil's order.
    pub fn allocated_banks(&mut self) -> Result<Vec<HashingAlgorithm>, TpmError> {
        let (capability, _) = self
            .context
            .get_capability(CapabilityType::AssignedPcr, 0, 16)
            .map_err(tpm_step("read allocated PCR banks"))?;
        let CapabilityData::AssignedPcr(list) = capability else {
            return Err(TpmError::Request(
                "TPM answered the PCR capability with another kind of data".into(),
            ));
        };
        Ok(QUOTED_BANKS
            .into_iter()
            .filter(|alg| {
                list.get_selections()
                    .iter()
                    .any(|s| s.hashing_algorithm() == *alg && !s.is_empty())
            })
            .collect())
    }

    /// Quotes `pcrs` in `banks` with `qualifying_data` as extraData, and reads the PCR
    /// values the quote covers. PCRs are read before and after the quote; if they changed
    /// in between (a measurement landed), the quote is retried so values and digest agree.
    pub fn quote(
        &mut self,
        qualifying_data: &[u8],
        banks: &[HashingAlgorithm],
        pcrs: &[u32],
    ) -> Result<QuoteOutput, TpmError> {
        let selection = build_selection(banks, pcrs)?;
        let data = Data::try_from(qualifying_data.to_vec())
            .map_err(tpm_step("qualifying data too large for the TPM"))?;
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let before = self.read_pcrs(selection.clone())?;
            let ak = self.ak;
            let (attest, signature) = self
                .context
                .execute_with_nullauth_session(|ctx| {
                    ctx.quote(ak, data.clone(), SignatureScheme::Null, selection.clone())
                })
                .map_err(tpm_step("quote"))?;
            let after = self.read_pcrs(selection.clone())?;
            if before != after {
                continue;
            }
            return Ok(QuoteOutput {
                attest: attest.marshall().map_err(tpm_step("marshal TPMS_ATTEST"))?,
                signature: signature
                    .marshall()
                    .map_err(tpm_step("marshal TPMT_SIGNATURE"))?,
                pcrs: after,
                selection: selection_indices(&selection),
            });
        }
        Err(TpmError::Request(format!(
            "PCR values kept changing during {ATTEMPTS} quote attempts"
        )))
    }

    fn read_pcrs(&mut self, mut remaining: PcrSelectionList) -> Result<PcrValues, TpmError> {
        let mut values = PcrValues::new();
        // TPM2_PCR_Read returns at most 8 digests per call: loop until all are read.
        while !remaining.is_empty() {
            let (_, read, digests) = self
                .context
                .pcr_read(remaining.clone())
                .map_err(tpm_step("read PCRs"))?;
            let mut digests = digests.value().iter();
            let mut progressed = false;
            for (alg, indices) in selection_indices(&read) {
                for index in indices {
                    let Some(digest) = digests.next() else {
                        return Err(TpmError::Request(
                            "TPM returned fewer PCR digests than its selection says".into(),
                        ));
                    };
                    values
                        .entry(bank_name(alg))
                        .or_default()
                        .insert(index, digest.value().to_vec());
                    progressed = true;
                }
            }
            if !progressed {
                // Selected PCRs the TPM does not have (e.g. an unallocated bank): stop.
                break;
            }
            remaining
                .subtract(&read)
                .map_err(tpm_step("track PCRs still to read"))?;
        }
        Ok(values)
    }
}

/// The EK as the attester presents it for registration.
#[derive(Debug, Clone)]
pub struct EndorsementKey {
    /// TPM2B_PUBLIC of the TCG default RSA-2048 EK.
    pub public: Vec<u8>,
    /// The EK certificate (DER) from its NV index, when the manufacturer provisioned one.
    pub certificate: Option<Vec<u8>>,
}

impl Tpm {
    /// Presents (and activates credentials with) the EK of `algorithm` from now on.
    pub fn use_endorsement_key(&mut self, algorithm: EkAlgorithm) {
        self.ek_algorithm = algorithm;
    }

    /// The TCG default EK's public area and certificate.
    pub fn endorsement_key(&mut self) -> Result<EndorsementKey, TpmError> {
        if let Some((algorithm, ek)) = &self.ek_cache
            && *algorithm == self.ek_algorithm
        {
            return Ok(ek.clone());
        }
        let ek = self.derive_endorsement_key()?;
        self.ek_cache = Some((self.ek_algorithm, ek.clone()));
        Ok(ek)
    }

    fn derive_endorsement_key(&mut self) -> Result<EndorsementKey, TpmError> {
        let ek = ek::create_ek_object_2(&mut self.context, self.ek_algorithm.selection(), None)
            .map_err(tpm_step("create the EK"))?;
        let public = self.context.read_public(ek);
        let flushed = self.context.flush_context(ek.into());
        let (public, _, _) = public.map_err(tpm_step("read the EK public area"))?;
        flushed.map_err(tpm_step("flush the EK"))?;
        let public = PublicBuffer::try_from(public)
            .and_then(|buffer| buffer.marshall())
            .map_err(tpm_step("marshal the EK public area"))?;
        // A missing NV index just means no certificate was provisioned (e.g. a bare swtpm).
        let certificate =
            ek::retrieve_ek_pubcert(&mut self.context, self.ek_algorithm.selection()).ok();
        Ok(EndorsementKey {
            public,
            certificate,
        })
    }

    /// TPM2_ActivateCredential: recovers the secret a verifier sealed to this TPM's EK for
    /// this AK's name. Only the TPM holding both keys can do it, which is what proves the
    /// AK lives beside the EK.
    pub fn activate_credential(
        &mut self,
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let blob = IdObject::try_from(credential_blob.to_vec())
            .map_err(|_| TpmError::Request("credential blob is too large".into()))?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec())
            .map_err(|_| TpmError::Request("encrypted secret is too large".into()))?;
        let ek = ek::create_ek_object_2(&mut self.context, self.ek_algorithm.selection(), None)
            .map_err(tpm_step("create the EK"))?;
        let result = self.activate_with_ek(ek, blob, secret);
        let flushed = self.context.flush_context(ek.into());
        let secret = result?;
        flushed.map_err(tpm_step("flush the EK"))?;
        Ok(secret)
    }

    fn activate_with_ek(
        &mut self,
        ek: KeyHandle,
        blob: IdObject,
        secret: EncryptedSecret,
    ) -> Result<Vec<u8>, TpmError> {
        // The TCG EK template's authPolicy is PolicySecret(TPM_RH_ENDORSEMENT).
        let session = self
            .context
            .start_auth_session(
                None,
                None,
                None,
                SessionType::Policy,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(tpm_step("start the EK policy session"))?
            .ok_or_else(|| TpmError::Request("TPM returned no policy session".into()))?;
        let outcome = (|| {
            let policy =
                PolicySession::try_from(session).map_err(tpm_step("use the EK policy session"))?;
            self.context
                .execute_with_nullauth_session(|ctx| {
                    ctx.policy_secret(
                        policy,
                        AuthHandle::Endorsement,
                        Default::default(),
                        Default::default(),
                        Default::default(),
                        None,
                    )
                })
                .map_err(tpm_step("satisfy the EK policy"))?;
            let ak = self.ak;
            self.context
                .execute_with_sessions((Some(AuthSession::Password), Some(session), None), |ctx| {
                    ctx.activate_credential(ak, ek, blob, secret)
                })
                .map_err(tpm_step("activate the credential"))
        })();
        let _ = self
            .context
            .flush_context(SessionHandle::from(session).into());
        Ok(outcome?.value().to_vec())
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        // swtpm and TPMs without a resource manager keep transient objects after the
        // connection closes; flush the AK so restarts don't run out of object slots.
        let _ = self.context.flush_context(self.ak.into());
    }
}

fn build_selection(banks: &[HashingAlgorithm], pcrs: &[u32]) -> Result<PcrSelectionList, TpmError> {
    let slots = pcrs
        .iter()
        .map(|&index| pcr_slot(index))
        .collect::<Result<Vec<_>, _>>()?;
    if slots.is_empty() || banks.is_empty() {
        return Err(TpmError::Request(
            "the PCR selection is empty (no PCRs or no banks)".into(),
        ));
    }
    let mut builder = PcrSelectionListBuilder::new();
    for bank in banks {
        builder = builder.with_selection(*bank, &slots);
    }
    builder.build().map_err(tpm_step("build PCR selection"))
}

fn pcr_slot(index: u32) -> Result<PcrSlot, TpmError> {
    if index > MAX_PCR_INDEX {
        return Err(TpmError::Request(format!(
            "PCR index {index} is out of range 0..={MAX_PCR_INDEX}"
        )));
    }
    PcrSlot::try_from(1u32 << index)
        .map_err(|_| TpmError::Request(format!("PCR index {index} has no slot")))
}

/// (bank, PCR indices in ascending order) for each selection in `list`, in list order.
fn selection_indices(list: &PcrSelectionList) -> Vec<(HashingAlgorithm, Vec<u32>)> {
    list.get_selections()
        .iter()
        .map(|selection| {
            let mut indices: Vec<u32> = selection
                .selected()
                .into_iter()
                .map(|slot| u32::from(slot).trailing_zeros())
                .collect();
            indices.sort_unstable();
            (selection.hashing_algorithm(), indices)
        })
        .collect()
}

fn state_file(dir: &Path, algorithm: AkAlgorithm, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{suffix}", algorithm.file_stem()))
}

fn load_or_create_ak(
    context: &mut Context,
    state_dir: &Path,
    algorithm: AkAlgorithm,
) -> Result<(KeyHandle, Public), TpmError> {
    let public_path = state_file(state_dir, algorithm, "pub");
    let private_path = state_file(state_dir, algorithm, "priv");
    let ek = ek::create_ek_object(context, AsymmetricAlgorithm::Rsa, None)
        .map_err(tpm_step("create the EK (RSA-2048, TCG default template)"))?;
    let result = load_or_create_under_ek(context, ek, &public_path, &private_path, algorithm);
    // The AK stays loaded; its parent is not needed for quoting. Free the slot.
    let flushed = context.flush_context(ek.into());
    let (handle, public) = result?;
    flushed.map_err(tpm_step("flush the EK"))?;
    Ok((handle, public))
}

fn load_or_create_under_ek(
    context: &mut Context,
    ek: KeyHandle,
    public_path: &Path,
    private_path: &Path,
    algorithm: AkAlgorithm,
) -> Result<(KeyHandle, Public), TpmError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TpmError::State {
            path: path.to_owned(),
            source,
        })
    };
    let dir = public_path.parent().unwrap_or(Path::new(".")).to_owned();
    let bad_state = |reason: String| TpmError::BadState {
        dir: dir.clone(),
        reason,
    };
    if public_path.exists() && private_path.exists() {
        let public = Public::unmarshall(&read(public_path)?)
            .map_err(|e| bad_state(format!("AK public does not decode: {e}")))?;
        let private = Private::try_from(read(private_path)?)
            .map_err(|e| bad_state(format!("AK private blob is invalid: {e}")))?;
        let handle = ak::load_ak(context, ek, None, private, public.clone())
            .map_err(tpm_step("load the persisted AK (is this the same TPM?)"))?;
        return Ok((handle, public));
    }
    let (key, scheme) = match algorithm {
        AkAlgorithm::Ecc => (
            AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
            SignatureSchemeAlgorithm::EcDsa,
        ),
        AkAlgorithm::Rsa => (
            AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            SignatureSchemeAlgorithm::RsaSsa,
        ),
    };
    let created = ak::create_ak_2(
        context,
        ek,
        HashingAlgorithm::Sha256,
        key,
        scheme,
        None,
        None,
    )
    .map_err(tpm_step("create the AK"))?;
    std::fs::create_dir_all(&dir).map_err(|source| TpmError::State {
        path: dir.clone(),
        source,
    })?;
    let public_bytes = created
        .out_public
        .marshall()
        .map_err(tpm_step("marshal AK public"))?;
    write_atomically(private_path, created.out_private.value())?;
    write_atomically(public_path, &public_bytes)?;
    let handle = ak::load_ak(
        context,
        ek,
        None,
        created.out_private,
        created.out_public.clone(),
    )
    .map_err(tpm_step("load the new AK"))?;
    Ok((handle, created.out_public))
}

/// Writes via a temporary file and rename, so a crash never leaves half an AK on disk.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TpmError> {
    let tmp = path.with_extension("tmp");
    let io = |source| TpmError::State {
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
