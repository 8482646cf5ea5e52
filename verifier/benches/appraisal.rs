//! Appraisal of one GPU host's claims (TPM quote + measured-boot log + 8 signed GPU reports)
//! against a realistic baseline, and the signed result for it.
//! `cargo bench -p vigil-verifier --bench appraisal`

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use vigil_verifier::baseline::{Baseline, BaselineRef, appraise, content_digest, parse_baseline};
use vigil_verifier::claims::{ClaimSet, Source, Trust, Value};
use vigil_verifier::report::Check;

fn digest(seed: u32) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        &seed.to_be_bytes(),
    ))
}

/// What one HGX host presents: 2 banks x 24 PCRs, ~70 boot claims, 8 GPUs x ~35 claims.
fn host_claims() -> ClaimSet {
    let mut c = ClaimSet {
        node_id: "hgx-01".into(),
        verified_at: 1_000,
        claims: Vec::new(),
    };
    let verifier = || Source::Verifier {
        check: "bench".into(),
    };
    c.push(
        "tpm.ak_trust",
        Some(Value::Text("ek-certified".into())),
        Trust::Verified,
        verifier(),
    );
    c.push(
        "tpm.event_log",
        Some(Value::Text("replayed".into())),
        Trust::Verified,
        verifier(),
    );
    c.push(
        "tpm.quote_verified",
        Some(Value::Bool(true)),
        Trust::Verified,
        verifier(),
    );
    for bank in ["sha1", "sha256"] {
        for pcr in 0..24 {
            c.push(
                format!("pcr.{bank}.{pcr}"),
                Some(Value::Digest(digest(pcr))),
                Trust::Verified,
                Source::Quote {
                    bank: bank.into(),
                    pcr,
                },
            );
        }
    }
    let event = |n: usize| Source::Event {
        event: n,
        pcr: 7,
        offset: n * 90,
    };
    c.push(
        "boot.secure_boot.enabled",
        Some(Value::Bool(true)),
        Trust::Verified,
        event(1),
    );
    for (i, var) in ["pk", "kek", "db", "dbx"].into_iter().enumerate() {
        c.push(
            format!("boot.secure_boot.{var}.sha256"),
            Some(Value::Digest(digest(100 + i as u32))),
            Trust::Verified,
            event(2 + i),
        );
    }
    let dbx: Vec<String> = (0..400).map(|i| digest(1_000 + i)).collect();
    c.push(
        "boot.secure_boot.dbx.sha256_entries",
        Some(Value::List(dbx)),
        Trust::Verified,
        event(6),
    );
    for app in 0..6 {
        c.push(
            format!("boot.apps[{app}].authenticode_sha256"),
            Some(Value::Digest(digest(200 + app))),
            Trust::Attested("authenticode".into()),
            event(10 + app as usize),
        );
        c.push(
            format!("boot.apps[{app}].path"),
            Some(Value::Text(format!("\\EFI\\app{app}.efi"))),
            Trust::Attested("path".into()),
            event(10 + app as usize),
        );
    }
    c.push(
        "boot.kernel_cmdline",
        Some(Value::Text(
            "BOOT_IMAGE=/vmlinuz-6.8.0 root=/dev/nvme0n1p2 ro quiet iommu=pt".into(),
        )),
        Trust::Verified,
        event(30),
    );
    c.push(
        "boot.firmware.crtm_version",
        Some(Value::Text("2.19.1".into())),
        Trust::Verified,
        event(0),
    );
    for sep in 0..8 {
        c.push(
            format!("boot.separators.pcr{sep}"),
            Some(Value::Text("normal".into())),
            Trust::Verified,
            event(40 + sep),
        );
    }
    c.push(
        "gpu.count",
        Some(Value::Int(8)),
        Trust::Verified,
        verifier(),
    );
    for gpu in 0..8u32 {
        let p = format!("gpu[{gpu}]");
        let src = || Source::GpuReport {
            gpu,
            claim: "bench".into(),
        };
        for check in [
            "report_parsed",
            "signature_verified",
            "cert_chain.valid",
            "fwid_match",
            "nonce_match",
            "measurements.match",
            "driver_rim.version_match",
            "driver_rim.signature_verified",
            "vbios_rim.version_match",
            "vbios_rim.signature_verified",
        ] {
            c.push(
                format!("{p}.{check}"),
                Some(Value::Bool(true)),
                Trust::Verified,
                src(),
            );
        }
        for (name, value) in [
            ("evidence", "signed"),
            ("device", "hopper"),
            ("driver_version", "550.90.07"),
            ("vbios_version", "96.00.9F.00.01"),
            ("cc_mode", "spt"),
            ("cert_chain.revocation", "good"),
            ("chip_sku", "882"),
            ("project", "G520"),
            ("project_sku", "0200"),
            ("hwmodel", "GH100 A01 GSP BROM"),
        ] {
            c.push(
                format!("{p}.{name}"),
                Some(Value::Text(value.into())),
                Trust::Verified,
                src(),
            );
        }
        c.push(
            format!("{p}.measurement_blocks"),
            Some(Value::Int(64)),
            Trust::Verified,
            src(),
        );
    }
    c
}

fn baseline() -> (Baseline, String) {
    let mut text = String::from(
        "format = 1\nname = \"hgx-h100\"\n[freshness]\nmax_evidence_age_seconds = 300\n[identity]\nak_trust = [\"ek-certified\"]\n[pcrs.sha256]\n",
    );
    for pcr in 0..10 {
        text.push_str(&format!(
            "{pcr} = [\"{}\", \"{}\"]\n",
            digest(pcr),
            digest(500 + pcr)
        ));
    }
    text.push_str("[boot]\nsecure_boot = true\nevent_log = \"required\"\nboot_applications = [");
    for app in 0..40 {
        text.push_str(&format!("\"{}\",", digest(200 + app)));
    }
    text.push_str("]\nkernel_cmdline = [\"BOOT_IMAGE=/vmlinuz-6.8.* ro quiet*\", \"BOOT_IMAGE=/vmlinuz-6.5.* ro quiet*\"]\ndbx_contains = [");
    for entry in 0..20 {
        text.push_str(&format!("\"{}\",", digest(1_000 + entry * 7)));
    }
    text.push_str("]\ncrtm_version = [\"2.19.1\", \"2.18.0\"]\n[gpu]\ncount = 8\ndriver_versions = [\"550.90.07\", \"550.127.05\"]\nmin_driver_version = \"550.54.15\"\n\
        deny_driver_versions = [\"535.104.05\", \"535.129.03\"]\nvbios_versions = [\"96.00.9F.00.01\", \"96.00.74.00.1C\"]\nmin_vbios_version = \"96.00.74.00.01\"\n\
        deny_vbios_versions = [\"96.00.5E.00.01\"]\n");
    for gpu_check in [
        "fwid_match",
        "driver_rim.signature_verified",
        "vbios_rim.signature_verified",
    ] {
        text.push_str(&format!(
            "[[rule]]\nclaim = \"gpu[*].{gpu_check}\"\nequals = true\ncategory = \"executables\"\n"
        ));
    }
    let compiled = parse_baseline("bench", &text).expect("baseline");
    let baseline = Baseline {
        reference: BaselineRef {
            name: compiled.name,
            version: 1,
            sha256: content_digest(&text),
        },
        rules: compiled.rules,
    };
    (baseline, text)
}

fn bench(c: &mut Criterion) {
    let claims = host_claims();
    let (baseline, text) = baseline();
    let checks = vec![
        Check::pass("quote.signature", ""),
        Check::pass("gpu[0].signature", ""),
    ];
    let appraisal = appraise(&claims, &checks, &baseline, 1_010);
    assert!(
        appraisal.failures().next().is_none(),
        "{:?}",
        appraisal.failures().next()
    );
    println!(
        "host: {} claims; baseline: {} rules; {} rule results",
        claims.claims.len(),
        baseline.rules.len(),
        appraisal.results.len()
    );
    c.bench_function("appraise host (TPM + event log + 8 GPUs)", |b| {
        b.iter(|| appraise(black_box(&claims), &checks, &baseline, 1_010))
    });
    c.bench_function("parse + validate + compile the baseline file", |b| {
        b.iter(|| parse_baseline("bench", black_box(&text)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
