//! Reading a measurement list: the kernel's binary format (`binary_runtime_measurements`,
//! and the per-bank `binary_runtime_measurements_<alg>` lists) and its ASCII rendering.
//!
//! Each entry keeps the exact bytes its template hash covers (`hashed`), so replay can check
//! the template hash and compute any bank's digest without knowing the template. Nothing here
//! judges an entry: a parser returns what the list says, or where it stops making sense.

use std::borrow::Cow;

use serde::Serialize;

use crate::error::ParseError;
use crate::hash::HashAlg;

/// Most entries one list may hold (a busy server reaches a few hundred thousand).
pub const MAX_ENTRIES: usize = 4_000_000;
/// Largest list accepted, in bytes.
pub const MAX_LIST_BYTES: usize = 512 * 1024 * 1024;
/// Longest template name (the kernel allows 15 characters).
pub const MAX_TEMPLATE_NAME: usize = 32;
/// Largest template data of one entry (file signatures and key buffers are a few KiB).
pub const MAX_TEMPLATE_DATA: usize = 1024 * 1024;
/// The `ima` template hashes its file name padded with zeros to this length.
pub const IMA_NAME_FIELD: usize = 256;

/// The template hash algorithm of a list: SHA-1 for `binary_runtime_measurements` and most
/// ASCII lists; the bank's algorithm for the per-bank lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum TemplateHash {
    Known(HashAlg),
    /// A hash of this many bytes that Vigil cannot compute or identify (SM3, say): the list
    /// parses, but its template hashes cannot be checked and it cannot be replayed.
    Unknown(usize),
}

impl std::fmt::Display for TemplateHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateHash::Known(alg) => write!(f, "{alg}"),
            TemplateHash::Unknown(len) => write!(f, "unknown {len}-byte hash"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Binary,
    Ascii,
}

/// Where an entry stands in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "in", content = "at")]
pub enum Location {
    Offset(usize),
    Line(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Offset(o) => write!(f, "offset {o}"),
            Location::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Position in the list since boot: the first entry given has `first_index`.
    pub index: u64,
    pub location: Location,
    pub pcr: u32,
    /// As recorded; all zeros marks a violation (extended as all ones).
    pub template_hash: Cow<'a, [u8]>,
    pub template: Cow<'a, str>,
    /// The exact bytes the template hash covers.
    pub hashed: Cow<'a, [u8]>,
}

impl Entry<'_> {
    /// A violation (a file measured while open for writing, say): the kernel records a zero
    /// template hash and extends all ones.
    pub fn is_violation(&self) -> bool {
        self.template_hash.iter().all(|b| *b == 0)
    }
}

/// An incomplete last entry (the list was cut while being copied). It is never replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tail {
    pub offset: usize,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementList<'a> {
    pub format: Format,
    pub template_hash: TemplateHash,
    pub entries: Vec<Entry<'a>>,
    pub incomplete_tail: Option<Tail>,
}

/// Binary or ASCII, from the first byte: an ASCII list starts with the PCR number in decimal,
/// a binary one with a little-endian u32 whose first byte is rarely a digit (PCR 10 is 0x0a).
pub fn detect_format(data: &[u8]) -> Format {
    match data.first() {
        Some(b) if b.is_ascii_digit() => Format::Ascii,
        _ => Format::Binary,
    }
}

/// Parses `data` in whichever format it is. `binary_hash` is the template hash algorithm of a
/// binary list (SHA-1 unless it is a per-bank list); ASCII lists show theirs by length.
pub fn parse(
    data: &[u8],
    binary_hash: HashAlg,
    first_index: u64,
) -> Result<MeasurementList<'_>, ParseError> {
    match detect_format(data) {
        Format::Binary => parse_binary(data, binary_hash, first_index),
        Format::Ascii => crate::ascii::parse_ascii(data, first_index),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    entry: u64,
    entry_start: usize,
}

/// Why a read stopped: the list ended mid-entry, or a field is malformed.
enum Stop {
    Truncated,
    Bad(&'static str, String),
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Stop> {
        let end = self.at.checked_add(len).ok_or(Stop::Truncated)?;
        let bytes = self.data.get(self.at..end).ok_or(Stop::Truncated)?;
        self.at = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let bytes = self.take(4)?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(raw))
    }

    fn length(&mut self, field: &'static str, limit: usize) -> Result<usize, Stop> {
        let len = self.u32()? as usize;
        if len > limit {
            return Err(Stop::Bad(
                field,
                format!("{len} bytes is over the {limit}-byte limit"),
            ));
        }
        Ok(len)
    }
}

/// Parses the kernel's binary list. Per entry: PCR (u32 LE), template hash, template name
/// length and name, then for every template but `ima` the template data length and data;
/// the `ima` template writes its 20-byte digest and a length-prefixed name instead.
pub fn parse_binary(
    data: &[u8],
    template_hash: HashAlg,
    first_index: u64,
) -> Result<MeasurementList<'_>, ParseError> {
    if data.len() > MAX_LIST_BYTES {
        return Err(ParseError::TooLarge {
            size: data.len(),
            limit: MAX_LIST_BYTES,
        });
    }
    let mut reader = Reader {
        data,
        at: 0,
        entry: first_index,
        entry_start: 0,
    };
    let mut entries = Vec::new();
    let mut incomplete_tail = None;
    while reader.at < data.len() {
        if entries.len() >= MAX_ENTRIES {
            return Err(ParseError::TooManyEntries { limit: MAX_ENTRIES });
        }
        reader.entry_start = reader.at;
        match read_binary_entry(&mut reader, template_hash) {
            Ok(entry) => entries.push(entry),
            Err(Stop::Truncated) => {
                incomplete_tail = Some(Tail {
                    offset: reader.entry_start,
                    len: data.len() - reader.entry_start,
                });
                break;
            }
            Err(Stop::Bad(field, reason)) => {
                return Err(ParseError::Binary {
                    entry: reader.entry,
                    offset: reader.entry_start,
                    field,
                    reason,
                });
            }
        }
        reader.entry += 1;
    }
    Ok(MeasurementList {
        format: Format::Binary,
        template_hash: TemplateHash::Known(template_hash),
        entries,
        incomplete_tail,
    })
}

fn read_binary_entry<'a>(
    reader: &mut Reader<'a>,
    template_hash: HashAlg,
) -> Result<Entry<'a>, Stop> {
    let pcr = reader.u32()?;
    if pcr > 23 {
        return Err(Stop::Bad(
            "pcr",
            format!("PCR {pcr} does not exist (0..=23)"),
        ));
    }
    let hash = reader.take(template_hash.digest_len())?;
    let name_len = reader.length("template_name", MAX_TEMPLATE_NAME)?;
    if name_len == 0 {
        return Err(Stop::Bad("template_name", "empty".into()));
    }
    let name = reader.take(name_len)?;
    let name = std::str::from_utf8(name)
        .ok()
        .filter(|n| n.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            Stop::Bad(
                "template_name",
                format!("not a template name: {}", hex::encode(name)),
            )
        })?;
    let hashed: Cow<'a, [u8]> = if name == "ima" {
        let digest = reader.take(20)?;
        let file_name_len = reader.length("file_name", IMA_NAME_FIELD - 1)?;
        let file_name = reader.take(file_name_len)?;
        Cow::Owned(ima_template_hashed(digest, file_name))
    } else {
        let len = reader.length("template_data", MAX_TEMPLATE_DATA)?;
        Cow::Borrowed(reader.take(len)?)
    };
    Ok(Entry {
        index: reader.entry,
        location: Location::Offset(reader.entry_start),
        pcr,
        template_hash: Cow::Borrowed(hash),
        template: Cow::Borrowed(name),
        hashed,
    })
}

/// The bytes the `ima` template's hash covers: the SHA-1 file digest, then the file name
/// padded with zeros to 256 bytes.
pub fn ima_template_hashed(digest: &[u8], file_name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(digest.len() + IMA_NAME_FIELD);
    out.extend_from_slice(digest);
    out.extend_from_slice(file_name);
    out.resize(digest.len() + IMA_NAME_FIELD, 0);
    out
}

/// Byte offsets where each complete entry of a binary list starts, and the end of the last
/// complete one. The attester uses this to send only the entries after those already verified.
pub fn binary_entry_offsets(data: &[u8], template_hash: HashAlg) -> (Vec<usize>, usize) {
    let mut reader = Reader {
        data,
        at: 0,
        entry: 0,
        entry_start: 0,
    };
    let mut offsets = Vec::new();
    let mut end = 0;
    while reader.at < data.len() && offsets.len() < MAX_ENTRIES {
        reader.entry_start = reader.at;
        if read_binary_entry(&mut reader, template_hash).is_err() {
            break;
        }
        offsets.push(reader.entry_start);
        end = reader.at;
    }
    (offsets, end)
}
