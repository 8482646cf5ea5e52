//! Bounds-checked little-endian reader: every read says which structure and
//! field it is for, so a short input turns into a precise `Truncated` error.

use crate::error::CabError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        structure: &str,
        field: &'static str,
    ) -> Result<&'a [u8], CabError> {
        let truncated = || CabError::Truncated {
            structure: structure.to_owned(),
            field,
            offset: self.pos,
            needed: len,
        };
        let end = self.pos.checked_add(len).ok_or_else(truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self, structure: &str, field: &'static str) -> Result<u8, CabError> {
        let b = self.take(1, structure, field)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self, structure: &str, field: &'static str) -> Result<u16, CabError> {
        let b = self.take(2, structure, field)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_le_bytes(a))
    }

    pub(crate) fn u32(&mut self, structure: &str, field: &'static str) -> Result<u32, CabError> {
        let b = self.take(4, structure, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// A NUL-terminated string of at most `max_len` bytes (terminator excluded).
    pub(crate) fn cstr(
        &mut self,
        max_len: usize,
        structure: &str,
        field: &'static str,
    ) -> Result<&'a [u8], CabError> {
        let start = self.pos;
        let rest = self.bytes.get(start..).unwrap_or_default();
        let window = rest.get(..rest.len().min(max_len + 1)).unwrap_or_default();
        match window.iter().position(|&b| b == 0) {
            Some(len) => {
                let s = self.take(len, structure, field)?;
                self.take(1, structure, field)?;
                Ok(s)
            }
            None if window.len() > max_len => Err(CabError::BadField {
                structure: structure.to_owned(),
                field,
                offset: start,
                reason: format!("string longer than {max_len} bytes"),
            }),
            None => Err(CabError::Truncated {
                structure: structure.to_owned(),
                field,
                offset: start,
                needed: window.len() + 1,
            }),
        }
    }
}
