//! Offline extraction of Microsoft Cabinet (`.cab`) files, in pure Rust.
//!
//! Built for Microsoft's TrustedTpm.cab (TPM vendor CA certificates in
//! per-vendor folders), which operators download themselves: `vigil certs
//! import-tpm-cab` must unpack it without any external tool. Supports the
//! MS-CAB structures CFHEADER (with reserve fields), CFFOLDER, CFFILE and
//! CFDATA, with no compression or MSZIP. Multi-cabinet sets, Quantum and LZX
//! are refused with a typed error.
//!
//! This crate only unpacks: it decides nothing about trust. In particular the
//! Authenticode signature that Microsoft appends after `cbCabinet` is ignored
//! (the bytes after `cbCabinet` are never read); trust in the extracted
//! certificates comes from the operator's choice of roots.

mod checksum;
mod error;
mod folder;
mod names;
mod reader;

pub use checksum::{cfdata_checksum, checksum};
pub use error::CabError;
pub use names::sanitise_name;

use reader::Reader;

/// Resource limits. A cabinet is attacker-shaped input until proven
/// otherwise: these bound memory and time before anything is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabLimits {
    /// Largest cabinet file accepted, in bytes.
    pub max_cabinet_bytes: usize,
    /// Most CFFOLDER entries.
    pub max_folders: usize,
    /// Most CFFILE entries.
    pub max_files: usize,
    /// Largest single extracted file.
    pub max_file_bytes: u64,
    /// Upper bound on all decompressed folder data and, separately, on the sum
    /// of all extracted file sizes (files may overlap in a folder; this stops
    /// a small cabinet expanding into many copies of the same data).
    pub max_total_uncompressed: u64,
    /// Refuse CFDATA blocks whose checksum field is zero ("not computed").
    pub require_checksums: bool,
}

impl Default for CabLimits {
    fn default() -> Self {
        Self {
            max_cabinet_bytes: 64 << 20,
            max_folders: 1024,
            max_files: 10_000,
            max_file_bytes: 64 << 20,
            max_total_uncompressed: 256 << 20,
            require_checksums: false,
        }
    }
}

/// One extracted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabFile {
    /// Sanitised relative path, `/`-separated, never absolute, never `..`.
    pub name: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// Extract every file of a single, self-contained cabinet with default limits.
pub fn read_cabinet(bytes: &[u8]) -> Result<Vec<CabFile>, CabError> {
    read_cabinet_with_limits(bytes, &CabLimits::default())
}

const CFHEADER: &str = "CFHEADER";
const HEADER_FIXED_LEN: usize = 36;
const FLAG_PREV_CABINET: u16 = 0x0001;
const FLAG_NEXT_CABINET: u16 = 0x0002;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;
/// MS-CAB caps the per-cabinet reserve area at 60,000 bytes.
const MAX_HEADER_RESERVE: u16 = 60_000;
/// iFolder values >= this mean "continued from/to another cabinet".
const IFOLD_CONTINUED_FIRST: u16 = 0xFFFD;

/// Header fields the rest of the parse needs.
struct Header {
    cabinet_len: usize,
    files_offset: usize,
    folder_count: usize,
    file_count: usize,
    folder_reserve: usize,
    data_reserve: usize,
    /// Offset of the first CFFOLDER.
    folders_offset: usize,
}

/// Extract every file of a single, self-contained cabinet.
pub fn read_cabinet_with_limits(
    bytes: &[u8],
    limits: &CabLimits,
) -> Result<Vec<CabFile>, CabError> {
    if bytes.len() > limits.max_cabinet_bytes {
        return Err(CabError::InputTooLarge {
            len: bytes.len(),
            max: limits.max_cabinet_bytes,
        });
    }
    let header = parse_header(bytes, limits)?;
    // Everything lives inside cbCabinet; a trailing signature is not ours.
    let cabinet = bytes.get(..header.cabinet_len).unwrap_or_default();

    let folders = parse_folders(cabinet, &header)?;
    let entries = parse_files(cabinet, &header, limits)?;

    let mut total_decompressed = 0u64;
    let mut folder_data = Vec::with_capacity(folders.len());
    for (index, entry) in folders.iter().enumerate() {
        let used = entries.iter().any(|f| f.folder == index);
        if !used {
            // Nothing to extract from it: don't spend time or memory on it.
            folder_data.push(Vec::new());
            continue;
        }
        let data = folder::decode(
            cabinet,
            index,
            entry,
            header.data_reserve,
            limits,
            &mut total_decompressed,
        )?;
        folder_data.push(data);
    }

    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let source = folder_data
            .get(entry.folder)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let end = entry.start + entry.len;
        let data = usize::try_from(entry.start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| source.get(s..e));
        let Some(data) = data else {
            return Err(CabError::FileOutsideFolder {
                file: entry.index,
                name: entry.name,
                offset: entry.offset,
                folder: entry.folder,
                start: entry.start,
                end,
                folder_len: source.len() as u64,
            });
        };
        out.push(CabFile {
            name: entry.name,
            data: data.to_vec(),
        });
    }
    Ok(out)
}

fn parse_header(bytes: &[u8], limits: &CabLimits) -> Result<Header, CabError> {
    let mut r = Reader::at(bytes, 0);
    let signature = r.take(4, CFHEADER, "signature")?;
    if signature != b"MSCF" {
        return Err(CabError::BadSignature {
            found: signature.to_vec(),
        });
    }
    r.u32(CFHEADER, "reserved1")?;
    let cabinet_len_at = r.pos();
    let cabinet_len = r.u32(CFHEADER, "cbCabinet")? as usize;
    r.u32(CFHEADER, "reserved2")?;
    let files_offset = r.u32(CFHEADER, "coffFiles")? as usize;
    r.u32(CFHEADER, "reserved3")?;
    let minor = r.u8(CFHEADER, "versionMinor")?;
    let major = r.u8(CFHEADER, "versionMajor")?;
    let folder_count = usize::from(r.u16(CFHEADER, "cFolders")?);
    let file_count = usize::from(r.u16(CFHEADER, "cFiles")?);
    let flags = r.u16(CFHEADER, "flags")?;
    r.u16(CFHEADER, "setID")?;
    r.u16(CFHEADER, "iCabinet")?;

    if cabinet_len > bytes.len() {
        return Err(CabError::Truncated {
            structure: CFHEADER.into(),
            field: "cbCabinet",
            offset: cabinet_len_at,
            needed: cabinet_len,
        });
    }
    if cabinet_len < HEADER_FIXED_LEN {
        return Err(CabError::BadField {
            structure: CFHEADER.into(),
            field: "cbCabinet",
            offset: cabinet_len_at,
            reason: format!("{cabinet_len} is smaller than the header itself"),
        });
    }
    if major != 1 {
        return Err(CabError::UnsupportedVersion { major, minor });
    }
    if flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET) != 0 {
        return Err(CabError::MultiCabinet { flags });
    }
    if folder_count > limits.max_folders {
        return Err(CabError::LimitExceeded {
            what: "CFHEADER.cFolders",
            value: folder_count as u64,
            max: limits.max_folders as u64,
        });
    }
    if file_count > limits.max_files {
        return Err(CabError::LimitExceeded {
            what: "CFHEADER.cFiles",
            value: file_count as u64,
            max: limits.max_files as u64,
        });
    }

    // Parse the rest inside cbCabinet only.
    let cabinet = bytes.get(..cabinet_len).unwrap_or_default();
    let mut r = Reader::at(cabinet, HEADER_FIXED_LEN);
    let (mut folder_reserve, mut data_reserve) = (0, 0);
    if flags & FLAG_RESERVE_PRESENT != 0 {
        let header_reserve_at = r.pos();
        let header_reserve = r.u16(CFHEADER, "cbCFHeader")?;
        folder_reserve = usize::from(r.u8(CFHEADER, "cbCFFolder")?);
        data_reserve = usize::from(r.u8(CFHEADER, "cbCFData")?);
        if header_reserve > MAX_HEADER_RESERVE {
            return Err(CabError::BadField {
                structure: CFHEADER.into(),
                field: "cbCFHeader",
                offset: header_reserve_at,
                reason: format!(
                    "{header_reserve} exceeds the format's maximum of {MAX_HEADER_RESERVE}"
                ),
            });
        }
        r.take(usize::from(header_reserve), CFHEADER, "abReserve")?;
    }
    Ok(Header {
        cabinet_len,
        files_offset,
        folder_count,
        file_count,
        folder_reserve,
        data_reserve,
        folders_offset: r.pos(),
    })
}

/// A parsed CFFOLDER entry.
pub(crate) struct FolderEntry {
    /// Offset of the entry itself (for error messages).
    pub(crate) offset: usize,
    pub(crate) first_data_offset: usize,
    pub(crate) data_block_count: usize,
    pub(crate) type_compress: u16,
}

fn parse_folders(cabinet: &[u8], header: &Header) -> Result<Vec<FolderEntry>, CabError> {
    let mut r = Reader::at(cabinet, header.folders_offset);
    let mut folders = Vec::with_capacity(header.folder_count);
    for index in 0..header.folder_count {
        let structure = format!("CFFOLDER #{index}");
        let offset = r.pos();
        let first_data_offset = r.u32(&structure, "coffCabStart")? as usize;
        let data_block_count = usize::from(r.u16(&structure, "cCFData")?);
        let type_compress = r.u16(&structure, "typeCompress")?;
        r.take(header.folder_reserve, &structure, "abReserve")?;
        folders.push(FolderEntry {
            offset,
            first_data_offset,
            data_block_count,
            type_compress,
        });
    }
    Ok(folders)
}

/// A parsed CFFILE entry, before its data is cut out of the folder.
struct FileEntry {
    index: usize,
    offset: usize,
    name: String,
    folder: usize,
    start: u64,
    len: u64,
}

fn parse_files(
    cabinet: &[u8],
    header: &Header,
    limits: &CabLimits,
) -> Result<Vec<FileEntry>, CabError> {
    let mut r = Reader::at(cabinet, header.files_offset);
    let mut files: Vec<FileEntry> = Vec::with_capacity(header.file_count);
    let mut names = std::collections::HashSet::new();
    let mut total = 0u64;
    for index in 0..header.file_count {
        let structure = format!("CFFILE #{index}");
        let offset = r.pos();
        let len = u64::from(r.u32(&structure, "cbFile")?);
        let start = u64::from(r.u32(&structure, "uoffFolderStart")?);
        let folder_at = r.pos();
        let folder = r.u16(&structure, "iFolder")?;
        r.u16(&structure, "date")?;
        r.u16(&structure, "time")?;
        let attribs = r.u16(&structure, "attribs")?;
        let raw_name = r.cstr(names::MAX_NAME_BYTES, &structure, "szName")?;

        let refuse = |reason: &'static str, name: String| CabError::BadFileName {
            file: index,
            offset,
            name,
            reason,
        };
        let lossy = String::from_utf8_lossy(raw_name).into_owned();
        let decoded = names::decode_name(raw_name, attribs).map_err(|why| refuse(why, lossy))?;
        let name = names::sanitise_name(&decoded).map_err(|why| refuse(why, decoded.clone()))?;

        if folder >= IFOLD_CONTINUED_FIRST {
            return Err(CabError::BadField {
                structure,
                field: "iFolder",
                offset: folder_at,
                reason: format!("{folder:#06x} means the file spans cabinets; not supported"),
            });
        }
        let folder = usize::from(folder);
        if folder >= header.folder_count {
            return Err(CabError::BadField {
                structure,
                field: "iFolder",
                offset: folder_at,
                reason: format!(
                    "folder {folder} does not exist ({} folders)",
                    header.folder_count
                ),
            });
        }
        if len > limits.max_file_bytes {
            return Err(CabError::LimitExceeded {
                what: "CFFILE.cbFile",
                value: len,
                max: limits.max_file_bytes,
            });
        }
        total += len;
        if total > limits.max_total_uncompressed {
            return Err(CabError::LimitExceeded {
                what: "sum of CFFILE.cbFile",
                value: total,
                max: limits.max_total_uncompressed,
            });
        }
        if !names.insert(name.clone()) {
            return Err(CabError::DuplicateFileName {
                file: index,
                offset,
                name,
            });
        }
        files.push(FileEntry {
            index,
            offset,
            name,
            folder,
            start,
            len,
        });
    }
    Ok(files)
}
