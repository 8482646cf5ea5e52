//! Any bytes as Huawei Ascend NPU evidence (GTA's JSON): parse, and verify what parses with
//! an empty root set (so the IAK chain always fails, but signature, challenge, PCR digest,
//! boot log and IMA replay all run), then render the result. Must never panic,
//! hang or allocate without bound.
//!
//! Two modes, chosen by the first byte. Even: the rest is the JSON document. Odd: the rest is
//! split at "\n--\n" into quote, signature, PCR values (33-byte records: index, value), boot
//! log and IMA list, written as hex into a well-formed document around a fixed certificate
//! (`tests/data/ascend/iak-fuzz-test-only.der`), so that fuzzed structures get past the
//! JSON and the certificate and reach the decoders and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_verifier::evidence::ascend::{
    AscendRoots, parse_evidence, verify_evidence, verify_evidence_bytes,
};

/// 2026-05-01T00:00:00Z: a fixed verification time keeps runs reproducible.
const AT: i64 = 1_777_593_600;
const CHALLENGE: [u8; 32] = [0x5a; 32];
const CERTIFICATE: &[u8] = include_bytes!("../../tests/data/ascend/iak-fuzz-test-only.der");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn structured(data: &[u8]) -> Vec<u8> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 4 {
        match rest.windows(4).position(|w| w == b"\n--\n") {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + 4..];
            }
            None => break,
        }
    }
    parts.push(rest);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let pcrs: Vec<String> = part(2)
        .chunks_exact(33)
        .map(|record| {
            format!(
                "{{\"pcr_index\":{},\"pcr_value\":\"{}\"}}",
                record[0] % 32,
                hex(&record[1..])
            )
        })
        .collect();
    let mut logs = Vec::new();
    for (index, log_type) in [(3, "boot_measurement"), (4, "runtime_measurement")] {
        if !part(index).is_empty() {
            logs.push(format!(
                "{{\"log_type\":\"{log_type}\",\"log_data\":\"{}\"}}",
                hex(part(index))
            ));
        }
    }
    format!(
        "{{\"ak_cert\":\"{}\",\"quote\":{{\"quote_data\":\"{}\",\"signature\":\"{}\"}},\
         \"pcrs\":{{\"hash_alg\":\"sha256\",\"pcr_values\":[{}]}},\"logs\":[{}]}}",
        hex(CERTIFICATE),
        hex(part(0)),
        hex(part(1)),
        pcrs.join(","),
        logs.join(",")
    )
    .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let document = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        structured(rest)
    };
    let roots = AscendRoots::empty();
    if let Ok(evidence) = parse_evidence(&document) {
        let result = verify_evidence(&evidence, &roots, &CHALLENGE, AT);
        assert!(
            !result.passed(),
            "no root is configured, so nothing can pass"
        );
        let _ = result.render_text();
        let _ = result.claims_for_device(1);
    } else {
        let result = verify_evidence_bytes(&document, &roots, &CHALLENGE, AT);
        assert!(!result.passed());
    }
});
