//! `vigil quote verify`: the offline check of a quote in tpm2-tools' file formats, like
//! `tpm2_checkquote`, reported as named checks.

use std::path::Path;

use serde::Serialize;

use super::pcr_files::parse_pcr_file;
use super::quote::{QuoteExpectations, VerifiedQuote, verify_quote};
use super::structures::{MAX_STRUCTURE_BYTES, decode_ak_public, decode_attest};
use crate::report::{Check, Verdict};

/// The files of one quote, read with size limits.
pub struct QuoteFiles {
    pub ak_public: Vec<u8>,
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
    pub pcrs: Option<Vec<u8>>,
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut data = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() > limit {
        return Err(format!("{}: larger than {limit} bytes", path.display()));
    }
    Ok(data)
}

impl QuoteFiles {
    pub fn read(
        ak: &Path,
        message: &Path,
        signature: &Path,
        pcrs: Option<&Path>,
    ) -> Result<Self, String> {
        // Read one byte past the structure limit so oversize input reaches the decoder's
        // clear "exceeds the limit" error rather than being cut silently.
        let limit = MAX_STRUCTURE_BYTES * 4;
        Ok(QuoteFiles {
            ak_public: read_limited(ak, limit)?,
            message: read_limited(message, limit)?,
            signature: read_limited(signature, limit)?,
            pcrs: pcrs
                .map(|p| read_limited(p, super::pcr_files::MAX_PCR_FILE_BYTES * 2))
                .transpose()?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct QuoteCheckResult {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    pub quote: Option<VerifiedQuote>,
    /// What was not checked (no `--nonce`, no `--pcrs`): a passing result with anything here
    /// is INCOMPLETE, as `vigil gpu verify` calls it (exit status 0: nothing failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}

impl QuoteCheckResult {
    fn new(checks: Vec<Check>, quote: Option<VerifiedQuote>) -> Self {
        let verdict = if !checks.is_empty() && checks.iter().all(|c| c.passed) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        QuoteCheckResult {
            verdict,
            checks,
            quote,
            unchecked: Vec::new(),
        }
    }

    /// Whether nothing failed but something was not checked.
    pub fn is_incomplete(&self) -> bool {
        self.verdict == Verdict::Pass && !self.unchecked.is_empty()
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            out.push_str(&format!(
                "[{}] {:<24} {}\n",
                if check.passed { " ok " } else { "FAIL" },
                check.name,
                check.detail
            ));
        }
        if let Some(quote) = &self.quote {
            out.push_str(&format!(
                "clock {} resets {} restarts {} firmware 0x{:016x}\n",
                quote.clock, quote.reset_count, quote.restart_count, quote.firmware_version
            ));
            for (bank, values) in &quote.pcrs {
                for (index, value) in values {
                    out.push_str(&format!(
                        "  {}:{index:<2} {}\n",
                        bank.name(),
                        hex::encode(value)
                    ));
                }
            }
        }
        if self.is_incomplete() {
            out.push_str(&format!(
                "INCOMPLETE: quote signature verified; {}\n",
                self.unchecked.join("; ")
            ));
            return out;
        }
        out.push_str(match self.verdict {
            Verdict::Pass => "PASS: quote verified\n",
            Verdict::Fail => "FAIL: quote did not verify\n",
        });
        out
    }
}

/// Checks the quote in `files`; `nonce` is the expected qualifying data.
pub fn check_quote_files(files: &QuoteFiles, nonce: Option<&[u8]>) -> QuoteCheckResult {
    let mut checks = Vec::new();
    let ak = match decode_ak_public(&files.ak_public) {
        Ok(ak) => ak,
        Err(error) => {
            checks.push(Check::fail("ak.decode", error.to_string()));
            return QuoteCheckResult::new(checks, None);
        }
    };
    checks.push(Check::pass(
        "ak.decode",
        format!("{} ({})", ak.key.describe(), ak.format),
    ));
    match ak.attributes {
        Some(a) if a.restricted && a.sign && !a.decrypt => {
            checks.push(Check::pass("ak.attributes", "restricted signing key"))
        }
        Some(a) => checks.push(Check::fail(
            "ak.attributes",
            format!(
                "not a restricted signing key (restricted={}, sign={}, decrypt={}): it could sign a forged quote",
                a.restricted, a.sign, a.decrypt
            ),
        )),
        None => checks.push(Check::pass(
            "ak.attributes",
            "not checked: a SubjectPublicKeyInfo carries no TPM attributes",
        )),
    }
    // The PCR file may need the quote's selection (raw values), so decode the quote first.
    let pcrs = match &files.pcrs {
        None => None,
        Some(data) => {
            let selection = decode_attest(&files.message)
                .ok()
                .and_then(|a| a.quote)
                .map(|q| q.selection)
                .unwrap_or_default();
            match parse_pcr_file(data, &selection) {
                Ok(values) => Some(values),
                Err(error) => {
                    checks.push(Check::fail("pcrs.decode", error.to_string()));
                    return QuoteCheckResult::new(checks, None);
                }
            }
        }
    };
    let expectations = QuoteExpectations {
        qualifying_data: nonce,
        pcrs: pcrs.as_ref(),
        allow_sha1_signatures: true,
    };
    match verify_quote(&ak, &files.message, &files.signature, expectations) {
        Ok(quote) => {
            checks.push(Check::pass("quote.magic", "TPM_GENERATED"));
            checks.push(Check::pass("quote.type", "TPM_ST_ATTEST_QUOTE"));
            let weak = if quote.signature.ends_with("SHA1") {
                " (WARNING: SHA-1 is a legacy hash; Vigil refuses it for live evidence)"
            } else {
                ""
            };
            checks.push(Check::pass(
                "quote.signature",
                format!("{}{weak}", quote.signature),
            ));
            checks.push(match nonce {
                Some(_) => Check::pass("quote.qualifying_data", "equals --nonce"),
                None => Check::pass(
                    "quote.qualifying_data",
                    format!(
                        "NOT CHECKED (no --nonce): quote carries {}; freshness unknown",
                        hex::encode(&quote.extra_data)
                    ),
                ),
            });
            checks.push(match &pcrs {
                Some(_) => Check::pass(
                    "quote.pcr_digest",
                    format!("recomputed over {} PCR values", quote.pcr_count()),
                ),
                None => Check::pass(
                    "quote.pcr_digest",
                    "NOT CHECKED (no --pcrs): the quoted PCR values are unknown",
                ),
            });
            let mut result = QuoteCheckResult::new(checks, Some(quote));
            if nonce.is_none() {
                result
                    .unchecked
                    .push("qualifying data not checked: no --nonce (freshness unknown)".to_owned());
            }
            if pcrs.is_none() {
                result
                    .unchecked
                    .push("PCR values not checked: no --pcrs".to_owned());
            }
            result
        }
        Err(error) => {
            checks.push(Check::fail(error.check(), error.to_string()));
            QuoteCheckResult::new(checks, None)
        }
    }
}
