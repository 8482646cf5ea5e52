//! Every real event log in `$VIGIL_FIXTURES/expected/eventlogs.json`, read in place: no
//! panic, the event count upstream found, and the replay its upstream stored (a match where
//! it says "match", exactly the listed PCRs where it says "mismatch").

mod common;

use std::collections::BTreeMap;

use vigil_verifier::evidence::eventlog::{LogFormat, compare, parse, replay};
use vigil_verifier::evidence::tpm::HashAlg;

fn expected_pcrs(value: &serde_json::Value) -> BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (bank, pcrs) in value.as_object().into_iter().flatten() {
        let Some(alg) = HashAlg::from_name(bank) else {
            continue;
        };
        let values: BTreeMap<u32, Vec<u8>> = pcrs
            .as_object()
            .unwrap()
            .iter()
            .map(|(i, v)| {
                (
                    i.parse().unwrap(),
                    hex::decode(v.as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        out.insert(alg, values);
    }
    out
}

#[test]
fn every_real_event_log_replays_as_its_upstream_says() {
    let Some(root) = common::fixtures("expected/eventlogs.json") else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("expected/eventlogs.json")).unwrap())
            .unwrap();
    let mut table = Vec::new();
    let (mut matched, mut mismatched, mut parsed_only) = (0, 0, 0);
    let mut refused = Vec::new();
    for entry in expected.as_array().unwrap() {
        let path = entry["log"].as_str().unwrap();
        let data = std::fs::read(root.join(path)).unwrap();
        let log = match parse(&data) {
            Ok(log) => log,
            Err(error) => {
                // Only logs without stored PCRs may be refused, and each refusal is listed
                // and checked below: keylime's "-bogus" (a text file) and "-empty" logs.
                assert!(entry["outcome"].is_null(), "{path}: {error}");
                table.push(format!("{path:<90} refused: {error}"));
                refused.push(path.to_owned());
                continue;
            }
        };
        if let Some(events) = entry["events"].as_u64() {
            assert_eq!(log.events.len() as u64, events, "{path}: event count");
        }
        let format = entry["format"].as_str().unwrap_or_default();
        assert_eq!(
            log.format == LogFormat::CryptoAgile,
            format.starts_with("crypto-agile"),
            "{path}: format {format}"
        );
        let replayed = replay(&log);
        if let Some(locality) = entry["startup_locality"].as_u64() {
            assert_eq!(
                replayed.startup_locality,
                Some(locality as u8),
                "{path}: startup locality"
            );
        }
        let ignore: Vec<u32> = entry["ignore_pcrs"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap() as u32).collect())
            .unwrap_or_default();
        let outcome = entry["outcome"].as_str();
        let mismatches = compare(&replayed, &expected_pcrs(&entry["expected_pcrs"]), &ignore);
        let found: Vec<String> = mismatches
            .iter()
            .map(|m| format!("{}:{}", m.bank, m.pcr))
            .collect();
        match outcome {
            Some("match") => {
                assert!(
                    found.is_empty(),
                    "{path}: expected a match, got mismatches {mismatches:#?}"
                );
                matched += 1;
            }
            Some("mismatch") => {
                let mut want: Vec<String> = entry["mismatching"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let mut got = found.clone();
                want.sort();
                got.sort();
                assert_eq!(got, want, "{path}: mismatching PCRs");
                assert!(
                    mismatches
                        .iter()
                        .all(|m| !m.events.is_empty() || m.pcr == 0),
                    "{path}: events named"
                );
                mismatched += 1;
            }
            _ => parsed_only += 1,
        }
        table.push(format!(
            "{path:<90} {:<12} {:>4} events  {}",
            format!("{:?}", log.format),
            log.events.len(),
            outcome.unwrap_or("parsed")
        ));
    }
    eprintln!("{}", table.join("\n"));
    eprintln!(
        "event logs: {matched} replay to their PCRs, {mismatched} mismatch exactly as recorded, {parsed_only} parsed (no PCRs stored)"
    );
    assert!(matched >= 45 && mismatched >= 10);
    assert_eq!(
        refused,
        [
            "keylime/test/data/create-mb-policy/binary_bios_measurements-bogus",
            "keylime/test/data/create-mb-policy/binary_bios_measurements-empty"
        ],
        "only the deliberately invalid logs may be refused"
    );
}

/// Deterministic xorshift, so failures reproduce.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn truncated_and_corrupted_real_logs_never_panic() {
    let Some(root) = common::fixtures("expected/eventlogs.json") else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("expected/eventlogs.json")).unwrap())
            .unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut runs = 0;
    for entry in expected.as_array().unwrap() {
        let data = std::fs::read(root.join(entry["log"].as_str().unwrap())).unwrap();
        if data.is_empty() {
            continue;
        }
        for _ in 0..40 {
            let cut = (next(&mut state) as usize) % data.len();
            if let Ok(log) = parse(&data[..cut]) {
                let _ = replay(&log);
            }
            let mut flipped = data.clone();
            for _ in 0..4 {
                let at = (next(&mut state) as usize) % flipped.len();
                flipped[at] ^= next(&mut state) as u8 | 1;
            }
            if let Ok(log) = parse(&flipped) {
                let _ = replay(&log);
                let _ = vigil_verifier::evidence::eventlog::render::render_text(&log);
            }
            runs += 2;
        }
    }
    eprintln!("{runs} truncated or corrupted logs parsed without panic");
}

#[test]
fn secure_boot_state_of_real_machines() {
    use vigil_verifier::evidence::eventlog::{ClaimStatus, ClaimValue, claims};
    let Some(root) = common::fixtures("expected/eventlogs.json") else {
        return;
    };
    for (path, enabled) in [
        ("go-tpm-tools/eventlogs/debian-10.bin", true),
        ("go-tpm-tools/eventlogs/arch-linux-workstation.bin", false),
        (
            "go-tpm-tools/eventlogs/ubuntu-2104-no-secure-boot.bin",
            false,
        ),
    ] {
        let log = parse(&std::fs::read(root.join(path)).unwrap()).unwrap();
        let claims = claims(&log);
        let claim = claims
            .iter()
            .find(|c| c.name == "boot.secure_boot.enabled")
            .unwrap();
        assert_eq!(claim.value, ClaimValue::Bool(enabled), "{path}");
        assert_eq!(claim.status, ClaimStatus::Verified, "{path}");
        assert!(
            claims.iter().any(|c| c.name == "boot.separators.pcr7"),
            "{path}"
        );
        assert!(
            claims
                .iter()
                .any(|c| c.name.starts_with("boot.apps[0].authenticode")),
            "{path}"
        );
    }
}
