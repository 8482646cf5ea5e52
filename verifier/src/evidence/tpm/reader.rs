//! A bounds-checked reader for TPM wire format (big-endian). Every read names the field it
//! reads, so a malformed structure is reported as "which field, at which byte offset".

use super::DecodeError;

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    position: usize,
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(structure: &'static str, data: &'a [u8]) -> Self {
        Reader {
            data,
            position: 0,
            structure,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.position)
    }

    pub(crate) fn bytes(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let end = self.position.checked_add(count);
        match end.and_then(|end| self.data.get(self.position..end)) {
            Some(slice) => {
                self.position += count;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                structure: self.structure,
                field,
                offset: self.position,
                needed: count,
                available: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A TPM2B: a u16 size then that many bytes, refused above `max`.
    pub(crate) fn sized(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let offset = self.position;
        let size = usize::from(self.u16(field)?);
        if size > max {
            return Err(self.invalid_at(
                offset,
                field,
                format!("size {size} exceeds the maximum {max}"),
            ));
        }
        self.bytes(size, field)
    }

    pub(crate) fn invalid_at(
        &self,
        offset: usize,
        field: &'static str,
        reason: String,
    ) -> DecodeError {
        DecodeError::Invalid {
            structure: self.structure,
            field,
            offset,
            reason,
        }
    }

    /// Refuses trailing bytes: a structure must be exactly what was sent.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                structure: self.structure,
                offset: self.position,
                extra: self.remaining(),
            })
        }
    }
}
