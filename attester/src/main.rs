//! `vigil-attester`: runs on a GPU host and proves what it runs, with its TPM.

mod amdsmi;
mod brml;
mod collect;
mod dcmi;
mod gpu;
mod ima;
mod nvml;
mod push;
mod service;
mod tpm;
mod tpm2_tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tonic::transport::Server;
use vigil_proto::v1::attester_server::AttesterServer;

use crate::collect::{Collector, DEFAULT_EVENT_LOG, choose_banks, normalise_pcrs};
use crate::service::AttesterService;
use crate::tpm::{AkAlgorithm, Tpm};

#[derive(Parser)]
#[command(
    name = "vigil-attester",
    version,
    about = "Vigil attester: TPM-rooted evidence from this host"
)]
struct Cli {
    /// Configuration file (TOML, section [attester]; docs/configuration.md); default
    /// /etc/vigil/vigil.toml when it exists. Flags override the environment, which overrides
    /// the file.
    #[arg(long, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    #[allow(dead_code)] // read before clap parses (vigil_tls::settings)
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `vigil.v1.Attester` over gRPC.
    Serve(ServeArgs),
    /// Make one quote and write it in tpm2-tools' formats (for `tpm2_checkquote`).
    Quote(QuoteArgs),
    /// Show every GPU/NPU of every vendor library found (inventory, firmware, kind of
    /// evidence, and with a nonce the signed reports), without a TPM: a quick check of the
    /// GPU collectors. Missing libraries are notes, not errors.
    Gpus {
        /// 32-byte nonce, hex, for the attestation reports (default: all zero).
        #[arg(long)]
        nonce: Option<String>,
        #[command(flatten)]
        gpus: GpuArgs,
    },
}

#[derive(Args)]
struct GpuArgs {
    /// GPU evidence: `all` (every vendor library found), `none`, or a comma list of
    /// `nvidia` (NVML), `amd` (amdsmi), `huawei` (DCMI), `biren` (BRML). Libraries are loaded
    /// at run time; a missing one means no devices of that vendor, said once.
    #[arg(long, env = "VIGIL_ATTESTER_GPUS", default_value = "all")]
    gpus: String,
    /// Load a vendor library from this path instead of the system's, `VENDOR=PATH`
    /// (`amd`, `huawei`, `biren`); repeatable or comma-separated.
    #[arg(
        long,
        env = "VIGIL_ATTESTER_GPU_LIB",
        value_name = "VENDOR=PATH",
        value_delimiter = ','
    )]
    gpu_lib: Vec<String>,
}

#[derive(Args)]
struct TpmArgs {
    /// TPM access: `device:/dev/tpmrm0`, or `swtpm:host=127.0.0.1,port=2321` for swtpm.
    #[arg(long, env = "VIGIL_TCTI", default_value = "device:/dev/tpmrm0")]
    tcti: String,
    /// Where the AK is kept between runs (its private part is encrypted by the TPM).
    #[arg(
        long,
        env = "VIGIL_ATTESTER_STATE",
        default_value = "/var/lib/vigil-attester"
    )]
    state_dir: PathBuf,
    /// Kind of AK to create on first use.
    #[arg(long, env = "VIGIL_ATTESTER_AK_ALG", value_enum, default_value = "ecc")]
    ak_alg: AkAlgorithm,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "VIGIL_ATTESTER_LISTEN", default_value = "127.0.0.1:7443")]
    listen: String,
    #[command(flatten)]
    tpm: TpmArgs,
    /// Name this host reports; a label, never an identity proof. Default: the hostname.
    #[arg(long, env = "VIGIL_ATTESTER_NODE_ID")]
    node_id: Option<String>,
    /// The measured-boot event log to send.
    #[arg(long, env = "VIGIL_ATTESTER_EVENT_LOG", default_value = DEFAULT_EVENT_LOG)]
    event_log: PathBuf,
    /// The IMA runtime measurement list to send (binary, or ASCII; a per-bank list
    /// `binary_runtime_measurements_<alg>` is read with that template hash). A missing list
    /// means no IMA evidence, said once.
    #[arg(long, env = "VIGIL_ATTESTER_IMA_LOG", default_value = crate::ima::DEFAULT_IMA_LOG)]
    ima_log: PathBuf,
    /// Which endorsement key to present for registration.
    #[arg(long, env = "VIGIL_ATTESTER_EK_ALG", value_enum, default_value = "rsa")]
    ek_alg: crate::tpm::EkAlgorithm,
    /// Push mode: attest to this verifier on our own interval (Challenge, then Attest).
    #[arg(long, env = "VIGIL_ATTESTER_PUSH_TO")]
    push_to: Option<String>,
    /// Seconds between pushes.
    #[arg(long, env = "VIGIL_ATTESTER_PUSH_INTERVAL", default_value_t = 60)]
    push_interval: u64,
    /// Certificate directory (`vigil dev-certs DIR` layout): serve with mutual TLS (only the
    /// verifier's certificate may ask for evidence) and push with the attester certificate.
    #[arg(long, env = "VIGIL_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// DEVELOPMENT ONLY: plaintext gRPC, any caller may ask for evidence.
    #[arg(long)]
    dev: bool,
    #[command(flatten)]
    gpus: GpuArgs,
    /// TESTING: present this recorded GPU evidence, `REPORT,CHAIN` (report as NVIDIA's tools
    /// write it, PEM chain), instead of NVML; repeatable, one GPU each. The verifier checks it
    /// like any report: a recorded report does not answer its nonce.
    #[arg(long, value_name = "REPORT,CHAIN")]
    gpu_replay: Vec<String>,
    /// Log lines on stderr as `text` or `json` (one object a line); the level comes from
    /// RUST_LOG (default info).
    #[arg(
        long,
        env = "VIGIL_ATTESTER_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Serve Prometheus/OpenMetrics text at http://ADDR/metrics (plaintext, counts only).
    #[arg(long, env = "VIGIL_ATTESTER_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `tracing` to stderr, filtered by RUST_LOG (default info); stdout keeps the "listening on"
/// line alone.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

#[derive(Args)]
struct QuoteArgs {
    #[command(flatten)]
    tpm: TpmArgs,
    /// Qualifying data for the quote, hex (used as is, like `tpm2_quote -q`).
    #[arg(long)]
    nonce: String,
    /// Directory for ak.pub.pem, ak.pub.tss, quote.msg, quote.sig, quote.pcrs.
    #[arg(long)]
    out: PathBuf,
    /// PCRs to quote, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0u32, 1, 2, 3, 4, 5, 6, 7])]
    pcrs: Vec<u32>,
    /// Banks to quote (default: every allocated one of sha1, sha256, sha384).
    #[arg(long, value_delimiter = ',')]
    banks: Vec<String>,
}

fn main() -> ExitCode {
    // The configuration file becomes environment variables that are not already set, before
    // clap reads them: flags > environment > file (docs/configuration.md).
    match vigil_tls::settings::load_from_process(vigil_tls::settings::Program::Attester) {
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
            eprintln!("vigil-attester: {error}");
            return ExitCode::from(2);
        }
    }
    // SAFETY: still before any other thread exists; libtss2 reads TSS2_LOG later.
    unsafe { tpm::quiet_tcti_logs() };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Quote(args) => quote(args),
        Command::Gpus { nonce, gpus: args } => gpus(nonce.as_deref(), &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vigil-attester: {error}");
            ExitCode::from(2)
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn gpus(nonce: Option<&str>, args: &GpuArgs) -> Result<(), AnyError> {
    let nonce: [u8; 32] = match nonce {
        Some(text) => hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("--nonce must be 32 bytes of hex")?,
        None => [0; 32],
    };
    let source = crate::gpu::GpuSource::from_options(&args.gpus, &args.gpu_lib)?;
    let collection = source.collect_all(&nonce);
    let or_none = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    for gpu in &collection.gpus {
        println!(
            "GPU {}: vendor={} kind={} format={} name={:?} uuid={} driver={} vbios={} serial={} part={} evidence={} bytes",
            gpu.index,
            gpu.vendor,
            or_none(&gpu.kind),
            or_none(&gpu.format),
            gpu.name,
            or_none(&gpu.uuid),
            or_none(&gpu.driver_version),
            or_none(&gpu.vbios_version),
            or_none(&gpu.serial),
            or_none(&gpu.part_number),
            gpu.evidence.len(),
        );
        if gpu.vendor == "nvidia" {
            println!(
                "  inforom={} cc_mode={} report={} bytes chain={} certificates",
                or_none(&gpu.inforom_version),
                if gpu.cc_mode.is_empty() {
                    "unknown"
                } else {
                    gpu.cc_mode.as_str()
                },
                gpu.report.len(),
                gpu.cert_chain_pem.matches("BEGIN CERTIFICATE").count()
            );
        }
        for firmware in &gpu.firmware {
            println!("  firmware {}: {}", firmware.id, firmware.version);
        }
        if !gpu.report.is_empty() {
            println!("  report (hex): {}", hex::encode(&gpu.report));
        }
        if !gpu.evidence.is_empty() {
            println!("  evidence: {}", String::from_utf8_lossy(&gpu.evidence));
        }
    }
    if collection.gpus.is_empty() {
        println!("no GPU evidence");
    }
    for problem in &collection.problems {
        println!("note: {problem}");
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn serve(args: ServeArgs) -> Result<(), AnyError> {
    init_logging(args.log_format);
    let server_tls = match (args.dev, &args.tls_dir) {
        (false, Some(dir)) => Some(vigil_tls::server_tls_config_from_dir(dir)?),
        (true, None) => None,
        (true, Some(_)) => return Err("--dev and --tls-dir exclude each other".into()),
        (false, None) => {
            return Err("refusing to serve without mutual TLS: give --tls-dir DIR, or --dev for plaintext development mode".into());
        }
    };
    let mut tpm = Tpm::open(&args.tpm.tcti, &args.tpm.state_dir, args.tpm.ak_alg)?;
    tpm.use_endorsement_key(args.ek_alg);
    let node_id = args.node_id.unwrap_or_else(hostname);
    let gpus = if !args.gpu_replay.is_empty() {
        let files = args
            .gpu_replay
            .iter()
            .map(|pair| {
                pair.split_once(',')
                    .map(|(r, c)| (PathBuf::from(r), PathBuf::from(c)))
                    .ok_or_else(|| format!("--gpu-replay {pair:?}: expected REPORT,CHAIN"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::gpu::GpuSource::Replay(files)
    } else {
        crate::gpu::GpuSource::from_options(&args.gpus.gpus, &args.gpus.gpu_lib)?
    };
    let collector = Arc::new(Collector::new(
        tpm,
        node_id,
        args.event_log,
        args.ima_log,
        gpus,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        let address = listener.local_addr()?;
        let metrics_address = match &args.metrics_listen {
            Some(addr) => {
                let metrics = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
                let metrics_address = metrics.local_addr()?;
                tokio::spawn(serve_metrics(metrics, Arc::clone(&collector)));
                Some(metrics_address)
            }
            None => None,
        };
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<AttesterServer<AttesterService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vigil_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let mut builder = Server::builder();
        let layer = match server_tls {
            Some(tls) => {
                builder = builder.tls_config(tls)?;
                println!("vigil-attester listening on {address} (mutual TLS)");
                vigil_tls::RoleLayer::new()
            }
            None => {
                println!(
                    "vigil-attester listening on {address} (DEV MODE: plaintext, no client authentication)"
                );
                vigil_tls::RoleLayer::dev()
            }
        };
        tracing::info!(
            event = "start",
            listen = %address,
            node = %collector.node_id(),
            mode = if args.dev { "dev (plaintext, no client authentication)" } else { "mutual TLS" },
            push_to = args.push_to.as_deref().unwrap_or(""),
            push_interval_s = args.push_interval,
            metrics = %metrics_address.map(|a| format!("http://{a}/metrics")).unwrap_or_default(),
            version = env!("CARGO_PKG_VERSION"),
            "vigil-attester serve started"
        );
        if let Some(verifier) = args.push_to.clone() {
            let interval = std::time::Duration::from_secs(args.push_interval.max(1));
            tokio::spawn(push::run(
                Arc::clone(&collector),
                verifier,
                interval,
                args.tls_dir.clone(),
            ));
        }
        builder
            .layer(layer)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(AttesterServer::new(AttesterService::new(Arc::clone(
                &collector,
            ))))
            .serve_with_incoming_shutdown(
                // Small request/answer messages: Nagle's delay would dominate their latency.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    shutdown_signal().await;
                    tracing::info!(event = "shutdown", "shutdown requested; finishing requests in flight");
                },
            )
            .await?;
        tracing::info!(event = "stopped", "vigil-attester serve stopped");
        Ok::<(), AnyError>(())
    })?;
    Ok(())
}

/// `GET /metrics` on `listener`: a minimal HTTP/1.x responder (one request per connection,
/// head bounded to 8 KiB and 10 s), the same as the verifier's (`vigil_verifier::metrics`),
/// kept here because the attester does not link the verifier.
async fn serve_metrics(listener: tokio::net::TcpListener, collector: Arc<Collector>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let collector = Arc::clone(&collector);
        tokio::spawn(tokio::time::timeout(
            std::time::Duration::from_secs(10),
            async move {
                let mut head = Vec::with_capacity(512);
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n")
                    && !head.windows(2).any(|w| w == b"\n\n")
                    && head.len() <= 8192
                {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
                let (status, content_type, body) = match (parts.next(), parts.next()) {
                    (Some("GET"), Some("/metrics")) => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        collector.metrics().encode(),
                    ),
                    (Some("GET"), Some(_)) => (
                        "404 Not Found",
                        "text/plain",
                        "not found: try /metrics\n".to_owned(),
                    ),
                    _ => (
                        "400 Bad Request",
                        "text/plain",
                        "GET /metrics only\n".to_owned(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            },
        ));
    }
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

fn quote(args: QuoteArgs) -> Result<(), AnyError> {
    let nonce = hex::decode(args.nonce.trim_start_matches("0x"))
        .map_err(|e| format!("--nonce is not hex: {e}"))?;
    let pcrs = normalise_pcrs(&args.pcrs)?;
    let mut tpm = Tpm::open(&args.tpm.tcti, &args.tpm.state_dir, args.tpm.ak_alg)?;
    let banks = choose_banks(&mut tpm, &args.banks)?;
    let quote = tpm.quote(&nonce, &banks, &pcrs)?;
    std::fs::create_dir_all(&args.out)?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), AnyError> {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(())
    };
    write(
        "ak.pub.pem",
        tpm2_tools::ak_public_pem(tpm.ak_public())?.as_bytes(),
    )?;
    write("ak.pub.tss", &tpm.ak_public_tpm2b()?)?;
    write("quote.msg", &quote.attest)?;
    write("quote.sig", &quote.signature)?;
    write(
        "quote.pcrs",
        &tpm2_tools::serialized_pcrs(&quote.selection, &quote.pcrs)?,
    )?;
    println!(
        "wrote ak.pub.pem ak.pub.tss quote.msg quote.sig quote.pcrs to {}\ncheck with: tpm2_checkquote -u ak.pub.pem -m quote.msg -s quote.sig -f quote.pcrs -q {}",
        args.out.display(),
        hex::encode(&nonce)
    );
    Ok(())
}

/// Every setting can come from the environment and `[attester]` of the configuration file,
/// and docs/configuration.md lists them (checked against clap's command tree).
#[cfg(test)]
mod config_tests {
    use clap::{ArgAction, CommandFactory};
    use vigil_tls::settings::{Program, env_names};

    /// Flags only: security-weakening (`dev`), a testing aid (`gpu-replay`), and the inputs
    /// and outputs of one `quote`/`gpus` run.
    const FLAGS_ONLY: &[&str] = &["dev", "gpu-replay", "nonce", "out", "pcrs", "banks"];

    fn options(command: &clap::Command, out: &mut Vec<(String, Option<String>, bool)>) {
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.is_positional() || long == "help" || long == "version" {
                continue;
            }
            let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            out.push((long.to_owned(), env, switch));
        }
        for sub in command.get_subcommands() {
            options(sub, out);
        }
    }

    #[test]
    fn every_setting_has_a_variable_a_key_and_a_line_in_the_document() {
        let known: Vec<&str> = env_names(Program::Attester).collect();
        let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let doc = std::fs::read_to_string(doc_path).expect("docs/configuration.md");
        let mut all = Vec::new();
        options(&super::Cli::command(), &mut all);
        let mut used = Vec::new();
        for (long, env, switch) in all {
            if long == "config" {
                assert_eq!(env.as_deref(), Some("VIGIL_CONFIG"));
            } else if FLAGS_ONLY.contains(&long.as_str()) {
                assert_eq!(env, None, "--{long} is flag-only");
                assert!(doc.contains(&format!("`--{long}`")), "docs: --{long}");
            } else {
                let env = env.unwrap_or_else(|| panic!("--{long} has no environment variable"));
                assert!(!switch, "--{long}: a switch must not come from {env}");
                assert!(known.contains(&env.as_str()), "--{long}: no key sets {env}");
                used.push(env);
            }
        }
        for env in known {
            assert!(used.iter().any(|u| u == env), "no option reads {env}");
        }
    }
}
