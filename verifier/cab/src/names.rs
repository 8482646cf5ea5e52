//! File-name decoding and sanitising. Cabinet names use `\` separators and
//! come from whoever built the cabinet; a name must never let extraction
//! write outside the output directory.

/// Longest name accepted (MS-CAB's CB_MAX_FILENAME).
pub const MAX_NAME_BYTES: usize = 256;

/// CFFILE.attribs bit: szName is UTF-8 (otherwise we accept ASCII only).
pub const ATTR_NAME_IS_UTF: u16 = 0x80;

/// Decode raw name bytes: UTF-8 when flagged, otherwise strictly ASCII
/// (other code pages are refused rather than guessed).
pub fn decode_name(raw: &[u8], attribs: u16) -> Result<String, &'static str> {
    if attribs & ATTR_NAME_IS_UTF != 0 {
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| "flagged UTF-8 but is not valid UTF-8")
    } else if raw.is_ascii() {
        Ok(raw.iter().map(|&b| char::from(b)).collect())
    } else {
        Err("non-ASCII name without the UTF-8 attribute (code page unknown)")
    }
}

/// Turn a cabinet name into a relative, `/`-separated path that stays inside
/// the output directory, or say why that is impossible.
pub fn sanitise_name(name: &str) -> Result<String, &'static str> {
    if name.chars().any(|c| c.is_control()) {
        return Err("contains control characters");
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err("is an absolute path");
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("contains a '..' component"),
            p if p.contains(':') => return Err("contains ':' (drive letter or stream name)"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("is empty");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslashes_become_slashes() {
        assert_eq!(
            sanitise_name(r"Intel\IntelPTT.cer").unwrap(),
            "Intel/IntelPTT.cer"
        );
        assert_eq!(sanitise_name(r"a\\.\b/c").unwrap(), "a/b/c");
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            r"..\evil",
            "a/../../evil",
            "/etc/passwd",
            r"\\server\share\x",
            r"C:\Windows\x",
            "a/b:stream",
            "",
            "./.",
            "a\nb",
        ] {
            assert!(sanitise_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(sanitise_name("..a/b..").unwrap(), "..a/b..");
    }

    #[test]
    fn names_decode_by_attribute() {
        assert_eq!(
            decode_name("é.cer".as_bytes(), ATTR_NAME_IS_UTF).unwrap(),
            "é.cer"
        );
        assert!(decode_name("é.cer".as_bytes(), 0).is_err());
        assert!(decode_name(&[0xff, 0x41], ATTR_NAME_IS_UTF).is_err());
        assert_eq!(decode_name(b"a.cer", 0).unwrap(), "a.cer");
    }
}
