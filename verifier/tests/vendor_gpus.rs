//! GPUs of every vendor in one evidence model: host-reported inventories (AMD through
//! amdsmi, Biren through BRML, Ascend through DCMI) become claims marked as the host's word,
//! a baseline captured from a golden host affirms it, and each kind of drift fails naming the
//! device and the rule.

use vigil_proto::v1::{FirmwareVersion, GpuEvidence};
use vigil_verifier::baseline::{self, Baseline, BaselineRef, Outcome, rules::Category};
use vigil_verifier::claims::{ClaimSet, Trust, Value};
use vigil_verifier::evidence::gpu::{GpuContext, check_gpus};

/// An MI300X as `amd-smi static`/`amd-smi firmware` describe one (field names from ROCm's
/// amd-smi documentation; values made up in that shape).
fn mi300x(index: u32) -> GpuEvidence {
    let firmware = |id: &str, version: &str| FirmwareVersion {
        id: id.into(),
        version: version.into(),
    };
    GpuEvidence {
        index,
        vendor: "amd".into(),
        kind: "host-reported".into(),
        format: "amdsmi-inventory".into(),
        name: "AMD Instinct MI300X".into(),
        uuid: format!("1fff74a1-0000-1000-8000-00000000000{index}"),
        serial: format!("692251001234{index}"),
        part_number: "102-G30211-00".into(),
        driver_version: "6.10.5".into(),
        vbios_version: "022.040.003.043.000001".into(),
        firmware: vec![
            firmware("PSP_SOSDRV", "00.36.02.59"),
            firmware("SMC", "00.85.112.00"),
            firmware("TA_RAS", "1B.36.02.14"),
            firmware("PLDM_BUNDLE", "0.1.7.1"),
        ],
        ..Default::default()
    }
}

fn claims_of(gpus: &[GpuEvidence]) -> (Vec<vigil_verifier::report::Check>, ClaimSet) {
    let mut claims = ClaimSet {
        node_id: "mi300x-host".into(),
        verified_at: 0,
        claims: Vec::new(),
    };
    let context = GpuContext {
        rims: None,
        at: 0,
        npu_roots: None,
        nvidia: Default::default(),
    };
    let checks = check_gpus(&[7; 32], gpus, &context, true, &mut claims);
    (checks, claims)
}

fn compile(text: &str) -> Baseline {
    let compiled =
        baseline::parse_baseline("vendor.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Baseline {
        reference: BaselineRef {
            name: compiled.name,
            version: 1,
            sha256: String::new(),
        },
        rules: compiled.rules,
    }
}

/// GPU rules not met (the synthetic claims have no TPM claims for the host rules).
fn not_met(claims: &ClaimSet, baseline: &Baseline) -> Vec<(String, String, String)> {
    baseline::appraise(claims, &[], baseline, 0)
        .failures()
        .filter(|r| r.rule.starts_with("gpus."))
        .map(|r| (r.rule.clone(), r.claim.clone(), r.found.clone()))
        .collect()
}

#[test]
fn host_reported_inventory_is_the_hosts_word_bound_by_the_quote() {
    let host: Vec<GpuEvidence> = (0..8).map(mi300x).collect();
    let (checks, claims) = claims_of(&host);
    assert!(checks.iter().all(|c| c.passed), "{checks:?}");
    let detail = &checks[0].detail;
    assert!(
        detail.contains("host-reported inventory (amdsmi-inventory)"),
        "{detail}"
    );
    assert_eq!(
        claims.get("gpu.count.amd").unwrap().value,
        Some(Value::Int(8))
    );
    let firmware = claims.get("gpu[3].firmware.PSP_SOSDRV").unwrap();
    assert_eq!(firmware.value, Some(Value::Text("00.36.02.59".into())));
    assert!(matches!(firmware.trust, Trust::Attested(_)), "{firmware:?}");
    assert_eq!(
        claims.get("gpu[3].evidence").unwrap().value,
        Some(Value::Text("inventory".into()))
    );
    // Without a verified quote nothing of it is usable.
    let mut unbound = ClaimSet::default();
    check_gpus(
        &[7; 32],
        &host,
        &GpuContext {
            rims: None,
            at: 0,
            npu_roots: None,
            nvidia: Default::default(),
        },
        false,
        &mut unbound,
    );
    assert!(
        !unbound
            .get("gpu[3].firmware.PSP_SOSDRV")
            .unwrap()
            .trust
            .usable()
    );
}

#[test]
fn a_captured_vendor_baseline_affirms_its_host_and_names_every_drift() {
    let host: Vec<GpuEvidence> = (0..8).map(mi300x).collect();
    let (_, claims) = claims_of(&host);
    let captured = baseline::capture::capture("mi300x", &claims, "2026-12-06T00:00:00Z");
    assert!(captured.contains("[gpus.amd]\ncount = 8"), "{captured}");
    assert!(
        captured.contains("require_signed_evidence = false"),
        "{captured}"
    );
    assert!(
        captured.contains(
            "firmware.PSP_SOSDRV = { allowed = [\"00.36.02.59\"], min = \"00.36.02.59\" }"
        ),
        "{captured}"
    );
    assert!(
        !captured.contains("[gpu]\n"),
        "no NVIDIA section for an AMD host: {captured}"
    );
    let golden = compile(&captured.replace(
        "min = \"00.85.112.00\" }",
        "min = \"00.85.112.00\", deny = [\"00.85.100.00\"] }",
    ));
    let appraisal = baseline::appraise(&claims, &[], &golden, 0);
    let failures: Vec<_> = appraisal
        .failures()
        .filter(|r| r.rule.starts_with("gpus."))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    // Host-reported values count as configuration, never as hardware.
    for result in appraisal
        .results
        .iter()
        .filter(|r| r.rule.starts_with("gpus.amd.firmware"))
    {
        assert_eq!(result.category, Category::Configuration, "{result:?}");
    }

    // A downgraded firmware on GPU 5.
    let mut downgraded = host.clone();
    downgraded[5].firmware[0].version = "00.36.02.50".into();
    let (_, claims) = claims_of(&downgraded);
    let failed = not_met(&claims, &golden);
    assert!(
        failed.iter().any(
            |(rule, claim, _)| rule == "gpus.amd.firmware.PSP_SOSDRV.min"
                && claim == "gpu[5].firmware.PSP_SOSDRV"
        ),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|(_, claim, _)| claim.starts_with("gpu[5]")),
        "{failed:?}"
    );

    // A denied firmware version on GPU 2.
    let mut denied = host.clone();
    denied[2].firmware[1].version = "00.85.100.00".into();
    let (_, claims) = claims_of(&denied);
    let failed = not_met(&claims, &golden);
    assert!(
        failed
            .iter()
            .any(|(rule, claim, _)| rule == "gpus.amd.firmware.SMC.deny"
                && claim == "gpu[2].firmware.SMC"),
        "{failed:?}"
    );

    // A denied VBIOS (IFWI) version.
    let vbios = compile(&captured.replace(
        "require_signed_evidence = false",
        "require_signed_evidence = false\ndeny_vbios_versions = [\"022.040.003.043.000001\"]",
    ));
    let (_, claims) = claims_of(&host);
    let failed = not_met(&claims, &vbios);
    assert_eq!(
        failed
            .iter()
            .filter(|(rule, _, _)| rule == "gpus.amd.vbios.deny")
            .count(),
        8,
        "{failed:?}"
    );

    // A missing device.
    let (_, claims) = claims_of(&host[..7]);
    let failed = not_met(&claims, &golden);
    assert!(
        failed
            .iter()
            .any(|(rule, _, found)| rule == "gpus.amd.count" && found == "7"),
        "{failed:?}"
    );

    // A firmware component the host stopped reporting.
    let mut dropped = host.clone();
    dropped[0].firmware.retain(|f| f.id != "TA_RAS");
    let (_, claims) = claims_of(&dropped);
    let failed = not_met(&claims, &golden);
    assert!(
        failed.iter().any(
            |(rule, claim, _)| rule.starts_with("gpus.amd.firmware.TA_RAS")
                && claim == "gpu[0].firmware.TA_RAS"
        ),
        "{failed:?}"
    );
}

#[test]
fn vendor_rules_apply_to_their_vendor_only_and_demand_its_devices() {
    let mut host: Vec<GpuEvidence> = (0..2).map(mi300x).collect();
    host.push(GpuEvidence {
        index: 2,
        vendor: "biren".into(),
        kind: "host-reported".into(),
        format: "brml-inventory".into(),
        name: "Biren BR104".into(),
        firmware: vec![FirmwareVersion {
            id: "CP".into(),
            version: "1.2.3".into(),
        }],
        ..Default::default()
    });
    let (_, claims) = claims_of(&host);
    let baseline = compile(
        "format = 1\nname = \"mixed\"\n[gpus.biren]\ncount = 1\nfirmware.CP = { min = \"1.2.0\" }\n\
         [gpus.huawei]\ncount = 0\n",
    );
    let results = baseline::appraise(&claims, &[], &baseline, 0).results;
    let cp: Vec<_> = results
        .iter()
        .filter(|r| r.rule == "gpus.biren.firmware.CP.min")
        .collect();
    assert_eq!(cp.len(), 1, "only the Biren device is judged: {cp:?}");
    assert_eq!(cp[0].claim, "gpu[2].firmware.CP");
    assert_eq!(cp[0].outcome, Outcome::Pass);
    // Signed evidence is required of Ascend NPUs by default, of none here.
    let huawei = compile("format = 1\nname = \"npu\"\n[gpus.huawei]\ncount = 8\n");
    let results = baseline::appraise(&claims, &[], &huawei, 0).results;
    let signed = results
        .iter()
        .find(|r| r.rule == "gpus.huawei.signed_evidence")
        .unwrap();
    assert_eq!(signed.outcome, Outcome::Unevaluable);
    assert_eq!(signed.found, "no huawei device presented");
}

#[test]
fn vendor_sections_are_validated() {
    for (text, needle) in [
        ("[gpus.acme]\ncount = 1\n", "unknown vendor"),
        (
            "[gpus.amd]\nfirmware.\"PSP.SOS\" = { min = \"1\" }\n",
            "letters, digits",
        ),
        ("[gpus.amd]\nfirmware.SMC = {}\n", "says nothing to check"),
        ("[gpus.amd]\ncolour = \"red\"\n", "unknown field"),
        ("[gpus.amd]\nfiles = [{ path = \"\" }]\n", "path is empty"),
    ] {
        let error = baseline::parse_baseline(
            "v.toml",
            &format!("format = 1\nname = \"v\"\n[identity]\nak_trust = [\"ek-certified\"]\n{text}"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(needle), "{text}: {error}");
    }
}

#[test]
fn unsupported_kinds_bounds_and_unverified_formats_fail_their_device() {
    let mut odd = mi300x(0);
    odd.kind = "vendor-says-so".into();
    let mut big = mi300x(1);
    big.firmware = (0..65)
        .map(|i| FirmwareVersion {
            id: format!("FW{i}"),
            version: "1".into(),
        })
        .collect();
    let mut long = mi300x(2);
    long.name = "x".repeat(300);
    let mut unknown_format = mi300x(3);
    unknown_format.kind = "device-signed".into();
    unknown_format.format = "amd-future-attestation".into();
    let (checks, claims) = claims_of(&[odd, big, long, unknown_format]);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed[0].contains("neither device-signed nor host-reported"));
    assert!(failed[1].contains("65 firmware entries"));
    assert!(failed[2].contains("name: over 256 bytes"));
    assert!(failed[3].contains("amd-future-attestation"));
    assert!(!claims.get("gpu[3].evidence").unwrap().trust.usable());
}

fn measurement(entry: u64, path: &str, digest: &str) -> vigil_verifier::claims::HostClaim {
    vigil_verifier::claims::HostClaim {
        name: format!("ima.entries[{entry}]"),
        value: Some(Value::Measurement(
            vigil_verifier::claims::FileMeasurement {
                path: path.into(),
                kind: "file".into(),
                algorithm: "sha256".into(),
                digest: digest.into(),
                template: "ima-ng".into(),
                signature: None,
                violation: false,
            },
        )),
        trust: Trust::Verified,
        source: vigil_verifier::claims::Source::ImaEntry {
            entry,
            template: "ima-ng".into(),
            carried: false,
        },
        detail: None,
    }
}

#[test]
fn capture_pins_the_vendors_kernel_module_and_library_as_ima_measured_them() {
    let host: Vec<GpuEvidence> = (0..8).map(mi300x).collect();
    let (_, mut claims) = claims_of(&host);
    let module = "/lib/modules/6.8.0-45-generic/updates/dkms/amdgpu.ko.zst";
    let library = "/opt/rocm-7.0.0/lib/libamd_smi.so.26.0";
    claims
        .claims
        .push(measurement(10, module, &"aa".repeat(32)));
    claims
        .claims
        .push(measurement(11, library, &"bb".repeat(32)));
    claims
        .claims
        .push(measurement(12, "/usr/bin/bash", &"cc".repeat(32)));
    let captured = baseline::capture::capture("mi300x", &claims, "2026-12-06T00:00:00Z");
    assert!(
        captured.contains(&format!("path = \"{module}\"")),
        "{captured}"
    );
    assert!(
        captured.contains(&format!("path = \"{library}\"")),
        "{captured}"
    );
    assert!(!captured.contains("path = \"/usr/bin/bash\""), "{captured}");
    let golden = compile(&captured);
    assert!(
        not_met(&claims, &golden).is_empty(),
        "{:?}",
        not_met(&claims, &golden)
    );
    // Another amdgpu.ko than the golden node's: the module rule names it.
    let at = claims.claims.len() - 3;
    claims.claims[at] = measurement(10, module, &"dd".repeat(32));
    let failed = not_met(&claims, &golden);
    assert!(
        failed.iter().any(
            |(rule, _, found)| rule == &format!("gpus.amd.files[{module}]")
                && found.contains("not an allowed digest")
        ),
        "{failed:?}"
    );
}

#[test]
fn an_nvidia_inventory_counts_as_configuration_even_under_a_hardware_rule() {
    let inventory = GpuEvidence {
        index: 0,
        vendor: "nvidia".into(),
        kind: "host-reported".into(),
        format: "nvml-inventory".into(),
        vbios_version: "96.00.9F.00.01".into(),
        ..Default::default()
    };
    let (_, claims) = claims_of(&[inventory]);
    let baseline = compile(
        "format = 1\nname = \"nv\"\n[gpu]\nrequire_signed_evidence = false\nrequire_rim_match = false\n\
         require_cc_mode = false\nmin_vbios_version = \"96.00.74.00.01\"\n",
    );
    let appraisal = baseline::appraise(&claims, &[], &baseline, 0);
    let vbios = appraisal
        .results
        .iter()
        .find(|r| r.rule == "gpu.min_vbios_version")
        .unwrap();
    assert_eq!(vbios.outcome, Outcome::Pass);
    assert_eq!(vbios.category, Category::Configuration, "{vbios:?}");
}
