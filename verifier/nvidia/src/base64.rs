//! Standard base64 (RFC 4648 section 4) decoding for XML-DSig values and NVIDIA's JSON
//! evidence, on the `base64` crate. Whitespace between characters is skipped (XML wraps long
//! values); padding is optional but, if present, must be correct; trailing bits must be zero.

use ::base64::Engine as _;
use ::base64::alphabet::STANDARD;
use ::base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet, padding optional (canonical if present), non-zero trailing bits refused.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("base64: character {found:?} at {offset} is not in the alphabet")]
    BadCharacter { offset: usize, found: char },
    #[error("base64: {0}")]
    BadLength(String),
    #[error("base64: {size} characters exceed the {max} limit")]
    TooLarge { size: usize, max: usize },
}

/// Decodes `text`, refusing inputs longer than `max_chars`.
pub fn decode(text: &str, max_chars: usize) -> Result<Vec<u8>, Base64Error> {
    if text.len() > max_chars {
        return Err(Base64Error::TooLarge {
            size: text.len(),
            max: max_chars,
        });
    }
    // Offsets into `text` of the characters kept, to report errors where the reader sees them.
    let kept: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|(_, c)| !c.is_ascii_whitespace())
        .map(|(offset, _)| offset)
        .collect();
    let compact: Vec<u8> = kept.iter().map(|&i| text.as_bytes()[i]).collect();
    // The engine takes padding as optional; when present it must complete the last quantum.
    if compact.last() == Some(&b'=') && !compact.len().is_multiple_of(4) {
        return Err(Base64Error::BadLength("wrong padding".into()));
    }
    ENGINE.decode(&compact).map_err(|e| match e {
        ::base64::DecodeError::InvalidByte(_, b'=') => {
            Base64Error::BadLength("misplaced padding".into())
        }
        ::base64::DecodeError::InvalidByte(at, found) => Base64Error::BadCharacter {
            offset: kept.get(at).copied().unwrap_or(at),
            found: char::from(found),
        },
        ::base64::DecodeError::InvalidLength(_) => Base64Error::BadLength("wrong length".into()),
        ::base64::DecodeError::InvalidLastSymbol(..) => {
            Base64Error::BadLength("non-zero trailing bits".into())
        }
        ::base64::DecodeError::InvalidPadding => Base64Error::BadLength("wrong padding".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wrapped_and_unpadded() {
        assert_eq!(decode("Zm9v\n YmFy", 100).unwrap(), b"foobar");
        assert_eq!(decode("Zg", 100).unwrap(), b"f");
        assert_eq!(decode("Zg==", 100).unwrap(), b"f");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            decode("Zm9v\n!", 100),
            Err(Base64Error::BadCharacter {
                offset: 5,
                found: '!'
            })
        );
        for text in ["Z", "Zg=a", "Zg=", "Zg===", "Zh==", "Zh", "Zm-_"] {
            assert!(decode(text, 100).is_err(), "{text:?}");
        }
        assert!(matches!(
            decode("Zm9v", 3),
            Err(Base64Error::TooLarge { size: 4, max: 3 })
        ));
    }
}
