//! NVIDIA's serialized evidence (what `nv-attestation-sdk` and `nvattest` emit and what
//! NRAS accepts): a JSON list of `{arch, nonce, evidence, certificate}` with the report and
//! the PEM chain both base64-encoded. Vigil's attester can ship it as is.

use serde::Serialize;

use crate::base64;
use crate::input::MAX_REPORT_BYTES;

/// Largest bundle accepted (eight GPUs take about 100 KiB).
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;
/// Most devices in one bundle.
pub const MAX_BUNDLE_DEVICES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("evidence bundle of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("evidence bundle is not JSON: {0}")]
    Json(String),
    #[error("evidence bundle: not a list of evidence objects")]
    NotAList,
    #[error("evidence bundle: more than {max} devices")]
    TooMany { max: usize },
    #[error("evidence bundle entry {index}: field {field}: {reason}")]
    Field {
        index: usize,
        field: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    /// `HOPPER`, `BLACKWELL`, `LS10`, … as the collector labelled it (not evidence).
    pub arch: Option<String>,
    /// The nonce the collector says it used (not evidence; the report's own nonce counts).
    pub nonce: Option<String>,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub report: Vec<u8>,
    pub certificate_chain_pem: String,
}

pub fn parse_evidence_bundle(json: &[u8]) -> Result<Vec<EvidenceItem>, BundleError> {
    if json.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            size: json.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| BundleError::Json(e.to_string()))?;
    let list = value.as_array().ok_or(BundleError::NotAList)?;
    if list.len() > MAX_BUNDLE_DEVICES {
        return Err(BundleError::TooMany {
            max: MAX_BUNDLE_DEVICES,
        });
    }
    let mut items = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let text = |field: &'static str| -> Result<Option<String>, BundleError> {
            match entry.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(BundleError::Field {
                    index,
                    field,
                    reason: "not a string".into(),
                }),
            }
        };
        let required = |field: &'static str| -> Result<String, BundleError> {
            text(field)?.ok_or(BundleError::Field {
                index,
                field,
                reason: "missing".into(),
            })
        };
        let b64 = |field: &'static str, max: usize| -> Result<Vec<u8>, BundleError> {
            base64::decode(&required(field)?, max).map_err(|e| BundleError::Field {
                index,
                field,
                reason: e.to_string(),
            })
        };
        let report = b64("evidence", MAX_REPORT_BYTES * 4 / 3 + 4)?;
        let chain = b64("certificate", crate::chain::MAX_CHAIN_PEM_BYTES * 4 / 3 + 4)?;
        let certificate_chain_pem = String::from_utf8(chain).map_err(|_| BundleError::Field {
            index,
            field: "certificate",
            reason: "not UTF-8 PEM".into(),
        })?;
        items.push(EvidenceItem {
            arch: text("arch")?,
            nonce: text("nonce")?,
            report,
            certificate_chain_pem,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let ok = br#"[{"arch":"HOPPER","nonce":"00","evidence":"EeA=","certificate":"LS0t"}]"#;
        let items = parse_evidence_bundle(ok).unwrap();
        assert_eq!(items[0].report, vec![0x11, 0xe0]);
        assert_eq!(items[0].certificate_chain_pem, "---");
        assert!(matches!(
            parse_evidence_bundle(b"{}"),
            Err(BundleError::NotAList)
        ));
        assert!(matches!(
            parse_evidence_bundle(b"[1"),
            Err(BundleError::Json(_))
        ));
        assert!(matches!(
            parse_evidence_bundle(br#"[{"certificate":"LS0t"}]"#),
            Err(BundleError::Field {
                field: "evidence",
                ..
            })
        ));
        assert!(matches!(
            parse_evidence_bundle(br#"[{"evidence":"!!","certificate":"LS0t"}]"#),
            Err(BundleError::Field {
                field: "evidence",
                ..
            })
        ));
        assert!(matches!(
            parse_evidence_bundle(br#"[{"evidence":"EeA=","certificate":7}]"#),
            Err(BundleError::Field {
                field: "certificate",
                ..
            })
        ));
        let many = format!("[{}]", vec!["{}"; MAX_BUNDLE_DEVICES + 1].join(","));
        assert!(matches!(
            parse_evidence_bundle(many.as_bytes()),
            Err(BundleError::TooMany { .. })
        ));
    }
}
