//! The verifier's embedded SQLite store: nodes and their AKs, nonces, and the verdict history.
//!
//! Durability first: WAL with `synchronous=FULL`, so a write that returned is on disk
//! before the RPC that caused it is answered. The schema is versioned with
//! `PRAGMA user_version`; each migration runs once, in order, in a transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// Errors from the store; they name the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {operation}: {source}")]
    Sqlite {
        operation: &'static str,
        source: rusqlite::Error,
    },
    #[error("database schema version {found} is newer than this build understands ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error("audit log: {0}")]
    Audit(#[from] vigil_audit::AuditError),
    #[error("audit signing key: {reason}")]
    AuditKey { reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error(
        "{path} is in use by another `vigil serve` (its lock {lock} is held): one server per database file"
    )]
    InUse { path: String, lock: String },
    #[error("{path}: {reason}")]
    Lock { path: String, reason: String },
    /// The transaction carrying a group of writes did not begin or commit: none of them is
    /// recorded, and none was acknowledged.
    #[error("database commit failed, the write is not recorded: {reason}")]
    Commit { reason: String },
    /// From the PostgreSQL engine (vigil-pgstore's message names the operation).
    #[error("{0}")]
    Postgres(String),
}

/// An exclusive claim on a database file for one server process, held until dropped. Two
/// servers appending to one embedded database would each sign checkpoints over their own
/// view of the audit log; the second one refuses to start instead.
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

/// Takes the server lock of the database at `db` (`<db>.lock`, an advisory `flock` the
/// kernel releases when the process dies, so a crash never leaves a stale lock).
pub fn lock_for_serving(db: &Path) -> Result<ServerLock, StoreError> {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    let lock_path = db.with_file_name(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Lock {
            path: lock_path.display().to_string(),
            reason: e.to_string(),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(ServerLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: db.display().to_string(),
            lock: lock_path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Lock {
            path: lock_path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn db(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { operation, source }
}

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: nodes with their trusted AK, single-use nonces, verdict history.
    "CREATE TABLE nodes (
        node_id      TEXT PRIMARY KEY,
        ak_public    BLOB NOT NULL,
        ak_name      BLOB NOT NULL,
        ak_trust     TEXT NOT NULL,
        address      TEXT,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        last_verdict TEXT
     );
     CREATE TABLE nonces (
        nonce        BLOB PRIMARY KEY,
        node_id      TEXT NOT NULL,
        issued_at    INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        used_at      INTEGER
     );
     CREATE INDEX nonces_expiry ON nonces(expires_at);
     CREATE TABLE verdicts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id      TEXT NOT NULL,
        nonce        BLOB NOT NULL,
        verified_at  INTEGER NOT NULL,
        verdict      TEXT NOT NULL,
        result_json  TEXT NOT NULL
     );
     CREATE INDEX verdicts_node ON verdicts(node_id, id);",
    // 2: EK-rooted registration: the EK the AK was proven against, and the node's group.
    "ALTER TABLE nodes ADD COLUMN ek_public BLOB;
     ALTER TABLE nodes ADD COLUMN ek_certificate BLOB;
     ALTER TABLE nodes ADD COLUMN node_group TEXT NOT NULL DEFAULT 'default';
     ALTER TABLE nodes ADD COLUMN registered_at INTEGER;",
    // 3: node status and the ordered, resumable stream of its changes (Verifier.Watch).
    "ALTER TABLE nodes ADD COLUMN status TEXT NOT NULL DEFAULT 'unknown';
     CREATE TABLE status_changes (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id      TEXT NOT NULL,
        old_status   TEXT NOT NULL,
        new_status   TEXT NOT NULL,
        reason       TEXT NOT NULL,
        time         INTEGER NOT NULL,
        result_json  TEXT NOT NULL
     );",
    // 4: baselines, one immutable row per version, and which baseline each node group uses.
    "CREATE TABLE baselines (
        name         TEXT NOT NULL,
        version      INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        body         TEXT NOT NULL,
        author       TEXT NOT NULL,
        reason       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        signed_by    TEXT,
        rules        INTEGER NOT NULL,
        PRIMARY KEY (name, version)
     );
     CREATE TABLE group_baselines (
        node_group   TEXT PRIMARY KEY,
        baseline     TEXT NOT NULL,
        assigned_at  INTEGER NOT NULL,
        author       TEXT NOT NULL,
        reason       TEXT NOT NULL
     );",
    // 5: the device identities of a node's GPUs, from its last passing verdict.
    "ALTER TABLE nodes ADD COLUMN gpu_identities TEXT NOT NULL DEFAULT '[]';",
    // IMA: per node, the verified prefix of this boot's list (incremental attestation).
    "CREATE TABLE ima_state (
        node_id     TEXT PRIMARY KEY,
        baseline    TEXT NOT NULL,
        state_json  TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
     );",
    // 7: evidence retention. Each verdict names its evidence blob (older rows are filled in
    // from the audit log at the first prune); pruned blobs are remembered, so a re-appraisal
    // can tell evidence pruned by the retention policy from evidence that went missing.
    "ALTER TABLE verdicts ADD COLUMN evidence TEXT;
     CREATE INDEX verdicts_time ON verdicts(verified_at);
     CREATE INDEX verdicts_evidence ON verdicts(evidence, verified_at);
     CREATE TABLE pruned_evidence (
        digest       TEXT PRIMARY KEY,
        pruned_at    INTEGER NOT NULL,
        cutoff       INTEGER NOT NULL,
        audit_index  INTEGER NOT NULL
     );",
];

/// Audit entry kind of one evidence prune (`vigil serve --retain-evidence`).
pub const KIND_EVIDENCE_PRUNED: &str = "evidence.pruned";

/// What one evidence prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Evidence blobs deleted (distinct digests).
    pub pruned: usize,
    /// Verdicts older than the cutoff whose blob was kept: a newer verdict has identical
    /// evidence.
    pub kept_shared: usize,
    /// The audit entry recording the prune (none when nothing was pruned).
    pub audit_index: Option<u64>,
}

/// When and by which audit entry an evidence blob was pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedEvidence {
    pub pruned_at: i64,
    pub cutoff: i64,
    pub audit_index: u64,
}

/// Was the evidence blob `digest` pruned by the retention policy? (None: it never was, or the
/// database predates retention.)
pub fn pruned_evidence(
    conn: &Connection,
    digest: &str,
) -> Result<Option<PrunedEvidence>, StoreError> {
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pruned_evidence')",
            [],
            |r| r.get(0),
        )
        .map_err(db("look for pruned evidence"))?;
    if !has_table {
        return Ok(None);
    }
    conn.query_row(
        "SELECT pruned_at, cutoff, audit_index FROM pruned_evidence WHERE digest = ?1",
        [digest],
        |r| {
            Ok(PrunedEvidence {
                pruned_at: r.get(0)?,
                cutoff: r.get(1)?,
                audit_index: r.get::<_, i64>(2)? as u64,
            })
        },
    )
    .optional()
    .map_err(db("read pruned evidence"))
}

/// The store's records, one definition for both engines (SQLite here, PostgreSQL in
/// vigil-pgstore): a node, a nonce, a verdict, a status change (in the order they happened).
pub use vigil_pgstore::{NodeRecord, NonceRecord, StatusChange, VerdictRecord};

/// A node's status as orchestrators see it.
pub const STATUS_TRUSTED: &str = "trusted";
pub const STATUS_UNTRUSTED: &str = "untrusted";
pub const STATUS_UNKNOWN: &str = "unknown";

/// Records a status change for `node_id` if its status differs from `new_status`.
fn change_status(
    tx: &Connection,
    node_id: &str,
    new_status: &str,
    reason: &str,
    time: i64,
    result_json: &str,
) -> Result<(), StoreError> {
    let old: Option<String> = tx
        .query_row(
            "SELECT status FROM nodes WHERE node_id = ?1",
            params![node_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("read node status"))?;
    let Some(old) = old else {
        return Ok(());
    };
    if old == new_status {
        return Ok(());
    }
    tx.execute(
        "UPDATE nodes SET status = ?2 WHERE node_id = ?1",
        params![node_id, new_status],
    )
    .map_err(db("update node status"))?;
    tx.execute(
        "INSERT INTO status_changes (node_id, old_status, new_status, reason, time, result_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![node_id, old, new_status, reason, time, result_json],
    )
    .map_err(db("record status change"))?;
    Ok(())
}

const NODE_COLUMNS: &str = "node_id, ak_public, ak_name, ak_trust, address, first_seen, last_seen, \
     last_verdict, ek_public, ek_certificate, node_group, registered_at, status";

fn node_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRecord> {
    Ok(NodeRecord {
        node_id: row.get(0)?,
        ak_public: row.get(1)?,
        ak_name: row.get(2)?,
        ak_trust: row.get(3)?,
        address: row.get(4)?,
        first_seen: row.get(5)?,
        last_seen: row.get(6)?,
        last_verdict: row.get(7)?,
        ek_public: row.get(8)?,
        ek_certificate: row.get(9)?,
        group: row.get(10)?,
        registered_at: row.get(11)?,
        status: row.get(12)?,
    })
}

/// Inserts `node` unless a node with its id exists; returns the rows inserted (0 or 1).
fn insert_node_row(connection: &Connection, node: &NodeRecord) -> Result<usize, StoreError> {
    connection
        .execute(
            &format!(
                "INSERT OR IGNORE INTO nodes ({NODE_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            params![
                node.node_id,
                node.ak_public,
                node.ak_name,
                node.ak_trust,
                node.address,
                node.first_seen,
                node.last_seen,
                node.last_verdict,
                node.ek_public,
                node.ek_certificate,
                node.group,
                node.registered_at,
                node.status
            ],
        )
        .map_err(db("record node"))
}

/// A `verdicts` row selected as `id, node_id, nonce, verified_at, verdict, result_json`.
pub(crate) fn verdict_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VerdictRecord> {
    Ok(VerdictRecord {
        id: row.get(0)?,
        node_id: row.get(1)?,
        nonce: row.get(2)?,
        verified_at: row.get(3)?,
        verdict: row.get(4)?,
        result_json: row.get(5)?,
    })
}

/// A verdict with everything that does not need the database done beforehand: the result as
/// JSON text, the evidence digest, and the audit entry's canonical body. The body is a JSON
/// object whose last member, in canonical (sorted) order, is `verdict_id`, which only the
/// insert knows; it is appended to the prepared prefix then.
pub struct PreparedVerdict {
    node_id: String,
    nonce: Vec<u8>,
    verified_at: i64,
    verdict: String,
    result_json: String,
    evidence: Vec<u8>,
    evidence_digest: String,
    speaks_for_node: bool,
    /// Canonical JSON of the audit body without `verdict_id`, less its closing brace.
    body_prefix: Vec<u8>,
}

impl PreparedVerdict {
    pub fn node_id(&self) -> &str {
        &self.node_id
    }
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }
    pub fn verified_at(&self) -> i64 {
        self.verified_at
    }
    pub fn verdict(&self) -> &str {
        &self.verdict
    }
    pub fn result_json(&self) -> &str {
        &self.result_json
    }
    pub fn evidence(&self) -> &[u8] {
        &self.evidence
    }
    pub fn speaks_for_node(&self) -> bool {
        self.speaks_for_node
    }

    /// Serialises `result` and encodes the audit body (`claimed_identity`, `evidence`,
    /// `nonce`, `result`, `verdict`; `verdict_id` comes at recording).
    pub fn new(
        node_id: &str,
        nonce: &[u8],
        verified_at: i64,
        verdict: &str,
        result: serde_json::Value,
        evidence: Vec<u8>,
        speaks_for_node: bool,
    ) -> Result<Self, StoreError> {
        let result_json = serde_json::to_string(&result).map_err(|e| StoreError::Commit {
            reason: format!("the result does not serialise: {e}"),
        })?;
        let evidence_digest = vigil_audit::blob_digest(&evidence);
        let body = serde_json::json!({
            "verdict": verdict,
            "nonce": hex::encode(nonce),
            "evidence": format!("sha256:{evidence_digest}"),
            "claimed_identity": !speaks_for_node,
            "result": result,
        });
        let mut body_prefix =
            vigil_audit::entry::canonical_json(&body).map_err(vigil_audit::AuditError::from)?;
        // Canonical JSON of an object ends with its closing brace.
        body_prefix.pop();
        Ok(PreparedVerdict {
            node_id: node_id.to_owned(),
            nonce: nonce.to_vec(),
            verified_at,
            verdict: verdict.to_owned(),
            result_json,
            evidence,
            evidence_digest,
            speaks_for_node,
            body_prefix,
        })
    }

    /// The canonical audit body with `verdict_id` (sorted last: "verdict" < "verdict_id").
    fn body_with_id(&self, id: i64) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.body_prefix.len() + 24);
        body.extend_from_slice(&self.body_prefix);
        body.extend_from_slice(format!(",\"verdict_id\":{id}}}").as_bytes());
        body
    }
}

pub struct Store {
    pub(crate) connection: Connection,
    pub(crate) audit_key: std::sync::Arc<vigil_audit::AuditSigningKey>,
    /// The database file (`None` in memory), so more connections can read it.
    path: Option<std::path::PathBuf>,
}

/// Name of this verifier's audit log in checkpoints, and of its signing key.
pub const AUDIT_ORIGIN: &str = "vigil-verifier";

/// Where the audit signing key of the database at `db` is kept.
pub fn audit_key_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".audit-key");
    db.with_file_name(name)
}

/// Loads the Ed25519 audit key at `path` (beside the database, or `--audit-key`), creating
/// it (mode 0600) on first use; `None` makes a throwaway key (in-memory stores).
pub fn load_or_create_audit_key(
    path: Option<&Path>,
) -> Result<vigil_audit::AuditSigningKey, StoreError> {
    let key_error = |reason: String| StoreError::AuditKey { reason };
    let pkcs8 = match path {
        Some(path) if path.exists() => {
            std::fs::read(path).map_err(|e| key_error(format!("{}: {e}", path.display())))?
        }
        Some(path) => {
            let pkcs8 = vigil_audit::generate_key().map_err(|e| key_error(e.to_string()))?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
            file.write_all(&pkcs8)
                .and_then(|()| file.sync_all())
                .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
            pkcs8
        }
        None => vigil_audit::generate_key().map_err(|e| key_error(e.to_string()))?,
    };
    vigil_audit::load_key(AUDIT_ORIGIN, &pkcs8).map_err(|e| key_error(e.to_string()))
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(db("open"))?;
        let mut store = Self::prepare(connection, Some(&audit_key_path(path)))?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// Another connection to the database at `path`, for reading only (`query_only`: a
    /// write through it is an error, not a second writer). WAL lets it read beside the writer.
    pub fn open_reader(
        path: &Path,
        audit_key: std::sync::Arc<vigil_audit::AuditSigningKey>,
    ) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(db("open reader"))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db("set busy timeout"))?;
        connection
            .pragma_update(None, "query_only", true)
            .map_err(db("set query_only"))?;
        Ok(Store {
            connection,
            audit_key,
            path: Some(path.to_path_buf()),
        })
    }

    /// The database file, `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The audit signing key, shared with read connections (which only publish its public half).
    pub fn shared_audit_key(&self) -> std::sync::Arc<vigil_audit::AuditSigningKey> {
        std::sync::Arc::clone(&self.audit_key)
    }

    /// An in-memory store, for tests and offline one-shot checks.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::prepare(
            Connection::open_in_memory().map_err(db("open in memory"))?,
            None,
        )
    }

    fn prepare(mut connection: Connection, audit_key: Option<&Path>) -> Result<Self, StoreError> {
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(db("enable WAL"))?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db("set synchronous=FULL"))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db("set busy timeout"))?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db("read schema version"))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                found: version,
                supported,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = connection.savepoint().map_err(db("begin migration"))?;
            tx.execute_batch(migration).map_err(db("migrate schema"))?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(db("record schema version"))?;
            tx.commit().map_err(db("commit migration"))?;
        }
        vigil_audit::migrate(&connection)?;
        let audit_key = load_or_create_audit_key(audit_key)?;
        Ok(Store {
            connection,
            audit_key: std::sync::Arc::new(audit_key),
            path: None,
        })
    }

    /// The key that signs this store's audit checkpoints.
    pub fn audit_public_key(&self) -> vigil_audit::AuditPublicKey {
        self.audit_key.public_key()
    }

    /// The connection, for reading the audit log.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Appends `entry` (and `blobs`) to the audit log inside `tx` and signs a checkpoint, so
    /// every acknowledged change is covered by a signed tree head.
    pub(crate) fn audit(
        tx: &Connection,
        key: &vigil_audit::AuditSigningKey,
        entry: &vigil_audit::AuditEntry,
    ) -> Result<u64, StoreError> {
        let receipt = vigil_audit::append(tx, entry)?;
        vigil_audit::checkpoint(tx, key, AUDIT_ORIGIN, entry.time)?;
        Ok(receipt.index)
    }

    /// Records an audit entry on its own (registrations, removals).
    pub fn record_event(&mut self, entry: &vigil_audit::AuditEntry) -> Result<u64, StoreError> {
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin audit entry"))?;
        let index = Self::audit(&tx, &self.audit_key, entry)?;
        tx.commit().map_err(db("commit audit entry"))?;
        Ok(index)
    }

    pub fn insert_nonce(
        &self,
        nonce: &[u8],
        node_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.connection
            .execute(
                "INSERT INTO nonces (nonce, node_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![nonce, node_id, issued_at, expires_at],
            )
            .map_err(db("store nonce"))?;
        Ok(())
    }

    /// Marks the nonce used if, and only if, it is unused and unexpired at `now`; returns
    /// the record as it was before, so the caller can say why a nonce was refused.
    /// The check and the mark are one statement: two concurrent uses cannot both win.
    pub fn consume_nonce(
        &self,
        nonce: &[u8],
        node_id: &str,
        now: i64,
    ) -> Result<(bool, Option<NonceRecord>), StoreError> {
        let before = self
            .connection
            .query_row(
                "SELECT node_id, issued_at, expires_at, used_at FROM nonces WHERE nonce = ?1",
                params![nonce],
                |row| {
                    Ok(NonceRecord {
                        node_id: row.get(0)?,
                        issued_at: row.get(1)?,
                        expires_at: row.get(2)?,
                        used_at: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db("look up nonce"))?;
        let changed = self
            .connection
            .execute(
                "UPDATE nonces SET used_at = ?3
                 WHERE nonce = ?1 AND node_id = ?2 AND used_at IS NULL AND expires_at > ?3",
                params![nonce, node_id, now],
            )
            .map_err(db("consume nonce"))?;
        Ok((changed == 1, before))
    }

    /// Forgets nonces that expired before `cutoff` (used ones are kept until then too,
    /// so a replay inside the window is still recognised as a replay).
    pub fn prune_nonces(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.connection
            .execute("DELETE FROM nonces WHERE expires_at < ?1", params![cutoff])
            .map_err(db("prune nonces"))
    }

    pub fn node(&self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.connection
            .query_row(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = ?1"),
                params![node_id],
                node_from_row,
            )
            .optional()
            .map_err(db("look up node"))
    }

    pub fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare(&format!(
                "SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"
            ))
            .map_err(db("prepare node list"))?;
        let rows = statement
            .query_map([], node_from_row)
            .map_err(db("list nodes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read node row"))
    }

    /// Records a node's AK on first contact. Fails (returns false) if the node exists.
    pub fn insert_node(&self, node: &NodeRecord) -> Result<bool, StoreError> {
        Ok(insert_node_row(&self.connection, node)? == 1)
    }

    /// Replaces a node's record (registration over a trust-on-first-use record) and records
    /// `entry` in the audit log, in one transaction.
    pub fn replace_node(
        &mut self,
        node: &NodeRecord,
        entry: &vigil_audit::AuditEntry,
    ) -> Result<(), StoreError> {
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin node replace"))?;
        tx.execute(
            "DELETE FROM nodes WHERE node_id = ?1",
            params![node.node_id],
        )
        .map_err(db("remove old node record"))?;
        // A (re-)registered node starts its IMA state afresh: nothing verified under another
        // identity is continued.
        tx.execute(
            "DELETE FROM ima_state WHERE node_id = ?1",
            params![node.node_id],
        )
        .map_err(db("reset IMA state"))?;
        insert_node_row(&tx, node)?;
        Self::audit(&tx, &self.audit_key, entry)?;
        tx.commit().map_err(db("commit node replace"))
    }

    /// Forgets a node (its verdict history stays) and records that in the audit log, in one
    /// transaction. Returns false if there was none.
    pub fn remove_node(&mut self, node_id: &str, time: i64) -> Result<bool, StoreError> {
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin node removal"))?;
        let changed = tx
            .execute("DELETE FROM nodes WHERE node_id = ?1", params![node_id])
            .map_err(db("remove node"))?;
        tx.execute("DELETE FROM ima_state WHERE node_id = ?1", params![node_id])
            .map_err(db("remove node's IMA state"))?;
        if changed == 1 {
            let entry = vigil_audit::AuditEntry {
                kind: "node.removed".to_owned(),
                time,
                subject: node_id.to_owned(),
                body: serde_json::json!({}),
            };
            Self::audit(&tx, &self.audit_key, &entry)?;
        }
        tx.commit().map_err(db("commit node removal"))?;
        Ok(changed == 1)
    }

    /// Appends a verdict to the history, the audit log (with the evidence stored
    /// content-addressed) and, when it `speaks_for_node`, the node's last verdict and status,
    /// in one transaction. A verdict on evidence that only claims the node's identity is kept
    /// and audited but does not change the node.
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
    ) -> Result<i64, StoreError> {
        let result: serde_json::Value =
            serde_json::from_str(result_json).unwrap_or(serde_json::Value::Null);
        let prepared = PreparedVerdict::new(
            node_id,
            nonce,
            verified_at,
            verdict,
            result,
            evidence.to_vec(),
            speaks_for_node,
        )?;
        self.record_prepared_verdict(&prepared)
    }

    /// Records a verdict prepared by [`PreparedVerdict::new`]: only inserts, the audit append
    /// and its checkpoint remain, so the writer spends its time on the database alone.
    pub fn record_prepared_verdict(
        &mut self,
        verdict: &PreparedVerdict,
    ) -> Result<i64, StoreError> {
        let tx = self.connection.savepoint().map_err(db("begin verdict"))?;
        tx.execute(
            "INSERT INTO verdicts (node_id, nonce, verified_at, verdict, result_json)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                verdict.node_id,
                verdict.nonce,
                verdict.verified_at,
                verdict.verdict,
                verdict.result_json
            ],
        )
        .map_err(db("record verdict"))?;
        let id = tx.last_insert_rowid();
        if verdict.speaks_for_node {
            tx.execute(
                "UPDATE nodes SET last_verdict = ?2, last_seen = ?3 WHERE node_id = ?1",
                params![verdict.node_id, verdict.verdict, verdict.verified_at],
            )
            .map_err(db("update node verdict"))?;
            let new_status = if verdict.verdict == "pass" {
                STATUS_TRUSTED
            } else {
                STATUS_UNTRUSTED
            };
            change_status(
                &tx,
                &verdict.node_id,
                new_status,
                &format!("verdict {}", verdict.verdict),
                verdict.verified_at,
                &verdict.result_json,
            )?;
        }
        vigil_audit::put_blob(&tx, &verdict.evidence)?;
        tx.execute(
            "UPDATE verdicts SET evidence = ?2 WHERE id = ?1",
            params![id, verdict.evidence_digest],
        )
        .map_err(db("record verdict evidence"))?;
        let encoding = vigil_audit::AuditEntry::encode_parts(
            "verdict",
            verdict.verified_at,
            &verdict.node_id,
            &verdict.body_with_id(id),
        )
        .map_err(vigil_audit::AuditError::from)?;
        vigil_audit::append_encoded(
            &tx,
            "verdict",
            verdict.verified_at,
            &verdict.node_id,
            &encoding,
        )?;
        vigil_audit::checkpoint(&tx, &self.audit_key, AUDIT_ORIGIN, verdict.verified_at)?;
        tx.commit().map_err(db("commit verdict"))?;
        Ok(id)
    }

    /// Deletes the stored evidence of every verdict recorded before `cutoff` (Unix seconds),
    /// except blobs a verdict at or after `cutoff` still references (identical evidence is
    /// one blob), in one transaction. The audit entries are not touched: they keep the
    /// evidence digest, and the log still verifies. Each pruned digest is remembered, and the
    /// prune itself is appended to the audit log (`evidence.pruned`: cutoff, count and the
    /// SHA-256 of the sorted digests), so `audit reappraise` can say the evidence was pruned.
    pub fn prune_evidence(&mut self, cutoff: i64, now: i64) -> Result<PruneReport, StoreError> {
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin evidence prune"))?;
        backfill_verdict_evidence(&tx)?;
        let old_digests = |newer: bool| -> Result<Vec<String>, StoreError> {
            let sql = if newer {
                "SELECT DISTINCT v.evidence FROM verdicts v
                 WHERE v.verified_at < ?1 AND v.evidence IS NOT NULL
                   AND EXISTS (SELECT 1 FROM verdicts n
                               WHERE n.evidence = v.evidence AND n.verified_at >= ?1)
                 ORDER BY v.evidence"
            } else {
                "SELECT DISTINCT v.evidence FROM verdicts v
                 WHERE v.verified_at < ?1 AND v.evidence IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM verdicts n
                                   WHERE n.evidence = v.evidence AND n.verified_at >= ?1)
                   AND EXISTS (SELECT 1 FROM audit_blob b WHERE b.digest = v.evidence)
                 ORDER BY v.evidence"
            };
            let mut statement = tx.prepare(sql).map_err(db("prepare evidence prune"))?;
            let rows = statement
                .query_map([cutoff], |r| r.get::<_, String>(0))
                .map_err(db("select evidence to prune"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(db("read evidence to prune"))
        };
        let kept_shared = old_digests(true)?.len();
        let digests = old_digests(false)?;
        if digests.is_empty() {
            tx.commit().map_err(db("commit evidence prune"))?;
            return Ok(PruneReport {
                pruned: 0,
                kept_shared,
                audit_index: None,
            });
        }
        let listing: String = digests.iter().map(|d| format!("{d}\n")).collect();
        let entry = vigil_audit::AuditEntry {
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
        };
        let audit_index = Self::audit(&tx, &self.audit_key, &entry)?;
        for digest in &digests {
            vigil_audit::blob::delete_blob(&tx, digest)?;
            tx.execute(
                "INSERT OR REPLACE INTO pruned_evidence (digest, pruned_at, cutoff, audit_index)
                 VALUES (?1, ?2, ?3, ?4)",
                params![digest, now, cutoff, audit_index as i64],
            )
            .map_err(db("record pruned evidence"))?;
        }
        tx.commit().map_err(db("commit evidence prune"))?;
        Ok(PruneReport {
            pruned: digests.len(),
            kept_shared,
            audit_index: Some(audit_index),
        })
    }

    /// Recorded verdicts, oldest first; only `node_id`'s when given.
    pub fn verdicts(&self, node_id: Option<&str>) -> Result<Vec<VerdictRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT id, node_id, nonce, verified_at, verdict, result_json FROM verdicts
                 WHERE ?1 IS NULL OR node_id = ?1 ORDER BY id",
            )
            .map_err(db("prepare verdict query"))?;
        let rows = statement
            .query_map(params![node_id], verdict_from_row)
            .map_err(db("query verdicts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read verdict row"))
    }

    /// Marks a node `unknown` (missed its attestation window, or unreachable).
    pub fn mark_unknown(
        &mut self,
        node_id: &str,
        reason: &str,
        time: i64,
    ) -> Result<(), StoreError> {
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin status change"))?;
        change_status(&tx, node_id, STATUS_UNKNOWN, reason, time, "null")?;
        tx.commit().map_err(db("commit status change"))
    }

    /// Status changes with `seq >= from`, oldest first, at most `limit`.
    pub fn status_changes(&self, from: i64, limit: i64) -> Result<Vec<StatusChange>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, node_id, old_status, new_status, reason, time, result_json
                 FROM status_changes WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(db("prepare status changes"))?;
        let rows = statement
            .query_map(params![from, limit], |r| {
                Ok(StatusChange {
                    seq: r.get(0)?,
                    node_id: r.get(1)?,
                    old_status: r.get(2)?,
                    new_status: r.get(3)?,
                    reason: r.get(4)?,
                    time: r.get(5)?,
                    result_json: r.get(6)?,
                })
            })
            .map_err(db("read status changes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read status change row"))
    }

    /// The node's stored IMA state and the baseline (`name@version`, or empty) it was
    /// appraised under.
    pub fn ima_state(
        &self,
        node_id: &str,
    ) -> Result<Option<(String, crate::evidence::ima::ImaStart)>, StoreError> {
        let row: Option<(String, String)> = self
            .connection
            .query_row(
                "SELECT baseline, state_json FROM ima_state WHERE node_id = ?1",
                params![node_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db("read IMA state"))?;
        // A state that no longer decodes is dropped: the next attestation sends the whole list.
        Ok(row.and_then(|(baseline, json)| {
            serde_json::from_str(&json)
                .ok()
                .map(|state| (baseline, state))
        }))
    }

    /// Keeps `state` as the node's verified IMA prefix under `baseline`.
    pub fn put_ima_state(
        &self,
        node_id: &str,
        baseline: &str,
        state: &crate::evidence::ima::ImaStart,
        now: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(|e| {
            StoreError::NotFound(format!("IMA state of {node_id} does not serialise: {e}"))
        })?;
        self.connection
            .execute(
                "INSERT INTO ima_state (node_id, baseline, state_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node_id) DO UPDATE SET baseline = ?2, state_json = ?3, updated_at = ?4",
                params![node_id, baseline, json, now],
            )
            .map_err(db("record IMA state"))?;
        Ok(())
    }

    /// Forgets the node's IMA state: its next attestation sends the whole list.
    pub fn delete_ima_state(&self, node_id: &str) -> Result<(), StoreError> {
        self.connection
            .execute("DELETE FROM ima_state WHERE node_id = ?1", params![node_id])
            .map_err(db("delete IMA state"))?;
        Ok(())
    }

    /// Records the GPUs a node proved (JSON list), from a passing verdict.
    pub fn set_gpu_identities(&self, node_id: &str, identities: &str) -> Result<(), StoreError> {
        self.connection
            .execute(
                "UPDATE nodes SET gpu_identities = ?2 WHERE node_id = ?1",
                params![node_id, identities],
            )
            .map_err(db("record GPU identities"))?;
        Ok(())
    }

    /// The GPUs a node last proved (JSON list; `[]` when none or unknown node).
    pub fn gpu_identities(&self, node_id: &str) -> Result<String, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT gpu_identities FROM nodes WHERE node_id = ?1",
                params![node_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("read GPU identities"))?
            .unwrap_or_else(|| "[]".to_owned()))
    }

    pub fn latest_status_seq(&self) -> Result<i64, StoreError> {
        self.connection
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM status_changes",
                [],
                |row| row.get(0),
            )
            .map_err(db("read latest status change"))
    }

    /// The newest `limit` verdicts (only `node_id`'s when given), newest first.
    pub fn recent_verdicts(
        &self,
        node_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT id, node_id, nonce, verified_at, verdict, result_json FROM verdicts
                 WHERE ?1 IS NULL OR node_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(db("query recent verdicts"))?;
        let rows = statement
            .query_map(params![node_id, limit], verdict_from_row)
            .map_err(db("query recent verdicts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read verdict row"))
    }

    pub fn verdict_count(&self) -> Result<i64, StoreError> {
        self.connection
            .query_row("SELECT COUNT(*) FROM verdicts", [], |row| row.get(0))
            .map_err(db("count verdicts"))
    }
}

/// Fills in `verdicts.evidence` for verdicts recorded before the column existed, from their
/// audit entries (`verdict_id` -> `evidence`). Verdicts without one stay NULL: never pruned.
fn backfill_verdict_evidence(tx: &Connection) -> Result<(), StoreError> {
    let missing: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM verdicts WHERE evidence IS NULL",
            [],
            |r| r.get(0),
        )
        .map_err(db("count verdicts without evidence"))?;
    if missing == 0 {
        return Ok(());
    }
    let size = vigil_audit::tree_size(tx)?;
    for stored in vigil_audit::read_entries(tx, 0, size)? {
        let Some((id, digest)) = stored.entry.verdict_evidence() else {
            continue;
        };
        tx.execute(
            "UPDATE verdicts SET evidence = ?2 WHERE id = ?1 AND evidence IS NULL",
            params![id, digest],
        )
        .map_err(db("backfill verdict evidence"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_lock_on_one_database_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("vigil-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("vigil.db");
        let first = lock_for_serving(&db).unwrap();
        let refused = lock_for_serving(&db).unwrap_err();
        assert!(matches!(refused, StoreError::InUse { .. }), "{refused}");
        assert!(refused.to_string().contains("vigil.db"), "{refused}");
        drop(first);
        lock_for_serving(&db).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_prepared_verdict_is_audited_exactly_as_the_whole_entry_would_encode() {
        let mut store = Store::in_memory().unwrap();
        let result = serde_json::json!({"status": "affirming", "claims": ["a\"b", {"z": 1, "a": [true, null]}]});
        let prepared = PreparedVerdict::new(
            "node-1",
            &[9; 32],
            1_700_000_000,
            "pass",
            result.clone(),
            b"evidence".to_vec(),
            true,
        )
        .unwrap();
        let id = store.record_prepared_verdict(&prepared).unwrap();
        let stored = vigil_audit::get_entry(&store.connection, 0)
            .unwrap()
            .unwrap();
        let expected = vigil_audit::AuditEntry {
            kind: "verdict".to_owned(),
            time: 1_700_000_000,
            subject: "node-1".to_owned(),
            body: serde_json::json!({
                "verdict": "pass",
                "verdict_id": id,
                "nonce": hex::encode([9u8; 32]),
                "evidence": format!("sha256:{}", vigil_audit::blob_digest(b"evidence")),
                "claimed_identity": false,
                "result": result,
            }),
        };
        assert_eq!(stored.entry, expected);
        assert_eq!(
            stored.leaf_hash,
            vigil_audit::merkle::leaf_hash(&expected.encode().unwrap())
        );
        vigil_audit::verify_log(&store.connection, &[store.audit_public_key()]).unwrap();
    }

    fn verdict(store: &mut Store, node: &str, time: i64, evidence: &[u8]) {
        store
            .record_verdict(node, &[time as u8; 4], time, "pass", "{}", evidence, true)
            .unwrap();
    }

    fn blob_of(store: &Store, evidence: &[u8]) -> Option<Vec<u8>> {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(evidence));
        vigil_audit::get_blob(&store.connection, &digest).unwrap()
    }

    fn entry_encodings(store: &Store) -> Vec<Vec<u8>> {
        let mut statement = store
            .connection
            .prepare("SELECT encoding FROM audit_entry ORDER BY idx")
            .unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn evidence_older_than_the_cutoff_is_pruned_unless_a_newer_verdict_shares_it() {
        let mut store = Store::in_memory().unwrap();
        verdict(&mut store, "a", 100, b"evidence shared");
        verdict(&mut store, "a", 200, b"evidence old");
        verdict(&mut store, "b", 500, b"evidence shared");
        verdict(&mut store, "b", 600, b"evidence new");
        let before = entry_encodings(&store);

        let report = store.prune_evidence(300, 1000).unwrap();
        assert_eq!(report.pruned, 1, "{report:?}");
        assert_eq!(report.kept_shared, 1, "{report:?}");
        assert_eq!(report.audit_index, Some(4));
        assert_eq!(blob_of(&store, b"evidence old"), None);
        assert!(blob_of(&store, b"evidence shared").is_some());
        assert!(blob_of(&store, b"evidence new").is_some());

        // The audit entries are untouched (one entry added: the prune) and the log verifies.
        let after = entry_encodings(&store);
        assert_eq!(after[..4], before[..]);
        assert_eq!(after.len(), 5);
        let prune = vigil_audit::get_entry(&store.connection, 4)
            .unwrap()
            .unwrap();
        assert_eq!(prune.entry.kind, KIND_EVIDENCE_PRUNED);
        assert_eq!(prune.entry.body["blobs"], 1);
        assert!(prune.entry.blob_refs().is_empty());
        vigil_audit::verify_log(&store.connection, &[store.audit_public_key()]).unwrap();

        // Re-appraisal names the prune instead of a generic "no longer stored".
        let error =
            crate::reappraise::reappraise(&store.connection, 1, &[], None, &Default::default())
                .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("was pruned by the retention policy (--retain-evidence)")
                && message.contains("evidence sha256:")
                && message.contains("audit entry 4"),
            "{message}"
        );
        let old_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"evidence old"));
        assert_eq!(
            pruned_evidence(&store.connection, &old_digest).unwrap(),
            Some(PrunedEvidence {
                pruned_at: 1000,
                cutoff: 300,
                audit_index: 4
            })
        );

        // Nothing more to prune: no new audit entry.
        let again = store.prune_evidence(300, 1001).unwrap();
        assert_eq!((again.pruned, again.audit_index), (0, None));
        assert_eq!(entry_encodings(&store).len(), 5);
    }

    #[test]
    fn evidence_missing_without_a_prune_is_not_reported_as_pruned() {
        let mut store = Store::in_memory().unwrap();
        verdict(&mut store, "a", 100, b"evidence lost");
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"evidence lost"));
        vigil_audit::blob::delete_blob(&store.connection, &digest).unwrap();
        assert_eq!(pruned_evidence(&store.connection, &digest).unwrap(), None);
        let result =
            crate::reappraise::reappraise(&store.connection, 0, &[], None, &Default::default())
                .unwrap();
        assert!(!result.agrees);
        assert!(
            result.differences[0].contains("no longer stored"),
            "{:?}",
            result.differences
        );
    }

    #[test]
    fn verdicts_recorded_before_retention_are_pruned_from_their_audit_entries() {
        let mut store = Store::in_memory().unwrap();
        verdict(&mut store, "a", 100, b"evidence one");
        verdict(&mut store, "a", 900, b"evidence two");
        // As a database from before migration 7 has them: no evidence column value.
        store
            .connection
            .execute("UPDATE verdicts SET evidence = NULL", [])
            .unwrap();
        let report = store.prune_evidence(500, 1000).unwrap();
        assert_eq!(report.pruned, 1, "{report:?}");
        assert_eq!(blob_of(&store, b"evidence one"), None);
        assert!(blob_of(&store, b"evidence two").is_some());
        let unfilled: i64 = store
            .connection
            .query_row(
                "SELECT COUNT(*) FROM verdicts WHERE evidence IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unfilled, 0);
    }

    #[test]
    fn a_nonce_is_consumed_once_only() {
        let store = Store::in_memory().unwrap();
        store.insert_nonce(b"n1", "node-a", 100, 160).unwrap();
        let (first, _) = store.consume_nonce(b"n1", "node-a", 110).unwrap();
        let (second, before) = store.consume_nonce(b"n1", "node-a", 111).unwrap();
        assert!(first);
        assert!(!second);
        assert_eq!(before.unwrap().used_at, Some(110));
    }

    #[test]
    fn expired_foreign_and_unknown_nonces_are_refused() {
        let store = Store::in_memory().unwrap();
        store.insert_nonce(b"n1", "node-a", 100, 160).unwrap();
        assert!(!store.consume_nonce(b"n1", "node-a", 160).unwrap().0);
        store.insert_nonce(b"n2", "node-a", 100, 160).unwrap();
        assert!(!store.consume_nonce(b"n2", "node-b", 110).unwrap().0);
        let (ok, before) = store.consume_nonce(b"n3", "node-a", 110).unwrap();
        assert!(!ok && before.is_none());
    }

    #[test]
    fn schema_survives_reopen_and_refuses_newer_versions() {
        let dir = std::env::temp_dir().join(format!("vigil-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.db");
        {
            let store = Store::open(&path).unwrap();
            store.insert_nonce(b"n", "a", 1, 2).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(store.consume_nonce(b"n", "a", 1).unwrap().0);
        store
            .connection
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(store);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
