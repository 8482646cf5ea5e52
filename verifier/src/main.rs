//! `vigil`: the verifier's server and command line.
//!
//! Exit codes, for shells and scripts: 0 = verified/pass, 1 = evidence failed a check,
//! 2 = usage, I/O or infrastructure error (nothing was concluded).

// Output piped into `head` and the like: end quietly when the reader goes away, as
// command-line tools do, with the status a SIGPIPE death would give (141). SIGPIPE itself
// stays ignored (Rust's default): network writes to a peer that hung up must be errors,
// not the death of the process.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tonic::transport::Server;
use vigil_proto::v1::AttestNodeRequest;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::verifier_server::VerifierServer;
use vigil_verifier::attest::{Verifier, VerifierConfig};
use vigil_verifier::evidence::tpm::offline::{QuoteFiles, check_quote_files};
use vigil_verifier::pull::{MAX_EVIDENCE_BYTES, attest_node, attest_registered_node};
use vigil_verifier::report::{AttestationReport, Verdict, format_unix_utc};
use vigil_verifier::service::VerifierService;
use vigil_verifier::store::Store;

mod cli;
use cli::baseline::{BaselineCommand, KeysCommand, ResultCommand};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: hardware attestation verifier"
)]
struct Cli {
    /// Configuration file (TOML, docs/configuration.md); default /etc/vigil/vigil.toml when
    /// it exists. Flags override the environment, which overrides the file.
    #[arg(long, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    #[allow(dead_code)] // read before clap parses (vigil_tls::settings)
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `vigil.v1.Verifier` over gRPC (with health and reflection).
    Serve(ServeArgs),
    /// Challenge one node's attester, appraise its evidence and print the verdict.
    Verify(VerifyArgs),
    /// Register, inspect and remove nodes.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// List the nodes the verifier knows (--db, or --verifier URL).
    Nodes(cli::nodes::NodesArgs),
    /// The tamper-evident audit log: every verdict, registration and removal.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The verdicts recorded in the store, oldest first (--db, or --verifier URL).
    History(cli::nodes::HistoryArgs),
    /// Follow a running verifier's node status changes as they happen (Verifier.Watch).
    Watch(cli::watch::WatchArgs),
    /// Measured-boot event logs: show them, replay them, compare with PCR values.
    Eventlog {
        #[command(subcommand)]
        command: EventlogCommand,
    },
    /// IMA runtime measurement lists: show them, replay them against a quoted PCR 10.
    Ima {
        #[command(subcommand)]
        command: cli::ima::ImaCommand,
    },
    /// Huawei Ascend NPU attestation evidence, verified offline.
    Npu {
        #[command(subcommand)]
        command: cli::npu::NpuCommand,
    },
    /// NVIDIA GPU / NVSwitch attestation reports, verified offline.
    Gpu {
        #[command(subcommand)]
        command: GpuCommand,
    },
    /// Offline checks of TPM quotes.
    Quote {
        #[command(subcommand)]
        command: QuoteCommand,
    },
    /// Baselines: what trusted means per node group (check, put, assign, capture, impact).
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// The keys that verify this verifier's signed results.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// TPM vendor certificates for EK validation.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Make a local CA and certificates for every role, to try mutual TLS out (not for production).
    DevCerts {
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
        /// Also name this host in the server certificate, beyond localhost/127.0.0.1/::1: a DNS
        /// name or an IP address; repeatable (for servers on other hosts).
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<vigil_tls::ServerName>,
    },
    /// Signed attestation results (EAR JWTs): exit 0 when the token verifies.
    Result {
        #[command(subcommand)]
        command: ResultCommand,
    },
}

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The embedded SQLite database (created if missing).
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    db: PathBuf,
    /// How long a nonce stays valid, in seconds.
    #[arg(
        long,
        env = "VIGIL_NONCE_TTL",
        default_value_t = vigil_verifier::nonce::DEFAULT_NONCE_TTL_SECS
    )]
    nonce_ttl: i64,
    /// DEVELOPMENT ONLY: trust an unregistered node's AK on first contact instead of failing.
    #[arg(long)]
    tofu: bool,
    /// Lifetime of a signed attestation result (EAR `exp` - `iat`), in seconds.
    #[arg(
        long,
        env = "VIGIL_RESULT_TTL",
        default_value_t = vigil_verifier::attest::DEFAULT_RESULT_TTL_SECS
    )]
    result_ttl: i64,
    /// Pass nodes whose group has no baseline on authenticity alone (status "warning").
    /// Without it such nodes fail: nothing says what is trusted.
    #[arg(long)]
    allow_no_baseline: bool,
    /// Ask every attester for its whole IMA list (set by `baseline capture --node`).
    #[arg(skip)]
    full_ima_lists: bool,
    /// Directory of NVIDIA RIMs (SWID tags) for GPU measurement comparison.
    #[arg(long, env = "VIGIL_RIM_DIR")]
    rim_dir: Option<PathBuf>,
    /// Huawei CA certificates (PEM/DER) that Ascend NPU identity attestation keys must chain
    /// to; Vigil ships none.
    #[arg(long, env = "VIGIL_NPU_CA_DIR")]
    npu_ca_dir: Option<PathBuf>,
    /// Trusted baseline-signing keys (`ed25519 <hex> [label]` per line): when given, every
    /// baseline must carry a detached signature by one of them.
    #[arg(long, env = "VIGIL_BASELINE_KEYS")]
    baseline_keys: Option<PathBuf>,
    /// Certificate directory (`vigil dev-certs DIR` layout): mutual TLS to attesters and to
    /// `--verifier`; for `serve`, also the server's own certificate and the client CA.
    #[arg(long, env = "VIGIL_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Role whose client certificate to present to `--verifier` (default: the command's).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE")]
    as_role: Option<String>,
}

impl StoreArgs {
    /// The client certificate for calling a running verifier as `default_role`.
    pub(crate) fn client_tls(
        &self,
        default_role: vigil_tls::Role,
    ) -> Result<Option<vigil_verifier::connect::ClientTls>, AnyError> {
        let role = match &self.as_role {
            Some(name) => vigil_tls::Role::from_name(name).ok_or_else(|| {
                format!("--as {name:?}: roles are attester, orchestrator, admin, auditor, verifier")
            })?,
            None => default_role,
        };
        Ok(self
            .tls_dir
            .as_ref()
            .map(|dir| vigil_verifier::connect::ClientTls::new(dir, role)))
    }
}

/// A channel to the running verifier at `url`, as `role` (mutual TLS when --tls-dir is given).
pub(crate) async fn verifier_channel(
    url: &str,
    store: &StoreArgs,
    role: vigil_tls::Role,
) -> Result<tonic::transport::Channel, AnyError> {
    let tls = store.client_tls(role)?;
    // The error names the verifier, its address, and what to do (connect::channel probes).
    Ok(vigil_verifier::connect::channel(url, tls.as_ref()).await?)
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:7444")]
    listen: String,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    ek: EkPolicyArgs,
    /// Re-attest every registered node this often, in seconds (0: never).
    #[arg(long, env = "VIGIL_POLL_INTERVAL", default_value_t = 60)]
    poll_interval: u64,
    /// Most re-attestations in flight at once.
    #[arg(long, env = "VIGIL_POLL_CONCURRENCY", default_value_t = 8)]
    poll_concurrency: usize,
    /// DEVELOPMENT ONLY: plaintext gRPC and no client authentication (every caller may do
    /// everything). Without it, --tls-dir is required.
    #[arg(long)]
    dev: bool,
    /// POST every node status change with its signed result (JSON) to this http:// URL.
    #[arg(long, env = "VIGIL_WEBHOOK")]
    webhook: Option<String>,
    /// Log lines on stderr as `text` or `json` (one object a line); the level comes from
    /// RUST_LOG (default info).
    #[arg(long, env = "VIGIL_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: vigil_verifier::logging::LogFormat,
    /// Serve Prometheus/OpenMetrics text at http://ADDR/metrics (plaintext, counts only:
    /// keep it on loopback or a monitoring network).
    #[arg(long, env = "VIGIL_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Delete the stored evidence of verdicts older than DAYS, at start and then hourly
    /// (default: keep it forever). Audit entries keep the evidence digest and still verify;
    /// `vigil audit reappraise` of such a verdict says its evidence was pruned.
    #[arg(long, env = "VIGIL_RETAIN_EVIDENCE", value_name = "DAYS")]
    retain_evidence: Option<u32>,
}

#[derive(Args)]
struct EkPolicyArgs {
    /// Directory of trusted TPM vendor CA certificates (roots and intermediates).
    #[arg(long, env = "VIGIL_EK_ROOTS")]
    ek_roots: Option<PathBuf>,
    /// SHA-256 (hex) of an EK TPM2B_PUBLIC to accept without a certificate; repeatable or
    /// comma-separated.
    #[arg(long, env = "VIGIL_EK_ALLOW", value_delimiter = ',')]
    ek_allow: Vec<String>,
}

impl EkPolicyArgs {
    fn policy(
        &self,
    ) -> Result<vigil_verifier::registration::register::RegistrationPolicy, AnyError> {
        use vigil_verifier::registration::trust::TrustStore;
        let trust = match &self.ek_roots {
            Some(dir) => TrustStore::load_dir(dir)?,
            None => TrustStore::default(),
        };
        let ek_allowlist = self
            .ek_allow
            .iter()
            .map(|h| hex::decode(h.trim()).map_err(|e| format!("--ek-allow {h:?} is not hex: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vigil_verifier::registration::register::RegistrationPolicy {
            trust,
            ek_allowlist,
        })
    }
}

#[derive(Args)]
struct VerifyArgs {
    /// A registered node, attested at its registered address (looked up in --db, or by
    /// --verifier).
    #[arg(
        value_name = "NODE-NAME",
        required_unless_present = "address",
        conflicts_with = "address"
    )]
    name: Option<String>,
    /// Challenge the attester at this address directly (`host:port` or a URL), registered
    /// or not.
    #[arg(long, value_name = "HOST:PORT", alias = "node")]
    address: Option<String>,
    /// Ask this running verifier (`vigil serve`) instead of verifying in this process.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Prove a node's AK lives in a genuine TPM (EK certificate + credential activation)
    /// and bind it to the node.
    Register(Box<RegisterArgs>),
    /// Show one node.
    Status {
        node: String,
        #[command(flatten)]
        target: cli::nodes::Target,
    },
    /// Forget a node (its verdict history stays); through a verifier: admin only.
    Remove {
        node: String,
        #[command(flatten)]
        target: cli::nodes::Target,
    },
}

#[derive(Args)]
struct RegisterArgs {
    /// The node's attester, `host:port` or a URL.
    address: String,
    /// The node group (baselines apply per group).
    #[arg(long, default_value = "default")]
    group: String,
    #[command(flatten)]
    ek: EkPolicyArgs,
    /// Ask this running verifier (`vigil serve`, with its own EK policy) to register the node.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
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
    Verify {
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
        /// The audit key to trust (`vigil audit key` prints it); default: the key beside the database.
        #[arg(long)]
        key: Option<String>,
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
        #[arg(long)]
        json: bool,
    },
    /// Print the audit public key (note verifier-key format: name+hash+base64).
    Key {
        #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum EventlogCommand {
    /// Print every event (like `tpm2_eventlog`).
    Show {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Typed boot claims (Secure Boot, boot apps, separators, ...), each with its provenance.
    Claims {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replay the log per bank; with --pcrs, compare and exit 1 on a mismatch.
    Replay {
        file: PathBuf,
        /// PCR values: pcrs.json ({bank: {index: hex}}) or `tpm2_pcrread` output.
        #[arg(long)]
        pcrs: Option<PathBuf>,
        /// PCRs not to compare (e.g. 10, which IMA extends).
        #[arg(long, value_delimiter = ',')]
        ignore: Vec<u32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GpuCommand {
    /// Verify a report: parse, signature, certificate chain to NVIDIA's root, FWID, nonce, and
    /// with --rim-dir the measurements against NVIDIA's signed reference manifests.
    Verify {
        /// The report: hex text as NVIDIA's tools write it, or raw bytes.
        #[arg(long)]
        report: PathBuf,
        /// The device certificate chain, PEM.
        #[arg(long)]
        cert_chain: PathBuf,
        /// Directory of RIMs (SWID tags); without it, measurements are not appraised.
        #[arg(long, env = "VIGIL_RIM_DIR")]
        rim_dir: Option<PathBuf>,
        /// The expected 32-byte nonce, hex.
        #[arg(long)]
        nonce: Option<String>,
        /// Verification time, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print every decoded field of a report.
    Show {
        #[arg(long)]
        report: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Extract Microsoft's TrustedTpm.cab (downloaded by you) into a directory for --ek-roots.
    ImportTpmCab {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Replace files that exist with other content.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum QuoteCommand {
    /// Check a quote in tpm2-tools' file formats, like `tpm2_checkquote`.
    Verify(QuoteVerifyArgs),
}

#[derive(Args)]
struct QuoteVerifyArgs {
    /// AK public key: TPM2B_PUBLIC (`tpm2_createak -u`, `tpm2_readpublic -f tss`) or PEM/DER SPKI.
    #[arg(long)]
    ak_pub: PathBuf,
    /// TPMS_ATTEST (`tpm2_quote -m`).
    #[arg(long)]
    message: PathBuf,
    /// TPMT_SIGNATURE (`tpm2_quote -s`).
    #[arg(long)]
    signature: PathBuf,
    /// PCR values (`tpm2_quote -o`, serialized or `-F values`), or JSON {bank: {index: hex}}.
    #[arg(long)]
    pcrs: Option<PathBuf>,
    /// Expected qualifying data, hex (`tpm2_quote -q`).
    #[arg(long)]
    nonce: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    // The configuration file becomes environment variables that are not already set, before
    // clap reads them: flags > environment > file (docs/configuration.md).
    match vigil_tls::settings::load_from_process(vigil_tls::settings::Program::Vigil) {
        Ok(pairs) => {
            for (name, value) in pairs {
                // SAFETY: first thing in main, before any other thread exists.
                unsafe { std::env::set_var(name, value) };
            }
        }
        Err(error) => {
            eprintln!("vigil: error: {error}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args).map(|()| Verdict::Pass),
        Command::Verify(args) => verify(args),
        Command::History(args) => cli::nodes::history(args),
        Command::Watch(args) => cli::watch::watch(args),
        Command::Audit { command } => audit_command(command),
        Command::Node { command } => node_command(command),
        Command::Nodes(args) => cli::nodes::nodes(args),
        Command::Quote {
            command: QuoteCommand::Verify(args),
        } => quote_verify(args),
        Command::Eventlog { command } => eventlog_command(command),
        Command::Ima { command } => cli::ima::ima_command(command),
        Command::Npu { command } => cli::npu::npu_command(command),
        Command::Gpu { command } => gpu_command(command),
        Command::Baseline { command } => cli::baseline::baseline_command(command),
        Command::Keys { command } => cli::baseline::keys_command(command),
        Command::Result { command } => cli::baseline::result_command(command),
        Command::DevCerts { dir, force, sans } => dev_certs(&dir, force, &sans),
        Command::Certs {
            command: CertsCommand::ImportTpmCab { file, out, force },
        } => import_tpm_cab(&file, &out, force),
    };
    match outcome {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::Fail) => ExitCode::from(1),
        Err(error) => {
            eprintln!("vigil: error: {error}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, AnyError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The paths a verifier is opened with, checked before anything is created: the database's
/// directory, the RIM directory, the baseline-keys file, the TLS directory.
fn check_store_paths(args: &StoreArgs) -> Result<(), AnyError> {
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
    for (flag, dir) in [
        ("--rim-dir", &args.rim_dir),
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
    let store = Store::open(&args.db).map_err(|e| format!("opening {}: {e}", args.db.display()))?;
    let key_path = result_key_path(&args.db);
    let result_key = vigil_ear::ResultSigningKey::load_or_generate(&key_path)
        .map_err(|e| format!("result signing key {}: {e}", key_path.display()))?;
    let mut verifier = Verifier::new(
        store,
        VerifierConfig {
            nonce_ttl_secs: args.nonce_ttl,
            allow_tofu: args.tofu,
            allow_no_baseline: args.allow_no_baseline,
            result_ttl_secs: args.result_ttl,
            ima_full_lists: args.full_ima_lists,
            ..VerifierConfig::default()
        },
    )
    .with_result_key(result_key);
    if let Some(dir) = &args.rim_dir {
        let rims =
            vigil_nvidia::RimStore::load_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        verifier = verifier.with_rims(rims);
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

/// Where the result-signing key of the database at `db` is kept (created on first start).
fn result_key_path(db: &std::path::Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".result-key");
    db.with_file_name(name)
}

fn serve(args: ServeArgs) -> Result<(), AnyError> {
    use vigil_proto::v1::registrar_server::RegistrarServer;
    use vigil_verifier::service::RegistrarService;
    vigil_verifier::logging::init(args.log_format);
    let server_tls = match (args.dev, &args.store.tls_dir) {
        (false, Some(dir)) => Some(vigil_tls::server_tls_config_from_dir(dir)?),
        (true, None) => None,
        (true, Some(_)) => return Err("--dev and --tls-dir exclude each other".into()),
        (false, None) => {
            return Err(
                "refusing to serve without mutual TLS: give --tls-dir DIR (`vigil dev-certs DIR` \
                 makes one to try it out), or --dev for plaintext development mode"
                    .into(),
            );
        }
    };
    let webhook = args
        .webhook
        .as_deref()
        .map(vigil_verifier::webhook::WebhookTarget::parse)
        .transpose()?;
    // Every path and the address are checked before anything is created.
    let policy = args.ek.policy()?;
    if args.ek.ek_roots.is_none() && args.ek.ek_allow.is_empty() {
        tracing::warn!(
            "no --ek-roots and no --ek-allow: registration will refuse every node \
             (give the TPM vendor CAs you trust, `vigil certs import-tpm-cab` makes a directory of them)"
        );
    }
    check_store_paths(&args.store)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr()?;
        let metrics_listener = match &args.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?,
            ),
            None => None,
        };
        // One server per database file: taken before the database is opened or created.
        let _server_lock = vigil_verifier::store::lock_for_serving(&args.store.db)?;
        let verifier = open_verifier(&args.store)?;
        if let Some(days) = args.retain_evidence {
            // Before serving, so the first prune is done once the server is listening.
            vigil_verifier::poll::prune_evidence_once(Arc::clone(&verifier), days).await;
            tokio::spawn(vigil_verifier::poll::retain_evidence(Arc::clone(&verifier), days));
        }
        let webhook_target = webhook.as_ref().map(|t| format!("{}:{}", t.host, t.port));
        if let Some(target) = webhook {
            tokio::spawn(vigil_verifier::webhook::run(Arc::clone(&verifier), target));
        }
        let metrics_address = match metrics_listener {
            Some(listener) => {
                let metrics_address = listener.local_addr()?;
                tokio::spawn(serve_metrics(listener, Arc::clone(&verifier)));
                Some(metrics_address)
            }
            None => None,
        };
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<VerifierServer<VerifierService>>()
            .await;
        health_reporter
            .set_serving::<RegistrarServer<RegistrarService>>()
            .await;
        health_reporter
            .set_serving::<vigil_proto::v1::audit_server::AuditServer<vigil_verifier::service::AuditService>>()
            .await;
        health_reporter
            .set_serving::<vigil_proto::v1::baselines_server::BaselinesServer<vigil_verifier::service::BaselinesService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vigil_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        if args.poll_interval > 0 {
            tokio::spawn(vigil_verifier::poll::run(
                Arc::clone(&verifier),
                vigil_verifier::poll::PollConfig {
                    interval: std::time::Duration::from_secs(args.poll_interval),
                    concurrency: args.poll_concurrency,
                },
            ));
        }
        let mut builder = Server::builder();
        let layer = match server_tls {
            Some(tls) => {
                builder = builder.tls_config(tls)?;
                println!(
                    "vigil listening on {address} (database {}, mutual TLS, roles from client certificates)",
                    args.store.db.display()
                );
                vigil_tls::RoleLayer::new()
            }
            None => {
                println!(
                    "vigil listening on {address} (database {})\n\
                     *** DEV MODE: plaintext gRPC, NO client authentication: anyone who can reach this port \
                     may register nodes, change baselines and read the audit log. Never use it outside a lab. ***",
                    args.store.db.display()
                );
                vigil_tls::RoleLayer::dev()
            }
        };
        tracing::info!(
            event = "start",
            listen = %address,
            database = %args.store.db.display(),
            mode = if args.dev { "dev (plaintext, no client authentication)" } else { "mutual TLS" },
            poll_interval_s = args.poll_interval,
            poll_concurrency = args.poll_concurrency,
            metrics = %metrics_address.map(|a| format!("http://{a}/metrics")).unwrap_or_default(),
            webhook = webhook_target.as_deref().unwrap_or(""),
            retain_evidence_days = args.retain_evidence.map(i64::from).unwrap_or(-1),
            version = env!("CARGO_PKG_VERSION"),
            "vigil serve started"
        );
        builder
            .layer(layer)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(vigil_proto::v1::audit_server::AuditServer::new(
                vigil_verifier::service::AuditService::new(Arc::clone(&verifier)),
            ))
            .add_service(RegistrarServer::new(RegistrarService::new(Arc::clone(&verifier), policy)))
            .add_service(
                vigil_proto::v1::baselines_server::BaselinesServer::new(
                    vigil_verifier::service::BaselinesService::new(Arc::clone(&verifier)),
                )
                // A baseline with an IMA allow-list is megabytes; the request carries it whole.
                .max_decoding_message_size(
                    vigil_verifier::baseline::file::MAX_BASELINE_BYTES + 64 * 1024,
                ),
            )
            .add_service(
                VerifierServer::new(VerifierService::new(verifier))
                    .max_decoding_message_size(MAX_EVIDENCE_BYTES),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    shutdown_signal().await;
                    tracing::info!(event = "shutdown", "shutdown requested; finishing requests in flight");
                },
            )
            .await?;
        tracing::info!(event = "stopped", "vigil serve stopped");
        Ok(())
    })
}

/// Serves `GET /metrics` (see `vigil_verifier::metrics::serve_http`); the store-backed
/// gauges are read per scrape on a blocking thread.
async fn serve_metrics(listener: tokio::net::TcpListener, verifier: Arc<Verifier>) {
    vigil_verifier::metrics::serve_http(listener, move || {
        let verifier = Arc::clone(&verifier);
        async move {
            match tokio::task::spawn_blocking(move || verifier.render_metrics()).await {
                Ok(Ok(text)) => text,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "metrics: cannot read the store");
                    String::new()
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics task failed");
                    String::new()
                }
            }
        }
    })
    .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn verify(args: VerifyArgs) -> Result<Verdict, AnyError> {
    let report = runtime()?.block_on(async {
        match &args.verifier {
            Some(url) => {
                let mut client = VerifierClient::new(
                    verifier_channel(url, &args.store, vigil_tls::Role::Orchestrator).await?,
                )
                .max_decoding_message_size(MAX_EVIDENCE_BYTES);
                let result = client
                    .attest_node(AttestNodeRequest {
                        address: args.address.clone().unwrap_or_default(),
                        node_id: args.name.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| match s.code() {
                        // The message says what to do (give --address, ...).
                        tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
                            s.message().to_owned()
                        }
                        code => format!("verifier refused AttestNode: {code}: {}", s.message()),
                    })?
                    .into_inner();
                Ok::<_, AnyError>(AttestationReport::from_proto(&result))
            }
            None => {
                let verifier = open_verifier(&args.store)?;
                match (&args.address, &args.name) {
                    (Some(address), _) => Ok(attest_node(verifier, address).await?),
                    (None, Some(name)) => Ok(attest_registered_node(verifier, name).await?),
                    (None, None) => {
                        Err("give a registered NODE-NAME or --address HOST:PORT".into())
                    }
                }
            }
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.verdict)
}

fn import_tpm_cab(
    file: &std::path::Path,
    out: &std::path::Path,
    force: bool,
) -> Result<Verdict, AnyError> {
    use vigil_verifier::registration::cab;
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    if size > cab::MAX_CABINET_BYTES as u64 {
        return Err(format!("{}: {size} bytes is over the cabinet limit", file.display()).into());
    }
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let report = cab::import_trust_cabinet(&bytes, out, force)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    for (name, count) in &report.imported {
        println!(
            "imported {name} ({count} certificate{})",
            if *count == 1 { "" } else { "s" }
        );
    }
    for (name, reason) in &report.skipped {
        println!("skipped  {name}: {reason}");
    }
    // Prove the result loads the way `vigil serve --ek-roots` will load it.
    let trust = vigil_verifier::registration::trust::TrustStore::load_dir(out)?;
    println!(
        "{} files imported into {} ({} skipped); as an EK trust directory: {} roots, {} intermediates",
        report.imported.len(),
        out.display(),
        report.skipped.len(),
        trust.anchor_count(),
        trust.intermediate_count()
    );
    Ok(Verdict::Pass)
}

fn dev_certs(
    dir: &std::path::Path,
    force: bool,
    sans: &[vigil_tls::ServerName],
) -> Result<Verdict, AnyError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let validity = vigil_tls::DevCertValidity::one_year_from(std::time::SystemTime::now());
    let written = vigil_tls::write_dev_certs_with_names(dir, force, validity, sans)?;
    for path in &written {
        println!("{}", path.display());
    }
    let mut names: Vec<String> = vigil_tls::ServerName::defaults()
        .iter()
        .map(ToString::to_string)
        .collect();
    for name in sans.iter().map(ToString::to_string) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    println!(
        "development CA and certificates in {} (server: {}; one client certificate per role).\n\
         Try: vigil serve --tls-dir {0} ; vigil-attester serve --tls-dir {0} ; vigil verify --verifier https://localhost:7444 --tls-dir {0} ...",
        dir.display(),
        names.join(", ")
    );
    Ok(Verdict::Pass)
}

fn quote_verify(args: QuoteVerifyArgs) -> Result<Verdict, AnyError> {
    let nonce = args
        .nonce
        .as_deref()
        .map(|text| hex::decode(text.trim().trim_start_matches("0x")))
        .transpose()
        .map_err(|e| format!("--nonce is not hex: {e}"))?;
    let files = QuoteFiles::read(
        &args.ak_pub,
        &args.message,
        &args.signature,
        args.pcrs.as_deref(),
    )?;
    let result = check_quote_files(&files, nonce.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", result.render_text());
    }
    Ok(result.verdict)
}

fn node_command(command: NodeCommand) -> Result<Verdict, AnyError> {
    match command {
        NodeCommand::Register(args) => register(*args),
        NodeCommand::Status { node, target } => cli::nodes::node_status(&node, &target),
        NodeCommand::Remove { node, target } => cli::nodes::remove_node(&node, &target),
    }
}

fn register(args: RegisterArgs) -> Result<Verdict, AnyError> {
    use vigil_proto::v1::RegisterNodeRequest;
    use vigil_proto::v1::registrar_client::RegistrarClient;
    use vigil_verifier::registration::register::register_node;
    let report = match &args.verifier {
        Some(url) => runtime()?.block_on(async {
            let mut client = RegistrarClient::new(
                verifier_channel(url, &args.store, vigil_tls::Role::Admin).await?,
            );
            let result = client
                .register_node(RegisterNodeRequest {
                    address: args.address.clone(),
                    group: args.group.clone(),
                })
                .await
                .map_err(|s| {
                    format!(
                        "verifier refused RegisterNode: {}: {}",
                        s.code(),
                        s.message()
                    )
                })?
                .into_inner();
            Ok::<_, AnyError>(AttestationReport::from_proto(&result))
        })?,
        None => {
            let policy = args.ek.policy()?;
            let verifier = open_verifier(&args.store)?;
            runtime()?.block_on(register_node(verifier, &policy, &args.address, &args.group))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.verdict)
}

fn read_event_log(
    path: &std::path::Path,
) -> Result<vigil_verifier::evidence::eventlog::EventLog, AnyError> {
    use vigil_verifier::evidence::eventlog::parse::MAX_LOG_BYTES;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_LOG_BYTES as u64 {
        return Err(format!(
            "{}: {size} bytes exceeds the limit of {MAX_LOG_BYTES}",
            path.display()
        )
        .into());
    }
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(vigil_verifier::evidence::eventlog::parse(&data)
        .map_err(|e| format!("{}: {e}", path.display()))?)
}

fn eventlog_command(command: EventlogCommand) -> Result<Verdict, AnyError> {
    use vigil_verifier::evidence::eventlog::{compare, render, replay};
    match command {
        EventlogCommand::Show { file, json } => {
            let log = read_event_log(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&render::view(&log))?);
            } else {
                print!("{}", render::render_text(&log));
            }
            Ok(Verdict::Pass)
        }
        EventlogCommand::Claims { file, json } => {
            use vigil_verifier::evidence::eventlog::{ClaimStatus, claims};
            let log = read_event_log(&file)?;
            let claims = claims(&log);
            if json {
                println!("{}", serde_json::to_string_pretty(&claims)?);
            } else {
                for c in &claims {
                    print!("{}", render_eventlog_claim(c)?);
                }
            }
            let failed = claims
                .iter()
                .any(|c| matches!(c.status, ClaimStatus::Failed(_)));
            Ok(if failed { Verdict::Fail } else { Verdict::Pass })
        }
        EventlogCommand::Replay {
            file,
            pcrs,
            ignore,
            json,
        } => {
            let log = read_event_log(&file)?;
            let replayed = replay(&log);
            let mismatches = match &pcrs {
                None => Vec::new(),
                Some(path) => {
                    let data =
                        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    let expected = vigil_verifier::evidence::tpm::pcr_files::parse_pcr_file(
                        &data,
                        &Vec::new(),
                    )
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                    compare(&replayed, &expected, &ignore)
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "replay": replayed,
                        "compared": pcrs.is_some(),
                        "mismatches": mismatches,
                    }))?
                );
            } else {
                print!("{}", replayed.render_text());
                if pcrs.is_some() {
                    if mismatches.is_empty() {
                        println!(
                            "MATCH: every compared PCR the log covers replays to the given value"
                        );
                    } else {
                        for m in &mismatches {
                            println!("MISMATCH {m}");
                        }
                    }
                }
            }
            Ok(if mismatches.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
    }
}

/// One `vigil eventlog claims` entry: `name  value  [status; event N, PCR P]`. A list value
/// (dbx hashes, certificates) has one item per line under the claim instead of one long line.
fn render_eventlog_claim(
    c: &vigil_verifier::evidence::eventlog::Claim,
) -> Result<String, AnyError> {
    use vigil_verifier::evidence::eventlog::{ClaimStatus, ClaimValue};
    let status = match &c.status {
        ClaimStatus::Verified => "verified".to_owned(),
        ClaimStatus::Unverifiable(_) => "measured".to_owned(),
        ClaimStatus::Failed(why) => format!("FAILED: {why}"),
    };
    let origin = format!(
        "[{status}; event {}, PCR {}]",
        c.provenance.event, c.provenance.pcr
    );
    Ok(match &c.value {
        ClaimValue::List(items) => {
            let mut out = format!("{:<44} {} items  {origin}\n", c.name, items.len());
            for item in items {
                out.push_str(&format!("    {item}\n"));
            }
            out
        }
        value => {
            let value = serde_json::to_value(value)?;
            format!("{:<44} {}  {origin}\n", c.name, value["value"])
        }
    })
}

fn open_existing_store(db: &std::path::Path) -> Result<Store, AnyError> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    Ok(Store::open(db).map_err(|e| format!("opening {}: {e}", db.display()))?)
}

fn audit_command(command: AuditCommand) -> Result<Verdict, AnyError> {
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
            from,
            json,
        } => {
            let store = open_existing_store(&db)?;
            let trusted = match key {
                Some(text) => {
                    AuditPublicKey::from_verifier_key(&text).map_err(|e| format!("--key: {e}"))?
                }
                None => {
                    eprintln!(
                        "vigil: trusting the audit key stored beside the database; pass --key to check against a key you hold"
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
            json,
        } => {
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

/// Largest report or certificate chain file read.
const MAX_GPU_FILE_BYTES: u64 = 1024 * 1024;

fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, AnyError> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_GPU_FILE_BYTES {
        return Err(format!(
            "{}: {size} bytes exceeds {MAX_GPU_FILE_BYTES}",
            path.display()
        )
        .into());
    }
    Ok(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn gpu_command(command: GpuCommand) -> Result<Verdict, AnyError> {
    match command {
        GpuCommand::Show { report } => {
            let parsed = vigil_nvidia::parse_report_input(&read_bounded(&report)?)
                .map_err(|e| format!("{}: {e}", report.display()))?;
            print!("{parsed}");
            Ok(Verdict::Pass)
        }
        GpuCommand::Verify {
            report,
            cert_chain,
            rim_dir,
            nonce,
            at,
            json,
        } => {
            let report = read_bounded(&report)?;
            let chain = String::from_utf8(read_bounded(&cert_chain)?)
                .map_err(|_| format!("{}: not PEM text", cert_chain.display()))?;
            let nonce = nonce
                .map(|text| {
                    hex::decode(text.trim())
                        .ok()
                        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                        .ok_or_else(|| format!("--nonce must be 32 bytes of hex, got {text:?}"))
                })
                .transpose()?;
            let at = match at {
                Some(text) => vigil_nvidia::parse_rfc3339(&text)?,
                None => vigil_verifier::attest::unix_now(),
            };
            let rims = rim_dir
                .map(|dir| {
                    vigil_nvidia::RimStore::load_dir(&dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))
                })
                .transpose()?;
            let result = vigil_nvidia::verify_gpu_evidence(
                &report,
                &chain,
                nonce.as_ref(),
                rims.as_ref(),
                at,
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{result}");
            }
            // Incomplete means nothing failed but something was not checked (no nonce, no
            // RIMs); the output says what. Only a failed check is a failure.
            Ok(match result.verdict {
                vigil_nvidia::Verdict::Fail => Verdict::Fail,
                _ => Verdict::Pass,
            })
        }
    }
}

#[cfg(test)]
mod eventlog_claim_tests {
    use vigil_verifier::evidence::eventlog::{Claim, ClaimStatus, ClaimValue, claims::Provenance};

    #[test]
    fn a_list_claim_prints_one_item_per_line() {
        let hashes = vec!["aa".repeat(32), "bb".repeat(32), "cc".repeat(32)];
        let claim = Claim {
            name: "secureboot.dbx".into(),
            value: ClaimValue::List(hashes.clone()),
            status: ClaimStatus::Verified,
            provenance: Provenance {
                event: 7,
                pcr: 7,
                offset: 0,
            },
        };
        let text = super::render_eventlog_claim(&claim).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("secureboot.dbx"), "{text}");
        assert!(
            lines[0].ends_with("3 items  [verified; event 7, PCR 7]"),
            "{text}"
        );
        for (line, hash) in lines[1..].iter().zip(&hashes) {
            assert_eq!(line.trim(), hash);
        }
    }
}
