//! Strict standard base64 (RFC 4648 §4, with padding).
//!
//! Strict on purpose: a decoder that accepted non-zero padding bits or
//! missing padding would let two different texts carry the same bytes, and a
//! flipped character in a checkpoint or bundle could go unnoticed.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("base64 text length {0} is not a multiple of 4")]
    Length(usize),
    #[error("invalid base64 character at offset {0}")]
    Character(usize),
    #[error("non-canonical base64 padding at offset {0}")]
    Padding(usize),
}

/// Encodes `data` as padded standard base64.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

fn sextet_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes padded standard base64, rejecting any text that is not the
/// unique canonical encoding of its bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(Base64Error::Length(bytes.len()));
    }
    let groups = bytes.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (g, group) in bytes.chunks(4).enumerate() {
        let base = g * 4;
        let is_last = g + 1 == groups;
        let pads = group.iter().rev().take_while(|&&c| c == b'=').count();
        if pads > 2 || (pads > 0 && !is_last) {
            return Err(Base64Error::Padding(base + 4 - pads));
        }
        let mut n: u32 = 0;
        for (i, &c) in group.iter().enumerate().take(4 - pads) {
            let v = sextet_value(c).ok_or(Base64Error::Character(base + i))?;
            n |= v << (18 - 6 * i as u32);
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pads;
        // Bits below the kept bytes must be zero for the text to be canonical.
        let unused_mask = match pads {
            1 => 0xff,
            2 => 0xffff,
            _ => 0,
        };
        if n & unused_mask != 0 {
            return Err(Base64Error::Padding(base + 3 - pads));
        }
        out.extend(decoded.iter().take(keep));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_lengths() {
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(len))
                .collect();
            assert_eq!(decode(&encode(&data)).unwrap(), data);
        }
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8=");
    }

    #[test]
    fn rejects_non_canonical_text() {
        assert_eq!(decode("Zm9"), Err(Base64Error::Length(3)));
        assert_eq!(decode("Zm9=Zm9v"), Err(Base64Error::Padding(3)));
        assert_eq!(decode("Zm8="), Ok(b"fo".to_vec()));
        // Same bytes, non-zero padding bits: rejected.
        assert_eq!(decode("Zm9="), Err(Base64Error::Padding(2)));
        assert_eq!(decode("Zm!v"), Err(Base64Error::Character(2)));
        assert!(decode("Z===").is_err());
    }
}
