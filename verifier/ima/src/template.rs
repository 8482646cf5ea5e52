//! What an entry says, field by field: the file (or buffer) measured, its digest and
//! algorithm, and its signature when the template carries one. Decoded from the template
//! data the template hash covers, for every template the kernel defines.

use serde::Serialize;

use crate::error::TemplateError;
use crate::list::{Entry, IMA_NAME_FIELD};

/// The fields of the templates Vigil reads, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `d-ng`: `<alg>:\0<digest>`.
    DigestNg,
    /// `d-ngv2`: `<type>:<alg>:\0<digest>`.
    DigestNgV2,
    /// `n-ng`: the name with its NUL.
    NameNg,
    /// `sig`: the file's IMA signature (may be empty).
    Sig,
    /// `buf`: the measured buffer (ima-buf).
    Buf,
    /// `d-modsig` and `modsig`: an appended module signature and the digest it covers.
    DigestModsig,
    Modsig,
    /// Anything else (evm-sig's xattrs, uid, gid, mode): kept opaque.
    Opaque(&'static str),
}

fn fields_of(template: &str) -> Option<&'static [Field]> {
    use Field::*;
    Some(match template {
        "ima-ng" => &[DigestNg, NameNg],
        "ima-ngv2" => &[DigestNgV2, NameNg],
        "ima-sig" => &[DigestNg, NameNg, Sig],
        "ima-sigv2" => &[DigestNgV2, NameNg, Sig],
        "ima-buf" => &[DigestNg, NameNg, Buf],
        "ima-modsig" => &[DigestNg, NameNg, Sig, DigestModsig, Modsig],
        "evm-sig" => &[
            DigestNg,
            NameNg,
            Opaque("evmsig"),
            Opaque("xattrnames"),
            Opaque("xattrlengths"),
            Opaque("xattrvalues"),
            Opaque("iuid"),
            Opaque("igid"),
            Opaque("imode"),
        ],
        _ => return None,
    })
}

/// A file measurement, or a buffer (`ima-buf`: keys loaded into a keyring, the kexec command
/// line, device-mapper tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Buffer,
}

/// What one entry measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measurement {
    pub template: String,
    pub kind: Kind,
    /// The file path, or the buffer's name (a keyring, `kexec-cmdline`). Bytes that are not
    /// UTF-8 are shown as `\xNN`.
    pub name: String,
    /// The digest algorithm as the kernel names it (`sha256`, `md5`, `sm3_256`, …).
    pub algorithm: String,
    /// `ima` or `verity` for ima-ngv2/ima-sigv2 lists; None otherwise.
    pub digest_type: Option<String>,
    #[serde(with = "hex_bytes")]
    pub digest: Vec<u8>,
    /// The file's IMA signature (`security.ima`), when the template carries a non-empty one.
    #[serde(with = "hex_option", skip_serializing_if = "Option::is_none")]
    pub signature: Option<Vec<u8>>,
    /// The measured buffer (`ima-buf`).
    #[serde(with = "hex_option", skip_serializing_if = "Option::is_none")]
    pub buffer: Option<Vec<u8>>,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
}

mod hex_option {
    #[allow(clippy::ref_option)]
    pub fn serialize<S: serde::Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
}

/// Decodes what `entry` measured. Templates Vigil does not know are an error naming them:
/// an entry nobody can interpret must not pass as harmless.
pub fn decode(entry: &Entry<'_>) -> Result<Measurement, TemplateError> {
    let template = entry.template.as_ref();
    let error = |field: &'static str, reason: String| TemplateError {
        template: template.to_owned(),
        field,
        reason,
    };
    if template == "ima" {
        let data = entry.hashed.as_ref();
        let (digest, name) = (data.get(..20), data.get(20..20 + IMA_NAME_FIELD));
        let (Some(digest), Some(name)) = (digest, name) else {
            return Err(error("d", "shorter than a digest and a name".into()));
        };
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Measurement {
            template: template.to_owned(),
            kind: Kind::File,
            name: printable(name),
            algorithm: "sha1".into(),
            digest_type: None,
            digest: digest.to_vec(),
            signature: None,
            buffer: None,
        });
    }
    let fields = fields_of(template)
        .ok_or_else(|| error("template", "not a template Vigil can read".into()))?;
    let mut data = entry.hashed.as_ref();
    let mut measurement = Measurement {
        template: template.to_owned(),
        kind: Kind::File,
        name: String::new(),
        algorithm: String::new(),
        digest_type: None,
        digest: Vec::new(),
        signature: None,
        buffer: None,
    };
    for field in fields {
        let name = field_name(*field);
        let len_bytes = data.get(..4).ok_or_else(|| error(name, "missing".into()))?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(len_bytes);
        let len = u32::from_le_bytes(raw) as usize;
        let value = data
            .get(4..4usize.saturating_add(len))
            .ok_or_else(|| error(name, format!("{len} bytes announced, fewer present")))?;
        data = data.get(4 + len..).unwrap_or_default();
        match field {
            Field::DigestNg | Field::DigestNgV2 => {
                let (prefix, digest) = split_digest(value)
                    .ok_or_else(|| error(name, "no `<alg>:\\0` prefix".into()))?;
                match (field, prefix.split_once(':')) {
                    (Field::DigestNgV2, Some((kind, alg))) => {
                        measurement.digest_type = Some(kind.to_owned());
                        measurement.algorithm = alg.to_owned();
                    }
                    (Field::DigestNgV2, None) => {
                        return Err(error(name, "no `<type>:` prefix".into()));
                    }
                    _ => measurement.algorithm = prefix.to_owned(),
                }
                measurement.digest = digest.to_vec();
            }
            Field::NameNg => {
                let name = value.strip_suffix(&[0]).unwrap_or(value);
                measurement.name = printable(name);
            }
            Field::Sig => {
                measurement.signature = (!value.is_empty()).then(|| value.to_vec());
            }
            Field::Buf => {
                measurement.kind = Kind::Buffer;
                measurement.buffer = Some(value.to_vec());
            }
            Field::DigestModsig | Field::Modsig | Field::Opaque(_) => {}
        }
    }
    if !data.is_empty() {
        return Err(error(
            "template_data",
            format!("{} bytes after the last field", data.len()),
        ));
    }
    Ok(measurement)
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::DigestNg => "d-ng",
        Field::DigestNgV2 => "d-ngv2",
        Field::NameNg => "n-ng",
        Field::Sig => "sig",
        Field::Buf => "buf",
        Field::DigestModsig => "d-modsig",
        Field::Modsig => "modsig",
        Field::Opaque(name) => name,
    }
}

/// `sha256:\0<digest>` → ("sha256", digest).
fn split_digest(value: &[u8]) -> Option<(&str, &[u8])> {
    let nul = value.iter().position(|b| *b == 0)?;
    let prefix = value.get(..nul)?.strip_suffix(b":")?;
    let prefix = std::str::from_utf8(prefix).ok()?;
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some((prefix, value.get(nul + 1..)?))
}

/// Bytes as text, with anything that is not printable UTF-8 escaped as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => {
            let mut out = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() {
                        out.extend(c.escape_default());
                    } else {
                        out.push(c);
                    }
                }
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}
