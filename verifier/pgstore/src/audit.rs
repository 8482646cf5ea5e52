//! The audit log's persistence on PostgreSQL: the same tables and the same append algorithm
//! as vigil-audit's SQLite store, with vigil-audit's storage-independent code doing every hash
//! and signature (`merkle`, `entry`, `note`), so both engines produce identical logs.
//!
//! One log for every replica: an append runs under the transaction-scoped advisory lock
//! [`LOG_LOCK`], which the transaction holds until it commits. Entry indices are therefore
//! assigned in commit order with no gaps, and a checkpoint made under the lock covers exactly
//! the entries committed before it plus the transaction's own.

use std::collections::BTreeMap;

use postgres::GenericClient;
use vigil_audit::merkle::{self, Hash, PerfectNodes, leaf_hash, node_hash};
use vigil_audit::{
    AppendReceipt, AuditEntry, AuditError, AuditSigningKey, Checkpoint, ConsistencyProof,
    InclusionProof, StoredEntry,
};

use crate::cache::{Conn, Frontier, LogState};
use crate::queries::get;
use crate::{PgStoreError, db};

/// Advisory lock key serialising appends to the audit log and to `status_changes` across
/// replicas ("vigillog" in ASCII).
pub const LOG_LOCK: i64 = 0x7669_6769_6c6c_6f67;

/// Takes the log lock until the end of the current transaction (re-entrant). Take it before
/// any other row lock in a transaction that appends, so replicas cannot deadlock.
pub fn lock_log(client: &mut impl GenericClient) -> Result<(), PgStoreError> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
        .map_err(db("take the audit log lock"))?;
    Ok(())
}

fn to_sql(v: u64) -> Result<i64, PgStoreError> {
    i64::try_from(v).map_err(|_| PgStoreError::Invalid(format!("{v} does not fit a BIGINT")))
}

fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_hash(bytes: Vec<u8>, what: impl FnOnce() -> String) -> Result<Hash, PgStoreError> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| AuditError::StoredHashLength { what: what(), len }.into())
}

/// Number of entries in the log.
pub fn tree_size(client: &mut impl GenericClient) -> Result<u64, PgStoreError> {
    let row = client
        .query_one("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry", &[])
        .map_err(db("read audit tree size"))?;
    Ok(from_sql(get(&row, 0, "read audit tree size")?))
}

/// Perfect-subtree hashes read from `audit_node`.
struct PgNodes<'c, C: GenericClient> {
    client: &'c mut C,
}

impl<C: GenericClient> PerfectNodes for PgNodes<'_, C> {
    type Error = PgStoreError;
    fn perfect_node(&mut self, level: u32, index: u64) -> Result<Hash, PgStoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT hash FROM audit_node WHERE level = $1 AND idx = $2",
                &[&i64::from(level), &to_sql(index)?],
            )
            .map_err(db("read audit tree node"))?;
        let row = row.ok_or(AuditError::NodeMissing { level, index })?;
        to_hash(get(&row, 0, "read audit tree node")?, || {
            format!("tree node level {level} index {index}")
        })
    }
}

/// Appends one entry (the leaf plus each perfect subtree it completes) under the log lock.
/// Does not commit.
pub fn append(
    client: &mut impl GenericClient,
    entry: &AuditEntry,
) -> Result<AppendReceipt, PgStoreError> {
    let encoding = entry.encode().map_err(AuditError::from)?;
    append_encoded(client, &entry.kind, entry.time, &entry.subject, &encoding)
}

/// [`append`] of an entry already encoded (`AuditEntry::encode_parts`), as vigil-audit's
/// `append_encoded`: `kind`, `time` and `subject` must be the encoding's.
pub fn append_encoded(
    client: &mut impl GenericClient,
    kind: &str,
    time: i64,
    subject: &str,
    encoding: &[u8],
) -> Result<AppendReceipt, PgStoreError> {
    lock_log(client)?;
    let index = tree_size(client)?;
    client
        .execute(
            "INSERT INTO audit_entry (idx, kind, time, subject, encoding) VALUES ($1, $2, $3, $4, $5)",
            &[&to_sql(index)?, &kind, &time, &subject, &encoding],
        )
        .map_err(db("append audit entry"))?;
    let leaf = leaf_hash(encoding);
    let insert = "INSERT INTO audit_node (level, idx, hash) VALUES ($1, $2, $3)";
    client
        .execute(insert, &[&0i64, &to_sql(index)?, &leaf.as_slice()])
        .map_err(db("store audit leaf"))?;
    let (mut level, mut idx, mut hash) = (0u32, index, leaf);
    while idx % 2 == 1 {
        let left = PgNodes {
            client: &mut *client,
        }
        .perfect_node(level, idx - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        idx /= 2;
        client
            .execute(
                insert,
                &[&i64::from(level), &to_sql(idx)?, &hash.as_slice()],
            )
            .map_err(db("store audit tree node"))?;
    }
    Ok(AppendReceipt {
        index,
        leaf_hash: leaf,
    })
}

/// Signs and stores a checkpoint of the whole log as this transaction sees it, under the log
/// lock (so it includes every committed entry). Checkpoint ids are assigned under the lock too.
pub fn checkpoint(
    client: &mut impl GenericClient,
    key: &AuditSigningKey,
    origin: &str,
    now: i64,
) -> Result<Checkpoint, PgStoreError> {
    lock_log(client)?;
    let size = tree_size(client)?;
    let root = merkle::range_hash(
        &mut PgNodes {
            client: &mut *client,
        },
        0,
        size,
    )?;
    let cp = vigil_audit::note::sign_checkpoint(key, origin, size, &root, now)
        .map_err(AuditError::from)?;
    client
        .execute(
            "INSERT INTO audit_checkpoint (id, tree_size, root, time, origin, note)
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5 FROM audit_checkpoint",
            &[&to_sql(size)?, &root.as_slice(), &now, &origin, &cp.note],
        )
        .map_err(db("store audit checkpoint"))?;
    Ok(cp)
}

const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1)";
const TREE_SIZE_SQL: &str = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry";

/// [`lock_log`] with a prepared statement, once per transaction (the lock is held to COMMIT).
pub(crate) fn lock_log_once(
    c: &mut Conn<'_, impl GenericClient>,
    log: &mut LogState,
) -> Result<(), PgStoreError> {
    if !log.locked {
        c.execute(LOCK_SQL, &[&LOG_LOCK])
            .map_err(db("take the audit log lock"))?;
        log.locked = true;
    }
    Ok(())
}

/// The frontier of the tree of the first `size` entries, read in one query.
pub(crate) fn load_frontier(
    c: &mut Conn<'_, impl GenericClient>,
    size: u64,
) -> Result<Frontier, PgStoreError> {
    let positions = Frontier::positions(size);
    let levels: Vec<i64> = positions.iter().map(|&(l, _)| i64::from(l)).collect();
    let indexes = positions
        .iter()
        .map(|&(_, i)| to_sql(i))
        .collect::<Result<Vec<i64>, _>>()?;
    let rows = c
        .query(
            "SELECT level, idx, hash FROM audit_node
             WHERE (level, idx) IN (SELECT * FROM UNNEST($1::bigint[], $2::bigint[]))",
            &[&levels, &indexes],
        )
        .map_err(db("read audit tree frontier"))?;
    let mut found = BTreeMap::new();
    for row in &rows {
        let level: i64 = get(row, 0, "read audit tree frontier")?;
        let idx: i64 = get(row, 1, "read audit tree frontier")?;
        let hash = to_hash(get(row, 2, "read audit tree frontier")?, || {
            format!("tree node level {level} index {idx}")
        })?;
        found.insert((level, idx), hash);
    }
    let nodes = positions
        .iter()
        .zip(levels.iter().zip(&indexes))
        .map(|(&(level, index), key)| {
            found
                .get(&(*key.0, *key.1))
                .copied()
                .ok_or_else(|| AuditError::NodeMissing { level, index }.into())
        })
        .collect::<Result<Vec<Hash>, PgStoreError>>()?;
    Frontier::new(size, nodes)
}

/// Makes `log` the log as this transaction sees it: the lock (once), then, unless already
/// current, the tree size (one statement) and, only when it is not the size of the frontier
/// this connection remembers (another replica appended, or none is remembered), the
/// frontier read afresh.
pub(crate) fn sync_log(
    c: &mut Conn<'_, impl GenericClient>,
    log: &mut LogState,
) -> Result<(), PgStoreError> {
    lock_log_once(c, log)?;
    if log.current && log.frontier.is_some() {
        return Ok(());
    }
    let row = c
        .query_one(TREE_SIZE_SQL, &[])
        .map_err(db("read audit tree size"))?;
    let size = from_sql(get(&row, 0, "read audit tree size")?);
    if log.frontier.as_ref().map(Frontier::size) != Some(size) {
        log.frontier = None;
        log.frontier = Some(load_frontier(c, size)?);
    }
    log.current = true;
    Ok(())
}

/// [`append_encoded`] then [`checkpoint`] at the entry's time, in one statement, from the
/// frontier in `log` (no `audit_node` reads): the same rows, byte for byte. Returns the
/// entry's index.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_and_checkpoint(
    c: &mut Conn<'_, impl GenericClient>,
    log: &mut LogState,
    key: &AuditSigningKey,
    origin: &str,
    kind: &str,
    time: i64,
    subject: &str,
    encoding: &[u8],
) -> Result<u64, PgStoreError> {
    sync_log(c, log)?;
    let Some(mut frontier) = log.frontier.clone() else {
        return Err(PgStoreError::Invalid(
            "the audit frontier was not loaded".to_owned(),
        ));
    };
    let index = frontier.size();
    let rows = frontier.push(leaf_hash(encoding))?;
    let size = frontier.size();
    let root = frontier.root()?;
    let cp = vigil_audit::note::sign_checkpoint(key, origin, size, &root, time)
        .map_err(AuditError::from)?;
    let levels: Vec<i64> = rows.iter().map(|r| i64::from(r.0)).collect();
    let indexes = rows
        .iter()
        .map(|r| to_sql(r.1))
        .collect::<Result<Vec<i64>, _>>()?;
    let hashes: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
    // Should the statement fail, the transaction (or savepoint) is aborted: `log` no longer
    // describes it, and is not trusted again until checked.
    log.current = false;
    c.execute(
        "WITH entry AS (
            INSERT INTO audit_entry (idx, kind, time, subject, encoding)
            VALUES ($1, $2, $3, $4, $5)
         ), node AS (
            INSERT INTO audit_node (level, idx, hash)
            SELECT * FROM UNNEST($6::bigint[], $7::bigint[], $8::bytea[])
         )
         INSERT INTO audit_checkpoint (id, tree_size, root, time, origin, note)
         SELECT COALESCE(MAX(id), 0) + 1, $9, $10, $11, $12, $13 FROM audit_checkpoint",
        &[
            &to_sql(index)?,
            &kind,
            &time,
            &subject,
            &encoding,
            &levels,
            &indexes,
            &hashes,
            &to_sql(size)?,
            &root.as_slice(),
            &time,
            &origin,
            &cp.note,
        ],
    )
    .map_err(db("append audit entry and checkpoint"))?;
    log.frontier = Some(frontier);
    log.current = true;
    Ok(index)
}

/// [`put_blob`] with a prepared statement.
pub(crate) fn put_blob_cached(
    c: &mut Conn<'_, impl GenericClient>,
    bytes: &[u8],
) -> Result<String, PgStoreError> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(bytes));
    c.execute(
        "INSERT INTO audit_blob (digest, data) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        &[&digest, &bytes],
    )
    .map_err(db("store audit blob"))?;
    Ok(digest)
}

/// Up to `limit` entries from `start` on, decoded from the hashed encoding.
pub fn read_entries(
    client: &mut impl GenericClient,
    start: u64,
    limit: u64,
) -> Result<Vec<StoredEntry>, PgStoreError> {
    let rows = client
        .query(
            "SELECT idx, encoding FROM audit_entry WHERE idx >= $1 ORDER BY idx LIMIT $2",
            &[&to_sql(start)?, &to_sql(limit)?],
        )
        .map_err(db("read audit entries"))?;
    rows.iter()
        .map(|row| {
            let index = from_sql(get(row, 0, "read audit entry")?);
            let encoding: Vec<u8> = get(row, 1, "read audit entry")?;
            let entry = AuditEntry::decode(&encoding)
                .map_err(|source| AuditError::EntryEncoding { index, source })?;
            Ok(StoredEntry {
                index,
                entry,
                leaf_hash: leaf_hash(&encoding),
            })
        })
        .collect()
}

fn check_size(client: &mut impl GenericClient, requested: u64) -> Result<(), PgStoreError> {
    let size = tree_size(client)?;
    if requested > size {
        return Err(AuditError::SizeBeyondLog { requested, size }.into());
    }
    Ok(())
}

/// Root hash of the tree of the first `size` entries.
pub fn root_hash(client: &mut impl GenericClient, size: u64) -> Result<Hash, PgStoreError> {
    check_size(client, size)?;
    merkle::range_hash(&mut PgNodes { client }, 0, size)
}

/// Inclusion proof of entry `index` in the tree of `size` entries.
pub fn inclusion_proof(
    client: &mut impl GenericClient,
    index: u64,
    size: u64,
) -> Result<InclusionProof, PgStoreError> {
    check_size(client, size)?;
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size }.into());
    }
    let mut nodes = PgNodes { client };
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
    client: &mut impl GenericClient,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, PgStoreError> {
    if first > second {
        return Err(AuditError::SizesOutOfOrder { first, second }.into());
    }
    check_size(client, second)?;
    let path = merkle::consistency_path(&mut PgNodes { client }, first, second)?;
    Ok(ConsistencyProof {
        first_size: first,
        second_size: second,
        path,
    })
}

/// The note of the newest checkpoint (unverified).
pub fn latest_checkpoint_note(
    client: &mut impl GenericClient,
) -> Result<Option<String>, PgStoreError> {
    let row = client
        .query_opt(
            "SELECT note FROM audit_checkpoint ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(db("read latest checkpoint"))?;
    row.map(|r| get(&r, 0, "read latest checkpoint"))
        .transpose()
}

/// Stores `bytes` content-addressed (idempotent); returns its SHA-256 in lowercase hex.
pub fn put_blob(client: &mut impl GenericClient, bytes: &[u8]) -> Result<String, PgStoreError> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(bytes));
    client
        .execute(
            "INSERT INTO audit_blob (digest, data) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
            &[&digest, &bytes],
        )
        .map_err(db("store audit blob"))?;
    Ok(digest)
}

/// The blob `digest`, checked against its digest.
pub fn get_blob(
    client: &mut impl GenericClient,
    digest: &str,
) -> Result<Option<Vec<u8>>, PgStoreError> {
    use sha2::Digest;
    if !vigil_audit::blob::is_digest(digest) {
        return Err(AuditError::BadDigest(digest.chars().take(80).collect()).into());
    }
    let row = client
        .query_opt("SELECT data FROM audit_blob WHERE digest = $1", &[&digest])
        .map_err(db("read audit blob"))?;
    let data: Option<Vec<u8>> = row.map(|r| get(&r, 0, "read audit blob")).transpose()?;
    match data {
        Some(bytes) if hex::encode(sha2::Sha256::digest(&bytes)) != digest => {
            Err(AuditError::BlobCorrupt {
                digest: digest.to_owned(),
            }
            .into())
        }
        other => Ok(other),
    }
}

/// Deletes the blob `digest` (evidence pruning); whether there was one. Blobs are the one
/// part of the audit store that is not append-only: entries keep the digest either way.
pub fn delete_blob(client: &mut impl GenericClient, digest: &str) -> Result<bool, PgStoreError> {
    if !vigil_audit::blob::is_digest(digest) {
        return Err(AuditError::BadDigest(digest.chars().take(80).collect()).into());
    }
    let deleted = client
        .execute("DELETE FROM audit_blob WHERE digest = $1", &[&digest])
        .map_err(db("delete audit blob"))?;
    Ok(deleted > 0)
}

/// Copies the audit log (entries, tree nodes, checkpoints and, with `blobs`, evidence) into
/// `sqlite`, a database vigil-audit has migrated, row for row. vigil-audit's own auditor
/// tools then run unchanged on it: `verify_log` (full re-verification), `export_bundle`.
/// Reads in one REPEATABLE READ transaction, so the copy is one consistent state of the log.
pub fn export_to_sqlite(
    client: &mut postgres::Client,
    sqlite: &rusqlite::Connection,
    blobs: bool,
) -> Result<u64, PgStoreError> {
    let sqlite_err = |operation: &'static str| {
        move |e: rusqlite::Error| PgStoreError::Export {
            operation,
            reason: e.to_string(),
        }
    };
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(db("begin audit export"))?;
    sqlite
        .execute_batch("SAVEPOINT vigil_export")
        .map_err(sqlite_err("begin export"))?;
    let copy = |tx: &mut postgres::Transaction<'_>| -> Result<u64, PgStoreError> {
        let mut entries = 0;
        for row in tx
            .query(
                "SELECT idx, kind, time, subject, encoding FROM audit_entry ORDER BY idx",
                &[],
            )
            .map_err(db("read audit entries for export"))?
        {
            sqlite
                .execute(
                    "INSERT INTO audit_entry (idx, kind, time, subject, encoding) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![
                        get::<i64>(&row, 0, "read audit log for export")?,
                        get::<String>(&row, 1, "read audit log for export")?,
                        get::<i64>(&row, 2, "read audit log for export")?,
                        get::<String>(&row, 3, "read audit log for export")?,
                        get::<Vec<u8>>(&row, 4, "read audit log for export")?
                    ],
                )
                .map_err(sqlite_err("copy audit entry"))?;
            entries += 1;
        }
        for row in tx
            .query("SELECT level, idx, hash FROM audit_node", &[])
            .map_err(db("read audit tree nodes for export"))?
        {
            sqlite
                .execute(
                    "INSERT INTO audit_node (level, idx, hash) VALUES (?1, ?2, ?3)",
                    rusqlite::params![
                        get::<i64>(&row, 0, "read audit log for export")?,
                        get::<i64>(&row, 1, "read audit log for export")?,
                        get::<Vec<u8>>(&row, 2, "read audit log for export")?
                    ],
                )
                .map_err(sqlite_err("copy audit tree node"))?;
        }
        for row in tx
            .query(
                "SELECT id, tree_size, root, time, origin, note FROM audit_checkpoint ORDER BY id",
                &[],
            )
            .map_err(db("read audit checkpoints for export"))?
        {
            sqlite
                .execute(
                    "INSERT INTO audit_checkpoint (id, tree_size, root, time, origin, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        get::<i64>(&row, 0, "read audit log for export")?,
                        get::<i64>(&row, 1, "read audit log for export")?,
                        get::<Vec<u8>>(&row, 2, "read audit log for export")?,
                        get::<i64>(&row, 3, "read audit log for export")?,
                        get::<String>(&row, 4, "read audit log for export")?,
                        get::<String>(&row, 5, "read audit log for export")?
                    ],
                )
                .map_err(sqlite_err("copy audit checkpoint"))?;
        }
        if blobs {
            for row in tx
                .query("SELECT digest, data FROM audit_blob", &[])
                .map_err(db("read audit blobs for export"))?
            {
                sqlite
                    .execute(
                        "INSERT OR IGNORE INTO audit_blob (digest, data) VALUES (?1, ?2)",
                        rusqlite::params![
                            get::<String>(&row, 0, "read audit log for export")?,
                            get::<Vec<u8>>(&row, 1, "read audit log for export")?
                        ],
                    )
                    .map_err(sqlite_err("copy audit blob"))?;
            }
        }
        Ok(entries)
    };
    match copy(&mut tx) {
        Ok(entries) => {
            sqlite
                .execute_batch("RELEASE vigil_export")
                .map_err(sqlite_err("commit export"))?;
            tx.commit().map_err(db("end audit export"))?;
            Ok(entries)
        }
        Err(e) => {
            let _ = sqlite.execute_batch("ROLLBACK TO vigil_export; RELEASE vigil_export");
            Err(e)
        }
    }
}
