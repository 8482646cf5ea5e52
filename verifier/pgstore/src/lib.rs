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
//! - **Every read on both** [`PgStore`] (autocommit) and [`PgTx`] (inside the unit of work,
//!   seeing its own writes), with one copy of each statement (`queries`).
//! - **Not here yet** (the wiring step): a reader connection pool, and waking
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

/// The client crate, for callers that hold a [`connect_client`] connection.
pub use postgres;

pub mod audit;
mod cache;
mod connect;
mod queries;
pub mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_audit::{AuditEntry, AuditSigningKey};

use cache::{Conn, Frontier, LogState, Statements};

pub use connect::redacted;

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
    /// Connecting failed; `url` is [`redacted`].
    #[error("connect to {url}: {reason}")]
    Connect { url: String, reason: String },
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
        None => {
            // The cause is in the source chain ("error performing TLS handshake: invalid peer
            // certificate: UnknownIssuer").
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.ends_with(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text
        }
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

/// One immutable baseline version (both engines' record; serialised in `vigil baseline list
/// --json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// Audit entry kind of one evidence prune (the SQLite store's `KIND_EVIDENCE_PRUNED`).
pub const KIND_EVIDENCE_PRUNED: &str = "evidence.pruned";

/// What one evidence prune did (the SQLite store's `PruneReport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Evidence blobs deleted (distinct digests).
    pub pruned: usize,
    /// Verdicts' blobs older than the cutoff kept because a newer verdict shares them.
    pub kept_shared: usize,
    /// The `evidence.pruned` audit entry (none when nothing was pruned).
    pub audit_index: Option<u64>,
}

/// The canonical JSON of a verdict's audit body without `verdict_id`, less its closing
/// brace: exactly the SQLite store's `PreparedVerdict` prefix. `verdict_id` sorts last
/// ("verdict" < "verdict_id"), so the insert's id is appended to it.
fn verdict_body_prefix(
    verdict: &str,
    nonce: &[u8],
    evidence: &[u8],
    speaks_for_node: bool,
    result: &serde_json::Value,
) -> Result<Vec<u8>, PgStoreError> {
    let body = serde_json::json!({
        "verdict": verdict,
        "nonce": hex::encode(nonce),
        "evidence": format!("sha256:{}", vigil_audit::blob_digest(evidence)),
        "claimed_identity": !speaks_for_node,
        "result": result,
    });
    let mut prefix =
        vigil_audit::entry::canonical_json(&body).map_err(vigil_audit::AuditError::from)?;
    // Canonical JSON of an object ends with its closing brace.
    prefix.pop();
    Ok(prefix)
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
        let found: i64 = match tx
            .query_opt(
                "SELECT version FROM schema_version WHERE component = $1",
                &[&component.name],
            )
            .map_err(db("read schema version"))?
        {
            Some(row) => queries::get(&row, 0, "read schema version")?,
            None => 0,
        };
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
    /// Statements prepared on `client`, reused by every call and transaction on it.
    statements: Statements,
    /// The audit frontier as of this connection's last committed transaction that appended
    /// or read it; checked against the log's size under the lock before each use.
    frontier: Option<Frontier>,
}

/// A write transaction (or a savepoint inside one), with the audit key to sign checkpoints.
pub struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    key: &'a AuditSigningKey,
    statements: &'a mut Statements,
    /// What this transaction knows of the log (lock held, frontier); restored from a copy
    /// when a savepoint rolls back.
    log: LogState,
    /// Savepoints begun so far (their names' numbers).
    savepoints: u64,
    /// The last savepoint whose body succeeded, not yet released (see [`PgTx::savepoint`]).
    unreleased: Option<u64>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Compresses this session's large values (results, audit entries, evidence: about 250 KB
/// per 8-GPU verdict) with lz4 instead of PostgreSQL's default pglz, which cost the database
/// 2.6 times the CPU per verdict under load (BENCHMARKS.md). A server built without lz4 keeps
/// pglz: the values are the same either way, only their compression differs.
fn prefer_lz4(client: &mut postgres::Client) {
    let _ = client.batch_execute("SET default_toast_compression = 'lz4'");
}

/// A connection with no store around it, for tools that only read or only migrate
/// (`vigil audit verify`, `vigil db migrate`): no signing key needed, nothing written.
/// Password and TLS as [`PgStore::connect`].
pub fn connect_client(url: &str) -> Result<postgres::Client, PgStoreError> {
    connect::client(url, &connect::Env::process())
}

/// The public key the database records as its audit log's signer (`None` before the first
/// replica opened it), in `vigil audit` key form.
pub fn recorded_signer(
    client: &mut impl postgres::GenericClient,
) -> Result<Option<String>, PgStoreError> {
    let table = client
        .query_one("SELECT to_regclass('audit_signer') IS NOT NULL", &[])
        .map_err(db("look for audit_signer"))?;
    if !queries::get::<bool>(&table, 0, "look for audit_signer")? {
        return Ok(None);
    }
    match client
        .query_opt("SELECT verifier_key FROM audit_signer WHERE id = 1", &[])
        .map_err(db("read audit key"))?
    {
        Some(row) => Ok(Some(queries::get(&row, 0, "read audit key")?)),
        None => Ok(None),
    }
}

/// The one-statement reads and writes (each one query of [`queries`]) that a connection
/// (autocommit) and a transaction both offer, written once for both.
macro_rules! one_statement_methods {
    () => {
        pub fn node(&mut self, node_id: &str) -> Result<Option<NodeRecord>, PgStoreError> {
            queries::node(&mut self.conn(), node_id)
        }

        /// Every node, by id (bytewise, as SQLite orders them).
        pub fn nodes(&mut self) -> Result<Vec<NodeRecord>, PgStoreError> {
            queries::nodes(&mut self.conn())
        }

        /// Status changes with `seq >= from`, in seq order, at most `limit`.
        pub fn status_changes(
            &mut self,
            from: i64,
            limit: i64,
        ) -> Result<Vec<StatusChange>, PgStoreError> {
            queries::status_changes(&mut self.conn(), from, limit)
        }

        pub fn latest_status_seq(&mut self) -> Result<i64, PgStoreError> {
            queries::latest_status_seq(&mut self.conn())
        }

        /// Recorded verdicts, oldest first; only `node_id`'s when given.
        pub fn verdicts(
            &mut self,
            node_id: Option<&str>,
        ) -> Result<Vec<VerdictRecord>, PgStoreError> {
            queries::verdicts(&mut self.conn(), node_id)
        }

        /// Each node's latest verdict, by node id (the SQLite store's `latest_verdicts`).
        pub fn latest_verdicts(&mut self) -> Result<Vec<VerdictRecord>, PgStoreError> {
            queries::latest_verdicts(&mut self.conn())
        }

        /// The newest `limit` verdicts (only `node_id`'s when given), newest first. A negative
        /// `limit` is refused.
        pub fn recent_verdicts(
            &mut self,
            node_id: Option<&str>,
            limit: i64,
        ) -> Result<Vec<VerdictRecord>, PgStoreError> {
            queries::recent_verdicts(&mut self.conn(), node_id, limit)
        }

        pub fn verdict_count(&mut self) -> Result<i64, PgStoreError> {
            queries::verdict_count(&mut self.conn())
        }

        /// The node's IMA state as stored (`baseline`, `state_json`); the verifier decodes it.
        pub fn ima_state_json(
            &mut self,
            node_id: &str,
        ) -> Result<Option<(String, String)>, PgStoreError> {
            queries::ima_state_json(&mut self.conn(), node_id)
        }

        pub fn put_ima_state_json(
            &mut self,
            node_id: &str,
            baseline: &str,
            state_json: &str,
            now: i64,
        ) -> Result<(), PgStoreError> {
            queries::put_ima_state_json(&mut self.conn(), node_id, baseline, state_json, now)
        }

        pub fn delete_ima_state(&mut self, node_id: &str) -> Result<(), PgStoreError> {
            queries::delete_ima_state(&mut self.conn(), node_id)
        }

        /// Records the GPUs a node proved (JSON list).
        pub fn set_gpu_identities(
            &mut self,
            node_id: &str,
            identities: &str,
        ) -> Result<(), PgStoreError> {
            queries::set_gpu_identities(&mut self.conn(), node_id, identities)
        }

        /// The GPUs a node last proved (`[]` when none or unknown node).
        pub fn gpu_identities(&mut self, node_id: &str) -> Result<String, PgStoreError> {
            queries::gpu_identities(&mut self.conn(), node_id)
        }

        /// Version `version` of `name`, or its latest.
        pub fn baseline(
            &mut self,
            name: &str,
            version: Option<i64>,
        ) -> Result<Option<StoredBaseline>, PgStoreError> {
            queries::baseline(&mut self.conn(), name, version)
        }

        /// Every version of every baseline, by name (bytewise) then version.
        pub fn baselines(&mut self) -> Result<Vec<StoredBaseline>, PgStoreError> {
            queries::baselines(&mut self.conn())
        }

        /// Group -> baseline name.
        pub fn baseline_assignments(&mut self) -> Result<BTreeMap<String, String>, PgStoreError> {
            queries::baseline_assignments(&mut self.conn())
        }

        /// The latest version of the baseline assigned to `group`.
        pub fn baseline_for_group(
            &mut self,
            group: &str,
        ) -> Result<Option<StoredBaseline>, PgStoreError> {
            queries::baseline_for_group(&mut self.conn(), group)
        }
    };
}

impl PgStore {
    one_statement_methods!();

    /// Connects to `url` (`postgres://user@host:port/db`), migrates, and checks that
    /// `audit_key` is the key the log is signed with (recording it if it is the first).
    ///
    /// Password: the URL's, else the file named by `VIGIL_DB_PASSWORD_FILE` (trailing newline
    /// trimmed), else `PGPASSWORD`; errors name the URL only [`redacted`]. TLS (rustls,
    /// aws-lc-rs): `sslmode` absent or `disable` is plain; `require`/`verify-full` verify the
    /// server's certificate and host name against `sslrootcert=` or `VIGIL_DB_CA` (required:
    /// unverified TLS would not stop a man in the middle); `prefer`, `allow`, `verify-ca` are
    /// refused, since each can end up unverified. No SCRAM channel binding.
    pub fn connect(url: &str, audit_key: Arc<AuditSigningKey>) -> Result<Self, PgStoreError> {
        let mut client = connect::client(url, &connect::Env::process())?;
        migrate(&mut client)?;
        prefer_lz4(&mut client);
        let presented = audit_key.public_key().to_verifier_key();
        client
            .execute(
                "INSERT INTO audit_signer (id, verifier_key, recorded_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
                &[&presented, &now_unix()],
            )
            .map_err(db("record audit key"))?;
        let row = client
            .query_one("SELECT verifier_key FROM audit_signer WHERE id = 1", &[])
            .map_err(db("read audit key"))?;
        let recorded: String = queries::get(&row, 0, "read audit key")?;
        if recorded != presented {
            return Err(PgStoreError::AuditKeyMismatch {
                recorded,
                presented,
            });
        }
        Ok(PgStore {
            client,
            audit_key,
            statements: Statements::default(),
            frontier: None,
        })
    }

    /// The same as [`PgStore::connect`] (its first name).
    pub fn open(url: &str, audit_key: Arc<AuditSigningKey>) -> Result<Self, PgStoreError> {
        Self::connect(url, audit_key)
    }

    /// The key that signs this log's checkpoints.
    pub fn audit_public_key(&self) -> vigil_audit::AuditPublicKey {
        self.audit_key.public_key()
    }

    /// The connection, for reads not wrapped here (audit proofs through [`audit`]).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    fn conn(&mut self) -> Conn<'_, postgres::Client> {
        Conn {
            client: &mut self.client,
            statements: &mut self.statements,
        }
    }

    /// Runs `body` in one transaction and commits it: the group-commit writer's batch, or a
    /// single write. Nothing `body` did is kept when it fails or the commit fails.
    pub fn write<T>(
        &mut self,
        body: impl FnOnce(&mut PgTx<'_>) -> Result<T, PgStoreError>,
    ) -> Result<T, PgStoreError> {
        // Taken, not copied: if anything below fails (or panics), the connection forgets
        // the frontier, since appends it saw may never have committed.
        let frontier = self.frontier.take();
        let tx = self.client.transaction().map_err(db("begin transaction"))?;
        let mut tx = PgTx {
            tx,
            key: &self.audit_key,
            statements: &mut self.statements,
            log: LogState {
                locked: false,
                frontier,
                current: false,
            },
            savepoints: 0,
            unreleased: None,
        };
        let value = body(&mut tx)?;
        let log = std::mem::take(&mut tx.log);
        tx.tx.commit().map_err(db("commit"))?;
        self.frontier = log.frontier;
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
        queries::prune_nonces(&mut self.conn(), cutoff)
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
        self.write(|tx| tx.record_event(entry))
    }

    /// See [`PgTx::prune_evidence`]; one transaction.
    pub fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, PgStoreError> {
        self.write(|tx| tx.prune_evidence(cutoff, now))
    }

    /// Stores `baseline` as the next version of its name (the same content as the latest
    /// version returns that version), audited.
    pub fn put_baseline(
        &mut self,
        baseline: &NewBaseline<'_>,
    ) -> Result<StoredBaseline, PgStoreError> {
        self.write(|tx| tx.put_baseline(baseline))
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
        let mut ids = rows
            .iter()
            .map(|r| queries::get(r, 0, "read claimed node"))
            .collect::<Result<Vec<String>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    /// How many unexpired leases each replica holds at `now`: the live replicas, so each
    /// can claim a fair share of the fleet instead of whichever looks first taking all.
    pub fn lease_counts(&mut self, now: i64) -> Result<BTreeMap<String, i64>, PgStoreError> {
        let rows = self
            .client
            .query(
                "SELECT holder, COUNT(*) FROM node_leases WHERE expires_at > $1 GROUP BY holder",
                &[&now],
            )
            .map_err(db("count leases"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    queries::get(r, 0, "read lease holder")?,
                    queries::get(r, 1, "read lease count")?,
                ))
            })
            .collect()
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

impl<'a> PgTx<'a> {
    one_statement_methods!();

    /// Runs `body` in a savepoint: its writes are kept (released into the transaction) when it
    /// succeeds and undone when it fails, leaving the rest of the batch.
    ///
    /// A kept savepoint is released in the same round trip as the next savepoint begins (or
    /// by COMMIT): nothing rolls back to it once its body succeeded, so releasing it later
    /// changes nothing but saves the group-commit writer one round trip per write.
    pub fn savepoint<T>(
        &mut self,
        body: impl FnOnce(&mut PgTx<'_>) -> Result<T, PgStoreError>,
    ) -> Result<T, PgStoreError> {
        let n = self.savepoints;
        self.savepoints += 1;
        let begin = match self.unreleased.take() {
            Some(done) => format!("RELEASE SAVEPOINT vigil_sp{done}; SAVEPOINT vigil_sp{n}"),
            None => format!("SAVEPOINT vigil_sp{n}"),
        };
        self.tx
            .batch_execute(&begin)
            .map_err(db("begin savepoint"))?;
        // On failure the savepoint rolls back, and with it the body's appends and any lock
        // taken inside it: the log state from before the savepoint is right again.
        let before = self.log.clone();
        match body(self) {
            Ok(value) => {
                // Releasing it releases any savepoint the body left unreleased.
                self.unreleased = Some(n);
                Ok(value)
            }
            Err(error) => {
                self.unreleased = None;
                self.log = before;
                let undo =
                    format!("ROLLBACK TO SAVEPOINT vigil_sp{n}; RELEASE SAVEPOINT vigil_sp{n}");
                if self.tx.batch_execute(&undo).is_err() {
                    // The transaction is unusable (its COMMIT will fail); trust nothing.
                    self.log = LogState::default();
                }
                Err(error)
            }
        }
    }

    fn conn(&mut self) -> Conn<'_, postgres::Transaction<'a>> {
        Conn {
            client: &mut self.tx,
            statements: &mut *self.statements,
        }
    }

    /// Takes the log lock (see the crate docs); a batch that appends takes it first. Once per
    /// transaction: the lock is held until COMMIT.
    pub fn lock_log(&mut self) -> Result<(), PgStoreError> {
        let (mut conn, log) = (
            Conn {
                client: &mut self.tx,
                statements: &mut *self.statements,
            },
            &mut self.log,
        );
        audit::lock_log_once(&mut conn, log)
    }

    /// The transaction, for statements not wrapped here. What the caller does with it is
    /// unknown (it may append), so the remembered frontier is checked again before use.
    pub fn transaction(&mut self) -> &mut postgres::Transaction<'a> {
        self.log.current = false;
        &mut self.tx
    }

    /// Appends `entry` to the audit log and signs a checkpoint, so every acknowledged change
    /// is covered by a signed tree head (as on SQLite). Returns the entry's index.
    pub fn audit(&mut self, entry: &AuditEntry) -> Result<u64, PgStoreError> {
        let encoding = entry.encode().map_err(vigil_audit::AuditError::from)?;
        self.append_encoded(&entry.kind, entry.time, &entry.subject, &encoding)
    }

    /// [`PgTx::audit`] of an entry already encoded; the checkpoint is at `time`.
    fn append_encoded(
        &mut self,
        kind: &str,
        time: i64,
        subject: &str,
        encoding: &[u8],
    ) -> Result<u64, PgStoreError> {
        let mut conn = Conn {
            client: &mut self.tx,
            statements: &mut *self.statements,
        };
        audit::append_and_checkpoint(
            &mut conn,
            &mut self.log,
            self.key,
            AUDIT_ORIGIN,
            kind,
            time,
            subject,
            encoding,
        )
    }

    /// Records an audit entry on its own (registrations, removals): [`PgTx::audit`] under
    /// the name the SQLite store uses.
    pub fn record_event(&mut self, entry: &AuditEntry) -> Result<u64, PgStoreError> {
        self.audit(entry)
    }

    /// Deletes the stored evidence of every verdict recorded before `cutoff`, except blobs a
    /// verdict at or after `cutoff` still references, as the SQLite store's `prune_evidence`
    /// does: each pruned digest is remembered in `pruned_evidence`, and the prune is audited
    /// (`evidence.pruned`: cutoff, count, SHA-256 of the sorted digests). Under the log lock,
    /// so no replica records a verdict sharing a blob while it is being deleted.
    pub fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, PgStoreError> {
        self.lock_log()?;
        backfill_verdict_evidence(&mut self.tx)?;
        let mut old_digests = |shared: bool| -> Result<Vec<String>, PgStoreError> {
            let sql = if shared {
                "SELECT DISTINCT v.evidence COLLATE \"C\" FROM verdicts v
                 WHERE v.verified_at < $1 AND v.evidence IS NOT NULL
                   AND EXISTS (SELECT 1 FROM verdicts n
                               WHERE n.evidence = v.evidence AND n.verified_at >= $1)
                 ORDER BY 1"
            } else {
                "SELECT DISTINCT v.evidence COLLATE \"C\" FROM verdicts v
                 WHERE v.verified_at < $1 AND v.evidence IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM verdicts n
                                   WHERE n.evidence = v.evidence AND n.verified_at >= $1)
                   AND EXISTS (SELECT 1 FROM audit_blob b WHERE b.digest = v.evidence)
                 ORDER BY 1"
            };
            self.conn()
                .query(sql, &[&cutoff])
                .map_err(db("select evidence to prune"))?
                .iter()
                .map(|r| queries::get(r, 0, "read evidence to prune"))
                .collect()
        };
        let kept_shared = old_digests(true)?.len();
        let digests = old_digests(false)?;
        if digests.is_empty() {
            return Ok(PruneReport {
                pruned: 0,
                kept_shared,
                audit_index: None,
            });
        }
        let listing: String = digests.iter().map(|d| format!("{d}\n")).collect();
        let audit_index = self.audit(&AuditEntry {
            kind: KIND_EVIDENCE_PRUNED.to_owned(),
            time: now,
            subject: "evidence".to_owned(),
            body: serde_json::json!({
                "cutoff": cutoff,
                "blobs": digests.len(),
                // SHA-256 of the pruned digests, sorted, one per line (newline-terminated).
                "digests_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(listing.as_bytes())),
                "policy": "--retain-evidence",
            }),
        })?;
        let index = i64::try_from(audit_index)
            .map_err(|_| PgStoreError::Invalid(format!("audit index {audit_index} overflows")))?;
        for digest in &digests {
            audit::delete_blob(&mut self.tx, digest)?;
            self.conn()
                .execute(
                    "INSERT INTO pruned_evidence (digest, pruned_at, cutoff, audit_index)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (digest) DO UPDATE SET pruned_at = EXCLUDED.pruned_at,
                        cutoff = EXCLUDED.cutoff, audit_index = EXCLUDED.audit_index",
                    &[digest, &now, &cutoff, &index],
                )
                .map_err(db("record pruned evidence"))?;
        }
        Ok(PruneReport {
            pruned: digests.len(),
            kept_shared,
            audit_index: Some(audit_index),
        })
    }

    /// See [`PgStore::prune_nonces`].
    pub fn prune_nonces(&mut self, cutoff: i64) -> Result<u64, PgStoreError> {
        queries::prune_nonces(&mut self.conn(), cutoff)
    }

    pub fn insert_nonce(
        &mut self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), PgStoreError> {
        self.conn()
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
        const W: &str = "read nonce row";
        // The conditional UPDATE first: a use racing with another replica's waits for that
        // transaction and re-checks the row, so of two exactly one matches. The row is read
        // afterwards, by a statement that sees the other use committed, so the refusal names
        // the replay instead of a stale "unused" row.
        //
        // The use returns the row it updated, so the usual case (a good nonce) is one
        // statement; only a refusal reads the row.
        let used = self
            .conn()
            .query_opt(
                "UPDATE nonces SET used_at = $3
                 WHERE nonce = $1 AND node_id = $2 AND used_at IS NULL AND expires_at > $3
                 RETURNING node_id, issued_at, expires_at",
                &[&nonce, &node_id, &now],
            )
            .map_err(db("consume nonce"))?;
        if let Some(r) = used {
            // As SQLite returns it: the record as it was before this use.
            return Ok((
                true,
                Some(NonceRecord {
                    node_id: queries::get(&r, 0, W)?,
                    issued_at: queries::get(&r, 1, W)?,
                    expires_at: queries::get(&r, 2, W)?,
                    used_at: None,
                }),
            ));
        }
        let row = self
            .conn()
            .query_opt(
                "SELECT node_id, issued_at, expires_at, used_at FROM nonces WHERE nonce = $1",
                &[&nonce],
            )
            .map_err(db("look up nonce"))?
            .map(|r| {
                Ok::<_, PgStoreError>(NonceRecord {
                    node_id: queries::get(&r, 0, W)?,
                    issued_at: queries::get(&r, 1, W)?,
                    expires_at: queries::get(&r, 2, W)?,
                    used_at: queries::get(&r, 3, W)?,
                })
            })
            .transpose()?;
        Ok((false, row))
    }

    pub fn insert_node(&mut self, node: &NodeRecord) -> Result<bool, PgStoreError> {
        let inserted = self
            .conn()
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
        self.conn()
            .execute("DELETE FROM nodes WHERE node_id = $1", &[&node.node_id])
            .map_err(db("remove old node record"))?;
        // A (re-)registered node starts its IMA state afresh.
        self.conn()
            .execute("DELETE FROM ima_state WHERE node_id = $1", &[&node.node_id])
            .map_err(db("reset IMA state"))?;
        self.insert_node(node)?;
        self.audit(entry)?;
        Ok(())
    }

    pub fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, PgStoreError> {
        self.lock_log()?;
        let changed = self
            .conn()
            .execute("DELETE FROM nodes WHERE node_id = $1", &[&node_id])
            .map_err(db("remove node"))?;
        self.conn()
            .execute("DELETE FROM ima_state WHERE node_id = $1", &[&node_id])
            .map_err(db("remove node's IMA state"))?;
        self.conn()
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
        let Some(row) = self
            .conn()
            .query_opt(
                "SELECT status FROM nodes WHERE node_id = $1 FOR UPDATE",
                &[&node_id],
            )
            .map_err(db("read node status"))?
        else {
            return Ok(());
        };
        let old: String = queries::get(&row, 0, "read node status")?;
        self.change_status_from(node_id, &old, new_status, reason, time, result_json)
    }

    /// The rest of [`PgTx::change_status`] once the node's row is locked and its status
    /// `old` read: the update and the change record in one statement. Under the log lock.
    fn change_status_from(
        &mut self,
        node_id: &str,
        old: &str,
        new_status: &str,
        reason: &str,
        time: i64,
        result_json: &str,
    ) -> Result<(), PgStoreError> {
        if old == new_status {
            return Ok(());
        }
        self.conn()
            .execute(
                "WITH node AS (UPDATE nodes SET status = $3 WHERE node_id = $1)
                 INSERT INTO status_changes (seq, node_id, old_status, new_status, reason, time, result_json)
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

    /// See [`PgStore::record_verdict`]: the SQLite store's `record_prepared_verdict`,
    /// statement for statement, after the log lock. As there, `result_json` is stored
    /// re-serialised (`null` when it does not parse), and the audit body is built the same
    /// way, so both engines log byte-identical entries and checkpoint after each.
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
        let result: serde_json::Value =
            serde_json::from_str(result_json).unwrap_or(serde_json::Value::Null);
        let result_json = serde_json::to_string(&result)
            .map_err(|e| PgStoreError::Invalid(format!("the result does not serialise: {e}")))?;
        let body_prefix = verdict_body_prefix(verdict, nonce, evidence, speaks_for_node, &result)?;
        self.lock_log()?;
        // The evidence blob and the verdict naming it in one statement (the SQLite store
        // inserts the verdict, then the blob, then sets the digest: the same rows result).
        let evidence_digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(evidence))
        };
        let id: i64 = self
            .conn()
            .query_one(
                "WITH blob AS (
                    INSERT INTO audit_blob (digest, data) VALUES ($6, $7)
                    ON CONFLICT (digest) DO NOTHING
                 )
                 INSERT INTO verdicts (node_id, nonce, verified_at, verdict, result_json, evidence)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &node_id,
                    &nonce,
                    &verified_at,
                    &verdict,
                    &result_json,
                    &evidence_digest,
                    &evidence,
                ],
            )
            .map_err(db("record verdict"))
            .and_then(|row| queries::get(&row, 0, "record verdict"))?;
        if speaks_for_node {
            // The update locks the node's row and returns its status: the change_status
            // read without a statement of its own.
            let old = self
                .conn()
                .query_opt(
                    "UPDATE nodes SET last_verdict = $2, last_seen = $3 WHERE node_id = $1
                     RETURNING status",
                    &[&node_id, &verdict, &verified_at],
                )
                .map_err(db("update node verdict"))?;
            if let Some(row) = old {
                let old: String = queries::get(&row, 0, "read node status")?;
                let new_status = if verdict == "pass" {
                    STATUS_TRUSTED
                } else {
                    STATUS_UNTRUSTED
                };
                self.change_status_from(
                    node_id,
                    &old,
                    new_status,
                    &format!("verdict {verdict}"),
                    verified_at,
                    &result_json,
                )?;
            }
        }
        let mut body = body_prefix;
        body.extend_from_slice(format!(",\"verdict_id\":{id}}}").as_bytes());
        let encoding = AuditEntry::encode_parts("verdict", verified_at, node_id, &body)
            .map_err(vigil_audit::AuditError::from)?;
        self.append_encoded("verdict", verified_at, node_id, &encoding)?;
        Ok(id)
    }

    /// See [`PgStore::put_baseline`]. The version is chosen under the log lock, so two
    /// replicas storing versions of one name at once get consecutive numbers.
    pub fn put_baseline(&mut self, new: &NewBaseline<'_>) -> Result<StoredBaseline, PgStoreError> {
        self.lock_log()?;
        if let Some(latest) = queries::baseline(&mut self.conn(), new.name, None)?
            && latest.sha256 == new.sha256
        {
            return Ok(latest);
        }
        let version: i64 = self
            .conn()
            .query_one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM baselines WHERE name = $1",
                &[&new.name],
            )
            .map_err(db("next baseline version"))
            .and_then(|row| queries::get(&row, 0, "next baseline version"))?;
        self.conn()
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
        let body_digest = audit::put_blob_cached(&mut self.conn(), new.body.as_bytes())?;
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
        queries::baseline(&mut self.conn(), new.name, Some(version))?.ok_or_else(|| {
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
        let Some(latest) = queries::baseline(&mut self.conn(), name, None)? else {
            return Err(PgStoreError::NotFound(format!(
                "no baseline named {name:?}"
            )));
        };
        self.conn()
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

/// Fills in `verdicts.evidence` for verdicts recorded without it (rows copied from an older
/// SQLite database) from their audit entries, as the SQLite store does before a prune.
/// Verdicts without one stay NULL: never pruned.
fn backfill_verdict_evidence(c: &mut impl postgres::GenericClient) -> Result<(), PgStoreError> {
    let row = c
        .query_one("SELECT COUNT(*) FROM verdicts WHERE evidence IS NULL", &[])
        .map_err(db("count verdicts without evidence"))?;
    let missing: i64 = queries::get(&row, 0, "count verdicts without evidence")?;
    if missing == 0 {
        return Ok(());
    }
    let size = audit::tree_size(c)?;
    for stored in audit::read_entries(c, 0, size)? {
        let Some((id, digest)) = stored.entry.verdict_evidence() else {
            continue;
        };
        c.execute(
            "UPDATE verdicts SET evidence = $2 WHERE id = $1 AND evidence IS NULL",
            &[&id, &digest],
        )
        .map_err(db("backfill verdict evidence"))?;
    }
    Ok(())
}
