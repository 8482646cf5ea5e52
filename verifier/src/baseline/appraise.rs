//! Appraisal: a pure function from (claims, evidence checks, baseline, time) to an
//! [`Appraisal`]: every rule's result with expected vs found and where the value came from,
//! an AR4SI trust vector and status per submodule (`host`, `gpu0`, …) and overall.
//!
//! Deny by default: a rule whose claim is missing, unproven or of the wrong type is
//! `unevaluable`, which counts exactly like a failure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_ear::{Status, TrustVector};

use super::rules::{Category, Quantifier, Rule, Severity, judge_with_reason};
use crate::claims::{
    ClaimSet, HostClaim, Source, Trust, Value, gpu_index, split_name, tokens_match,
};
use crate::report::Check;

/// A compiled baseline at one immutable version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub reference: BaselineRef,
    pub rules: Vec<Rule>,
}

/// Which baseline an appraisal used: name, version and the SHA-256 of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineRef {
    pub name: String,
    pub version: i64,
    pub sha256: String,
}

impl std::fmt::Display for BaselineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// The rule could not be evaluated (no claim, unproven claim, wrong type): not a pass.
    Unevaluable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule: String,
    pub submodule: String,
    /// The concrete claim judged (the rule's pattern when none matched).
    pub claim: String,
    pub outcome: Outcome,
    pub expected: String,
    pub found: String,
    pub category: Category,
    pub severity: Severity,
    /// Where the value came from (event, PCR, GPU), when a claim was found.
    pub source: Option<Source>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmoduleAppraisal {
    pub status: Status,
    pub trust_vector: TrustVector,
    pub rules_passed: usize,
    pub rules_failed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appraisal {
    pub baseline: BaselineRef,
    pub status: Status,
    /// When the appraisal was made (Unix seconds).
    pub appraised_at: i64,
    pub submods: BTreeMap<String, SubmoduleAppraisal>,
    pub results: Vec<RuleResult>,
}

impl Appraisal {
    /// Affirming or warning: the host may be scheduled (warnings are shown).
    pub fn acceptable(&self) -> bool {
        matches!(self.status, Status::Affirming | Status::Warning)
    }

    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.results.iter().filter(|r| r.outcome != Outcome::Pass)
    }
}

/// AR4SI values Vigil assigns (draft-ietf-rats-ar4si): 2 affirming, 32 warning, 96
/// contraindicated. The finer codes of each category are not distinguished yet.
fn claim_value(outcome: Outcome, severity: Severity) -> i8 {
    match (outcome, severity) {
        (Outcome::Pass, _) => vigil_ear::ar4si::AFFIRMING,
        (_, Severity::Warning) => vigil_ear::ar4si::WARNING,
        (_, Severity::Contraindicated) => vigil_ear::ar4si::CONTRAINDICATED,
    }
}

fn slot(vector: &mut TrustVector, category: Category) -> &mut i8 {
    match category {
        Category::InstanceIdentity => &mut vector.instance_identity,
        Category::Configuration => &mut vector.configuration,
        Category::Executables => &mut vector.executables,
        Category::FileSystem => &mut vector.file_system,
        Category::Hardware => &mut vector.hardware,
        Category::RuntimeOpaque => &mut vector.runtime_opaque,
        Category::StorageOpaque => &mut vector.storage_opaque,
        Category::SourcedData => &mut vector.sourced_data,
    }
}

/// Submodule a claim belongs to: `gpu<N>` for GPU claims, else `host`.
fn submodule_of(name: &str) -> String {
    gpu_index(name).map_or_else(|| "host".to_owned(), |i| format!("gpu{i}"))
}

/// Evidence checks fold into the trust vector too: they prove (or disprove) identity.
fn check_category(name: &str) -> Category {
    if name.starts_with("eventlog.") {
        Category::Executables
    } else {
        Category::InstanceIdentity
    }
}

/// Appraises `claims` (with the evidence `checks` they came from) against `baseline` at
/// time `at`. Pure: same inputs, same appraisal.
pub fn appraise(claims: &ClaimSet, checks: &[Check], baseline: &Baseline, at: i64) -> Appraisal {
    let age = HostClaim {
        name: "evidence.age_seconds".into(),
        value: Some(Value::Int(at.saturating_sub(claims.verified_at).max(0))),
        trust: Trust::Verified,
        source: Source::Verifier {
            check: "nonce.fresh".into(),
        },
        detail: None,
    };
    // Names are split into tokens once per appraisal, not once per rule.
    let all: Vec<(Vec<&str>, &HostClaim)> = claims
        .claims
        .iter()
        .chain(std::iter::once(&age))
        .map(|c| (split_name(&c.name), c))
        .collect();
    let gpus = claims.gpu_indices();
    let vendor_of = |gpu: u32| {
        claims
            .get(&format!("gpu[{gpu}].vendor"))
            .and_then(|c| c.value.as_ref())
            .map(ToString::to_string)
    };
    let mut results = Vec::new();
    for rule in &baseline.rules {
        match &rule.vendor {
            Some(vendor) => {
                let theirs: Vec<u32> = gpus
                    .iter()
                    .copied()
                    .filter(|g| vendor_of(*g).as_deref() == Some(vendor.as_str()))
                    .collect();
                evaluate(rule, &all, &theirs, &mut results);
            }
            None => evaluate(rule, &all, &gpus, &mut results),
        }
    }

    let mut vectors: BTreeMap<String, TrustVector> = BTreeMap::new();
    vectors.insert("host".into(), TrustVector::default());
    for gpu in &gpus {
        vectors.insert(format!("gpu{gpu}"), TrustVector::default());
    }
    for check in checks.iter().filter(|c| !c.name.starts_with("baseline.")) {
        let submodule = submodule_of(&check.name);
        let outcome = if check.passed {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        let value = claim_value(outcome, Severity::Contraindicated);
        let vector = vectors.entry(submodule).or_default();
        let entry = slot(vector, check_category(&check.name));
        *entry = (*entry).max(value);
    }
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for result in &results {
        let value = claim_value(result.outcome, result.severity);
        let vector = vectors.entry(result.submodule.clone()).or_default();
        let entry = slot(vector, result.category);
        *entry = (*entry).max(value);
        let count = counts.entry(result.submodule.clone()).or_default();
        if result.outcome == Outcome::Pass {
            count.0 += 1;
        } else {
            count.1 += 1;
        }
    }
    let submods: BTreeMap<String, SubmoduleAppraisal> = vectors
        .into_iter()
        .map(|(name, trust_vector)| {
            let (rules_passed, rules_failed) = counts.get(&name).copied().unwrap_or_default();
            let appraisal = SubmoduleAppraisal {
                status: trust_vector.status(),
                trust_vector,
                rules_passed,
                rules_failed,
            };
            (name, appraisal)
        })
        .collect();
    let status = submods
        .values()
        .map(|s| s.status)
        .max()
        .unwrap_or(Status::None);
    Appraisal {
        baseline: baseline.reference.clone(),
        status,
        appraised_at: at,
        submods,
        results,
    }
}

fn evaluate(
    rule: &Rule,
    claims: &[(Vec<&str>, &HostClaim)],
    gpus: &[u32],
    out: &mut Vec<RuleResult>,
) {
    let expected = rule.expect.to_string();
    let result =
        |submodule: String, claim: &str, outcome, found: String, source: Option<Source>| {
            // A value only the host reported (a GPU inventory) speaks to configuration, whatever
            // the rule's category: it is never hardware-signed.
            let category = match source {
                Some(Source::GpuInventory { .. }) => Category::Configuration,
                _ => rule.category,
            };
            RuleResult {
                rule: rule.id.clone(),
                submodule,
                claim: claim.to_owned(),
                outcome,
                expected: expected.clone(),
                found,
                category,
                severity: rule.severity,
                source,
                description: rule.description.clone(),
            }
        };
    // A vendor's rule with none of that vendor's devices present judges nothing: unevaluable.
    if let Some(vendor) = &rule.vendor
        && gpus.is_empty()
        && rule.claim.starts_with("gpu[")
    {
        out.push(result(
            "host".to_owned(),
            &rule.claim,
            Outcome::Unevaluable,
            format!("no {vendor} device presented"),
            None,
        ));
        return;
    }
    // A GPU rule applies to every GPU the host presented: a GPU without the claim is
    // unevaluable, never skipped.
    let scopes: Vec<(String, String)> = match rule.claim.strip_prefix("gpu[*]") {
        Some(rest) if !gpus.is_empty() => gpus
            .iter()
            .map(|g| (format!("gpu{g}"), format!("gpu[{g}]{rest}")))
            .collect(),
        _ => vec![(submodule_of(&rule.claim), rule.claim.clone())],
    };
    for (submodule, pattern) in scopes {
        let pattern_tokens = split_name(&pattern);
        let matched: Vec<&HostClaim> = claims
            .iter()
            .filter(|(tokens, _)| tokens_match(&pattern_tokens, tokens))
            .map(|(_, claim)| *claim)
            .collect();
        if matched.is_empty() {
            if rule.quantifier == Quantifier::All {
                out.push(result(
                    submodule,
                    &pattern,
                    Outcome::Pass,
                    "nothing to judge (no matching claims)".to_owned(),
                    None,
                ));
                continue;
            }
            let why = if pattern.starts_with("gpu[") && gpus.is_empty() {
                match &rule.vendor {
                    Some(vendor) => format!("no {vendor} device presented"),
                    None => "no GPU evidence presented".to_owned(),
                }
            } else {
                "no such claim in the evidence".to_owned()
            };
            out.push(result(submodule, &pattern, Outcome::Unevaluable, why, None));
            continue;
        }
        let judged = matched
            .iter()
            .map(|claim| (*claim, judge_claim(rule, claim)));
        match rule.quantifier {
            Quantifier::Each => {
                for (claim, (outcome, found)) in judged {
                    out.push(result(
                        submodule.clone(),
                        &claim.name,
                        outcome,
                        found,
                        Some(claim.source.clone()),
                    ));
                }
            }
            Quantifier::All => {
                let total = matched.len();
                let mut not_met = 0usize;
                for (claim, (outcome, found)) in judged {
                    if outcome == Outcome::Pass {
                        continue;
                    }
                    not_met += 1;
                    if not_met <= MAX_LISTED_FAILURES {
                        out.push(result(
                            submodule.clone(),
                            &claim.name,
                            outcome,
                            found,
                            Some(claim.source.clone()),
                        ));
                    }
                }
                if not_met == 0 {
                    out.push(result(
                        submodule,
                        &pattern,
                        Outcome::Pass,
                        format!("all {total} met"),
                        None,
                    ));
                } else if not_met > MAX_LISTED_FAILURES {
                    out.push(result(
                        submodule,
                        &pattern,
                        Outcome::Fail,
                        format!(
                            "{not_met} of {total} not met; the first {MAX_LISTED_FAILURES} are listed"
                        ),
                        None,
                    ));
                }
            }
            Quantifier::Any => {
                let mut misses = Vec::new();
                let mut met = None;
                for (claim, (outcome, found)) in judged {
                    if outcome == Outcome::Pass {
                        met = Some((claim, found));
                        break;
                    }
                    if !found.ends_with(super::ima::ANOTHER_FILE) && misses.len() < 5 {
                        misses.push(found);
                    }
                }
                match met {
                    Some((claim, found)) => out.push(result(
                        submodule,
                        &claim.name,
                        Outcome::Pass,
                        found,
                        Some(claim.source.clone()),
                    )),
                    None => out.push(result(
                        submodule,
                        &pattern,
                        Outcome::Fail,
                        if misses.is_empty() {
                            "never measured since boot".to_owned()
                        } else {
                            misses.join("; ")
                        },
                        None,
                    )),
                }
            }
        }
    }
}

/// At most this many failing claims of one rule are listed (the rest are counted).
const MAX_LISTED_FAILURES: usize = 100;

/// One claim against one rule: outcome and what was found.
fn judge_claim(rule: &Rule, claim: &HostClaim) -> (Outcome, String) {
    let found_value = claim
        .value
        .as_ref()
        .map_or_else(|| "(no value)".to_owned(), ToString::to_string);
    match (&claim.trust, &claim.value) {
        (trust, _) if !trust.usable() => (
            Outcome::Unevaluable,
            format!("{found_value} - not usable: {}", trust_reason(trust)),
        ),
        (_, None) => (Outcome::Unevaluable, "the claim has no value".to_owned()),
        (_, Some(value)) => match judge_with_reason(&rule.expect, value) {
            Ok(None) => (Outcome::Pass, found_value),
            Ok(Some(why)) if !why.is_empty() => (Outcome::Fail, why),
            Ok(Some(_)) => (
                Outcome::Fail,
                match &claim.detail {
                    Some(detail) => format!("{found_value} ({detail})"),
                    None => found_value,
                },
            ),
            Err(why) => (Outcome::Unevaluable, format!("{found_value} - {why}")),
        },
    }
}

fn trust_reason(trust: &Trust) -> String {
    match trust {
        Trust::Verified => "verified".into(),
        Trust::Attested(why) | Trust::Unproven(why) => format!("unproven ({why})"),
        Trust::Failed(why) => format!("failed ({why})"),
    }
}
