//! The PostgreSQL engine behind [`crate::store_api::StoreOps`]: a bounded pool of
//! connections to the database several replicas share, each unit of work one transaction.
//!
//! PostgreSQL groups the WAL flushes of concurrent commits itself, so each write commits on
//! its own and is answered after its commit, as with SQLite's group commit. Audit appends
//! and status changes are ordered across replicas by vigil-pgstore's log lock.

use std::sync::{Arc, Condvar, Mutex};

use vigil_audit::{AuditEntry, AuditSigningKey, ConsistencyProof, InclusionProof, StoredEntry};
use vigil_pgstore::{PgStore, PgStoreError, PgTx};

use crate::attest::VerifierError;
use crate::evidence::ima::ImaStart;
use crate::store::{
    NodeRecord, NonceRecord, PreparedVerdict, PruneReport, StatusChange, StoreError, VerdictRecord,
};
use crate::store_api::StoreOps;
use crate::store_baselines::{NewBaseline, StoredBaseline};
use crate::store_pool::{BatchWriter, Finish, GroupCommit, Job};

/// Read connections one replica opens at most (its writes have one connection more): enough
/// for its blocking threads to overlap their round trips, few enough that several replicas
/// stay under PostgreSQL's default `max_connections` (100).
pub const MAX_CONNECTIONS: usize = 16;

/// A connection closed on a thread of its own when dropped: the synchronous client runs a
/// runtime of its own, which may not be dropped from an async task (the last
/// `Arc<Verifier>` often goes with one at shutdown).
pub struct Connection(Option<PgStore>);

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

/// A replica's connections to the shared database: a pool for reads, one group-committing
/// writer.
pub struct PgPool {
    url: String,
    /// This replica's name in node leases.
    replica_id: String,
    audit_key: Arc<AuditSigningKey>,
    state: Mutex<PoolState>,
    returned: Condvar,
    writes: GroupCommit<PgWriter>,
}

impl PgPool {
    /// Connects (migrating the schema and checking that `audit_key` is the key the shared
    /// log is signed with), so a misconfigured replica fails at start.
    pub fn connect(
        url: &str,
        audit_key: Arc<AuditSigningKey>,
        replica_id: &str,
    ) -> Result<Self, StoreError> {
        let writer = PgStore::connect(url, Arc::clone(&audit_key)).map_err(from_pg)?;
        Ok(PgPool {
            url: url.to_owned(),
            replica_id: replica_id.to_owned(),
            audit_key: Arc::clone(&audit_key),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            writes: GroupCommit::new(PgWriter {
                url: url.to_owned(),
                audit_key,
                connection: Connection(Some(writer)),
            }),
        })
    }

    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// The audit key this replica signs checkpoints with (the same on every replica).
    pub fn audit_public_key(&self) -> vigil_audit::AuditPublicKey {
        self.audit_key.public_key()
    }

    fn take(&self) -> Result<Connection, VerifierError> {
        let mut state = self.state.lock().map_err(|_| VerifierError::Poisoned)?;
        loop {
            if let Some(connection) = state.idle.pop() {
                return Ok(connection);
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return match PgStore::connect(&self.url, Arc::clone(&self.audit_key)) {
                    Ok(client) => Ok(Connection(Some(client))),
                    Err(error) => {
                        if let Ok(mut state) = self.state.lock() {
                            state.open -= 1;
                        }
                        Err(VerifierError::Store(from_pg(error)))
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .map_err(|_| VerifierError::Poisoned)?;
        }
    }

    /// Returns a connection to the pool, or closes it when it broke.
    fn give_back(&self, mut connection: Connection) {
        let broken = connection
            .0
            .as_mut()
            .is_none_or(|client| client.client().is_closed());
        if let Ok(mut state) = self.state.lock() {
            if broken {
                state.open -= 1;
            } else {
                state.idle.push(connection);
            }
        }
        self.returned.notify_one();
    }

    /// Runs `f` with a pooled connection (reads, node leases).
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut PgStore) -> Result<T, PgStoreError>,
    ) -> Result<T, VerifierError> {
        let mut connection = self.take()?;
        let outcome = connection.0.as_mut().map(f);
        self.give_back(connection);
        match outcome {
            Some(result) => result.map_err(|e| VerifierError::Store(from_pg(e))),
            None => Err(VerifierError::Poisoned),
        }
    }

    /// A read, in a transaction of its own on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn StoreOps) -> T) -> Result<T, VerifierError> {
        let mut value = None;
        self.with_connection(|client| {
            client.write(|tx| {
                value = Some(f(&mut PgOps(tx)));
                Ok(())
            })
        })?;
        value.ok_or(VerifierError::Poisoned)
    }

    /// A write, committed with the others queued at the moment, answered after the commit.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn StoreOps) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        self.writes.write(f)
    }

    pub fn commit_counts(&self) -> crate::store_pool::CommitCounts {
        self.writes.commit_counts()
    }

    /// Holds the writer, so writes queue up (tests of group commit).
    pub fn hold_writer(&self) -> Result<std::sync::MutexGuard<'_, PgWriter>, VerifierError> {
        self.writes.hold_writer()
    }

    /// Writes queued now (tests line up a batch with it).
    pub fn queued(&self) -> usize {
        self.writes.queued()
    }
}

/// The replica's writer connection, opened again when the database closed it (a restart, a
/// failover, an administrator's `pg_terminate_backend`), so one lost connection does not
/// fail every later write.
pub struct PgWriter {
    url: String,
    audit_key: Arc<AuditSigningKey>,
    connection: Connection,
}

impl PgWriter {
    fn client(&mut self) -> Result<&mut PgStore, String> {
        let broken = self
            .connection
            .0
            .as_mut()
            .is_none_or(|client| client.client().is_closed());
        if broken {
            // The old client is closed off this thread (see `Connection`).
            self.connection = Connection(None);
            let client = PgStore::connect(&self.url, Arc::clone(&self.audit_key))
                .map_err(|e| format!("reconnecting: {}", from_pg(e)))?;
            self.connection = Connection(Some(client));
        }
        self.connection
            .0
            .as_mut()
            .ok_or_else(|| "the database connection is gone".to_owned())
    }
}

impl BatchWriter for PgWriter {
    /// One transaction for the batch, the log lock first (before any row lock, so two
    /// replicas' batches cannot deadlock), a savepoint per job, one COMMIT.
    fn run_batch(&mut self, batch: Vec<Job>) -> (Vec<Finish>, Result<(), String>) {
        let mut finishers = Vec::with_capacity(batch.len());
        let mut pending = batch.into_iter();
        let committed = match self.client() {
            Err(reason) => Err(reason),
            Ok(client) => client
                .write(|tx| {
                    tx.lock_log()?;
                    for job in pending.by_ref() {
                        let mut job = Some(job);
                        let _ = tx.savepoint(|savepoint| {
                            let Some(job) = job.take() else {
                                return Ok(());
                            };
                            let outcome = job(Some(&mut PgOps(savepoint)));
                            let failed = outcome.failed;
                            finishers.push(outcome.finish);
                            if failed {
                                // Undoes this job's statements alone.
                                Err(PgStoreError::Invalid("rolled back".into()))
                            } else {
                                Ok(())
                            }
                        });
                        // The savepoint could not begin: the job did nothing.
                        if let Some(job) = job {
                            finishers.push(job(None).finish);
                        }
                    }
                    Ok(())
                })
                .map_err(|e| from_pg(e).to_string()),
        };
        // Jobs the transaction never reached did nothing either.
        for job in pending {
            finishers.push(job(None).finish);
        }
        (finishers, committed)
    }
}

/// vigil-pgstore's errors as the store's: "not found" stays "not found" (gRPC NOT_FOUND).
pub fn from_pg(error: PgStoreError) -> StoreError {
    match error {
        PgStoreError::NotFound(what) => StoreError::NotFound(what),
        PgStoreError::Audit(error) => StoreError::Audit(error),
        other => StoreError::Postgres(other.to_string()),
    }
}

/// One transaction on the shared database, as the verifier's store.
struct PgOps<'t, 'a>(&'t mut PgTx<'a>);

impl StoreOps for PgOps<'_, '_> {
    fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.0
            .insert_nonce(nonce, node_id, issued_at, expires_at)
            .map_err(from_pg)
    }
    fn consume_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), StoreError> {
        self.0.consume_nonce(nonce, node_id, now).map_err(from_pg)
    }
    fn prune_nonces(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        let pruned = self.0.prune_nonces(cutoff).map_err(from_pg)?;
        Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
    }
    fn node(&mut self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.0.node(node_id).map_err(from_pg)
    }
    fn nodes(&mut self) -> Result<Vec<NodeRecord>, StoreError> {
        self.0.nodes().map_err(from_pg)
    }
    fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, StoreError> {
        self.0.insert_node(node).map_err(from_pg)
    }
    fn replace_node(&mut self, node: &NodeRecord, entry: &AuditEntry) -> Result<(), StoreError> {
        self.0.replace_node(node, entry).map_err(from_pg)
    }
    fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, StoreError> {
        self.0.remove_node(node_id, time).map_err(from_pg)
    }
    fn mark_unknown(&mut self, node_id: &str, reason: &str, time: i64) -> Result<(), StoreError> {
        self.0.mark_unknown(node_id, reason, time).map_err(from_pg)
    }
    fn set_gpu_identities(&mut self, node_id: &str, identities: &str) -> Result<(), StoreError> {
        self.0
            .set_gpu_identities(node_id, identities)
            .map_err(from_pg)
    }
    fn gpu_identities(&mut self, node_id: &str) -> Result<String, StoreError> {
        self.0.gpu_identities(node_id).map_err(from_pg)
    }
    fn ima_state(&mut self, node_id: &str) -> Result<Option<(String, ImaStart)>, StoreError> {
        let stored = self.0.ima_state_json(node_id).map_err(from_pg)?;
        // As in SQLite: a state that no longer decodes is dropped (the whole list is sent).
        Ok(stored.and_then(|(baseline, json)| {
            serde_json::from_str(&json)
                .ok()
                .map(|state| (baseline, state))
        }))
    }
    fn put_ima_state(
        &mut self,
        node_id: &str,
        baseline: &str,
        state: &ImaStart,
        now: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(|e| {
            StoreError::NotFound(format!("IMA state of {node_id} does not serialise: {e}"))
        })?;
        self.0
            .put_ima_state_json(node_id, baseline, &json, now)
            .map_err(from_pg)
    }
    fn delete_ima_state(&mut self, node_id: &str) -> Result<(), StoreError> {
        self.0.delete_ima_state(node_id).map_err(from_pg)
    }
    fn record_prepared_verdict(&mut self, verdict: &PreparedVerdict) -> Result<i64, StoreError> {
        self.0
            .record_verdict(
                verdict.node_id(),
                verdict.nonce(),
                verdict.verified_at(),
                verdict.verdict(),
                verdict.result_json(),
                verdict.evidence(),
                verdict.speaks_for_node(),
            )
            .map_err(from_pg)
    }
    fn record_event(&mut self, entry: &AuditEntry) -> Result<u64, StoreError> {
        self.0.record_event(entry).map_err(from_pg)
    }
    fn verdicts(&mut self, node_id: Option<&str>) -> Result<Vec<VerdictRecord>, StoreError> {
        self.0.verdicts(node_id).map_err(from_pg)
    }
    fn recent_verdicts(
        &mut self,
        node_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        self.0.recent_verdicts(node_id, limit).map_err(from_pg)
    }
    fn latest_verdicts(&mut self) -> Result<Vec<VerdictRecord>, StoreError> {
        self.0.latest_verdicts().map_err(from_pg)
    }
    fn verdict_count(&mut self) -> Result<i64, StoreError> {
        self.0.verdict_count().map_err(from_pg)
    }
    fn status_changes(&mut self, from: i64, limit: i64) -> Result<Vec<StatusChange>, StoreError> {
        self.0.status_changes(from, limit).map_err(from_pg)
    }
    fn latest_status_seq(&mut self) -> Result<i64, StoreError> {
        self.0.latest_status_seq().map_err(from_pg)
    }
    fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, StoreError> {
        let report = self.0.prune_evidence(cutoff, now).map_err(from_pg)?;
        Ok(PruneReport {
            pruned: report.pruned,
            kept_shared: report.kept_shared,
            audit_index: report.audit_index,
        })
    }
    fn put_baseline(&mut self, new: &NewBaseline<'_>) -> Result<StoredBaseline, StoreError> {
        self.0.put_baseline(new).map_err(from_pg)
    }
    fn baseline(
        &mut self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredBaseline>, StoreError> {
        self.0.baseline(name, version).map_err(from_pg)
    }
    fn baselines(&mut self) -> Result<Vec<StoredBaseline>, StoreError> {
        self.0.baselines().map_err(from_pg)
    }
    fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, StoreError> {
        self.0
            .assign_baseline(group, name, author, reason, time)
            .map_err(from_pg)
    }
    fn baseline_assignments(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Ok(self
            .0
            .baseline_assignments()
            .map_err(from_pg)?
            .into_iter()
            .collect())
    }
    fn baseline_for_group(&mut self, group: &str) -> Result<Option<StoredBaseline>, StoreError> {
        self.0.baseline_for_group(group).map_err(from_pg)
    }
    fn audit_tree_size(&mut self) -> Result<u64, StoreError> {
        vigil_pgstore::audit::tree_size(self.0.transaction()).map_err(from_pg)
    }
    fn audit_entries(&mut self, start: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError> {
        vigil_pgstore::audit::read_entries(self.0.transaction(), start, limit).map_err(from_pg)
    }
    fn audit_latest_checkpoint(&mut self) -> Result<Option<String>, StoreError> {
        vigil_pgstore::audit::latest_checkpoint_note(self.0.transaction()).map_err(from_pg)
    }
    fn audit_inclusion_proof(
        &mut self,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, StoreError> {
        vigil_pgstore::audit::inclusion_proof(self.0.transaction(), index, size).map_err(from_pg)
    }
    fn audit_consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        vigil_pgstore::audit::consistency_proof(self.0.transaction(), first, second)
            .map_err(from_pg)
    }
}
