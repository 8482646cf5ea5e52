//! Text for people: `vigil gpu show` prints every decoded field of a report, `vigil gpu
//! verify` prints the claims. JSON comes from `serde` on the same types.

use std::fmt;

use crate::claims::{ClaimStatus, ClaimValue};
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

/// Columns a detail is wrapped to, counting its indent.
pub const TEXT_WIDTH: usize = 100;

/// Fewest columns given to wrapped text however deep its indent.
const MIN_WRAP: usize = 40;

/// Splits `text` at spaces into lines of at most `width` characters. A word longer than
/// `width` (a hash, a path) gets a line of its own and is never broken, so it stays copyable.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The parts of a multi-part detail `a; b; c`, split at the `; ` separators that are outside
/// brackets (a `[x; y]` list inside one part stays whole).
pub fn detail_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b';' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => {
                parts.push(text[start..i].trim());
                start = i + 2;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        parts.push("");
    }
    parts
}

/// A detail laid out for a column that starts at `indent`: one part of `a; b; c` per line,
/// each wrapped to [`TEXT_WIDTH`], a wrapped part's further lines indented two more columns.
/// The first line carries no indent (it follows a label); every other line carries it.
pub fn hanging_detail(text: &str, indent: usize) -> String {
    // Two columns kept for the deeper indent of a wrapped part's further lines.
    let width = TEXT_WIDTH.saturating_sub(indent + 2).max(MIN_WRAP);
    let mut out = String::new();
    for (p, part) in detail_parts(text).into_iter().enumerate() {
        for (l, line) in wrap_words(part, width).into_iter().enumerate() {
            if p > 0 || l > 0 {
                out.push('\n');
                out.push_str(&" ".repeat(if l > 0 { indent + 2 } else { indent }));
            }
            out.push_str(&line);
        }
    }
    out
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
        // Where a claim's value starts: "  " + label (8) + "  " + name + "  ".
        let indent = 2 + 8 + 2 + width + 2;
        for claim in self.claims.iter() {
            let (label, reason) = match &claim.status {
                ClaimStatus::Verified => ("verified", None),
                ClaimStatus::Failed { reason } => ("FAILED", Some(reason)),
                ClaimStatus::Unknown { reason } => ("unknown", Some(reason)),
            };
            write!(f, "  {label:<8}  {:<width$}  ", claim.name)?;
            match &claim.value {
                // A list is one item per line under the claim.
                ClaimValue::List(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            write!(f, "\n{:indent$}", "")?;
                        }
                        write!(f, "{}", hanging_detail(item, indent))?;
                    }
                }
                value => write!(f, "{}", hanging_detail(&value.to_string(), indent))?,
            }
            writeln!(f)?;
            // The reason (for a failed measurement comparison, the mismatch list) is printed
            // here once, one part per line.
            if let Some(r) = reason {
                writeln!(f, "{:indent$}({})", "", hanging_detail(r, indent + 1))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_wrap_with_a_hanging_indent() {
        let text = "word ".repeat(60);
        let out = hanging_detail(text.trim(), 10);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        // The first line follows a 10-column label; the others carry their indent.
        assert!(lines[0].chars().count() + 10 <= TEXT_WIDTH);
        assert!(lines[1..].iter().all(|l| l.chars().count() <= TEXT_WIDTH));
        assert!(lines[1..].iter().all(|l| l.starts_with(&" ".repeat(12))));
        assert_eq!(out.split_whitespace().count(), 60);
    }

    #[test]
    fn multi_part_details_are_one_part_per_line() {
        let out = hanging_detail("3/4 match; block 1 (x; y): found a; block 2: [p; q]", 4);
        assert_eq!(
            out,
            "3/4 match\n    block 1 (x; y): found a\n    block 2: [p; q]"
        );
        // A hash longer than the width is kept whole.
        let hash = "ab".repeat(80);
        assert_eq!(wrap_words(&format!("x {hash} y"), 50), ["x", &hash, "y"]);
        assert_eq!(hanging_detail("", 4), "");
    }
}

#[cfg(test)]
mod verification_tests {
    use super::*;
    use crate::claims::{Claim, Claims};
    use crate::verify::DeviceKind;

    #[test]
    fn the_mismatch_list_is_printed_once_and_lists_one_item_per_line() {
        let mismatch = "block 2 (Driver RIM index 1, m1): found aa, expected bb";
        let v = GpuVerification {
            verified_at: "2026-05-01T00:00:00Z".into(),
            verified_at_unix: 1_777_593_600,
            device: DeviceKind::Gpu,
            verdict: Verdict::Fail,
            report: None,
            report_error: None,
            leaf_certificate: None,
            certificate_chain: None,
            certificate_chain_error: None,
            rims: None,
            claims: Claims(vec![Claim {
                name: "gpu.measurements.match".into(),
                status: ClaimStatus::failed(format!(
                    "1/3 active golden measurements match; {mismatch}; block 5 (Vbios RIM index 4, m4): not in the report"
                )),
                value: ClaimValue::List(vec!["2".into(), "5".into()]),
            }]),
        };
        let text = v.to_string();
        assert_eq!(text.matches(mismatch).count(), 1, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with("gpu.measurements.match  2"), "{text}");
        assert_eq!(lines[2].trim(), "5", "{text}");
        assert!(lines[3].trim().starts_with("(1/3 active"), "{text}");
        assert_eq!(lines[4].trim(), mismatch, "{text}");
        assert!(lines[5].trim().ends_with("not in the report)"), "{text}");
    }
}
