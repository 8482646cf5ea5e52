//! Moving an installation from SQLite to PostgreSQL (`vigil db copy`).
//!
//! The copy is table for table, row for row, ids included, in one PostgreSQL transaction, into
//! a database that holds nothing yet: the audit log's entries, tree nodes and signed
//! checkpoints are copied verbatim, so the log on PostgreSQL is the same log (same tree, same
//! root, same signatures) and auditors' saved checkpoints stay valid. The list of tables comes
//! from `vigil_pgstore::schema` (the one schema source), not from a list kept here.
//!
//! After the commit the copy is checked, not assumed: row counts per table, the audit tree's
//! size and root hash on both sides, and a full `vigil_audit::verify_log` of the PostgreSQL log
//! (exported to a temporary SQLite file) against the installation's audit key.
//!
//! The PostgreSQL crate is not a dependency of this crate, so its types are never named here:
//! connections come from [`PgStore`] and values travel as `COPY … FROM STDIN` text.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use vigil_audit::merkle::Hash;
use vigil_audit::{AuditPublicKey, AuditSigningKey, VerifyReport};
use vigil_pgstore::schema::{self, COMPONENTS};
use vigil_pgstore::{PgStore, PgStoreError};

use crate::store::{AUDIT_ORIGIN, StoreError, audit_key_path, lock_for_serving};

/// Errors of a copy, a migration or a snapshot; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Pg(#[from] PgStoreError),
    #[error("{path}: {operation}: {source}")]
    Sqlite {
        path: String,
        operation: &'static str,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("audit log: {0}")]
    Audit(#[from] vigil_audit::AuditError),
    #[error(
        "the target database is not empty ({}): `vigil db copy` only fills an empty database",
        .found.iter().map(|(t, n)| format!("{t}: {n} rows")).collect::<Vec<_>>().join(", ")
    )]
    NotEmpty { found: Vec<(String, i64)> },
    #[error("{0}")]
    Invalid(String),
}

/// Maps a `postgres::Error` (a type this crate cannot name) to [`CopyError`].
macro_rules! pg {
    ($operation:expr) => {
        |source| {
            CopyError::Pg(PgStoreError::Db {
                operation: $operation,
                source,
            })
        }
    };
}

/// One table of the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    /// Rows in the SQLite installation; `None` when it has no such table (tables only
    /// PostgreSQL replicas use: node leases, the recorded audit key).
    pub source_rows: Option<i64>,
    /// Rows in PostgreSQL after the copy.
    pub target_rows: i64,
}

/// An identity column moved past the copied ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityReport {
    pub table: String,
    pub column: String,
    /// The largest id handed out so far; the next insert gets a larger one.
    pub last_value: i64,
}

/// What [`copy_sqlite_to_postgres`] did and what it found when it checked.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub tables: Vec<TableReport>,
    pub identities: Vec<IdentityReport>,
    pub source_tree_size: u64,
    pub target_tree_size: u64,
    pub source_root: Hash,
    pub target_root: Hash,
    /// The newest signed checkpoint on each side (identical notes: same signature).
    pub source_checkpoint: Option<String>,
    pub target_checkpoint: Option<String>,
    /// The key the log is verified against and PostgreSQL records as its signer.
    pub audit_key: String,
    /// Entries in the exported snapshot of the PostgreSQL log.
    pub exported_entries: u64,
    /// `vigil_audit::verify_log` on that snapshot.
    pub verification: Result<VerifyReport, String>,
}

impl CopyReport {
    /// Every way the target differs from the source; empty when the copy is exact.
    pub fn differences(&self) -> Vec<String> {
        let mut found = Vec::new();
        for t in &self.tables {
            match t.source_rows {
                Some(n) if n != t.target_rows => found.push(format!(
                    "{}: {n} rows in SQLite, {} in PostgreSQL",
                    t.table, t.target_rows
                )),
                _ => {}
            }
        }
        if self.source_tree_size != self.target_tree_size {
            found.push(format!(
                "audit tree size: {} in SQLite, {} in PostgreSQL",
                self.source_tree_size, self.target_tree_size
            ));
        }
        if self.source_root != self.target_root {
            found.push(format!(
                "audit root: {} in SQLite, {} in PostgreSQL",
                hex::encode(self.source_root),
                hex::encode(self.target_root)
            ));
        }
        if self.source_checkpoint != self.target_checkpoint {
            found.push("the newest signed checkpoint differs".to_owned());
        }
        if self.exported_entries != self.source_tree_size {
            found.push(format!(
                "the exported PostgreSQL log has {} entries, SQLite {}",
                self.exported_entries, self.source_tree_size
            ));
        }
        match &self.verification {
            Ok(report) if report.tree_size != self.source_tree_size => found.push(format!(
                "the PostgreSQL log verifies at size {}, not {}",
                report.tree_size, self.source_tree_size
            )),
            Ok(_) => {}
            Err(e) => found.push(format!("the PostgreSQL audit log does not verify: {e}")),
        }
        found
    }
}

/// Every table of the PostgreSQL schema, in creation order, read from `schema::COMPONENTS`
/// so that a table added there is copied without a change here.
pub fn schema_tables() -> Vec<String> {
    let mut tables = Vec::new();
    for component in COMPONENTS {
        for migration in component.migrations {
            let sql = schema::render(migration, schema::Engine::Postgres);
            let words: Vec<&str> = sql.split_whitespace().collect();
            for w in words.windows(3) {
                if w[0].eq_ignore_ascii_case("CREATE") && w[1].eq_ignore_ascii_case("TABLE") {
                    let name = w[2].trim_end_matches('(').to_owned();
                    if !tables.contains(&name) {
                        tables.push(name);
                    }
                }
            }
        }
    }
    tables
}

/// `url` fit to print: any password masked (pgstore's rule, so every message agrees).
pub fn redact_url(url: &str) -> String {
    vigil_pgstore::redacted(url)
}

/// Loads an audit signing key file (PKCS#8 DER, as `vigil serve` writes it).
pub fn load_audit_key(path: &Path) -> Result<AuditSigningKey, CopyError> {
    let pkcs8 = std::fs::read(path)
        .map_err(|e| CopyError::Invalid(format!("audit key {}: {e}", path.display())))?;
    vigil_audit::load_key(AUDIT_ORIGIN, &pkcs8)
        .map_err(|e| CopyError::Invalid(format!("audit key {}: {e}", path.display())))
}

/// Opens the PostgreSQL store at `url` (migrating it; password from the URL,
/// `VIGIL_DB_PASSWORD_FILE` or `PGPASSWORD`, as `PgStore::connect` reads them) with the audit
/// key file `audit_key`, which must be the key the database records as its log's signer.
pub fn open_postgres(url: &str, audit_key: &Path) -> Result<PgStore, CopyError> {
    let key = load_audit_key(audit_key)?;
    Ok(PgStore::connect(url, Arc::new(key))?)
}

/// A SQLite copy of a PostgreSQL audit log in a temporary file (removed on drop), for
/// vigil-audit's SQLite tools: `verify_log`, `root_hash`, `export_bundle`.
pub struct AuditSnapshot {
    connection: Connection,
    path: PathBuf,
    /// Entries exported.
    pub entries: u64,
}

impl AuditSnapshot {
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl Drop for AuditSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut journal = self.path.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}

/// Exports the audit log of `store` (one consistent state of it) to a temporary SQLite file.
pub fn export_audit_snapshot(
    client: &mut vigil_pgstore::postgres::Client,
) -> Result<AuditSnapshot, CopyError> {
    use std::os::unix::fs::OpenOptionsExt;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "vigil-audit-snapshot-{}-{nanos}-{}.db",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CopyError::Invalid(format!("{}: {e}", path.display())))?;
    let sqlite_err = |operation| {
        let path = path.display().to_string();
        move |source| CopyError::Sqlite {
            path,
            operation,
            source,
        }
    };
    let connection = Connection::open(&path).map_err(sqlite_err("open audit snapshot"));
    let mut snapshot = AuditSnapshot {
        connection: match connection {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        },
        path,
        entries: 0,
    };
    vigil_audit::migrate(&snapshot.connection)?;
    snapshot.entries = vigil_pgstore::audit::export_to_sqlite(client, &snapshot.connection, false)?;
    Ok(snapshot)
}

/// Checks that `key` signs the log in `conn`: its newest checkpoint must verify with it (a
/// log with no checkpoint yet has nothing to check).
fn check_key_signs_log(conn: &Connection, key: &AuditPublicKey) -> Result<(), CopyError> {
    if let Some(note) = vigil_audit::latest_checkpoint_note(conn)? {
        vigil_audit::verify_checkpoint(&note, std::slice::from_ref(key)).map_err(|e| {
            CopyError::Invalid(format!(
                "the audit key {} does not sign this installation's audit log ({e}): give the key its server used with --audit-key",
                key.to_verifier_key()
            ))
        })?;
    }
    Ok(())
}

/// Copies the SQLite installation at `from` into the empty PostgreSQL database at `to_url`
/// (password as `PgStore::connect` finds it), in one transaction,
/// then checks the copy. `audit_key` is the installation's audit key file (default: beside
/// the database); PostgreSQL records it as the log's signer, so `vigil serve --db <url>
/// --audit-key <that file>` carries on the same log.
///
/// Errors mean no row was copied (though `PgStore::connect` may have migrated the target and
/// recorded the signer: see [`open_postgres`]), or, from the checks on, that they could not
/// run; a committed copy that differs is reported by [`CopyReport::differences`].
pub fn copy_sqlite_to_postgres(
    from: &Path,
    to_url: &str,
    audit_key: Option<&Path>,
) -> Result<CopyReport, CopyError> {
    if !from.is_file() {
        return Err(CopyError::Invalid(format!(
            "no database at {}",
            from.display()
        )));
    }
    let source_path = from.display().to_string();
    let sqlite_err = |operation| {
        let path = source_path.clone();
        move |source| CopyError::Sqlite {
            path,
            operation,
            source,
        }
    };
    // A running server would keep writing while we copy: hold its lock for the whole copy.
    let _lock = lock_for_serving(from)?;
    let key_path = audit_key.map_or_else(|| audit_key_path(from), Path::to_path_buf);
    let key = load_audit_key(&key_path)?;
    let public = key.public_key();

    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err("open"))?;
    source
        .pragma_update(None, "query_only", true)
        .map_err(sqlite_err("set query_only"))?;
    // One read transaction: every table is read from the same state of the file.
    source
        .execute_batch("BEGIN")
        .map_err(sqlite_err("begin read"))?;
    check_source_schema(&source, &source_path)?;
    check_key_signs_log(&source, &public)?;

    let tables = schema_tables();
    let source_tables: Vec<String> = {
        let mut s = source
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .map_err(sqlite_err("list tables"))?;
        s.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(sqlite_err("list tables"))?
    };
    if let Some(extra) = source_tables
        .iter()
        .find(|t| *t != "audit_schema_version" && !tables.contains(t))
    {
        return Err(CopyError::Invalid(format!(
            "{source_path} has a table {extra} that the PostgreSQL schema lacks: this build cannot copy it"
        )));
    }

    let mut store = match PgStore::connect(to_url, Arc::new(key)) {
        Ok(store) => store,
        Err(PgStoreError::AuditKeyMismatch { recorded, .. }) => {
            return Err(CopyError::NotEmpty {
                found: vec![(format!("audit_signer (records the key {recorded})"), 1)],
            });
        }
        Err(e) => return Err(e.into()),
    };

    let mut identities = Vec::new();
    {
        let client = store.client();
        let mut tx = client.transaction().map_err(pg!("begin copy"))?;
        vigil_pgstore::audit::lock_log(&mut tx)?;
        // Refuse a database that holds anything but the signer row PgStore::open checked.
        let mut found = Vec::new();
        for table in tables.iter().filter(|t| *t != "audit_signer") {
            let n: i64 = tx
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .map_err(pg!("count target rows"))?
                .get(0);
            if n > 0 {
                found.push((table.clone(), n));
            }
        }
        if !found.is_empty() {
            return Err(CopyError::NotEmpty { found });
        }
        for table in tables.iter().filter(|t| source_tables.contains(t)) {
            let columns: Vec<String> = {
                let mut s = source
                    .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                    .map_err(sqlite_err("read columns"))?;
                s.query_map([table], |r| r.get(0))
                    .and_then(|rows| rows.collect::<Result<_, _>>())
                    .map_err(sqlite_err("read columns"))?
            };
            let mut types = Vec::with_capacity(columns.len());
            for column in &columns {
                let row = tx
                    .query_opt(
                        "SELECT data_type::text FROM information_schema.columns
                         WHERE table_schema = current_schema()
                           AND table_name::text = $1::text AND column_name::text = $2::text",
                        &[table, column],
                    )
                    .map_err(pg!("read target columns"))?;
                let Some(row) = row else {
                    return Err(CopyError::Invalid(format!(
                        "{table}.{column} is in {source_path} but not in the PostgreSQL schema"
                    )));
                };
                types.push(PgType::from_name(row.get(0), table, column)?);
            }
            let list = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let mut writer = tx
                .copy_in(format!("COPY {table} ({list}) FROM STDIN").as_str())
                .map_err(pg!("start COPY"))?;
            let mut statement = source
                .prepare(&format!("SELECT {list} FROM {table}"))
                .map_err(sqlite_err("read rows"))?;
            let mut rows = statement.query([]).map_err(sqlite_err("read rows"))?;
            let mut line = Vec::new();
            let mut count = 0i64;
            while let Some(row) = rows.next().map_err(sqlite_err("read rows"))? {
                line.clear();
                for (i, ty) in types.iter().enumerate() {
                    if i > 0 {
                        line.push(b'\t');
                    }
                    let value = row.get_ref(i).map_err(sqlite_err("read value"))?;
                    encode_copy_value(&mut line, value, *ty).map_err(|reason| {
                        CopyError::Invalid(format!(
                            "{table}.{} (row {}): {reason}",
                            columns[i],
                            count + 1
                        ))
                    })?;
                }
                line.push(b'\n');
                writer
                    .write_all(&line)
                    .map_err(|e| CopyError::Invalid(format!("COPY {table}: {e}")))?;
                count += 1;
            }
            writer.finish().map_err(pg!("finish COPY"))?;
        }
        // Identity columns continue after the largest id SQLite handed out (its
        // AUTOINCREMENT counter: ids of deleted rows are not reused either).
        let identity_columns: Vec<(String, String)> = tx
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND is_identity = 'YES'
                 ORDER BY table_name, column_name",
                &[],
            )
            .map_err(pg!("list identity columns"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (table, column) in identity_columns {
            if !source_tables.contains(&table) {
                continue;
            }
            let max_id: i64 = source
                .query_row(
                    &format!("SELECT COALESCE(MAX(\"{column}\"), 0) FROM {table}"),
                    [],
                    |r| r.get(0),
                )
                .map_err(sqlite_err("read largest id"))?;
            let counter: i64 = if sqlite_sequence_exists(&source) {
                source
                    .query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                        [&table],
                        |r| r.get(0),
                    )
                    .map_err(sqlite_err("read AUTOINCREMENT counter"))?
            } else {
                0
            };
            let last = max_id.max(counter);
            if last > 0 {
                tx.query_one(
                    "SELECT setval(pg_get_serial_sequence($1, $2), $3, true)",
                    &[&table, &column, &last],
                )
                .map_err(pg!("move identity past the copied ids"))?;
                identities.push(IdentityReport {
                    table,
                    column,
                    last_value: last,
                });
            }
        }
        tx.commit().map_err(pg!("commit copy"))?;
    }

    // The checks: counts, tree, checkpoints, and a full verification of the PostgreSQL log.
    let mut reports = Vec::new();
    for table in &tables {
        let target_rows: i64 = store
            .client()
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .map_err(pg!("count copied rows"))?
            .get(0);
        let source_rows = if source_tables.contains(table) {
            Some(
                source
                    .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                    .map_err(sqlite_err("count rows"))?,
            )
        } else {
            None
        };
        reports.push(TableReport {
            table: table.clone(),
            source_rows,
            target_rows,
        });
    }
    let source_tree_size = vigil_audit::tree_size(&source)?;
    let source_root = vigil_audit::root_hash(&source, source_tree_size)?;
    let source_checkpoint = vigil_audit::latest_checkpoint_note(&source)?;
    source
        .execute_batch("COMMIT")
        .map_err(sqlite_err("end read"))?;
    let target_tree_size = vigil_pgstore::audit::tree_size(store.client())?;
    let target_root = vigil_pgstore::audit::root_hash(store.client(), target_tree_size)?;
    let target_checkpoint = vigil_pgstore::audit::latest_checkpoint_note(store.client())?;
    let snapshot = export_audit_snapshot(store.client())?;
    let verification =
        vigil_audit::verify_log(snapshot.connection(), std::slice::from_ref(&public))
            .map_err(|e| e.to_string());
    Ok(CopyReport {
        tables: reports,
        identities,
        source_tree_size,
        target_tree_size,
        source_root,
        target_root,
        source_checkpoint,
        target_checkpoint,
        audit_key: public.to_verifier_key(),
        exported_entries: snapshot.entries,
        verification,
    })
}

fn sqlite_sequence_exists(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
        [],
        |r| r.get::<_, bool>(0),
    )
    .unwrap_or(false)
}

/// The source must be at the schema this build copies: older files are migrated first.
fn check_source_schema(conn: &Connection, path: &str) -> Result<(), CopyError> {
    let sqlite_err = |operation| {
        move |source| CopyError::Sqlite {
            path: path.to_owned(),
            operation,
            source,
        }
    };
    let verifier: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite_err("read schema version"))?;
    let audit: i64 = conn
        .query_row("SELECT MAX(version) FROM audit_schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map_err(sqlite_err("read audit schema version"))?
        .unwrap_or(0);
    for (name, found, supported) in [
        (
            "verifier",
            verifier,
            schema::VERIFIER.migrations.len() as i64,
        ),
        ("audit", audit, schema::AUDIT.migrations.len() as i64),
    ] {
        if found < supported {
            return Err(CopyError::Invalid(format!(
                "{path}: {name} schema version {found}, this build copies version {supported}: run `vigil db migrate --db {path}` first"
            )));
        }
        if found > supported {
            return Err(CopyError::Invalid(format!(
                "{path}: {name} schema version {found} is newer than this build understands ({supported})"
            )));
        }
    }
    Ok(())
}

/// The PostgreSQL column types the schema uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgType {
    Bigint,
    Text,
    Bytea,
}

impl PgType {
    fn from_name(name: String, table: &str, column: &str) -> Result<Self, CopyError> {
        match name.as_str() {
            "bigint" | "integer" | "smallint" => Ok(PgType::Bigint),
            "text" | "character varying" => Ok(PgType::Text),
            "bytea" => Ok(PgType::Bytea),
            other => Err(CopyError::Invalid(format!(
                "{table}.{column}: PostgreSQL type {other} is not one this copy knows"
            ))),
        }
    }
}

/// Appends `value` to a `COPY … FROM STDIN` text-format line as a value of type `ty`.
fn encode_copy_value(line: &mut Vec<u8>, value: ValueRef<'_>, ty: PgType) -> Result<(), String> {
    match (value, ty) {
        (ValueRef::Null, _) => line.extend_from_slice(b"\\N"),
        (ValueRef::Integer(i), PgType::Bigint | PgType::Text) => {
            line.extend_from_slice(i.to_string().as_bytes())
        }
        (ValueRef::Text(t) | ValueRef::Blob(t), PgType::Text) => {
            let text = std::str::from_utf8(t).map_err(|_| "not UTF-8 text".to_owned())?;
            if text.contains('\0') {
                return Err("text with a NUL byte".to_owned());
            }
            for b in text.bytes() {
                match b {
                    b'\\' => line.extend_from_slice(b"\\\\"),
                    b'\n' => line.extend_from_slice(b"\\n"),
                    b'\r' => line.extend_from_slice(b"\\r"),
                    b'\t' => line.extend_from_slice(b"\\t"),
                    _ => line.push(b),
                }
            }
        }
        (ValueRef::Blob(b) | ValueRef::Text(b), PgType::Bytea) => {
            // bytea's hex form `\x…`, its backslash escaped for COPY.
            line.extend_from_slice(b"\\\\x");
            line.extend_from_slice(hex::encode(b).as_bytes());
        }
        (ValueRef::Real(r), PgType::Text) => line.extend_from_slice(r.to_string().as_bytes()),
        (other, ty) => {
            return Err(format!(
                "a SQLite {:?} value cannot go into a {ty:?} column",
                other.data_type()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_from_the_schema() {
        let tables = schema_tables();
        for t in [
            "nodes",
            "nonces",
            "verdicts",
            "status_changes",
            "baselines",
            "group_baselines",
            "ima_state",
            "pruned_evidence",
            "audit_entry",
            "audit_node",
            "audit_checkpoint",
            "audit_blob",
            "node_leases",
            "audit_signer",
        ] {
            assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
        }
        assert!(!tables.iter().any(|t| t.contains('(') || t == "IF"));
    }

    #[test]
    fn differences_name_what_differs() {
        let report = CopyReport {
            tables: vec![
                TableReport {
                    table: "verdicts".to_owned(),
                    source_rows: Some(3),
                    target_rows: 2,
                },
                TableReport {
                    table: "node_leases".to_owned(),
                    source_rows: None,
                    target_rows: 0,
                },
            ],
            identities: Vec::new(),
            source_tree_size: 4,
            target_tree_size: 4,
            source_root: [1; 32],
            target_root: [2; 32],
            source_checkpoint: None,
            target_checkpoint: None,
            audit_key: String::new(),
            exported_entries: 4,
            verification: Err("entry 3 differs".to_owned()),
        };
        let found = report.differences();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("verdicts: 3 rows in SQLite, 2"));
        assert!(found[1].starts_with("audit root"));
        assert!(found[2].contains("entry 3 differs"));
    }

    #[test]
    fn copy_text_escapes() {
        let mut line = Vec::new();
        encode_copy_value(&mut line, ValueRef::Text(b"a\tb\\c\nd"), PgType::Text).unwrap();
        assert_eq!(line, b"a\\tb\\\\c\\nd");
        line.clear();
        encode_copy_value(&mut line, ValueRef::Blob(&[0, 255]), PgType::Bytea).unwrap();
        assert_eq!(line, b"\\\\x00ff");
        line.clear();
        encode_copy_value(&mut line, ValueRef::Null, PgType::Bytea).unwrap();
        assert_eq!(line, b"\\N");
        assert!(encode_copy_value(&mut line, ValueRef::Real(1.5), PgType::Bigint).is_err());
    }
}
