//! Report input as NVIDIA's tools write it: a hex text file (`hopperAttestationReport.txt`)
//! or the raw SPDM bytes. The two cannot be confused: a raw report starts with the SPDM
//! version byte (0x10..=0x13), which is never an ASCII hex digit.

use crate::spdm::ReportError;

/// Largest decoded report accepted. Real reports are about 4 KiB (GPU) and 2 KiB (NVSwitch).
pub const MAX_REPORT_BYTES: usize = 256 * 1024;
/// Largest hex text accepted (two digits per byte plus generous whitespace).
pub const MAX_REPORT_TEXT_BYTES: usize = 4 * MAX_REPORT_BYTES;

/// Whether the input is the hex text form and not raw bytes.
pub fn looks_like_hex_text(input: &[u8]) -> bool {
    input
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| b.is_ascii_hexdigit())
}

/// Raw report bytes from either form, with size limits applied before any allocation
/// proportional to the input.
pub fn decode_report_input(input: &[u8]) -> Result<Vec<u8>, ReportError> {
    if looks_like_hex_text(input) {
        decode_hex_text(input)
    } else {
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(ReportError::Empty);
        }
        if input.len() > MAX_REPORT_BYTES {
            return Err(ReportError::TooLarge {
                size: input.len(),
                max: MAX_REPORT_BYTES,
            });
        }
        Ok(input.to_vec())
    }
}

const INVALID: u8 = 0xff;

/// The value of each hex digit byte, [`INVALID`] for every other byte (one lookup per
/// character: reports arrive as ~9 KiB of hex text).
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Hex digits with any ASCII whitespace between them; an optional `0x` prefix.
fn decode_hex_text(text: &[u8]) -> Result<Vec<u8>, ReportError> {
    if text.len() > MAX_REPORT_TEXT_BYTES {
        return Err(ReportError::TooLarge {
            size: text.len(),
            max: MAX_REPORT_TEXT_BYTES,
        });
    }
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let body = text.get(start..).unwrap_or_default();
    let (skip, body) = match body {
        [b'0', b'x' | b'X', rest @ ..] => (2, rest),
        _ => (0, body),
    };
    let mut out = Vec::with_capacity(body.len() / 2);
    let mut high: Option<u8> = None;
    for (i, &c) in body.iter().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let nibble = match HEX_VALUE.get(usize::from(c)).copied().unwrap_or(INVALID) {
            INVALID => {
                return Err(ReportError::BadHex {
                    offset: start + skip + i,
                    reason: format!("character {:?} is not a hex digit", char::from(c)),
                });
            }
            value => value,
        };
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push(h << 4 | nibble),
        }
    }
    if high.is_some() {
        return Err(ReportError::BadHex {
            offset: text.len(),
            reason: "odd number of hex digits".into(),
        });
    }
    if out.is_empty() {
        return Err(ReportError::Empty);
    }
    if out.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            size: out.len(),
            max: MAX_REPORT_BYTES,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_and_raw_bytes_decode_to_the_same() {
        let raw = [0x11u8, 0xe0, 0x01, 0xff];
        assert_eq!(decode_report_input(&raw).unwrap(), raw);
        assert_eq!(decode_report_input(b"11e001ff\n").unwrap(), raw);
        assert_eq!(decode_report_input(b"  11 E0\r\n01fF").unwrap(), raw);
        assert_eq!(decode_report_input(b"0x11e001ff").unwrap(), raw);
    }

    #[test]
    fn bad_hex_is_located() {
        match decode_report_input(b"11e0zz") {
            Err(ReportError::BadHex { offset, .. }) => assert_eq!(offset, 4),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_report_input(b"11e"),
            Err(ReportError::BadHex { .. })
        ));
    }

    #[test]
    fn empty_and_oversized_inputs_are_refused() {
        assert_eq!(decode_report_input(b""), Err(ReportError::Empty));
        assert_eq!(decode_report_input(b"  \n"), Err(ReportError::Empty));
        let big = vec![0x11u8; MAX_REPORT_BYTES + 1];
        assert!(matches!(
            decode_report_input(&big),
            Err(ReportError::TooLarge { .. })
        ));
        let big_text = vec![b'a'; MAX_REPORT_TEXT_BYTES + 2];
        assert!(matches!(
            decode_report_input(&big_text),
            Err(ReportError::TooLarge { .. })
        ));
        let decoded_too_big = vec![b'a'; 2 * MAX_REPORT_BYTES + 2];
        assert!(matches!(
            decode_report_input(&decoded_too_big),
            Err(ReportError::TooLarge { .. })
        ));
    }
}
