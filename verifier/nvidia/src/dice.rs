//! The firmware ID (FWID) in an NVIDIA device's leaf certificate. The device key is derived
//! from the firmware it runs, and the certificate records that firmware's SHA-384 in a TCG
//! DICE extension; the attestation report carries the same FWID in its opaque data. Equal
//! FWIDs bind the signing key to the measured firmware.
//!
//! Two encodings are seen:
//! - Hopper and NVSwitch (OID 2.23.133.5.4.1): the older TCG "composite device identifier",
//!   `SEQUENCE { version INTEGER, deviceKey SubjectPublicKeyInfo, fwid FWID }`.
//! - Blackwell (OID 2.23.133.5.4.1.1): a `DiceTcbInfo` whose `fwids [6]` list holds the FWID
//!   first (TCG DICE Attestation Architecture, section 6.1.1).
//!
//! `FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }`.

use serde::Serialize;
use x509_parser::prelude::*;

use crate::der::{self, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};

pub const OID_TCG_DICE_TCB_INFO: &str = "2.23.133.5.4.1";
pub const OID_TCG_DICE_TCB_INFO_NVIDIA_BLACKWELL: &str = "2.23.133.5.4.1.1";
pub const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
/// Context tag of `fwids` in DiceTcbInfo: [6] IMPLICIT SEQUENCE OF FWID.
const TCB_INFO_FWIDS_TAG: u8 = 0xA6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateFwid {
    /// Extension the FWID came from.
    pub extension_oid: String,
    pub hash_algorithm: String,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub digest: Vec<u8>,
}

/// The FWID in `cert`, if it has one of the two extensions. Errors if the extension is
/// present but malformed.
pub fn certificate_fwid(cert: &X509Certificate<'_>) -> Result<Option<CertificateFwid>, String> {
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == OID_TCG_DICE_TCB_INFO || oid == OID_TCG_DICE_TCB_INFO_NVIDIA_BLACKWELL {
            let fwid =
                parse_dice_extension(ext.value).map_err(|e| format!("extension {oid}: {e}"))?;
            return Ok(Some(CertificateFwid {
                extension_oid: oid,
                hash_algorithm: fwid.0,
                digest: fwid.1,
            }));
        }
    }
    Ok(None)
}

/// (hash algorithm OID, digest) of the first FWID in either encoding.
pub(crate) fn parse_dice_extension(value: &[u8]) -> Result<(String, Vec<u8>), String> {
    let outer = der::single(value, TAG_SEQUENCE)?;
    let items = der::children(outer.value)?;
    match items.first().map(|t| t.tag) {
        Some(TAG_INTEGER) => {
            // Composite device identifier: version, key, FWID.
            let fwid = items
                .get(2)
                .filter(|t| t.tag == TAG_SEQUENCE)
                .ok_or("composite device ID has no FWID sequence")?;
            if items.len() != 3 {
                return Err(format!(
                    "composite device ID has {} elements, expected 3",
                    items.len()
                ));
            }
            parse_fwid(fwid.value)
        }
        Some(_) => {
            let fwids = items
                .iter()
                .find(|t| t.tag == TCB_INFO_FWIDS_TAG)
                .ok_or("DiceTcbInfo has no fwids")?;
            let list = der::children(fwids.value)?;
            let first = list
                .first()
                .filter(|t| t.tag == TAG_SEQUENCE)
                .ok_or("DiceTcbInfo fwids list is empty")?;
            parse_fwid(first.value)
        }
        None => Err("empty extension".into()),
    }
}

fn parse_fwid(content: &[u8]) -> Result<(String, Vec<u8>), String> {
    let parts = der::children(content)?;
    match parts.as_slice() {
        [alg, digest] if alg.tag == TAG_OID && digest.tag == TAG_OCTET_STRING => {
            let alg = der::oid_to_string(alg.value)?;
            if alg == OID_SHA384 && digest.value.len() != 48 {
                return Err(format!("SHA-384 FWID of {} bytes", digest.value.len()));
            }
            Ok((alg, digest.value.to_vec()))
        }
        _ => Err("FWID is not SEQUENCE { OID, OCTET STRING }".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA384_OID: [u8; 11] = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
    ];

    fn fwid_seq(digest: &[u8]) -> Vec<u8> {
        let mut inner = SHA384_OID.to_vec();
        inner.extend([0x04, digest.len() as u8]);
        inner.extend(digest);
        let mut out = vec![0x30, inner.len() as u8];
        out.extend(inner);
        out
    }

    fn seq(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x81, content.len() as u8]);
        }
        out.extend(content);
        out
    }

    #[test]
    fn composite_device_id() {
        let mut content = vec![0x02, 0x01, 0x01, 0x30, 0x00];
        content.extend(fwid_seq(&[7; 48]));
        let (alg, digest) = parse_dice_extension(&seq(0x30, &content)).unwrap();
        assert_eq!(alg, OID_SHA384);
        assert_eq!(digest, vec![7; 48]);
    }

    #[test]
    fn tcb_info_first_fwid() {
        let mut fwids = fwid_seq(&[1; 48]);
        fwids.extend(fwid_seq(&[0; 48]));
        let mut content = seq(0x80, b"NVIDIA");
        content.extend(seq(0xA6, &fwids));
        let (_, digest) = parse_dice_extension(&seq(0x30, &content)).unwrap();
        assert_eq!(digest, vec![1; 48]);
    }

    #[test]
    fn malformed_extensions_fail() {
        assert!(parse_dice_extension(&[]).is_err());
        assert!(parse_dice_extension(&seq(0x30, &[])).is_err());
        // Wrong digest length for SHA-384.
        let mut content = vec![0x02, 0x01, 0x01, 0x30, 0x00];
        content.extend(fwid_seq(&[7; 47]));
        assert!(parse_dice_extension(&seq(0x30, &content)).is_err());
        // TcbInfo without fwids.
        assert!(parse_dice_extension(&seq(0x30, &seq(0x80, b"x"))).is_err());
    }
}
