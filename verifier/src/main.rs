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

use clap::{Parser, Subcommand};
use vigil_verifier::report::Verdict;

mod cli;
use cli::audit::AuditCommand;
use cli::baseline::{BaselineCommand, KeysCommand, ResultCommand};
use cli::certs::CertsCommand;
use cli::eventlog::EventlogCommand;
use cli::gpu::GpuCommand;
use cli::node::NodeCommand;
use cli::quote::QuoteCommand;
use cli::serve::ServeArgs;
pub(crate) use cli::store::{StoreArgs, open_existing_store, open_verifier, verifier_channel};
use cli::verify::VerifyArgs;

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
    /// The store's schema (migrate), and moving a SQLite installation to PostgreSQL (copy).
    Db {
        #[command(subcommand)]
        command: cli::db::DbCommand,
    },
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
            // `VIGIL_CONFIG=` (empty) means "no file": the loader read none; clap would
            // otherwise refuse the empty value for --config.
            if std::env::var_os("VIGIL_CONFIG").is_some_and(|v| v.is_empty()) {
                // SAFETY: first thing in main, before any other thread exists.
                unsafe { std::env::remove_var("VIGIL_CONFIG") };
            }
        }
        Err(error) => {
            eprintln!("vigil: error: {error}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => cli::serve::serve(args).map(|()| Verdict::Pass),
        Command::Verify(args) => cli::verify::verify(args),
        Command::History(args) => cli::nodes::history(args),
        Command::Watch(args) => cli::watch::watch(args),
        Command::Audit { command } => cli::audit::audit_command(command),
        Command::Db { command } => cli::db::db_command(command),
        Command::Node { command } => cli::node::node_command(command),
        Command::Nodes(args) => cli::nodes::nodes(args),
        Command::Quote {
            command: QuoteCommand::Verify(args),
        } => cli::quote::quote_verify(args),
        Command::Eventlog { command } => cli::eventlog::eventlog_command(command),
        Command::Ima { command } => cli::ima::ima_command(command),
        Command::Npu { command } => cli::npu::npu_command(command),
        Command::Gpu { command } => cli::gpu::gpu_command(command),
        Command::Baseline { command } => cli::baseline::baseline_command(command),
        Command::Keys { command } => cli::baseline::keys_command(command),
        Command::Result { command } => cli::baseline::result_command(command),
        Command::DevCerts { dir, force, sans } => cli::certs::dev_certs(&dir, force, &sans),
        Command::Certs {
            command: CertsCommand::ImportTpmCab { file, out, force },
        } => cli::certs::import_tpm_cab(&file, &out, force),
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
