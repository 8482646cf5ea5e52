//! The verifier's core: issue a challenge, then turn the evidence that answers it into a
//! verdict. Stateful parts (nonces, the node's recorded AK, the verdict history) live
//! here; byte-level checks live in `evidence::*` and never touch the store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use vigil_proto::binding::qualifying_data;
use vigil_proto::v1::{Evidence, PcrSelection};

use crate::baseline::{self, Appraisal, Baseline, BaselineRef};
use crate::claims::{ClaimSet, Source, Trust, Value};
use crate::evidence::eventlog;
use crate::evidence::gpu::{GpuContext, check_gpus};
use crate::evidence::ima::{ImaStart, QuotedState, check_ima};
use crate::evidence::tpm as tpm_evidence;
use crate::metrics::Phase;
use crate::nonce::{self, DEFAULT_NONCE_TTL_SECS};
use crate::report::{AK_TRUST_TOFU, AttestationReport, Check, Verdict};
use crate::store::{NodeRecord, Store, StoreError};
use crate::store_api::StoreOps;
use crate::store_baselines::StoredBaseline;

/// PCRs every quote must cover: firmware (0-7) and boot loader (8-9).
pub const DEFAULT_REQUIRED_PCRS: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Default lifetime of a signed attestation result: a little over a polling interval.
pub const DEFAULT_RESULT_TTL_SECS: i64 = 600;

/// Identifies this build in signed results (`ear.verifier-id.build`).
pub const BUILD_ID: &str = concat!("vigil-verifier ", env!("CARGO_PKG_VERSION"));

/// Largest node id accepted; it is a label and a database key, not a document.
pub const MAX_NODE_ID_LEN: usize = 256;

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub nonce_ttl_secs: i64,
    pub required_pcrs: Vec<u32>,
    /// Dev only: record the AK of an unregistered node on first contact instead of failing.
    pub allow_tofu: bool,
    /// Without a baseline for the node's group the verdict fails (deny by default); with
    /// this set it passes on authenticity alone, with status "warning" and saying so.
    pub allow_no_baseline: bool,
    /// Lifetime of a signed attestation result (EAR `exp` - `iat`).
    pub result_ttl_secs: i64,
    /// Ask for whole IMA lists even when a verified prefix is stored (`baseline capture`).
    pub ima_full_lists: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            required_pcrs: DEFAULT_REQUIRED_PCRS.to_vec(),
            allow_tofu: false,
            allow_no_baseline: false,
            result_ttl_secs: DEFAULT_RESULT_TTL_SECS,
            ima_full_lists: false,
        }
    }
}

/// Failures that stop the verifier from reaching any verdict (as opposed to evidence that
/// fails a check, which is a verdict).
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Nonce(#[from] nonce::NonceError),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the store lock was poisoned by an earlier panic")]
    Poisoned,
    #[error("baseline: {0}")]
    Baseline(String),
    /// The attester sent IMA entries after a point this verifier cannot continue from (the
    /// host rebooted, or the stored state was dropped): challenge again for the whole list.
    #[error("the node's IMA list must be sent whole: {0}")]
    ImaRestart(String),
}

/// How evidence reached the verifier. It decides whether a verdict may speak for a registered
/// node: evidence from somewhere else that merely names the node is a claimed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The verifier pulled it from the attester at this address (`AttestNode`, polling).
    Pulled(String),
    /// The attester pushed it (`Verifier.Attest`).
    Pushed,
}

/// A fresh challenge for one node.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub nonce: Vec<u8>,
    pub expires_at: i64,
    pub selection: PcrSelection,
    /// IMA entries this verifier has verified for the node's current boot: the attester sends
    /// the rest (0: the whole list).
    pub ima_offset: u64,
}

pub struct Verifier {
    /// SQLite (parallel readers, one group-committing writer) or PostgreSQL (`store_api`).
    store: crate::store_api::StoreEngine,
    /// When expired nonces were last pruned (pruning runs at most once a minute).
    nonces_pruned_at: AtomicI64,
    /// Open channels to attesters for pull mode.
    attester_channels: crate::pull::AttesterChannels,
    config: VerifierConfig,
    /// NVIDIA RIMs for GPU measurement comparison.
    rims: Option<vigil_nvidia::RimStore>,
    /// CAs for Ascend NPU identity attestation keys (none shipped).
    npu_roots: Option<crate::evidence::ascend::AscendRoots>,
    /// NVIDIA device and RIM roots in place of the pinned ones (`--gpu-roots`, `--rim-roots`).
    gpu_roots: vigil_nvidia::roots::GpuRoots,
    /// Verified chains, RIMs and compiled baselines, shared by parallel appraisals.
    caches: crate::baseline_cache::VerificationCaches,
    /// Signs attestation results; without one, results are not signed (tests, offline use).
    result_key: Option<vigil_ear::ResultSigningKey>,
    /// When set, a baseline is accepted only with a detached signature by one of these.
    baseline_keys: Vec<baseline::signature::TrustedKey>,
    /// The client certificate for pulling from attesters (None: plaintext, dev mode).
    client_tls: Option<crate::connect::ClientTls>,
    /// Counts for `--metrics-listen` (atomics; no lock on the appraisal path).
    metrics: crate::metrics::VerifierMetrics,
}

/// The PCR Linux IMA extends.
pub const IMA_PCR: u32 = 10;

/// Where the node's next IMA list may start: after the entries verified under the baseline
/// that applies now. A state kept under another baseline version is not continued, so a
/// changed allow-list judges the whole list again.
fn ima_offset(store: &mut dyn StoreOps, node_id: &str) -> Result<u64, VerifierError> {
    let Some((baseline, state)) = store.ima_state(node_id)? else {
        return Ok(0);
    };
    Ok(if baseline == current_baseline_label(store, node_id)? {
        state.state.entries
    } else {
        0
    })
}

/// `name@version` of the baseline that applies to the node now ("" when none).
fn current_baseline_label(
    store: &mut dyn StoreOps,
    node_id: &str,
) -> Result<String, VerifierError> {
    let group = store
        .node(node_id)?
        .map_or_else(|| "default".to_owned(), |r| r.group);
    Ok(store
        .baseline_for_group(&group)?
        .map(|b| format!("{}@{}", b.name, b.version))
        .unwrap_or_default())
}

/// Seconds since the Unix epoch, the verifier's clock for nonces and records.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn validate_node_id(node_id: &str) -> Result<(), VerifierError> {
    if node_id.is_empty() || node_id.len() > MAX_NODE_ID_LEN {
        return Err(VerifierError::InvalidRequest(format!(
            "node id must be 1..={MAX_NODE_ID_LEN} bytes"
        )));
    }
    if node_id.chars().any(char::is_control) {
        return Err(VerifierError::InvalidRequest(
            "node id contains control characters".into(),
        ));
    }
    Ok(())
}

impl Verifier {
    pub fn new(store: Store, config: VerifierConfig) -> Self {
        Self::with_engine(
            crate::store_api::StoreEngine::Sqlite(crate::store_pool::StorePool::new(store)),
            config,
        )
    }

    /// A verifier on a PostgreSQL database shared with other replicas.
    pub fn on_postgres(pool: crate::store_pg::PgPool, config: VerifierConfig) -> Self {
        Self::with_engine(crate::store_api::StoreEngine::Postgres(pool), config)
    }

    fn with_engine(store: crate::store_api::StoreEngine, config: VerifierConfig) -> Self {
        Verifier {
            store,
            nonces_pruned_at: AtomicI64::new(0),
            attester_channels: crate::pull::AttesterChannels::default(),
            config,
            rims: None,
            npu_roots: None,
            gpu_roots: vigil_nvidia::roots::GpuRoots::default(),
            caches: crate::baseline_cache::VerificationCaches::new(),
            result_key: None,
            baseline_keys: Vec::new(),
            client_tls: None,
            metrics: crate::metrics::VerifierMetrics::new(),
        }
    }

    /// This verifier's metrics (`vigil serve --metrics-listen`).
    pub fn metrics(&self) -> &crate::metrics::VerifierMetrics {
        &self.metrics
    }

    /// Reads the gauges that come from the store (nodes by status, audit-log size) into the
    /// metrics and returns their OpenMetrics text. Called per scrape, off the hot path.
    pub fn render_metrics(&self) -> Result<String, VerifierError> {
        let (nodes, audit_entries) = self.store.read(|store| {
            Ok::<_, VerifierError>((store.nodes()?, store.audit_tree_size().unwrap_or(0)))
        })??;
        self.metrics
            .set_store_gauges(nodes.iter().map(|n| n.status.as_str()), audit_entries);
        let commits = self.store.commit_counts();
        self.metrics
            .set_commit_counts(commits.commits, commits.writes);
        let caches = self.caches().stats();
        for (name, stats) in [
            ("device_chain", caches.device_chains),
            ("rim_signature", caches.rim_signatures),
            ("rim_chain", caches.rim_chains),
            ("baseline", caches.baselines),
        ] {
            self.metrics
                .set_cache_counts(name, stats.hits, stats.misses);
        }
        Ok(self.metrics.encode())
    }

    /// Pulls from attesters over mutual TLS with this client certificate.
    pub fn with_client_tls(mut self, tls: crate::connect::ClientTls) -> Self {
        self.client_tls = Some(tls);
        self
    }

    pub fn client_tls(&self) -> Option<&crate::connect::ClientTls> {
        self.client_tls.as_ref()
    }

    /// Channels to attesters kept open between pulls.
    pub fn attester_channels(&self) -> &crate::pull::AttesterChannels {
        &self.attester_channels
    }

    /// Compares GPU measurements with the RIMs in `rims`.
    pub fn with_rims(mut self, rims: vigil_nvidia::RimStore) -> Self {
        self.rims = Some(rims);
        self
    }

    /// Verifies Ascend NPU attestation against these CAs.
    pub fn with_npu_roots(mut self, roots: crate::evidence::ascend::AscendRoots) -> Self {
        self.npu_roots = Some(roots);
        self
    }

    /// Trusts these NVIDIA device and RIM roots instead of the pinned ones.
    pub fn with_gpu_roots(mut self, roots: vigil_nvidia::roots::GpuRoots) -> Self {
        self.gpu_roots = roots;
        self
    }

    /// Uses `caches` (e.g. [`VerificationCaches::disabled`] to verify everything every time).
    ///
    /// [`VerificationCaches::disabled`]: crate::baseline_cache::VerificationCaches::disabled
    pub fn with_caches(mut self, caches: crate::baseline_cache::VerificationCaches) -> Self {
        self.caches = caches;
        self
    }

    /// The caches, for their hit and miss counts.
    pub fn caches(&self) -> &crate::baseline_cache::VerificationCaches {
        &self.caches
    }

    /// Signs every attestation result with `key`.
    pub fn with_result_key(mut self, key: vigil_ear::ResultSigningKey) -> Self {
        self.result_key = Some(key);
        self
    }

    /// Requires baselines to be signed by one of `keys`.
    pub fn with_baseline_keys(mut self, keys: Vec<baseline::signature::TrustedKey>) -> Self {
        self.baseline_keys = keys;
        self
    }

    /// The result-verification keys as a JWKS (empty when results are not signed).
    pub fn jwks(&self) -> vigil_ear::Jwks {
        vigil_ear::Jwks {
            keys: self.result_key.iter().map(|k| k.public_jwk()).collect(),
        }
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Commits so far and the writes they carried (group commit; see `store_pool`).
    pub fn commit_counts(&self) -> crate::store_pool::CommitCounts {
        self.store.commit_counts()
    }

    /// The engine the verifier stores into.
    pub fn store_engine(&self) -> &crate::store_api::StoreEngine {
        &self.store
    }

    /// The SQLite store's connections (tests of group commit); None on PostgreSQL.
    pub fn store_pool(&self) -> Option<&crate::store_pool::StorePool> {
        self.store.sqlite()
    }

    /// Binds a registered node's AK. A node recorded by trust on first use is replaced; a
    /// node registered before keeps its identity unless this is the same EK and AK (an
    /// idempotent re-registration): a new TPM must be removed and registered deliberately.
    pub fn record_registration(&self, record: &NodeRecord) -> Result<(), VerifierError> {
        let owned = record.clone();
        let changes = self.store.write(move |store| {
        let record = &owned;
        if let Some(existing) = store.node(&record.node_id)?
            && existing.registered_at.is_some()
            && (existing.ek_public != record.ek_public || existing.ak_public != record.ak_public)
        {
            return Err(VerifierError::InvalidRequest(format!(
                "node {:?} is already registered with another EK or AK; remove it first (`vigil node remove`)",
                record.node_id
            )));
        }
        let seq_before = store.latest_status_seq()?;
        store.replace_node(record, &vigil_audit::AuditEntry {
            kind: "node.registered".to_owned(),
            time: record.registered_at.unwrap_or(record.last_seen),
            subject: record.node_id.clone(),
            body: serde_json::json!({
                "group": record.group,
                "ak_trust": record.ak_trust,
                "ak_name": hex::encode(&record.ak_name),
                "ek_sha256": record.ek_public.as_deref().map(crate::registration::register::ek_fingerprint).map(hex::encode),
                "address": record.address,
            }),
        })?;
        Ok(status_changes_since(store, seq_before))
        })?;
        log_status_changes(changes);
        tracing::info!(
            event = "registration",
            node = %record.node_id,
            group = %record.group,
            ak_trust = %record.ak_trust,
            address = record.address.as_deref().unwrap_or(""),
            ek_sha256 = record
                .ek_public
                .as_deref()
                .map(crate::registration::register::ek_fingerprint)
                .map(hex::encode)
                .unwrap_or_default(),
            "node registered"
        );
        Ok(())
    }

    /// Runs `f` with the SQLite store (the web console's queries, on a read connection of
    /// its own beside appraisals being recorded). PostgreSQL replicas answer the same
    /// questions through [`Verifier::read`]; this says so instead.
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T, VerifierError> {
        match self.store.sqlite() {
            Some(pool) => pool.read(f),
            None => Err(VerifierError::InvalidRequest(
                "this query needs the embedded SQLite store; this verifier runs on PostgreSQL"
                    .into(),
            )),
        }
    }

    /// Runs `f` as a read on either engine (node lists, history, baselines, the audit log).
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn StoreOps) -> T) -> Result<T, VerifierError> {
        self.store.read(f)
    }

    /// The public key of the audit log's checkpoints.
    pub fn audit_public_key(&self) -> Result<vigil_audit::AuditPublicKey, VerifierError> {
        match &self.store {
            crate::store_api::StoreEngine::Sqlite(pool) => {
                pool.read(|store| store.audit_public_key())
            }
            crate::store_api::StoreEngine::Postgres(pool) => Ok(pool.audit_public_key()),
        }
    }

    /// Status changes from `from` on (see `Verifier.Watch`).
    pub fn status_changes(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<crate::store::StatusChange>, VerifierError> {
        Ok(self
            .store
            .read(|store| store.status_changes(from, limit))??)
    }

    /// The newest status change's sequence number (0 when there is none).
    pub fn latest_status_seq(&self) -> Result<i64, VerifierError> {
        Ok(self.store.read(|store| store.latest_status_seq())??)
    }

    /// Marks a node unknown: it missed its window or could not be reached.
    pub fn mark_unknown(&self, node_id: &str, reason: &str, now: i64) -> Result<(), VerifierError> {
        let (node, why) = (node_id.to_owned(), reason.to_owned());
        let changes = self.store.write(move |store| {
            let seq_before = store.latest_status_seq()?;
            store.mark_unknown(&node, &why, now)?;
            Ok(status_changes_since(store, seq_before))
        })?;
        if !changes.is_empty() {
            tracing::warn!(event = "node_unknown", node = %node_id, reason = %reason, "node marked unknown");
        }
        log_status_changes(changes);
        Ok(())
    }

    /// Every known node.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, VerifierError> {
        Ok(self.store.read(|store| store.nodes())??)
    }

    /// This replica's name in node leases (PostgreSQL); None on the embedded store.
    pub fn replica_id(&self) -> Option<&str> {
        match &self.store {
            crate::store_api::StoreEngine::Postgres(pool) => Some(pool.replica_id()),
            crate::store_api::StoreEngine::Sqlite(_) => None,
        }
    }

    /// The nodes this verifier polls now: every node on the embedded store; on PostgreSQL
    /// the due ones this replica just leased for `lease_secs` (see `poll::run`).
    pub fn nodes_to_poll(&self, lease_secs: i64) -> Result<Vec<NodeRecord>, VerifierError> {
        let crate::store_api::StoreEngine::Postgres(pool) = &self.store else {
            return self.nodes();
        };
        let replica = pool.replica_id().to_owned();
        let nodes = self.nodes()?;
        let total = nodes.len() as i64;
        let now = unix_now();
        let claimed = pool.with_connection(|db| {
            let limit = fair_share(&db.lease_counts(now)?, &replica, total);
            db.claim_due_nodes(&replica, now, lease_secs, limit)
        })?;
        Ok(nodes
            .into_iter()
            .filter(|n| claimed.binary_search(&n.node_id).is_ok())
            .collect())
    }

    /// Gives back this replica's node leases (graceful shutdown), so the other replicas
    /// take its nodes at once instead of when the leases expire.
    pub fn release_leases(&self) -> Result<u64, VerifierError> {
        match &self.store {
            crate::store_api::StoreEngine::Postgres(pool) => {
                let replica = pool.replica_id().to_owned();
                pool.with_connection(|db| db.release_leases(&replica))
            }
            crate::store_api::StoreEngine::Sqlite(_) => Ok(0),
        }
    }

    /// Prunes the stored evidence of verdicts recorded before `cutoff` (see
    /// [`Store::prune_evidence`]).
    pub fn prune_evidence(
        &self,
        cutoff: i64,
        now: i64,
    ) -> Result<crate::store::PruneReport, VerifierError> {
        self.store
            .write(move |store| Ok(store.prune_evidence(cutoff, now)?))
    }

    /// Forgets a node (its history stays). False if it was unknown.
    pub fn remove_node(&self, node_id: &str) -> Result<bool, VerifierError> {
        let node = node_id.to_owned();
        self.store
            .write(move |store| Ok(store.remove_node(&node, unix_now())?))
    }

    /// Issues a single-use nonce for `node_id` and says which PCRs to quote.
    pub fn challenge(&self, node_id: &str, now: i64) -> Result<Challenge, VerifierError> {
        validate_node_id(node_id)?;
        let (node, ttl) = (node_id.to_owned(), self.config.nonce_ttl_secs);
        let prune = self.nonces_pruned_at.load(Ordering::Relaxed) < now.saturating_sub(60);
        if prune {
            self.nonces_pruned_at.store(now, Ordering::Relaxed);
        }
        let nonce = self.store.write(move |store| {
            if prune {
                nonce::prune(store, now)?;
            }
            Ok(nonce::issue(store, &node, now, ttl)?)
        })?;
        let ima_offset = if self.config.ima_full_lists {
            0
        } else {
            self.store.read(|store| ima_offset(store, node_id))??
        };
        // PCR 10 is always quoted: IMA extends it, and its replay needs the quoted value.
        let mut pcrs = self.config.required_pcrs.clone();
        if !pcrs.contains(&IMA_PCR) {
            pcrs.push(IMA_PCR);
        }
        Ok(Challenge {
            nonce: nonce.to_vec(),
            expires_at: now.saturating_add(self.config.nonce_ttl_secs),
            selection: PcrSelection {
                pcrs,
                banks: Vec::new(),
            },
            ima_offset,
        })
    }

    /// Appraises `evidence` from `node_id`. `issued_nonce` is the nonce the caller itself
    /// obtained from [`Verifier::challenge`] (pull mode); in push mode it is `None` and the
    /// nonce the evidence carries must be one this verifier issued to `node_id`.
    /// The verdict is recorded before this returns.
    ///
    /// Only evidence attributable to the registered node changes its status: pulled from its
    /// registered address, or (pushed, or no address recorded) quoted by its registered AK.
    /// Anything else that names a registered node is recorded and audited as a
    /// claimed-identity failure (`node.claimed_identity`) and leaves the node's status alone,
    /// so an impostor cannot turn a genuine node untrusted.
    pub fn appraise(
        &self,
        node_id: &str,
        issued_nonce: Option<&[u8]>,
        evidence: &Evidence,
        origin: &Origin,
        now: i64,
    ) -> Result<AttestationReport, VerifierError> {
        validate_node_id(node_id)?;
        let started = std::time::Instant::now();
        let mut checks = Vec::new();
        let nonce = issued_nonce.unwrap_or(&evidence.nonce);
        // The store is held only to read and to record: the evidence checks below (signatures,
        // replay, GPU chains) run outside the lock, concurrently with other appraisals.
        // Freshness first: consuming the nonce makes any retry of this evidence a replay.
        let nonce_outcome = {
            let (owned_nonce, node) = (nonce.to_vec(), node_id.to_owned());
            self.store
                .write(move |store| Ok(nonce::consume(store, &owned_nonce, &node, now)))?
        };
        let (recorded, group, stored_baseline, ima_stored) = self.store.read(|store| {
            let recorded = store.node(node_id)?;
            let group = recorded
                .as_ref()
                .map_or_else(|| "default".to_owned(), |r| r.group.clone());
            let stored_baseline = store.baseline_for_group(&group)?;
            let ima_stored = store.ima_state(node_id)?;
            Ok::<_, VerifierError>((recorded, group, stored_baseline, ima_stored))
        })??;
        let mut phase_start = std::time::Instant::now();
        self.metrics
            .phase(Phase::Nonce, phase_start.duration_since(started));
        let baseline_label = stored_baseline
            .as_ref()
            .map(|b| format!("{}@{}", b.name, b.version))
            .unwrap_or_default();
        // The stored IMA state continues only under the baseline it was appraised with.
        let ima_start = ima_stored
            .filter(|(label, _)| *label == baseline_label)
            .map(|(_, start)| start);
        match nonce_outcome {
            Ok(()) => checks.push(Check::pass(
                "nonce.fresh",
                "issued to this node, unexpired, first use",
            )),
            Err(error) => checks.push(Check::fail("nonce.fresh", error.to_string())),
        }
        if !evidence.node_id.is_empty() && evidence.node_id != node_id {
            checks.push(Check::fail(
                "node.id",
                format!(
                    "evidence names node {:?}, challenge was for {node_id:?}",
                    evidence.node_id
                ),
            ));
        }

        let gpu_context = GpuContext {
            rims: self.rims.as_ref(),
            at: now,
            npu_roots: self.npu_roots.as_ref(),
            nvidia: crate::evidence::gpu::NvidiaTrust {
                device_roots: self.gpu_roots.device.as_deref(),
                rim_roots: self.gpu_roots.rim.as_deref(),
                caches: Some(&self.caches.gpu),
            },
        };
        let outcome = check_evidence_with(
            nonce,
            evidence,
            &self.config.required_pcrs,
            &gpu_context,
            ima_start.as_ref(),
        );
        if outcome.ima_stale {
            let node = node_id.to_owned();
            self.store
                .write(move |store| Ok(store.delete_ima_state(&node)?))?;
            if matches!(origin, Origin::Pulled(_)) {
                let why = outcome
                    .checks
                    .iter()
                    .find(|c| c.name == "ima.replay" && !c.passed)
                    .map(|c| c.detail.clone())
                    .unwrap_or_default();
                return Err(VerifierError::ImaRestart(why));
            }
        }
        let ima_next = outcome.ima_next;
        let ima_start_record = outcome.ima_start_record;
        checks.extend(outcome.checks);
        if let Some((ak_public, ak_name)) = &outcome.ak {
            checks.push(ak_known_check(
                node_id,
                recorded.as_ref(),
                ak_public,
                ak_name,
                self.config.allow_tofu,
            ));
        }
        let ak_name = outcome
            .ak
            .as_ref()
            .map(|(_, name)| hex::encode(name))
            .unwrap_or_default();
        let ak_public_seen = outcome.ak.map(|(public, _)| public);
        // The trust label belongs to the recorded AK: only a matching AK inherits it.
        let ak_matches_record = recorded
            .as_ref()
            .is_some_and(|r| Some(&r.ak_public) == ak_public_seen.as_ref());
        let attributable = match (&recorded, origin) {
            (None, _) => true,
            (Some(record), Origin::Pulled(address)) => match &record.address {
                Some(registered) => crate::connect::same_endpoint(registered, address),
                None => ak_matches_record,
            },
            (Some(_), Origin::Pushed) => ak_matches_record,
        };
        if !attributable && let Some(record) = &recorded {
            checks.push(Check::fail(
                "node.claimed_identity",
                match (origin, &record.address) {
                    (Origin::Pulled(address), Some(registered)) => format!(
                        "evidence from {address} names node {node_id:?}, which is registered at {registered}: \
                         recorded as a claimed identity; the node's status is unchanged"
                    ),
                    _ => format!(
                        "evidence names node {node_id:?} but is not quoted by its registered AK: \
                         recorded as a claimed identity; the node's status is unchanged"
                    ),
                },
            ));
        }
        let ak_trust = match &recorded {
            Some(record) if ak_matches_record => record.ak_trust.clone(),
            Some(_) => "untrusted".to_owned(),
            None if self.config.allow_tofu => AK_TRUST_TOFU.to_owned(),
            None => "unregistered".to_owned(),
        };

        let now_instant = std::time::Instant::now();
        self.metrics
            .phase(Phase::Evidence, now_instant.duration_since(phase_start));
        phase_start = now_instant;

        let mut host_claims = outcome.host_claims;
        host_claims.node_id = node_id.to_owned();
        host_claims.verified_at = now;
        host_claims.push(
            "tpm.ak_trust",
            Some(Value::Text(ak_trust.clone())),
            Trust::Verified,
            Source::Verifier {
                check: "ak.known".into(),
            },
        );
        let mut required_files: Vec<baseline::ima::RequiredFile> = Vec::new();
        let appraisal = match stored_baseline {
            Some(stored) => match self.caches.baselines.compile(&stored) {
                Ok(baseline) => {
                    required_files = baseline
                        .rules
                        .iter()
                        .filter_map(|rule| match &rule.expect {
                            baseline::rules::Expect::ImaRequired(required) => {
                                Some(required.clone())
                            }
                            _ => None,
                        })
                        .collect();
                    let appraisal = baseline::appraise(&host_claims, &checks, &baseline, now);
                    checks.push(appraisal_check(&appraisal));
                    Some(appraisal)
                }
                Err(error) => {
                    checks.push(Check::fail(
                        "baseline.appraisal",
                        format!(
                            "baseline {}@{} does not load: {error}",
                            stored.name, stored.version
                        ),
                    ));
                    None
                }
            },
            None if self.config.allow_no_baseline => {
                checks.push(Check::pass(
                    "baseline.assigned",
                    format!(
                        "none for group {group:?}: evidence checked for authenticity only (--allow-no-baseline)"
                    ),
                ));
                None
            }
            None => {
                checks.push(Check::fail(
                    "baseline.assigned",
                    format!(
                        "no baseline is assigned to group {group:?}: nothing says what is trusted (deny by default; `vigil baseline assign`)"
                    ),
                ));
                None
            }
        };

        // The IMA state advances only over entries that checked out and that no IMA rule
        // objected to: a refused file is judged again at the next attestation, never skipped.
        // Every evidence check must have passed too: a state kept from evidence of an unknown
        // AK, a stale nonce or a claimed identity would be continued for the genuine node.
        let ima_acceptable = !checks
            .iter()
            .any(|c| !c.passed && !c.name.starts_with("baseline."))
            && appraisal.as_ref().is_none_or(|a| {
                !a.results
                    .iter()
                    .any(|r| r.rule.starts_with("ima.") && r.outcome != baseline::Outcome::Pass)
            });
        let ima_keep = ima_next.filter(|_| ima_acceptable).map(|next| {
            crate::evidence::ima::state_to_keep(next, &host_claims.claims, |m| {
                required_files.iter().any(|r| r.judge(m).is_ok())
            })
        });

        let mut report = AttestationReport::new(node_id, nonce, now, checks);
        report.ima_start = ima_start_record;
        report.ak_name = ak_name;
        report.ak_trust = ak_trust;
        report.quoted_pcrs = outcome.quoted_pcrs;
        report.claims = outcome.claims;
        report.host_claims = Some(host_claims);
        report.status = result_status(&report, appraisal.as_ref());
        report.baseline = appraisal.as_ref().map(|a| a.baseline.to_string());
        report.appraisal = appraisal;
        report.result_token = self.sign_result(&report)?;
        let now_instant = std::time::Instant::now();
        self.metrics
            .phase(Phase::Appraisal, now_instant.duration_since(phase_start));
        phase_start = now_instant;

        let result = serde_json::to_value(&report)
            .map_err(|e| VerifierError::InvalidRequest(format!("report serialisation: {e}")))?;
        let verdict = match report.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        };
        // Trust on first use: record the AK only when everything else checked out.
        let tofu_node = match (&recorded, report.verdict, ak_public_seen) {
            (None, Verdict::Pass, Some(ak_public)) => Some(NodeRecord {
                node_id: node_id.to_owned(),
                ak_public,
                ak_name: hex::decode(&report.ak_name).unwrap_or_default(),
                ak_trust: AK_TRUST_TOFU.to_owned(),
                address: None,
                first_seen: now,
                last_seen: now,
                last_verdict: None,
                ek_public: None,
                ek_certificate: None,
                group: "default".to_owned(),
                registered_at: None,
                status: crate::store::STATUS_UNKNOWN.to_owned(),
            }),
            _ => None,
        };
        // Serialising and encoding happen here, in parallel; the writer only inserts.
        let prepared = crate::store::PreparedVerdict::new(
            node_id,
            nonce,
            now,
            verdict,
            result,
            prost::Message::encode_to_vec(evidence),
            attributable,
        )?;
        let record = VerdictToRecord {
            node_id: node_id.to_owned(),
            verified_at: now,
            prepared,
            tofu_node,
            gpu_identities: (report.verdict == Verdict::Pass)
                .then(|| {
                    report
                        .host_claims
                        .as_ref()
                        .map(|c| gpu_identities(c).to_string())
                })
                .flatten(),
            // After the verdict, in the same transaction: a list that did not check out
            // leaves the stored state where it was, so the same entries are sent, and
            // judged, again.
            ima_state: ima_keep
                .filter(|_| attributable)
                .map(|state| (baseline_label.clone(), state)),
        };
        let changes = self.store.write(move |store| record.write(store))?;
        self.metrics.phase(Phase::Record, phase_start.elapsed());
        log_status_changes(changes);
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        self.metrics
            .verdict(&report.status, verdict, failed.iter().copied());
        tracing::info!(
            event = "verdict",
            node = %node_id,
            verdict,
            status = %report.status,
            failed_checks = %failed.join(","),
            baseline = report.baseline.as_deref().unwrap_or(""),
            origin = %match origin {
                Origin::Pulled(address) => address.as_str(),
                Origin::Pushed => "pushed",
            },
            claimed_identity = !attributable,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "verdict recorded"
        );
        Ok(report)
    }

    /// Signs the EAR for `report` (None when this verifier has no result key).
    fn sign_result(&self, report: &AttestationReport) -> Result<Option<String>, VerifierError> {
        let Some(key) = &self.result_key else {
            return Ok(None);
        };
        crate::result::sign(key, report, self.config.result_ttl_secs)
            .map(Some)
            .map_err(|e| VerifierError::InvalidRequest(format!("signing the result: {e}")))
    }

    /// Validates a baseline file (and its signature when signing keys are configured) and
    /// stores it as a new version. The change is in the audit log when this returns.
    pub fn put_baseline(
        &self,
        source_name: &str,
        text: &str,
        signature_hex: Option<&str>,
        author: &str,
        reason: &str,
        now: i64,
    ) -> Result<StoredBaseline, VerifierError> {
        let compiled = baseline::parse_baseline(source_name, text)
            .map_err(|e| VerifierError::Baseline(e.to_string()))?;
        let signed_by = match (self.baseline_keys.is_empty(), signature_hex) {
            (true, None) => None,
            (false, Some(signature)) => Some(
                baseline::signature::verify_detached(
                    source_name,
                    text.as_bytes(),
                    signature,
                    &self.baseline_keys,
                )
                .map_err(|e| VerifierError::Baseline(e.to_string()))?
                .key_id(),
            ),
            (true, Some(_)) => {
                return Err(VerifierError::Baseline(format!(
                    "{source_name}: signature: given, but no trusted baseline-signing keys are configured (--baseline-keys)"
                )));
            }
            (false, None) => {
                return Err(VerifierError::Baseline(format!(
                    "{source_name}: signature: required (trusted baseline-signing keys are configured) but none was given"
                )));
            }
        };
        check_who_and_why(author, reason)?;
        let digest = baseline::content_digest(text);
        let (name, body, author, reason) = (
            compiled.name.clone(),
            text.to_owned(),
            author.to_owned(),
            reason.to_owned(),
        );
        let rules = compiled.rules.len() as i64;
        self.store.write(move |store| {
            Ok(store.put_baseline(&crate::store_baselines::NewBaseline {
                name: &name,
                sha256: &digest,
                body: &body,
                author: &author,
                reason: &reason,
                signed_by: signed_by.as_deref(),
                rules,
                time: now,
            })?)
        })
    }

    /// Points node group `group` at baseline `name`.
    pub fn assign_baseline(
        &self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        now: i64,
    ) -> Result<StoredBaseline, VerifierError> {
        if group.is_empty() || group.len() > MAX_NODE_ID_LEN || group.chars().any(char::is_control)
        {
            return Err(VerifierError::InvalidRequest("invalid group name".into()));
        }
        check_who_and_why(author, reason)?;
        let (group, name, author, reason) = (
            group.to_owned(),
            name.to_owned(),
            author.to_owned(),
            reason.to_owned(),
        );
        self.store
            .write(move |store| Ok(store.assign_baseline(&group, &name, &author, &reason, now)?))
    }

    /// What-if: how every node's latest verdict would change under the proposed baseline
    /// `text`, judged on the claims recorded with that verdict. Nothing is stored.
    pub fn impact(
        &self,
        text: &str,
        group: Option<&str>,
    ) -> Result<crate::impact::ImpactReport, VerifierError> {
        let compiled = baseline::parse_baseline("proposed baseline", text)
            .map_err(|e| VerifierError::Baseline(e.to_string()))?;
        self.store.read(|store| {
            crate::impact::impact(store, &compiled, &baseline::content_digest(text), group)
                .map_err(VerifierError::from)
        })?
    }
}

/// How many more nodes `replica` may lease now: an even share of `total` among the replicas
/// holding leases (itself included), less what it holds, and at least one. A replica alone,
/// or one whose peers died (their leases expired, so they no longer count), takes every due
/// node.
fn fair_share(leases: &BTreeMap<String, i64>, replica: &str, total: i64) -> i64 {
    let replicas = leases.len() as i64 + i64::from(!leases.contains_key(replica));
    let share = (total + replicas - 1) / replicas.max(1);
    let held = leases.get(replica).copied().unwrap_or(0);
    (share - held).max(1)
}

/// Everything one verdict writes, owned, so the group-commit writer can record it.
struct VerdictToRecord {
    node_id: String,
    verified_at: i64,
    prepared: crate::store::PreparedVerdict,
    /// The node to record by trust on first use, when the verdict passed for an unknown node.
    tofu_node: Option<NodeRecord>,
    gpu_identities: Option<String>,
    /// `(baseline label, IMA state)` to continue from at the next attestation.
    ima_state: Option<(String, ImaStart)>,
}

impl VerdictToRecord {
    /// Records the verdict (with its audit entry), the node's new status, its GPU identities
    /// and IMA state, in the caller's transaction; returns the status changes it caused.
    fn write(
        self,
        store: &mut dyn StoreOps,
    ) -> Result<Vec<crate::store::StatusChange>, VerifierError> {
        let seq_before = store.latest_status_seq()?;
        if let Some(node) = &self.tofu_node
            && !store.insert_node(node)?
        {
            // Another request recorded this node in the meantime: re-check against it.
            return Err(VerifierError::InvalidRequest(
                "node was registered concurrently; retry".into(),
            ));
        }
        store.record_prepared_verdict(&self.prepared)?;
        if let Some(identities) = &self.gpu_identities {
            store.set_gpu_identities(&self.node_id, identities)?;
        }
        if let Some((label, state)) = &self.ima_state {
            store.put_ima_state(&self.node_id, label, state, self.verified_at)?;
        }
        Ok(status_changes_since(store, seq_before))
    }
}

/// The status changes recorded after `seq_before` (the caller holds the store, so they are
/// its own); read only when there are any. A failure to read them is logged, never an error.
fn status_changes_since(
    store: &mut dyn StoreOps,
    seq_before: i64,
) -> Vec<crate::store::StatusChange> {
    match store.latest_status_seq() {
        Ok(latest) if latest <= seq_before => return Vec::new(),
        _ => {}
    }
    store
        .status_changes(seq_before + 1, 64)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read back status changes for the log");
            Vec::new()
        })
}

/// Logs status changes (after the store is released).
fn log_status_changes(changes: Vec<crate::store::StatusChange>) {
    for change in changes {
        tracing::info!(
            event = "status_change",
            node = %change.node_id,
            old = %change.old_status,
            new = %change.new_status,
            reason = %change.reason,
            seq = change.seq,
            "node status {} -> {}",
            change.old_status,
            change.new_status
        );
    }
}

/// The identities of the GPUs a host proved with signed reports (for the registry).
fn gpu_identities(claims: &ClaimSet) -> serde_json::Value {
    let value = |name: String| {
        claims
            .get(&name)
            .filter(|c| c.trust.usable())
            .and_then(|c| c.value.as_ref())
            .map(ToString::to_string)
    };
    claims
        .gpu_indices()
        .into_iter()
        .filter(|i| value(format!("gpu[{i}].evidence")).as_deref() == Some("signed"))
        .map(|i| {
            serde_json::json!({
                "index": i,
                "uuid": value(format!("gpu[{i}].uuid")),
                "device": value(format!("gpu[{i}].device")),
                "hwmodel": value(format!("gpu[{i}].hwmodel")),
                "device_certificate_serial": value(format!("gpu[{i}].device_serial")),
            })
        })
        .collect()
}

/// Longest author or reason recorded with a baseline change.
const MAX_CHANGE_TEXT: usize = 1024;

/// Every baseline change says who and why, in bounded, printable text.
fn check_who_and_why(author: &str, reason: &str) -> Result<(), VerifierError> {
    for (field, text) in [("author", author), ("reason", reason)] {
        if text.trim().is_empty() {
            return Err(VerifierError::InvalidRequest(format!(
                "a baseline change needs its {field}"
            )));
        }
        if text.len() > MAX_CHANGE_TEXT || text.chars().any(char::is_control) {
            return Err(VerifierError::InvalidRequest(format!(
                "{field} must be at most {MAX_CHANGE_TEXT} bytes of printable text"
            )));
        }
    }
    Ok(())
}

/// A stored baseline version, compiled for appraisal.
pub fn compile_stored(stored: &StoredBaseline) -> Result<Baseline, baseline::BaselineError> {
    let compiled =
        baseline::parse_baseline(&format!("{}@{}", stored.name, stored.version), &stored.body)?;
    Ok(Baseline {
        reference: BaselineRef {
            name: stored.name.clone(),
            version: stored.version,
            sha256: stored.sha256.clone(),
        },
        rules: compiled.rules,
    })
}

/// The check that carries the appraisal into the verdict.
fn appraisal_check(appraisal: &Appraisal) -> Check {
    let failures: Vec<String> = appraisal
        .failures()
        .map(|r| format!("{} ({})", r.rule, r.claim))
        .collect();
    let status = serde_json::to_value(appraisal.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let detail = if failures.is_empty() {
        format!(
            "{status}: all {} rules of baseline {} hold",
            appraisal.results.len(),
            appraisal.baseline
        )
    } else {
        format!(
            "{status} under baseline {}: {} of {} rule results not met: {}",
            appraisal.baseline,
            failures.len(),
            appraisal.results.len(),
            failures.join(", ")
        )
    };
    if appraisal.acceptable() {
        Check::pass("baseline.appraisal", detail)
    } else {
        Check::fail("baseline.appraisal", detail)
    }
}

/// The AR4SI status reported with a result.
fn result_status(report: &AttestationReport, appraisal: Option<&Appraisal>) -> String {
    let status = match (report.verdict, appraisal) {
        (Verdict::Fail, Some(a)) => a.status.max(vigil_ear::Status::Contraindicated),
        (Verdict::Fail, None) => vigil_ear::Status::Contraindicated,
        (Verdict::Pass, Some(a)) => a.status,
        // Passed without a baseline (--allow-no-baseline): authentic, nothing appraised.
        (Verdict::Pass, None) => vigil_ear::Status::Warning,
    };
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What the evidence itself proves, independent of any stored state (nonce freshness and the
/// node's recorded AK are judged by the caller). `vigil audit reappraise` re-runs exactly this.
pub struct EvidenceOutcome {
    pub checks: Vec<Check>,
    /// The AK presented (TPM2B_PUBLIC) and its name, when it decodes.
    pub ak: Option<(Vec<u8>, Vec<u8>)>,
    /// Verified PCR values: bank -> PCR -> hex.
    pub quoted_pcrs: BTreeMap<String, BTreeMap<u32, String>>,
    pub claims: Vec<eventlog::Claim>,
    /// What appraisal sees: PCRs, boot and GPU claims (node id and time are the caller's).
    pub host_claims: ClaimSet,
    /// The IMA state after the verified prefix of the list (None without a verified list).
    pub ima_next: Option<ImaStart>,
    /// The list does not continue the given state (a reboot): the whole list is needed.
    pub ima_stale: bool,
    /// The state an incremental list was replayed from (recorded for re-appraisal).
    pub ima_start_record: Option<ImaStart>,
}

/// Checks `evidence` against `nonce` as [`check_evidence_with`] does, for an IMA list sent
/// whole (no state from earlier attestations).
pub fn check_evidence(
    nonce: &[u8],
    evidence: &Evidence,
    required_pcrs: &[u32],
    gpu: &GpuContext<'_>,
) -> EvidenceOutcome {
    check_evidence_with(nonce, evidence, required_pcrs, gpu, None)
}

/// Checks `evidence` against `nonce`: AK, quote (signature, qualifying data binding the GPU
/// evidence, PCR digest and coverage), event log replay, IMA replay (continuing from
/// `ima_start` when the list does not begin at entry 0), GPU evidence (at `gpu.at`).
pub fn check_evidence_with(
    nonce: &[u8],
    evidence: &Evidence,
    required_pcrs: &[u32],
    gpu: &GpuContext<'_>,
    ima_start: Option<&ImaStart>,
) -> EvidenceOutcome {
    let mut checks = Vec::new();
    if evidence.nonce.as_slice() == nonce {
        checks.push(Check::pass(
            "nonce.echoed",
            "evidence carries the issued nonce",
        ));
    } else {
        checks.push(Check::fail(
            "nonce.echoed",
            format!(
                "evidence carries nonce {}, expected {}",
                hex::encode(&evidence.nonce),
                hex::encode(nonce)
            ),
        ));
    }
    let mut ak = None;
    let mut quoted_pcrs: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    let mut verified_pcrs: Option<tpm_evidence::PcrValues> = None;
    let mut reset_count = 0u32;
    match evidence
        .tpm
        .as_ref()
        .and_then(|t| t.quote.as_ref().map(|q| (t, q)))
    {
        None => checks.push(Check::fail("tpm.evidence", "no TPM quote in the evidence")),
        Some((tpm, quote)) => {
            match tpm_evidence::inspect_ak(&tpm.ak_public) {
                Ok(facts) => {
                    checks.push(ak_attributes_check(&facts));
                    ak = Some((tpm.ak_public.clone(), facts.name));
                }
                Err(detail) => checks.push(Check::fail("ak.decode", detail)),
            }
            let expected = qualifying_data(nonce, &evidence.gpus);
            match tpm_evidence::verify_wire_quote(
                &tpm.ak_public,
                &quote.attest,
                &quote.signature,
                &tpm.pcrs,
                &expected,
            ) {
                Ok(verified) => {
                    checks.push(Check::pass(
                        "quote.signature",
                        format!("signed by the AK ({})", verified.signature),
                    ));
                    checks.push(Check::pass(
                        "quote.qualifying_data",
                        "commits to this nonce and the GPU evidence presented",
                    ));
                    checks.push(Check::pass(
                        "quote.pcr_digest",
                        format!("recomputed over {} quoted PCR values", verified.pcr_count()),
                    ));
                    checks.push(coverage_check(required_pcrs, &verified.pcrs));
                    quoted_pcrs = verified
                        .pcrs
                        .iter()
                        .map(|(bank, values)| {
                            (
                                bank.name().to_owned(),
                                values.iter().map(|(i, v)| (*i, hex::encode(v))).collect(),
                            )
                        })
                        .collect();
                    reset_count = verified.reset_count;
                    verified_pcrs = Some(verified.pcrs);
                }
                Err(failure) => checks.push(Check::fail(failure.check, failure.detail)),
            }
        }
    }
    let (log_checks, claims) = event_log_checks(evidence, verified_pcrs.as_ref());
    let mut host_claims = ClaimSet::default();
    let quote_verified = verified_pcrs.is_some();
    host_claims.push(
        "tpm.quote_verified",
        Some(Value::Bool(quote_verified)),
        Trust::Verified,
        Source::Verifier {
            check: "quote.signature".into(),
        },
    );
    for (bank, values) in &quoted_pcrs {
        for (index, value) in values {
            host_claims.push(
                format!("pcr.{bank}.{index}"),
                Some(Value::Digest(value.clone())),
                Trust::Verified,
                Source::Quote {
                    bank: bank.clone(),
                    pcr: *index,
                },
            );
        }
    }
    let log_state = if log_checks.iter().any(|c| !c.passed) {
        "failed"
    } else if log_checks.iter().any(|c| c.name == "eventlog.replay") {
        "replayed"
    } else {
        "absent"
    };
    host_claims.push(
        "tpm.event_log",
        Some(Value::Text(log_state.into())),
        Trust::Verified,
        Source::Verifier {
            check: "eventlog.replay".into(),
        },
    );
    checks.extend(log_checks);
    let quoted_indices: std::collections::BTreeSet<u32> = quoted_pcrs
        .values()
        .flat_map(|values| values.keys().copied())
        .collect();
    for claim in &claims {
        host_claims.claims.push(boot_claim(claim, &quoted_indices));
    }
    let quoted_state = verified_pcrs
        .as_ref()
        .map(|pcrs| QuotedState { pcrs, reset_count });
    let ima = check_ima(evidence.ima_log.as_ref(), quoted_state.as_ref(), ima_start);
    checks.extend(ima.checks);
    host_claims.claims.extend(ima.claims);
    checks.extend(check_gpus(
        nonce,
        &evidence.gpus,
        gpu,
        quote_verified,
        &mut host_claims,
    ));
    let ima_start_record = evidence
        .ima_log
        .as_ref()
        .filter(|log| log.present && log.first_entry > 0)
        .and(ima_start)
        .map(|start| ImaStart {
            carried: Vec::new(),
            ..start.clone()
        });
    EvidenceOutcome {
        checks,
        ak,
        quoted_pcrs,
        claims,
        host_claims,
        ima_next: ima.next,
        ima_stale: ima.stale_state,
        ima_start_record,
    }
}

/// An event-log claim as appraisal sees it. Claims exist only after the log replayed to the
/// quote, so a value the digest cannot confirm (Authenticode) is still attested by the quote
/// when its PCR was quoted.
fn boot_claim(
    claim: &eventlog::Claim,
    quoted: &std::collections::BTreeSet<u32>,
) -> crate::claims::HostClaim {
    let value = match &claim.value {
        eventlog::ClaimValue::Bool(b) => Value::Bool(*b),
        eventlog::ClaimValue::Int(i) => Value::Int(i64::try_from(*i).unwrap_or(i64::MAX)),
        eventlog::ClaimValue::Text(t) => Value::Text(t.clone()),
        eventlog::ClaimValue::Digest(d) => Value::Digest(d.clone()),
        eventlog::ClaimValue::List(l) => Value::List(l.clone()),
    };
    let trust = match &claim.status {
        eventlog::ClaimStatus::Verified => Trust::Verified,
        eventlog::ClaimStatus::Unverifiable(why) if quoted.contains(&claim.provenance.pcr) => {
            Trust::Attested(why.clone())
        }
        eventlog::ClaimStatus::Unverifiable(why) => Trust::Unproven(why.clone()),
        eventlog::ClaimStatus::Failed(why) => Trust::Failed(why.clone()),
    };
    crate::claims::HostClaim {
        name: claim.name.clone(),
        value: Some(value),
        trust,
        source: Source::Event {
            event: claim.provenance.event,
            pcr: claim.provenance.pcr,
            offset: claim.provenance.offset,
        },
        detail: None,
    }
}

fn ak_attributes_check(ak: &tpm_evidence::AkFacts) -> Check {
    if ak.restricted_signing && ak.fixed_tpm {
        Check::pass(
            "ak.attributes",
            format!("{}: restricted signing key, fixedTPM", ak.description),
        )
    } else {
        // An unrestricted key can sign any bytes, including a forged TPMS_ATTEST.
        Check::fail(
            "ak.attributes",
            format!(
                "{}: an AK must be a restricted signing key bound to its TPM (restricted={}, sign={}, fixedTPM={})",
                ak.description, ak.restricted, ak.sign, ak.fixed_tpm
            ),
        )
    }
}

fn ak_known_check(
    node_id: &str,
    recorded: Option<&NodeRecord>,
    ak_public: &[u8],
    ak_name: &[u8],
    allow_tofu: bool,
) -> Check {
    match recorded {
        None if !allow_tofu => Check::fail(
            "ak.known",
            format!(
                "node {node_id:?} is not registered: register it first (`vigil node register`), \
                 or allow trust on first use with --tofu (development only)"
            ),
        ),
        None => Check::pass(
            "ak.known",
            format!(
                "first contact: AK {} is recorded if every other check passes (trust on first use)",
                hex::encode(ak_name)
            ),
        ),
        Some(node) if node.ak_public == ak_public => Check::pass(
            "ak.known",
            format!("same AK as recorded for this node ({})", node.ak_trust),
        ),
        Some(node) => Check::fail(
            "ak.known",
            format!(
                "AK {} is not the AK recorded for node {} ({}, recorded {})",
                hex::encode(ak_name),
                node.node_id,
                hex::encode(&node.ak_name),
                crate::report::format_unix_utc(node.registered_at.unwrap_or(node.first_seen))
            ),
        ),
    }
}

fn coverage_check(required: &[u32], quoted: &tpm_evidence::PcrValues) -> Check {
    let missing: Vec<u32> = required
        .iter()
        .copied()
        .filter(|index| !quoted.values().any(|bank| bank.contains_key(index)))
        .collect();
    if missing.is_empty() {
        let banks: Vec<&str> = quoted.keys().map(|bank| bank.name()).collect();
        Check::pass(
            "quote.pcr_coverage",
            format!("PCRs {required:?} quoted in {}", banks.join("+")),
        )
    } else {
        Check::fail(
            "quote.pcr_coverage",
            format!("required PCRs {missing:?} are not in the quote's selection"),
        )
    }
}

/// PCRs 0..=LOG_COMPLETE_PCRS are extended only through events of the firmware log.
const LOG_COMPLETE_PCRS: u32 = 9;

/// Replays the event log against the verified PCR values. A log that does not parse, or
/// replays to other values than the quote proves, fails; a host without a log passes this
/// stage with that said plainly (appraisal against a baseline decides whether a log is required).
fn event_log_checks(
    evidence: &Evidence,
    verified_pcrs: Option<&tpm_evidence::PcrValues>,
) -> (Vec<Check>, Vec<eventlog::Claim>) {
    let log = match &evidence.event_log {
        Some(log) if log.present => log,
        Some(log) => {
            return (
                vec![Check::pass(
                    "eventlog.received",
                    format!("none: {} (boot chain not appraised)", log.note),
                )],
                Vec::new(),
            );
        }
        None => {
            return (
                vec![Check::pass(
                    "eventlog.received",
                    "none sent (boot chain not appraised)",
                )],
                Vec::new(),
            );
        }
    };
    let parsed = match eventlog::parse(&log.data) {
        Ok(parsed) => parsed,
        Err(error) => {
            return (
                vec![Check::fail("eventlog.parse", error.to_string())],
                Vec::new(),
            );
        }
    };
    let mut checks = vec![Check::pass(
        "eventlog.parse",
        format!("{} events from {}", parsed.events.len(), log.source),
    )];
    let Some(quoted) = verified_pcrs else {
        checks.push(Check::fail(
            "eventlog.replay",
            "not compared: the quote did not verify, so no PCR value is proven",
        ));
        return (checks, Vec::new());
    };
    let replayed = eventlog::replay(&parsed);
    let mut mismatches: Vec<String> = eventlog::compare(&replayed, quoted, &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    // The firmware log must account for every change to PCRs 0-9: one that the log never
    // extends must still hold its initial value, or events were left out of the log.
    for (bank, pcrs) in quoted {
        let Some(replayed_bank) = replayed.banks.get(bank) else {
            continue;
        };
        for (index, value) in pcrs.range(0..=LOG_COMPLETE_PCRS) {
            if !replayed_bank.contains_key(index) && value.iter().any(|b| *b != 0) {
                mismatches.push(format!(
                    "{}:{index} quoted {} but the log records no event for it (events left out?)",
                    bank.name(),
                    hex::encode(value)
                ));
            }
        }
    }
    let compared: usize = quoted
        .iter()
        .map(|(bank, pcrs)| {
            replayed
                .banks
                .get(bank)
                .map_or(0, |r| pcrs.keys().filter(|i| r.contains_key(i)).count())
        })
        .sum();
    if !mismatches.is_empty() {
        checks.push(Check::fail("eventlog.replay", mismatches.join("; ")));
        return (checks, Vec::new());
    }
    if compared == 0 {
        checks.push(Check::fail(
            "eventlog.replay",
            "the log covers none of the quoted PCRs in any bank it replays",
        ));
        return (checks, Vec::new());
    }
    checks.push(Check::pass(
        "eventlog.replay",
        format!("{compared} quoted PCR values reproduced by the log"),
    ));
    let quoted_indices: std::collections::BTreeSet<u32> = quoted
        .values()
        .flat_map(|pcrs| pcrs.keys().copied())
        .collect();
    let claims = eventlog::bind_to_quote(eventlog::claims(&parsed), &quoted_indices);
    let failed: Vec<&str> = claims
        .iter()
        .filter(|c| matches!(c.status, eventlog::ClaimStatus::Failed(_)))
        .map(|c| c.name.as_str())
        .collect();
    checks.push(Check::pass(
        "eventlog.claims",
        if failed.is_empty() {
            format!("{} boot claims extracted", claims.len())
        } else {
            format!(
                "{} boot claims extracted; {} whose event data does not match its digest (not trusted): {}",
                claims.len(),
                failed.len(),
                failed.join(", ")
            )
        },
    ));
    (checks, claims)
}

#[cfg(test)]
mod tests {
    use super::fair_share;
    use std::collections::BTreeMap;

    fn leases(held: &[(&str, i64)]) -> BTreeMap<String, i64> {
        held.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
    }

    #[test]
    fn replicas_split_the_fleet_and_a_lone_one_takes_it_all() {
        // Alone (no leases anywhere, or only its own): everything.
        assert_eq!(fair_share(&leases(&[]), "a", 30), 30);
        assert_eq!(fair_share(&leases(&[("a", 10)]), "a", 30), 20);
        // A peer holds leases: half each, rounded up, less what is held already.
        assert_eq!(fair_share(&leases(&[("b", 15)]), "a", 30), 15);
        assert_eq!(fair_share(&leases(&[("a", 15), ("b", 15)]), "a", 31), 1);
        assert_eq!(fair_share(&leases(&[("a", 5), ("b", 25)]), "a", 30), 10);
        // Over its share it still claims one, so nothing due waits for ever.
        assert_eq!(fair_share(&leases(&[("a", 25), ("b", 5)]), "a", 30), 1);
        assert_eq!(fair_share(&leases(&[("b", 3), ("c", 3)]), "a", 9), 3);
    }
}
