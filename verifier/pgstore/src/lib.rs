//! Vigil's PostgreSQL store: one database shared by several `vigil serve` replicas (issue
//! #14). SQLite stays the default; this crate holds what PostgreSQL needs, with the same
//! schema and the same semantics as the SQLite store, so wiring it in is a small step.
//!
//! # DESIGN: how the verifier will use it
//!
//! - **One schema, two engines.** [`schema`] is the single migration list (placeholders for
//!   the few type and trigger differences, substituted per engine). The SQLite store switches
//!   its private `MIGRATIONS` to `schema::VERIFIER` rendered for SQLite (same statements, same
//!   version numbers, so existing files carry on); [`migrate`] applies all components here.
//! - **An enum over both engines.** `vigil serve --db postgres://…` opens a [`PgStore`],
//!   anything else the SQLite `Store`; the service holds `enum Backend { Sqlite(StorePool),
//!   Postgres(PgPool) }` (an enum rather than a trait object: the operation set is closed, and
//!   `match` keeps each engine's transaction type concrete). The record types here
//!   ([`NodeRecord`], [`NonceRecord`], …) mirror the verifier's field for field, so the
//!   verifier can re-export them from here and drop its own copies.
//! - **Group commit stays.** The writer in `store_pool.rs` becomes, on PostgreSQL, one
//!   transaction per batch ([`PgStore::write`]) with one savepoint per queued write
//!   ([`PgTx::savepoint`]): one failing write leaves the others, and nothing is answered
//!   before the batch's COMMIT returned. Each replica runs its own writer; a batch that
//!   appends takes the log lock first ([`PgTx::lock_log`]). Readers each take a connection
//!   from a small pool (plain `postgres::Client`s, like the SQLite reader connections).
//! - **Continuous attestation** asks [`PgStore::claim_due_nodes`] each tick instead of walking
//!   every node, so each node is polled by one replica per interval.
//! - **Auditors** verify the shared log with vigil-audit's existing tools on a SQLite copy
//!   ([`audit::export_to_sqlite`], then `vigil_audit::verify_log` / `export_bundle`).
//!
//! - **Not here yet** (the wiring step): evidence pruning (`prune_evidence`, with its
//!   `pruned_evidence` bookkeeping: the table exists), a reader connection pool, and waking
//!   other replicas' `Watch` streams (today each replica only learns of its own changes in
//!   process; on PostgreSQL a `NOTIFY` after commit, or polling `status_changes(seq > last)`,
//!   which the ordering below makes safe).
//!
//! # Ordering across replicas
//!
//! Every write that appends to the audit log or to `status_changes` first takes one
//! transaction-scoped advisory lock, [`audit::LOG_LOCK`] (`pg_advisory_xact_lock`), held
//! until COMMIT. Under it the store assigns the next audit index, checkpoint id and status
//! `seq` as `MAX + 1` (not from a sequence: sequences leave gaps on rollback and hand out
//! numbers in an order other than commit order). So the order of those numbers *is* the
//! commit order: once a reader sees `seq = n` committed, every smaller seq was committed
//! before it, and `Watch` reading `seq > last` in order never skips a change that commits
//! later, and never sees a gap. The price is that verdict recording is serialised across
//! replicas; group commit amortises it (one lock, one COMMIT per batch), and appraisal, the
//! expensive part, runs outside it. The lock is taken before any row lock, so two replicas'
//! transactions cannot deadlock on each other. Transactions run at READ COMMITTED: each
//! statement after the lock sees everything committed before the lock was granted.
//!
//! Nonces are consumed with one conditional `UPDATE … WHERE used_at IS NULL AND expires_at >
//! now`: PostgreSQL re-checks the condition on the row another replica just updated, so of
//! two concurrent uses exactly one matches.
//!
//! # Checkpoint key: one key shared by every replica
//!
//! Every replica signs checkpoints with the same Ed25519 key (origin `vigil-verifier`, the
//! SQLite store's name), handed to each replica as a file (a secret mount); it is never stored
//! in the database, so read access to the database is not the power to sign. Why not one key
//! per replica: auditors would have to learn and trust a growing set of keys as replicas come
//! and go (and a key announced inside the log it signs proves nothing), whereas with one key
//! their configuration and `vigil audit verify` stay exactly as they are with SQLite, and the
//! log is one log with one signer. A replica can still be told apart by the entries it wrote
//! (their bodies), not by the signature. The key's public half is recorded in `audit_signer`
//! by the first replica; a replica started with another key refuses to open the store
//! ([`PgStoreError::AuditKeyMismatch`]), so a misconfigured replica cannot fork the log's
//! signatures. Rotation (a new key, announced by a `key.rotation` entry signed under the old
//! one) is left for later.
//!
//! # Leases
//!
//! `node_leases` says which replica polls a node until when. [`PgStore::claim_due_nodes`]
//! locks due nodes with `FOR UPDATE SKIP LOCKED` (concurrent claimers pass over each other's
//! rows instead of waiting) and takes each with an upsert that only succeeds while the
//! existing lease is expired, which is what makes a double claim impossible even when two
//! claimers' snapshots both saw the node as due. A lease of one poll interval means each node
//! is polled once per interval; a dead replica's nodes become due when its leases expire.

pub mod audit;
pub mod schema;

use std::sync::Arc;

use postgres::{GenericClient, NoTls, Row};
use vigil_audit::{AuditEntry, AuditSigningKey};

/// Name of the audit log in checkpoints: the same as the SQLite store's.
pub const AUDIT_ORIGIN: &str = "vigil-verifier";

/// Advisory lock key serialising migrations of one database ("vigilmig").
const MIGRATE_LOCK: i64 = 0x7669_6769_6c6d_6967;

/// A node's status as orchestrators see it.
pub const STATUS_TRUSTED: &str = "trusted";
pub const STATUS_UNTRUSTED: &str = "untrusted";
pub const STATUS_UNKNOWN: &str = "unknown";

/// Errors from the store; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    #[error("postgres {operation}: {}", describe(.source))]
    Db {
        operation: &'static str,
        source: postgres::Error,
    },
    #[error(
        "database schema component {component} is at version {found}, newer than this build understands ({supported})"
    )]
    TooNew {
        component: &'static str,
        found: i64,
        supported: i64,
    },
    #[error("audit log: {0}")]
    Audit(#[from] vigil_audit::AuditError),
    #[error(
        "this replica's audit key ({presented}) is not the one the database's checkpoints are signed with ({recorded}): every replica must use the same audit key"
    )]
    AuditKeyMismatch { recorded: String, presented: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("audit export to SQLite, {operation}: {reason}")]
    Export {
        operation: &'static str,
        reason: String,
    },
}

/// The server's message and SQLSTATE when there is one (`postgres::Error` alone displays
/// only "db error").
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(e) => format!("{} (SQLSTATE {})", e.message(), e.code().code()),
        None => error.to_string(),
    }
}

pub(crate) fn db(operation: &'static str) -> impl FnOnce(postgres::Error) -> PgStoreError {
    move |source| PgStoreError::Db { operation, source }
}

/// A node as the verifier knows it (the same fields as the SQLite store's `NodeRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    pub ak_public: Vec<u8>,
    pub ak_name: Vec<u8>,
    pub ak_trust: String,
    pub address: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_verdict: Option<String>,
    pub ek_public: Option<Vec<u8>>,
    pub ek_certificate: Option<Vec<u8>>,
    pub group: String,
    pub registered_at: Option<i64>,
    pub status: String,
}

const NODE_COLUMNS: &str = "node_id, ak_public, ak_name, ak_trust, address, first_seen, last_seen, \
     last_verdict, ek_public, ek_certificate, node_group, registered_at, status";

fn node_from_row(row: &Row) -> NodeRecord {
    NodeRecord {
        node_id: row.get(0),
        ak_public: row.get(1),
        ak_name: row.get(2),
        ak_trust: row.get(3),
        address: row.get(4),
        first_seen: row.get(5),
        last_seen: row.get(6),
        last_verdict: row.get(7),
        ek_public: row.get(8),
        ek_certificate: row.get(9),
        group: row.get(10),
        registered_at: row.get(11),
        status: row.get(12),
    }
}

/// A nonce as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceRecord {
    pub node_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// One recorded verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRecord {
    pub id: i64,
    pub node_id: String,
    pub nonce: Vec<u8>,
    pub verified_at: i64,
    pub verdict: String,
    pub result_json: String,
}

fn verdict_from_row(row: &Row) -> VerdictRecord {
    VerdictRecord {
        id: row.get(0),
        node_id: row.get(1),
        nonce: row.get(2),
        verified_at: row.get(3),
        verdict: row.get(4),
        result_json: row.get(5),
    }
}

/// One change of a node's status; `seq` orders them across replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub seq: i64,
    pub node_id: String,
    pub old_status: String,
    pub new_status: String,
    pub reason: String,
    pub time: i64,
    pub result_json: String,
}

/// One immutable baseline version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBaseline {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub body: String,
    pub author: String,
    pub reason: String,
    pub created_at: i64,
    pub signed_by: Option<String>,
    pub rules: i64,
}

/// A new baseline version to store (its number is assigned by the store).
pub struct NewBaseline<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
    pub body: &'a str,
    pub author: &'a str,
    pub reason: &'a str,
    pub signed_by: Option<&'a str>,
    pub rules: i64,
    pub time: i64,
}

const BASELINE_COLUMNS: &str =
    "name, version, sha256, body, author, reason, created_at, signed_by, rules";

fn baseline_from_row(row: &Row) -> StoredBaseline {
    StoredBaseline {
        name: row.get(0),
        version: row.get(1),
        sha256: row.get(2),
        body: row.get(3),
        author: row.get(4),
        reason: row.get(5),
        created_at: row.get(6),
        signed_by: row.get(7),
        rules: row.get(8),
    }
}

/// Brings the database's schema up to date: every component of [`schema::COMPONENTS`], each
/// migration once, in order, all in one transaction, recorded in `schema_version`.
/// Idempotent, and safe when several replicas start at once (an advisory lock serialises
/// them; the later ones find nothing to do).
pub fn migrate(client: &mut postgres::Client) -> Result<(), PgStoreError> {
    let mut tx = client.transaction().map_err(db("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(db("take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
            component TEXT PRIMARY KEY,
            version   BIGINT NOT NULL
         )",
    )
    .map_err(db("create schema_version"))?;
    for component in schema::COMPONENTS {
        let found: i64 = tx
            .query_opt(
                "SELECT version FROM schema_version WHERE component = $1",
                &[&component.name],
            )
            .map_err(db("read schema version"))?
            .map_or(0, |row| row.get(0));
        let supported = component.migrations.len() as i64;
        if found > supported {
            return Err(PgStoreError::TooNew {
                component: component.name,
                found,
                supported,
            });
        }
        for migration in component.migrations.iter().skip(found as usize) {
            tx.batch_execute(&schema::render(migration, schema::Engine::Postgres))
                .map_err(db("migrate schema"))?;
        }
        if found < supported {
            tx.execute(
                "INSERT INTO schema_version (component, version) VALUES ($1, $2)
                 ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                &[&component.name, &supported],
            )
            .map_err(db("record schema version"))?;
        }
    }
    tx.commit().map_err(db("commit migration"))
}

/// One replica's connection to the shared database.
pub struct PgStore {
    client: postgres::Client,
    audit_key: Arc<AuditSigningKey>,
}

/// A write transaction (or a savepoint inside one), with the audit key to sign checkpoints.
pub struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    key: &'a AuditSigningKey,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`), migrates, and checks that
    /// `audit_key` is the key the log is signed with (recording it if it is the first).
    pub fn open(url: &str, audit_key: Arc<AuditSigningKey>) -> Result<Self, PgStoreError> {
        let mut client = postgres::Client::connect(url, NoTls).map_err(db("connect"))?;
        migrate(&mut client)?;
        let presented = audit_key.public_key().to_verifier_key();
        client
            .execute(
                "INSERT INTO audit_signer (id, verifier_key, recorded_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
                &[&presented, &now_unix()],
            )
            .map_err(db("record audit key"))?;
        let recorded: String = client
            .query_one("SELECT verifier_key FROM audit_signer WHERE id = 1", &[])
            .map_err(db("read audit key"))?
            .get(0);
        if recorded != presented {
            return Err(PgStoreError::AuditKeyMismatch {
                recorded,
                presented,
            });
        }
        Ok(PgStore { client, audit_key })
    }

    /// The key that signs this log's checkpoints.
    pub fn audit_public_key(&self) -> vigil_audit::AuditPublicKey {
        self.audit_key.public_key()
    }

    /// The connection, for reads not wrapped here (audit proofs through [`audit`]).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    /// Runs `body` in one transaction and commits it: the group-commit writer's batch, or a
    /// single write. Nothing `body` did is kept when it fails or the commit fails.
    pub fn write<T>(
        &mut self,
        body: impl FnOnce(&mut PgTx<'_>) -> Result<T, PgStoreError>,
    ) -> Result<T, PgStoreError> {
        let tx = self.client.transaction().map_err(db("begin transaction"))?;
        let mut tx = PgTx {
            tx,
            key: &self.audit_key,
        };
        let value = body(&mut tx)?;
        tx.tx.commit().map_err(db("commit"))?;
        Ok(value)
    }

    pub fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), PgStoreError> {
        self.write(|tx| tx.insert_nonce(nonce, node_id, issued_at, expires_at))
    }

    /// Marks the nonce used if, and only if, it is unused and unexpired at `now`, on whichever
    /// replica; returns whether this call used it and the record as it was before.
    pub fn consume_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), PgStoreError> {
        self.write(|tx| tx.consume_nonce(nonce, node_id, now))
    }

    /// Forgets nonces that expired before `cutoff`.
    pub fn prune_nonces(&mut self, cutoff: i64) -> Result<u64, PgStoreError> {
        self.client
            .execute("DELETE FROM nonces WHERE expires_at < $1", &[&cutoff])
            .map_err(db("prune nonces"))
    }

    pub fn node(&mut self, node_id: &str) -> Result<Option<NodeRecord>, PgStoreError> {
        Ok(self
            .client
            .query_opt(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = $1"),
                &[&node_id],
            )
            .map_err(db("look up node"))?
            .map(|row| node_from_row(&row)))
    }

    pub fn nodes(&mut self) -> Result<Vec<NodeRecord>, PgStoreError> {
        Ok(self
            .client
            .query(
                &format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"),
                &[],
            )
            .map_err(db("list nodes"))?
            .iter()
            .map(node_from_row)
            .collect())
    }

    /// Records a node on first contact; false if it exists.
    pub fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, PgStoreError> {
        self.write(|tx| tx.insert_node(node))
    }

    /// Replaces a node's record and audits `entry`, in one transaction.
    pub fn replace_node(
        &mut self,
        node: &NodeRecord,
        entry: &AuditEntry,
    ) -> Result<(), PgStoreError> {
        self.write(|tx| tx.replace_node(node, entry))
    }

    /// Forgets a node (history stays) and audits it; false if there was none.
    pub fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, PgStoreError> {
        self.write(|tx| tx.remove_node(node_id, time))
    }

    /// Records a verdict, its status change and its audit entry in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn record_verdict(
        &mut self,
        node_id: &str,
        nonce: &[u8],
        verified_at: i64,
        verdict: &str,
        result_json: &str,
        evidence: &[u8],
        speaks_for_node: bool,
    ) -> Result<i64, PgStoreError> {
        self.write(|tx| {
            tx.record_verdict(
                node_id,
                nonce,
                verified_at,
                verdict,
                result_json,
                evidence,
                speaks_for_node,
            )
        })
    }

    /// Marks a node `unknown` (missed its window, unreachable).
    pub fn mark_unknown(
        &mut self,
        node_id: &str,
        reason: &str,
        time: i64,
    ) -> Result<(), PgStoreError> {
        self.write(|tx| tx.mark_unknown(node_id, reason, time))
    }

    /// Records an audit entry on its own.
    pub fn record_event(&mut self, entry: &AuditEntry) -> Result<u64, PgStoreError> {
        self.write(|tx| tx.audit(entry))
    }

    /// Status changes with `seq >= from`, in seq order, at most `limit`.
    pub fn status_changes(
        &mut self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<StatusChange>, PgStoreError> {
        Ok(self
            .client
            .query(
                "SELECT seq, node_id, old_status, new_status, reason, time, result_json
                 FROM status_changes WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&from, &limit],
            )
            .map_err(db("read status changes"))?
            .iter()
            .map(|r| StatusChange {
                seq: r.get(0),
                node_id: r.get(1),
                old_status: r.get(2),
                new_status: r.get(3),
                reason: r.get(4),
                time: r.get(5),
                result_json: r.get(6),
            })
            .collect())
    }

    pub fn latest_status_seq(&mut self) -> Result<i64, PgStoreError> {
        Ok(self
            .client
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM status_changes", &[])
            .map_err(db("read latest status change"))?
            .get(0))
    }

    /// Recorded verdicts, oldest first; only `node_id`'s when given.
    pub fn verdicts(&mut self, node_id: Option<&str>) -> Result<Vec<VerdictRecord>, PgStoreError> {
        Ok(self
            .client
            .query(
                "SELECT id, node_id, nonce, verified_at, verdict, result_json FROM verdicts
                 WHERE $1::TEXT IS NULL OR node_id = $1 ORDER BY id",
                &[&node_id],
            )
            .map_err(db("query verdicts"))?
            .iter()
            .map(verdict_from_row)
            .collect())
    }

    pub fn verdict_count(&mut self) -> Result<i64, PgStoreError> {
        Ok(self
            .client
            .query_one("SELECT COUNT(*) FROM verdicts", &[])
            .map_err(db("count verdicts"))?
            .get(0))
    }

    /// The node's IMA state as stored (`baseline`, `state_json`); the verifier decodes it.
    pub fn ima_state_json(
        &mut self,
        node_id: &str,
    ) -> Result<Option<(String, String)>, PgStoreError> {
        Ok(self
            .client
            .query_opt(
                "SELECT baseline, state_json FROM ima_state WHERE node_id = $1",
                &[&node_id],
            )
            .map_err(db("read IMA state"))?
            .map(|r| (r.get(0), r.get(1))))
    }

    pub fn put_ima_state_json(
        &mut self,
        node_id: &str,
        baseline: &str,
        state_json: &str,
        now: i64,
    ) -> Result<(), PgStoreError> {
        self.client
            .execute(
                "INSERT INTO ima_state (node_id, baseline, state_json, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (node_id) DO UPDATE SET baseline = EXCLUDED.baseline,
                    state_json = EXCLUDED.state_json, updated_at = EXCLUDED.updated_at",
                &[&node_id, &baseline, &state_json, &now],
            )
            .map_err(db("record IMA state"))?;
        Ok(())
    }

    pub fn delete_ima_state(&mut self, node_id: &str) -> Result<(), PgStoreError> {
        self.client
            .execute("DELETE FROM ima_state WHERE node_id = $1", &[&node_id])
            .map_err(db("delete IMA state"))?;
        Ok(())
    }

    /// Records the GPUs a node proved (JSON list).
    pub fn set_gpu_identities(
        &mut self,
        node_id: &str,
        identities: &str,
    ) -> Result<(), PgStoreError> {
        self.client
            .execute(
                "UPDATE nodes SET gpu_identities = $2 WHERE node_id = $1",
                &[&node_id, &identities],
            )
            .map_err(db("record GPU identities"))?;
        Ok(())
    }

    /// The GPUs a node last proved (`[]` when none or unknown node).
    pub fn gpu_identities(&mut self, node_id: &str) -> Result<String, PgStoreError> {
        Ok(self
            .client
            .query_opt(
                "SELECT gpu_identities FROM nodes WHERE node_id = $1",
                &[&node_id],
            )
            .map_err(db("read GPU identities"))?
            .map_or_else(|| "[]".to_owned(), |r| r.get(0)))
    }

    /// Stores `baseline` as the next version of its name (the same content as the latest
    /// version returns that version), audited.
    pub fn put_baseline(
        &mut self,
        baseline: &NewBaseline<'_>,
    ) -> Result<StoredBaseline, PgStoreError> {
        self.write(|tx| tx.put_baseline(baseline))
    }

    /// Version `version` of `name`, or its latest.
    pub fn baseline(
        &mut self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredBaseline>, PgStoreError> {
        baseline(&mut self.client, name, version)
    }

    /// Every version of every baseline, by name then version.
    pub fn baselines(&mut self) -> Result<Vec<StoredBaseline>, PgStoreError> {
        Ok(self
            .client
            .query(
                &format!("SELECT {BASELINE_COLUMNS} FROM baselines ORDER BY name, version"),
                &[],
            )
            .map_err(db("list baselines"))?
            .iter()
            .map(baseline_from_row)
            .collect())
    }

    /// Points `group` at baseline `name`, audited.
    pub fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, PgStoreError> {
        self.write(|tx| tx.assign_baseline(group, name, author, reason, time))
    }

    /// Group -> baseline name.
    pub fn baseline_assignments(
        &mut self,
    ) -> Result<std::collections::BTreeMap<String, String>, PgStoreError> {
        Ok(self
            .client
            .query(
                "SELECT node_group, baseline FROM group_baselines ORDER BY node_group",
                &[],
            )
            .map_err(db("list assignments"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// The latest version of the baseline assigned to `group`.
    pub fn baseline_for_group(
        &mut self,
        group: &str,
    ) -> Result<Option<StoredBaseline>, PgStoreError> {
        let name: Option<String> = self
            .client
            .query_opt(
                "SELECT baseline FROM group_baselines WHERE node_group = $1",
                &[&group],
            )
            .map_err(db("read assignment"))?
            .map(|r| r.get(0));
        match name {
            Some(name) => self.baseline(&name, None),
            None => Ok(None),
        }
    }

    /// Takes the lease of up to `limit` due nodes for `replica_id` until `now + lease_secs`
    /// and returns their ids. Due: no lease, or its lease expired at or before `now` (a dead
    /// replica's nodes come back that way). No node is ever leased to two replicas at once.
    pub fn claim_due_nodes(
        &mut self,
        replica_id: &str,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>, PgStoreError> {
        if lease_secs <= 0 || limit <= 0 {
            return Err(PgStoreError::Invalid(format!(
                "claim_due_nodes needs a positive lease and limit (got {lease_secs} s, {limit})"
            )));
        }
        let until = now.checked_add(lease_secs).ok_or_else(|| {
            PgStoreError::Invalid(format!("lease end {now} + {lease_secs} overflows"))
        })?;
        let rows = self
            .client
            .query(
                "WITH due AS (
                    SELECT n.node_id FROM nodes n
                    LEFT JOIN node_leases l ON l.node_id = n.node_id
                    WHERE l.node_id IS NULL OR l.expires_at <= $2
                    ORDER BY COALESCE(l.expires_at, 0), n.node_id
                    LIMIT $4
                    FOR UPDATE OF n SKIP LOCKED
                 )
                 INSERT INTO node_leases (node_id, holder, expires_at)
                 SELECT node_id, $1, $3 FROM due
                 ON CONFLICT (node_id) DO UPDATE
                    SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                    WHERE node_leases.expires_at <= $2
                 RETURNING node_id",
                &[&replica_id, &now, &until, &limit],
            )
            .map_err(db("claim due nodes"))?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort();
        Ok(ids)
    }

    /// Extends `replica_id`'s unexpired lease on `node_id` to `now + lease_secs`; false when
    /// it holds none (expired, or taken over).
    pub fn renew_lease(
        &mut self,
        replica_id: &str,
        node_id: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<bool, PgStoreError> {
        let until = now.saturating_add(lease_secs.max(0));
        let changed = self
            .client
            .execute(
                "UPDATE node_leases SET expires_at = $4
                 WHERE node_id = $2 AND holder = $1 AND expires_at > $3",
                &[&replica_id, &node_id, &now, &until],
            )
            .map_err(db("renew lease"))?;
        Ok(changed == 1)
    }

    /// Gives back every lease `replica_id` holds (graceful shutdown): the nodes are due for
    /// the other replicas at once. Returns how many.
    pub fn release_leases(&mut self, replica_id: &str) -> Result<u64, PgStoreError> {
        self.client
            .execute("DELETE FROM node_leases WHERE holder = $1", &[&replica_id])
            .map_err(db("release leases"))
    }
}

fn baseline(
    client: &mut impl GenericClient,
    name: &str,
    version: Option<i64>,
) -> Result<Option<StoredBaseline>, PgStoreError> {
    Ok(client
        .query_opt(
            &format!(
                "SELECT {BASELINE_COLUMNS} FROM baselines
                 WHERE name = $1 AND ($2::BIGINT IS NULL OR version = $2)
                 ORDER BY version DESC LIMIT 1"
            ),
            &[&name, &version],
        )
        .map_err(db("read baseline"))?
        .map(|r| baseline_from_row(&r)))
}

impl<'a> PgTx<'a> {
    /// Runs `body` in a savepoint: its writes are kept (released into the transaction) when it
    /// succeeds and undone when it fails, leaving the rest of the batch.
    pub fn savepoint<T>(
        &mut self,
        body: impl FnOnce(&mut PgTx<'_>) -> Result<T, PgStoreError>,
    ) -> Result<T, PgStoreError> {
        let inner = self.tx.transaction().map_err(db("begin savepoint"))?;
        let mut inner = PgTx {
            tx: inner,
            key: self.key,
        };
        let value = body(&mut inner)?;
        inner.tx.commit().map_err(db("release savepoint"))?;
        Ok(value)
    }

    /// Takes the log lock (see the crate docs); a batch that appends takes it first.
    pub fn lock_log(&mut self) -> Result<(), PgStoreError> {
        audit::lock_log(&mut self.tx)
    }

    /// The transaction, for statements not wrapped here.
    pub fn transaction(&mut self) -> &mut postgres::Transaction<'a> {
        &mut self.tx
    }

    /// Appends `entry` to the audit log and signs a checkpoint, so every acknowledged change
    /// is covered by a signed tree head (as on SQLite). Returns the entry's index.
    pub fn audit(&mut self, entry: &AuditEntry) -> Result<u64, PgStoreError> {
        let receipt = audit::append(&mut self.tx, entry)?;
        audit::checkpoint(&mut self.tx, self.key, AUDIT_ORIGIN, entry.time)?;
        Ok(receipt.index)
    }

    pub fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), PgStoreError> {
        self.tx
            .execute(
                "INSERT INTO nonces (nonce, node_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&nonce, &node_id, &issued_at, &expires_at],
            )
            .map_err(db("store nonce"))?;
        Ok(())
    }

    /// See [`PgStore::consume_nonce`]. The check and the mark are one statement.
    pub fn consume_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), PgStoreError> {
        let before = self
            .tx
            .query_opt(
                "SELECT node_id, issued_at, expires_at, used_at FROM nonces WHERE nonce = $1",
                &[&nonce],
            )
            .map_err(db("look up nonce"))?
            .map(|r| NonceRecord {
                node_id: r.get(0),
                issued_at: r.get(1),
                expires_at: r.get(2),
                used_at: r.get(3),
            });
        let changed = self
            .tx
            .execute(
                "UPDATE nonces SET used_at = $3
                 WHERE nonce = $1 AND node_id = $2 AND used_at IS NULL AND expires_at > $3",
                &[&nonce, &node_id, &now],
            )
            .map_err(db("consume nonce"))?;
        Ok((changed == 1, before))
    }

    pub fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, PgStoreError> {
        let inserted = self
            .tx
            .execute(
                &format!(
                    "INSERT INTO nodes ({NODE_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (node_id) DO NOTHING"
                ),
                &[
                    &node.node_id,
                    &node.ak_public,
                    &node.ak_name,
                    &node.ak_trust,
                    &node.address,
                    &node.first_seen,
                    &node.last_seen,
                    &node.last_verdict,
                    &node.ek_public,
                    &node.ek_certificate,
                    &node.group,
                    &node.registered_at,
                    &node.status,
                ],
            )
            .map_err(db("record node"))?;
        Ok(inserted == 1)
    }

    pub fn replace_node(
        &mut self,
        node: &NodeRecord,
        entry: &AuditEntry,
    ) -> Result<(), PgStoreError> {
        self.lock_log()?;
        self.tx
            .execute("DELETE FROM nodes WHERE node_id = $1", &[&node.node_id])
            .map_err(db("remove old node record"))?;
        // A (re-)registered node starts its IMA state afresh.
        self.tx
            .execute("DELETE FROM ima_state WHERE node_id = $1", &[&node.node_id])
            .map_err(db("reset IMA state"))?;
        self.insert_node(node)?;
        self.audit(entry)?;
        Ok(())
    }

    pub fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, PgStoreError> {
        self.lock_log()?;
        let changed = self
            .tx
            .execute("DELETE FROM nodes WHERE node_id = $1", &[&node_id])
            .map_err(db("remove node"))?;
        self.tx
            .execute("DELETE FROM ima_state WHERE node_id = $1", &[&node_id])
            .map_err(db("remove node's IMA state"))?;
        self.tx
            .execute("DELETE FROM node_leases WHERE node_id = $1", &[&node_id])
            .map_err(db("remove node's lease"))?;
        if changed == 1 {
            self.audit(&AuditEntry {
                kind: "node.removed".to_owned(),
                time,
                subject: node_id.to_owned(),
                body: serde_json::json!({}),
            })?;
        }
        Ok(changed == 1)
    }

    /// Records a status change for `node_id` if its status differs, with the next `seq`
    /// assigned under the log lock (crate docs: commit order is seq order).
    fn change_status(
        &mut self,
        node_id: &str,
        new_status: &str,
        reason: &str,
        time: i64,
        result_json: &str,
    ) -> Result<(), PgStoreError> {
        self.lock_log()?;
        let old: Option<String> = self
            .tx
            .query_opt(
                "SELECT status FROM nodes WHERE node_id = $1 FOR UPDATE",
                &[&node_id],
            )
            .map_err(db("read node status"))?
            .map(|r| r.get(0));
        let Some(old) = old else {
            return Ok(());
        };
        if old == new_status {
            return Ok(());
        }
        self.tx
            .execute(
                "UPDATE nodes SET status = $2 WHERE node_id = $1",
                &[&node_id, &new_status],
            )
            .map_err(db("update node status"))?;
        self.tx
            .execute(
                "INSERT INTO status_changes (seq, node_id, old_status, new_status, reason, time, result_json)
                 SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6 FROM status_changes",
                &[&node_id, &old, &new_status, &reason, &time, &result_json],
            )
            .map_err(db("record status change"))?;
        Ok(())
    }

    pub fn mark_unknown(
        &mut self,
        node_id: &str,
        reason: &str,
        time: i64,
    ) -> Result<(), PgStoreError> {
        self.change_status(node_id, STATUS_UNKNOWN, reason, time, "null")
    }

    /// See [`PgStore::record_verdict`]; the same statements as the SQLite store, after the
    /// log lock.
    #[allow(clippy::too_many_arguments)]
    pub fn record_verdict(
        &mut self,
        node_id: &str,
        nonce: &[u8],
        verified_at: i64,
        verdict: &str,
        result_json: &str,
        evidence: &[u8],
        speaks_for_node: bool,
    ) -> Result<i64, PgStoreError> {
        self.lock_log()?;
        let id: i64 = self
            .tx
            .query_one(
                "INSERT INTO verdicts (node_id, nonce, verified_at, verdict, result_json)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&node_id, &nonce, &verified_at, &verdict, &result_json],
            )
            .map_err(db("record verdict"))?
            .get(0);
        if speaks_for_node {
            self.tx
                .execute(
                    "UPDATE nodes SET last_verdict = $2, last_seen = $3 WHERE node_id = $1",
                    &[&node_id, &verdict, &verified_at],
                )
                .map_err(db("update node verdict"))?;
            let new_status = if verdict == "pass" {
                STATUS_TRUSTED
            } else {
                STATUS_UNTRUSTED
            };
            self.change_status(
                node_id,
                new_status,
                &format!("verdict {verdict}"),
                verified_at,
                result_json,
            )?;
        }
        let evidence_digest = audit::put_blob(&mut self.tx, evidence)?;
        self.tx
            .execute(
                "UPDATE verdicts SET evidence = $2 WHERE id = $1",
                &[&id, &evidence_digest],
            )
            .map_err(db("record verdict evidence"))?;
        let result: serde_json::Value =
            serde_json::from_str(result_json).unwrap_or(serde_json::Value::Null);
        self.audit(&AuditEntry {
            kind: "verdict".to_owned(),
            time: verified_at,
            subject: node_id.to_owned(),
            body: serde_json::json!({
                "verdict": verdict,
                "verdict_id": id,
                "nonce": hex::encode(nonce),
                "evidence": format!("sha256:{evidence_digest}"),
                "claimed_identity": !speaks_for_node,
                "result": result,
            }),
        })?;
        Ok(id)
    }

    /// See [`PgStore::put_baseline`]. The version is chosen under the log lock, so two
    /// replicas storing versions of one name at once get consecutive numbers.
    pub fn put_baseline(&mut self, new: &NewBaseline<'_>) -> Result<StoredBaseline, PgStoreError> {
        self.lock_log()?;
        if let Some(latest) = baseline(&mut self.tx, new.name, None)?
            && latest.sha256 == new.sha256
        {
            return Ok(latest);
        }
        let version: i64 = self
            .tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM baselines WHERE name = $1",
                &[&new.name],
            )
            .map_err(db("next baseline version"))?
            .get(0);
        self.tx
            .execute(
                &format!(
                    "INSERT INTO baselines ({BASELINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &new.name,
                    &version,
                    &new.sha256,
                    &new.body,
                    &new.author,
                    &new.reason,
                    &new.time,
                    &new.signed_by,
                    &new.rules,
                ],
            )
            .map_err(db("store baseline"))?;
        let body_digest = audit::put_blob(&mut self.tx, new.body.as_bytes())?;
        self.audit(&AuditEntry {
            kind: "baseline.version".to_owned(),
            time: new.time,
            subject: new.name.to_owned(),
            body: serde_json::json!({
                "version": version,
                "sha256": new.sha256,
                "file": format!("sha256:{body_digest}"),
                "author": new.author,
                "reason": new.reason,
                "signed_by": new.signed_by,
                "rules": new.rules,
            }),
        })?;
        baseline(&mut self.tx, new.name, Some(version))?.ok_or_else(|| {
            PgStoreError::NotFound(format!(
                "baseline {}@{version} vanished after it was stored",
                new.name
            ))
        })
    }

    /// See [`PgStore::assign_baseline`].
    pub fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, PgStoreError> {
        self.lock_log()?;
        let Some(latest) = baseline(&mut self.tx, name, None)? else {
            return Err(PgStoreError::NotFound(format!(
                "no baseline named {name:?}"
            )));
        };
        self.tx
            .execute(
                "INSERT INTO group_baselines (node_group, baseline, assigned_at, author, reason)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (node_group) DO UPDATE SET baseline = EXCLUDED.baseline,
                    assigned_at = EXCLUDED.assigned_at, author = EXCLUDED.author,
                    reason = EXCLUDED.reason",
                &[&group, &name, &time, &author, &reason],
            )
            .map_err(db("assign baseline"))?;
        self.audit(&AuditEntry {
            kind: "baseline.assigned".to_owned(),
            time,
            subject: group.to_owned(),
            body: serde_json::json!({
                "baseline": name,
                "version_now": latest.version,
                "author": author,
                "reason": reason,
            }),
        })?;
        Ok(latest)
    }
}
