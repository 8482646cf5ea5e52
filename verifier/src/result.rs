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
}
