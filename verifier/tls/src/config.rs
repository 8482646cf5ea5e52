//! tonic TLS configurations from PEM files, checked before tonic sees them.
//!
//! tonic only reports unusable PEM when the server or channel is built, and rustls silently
//! skips CA certificates it cannot parse; reading the files here first turns a wrong path or
//! swapped file into an error that names the file and what is wrong with it.

use std::io::Read;
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use x509_parser::pem::Pem;

use crate::dev_certs::{CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, role_file_names};
use crate::error::TlsError;
use crate::role::Role;

/// Largest PEM file read (a certificate chain of a few certificates is under 10 KiB).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;
/// Most PEM blocks read from one file.
pub const MAX_PEM_BLOCKS: usize = 32;

const PRIVATE_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

/// Server side: our certificate chain and key, and the CA every client certificate must chain
/// to. Client authentication is required (not optional): a handshake without a client
/// certificate from `client_ca` fails.
pub fn server_tls_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<ServerTlsConfig, TlsError> {
    let identity = read_identity(cert, key)?;
    let ca = read_ca(client_ca)?;
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(ca)
        .client_auth_optional(false))
}

/// [`server_tls_config`] with the file names `write_dev_certs` uses: `server.pem`,
/// `server-key.pem`, `ca.pem` in `dir`.
pub fn server_tls_config_from_dir(dir: &Path) -> Result<ServerTlsConfig, TlsError> {
    server_tls_config(
        &dir.join(SERVER_CERT_FILE),
        &dir.join(SERVER_KEY_FILE),
        &dir.join(CA_CERT_FILE),
    )
}

/// Client side: the CA the server certificate must chain to (only this CA, not the system
/// roots), our client certificate and key, and the name the server certificate must carry.
pub fn client_tls_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    domain: &str,
) -> Result<ClientTlsConfig, TlsError> {
    let identity = read_identity(cert, key)?;
    let ca = read_ca(ca)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name(domain))
}

/// [`client_tls_config`] with the file names `write_dev_certs` uses for `role`.
pub fn client_tls_config_from_dir(
    dir: &Path,
    role: Role,
    domain: &str,
) -> Result<ClientTlsConfig, TlsError> {
    let (cert, key) = role_file_names(role);
    client_tls_config(
        &dir.join(CA_CERT_FILE),
        &dir.join(cert),
        &dir.join(key),
        domain,
    )
}

fn read_identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let cert_pem = read_limited(cert)?;
    check_certificates(cert, &cert_pem, false)?;
    let key_pem = read_limited(key)?;
    check_private_key(key, &key_pem)?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}

fn read_ca(path: &Path) -> Result<Certificate, TlsError> {
    let pem = read_limited(path)?;
    check_certificates(path, &pem, true)?;
    Ok(Certificate::from_pem(pem))
}

/// Reads a whole file, refusing anything over [`MAX_PEM_FILE`].
fn read_limited(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::TooLarge {
            what: path.display().to_string(),
            size: bytes.len() as u64,
            limit: MAX_PEM_FILE,
        });
    }
    Ok(bytes)
}

fn pem_blocks(path: &Path, pem: &[u8]) -> Result<Vec<Pem>, TlsError> {
    let mut blocks = Vec::new();
    for (index, block) in Pem::iter_from_buffer(pem).enumerate() {
        if index >= MAX_PEM_BLOCKS {
            return Err(pem_error(
                path,
                format!("more than {MAX_PEM_BLOCKS} PEM blocks"),
            ));
        }
        let block = block.map_err(|e| pem_error(path, format!("PEM block {index}: {e}")))?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// Every block must be a CERTIFICATE that parses; with `must_be_ca`, each must say cA=TRUE
/// (catches a leaf certificate given where the CA belongs).
fn check_certificates(path: &Path, pem: &[u8], must_be_ca: bool) -> Result<(), TlsError> {
    let blocks = pem_blocks(path, pem)?;
    if blocks.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE block".to_string()));
    }
    for (index, block) in blocks.iter().enumerate() {
        if block.label != "CERTIFICATE" {
            return Err(pem_error(
                path,
                format!(
                    "PEM block {index} is {:?}, expected CERTIFICATE",
                    block.label
                ),
            ));
        }
        let cert = block.parse_x509().map_err(|e| TlsError::CertificateParse {
            what: format!("{} block {index}", path.display()),
            reason: e.to_string(),
        })?;
        if must_be_ca && !cert.is_ca() {
            return Err(pem_error(
                path,
                format!(
                    "certificate {index} ({}) is not a CA certificate (basicConstraints cA is not TRUE)",
                    cert.subject()
                ),
            ));
        }
    }
    Ok(())
}

/// Exactly one private-key block.
fn check_private_key(path: &Path, pem: &[u8]) -> Result<(), TlsError> {
    let blocks = pem_blocks(path, pem)?;
    match blocks.as_slice() {
        [block] if PRIVATE_KEY_LABELS.contains(&block.label.as_str()) => Ok(()),
        [block] => Err(pem_error(
            path,
            format!("PEM block is {:?}, expected a private key", block.label),
        )),
        [] => Err(pem_error(path, "no private key block".to_string())),
        more => Err(pem_error(
            path,
            format!(
                "{} PEM blocks, expected exactly one private key",
                more.len()
            ),
        )),
    }
}

fn pem_error(path: &Path, reason: String) -> TlsError {
    TlsError::Pem {
        what: PathBuf::from(path).display().to_string(),
        reason,
    }
}
