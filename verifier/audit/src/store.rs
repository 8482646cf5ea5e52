//! SQLite storage: schema, append, proofs from stored nodes, checkpoints.
//!
//! Every function takes `&rusqlite::Connection`; a `rusqlite::Transaction`
//! derefs to one, so the verifier can record a verdict and append its audit
//! entry atomically. Multi-statement writes run inside a SAVEPOINT: nested
//! in the caller's transaction when there is one (nothing is committed here
//! then), a transaction of their own in autocommit mode.
//!
//! Durability is the caller's: open the database with `journal_mode=WAL` and
//! `synchronous=FULL` (the verifier does), otherwise a committed entry can be
//! lost on power failure and a later append would reuse its index.

use rusqlite::{Connection, OptionalExtension, params};

use crate::entry::AuditEntry;
use crate::error::AuditError;
use crate::merkle::{
    self, ConsistencyProof, Hash, InclusionProof, PerfectNodes, leaf_hash, node_hash,
};
use crate::note::{self, AuditSigningKey, Checkpoint};

/// Schema version written to `audit_schema_version` (not `PRAGMA user_version`,
/// which belongs to the verifier).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE audit_entry (
    idx      INTEGER PRIMARY KEY,
    kind     TEXT    NOT NULL,
    time     INTEGER NOT NULL,
    subject  TEXT    NOT NULL,
    encoding BLOB    NOT NULL
);
CREATE INDEX audit_entry_by_subject ON audit_entry(subject, idx);
-- Perfect-subtree hashes; level 0 holds the leaf hashes.
CREATE TABLE audit_node (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE audit_checkpoint (
    id        INTEGER PRIMARY KEY,
    tree_size INTEGER NOT NULL,
    root      BLOB    NOT NULL,
    time      INTEGER NOT NULL,
    origin    TEXT    NOT NULL,
    note      TEXT    NOT NULL
);
CREATE TABLE audit_blob (
    digest TEXT PRIMARY KEY,
    data   BLOB NOT NULL
);
-- Append-only by construction: the application cannot rewrite history by
-- accident. (Someone with the file can drop these; verify_log catches that.)
CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_node_no_update BEFORE UPDATE ON audit_node BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_node_no_delete BEFORE DELETE ON audit_node BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
";

/// Runs `body` inside a savepoint, rolling back on error.
fn atomically<T>(
    conn: &Connection,
    body: impl FnOnce() -> Result<T, AuditError>,
) -> Result<T, AuditError> {
    conn.execute_batch("SAVEPOINT vigil_audit")?;
    match body() {
        Ok(value) => {
            conn.execute_batch("RELEASE vigil_audit")?;
            Ok(value)
        }
        Err(e) => {
            // Best effort: the original error matters more than a failed rollback.
            let _ = conn.execute_batch("ROLLBACK TO vigil_audit; RELEASE vigil_audit");
            Err(e)
        }
    }
}

/// Creates or upgrades the audit tables. Idempotent.
pub fn migrate(conn: &Connection) -> Result<(), AuditError> {
    atomically(conn, || {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS audit_schema_version (version INTEGER NOT NULL)",
        )?;
        let found: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM audit_schema_version", [], |r| {
                r.get(0)
            })?;
        match found {
            None => {
                conn.execute_batch(SCHEMA_V1)?;
                conn.execute(
                    "INSERT INTO audit_schema_version (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(AuditError::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
        }
        Ok(())
    })
}

/// Tree sizes and indices fit SQLite's INTEGER: they come from it or are
/// checked against it first; saturate rather than wrap otherwise.
pub(crate) fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn hash_from_blob(
    bytes: Vec<u8>,
    what: impl FnOnce() -> String,
) -> Result<Hash, AuditError> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| AuditError::StoredHashLength { what: what(), len })
}

/// Number of entries in the log (the current tree size).
pub fn tree_size(conn: &Connection) -> Result<u64, AuditError> {
    let next: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry")?
        .query_row([], |r| r.get(0))?;
    Ok(from_sql(next))
}

/// What [`append`] recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppendReceipt {
    pub index: u64,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub leaf_hash: Hash,
}

/// Appends one entry: O(log n) writes (the leaf plus each perfect subtree
/// it completes). Does not commit the caller's transaction.
pub fn append(conn: &Connection, entry: &AuditEntry) -> Result<AppendReceipt, AuditError> {
    let encoding = entry.encode()?;
    append_encoded(conn, &entry.kind, entry.time, &entry.subject, &encoding)
}

/// Appends an entry already encoded by [`AuditEntry::encode_parts`] (whose `kind`, `time`
/// and `subject` are given again for the query columns), so the encoding can be made before
/// the caller holds the database.
pub fn append_encoded(
    conn: &Connection,
    kind: &str,
    time: i64,
    subject: &str,
    encoding: &[u8],
) -> Result<AppendReceipt, AuditError> {
    atomically(conn, || {
        let index = tree_size(conn)?;
        conn.prepare_cached("INSERT INTO audit_entry (idx, kind, time, subject, encoding) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![to_sql(index), kind, time, subject, encoding])?;
        let leaf = leaf_hash(encoding);
        let mut insert =
            conn.prepare_cached("INSERT INTO audit_node (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        insert.execute(params![0, to_sql(index), leaf.as_slice()])?;
        let mut nodes = DbNodes::new(conn);
        let (mut level, mut idx, mut hash) = (0u32, index, leaf);
        while idx % 2 == 1 {
            let left = nodes.perfect_node(level, idx - 1)?;
            hash = node_hash(&left, &hash);
            level += 1;
            idx /= 2;
            insert.execute(params![level, to_sql(idx), hash.as_slice()])?;
        }
        Ok(AppendReceipt {
            index,
            leaf_hash: leaf,
        })
    })
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredEntry {
    pub index: u64,
    pub entry: AuditEntry,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub leaf_hash: Hash,
}

/// Reads up to `limit` entries from `start` on, in index order (decoded
/// from the hashed encoding, not from the query columns).
pub fn read_entries(
    conn: &Connection,
    start: u64,
    limit: u64,
) -> Result<Vec<StoredEntry>, AuditError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, encoding FROM audit_entry WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![to_sql(start), to_sql(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let index = from_sql(row.get(0)?);
        let encoding: Vec<u8> = row.get(1)?;
        let entry = AuditEntry::decode(&encoding)
            .map_err(|source| AuditError::EntryEncoding { index, source })?;
        out.push(StoredEntry {
            index,
            entry,
            leaf_hash: leaf_hash(&encoding),
        });
    }
    Ok(out)
}

/// Reads one entry.
pub fn get_entry(conn: &Connection, index: u64) -> Result<Option<StoredEntry>, AuditError> {
    Ok(read_entries(conn, index, 1)?
        .into_iter()
        .find(|e| e.index == index))
}

/// Perfect-subtree hashes read from `audit_node`.
pub(crate) struct DbNodes<'c> {
    conn: &'c Connection,
}

impl<'c> DbNodes<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        DbNodes { conn }
    }
}

impl PerfectNodes for DbNodes<'_> {
    type Error = AuditError;
    fn perfect_node(&mut self, level: u32, index: u64) -> Result<Hash, AuditError> {
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM audit_node WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, to_sql(index)], |r| r.get(0))
            .optional()?;
        let blob = blob.ok_or(AuditError::NodeMissing { level, index })?;
        hash_from_blob(blob, || format!("tree node level {level} index {index}"))
    }
}

fn check_size(conn: &Connection, requested: u64) -> Result<(), AuditError> {
    let size = tree_size(conn)?;
    if requested > size {
        return Err(AuditError::SizeBeyondLog { requested, size });
    }
    Ok(())
}

/// Root hash of the tree of the first `size` entries, from stored nodes.
pub fn root_hash(conn: &Connection, size: u64) -> Result<Hash, AuditError> {
    check_size(conn, size)?;
    merkle::range_hash(&mut DbNodes::new(conn), 0, size)
}

/// Inclusion proof of entry `index` in the tree of `size` entries.
pub fn inclusion_proof(
    conn: &Connection,
    index: u64,
    size: u64,
) -> Result<InclusionProof, AuditError> {
    check_size(conn, size)?;
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size });
    }
    let mut nodes = DbNodes::new(conn);
    let leaf = nodes.perfect_node(0, index)?;
    let path = merkle::inclusion_path(&mut nodes, index, size)?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        leaf_hash: leaf,
        path,
    })
}

/// Consistency proof between tree sizes `first <= second`.
pub fn consistency_proof(
    conn: &Connection,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, AuditError> {
    if first > second {
        return Err(AuditError::SizesOutOfOrder { first, second });
    }
    check_size(conn, second)?;
    let path = merkle::consistency_path(&mut DbNodes::new(conn), first, second)?;
    Ok(ConsistencyProof {
        first_size: first,
        second_size: second,
        path,
    })
}

/// Signs and stores a checkpoint of the current tree. `now` is Unix seconds
/// (time is an input, never read from the clock here).
pub fn checkpoint(
    conn: &Connection,
    key: &AuditSigningKey,
    origin: &str,
    now: i64,
) -> Result<Checkpoint, AuditError> {
    atomically(conn, || {
        let size = tree_size(conn)?;
        let root = merkle::range_hash(&mut DbNodes::new(conn), 0, size)?;
        let cp = note::sign_checkpoint(key, origin, size, &root, now)?;
        conn.execute(
            "INSERT INTO audit_checkpoint (tree_size, root, time, origin, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![to_sql(size), root.as_slice(), now, origin, cp.note],
        )?;
        Ok(cp)
    })
}

/// A stored checkpoint row, as written (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointRow {
    pub id: i64,
    pub tree_size: i64,
    pub root: Vec<u8>,
    pub time: i64,
    pub origin: String,
    pub note: String,
}

pub(crate) fn checkpoint_rows(conn: &Connection) -> Result<Vec<CheckpointRow>, AuditError> {
    let mut stmt = conn.prepare(
        "SELECT id, tree_size, root, time, origin, note FROM audit_checkpoint ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(CheckpointRow {
            id: r.get(0)?,
            tree_size: r.get(1)?,
            root: r.get(2)?,
            time: r.get(3)?,
            origin: r.get(4)?,
            note: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The note text of the most recent checkpoint, if any (unverified: check
/// it with [`crate::verify_checkpoint`] before trusting it).
pub fn latest_checkpoint_note(conn: &Connection) -> Result<Option<String>, AuditError> {
    Ok(conn
        .query_row(
            "SELECT note FROM audit_checkpoint ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}
