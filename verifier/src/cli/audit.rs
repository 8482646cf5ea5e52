//! `vigil audit …`: the tamper-evident audit log.

use std::path::PathBuf;

use clap::Subcommand;
use vigil_verifier::attest::VerifierConfig;
use vigil_verifier::report::{Verdict, format_unix_utc};

use super::store::open_existing_store;
use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// List entries, oldest first.
    List {
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
        /// Only entries about this node.
        #[arg(long)]
        node: Option<String>,
        /// Only entries of this kind (verdict, node.registered, node.removed, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only entries at or after this time (`2026-11-28T00:00:00Z` or Unix seconds).
        #[arg(long)]
        since: Option<String>,
        /// Only verdicts with this status (pass or fail).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one entry in full.
    Show {
        index: u64,
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
    /// Recompute the whole tree, check every checkpoint signature and their consistency.
    /// With `--db postgres://…`, a snapshot of the log is exported to a temporary SQLite file
    /// and verified the same way.
    Verify {
        /// A SQLite file, or `postgres://user@host:port/db` (password from the URL,
        /// PGPASSWORD or VIGIL_DB_PASSWORD_FILE).
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
        /// The audit key to trust (`vigil audit key` prints it); default: the key beside the
        /// database (PostgreSQL: the signer it records).
        #[arg(long)]
        key: Option<String>,
        /// PostgreSQL only: the audit key file the replicas sign with, needed to open the store.
        #[arg(long, env = "VIGIL_AUDIT_KEY")]
        audit_key: Option<PathBuf>,
        /// A checkpoint note saved earlier: the log must still contain exactly that tree.
        #[arg(long)]
        from: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Inclusion proof of one entry in the latest signed checkpoint.
    Prove {
        index: u64,
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
    /// Export entries, checkpoints, public key and referenced evidence as one JSON bundle.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
    /// Verify an exported bundle with nothing but the bundle and the trusted key.
    VerifyBundle {
        bundle: PathBuf,
        /// The trusted audit key, as `vigil audit key` prints it.
        #[arg(long)]
        key: String,
    },
    /// Re-run the appraisal of a recorded verdict on its stored evidence; exit 1 if it disagrees.
    Reappraise {
        index: u64,
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
        /// The Huawei CAs the verifier used for Ascend NPUs (their attestation is re-checked).
        #[arg(long, env = "VIGIL_NPU_CA_DIR")]
        npu_ca_dir: Option<PathBuf>,
        /// The GPU device roots the verifier was given (`vigil serve --gpu-roots`), if any.
        #[arg(long, env = "VIGIL_GPU_ROOTS")]
        gpu_roots: Option<PathBuf>,
        /// The RIM roots the verifier was given (`vigil serve --rim-roots`), if any.
        #[arg(long, env = "VIGIL_RIM_ROOTS")]
        rim_roots: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the audit public key (note verifier-key format: name+hash+base64).
    Key {
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
}

/// The log `audit verify` checks: a SQLite store, or a SQLite snapshot of a PostgreSQL log
/// (vigil-audit's verification runs on SQLite; the snapshot is one consistent state).
enum AuditSource {
    Sqlite(vigil_verifier::store::Store),
    Postgres {
        snapshot: vigil_verifier::db_copy::AuditSnapshot,
        /// The database, its password masked.
        url: String,
        signer: vigil_audit::AuditPublicKey,
    },
}

impl AuditSource {
    fn open(db: &std::path::Path, audit_key: Option<&std::path::Path>) -> Result<Self, AnyError> {
        use vigil_verifier::db_copy;
        let Some(url) = super::store::postgres_url(db) else {
            return Ok(AuditSource::Sqlite(open_existing_store(db)?));
        };
        let shown = db_copy::redact_url(url);
        // Read-only: no signing key needed. The signer trusted is the key file when given,
        // else the one the database records (as a SQLite store trusts the key beside it);
        // `--key` checks against a key the auditor holds.
        let mut client =
            vigil_pgstore::connect_client(url).map_err(|e| format!("--db {shown}: {e}"))?;
        let signer = match audit_key {
            Some(path) => db_copy::load_audit_key(path)
                .map_err(|e| format!("--audit-key: {e}"))?
                .public_key(),
            None => {
                let recorded = vigil_pgstore::recorded_signer(&mut client)
                    .map_err(|e| format!("--db {shown}: {e}"))?
                    .ok_or_else(|| format!("--db {shown}: no replica has signed this log yet"))?;
                vigil_audit::AuditPublicKey::from_verifier_key(&recorded)
                    .map_err(|e| format!("--db {shown}: recorded audit key: {e}"))?
            }
        };
        let snapshot = db_copy::export_audit_snapshot(&mut client)
            .map_err(|e| format!("--db {shown}: exporting the audit log: {e}"))?;
        // Closed here, outside any async context (the client runs a runtime of its own).
        drop(client);
        Ok(AuditSource::Postgres {
            snapshot,
            url: shown,
            signer,
        })
    }

    fn connection(&self) -> &rusqlite::Connection {
        match self {
            AuditSource::Sqlite(store) => store.connection(),
            AuditSource::Postgres { snapshot, .. } => snapshot.connection(),
        }
    }

    fn audit_public_key(&self) -> vigil_audit::AuditPublicKey {
        match self {
            AuditSource::Sqlite(store) => store.audit_public_key(),
            AuditSource::Postgres { signer, .. } => signer.clone(),
        }
    }
}

pub(crate) fn audit_command(command: AuditCommand) -> Result<Verdict, AnyError> {
    use vigil_audit::AuditPublicKey;
    match command {
        AuditCommand::List {
            db,
            node,
            kind,
            since,
            status,
            json,
        } => {
            let since = since
                .as_deref()
                .map(|t| {
                    vigil_verifier::report::parse_utc(t)
                        .ok_or_else(|| format!("--since {t:?}: not a UTC time or Unix seconds"))
                })
                .transpose()?;
            if let Some(status) = status.as_deref()
                && !matches!(status, "pass" | "fail")
            {
                return Err(format!("--status must be pass or fail, not {status:?}").into());
            }
            let store = open_existing_store(&db)?;
            let size = vigil_audit::tree_size(store.connection())?;
            let entries = vigil_audit::read_entries(store.connection(), 0, size)?;
            let selected: Vec<_> = entries
                .iter()
                .filter(|e| node.as_deref().is_none_or(|n| e.entry.subject == n))
                .filter(|e| kind.as_deref().is_none_or(|k| e.entry.kind == k))
                .filter(|e| since.is_none_or(|t| e.entry.time >= t))
                .filter(|e| {
                    status.as_deref().is_none_or(|s| {
                        e.entry.kind == "verdict" && e.entry.body["verdict"].as_str() == Some(s)
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&selected)?);
                return Ok(Verdict::Pass);
            }
            println!(
                "{:>5}  {:<20}  {:<17}  {:<24}  summary",
                "index", "time (UTC)", "kind", "subject"
            );
            for stored in &selected {
                let body = &stored.entry.body;
                let summary = match stored.entry.kind.as_str() {
                    "verdict" => body["result"]["checks"]
                        .as_array()
                        .map(|checks| {
                            let failed: Vec<&str> = checks
                                .iter()
                                .filter(|c| c["passed"] == false)
                                .filter_map(|c| c["name"].as_str())
                                .collect();
                            if failed.is_empty() {
                                format!(
                                    "{} ({} checks)",
                                    body["verdict"].as_str().unwrap_or("?").to_uppercase(),
                                    checks.len()
                                )
                            } else {
                                format!(
                                    "{} failed: {}",
                                    body["verdict"].as_str().unwrap_or("?").to_uppercase(),
                                    failed.join(", ")
                                )
                            }
                        })
                        .unwrap_or_default(),
                    "node.registered" => format!(
                        "group {} AK trust {}",
                        body["group"].as_str().unwrap_or("?"),
                        body["ak_trust"].as_str().unwrap_or("?")
                    ),
                    "baseline.version" => format!(
                        "version {} ({} rules) by {}: {}",
                        body["version"],
                        body["rules"],
                        body["author"].as_str().unwrap_or("?"),
                        body["reason"].as_str().unwrap_or("?")
                    ),
                    "baseline.assigned" => format!(
                        "-> {} (version {} now) by {}: {}",
                        body["baseline"].as_str().unwrap_or("?"),
                        body["version_now"],
                        body["author"].as_str().unwrap_or("?"),
                        body["reason"].as_str().unwrap_or("?")
                    ),
                    _ => String::new(),
                };
                println!(
                    "{:>5}  {:<20}  {:<17}  {:<24}  {summary}",
                    stored.index,
                    format_unix_utc(stored.entry.time),
                    stored.entry.kind,
                    stored.entry.subject
                );
            }
            println!("{} of {size} entries", selected.len());
            Ok(Verdict::Pass)
        }
        AuditCommand::Show { index, db } => {
            let store = open_existing_store(&db)?;
            let entry = vigil_audit::get_entry(store.connection(), index)?
                .ok_or_else(|| format!("no audit entry {index}"))?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            Ok(Verdict::Pass)
        }
        AuditCommand::Verify {
            db,
            key,
            audit_key,
            from,
            json,
        } => {
            let store = AuditSource::open(&db, audit_key.as_deref())?;
            if let AuditSource::Postgres { snapshot, url, .. } = &store {
                let line = format!(
                    "verifying a snapshot of {} entries exported from {url}",
                    snapshot.entries
                );
                if json {
                    eprintln!("vigil: {line}");
                } else {
                    println!("{line}");
                }
            }
            let trusted = match key {
                Some(text) => {
                    AuditPublicKey::from_verifier_key(&text).map_err(|e| format!("--key: {e}"))?
                }
                None => {
                    eprintln!(
                        "vigil: trusting the audit key {}; pass --key to check against a key you hold",
                        match &store {
                            AuditSource::Sqlite(_) => "stored beside the database",
                            AuditSource::Postgres { .. } => "the database records as its signer",
                        }
                    );
                    store.audit_public_key()
                }
            };
            if let Some(path) = &from {
                let note = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let earlier =
                    match vigil_audit::verify_checkpoint(&note, std::slice::from_ref(&trusted)) {
                        Ok(checkpoint) => checkpoint,
                        Err(error) => {
                            println!(
                                "TAMPERED: the checkpoint in {} does not verify: {error}",
                                path.display()
                            );
                            return Ok(Verdict::Fail);
                        }
                    };
                let now_root = vigil_audit::root_hash(store.connection(), earlier.tree_size);
                if now_root.as_ref().ok() != Some(&earlier.root_hash) {
                    println!(
                        "TAMPERED: the log no longer contains the tree of size {} signed at {} (root {})",
                        earlier.tree_size,
                        format_unix_utc(earlier.time),
                        hex::encode(earlier.root_hash)
                    );
                    return Ok(Verdict::Fail);
                }
                println!(
                    "consistent with the checkpoint of size {} from {}",
                    earlier.tree_size,
                    format_unix_utc(earlier.time)
                );
            }
            match vigil_audit::verify_log(store.connection(), &[trusted]) {
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        println!(
                            "OK: {} entries, root {}, {} checkpoints verified, {} entries after the newest checkpoint",
                            report.tree_size,
                            hex::encode(report.root_hash),
                            report.checkpoints_verified,
                            report.unsigned_entries
                        );
                    }
                    Ok(Verdict::Pass)
                }
                Err(error) => {
                    println!("TAMPERED: {error}");
                    Ok(Verdict::Fail)
                }
            }
        }
        AuditCommand::Prove { index, db } => {
            let store = open_existing_store(&db)?;
            let note = vigil_audit::latest_checkpoint_note(store.connection())?
                .ok_or("no checkpoint yet")?;
            let checkpoint = vigil_audit::parse_checkpoint(&note)?;
            let proof =
                vigil_audit::inclusion_proof(store.connection(), index, checkpoint.tree_size)?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "proof": proof, "checkpoint": note })
                )?
            );
            Ok(Verdict::Pass)
        }
        AuditCommand::Export { out, db } => {
            let store = open_existing_store(&db)?;
            let bundle =
                vigil_audit::export_bundle(store.connection(), &[store.audit_public_key()])?;
            std::fs::write(&out, bundle.to_json()?)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(Verdict::Pass)
        }
        AuditCommand::VerifyBundle { bundle, key } => {
            let trusted =
                AuditPublicKey::from_verifier_key(&key).map_err(|e| format!("--key: {e}"))?;
            let bytes = std::fs::read(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
            match vigil_audit::verify_bundle(&bytes, &[trusted]) {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    Ok(Verdict::Pass)
                }
                Err(error) => {
                    println!("TAMPERED: {error}");
                    Ok(Verdict::Fail)
                }
            }
        }
        AuditCommand::Reappraise {
            index,
            db,
            npu_ca_dir,
            gpu_roots,
            rim_roots,
            json,
        } => {
            let gpu_roots = super::gpu::load_gpu_roots(gpu_roots.as_deref(), rim_roots.as_deref())?;
            let store = open_existing_store(&db)?;
            let npu_roots = npu_ca_dir
                .as_deref()
                .map(vigil_verifier::evidence::ascend::AscendRoots::load_dir)
                .transpose()?;
            let result = vigil_verifier::reappraise::reappraise(
                store.connection(),
                index,
                &VerifierConfig::default().required_pcrs,
                npu_roots.as_ref(),
                &gpu_roots,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else if result.agrees {
                println!(
                    "AGREES: entry {index} ({}, recorded {}): {} checks re-run on the stored evidence give the recorded results",
                    result.node_id,
                    result.recorded_verdict.to_uppercase(),
                    result.recomputed.len()
                );
            } else {
                println!(
                    "DISAGREES: entry {index} ({}, recorded {})",
                    result.node_id,
                    result.recorded_verdict.to_uppercase()
                );
                for difference in &result.differences {
                    println!("  {difference}");
                }
            }
            Ok(if result.agrees {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
        AuditCommand::Key { db } => {
            let store = open_existing_store(&db)?;
            println!("{}", store.audit_public_key().to_verifier_key());
            Ok(Verdict::Pass)
        }
    }
}
