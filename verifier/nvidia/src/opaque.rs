//! NVIDIA's opaque data in the MEASUREMENTS response: a list of TLVs (type u16 LE, length
//! u16 LE, value) carrying the driver and VBIOS versions, chip and board identifiers, the
//! firmware ID, feature flags and, on NVSwitch, the fabric topology.
//!
//! The type numbers come from NVIDIA's verifiers (nvtrust local_gpu_verifier and
//! attestation-sdk); types 22..26 mean different things on a GPU and on an NVSwitch, so the
//! numbering is chosen per report: a GPU always reports its driver version (type 3), an
//! NVSwitch never does.

use serde::Serialize;

use crate::reader::Reader;
use crate::spdm::ReportError;

/// More fields than any device sends (GPUs send up to 17).
pub const MAX_OPAQUE_FIELDS: usize = 128;
/// Size of one PDI (platform device identifier) in NVSwitch topology fields.
pub const PDI_LEN: usize = 8;
/// GPU PDIs at the start of an NVSwitch's SWITCH_GPU_PDIS field; port IDs follow.
pub const SWITCH_GPU_PDI_COUNT: usize = 8;

pub const TYPE_DRIVER_VERSION: u16 = 3;
pub const TYPE_VBIOS_VERSION: u16 = 6;
pub const TYPE_NVDEC0_STATUS: u16 = 11;
pub const TYPE_MSRSCNT: u16 = 12;
pub const TYPE_BOARD_ID: u16 = 14;
pub const TYPE_CHIP_SKU: u16 = 15;
pub const TYPE_PROJECT: u16 = 17;
pub const TYPE_PROJECT_SKU: u16 = 18;
pub const TYPE_FWID: u16 = 20;
pub const TYPE_PROTECTED_PCIE_STATUS: u16 = 21;
pub const TYPE_OPAQUE_DATA_VERSION: u16 = 34;
pub const TYPE_FEATURE_FLAG: u16 = 36;

/// Which meaning types 22..26 have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpaqueNumbering {
    Gpu,
    NvSwitch,
}

/// 0xAA / 0x55 status bytes (NVDEC0, protected PCIe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnableStatus {
    Enabled,
    Disabled,
    Other(u8),
}

impl EnableStatus {
    fn from_byte(b: u8) -> Self {
        match b {
            0xAA => EnableStatus::Enabled,
            0x55 => EnableStatus::Disabled,
            other => EnableStatus::Other(other),
        }
    }
}

impl std::fmt::Display for EnableStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnableStatus::Enabled => f.write_str("enabled (0xAA)"),
            EnableStatus::Disabled => f.write_str("disabled (0x55)"),
            EnableStatus::Other(b) => write!(f, "unknown (0x{b:02X})"),
        }
    }
}

/// The confidential-computing mode the GPU reports (FEATURE_FLAG, newer firmware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureFlag {
    /// Single-GPU passthrough.
    Spt,
    /// Multi-GPU passthrough.
    Mpt,
    /// Protected PCIe (multi-GPU with NVSwitches in the TCB).
    Ppcie,
    Other(u64),
}

impl std::fmt::Display for FeatureFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureFlag::Spt => f.write_str("SPT (single-GPU passthrough)"),
            FeatureFlag::Mpt => f.write_str("MPT (multi-GPU passthrough)"),
            FeatureFlag::Ppcie => f.write_str("PPCIE (protected PCIe)"),
            FeatureFlag::Other(v) => write!(f, "unknown ({v})"),
        }
    }
}

/// A decoded opaque value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum OpaqueValue {
    Text(String),
    Version(String),
    Integer(u64),
    Status(EnableStatus),
    FeatureFlag(FeatureFlag),
    /// Measurement counts per block.
    Counts(Vec<u32>),
    /// 8-byte PDIs, hex.
    Pdis(Vec<String>),
    /// NVSwitch: the GPUs it connects (PDIs, hex) and the port map.
    SwitchTopology {
        gpu_pdis: Vec<String>,
        ports: Vec<u8>,
    },
    /// Numbers of the disabled (floorswept) ports.
    DisabledPorts(Vec<u16>),
    Bytes(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpaqueField {
    pub type_id: u16,
    /// Vigil's name for the field (snake case).
    pub name: &'static str,
    /// NVIDIA's name (`OPAQUE_FIELD_ID_*`), to compare with NVIDIA's tools.
    pub nvidia_name: &'static str,
    /// Byte offset of the TLV within the report.
    pub offset: usize,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub raw: Vec<u8>,
    pub value: OpaqueValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpaqueData {
    pub numbering: OpaqueNumbering,
    pub fields: Vec<OpaqueField>,
}

impl OpaqueData {
    pub fn field(&self, type_id: u16) -> Option<&OpaqueField> {
        self.fields.iter().find(|f| f.type_id == type_id)
    }

    fn text(&self, type_id: u16) -> Option<&str> {
        match &self.field(type_id)?.value {
            OpaqueValue::Text(s) | OpaqueValue::Version(s) => Some(s),
            _ => None,
        }
    }

    pub fn driver_version(&self) -> Option<&str> {
        self.text(TYPE_DRIVER_VERSION)
    }

    /// VBIOS (GPU) or BIOS (NVSwitch) version as NVIDIA writes it, e.g. `96.00.9F.00.01`.
    pub fn vbios_version(&self) -> Option<&str> {
        self.text(TYPE_VBIOS_VERSION)
    }

    pub fn chip_sku(&self) -> Option<&str> {
        self.text(TYPE_CHIP_SKU)
    }

    pub fn project(&self) -> Option<&str> {
        self.text(TYPE_PROJECT)
    }

    pub fn project_sku(&self) -> Option<&str> {
        self.text(TYPE_PROJECT_SKU)
    }

    /// The firmware ID, which the leaf certificate must carry too.
    pub fn fwid(&self) -> Option<&[u8]> {
        self.field(TYPE_FWID).map(|f| f.raw.as_slice())
    }

    pub fn feature_flag(&self) -> Option<FeatureFlag> {
        match self.field(TYPE_FEATURE_FLAG)?.value {
            OpaqueValue::FeatureFlag(f) => Some(f),
            _ => None,
        }
    }

    pub fn protected_pcie_status(&self) -> Option<EnableStatus> {
        self.status(TYPE_PROTECTED_PCIE_STATUS)
    }

    pub fn nvdec0_status(&self) -> Option<EnableStatus> {
        self.status(TYPE_NVDEC0_STATUS)
    }

    fn status(&self, type_id: u16) -> Option<EnableStatus> {
        match self.field(type_id)?.value {
            OpaqueValue::Status(s) => Some(s),
            _ => None,
        }
    }

    pub fn opaque_data_version(&self) -> Option<u64> {
        match self.field(TYPE_OPAQUE_DATA_VERSION)?.value {
            OpaqueValue::Integer(v) => Some(v),
            _ => None,
        }
    }

    pub fn measurement_counts(&self) -> Option<&[u32]> {
        match &self.field(TYPE_MSRSCNT)?.value {
            OpaqueValue::Counts(c) => Some(c),
            _ => None,
        }
    }
}

/// How a field's value is decoded.
#[derive(Clone, Copy)]
enum Decode {
    Text,
    VbiosVersion,
    Integer,
    Status,
    FeatureFlag,
    Counts,
    Pdis,
    SwitchTopology,
    PortBitmap,
    Bytes,
}

/// (name, NVIDIA name, decoding) for a type under a numbering.
fn describe(numbering: OpaqueNumbering, type_id: u16) -> (&'static str, &'static str, Decode) {
    use Decode::*;
    match (type_id, numbering) {
        (1, _) => (
            "cert_issuer_name",
            "OPAQUE_FIELD_ID_CERT_ISSUER_NAME",
            Bytes,
        ),
        (2, _) => (
            "cert_authority_key_identifier",
            "OPAQUE_FIELD_ID_CERT_AUTHORITY_KEY_IDENTIFIER",
            Bytes,
        ),
        (3, _) => ("driver_version", "OPAQUE_FIELD_ID_DRIVER_VERSION", Text),
        (4, _) => ("gpu_info", "OPAQUE_FIELD_ID_GPU_INFO", Bytes),
        (5, _) => ("sku", "OPAQUE_FIELD_ID_SKU", Text),
        (6, _) => (
            "vbios_version",
            "OPAQUE_FIELD_ID_VBIOS_VERSION",
            VbiosVersion,
        ),
        (7, _) => ("manufacturer_id", "OPAQUE_FIELD_ID_MANUFACTURER_ID", Bytes),
        (8, _) => (
            "tamper_detection",
            "OPAQUE_FIELD_ID_TAMPER_DETECTION",
            Bytes,
        ),
        (9, _) => ("smc", "OPAQUE_FIELD_ID_SMC", Bytes),
        (10, _) => ("vpr", "OPAQUE_FIELD_ID_VPR", Bytes),
        (11, _) => ("nvdec0_status", "OPAQUE_FIELD_ID_NVDEC0_STATUS", Status),
        (12, _) => ("measurement_counts", "OPAQUE_FIELD_ID_MSRSCNT", Counts),
        (13, _) => ("cpr_info", "OPAQUE_FIELD_ID_CPRINFO", Bytes),
        (14, _) => ("board_id", "OPAQUE_FIELD_ID_BOARD_ID", Integer),
        (15, _) => ("chip_sku", "OPAQUE_FIELD_ID_CHIP_SKU", Text),
        (16, _) => ("chip_sku_mod", "OPAQUE_FIELD_ID_CHIP_SKU_MOD", Text),
        (17, _) => ("project", "OPAQUE_FIELD_ID_PROJECT", Text),
        (18, _) => ("project_sku", "OPAQUE_FIELD_ID_PROJECT_SKU", Text),
        (19, _) => ("project_sku_mod", "OPAQUE_FIELD_ID_PROJECT_SKU_MOD", Bytes),
        (20, _) => ("fwid", "OPAQUE_FIELD_ID_FWID", Bytes),
        (21, _) => (
            "protected_pcie_status",
            "OPAQUE_FIELD_ID_PROTECTED_PCIE_STATUS",
            Status,
        ),
        (22, OpaqueNumbering::Gpu) => ("switch_pdis", "OPAQUE_FIELD_ID_SWITCH_PDI", Pdis),
        (22, OpaqueNumbering::NvSwitch) => ("device_pdi", "OPAQUE_FIELD_ID_DEVICE_PDI", Bytes),
        (23, OpaqueNumbering::Gpu) => (
            "floorswept_ports",
            "OPAQUE_FIELD_ID_FLOORSWEPT_PORTS",
            PortBitmap,
        ),
        (23, OpaqueNumbering::NvSwitch) => (
            "disabled_ports",
            "OPAQUE_FIELD_ID_DISABLED_PORTS",
            PortBitmap,
        ),
        (24, OpaqueNumbering::Gpu) => ("position_id", "OPAQUE_FIELD_ID_POSITION_ID", Integer),
        (24, OpaqueNumbering::NvSwitch) => (
            "switch_position_id",
            "OPAQUE_FIELD_ID_SWITCH_POSITION_ID",
            Integer,
        ),
        (25, OpaqueNumbering::Gpu) => (
            "lock_switch_status",
            "OPAQUE_FIELD_ID_LOCK_SWITCH_STATUS",
            Integer,
        ),
        (25, OpaqueNumbering::NvSwitch) => (
            "switch_lock_status",
            "OPAQUE_FIELD_ID_SWITCH_LOCK_STATUS",
            Integer,
        ),
        (26, OpaqueNumbering::NvSwitch) => (
            "switch_gpu_pdis",
            "OPAQUE_FIELD_ID_SWITCH_GPU_PDIS",
            SwitchTopology,
        ),
        (32, _) => ("gpu_link_conn", "OPAQUE_FIELD_ID_GPU_LINK_CONN", Bytes),
        (33, _) => (
            "sys_enable_status",
            "OPAQUE_FIELD_ID_SYS_ENABLE_STATUS",
            Bytes,
        ),
        (34, _) => (
            "opaque_data_version",
            "OPAQUE_FIELD_ID_OPAQUE_DATA_VERSION",
            Integer,
        ),
        (35, _) => ("chip_info", "OPAQUE_FIELD_ID_CHIP_INFO", Bytes),
        (36, _) => ("feature_flag", "OPAQUE_FIELD_ID_FEATURE_FLAG", FeatureFlag),
        (255, _) => ("invalid", "OPAQUE_FIELD_ID_INVALID", Bytes),
        _ => ("unknown", "OPAQUE_FIELD_ID_UNKNOWN", Bytes),
    }
}

/// Splits the opaque data into TLVs and decodes each. `base` is the offset of the opaque
/// data within the report.
pub fn parse_opaque_data(data: &[u8], base: usize) -> Result<OpaqueData, ReportError> {
    let mut raw_fields: Vec<(u16, usize, &[u8])> = Vec::new();
    let mut r = Reader::new(data, base);
    while r.remaining() > 0 {
        let offset = r.offset();
        if raw_fields.len() >= MAX_OPAQUE_FIELDS {
            return Err(ReportError::TooManyOpaqueFields {
                offset,
                max: MAX_OPAQUE_FIELDS,
            });
        }
        let type_id = r.u16_le("opaque field DataType")?;
        let len = r.u16_le("opaque field DataSize")?;
        let value = r.bytes(len.into(), "opaque field Data")?;
        if raw_fields.iter().any(|(t, _, _)| *t == type_id) {
            return Err(ReportError::DuplicateOpaqueField { offset, type_id });
        }
        raw_fields.push((type_id, offset, value));
    }
    let numbering = if raw_fields.iter().any(|(t, _, _)| *t == TYPE_DRIVER_VERSION) {
        OpaqueNumbering::Gpu
    } else {
        OpaqueNumbering::NvSwitch
    };
    let mut fields = Vec::with_capacity(raw_fields.len());
    for (index, (type_id, offset, raw)) in raw_fields.into_iter().enumerate() {
        let (name, nvidia_name, decode) = describe(numbering, type_id);
        let bad = |reason: String| ReportError::BadOpaqueField {
            index,
            offset,
            type_id,
            reason,
        };
        let value = decode_value(decode, raw).map_err(bad)?;
        fields.push(OpaqueField {
            type_id,
            name,
            nvidia_name,
            offset,
            raw: raw.to_vec(),
            value,
        });
    }
    Ok(OpaqueData { numbering, fields })
}

fn decode_value(decode: Decode, raw: &[u8]) -> Result<OpaqueValue, String> {
    let bytes = || OpaqueValue::Bytes(hex::encode(raw));
    Ok(match decode {
        Decode::Text => nul_terminated_text(raw).map_or_else(bytes, OpaqueValue::Text),
        Decode::VbiosVersion => match (nul_terminated_text(raw), raw) {
            // NVSwitch writes the version as text.
            (Some(text), _) if text.contains('.') => OpaqueValue::Version(text),
            // GPUs write it as a little-endian u64: 0x0000_0001_9600_9F00 is 96.00.9F.00.01.
            (_, [b0, b1, b2, b3, b4, 0, 0, 0]) => {
                OpaqueValue::Version(format!("{b3:02X}.{b2:02X}.{b1:02X}.{b0:02X}.{b4:02X}"))
            }
            _ => bytes(),
        },
        Decode::Integer => match little_endian(raw) {
            Some(v) => OpaqueValue::Integer(v),
            None => bytes(),
        },
        Decode::Status => match raw {
            [b] => OpaqueValue::Status(EnableStatus::from_byte(*b)),
            _ => return Err(format!("status is {} bytes, expected 1", raw.len())),
        },
        Decode::FeatureFlag => match little_endian(raw) {
            Some(0) => OpaqueValue::FeatureFlag(FeatureFlag::Spt),
            Some(1) => OpaqueValue::FeatureFlag(FeatureFlag::Mpt),
            Some(2) => OpaqueValue::FeatureFlag(FeatureFlag::Ppcie),
            Some(v) => OpaqueValue::FeatureFlag(FeatureFlag::Other(v)),
            None => return Err(format!("feature flag is {} bytes", raw.len())),
        },
        Decode::Counts => {
            if !raw.len().is_multiple_of(4) {
                return Err(format!(
                    "measurement counts are {} bytes, not a multiple of 4",
                    raw.len()
                ));
            }
            OpaqueValue::Counts(
                raw.chunks_exact(4)
                    .map(|c| {
                        c.iter()
                            .rev()
                            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
                    })
                    .collect(),
            )
        }
        Decode::Pdis => {
            if !raw.len().is_multiple_of(PDI_LEN) {
                return Err(format!(
                    "PDI list is {} bytes, not a multiple of {PDI_LEN}",
                    raw.len()
                ));
            }
            OpaqueValue::Pdis(raw.chunks_exact(PDI_LEN).map(hex::encode).collect())
        }
        Decode::SwitchTopology => {
            let pdi_bytes = SWITCH_GPU_PDI_COUNT * PDI_LEN;
            let (pdis, ports) = match (raw.get(..pdi_bytes), raw.get(pdi_bytes..)) {
                (Some(p), Some(rest)) => (p, rest),
                _ => {
                    return Err(format!(
                        "topology is {} bytes, shorter than {SWITCH_GPU_PDI_COUNT} PDIs",
                        raw.len()
                    ));
                }
            };
            OpaqueValue::SwitchTopology {
                gpu_pdis: pdis.chunks_exact(PDI_LEN).map(hex::encode).collect(),
                ports: ports.to_vec(),
            }
        }
        Decode::PortBitmap => {
            // Most significant bit first; each bit stands for a group of four ports.
            let mut disabled = Vec::new();
            for (i, byte) in raw.iter().enumerate() {
                for bit in 0..8u16 {
                    if byte & (0x80 >> bit) != 0 {
                        let group = (i as u16) * 8 + bit;
                        disabled.extend((0..4).map(|p| group * 4 + p));
                    }
                }
            }
            OpaqueValue::DisabledPorts(disabled)
        }
        Decode::Bytes => bytes(),
    })
}

/// Printable ASCII up to the first NUL; anything after the NUL must be NUL padding.
fn nul_terminated_text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let (text, padding) = raw.split_at(end);
    if text.is_empty()
        || !text.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        || padding.iter().any(|&b| b != 0)
    {
        return None;
    }
    Some(String::from_utf8_lossy(text).into_owned())
}

fn little_endian(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 8 {
        return None;
    }
    Some(
        raw.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
        let mut out = t.to_le_bytes().to_vec();
        out.extend((v.len() as u16).to_le_bytes());
        out.extend(v);
        out
    }

    #[test]
    fn gpu_fields_decode() {
        let mut data = tlv(3, b"550.90.07\0");
        data.extend(tlv(6, &[0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]));
        data.extend(tlv(21, &[0xaa]));
        data.extend(tlv(36, &[2, 0]));
        data.extend(tlv(12, &[1, 0, 0, 0, 130, 0, 0, 0]));
        data.extend(tlv(22, &[1; 16]));
        data.extend(tlv(999, &[7]));
        let o = parse_opaque_data(&data, 100).unwrap();
        assert_eq!(o.numbering, OpaqueNumbering::Gpu);
        assert_eq!(o.driver_version(), Some("550.90.07"));
        assert_eq!(o.vbios_version(), Some("96.00.9F.00.01"));
        assert_eq!(o.protected_pcie_status(), Some(EnableStatus::Enabled));
        assert_eq!(o.feature_flag(), Some(FeatureFlag::Ppcie));
        assert_eq!(o.measurement_counts(), Some(&[1u32, 130][..]));
        assert_eq!(o.field(22).unwrap().name, "switch_pdis");
        assert_eq!(o.field(999).unwrap().value, OpaqueValue::Bytes("07".into()));
        assert_eq!(o.field(6).unwrap().offset, 114);
    }

    #[test]
    fn switch_numbering_without_driver_version() {
        let mut data = tlv(6, b"96.10.55.00.01");
        data.extend(tlv(22, &[1, 2, 3, 4, 5, 6, 7, 8]));
        data.extend(tlv(23, &[0xe0, 0xff]));
        let mut topo = vec![0xab; 64];
        topo.extend([0, 1, 0xff]);
        data.extend(tlv(26, &topo));
        let o = parse_opaque_data(&data, 0).unwrap();
        assert_eq!(o.numbering, OpaqueNumbering::NvSwitch);
        assert_eq!(o.vbios_version(), Some("96.10.55.00.01"));
        assert_eq!(o.field(22).unwrap().name, "device_pdi");
        match &o.field(23).unwrap().value {
            OpaqueValue::DisabledPorts(p) => {
                assert_eq!(p.len(), 12 + 32);
                assert_eq!(p[..3], [0, 1, 2]);
            }
            other => panic!("{other:?}"),
        }
        match &o.field(26).unwrap().value {
            OpaqueValue::SwitchTopology { gpu_pdis, ports } => {
                assert_eq!(gpu_pdis.len(), 8);
                assert_eq!(ports, &[0, 1, 0xff]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_fields_are_errors() {
        // Truncated TLV header and value.
        assert!(matches!(
            parse_opaque_data(&[3, 0, 5], 40),
            Err(ReportError::Truncated { offset: 42, .. })
        ));
        assert!(matches!(
            parse_opaque_data(&tlv(3, b"abc")[..6], 0),
            Err(ReportError::Truncated { .. })
        ));
        // Counts not a multiple of 4.
        assert!(matches!(
            parse_opaque_data(&tlv(12, &[1, 2, 3]), 0),
            Err(ReportError::BadOpaqueField { type_id: 12, .. })
        ));
        // Status of the wrong size.
        assert!(matches!(
            parse_opaque_data(&tlv(21, &[0xaa, 0]), 0),
            Err(ReportError::BadOpaqueField { type_id: 21, .. })
        ));
        // Duplicates are ambiguous.
        let mut dup = tlv(3, b"1\0");
        dup.extend(tlv(3, b"2\0"));
        assert!(matches!(
            parse_opaque_data(&dup, 0),
            Err(ReportError::DuplicateOpaqueField { type_id: 3, .. })
        ));
        // Too many fields.
        let many: Vec<u8> = (0..=MAX_OPAQUE_FIELDS as u16)
            .flat_map(|t| tlv(1000 + t, &[]))
            .collect();
        assert!(matches!(
            parse_opaque_data(&many, 0),
            Err(ReportError::TooManyOpaqueFields { .. })
        ));
    }

    #[test]
    fn text_needs_nul_padding_only() {
        assert_eq!(nul_terminated_text(b"882\0\0\0"), Some("882".into()));
        assert_eq!(nul_terminated_text(b"88\x012"), None);
        assert_eq!(nul_terminated_text(b"88\0x"), None);
        assert_eq!(nul_terminated_text(b"\0"), None);
    }
}
