//! A bounds-checked little-endian cursor over untrusted bytes. Every read names the field it
//! is reading so that a short input produces an error saying what was missing and where.

use crate::spdm::ReportError;

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` within the whole report, so errors carry report offsets.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    /// Absolute offset (within the report) of the next byte to be read.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ReportError> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.data.get(self.pos..end)) {
            Some(slice) => {
                self.pos += len;
                Ok(slice)
            }
            None => Err(ReportError::Truncated {
                field,
                offset: self.offset(),
                needed: len,
                available: self.remaining(),
            }),
        }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], ReportError> {
        let slice = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ReportError> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    pub(crate) fn u16_le(&mut self, field: &'static str) -> Result<u16, ReportError> {
        Ok(u16::from_le_bytes(self.array::<2>(field)?))
    }

    pub(crate) fn u24_le(&mut self, field: &'static str) -> Result<u32, ReportError> {
        let [a, b, c] = self.array::<3>(field)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_name_field_and_offset() {
        let mut r = Reader::new(&[1, 2, 3], 10);
        assert_eq!(r.u16_le("a").unwrap(), 0x0201);
        let err = r.u16_le("b").unwrap_err();
        assert_eq!(
            err,
            ReportError::Truncated {
                field: "b",
                offset: 12,
                needed: 2,
                available: 1
            }
        );
        // A failed read consumes nothing.
        assert_eq!(r.u8("c").unwrap(), 3);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let mut r = Reader::new(&[0; 4], 0);
        r.u8("x").unwrap();
        assert!(r.bytes(usize::MAX, "y").is_err());
    }

    #[test]
    fn u24_is_little_endian() {
        let mut r = Reader::new(&[0xc0, 0x0d, 0x01], 0);
        assert_eq!(r.u24_le("len").unwrap(), 0x010dc0);
    }
}
