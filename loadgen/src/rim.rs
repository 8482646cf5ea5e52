//! TEST reference integrity manifests for the simulated GPUs: SWID tags (ISO/IEC 19770-2)
//! with NVIDIA's measurement layout (one Resource per SPDM block index, SHA-384 golden values
//! as `SHA384:HashN`), a driver RIM and a VBIOS RIM, each signed with an enveloped XML-DSig
//! (C14N 1.1, ECDSA P-384, SHA-384) by a RIM signing certificate under a TEST RIM root.
//!
//! The documents are written directly in canonical form (no XML declaration, attributes in
//! C14N order, no empty-element tags, namespaces declared where first used), so the bytes
//! hashed and signed here are exactly what a C14N 1.1 canonicalizer produces from them.

use std::path::{Path, PathBuf};

use ring::digest::{SHA384, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};

const SWID_NS: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const TCG_RIM_NS: &str = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/";
const SHA384_NS: &str = "http://www.w3.org/2001/04/xmlenc#sha384";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const C14N_11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Standard base64 with padding (RFC 4648), as XML-DSig carries binary values.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The RIM signer: its key and certificates (leaf first, then the root), and the root dir.
pub struct RimSigner {
    key: EcdsaKeyPair,
    certificates: Vec<Vec<u8>>,
    pub roots_dir: PathBuf,
}

impl RimSigner {
    pub fn new(dir: &Path) -> Result<RimSigner, String> {
        let err = |what: &'static str| move |e: rcgen::Error| format!("{what}: {e}");
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(err("RIM root key"))?;
        let mut root_params = rcgen::CertificateParams::default();
        root_params.distinguished_name = rcgen::DistinguishedName::new();
        root_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "vigil-loadgen TEST RIM Signing Root (not NVIDIA)",
        );
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        root_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        root_params.not_before = (now - day).into();
        root_params.not_after = (now + 365 * day).into();
        let root_cert = root_params
            .self_signed(&root_key)
            .map_err(err("RIM root"))?;
        let root = rcgen::Issuer::new(root_params, root_key);

        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(err("RIM signing key"))?;
        let mut leaf_params = rcgen::CertificateParams::default();
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        leaf_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "vigil-loadgen TEST RIM Signing Certificate",
        );
        leaf_params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf_params.not_before = (now - day).into();
        leaf_params.not_after = (now + 365 * day).into();
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &root)
            .map_err(err("RIM signing certificate"))?;
        let key = crate::crypto::ecdsa_from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &leaf_key.serialize_der(),
        )?;

        let roots_dir = dir.join("rim-roots");
        std::fs::create_dir_all(&roots_dir).map_err(|e| format!("{}: {e}", roots_dir.display()))?;
        let root_path = roots_dir.join("test-rim-root.pem");
        std::fs::write(&root_path, root_cert.pem())
            .map_err(|e| format!("{}: {e}", root_path.display()))?;
        Ok(RimSigner {
            key,
            certificates: vec![leaf_cert.der().to_vec(), root_cert.der().to_vec()],
            roots_dir,
        })
    }

    /// A signed SWID RIM. `measurements` are (index, golden value, active) for every block.
    pub fn rim(
        &self,
        tag_id: &str,
        version: &str,
        edition: &str,
        measurements: &[(u8, [u8; 48], bool)],
    ) -> Result<String, String> {
        let mut body = String::with_capacity(16 * 1024);
        body.push_str(&format!(
            "<SoftwareIdentity xmlns=\"{SWID_NS}\" corpus=\"false\" name=\"GH100\" patch=\"false\" \
             supplemental=\"false\" tagId=\"{tag_id}\" tagVersion=\"0\" version=\"{version}\">"
        ));
        body.push_str(&format!(
            "<Meta xmlns:rim=\"{TCG_RIM_NS}\" colloquialVersion=\"{version}\" edition=\"{edition}\" \
             product=\"GH100\" revision=\"0\" rim:PlatformManufacturerId=\"TEST\" \
             rim:PlatformModel=\"GH100\"></Meta>"
        ));
        body.push_str(&format!("<Payload xmlns:SHA384=\"{SHA384_NS}\">"));
        for (index, value, active) in measurements {
            body.push_str(&format!(
                "<Resource active=\"{}\" alternatives=\"1\" index=\"{index}\" \
                 name=\"Measurement #{index}\" size=\"48\" type=\"Measurement\" \
                 SHA384:Hash0=\"{}\"></Resource>",
                if *active { "True" } else { "False" },
                hex::encode(value)
            ));
        }
        body.push_str("</Payload>");
        let close = "</SoftwareIdentity>";

        // The enveloped transform removes the Signature: the digest is over the rest.
        let document_digest = digest(&SHA384, format!("{body}{close}").as_bytes());
        let signed_info_inner = format!(
            "<CanonicalizationMethod Algorithm=\"{C14N_11}\"></CanonicalizationMethod>\
             <SignatureMethod Algorithm=\"{ECDSA_SHA384}\"></SignatureMethod>\
             <Reference URI=\"\"><Transforms><Transform Algorithm=\"{ENVELOPED}\"></Transform>\
             <Transform Algorithm=\"{C14N_11}\"></Transform></Transforms>\
             <DigestMethod Algorithm=\"{SHA384_NS}\"></DigestMethod>\
             <DigestValue>{}</DigestValue></Reference>",
            base64(document_digest.as_ref())
        );
        // Canonicalized as a subtree, SignedInfo carries the namespace it inherits.
        let canonical_signed_info =
            format!("<SignedInfo xmlns=\"{DSIG_NS}\">{signed_info_inner}</SignedInfo>");
        let signature = self
            .key
            .sign(&SystemRandom::new(), canonical_signed_info.as_bytes())
            .map_err(|_| "RIM signing failed".to_string())?;
        let certificates: String = self
            .certificates
            .iter()
            .map(|der| format!("<X509Certificate>{}</X509Certificate>", base64(der)))
            .collect();
        Ok(format!(
            "{body}<Signature xmlns=\"{DSIG_NS}\"><SignedInfo>{signed_info_inner}</SignedInfo>\
             <SignatureValue>{}</SignatureValue><KeyInfo><X509Data>{certificates}</X509Data>\
             </KeyInfo></Signature>{close}",
            base64(signature.as_ref())
        ))
    }
}
