//! Decoding one folder: its CFDATA blocks, checked and decompressed into one
//! contiguous buffer (files are byte ranges of that buffer).

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use crate::checksum::cfdata_checksum;
use crate::error::CabError;
use crate::reader::Reader;
use crate::{CabLimits, FolderEntry};

/// Largest uncompressed CFDATA payload (MS-CAB: 32 KiB).
const MAX_BLOCK_UNCOMPRESSED: u16 = 0x8000;
/// Largest compressed payload: 32 KiB plus MS-CAB's allowance for expansion.
const MAX_BLOCK_COMPRESSED: u16 = 0x8000 + 6144;
/// Deflate's history window; MSZIP blocks may reach back this far into the
/// output of earlier blocks of the same folder.
const DEFLATE_WINDOW: usize = 32 * 1024;

const COMPRESS_MASK: u16 = 0x000F;
const COMPRESS_NONE: u16 = 0;
const COMPRESS_MSZIP: u16 = 1;
const COMPRESS_QUANTUM: u16 = 2;
const COMPRESS_LZX: u16 = 3;

#[derive(Clone, Copy)]
enum Method {
    Stored,
    Mszip,
}

fn method(index: usize, folder: &FolderEntry) -> Result<Method, CabError> {
    let unsupported = |method| CabError::UnsupportedCompression {
        folder: index,
        type_compress: folder.type_compress,
        method,
    };
    match folder.type_compress & COMPRESS_MASK {
        COMPRESS_NONE => Ok(Method::Stored),
        COMPRESS_MSZIP => Ok(Method::Mszip),
        COMPRESS_QUANTUM => Err(unsupported("Quantum")),
        COMPRESS_LZX => Err(unsupported("LZX")),
        _ => Err(unsupported("unknown")),
    }
}

/// Decode folder `index`; `total` accumulates decompressed bytes across
/// folders against `limits.max_total_uncompressed`.
pub(crate) fn decode(
    cabinet: &[u8],
    index: usize,
    folder: &FolderEntry,
    data_reserve: usize,
    limits: &CabLimits,
    total: &mut u64,
) -> Result<Vec<u8>, CabError> {
    let method = method(index, folder)?;
    if folder.first_data_offset > cabinet.len() {
        return Err(CabError::BadField {
            structure: format!("CFFOLDER #{index}"),
            field: "coffCabStart",
            offset: folder.offset,
            reason: format!(
                "{} points past the end of the cabinet ({} bytes)",
                folder.first_data_offset,
                cabinet.len()
            ),
        });
    }
    let mut r = Reader::at(cabinet, folder.first_data_offset);
    let mut out: Vec<u8> = Vec::new();
    let mut inflater = DecompressorOxide::new();

    for block in 0..folder.data_block_count {
        let structure = format!("CFDATA #{block} of folder #{index}");
        let offset = r.pos();
        let stored_sum = r.u32(&structure, "csum")?;
        let cb_data = r.u16(&structure, "cbData")?;
        let cb_uncomp = r.u16(&structure, "cbUncomp")?;
        r.take(data_reserve, &structure, "abReserve")?;
        let payload = r.take(usize::from(cb_data), &structure, "ab")?;

        let bad = |field, reason: String| CabError::BadField {
            structure: structure.clone(),
            field,
            offset,
            reason,
        };
        if cb_uncomp == 0 || cb_uncomp > MAX_BLOCK_UNCOMPRESSED {
            return Err(bad("cbUncomp", format!("{cb_uncomp} is not in 1..=32768")));
        }
        if cb_data > MAX_BLOCK_COMPRESSED {
            return Err(bad(
                "cbData",
                format!("{cb_data} exceeds {MAX_BLOCK_COMPRESSED}"),
            ));
        }

        if stored_sum != 0 {
            let computed = cfdata_checksum(cb_data, cb_uncomp, payload);
            if computed != stored_sum {
                return Err(CabError::ChecksumMismatch {
                    folder: index,
                    block,
                    offset,
                    stored: stored_sum,
                    computed,
                });
            }
        } else if limits.require_checksums {
            return Err(CabError::MissingChecksum {
                folder: index,
                block,
                offset,
            });
        }

        *total += u64::from(cb_uncomp);
        if *total > limits.max_total_uncompressed {
            return Err(CabError::LimitExceeded {
                what: "total decompressed CFDATA size",
                value: *total,
                max: limits.max_total_uncompressed,
            });
        }

        match method {
            Method::Stored => {
                if cb_data != cb_uncomp {
                    return Err(bad(
                        "cbData",
                        format!(
                            "{cb_data} differs from cbUncomp {cb_uncomp} in an uncompressed folder"
                        ),
                    ));
                }
                out.extend_from_slice(payload);
            }
            Method::Mszip => {
                let fail = |reason: String| CabError::Decompress {
                    folder: index,
                    block,
                    offset,
                    reason,
                };
                inflate_block(&mut inflater, payload, usize::from(cb_uncomp), &mut out)
                    .map_err(fail)?;
            }
        }
    }
    Ok(out)
}

/// Inflate one MSZIP block ("CK" + a complete raw deflate stream) onto the
/// end of `out`. The decompressor sees the last 32 KiB of `out` as history,
/// which is how MSZIP blocks refer back into earlier blocks.
fn inflate_block(
    inflater: &mut DecompressorOxide,
    payload: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(stream) = payload.strip_prefix(b"CK") else {
        return Err("block does not start with the \"CK\" signature".into());
    };
    let start = out.len();
    out.resize(start + expected, 0);
    let window_start = start.saturating_sub(DEFLATE_WINDOW);
    let window = out.get_mut(window_start..).unwrap_or_default();
    inflater.init();
    let (status, _consumed, produced) = decompress(
        inflater,
        stream,
        window,
        start - window_start,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done if produced == expected => Ok(()),
        TINFLStatus::Done => Err(format!(
            "inflated to {produced} bytes, cbUncomp says {expected}"
        )),
        TINFLStatus::HasMoreOutput => {
            Err(format!("inflates to more than cbUncomp ({expected}) bytes"))
        }
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
            Err("deflate stream ends before its final block".into())
        }
        other => Err(format!("invalid deflate stream ({other:?})")),
    }
}
