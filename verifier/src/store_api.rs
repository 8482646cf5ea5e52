//! The store as one interface over two engines: embedded SQLite (the default, one server per
//! database file) and PostgreSQL (several `vigil serve` replicas on one database).
//!
//! The verifier talks to [`StoreEngine`] only, in units of work: a read or a write is a
//! closure given `&mut dyn StoreOps`, run on a connection of its own (SQLite: a read
//! connection, or the group-commit writer; PostgreSQL: a pooled connection in one
//! transaction). A write's result is returned only after its transaction committed, so
//! nothing is acknowledged before it is durable, on either engine.

use crate::attest::VerifierError;
use crate::evidence::ima::ImaStart;
use crate::store::{
    NodeRecord, NonceRecord, PreparedVerdict, PruneReport, StatusChange, Store, StoreError,
    VerdictRecord,
};
use crate::store_baselines::{NewBaseline, StoredBaseline};
use vigil_audit::{AuditEntry, ConsistencyProof, InclusionProof, StoredEntry};

/// What the verifier asks of a store, inside one unit of work. Both engines implement it
/// with the same semantics (the PostgreSQL tests in vigil-pgstore check them side by side).
pub trait StoreOps {
    // Nonces: issued once, used once, on any replica.
    fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Uses the nonce if it is unused and unexpired; the record as it was before.
    fn consume_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), StoreError>;
    fn prune_nonces(&mut self, cutoff: i64) -> Result<usize, StoreError>;

    // Nodes.
    fn node(&mut self, node_id: &str) -> Result<Option<NodeRecord>, StoreError>;
    fn nodes(&mut self) -> Result<Vec<NodeRecord>, StoreError>;
    fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, StoreError>;
    fn replace_node(&mut self, node: &NodeRecord, entry: &AuditEntry) -> Result<(), StoreError>;
    fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, StoreError>;
    fn mark_unknown(&mut self, node_id: &str, reason: &str, time: i64) -> Result<(), StoreError>;
    fn set_gpu_identities(&mut self, node_id: &str, identities: &str) -> Result<(), StoreError>;
    fn gpu_identities(&mut self, node_id: &str) -> Result<String, StoreError>;
    fn ima_state(&mut self, node_id: &str) -> Result<Option<(String, ImaStart)>, StoreError>;
    fn put_ima_state(
        &mut self,
        node_id: &str,
        baseline: &str,
        state: &ImaStart,
        now: i64,
    ) -> Result<(), StoreError>;
    fn delete_ima_state(&mut self, node_id: &str) -> Result<(), StoreError>;

    // Verdicts and status changes.
    fn record_prepared_verdict(&mut self, verdict: &PreparedVerdict) -> Result<i64, StoreError>;
    fn record_event(&mut self, entry: &AuditEntry) -> Result<u64, StoreError>;
    fn verdicts(&mut self, node_id: Option<&str>) -> Result<Vec<VerdictRecord>, StoreError>;
    /// The newest `limit` verdicts (only `node_id`'s when given), newest first.
    fn recent_verdicts(
        &mut self,
        node_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerdictRecord>, StoreError>;
    /// Each node's latest verdict.
    fn latest_verdicts(&mut self) -> Result<Vec<VerdictRecord>, StoreError>;
    fn verdict_count(&mut self) -> Result<i64, StoreError>;
    fn status_changes(&mut self, from: i64, limit: i64) -> Result<Vec<StatusChange>, StoreError>;
    fn latest_status_seq(&mut self) -> Result<i64, StoreError>;
    fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, StoreError>;

    // Baselines.
    fn put_baseline(&mut self, new: &NewBaseline<'_>) -> Result<StoredBaseline, StoreError>;
    fn baseline(
        &mut self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredBaseline>, StoreError>;
    fn baselines(&mut self) -> Result<Vec<StoredBaseline>, StoreError>;
    fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, StoreError>;
    fn baseline_assignments(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError>;
    fn baseline_for_group(&mut self, group: &str) -> Result<Option<StoredBaseline>, StoreError>;

    // The audit log, read side (appends happen inside the writes above).
    fn audit_tree_size(&mut self) -> Result<u64, StoreError>;
    fn audit_entries(&mut self, start: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError>;
    fn audit_latest_checkpoint(&mut self) -> Result<Option<String>, StoreError>;
    fn audit_inclusion_proof(
        &mut self,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, StoreError>;
    fn audit_consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError>;
}

impl StoreOps for Store {
    fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        Store::insert_nonce(self, nonce, node_id, issued_at, expires_at)
    }
    fn consume_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), StoreError> {
        Store::consume_nonce(self, nonce, node_id, now)
    }
    fn prune_nonces(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        Store::prune_nonces(self, cutoff)
    }
    fn node(&mut self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        Store::node(self, node_id)
    }
    fn nodes(&mut self) -> Result<Vec<NodeRecord>, StoreError> {
        Store::nodes(self)
    }
    fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, StoreError> {
        Store::insert_node(self, node)
    }
    fn replace_node(&mut self, node: &NodeRecord, entry: &AuditEntry) -> Result<(), StoreError> {
        Store::replace_node(self, node, entry)
    }
    fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, StoreError> {
        Store::remove_node(self, node_id, time)
    }
    fn mark_unknown(&mut self, node_id: &str, reason: &str, time: i64) -> Result<(), StoreError> {
        Store::mark_unknown(self, node_id, reason, time)
    }
    fn set_gpu_identities(&mut self, node_id: &str, identities: &str) -> Result<(), StoreError> {
        Store::set_gpu_identities(self, node_id, identities)
    }
    fn gpu_identities(&mut self, node_id: &str) -> Result<String, StoreError> {
        Store::gpu_identities(self, node_id)
    }
    fn ima_state(&mut self, node_id: &str) -> Result<Option<(String, ImaStart)>, StoreError> {
        Store::ima_state(self, node_id)
    }
    fn put_ima_state(
        &mut self,
        node_id: &str,
        baseline: &str,
        state: &ImaStart,
        now: i64,
    ) -> Result<(), StoreError> {
        Store::put_ima_state(self, node_id, baseline, state, now)
    }
    fn delete_ima_state(&mut self, node_id: &str) -> Result<(), StoreError> {
        Store::delete_ima_state(self, node_id)
    }
    fn record_prepared_verdict(&mut self, verdict: &PreparedVerdict) -> Result<i64, StoreError> {
        Store::record_prepared_verdict(self, verdict)
    }
    fn record_event(&mut self, entry: &AuditEntry) -> Result<u64, StoreError> {
        Store::record_event(self, entry)
    }
    fn verdicts(&mut self, node_id: Option<&str>) -> Result<Vec<VerdictRecord>, StoreError> {
        Store::verdicts(self, node_id)
    }
    fn recent_verdicts(
        &mut self,
        node_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        Store::recent_verdicts(self, node_id, limit)
    }
    fn latest_verdicts(&mut self) -> Result<Vec<VerdictRecord>, StoreError> {
        Store::latest_verdicts(self)
    }
    fn verdict_count(&mut self) -> Result<i64, StoreError> {
        Store::verdict_count(self)
    }
    fn status_changes(&mut self, from: i64, limit: i64) -> Result<Vec<StatusChange>, StoreError> {
        Store::status_changes(self, from, limit)
    }
    fn latest_status_seq(&mut self) -> Result<i64, StoreError> {
        Store::latest_status_seq(self)
    }
    fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, StoreError> {
        Store::prune_evidence(self, cutoff, now)
    }
    fn put_baseline(&mut self, new: &NewBaseline<'_>) -> Result<StoredBaseline, StoreError> {
        Store::put_baseline(self, new)
    }
    fn baseline(
        &mut self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredBaseline>, StoreError> {
        Store::baseline(self, name, version)
    }
    fn baselines(&mut self) -> Result<Vec<StoredBaseline>, StoreError> {
        Store::baselines(self)
    }
    fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, StoreError> {
        Store::assign_baseline(self, group, name, author, reason, time)
    }
    fn baseline_assignments(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Store::baseline_assignments(self)
    }
    fn baseline_for_group(&mut self, group: &str) -> Result<Option<StoredBaseline>, StoreError> {
        Store::baseline_for_group(self, group)
    }
    fn audit_tree_size(&mut self) -> Result<u64, StoreError> {
        Ok(vigil_audit::tree_size(self.connection())?)
    }
    fn audit_entries(&mut self, start: u64, limit: u64) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(vigil_audit::read_entries(self.connection(), start, limit)?)
    }
    fn audit_latest_checkpoint(&mut self) -> Result<Option<String>, StoreError> {
        Ok(vigil_audit::latest_checkpoint_note(self.connection())?)
    }
    fn audit_inclusion_proof(
        &mut self,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, StoreError> {
        Ok(vigil_audit::inclusion_proof(
            self.connection(),
            index,
            size,
        )?)
    }
    fn audit_consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        Ok(vigil_audit::consistency_proof(
            self.connection(),
            first,
            second,
        )?)
    }
}

/// The engine a verifier runs on (one per verifier, never moved on a hot path: the size of
/// its variants does not matter).
#[allow(clippy::large_enum_variant)]
pub enum StoreEngine {
    /// One embedded database file: parallel readers, one group-commit writer.
    Sqlite(crate::store_pool::StorePool),
    /// A PostgreSQL database shared with other replicas.
    Postgres(crate::store_pg::PgPool),
}

impl StoreEngine {
    /// Runs `f` as a read on a connection of its own; it sees every write acknowledged so
    /// far (on any replica, for PostgreSQL).
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn StoreOps) -> T) -> Result<T, VerifierError> {
        match self {
            StoreEngine::Sqlite(pool) => pool.read_mut(|store| f(store)),
            StoreEngine::Postgres(pool) => pool.read(f),
        }
    }

    /// Runs `f` as one write and returns its result once it is durable. An `Err` from `f`
    /// leaves nothing of `f` behind.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn StoreOps) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        match self {
            StoreEngine::Sqlite(pool) => pool.write(f),
            StoreEngine::Postgres(pool) => pool.write(f),
        }
    }

    /// Commits and the writes they carried (SQLite's group commit; PostgreSQL groups WAL
    /// flushes itself, so each write is one commit there).
    pub fn commit_counts(&self) -> crate::store_pool::CommitCounts {
        match self {
            StoreEngine::Sqlite(pool) => pool.commit_counts(),
            StoreEngine::Postgres(pool) => pool.commit_counts(),
        }
    }

    /// The SQLite pool, when this is the embedded engine (the web console's queries, tests).
    pub fn sqlite(&self) -> Option<&crate::store_pool::StorePool> {
        match self {
            StoreEngine::Sqlite(pool) => Some(pool),
            StoreEngine::Postgres(_) => None,
        }
    }

    /// The engine's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            StoreEngine::Sqlite(_) => "SQLite",
            StoreEngine::Postgres(_) => "PostgreSQL",
        }
    }
}
