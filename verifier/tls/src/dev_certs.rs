//! `vigil dev-certs DIR`: a throw-away CA and one certificate per role, for trying mTLS locally.
//!
//! Keys are ECDSA P-256 generated with ring (through rcgen). Nothing here is meant for
//! production: the CA key sits next to the certificates it signed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::TlsError;
use crate::role::{NODE_URI_PREFIX, Role};

/// Node id written into the dev attester certificate.
pub const DEV_NODE_ID: &str = "dev-node";
/// File names of the dev CA.
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File names of the dev server certificate (verifier and attester alike).
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// When the dev certificates are valid. Taken as a parameter so tests can make expired ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevCertValidity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl DevCertValidity {
    /// From one hour before `now` (clock skew) to one year after it.
    pub fn one_year_from(now: SystemTime) -> DevCertValidity {
        DevCertValidity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// The certificate and key file names for a role: `<role>.pem`, `<role>-key.pem`.
pub fn role_file_names(role: Role) -> (String, String) {
    (format!("{role}.pem"), format!("{role}-key.pem"))
}

/// One PEM file to be written.
struct PemFile {
    name: String,
    contents: String,
    secret: bool,
}

/// Writes the dev PKI into `dir` (created if missing), valid for a year from now.
/// Returns the paths written. Refuses to touch existing files unless `force`.
pub fn write_dev_certs(dir: &Path, force: bool) -> Result<Vec<PathBuf>, TlsError> {
    write_dev_certs_with(
        dir,
        force,
        DevCertValidity::one_year_from(SystemTime::now()),
    )
}

/// [`write_dev_certs`] with an explicit validity period.
pub fn write_dev_certs_with(
    dir: &Path,
    force: bool,
    validity: DevCertValidity,
) -> Result<Vec<PathBuf>, TlsError> {
    let files = generate(validity)?;
    if !force {
        // Check everything first, so a refusal leaves the directory exactly as it was.
        if let Some(existing) = files
            .iter()
            .map(|file| dir.join(&file.name))
            .find(|path| path.symlink_metadata().is_ok())
        {
            return Err(TlsError::AlreadyExists { path: existing });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::with_capacity(files.len());
    for file in &files {
        let path = dir.join(&file.name);
        write_new_file(&path, file.contents.as_bytes(), file.secret, force)?;
        written.push(path);
    }
    Ok(written)
}

/// Creates `path` afresh (never writing through an existing file or symlink); private keys get
/// mode 0600 from the moment they exist.
fn write_new_file(path: &Path, contents: &[u8], secret: bool, force: bool) -> Result<(), TlsError> {
    let write_error = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_error(e)),
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

fn generation_error(what: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |e| TlsError::Generate {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Builds every file in memory: CA, server, one client per role.
fn generate(validity: DevCertValidity) -> Result<Vec<PemFile>, TlsError> {
    let ca_key = KeyPair::generate().map_err(generation_error("CA key"))?;
    let mut ca_params = CertificateParams::default();
    // A name unique to this CA: with a fixed name, certificates from two `dev-certs` runs look
    // like the same issuer, and mixing them fails as a bad signature instead of unknown CA.
    let key_id: String = ca_params
        .key_identifier(&ca_key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("Vigil dev CA {key_id} (not for production)"),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca_params, validity);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(generation_error("CA certificate"))?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut files = vec![
        PemFile {
            name: CA_CERT_FILE.to_string(),
            contents: ca_cert.pem(),
            secret: false,
        },
        PemFile {
            name: CA_KEY_FILE.to_string(),
            contents: ca_key_pem,
            secret: true,
        },
    ];

    let server_names = vec![
        SanType::DnsName(
            "localhost"
                .try_into()
                .map_err(generation_error("server SAN"))?,
        ),
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    let (cert, key) = issue_leaf(
        &issuer,
        "vigil-dev-server",
        server_names,
        ExtendedKeyUsagePurpose::ServerAuth,
        validity,
    )?;
    files.push(PemFile {
        name: SERVER_CERT_FILE.to_string(),
        contents: cert,
        secret: false,
    });
    files.push(PemFile {
        name: SERVER_KEY_FILE.to_string(),
        contents: key,
        secret: true,
    });

    for role in Role::ALL {
        let mut uris = vec![role.uri()];
        if role == Role::Attester {
            uris.push(format!("{NODE_URI_PREFIX}{DEV_NODE_ID}"));
        }
        let names = uri_names(&uris)?;
        let (cert, key) = issue_leaf(
            &issuer,
            &format!("vigil-dev-{role}"),
            names,
            ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        )?;
        let (cert_name, key_name) = role_file_names(role);
        files.push(PemFile {
            name: cert_name,
            contents: cert,
            secret: false,
        });
        files.push(PemFile {
            name: key_name,
            contents: key,
            secret: true,
        });
    }
    Ok(files)
}

fn set_validity(params: &mut CertificateParams, validity: DevCertValidity) {
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
}

fn uri_names(uris: &[String]) -> Result<Vec<SanType>, TlsError> {
    uris.iter()
        .map(|uri| {
            uri.as_str()
                .try_into()
                .map(SanType::URI)
                .map_err(generation_error("client SAN URI"))
        })
        .collect()
}

/// Issues an end-entity certificate; returns (certificate PEM, private key PEM).
fn issue_leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    names: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    validity: DevCertValidity,
) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate().map_err(generation_error(common_name))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    let cert = params
        .signed_by(&key, issuer)
        .map_err(generation_error(common_name))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Test support: a CA and a way to issue client certificates with arbitrary SAN URIs.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) struct TestCa {
        issuer: Issuer<'static, KeyPair>,
    }

    impl TestCa {
        pub(crate) fn new() -> TestCa {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            TestCa {
                issuer: Issuer::new(params, key),
            }
        }

        /// DER of a client certificate carrying exactly these SAN URIs.
        pub(crate) fn client_der(&self, uris: &[&str]) -> Vec<u8> {
            let uris: Vec<String> = uris.iter().map(|u| u.to_string()).collect();
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            params.subject_alt_names = uri_names(&uris).unwrap();
            params.signed_by(&key, &self.issuer).unwrap().der().to_vec()
        }
    }
}
