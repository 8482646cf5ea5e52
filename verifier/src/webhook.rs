//! Webhook: every node status change, with its signed result, POSTed as JSON to one URL, for
//! systems that do not speak gRPC. Delivery follows the ordered status-change table (the same
//! one `Verifier.Watch` streams): in order, at least once, retried with backoff until the
//! receiver answers 2xx. The body is public data whose integrity rests on the EAR signature,
//! so plain HTTP is accepted; the receiver must verify the token (`vigil result verify`).
//!
//! Delivery starts with the changes after the newest one at startup; a receiver that needs
//! history reads it with `Verifier.Watch(from_seq)`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::attest::Verifier;
use crate::store::StatusChange;

/// Where to POST: only `http://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl WebhookTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("webhook {url:?}: only http:// URLs (the payload is signed, not secret)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .map_err(|_| format!("webhook {url:?}: bad port {port:?}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() || path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!("webhook {url:?}: bad host or path"));
        }
        Ok(WebhookTarget {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// The JSON body for one change.
pub fn payload(change: &StatusChange) -> String {
    let token = serde_json::from_str::<serde_json::Value>(&change.result_json)
        .ok()
        .and_then(|r| r["result_token"].as_str().map(str::to_owned));
    serde_json::json!({
        "seq": change.seq,
        "node_id": change.node_id,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "reason": change.reason,
        "time": change.time,
        "result_token": token,
    })
    .to_string()
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// One POST; Ok when the receiver answered 2xx.
pub async fn post(target: &WebhookTarget, body: &str) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", target.host, target.port))?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: vigil\r\n\r\n{body}",
            target.path,
            target.host,
            target.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        // The status line is all we need; read at most a little.
        let mut head = vec![0u8; 256];
        let mut read = 0;
        while read < 12 {
            let n = stream
                .read(&mut head[read..])
                .await
                .map_err(|e| format!("read answer: {e}"))?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let status_line = String::from_utf8_lossy(&head[..read]);
        match status_line.split_whitespace().nth(1) {
            Some(code) if code.starts_with('2') => Ok(()),
            Some(code) => Err(format!("receiver answered HTTP {code}")),
            None => Err("no HTTP answer".to_owned()),
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Runs until the server stops: delivers every change after the newest one at startup.
pub async fn run(verifier: Arc<Verifier>, target: WebhookTarget) {
    let mut next = {
        let verifier = Arc::clone(&verifier);
        match tokio::task::spawn_blocking(move || verifier.latest_status_seq()).await {
            Ok(Ok(seq)) => seq + 1,
            _ => 1,
        }
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let batch = {
            let verifier = Arc::clone(&verifier);
            tokio::task::spawn_blocking(move || verifier.status_changes(next, 64)).await
        };
        let changes = match batch {
            Ok(Ok(changes)) => changes,
            _ => Vec::new(),
        };
        if changes.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for change in changes {
            let body = payload(&change);
            loop {
                match post(&target, &body).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(500);
                        break;
                    }
                    Err(error) => {
                        // The path is left out: it may carry a receiver's secret.
                        tracing::warn!(
                            event = "webhook_failure",
                            target = %format!("{}:{}", target.host, target.port),
                            seq = change.seq,
                            node = %change.node_id,
                            %error,
                            retry_in_ms = backoff.as_millis() as u64,
                            "webhook delivery failed; retrying"
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
            next = change.seq + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_host_and_path() {
        assert_eq!(
            WebhookTarget::parse("http://hooks.local:8080/vigil/changes").unwrap(),
            WebhookTarget {
                host: "hooks.local".into(),
                port: 8080,
                path: "/vigil/changes".into()
            }
        );
        assert_eq!(WebhookTarget::parse("http://h").unwrap().port, 80);
        assert!(WebhookTarget::parse("https://h/x").is_err());
        assert!(WebhookTarget::parse("http://h:x/").is_err());
        assert!(WebhookTarget::parse("http://h/a b").is_err());
        assert!(WebhookTarget::parse("http:///x").is_err());
    }
}
