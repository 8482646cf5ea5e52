//! TPM evidence: the AK and the quote, checked with `vigil-tpm` (pure Rust).
//! STUB: replaced once vigil-tpm lands.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use vigil_proto::v1::PcrBank;

use crate::report::{Check, Verdict};

pub struct AkFacts {
    pub name: Vec<u8>,
    pub restricted: bool,
    pub sign: bool,
    pub fixed_tpm: bool,
    pub restricted_signing: bool,
    pub description: String,
}

pub struct VerifiedQuote {
    pub signature_scheme: String,
    pub pcrs: BTreeMap<String, BTreeMap<u32, Vec<u8>>>,
}

impl VerifiedQuote {
    pub fn pcr_count(&self) -> usize {
        self.pcrs.values().map(BTreeMap::len).sum()
    }
}

pub struct QuoteFailure {
    pub check: &'static str,
    pub detail: String,
}

pub fn inspect_ak(_ak_public: &[u8]) -> Result<AkFacts, String> {
    Err("not implemented".into())
}

pub fn verify_quote(
    _ak_public: &[u8],
    _attest: &[u8],
    _signature: &[u8],
    _pcrs: &[PcrBank],
    _qualifying_data: &[u8],
) -> Result<VerifiedQuote, QuoteFailure> {
    Err(QuoteFailure {
        check: "quote",
        detail: "not implemented".into(),
    })
}

pub struct QuoteFiles {}

impl QuoteFiles {
    pub fn read(
        _ak: &Path,
        _message: &Path,
        _signature: &Path,
        _pcrs: Option<&Path>,
    ) -> Result<Self, String> {
        Err("not implemented".into())
    }
}

#[derive(Serialize)]
pub struct QuoteCheckResult {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
}

impl QuoteCheckResult {
    pub fn render_text(&self) -> String {
        String::new()
    }
}

pub fn check_quote_files(_files: &QuoteFiles, _nonce: Option<&[u8]>) -> QuoteCheckResult {
    QuoteCheckResult {
        verdict: Verdict::Fail,
        checks: vec![],
    }
}
