//! The enveloped XML-DSig signature of a RIM, checked exactly as NVIDIA signs them and no
//! other way: one `ds:Signature` child of the root element, Canonical XML 1.1 for
//! `SignedInfo`, `ecdsa-sha384`, one `Reference URI=""` over the whole document with the
//! transforms enveloped-signature then C14N 1.1 and a SHA-384 digest, and the signer's chain
//! in `KeyInfo/X509Data` (leaf first) ending at the pinned RIM root. Anything else is an
//! error, which closes the doors XML-DSig is known for (signature wrapping, alternative
//! references, algorithm substitution).

use roxmltree::Node;
use serde::Serialize;

use super::c14n::{C14nError, canonicalize_document, canonicalize_subtree};
use super::swid::{RimError, parse_xml};
use crate::base64;
use crate::chain::{ChainCache, ChainError, VerifiedChain, verify_chain, verify_chain_to_roots};
use crate::signature::{SignatureError, p384_public_key, verify_p384};

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const C14N_11: &str = "http://www.w3.org/2006/12/xml-c14n11";
pub const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const SHA384_DIGEST: [&str; 2] = [
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha384",
];

/// Most certificates read from KeyInfo.
const MAX_KEYINFO_CERTS: usize = 8;
/// Longest base64 value read (a certificate is about 1 KiB).
const MAX_BASE64_CHARS: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlDsigError {
    #[error("{0}")]
    Rim(#[from] RimError),
    #[error("signature structure: {0}")]
    Structure(String),
    #[error("signature uses {what} {found:?}; only {expected} is accepted")]
    Algorithm {
        what: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{field}: {reason}")]
    Encoding { field: &'static str, reason: String },
    #[error("{0}")]
    Canonicalization(#[from] C14nError),
    #[error(
        "reference digest mismatch: the document hashes to {computed}, SignedInfo says {expected} (the RIM was altered)"
    )]
    DigestMismatch { expected: String, computed: String },
    #[error("signer certificate: {0}")]
    SignerKey(String),
    #[error("SignatureValue does not verify over SignedInfo with the signer's key")]
    BadSignature,
}

/// Outcome of checking a RIM's signature and signer chain separately, so each can become
/// its own claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimSignatureCheck {
    /// Structure, reference digest and ECDSA signature (by the first KeyInfo certificate).
    #[serde(serialize_with = "serialize_result")]
    pub signature: Result<(), XmlDsigError>,
    /// The KeyInfo chain to the pinned RIM root at the verification time.
    #[serde(serialize_with = "serialize_result")]
    pub chain: Result<VerifiedChain, ChainError>,
}

fn serialize_result<S: serde::Serializer, T: Serialize, E: std::fmt::Display>(
    r: &Result<T, E>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    match r {
        Ok(v) => map.serialize_entry("ok", v)?,
        Err(e) => map.serialize_entry("error", &e.to_string())?,
    }
    map.end()
}

/// The pieces of a well-formed NVIDIA RIM signature.
struct SignatureParts<'a, 'i> {
    signature: Node<'a, 'i>,
    signed_info: Node<'a, 'i>,
    digest_value: Vec<u8>,
    signature_value: Vec<u8>,
    certificates: Vec<Vec<u8>>,
}

fn ds<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, XmlDsigError> {
    let mut found = node.children().filter(|n| n.has_tag_name((DSIG_NS, name)));
    let first = found.next().ok_or_else(|| {
        XmlDsigError::Structure(format!("no ds:{name} in ds:{}", node.tag_name().name()))
    })?;
    if found.next().is_some() {
        return Err(XmlDsigError::Structure(format!("more than one ds:{name}")));
    }
    Ok(first)
}

fn algorithm(
    node: Node<'_, '_>,
    what: &'static str,
    accepted: &[&'static str],
) -> Result<(), XmlDsigError> {
    let found = node.attribute("Algorithm").unwrap_or_default();
    if accepted.contains(&found) {
        return Ok(());
    }
    Err(XmlDsigError::Algorithm {
        what,
        found: found.to_string(),
        expected: accepted.first().copied().unwrap_or_default(),
    })
}

fn b64(node: Node<'_, '_>, field: &'static str) -> Result<Vec<u8>, XmlDsigError> {
    let text: String = node
        .children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    base64::decode(&text, MAX_BASE64_CHARS).map_err(|e| XmlDsigError::Encoding {
        field,
        reason: e.to_string(),
    })
}

fn signature_parts<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<SignatureParts<'a, 'i>, XmlDsigError> {
    let all: Vec<Node<'a, 'i>> = doc
        .descendants()
        .filter(|n| n.has_tag_name((DSIG_NS, "Signature")))
        .collect();
    let signature = match all.as_slice() {
        [one] => *one,
        [] => return Err(XmlDsigError::Structure("no ds:Signature".into())),
        _ => {
            return Err(XmlDsigError::Structure(format!(
                "{} ds:Signature elements",
                all.len()
            )));
        }
    };
    if signature.parent() != Some(doc.root_element()) {
        return Err(XmlDsigError::Structure(
            "ds:Signature is not a child of the root element (not enveloped)".into(),
        ));
    }
    let signed_info = ds(signature, "SignedInfo")?;
    algorithm(
        ds(signed_info, "CanonicalizationMethod")?,
        "CanonicalizationMethod",
        &[C14N_11],
    )?;
    algorithm(
        ds(signed_info, "SignatureMethod")?,
        "SignatureMethod",
        &[ECDSA_SHA384],
    )?;
    let reference = ds(signed_info, "Reference")?;
    if reference.attribute("URI") != Some("") {
        return Err(XmlDsigError::Structure(format!(
            "Reference URI is {:?}; only \"\" (the whole document) is accepted",
            reference.attribute("URI")
        )));
    }
    let transforms: Vec<Node<'_, '_>> = ds(reference, "Transforms")?
        .children()
        .filter(Node::is_element)
        .collect();
    match transforms.as_slice() {
        [enveloped, c14n]
            if enveloped.has_tag_name((DSIG_NS, "Transform"))
                && c14n.has_tag_name((DSIG_NS, "Transform")) =>
        {
            algorithm(*enveloped, "first Transform", &[ENVELOPED_SIGNATURE])?;
            algorithm(*c14n, "second Transform", &[C14N_11])?;
        }
        _ => {
            return Err(XmlDsigError::Structure(format!(
                "{} transforms; expected enveloped-signature then C14N 1.1",
                transforms.len()
            )));
        }
    }
    algorithm(
        ds(reference, "DigestMethod")?,
        "DigestMethod",
        &SHA384_DIGEST,
    )?;
    let digest_value = b64(ds(reference, "DigestValue")?, "DigestValue")?;
    let signature_value = b64(ds(signature, "SignatureValue")?, "SignatureValue")?;
    let x509_data = ds(ds(signature, "KeyInfo")?, "X509Data")?;
    let mut certificates = Vec::new();
    for cert in x509_data
        .children()
        .filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate")))
    {
        if certificates.len() >= MAX_KEYINFO_CERTS {
            return Err(XmlDsigError::Structure(format!(
                "more than {MAX_KEYINFO_CERTS} certificates in KeyInfo"
            )));
        }
        certificates.push(b64(cert, "X509Certificate")?);
    }
    if certificates.is_empty() {
        return Err(XmlDsigError::Structure(
            "no X509Certificate in KeyInfo".into(),
        ));
    }
    Ok(SignatureParts {
        signature,
        signed_info,
        digest_value,
        signature_value,
        certificates,
    })
}

/// Canonical bytes of the document without its signature (what the reference digests) and
/// of SignedInfo (what is signed); exposed for tests against independent vectors.
pub fn canonical_forms(source: &str, xml: &str) -> Result<(Vec<u8>, Vec<u8>), XmlDsigError> {
    let doc = parse_xml(source, xml)?;
    let parts = signature_parts(&doc)?;
    Ok((
        canonicalize_document(&doc, Some(parts.signature))?,
        canonicalize_subtree(parts.signed_info)?,
    ))
}

/// Checks the signature of the RIM text and its signer chain to `root_der` at `at`.
pub fn check_rim_signature(source: &str, xml: &str, root_der: &[u8], at: i64) -> RimSignatureCheck {
    check_with(source, xml, |certs| verify_chain(certs, root_der, at))
}

/// Like [`check_rim_signature`], with the signer chain to any of `roots`.
pub fn check_rim_signature_to_roots(
    source: &str,
    xml: &str,
    roots: &[Vec<u8>],
    at: i64,
) -> RimSignatureCheck {
    check_with(source, xml, |certs| {
        verify_chain_to_roots(certs, roots, at, None).map(|(chain, _)| chain)
    })
}

/// The check with the signer chain verified through `chains`, and the KeyInfo certificates
/// (empty when the signature structure is unusable), for [`super::RimCache`].
pub(crate) fn check_keeping_certificates(
    source: &str,
    xml: &str,
    roots: &[Vec<u8>],
    at: i64,
    chains: &ChainCache,
) -> (RimSignatureCheck, Vec<Vec<u8>>) {
    let mut kept = Vec::new();
    let check = check_with(source, xml, |certs| {
        kept = certs.to_vec();
        verify_chain_to_roots(certs, roots, at, Some(chains)).map(|(chain, _)| chain)
    });
    (check, kept)
}

fn check_with(
    source: &str,
    xml: &str,
    chain_of: impl FnOnce(&[Vec<u8>]) -> Result<VerifiedChain, ChainError>,
) -> RimSignatureCheck {
    let doc = match parse_xml(source, xml) {
        Ok(d) => d,
        Err(e) => {
            return RimSignatureCheck {
                signature: Err(e.clone().into()),
                chain: Err(ChainError::Parse {
                    index: 0,
                    reason: e.to_string(),
                }),
            };
        }
    };
    let parts = match signature_parts(&doc) {
        Ok(p) => p,
        Err(e) => {
            return RimSignatureCheck {
                chain: Err(ChainError::Parse {
                    index: 0,
                    reason: format!("no usable KeyInfo: {e}"),
                }),
                signature: Err(e),
            };
        }
    };
    let chain = chain_of(&parts.certificates);
    let signature = verify_parts(&doc, &parts);
    RimSignatureCheck { signature, chain }
}

fn verify_parts(
    doc: &roxmltree::Document<'_>,
    parts: &SignatureParts<'_, '_>,
) -> Result<(), XmlDsigError> {
    let document = canonicalize_document(doc, Some(parts.signature))?;
    let computed = ring::digest::digest(&ring::digest::SHA384, &document);
    if computed.as_ref() != parts.digest_value.as_slice() {
        return Err(XmlDsigError::DigestMismatch {
            expected: hex::encode(&parts.digest_value),
            computed: hex::encode(computed.as_ref()),
        });
    }
    let signed_info = canonicalize_subtree(parts.signed_info)?;
    let leaf = parts
        .certificates
        .first()
        .ok_or(XmlDsigError::SignerKey("none".into()))?;
    let (_, cert) = <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<
        _,
    >>::from_der(leaf)
    .map_err(|e| XmlDsigError::SignerKey(e.to_string()))?;
    let key = p384_public_key(&cert).map_err(|e| match e {
        SignatureError::LeafKey(reason) => XmlDsigError::SignerKey(reason),
        SignatureError::Invalid => XmlDsigError::BadSignature,
    })?;
    verify_p384(&key, &signed_info, &parts.signature_value).map_err(|_| XmlDsigError::BadSignature)
}
