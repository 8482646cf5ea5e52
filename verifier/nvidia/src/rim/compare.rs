//! Golden measurements against the report's blocks. A block matches when its value has the
//! golden size and equals one of the alternatives. Report blocks no active golden value
//! covers are listed, not counted as matches.

use serde::Serialize;

use super::RimRole;
use super::swid::Rim;
use crate::spdm::AttestationReport;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementMismatch {
    /// SPDM measurement block index (RIM index + 1).
    pub block_index: u16,
    pub rim_index: u32,
    pub rim: RimRole,
    pub name: String,
    #[serde(serialize_with = "hex_list")]
    pub expected: Vec<Vec<u8>>,
    /// The report's value; `None` when the report has no such block.
    #[serde(serialize_with = "crate::hexfmt::serialize_opt")]
    pub found: Option<Vec<u8>>,
}

fn hex_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

impl std::fmt::Display for MeasurementMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "block {} ({:?} RIM index {}, {}): ",
            self.block_index, self.rim, self.rim_index, self.name
        )?;
        match &self.found {
            None => write!(f, "not in the report"),
            Some(v) => write!(
                f,
                "found {}, expected {}",
                hex::encode(v),
                self.expected
                    .iter()
                    .map(hex::encode)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimMatchCount {
    pub rim: RimRole,
    pub source: String,
    pub active: usize,
    pub matched: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MeasurementComparison {
    pub compared: usize,
    pub matched: usize,
    pub per_rim: Vec<RimMatchCount>,
    pub mismatches: Vec<MeasurementMismatch>,
    /// RIM indices active in more than one RIM (ambiguous reference).
    pub conflicts: Vec<u32>,
    /// Report blocks (SPDM indices) without an active golden value.
    pub uncovered_blocks: Vec<u8>,
}

pub fn compare_measurements(
    report: &AttestationReport,
    rims: &[(RimRole, &Rim)],
) -> MeasurementComparison {
    let mut out = MeasurementComparison::default();
    let mut covered: Vec<u32> = Vec::new();
    for (role, rim) in rims {
        let mut count = RimMatchCount {
            rim: *role,
            source: rim.source.clone(),
            active: 0,
            matched: 0,
        };
        for golden in rim.active_measurements() {
            count.active += 1;
            out.compared += 1;
            if covered.contains(&golden.index) {
                if !out.conflicts.contains(&golden.index) {
                    out.conflicts.push(golden.index);
                }
            } else {
                covered.push(golden.index);
            }
            let block_index = golden.index + 1;
            let found = u8::try_from(block_index)
                .ok()
                .and_then(|i| report.block(i))
                .map(|b| b.value.clone());
            let matches = found.as_ref().is_some_and(|v| {
                v.len() == golden.size && golden.alternatives.iter().any(|a| a == v)
            });
            if matches {
                count.matched += 1;
                out.matched += 1;
            } else {
                out.mismatches.push(MeasurementMismatch {
                    block_index: u16::try_from(block_index).unwrap_or(u16::MAX),
                    rim_index: golden.index,
                    rim: *role,
                    name: golden.name.clone(),
                    expected: golden.alternatives.clone(),
                    found,
                });
            }
        }
        out.per_rim.push(count);
    }
    out.uncovered_blocks = report
        .response
        .blocks
        .iter()
        .map(|b| b.index)
        .filter(|i| !covered.contains(&(u32::from(*i) - 1)))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rim::swid::{GoldenMeasurement, RimKind};
    use crate::spdm::parse_report;

    /// A structurally valid (unsigned) report with these blocks.
    fn report(blocks: &[(u8, Vec<u8>)]) -> AttestationReport {
        let mut bytes = vec![0x11, 0xe0, 0x01, 0xff];
        bytes.extend([0u8; 32]);
        bytes.push(0);
        let mut record = Vec::new();
        for (index, value) in blocks {
            record.extend([*index, 1]);
            record.extend(((value.len() + 3) as u16).to_le_bytes());
            record.push(1);
            record.extend((value.len() as u16).to_le_bytes());
            record.extend(value);
        }
        bytes.extend([0x11, 0x60, 0, 0, blocks.len() as u8]);
        bytes.extend(&(record.len() as u32).to_le_bytes()[..3]);
        bytes.extend(record);
        bytes.extend([0u8; 32]);
        bytes.extend([0, 0]);
        bytes.extend([0u8; 96]);
        parse_report(&bytes).unwrap()
    }

    fn rim(measurements: Vec<GoldenMeasurement>) -> Rim {
        Rim {
            source: "t".into(),
            tag_id: String::new(),
            name: String::new(),
            version: "1.0".into(),
            kind: RimKind::Driver,
            edition: None,
            product: None,
            platform_manufacturer_id: None,
            platform_model: None,
            measurements: measurements.into(),
            xml: std::sync::Arc::from(""),
            xml_sha256: [0; 32],
        }
    }

    fn golden(index: u32, active: bool, alternatives: &[&[u8]]) -> GoldenMeasurement {
        GoldenMeasurement {
            index,
            name: format!("m{index}"),
            active,
            size: alternatives[0].len(),
            alternatives: alternatives.iter().map(|a| a.to_vec()).collect(),
        }
    }

    #[test]
    fn alternatives_sizes_missing_blocks_conflicts_and_coverage() {
        let r = report(&[
            (1, vec![1, 1]),
            (2, vec![2, 2]),
            (3, vec![3, 3, 3]),
            (4, vec![4, 4]),
        ]);
        let driver = rim(vec![
            golden(0, true, &[&[9, 9], &[1, 1]]), // second alternative matches block 1
            golden(1, true, &[&[7, 7]]),          // block 2 differs
            golden(2, true, &[&[3, 3]]),          // block 3 has the wrong size
            golden(3, false, &[&[0, 0]]),         // inactive: block 4 stays uncovered
            golden(9, true, &[&[5, 5]]),          // block 10 is not in the report
        ]);
        let vbios = rim(vec![golden(0, true, &[&[1, 1]])]); // index 0 again: conflict
        let c = compare_measurements(&r, &[(RimRole::Driver, &driver), (RimRole::Vbios, &vbios)]);
        assert_eq!((c.matched, c.compared), (2, 5));
        let blocks: Vec<u16> = c.mismatches.iter().map(|m| m.block_index).collect();
        assert_eq!(blocks, vec![2, 3, 10]);
        assert_eq!(c.mismatches[2].found, None);
        assert!(c.mismatches[2].to_string().contains("not in the report"));
        assert_eq!(c.conflicts, vec![0]);
        assert_eq!(c.uncovered_blocks, vec![4]);
        assert_eq!(c.per_rim[0].matched, 1);
        assert_eq!(c.per_rim[1].matched, 1);
    }
}
