//! IMA in the verifier, on real lists: replay and claims (`evidence::ima`), a baseline captured
//! from a golden list, and appraisal of later lists of the same machine naming exactly the
//! measurements that are new.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use vigil_proto::v1::ImaLog;
use vigil_verifier::baseline::{self, Baseline, BaselineRef, Outcome};
use vigil_verifier::claims::{ClaimSet, Source, Value};
use vigil_verifier::evidence::ima::{ImaStart, QuotedState, check_ima};
use vigil_verifier::evidence::tpm::{HashAlg as Bank, PcrValues};

const H12SSL: &str = "immune-guard-oss/test-raw/h12ssl";

fn list(data: Vec<u8>, first_entry: u64) -> ImaLog {
    ImaLog {
        present: true,
        data,
        first_entry,
        source: "fixture".into(),
        note: String::new(),
        template_hash: "sha1".into(),
    }
}

/// The H12SSL's quoted sha1 PCRs 0-9 (its upstream's stored values), and PCR 10 as `data`
/// replays: stands in for a quote taken right after exactly this list.
fn pcr10_of(data: &[u8]) -> PcrValues {
    let root = common::fixtures("immune-guard-oss").unwrap();
    let text = std::fs::read(root.join("immune-guard-oss/expected/h12ssl_pcrs.json")).unwrap();
    let quoted: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let parsed = vigil_ima::parse(data, vigil_ima::HashAlg::Sha1, 0).unwrap();
    let mut pcr = vec![0u8; 20];
    for entry in &parsed.entries {
        let digest = if entry.is_violation() {
            vec![0xff; 20]
        } else {
            entry.template_hash.to_vec()
        };
        vigil_ima::HashAlg::Sha1.extend(&mut pcr, &digest);
    }
    let mut bank: BTreeMap<u32, Vec<u8>> = (0..10)
        .map(|i| {
            (
                i,
                hex::decode(quoted["sha1"][i.to_string()].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    bank.insert(10, pcr);
    let mut values = PcrValues::new();
    values.insert(Bank::Sha1, bank);
    values
}

fn claims_of(data: Vec<u8>) -> ClaimSet {
    let pcrs = pcr10_of(&data);
    let quote = QuotedState {
        pcrs: &pcrs,
        reset_count: 1,
    };
    let outcome = check_ima(Some(&list(data, 0)), Some(&quote), None);
    assert!(
        outcome.checks.iter().all(|c| c.passed),
        "{:?}",
        outcome.checks
    );
    ClaimSet {
        node_id: "h12ssl".into(),
        verified_at: 0,
        claims: outcome.claims,
    }
}

fn compile(text: &str) -> Baseline {
    let compiled = baseline::parse_baseline("captured.toml", text)
        .unwrap_or_else(|e| panic!("{e}\n{}", &text[..text.len().min(3000)]));
    Baseline {
        reference: BaselineRef {
            name: compiled.name,
            version: 1,
            sha256: String::new(),
        },
        rules: compiled.rules,
    }
}

/// Entries of `later` the allow-list captured from `golden` cannot allow: measurements whose
/// (path, digest) the golden list does not have, and violations (content unknown).
fn not_allowed(golden: &ClaimSet, later: &ClaimSet) -> BTreeSet<String> {
    let known: BTreeSet<(String, String)> = golden
        .matching("ima.entries[*]")
        .filter_map(|c| match &c.value {
            Some(Value::Measurement(m)) if !m.violation => Some((m.path.clone(), m.digest.clone())),
            _ => None,
        })
        .collect();
    later
        .matching("ima.entries[*]")
        .filter(|c| match &c.value {
            Some(Value::Measurement(m)) => {
                m.violation || !known.contains(&(m.path.clone(), m.digest.clone()))
            }
            _ => true,
        })
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn h12ssl_appraised_against_its_own_earlier_list_names_exactly_the_new_measurements() {
    let Some(root) = common::fixtures("immune-guard-oss") else {
        return;
    };
    let read =
        |name: &str| std::fs::read(root.join(format!("{H12SSL}.{name}.measurements"))).unwrap();
    let golden = claims_of(read("before"));
    // The list's boot_aggregate is the hash of the quoted PCRs 0-7: it belongs to this boot.
    assert_eq!(
        golden
            .get("ima.boot_aggregate")
            .and_then(|c| c.value.clone()),
        Some(Value::Text("matches".into()))
    );
    let captured = baseline::capture::capture("h12ssl", &golden, "2026-12-06T00:00:00Z");
    assert!(captured.contains("[ima.allow]"), "{captured}");
    // The golden list appraises clean against what was captured from it.
    let strict = compile(&captured);
    let appraisal = baseline::appraise(&golden, &[], &strict, 0);
    // ... except its violations (files measured while open for writing: content unknown),
    // which the capture lists for the reviewer to exclude.
    let ima_failures: BTreeSet<String> = appraisal
        .failures()
        .filter(|r| r.rule.starts_with("ima."))
        .map(|r| r.claim.clone())
        .collect();
    assert_eq!(ima_failures.len(), 6);
    assert_eq!(ima_failures, not_allowed(&golden, &golden));
    assert!(captured.contains("violations"), "{captured}");

    for later in ["changed", "created", "delete"] {
        let claims = claims_of(read(later));
        let appraisal = baseline::appraise(&claims, &[], &strict, 0);
        let failed: BTreeSet<String> = appraisal
            .failures()
            .filter(|r| r.rule == "ima.allowlist")
            .map(|r| r.claim.clone())
            .collect();
        let expected = not_allowed(&golden, &claims);
        assert_eq!(failed, expected, "{later}");
        assert!(
            expected.len() > 6,
            "{later}: new measurements beyond the violations"
        );
        // The file the operator touched is named, with its entry number.
        let keys: Vec<_> = appraisal
            .failures()
            .filter(|r| r.found.contains("/root/.ssh/authorized_keys"))
            .collect();
        assert!(!keys.is_empty(), "{later}");
        for result in keys {
            assert!(
                matches!(result.source, Some(Source::ImaEntry { .. })),
                "{result:?}"
            );
            assert!(
                result.found.contains("not in the allow-list"),
                "{}",
                result.found
            );
        }
    }
    // A log file with a known path but a new digest is named as such; excluding logs silences it.
    let changed = claims_of(read("changed"));
    let appraisal = baseline::appraise(&changed, &[], &strict, 0);
    assert!(
        appraisal
            .failures()
            .any(|r| r.found.contains("/var/log/wtmp has digest"))
    );
    let relaxed = compile(&captured.replace(
        "boot_aggregate = true\n",
        "boot_aggregate = true\nexclude = [\"/var/log/*\", \"/var/lib/update-notifier/tmp.*\"]\nexclude_regex = [\"/usr/share/nvim/.*\"]\n",
    ));
    let appraisal = baseline::appraise(&changed, &[], &relaxed, 0);
    let remaining: BTreeSet<String> = appraisal
        .failures()
        .filter(|r| r.rule == "ima.allowlist")
        .map(|r| r.found.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert!(
        remaining.contains("/root/.ssh/authorized_keys"),
        "{remaining:?}"
    );
    assert!(
        !remaining
            .iter()
            .any(|p| p.starts_with("/var/log/") || p.starts_with("/usr/share/nvim/")),
        "{remaining:?}"
    );
}

#[test]
fn required_files_are_found_across_incremental_lists_and_missing_ones_fail() {
    let Some(root) = common::fixtures("immune-guard-oss") else {
        return;
    };
    let data = std::fs::read(root.join(format!("{H12SSL}.before.measurements"))).unwrap();
    let parsed = vigil_ima::parse(&data, vigil_ima::HashAlg::Sha1, 0).unwrap();
    // Split the list: 3000 entries first, the rest in a second attestation.
    let cut = match parsed.entries[3000].location {
        vigil_ima::Location::Offset(o) => o,
        other => panic!("{other:?}"),
    };
    let head = data[..cut].to_vec();
    let pcrs_head = pcr10_of(&head);
    let pcrs_all = pcr10_of(&data);
    let first = check_ima(
        Some(&list(head, 0)),
        Some(&QuotedState {
            pcrs: &pcrs_head,
            reset_count: 7,
        }),
        None,
    );
    let ld = "/usr/lib/x86_64-linux-gnu/ld-2.31.so";
    let keep = |m: &vigil_verifier::claims::FileMeasurement| m.path == ld;
    let claims_first = first.claims.clone();
    let state: ImaStart =
        vigil_verifier::evidence::ima::state_to_keep(first.next.unwrap(), &claims_first, keep);
    assert_eq!(state.state.entries, 3000);
    assert!(state.carried.iter().any(|c| c.name == "ima.boot_aggregate"));
    let second = check_ima(
        Some(&list(data[cut..].to_vec(), 3000)),
        Some(&QuotedState {
            pcrs: &pcrs_all,
            reset_count: 7,
        }),
        Some(&state),
    );
    assert!(
        second.checks.iter().all(|c| c.passed),
        "{:?}",
        second.checks
    );
    let claims = ClaimSet {
        node_id: "h12ssl".into(),
        verified_at: 0,
        claims: second.claims,
    };
    // Only the new entries are measurements of this attestation; the loader is carried.
    let new = claims
        .matching("ima.entries[*]")
        .filter(|c| matches!(c.source, Source::ImaEntry { carried: false, .. }))
        .count();
    assert_eq!(new, 4797 - 3000);
    let ld_digest = claims_first
        .iter()
        .find_map(|c| match &c.value {
            Some(Value::Measurement(m)) if m.path == ld => Some(m.digest.clone()),
            _ => None,
        })
        .unwrap();
    let text = format!(
        "format = 1\nname = \"req\"\n[ima]\nlist = \"required\"\nboot_aggregate = false\n\
         [[ima.require]]\npath = \"/usr/lib/x86_64-linux-gnu/ld-*.so\"\ndigests = [\"sha1:{ld_digest}\"]\n\
         [[ima.require]]\npath = \"/lib/modules/*/nvidia.ko\"\n\
         [[ima.require]]\npath = \"{ld}\"\ndigests = [\"sha1:{}\"]\n",
        "00".repeat(20)
    );
    let appraisal = baseline::appraise(&claims, &[], &compile(&text), 0);
    let outcome = |id: &str| {
        appraisal
            .results
            .iter()
            .find(|r| r.rule == id)
            .unwrap_or_else(|| panic!("{id}: {:#?}", appraisal.results))
    };
    let found = outcome("ima.require[/usr/lib/x86_64-linux-gnu/ld-*.so]");
    assert_eq!(found.outcome, Outcome::Pass, "{found:?}");
    assert!(matches!(
        found.source,
        Some(Source::ImaEntry { carried: true, .. })
    ));
    let missing = outcome("ima.require[/lib/modules/*/nvidia.ko]");
    assert_eq!(missing.outcome, Outcome::Fail);
    assert_eq!(missing.found, "never measured since boot");
    let wrong = outcome(&format!("ima.require[{ld}]"));
    assert_eq!(wrong.outcome, Outcome::Fail);
    assert!(
        wrong.found.contains("not an allowed digest"),
        "{}",
        wrong.found
    );
}

#[test]
fn an_incremental_list_from_another_boot_or_offset_needs_the_whole_list() {
    let Some(root) = common::fixtures("immune-guard-oss") else {
        return;
    };
    let data = std::fs::read(root.join(format!("{H12SSL}.binary_measurements"))).unwrap();
    let pcrs = pcr10_of(&data);
    let quote = QuotedState {
        pcrs: &pcrs,
        reset_count: 3,
    };
    let whole = check_ima(Some(&list(data.clone(), 0)), Some(&quote), None);
    let state = whole.next.unwrap();
    assert_eq!(state.state.entries, 2365);
    // The TPM was reset since (resetCount 4): a reboot.
    let rebooted = QuotedState {
        pcrs: &pcrs,
        reset_count: 4,
    };
    let after = check_ima(Some(&list(Vec::new(), 2365)), Some(&rebooted), Some(&state));
    assert!(after.stale_state);
    let detail = &after
        .checks
        .iter()
        .find(|c| c.name == "ima.replay")
        .unwrap()
        .detail;
    assert!(detail.contains("reboot"), "{detail}");
    // The list claims to start where the state does not end.
    let skewed = check_ima(Some(&list(Vec::new(), 2000)), Some(&quote), Some(&state));
    assert!(skewed.stale_state);
    // No state at all.
    let none = check_ima(Some(&list(Vec::new(), 5)), Some(&quote), None);
    assert!(none.stale_state);
    // The same boot, no new entries: verified, nothing new.
    let same = check_ima(Some(&list(Vec::new(), 2365)), Some(&quote), Some(&state));
    assert!(same.checks.iter().all(|c| c.passed), "{:?}", same.checks);
    assert!(!same.stale_state);
}

#[test]
fn a_rewritten_digest_in_the_list_fails_naming_the_entry() {
    let Some(root) = common::fixtures("immune-guard-oss") else {
        return;
    };
    let data = std::fs::read(root.join(format!("{H12SSL}.binary_measurements"))).unwrap();
    let pcrs = pcr10_of(&data);
    let parsed = vigil_ima::parse(&data, vigil_ima::HashAlg::Sha1, 0).unwrap();
    let entry = &parsed.entries[100];
    let vigil_ima::Location::Offset(offset) = entry.location else {
        panic!()
    };
    // The last byte of entry 100's file digest (inside its template data).
    let digest_end = offset + 4 + 20 + 4 + entry.template.len() + 4 + 4 + "sha1:\0".len() + 20;
    let mut tampered = data.clone();
    tampered[digest_end - 1] ^= 0x01;
    let quote = QuotedState {
        pcrs: &pcrs,
        reset_count: 1,
    };
    let outcome = check_ima(Some(&list(tampered, 0)), Some(&quote), None);
    let replay = outcome
        .checks
        .iter()
        .find(|c| c.name == "ima.replay")
        .unwrap();
    assert!(!replay.passed);
    assert!(replay.detail.contains("entry 100"), "{}", replay.detail);
    assert!(replay.detail.contains("altered"), "{}", replay.detail);
    assert!(outcome.next.is_none());
    // Without a verified quote nothing is proven.
    let unquoted = check_ima(Some(&list(data, 0)), None, None);
    assert!(
        unquoted
            .checks
            .iter()
            .any(|c| c.name == "ima.replay" && !c.passed)
    );
}
