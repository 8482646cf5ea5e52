//! IMA evidence: the runtime measurement list the attester sent, replayed against the quoted
//! PCR 10 (from the verifier's stored state when only new entries were sent), and turned into
//! one claim per measurement. No store, no policy: the caller keeps the state, the baseline
//! judges the files.

use serde::{Deserialize, Serialize};
use vigil_ima::{HashAlg, Quoted, ReplayState};
use vigil_proto::v1::ImaLog;

use crate::claims::{FileMeasurement, HostClaim, Source, Trust, Value};
use crate::evidence::tpm::PcrValues;
use crate::report::Check;

/// What the verifier keeps per node between attestations of one boot: where the verified
/// prefix of the list ends, the running PCR values there, and the claims later rules still
/// need (the boot aggregate, required files measured earlier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImaStart {
    pub state: ReplayState,
    /// The TPM's resetCount in the quote that verified `state`: another value means the host
    /// rebooted and the stored state no longer applies.
    pub reset_count: u32,
    pub violations: u64,
    #[serde(default)]
    pub carried: Vec<HostClaim>,
}

/// The quote facts IMA replay relies on.
pub struct QuotedState<'a> {
    pub pcrs: &'a PcrValues,
    pub reset_count: u32,
}

#[derive(Debug, Default)]
pub struct ImaOutcome {
    pub checks: Vec<Check>,
    pub claims: Vec<HostClaim>,
    /// The state after the verified prefix, to keep for the next attestation.
    pub next: Option<ImaStart>,
    /// The list continues from an entry the stored state does not end at, or the TPM was
    /// reset since (a reboot): only the whole list can be verified.
    pub stale_state: bool,
}

fn verifier_claim(name: &str, value: Value) -> HostClaim {
    HostClaim {
        name: name.to_owned(),
        value: Some(value),
        trust: Trust::Verified,
        source: Source::Verifier {
            check: "ima.replay".into(),
        },
        detail: None,
    }
}

fn log_state(outcome: &mut ImaOutcome, state: &str) {
    outcome
        .claims
        .push(verifier_claim("ima.log", Value::Text(state.into())));
}

/// Checks the IMA list in `log` against the verified quote (None: the quote did not verify),
/// continuing from `start` when the list does not begin at entry 0.
pub fn check_ima(
    log: Option<&ImaLog>,
    quote: Option<&QuotedState<'_>>,
    start: Option<&ImaStart>,
) -> ImaOutcome {
    let mut outcome = ImaOutcome::default();
    let log = match log {
        Some(log) if log.present => log,
        Some(log) => {
            outcome.checks.push(Check::pass(
                "ima.received",
                format!("none: {} (runtime integrity not appraised)", log.note),
            ));
            log_state(&mut outcome, "absent");
            return outcome;
        }
        None => {
            outcome.checks.push(Check::pass(
                "ima.received",
                "none sent (runtime integrity not appraised)",
            ));
            log_state(&mut outcome, "absent");
            return outcome;
        }
    };
    let fail = |mut outcome: ImaOutcome, check: &str, detail: String| {
        outcome.checks.push(Check::fail(check, detail));
        log_state(&mut outcome, "failed");
        outcome
    };
    let Some(template_alg) = HashAlg::from_name(if log.template_hash.is_empty() {
        "sha1"
    } else {
        &log.template_hash
    }) else {
        return fail(
            outcome,
            "ima.parse",
            format!(
                "template hash algorithm {:?} is not one Vigil can compute",
                log.template_hash
            ),
        );
    };
    let list = match vigil_ima::parse(&log.data, template_alg, log.first_entry) {
        Ok(list) => list,
        Err(error) => return fail(outcome, "ima.parse", error.to_string()),
    };
    outcome.checks.push(Check::pass(
        "ima.parse",
        format!(
            "{} entries from entry {} ({}, template hash {}){}",
            list.entries.len(),
            log.first_entry,
            log.source,
            list.template_hash,
            list.incomplete_tail.map_or_else(String::new, |t| format!(
                "; an incomplete last entry ({} bytes at offset {}) is ignored",
                t.len, t.offset
            ))
        ),
    ));
    let Some(quote) = quote else {
        return fail(
            outcome,
            "ima.replay",
            "not compared: the quote did not verify, so PCR 10 is not proven".into(),
        );
    };
    let fresh = ImaStart {
        state: ReplayState::boot(),
        reset_count: quote.reset_count,
        violations: 0,
        carried: Vec::new(),
    };
    let from = if log.first_entry == 0 {
        &fresh
    } else {
        match start {
            Some(stored)
                if stored.state.entries == log.first_entry
                    && stored.reset_count == quote.reset_count =>
            {
                stored
            }
            Some(stored) if stored.reset_count != quote.reset_count => {
                outcome.stale_state = true;
                return fail(
                    outcome,
                    "ima.replay",
                    format!(
                        "the list starts at entry {}, but the TPM was reset since the verified state (resetCount {} then, {} now: a reboot); the whole list is needed",
                        log.first_entry, stored.reset_count, quote.reset_count
                    ),
                );
            }
            Some(stored) => {
                outcome.stale_state = true;
                return fail(
                    outcome,
                    "ima.replay",
                    format!(
                        "the list starts at entry {}, but the verified state ends at entry {}; the whole list is needed",
                        log.first_entry, stored.state.entries
                    ),
                );
            }
            None => {
                outcome.stale_state = true;
                return fail(
                    outcome,
                    "ima.replay",
                    format!(
                        "the list starts at entry {}, but this verifier holds no verified state for the earlier entries; the whole list is needed",
                        log.first_entry
                    ),
                );
            }
        }
    };
    let quoted = quoted_values(quote.pcrs);
    let replayed = match vigil_ima::replay(&list.entries, list.template_hash, &from.state, &quoted)
    {
        Ok(replayed) => replayed,
        Err(error) => return fail(outcome, "ima.replay", error.to_string()),
    };
    let verified = list.entries.get(..replayed.matched).unwrap_or_default();
    let later = list.entries.len() - verified.len();
    let banks: Vec<String> = replayed
        .state
        .tracks
        .iter()
        .map(|t| format!("{}:{}", t.bank, t.pcr))
        .collect();
    outcome.checks.push(Check::pass(
        "ima.replay",
        format!(
            "entries {}..{} reproduce the quoted {} ({} verified since boot){}",
            log.first_entry,
            replayed.state.entries,
            banks.join(", "),
            replayed.state.entries,
            if later > 0 {
                format!("; {later} later entries came after the quote and are judged next time")
            } else {
                String::new()
            }
        ),
    ));
    let mut violations = from.violations;
    let mut boot_aggregate = None;
    for entry in verified {
        if entry.is_violation() {
            violations += 1;
        }
        let source = Source::ImaEntry {
            entry: entry.index,
            template: entry.template.to_string(),
            carried: false,
        };
        let name = format!("ima.entries[{}]", entry.index);
        match vigil_ima::decode(entry) {
            Ok(m) => {
                if entry.index == 0 && m.name == "boot_aggregate" {
                    boot_aggregate = Some(boot_aggregate_claim(&m, quote.pcrs));
                }
                outcome.claims.push(HostClaim {
                    name,
                    value: Some(Value::Measurement(FileMeasurement {
                        path: m.name,
                        kind: match m.kind {
                            vigil_ima::Kind::File => "file".into(),
                            vigil_ima::Kind::Buffer => "buffer".into(),
                        },
                        algorithm: m.algorithm,
                        digest: if entry.is_violation() {
                            String::new()
                        } else {
                            hex::encode(&m.digest)
                        },
                        template: m.template,
                        signature: m.signature.map(hex::encode),
                        violation: entry.is_violation(),
                    })),
                    trust: Trust::Verified,
                    source,
                    detail: None,
                });
            }
            Err(error) => outcome.claims.push(HostClaim {
                name,
                value: None,
                trust: Trust::Failed(error.to_string()),
                source,
                detail: None,
            }),
        }
    }
    let mut carried = if log.first_entry == 0 {
        Vec::new()
    } else {
        from.carried.clone()
    };
    if let Some(claim) = boot_aggregate {
        carried.retain(|c| c.name != claim.name);
        carried.push(claim);
    }
    if !carried.iter().any(|c| c.name == "ima.boot_aggregate") {
        carried.push(HostClaim {
            name: "ima.boot_aggregate".into(),
            value: None,
            trust: Trust::Unproven("the list's first entry is not a boot_aggregate".into()),
            source: Source::Verifier {
                check: "ima.replay".into(),
            },
            detail: None,
        });
    }
    log_state(&mut outcome, "replayed");
    outcome.claims.push(verifier_claim(
        "ima.entries",
        Value::Int(i64::try_from(replayed.state.entries).unwrap_or(i64::MAX)),
    ));
    outcome.claims.push(verifier_claim(
        "ima.entries_new",
        Value::Int(i64::try_from(verified.len()).unwrap_or(i64::MAX)),
    ));
    outcome.claims.push(verifier_claim(
        "ima.violations",
        Value::Int(i64::try_from(violations).unwrap_or(i64::MAX)),
    ));
    outcome.claims.extend(carried.iter().map(|claim| {
        let mut claim = claim.clone();
        if log.first_entry > 0
            && let Source::ImaEntry { carried, .. } = &mut claim.source
        {
            *carried = true;
        }
        claim
    }));
    outcome.next = Some(ImaStart {
        state: replayed.state,
        reset_count: quote.reset_count,
        violations,
        carried,
    });
    outcome
}

/// Quoted PCR values of the banks IMA replay can compute.
fn quoted_values(pcrs: &PcrValues) -> Quoted {
    let mut quoted = Quoted::new();
    for (bank, values) in pcrs {
        if let Some(alg) = HashAlg::from_name(bank.name()) {
            for (index, value) in values {
                quoted.insert((alg, *index), value.clone());
            }
        }
    }
    quoted
}

/// Whether the list's boot_aggregate is the hash of the quoted PCRs 0-7 (or 0-9) of its bank.
fn boot_aggregate_claim(m: &vigil_ima::Measurement, pcrs: &PcrValues) -> HostClaim {
    let source = Source::ImaEntry {
        entry: 0,
        template: m.template.clone(),
        carried: false,
    };
    let claim = |value: Option<&str>, trust: Trust| HostClaim {
        name: "ima.boot_aggregate".into(),
        value: value.map(|v| Value::Text(v.to_owned())),
        trust,
        source: source.clone(),
        detail: Some(format!("{}:{}", m.algorithm, hex::encode(&m.digest))),
    };
    let Some(alg) = HashAlg::from_name(&m.algorithm) else {
        return claim(
            None,
            Trust::Unproven(format!("{} cannot be computed", m.algorithm)),
        );
    };
    let bank = pcrs.iter().find(|(bank, _)| bank.name() == alg.name());
    let Some((_, values)) = bank else {
        return claim(
            None,
            Trust::Unproven(format!("the quote does not cover the {alg} bank")),
        );
    };
    let candidates = vigil_ima::boot_aggregates(alg, values);
    if candidates.is_empty() {
        return claim(
            None,
            Trust::Unproven("the quote does not cover PCRs 0-7".into()),
        );
    }
    if candidates.contains(&m.digest) {
        claim(Some("matches"), Trust::Verified)
    } else {
        claim(Some("differs"), Trust::Verified)
    }
}

/// The IMA state to keep for the next attestation: `next` with the measurement claims that
/// `keep` selects (files later rules must still see) added to what it carries.
pub fn state_to_keep(
    mut next: ImaStart,
    claims: &[HostClaim],
    keep: impl Fn(&FileMeasurement) -> bool,
) -> ImaStart {
    for claim in claims {
        if let (Some(Value::Measurement(m)), Source::ImaEntry { carried: false, .. }) =
            (&claim.value, &claim.source)
            && keep(m)
        {
            next.carried.push(claim.clone());
        }
    }
    next
}
