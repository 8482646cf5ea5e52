//! Text for people: `vigil gpu show` prints every decoded field of a report, `vigil gpu
//! verify` prints the claims. JSON comes from `serde` on the same types.

use std::fmt;

use crate::claims::ClaimStatus;
use crate::opaque::OpaqueValue;
use crate::spdm::{ATTR_SIGNATURE_REQUESTED, AttestationReport};
use crate::verify::{GpuVerification, Verdict};

fn spdm_version(v: u8) -> String {
    format!("{}.{} (0x{v:02x})", v >> 4, v & 0x0f)
}

impl fmt::Display for AttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let req = &self.request;
        writeln!(
            f,
            "SPDM GET_MEASUREMENTS request ({} bytes at offset 0)",
            req.length
        )?;
        writeln!(
            f,
            "  SPDM version           {}",
            spdm_version(req.spdm_version)
        )?;
        writeln!(
            f,
            "  attributes             0x{:02x}{}",
            req.attributes,
            if req.attributes & ATTR_SIGNATURE_REQUESTED != 0 {
                " (signature requested)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  measurement operation  0x{:02x}{}",
            req.measurement_operation,
            if req.measurement_operation == 0xff {
                " (all measurements)"
            } else {
                ""
            }
        )?;
        writeln!(f, "  nonce                  {}", hex::encode(req.nonce))?;
        writeln!(f, "  slot                   {}", req.slot_id)?;

        let resp = &self.response;
        writeln!(
            f,
            "MEASUREMENTS response ({} bytes at offset {})",
            self.length - resp.offset,
            resp.offset
        )?;
        writeln!(
            f,
            "  SPDM version           {}",
            spdm_version(resp.spdm_version)
        )?;
        writeln!(
            f,
            "  param1 / param2        0x{:02x} / 0x{:02x}",
            resp.param1, resp.param2
        )?;
        writeln!(
            f,
            "  measurement blocks     {} ({} bytes)",
            resp.blocks.len(),
            resp.measurement_record_length
        )?;
        writeln!(f, "  responder nonce        {}", hex::encode(resp.nonce))?;
        writeln!(
            f,
            "  opaque data            {} bytes, {} fields ({:?} numbering)",
            resp.opaque_data_length,
            resp.opaque.fields.len(),
            resp.opaque.numbering
        )?;
        writeln!(
            f,
            "  signature              {} bytes at offset {}: {}",
            resp.signature.len(),
            resp.signature_offset,
            hex::encode(&resp.signature)
        )?;

        writeln!(f, "Measurement blocks")?;
        writeln!(
            f,
            "  index  offset  spec  type                                   size  value"
        )?;
        for b in &resp.blocks {
            let kind = format!(
                "0x{:02x} {} ({})",
                b.value_type,
                b.value_kind(),
                if b.is_raw_bit_stream() {
                    "raw"
                } else {
                    "digest"
                }
            );
            writeln!(
                f,
                "  {:>5}  {:>6}  0x{:02x}  {kind:<37}  {:>4}  {}",
                b.index,
                b.offset,
                b.measurement_specification,
                b.value.len(),
                hex::encode(&b.value)
            )?;
        }

        writeln!(f, "Opaque data")?;
        writeln!(f, "  type  offset  size  name                      value")?;
        for field in &resp.opaque.fields {
            writeln!(
                f,
                "  {:>4}  {:>6}  {:>4}  {:<24}  {}",
                field.type_id,
                field.offset,
                field.raw.len(),
                field.name,
                render_value(&field.value)
            )?;
        }
        Ok(())
    }
}

fn render_value(v: &OpaqueValue) -> String {
    match v {
        OpaqueValue::Text(s) | OpaqueValue::Version(s) => s.clone(),
        OpaqueValue::Integer(i) => i.to_string(),
        OpaqueValue::Status(s) => s.to_string(),
        OpaqueValue::FeatureFlag(flag) => flag.to_string(),
        OpaqueValue::Counts(c) => format!(
            "[{}]",
            c.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ),
        OpaqueValue::Pdis(p) => format!("[{}]", p.join(", ")),
        OpaqueValue::SwitchTopology { gpu_pdis, ports } => format!(
            "GPU PDIs [{}]; ports [{}]",
            gpu_pdis.join(", "),
            ports
                .iter()
                .map(|p| format!("{p:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        OpaqueValue::DisabledPorts(p) => format!(
            "disabled ports [{}]",
            p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
        OpaqueValue::Bytes(hex) => hex.clone(),
    }
}

impl fmt::Display for GpuVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Incomplete => "INCOMPLETE",
        };
        writeln!(
            f,
            "NVIDIA {:?} evidence at {}: {verdict}",
            self.device, self.verified_at
        )?;
        if let Some(leaf) = &self.leaf_certificate {
            writeln!(f, "  device certificate  {}", leaf.subject)?;
        }
        let width = self.claims.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for claim in self.claims.iter() {
            let (label, reason) = match &claim.status {
                ClaimStatus::Verified => ("verified", None),
                ClaimStatus::Failed { reason } => ("FAILED", Some(reason)),
                ClaimStatus::Unknown { reason } => ("unknown", Some(reason)),
            };
            write!(f, "  {label:<8}  {:<width$}  {}", claim.name, claim.value)?;
            match reason {
                Some(r) => writeln!(f, "\n            {:<width$}  ({r})", "")?,
                None => writeln!(f)?,
            }
        }
        if let Some(rims) = &self.rims {
            for m in &rims.comparison.mismatches {
                writeln!(f, "  mismatch  {m}")?;
            }
        }
        Ok(())
    }
}
