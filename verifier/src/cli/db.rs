//! `vigil db …`: the store's schema, and moving an installation from SQLite to PostgreSQL.

use std::path::PathBuf;

use clap::Subcommand;
use vigil_verifier::db_copy::{self, redact_url};
use vigil_verifier::report::Verdict;

use super::store::{open_existing_store, postgres_url};
use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Bring a database's schema up to date and print the version of each component.
    Migrate {
        /// A SQLite file, or `postgres://user@host:port/db` (password from the URL,
        /// PGPASSWORD or VIGIL_DB_PASSWORD_FILE).
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
    /// Copy a SQLite installation into an empty PostgreSQL database, in one transaction, and
    /// check the copy: rows per table, audit tree size and root, and a full verification of
    /// the copied audit log. Every table is copied, ids, nonces and evidence included. Exit 1
    /// when the copy differs from the source.
    Copy {
        /// The SQLite database to copy (stop its `vigil serve` first).
        #[arg(long)]
        from: PathBuf,
        /// The empty PostgreSQL database: `postgres://user@host:port/db` (password from the
        /// URL, PGPASSWORD or VIGIL_DB_PASSWORD_FILE).
        #[arg(long)]
        to: String,
        /// The installation's audit key file (default: the one beside --from). Give the same
        /// file to `vigil serve --db <URL> --audit-key`.
        #[arg(long, env = "VIGIL_AUDIT_KEY")]
        audit_key: Option<PathBuf>,
    },
}

pub(crate) fn db_command(command: DbCommand) -> Result<Verdict, AnyError> {
    match command {
        DbCommand::Migrate { db } => migrate(&db),
        DbCommand::Copy {
            from,
            to,
            audit_key,
        } => copy(&from, &to, audit_key),
    }
}

fn migrate(db: &std::path::Path) -> Result<Verdict, AnyError> {
    let Some(url) = postgres_url(db) else {
        let store = open_existing_store(db)?;
        let verifier: i64 = store
            .connection()
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let audit: i64 = store.connection().query_row(
            "SELECT COALESCE(MAX(version), 0) FROM audit_schema_version",
            [],
            |r| r.get(0),
        )?;
        println!(
            "SQLite store {} opened and migrated: verifier schema version {verifier}, audit schema version {audit}",
            db.display()
        );
        return Ok(Verdict::Pass);
    };
    let shown = redact_url(url);
    // Migrating needs no signing key: the first replica records its key when it starts.
    let mut client =
        vigil_pgstore::connect_client(url).map_err(|e| format!("--db {shown}: {e}"))?;
    vigil_pgstore::migrate(&mut client).map_err(|e| format!("--db {shown}: {e}"))?;
    let mut found = std::collections::BTreeMap::new();
    for row in client
        .query("SELECT component, version FROM schema_version", &[])
        .map_err(|source| vigil_pgstore::PgStoreError::Db {
            operation: "read schema_version",
            source,
        })?
    {
        found.insert(row.get::<_, String>(0), row.get::<_, i64>(1));
    }
    println!("PostgreSQL database {shown} is up to date:");
    for component in vigil_pgstore::schema::COMPONENTS {
        println!(
            "  {:<9} version {} (this build: {})",
            component.name,
            found.get(component.name).copied().unwrap_or(0),
            component.migrations.len()
        );
    }
    Ok(Verdict::Pass)
}

fn copy(from: &std::path::Path, to: &str, audit_key: Option<PathBuf>) -> Result<Verdict, AnyError> {
    let shown = redact_url(to);
    if postgres_url(std::path::Path::new(to)).is_none() {
        return Err(format!("--to {shown}: not a postgres:// URL").into());
    }
    let report = db_copy::copy_sqlite_to_postgres(from, to, audit_key.as_deref())
        .map_err(|e| format!("copying {} to {shown}: {e}", from.display()))?;
    println!("copied {} to {shown}", from.display());
    for table in &report.tables {
        match table.source_rows {
            Some(rows) => println!("  {:<17} {rows:>8} rows", table.table),
            None => println!(
                "  {:<17} {:>8} rows (PostgreSQL only)",
                table.table, table.target_rows
            ),
        }
    }
    for identity in &report.identities {
        println!(
            "  {}.{} continues after {}",
            identity.table, identity.column, identity.last_value
        );
    }
    println!(
        "  audit log: {} entries, root {}",
        report.target_tree_size,
        hex::encode(report.target_root)
    );
    println!("  audit key: {}", report.audit_key);
    let differences = report.differences();
    if differences.is_empty() {
        if let Ok(verified) = &report.verification {
            println!(
                "OK: same rows in every table, same tree and root; the PostgreSQL log verifies ({} checkpoints)",
                verified.checkpoints_verified
            );
        }
        println!(
            "serve it with: vigil serve --db {shown} --audit-key {}",
            audit_key
                .unwrap_or_else(|| vigil_verifier::store::audit_key_path(from))
                .display()
        );
        Ok(Verdict::Pass)
    } else {
        for difference in &differences {
            println!("DIFFERS: {difference}");
        }
        Ok(Verdict::Fail)
    }
}
