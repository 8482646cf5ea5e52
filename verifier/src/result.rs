//! The signed attestation result: the report's verdict and appraisal as an EAR
//! (draft-ietf-rats-ear), one submodule per attesting part (`host` for the TPM and boot
//! chain, `gpu<N>` per GPU), signed by the verifier's result key (`vigil_ear`).

use std::collections::BTreeMap;

use vigil_ear::{EAR_PROFILE, Ear, Status, Submodule, TrustVector, VerifierId};

use crate::attest::BUILD_ID;
use crate::baseline::Outcome;
use crate::report::{AttestationReport, Verdict};

/// Builds the EAR for `report`, valid for `ttl_secs` from its verification time.
pub fn ear_for(report: &AttestationReport, ttl_secs: i64) -> Ear {
    let policy_id = report.baseline.clone();
    let mut submods = BTreeMap::new();
    match &report.appraisal {
        Some(appraisal) => {
            for (name, submodule) in &appraisal.submods {
                let not_met: Vec<String> = appraisal
                    .results
                    .iter()
                    .filter(|r| &r.submodule == name && r.outcome != Outcome::Pass)
                    .map(|r| {
                        format!(
                            "{}: {} expected {}, found {}",
                            r.rule, r.claim, r.expected, r.found
                        )
                    })
                    .collect();
                let failed_checks = failed_checks_of(report, name);
                let mut status = submodule.status;
                if !failed_checks.is_empty() {
                    status = status.max(Status::Contraindicated);
                }
                submods.insert(
                    name.clone(),
                    Submodule {
                        status,
                        trust_vector: submodule.trust_vector,
                        policy_id: policy_id.clone(),
                        detail: detail(not_met, failed_checks),
                    },
                );
            }
        }
        None => {
            // No appraisal: the verdict speaks for the host alone.
            // No appraisal: the evidence checks speak for identity; nothing vouches for the
            // configuration (a warning when allowed, a contraindication otherwise). Every
            // failed check, GPUs' included, is reported under the one submodule.
            let failed_checks: Vec<String> = report
                .failed_checks()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            let evidence_ok = report
                .failed_checks()
                .all(|c| c.name.starts_with("baseline."));
            let (status, configuration) = match report.verdict {
                Verdict::Pass => (Status::Warning, vigil_ear::ar4si::WARNING),
                Verdict::Fail => (Status::Contraindicated, vigil_ear::ar4si::CONTRAINDICATED),
            };
            submods.insert(
                "host".to_owned(),
                Submodule {
                    status,
                    trust_vector: TrustVector {
                        instance_identity: if evidence_ok {
                            vigil_ear::ar4si::AFFIRMING
                        } else {
                            vigil_ear::ar4si::CONTRAINDICATED
                        },
                        configuration,
                        ..TrustVector::default()
                    },
                    policy_id: None,
                    detail: detail(Vec::new(), failed_checks),
                },
            );
        }
    }
    Ear {
        profile: EAR_PROFILE.to_owned(),
        issued_at: report.verified_at,
        expires_at: report.verified_at.saturating_add(ttl_secs),
        // Issued nonces are 32 bytes; a nonce of another length (from evidence that failed
        // `nonce.fresh`) is left out rather than making the result unsignable.
        nonce: hex::decode(&report.nonce)
            .ok()
            .filter(|n| vigil_ear::NONCE_LEN_RANGE.contains(&n.len())),
        verifier_id: VerifierId {
            developer: "vigil".to_owned(),
            build: BUILD_ID.to_owned(),
        },
        submods,
        subject: report.node_id.clone(),
        baseline_version: policy_id,
    }
}

/// Signs the EAR for `report`. A host with many failing GPUs can outgrow the token size limit
/// with its details; then they are left out (the full appraisal is in the recorded result) and
/// the statuses and trust vectors are still signed.
pub fn sign(
    key: &vigil_ear::ResultSigningKey,
    report: &AttestationReport,
    ttl_secs: i64,
) -> Result<String, vigil_ear::EarError> {
    let mut ear = ear_for(report, ttl_secs);
    match key.sign(&ear) {
        Ok(token) => Ok(token),
        Err(_) => {
            for submodule in ear.submods.values_mut() {
                submodule.detail = None;
            }
            key.sign(&ear)
        }
    }
}

/// Failed evidence checks belonging to submodule `name` (`gpu[N].*` checks to `gpuN`).
fn failed_checks_of(report: &AttestationReport, name: &str) -> Vec<String> {
    report
        .failed_checks()
        .filter(|c| {
            let owner = crate::claims::gpu_index(&c.name)
                .map_or_else(|| "host".to_owned(), |i| format!("gpu{i}"));
            owner == name
        })
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn detail(not_met: Vec<String>, failed_checks: Vec<String>) -> Option<serde_json::Value> {
    if not_met.is_empty() && failed_checks.is_empty() {
        return None;
    }
    // Bounded: the token stays small however many rules fail.
    let cap = |mut v: Vec<String>| {
        v.truncate(16);
        for line in &mut v {
            let cut = (0..=line.len().min(300))
                .rev()
                .find(|i| line.is_char_boundary(*i))
                .unwrap_or(0);
            line.truncate(cut);
        }
        v
    };
    Some(serde_json::json!({
        "failed_checks": cap(failed_checks),
        "rules_not_met": cap(not_met),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Check;

    fn key() -> vigil_ear::ResultSigningKey {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("vigil-result-key-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let key = vigil_ear::ResultSigningKey::load_or_generate(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        key
    }

    fn signed_and_verified(report: &AttestationReport) -> Ear {
        let key = key();
        let token = key.sign(&ear_for(report, 600)).unwrap();
        let jwks = vigil_ear::Jwks {
            keys: vec![key.public_jwk()],
        };
        vigil_ear::verify(&token, &jwks, report.verified_at).unwrap()
    }

    #[test]
    fn without_a_baseline_a_pass_is_a_warning_and_a_fail_lists_every_failed_check() {
        let pass = AttestationReport::new(
            "n",
            &[7; 32],
            1_000,
            vec![Check::pass("quote.signature", "")],
        );
        let ear = signed_and_verified(&pass);
        assert_eq!(ear.status(), Status::Warning);
        assert_eq!(
            ear.submods["host"].trust_vector.instance_identity,
            vigil_ear::ar4si::AFFIRMING
        );
        assert_eq!(ear.nonce.as_deref(), Some(&[7u8; 32][..]));
        assert_eq!(ear.expires_at, 1_600);

        let fail = AttestationReport::new(
            "n",
            &[7; 32],
            1_000,
            vec![
                Check::pass("quote.signature", ""),
                Check::fail("gpu[0].nonce", "other session"),
            ],
        );
        let ear = signed_and_verified(&fail);
        assert_eq!(ear.status(), Status::Contraindicated);
        let detail = ear.submods["host"].detail.as_ref().unwrap().to_string();
        assert!(detail.contains("gpu[0].nonce: other session"), "{detail}");
    }

    #[test]
    fn a_nonce_of_a_foreign_length_is_left_out_not_fatal() {
        let report = AttestationReport::new(
            "n",
            &[1; 100],
            1_000,
            vec![Check::fail("nonce.fresh", "unknown")],
        );
        let ear = signed_and_verified(&report);
        assert_eq!(ear.nonce, None);
        assert_eq!(ear.status(), Status::Contraindicated);
    }

    #[test]
    fn many_failing_gpus_overflow_the_details_but_not_the_status() {
        use crate::baseline::appraise::SubmoduleAppraisal;
        use crate::baseline::rules::{Category, Severity};
        use crate::baseline::{Appraisal, BaselineRef, Outcome, RuleResult};
        let vector = TrustVector {
            executables: vigil_ear::ar4si::CONTRAINDICATED,
            ..TrustVector::default()
        };
        let mut submods = BTreeMap::new();
        let mut results = Vec::new();
        for gpu in 0..64 {
            let name = format!("gpu{gpu}");
            submods.insert(
                name.clone(),
                SubmoduleAppraisal {
                    status: Status::Contraindicated,
                    trust_vector: vector,
                    rules_passed: 0,
                    rules_failed: 16,
                },
            );
            for n in 0..16 {
                results.push(RuleResult {
                    rule: format!("rule{n}"),
                    submodule: name.clone(),
                    claim: format!("gpu[{gpu}].driver_version"),
                    outcome: Outcome::Fail,
                    expected: "y".repeat(400),
                    found: "x".repeat(400),
                    category: Category::Executables,
                    severity: Severity::Contraindicated,
                    source: None,
                    description: String::new(),
                });
            }
        }
        let mut report = AttestationReport::new(
            "n",
            &[7; 32],
            1_000,
            vec![Check::pass("quote.signature", "")],
        );
        report.appraisal = Some(Appraisal {
            baseline: BaselineRef {
                name: "b".into(),
                version: 1,
                sha256: String::new(),
            },
            status: Status::Contraindicated,
            appraised_at: 1_000,
            submods,
            results,
        });
        let key = key();
        assert!(
            key.sign(&ear_for(&report, 600)).is_err(),
            "the details alone are over the token limit"
        );
        let token = sign(&key, &report, 600).unwrap();
        let jwks = vigil_ear::Jwks {
            keys: vec![key.public_jwk()],
        };
        let ear = vigil_ear::verify(&token, &jwks, 1_000).unwrap();
        assert_eq!(ear.submods.len(), 64);
        assert_eq!(ear.status(), Status::Contraindicated);
    }
}
