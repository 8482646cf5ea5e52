//! `vigil watch`: follows `Verifier.Watch` and prints every node status change as it happens,
//! one line each (or one JSON object per line). A dropped connection is retried with backoff
//! from the last seq + 1, so nothing is missed or printed twice; Ctrl-C or SIGTERM ends it
//! (exit 0) with the `--from` to resume at.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{VerdictChange, WatchRequest};
use vigil_tls::Role;
use vigil_verifier::connect::{CONNECT_TIMEOUT, ClientTls, endpoint_uri};
use vigil_verifier::report::{Verdict, format_unix_utc};

use crate::cli::nodes::client_tls;
use crate::{AnyError, runtime};

#[derive(Args)]
pub struct WatchArgs {
    /// The running verifier (`vigil serve`) to follow.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: String,
    /// First sequence number to print (a stopped watch says which to resume at); default:
    /// every change recorded so far, then the new ones.
    #[arg(long, value_name = "SEQ", default_value_t = 1,
          value_parser = clap::value_parser!(i64).range(1..))]
    from: i64,
    /// Only this node's changes.
    #[arg(long)]
    node: Option<String>,
    /// One JSON object per line (seq, time, time_unix, node_id, old_status, new_status,
    /// reason, result_token).
    #[arg(long)]
    json: bool,
    /// Certificate directory (`vigil dev-certs DIR` layout): mutual TLS to --verifier.
    #[arg(long, env = "VIGIL_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Role whose client certificate to present (default: orchestrator; auditor and admin
    /// may watch too).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE")]
    as_role: Option<String>,
}

/// First wait before reconnecting, and the most it grows to.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Doubling waits between reconnections, reset once a connection delivers a change.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: FIRST_RETRY }
    }

    fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }

    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// Whether a failed Watch is worth retrying: the connection or the server went away, as
/// opposed to a refusal that will be the same next time (role, certificate, request).
fn retryable(code: Code) -> bool {
    !matches!(
        code,
        Code::PermissionDenied
            | Code::Unauthenticated
            | Code::InvalidArgument
            | Code::Unimplemented
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::OutOfRange
    )
}

/// One change as a readable line: seq, time (UTC), node, old → new, reason.
fn change_line(change: &VerdictChange) -> String {
    format!(
        "#{}  {}  {}  {} → {}  {}",
        change.seq,
        format_unix_utc(change.time_unix),
        change.node_id,
        change.old_status,
        change.new_status,
        change.reason
    )
}

/// One change as a JSON object (no result body: `result_token` carries the signed result).
fn change_json(change: &VerdictChange) -> serde_json::Value {
    serde_json::json!({
        "seq": change.seq,
        "time": format_unix_utc(change.time_unix),
        "time_unix": change.time_unix,
        "node_id": change.node_id,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "reason": change.reason,
        "result_token": Some(&change.result_token).filter(|t| !t.is_empty()),
    })
}

/// Why one subscription ended.
enum Ended {
    /// The server closed the stream (it is shutting down): reconnect.
    Closed,
    /// A transport or server error: reconnect if `retryable`.
    Failed { message: String, retry: bool },
}

/// An endpoint without a per-request timeout (the stream lasts as long as it is watched), with
/// HTTP/2 keep-alives so a silently dead connection is noticed and retried.
fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, AnyError> {
    let uri = endpoint_uri(url, tls.is_some());
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("--verifier {url:?} is not a valid address: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.config_for(&uri)?)
            .map_err(|e| format!("TLS for {uri}: {e}"))?;
    }
    Ok(endpoint)
}

/// Subscribes once from `*next` and prints changes until the stream ends; `*next` follows
/// every printed change, `*printed` counts them.
async fn subscribe(
    endpoint: &Endpoint,
    args: &WatchArgs,
    next: &mut i64,
    printed: &mut u64,
) -> Ended {
    let channel: Channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(e) => {
            return Ended::Failed {
                message: format!(
                    "cannot reach {}: {e}{}",
                    endpoint.uri(),
                    std::error::Error::source(&e)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default()
                ),
                retry: true,
            };
        }
    };
    let mut client = VerifierClient::new(channel)
        .max_decoding_message_size(vigil_verifier::pull::MAX_EVIDENCE_BYTES);
    let request = WatchRequest {
        from_seq: *next,
        node_id: args.node.clone().unwrap_or_default(),
    };
    let mut stream = match client.watch(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    loop {
        match stream.message().await {
            Ok(Some(change)) => {
                if change.seq < *next {
                    continue; // never print a change twice
                }
                if args.json {
                    println!("{}", change_json(&change));
                } else {
                    println!("{}", change_line(&change));
                }
                *next = change.seq + 1;
                *printed += 1;
            }
            Ok(None) => return Ended::Closed,
            Err(status) => return failed(&status),
        }
    }
}

fn failed(status: &tonic::Status) -> Ended {
    Ended::Failed {
        message: format!(
            "verifier refused Watch: {}: {}",
            status.code(),
            status.message()
        ),
        retry: retryable(status.code()),
    }
}

/// Follows the stream, reconnecting with backoff. Returns only on an error that retrying
/// cannot fix, or when the very first connection fails (a wrong address or certificate).
async fn follow(endpoint: &Endpoint, args: &WatchArgs, next: &mut i64) -> Result<(), AnyError> {
    let mut backoff = Backoff::new();
    let mut connected = false;
    loop {
        let mut printed = 0;
        let ended = subscribe(endpoint, args, next, &mut printed).await;
        if printed > 0 {
            backoff.reset();
        }
        let reason = match ended {
            Ended::Closed => "the verifier closed the stream".to_owned(),
            Ended::Failed { message, retry } => {
                // A refusal, or a first connection that never worked: retrying will not help.
                let first_connect = !connected && message.starts_with("cannot reach");
                if !retry || first_connect {
                    return Err(message.into());
                }
                message
            }
        };
        connected = true;
        let wait = backoff.wait();
        eprintln!(
            "vigil: watch: {reason}; reconnecting in {:.1}s from seq {next}",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
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

/// `vigil watch`.
pub fn watch(args: WatchArgs) -> Result<Verdict, AnyError> {
    let tls = client_tls(
        args.tls_dir.as_deref(),
        args.as_role.as_deref(),
        Role::Orchestrator,
    )?;
    let endpoint = endpoint(&args.verifier, tls.as_ref())?;
    let mut next = args.from;
    let outcome = runtime()?.block_on(async {
        tokio::select! {
            result = follow(&endpoint, &args, &mut next) => result,
            () = interrupted() => Ok(()),
        }
    });
    eprintln!("vigil: watch stopped; resume with --from {next}");
    outcome.map(|()| Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> VerdictChange {
        VerdictChange {
            seq: 7,
            node_id: "gpu-1".into(),
            old_status: "unknown".into(),
            new_status: "trusted".into(),
            reason: "verdict pass".into(),
            time_unix: 86_400,
            result_json: "{}".into(),
            result_token: String::new(),
        }
    }

    #[test]
    fn a_change_reads_as_one_line() {
        assert_eq!(
            change_line(&change()),
            "#7  1970-01-02T00:00:00Z  gpu-1  unknown → trusted  verdict pass"
        );
    }

    #[test]
    fn a_change_as_json_has_every_field_and_no_empty_token() {
        let json = change_json(&change());
        assert_eq!(json["seq"], 7);
        assert_eq!(json["time"], "1970-01-02T00:00:00Z");
        assert_eq!(json["time_unix"], 86_400);
        assert_eq!(json["node_id"], "gpu-1");
        assert_eq!(json["old_status"], "unknown");
        assert_eq!(json["new_status"], "trusted");
        assert_eq!(json["reason"], "verdict pass");
        assert!(json["result_token"].is_null());
        let signed = change_json(&VerdictChange {
            result_token: "a.b.c".into(),
            ..change()
        });
        assert_eq!(signed["result_token"], "a.b.c");
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut backoff = Backoff::new();
        let waits: Vec<_> = (0..10).map(|_| backoff.wait()).collect();
        assert_eq!(waits[0], FIRST_RETRY);
        assert_eq!(waits[1], FIRST_RETRY * 2);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), MAX_RETRY);
        backoff.reset();
        assert_eq!(backoff.wait(), FIRST_RETRY);
    }

    #[test]
    fn refusals_are_final_and_lost_connections_are_retried() {
        for code in [
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::InvalidArgument,
            Code::Unimplemented,
        ] {
            assert!(!retryable(code), "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Internal,
            Code::Cancelled,
            Code::DeadlineExceeded,
        ] {
            assert!(retryable(code), "{code:?}");
        }
    }

    #[test]
    fn a_bad_address_is_refused_before_connecting() {
        let error = endpoint("http://bad host:1", None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("--verifier"), "{error}");
    }
}
