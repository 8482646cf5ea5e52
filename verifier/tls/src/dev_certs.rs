//! `vigil dev-certs DIR`: a throw-away CA and one certificate per role, for trying mTLS locally.
//!
//! Keys are ECDSA P-256 generated with ring (through rcgen). Nothing here is meant for
//! production: the CA key sits next to the certificates it signed.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
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

/// Most extra server names `dev-certs` accepts (the defaults are always present).
pub const MAX_EXTRA_SERVER_NAMES: usize = 32;

/// A subject alternative name for the dev server certificate, beyond the defaults
/// (`localhost`, `127.0.0.1`, `::1`): a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerName {
    /// A DNS name, lowercased (`verifier.lab.example`).
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

/// Why a `--san` value is not a DNS name or IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidServerName {
    pub name: String,
    pub reason: String,
}

impl std::fmt::Display for InvalidServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a DNS name or IP address: {}",
            self.name, self.reason
        )
    }
}

impl std::error::Error for InvalidServerName {}

impl FromStr for ServerName {
    type Err = InvalidServerName;

    /// An IP address (IPv6 optionally in brackets) or a DNS name of letters, digits and
    /// hyphens (RFC 1123 labels of 1-63 characters, at most 253 in all, no wildcards).
    fn from_str(text: &str) -> Result<ServerName, InvalidServerName> {
        let invalid = |reason: &str| InvalidServerName {
            name: text.to_string(),
            reason: reason.to_string(),
        };
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(ServerName::Ip(ip));
        }
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        if text.contains('*') {
            return Err(invalid("wildcards are not supported; name each host"));
        }
        if text.contains(':') || text.contains('/') {
            return Err(invalid(
                "give a bare host name or address, without scheme, port or path",
            ));
        }
        let labels: Vec<&str> = text.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err(invalid("empty label (leading, trailing or double dot)"));
            }
            if label.len() > 63 {
                return Err(invalid("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid(
                    "only letters, digits, hyphens and dots are allowed (IDNs in their xn-- form)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label starts or ends with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "all-numeric last label: not a valid IP address, and not a DNS name",
            ));
        }
        Ok(ServerName::Dns(text.to_ascii_lowercase()))
    }
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerName::Dns(name) => f.write_str(name),
            ServerName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl ServerName {
    /// The names every dev server certificate carries.
    pub fn defaults() -> [ServerName; 3] {
        [
            ServerName::Dns("localhost".to_string()),
            ServerName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ServerName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]
    }

    fn san(&self) -> Result<SanType, TlsError> {
        Ok(match self {
            ServerName::Dns(name) => SanType::DnsName(
                name.as_str()
                    .try_into()
                    .map_err(generation_error("server SAN"))?,
            ),
            ServerName::Ip(ip) => SanType::IpAddress(*ip),
        })
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
    write_dev_certs_with_names(dir, force, validity, &[])
}

/// [`write_dev_certs_with`], the server certificate also naming `extra` (`--san`), so servers on
/// other hosts can be reached by those names. Duplicates (of each other or of the defaults) are
/// dropped; more than [`MAX_EXTRA_SERVER_NAMES`] is refused.
pub fn write_dev_certs_with_names(
    dir: &Path,
    force: bool,
    validity: DevCertValidity,
    extra: &[ServerName],
) -> Result<Vec<PathBuf>, TlsError> {
    if extra.len() > MAX_EXTRA_SERVER_NAMES {
        return Err(TlsError::Generate {
            what: "server certificate".to_string(),
            reason: format!(
                "{} extra names, more than the limit of {MAX_EXTRA_SERVER_NAMES}",
                extra.len()
            ),
        });
    }
    let mut server_names: Vec<ServerName> = ServerName::defaults().to_vec();
    for name in extra {
        if !server_names.contains(name) {
            server_names.push(name.clone());
        }
    }
    let files = generate(validity, &server_names)?;
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
fn generate(
    validity: DevCertValidity,
    server_names: &[ServerName],
) -> Result<Vec<PemFile>, TlsError> {
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

    let server_names = server_names
        .iter()
        .map(ServerName::san)
        .collect::<Result<Vec<_>, _>>()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vigil-tls-dev-certs-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The DNS names and IP addresses of the server certificate in `dir`.
    fn server_sans(dir: &Path) -> (Vec<String>, Vec<IpAddr>) {
        let pem = std::fs::read(dir.join(SERVER_CERT_FILE)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns.push(name.to_string()),
                GeneralName::IPAddress(bytes) => ips.push(match bytes.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()),
                    16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()),
                    n => panic!("IP SAN of {n} bytes"),
                }),
                other => panic!("unexpected server SAN {other:?}"),
            }
        }
        (dns, ips)
    }

    #[test]
    fn names_parse() {
        let dns = |s: &str| ServerName::Dns(s.to_string());
        assert_eq!(
            "Verifier.Lab.example".parse::<ServerName>().unwrap(),
            dns("verifier.lab.example")
        );
        assert_eq!(
            "gpu-host-1".parse::<ServerName>().unwrap(),
            dns("gpu-host-1")
        );
        assert_eq!(
            "10.0.0.5".parse::<ServerName>().unwrap(),
            ServerName::Ip("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            "[fd00::5]".parse::<ServerName>().unwrap(),
            ServerName::Ip("fd00::5".parse().unwrap())
        );
        assert_eq!(
            "fd00::5".parse::<ServerName>().unwrap(),
            ServerName::Ip("fd00::5".parse().unwrap())
        );
    }

    #[test]
    fn garbage_names_are_refused_with_a_reason() {
        let too_long_label = format!("{}.example", "a".repeat(64));
        let too_long = ["abc"; 70].join(".");
        for garbage in [
            "",
            "not a name",
            "*.example.com",
            "https://verifier.example",
            "verifier.example:7444",
            "a..b",
            ".example",
            "example.",
            "-lead.example",
            "trail-.example",
            "under_score.example",
            "1.2.3.999",
            "300.1.1.1",
            "host/path",
            "caf\u{e9}.example",
            too_long_label.as_str(),
            too_long.as_str(),
        ] {
            let err = garbage
                .parse::<ServerName>()
                .expect_err(&format!("{garbage:?} was accepted"));
            assert_eq!(err.name, garbage);
            assert!(
                err.to_string().contains("is not a DNS name or IP address"),
                "{err}"
            );
        }
    }

    #[test]
    fn extra_names_appear_in_the_server_certificate() {
        let dir = temp_dir("san");
        let extra: Vec<ServerName> = ["verifier.lab.example", "10.1.2.3", "fd00::7", "localhost"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        write_dev_certs_with_names(
            &dir,
            false,
            DevCertValidity::one_year_from(SystemTime::now()),
            &extra,
        )
        .unwrap();
        let (dns, ips) = server_sans(&dir);
        assert_eq!(dns, ["localhost", "verifier.lab.example"], "no duplicates");
        let expected: Vec<IpAddr> = ["127.0.0.1", "::1", "10.1.2.3", "fd00::7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ips, expected);
        // Without extra names: only the defaults.
        let plain = temp_dir("plain");
        write_dev_certs(&plain, false).unwrap();
        let (dns, ips) = server_sans(&plain);
        assert_eq!(dns, ["localhost"]);
        assert_eq!(ips.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&plain);
    }

    #[test]
    fn too_many_extra_names_are_refused() {
        let dir = temp_dir("many");
        let extra: Vec<ServerName> = (0..=MAX_EXTRA_SERVER_NAMES)
            .map(|i| ServerName::Dns(format!("host{i}.example")))
            .collect();
        let err = write_dev_certs_with_names(
            &dir,
            false,
            DevCertValidity::one_year_from(SystemTime::now()),
            &extra,
        )
        .unwrap_err();
        assert!(err.to_string().contains("more than the limit"), "{err}");
        assert!(!dir.exists(), "nothing written");
    }
}
