//! Table-driven tests of baseline files and of the appraisal engine: every rule kind passes on
//! matching claims and fails with the right explanation on each kind of mismatch; a rule that
//! cannot be evaluated never passes.

use vigil_ear::Status;

use super::*;
use crate::claims::{ClaimSet, Source, Trust, Value};
use crate::report::Check;

const PCR7: &str = "aa00000000000000000000000000000000000000000000000000000000000007";
const SHIM: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const GRUB: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const DBX: &str = "dbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdb";

const BASELINE: &str = r#"
format = 1
name = "hgx"
description = "test fleet"

[freshness]
max_evidence_age_seconds = 300

[identity]
ak_trust = ["ek-certified"]

[pcrs.sha256]
7 = "AA00000000000000000000000000000000000000000000000000000000000007"

[boot]
secure_boot = true
event_log = "required"
boot_applications = [
  "1111111111111111111111111111111111111111111111111111111111111111",
  "2222222222222222222222222222222222222222222222222222222222222222",
]
kernel_cmdline = ["BOOT_IMAGE=/vmlinuz-* ro quiet*"]
dbx_contains = ["dbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdb"]

[gpu]
count = 2
driver_versions = ["550.54.15", "550.90.07"]
min_driver_version = "550.54.15"
deny_vbios_versions = ["96.00.5E.00.01"]
min_vbios_version = "96.00.74.00.01"

[[rule]]
id = "firmware.crtm"
claim = "boot.firmware.crtm_version"
one_of = ["1.2.3"]
category = "hardware"
"#;

fn quote(bank: &str, pcr: u32) -> Source {
    Source::Quote {
        bank: bank.into(),
        pcr,
    }
}

fn event(n: usize, pcr: u32) -> Source {
    Source::Event {
        event: n,
        pcr,
        offset: n * 100,
    }
}

fn gpu_source(gpu: u32) -> Source {
    Source::GpuReport {
        gpu,
        claim: "x".into(),
    }
}

/// A host whose every claim the baseline above affirms.
fn golden() -> ClaimSet {
    let mut c = ClaimSet {
        node_id: "gpu-01".into(),
        verified_at: 1_000,
        claims: Vec::new(),
    };
    let text = |s: &str| Some(Value::Text(s.into()));
    let verifier = || Source::Verifier { check: "t".into() };
    c.push(
        "tpm.ak_trust",
        text("ek-certified"),
        Trust::Verified,
        verifier(),
    );
    c.push(
        "tpm.event_log",
        text("replayed"),
        Trust::Verified,
        verifier(),
    );
    c.push(
        "pcr.sha256.7",
        Some(Value::Digest(PCR7.into())),
        Trust::Verified,
        quote("sha256", 7),
    );
    c.push(
        "boot.secure_boot.enabled",
        Some(Value::Bool(true)),
        Trust::Verified,
        event(3, 7),
    );
    c.push(
        "boot.secure_boot.dbx.sha256_entries",
        Some(Value::List(vec![DBX.into(), "ee".into()])),
        Trust::Verified,
        event(6, 7),
    );
    let attested = || Trust::Attested("authenticode".into());
    c.push(
        "boot.apps[0].authenticode_sha256",
        Some(Value::Digest(SHIM.into())),
        attested(),
        event(20, 4),
    );
    c.push(
        "boot.apps[1].authenticode_sha256",
        Some(Value::Digest(GRUB.into())),
        attested(),
        event(21, 4),
    );
    c.push(
        "boot.kernel_cmdline",
        text("BOOT_IMAGE=/vmlinuz-6.8.0 ro quiet splash"),
        Trust::Verified,
        event(30, 8),
    );
    c.push(
        "boot.firmware.crtm_version",
        text("1.2.3"),
        Trust::Verified,
        event(0, 0),
    );
    c.push(
        "gpu.count",
        Some(Value::Int(2)),
        Trust::Verified,
        verifier(),
    );
    for (gpu, driver, vbios) in [
        (0, "550.54.15", "96.00.74.00.1C"),
        (1, "550.90.07", "96.00.9F.00.01"),
    ] {
        let p = format!("gpu[{gpu}]");
        c.push(
            format!("{p}.evidence"),
            text("signed"),
            Trust::Verified,
            gpu_source(gpu),
        );
        c.push(
            format!("{p}.driver_version"),
            text(driver),
            Trust::Verified,
            gpu_source(gpu),
        );
        c.push(
            format!("{p}.vbios_version"),
            text(vbios),
            Trust::Verified,
            gpu_source(gpu),
        );
        c.push(
            format!("{p}.measurements.match"),
            Some(Value::Bool(true)),
            Trust::Verified,
            gpu_source(gpu),
        );
        c.push(
            format!("{p}.cc_mode"),
            text("spt"),
            Trust::Verified,
            gpu_source(gpu),
        );
        c.push(
            format!("{p}.cert_chain.revocation"),
            text("good"),
            Trust::Verified,
            gpu_source(gpu),
        );
    }
    c
}

fn baseline() -> Baseline {
    let compiled = parse_baseline("test.toml", BASELINE).unwrap();
    Baseline {
        reference: BaselineRef {
            name: compiled.name,
            version: 1,
            sha256: content_digest(BASELINE),
        },
        rules: compiled.rules,
    }
}

fn passing_checks() -> Vec<Check> {
    vec![
        Check::pass("quote.signature", ""),
        Check::pass("gpu[0].signature", ""),
    ]
}

fn set(claims: &mut ClaimSet, name: &str, value: Option<Value>, trust: Trust) {
    let claim = claims.claims.iter_mut().find(|c| c.name == name).unwrap();
    claim.value = value;
    claim.trust = trust;
}

#[test]
fn golden_host_is_affirmed_with_every_rule_passing() {
    let appraisal = appraise(&golden(), &passing_checks(), &baseline(), 1_010);
    let failures: Vec<_> = appraisal.failures().collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(appraisal.status, Status::Affirming);
    assert!(appraisal.acceptable());
    assert_eq!(
        appraisal.submods.keys().collect::<Vec<_>>(),
        ["gpu0", "gpu1", "host"]
    );
    let host = &appraisal.submods["host"].trust_vector;
    assert_eq!(host.instance_identity, vigil_ear::ar4si::AFFIRMING);
    assert_eq!(host.configuration, vigil_ear::ar4si::AFFIRMING);
    assert_eq!(host.executables, vigil_ear::ar4si::AFFIRMING);
    assert_eq!(host.hardware, vigil_ear::ar4si::AFFIRMING);
    assert_eq!(
        appraisal.submods["gpu1"].trust_vector.runtime_opaque,
        vigil_ear::ar4si::AFFIRMING
    );
    // A GPU rule is judged for each GPU separately.
    let per_gpu: Vec<_> = appraisal
        .results
        .iter()
        .filter(|r| r.rule == "gpu.min_driver_version")
        .map(|r| (r.submodule.as_str(), r.claim.as_str()))
        .collect();
    assert_eq!(
        per_gpu,
        [
            ("gpu0", "gpu[0].driver_version"),
            ("gpu1", "gpu[1].driver_version")
        ]
    );
}

/// (what changes, rule that must not be met, outcome, text the explanation must contain,
/// submodule, resulting status)
type Case = (
    &'static str,
    fn(&mut ClaimSet),
    &'static str,
    Outcome,
    &'static str,
    &'static str,
    Status,
);

#[test]
fn each_rule_kind_fails_with_its_explanation() {
    let cases: Vec<Case> = vec![
        (
            "PCR value differs",
            |c| {
                set(
                    c,
                    "pcr.sha256.7",
                    Some(Value::Digest("bb".into())),
                    Trust::Verified,
                )
            },
            "pcr.sha256.7",
            Outcome::Fail,
            "bb",
            "host",
            Status::Contraindicated,
        ),
        (
            "Secure Boot off",
            |c| {
                set(
                    c,
                    "boot.secure_boot.enabled",
                    Some(Value::Bool(false)),
                    Trust::Verified,
                )
            },
            "boot.secure_boot",
            Outcome::Fail,
            "false",
            "host",
            Status::Contraindicated,
        ),
        (
            "unknown boot application",
            |c| {
                set(
                    c,
                    "boot.apps[1].authenticode_sha256",
                    Some(Value::Digest("33".into())),
                    Trust::Attested("a".into()),
                )
            },
            "boot.applications",
            Outcome::Fail,
            "33",
            "host",
            Status::Contraindicated,
        ),
        (
            "kernel command line",
            |c| {
                set(
                    c,
                    "boot.kernel_cmdline",
                    Some(Value::Text("BOOT_IMAGE=/vmlinuz-6.8 init=/bin/sh".into())),
                    Trust::Verified,
                )
            },
            "boot.kernel_cmdline",
            Outcome::Fail,
            "init=/bin/sh",
            "host",
            Status::Contraindicated,
        ),
        (
            "dbx lacks a revocation",
            |c| {
                set(
                    c,
                    "boot.secure_boot.dbx.sha256_entries",
                    Some(Value::List(vec!["ee".into()])),
                    Trust::Verified,
                )
            },
            "boot.dbx_contains",
            Outcome::Fail,
            "[ee]",
            "host",
            Status::Contraindicated,
        ),
        (
            "AK only trusted on first use",
            |c| {
                set(
                    c,
                    "tpm.ak_trust",
                    Some(Value::Text("tofu".into())),
                    Trust::Verified,
                )
            },
            "identity.ak_trust",
            Outcome::Fail,
            "tofu",
            "host",
            Status::Contraindicated,
        ),
        (
            "no event log",
            |c| {
                set(
                    c,
                    "tpm.event_log",
                    Some(Value::Text("absent".into())),
                    Trust::Verified,
                )
            },
            "boot.event_log",
            Outcome::Fail,
            "absent",
            "host",
            Status::Contraindicated,
        ),
        (
            "driver downgraded",
            |c| {
                set(
                    c,
                    "gpu[1].driver_version",
                    Some(Value::Text("550.54.14".into())),
                    Trust::Verified,
                )
            },
            "gpu.min_driver_version",
            Outcome::Fail,
            "550.54.14",
            "gpu1",
            Status::Contraindicated,
        ),
        (
            "driver not allowed",
            |c| {
                set(
                    c,
                    "gpu[0].driver_version",
                    Some(Value::Text("560.1.1".into())),
                    Trust::Verified,
                )
            },
            "gpu.driver_versions",
            Outcome::Fail,
            "560.1.1",
            "gpu0",
            Status::Contraindicated,
        ),
        (
            "VBIOS on the deny list",
            |c| {
                set(
                    c,
                    "gpu[0].vbios_version",
                    Some(Value::Text("96.00.5E.00.01".into())),
                    Trust::Verified,
                )
            },
            "gpu.deny_vbios_versions",
            Outcome::Fail,
            "96.00.5E.00.01",
            "gpu0",
            Status::Contraindicated,
        ),
        (
            "VBIOS downgraded",
            |c| {
                set(
                    c,
                    "gpu[1].vbios_version",
                    Some(Value::Text("96.00.61.00.01".into())),
                    Trust::Verified,
                )
            },
            "gpu.min_vbios_version",
            Outcome::Fail,
            "96.00.61.00.01",
            "gpu1",
            Status::Contraindicated,
        ),
        (
            "GPU measurements differ from the RIM",
            |c| {
                let claim = c
                    .claims
                    .iter_mut()
                    .find(|c| c.name == "gpu[0].measurements.match")
                    .unwrap();
                claim.value = Some(Value::Bool(false));
                claim.detail = Some("block 9: golden ab, runtime cd".into());
            },
            "gpu.measurements",
            Outcome::Fail,
            "block 9: golden ab, runtime cd",
            "gpu0",
            Status::Contraindicated,
        ),
        (
            "CC mode devtools",
            |c| {
                set(
                    c,
                    "gpu[1].cc_mode",
                    Some(Value::Text("devtools".into())),
                    Trust::Verified,
                )
            },
            "gpu.cc_mode",
            Outcome::Fail,
            "devtools",
            "gpu1",
            Status::Contraindicated,
        ),
        (
            "unsigned GPU inventory",
            |c| {
                set(
                    c,
                    "gpu[0].evidence",
                    Some(Value::Text("inventory".into())),
                    Trust::Verified,
                )
            },
            "gpu.signed_evidence",
            Outcome::Fail,
            "inventory",
            "gpu0",
            Status::Contraindicated,
        ),
        (
            "a GPU missing",
            |c| set(c, "gpu.count", Some(Value::Int(1)), Trust::Verified),
            "gpu.count",
            Outcome::Fail,
            "1",
            "host",
            Status::Contraindicated,
        ),
        (
            "revocation unknown is a warning",
            |c| {
                set(
                    c,
                    "gpu[0].cert_chain.revocation",
                    None,
                    Trust::Unproven("no OCSP response".into()),
                )
            },
            "gpu.revocation",
            Outcome::Unevaluable,
            "no OCSP response",
            "gpu0",
            Status::Warning,
        ),
        (
            "firmware version (generic rule)",
            |c| {
                set(
                    c,
                    "boot.firmware.crtm_version",
                    Some(Value::Text("0.9".into())),
                    Trust::Verified,
                )
            },
            "firmware.crtm",
            Outcome::Fail,
            "0.9",
            "host",
            Status::Contraindicated,
        ),
        // Unevaluable: never a pass.
        (
            "claim missing",
            |c| c.claims.retain(|c| c.name != "boot.kernel_cmdline"),
            "boot.kernel_cmdline",
            Outcome::Unevaluable,
            "no such claim",
            "host",
            Status::Contraindicated,
        ),
        (
            "claim on a PCR outside the quote",
            |c| {
                set(
                    c,
                    "boot.apps[0].authenticode_sha256",
                    Some(Value::Digest(SHIM.into())),
                    Trust::Unproven("PCR 4 is not in the quote".into()),
                )
            },
            "boot.applications",
            Outcome::Unevaluable,
            "PCR 4 is not in the quote",
            "host",
            Status::Contraindicated,
        ),
        (
            "event data contradicts its digest",
            |c| {
                set(
                    c,
                    "boot.secure_boot.enabled",
                    Some(Value::Bool(true)),
                    Trust::Failed("event 3 data does not hash to its digest".into()),
                )
            },
            "boot.secure_boot",
            Outcome::Unevaluable,
            "does not hash",
            "host",
            Status::Contraindicated,
        ),
        (
            "claim of the wrong type",
            |c| {
                set(
                    c,
                    "boot.secure_boot.enabled",
                    Some(Value::Text("true".into())),
                    Trust::Verified,
                )
            },
            "boot.secure_boot",
            Outcome::Unevaluable,
            "expected a boolean",
            "host",
            Status::Contraindicated,
        ),
        (
            "GPU claim missing on one GPU",
            |c| c.claims.retain(|c| c.name != "gpu[1].vbios_version"),
            "gpu.min_vbios_version",
            Outcome::Unevaluable,
            "no such claim",
            "gpu1",
            Status::Contraindicated,
        ),
        (
            "no GPUs at all",
            |c| c.claims.retain(|c| !c.name.starts_with("gpu[")),
            "gpu.min_driver_version",
            Outcome::Unevaluable,
            "no GPU evidence",
            "host",
            Status::Contraindicated,
        ),
    ];
    let baseline = baseline();
    for (what, change, rule, outcome, explanation, submodule, status) in cases {
        let mut claims = golden();
        change(&mut claims);
        let appraisal = appraise(&claims, &passing_checks(), &baseline, 1_010);
        let result = appraisal
            .results
            .iter()
            .find(|r| r.rule == rule && r.outcome != Outcome::Pass)
            .unwrap_or_else(|| panic!("{what}: rule {rule} was met: {:#?}", appraisal.results));
        assert_eq!(result.outcome, outcome, "{what}");
        assert!(
            result.found.contains(explanation),
            "{what}: {:?} does not explain with {explanation:?}",
            result.found
        );
        assert!(!result.expected.is_empty(), "{what}: expected value shown");
        assert_eq!(result.submodule, submodule, "{what}");
        assert_eq!(appraisal.status, status, "{what}");
        assert_eq!(appraisal.acceptable(), status == Status::Warning, "{what}");
    }
}

#[test]
fn provenance_points_at_the_evidence() {
    let mut claims = golden();
    set(
        &mut claims,
        "boot.apps[1].authenticode_sha256",
        Some(Value::Digest("33".into())),
        Trust::Verified,
    );
    let appraisal = appraise(&claims, &passing_checks(), &baseline(), 1_010);
    let result = appraisal.failures().next().unwrap();
    assert_eq!(result.source, Some(event(21, 4)));
    assert_eq!(result.claim, "boot.apps[1].authenticode_sha256");
}

#[test]
fn stale_evidence_fails_freshness() {
    let appraisal = appraise(&golden(), &passing_checks(), &baseline(), 1_000 + 301);
    let result = appraisal.failures().next().unwrap();
    assert_eq!(result.rule, "freshness.max_evidence_age");
    assert_eq!(result.found, "301");
    assert_eq!(appraisal.status, Status::Contraindicated);
}

#[test]
fn a_failed_evidence_check_contraindicates_its_submodule_whatever_the_rules() {
    let checks = vec![
        Check::pass("quote.signature", ""),
        Check::fail("gpu[1].nonce", "other session"),
    ];
    let appraisal = appraise(&golden(), &checks, &baseline(), 1_010);
    assert_eq!(appraisal.submods["gpu1"].status, Status::Contraindicated);
    assert_eq!(appraisal.submods["gpu0"].status, Status::Affirming);
    assert_eq!(appraisal.status, Status::Contraindicated);
}

/// (file text, text the error must contain)
#[test]
fn bad_baseline_files_give_located_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "format = 1\nname = \"x\"\n[boot\nsecure_boot = true\n",
            "line 3",
        ),
        (
            "format = 1\nname = \"x\"\n[boot]\nsecureboot = true\n",
            "line 4, column 1: unknown field `secureboot`",
        ),
        (
            "format = 1\nname = \"x\"\n[gpu]\ncount = \"eight\"\n",
            "line 4",
        ),
        (
            "format = 1\nname = \"x\"\n[[rule]]\nclaim = \"boot.secureboot.enabled\"\nequals = true\n",
            "rule[0]: unknown claim \"boot.secureboot.enabled\"",
        ),
        (
            "format = 1\nname = \"x\"\n[[rule]]\nclaim = \"boot.secure_boot.enabled\"\n",
            "rule[0]: says nothing to check",
        ),
        (
            "format = 1\nname = \"x\"\n[[rule]]\nclaim = \"boot.secure_boot.enabled\"\nequals = true\none_of = [\"x\"]\n",
            "more than one check",
        ),
        (
            "format = 2\nname = \"x\"\n[boot]\nsecure_boot = true\n",
            "format: format 2 is not supported",
        ),
        ("format = 1\nname = \"x\"\n", "a baseline without rules"),
        (
            "format = 1\nname = \"x\"\n[pcrs.sha256]\n24 = \"00\"\n",
            "pcrs.sha256.24: PCR index must be 0..=23",
        ),
        (
            "format = 1\nname = \"x\"\n[pcrs.md5]\n1 = \"00\"\n",
            "pcrs.md5: unknown PCR bank",
        ),
        (
            "format = 1\nname = \"x\"\n[pcrs.sha256]\n1 = \"xyz\"\n",
            "not a hex digest",
        ),
        (
            "format = 1\nname = \"x\"\n[boot]\nevent_log = \"sometimes\"\n",
            "line 4",
        ),
        (
            "format = 1\nname = \"x\"\n[[rule]]\nid = \"a\"\nclaim = \"gpu.count\"\nequals = 1\n[[rule]]\nid = \"a\"\nclaim = \"gpu.count\"\nequals = 2\n",
            "two rules have the id \"a\"",
        ),
        (
            "name = \"x\"\n[boot]\nsecure_boot = true\n",
            "missing field `format`",
        ),
    ];
    for (text, wanted) in cases {
        let error = parse_baseline("b.toml", text).unwrap_err().to_string();
        assert!(error.starts_with("b.toml: "), "{error}");
        assert!(
            error.contains(wanted),
            "{text:?}: {error:?} lacks {wanted:?}"
        );
    }
    let huge = "#".repeat(file::MAX_BASELINE_BYTES + 1);
    assert!(matches!(
        parse_baseline("b.toml", &huge),
        Err(BaselineError::TooLarge { .. })
    ));
}

#[test]
fn gpu_rules_default_to_strict() {
    let compiled =
        parse_baseline("b.toml", "format = 1\nname = \"x\"\n[gpu]\ncount = 8\n").unwrap();
    let ids: Vec<&str> = compiled.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gpu.count",
            "gpu.signed_evidence",
            "gpu.measurements",
            "gpu.cc_mode",
            "gpu.revocation"
        ]
    );
}

#[test]
fn captured_baseline_loads_and_affirms_its_own_node() {
    let claims = golden();
    let text = capture::capture("golden", &claims, "2026-11-29T00:00:00Z");
    let compiled = parse_baseline("captured", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let baseline = Baseline {
        reference: BaselineRef {
            name: compiled.name,
            version: 1,
            sha256: content_digest(&text),
        },
        rules: compiled.rules,
    };
    let appraisal = appraise(&claims, &passing_checks(), &baseline, 1_010);
    let failures: Vec<_> = appraisal.failures().collect();
    assert!(failures.is_empty(), "{failures:#?}\n{text}");
    assert!(
        text.contains("# captured from gpu-01") || text.contains("node gpu-01"),
        "{text}"
    );
    // ...and refuses a node that differs from the golden one.
    let mut other = golden();
    set(
        &mut other,
        "pcr.sha256.7",
        Some(Value::Digest("cc".into())),
        Trust::Verified,
    );
    assert_eq!(
        appraise(&other, &passing_checks(), &baseline, 1_010).status,
        Status::Contraindicated
    );
}

#[test]
fn baseline_changes_need_a_bounded_author_and_reason() {
    let verifier = crate::attest::Verifier::new(
        crate::store::Store::in_memory().unwrap(),
        crate::attest::VerifierConfig::default(),
    );
    let text = "format = 1\nname = \"b\"\n[boot]\nsecure_boot = true\n";
    for (author, reason, wanted) in [
        ("", "r", "needs its author"),
        ("a", " ", "needs its reason"),
        ("a", &"x".repeat(2000), "at most 1024 bytes"),
        ("a\u{7}", "r", "printable"),
    ] {
        let error = verifier
            .put_baseline("b.toml", text, None, author, reason, 1)
            .unwrap_err()
            .to_string();
        assert!(error.contains(wanted), "{error}");
    }
    let stored = verifier
        .put_baseline("b.toml", text, None, "alice", "why", 1)
        .unwrap();
    assert_eq!(stored.version, 1);
    let error = verifier
        .assign_baseline("g", "b", "", "r", 2)
        .unwrap_err()
        .to_string();
    assert!(error.contains("author"), "{error}");
    let error = verifier
        .assign_baseline("", "b", "a", "r", 2)
        .unwrap_err()
        .to_string();
    assert!(error.contains("group"), "{error}");
}
