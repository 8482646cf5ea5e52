//! Re-appraisal of a recorded verdict: take the evidence the audit log stored for it (content
//! addressed, so any change to it is detected), run the stateless checks again, and say
//! whether they agree with what was recorded. Freshness (`nonce.fresh`) and the node's
//! recorded AK (`ak.known`) depended on the store at that time and are taken as recorded.

use serde::Serialize;
use vigil_proto::v1::Evidence;

use crate::attest::check_evidence_with;
use crate::report::Check;

#[derive(Debug, Serialize)]
pub struct Reappraisal {
    pub index: u64,
    pub node_id: String,
    pub recorded_verdict: String,
    pub agrees: bool,
    /// Why it disagrees, check by check; empty when it agrees.
    pub differences: Vec<String>,
    pub recomputed: Vec<Check>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReappraiseError {
    #[error("audit entry {0} does not exist")]
    NoEntry(u64),
    #[error("audit entry {index} is a {kind:?} entry, not a verdict")]
    NotAVerdict { index: u64, kind: String },
    #[error("audit entry {index}: {reason}")]
    Malformed { index: u64, reason: String },
    #[error(
        "audit entry {index}: evidence sha256:{digest} was pruned by the retention policy \
         (--retain-evidence) at {pruned_at} (audit entry {prune_entry}); the recorded verdict \
         stands as audited, but cannot be re-run"
    )]
    Pruned {
        index: u64,
        digest: String,
        pruned_at: String,
        prune_entry: u64,
    },
    #[error(transparent)]
    Audit(#[from] vigil_audit::AuditError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn disagree(index: u64, node_id: &str, verdict: &str, reason: String) -> Reappraisal {
    Reappraisal {
        index,
        node_id: node_id.to_owned(),
        recorded_verdict: verdict.to_owned(),
        agrees: false,
        differences: vec![reason],
        recomputed: Vec::new(),
    }
}

/// Re-appraises audit entry `index` from the database behind `conn`.
pub fn reappraise(
    conn: &rusqlite::Connection,
    index: u64,
    required_pcrs: &[u32],
    npu_roots: Option<&crate::evidence::ascend::AscendRoots>,
    gpu_roots: &vigil_nvidia::roots::GpuRoots,
) -> Result<Reappraisal, ReappraiseError> {
    let stored = vigil_audit::get_entry(conn, index)?.ok_or(ReappraiseError::NoEntry(index))?;
    let entry = stored.entry;
    if entry.kind != "verdict" {
        return Err(ReappraiseError::NotAVerdict {
            index,
            kind: entry.kind,
        });
    }
    let malformed = |reason: &str| ReappraiseError::Malformed {
        index,
        reason: reason.to_owned(),
    };
    let body = &entry.body;
    let verdict = body["verdict"]
        .as_str()
        .ok_or_else(|| malformed("no verdict"))?;
    let nonce = body["nonce"]
        .as_str()
        .and_then(|n| hex::decode(n).ok())
        .ok_or_else(|| malformed("no nonce"))?;
    let digest = body["evidence"]
        .as_str()
        .and_then(|e| e.strip_prefix("sha256:"))
        .ok_or_else(|| malformed("no evidence reference"))?;
    let evidence_bytes = match vigil_audit::get_blob(conn, digest) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            if let Some(pruned) = crate::store::pruned_evidence(conn, digest)? {
                return Err(ReappraiseError::Pruned {
                    index,
                    digest: digest.to_owned(),
                    pruned_at: crate::report::format_unix_utc(pruned.pruned_at),
                    prune_entry: pruned.audit_index,
                });
            }
            return Ok(disagree(
                index,
                &entry.subject,
                verdict,
                format!("evidence sha256:{digest} is no longer stored"),
            ));
        }
        Err(error) => {
            return Ok(disagree(
                index,
                &entry.subject,
                verdict,
                format!("stored evidence was altered: {error}"),
            ));
        }
    };
    let evidence = match <Evidence as prost::Message>::decode(evidence_bytes.as_slice()) {
        Ok(evidence) => evidence,
        Err(error) => {
            return Ok(disagree(
                index,
                &entry.subject,
                verdict,
                format!("stored evidence does not decode: {error}"),
            ));
        }
    };
    // GPU certificates are judged at the time of the recorded verdict, not today.
    let gpu_context = crate::evidence::gpu::GpuContext {
        rims: None,
        at: entry.time,
        npu_roots,
        // The roots the verifier was given (`--gpu-roots`, `--rim-roots`); NVIDIA's by default.
        nvidia: crate::evidence::gpu::NvidiaTrust {
            device_roots: gpu_roots.device.as_deref(),
            rim_roots: gpu_roots.rim.as_deref(),
            caches: None,
        },
    };
    // An incremental IMA list is replayed from the state its verdict recorded.
    let ima_start: Option<crate::evidence::ima::ImaStart> =
        serde_json::from_value(body["result"]["ima_start"].clone()).unwrap_or(None);
    let outcome = check_evidence_with(
        &nonce,
        &evidence,
        required_pcrs,
        &gpu_context,
        ima_start.as_ref(),
    );
    let recorded: Vec<(String, bool)> = body["result"]["checks"]
        .as_array()
        .ok_or_else(|| malformed("no recorded checks"))?
        .iter()
        .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["passed"].as_bool()?)))
        .collect();
    let mut differences = Vec::new();
    for check in &outcome.checks {
        match recorded.iter().find(|(name, _)| *name == check.name) {
            Some((_, passed)) if *passed == check.passed => {}
            Some((_, passed)) => differences.push(format!(
                "{}: recorded {}, now {} ({})",
                check.name,
                if *passed { "passed" } else { "failed" },
                if check.passed { "passes" } else { "fails" },
                check.detail
            )),
            None => differences.push(format!("{}: not in the recorded result", check.name)),
        }
    }
    let all_pass = outcome.checks.iter().all(|c| c.passed);
    if verdict == "pass" && !all_pass {
        differences.push("recorded PASS, but the evidence no longer passes".to_owned());
    }
    Ok(Reappraisal {
        index,
        node_id: entry.subject,
        recorded_verdict: verdict.to_owned(),
        agrees: differences.is_empty(),
        differences,
        recomputed: outcome.checks,
    })
}
