//! One device's evidence, end to end: parse the report, verify the device chain to the
//! pinned root at the verification time, the report signature with the leaf key, the FWID
//! binding, the nonce, and (when given) the RIMs; then state it all as claims.
//!
//! Nothing here decides policy beyond the checks themselves: which driver versions are
//! acceptable is for the appraisal. A failed check is a failed claim, never a panic, and a
//! check that cannot be made says why in an `unknown` claim.

use serde::Serialize;
use x509_parser::prelude::*;

use crate::cache::GpuCaches;
use crate::chain::{ChainCache, VerifiedChain, pem_certificates, verify_chain_to_roots};
use crate::claims::{ClaimStatus, ClaimValue, Claims};
use crate::dice::{CertificateFwid, certificate_fwid};
use crate::ocsp::{CertStatus, OcspError, check_ocsp_response};
use crate::opaque::{EnableStatus, FeatureFlag, OpaqueNumbering};
use crate::rim::{RimAppraisal, RimCache, RimOptions, RimStore, appraise_report_with};
use crate::roots::pinned_device_roots;
use crate::signature::verify_report_signature;
use crate::spdm::{AttestationReport, NONCE_LEN, parse_report_input};
use crate::time::format_rfc3339;

/// Claims that must all be verified for a device to pass (plus `measurements.match` when
/// RIMs are supplied).
pub const CORE_CLAIMS: [&str; 4] = [
    "report_parsed",
    "signature_verified",
    "cert_chain.valid",
    "nonce_match",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Hopper,
    Blackwell,
    NvSwitch,
    /// A GPU whose generation the evidence does not name.
    Gpu,
}

impl DeviceKind {
    pub fn claim_prefix(self) -> &'static str {
        match self {
            DeviceKind::NvSwitch => "switch",
            _ => "gpu",
        }
    }

    pub fn is_switch(self) -> bool {
        self == DeviceKind::NvSwitch
    }

    /// From the names in the leaf certificate ("GH100 A01 GSP FMC LF", "LS_10 A01 FSP BROM").
    fn from_certificate_names(names: &[String]) -> Option<Self> {
        let has = |needle: &str| names.iter().any(|n| n.contains(needle));
        if has("LS_10") || has("LS10") {
            Some(DeviceKind::NvSwitch)
        } else if has("GH100") {
            Some(DeviceKind::Hopper)
        } else if has("GB10") || has("GB20") {
            Some(DeviceKind::Blackwell)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every core claim verified and no claim failed.
    Pass,
    /// At least one claim failed.
    Fail,
    /// Nothing failed, but a core claim could not be decided (e.g. no nonce given).
    Incomplete,
}

/// What the leaf certificate says about the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeafCertificate {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fwid: Option<CertificateFwid>,
    pub fwid_error: Option<String>,
}

/// Inputs besides the evidence itself.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The nonce the verifier issued; the report's request must carry exactly it.
    pub expected_nonce: Option<&'a [u8; NONCE_LEN]>,
    pub rims: Option<&'a RimStore>,
    /// Verification time, Unix seconds.
    pub at: i64,
    pub chain_cache: Option<&'a ChainCache>,
    /// DER OCSP responses fetched earlier or stapled, in any order; each certificate of the
    /// device chain below the root (except the per-boot leaf) needs one for revocation to be
    /// verified.
    pub ocsp_responses: &'a [Vec<u8>],
    /// Trusted device identity roots (DER); `None`: NVIDIA's pinned root.
    pub device_roots: Option<&'a [Vec<u8>]>,
    /// Trusted RIM signing roots (DER), separate from the device roots; `None`: NVIDIA's.
    pub rim_roots: Option<&'a [Vec<u8>]>,
    pub rim_cache: Option<&'a RimCache>,
}

impl<'a> VerifyOptions<'a> {
    /// Verification at `at` with no nonce, RIMs, cache or OCSP responses.
    pub fn at(at: i64) -> Self {
        VerifyOptions {
            expected_nonce: None,
            rims: None,
            at,
            chain_cache: None,
            ocsp_responses: &[],
            device_roots: None,
            rim_roots: None,
            rim_cache: None,
        }
    }

    /// The same options using both caches of `caches`.
    pub fn with_caches(self, caches: &'a GpuCaches) -> Self {
        VerifyOptions {
            chain_cache: Some(&caches.chains),
            rim_cache: Some(&caches.rims),
            ..self
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuVerification {
    pub verified_at: String,
    pub verified_at_unix: i64,
    pub device: DeviceKind,
    pub verdict: Verdict,
    pub report: Option<AttestationReport>,
    pub report_error: Option<String>,
    pub leaf_certificate: Option<LeafCertificate>,
    pub certificate_chain: Option<VerifiedChain>,
    pub certificate_chain_error: Option<String>,
    pub rims: Option<RimAppraisal>,
    pub claims: Claims,
}

impl GpuVerification {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The claim `<prefix>.<suffix>`, e.g. `claim("nonce_match")`.
    pub fn claim(&self, suffix: &str) -> Option<&crate::claims::Claim> {
        self.claims.find(suffix)
    }
}

/// Verifies one device's evidence: `report` as NVIDIA's hex text or raw bytes, the PEM chain
/// (leaf first), the nonce the verifier issued, optional RIMs, at Unix time `at`.
pub fn verify_gpu_evidence(
    report: &[u8],
    cert_chain_pem: &str,
    expected_nonce: Option<&[u8; NONCE_LEN]>,
    rims: Option<&RimStore>,
    at: i64,
) -> GpuVerification {
    verify_gpu_evidence_with(
        report,
        cert_chain_pem,
        &VerifyOptions {
            expected_nonce,
            rims,
            ..VerifyOptions::at(at)
        },
    )
}

pub fn verify_gpu_evidence_with(
    report_input: &[u8],
    cert_chain_pem: &str,
    options: &VerifyOptions<'_>,
) -> GpuVerification {
    let at = options.at;
    let parsed = parse_report_input(report_input);
    let certs = pem_certificates(cert_chain_pem);
    let leaf = certs
        .as_ref()
        .ok()
        .and_then(|c| c.first())
        .map(|der| describe_leaf(der));
    let leaf_info = leaf.as_ref().and_then(|l| l.as_ref().ok()).cloned();

    let numbering = parsed.as_ref().ok().map(|r| r.response.opaque.numbering);
    let cert_kind = leaf_info
        .as_ref()
        .and_then(|l| DeviceKind::from_certificate_names(&[l.subject.clone(), l.issuer.clone()]));
    let device = cert_kind.unwrap_or(match numbering {
        Some(OpaqueNumbering::NvSwitch) => DeviceKind::NvSwitch,
        _ => DeviceKind::Gpu,
    });
    let p = device.claim_prefix();
    let name = |suffix: &str| format!("{p}.{suffix}");
    let mut claims = Claims::default();

    // Report structure.
    let report = match &parsed {
        Ok(r) => {
            claims.push(name("report_parsed"), ClaimStatus::Verified, true);
            Some(r)
        }
        Err(e) => {
            claims.push(
                name("report_parsed"),
                ClaimStatus::failed(e.to_string()),
                false,
            );
            None
        }
    };

    // Certificate chain to a trusted device root (NVIDIA's unless configured).
    let roots = options.device_roots.unwrap_or(pinned_device_roots());
    let verified = certs.as_ref().map_err(|e| e.to_string()).and_then(|certs| {
        verify_chain_to_roots(certs, roots, at, options.chain_cache).map_err(|e| e.to_string())
    });
    let chain = verified.as_ref().map(|(c, _)| c);
    match chain {
        Ok(c) => {
            let subjects: Vec<String> = c.certificates.iter().map(|s| s.subject.clone()).collect();
            claims.push(name("cert_chain.valid"), ClaimStatus::Verified, subjects);
            claims.push(
                name("cert_chain.expiry"),
                ClaimStatus::Verified,
                c.valid_until_rfc3339(),
            );
        }
        Err(e) => {
            claims.push(
                name("cert_chain.valid"),
                ClaimStatus::failed(e.clone()),
                false,
            );
            claims.push(
                name("cert_chain.expiry"),
                ClaimStatus::unknown("the chain did not verify"),
                ClaimValue::None,
            );
        }
    }
    let (revocation, revocation_value) = match (&certs, &verified) {
        (Ok(certs), Ok((_, root))) => revocation_status(certs, root, options),
        _ => (
            ClaimStatus::unknown("the chain did not verify"),
            ClaimValue::None,
        ),
    };
    claims.push(name("cert_chain.revocation"), revocation, revocation_value);

    // Report signature by the leaf key.
    let leaf_der = certs.as_ref().ok().and_then(|c| c.first());
    let signature = match (report, leaf_der) {
        (Some(r), Some(der)) => match verify_report_signature(r, der) {
            Ok(()) => ClaimStatus::Verified,
            Err(e) => ClaimStatus::failed(e.to_string()),
        },
        (None, _) => ClaimStatus::unknown("the report did not parse"),
        (_, None) => ClaimStatus::unknown("no leaf certificate"),
    };
    let signature_ok = signature.is_verified();
    claims.push(name("signature_verified"), signature, signature_ok);
    let authenticated = signature_ok && chain.is_ok();

    // Device generation: the certificate's and the report's idea must agree.
    let arch = match (cert_kind, numbering) {
        (Some(kind), Some(n)) if kind.is_switch() != (n == OpaqueNumbering::NvSwitch) => {
            ClaimStatus::failed(format!(
                "certificate names a {kind:?} but the report's opaque data is laid out for {}",
                if n == OpaqueNumbering::NvSwitch {
                    "an NVSwitch"
                } else {
                    "a GPU"
                }
            ))
        }
        (Some(_), _) => ClaimStatus::Verified,
        (None, _) => ClaimStatus::unknown("leaf certificate does not name a known device"),
    };
    claims.push(name("arch"), arch, format!("{device:?}"));

    // FWID binding between the leaf key and the measured firmware.
    let report_fwid = report.and_then(|r| r.response.opaque.fwid());
    let fwid_status = match (report, &leaf) {
        (None, _) => ClaimStatus::unknown("the report did not parse"),
        (_, None) => ClaimStatus::unknown("no leaf certificate"),
        (_, Some(Err(e))) => ClaimStatus::failed(e.clone()),
        (Some(_), Some(Ok(leaf))) => match (report_fwid, &leaf.fwid, &leaf.fwid_error) {
            (_, _, Some(e)) => ClaimStatus::failed(format!("leaf certificate FWID: {e}")),
            (None, _, _) => ClaimStatus::unknown(
                "the report carries no FWID (older firmware or NVSwitch), so the key is not bound to the measured firmware",
            ),
            (Some(_), None, _) => ClaimStatus::failed(
                "the report has a FWID but the leaf certificate has no TCG DICE FWID extension",
            ),
            (Some(r), Some(c), _) if r == c.digest.as_slice() => ClaimStatus::Verified,
            (Some(r), Some(c), _) => ClaimStatus::failed(format!(
                "report FWID {} differs from the leaf certificate's {}",
                hex::encode(r),
                hex::encode(&c.digest)
            )),
        },
    };
    claims.push(
        name("fwid_match"),
        fwid_status,
        report_fwid.map_or(ClaimValue::None, |f| ClaimValue::Text(hex::encode(f))),
    );

    // Freshness: the request the device signed carries the verifier's nonce.
    let nonce_status = match (report, options.expected_nonce) {
        (None, _) => ClaimStatus::unknown("the report did not parse"),
        (Some(_), None) => ClaimStatus::unknown("no expected nonce supplied"),
        (Some(r), Some(expected)) if &r.request.nonce == expected => ClaimStatus::Verified,
        (Some(r), Some(expected)) => ClaimStatus::failed(format!(
            "report nonce {} is not the expected {}",
            hex::encode(r.request.nonce),
            hex::encode(expected)
        )),
    };
    claims.push(
        name("nonce_match"),
        nonce_status,
        report.map_or(ClaimValue::None, |r| {
            ClaimValue::Text(hex::encode(r.request.nonce))
        }),
    );

    // Values the device reports; verified only when the report is authenticated.
    if let Some(r) = report {
        push_value_claims(&mut claims, p, r, leaf_info.as_ref(), authenticated, device);
    }

    // Reference values.
    let rims = match (options.rims, report) {
        (Some(store), Some(r)) => {
            let rim_options = RimOptions {
                roots: options.rim_roots,
                cache: options.rim_cache,
            };
            let appraisal = appraise_report_with(store, r, device, at, &rim_options);
            for claim in appraisal.claims(p) {
                claims.0.push(claim);
            }
            Some(appraisal)
        }
        (Some(_), None) => {
            claims.push(
                name("measurements.match"),
                ClaimStatus::unknown("the report did not parse"),
                ClaimValue::None,
            );
            None
        }
        (None, _) => {
            claims.push(
                name("measurements.match"),
                ClaimStatus::unknown("no RIMs supplied"),
                ClaimValue::None,
            );
            None
        }
    };

    let verdict = verdict_of(&claims, options.rims.is_some());
    // Moved, not copied, into the result (a warm verification is short enough for copies of
    // the report to show).
    let (report, report_error) = match parsed {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (certificate_chain, certificate_chain_error) = match verified {
        Ok((c, _)) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    GpuVerification {
        verified_at: format_rfc3339(at),
        verified_at_unix: at,
        device,
        verdict,
        report,
        report_error,
        leaf_certificate: leaf_info,
        certificate_chain,
        certificate_chain_error,
        rims,
        claims,
    }
}

/// Revocation of the device identity certificates (index 1 up to, not including, the
/// root), as NVIDIA's verifier checks it: the leaf is the per-boot firmware alias
/// certificate that no responder knows. Only a verified, fresh response counts.
fn revocation_status(
    certs: &[Vec<u8>],
    root: &[u8],
    options: &VerifyOptions<'_>,
) -> (ClaimStatus, ClaimValue) {
    if options.ocsp_responses.is_empty() {
        return (
            ClaimStatus::unknown("no OCSP response supplied; revocation is not checked offline"),
            ClaimValue::None,
        );
    }
    let mut path: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    if path.last() != Some(&root) {
        path.push(root);
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for (index, pair) in path.windows(2).enumerate().skip(1) {
        let [cert, issuer] = pair else { continue };
        let mut errors = Vec::new();
        let mut status = None;
        for response in options.ocsp_responses {
            match check_ocsp_response(response, cert, issuer, options.at, None) {
                Ok(s) => {
                    status = Some(s);
                    break;
                }
                Err(OcspError::NotForCertificate { .. }) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        match status.map(|s| s.status) {
            Some(CertStatus::Good) => checked += 1,
            Some(CertStatus::Revoked { revoked_at, reason }) => {
                return (
                    ClaimStatus::failed(format!(
                        "certificate {index} was revoked at {revoked_at} (reason {})",
                        reason.map_or("unspecified".into(), |r| r.to_string())
                    )),
                    ClaimValue::Text("revoked".into()),
                );
            }
            Some(CertStatus::Unknown) => {
                missing.push(format!("certificate {index}: responder does not know it"))
            }
            None if errors.is_empty() => missing.push(format!("certificate {index}: no response")),
            None => missing.push(format!("certificate {index}: {}", errors.join("; "))),
        }
    }
    if missing.is_empty() && checked > 0 {
        (ClaimStatus::Verified, ClaimValue::Text("good".into()))
    } else {
        (ClaimStatus::unknown(missing.join("; ")), ClaimValue::None)
    }
}

/// With RIMs supplied, the measurements must verify too.
fn verdict_of(claims: &Claims, rims_supplied: bool) -> Verdict {
    if claims.failed().next().is_some() {
        return Verdict::Fail;
    }
    let rim_claims: &[&str] = if rims_supplied {
        &["measurements.match"]
    } else {
        &[]
    };
    let core_ok = CORE_CLAIMS
        .iter()
        .chain(rim_claims)
        .all(|c| claims.find(c).is_some_and(|c| c.status.is_verified()));
    if core_ok {
        Verdict::Pass
    } else {
        Verdict::Incomplete
    }
}

fn describe_leaf(der: &[u8]) -> Result<LeafCertificate, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("leaf certificate does not parse: {e}"))?;
    let (fwid, fwid_error) = match certificate_fwid(&cert) {
        Ok(f) => (f, None),
        Err(e) => (None, Some(e)),
    };
    Ok(LeafCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        fwid,
        fwid_error,
    })
}

fn push_value_claims(
    claims: &mut Claims,
    p: &str,
    report: &AttestationReport,
    leaf: Option<&LeafCertificate>,
    authenticated: bool,
    device: DeviceKind,
) {
    let opaque = &report.response.opaque;
    let mut value = |suffix: &str, v: Option<ClaimValue>| {
        let status = match (&v, authenticated) {
            (None, _) if suffix == "cc_mode" => ClaimStatus::unknown(
                "this firmware does not report the CC feature flag; the RIM measurements cover the mode",
            ),
            (None, _) => ClaimStatus::unknown("not in the report"),
            (Some(_), true) => ClaimStatus::Verified,
            (Some(_), false) => {
                ClaimStatus::unknown("value from a report whose signature or chain did not verify")
            }
        };
        claims.push(
            format!("{p}.{suffix}"),
            status,
            v.unwrap_or(ClaimValue::None),
        );
    };
    if !device.is_switch() {
        value("driver_version", opaque.driver_version().map(Into::into));
    }
    value("vbios_version", opaque.vbios_version().map(Into::into));
    if !device.is_switch() {
        value("chip_sku", opaque.chip_sku().map(Into::into));
        value("project", opaque.project().map(Into::into));
        value("project_sku", opaque.project_sku().map(Into::into));
        value(
            "cc_mode",
            opaque.feature_flag().map(|f| {
                ClaimValue::Text(
                    match f {
                        FeatureFlag::Spt => "spt",
                        FeatureFlag::Mpt => "mpt",
                        FeatureFlag::Ppcie => "ppcie",
                        FeatureFlag::Other(_) => "unknown",
                    }
                    .into(),
                )
            }),
        );
        value(
            "protected_pcie",
            opaque
                .protected_pcie_status()
                .map(|s| ClaimValue::Bool(s == EnableStatus::Enabled)),
        );
        value(
            "nvdec0_enabled",
            opaque
                .nvdec0_status()
                .map(|s| ClaimValue::Bool(s == EnableStatus::Enabled)),
        );
    }
    value(
        "opaque_data_version",
        opaque
            .opaque_data_version()
            .map(|v| ClaimValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))),
    );
    value(
        "measurement_blocks",
        Some(ClaimValue::Integer(report.response.blocks.len() as i64)),
    );
    value(
        "hwmodel",
        leaf.and_then(|l| common_name(&l.issuer))
            .map(ClaimValue::Text),
    );
    value(
        "device_serial",
        leaf.map(|l| ClaimValue::Text(l.serial.clone())),
    );
}

/// The CN of a distinguished name as x509-parser prints it (`…, CN=GH100 A01 GSP BROM`).
fn common_name(dn: &str) -> Option<String> {
    dn.split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .map(str::to_string)
}
