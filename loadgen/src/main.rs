//! `vigil-loadgen`: simulates N GPU hosts (software TPM, boot log, signed GPU reports) and
//! drives a real `vigil serve` through its gRPC API over mutual TLS, to measure how many
//! host attestations per second one verifier sustains. The last line it prints is one JSON
//! object with the figures; progress goes to stderr.

mod certs;
mod crypto;
mod eventlog;
mod floor;
mod gpu;
mod host;
mod rim;
mod tpm;
mod verifier;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ring::rand::SystemRandom;
use tonic::transport::{Channel, Server};
use vigil_proto::v1::attester_server::AttesterServer;
use vigil_proto::v1::baselines_client::BaselinesClient;
use vigil_proto::v1::registrar_client::RegistrarClient;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{
    AssignBaselineRequest, AttestNodeRequest, AttestRequest, AttestationResult, ChallengeRequest,
    DeregisterRequest, PutBaselineRequest, RegisterNodeRequest, Verdict,
};
use vigil_tls::Role;

use crate::host::{AttesterService, Host};

/// Largest fleet simulated: each host is a listener and a few KiB of keys.
const MAX_HOSTS: usize = 10_000;
/// Most GPUs per host (an HGX board has 8).
const MAX_GPUS: usize = 16;
/// Longest timed window.
const MAX_SECONDS: u64 = 3_600;
/// Most concurrent clients.
const MAX_CLIENTS: usize = 1_024;
/// Most verifier replicas driven at once.
const MAX_REPLICAS: usize = 16;
/// A hard cap on requests per client, so that a loop can never run away even if the clock
/// misbehaves.
const MAX_REQUESTS_PER_CLIENT: u64 = 10_000_000;
/// Per-RPC deadline: a stuck call counts as an error instead of stalling the run.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Orchestrators call Verifier.AttestNode; the verifier pulls from the simulated attesters.
    Pull,
    /// Hosts call Verifier.Challenge then Verifier.Attest with evidence made here.
    Push,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Pull => "pull",
            Mode::Push => "push",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EkTrust {
    Cert,
    Allow,
}

#[derive(Parser, Debug)]
#[command(name = "vigil-loadgen", version, about)]
struct Args {
    /// The verifier, e.g. https://127.0.0.1:7444, or several replicas of one (sharing one
    /// PostgreSQL database) comma-separated: the clients spread their requests over them
    /// round-robin (ignored with --spawn-verifier).
    #[arg(long)]
    verifier: Option<String>,
    /// Certificate directory from `vigil dev-certs` (made in --out with --spawn-verifier).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// Simulated hosts.
    #[arg(long, default_value_t = 20)]
    hosts: usize,
    /// GPUs per host.
    #[arg(long, default_value_t = 0)]
    gpus: usize,
    /// Concurrent clients (orchestrators in pull mode, hosts pushing in push mode).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Length of the timed window in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, value_enum, default_value = "pull")]
    mode: Mode,
    /// Start `vigil serve` (beside this executable, or --vigil) with a fresh store, dev
    /// certificates, the test roots and the hosts' EKs; stop it at the end.
    #[arg(long)]
    spawn_verifier: bool,
    /// The `vigil` binary for --spawn-verifier (default: beside this executable).
    #[arg(long)]
    vigil: Option<PathBuf>,
    /// Working directory: test roots, RIMs, certificates, the spawned verifier's store and
    /// log (default: a fresh temporary directory, removed at the end).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Node group the hosts are registered into (its baseline is put and assigned).
    #[arg(long, default_value = "loadgen")]
    group: String,
    /// Seconds spent measuring the signature-verification floor (0: skip).
    #[arg(long, default_value_t = 2.0)]
    floor_seconds: f64,
    /// How the verifier trusts the simulated EKs: `cert` (an EK certificate per host from a
    /// test TPM vendor CA kept in --out, given to the verifier as --ek-roots OUT/ek-ca) or
    /// `allow` (SHA-256 of each EK in VIGIL_EK_ALLOW; only with --spawn-verifier).
    #[arg(long, value_enum, default_value = "cert")]
    ek_trust: EkTrust,
    /// Only write the test roots (EK CA; GPU roots and RIMs with --gpus) into --out, print the
    /// `vigil serve` flags that trust them, and exit: for driving an external verifier.
    #[arg(long, requires = "out")]
    prepare: bool,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 8)]
    register_concurrency: usize,
    /// With --spawn-verifier: the database every spawned `vigil serve` uses, a
    /// postgres://USER@HOST:PORT/DB URL of an EMPTY database (default: a fresh SQLite file in
    /// --out). `scripts/postgres-bench.sh` starts a throw-away server and fills this in.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// With --spawn-verifier: how many `vigil serve` replicas to start on --db (more than one
    /// needs a postgres:// --db). The hosts are registered through the first; the clients
    /// spread their requests over all of them round-robin, and in push mode a host's
    /// Challenge goes to one replica and its Attest to the next.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// PID of the database server (PostgreSQL's postmaster): the CPU it and its backends use
    /// in the timed window is reported as `db_cpu_s`.
    #[arg(long, value_name = "PID")]
    db_pid: Option<u32>,
}

/// `--db` as a PostgreSQL URL: None when not given, an error when it is not `postgres://…`.
fn postgres_db(args: &Args) -> Result<Option<&str>, String> {
    match args.db.as_deref() {
        None => Ok(None),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Some(url))
        }
        Some(_) => Err(
            "--db takes a postgres://USER@HOST:PORT/DB URL (without it, a fresh SQLite file in --out)"
                .into(),
        ),
    }
}

/// The verifiers' URLs: `--verifier`, split at commas.
fn verifier_urls(args: &Args) -> Vec<String> {
    args.verifier
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vigil-loadgen: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("vigil-loadgen: {e}");
            std::process::exit(2);
        }
    }
}

fn validate(args: &Args) -> Result<(), String> {
    if args.hosts == 0 || args.hosts > MAX_HOSTS {
        return Err(format!("--hosts must be 1..={MAX_HOSTS}"));
    }
    if args.gpus > MAX_GPUS {
        return Err(format!("--gpus must be 0..={MAX_GPUS}"));
    }
    if args.clients == 0 || args.clients > MAX_CLIENTS {
        return Err(format!("--clients must be 1..={MAX_CLIENTS}"));
    }
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(format!("--seconds must be 1..={MAX_SECONDS}"));
    }
    if !(0.0..=60.0).contains(&args.floor_seconds) {
        return Err("--floor-seconds must be 0..=60".into());
    }
    if args.register_concurrency == 0 || args.register_concurrency > 256 {
        return Err("--register-concurrency must be 1..=256".into());
    }
    if args.replicas == 0 || args.replicas > MAX_REPLICAS {
        return Err(format!("--replicas must be 1..={MAX_REPLICAS}"));
    }
    let postgres = postgres_db(args)?;
    if args.spawn_verifier {
        if args.replicas > 1 && postgres.is_none() {
            return Err(format!(
                "--replicas {}: replicas share one PostgreSQL database, give --db postgres://…",
                args.replicas
            ));
        }
    } else if !args.prepare {
        if args.db.is_some() || args.replicas > 1 {
            return Err(
                "--db and --replicas are for --spawn-verifier; to drive replicas you started, \
                 give their URLs comma-separated in --verifier"
                    .into(),
            );
        }
        let urls = verifier_urls(args);
        if urls.is_empty() {
            return Err("give --verifier URL[,URL...] or --spawn-verifier".into());
        }
        if urls.len() > MAX_REPLICAS {
            return Err(format!("--verifier: at most {MAX_REPLICAS} URLs"));
        }
        if let Some(url) = urls.iter().find(|url| !verifier::is_loopback_url(url)) {
            return Err(format!(
                "--verifier {url}: only loopback (127.0.0.0/8, localhost) verifiers are driven"
            ));
        }
        if args.ek_trust == EkTrust::Allow {
            return Err(
                "--ek-trust allow needs --spawn-verifier (the EKs are made at start)".into(),
            );
        }
        if args.out.is_none() {
            return Err(
                "--out DIR (where --prepare wrote the test roots the verifier trusts) is required \
                 with an external verifier"
                    .into(),
            );
        }
        if args.tls_dir.is_none() {
            return Err("--tls-dir is required without --spawn-verifier".into());
        }
    }
    Ok(())
}

/// A working directory, removed at the end when it was made here.
struct WorkDir {
    path: PathBuf,
    temporary: bool,
}

impl WorkDir {
    fn new(out: Option<&Path>) -> Result<WorkDir, String> {
        let (path, temporary) = match out {
            Some(dir) => (dir.to_path_buf(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let name = format!("vigil-loadgen-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WorkDir { path, temporary })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn run(args: Args) -> Result<String, String> {
    validate(&args)?;
    let work = WorkDir::new(args.out.as_deref())?;
    let rng = SystemRandom::new();
    let setup_started = Instant::now();

    let boot = Arc::new(eventlog::golden_boot());
    let fleet = if args.gpus > 0 {
        Some(Arc::new(gpu::GpuFleet::new(
            args.gpus,
            &work.path.join("gpu"),
        )?))
    } else {
        None
    };
    let ek_ca = match args.ek_trust {
        EkTrust::Cert => Some(certs::EkCa::load_or_create(&work.path)?),
        EkTrust::Allow => None,
    };
    if args.prepare {
        let mut flags = Vec::new();
        if let Some(ca) = &ek_ca {
            flags.push(format!("--ek-roots {}", ca.root_dir.display()));
        }
        if let Some(fleet) = &fleet {
            flags.extend(fleet.verifier_flags());
            // A sample report for `vigil gpu verify --nonce 11…11` checks by hand.
            fleet.write_sample(&work.path.join("gpu"), &[0x11; 32])?;
        }
        return Ok(
            serde_json::json!({ "prepared": work.path.display().to_string(),
            "serve_flags": flags.join(" ") })
            .to_string(),
        );
    }
    eprintln!("vigil-loadgen: creating {} hosts", args.hosts);
    let mut hosts = Vec::with_capacity(args.hosts);
    for index in 0..args.hosts {
        hosts.push(Arc::new(Host::new(
            index,
            Arc::clone(&boot),
            fleet.clone(),
            ek_ca.as_ref(),
            &rng,
        )?));
    }

    // The verifiers: spawned here (one, or replicas on one PostgreSQL database), or the
    // ones given.
    let database = match postgres_db(&args)? {
        Some(url) => verifier::Database::Postgres(url.to_owned()),
        None => verifier::Database::Sqlite,
    };
    let mut spawned = Vec::new();
    let (tls_dir, verifier_urls) = if args.spawn_verifier {
        let tls_dir = work.path.join("tls");
        let binary = verifier::vigil_binary(args.vigil.as_deref())?;
        verifier::dev_certs(&binary, &tls_dir).await?;
        let ek_policy = match &ek_ca {
            Some(ca) => verifier::EkPolicy::Roots(ca.root_dir.clone()),
            None => verifier::EkPolicy::Allow(hosts.iter().map(|h| h.ek.fingerprint()).collect()),
        };
        // One at a time: the first creates the audit key and the schema the others open.
        for index in 0..args.replicas {
            let replica = verifier::spawn(
                &binary,
                &work.path,
                &tls_dir,
                &ek_policy,
                fleet.as_deref(),
                &database,
                index,
            )
            .await;
            match replica {
                Ok(replica) => spawned.push(replica),
                Err(e) => {
                    for replica in spawned {
                        replica.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        let urls = spawned.iter().map(|s| s.url.clone()).collect::<Vec<_>>();
        (tls_dir, urls)
    } else {
        (
            args.tls_dir.clone().unwrap_or_default(),
            verifier_urls(&args),
        )
    };
    let result = drive_verifiers(
        &args,
        &tls_dir,
        &verifier_urls,
        &spawned,
        setup_started,
        &hosts,
        &boot,
        fleet.as_deref(),
    )
    .await;
    for replica in spawned {
        replica.stop().await;
    }
    let mut summary = result?;
    if let Some(object) = summary.as_object_mut() {
        object.insert("replicas".into(), serde_json::json!(verifier_urls.len()));
        object.insert(
            "db".into(),
            if args.spawn_verifier {
                serde_json::json!(database.kind())
            } else {
                serde_json::Value::Null
            },
        );
    }
    Ok(summary.to_string())
}

/// Registers the hosts through the first verifier, drives the timed window over all of
/// them, and returns the figures.
#[allow(clippy::too_many_arguments)]
async fn drive_verifiers(
    args: &Args,
    tls_dir: &Path,
    verifier_urls: &[String],
    spawned: &[verifier::Spawned],
    setup_started: Instant,
    hosts: &[Arc<Host>],
    boot: &eventlog::BootLog,
    fleet: Option<&gpu::GpuFleet>,
) -> Result<serde_json::Value, String> {
    let Some(first_url) = verifier_urls.first() else {
        return Err("no verifier".into());
    };
    eprintln!("vigil-loadgen: verifier at {}", verifier_urls.join(", "));

    // One Attester server per host, each on its own loopback port.
    let server_tls = vigil_tls::server_tls_config_from_dir(tls_dir)
        .map_err(|e| format!("attester TLS from {}: {e}", tls_dir.display()))?;
    let mut addresses = Vec::with_capacity(hosts.len());
    let mut server_tasks = AbortOnDrop(Vec::with_capacity(hosts.len()));
    for host in hosts {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("listener address: {e}"))?;
        addresses.push(format!("127.0.0.1:{}", address.port()));
        let server = Server::builder()
            .tls_config(server_tls.clone())
            .map_err(|e| format!("attester TLS: {e}"))?
            .add_service(AttesterServer::new(AttesterService(Arc::clone(host))));
        // Small gRPC frames must not wait for delayed ACKs (Nagle), as on a real attester.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        server_tasks
            .0
            .push(tokio::spawn(server.serve_with_incoming(incoming)));
    }

    // Baseline and registrations through the first verifier: the others share its database.
    let admin = connect(first_url, tls_dir, Role::Admin).await?;
    put_baseline(&admin, args, boot, fleet).await?;
    register_all(&admin, args, hosts, &addresses).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "vigil-loadgen: {} hosts registered in {setup_s:.1} s",
        hosts.len()
    );

    let role = match args.mode {
        Mode::Pull => Role::Orchestrator,
        Mode::Push => Role::Attester,
    };
    // Each client holds one connection to every verifier.
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let mut channels = Vec::with_capacity(verifier_urls.len());
        for url in verifier_urls {
            channels.push(connect(url, tls_dir, role).await?);
        }
        clients.push(channels);
    }
    // Push mode: each host speaks with its own node-bound attester certificate, over its
    // own connection to each verifier (handshakes done here, outside the timed window).
    let mut host_channels = Vec::new();
    if args.mode == Mode::Push {
        match certs::HostCertIssuer::from_dir(tls_dir)? {
            Some(issuer) => {
                for url in verifier_urls {
                    let domain = vigil_tls::host_of(url).to_owned();
                    let mut channels = Vec::with_capacity(hosts.len());
                    for host in hosts {
                        let tls = issuer.client_config(&host.node_id, &domain)?;
                        channels.push(connect_with(url, tls).await?);
                    }
                    host_channels.push(channels);
                }
            }
            None => eprintln!(
                "vigil-loadgen: no ca-key.pem in {}: every host pushes with attester.pem \
                 (it must not be bound to one node)",
                tls_dir.display()
            ),
        }
    }
    eprintln!(
        "vigil-loadgen: {} mode, {} clients, {} verifier(s), {} s",
        args.mode.as_str(),
        args.clients,
        verifier_urls.len(),
        args.seconds
    );
    let verifier_pids: Vec<u32> = spawned.iter().filter_map(verifier::Spawned::pid).collect();
    let verifiers_cpu = || -> Option<f64> {
        if verifier_pids.is_empty() {
            return None;
        }
        verifier_pids
            .iter()
            .map(|pid| verifier::cpu_seconds(Some(*pid)))
            .sum()
    };
    let db_cpu = || args.db_pid.and_then(verifier::tree_cpu_seconds);
    let cpu_before = (verifier::cpu_seconds(None), verifiers_cpu(), db_cpu());
    let outcome = drive(args, hosts, clients, host_channels).await;
    let cpu_used = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) => serde_json::json!(round(a - b, 1)),
        _ => serde_json::Value::Null,
    };
    let loadgen_cpu_s = cpu_used(cpu_before.0, verifier::cpu_seconds(None));
    let verifier_cpu_s = cpu_used(cpu_before.1, verifiers_cpu());
    let db_cpu_s = cpu_used(cpu_before.2, db_cpu());

    let floor = if args.floor_seconds > 0.0 {
        let gpus = args.gpus;
        let seconds = args.floor_seconds;
        tokio::task::spawn_blocking(move || floor::measure(gpus, 2, seconds))
            .await
            .map_err(|e| format!("floor task: {e}"))??
    } else {
        0.0
    };
    drop(server_tasks);

    let mut latencies = outcome.latencies_us;
    latencies.sort_unstable();
    let attestations = latencies.len() as u64 + outcome.errors;
    let ok = latencies.len() as f64;
    Ok(serde_json::json!({
        "hosts": args.hosts,
        "gpus_per_host": args.gpus,
        "seconds": round(outcome.elapsed_s, 3),
        "hosts_per_s": round(ok / outcome.elapsed_s.max(1e-9), 1),
        "p50_ms": round(percentile(&latencies, 0.50), 2),
        "p90_ms": round(percentile(&latencies, 0.90), 2),
        "p99_ms": round(percentile(&latencies, 0.99), 2),
        "max_ms": round(latencies.last().map_or(0.0, |us| *us as f64 / 1000.0), 2),
        "errors": outcome.errors,
        "floor_hosts_per_s": round(floor, 1),
        "mode": args.mode.as_str(),
        "clients": args.clients,
        "attestations": attestations,
        "passed": latencies.len(),
        "setup_s": round(setup_s, 1),
        "verifier": if args.spawn_verifier { "spawned" } else { "external" },
        "ek_trust": match args.ek_trust { EkTrust::Cert => "ek-certified", EkTrust::Allow => "ek-allowlisted" },
        "first_error": outcome.first_error,
        "loadgen_cpu_s": loadgen_cpu_s,
        "verifier_cpu_s": verifier_cpu_s,
        "db_cpu_s": db_cpu_s,
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
    }))
}

/// Tasks aborted when this is dropped (the hosts' Attester servers, on every way out).
struct AbortOnDrop<T>(Vec<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The `q` quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us
        .get(rank - 1)
        .map_or(0.0, |us| *us as f64 / 1000.0)
}

async fn connect(url: &str, tls_dir: &Path, role: Role) -> Result<Channel, String> {
    let host = vigil_tls::host_of(url);
    let tls = vigil_tls::client_tls_config_from_dir(tls_dir, role, host)
        .map_err(|e| format!("client certificate for {}: {e}", role.as_str()))?;
    connect_with(url, tls).await
}

async fn connect_with(
    url: &str,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<Channel, String> {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("verifier URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(RPC_TIMEOUT)
        .tls_config(tls)
        .map_err(|e| format!("TLS for {url}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

async fn put_baseline(
    admin: &Channel,
    args: &Args,
    boot: &eventlog::BootLog,
    fleet: Option<&gpu::GpuFleet>,
) -> Result<(), String> {
    let name = format!("{}-baseline", args.group);
    let mut toml = format!(
        "format = 1\nname = \"{name}\"\ndescription = \"vigil-loadgen simulated hosts ({} GPUs each)\"\n\n\
         [freshness]\nmax_evidence_age_seconds = 300\n\n\
         [identity]\nak_trust = [\"ek-allowlisted\", \"ek-certified\"]\n\n[pcrs.sha256]\n",
        args.gpus
    );
    for (index, value) in boot.pcrs.iter().enumerate().take(10) {
        toml.push_str(&format!("{index} = \"{}\"\n", hex::encode(value)));
    }
    toml.push_str("\n[boot]\nevent_log = \"required\"\n");
    if let Some(fleet) = fleet {
        toml.push_str(&fleet.baseline_section());
    }
    let mut client = BaselinesClient::new(admin.clone());
    client
        .put(PutBaselineRequest {
            toml,
            signature_hex: String::new(),
            author: "vigil-loadgen".into(),
            reason: "load test".into(),
        })
        .await
        .map_err(|s| format!("Baselines.Put: {}: {}", s.code(), s.message()))?;
    client
        .assign(AssignBaselineRequest {
            group: args.group.clone(),
            baseline: name,
            author: "vigil-loadgen".into(),
            reason: "load test".into(),
        })
        .await
        .map_err(|s| format!("Baselines.Assign: {}: {}", s.code(), s.message()))?;
    Ok(())
}

async fn register_all(
    admin: &Channel,
    args: &Args,
    hosts: &[Arc<Host>],
    addresses: &[String],
) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let work: Arc<Vec<(String, String)>> = Arc::new(
        hosts
            .iter()
            .zip(addresses)
            .map(|(h, a)| (h.node_id.clone(), a.clone()))
            .collect(),
    );
    let mut tasks = Vec::new();
    for _ in 0..args.register_concurrency.min(hosts.len()) {
        let next = Arc::clone(&next);
        let work = Arc::clone(&work);
        let mut client = RegistrarClient::new(admin.clone());
        let group = args.group.clone();
        // A store that outlives runs (external verifier) still holds the previous run's
        // hosts under these names, with other keys: they are removed first, as an operator
        // would (`vigil node remove`).
        let fresh_store = args.spawn_verifier;
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((node_id, address)) = work.get(index) else {
                    return Ok::<(), String>(());
                };
                if !fresh_store {
                    client
                        .deregister(DeregisterRequest {
                            node_id: node_id.clone(),
                        })
                        .await
                        .map_err(|s| {
                            format!("Deregister {node_id}: {}: {}", s.code(), s.message())
                        })?;
                }
                let result = client
                    .register_node(RegisterNodeRequest {
                        address: address.clone(),
                        group: group.clone(),
                    })
                    .await
                    .map_err(|s| format!("RegisterNode {node_id}: {}: {}", s.code(), s.message()))?
                    .into_inner();
                if result.verdict != Verdict::Pass as i32 || result.node_id != *node_id {
                    return Err(format!(
                        "RegisterNode {node_id} did not pass: {}",
                        failed_checks(&result)
                    ));
                }
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("registration task: {e}"))??;
    }
    Ok(())
}

fn failed_checks(result: &AttestationResult) -> String {
    let failed: Vec<String> = result
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if failed.is_empty() {
        format!("verdict {} ({})", result.verdict, result.summary)
    } else {
        failed.join("; ")
    }
}

struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed_s: f64,
    first_error: Option<String>,
}

/// A Verifier client on `channel`, with room for large results.
fn verifier_client(channel: Channel) -> VerifierClient<Channel> {
    VerifierClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

/// The verifiers request `request` of client `client` goes to, out of `replicas`: the
/// replica for AttestNode or Challenge, and the one for the Attest that follows the
/// Challenge (the next one, so that with replicas every push attestation crosses from one
/// to another: a nonce issued by one must be accepted by the other).
fn replica_for(client: usize, request: u64, replicas: usize) -> (usize, usize) {
    let replicas = replicas.max(1);
    let first = (client + (request % replicas as u64) as usize) % replicas;
    (first, (first + 1) % replicas)
}

/// `clients`: per client, one channel to each verifier. `host_channels`: per verifier, one
/// channel per host (push mode with node-bound certificates), or empty.
async fn drive(
    args: &Args,
    hosts: &[Arc<Host>],
    clients: Vec<Vec<Channel>>,
    host_channels: Vec<Vec<Channel>>,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let hosts: Arc<Vec<Arc<Host>>> = Arc::new(hosts.to_vec());
    let host_channels = Arc::new(host_channels);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(clients.len());
    for (client_index, channels) in clients.into_iter().enumerate() {
        let next = Arc::clone(&next);
        let hosts = Arc::clone(&hosts);
        let host_channels = Arc::clone(&host_channels);
        let mode = args.mode;
        tasks.push(tokio::spawn(async move {
            let mut verifiers: Vec<VerifierClient<Channel>> =
                channels.into_iter().map(verifier_client).collect();
            let replicas = verifiers.len();
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut first_error = None;
            for request in 0..MAX_REQUESTS_PER_CLIENT {
                if Instant::now() >= deadline || replicas == 0 {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed) % hosts.len();
                let Some(host) = hosts.get(index) else { break };
                let (first, second) = replica_for(client_index, request, replicas);
                let begun = Instant::now();
                let result = match mode {
                    Mode::Pull => match verifiers.get_mut(first) {
                        Some(client) => attest_pull(client, host).await,
                        None => break,
                    },
                    Mode::Push => {
                        let own = |replica: usize| {
                            host_channels
                                .get(replica)
                                .and_then(|channels| channels.get(index))
                                .map(|channel| VerifierClient::new(channel.clone()))
                        };
                        let pair = match (own(first), own(second)) {
                            (Some(a), Some(b)) => Some((a, b)),
                            _ => match (verifiers.get(first), verifiers.get(second)) {
                                (Some(a), Some(b)) => Some((a.clone(), b.clone())),
                                _ => None,
                            },
                        };
                        let Some((mut challenger, mut attester)) = pair else {
                            break;
                        };
                        attest_push(&mut challenger, &mut attester, host).await
                    }
                };
                let took = begun.elapsed();
                match result {
                    Ok(()) => latencies.push(took.as_micros() as u64),
                    Err(e) => {
                        errors += 1;
                        if first_error.is_none() {
                            eprintln!("vigil-loadgen: first error: {e}");
                            first_error = Some(e);
                        }
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut outcome = Outcome {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed_s: 0.0,
        first_error: None,
    };
    for task in tasks {
        match task.await {
            Ok((latencies, errors, first_error)) => {
                outcome.latencies_us.extend(latencies);
                outcome.errors += errors;
                if outcome.first_error.is_none() {
                    outcome.first_error = first_error;
                }
            }
            Err(e) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert(format!("client task: {e}"));
            }
        }
    }
    outcome.elapsed_s = started.elapsed().as_secs_f64();
    outcome
}

fn check_pass(result: &AttestationResult, node_id: &str) -> Result<(), String> {
    if result.verdict == Verdict::Pass as i32 && result.node_id == node_id {
        Ok(())
    } else {
        Err(format!("{node_id}: not PASS: {}", failed_checks(result)))
    }
}

async fn attest_pull(client: &mut VerifierClient<Channel>, host: &Host) -> Result<(), String> {
    let result = client
        .attest_node(AttestNodeRequest {
            address: String::new(),
            node_id: host.node_id.clone(),
        })
        .await
        .map_err(|s| format!("AttestNode {}: {}: {}", host.node_id, s.code(), s.message()))?
        .into_inner();
    check_pass(&result, &host.node_id)
}

/// Challenge through `challenger`, Attest through `attester` (the same verifier, or two
/// replicas of one).
async fn attest_push(
    challenger: &mut VerifierClient<Channel>,
    attester: &mut VerifierClient<Channel>,
    host: &Arc<Host>,
) -> Result<(), String> {
    let challenge = challenger
        .challenge(ChallengeRequest {
            node_id: host.node_id.clone(),
        })
        .await
        .map_err(|s| format!("Challenge {}: {}: {}", host.node_id, s.code(), s.message()))?
        .into_inner();
    let pcrs = challenge.selection.map(|s| s.pcrs).unwrap_or_default();
    let signer = Arc::clone(host);
    let evidence = tokio::task::spawn_blocking(move || signer.evidence(&challenge.nonce, &pcrs))
        .await
        .map_err(|e| format!("evidence task: {e}"))??;
    let result = attester
        .attest(AttestRequest {
            node_id: host.node_id.clone(),
            evidence: Some(evidence),
        })
        .await
        .map_err(|s| format!("Attest {}: {}: {}", host.node_id, s.code(), s.message()))?
        .into_inner();
    check_pass(&result, &host.node_id)
}

#[cfg(test)]
mod tests;
