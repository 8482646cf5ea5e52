//! What the verifier concluded about one piece of evidence: every check it made, in order,
//! with what it found. The CLI prints it, `--json` serialises it, gRPC carries it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_proto::v1;

use crate::baseline::{Appraisal, Outcome};
use crate::claims::ClaimSet;

/// Pass only when every check passed: deny unless proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable dotted name, e.g. `nonce.fresh`, `quote.signature`.
    pub name: String,
    pub passed: bool,
    /// What was found; on failure, what failed and where.
    pub detail: String,
}

impl Check {
    pub fn pass(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.to_owned(),
            passed: true,
            detail: detail.into(),
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.to_owned(),
            passed: false,
            detail: detail.into(),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (civil-from-days, proleptic Gregorian).
pub fn format_unix_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC) or plain Unix seconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (proleptic Gregorian), the inverse of `format_unix_utc`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// How far the node's AK is trusted.
pub const AK_TRUST_TOFU: &str = "tofu";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationReport {
    pub node_id: String,
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    /// "tofu": the AK was recorded on first contact and is NOT proven to be in a TPM.
    pub ak_trust: String,
    pub ak_name: String,
    pub nonce: String,
    pub verified_at: i64,
    /// Verified PCR values: bank -> PCR index -> hex digest. Only quoted PCRs appear.
    pub quoted_pcrs: BTreeMap<String, BTreeMap<u32, String>>,
    /// Boot claims from the event log (empty when there is none or it did not replay).
    #[serde(default)]
    pub claims: Vec<crate::evidence::eventlog::Claim>,
    /// Every claim appraisal saw (PCRs, boot, GPUs); stored so a proposed baseline can be
    /// tried against it later (`vigil baseline impact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_claims: Option<ClaimSet>,
    /// AR4SI status: affirming, warning, contraindicated or none.
    #[serde(default)]
    pub status: String,
    /// `name@version` of the baseline applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appraisal: Option<Appraisal>,
    /// The signed EAR (JWT), when this verifier signs results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_token: Option<String>,
    /// For an IMA list sent from entry N > 0: the verified state it was replayed from, so the
    /// verdict can be re-appraised from its stored evidence alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_start: Option<crate::evidence::ima::ImaStart>,
}

impl AttestationReport {
    /// Builds the report; the verdict follows from the checks and nothing else.
    pub fn new(node_id: &str, nonce: &[u8], verified_at: i64, checks: Vec<Check>) -> Self {
        let verdict = if !checks.is_empty() && checks.iter().all(|c| c.passed) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        AttestationReport {
            node_id: node_id.to_owned(),
            verdict,
            checks,
            ak_trust: AK_TRUST_TOFU.to_owned(),
            ak_name: String::new(),
            nonce: hex::encode(nonce),
            verified_at,
            quoted_pcrs: BTreeMap::new(),
            claims: Vec::new(),
            host_claims: None,
            status: String::new(),
            baseline: None,
            appraisal: None,
            result_token: None,
            ima_start: None,
        }
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// One line a person can act on.
    pub fn summary(&self) -> String {
        match self.verdict {
            Verdict::Pass => format!(
                "PASS: node {} - all {} checks passed",
                self.node_id,
                self.checks.len()
            ),
            Verdict::Fail => {
                let failed: Vec<&str> = self.failed_checks().map(|c| c.name.as_str()).collect();
                format!(
                    "FAIL: node {} - failed: {}",
                    self.node_id,
                    failed.join(", ")
                )
            }
        }
    }

    /// The readable form `vigil verify` prints.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("node        {}\n", self.node_id));
        out.push_str(&format!(
            "verdict     {}\n",
            match self.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
            }
        ));
        out.push_str(&format!("nonce       {}\n", self.nonce));
        if !self.ak_name.is_empty() {
            out.push_str(&format!("AK name     {}\n", self.ak_name));
        }
        if self.ak_trust == AK_TRUST_TOFU {
            out.push_str(
                "AK trust    TRUST ON FIRST USE - the AK was taken at first contact, NOT proven to live in\n            \
                 a genuine TPM (register the node with `vigil node register` for that)\n",
            );
        } else {
            out.push_str(&format!("AK trust    {}\n", self.ak_trust));
        }
        out.push_str("checks\n");
        for check in &self.checks {
            out.push_str(&render_check(check));
        }
        for (bank, values) in &self.quoted_pcrs {
            out.push_str(&format!("quoted PCRs ({bank})\n"));
            for (index, value) in values {
                out.push_str(&format!("  {index:>2}: {value}\n"));
            }
        }
        if let Some(appraisal) = &self.appraisal {
            out.push_str(&render_appraisal(appraisal));
        }
        if !self.status.is_empty() {
            out.push_str(&format!("status      {}\n", self.status));
        }
        if let Some(token) = &self.result_token {
            out.push_str(&format!(
                "result      signed EAR, {} bytes (--json shows it; `vigil result verify`)\n",
                token.len()
            ));
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    pub fn to_proto(&self) -> v1::AttestationResult {
        v1::AttestationResult {
            node_id: self.node_id.clone(),
            verdict: match self.verdict {
                Verdict::Pass => v1::Verdict::Pass as i32,
                Verdict::Fail => v1::Verdict::Fail as i32,
            },
            checks: self
                .checks
                .iter()
                .map(|c| v1::Check {
                    name: c.name.clone(),
                    passed: c.passed,
                    detail: c.detail.clone(),
                })
                .collect(),
            ak_trust: self.ak_trust.clone(),
            nonce: hex::decode(&self.nonce).unwrap_or_default(),
            verified_at_unix: self.verified_at,
            summary: self.summary(),
            ak_name_hex: self.ak_name.clone(),
            status: self.status.clone(),
            appraisal_json: self
                .appraisal
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok())
                .unwrap_or_default(),
            result_token: self.result_token.clone().unwrap_or_default(),
            baseline: self.baseline.clone().unwrap_or_default(),
            claims_json: self
                .host_claims
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok())
                .unwrap_or_default(),
            quoted_pcrs: self
                .quoted_pcrs
                .iter()
                .map(|(bank, values)| {
                    (
                        bank.clone(),
                        v1::PcrBank {
                            bank: bank.clone(),
                            values: values
                                .iter()
                                .map(|(i, v)| (*i, hex::decode(v).unwrap_or_default()))
                                .collect(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Rebuilds a report from the wire (what `vigil verify --verifier` receives).
    pub fn from_proto(result: &v1::AttestationResult) -> Self {
        let checks = result
            .checks
            .iter()
            .map(|c| Check {
                name: c.name.clone(),
                passed: c.passed,
                detail: c.detail.clone(),
            })
            .collect();
        let mut report = AttestationReport::new(
            &result.node_id,
            &result.nonce,
            result.verified_at_unix,
            checks,
        );
        // Never upgrade: a result the server called FAIL stays FAIL here.
        if result.verdict != v1::Verdict::Pass as i32 {
            report.verdict = Verdict::Fail;
        }
        report.ak_trust = result.ak_trust.clone();
        report.ak_name = result.ak_name_hex.clone();
        report.status = result.status.clone();
        report.appraisal = serde_json::from_str(&result.appraisal_json).ok();
        report.result_token = Some(result.result_token.clone()).filter(|t| !t.is_empty());
        report.baseline = Some(result.baseline.clone()).filter(|b| !b.is_empty());
        report.host_claims = serde_json::from_str(&result.claims_json).ok();
        report.quoted_pcrs = result
            .quoted_pcrs
            .iter()
            .map(|(bank, values)| {
                (
                    bank.clone(),
                    values
                        .values
                        .iter()
                        .map(|(i, v)| (*i, hex::encode(v)))
                        .collect(),
                )
            })
            .collect();
        report
    }
}

/// One check as `  [ ok ] name  detail`: a long detail wraps at about 100 columns under
/// itself (a hanging indent), and a multi-part detail `a; b; c` is one part per line.
pub fn render_check(check: &Check) -> String {
    let name = format!("{:<28}", check.name);
    // "  [FAIL] " + name + " ".
    let indent = 9 + name.chars().count() + 1;
    format!(
        "  [{}] {name} {}\n",
        if check.passed { " ok " } else { "FAIL" },
        vigil_nvidia::render::hanging_detail(&check.detail, indent)
    )
}

/// The appraisal as a table: one line per rule result, ✔ or ✘, expected vs found, and where
/// the value came from.
pub fn render_appraisal(appraisal: &Appraisal) -> String {
    let mut out = format!("appraisal   baseline {}\n", appraisal.baseline);
    for (name, submodule) in &appraisal.submods {
        out.push_str(&format!(
            "  {name:<6} {:<16} {} passed, {} not met; trust vector {}\n",
            serde_json::to_value(submodule.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            submodule.rules_passed,
            submodule.rules_failed,
            serde_json::to_string(&submodule.trust_vector).unwrap_or_default()
        ));
    }
    for result in &appraisal.results {
        let mark = match result.outcome {
            Outcome::Pass => "\u{2714}",
            Outcome::Fail => "\u{2718}",
            Outcome::Unevaluable => "\u{2718}?",
        };
        out.push_str(&format!(
            "  {mark:<2} {:<28} {:<40} expected {}\n",
            result.rule, result.claim, result.expected
        ));
        if result.outcome != Outcome::Pass {
            let source = result
                .source
                .as_ref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let what = if result.outcome == Outcome::Unevaluable {
                "cannot evaluate"
            } else {
                "found"
            };
            out.push_str(&format!("       {what}: {}{source}\n", result.found));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_is_pass_only_if_every_check_passed() {
        let pass = AttestationReport::new("n", &[1], 0, vec![Check::pass("a", "")]);
        assert_eq!(pass.verdict, Verdict::Pass);
        let fail = AttestationReport::new(
            "n",
            &[1],
            0,
            vec![Check::pass("a", ""), Check::fail("b", "why")],
        );
        assert_eq!(fail.verdict, Verdict::Fail);
        assert!(fail.summary().contains("failed: b"));
        let empty = AttestationReport::new("n", &[1], 0, vec![]);
        assert_eq!(empty.verdict, Verdict::Fail, "no checks is not a pass");
    }

    #[test]
    fn long_and_multi_part_details_render_one_part_per_wrapped_line() {
        let parts: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "sha256:{i} replayed {} quoted {}",
                    "ab".repeat(32),
                    "cd".repeat(32)
                )
            })
            .collect();
        let text = render_check(&Check::fail("eventlog.replay", parts.join("; ")));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("  [FAIL] eventlog.replay"), "{text}");
        assert!(lines[0].contains("sha256:0 replayed"), "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= 110), "{text}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with(&" ".repeat(38))),
            "{text}"
        );
        for (i, part) in parts.iter().enumerate() {
            // Each part starts a line of its own (the first one follows the name).
            let start = format!("sha256:{i} replayed");
            let starting = lines
                .iter()
                .filter(|l| l.trim_start().starts_with(&start))
                .count();
            assert_eq!(starting, usize::from(i > 0), "{text}");
            assert!(part.split_whitespace().all(|w| text.contains(w)));
        }
        let short = render_check(&Check::pass("nonce.fresh", "nonce matches"));
        assert_eq!(
            short,
            format!("  [ ok ] {:<28} nonce matches\n", "nonce.fresh")
        );
    }

    #[test]
    fn proto_round_trip_keeps_failures() {
        let report =
            AttestationReport::new("n", &[1, 2], 5, vec![Check::fail("quote.signature", "bad")]);
        let back = AttestationReport::from_proto(&report.to_proto());
        assert_eq!(back, report);
    }
}

#[cfg(test)]
mod time_tests {
    use super::format_unix_utc;

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix_utc(0), "1970-01-01T00:00:00Z");
        for t in [0, 951_782_400, 1_795_903_229, 4_102_444_799] {
            assert_eq!(super::parse_utc(&format_unix_utc(t)), Some(t));
        }
        assert_eq!(super::parse_utc("1700000000"), Some(1_700_000_000));
        assert_eq!(super::parse_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(super::parse_utc("yesterday"), None);
        assert_eq!(format_unix_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_utc(1_795_903_229), "2026-11-28T22:00:29Z");
    }
}
