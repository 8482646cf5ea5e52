//! UEFI structures found in event data: UEFI_VARIABLE_DATA and EFI_SIGNATURE_LIST.

/// UEFI_VARIABLE_DATA: GUID, name length (UTF-16 units), data length, name, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableData<'a> {
    pub guid: [u8; 16],
    pub name: String,
    pub data: &'a [u8],
}

/// Formats a GUID the way UEFI prints them (mixed endian).
pub fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        hex::encode(&g[8..10]),
        hex::encode(&g[10..16])
    )
}

fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    data.get(at..at + 8)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

impl<'a> VariableData<'a> {
    /// None unless `data` is exactly one well-formed UEFI_VARIABLE_DATA.
    pub fn parse(data: &'a [u8]) -> Option<VariableData<'a>> {
        let (variable, trailing) = Self::parse_prefix(data)?;
        (trailing == 0).then_some(variable)
    }

    /// A well-formed UEFI_VARIABLE_DATA at the start of `data`, and how many bytes follow it
    /// (some firmware logs EV_EFI_VARIABLE_AUTHORITY events with bytes after the variable).
    pub fn parse_prefix(data: &'a [u8]) -> Option<(VariableData<'a>, usize)> {
        let guid: [u8; 16] = data.get(..16)?.try_into().ok()?;
        let name_units = usize::try_from(le_u64(data, 16)?).ok()?;
        let data_len = usize::try_from(le_u64(data, 24)?).ok()?;
        let name_end = 32usize.checked_add(name_units.checked_mul(2)?)?;
        let data_end = name_end.checked_add(data_len)?;
        let trailing = data.len().checked_sub(data_end)?;
        let units: Vec<u16> = data
            .get(32..name_end)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16(units.strip_suffix(&[0]).unwrap_or(&units)).ok()?;
        Some((
            VariableData {
                guid,
                name,
                data: data.get(name_end..data_end)?,
            },
            trailing,
        ))
    }
}

/// One entry of an EFI_SIGNATURE_LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry<'a> {
    pub signature_type: [u8; 16],
    pub owner: [u8; 16],
    pub data: &'a [u8],
}

pub const EFI_CERT_X509_GUID: &str = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
pub const EFI_CERT_SHA256_GUID: &str = "c1c41626-504c-4092-aca9-41f936934328";

/// Every entry of a sequence of EFI_SIGNATURE_LISTs (db, dbx, KEK, PK), or None if malformed.
pub fn signature_lists(mut data: &[u8]) -> Option<Vec<SignatureEntry<'_>>> {
    let mut entries = Vec::new();
    while !data.is_empty() {
        let signature_type: [u8; 16] = data.get(..16)?.try_into().ok()?;
        let list_size = le_u32(data, 16)? as usize;
        let header_size = le_u32(data, 20)? as usize;
        let signature_size = le_u32(data, 24)? as usize;
        let list = data.get(..list_size)?;
        let body_start = 28usize.checked_add(header_size)?;
        if signature_size < 16 || body_start > list_size {
            return None;
        }
        let body = list.get(body_start..)?;
        if body.len() % signature_size != 0 {
            return None;
        }
        for entry in body.chunks_exact(signature_size) {
            entries.push(SignatureEntry {
                signature_type,
                owner: entry.get(..16)?.try_into().ok()?,
                data: entry.get(16..)?,
            });
        }
        data = data.get(list_size..)?;
        if list_size == 0 {
            return None;
        }
    }
    Some(entries)
}
