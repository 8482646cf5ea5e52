//! Client connections to Vigil's gRPC servers (attesters, verifiers): plaintext in `--dev`
//! mode, mutual TLS otherwise, with the client certificate of one role from a certificate
//! directory as `vigil dev-certs` writes it (`ca.pem`, `<role>.pem`, `<role>-key.pem`).

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use vigil_tls::Role;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Which client certificate to present.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub dir: PathBuf,
    pub role: Role,
}

impl ClientTls {
    pub fn new(dir: impl Into<PathBuf>, role: Role) -> Self {
        ClientTls {
            dir: dir.into(),
            role,
        }
    }

    /// The TLS configuration for a server at `uri`: its name is checked against `uri`'s host.
    pub fn config_for(&self, uri: &str) -> Result<ClientTlsConfig, String> {
        vigil_tls::client_tls_config_from_dir(&self.dir, self.role, host_of(uri))
            .map_err(|e| format!("client certificate ({}): {e}", self.role.as_str()))
    }
}

pub use vigil_tls::{endpoint_uri, host_of, same_endpoint};

/// An endpoint for `address` with timeouts and, when `tls` is given, mutual TLS.
pub fn endpoint(address: &str, tls: Option<&ClientTls>) -> Result<(Endpoint, String), String> {
    let uri = endpoint_uri(address, tls.is_some());
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("invalid address {address:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.config_for(&uri)?)
            .map_err(|e| format!("TLS for {uri}: {e}"))?;
    }
    Ok((endpoint, uri))
}

/// Connects to `address`; errors say where and why (with the transport's underlying cause).
pub async fn channel(address: &str, tls: Option<&ClientTls>) -> Result<Channel, String> {
    let (endpoint, uri) = endpoint(address, tls)?;
    endpoint.connect().await.map_err(|e| {
        format!(
            "cannot reach {uri}: {e}{}",
            std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        )
    })
}
