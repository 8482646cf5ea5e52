//! The console's listener: mutual TLS with the `--tls-dir` files (client certificate
//! required, roles read once per connection), or plaintext on loopback for `--dev`.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Peer;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet picked up by the HTTP server.
const ACCEPT_BACKLOG: usize = 64;

/// The rustls server configuration for the console, from the same files as gRPC
/// (`ca.pem`, `server.pem`, `server-key.pem` in `dir`): client certificates are required and
/// must chain to `ca.pem`.
pub fn web_tls_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    // The same checks as the gRPC server's, for the same error messages (wrong file, leaf
    // given as CA, ...), before rustls reads them.
    vigil_tls::server_tls_config_from_dir(dir).map_err(|e| e.to_string())?;
    let ca_path = dir.join(vigil_tls::CA_CERT_FILE);
    let cert_path = dir.join(vigil_tls::SERVER_CERT_FILE);
    let key_path = dir.join(vigil_tls::SERVER_KEY_FILE);
    let read_certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs(&ca_path)? {
        roots
            .add(ca)
            .map_err(|e| format!("{}: {e}", ca_path.display()))?;
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let chain = read_certs(&cert_path)?;
    // The crypto provider is the one rustls feature the workspace enables (through tonic).
    // rustls panics when it cannot pick one (none, or two without a process default): turn
    // that into a start-up error instead.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let client_verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("{}: {e}", cert_path.display()))
    }))
    .map_err(|_| "web console: rustls found no single crypto provider to use".to_owned())?;
    let mut config = built?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A connection to the console: plaintext (`--dev`) or TLS.
pub enum WebStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for WebStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WebStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_flush(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections and finishes TLS handshakes in their own tasks (a slow client never
/// holds up others), handing ready connections and their [`Peer`] to the HTTP server.
pub struct WebListener {
    ready: mpsc::Receiver<(WebStream, Peer)>,
    local: SocketAddr,
    tls: bool,
}

impl WebListener {
    /// Starts accepting on `listener`. Without `tls` (`--dev`) the address must be loopback:
    /// a plaintext console without authentication is for one's own machine only.
    pub fn start(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<WebListener, String> {
        let local = listener
            .local_addr()
            .map_err(|e| format!("web console address: {e}"))?;
        if tls.is_none() && !local.ip().is_loopback() {
            return Err(format!(
                "--web-listen {local}: in --dev mode the console is plaintext without authentication and listens on loopback only (127.0.0.1 or ::1)"
            ));
        }
        let (sender, ready) = mpsc::channel(ACCEPT_BACKLOG);
        let is_tls = tls.is_some();
        tokio::spawn(accept_loop(
            listener,
            tls.map(tokio_rustls::TlsAcceptor::from),
            sender,
        ));
        Ok(WebListener {
            ready,
            local,
            tls: is_tls,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    sender: mpsc::Sender<(WebStream, Peer)>,
) {
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "web console: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if sender.is_closed() {
            return;
        }
        let Some(acceptor) = acceptor.clone() else {
            if sender
                .send((WebStream::Plain(stream), Peer::Dev(address)))
                .await
                .is_err()
            {
                return;
            }
            continue;
        };
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let caller = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                        Some(der) => {
                            vigil_tls::caller_from_certificate(der).map_err(|e| e.to_string())
                        }
                        None => Err("no client certificate".to_owned()),
                    };
                    let _ = sender
                        .send((WebStream::Tls(Box::new(tls)), Peer::Tls(address, caller)))
                        .await;
                }
                Ok(Err(error)) => {
                    tracing::info!(peer = %address, %error, "web console: TLS handshake refused");
                }
                Err(_) => tracing::info!(peer = %address, "web console: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for WebListener {
    type Io = WebStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends when this receiver is gone; never resolve otherwise.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(if self.tls {
            Peer::Tls(self.local, Err("this server".to_owned()))
        } else {
            Peer::Dev(self.local)
        })
    }
}

impl WebListener {
    /// The address the console listens on.
    pub fn address(&self) -> SocketAddr {
        self.local
    }
}
