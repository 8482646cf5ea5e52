//! What-if: a proposed baseline judged against every node's latest recorded claims, before
//! anything is applied. Appraisal is pure, so this is the same function the verifier runs,
//! fed with stored claims instead of fresh evidence.

use serde::Serialize;

use crate::baseline::{Baseline, BaselineRef, CompiledBaseline, Outcome, appraise};
use crate::claims::ClaimSet;
use crate::report::AttestationReport;
use crate::store::StoreError;
use crate::store_api::StoreOps;

#[derive(Debug, Clone, Serialize)]
pub struct NodeImpact {
    pub node_id: String,
    pub group: String,
    /// Status of the node's latest recorded result.
    pub current_status: String,
    /// Status under the proposed baseline (its evidence checks as recorded).
    pub proposed_status: String,
    pub changes: bool,
    /// Rules the proposal would not see met, with expected vs found.
    pub reasons: Vec<String>,
    pub evidence_time: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImpactReport {
    pub baseline: String,
    pub nodes: Vec<NodeImpact>,
}

impl From<NodeImpact> for vigil_proto::v1::NodeImpact {
    fn from(n: NodeImpact) -> Self {
        vigil_proto::v1::NodeImpact {
            node_id: n.node_id,
            group: n.group,
            current_status: n.current_status,
            proposed_status: n.proposed_status,
            changes: n.changes,
            reasons: n.reasons,
            evidence_time_unix: n.evidence_time,
        }
    }
}

impl From<vigil_proto::v1::NodeImpact> for NodeImpact {
    fn from(n: vigil_proto::v1::NodeImpact) -> Self {
        NodeImpact {
            node_id: n.node_id,
            group: n.group,
            current_status: n.current_status,
            proposed_status: n.proposed_status,
            changes: n.changes,
            reasons: n.reasons,
            evidence_time: n.evidence_time_unix,
        }
    }
}

impl ImpactReport {
    pub fn changed(&self) -> impl Iterator<Item = &NodeImpact> {
        self.nodes.iter().filter(|n| n.changes)
    }
}

fn status_name(status: vigil_ear::Status) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Evaluates `proposed` for the nodes of `group` (or of the groups it is assigned to, or
/// every node). The evidence age is taken at the time of each node's verdict: the question
/// is how that evidence would have been judged.
pub fn impact(
    store: &mut dyn StoreOps,
    proposed: &CompiledBaseline,
    sha256: &str,
    group: Option<&str>,
) -> Result<ImpactReport, StoreError> {
    let baseline = Baseline {
        reference: BaselineRef {
            name: proposed.name.clone(),
            version: 0,
            sha256: sha256.to_owned(),
        },
        rules: proposed.rules.clone(),
    };
    let assignments = store.baseline_assignments()?;
    let assigned_groups: Vec<&String> = assignments
        .iter()
        .filter(|(_, name)| **name == proposed.name)
        .map(|(group, _)| group)
        .collect();
    let nodes = store.nodes()?;
    let mut out = Vec::new();
    for verdict in store.latest_verdicts()? {
        let Some(node) = nodes.iter().find(|n| n.node_id == verdict.node_id) else {
            continue; // removed since
        };
        let wanted = match group {
            Some(group) => node.group == group,
            None if !assigned_groups.is_empty() => assigned_groups.contains(&&node.group),
            None => true,
        };
        if !wanted {
            continue;
        }
        let Ok(report) = serde_json::from_str::<AttestationReport>(&verdict.result_json) else {
            out.push(unreadable(
                &node.node_id,
                &node.group,
                &verdict.verdict,
                verdict.verified_at,
            ));
            continue;
        };
        let current_status = if report.status.is_empty() {
            // Results recorded before appraisal existed.
            if report.verdict == crate::report::Verdict::Pass {
                "warning".into()
            } else {
                "contraindicated".into()
            }
        } else {
            report.status.clone()
        };
        let claims: ClaimSet = report.host_claims.clone().unwrap_or_default();
        let evidence_checks: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.name.starts_with("baseline."))
            .cloned()
            .collect();
        let appraisal = appraise(&claims, &evidence_checks, &baseline, claims.verified_at);
        let evidence_ok = evidence_checks.iter().all(|c| c.passed);
        let mut proposed_status = appraisal.status;
        if !evidence_ok {
            proposed_status = proposed_status.max(vigil_ear::Status::Contraindicated);
        }
        let mut reasons: Vec<String> = evidence_checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("evidence check {}: {}", c.name, c.detail))
            .collect();
        reasons.extend(
            appraisal
                .results
                .iter()
                .filter(|r| r.outcome != Outcome::Pass)
                .map(|r| {
                    format!(
                        "{}: {} expected {}, {} {}",
                        r.rule,
                        r.claim,
                        r.expected,
                        if r.outcome == Outcome::Fail {
                            "found"
                        } else {
                            "cannot evaluate:"
                        },
                        r.found
                    )
                }),
        );
        let proposed_status = status_name(proposed_status);
        out.push(NodeImpact {
            node_id: node.node_id.clone(),
            group: node.group.clone(),
            changes: proposed_status != current_status,
            current_status,
            proposed_status,
            reasons,
            evidence_time: verdict.verified_at,
        });
    }
    Ok(ImpactReport {
        baseline: proposed.name.clone(),
        nodes: out,
    })
}

fn unreadable(node_id: &str, group: &str, verdict: &str, time: i64) -> NodeImpact {
    NodeImpact {
        node_id: node_id.to_owned(),
        group: group.to_owned(),
        current_status: verdict.to_owned(),
        proposed_status: "none".to_owned(),
        changes: true,
        reasons: vec!["the recorded result does not decode; re-attest the node".to_owned()],
        evidence_time: time,
    }
}
