//! Client-side explanations of transport failures: what went wrong connecting to a Vigil
//! server (refused, timed out, TLS on one side only, a certificate from another CA) and what
//! to do about it, instead of tonic's bare "transport error" or "operation was canceled".
//!
//! tonic channels often connect lazily, so the same failure can surface from
//! `Endpoint::connect` (a [`tonic::transport::Error`]) or from the first RPC (a
//! [`tonic::Status`] whose `source()` chain holds the hyper/rustls error); both go through
//! [`explain_transport_error`]. Nothing here changes what is accepted: it only reads errors.

use std::error::Error;
use std::io;

use tonic::Code;

/// Where a client was connecting, to name it in the explanation.
#[derive(Debug, Clone, Copy)]
pub struct TransportTarget<'a> {
    /// The URI connected to (`https://host:port`).
    pub uri: &'a str,
    /// Whether a client certificate directory (`--tls-dir`) was given.
    pub tls_dir_given: bool,
    /// What runs there, e.g. "the verifier (`vigil serve`)".
    pub peer: &'a str,
}

impl TransportTarget<'_> {
    fn authority(&self) -> &str {
        let rest = self
            .uri
            .split_once("://")
            .map_or(self.uri, |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest)
    }

    fn is_https(&self) -> bool {
        self.uri.starts_with("https://")
    }
}

/// Refuses an `https://` URI without a certificate directory before any connection is made
/// (tonic would only say "Connecting to HTTPS without TLS enabled").
pub fn check_scheme(target: &TransportTarget<'_>) -> Result<(), String> {
    if target.is_https() && !target.tls_dir_given {
        return Err(format!(
            "{} is https:// but no --tls-dir was given: give --tls-dir DIR (the certificate \
             directory from `vigil dev-certs`, holding ca.pem and this role's client \
             certificate) for mutual TLS, or use http://{} for a server started with --dev",
            target.uri,
            target.authority()
        ));
    }
    Ok(())
}

/// Whether `status` is a failure of the connection (no answer from the server) rather than
/// an answer the server sent.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    // A status the server sent is decoded from its headers and has no source; one made from a
    // hyper/h2/io error keeps that error as its source.
    status.source().is_some()
        || (matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
        ) && [
            "transport error",
            "operation was canceled",
            "h2 protocol error",
        ]
        .iter()
        .any(|m| status.message().contains(m)))
}

/// The explanation of an RPC failure when it is a transport failure ([`is_transport_failure`]);
/// `None` for answers from the server, which callers report as they are.
pub fn explain_status(status: &tonic::Status, target: &TransportTarget<'_>) -> Option<String> {
    is_transport_failure(status).then(|| {
        let mut texts = vec![status.message().to_owned()];
        let mut kinds = Vec::new();
        if let Some(source) = status.source() {
            collect(source, &mut texts, &mut kinds);
        }
        explain(&texts, &kinds, target)
    })
}

/// What went wrong connecting to `target` and what to do about it, from `error`'s source chain
/// (io errors, hyper, rustls). Unrecognised causes are reported with the whole chain.
pub fn explain_transport_error(
    error: &(dyn Error + 'static),
    target: &TransportTarget<'_>,
) -> String {
    let mut texts = Vec::new();
    let mut kinds = Vec::new();
    collect(error, &mut texts, &mut kinds);
    explain(&texts, &kinds, target)
}

/// The Display text of every error in the chain (io errors' inner errors included: their
/// `source()` skips the error they wrap) and the kinds of the io errors.
fn collect(error: &(dyn Error + 'static), texts: &mut Vec<String>, kinds: &mut Vec<io::ErrorKind>) {
    let mut next = Some(error);
    let mut depth = 0;
    while let Some(e) = next {
        depth += 1;
        if depth > 16 {
            break;
        }
        let text = e.to_string();
        if !texts.contains(&text) {
            texts.push(text);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            kinds.push(io.kind());
            if let Some(inner) = io.get_ref() {
                let text = inner.to_string();
                if !texts.contains(&text) {
                    texts.push(text);
                }
                if let Some(inner_source) = inner.source() {
                    collect(inner_source, texts, kinds);
                }
            }
        }
        next = e.source();
    }
}

fn explain(texts: &[String], kinds: &[io::ErrorKind], target: &TransportTarget<'_>) -> String {
    let any = |needles: &[&str]| {
        texts.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            needles.iter().any(|n| t.contains(&n.to_ascii_lowercase()))
        })
    };
    let kind = |k: io::ErrorKind| kinds.contains(&k);
    let address = target.authority();
    let peer = target.peer;
    let cannot_connect = |why: &str| {
        format!("cannot connect to {address}: {why}; is {peer} running and listening there?")
    };
    let chain = texts.join(": ");

    // No TCP connection at all.
    if kind(io::ErrorKind::ConnectionRefused) || any(&["connection refused"]) {
        return cannot_connect("connection refused");
    }
    if kind(io::ErrorKind::HostUnreachable)
        || kind(io::ErrorKind::NetworkUnreachable)
        || any(&["no route to host", "network is unreachable", "unreachable"])
    {
        return cannot_connect("no route to host");
    }
    if any(&[
        "failed to lookup address",
        "name or service not known",
        "dns error",
    ]) {
        return format!(
            "cannot connect to {address}: the host name does not resolve ({chain}); check the \
             address"
        );
    }
    if any(&[
        "HttpsUriWithoutTlsSupport",
        "Connecting to HTTPS without TLS",
    ]) {
        return check_scheme(&TransportTarget {
            tls_dir_given: false,
            ..*target
        })
        .err()
        .unwrap_or(chain);
    }

    // TLS: the server's certificate, as the client checks it.
    if any(&["UnknownIssuer", "UnknownCA", "BadSignature"]) && any(&["invalid peer certificate"]) {
        return format!(
            "the TLS certificate of {peer} at {} is not issued by the CA in --tls-dir (ca.pem): \
             it was set up with another certificate directory; give the --tls-dir whose ca.pem \
             issued the server's certificate",
            target.uri
        );
    }
    if any(&["NotValidForName"]) {
        return format!(
            "the TLS certificate of {peer} does not carry the name in {}: connect by a name it \
             carries (`vigil dev-certs` issues localhost, 127.0.0.1, ::1 and each --san NAME) \
             or reissue it with --san; ({chain})",
            target.uri
        );
    }
    if any(&[
        "invalid peer certificate: Expired",
        "Expired",
        "NotValidYet",
    ]) && any(&["invalid peer certificate"])
    {
        return format!(
            "the TLS certificate of {peer} at {} is expired or not yet valid: reissue the \
             server's certificate ({chain})",
            target.uri
        );
    }
    // TLS: the server refused this client's certificate.
    if any(&[
        "received fatal alert: BadCertificate",
        "received fatal alert: UnknownCA",
        "received fatal alert: CertificateUnknown",
        "received fatal alert: DecryptError",
        "received fatal alert: CertificateExpired",
        "received fatal alert: CertificateRevoked",
        "received fatal alert: AccessDenied",
    ]) {
        return format!(
            "{peer} at {} rejected this client certificate (from --tls-dir): it is not issued \
             by the CA the server trusts, or is expired; use a certificate directory issued by \
             the server's CA (the one it was started with, or `vigil dev-certs` into it) \
             ({chain})",
            target.uri
        );
    }
    if any(&["received fatal alert: CertificateRequired"]) {
        return format!(
            "{peer} at {} requires a client certificate and got none: give --tls-dir DIR with \
             a client certificate issued by the server's CA",
            target.uri
        );
    }
    // TLS from the client, plaintext from the server.
    if any(&["InvalidContentType", "corrupt message", "tls handshake eof"]) && target.is_https() {
        return format!(
            "{peer} at {} does not speak TLS (it answered in plaintext or closed the \
             handshake): it was probably started with --dev; use http://{address} without \
             --tls-dir, or start it with --tls-dir",
            target.uri
        );
    }
    if any(&["received fatal alert", "peer is incompatible", "handshake"]) {
        return format!(
            "TLS handshake with {peer} at {} failed: {chain}; check that both sides use \
             certificates from the same `vigil dev-certs` directory",
            target.uri
        );
    }
    if kind(io::ErrorKind::TimedOut)
        || any(&["timed out", "timeout expired", "deadline has elapsed"])
    {
        return cannot_connect("timed out");
    }

    // Plaintext from the client: a TLS server drops the connection without an HTTP/2 answer.
    if !target.is_https() {
        return format!(
            "{peer} at {} closed the connection without an answer ({chain}): it probably \
             requires mutual TLS (servers do unless started with --dev); use https://{address} \
             with --tls-dir DIR (the certificate directory from `vigil dev-certs`)",
            target.uri
        );
    }
    if any(&[
        "broken pipe",
        "connection reset",
        "stream closed",
        "operation was canceled",
    ]) {
        return format!(
            "{peer} at {} closed the TLS connection without an answer ({chain}): it most \
             likely rejected this client certificate (from --tls-dir), which is not issued by \
             the CA the server trusts, or is expired; use a certificate directory issued by \
             the server's CA",
            target.uri
        );
    }
    format!("cannot reach {peer} at {}: {chain}", target.uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str, tls: bool) -> TransportTarget<'_> {
        TransportTarget {
            uri,
            tls_dir_given: tls,
            peer: "the verifier",
        }
    }

    #[test]
    fn https_without_a_certificate_directory_names_tls_dir() {
        let message = check_scheme(&target("https://localhost:1", false)).unwrap_err();
        assert!(message.contains("--tls-dir"), "{message}");
        check_scheme(&target("https://localhost:1", true)).unwrap();
        check_scheme(&target("http://localhost:1", false)).unwrap();
    }

    #[test]
    fn refused_connections_name_the_address() {
        let error = io::Error::from(io::ErrorKind::ConnectionRefused);
        let message = explain_transport_error(&error, &target("http://127.0.0.1:9", false));
        assert_eq!(
            message,
            "cannot connect to 127.0.0.1:9: connection refused; is the verifier running and \
             listening there?"
        );
    }

    #[test]
    fn tls_failures_say_what_to_do() {
        let unknown = io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let message = explain_transport_error(&unknown, &target("https://localhost:1", true));
        assert!(
            message.contains("not issued by the CA in --tls-dir"),
            "{message}"
        );
        let plain = io::Error::new(
            io::ErrorKind::InvalidData,
            "received corrupt message of type InvalidContentType",
        );
        let message = explain_transport_error(&plain, &target("https://localhost:1", true));
        assert!(message.contains("does not speak TLS"), "{message}");
        let closed = io::Error::other("operation was canceled");
        let message = explain_transport_error(&closed, &target("http://localhost:1", false));
        assert!(
            message.contains("https://") && message.contains("--tls-dir"),
            "{message}"
        );
    }

    #[test]
    fn server_answers_are_not_transport_failures() {
        assert!(
            explain_status(
                &tonic::Status::unavailable("busy"),
                &target("http://a:1", false)
            )
            .is_none()
        );
        assert!(
            explain_status(
                &tonic::Status::permission_denied("no"),
                &target("http://a:1", false)
            )
            .is_none()
        );
    }
}
