//! A bounds-checked big-endian reader for the few TPM structures the simulated TPM receives.

pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// A TPM2B: u16 size, then that many bytes; None when the input is short.
    pub fn tpm2b(&mut self) -> Option<&'a [u8]> {
        let (size, rest) = self.data.split_first_chunk::<2>()?;
        let size = usize::from(u16::from_be_bytes(*size));
        if rest.len() < size {
            return None;
        }
        let (value, rest) = rest.split_at(size);
        self.data = rest;
        Some(value)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
