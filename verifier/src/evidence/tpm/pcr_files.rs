//! PCR values in the file formats tpm2-tools and other tools write, so `vigil quote verify`
//! reads what `tpm2_quote -o` produced:
//! - tpm2-tools "serialized" (the default of `tpm2_quote -o`): the C structures
//!   TPML_PCR_SELECTION, a UINT32 count, then TPML_DIGESTs, all in host (little-endian) order
//!   with C padding: 132 + 4 + 532·n bytes;
//! - raw values (`tpm2_quote -F values`): the digests concatenated in the quote's selection
//!   order, which is needed to read them;
//! - JSON `{ "sha256": { "0": "hex", ... } }`.

use std::collections::BTreeMap;

use super::DecodeError;
use super::quote::PcrValues;
use super::structures::{HashAlg, PcrSelection, pcrs_from_bitmap};

/// Largest PCR file accepted.
pub const MAX_PCR_FILE_BYTES: usize = 64 * 1024;

const SERIALIZED_SELECTION_BYTES: usize = 4 + 16 * 8;
const SERIALIZED_DIGEST_LIST_BYTES: usize = 4 + 8 * (2 + 64);

fn invalid(field: &'static str, offset: usize, reason: String) -> DecodeError {
    DecodeError::Invalid {
        structure: "PCR file",
        field,
        offset,
        reason,
    }
}

fn le_u32(data: &[u8], offset: usize, field: &'static str) -> Result<u32, DecodeError> {
    data.get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(DecodeError::Truncated {
            structure: "PCR file",
            field,
            offset,
            needed: 4,
            available: data.len().saturating_sub(offset),
        })
}

fn le_u16(data: &[u8], offset: usize, field: &'static str) -> Result<u16, DecodeError> {
    data.get(offset..offset + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(DecodeError::Truncated {
            structure: "PCR file",
            field,
            offset,
            needed: 2,
            available: data.len().saturating_sub(offset),
        })
}

/// Reads a PCR file of any supported format; `quote_selection` is needed for raw values.
pub fn parse_pcr_file(
    data: &[u8],
    quote_selection: &PcrSelection,
) -> Result<PcrValues, DecodeError> {
    if data.len() > MAX_PCR_FILE_BYTES {
        return Err(DecodeError::TooLarge {
            structure: "PCR file",
            size: data.len(),
            limit: MAX_PCR_FILE_BYTES,
        });
    }
    let trimmed = data.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        return parse_json(trimmed);
    }
    if let Ok(text) = std::str::from_utf8(trimmed)
        && text
            .lines()
            .any(|l| l.trim_start().starts_with("sha") && l.trim_end().ends_with(':'))
    {
        return parse_pcrread_text(text);
    }
    if looks_serialized(data) {
        return parse_serialized(data);
    }
    parse_raw_values(data, quote_selection)
}

fn looks_serialized(data: &[u8]) -> bool {
    let Some(body) = data.len().checked_sub(SERIALIZED_SELECTION_BYTES + 4) else {
        return false;
    };
    body % SERIALIZED_DIGEST_LIST_BYTES == 0
        && le_u32(data, 0, "count").is_ok_and(|count| count <= 16)
        && le_u32(data, SERIALIZED_SELECTION_BYTES, "digest list count")
            .is_ok_and(|lists| lists as usize == body / SERIALIZED_DIGEST_LIST_BYTES)
}

/// tpm2-tools' serialized format (little-endian C structures).
pub fn parse_serialized(data: &[u8]) -> Result<PcrValues, DecodeError> {
    let bank_count = le_u32(data, 0, "TPML_PCR_SELECTION.count")? as usize;
    if bank_count > 16 {
        return Err(invalid(
            "TPML_PCR_SELECTION.count",
            0,
            format!("{bank_count} banks"),
        ));
    }
    let mut selection = Vec::with_capacity(bank_count);
    for i in 0..bank_count {
        let offset = 4 + i * 8;
        let id = le_u16(data, offset, "TPMS_PCR_SELECTION.hash")?;
        let bank = HashAlg::from_id(id).ok_or_else(|| {
            invalid(
                "TPMS_PCR_SELECTION.hash",
                offset,
                format!("unknown hash algorithm 0x{id:04x}"),
            )
        })?;
        let size = usize::from(*data.get(offset + 2).unwrap_or(&0)).min(4);
        let bitmap = data.get(offset + 3..offset + 3 + size).unwrap_or_default();
        selection.push((bank, pcrs_from_bitmap(bitmap)));
    }
    let list_count = le_u32(data, SERIALIZED_SELECTION_BYTES, "count")? as usize;
    let mut digests = Vec::new();
    for list in 0..list_count {
        let base = SERIALIZED_SELECTION_BYTES + 4 + list * SERIALIZED_DIGEST_LIST_BYTES;
        let count = le_u32(data, base, "TPML_DIGEST.count")? as usize;
        if count > 8 {
            return Err(invalid(
                "TPML_DIGEST.count",
                base,
                format!("{count} digests (max 8)"),
            ));
        }
        for slot in 0..count {
            let offset = base + 4 + slot * 66;
            let size = usize::from(le_u16(data, offset, "TPM2B_DIGEST.size")?);
            if size > 64 {
                return Err(invalid(
                    "TPM2B_DIGEST.size",
                    offset,
                    format!("{size} bytes (max 64)"),
                ));
            }
            let digest = data
                .get(offset + 2..offset + 2 + size)
                .ok_or(DecodeError::Truncated {
                    structure: "PCR file",
                    field: "TPM2B_DIGEST.buffer",
                    offset: offset + 2,
                    needed: size,
                    available: data.len().saturating_sub(offset + 2),
                })?;
            digests.push((offset, digest.to_vec()));
        }
    }
    let mut digests = digests.into_iter();
    let mut values = PcrValues::new();
    for (bank, pcrs) in selection {
        for index in pcrs {
            let (offset, digest) = digests.next().ok_or_else(|| {
                invalid(
                    "digests",
                    data.len(),
                    format!("no digest for {}:{index}", bank.name()),
                )
            })?;
            if digest.len() != bank.digest_len() {
                return Err(invalid(
                    "TPM2B_DIGEST",
                    offset,
                    format!("{}:{index} has {} bytes", bank.name(), digest.len()),
                ));
            }
            values.entry(bank).or_default().insert(index, digest);
        }
    }
    if let Some((offset, _)) = digests.next() {
        return Err(invalid(
            "digests",
            offset,
            "more digests than selected PCRs".into(),
        ));
    }
    Ok(values)
}

/// Concatenated digests in the quote's selection order (`tpm2_quote -F values`).
pub fn parse_raw_values(data: &[u8], selection: &PcrSelection) -> Result<PcrValues, DecodeError> {
    let expected: usize = selection
        .iter()
        .map(|s| s.pcrs.len() * s.bank.digest_len())
        .sum();
    if data.len() != expected {
        return Err(invalid(
            "values",
            0,
            format!(
                "{} bytes is not a serialized PCR file, and raw values for the quoted selection need {expected} bytes",
                data.len()
            ),
        ));
    }
    let mut values = PcrValues::new();
    let mut offset = 0;
    for bank_selection in selection {
        let len = bank_selection.bank.digest_len();
        for index in &bank_selection.pcrs {
            let digest = data
                .get(offset..offset + len)
                .ok_or(DecodeError::Truncated {
                    structure: "PCR file",
                    field: "values",
                    offset,
                    needed: len,
                    available: data.len().saturating_sub(offset),
                })?;
            values
                .entry(bank_selection.bank)
                .or_default()
                .insert(*index, digest.to_vec());
            offset += len;
        }
    }
    Ok(values)
}

/// `{ "sha256": { "0": "hex", ... }, ... }`, the `pcrs.json` layout.
pub fn parse_json(data: &[u8]) -> Result<PcrValues, DecodeError> {
    let document: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_slice(data)
        .map_err(|e| {
            invalid(
                "json",
                e.column(),
                format!("not {{bank: {{index: hex}}}}: {e}"),
            )
        })?;
    let mut values = PcrValues::new();
    for (bank_name, entries) in document {
        let bank = HashAlg::from_name(&bank_name)
            .ok_or_else(|| invalid("json", 0, format!("unknown bank {bank_name:?}")))?;
        for (index, digest) in entries {
            let index: u32 = index.parse().ok().filter(|i| *i < 64).ok_or_else(|| {
                invalid("json", 0, format!("{bank_name}: bad PCR index {index:?}"))
            })?;
            let digest = hex::decode(digest.trim())
                .map_err(|e| invalid("json", 0, format!("{bank_name}:{index}: not hex: {e}")))?;
            values.entry(bank).or_default().insert(index, digest);
        }
    }
    Ok(values)
}

/// The text `tpm2_pcrread` prints: a `sha256:` line per bank, then `  0 : 0x…` lines.
pub fn parse_pcrread_text(text: &str) -> Result<PcrValues, DecodeError> {
    let mut values = PcrValues::new();
    let mut bank = None;
    let mut offset = 0;
    for line in text.lines() {
        let here = offset;
        offset += line.len() + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed == "pcrs:" {
            continue;
        }
        if let Some(name) = trimmed.strip_suffix(':') {
            bank = Some(
                HashAlg::from_name(name)
                    .ok_or_else(|| invalid("text", here, format!("unknown bank {name:?}")))?,
            );
            continue;
        }
        let (index, value) = trimmed.split_once(':').ok_or_else(|| {
            invalid(
                "text",
                here,
                format!("expected `index : 0xvalue`, got {trimmed:?}"),
            )
        })?;
        let bank =
            bank.ok_or_else(|| invalid("text", here, "a PCR value before any bank line".into()))?;
        let index: u32 = index
            .trim()
            .parse()
            .ok()
            .filter(|i| *i < 64)
            .ok_or_else(|| invalid("text", here, format!("bad PCR index {index:?}")))?;
        let digest = hex::decode(value.trim().trim_start_matches("0x"))
            .map_err(|e| invalid("text", here, format!("PCR {index} value is not hex: {e}")))?;
        values.entry(bank).or_default().insert(index, digest);
    }
    Ok(values)
}

/// Writes `values` as pcrs.json.
pub fn to_json(values: &PcrValues) -> serde_json::Value {
    let map: BTreeMap<&str, BTreeMap<String, String>> = values
        .iter()
        .map(|(bank, v)| {
            (
                bank.name(),
                v.iter()
                    .map(|(i, d)| (i.to_string(), hex::encode(d)))
                    .collect(),
            )
        })
        .collect();
    serde_json::json!(map)
}
