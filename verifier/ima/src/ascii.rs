//! The ASCII rendering of a list (`ascii_runtime_measurements`, Keylime's test logs):
//! `PCR TEMPLATE-HASH TEMPLATE FIELDS…` per line. The template data the hash covers is rebuilt
//! from the fields exactly as the kernel lays it out in binary, so an ASCII list replays like
//! the binary one. File names are taken to the end of the field they occupy, so names with
//! spaces survive.

use std::borrow::Cow;

use crate::error::ParseError;
use crate::hash::HashAlg;
use crate::list::{
    Entry, Format, IMA_NAME_FIELD, Location, MAX_ENTRIES, MAX_LIST_BYTES, MeasurementList,
    TemplateHash, ima_template_hashed,
};

/// Parses an ASCII list. Its template hash algorithm follows from the hash's length (40 hex
/// digits SHA-1); a 32-byte hash is SHA-256 only if the first non-violation entry's data
/// hashes to it, else it is reported as unknown (SM3 lists look the same).
pub fn parse_ascii(data: &[u8], first_index: u64) -> Result<MeasurementList<'_>, ParseError> {
    if data.len() > MAX_LIST_BYTES {
        return Err(ParseError::TooLarge {
            size: data.len(),
            limit: MAX_LIST_BYTES,
        });
    }
    let text = std::str::from_utf8(data).map_err(|e| ParseError::Ascii {
        line: line_of(data, e.valid_up_to()),
        field: "text",
        reason: "not UTF-8".into(),
    })?;
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut hash_len = None;
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(ParseError::TooManyEntries { limit: MAX_ENTRIES });
        }
        let bad = |field: &'static str, reason: String| ParseError::Ascii {
            line: line_number,
            field,
            reason,
        };
        let entry = parse_line(line, first_index + entries.len() as u64, line_number)
            .map_err(|(field, reason)| bad(field, reason))?;
        match hash_len {
            None => hash_len = Some(entry.template_hash.len()),
            Some(len) if len != entry.template_hash.len() => {
                return Err(bad(
                    "template_hash",
                    format!(
                        "{} bytes where earlier lines have {len}",
                        entry.template_hash.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        entries.push(entry);
    }
    let template_hash = match hash_len {
        None | Some(20) => TemplateHash::Known(HashAlg::Sha1),
        Some(len) => {
            let candidate = HashAlg::ALL.into_iter().find(|alg| alg.digest_len() == len);
            let sample = entries.iter().find(|e| !e.is_violation());
            match (candidate, sample) {
                (Some(alg), Some(entry)) if alg.digest(&entry.hashed) == *entry.template_hash => {
                    TemplateHash::Known(alg)
                }
                (Some(alg), None) => TemplateHash::Known(alg),
                _ => TemplateHash::Unknown(len),
            }
        }
    };
    Ok(MeasurementList {
        format: Format::Ascii,
        template_hash,
        entries,
        incomplete_tail: None,
    })
}

fn line_of(data: &[u8], offset: usize) -> usize {
    data.get(..offset)
        .map_or(0, |d| d.iter().filter(|b| **b == b'\n').count())
        + 1
}

type LineError = (&'static str, String);

fn parse_line(line: &str, index: u64, line_number: usize) -> Result<Entry<'static>, LineError> {
    let mut parts = line.splitn(4, ' ');
    let pcr = parts.next().unwrap_or_default();
    let pcr: u32 = pcr
        .parse()
        .ok()
        .filter(|p| *p <= 23)
        .ok_or_else(|| ("pcr", format!("{pcr:?} is not a PCR index 0..=23")))?;
    let hash_hex = parts
        .next()
        .ok_or(("template_hash", "missing".to_owned()))?;
    let template_hash = decode_hex("template_hash", hash_hex)?;
    if template_hash.is_empty() || template_hash.len() > 64 {
        return Err(("template_hash", format!("{} bytes", template_hash.len())));
    }
    let template = parts
        .next()
        .filter(|t| !t.is_empty() && t.len() <= crate::list::MAX_TEMPLATE_NAME)
        .ok_or(("template_name", "missing".to_owned()))?
        .to_owned();
    let fields = parts.next().unwrap_or_default();
    let hashed = match template.as_str() {
        "ima" => {
            let (digest, name) = fields
                .split_once(' ')
                .ok_or(("file_name", "missing".to_owned()))?;
            let digest = decode_hex("digest", digest)?;
            if digest.len() != 20 || name.len() >= IMA_NAME_FIELD {
                return Err((
                    "digest",
                    "the ima template holds a SHA-1 digest and a name of under 256 bytes".into(),
                ));
            }
            ima_template_hashed(&digest, name.as_bytes())
        }
        "ima-ng" | "ima-ngv2" => {
            let (digest, name) = fields
                .split_once(' ')
                .ok_or(("file_name", "missing".to_owned()))?;
            let mut out = Vec::new();
            push_field(&mut out, &digest_field(digest)?);
            push_field(&mut out, &name_field(name));
            out
        }
        "ima-sig" | "ima-sigv2" => {
            let (digest, rest) = fields
                .split_once(' ')
                .ok_or(("file_name", "missing".to_owned()))?;
            let (name, signature) = split_signature(rest);
            let mut out = Vec::new();
            push_field(&mut out, &digest_field(digest)?);
            push_field(&mut out, &name_field(name));
            push_field(&mut out, &signature);
            out
        }
        "ima-buf" => {
            let (digest, rest) = fields
                .split_once(' ')
                .ok_or(("name", "missing".to_owned()))?;
            let (name, buffer) = rest.rsplit_once(' ').ok_or(("buf", "missing".to_owned()))?;
            let mut out = Vec::new();
            push_field(&mut out, &digest_field(digest)?);
            push_field(&mut out, &name_field(name));
            push_field(&mut out, &decode_hex("buf", buffer)?);
            out
        }
        other => {
            return Err((
                "template_name",
                format!(
                    "template {other:?} is not readable from an ASCII list; send the binary list"
                ),
            ));
        }
    };
    Ok(Entry {
        index,
        location: Location::Line(line_number),
        pcr,
        template_hash: Cow::Owned(template_hash),
        template: Cow::Owned(template),
        hashed: Cow::Owned(hashed),
    })
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, LineError> {
    hex::decode(text).map_err(|e| (field, format!("{text:?} is not hex: {e}")))
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

/// `sha256:ab…` (or `ima:sha256:ab…`) as the d-ng field: the prefix, `:`, a NUL, the digest.
fn digest_field(text: &str) -> Result<Vec<u8>, LineError> {
    let (prefix, digest) = text
        .rsplit_once(':')
        .ok_or(("digest", format!("{text:?} has no algorithm prefix")))?;
    let mut out = Vec::with_capacity(prefix.len() + 2 + digest.len() / 2);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b":\0");
    out.extend_from_slice(&decode_hex("digest", digest)?);
    Ok(out)
}

/// The n-ng field: the name and its terminating NUL.
fn name_field(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out
}

/// An `ima-sig` line ends with the signature in hex when the file had one: an IMA digital
/// signature starts with type 3 (`03…`).
fn split_signature(rest: &str) -> (&str, Vec<u8>) {
    if let Some((name, last)) = rest.rsplit_once(' ')
        && last.len() >= 18
        && last.starts_with("03")
        && let Ok(signature) = hex::decode(last)
    {
        return (name, signature);
    }
    // The kernel writes the field separator even when the signature field is empty.
    (rest.strip_suffix(' ').unwrap_or(rest), Vec::new())
}
