//! Typed errors: each names the structure, the byte offset and, where it
//! applies, the folder / data block / file index, so an operator can tell
//! *where* a cabinet is broken, not only that it is.

use thiserror::Error;

/// Why a cabinet was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CabError {
    #[error("cabinet is {len} bytes, more than the limit of {max} bytes")]
    InputTooLarge { len: usize, max: usize },

    #[error("truncated: {structure}.{field} needs {needed} bytes at offset {offset}")]
    Truncated {
        structure: String,
        field: &'static str,
        offset: usize,
        needed: usize,
    },

    #[error("not a cabinet: signature at offset 0 is {found:02x?}, expected \"MSCF\"")]
    BadSignature { found: Vec<u8> },

    #[error("unsupported cabinet format version {major}.{minor} (only 1.x is known)")]
    UnsupportedVersion { major: u8, minor: u8 },

    #[error(
        "cabinet is part of a multi-cabinet set (CFHEADER.flags = {flags:#06x} at offset 30); \
         spanning cabinets are not supported, supply a single self-contained cabinet"
    )]
    MultiCabinet { flags: u16 },

    #[error("{structure}.{field} at offset {offset}: {reason}")]
    BadField {
        structure: String,
        field: &'static str,
        offset: usize,
        reason: String,
    },

    #[error("limit exceeded: {what} is {value}, the limit is {max}")]
    LimitExceeded {
        what: &'static str,
        value: u64,
        max: u64,
    },

    #[error(
        "CFFOLDER #{folder}: unsupported compression {method} (typeCompress = {type_compress:#06x}); \
         only none and MSZIP are supported"
    )]
    UnsupportedCompression {
        folder: usize,
        type_compress: u16,
        method: &'static str,
    },

    #[error(
        "CFDATA block #{block} of folder #{folder} at offset {offset}: checksum mismatch \
         (stored {stored:#010x}, computed {computed:#010x})"
    )]
    ChecksumMismatch {
        folder: usize,
        block: usize,
        offset: usize,
        stored: u32,
        computed: u32,
    },

    #[error(
        "CFDATA block #{block} of folder #{folder} at offset {offset} has a zero checksum, \
         and checksums are required"
    )]
    MissingChecksum {
        folder: usize,
        block: usize,
        offset: usize,
    },

    #[error(
        "CFDATA block #{block} of folder #{folder} at offset {offset}: MSZIP data is corrupt: {reason}"
    )]
    Decompress {
        folder: usize,
        block: usize,
        offset: usize,
        reason: String,
    },

    #[error(
        "CFFILE #{file} ({name:?}) at offset {offset}: bytes {start}..{end} lie outside folder \
         #{folder}, which holds {folder_len} bytes"
    )]
    FileOutsideFolder {
        file: usize,
        name: String,
        offset: usize,
        folder: usize,
        start: u64,
        end: u64,
        folder_len: u64,
    },

    #[error("CFFILE #{file} at offset {offset}: file name {name:?} refused: {reason}")]
    BadFileName {
        file: usize,
        offset: usize,
        name: String,
        reason: &'static str,
    },

    #[error("CFFILE #{file} at offset {offset}: name {name:?} is used by an earlier file too")]
    DuplicateFileName {
        file: usize,
        offset: usize,
        name: String,
    },
}
