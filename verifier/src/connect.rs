//! Client connections to Vigil's gRPC servers (attesters, verifiers): plaintext in `--dev`
//! mode, mutual TLS otherwise, with the client certificate of one role from a certificate
//! directory as `vigil dev-certs` writes it (`ca.pem`, `<role>.pem`, `<role>-key.pem`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
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
    /// Configurations already read from `dir`, by server host name: a verifier pulling from
    /// a fleet reads and parses its certificate files once, not at every attestation.
    configs: Arc<Mutex<HashMap<String, ClientTlsConfig>>>,
}

/// Most host names whose TLS configuration is remembered (cleared when full).
const MAX_CACHED_CONFIGS: usize = 4096;

impl ClientTls {
    pub fn new(dir: impl Into<PathBuf>, role: Role) -> Self {
        ClientTls {
            dir: dir.into(),
            role,
            configs: Arc::default(),
        }
    }

    /// The TLS configuration for a server at `uri`: its name is checked against `uri`'s host.
    pub fn config_for(&self, uri: &str) -> Result<ClientTlsConfig, String> {
        let host = host_of(uri);
        if let Ok(configs) = self.configs.lock()
            && let Some(config) = configs.get(host)
        {
            return Ok(config.clone());
        }
        let config = vigil_tls::client_tls_config_from_dir(&self.dir, self.role, host)
            .map_err(|e| format!("client certificate ({}): {e}", self.role.as_str()))?;
        if let Ok(mut configs) = self.configs.lock() {
            if configs.len() >= MAX_CACHED_CONFIGS {
                configs.clear();
            }
            configs.insert(host.to_owned(), config.clone());
        }
        Ok(config)
    }
}

pub use vigil_tls::{endpoint_uri, host_of, same_endpoint};

/// What runs at the other end, for error messages.
pub const VERIFIER_PEER: &str = "the verifier (`vigil serve`)";
pub const ATTESTER_PEER: &str = "the attester (`vigil-attester serve`)";

/// The description of `uri` for [`vigil_tls::explain_transport_error`].
pub fn target<'a>(
    uri: &'a str,
    tls: Option<&ClientTls>,
    peer: &'a str,
) -> vigil_tls::TransportTarget<'a> {
    vigil_tls::TransportTarget {
        uri,
        tls_dir_given: tls.is_some(),
        peer,
    }
}

/// An endpoint for `address` with timeouts and, when `tls` is given, mutual TLS. An
/// `https://` address without `tls` is refused here, naming `--tls-dir`.
pub fn endpoint(address: &str, tls: Option<&ClientTls>) -> Result<(Endpoint, String), String> {
    let uri = endpoint_uri(address, tls.is_some());
    vigil_tls::check_scheme(&target(&uri, tls, "the server"))?;
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

/// Connects to the verifier at `address` and checks the connection with a health call, so
/// that a refused connection, a TLS mismatch (plaintext against TLS, another CA) or a refused
/// client certificate is reported here, saying what to do, rather than as "transport error"
/// at the first real call. Any answer from the server (even a refusal) counts as connected.
pub async fn channel(address: &str, tls: Option<&ClientTls>) -> Result<Channel, String> {
    let (endpoint, uri) = endpoint(address, tls)?;
    let target = target(&uri, tls, VERIFIER_PEER);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| vigil_tls::explain_transport_error(&e, &target))?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let probe = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    if let Err(status) = probe
        && let Some(message) = vigil_tls::explain_status(&status, &target)
    {
        return Err(message);
    }
    Ok(channel)
}
