//! TPM evidence, pure Rust: decode TPM 2.0 structures (`structures`), verify quotes
//! (`quote`), read tpm2-tools PCR files (`pcr_files`), and turn the result into named
//! checks for the verifier (this module).

mod reader;

pub mod offline;
pub mod pcr_files;
pub mod quote;
pub mod structures;

use vigil_proto::v1::PcrBank;

pub use quote::{PcrValues, QuoteError, QuoteExpectations, VerifiedQuote, verify_quote};
pub use structures::{AkPublic, HashAlg, decode_ak_public, decode_tpm2b_public};

/// A structure that does not decode: which structure, which field, at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "{structure}: truncated at offset {offset} reading {field} (need {needed} bytes, {available} left)"
    )]
    Truncated {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{structure}: {field} at offset {offset}: {reason}")]
    Invalid {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("{structure}: {extra} unexpected trailing bytes at offset {offset}")]
    Trailing {
        structure: &'static str,
        offset: usize,
        extra: usize,
    },
    #[error("{structure}: {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        structure: &'static str,
        size: usize,
        limit: usize,
    },
}

/// Most PCR values accepted per bank and banks per evidence message.
pub const MAX_PCRS_PER_BANK: usize = 64;
pub const MAX_PCR_BANKS: usize = 8;

/// What the verifier needs to know about an AK presented over the wire.
pub struct AkFacts {
    pub name: Vec<u8>,
    pub restricted: bool,
    pub sign: bool,
    pub fixed_tpm: bool,
    pub restricted_signing: bool,
    pub description: String,
}

/// Decodes the AK of an evidence message (TPM2B_PUBLIC, so its name and attributes are known).
pub fn inspect_ak(ak_public: &[u8]) -> Result<AkFacts, String> {
    let ak = decode_tpm2b_public(ak_public).map_err(|e| e.to_string())?;
    let attributes = ak.attributes.ok_or("the AK has no object attributes")?;
    Ok(AkFacts {
        name: ak
            .name
            .clone()
            .ok_or("the AK's name algorithm is not supported")?,
        restricted: attributes.restricted,
        sign: attributes.sign,
        fixed_tpm: attributes.fixed_tpm,
        restricted_signing: attributes.restricted && attributes.sign && !attributes.decrypt,
        description: format!("{} {}", ak.key.describe(), ak.format),
    })
}

/// A failed quote check, by name.
pub struct QuoteFailure {
    pub check: &'static str,
    pub detail: String,
}

impl From<QuoteError> for QuoteFailure {
    fn from(error: QuoteError) -> Self {
        QuoteFailure {
            check: error.check(),
            detail: error.to_string(),
        }
    }
}

/// PCR values from the wire (bank name → index → digest), bounded.
pub fn pcr_values_from_wire(banks: &[PcrBank]) -> Result<PcrValues, QuoteFailure> {
    let failure = |detail: String| QuoteFailure {
        check: "quote.pcr_selection",
        detail,
    };
    if banks.len() > MAX_PCR_BANKS {
        return Err(failure(format!(
            "{} PCR banks sent (max {MAX_PCR_BANKS})",
            banks.len()
        )));
    }
    let mut values = PcrValues::new();
    for bank in banks {
        let alg = HashAlg::from_name(&bank.bank)
            .ok_or_else(|| failure(format!("unknown PCR bank {:?}", bank.bank)))?;
        if values.contains_key(&alg) {
            return Err(failure(format!("PCR bank {} sent twice", alg.name())));
        }
        if bank.values.len() > MAX_PCRS_PER_BANK {
            return Err(failure(format!(
                "{} values in bank {}",
                bank.values.len(),
                alg.name()
            )));
        }
        values.insert(
            alg,
            bank.values.iter().map(|(i, v)| (*i, v.clone())).collect(),
        );
    }
    Ok(values)
}

/// Verifies a quote from an evidence message: AK as TPM2B_PUBLIC, PCR values as sent.
pub fn verify_wire_quote(
    ak_public: &[u8],
    attest: &[u8],
    signature: &[u8],
    pcrs: &[PcrBank],
    qualifying_data: &[u8],
) -> Result<VerifiedQuote, QuoteFailure> {
    let ak = decode_tpm2b_public(ak_public).map_err(|e| QuoteFailure {
        check: "ak.decode",
        detail: e.to_string(),
    })?;
    let values = pcr_values_from_wire(pcrs)?;
    Ok(verify_quote(
        &ak,
        attest,
        signature,
        QuoteExpectations {
            qualifying_data: Some(qualifying_data),
            pcrs: Some(&values),
            allow_sha1_signatures: false,
        },
    )?)
}

#[cfg(test)]
mod tests;
