//! NVIDIA RIMs: ISO/IEC 19770-2 SWID tags in the TCG RIM information model. The parts used:
//! `SoftwareIdentity` (name, tagId), `Meta` (`colloquialVersion` = driver or VBIOS version,
//! `edition` = GPU or SWITCH) and `Payload/Resource type="Measurement"` entries, each with
//! an index (SPDM block index − 1), whether it is active, a size, and `alternatives` golden
//! digests `Hash0..HashN` in the SHA-384 namespace. Parsing decides nothing about trust.

use serde::Serialize;

pub const SWID_NS: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
pub const TCG_RIM_NS: &str = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/";
pub const SHA384_NS: &str = "http://www.w3.org/2001/04/xmlenc#sha384";

/// Largest RIM accepted (real ones are about 20 KiB).
pub const MAX_RIM_BYTES: usize = 2 * 1024 * 1024;
/// Most XML nodes parsed in one RIM.
pub const MAX_RIM_NODES: u32 = 100_000;
/// Most golden measurements in one RIM (SPDM has at most 254 blocks).
pub const MAX_GOLDEN_MEASUREMENTS: usize = 1024;
/// Most alternatives for one measurement.
pub const MAX_ALTERNATIVES: usize = 16;
/// Largest golden value.
pub const MAX_MEASUREMENT_SIZE: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RimError {
    #[error("RIM {rim}: {size} bytes exceed the {max}-byte limit")]
    TooLarge {
        rim: String,
        size: usize,
        max: usize,
    },
    #[error("RIM {rim}: not XML: {reason}")]
    Xml { rim: String, reason: String },
    #[error("RIM {rim}: not a SWID tag: {reason}")]
    NotSwid { rim: String, reason: String },
    #[error("RIM {rim}: measurement {position} (Resource #{position} in Payload): {reason}")]
    Measurement {
        rim: String,
        position: usize,
        reason: String,
    },
    #[error("RIM {rim}: more than {max} measurements")]
    TooManyMeasurements { rim: String, max: usize },
    #[error("RIM directory {path}: {reason}")]
    Directory { path: String, reason: String },
}

/// What a RIM describes, decided from its version's shape and edition: driver versions
/// look like `550.90.07`, firmware versions like `96.00.9F.00.01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RimKind {
    Driver,
    Vbios,
    SwitchBios,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoldenMeasurement {
    /// RIM index: SPDM measurement block index − 1.
    pub index: u32,
    pub name: String,
    pub active: bool,
    pub size: usize,
    #[serde(serialize_with = "serialize_alternatives")]
    pub alternatives: Vec<Vec<u8>>,
}

fn serialize_measurements<S: serde::Serializer>(
    measurements: &std::sync::Arc<[GoldenMeasurement]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(measurements.iter())
}

fn serialize_alternatives<S: serde::Serializer>(alts: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(alts.iter().map(hex::encode))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rim {
    /// Where the RIM came from (file name).
    pub source: String,
    pub tag_id: String,
    pub name: String,
    pub version: String,
    pub kind: RimKind,
    pub edition: Option<String>,
    pub product: Option<String>,
    pub platform_manufacturer_id: Option<String>,
    pub platform_model: Option<String>,
    /// Shared, like the text: each appraisal's result carries the RIM it used.
    #[serde(serialize_with = "serialize_measurements")]
    pub measurements: std::sync::Arc<[GoldenMeasurement]>,
    /// Shared, so that the copy in each appraisal's result does not copy the text.
    #[serde(skip)]
    pub(crate) xml: std::sync::Arc<str>,
    /// SHA-256 of `xml`, computed once so that cache lookups do not hash the text again.
    #[serde(skip)]
    pub(crate) xml_sha256: [u8; 32],
}

impl Rim {
    pub fn active_measurements(&self) -> impl Iterator<Item = &GoldenMeasurement> {
        self.measurements.iter().filter(|m| m.active)
    }

    pub fn xml(&self) -> &str {
        &self.xml
    }

    /// SHA-256 of the RIM text.
    pub fn xml_sha256(&self) -> &[u8; 32] {
        &self.xml_sha256
    }
}

/// Parses the XML text of a RIM; `source` names it in errors.
pub fn parse_rim(source: &str, xml: &str) -> Result<Rim, RimError> {
    let src = || source.to_string();
    if xml.len() > MAX_RIM_BYTES {
        return Err(RimError::TooLarge {
            rim: src(),
            size: xml.len(),
            max: MAX_RIM_BYTES,
        });
    }
    let doc = parse_xml(source, xml)?;
    let not_swid = |reason: &str| RimError::NotSwid {
        rim: src(),
        reason: reason.to_string(),
    };
    let root = doc.root_element();
    if !root.has_tag_name((SWID_NS, "SoftwareIdentity")) {
        return Err(not_swid("root element is not SoftwareIdentity"));
    }
    let child = |name: &str| root.children().find(|n| n.has_tag_name((SWID_NS, name)));
    let meta = child("Meta").ok_or_else(|| not_swid("no Meta element"))?;
    let payload = child("Payload").ok_or_else(|| not_swid("no Payload element"))?;
    let version = meta
        .attribute("colloquialVersion")
        .ok_or_else(|| not_swid("Meta has no colloquialVersion"))?
        .trim()
        .to_string();
    let edition = meta.attribute("edition").map(str::to_string);
    let kind = classify(&version, edition.as_deref());

    let mut measurements: Vec<GoldenMeasurement> = Vec::new();
    let resources = payload
        .children()
        .filter(|n| n.has_tag_name((SWID_NS, "Resource")));
    for (position, resource) in resources.enumerate() {
        if resource.attribute("type") != Some("Measurement") {
            continue;
        }
        if measurements.len() >= MAX_GOLDEN_MEASUREMENTS {
            return Err(RimError::TooManyMeasurements {
                rim: src(),
                max: MAX_GOLDEN_MEASUREMENTS,
            });
        }
        let bad = |reason: String| RimError::Measurement {
            rim: src(),
            position,
            reason,
        };
        let number = |attr: &str| -> Result<usize, RimError> {
            let text = resource
                .attribute(attr)
                .ok_or_else(|| bad(format!("no {attr} attribute")))?;
            text.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{attr}={text:?} is not a number")))
        };
        let index = u32::try_from(number("index")?).map_err(|_| bad("index too large".into()))?;
        if index > 254 {
            return Err(bad(format!("index {index} is beyond SPDM's 254 blocks")));
        }
        if measurements.iter().any(|m| m.index == index) {
            return Err(bad(format!("index {index} appears twice")));
        }
        let active = match resource.attribute("active").map(str::trim) {
            Some(a) if a.eq_ignore_ascii_case("true") => true,
            Some(a) if a.eq_ignore_ascii_case("false") => false,
            other => return Err(bad(format!("active={other:?} is not True or False"))),
        };
        let count = number("alternatives")?;
        if count == 0 || count > MAX_ALTERNATIVES {
            return Err(bad(format!(
                "{count} alternatives (1..={MAX_ALTERNATIVES})"
            )));
        }
        let size = number("size")?;
        if size == 0 || size > MAX_MEASUREMENT_SIZE {
            return Err(bad(format!("size {size} (1..={MAX_MEASUREMENT_SIZE})")));
        }
        let mut alternatives = Vec::with_capacity(count);
        for i in 0..count {
            let attr = format!("Hash{i}");
            let text = resource
                .attribute((SHA384_NS, attr.as_str()))
                .ok_or_else(|| bad(format!("no {attr} (of {count} alternatives)")))?;
            let value = hex::decode(text.trim()).map_err(|e| bad(format!("{attr}: {e}")))?;
            if value.len() != size {
                return Err(bad(format!(
                    "{attr} is {} bytes, size says {size}",
                    value.len()
                )));
            }
            alternatives.push(value);
        }
        measurements.push(GoldenMeasurement {
            index,
            name: resource.attribute("name").unwrap_or_default().to_string(),
            active,
            size,
            alternatives,
        });
    }
    let tcg = |name: &str| meta.attribute((TCG_RIM_NS, name)).map(str::to_string);
    Ok(Rim {
        source: src(),
        tag_id: root.attribute("tagId").unwrap_or_default().to_string(),
        name: root.attribute("name").unwrap_or_default().to_string(),
        version,
        kind,
        edition,
        product: meta.attribute("product").map(str::to_string),
        platform_manufacturer_id: tcg("PlatformManufacturerId"),
        platform_model: tcg("PlatformModel"),
        measurements: measurements.into(),
        xml: std::sync::Arc::from(xml),
        xml_sha256: crate::chain::sha256(xml.as_bytes()),
    })
}

/// roxmltree with DTDs refused (no entity tricks) and a node limit.
pub(crate) fn parse_xml<'x>(
    source: &str,
    xml: &'x str,
) -> Result<roxmltree::Document<'x>, RimError> {
    roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_RIM_NODES,
        },
    )
    .map_err(|e| RimError::Xml {
        rim: source.to_string(),
        reason: e.to_string(),
    })
}

fn classify(version: &str, edition: Option<&str>) -> RimKind {
    let groups: Vec<&str> = version.split('.').collect();
    let firmware = groups.len() == 5
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()));
    let driver = (2..=3).contains(&groups.len())
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_digit()));
    match (firmware, driver, edition) {
        (true, _, Some(e)) if e.eq_ignore_ascii_case("SWITCH") => RimKind::SwitchBios,
        (true, _, _) => RimKind::Vbios,
        (_, true, _) => RimKind::Driver,
        _ => RimKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rim(resources: &str) -> String {
        format!(
            "<SoftwareIdentity xmlns=\"{SWID_NS}\" xmlns:h=\"{SHA384_NS}\" name=\"GH100\" tagId=\"t\"><Meta colloquialVersion=\"550.90.07\" edition=\"GPU\"/><Payload>{resources}</Payload></SoftwareIdentity>"
        )
    }

    fn res(index: u32, active: &str, alts: &[&str], size: usize) -> String {
        let hashes: String = alts
            .iter()
            .enumerate()
            .map(|(i, h)| format!(" h:Hash{i}=\"{h}\""))
            .collect();
        format!(
            "<Resource type=\"Measurement\" index=\"{index}\" active=\"{active}\" alternatives=\"{}\" size=\"{size}\"{hashes}/>",
            alts.len()
        )
    }

    #[test]
    fn parses_measurements() {
        let xml = rim(&(res(0, "True", &["aa"], 1) + &res(5, "False", &["bb", "cc"], 1)));
        let r = parse_rim("t.xml", &xml).unwrap();
        assert_eq!(r.kind, RimKind::Driver);
        assert_eq!(r.version, "550.90.07");
        assert_eq!(r.measurements.len(), 2);
        assert_eq!(r.measurements[1].alternatives, vec![vec![0xbb], vec![0xcc]]);
        assert_eq!(r.active_measurements().count(), 1);
    }

    #[test]
    fn rejects_malformed_measurements() {
        for bad in [
            res(0, "maybe", &["aa"], 1),
            res(0, "True", &["aaaa"], 1),
            res(0, "True", &["zz"], 1),
            res(300, "True", &["aa"], 1),
            res(0, "True", &["aa"], 0),
            res(0, "True", &["aa"], 1) + &res(0, "True", &["aa"], 1),
            "<Resource type=\"Measurement\" index=\"1\" active=\"True\" alternatives=\"2\" size=\"1\" h:Hash0=\"aa\"/>".into(),
            "<Resource type=\"Measurement\" index=\"x\" active=\"True\" alternatives=\"1\" size=\"1\" h:Hash0=\"aa\"/>".into(),
        ] {
            assert!(
                matches!(parse_rim("t", &rim(&bad)), Err(RimError::Measurement { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_non_swid_and_dtd() {
        assert!(matches!(
            parse_rim("t", "<a/>"),
            Err(RimError::NotSwid { .. })
        ));
        assert!(matches!(parse_rim("t", "<a"), Err(RimError::Xml { .. })));
        let dtd = "<!DOCTYPE x [<!ENTITY e \"v\">]><x>&e;</x>";
        assert!(matches!(parse_rim("t", dtd), Err(RimError::Xml { .. })));
        let big = "x".repeat(MAX_RIM_BYTES + 1);
        assert!(matches!(
            parse_rim("t", &big),
            Err(RimError::TooLarge { .. })
        ));
    }

    #[test]
    fn classifies_versions() {
        assert_eq!(classify("550.90.07", Some("GPU")), RimKind::Driver);
        assert_eq!(classify("545.00", Some("GPU")), RimKind::Driver);
        assert_eq!(classify("96.00.9F.00.01", Some("GPU")), RimKind::Vbios);
        assert_eq!(
            classify("96.10.55.00.01", Some("SWITCH")),
            RimKind::SwitchBios
        );
        assert_eq!(classify("abc", None), RimKind::Unknown);
    }
}
