//! The store and appraisal settings shared by the commands that open the verifier in-process,
//! and the channel to a running verifier.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vigil_verifier::attest::{Verifier, VerifierConfig};
use vigil_verifier::store::Store;

use crate::AnyError;

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The embedded SQLite database (created if missing).
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    pub(crate) db: PathBuf,
    /// How long a nonce stays valid, in seconds.
    #[arg(
        long,
        env = "VIGIL_NONCE_TTL",
        default_value_t = vigil_verifier::nonce::DEFAULT_NONCE_TTL_SECS
    )]
    pub(crate) nonce_ttl: i64,
    /// DEVELOPMENT ONLY: trust an unregistered node's AK on first contact instead of failing.
    #[arg(long)]
    pub(crate) tofu: bool,
    /// Lifetime of a signed attestation result (EAR `exp` - `iat`), in seconds.
    #[arg(
        long,
        env = "VIGIL_RESULT_TTL",
        default_value_t = vigil_verifier::attest::DEFAULT_RESULT_TTL_SECS
    )]
    pub(crate) result_ttl: i64,
    /// Pass nodes whose group has no baseline on authenticity alone (status "warning").
    /// Without it such nodes fail: nothing says what is trusted.
    #[arg(long)]
    pub(crate) allow_no_baseline: bool,
    /// Ask every attester for its whole IMA list (set by `baseline capture --node`).
    #[arg(skip)]
    pub(crate) full_ima_lists: bool,
    /// Directory of NVIDIA RIMs (SWID tags) for GPU measurement comparison.
    #[arg(long, env = "VIGIL_RIM_DIR")]
    pub(crate) rim_dir: Option<PathBuf>,
    /// Directory of GPU device identity root certificates (PEM/DER) trusted instead of
    /// NVIDIA's pinned root (test fleets, private PKIs).
    #[arg(long, env = "VIGIL_GPU_ROOTS")]
    pub(crate) gpu_roots: Option<PathBuf>,
    /// Directory of RIM signing root certificates (PEM/DER) trusted instead of NVIDIA's
    /// pinned RIM root; separate from --gpu-roots.
    #[arg(long, env = "VIGIL_RIM_ROOTS")]
    pub(crate) rim_roots: Option<PathBuf>,
    /// Huawei CA certificates (PEM/DER) that Ascend NPU identity attestation keys must chain
    /// to; Vigil ships none.
    #[arg(long, env = "VIGIL_NPU_CA_DIR")]
    pub(crate) npu_ca_dir: Option<PathBuf>,
    /// Trusted baseline-signing keys (`ed25519 <hex> [label]` per line): when given, every
    /// baseline must carry a detached signature by one of them.
    #[arg(long, env = "VIGIL_BASELINE_KEYS")]
    pub(crate) baseline_keys: Option<PathBuf>,
    /// Certificate directory (`vigil dev-certs DIR` layout): mutual TLS to attesters and to
    /// `--verifier` where the command has it; for `serve`, also the server's own certificate
    /// and the client CA.
    #[arg(long, env = "VIGIL_TLS_DIR")]
    pub(crate) tls_dir: Option<PathBuf>,
    /// The audit log's checkpoint-signing key (PKCS#8 DER; created if missing). Default: next
    /// to the SQLite database. Required with PostgreSQL: every replica signs with this one
    /// key (docs/replicas.md).
    #[arg(long, env = "VIGIL_AUDIT_KEY")]
    pub(crate) audit_key: Option<PathBuf>,
    /// This replica's name in node leases, with PostgreSQL (default: host name and process
    /// id). Two live replicas must not share one.
    #[arg(long, env = "VIGIL_REPLICA_ID")]
    pub(crate) replica_id: Option<String>,
}

impl StoreArgs {
    /// A local database with every appraisal setting at its default (commands that only read
    /// or write the store).
    pub(crate) fn local(db: PathBuf) -> Self {
        StoreArgs {
            db,
            nonce_ttl: vigil_verifier::nonce::DEFAULT_NONCE_TTL_SECS,
            tofu: false,
            result_ttl: vigil_verifier::attest::DEFAULT_RESULT_TTL_SECS,
            allow_no_baseline: false,
            full_ima_lists: false,
            rim_dir: None,
            gpu_roots: None,
            rim_roots: None,
            npu_ca_dir: None,
            baseline_keys: None,
            tls_dir: None,
            audit_key: None,
            replica_id: None,
        }
    }

    /// What the database is, for messages: the file, or the URL without its password.
    pub(crate) fn database_label(&self) -> String {
        match self.postgres_url() {
            Some(url) => vigil_pgstore::redacted(url),
            None => self.db.display().to_string(),
        }
    }

    /// The PostgreSQL URL when `--db` names one (`postgres://` or `postgresql://`).
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        postgres_url(&self.db)
    }
}

/// `db` as a PostgreSQL URL, when it is one (`postgres://…` or `postgresql://…`); anything
/// else is a SQLite file.
pub(crate) fn postgres_url(db: &std::path::Path) -> Option<&str> {
    db.to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// A channel to the running verifier at `url`, as `--as ROLE` or else `role` (mutual TLS when
/// --tls-dir is given).
pub(crate) async fn verifier_channel(
    url: &str,
    tls_dir: Option<&std::path::Path>,
    as_role: Option<&str>,
    role: vigil_tls::Role,
) -> Result<tonic::transport::Channel, AnyError> {
    let tls = super::nodes::client_tls(tls_dir, as_role, role)?;
    // The error names the verifier, its address, and what to do (connect::channel probes).
    Ok(vigil_verifier::connect::channel(url, tls.as_ref()).await?)
}

/// The paths a verifier is opened with, checked before anything is created: the database's
/// directory, the RIM directory, the baseline-keys file, the TLS directory.
pub(crate) fn check_store_paths(args: &StoreArgs) -> Result<(), AnyError> {
    // A PostgreSQL URL has no directory to check; the connection is checked at open.
    if args.postgres_url().is_none() {
        let parent = args
            .db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(format!(
                "--db {}: the directory {} does not exist",
                args.db.display(),
                parent.display()
            )
            .into());
        }
    }
    for (flag, dir) in [
        ("--rim-dir", &args.rim_dir),
        ("--gpu-roots", &args.gpu_roots),
        ("--rim-roots", &args.rim_roots),
        ("--npu-ca-dir", &args.npu_ca_dir),
        ("--tls-dir", &args.tls_dir),
    ] {
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(format!("{flag} {}: not a directory", dir.display()).into());
        }
    }
    if let Some(file) = &args.baseline_keys
        && !file.is_file()
    {
        return Err(format!("--baseline-keys {}: no such file", file.display()).into());
    }
    Ok(())
}

pub(crate) fn open_verifier(args: &StoreArgs) -> Result<Arc<Verifier>, AnyError> {
    check_store_paths(args)?;
    if args.nonce_ttl <= 0 {
        return Err("--nonce-ttl must be positive".into());
    }
    if args.result_ttl <= 0 {
        return Err("--result-ttl must be positive".into());
    }
    let config = VerifierConfig {
        nonce_ttl_secs: args.nonce_ttl,
        allow_tofu: args.tofu,
        allow_no_baseline: args.allow_no_baseline,
        result_ttl_secs: args.result_ttl,
        ima_full_lists: args.full_ima_lists,
        ..VerifierConfig::default()
    };
    let (verifier, key_path) = match args.postgres_url() {
        Some(url) => {
            let Some(audit_key) = &args.audit_key else {
                return Err("--db postgres://…: give --audit-key FILE (the checkpoint-signing key every replica shares; created if missing)".into());
            };
            let key = vigil_verifier::store::load_or_create_audit_key(Some(audit_key))
                .map_err(|e| format!("--audit-key {}: {e}", audit_key.display()))?;
            let replica_id = args.replica_id.clone().unwrap_or_else(default_replica_id);
            let pool = vigil_verifier::store_pg::PgPool::connect(url, Arc::new(key), &replica_id)
                .map_err(|e| format!("opening {}: {e}", vigil_pgstore::redacted(url)))?;
            (
                Verifier::on_postgres(pool, config),
                result_key_path(audit_key),
            )
        }
        None => {
            if let Some(audit_key) = &args.audit_key {
                return Err(format!(
                    "--audit-key {}: the SQLite store keeps its key beside the database ({}); --audit-key is for --db postgres://…",
                    audit_key.display(),
                    vigil_verifier::store::audit_key_path(&args.db).display()
                )
                .into());
            }
            let store =
                Store::open(&args.db).map_err(|e| format!("opening {}: {e}", args.db.display()))?;
            (Verifier::new(store, config), result_key_path(&args.db))
        }
    };
    let result_key = vigil_ear::ResultSigningKey::load_or_generate(&key_path)
        .map_err(|e| format!("result signing key {}: {e}", key_path.display()))?;
    let mut verifier = verifier.with_result_key(result_key);
    if let Some(dir) = &args.rim_dir {
        let rims =
            vigil_nvidia::RimStore::load_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        verifier = verifier.with_rims(rims);
    }
    if args.gpu_roots.is_some() || args.rim_roots.is_some() {
        let roots =
            super::gpu::load_gpu_roots(args.gpu_roots.as_deref(), args.rim_roots.as_deref())?;
        verifier = verifier.with_gpu_roots(roots);
    }
    if let Some(dir) = &args.npu_ca_dir {
        let roots = vigil_verifier::evidence::ascend::AscendRoots::load_dir(dir)
            .map_err(|e| format!("--npu-ca-dir {}: {e}", dir.display()))?;
        verifier = verifier.with_npu_roots(roots);
    }
    if let Some(dir) = &args.tls_dir {
        verifier = verifier.with_client_tls(vigil_verifier::connect::ClientTls::new(
            dir,
            vigil_tls::Role::Verifier,
        ));
    }
    if let Some(path) = &args.baseline_keys {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = vigil_verifier::baseline::signature::parse_trusted_keys(
            &path.display().to_string(),
            &text,
        )?;
        verifier = verifier.with_baseline_keys(keys);
    }
    Ok(Arc::new(verifier))
}

/// `host-pid`: unique among live replicas without configuration.
fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Where the result-signing key of the database at `db` is kept (created on first start).
pub(crate) fn result_key_path(db: &std::path::Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".result-key");
    db.with_file_name(name)
}

pub(crate) fn open_existing_store(db: &std::path::Path) -> Result<Store, AnyError> {
    if let Some(url) = postgres_url(db) {
        return Err(format!(
            "--db {}: this command reads an embedded SQLite store; with PostgreSQL use a replica's gRPC API (`--verifier`), `vigil audit verify --db <URL>`, or `vigil db` (docs/replicas.md)",
            vigil_pgstore::redacted(url)
        )
        .into());
    }
    if !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    Ok(Store::open(db).map_err(|e| format!("opening {}: {e}", db.display()))?)
}
