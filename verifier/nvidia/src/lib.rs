//! Offline verification of NVIDIA GPU and NVSwitch attestation evidence, in pure Rust
//! (`ring` for ECDSA and digests, `x509-parser` for certificates, `roxmltree` for RIMs).
//!
//! Data flows one way:
//! ```text
//! report bytes ─ input (hex text | raw) ─ spdm (+ opaque TLVs) ─┐
//! PEM chain ─ chain (to the pinned device root, at time `at`) ──┼─ verify ─ claims ─ GpuVerification
//!                      signature (P-384 over request‖response) ─┤
//!                      dice (leaf FWID == report FWID) ─────────┤
//! RIM XML ─ rim::swid ─ rim::xmldsig (C14N 1.1, to the RIM root)┤
//!                      rim::compare (golden vs blocks) ─────────┤
//! OCSP DER ─ ocsp (signer, CertID, freshness) ──────────────────┘
//! ```
//! Parsers ([`spdm`], [`opaque`], [`rim::swid`]) return typed structs or typed errors with
//! offsets; they decide nothing. [`verify_gpu_evidence`] runs every check and states the
//! outcome as [`Claims`]; the caller's appraisal decides what is acceptable. Verification
//! time is always a parameter. The trust anchors are the two NVIDIA roots in
//! `certs/nvidia/`, embedded at build time ([`roots`]), unless the caller configures others.
//! Verified chains and RIM signatures can be remembered in [`GpuCaches`].

pub mod base64;
pub mod cache;
pub mod chain;
pub mod claims;
mod der;
pub mod dice;
pub mod evidence;
mod hexfmt;
pub mod input;
pub mod ocsp;
pub mod opaque;
mod reader;
pub mod render;
pub mod rim;
pub mod roots;
pub mod signature;
pub mod spdm;
pub mod time;
pub mod verify;

pub use cache::{CacheStats, GpuCaches};
pub use chain::{ChainCache, ChainError, VerifiedChain};
pub use claims::{Claim, ClaimStatus, ClaimValue, Claims};
pub use rim::{RimAppraisal, RimCache, RimStore};
pub use spdm::{AttestationReport, ReportError, parse_report, parse_report_input};
pub use time::{format_rfc3339, parse_rfc3339};
pub use verify::{
    DeviceKind, GpuVerification, Verdict, VerifyOptions, verify_gpu_evidence,
    verify_gpu_evidence_with,
};
