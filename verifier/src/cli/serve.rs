//! `vigil serve`: the verifier's gRPC server, its re-attestation poller and metrics.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tonic::transport::Server;
use vigil_proto::v1::verifier_server::VerifierServer;
use vigil_verifier::attest::Verifier;
use vigil_verifier::pull::MAX_EVIDENCE_BYTES;
use vigil_verifier::service::VerifierService;

use super::store::{StoreArgs, check_store_paths, open_verifier};
use crate::{AnyError, runtime};

#[derive(Args)]
pub(crate) struct ServeArgs {
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
    /// Serve the read-only web console (docs/console.md) at ADDR: mutual TLS with the
    /// --tls-dir files, for auditor, admin and orchestrator certificates; with --dev,
    /// plaintext on loopback only. Without it, no console.
    #[arg(long, env = "VIGIL_WEB_LISTEN", value_name = "ADDR")]
    web_listen: Option<String>,
}

#[derive(Args)]
pub(crate) struct EkPolicyArgs {
    /// Directory of trusted TPM vendor CA certificates (roots and intermediates).
    #[arg(long, env = "VIGIL_EK_ROOTS")]
    ek_roots: Option<PathBuf>,
    /// SHA-256 (hex) of an EK TPM2B_PUBLIC to accept without a certificate; repeatable or
    /// comma-separated.
    #[arg(long, env = "VIGIL_EK_ALLOW", value_delimiter = ',')]
    ek_allow: Vec<String>,
}

impl EkPolicyArgs {
    pub(crate) fn policy(
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

pub(crate) fn serve(args: ServeArgs) -> Result<(), AnyError> {
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
    // The console's TLS files are checked before anything is created, like gRPC's.
    let web_tls = match (&args.web_listen, &server_tls, &args.store.tls_dir) {
        (Some(_), Some(_), Some(dir)) => Some(vigil_verifier::web::web_tls_config(dir)?),
        _ => None,
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
    if args.web_listen.is_some() && args.store.postgres_url().is_some() {
        return Err(
            "--web-listen: the web console reads the embedded SQLite store; it is not available with --db postgres://… yet (docs/replicas.md)"
                .into(),
        );
    }
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
        let web_listener = match &args.web_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} for the web console: {e}"))?;
                // Refuses a non-loopback address in --dev before anything is created.
                Some(vigil_verifier::web::WebListener::start(listener, web_tls)?)
            }
            None => None,
        };
        // One server per database file: taken before the database is opened or created.
        // PostgreSQL replicas share their database by design (no lock).
        let _server_lock = match args.store.postgres_url() {
            None => Some(vigil_verifier::store::lock_for_serving(&args.store.db)?),
            Some(_) => None,
        };
        // Blocking: PostgreSQL's client runs a runtime of its own, which may not start on an
        // async thread.
        let verifier = tokio::task::block_in_place(|| open_verifier(&args.store))?;
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
                    args.store.database_label()
                );
                vigil_tls::RoleLayer::new()
            }
            None => {
                println!(
                    "vigil listening on {address} (database {})\n\
                     *** DEV MODE: plaintext gRPC, NO client authentication: anyone who can reach this port \
                     may register nodes, change baselines and read the audit log. Never use it outside a lab. ***",
                    args.store.database_label()
                );
                vigil_tls::RoleLayer::dev()
            }
        };
        if let Some(web) = web_listener {
            println!(
                "vigil web console at {}://{}/ ({})",
                if args.dev { "http" } else { "https" },
                web.address(),
                if args.dev {
                    "DEV MODE: plaintext on loopback, no client authentication"
                } else {
                    "mutual TLS, auditor/admin/orchestrator certificates"
                }
            );
            let web_verifier = Arc::clone(&verifier);
            tokio::spawn(async move {
                if let Err(error) =
                    vigil_verifier::web::serve(web, web_verifier, shutdown_signal()).await
                {
                    tracing::error!(%error, "web console stopped");
                }
            });
        }
        tracing::info!(
            event = "start",
            listen = %address,
            database = %args.store.database_label(),
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
                VerifierServer::new(VerifierService::new(Arc::clone(&verifier)))
                    .max_decoding_message_size(MAX_EVIDENCE_BYTES),
            )
            .serve_with_incoming_shutdown(
                // Small request/answer messages: Nagle's delay would dominate their latency.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    shutdown_signal().await;
                    tracing::info!(event = "shutdown", "shutdown requested; finishing requests in flight");
                },
            )
            .await?;
        // Another replica takes this one's nodes now rather than when their leases expire.
        match tokio::task::spawn_blocking(move || verifier.release_leases()).await {
            Ok(Ok(released)) if released > 0 => {
                tracing::info!(event = "leases_released", released, "node leases given back")
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot give back node leases"),
            _ => {}
        }
        tracing::info!(event = "stopped", "vigil serve stopped");
        Ok(())
    })
}

/// Serves `GET /metrics` (see `vigil_verifier::metrics::serve_http`); the store-backed
/// gauges are read per scrape on a blocking thread.
pub(crate) async fn serve_metrics(listener: tokio::net::TcpListener, verifier: Arc<Verifier>) {
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

pub(crate) async fn shutdown_signal() {
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
