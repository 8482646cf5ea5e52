//! SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response, as an NVIDIA GPU or NVSwitch
//! returns them: the request the verifier sent (with its nonce) followed by the signed
//! response. The signature covers both messages, which is what binds the verifier's nonce.
//!
//! Layouts follow DMTF DSP0274 (SPDM) 1.1, sections 10.11.1 (request) and 10.11.2 (response,
//! measurement block and DMTF measurement field). The parser decides nothing about trust.

use serde::Serialize;

use crate::input::decode_report_input;
use crate::opaque::{OpaqueData, parse_opaque_data};
use crate::reader::Reader;

pub const GET_MEASUREMENTS: u8 = 0xE0;
pub const MEASUREMENTS: u8 = 0x60;
pub const NONCE_LEN: usize = 32;
/// ECDSA P-384 signature as raw r‖s, the only signature NVIDIA devices produce.
pub const P384_SIGNATURE_LEN: usize = 96;
/// Request attribute bit: the responder must sign the response.
pub const ATTR_SIGNATURE_REQUESTED: u8 = 0x01;
/// MeasurementSpecification bit for the DMTF measurement format.
pub const MEASUREMENT_SPEC_DMTF: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("attestation report is empty")]
    Empty,
    #[error("attestation report of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("attestation report text is not hex at character {offset}: {reason}")]
    BadHex { offset: usize, reason: String },
    #[error("{field} at byte {offset}: needs {needed} bytes, only {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{message} at byte {offset}: SPDM version 0x{found:02x} is not supported (1.1 or 1.2)")]
    UnsupportedVersion {
        message: &'static str,
        offset: usize,
        found: u8,
    },
    #[error(
        "response at byte {offset}: SPDM version 0x{response:02x} differs from the request's 0x{request:02x}"
    )]
    VersionMismatch {
        offset: usize,
        request: u8,
        response: u8,
    },
    #[error(
        "{message} at byte {offset}: request/response code 0x{found:02x}, expected 0x{expected:02x}"
    )]
    UnexpectedCode {
        message: &'static str,
        offset: usize,
        found: u8,
        expected: u8,
    },
    #[error(
        "request at byte {offset}: attributes 0x{attributes:02x} do not ask for a signature; an unsigned report proves nothing"
    )]
    SignatureNotRequested { offset: usize, attributes: u8 },
    #[error("response at byte {offset}: no measurement blocks")]
    NoBlocks { offset: usize },
    #[error("measurement block {block} at byte {offset}: index {index} is reserved")]
    ReservedBlockIndex {
        block: usize,
        offset: usize,
        index: u8,
    },
    #[error("measurement block {block} at byte {offset}: index {index} appears twice")]
    DuplicateBlockIndex {
        block: usize,
        offset: usize,
        index: u8,
    },
    #[error(
        "measurement block {block} (index {index}) at byte {offset}: specification 0x{specification:02x} is not DMTF"
    )]
    NotDmtfMeasurement {
        block: usize,
        offset: usize,
        index: u8,
        specification: u8,
    },
    #[error(
        "measurement block {block} (index {index}) at byte {offset}: measurement size {measurement_size} does not hold a {value_size}-byte DMTF value"
    )]
    BlockSizeMismatch {
        block: usize,
        offset: usize,
        index: u8,
        measurement_size: u16,
        value_size: u16,
    },
    #[error(
        "measurement record at byte {offset}: {declared} bytes declared but the {blocks} blocks use {used}"
    )]
    RecordLengthMismatch {
        offset: usize,
        declared: u32,
        used: usize,
        blocks: u8,
    },
    #[error("signature at byte {offset}: {found} bytes, expected {expected} (ECDSA P-384 r||s)")]
    SignatureLength {
        offset: usize,
        found: usize,
        expected: usize,
    },
    #[error("opaque field {index} (type {type_id}) at byte {offset}: {reason}")]
    BadOpaqueField {
        index: usize,
        offset: usize,
        type_id: u16,
        reason: String,
    },
    #[error("opaque data at byte {offset}: field type {type_id} appears twice")]
    DuplicateOpaqueField { offset: usize, type_id: u16 },
    #[error("opaque data at byte {offset}: more than {max} fields")]
    TooManyOpaqueFields { offset: usize, max: usize },
}

/// The GET_MEASUREMENTS request as sent by the verifier (first part of NVIDIA's report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementRequest {
    pub spdm_version: u8,
    /// Param1; bit 0 = signature requested.
    pub attributes: u8,
    /// Param2; 0xFF = all measurements.
    pub measurement_operation: u8,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub nonce: [u8; NONCE_LEN],
    /// SlotIDParam: which certificate slot's key signs the response.
    pub slot_id: u8,
    /// Length of the request in bytes (where the response starts).
    pub length: usize,
}

/// One measurement block (DMTF measurement specification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementBlock {
    pub index: u8,
    pub measurement_specification: u8,
    /// DMTFSpecMeasurementValueType: bit 7 = raw bit stream, bits 6..0 = what is measured.
    pub value_type: u8,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub value: Vec<u8>,
    /// Byte offset of the block within the report.
    pub offset: usize,
}

impl MeasurementBlock {
    pub fn is_raw_bit_stream(&self) -> bool {
        self.value_type & 0x80 != 0
    }

    /// DSP0274 name of what the value measures.
    pub fn value_kind(&self) -> &'static str {
        match self.value_type & 0x7f {
            0 => "immutable ROM",
            1 => "mutable firmware",
            2 => "hardware configuration",
            3 => "firmware configuration",
            4 => "measurement manifest",
            5 => "device mode",
            6 => "mutable firmware version",
            7 => "mutable firmware security version",
            _ => "reserved",
        }
    }
}

/// The MEASUREMENTS response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementResponse {
    pub spdm_version: u8,
    pub param1: u8,
    pub param2: u8,
    pub measurement_record_length: u32,
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's own nonce (not the verifier's; that one is in the request).
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub nonce: [u8; NONCE_LEN],
    pub opaque_data_length: u16,
    pub opaque: OpaqueData,
    #[serde(serialize_with = "crate::hexfmt::serialize")]
    pub signature: Vec<u8>,
    /// Byte offset of the response within the report.
    pub offset: usize,
    /// Byte offset of the signature within the report.
    pub signature_offset: usize,
}

/// A parsed report: request ‖ response, plus the bytes the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationReport {
    pub request: MeasurementRequest,
    pub response: MeasurementResponse,
    pub length: usize,
    #[serde(skip)]
    bytes: Vec<u8>,
}

impl AttestationReport {
    /// Request ‖ response without the signature: what the device signed.
    pub fn signed_bytes(&self) -> &[u8] {
        self.bytes
            .get(..self.response.signature_offset)
            .unwrap_or_default()
    }

    pub fn signature(&self) -> &[u8] {
        &self.response.signature
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The block with this SPDM index.
    pub fn block(&self, index: u8) -> Option<&MeasurementBlock> {
        self.response.blocks.iter().find(|b| b.index == index)
    }
}

/// Parses NVIDIA's hex text or raw bytes.
pub fn parse_report_input(input: &[u8]) -> Result<AttestationReport, ReportError> {
    parse_report(&decode_report_input(input)?)
}

/// Parses raw report bytes: request, then response, nothing after the signature.
pub fn parse_report(bytes: &[u8]) -> Result<AttestationReport, ReportError> {
    if bytes.is_empty() {
        return Err(ReportError::Empty);
    }
    if bytes.len() > crate::input::MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            size: bytes.len(),
            max: crate::input::MAX_REPORT_BYTES,
        });
    }
    let mut reader = Reader::new(bytes, 0);
    let request = parse_request(&mut reader)?;
    let response = parse_response(&mut reader, &request)?;
    Ok(AttestationReport {
        request,
        response,
        length: bytes.len(),
        bytes: bytes.to_vec(),
    })
}

fn check_version(version: u8, message: &'static str, offset: usize) -> Result<(), ReportError> {
    if matches!(version, 0x11 | 0x12) {
        Ok(())
    } else {
        Err(ReportError::UnsupportedVersion {
            message,
            offset,
            found: version,
        })
    }
}

fn parse_request(r: &mut Reader<'_>) -> Result<MeasurementRequest, ReportError> {
    let start = r.offset();
    let spdm_version = r.u8("request SPDMVersion")?;
    check_version(spdm_version, "request", start)?;
    let code_offset = r.offset();
    let code = r.u8("request RequestResponseCode")?;
    if code != GET_MEASUREMENTS {
        return Err(ReportError::UnexpectedCode {
            message: "request",
            offset: code_offset,
            found: code,
            expected: GET_MEASUREMENTS,
        });
    }
    let attributes_offset = r.offset();
    let attributes = r.u8("request Param1 (attributes)")?;
    let measurement_operation = r.u8("request Param2 (measurement operation)")?;
    if attributes & ATTR_SIGNATURE_REQUESTED == 0 {
        return Err(ReportError::SignatureNotRequested {
            offset: attributes_offset,
            attributes,
        });
    }
    let nonce = r.array::<NONCE_LEN>("request Nonce")?;
    let slot_id = r.u8("request SlotIDParam")?;
    Ok(MeasurementRequest {
        spdm_version,
        attributes,
        measurement_operation,
        nonce,
        slot_id,
        length: r.offset() - start,
    })
}

fn parse_response(
    r: &mut Reader<'_>,
    request: &MeasurementRequest,
) -> Result<MeasurementResponse, ReportError> {
    let offset = r.offset();
    let spdm_version = r.u8("response SPDMVersion")?;
    if spdm_version != request.spdm_version {
        return Err(ReportError::VersionMismatch {
            offset,
            request: request.spdm_version,
            response: spdm_version,
        });
    }
    let code = r.u8("response RequestResponseCode")?;
    if code != MEASUREMENTS {
        return Err(ReportError::UnexpectedCode {
            message: "response",
            offset: offset + 1,
            found: code,
            expected: MEASUREMENTS,
        });
    }
    let param1 = r.u8("response Param1")?;
    let param2 = r.u8("response Param2")?;
    let count_offset = r.offset();
    let number_of_blocks = r.u8("response NumberOfBlocks")?;
    if number_of_blocks == 0 {
        return Err(ReportError::NoBlocks {
            offset: count_offset,
        });
    }
    let measurement_record_length = r.u24_le("response MeasurementRecordLength")?;
    let record_offset = r.offset();
    let record = r.bytes(
        measurement_record_length as usize,
        "response MeasurementRecord",
    )?;
    let blocks = parse_record(
        record,
        record_offset,
        number_of_blocks,
        measurement_record_length,
    )?;
    let nonce = r.array::<NONCE_LEN>("response Nonce")?;
    let opaque_data_length = r.u16_le("response OpaqueDataLength")?;
    let opaque_offset = r.offset();
    let opaque_bytes = r.bytes(opaque_data_length as usize, "response OpaqueData")?;
    let opaque = parse_opaque_data(opaque_bytes, opaque_offset)?;
    let signature_offset = r.offset();
    let signature = r.rest();
    if signature.len() != P384_SIGNATURE_LEN {
        return Err(ReportError::SignatureLength {
            offset: signature_offset,
            found: signature.len(),
            expected: P384_SIGNATURE_LEN,
        });
    }
    Ok(MeasurementResponse {
        spdm_version,
        param1,
        param2,
        measurement_record_length,
        blocks,
        nonce,
        opaque_data_length,
        opaque,
        signature: signature.to_vec(),
        offset,
        signature_offset,
    })
}

/// Measurement blocks; they must exactly fill the declared record length.
fn parse_record(
    record: &[u8],
    record_offset: usize,
    number_of_blocks: u8,
    declared: u32,
) -> Result<Vec<MeasurementBlock>, ReportError> {
    let mut r = Reader::new(record, record_offset);
    let mut blocks: Vec<MeasurementBlock> = Vec::with_capacity(number_of_blocks.into());
    for block in 0..usize::from(number_of_blocks) {
        let offset = r.offset();
        let index = r.u8("measurement block Index")?;
        if index == 0 || index == 0xFF {
            return Err(ReportError::ReservedBlockIndex {
                block,
                offset,
                index,
            });
        }
        if blocks.iter().any(|b| b.index == index) {
            return Err(ReportError::DuplicateBlockIndex {
                block,
                offset,
                index,
            });
        }
        let specification = r.u8("measurement block MeasurementSpecification")?;
        if specification & MEASUREMENT_SPEC_DMTF == 0 {
            return Err(ReportError::NotDmtfMeasurement {
                block,
                offset,
                index,
                specification,
            });
        }
        let measurement_size = r.u16_le("measurement block MeasurementSize")?;
        let measurement = r.bytes(measurement_size.into(), "measurement block Measurement")?;
        let mut m = Reader::new(measurement, offset + 4);
        let value_type = m.u8("DMTFSpecMeasurementValueType")?;
        let value_size = m.u16_le("DMTFSpecMeasurementValueSize")?;
        if usize::from(value_size) + 3 != usize::from(measurement_size) {
            return Err(ReportError::BlockSizeMismatch {
                block,
                offset,
                index,
                measurement_size,
                value_size,
            });
        }
        let value = m.bytes(value_size.into(), "DMTFSpecMeasurementValue")?;
        blocks.push(MeasurementBlock {
            index,
            measurement_specification: specification,
            value_type,
            value: value.to_vec(),
            offset,
        });
    }
    if r.remaining() != 0 {
        return Err(ReportError::RecordLengthMismatch {
            offset: record_offset,
            declared,
            used: record.len() - r.remaining(),
            blocks: number_of_blocks,
        });
    }
    Ok(blocks)
}
