//! Standard base64 (RFC 4648 section 4) decoding for XML-DSig values and NVIDIA's JSON
//! evidence. Whitespace between characters is skipped (XML wraps long values); padding is
//! optional but, if present, must be correct.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("base64: character {found:?} at {offset} is not in the alphabet")]
    BadCharacter { offset: usize, found: char },
    #[error("base64: {0}")]
    BadLength(String),
    #[error("base64: {size} characters exceed the {max} limit")]
    TooLarge { size: usize, max: usize },
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes `text`, refusing inputs longer than `max_chars`.
pub fn decode(text: &str, max_chars: usize) -> Result<Vec<u8>, Base64Error> {
    if text.len() > max_chars {
        return Err(Base64Error::TooLarge {
            size: text.len(),
            max: max_chars,
        });
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut symbols = 0usize;
    let mut padding = 0usize;
    for (offset, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(Base64Error::BadLength("data after padding".into()));
        }
        let v = value(c).ok_or(Base64Error::BadCharacter {
            offset,
            found: char::from(c),
        })?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        symbols += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    match symbols % 4 {
        1 => return Err(Base64Error::BadLength("one character too many".into())),
        rem if padding > 0 && !(rem + padding).is_multiple_of(4) => {
            return Err(Base64Error::BadLength("wrong padding".into()));
        }
        _ => {}
    }
    if padding > 2 {
        return Err(Base64Error::BadLength("too much padding".into()));
    }
    // Leftover bits must be zero (canonical encoding).
    if acc != 0 {
        return Err(Base64Error::BadLength("non-zero trailing bits".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(decode(enc, 100).unwrap(), plain.as_bytes(), "{enc}");
        }
        assert_eq!(decode("Zm9v\n YmFy", 100).unwrap(), b"foobar");
        assert_eq!(decode("Zg", 100).unwrap(), b"f");
    }

    #[test]
    fn rejects_malformed() {
        assert!(decode("Zm9v!", 100).is_err());
        assert!(decode("Z", 100).is_err());
        assert!(decode("Zg=a", 100).is_err());
        assert!(decode("Zg===", 100).is_err());
        assert!(decode("Zh==", 100).is_err()); // non-zero trailing bits
        assert!(decode("Zm9v", 3).is_err());
    }
}
