//! A minimal DER reader for the few structures x509-parser does not decode for us (the TCG
//! DICE extensions). Single-byte tags, definite lengths up to four bytes, no recursion beyond
//! what the caller asks for.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Reads one TLV; returns it and what follows.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("DER: missing tag")?;
    if tag & 0x1f == 0x1f {
        return Err(format!("DER: multi-byte tag 0x{tag:02x} not supported"));
    }
    let (&first, rest) = rest.split_first().ok_or("DER: missing length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(format!("DER: length of {count} bytes not supported"));
        }
        let bytes = rest.get(..count).ok_or("DER: truncated length")?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 || bytes.first() == Some(&0) {
            return Err("DER: length not minimally encoded".into());
        }
        (len, rest.get(count..).unwrap_or_default())
    };
    let value = rest
        .get(..len)
        .ok_or_else(|| format!("DER: value of {len} bytes truncated ({} left)", rest.len()))?;
    Ok((Tlv { tag, value }, rest.get(len..).unwrap_or_default()))
}

/// All TLVs inside a constructed value.
pub(crate) fn children(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !input.is_empty() {
        if out.len() >= 256 {
            return Err("DER: more than 256 elements".into());
        }
        let (tlv, rest) = read_tlv(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// Exactly one TLV with the expected tag and nothing after it.
pub(crate) fn single(input: &[u8], tag: u8) -> Result<Tlv<'_>, String> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(format!("DER: tag 0x{:02x}, expected 0x{tag:02x}", tlv.tag));
    }
    if !rest.is_empty() {
        return Err(format!("DER: {} bytes after the value", rest.len()));
    }
    Ok(tlv)
}

/// Dotted form of an OID's content bytes.
pub(crate) fn oid_to_string(content: &[u8]) -> Result<String, String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in content.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return Err("DER: OID arc too large".into());
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return Err("DER: OID ends inside an arc".into());
        }
    }
    if arcs.is_empty() {
        return Err("DER: empty OID".into());
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let (tlv, rest) = read_tlv(&[0x04, 0x02, 0xaa, 0xbb, 0xff]).unwrap();
        assert_eq!(tlv.value, &[0xaa, 0xbb]);
        assert_eq!(rest, &[0xff]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(read_tlv(&long).unwrap().0.value.len(), 0x80);
    }

    #[test]
    fn rejects_bad_encodings() {
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x04]).is_err());
        assert!(read_tlv(&[0x04, 0x05, 1]).is_err());
        assert!(read_tlv(&[0x04, 0x81, 0x05, 0, 0, 0, 0, 0]).is_err()); // not minimal
        assert!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read_tlv(&[0x1f, 0x01, 0x00]).is_err());
        assert!(single(&[0x04, 0x00, 0x00], 0x04).is_err());
    }

    #[test]
    fn oid_strings() {
        // 2.23.133.5.4.1 and sha384 (2.16.840.1.101.3.4.2.2)
        assert_eq!(
            oid_to_string(&[0x67, 0x81, 0x05, 0x05, 0x04, 0x01]).unwrap(),
            "2.23.133.5.4.1"
        );
        assert_eq!(
            oid_to_string(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02]).unwrap(),
            "2.16.840.1.101.3.4.2.2"
        );
        assert!(oid_to_string(&[0x81]).is_err());
        assert!(oid_to_string(&[]).is_err());
    }
}
