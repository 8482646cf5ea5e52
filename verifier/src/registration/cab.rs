//! Microsoft Cabinet files (MS-CAB), enough to read Microsoft's `TrustedTpm.cab`: the TPM
//! vendor root and intermediate CA certificates that operators download themselves and import
//! with `vigil certs import-tpm-cab`. Uncompressed and MSZIP folders; one cabinet (no sets).
//!
//! Every count, offset and size is checked against the bytes present and against limits (a
//! cabinet is untrusted input until its certificates are validated); file names are made
//! relative and free of `..` before they touch a file system.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Largest cabinet read (TrustedTpm.cab is a few hundred KiB).
pub const MAX_CABINET_BYTES: usize = 64 * 1024 * 1024;
/// Most files in a cabinet.
pub const MAX_FILES: usize = 10_000;
/// Most bytes all folders may expand to (a decompression-bomb guard).
pub const MAX_UNCOMPRESSED_BYTES: usize = 256 * 1024 * 1024;
/// An MSZIP block expands to at most 32 KiB.
const MSZIP_BLOCK: usize = 32 * 1024;

const FLAG_PREV_CABINET: u16 = 0x0001;
const FLAG_NEXT_CABINET: u16 = 0x0002;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;
const ATTRIBUTE_NAME_IS_UTF8: u16 = 0x0080;
const COMPRESSION_NONE: u16 = 0;
const COMPRESSION_MSZIP: u16 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CabError {
    #[error("not a cabinet: {0}")]
    NotACabinet(String),
    #[error("{structure} at offset {offset}: {reason}")]
    Malformed {
        structure: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("folder {folder}: {reason}")]
    Folder { folder: usize, reason: String },
    #[error("file {file} ({name}): {reason}")]
    File {
        file: usize,
        name: String,
        reason: String,
    },
    #[error("{0}")]
    Limit(String),
}

/// One file extracted from a cabinet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabFile {
    /// Relative, `/`-separated, without `.`/`..` components.
    pub name: String,
    pub data: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    structure: &'static str,
}

impl<'a> Reader<'a> {
    fn at(bytes: &'a [u8], offset: usize, structure: &'static str) -> Self {
        Reader {
            bytes,
            offset,
            structure,
        }
    }

    fn error(&self, reason: impl Into<String>) -> CabError {
        CabError::Malformed {
            structure: self.structure,
            offset: self.offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], CabError> {
        let end = self
            .offset
            .checked_add(count)
            .ok_or_else(|| self.error("length overflows"))?;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or_else(|| self.error(format!("{count} bytes needed, the cabinet ends")))?;
        self.offset = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, CabError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self) -> Result<u16, CabError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CabError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string of at most 256 bytes.
    fn c_string(&mut self) -> Result<&'a [u8], CabError> {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        let length = rest
            .iter()
            .take(257)
            .position(|b| *b == 0)
            .ok_or_else(|| self.error("string without NUL within 256 bytes"))?;
        let text = self.take(length)?;
        self.take(1)?;
        Ok(text)
    }
}

struct Folder {
    first_data: usize,
    blocks: u16,
    compression: u16,
}

/// Extracts every file of the cabinet `bytes`.
pub fn read_cabinet(bytes: &[u8]) -> Result<Vec<CabFile>, CabError> {
    if bytes.len() > MAX_CABINET_BYTES {
        return Err(CabError::Limit(format!(
            "{} bytes is over the {MAX_CABINET_BYTES}-byte cabinet limit",
            bytes.len()
        )));
    }
    let mut header = Reader::at(bytes, 0, "CFHEADER");
    if header.take(4).ok() != Some(b"MSCF".as_slice()) {
        return Err(CabError::NotACabinet("no MSCF signature".into()));
    }
    header.u32()?;
    let declared = header.u32()? as usize;
    if declared > bytes.len() {
        return Err(header.error(format!(
            "cbCabinet says {declared} bytes, the file has {}",
            bytes.len()
        )));
    }
    header.u32()?;
    let files_offset = header.u32()? as usize;
    header.u32()?;
    let (minor, major) = (header.u8()?, header.u8()?);
    if major != 1 {
        return Err(header.error(format!("version {major}.{minor} (only 1.x exists)")));
    }
    let folder_count = usize::from(header.u16()?);
    let file_count = usize::from(header.u16()?);
    let flags = header.u16()?;
    header.u16()?; // setID
    header.u16()?; // iCabinet
    if flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET) != 0 {
        return Err(header.error("part of a multi-cabinet set (not supported)"));
    }
    let (folder_reserve, data_reserve) = if flags & FLAG_RESERVE_PRESENT != 0 {
        let header_reserve = usize::from(header.u16()?);
        let folder_reserve = usize::from(header.u8()?);
        let data_reserve = usize::from(header.u8()?);
        header.take(header_reserve)?;
        (folder_reserve, data_reserve)
    } else {
        (0, 0)
    };
    if file_count > MAX_FILES {
        return Err(CabError::Limit(format!(
            "{file_count} files (at most {MAX_FILES})"
        )));
    }

    let mut folders = Vec::with_capacity(folder_count);
    let mut folder_reader = Reader::at(bytes, header.offset, "CFFOLDER");
    for _ in 0..folder_count {
        let first_data = folder_reader.u32()? as usize;
        let blocks = folder_reader.u16()?;
        let compression = folder_reader.u16()?;
        folder_reader.take(folder_reserve)?;
        folders.push(Folder {
            first_data,
            blocks,
            compression,
        });
    }

    let mut expanded = Vec::with_capacity(folders.len());
    let mut total = 0usize;
    for (index, folder) in folders.iter().enumerate() {
        let data = expand_folder(bytes, folder, data_reserve, &mut total).map_err(|reason| {
            CabError::Folder {
                folder: index,
                reason,
            }
        })?;
        expanded.push(data);
    }

    let mut files = Vec::with_capacity(file_count);
    let mut file_reader = Reader::at(bytes, files_offset, "CFFILE");
    for index in 0..file_count {
        let size = file_reader.u32()? as usize;
        let offset = file_reader.u32()? as usize;
        let folder = usize::from(file_reader.u16()?);
        file_reader.u16()?; // date
        file_reader.u16()?; // time
        let attributes = file_reader.u16()?;
        let raw_name = file_reader.c_string()?;
        let name = if attributes & ATTRIBUTE_NAME_IS_UTF8 != 0 {
            String::from_utf8(raw_name.to_vec())
                .map_err(|_| file_reader.error("name is not UTF-8"))?
        } else {
            raw_name.iter().map(|b| char::from(*b)).collect()
        };
        let file_error = |reason: String| CabError::File {
            file: index,
            name: name.clone(),
            reason,
        };
        let safe_name = sanitise(&name).map_err(file_error)?;
        let data = expanded
            .get(folder)
            .ok_or_else(|| file_error(format!("folder {folder} does not exist")))?;
        let end = offset
            .checked_add(size)
            .ok_or_else(|| file_error("size overflows".into()))?;
        let content = data.get(offset..end).ok_or_else(|| {
            file_error(format!(
                "bytes {offset}..{end} are outside folder {folder} ({} bytes)",
                data.len()
            ))
        })?;
        files.push(CabFile {
            name: safe_name,
            data: content.to_vec(),
        });
    }
    Ok(files)
}

/// The uncompressed bytes of one folder, block by block.
fn expand_folder(
    bytes: &[u8],
    folder: &Folder,
    data_reserve: usize,
    total: &mut usize,
) -> Result<Vec<u8>, String> {
    if !matches!(
        folder.compression & 0x000f,
        COMPRESSION_NONE | COMPRESSION_MSZIP
    ) {
        return Err(format!(
            "compression type {:#06x} is not supported (only none and MSZIP)",
            folder.compression
        ));
    }
    let mszip = folder.compression & 0x000f == COMPRESSION_MSZIP;
    let mut out: Vec<u8> = Vec::new();
    let mut reader = Reader::at(bytes, folder.first_data, "CFDATA");
    for block in 0..folder.blocks {
        let block_offset = reader.offset;
        let stored_checksum = reader.u32().map_err(|e| e.to_string())?;
        let header_fields = reader.take(4).map_err(|e| e.to_string())?;
        let compressed = usize::from(u16::from_le_bytes([header_fields[0], header_fields[1]]));
        let uncompressed = usize::from(u16::from_le_bytes([header_fields[2], header_fields[3]]));
        let reserve = reader.take(data_reserve).map_err(|e| e.to_string())?;
        let data = reader.take(compressed).map_err(|e| e.to_string())?;
        let at = |reason: String| format!("block {block} at offset {block_offset}: {reason}");
        if stored_checksum != 0 {
            let computed = checksum(header_fields, checksum(reserve, checksum(data, 0)));
            if computed != stored_checksum {
                return Err(at(format!(
                    "checksum {computed:#010x} does not match the stored {stored_checksum:#010x}"
                )));
            }
        }
        *total = total.saturating_add(uncompressed);
        if *total > MAX_UNCOMPRESSED_BYTES {
            return Err(format!(
                "expands beyond the {MAX_UNCOMPRESSED_BYTES}-byte limit"
            ));
        }
        if !mszip {
            if compressed != uncompressed {
                return Err(at(format!(
                    "uncompressed block of {compressed} bytes says it expands to {uncompressed}"
                )));
            }
            out.extend_from_slice(data);
            continue;
        }
        if uncompressed > MSZIP_BLOCK {
            return Err(at(format!(
                "MSZIP block expands to {uncompressed} bytes (at most 32 KiB)"
            )));
        }
        let deflated = data
            .strip_prefix(b"CK")
            .ok_or_else(|| at("MSZIP block without its CK signature".into()))?;
        // Each block is a complete deflate stream whose back-references may reach into the
        // previous blocks' output: the whole folder so far is the history window.
        let start = out.len();
        out.resize(start + uncompressed, 0);
        let mut state = DecompressorOxide::new();
        let (status, _, written) = decompress(
            &mut state,
            deflated,
            &mut out,
            start,
            inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        if status != TINFLStatus::Done || written != uncompressed {
            return Err(at(format!(
                "MSZIP data does not inflate to {uncompressed} bytes ({status:?}, {written} written)"
            )));
        }
    }
    Ok(out)
}

/// The CFDATA checksum (MS-CAB 2.2.5): little-endian 32-bit words XORed, the 1-3 bytes left
/// over folded in most significant first.
pub fn checksum(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        sum ^= u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    }
    let mut tail = 0u32;
    for byte in words.remainder() {
        tail = (tail << 8) | u32::from(*byte);
    }
    sum ^ tail
}

/// A relative `/`-separated path without empty, `.` or `..` components.
fn sanitise(name: &str) -> Result<String, String> {
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') || unified.contains(':') {
        return Err("absolute path".into());
    }
    let parts: Vec<&str> = unified
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return Err("empty name".into());
    }
    if parts
        .iter()
        .any(|p| *p == ".." || p.chars().any(char::is_control))
    {
        return Err("name escapes the output directory".into());
    }
    Ok(parts.join("/"))
}

/// What an import did, file by file.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    /// Files written, with the number of certificates each holds.
    pub imported: Vec<(String, usize)>,
    /// Files left out, and why.
    pub skipped: Vec<(String, String)>,
}

/// Writes the certificate files of a trust cabinet (TrustedTpm.cab) below `out_dir`, keeping
/// its vendor folders, for `vigil serve --ek-roots`. Files that hold no certificate are
/// skipped and listed; an existing file with other content is refused unless `force`.
pub fn import_trust_cabinet(
    bytes: &[u8],
    out_dir: &std::path::Path,
    force: bool,
) -> Result<ImportReport, String> {
    let files = read_cabinet(bytes).map_err(|e| e.to_string())?;
    let mut report = ImportReport::default();
    for file in files {
        let certificates = super::trust::certificates_in(&file.data)
            .iter()
            .filter(|der| {
                use x509_parser::prelude::FromDer;
                x509_parser::certificate::X509Certificate::from_der(der).is_ok()
            })
            .count();
        if certificates == 0 {
            report
                .skipped
                .push((file.name, "holds no X.509 certificate".into()));
            continue;
        }
        let mut path = out_dir.to_path_buf();
        for part in file.name.split('/') {
            path.push(part);
        }
        // The trust directory loader reads .pem/.crt/.cer/.der; keep that visible.
        let known = ["pem", "crt", "cer", "der"];
        if !path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| known.contains(&e.to_ascii_lowercase().as_str()))
        {
            path.set_extension("cer");
        }
        if !force
            && let Ok(existing) = std::fs::read(&path)
            && existing != file.data
        {
            return Err(format!(
                "{} exists with other content (use --force to replace it)",
                path.display()
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &file.data).map_err(|e| format!("{}: {e}", path.display()))?;
        report.imported.push((file.name, certificates));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_folds_words_and_the_tail() {
        assert_eq!(checksum(&[], 7), 7);
        assert_eq!(checksum(&[1, 0, 0, 0], 0), 1);
        assert_eq!(checksum(&[1, 0, 0, 0, 2, 0, 0, 0], 0), 3);
        // Tail bytes: first byte most significant.
        assert_eq!(checksum(&[0xaa, 0xbb], 0), 0xaabb);
        assert_eq!(checksum(&[0xaa, 0xbb, 0xcc], 0), 0x00aa_bbcc);
    }

    #[test]
    fn names_stay_inside_the_output_directory() {
        assert_eq!(
            sanitise("Infineon\\RootCA\\a.cer").unwrap(),
            "Infineon/RootCA/a.cer"
        );
        assert_eq!(sanitise("./x//y.cer").unwrap(), "x/y.cer");
        for bad in ["..\\x", "a/../../b", "/etc/passwd", "C:\\x", "", "a/\u{1}"] {
            assert!(sanitise(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        assert!(matches!(read_cabinet(b""), Err(CabError::NotACabinet(_))));
        assert!(matches!(
            read_cabinet(b"MSCF"),
            Err(CabError::Malformed { .. })
        ));
        let mut header = b"MSCF".to_vec();
        header.extend([0u8; 32]);
        assert!(read_cabinet(&header).is_err());
    }
}
