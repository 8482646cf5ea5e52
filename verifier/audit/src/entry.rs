//! Audit entries and their canonical byte encoding (the bytes that get hashed).
//!
//! # Encoding, version 1
//!
//! Every integer is big-endian. Lengths count bytes.
//!
//! | field   | bytes                                                         |
//! |---------|---------------------------------------------------------------|
//! | version | `u8` = `0x01`                                                 |
//! | kind    | `u32` length, then UTF-8, 1..=128 bytes of `[a-z0-9._-]`      |
//! | time    | `i64`, Unix seconds                                           |
//! | subject | `u32` length, then UTF-8, 0..=1024 bytes                      |
//! | body    | `u32` length, then canonical JSON, at most 1 MiB              |
//!
//! Nothing may follow the body. *Canonical JSON* here means: no whitespace;
//! object members sorted by the UTF-8 bytes of their keys; strings escape
//! only `"` as `\"`, `\` as `\\`, and control characters below U+0020 as
//! `\b \f \n \r \t` or `\u00xx` (lowercase hex), everything else is written
//! as raw UTF-8; numbers must be integers representable as `i64` or `u64`,
//! written in plain decimal (floats are refused, so no two implementations
//! can disagree on a float's digits); nesting depth at most 64.
//!
//! The leaf hash of an entry is `SHA-256(0x00 || encoding)` (RFC 9162). An
//! auditor with only an exported bundle can re-derive every leaf from the
//! stored encodings, and [`AuditEntry::decode`] refuses any encoding that
//! would not be reproduced byte for byte by [`AuditEntry::encode`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version byte of the encoding described in the module docs.
pub const ENCODING_VERSION: u8 = 1;
pub const MAX_KIND_BYTES: usize = 128;
pub const MAX_SUBJECT_BYTES: usize = 1024;
pub const MAX_BODY_BYTES: usize = 1 << 20;
pub const MAX_BODY_DEPTH: usize = 64;
/// Upper bound of an encoded entry.
pub const MAX_ENTRY_BYTES: usize =
    1 + 4 + MAX_KIND_BYTES + 8 + 4 + MAX_SUBJECT_BYTES + 4 + MAX_BODY_BYTES;

/// Prefix of a blob reference inside an entry body: `"sha256:<64 lowercase hex>"`.
pub const BLOB_REF_PREFIX: &str = "sha256:";

/// One audit record. `kind` is open-ended ("verdict", "node.registered",
/// "node.removed", "baseline.version", "key.rotation", …): new kinds need no
/// schema change. `subject` names what the record is about (node id,
/// baseline id). Evidence is referenced from `body` by blob digest strings
/// (`"sha256:<hex>"`), see [`crate::put_blob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub kind: String,
    pub time: i64,
    pub subject: String,
    pub body: Value,
}

/// Why an entry could not be encoded or an encoding could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("entry encoding truncated in `{field}` at byte offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    #[error("entry encoding version {found} is not supported (expected {ENCODING_VERSION})")]
    UnsupportedVersion { found: u8 },
    #[error("entry field `{field}` is {len} bytes, limit {max}")]
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("entry field `{field}` at byte offset {offset} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str, offset: usize },
    #[error("entry kind {kind:?} is invalid: {reason}")]
    InvalidKind { kind: String, reason: &'static str },
    #[error("entry body at byte offset {offset} is not JSON: {reason}")]
    BodyJson { offset: usize, reason: String },
    #[error("entry body contains a non-integer number {number} (only i64/u64 are allowed)")]
    NonIntegerNumber { number: String },
    #[error("entry body nests deeper than {MAX_BODY_DEPTH}")]
    TooDeep,
    #[error("entry body at byte offset {offset} is not in canonical JSON form")]
    NonCanonicalBody { offset: usize },
    #[error("entry encoding has {count} trailing bytes at byte offset {offset}")]
    TrailingBytes { offset: usize, count: usize },
}

impl AuditEntry {
    /// A verdict entry's `(verdict_id, evidence digest)`: how a store links its verdict rows
    /// to the evidence blobs the log names. `None` for other entries, or a verdict entry
    /// without both (older entries).
    pub fn verdict_evidence(&self) -> Option<(i64, &str)> {
        if self.kind != "verdict" {
            return None;
        }
        let id = self.body["verdict_id"].as_i64()?;
        let digest = self.body["evidence"]
            .as_str()
            .and_then(|e| e.strip_prefix("sha256:"))
            .filter(|d| crate::blob::is_digest(d))?;
        Some((id, digest))
    }

    /// The canonical encoding (module docs); this is what the leaf hash covers.
    pub fn encode(&self) -> Result<Vec<u8>, EncodingError> {
        let body = canonical_json(&self.body)?;
        Self::encode_parts(&self.kind, self.time, &self.subject, &body)
    }

    /// The encoding of an entry whose body is already canonical JSON (from [`canonical_json`]),
    /// so a caller can do the costly part before it holds the log. `canonical_body` must be
    /// canonical: [`AuditEntry::decode`] refuses the entry otherwise.
    pub fn encode_parts(
        kind: &str,
        time: i64,
        subject: &str,
        canonical_body: &[u8],
    ) -> Result<Vec<u8>, EncodingError> {
        validate_kind(kind)?;
        check_len("subject", subject.len(), MAX_SUBJECT_BYTES)?;
        check_len("body", canonical_body.len(), MAX_BODY_BYTES)?;
        let mut out = Vec::with_capacity(21 + kind.len() + subject.len() + canonical_body.len());
        out.push(ENCODING_VERSION);
        push_field(&mut out, kind.as_bytes());
        out.extend_from_slice(&time.to_be_bytes());
        push_field(&mut out, subject.as_bytes());
        push_field(&mut out, canonical_body);
        Ok(out)
    }

    /// Parses an encoding, refusing anything [`AuditEntry::encode`] would not
    /// have produced.
    pub fn decode(bytes: &[u8]) -> Result<Self, EncodingError> {
        check_len("entry", bytes.len(), MAX_ENTRY_BYTES)?;
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8("version")?;
        if version != ENCODING_VERSION {
            return Err(EncodingError::UnsupportedVersion { found: version });
        }
        let kind = r.string("kind", MAX_KIND_BYTES)?;
        validate_kind(&kind)?;
        let time = i64::from_be_bytes(r.array::<8>("time")?);
        let subject = r.string("subject", MAX_SUBJECT_BYTES)?;
        let body_offset = r.pos + 4;
        let body_bytes = r.field("body", MAX_BODY_BYTES)?;
        let body: Value =
            serde_json::from_slice(body_bytes).map_err(|e| EncodingError::BodyJson {
                offset: body_offset,
                reason: e.to_string(),
            })?;
        if canonical_json(&body)? != body_bytes {
            return Err(EncodingError::NonCanonicalBody {
                offset: body_offset,
            });
        }
        if r.pos != bytes.len() {
            return Err(EncodingError::TrailingBytes {
                offset: r.pos,
                count: bytes.len() - r.pos,
            });
        }
        Ok(AuditEntry {
            kind,
            time,
            subject,
            body,
        })
    }

    /// Blob digests (hex, without the `sha256:` prefix) referenced anywhere
    /// in the body, in document order, duplicates removed.
    pub fn blob_refs(&self) -> Vec<String> {
        let mut found = Vec::new();
        collect_blob_refs(&self.body, &mut found);
        found
    }
}

fn collect_blob_refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(hex) = s.strip_prefix(BLOB_REF_PREFIX)
                && crate::blob::is_digest(hex)
                && !found.iter().any(|f| f == hex)
            {
                found.push(hex.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_blob_refs(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_blob_refs(v, found)),
        _ => {}
    }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), EncodingError> {
    if len > max {
        return Err(EncodingError::TooLarge { field, len, max });
    }
    Ok(())
}

fn validate_kind(kind: &str) -> Result<(), EncodingError> {
    let invalid = |reason| {
        Err(EncodingError::InvalidKind {
            kind: kind.chars().take(64).collect(),
            reason,
        })
    };
    if kind.is_empty() {
        return invalid("empty");
    }
    if kind.len() > MAX_KIND_BYTES {
        return invalid("longer than 128 bytes");
    }
    if !kind
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return invalid("only [a-z0-9._-] are allowed");
    }
    Ok(())
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths are bounded by the MAX_* limits, far below u32::MAX.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Bounds-checked cursor over an untrusted encoding.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EncodingError> {
        let truncated = EncodingError::Truncated {
            field,
            offset: self.pos,
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EncodingError> {
        let offset = self.pos;
        self.take(N, field)?
            .try_into()
            .map_err(|_| EncodingError::Truncated { field, offset })
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EncodingError> {
        Ok(u8::from_be_bytes(self.array::<1>(field)?))
    }

    fn field(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], EncodingError> {
        let len = u32::from_be_bytes(self.array::<4>(field)?) as usize;
        check_len(field, len, max)?;
        self.take(len, field)
    }

    fn string(&mut self, field: &'static str, max: usize) -> Result<String, EncodingError> {
        let offset = self.pos + 4;
        let bytes = self.field(field, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| EncodingError::InvalidUtf8 { field, offset })
    }
}

/// Canonical JSON as specified in the module docs. Written by hand rather
/// than trusting `serde_json`'s map order, which a `preserve_order` feature
/// enabled elsewhere in the build would silently change.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, EncodingError> {
    let mut out = Vec::new();
    write_canonical(value, 0, &mut out)?;
    check_len("body", out.len(), MAX_BODY_BYTES)?;
    Ok(out)
}

fn write_canonical(value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodingError> {
    if depth > MAX_BODY_DEPTH {
        return Err(EncodingError::TooDeep);
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(EncodingError::NonIntegerNumber {
                    number: n.to_string(),
                });
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, depth + 1, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, depth + 1, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> AuditEntry {
        AuditEntry {
            kind: "verdict".into(),
            time: 1_700_000_000,
            subject: "node-7".into(),
            body: json!({"z": 1, "a": [true, null, "x\n\u{1}é"], "m": {"b": -5, "a": 18446744073709551615u64}}),
        }
    }

    #[test]
    fn encoding_is_documented_layout() {
        let enc = sample().encode().unwrap();
        let mut expected = vec![1u8, 0, 0, 0, 7];
        expected.extend_from_slice(b"verdict");
        expected.extend_from_slice(&1_700_000_000i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"node-7");
        let body = "{\"a\":[true,null,\"x\\n\\u0001\u{e9}\"],\"m\":{\"a\":18446744073709551615,\"b\":-5},\"z\":1}";
        expected.extend_from_slice(&(body.len() as u32).to_be_bytes());
        expected.extend_from_slice(body.as_bytes());
        assert_eq!(enc, expected);
        assert_eq!(AuditEntry::decode(&enc).unwrap(), sample());
    }

    #[test]
    fn decode_rejects_every_truncation_and_trailing_bytes() {
        let enc = sample().encode().unwrap();
        for len in 0..enc.len() {
            assert!(
                AuditEntry::decode(&enc[..len]).is_err(),
                "truncated to {len} accepted"
            );
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(matches!(
            AuditEntry::decode(&long),
            Err(EncodingError::TrailingBytes { count: 1, .. })
        ));
    }

    #[test]
    fn decode_rejects_non_canonical_body_and_bad_fields() {
        let mut e = sample();
        e.body = json!({});
        let mut enc = e.encode().unwrap();
        // Replace "{}" by "{ }" (length 3) - same JSON value, not canonical.
        enc.truncate(enc.len() - 6);
        enc.extend_from_slice(&[0, 0, 0, 3]);
        enc.extend_from_slice(b"{ }");
        assert!(matches!(
            AuditEntry::decode(&enc),
            Err(EncodingError::NonCanonicalBody { .. })
        ));

        let mut bad_version = sample().encode().unwrap();
        bad_version[0] = 2;
        assert_eq!(
            AuditEntry::decode(&bad_version),
            Err(EncodingError::UnsupportedVersion { found: 2 })
        );

        let mut float = sample();
        float.body = json!({"score": 0.5});
        assert!(matches!(
            float.encode(),
            Err(EncodingError::NonIntegerNumber { .. })
        ));

        let mut kind = sample();
        kind.kind = "Verdict".into();
        assert!(matches!(
            kind.encode(),
            Err(EncodingError::InvalidKind { .. })
        ));
        kind.kind = String::new();
        assert!(matches!(
            kind.encode(),
            Err(EncodingError::InvalidKind { .. })
        ));

        let mut huge = sample();
        huge.subject = "s".repeat(MAX_SUBJECT_BYTES + 1);
        assert!(matches!(
            huge.encode(),
            Err(EncodingError::TooLarge {
                field: "subject",
                ..
            })
        ));

        let mut deep = json!(1);
        for _ in 0..(MAX_BODY_DEPTH + 1) {
            deep = json!([deep]);
        }
        let mut deep_entry = sample();
        deep_entry.body = deep;
        assert_eq!(deep_entry.encode(), Err(EncodingError::TooDeep));

        let mut oversized_len = sample().encode().unwrap();
        oversized_len[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            AuditEntry::decode(&oversized_len),
            Err(EncodingError::TooLarge { field: "kind", .. })
        ));
    }

    #[test]
    fn blob_refs_are_found_in_nested_bodies() {
        let d = "ab".repeat(32);
        let e = AuditEntry {
            kind: "verdict".into(),
            time: 0,
            subject: String::new(),
            body: json!({"evidence": [format!("sha256:{d}"), "sha256:nothex"], "x": {"y": format!("sha256:{d}")}}),
        };
        assert_eq!(e.blob_refs(), vec![d]);
    }
}
