//! Per-host client certificates for push mode: each simulated host presents its own attester
//! certificate bound to its node (`urn:vigil:node:<id>`), issued from the dev CA in the
//! certificate directory (`ca-key.pem`), the way a fleet would provision them.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

pub struct HostCertIssuer {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

impl HostCertIssuer {
    /// None when the directory has no CA key (a production CA): hosts then share
    /// `attester.pem`.
    pub fn from_dir(dir: &Path) -> Result<Option<HostCertIssuer>, String> {
        let key_path = dir.join("ca-key.pem");
        if !key_path.is_file() {
            return Ok(None);
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let ca_pem = read(&dir.join("ca.pem"))?;
        let key =
            rcgen::KeyPair::from_pem(&read(&key_path)?).map_err(|e| format!("dev CA key: {e}"))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, key)
            .map_err(|e| format!("dev CA certificate: {e}"))?;
        Ok(Some(HostCertIssuer { issuer, ca_pem }))
    }

    /// A client TLS configuration for `node_id` talking to a server named `domain`.
    pub fn client_config(&self, node_id: &str, domain: &str) -> Result<ClientTlsConfig, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("host key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("vigil-loadgen {node_id}"),
        );
        let uri = |u: String| {
            u.try_into()
                .map(rcgen::SanType::URI)
                .map_err(|e| format!("SAN URI: {e}"))
        };
        params.subject_alt_names = vec![
            uri("urn:vigil:role:attester".into())?,
            uri(format!("urn:vigil:node:{node_id}"))?,
        ];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(3600)).into();
        params.not_after = (now + std::time::Duration::from_secs(7 * 86_400)).into();
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("host certificate: {e}"))?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(cert.pem(), key.serialize_pem()))
            .domain_name(domain))
    }
}

/// A test TPM vendor CA: issues an EK certificate per simulated TPM, the way a TPM vendor
/// provisions them, so the verifier trusts EKs through `--ek-roots DIR` (DIR = `root_dir`).
/// Kept in the output directory and reused, so an external verifier can be started once
/// with `--ek-roots OUT/ek-ca` and driven by many runs.
pub struct EkCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub root_dir: std::path::PathBuf,
}

/// An EK public point as rcgen's subject key.
struct EkPoint<'a>(&'a [u8]);

impl rcgen::PublicKeyData for EkPoint<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl EkCa {
    pub fn load_or_create(out: &Path) -> Result<EkCa, String> {
        let root_dir = out.join("ek-ca");
        let cert_path = root_dir.join("ek-ca.pem");
        let key_path = out.join("ek-ca-key.pem");
        let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
        if cert_path.is_file() && key_path.is_file() {
            let ca_pem = std::fs::read_to_string(&cert_path).map_err(|e| io(&cert_path, e))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(|e| io(&key_path, e))?;
            let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| format!("EK CA key: {e}"))?;
            let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, key)
                .map_err(|e| format!("EK CA certificate: {e}"))?;
            return Ok(EkCa { issuer, root_dir });
        }
        let key = rcgen::KeyPair::generate().map_err(|e| format!("EK CA key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "vigil-loadgen TEST TPM vendor EK CA (not a real TPM vendor)",
        );
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("EK CA certificate: {e}"))?;
        std::fs::create_dir_all(&root_dir).map_err(|e| io(&root_dir, e))?;
        std::fs::write(&cert_path, cert.pem()).map_err(|e| io(&cert_path, e))?;
        std::fs::write(&key_path, key.serialize_pem()).map_err(|e| io(&key_path, e))?;
        Ok(EkCa {
            issuer: rcgen::Issuer::new(params, key),
            root_dir,
        })
    }

    /// The DER EK certificate for an uncompressed P-256 EK point.
    pub fn issue(&self, ek_point: &[u8], node_id: &str) -> Result<Vec<u8>, String> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("EK of {node_id}"));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
        let cert = params
            .signed_by(&EkPoint(ek_point), &self.issuer)
            .map_err(|e| format!("EK certificate: {e}"))?;
        Ok(cert.der().to_vec())
    }
}
