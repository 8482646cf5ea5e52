//! Opening the connection: where the password comes from, TLS, and keeping the password out
//! of every message.
//!
//! # Password
//!
//! From the URL when it has one; otherwise from the file named by `VIGIL_DB_PASSWORD_FILE`
//! (a secret mount; one trailing newline trimmed), otherwise from `PGPASSWORD`. The file
//! wins over `PGPASSWORD` because it is the deliberate, Vigil-specific setting; `PGPASSWORD`
//! is often inherited by accident. The password never appears in an error or a log line:
//! every message naming the URL names [`redacted`]`(url)`.
//!
//! # TLS decision
//!
//! TLS is built in, on the workspace's own rustls 0.23 with the aws-lc-rs provider and
//! tokio-rustls (both already in the dependency tree), through a small `MakeTlsConnect` of
//! our own rather than `tokio-postgres-rustls`: that crate would add sha2 0.11, x509-cert and
//! their DER stack only to offer SCRAM channel binding. Without channel binding SCRAM still
//! authenticates both ways; the TLS session is bound to the server by certificate checks.
//!
//! - `sslmode` absent or `disable`: plain TCP (or the unix socket).
//! - `sslmode=require` or `verify-full`: TLS, and the server's certificate must chain to the
//!   CA in `sslrootcert=` (URL) or `VIGIL_DB_CA` (PEM file) and name the host. Stricter than
//!   libpq's `require` (which checks nothing without a root file) on purpose: an unverified
//!   TLS session does not protect a verifier's verdicts from a man in the middle. No CA given
//!   is an error, not a silent downgrade.
//! - `prefer`, `allow`, `verify-ca`: refused, each can connect without verifying the server.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::{NoTls, Socket};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{PgStoreError, describe};

/// The environment [`client`] reads, gathered so tests can supply their own.
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    /// `VIGIL_DB_PASSWORD_FILE`.
    pub password_file: Option<String>,
    /// `PGPASSWORD`.
    pub pgpassword: Option<String>,
    /// `VIGIL_DB_CA`.
    pub ca_file: Option<String>,
}

impl Env {
    pub fn process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            password_file: var("VIGIL_DB_PASSWORD_FILE"),
            pgpassword: var("PGPASSWORD"),
            ca_file: var("VIGIL_DB_CA"),
        }
    }
}

/// `url` with any password replaced by `***`: in the user info of a `postgres://` URL, in a
/// `password=` query parameter, or in a `password=` key of a `key=value` string.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_key_values(url);
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The user info ends at the last '@' before the query (a password may hold '/' or '@').
    let mut out = format!("{scheme}://");
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(userinfo),
            }
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// `password=…` (possibly quoted) in a libpq `key=value` string, redacted.
fn redact_key_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = find_key(rest, "password") {
        out.push_str(&rest[..pos]);
        let after_key = &rest[pos + "password".len()..];
        let trimmed = after_key.trim_start();
        let Some(value) = trimmed.strip_prefix('=') else {
            out.push_str(&rest[pos..pos + "password".len()]);
            rest = after_key;
            continue;
        };
        out.push_str("password=***");
        let value = value.trim_start();
        rest = if let Some(quoted) = value.strip_prefix('\'') {
            // Up to the closing quote not escaped by a backslash.
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, ch) in quoted.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            &quoted[end.min(quoted.len())..]
        } else {
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            &value[end..]
        };
    }
    out.push_str(rest);
    out
}

/// Where `key` starts as a whole word in `s` (case-insensitively).
fn find_key(s: &str, key: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(key) {
        let at = from + i;
        let starts_word = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        if starts_word {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

/// The TLS wishes taken out of the URL (tokio-postgres knows neither `sslrootcert` nor the
/// `verify-*` modes, so they are removed before it parses the rest).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsWish {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off `url` (either form).
fn take_tls_params(url: &str) -> (String, TlsWish) {
    let mut wish = TlsWish::default();
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), wish);
        };
        let mut kept = Vec::new();
        for param in query.split('&') {
            match param.split_once('=') {
                Some(("sslmode", v)) => wish.sslmode = Some(percent_decode(v)),
                Some(("sslrootcert", v)) => wish.sslrootcert = Some(percent_decode(v)),
                _ => kept.push(param),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (url, wish)
    } else {
        // key=value form: only plain (unquoted) values for these two keys.
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", v)) => wish.sslmode = Some(v.to_owned()),
                Some(("sslrootcert", v)) => wish.sslrootcert = Some(v.to_owned()),
                _ => kept.push(token),
            }
        }
        (kept.join(" "), wish)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connect_error(url: &str, reason: impl Into<String>) -> PgStoreError {
    PgStoreError::Connect {
        url: redacted(url),
        reason: reason.into(),
    }
}

/// The password to use when the URL has none (module docs), trailing newline trimmed.
fn env_password(env: &Env) -> Result<Option<String>, PgStoreError> {
    if let Some(path) = &env.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PgStoreError::Invalid(format!(
                "VIGIL_DB_PASSWORD_FILE {path}: cannot read the password file: {e}"
            ))
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        return Ok(Some(text.to_owned()));
    }
    Ok(env.pgpassword.clone())
}

/// The parsed configuration and TLS setup for `url` (no network).
fn prepare(
    url: &str,
    env: &Env,
) -> Result<(postgres::Config, Option<rustls::ClientConfig>), PgStoreError> {
    let (stripped, wish) = take_tls_params(url);
    let mut config: postgres::Config = stripped
        .parse()
        .map_err(|e: postgres::Error| connect_error(url, format!("bad URL: {}", describe(&e))))?;
    if config.get_password().is_none()
        && let Some(password) = env_password(env)?
    {
        config.password(password);
    }
    let tls = match wish.sslmode.as_deref() {
        None | Some("disable") => None,
        Some("require" | "verify-full") => {
            let ca = wish
                .sslrootcert
                .or_else(|| env.ca_file.clone())
                .ok_or_else(|| {
                    connect_error(
                        url,
                        "sslmode=require needs the CA certificate that signed the server's \
                     (sslrootcert= in the URL, or VIGIL_DB_CA): the server is always verified",
                    )
                })?;
            Some(tls_config(url, &ca)?)
        }
        Some(other @ ("prefer" | "allow" | "verify-ca")) => {
            return Err(connect_error(
                url,
                format!(
                    "sslmode={other} is not supported: it can connect without verifying the \
                     server; use sslmode=require (TLS, certificate and host name verified) or \
                     sslmode=disable"
                ),
            ));
        }
        Some(other) => {
            return Err(connect_error(url, format!("unknown sslmode={other}")));
        }
    };
    config.ssl_mode(if tls.is_some() {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    Ok((config, tls))
}

fn tls_config(url: &str, ca_path: &str) -> Result<rustls::ClientConfig, PgStoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| connect_error(url, format!("CA certificate file {ca_path}: {e}")))?;
    if certs.is_empty() {
        return Err(connect_error(
            url,
            format!("CA certificate file {ca_path} holds no certificate"),
        ));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| connect_error(url, format!("CA certificate in {ca_path}: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| connect_error(url, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Connects to `url` as the module docs say.
pub(crate) fn client(url: &str, env: &Env) -> Result<postgres::Client, PgStoreError> {
    let (config, tls) = prepare(url, env)?;
    let connected = match tls {
        None => config.connect(NoTls),
        Some(tls) => config.connect(RustlsConnect(Arc::new(tls))),
    };
    connected.map_err(|e| connect_error(url, describe(&e)))
}

/// tokio-postgres' TLS hook over tokio-rustls.
#[derive(Clone)]
struct RustlsConnect(Arc<rustls::ClientConfig>);

struct RustlsHandshake {
    config: Arc<rustls::ClientConfig>,
    server: ServerName<'static>,
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsHandshake;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsHandshake> {
        let server = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsHandshake {
            config: self.0.clone(),
            server,
        })
    }
}

impl TlsConnect<Socket> for RustlsHandshake {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.server, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // Module docs: no channel binding (it needs the certificate's signature hash).
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_every_form_of_password() {
        assert_eq!(
            redacted("postgres://vigil:s3cr3t@db:5432/vigil?sslmode=require"),
            "postgres://vigil:***@db:5432/vigil?sslmode=require"
        );
        assert_eq!(
            redacted("postgresql://vigil:p@ss/w@db/vigil"),
            "postgresql://vigil:***@db/vigil"
        );
        assert_eq!(
            redacted("postgres://vigil@db/vigil?password=s3cr3t&sslmode=disable"),
            "postgres://vigil@db/vigil?password=***&sslmode=disable"
        );
        assert_eq!(redacted("postgres://db/vigil"), "postgres://db/vigil");
        assert_eq!(
            redacted("host=db user=vigil password=s3cr3t dbname=vigil"),
            "host=db user=vigil password=*** dbname=vigil"
        );
        assert_eq!(
            redacted("host=db password = 'a b\\' c' dbname=vigil"),
            "host=db password=*** dbname=vigil"
        );
        for url in [
            "postgres://vigil:s3cr3t@db/vigil",
            "postgres://vigil@db/vigil?password=s3cr3t",
            "host=db password=s3cr3t",
        ] {
            assert!(!redacted(url).contains("s3cr3t"), "{url}");
        }
    }

    #[test]
    fn tls_params_are_taken_out_before_tokio_postgres_parses() {
        let (url, wish) =
            take_tls_params("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(wish.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(wish.sslrootcert.as_deref(), Some("/etc/ca.pem"));
        let (url, wish) = take_tls_params("host=h sslmode=require user=u");
        assert_eq!(url, "host=h user=u");
        assert_eq!(wish.sslmode.as_deref(), Some("require"));
    }

    #[test]
    fn the_password_comes_from_the_url_then_the_file_then_pgpassword() {
        let dir = std::env::temp_dir().join(format!("vigil-pgpw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        let password = |url: &str, env: &Env| {
            prepare(url, env)
                .unwrap()
                .0
                .get_password()
                .map(|p| String::from_utf8(p.to_vec()).unwrap())
        };
        let both = Env {
            password_file: Some(file.display().to_string()),
            pgpassword: Some("from-env".into()),
            ca_file: None,
        };
        assert_eq!(
            password("postgres://u:in-url@h/db", &both).as_deref(),
            Some("in-url")
        );
        assert_eq!(
            password("postgres://u@h/db", &both).as_deref(),
            Some("from-file"),
            "trailing newline trimmed"
        );
        let env_only = Env {
            pgpassword: Some("from-env".into()),
            ..Env::default()
        };
        assert_eq!(
            password("postgres://u@h/db", &env_only).as_deref(),
            Some("from-env")
        );
        assert_eq!(password("postgres://u@h/db", &Env::default()), None);
        let missing = Env {
            password_file: Some(dir.join("nope").display().to_string()),
            ..Env::default()
        };
        let err = prepare("postgres://u@h/db", &missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("VIGIL_DB_PASSWORD_FILE"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sslmodes_that_do_not_verify_are_refused_and_errors_hide_the_password() {
        for mode in ["prefer", "allow", "verify-ca", "bogus"] {
            let url = format!("postgres://u:s3cr3t@h/db?sslmode={mode}");
            let err = prepare(&url, &Env::default()).unwrap_err().to_string();
            assert!(err.contains(&format!("sslmode={mode}")), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(err.contains("u:***@h"), "{err}");
        }
        let err = prepare("postgres://u:s3cr3t@h/db?sslmode=require", &Env::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslrootcert"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = prepare(
            "postgres://u:s3cr3t@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
            &Env::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        // Without sslrootcert, VIGIL_DB_CA names the CA file.
        let ca_env = Env {
            ca_file: Some("/nonexistent/vigil-db-ca.pem".into()),
            ..Env::default()
        };
        let err = prepare("postgres://u@h/db?sslmode=require", &ca_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/vigil-db-ca.pem"), "{err}");
        let (config, tls) = prepare("postgres://u@h/db", &Env::default()).unwrap();
        assert!(tls.is_none());
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        let err = prepare("postgres://u:s3cr3t@h:notaport/db", &Env::default())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
