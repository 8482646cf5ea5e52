//! Reference Integrity Manifests: NVIDIA's signed golden measurements for a driver version
//! and a VBIOS (or NVSwitch BIOS) version. Appraising a report against them means: pick the
//! RIM for the running version, verify its signature and signer chain to the pinned RIM
//! root at the verification time, and compare every active golden measurement with the
//! report's block of the same index (RIM index = SPDM index − 1), listing mismatches.

pub mod c14n;
mod compare;
pub mod swid;
pub mod xmldsig;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::cache::{CacheStats, DigestCache};
use crate::chain::{ChainCache, verify_chain_to_roots};
use crate::claims::{Claim, ClaimStatus, ClaimValue};
use crate::roots::pinned_rim_roots;
use crate::spdm::AttestationReport;
use crate::verify::DeviceKind;
pub use compare::{
    MeasurementComparison, MeasurementMismatch, RimMatchCount, compare_measurements,
};
pub use swid::{GoldenMeasurement, Rim, RimError, RimKind, parse_rim};
pub use xmldsig::{
    RimSignatureCheck, XmlDsigError, check_rim_signature, check_rim_signature_to_roots,
};

/// Most RIMs in a store.
pub const MAX_RIMS: usize = 512;

/// The RIMs an operator supplied (e.g. `--rim-dir`). Parsed, not yet trusted.
#[derive(Debug, Clone, Default)]
pub struct RimStore {
    rims: Vec<Rim>,
}

impl RimStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_xml(&mut self, source: &str, xml: &str) -> Result<&Rim, RimError> {
        if self.rims.len() >= MAX_RIMS {
            return Err(RimError::Directory {
                path: source.to_string(),
                reason: format!("more than {MAX_RIMS} RIMs"),
            });
        }
        let rim = parse_rim(source, xml)?;
        self.rims.push(rim);
        self.rims.last().ok_or_else(|| RimError::Directory {
            path: source.to_string(),
            reason: "RIM store is empty after adding".into(),
        })
    }

    /// Every `*.xml` / `*.swidtag` file directly in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, RimError> {
        let bad = |reason: String| RimError::Directory {
            path: dir.display().to_string(),
            reason,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| bad(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    e.eq_ignore_ascii_case("xml") || e.eq_ignore_ascii_case("swidtag")
                })
            })
            .collect();
        paths.sort();
        let mut store = RimStore::new();
        for path in paths {
            store.add_file(&path)?;
        }
        Ok(store)
    }

    pub fn add_file(&mut self, path: &Path) -> Result<&Rim, RimError> {
        let source = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| RimError::Directory {
                path: source.clone(),
                reason: e.to_string(),
            })?
            .len();
        if size > swid::MAX_RIM_BYTES as u64 {
            return Err(RimError::TooLarge {
                rim: source,
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: swid::MAX_RIM_BYTES,
            });
        }
        let xml = std::fs::read_to_string(path).map_err(|e| RimError::Directory {
            path: source.clone(),
            reason: e.to_string(),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(source);
        self.add_xml(&name, &xml)
    }

    pub fn rims(&self) -> &[Rim] {
        &self.rims
    }

    /// The RIM of one of `kinds` for `version`; failing that, the only RIM of those kinds
    /// (so the version mismatch is reported rather than hidden).
    fn select(&self, kinds: &[RimKind], version: Option<&str>) -> Selection<'_> {
        let of_kind: Vec<&Rim> = self
            .rims
            .iter()
            .filter(|r| kinds.contains(&r.kind))
            .collect();
        if let Some(v) = version
            && let Some(exact) = of_kind.iter().find(|r| r.version.eq_ignore_ascii_case(v))
        {
            return Selection::Found(exact);
        }
        match of_kind.as_slice() {
            [] => Selection::None,
            [only] => Selection::Found(only),
            many => Selection::Ambiguous(many.iter().map(|r| r.version.clone()).collect()),
        }
    }
}

enum Selection<'a> {
    Found(&'a Rim),
    None,
    Ambiguous(Vec<String>),
}

/// Which RIM a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RimRole {
    Driver,
    Vbios,
}

impl RimRole {
    fn claim_name(self) -> &'static str {
        match self {
            RimRole::Driver => "driver_rim",
            RimRole::Vbios => "vbios_rim",
        }
    }
}

/// One RIM checked against one report.
#[derive(Debug, Clone, Serialize)]
pub struct RimCheck {
    pub role: RimRole,
    /// Absent when no RIM of this role was supplied (or several, none for this version).
    pub rim: Option<Rim>,
    pub selection_error: Option<String>,
    /// The version the device runs (driver or VBIOS from the report).
    pub running_version: Option<String>,
    pub version_match: bool,
    /// Whether the RIM is for this kind of device (GPU or NVSwitch, and the GPU's chip).
    #[serde(serialize_with = "serialize_check")]
    pub device_match: Result<(), String>,
    pub signature: Option<RimSignatureCheck>,
}

impl RimCheck {
    /// Signature and chain both verified.
    pub fn authentic(&self) -> bool {
        self.signature
            .as_ref()
            .is_some_and(|s| s.signature.is_ok() && s.chain.is_ok())
    }
}

fn serialize_check<S: serde::Serializer>(r: &Result<(), String>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Ok(()) => s.serialize_none(),
        Err(e) => s.serialize_str(e),
    }
}

/// A GPU RIM must not appraise an NVSwitch (or another chip), whatever its version says.
fn device_match(rim: &Rim, device: DeviceKind, role: RimRole) -> Result<(), String> {
    let expected_kind = match (role, device.is_switch()) {
        (RimRole::Driver, _) => RimKind::Driver,
        (RimRole::Vbios, true) => RimKind::SwitchBios,
        (RimRole::Vbios, false) => RimKind::Vbios,
    };
    if rim.kind != expected_kind {
        return Err(format!(
            "RIM {} is a {:?} RIM (edition {}, product {}), the device needs a {expected_kind:?} RIM",
            rim.source,
            rim.kind,
            rim.edition.as_deref().unwrap_or("-"),
            rim.product.as_deref().unwrap_or("-")
        ));
    }
    let chip = match device {
        DeviceKind::Hopper => Some("GH100"),
        DeviceKind::Blackwell => Some("GB100"),
        DeviceKind::NvSwitch => Some("LS10"),
        DeviceKind::Gpu => None,
    };
    match (chip, rim.product.as_deref()) {
        (Some(chip), Some(product)) if !product.eq_ignore_ascii_case(chip) => Err(format!(
            "RIM {} is for product {product}, the device is a {chip}",
            rim.source
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RimAppraisal {
    pub checks: Vec<RimCheck>,
    pub comparison: MeasurementComparison,
}

/// Remembers RIMs whose XML-DSig signature verified (by the SHA-256 of the RIM text, with
/// the signer's KeyInfo certificates) and their signer chains (a [`ChainCache`], keyed by
/// root and certificates). The signature over fixed text does not depend on time or roots;
/// the chain is looked up per root and used only inside its validity window, so a hit answers
/// exactly as verifying again. NVIDIA RIMs carry no validity period of their own.
#[derive(Debug)]
pub struct RimCache {
    cache: DigestCache<Arc<Vec<Vec<u8>>>>,
    chains: ChainCache,
}

/// Most RIMs remembered (a fleet runs a few driver and VBIOS versions per GPU model).
pub const MAX_CACHED_RIMS: usize = 1024;

impl Default for RimCache {
    fn default() -> Self {
        Self::with_capacity(MAX_CACHED_RIMS)
    }
}

impl RimCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `capacity` RIMs and as many signer chains.
    pub fn with_capacity(capacity: usize) -> Self {
        RimCache {
            cache: DigestCache::with_capacity(capacity),
            chains: ChainCache::with_capacity(capacity),
        }
    }

    /// Like [`check_rim_signature_to_roots`] on `rim`, answering from the cache when it can.
    pub fn check(&self, rim: &Rim, roots: &[Vec<u8>], at: i64) -> RimSignatureCheck {
        let key = *rim.xml_sha256();
        if let Some(certificates) = self.cache.get(&key, |_| true) {
            return RimSignatureCheck {
                signature: Ok(()),
                chain: verify_chain_to_roots(&certificates, roots, at, Some(&self.chains))
                    .map(|(chain, _)| chain),
            };
        }
        let (check, certificates) =
            xmldsig::check_keeping_certificates(&rim.source, rim.xml(), roots, at, &self.chains);
        if check.signature.is_ok() {
            self.cache.insert(key, Arc::new(certificates));
        }
        check
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    pub fn clear(&self) {
        self.cache.clear();
        self.chains.clear();
    }

    /// Hits and misses of verified RIM signatures.
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Hits and misses of verified RIM signer chains.
    pub fn chain_stats(&self) -> CacheStats {
        self.chains.stats()
    }
}

/// Where RIM signers must chain to, and the cache to use.
#[derive(Debug, Clone, Copy, Default)]
pub struct RimOptions<'a> {
    /// Trusted RIM roots (DER); `None`: NVIDIA's pinned RIM root.
    pub roots: Option<&'a [Vec<u8>]>,
    pub cache: Option<&'a RimCache>,
}

/// Appraises `report` against the store at Unix time `at`.
pub fn appraise_report(
    store: &RimStore,
    report: &AttestationReport,
    device: DeviceKind,
    at: i64,
) -> RimAppraisal {
    appraise_report_with(store, report, device, at, &RimOptions::default())
}

/// [`appraise_report`] with configured RIM roots and a cache.
pub fn appraise_report_with(
    store: &RimStore,
    report: &AttestationReport,
    device: DeviceKind,
    at: i64,
    options: &RimOptions<'_>,
) -> RimAppraisal {
    let opaque = &report.response.opaque;
    let roots = options.roots.unwrap_or(pinned_rim_roots());
    let mut roles = vec![(RimRole::Vbios, opaque.vbios_version())];
    if !device.is_switch() {
        roles.insert(0, (RimRole::Driver, opaque.driver_version()));
    }
    let checks: Vec<RimCheck> = roles
        .into_iter()
        .map(|(role, running)| {
            let kinds: &[RimKind] = match role {
                RimRole::Driver => &[RimKind::Driver],
                RimRole::Vbios => &[RimKind::Vbios, RimKind::SwitchBios],
            };
            let kind = role.claim_name();
            let (rim, selection_error) = match store.select(kinds, running) {
                Selection::Found(r) => (Some(r.clone()), None),
                Selection::None => (None, Some(format!("no {kind} supplied"))),
                Selection::Ambiguous(versions) => (
                    None,
                    Some(format!(
                        "no {kind} for version {} among {}",
                        running.unwrap_or("(not reported)"),
                        versions.join(", ")
                    )),
                ),
            };
            let version_match = match (&rim, running) {
                (Some(r), Some(v)) => r.version.eq_ignore_ascii_case(v),
                _ => false,
            };
            let signature = rim.as_ref().map(|r| match options.cache {
                Some(cache) => cache.check(r, roots, at),
                None => check_rim_signature_to_roots(&r.source, r.xml(), roots, at),
            });
            let device_match = rim
                .as_ref()
                .map_or(Ok(()), |r| device_match(r, device, role));
            RimCheck {
                role,
                rim,
                selection_error,
                running_version: running.map(str::to_string),
                version_match,
                device_match,
                signature,
            }
        })
        .collect();
    let rims: Vec<(RimRole, &Rim)> = checks
        .iter()
        .filter_map(|c| c.rim.as_ref().map(|r| (c.role, r)))
        .collect();
    let comparison = compare_measurements(report, &rims);
    RimAppraisal { checks, comparison }
}

impl RimAppraisal {
    /// Whether every expected RIM was found, is authentic and is for the running version.
    pub fn rims_trusted(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.rim.is_some() && c.authentic() && c.version_match && c.device_match.is_ok())
    }

    /// Claims under `prefix` (`gpu` or `switch`).
    pub fn claims(&self, prefix: &str) -> Vec<Claim> {
        let mut out = Vec::new();
        let mut push = |name: String, status: ClaimStatus, value: ClaimValue| {
            out.push(Claim {
                name,
                status,
                value,
            });
        };
        for check in &self.checks {
            let base = format!("{prefix}.{}", check.role.claim_name());
            let Some(rim) = &check.rim else {
                let reason = check.selection_error.clone().unwrap_or_default();
                for suffix in [
                    "version_match",
                    "device_match",
                    "signature_verified",
                    "cert_chain.valid",
                ] {
                    push(
                        format!("{base}.{suffix}"),
                        ClaimStatus::unknown(reason.clone()),
                        ClaimValue::None,
                    );
                }
                continue;
            };
            let version = match &check.running_version {
                None => ClaimStatus::unknown("the report does not carry this version"),
                Some(_) if check.version_match => ClaimStatus::Verified,
                Some(v) => ClaimStatus::failed(format!(
                    "RIM {} is for version {}, the device runs {v}",
                    rim.source, rim.version
                )),
            };
            push(
                format!("{base}.version_match"),
                version,
                ClaimValue::Text(rim.version.clone()),
            );
            let product = ClaimValue::Text(rim.product.clone().unwrap_or_default());
            match &check.device_match {
                Ok(()) => push(
                    format!("{base}.device_match"),
                    ClaimStatus::Verified,
                    product,
                ),
                Err(e) => push(
                    format!("{base}.device_match"),
                    ClaimStatus::failed(e.clone()),
                    product,
                ),
            }
            let Some(sig) = &check.signature else {
                continue;
            };
            let status = match &sig.signature {
                Ok(()) => ClaimStatus::Verified,
                Err(e) => ClaimStatus::failed(format!("RIM {}: {e}", rim.source)),
            };
            push(
                format!("{base}.signature_verified"),
                status,
                ClaimValue::Text(rim.source.clone()),
            );
            match &sig.chain {
                Ok(chain) => {
                    let subjects = chain
                        .certificates
                        .iter()
                        .map(|c| c.subject.clone())
                        .collect();
                    push(
                        format!("{base}.cert_chain.valid"),
                        ClaimStatus::Verified,
                        ClaimValue::List(subjects),
                    );
                    push(
                        format!("{base}.cert_chain.expiry"),
                        ClaimStatus::Verified,
                        ClaimValue::Text(chain.valid_until_rfc3339()),
                    );
                }
                Err(e) => {
                    push(
                        format!("{base}.cert_chain.valid"),
                        ClaimStatus::failed(format!("RIM {}: {e}", rim.source)),
                        ClaimValue::Bool(false),
                    );
                }
            }
        }
        let c = &self.comparison;
        let summary = format!(
            "{}/{} active golden measurements match",
            c.matched, c.compared
        );
        let status =
            if !c.mismatches.is_empty() || !c.conflicts.is_empty() {
                let mut reasons: Vec<String> = c.mismatches.iter().map(|m| m.to_string()).collect();
                reasons.extend(c.conflicts.iter().map(|i| {
                    format!("RIM index {i} is active in both the driver and the VBIOS RIM")
                }));
                ClaimStatus::failed(format!("{summary}; {}", reasons.join("; ")))
            } else if c.compared == 0 {
                ClaimStatus::unknown("no active golden measurements to compare")
            } else if !self.rims_trusted() {
                ClaimStatus::unknown(format!(
                    "{summary}, but not every RIM is present, authentic and for the running version"
                ))
            } else {
                ClaimStatus::Verified
            };
        let mismatched: Vec<String> = c
            .mismatches
            .iter()
            .map(|m| m.block_index.to_string())
            .collect();
        push(
            format!("{prefix}.measurements.match"),
            status,
            if mismatched.is_empty() {
                ClaimValue::Text(summary)
            } else {
                ClaimValue::List(mismatched)
            },
        );
        let uncovered: Vec<String> = c.uncovered_blocks.iter().map(u8::to_string).collect();
        let status = if uncovered.is_empty() {
            ClaimStatus::Verified
        } else {
            ClaimStatus::unknown(format!(
                "{} report blocks have no active golden value in any RIM",
                uncovered.len()
            ))
        };
        push(
            format!("{prefix}.measurements.uncovered"),
            status,
            ClaimValue::List(uncovered),
        );
        out
    }
}
