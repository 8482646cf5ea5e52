//! GPU evidence verification cost on NVIDIA's own Hopper sample: the whole check (report
//! parse, device chain to the pinned root, P-384 report signature, FWID binding, nonce, and
//! both RIMs' XML-DSig signatures, signer chains and the 33 golden measurements) with a cold
//! and a warm device-chain cache, then per GPU cold (no caches) and warm (device chain and
//! RIMs cached, the fleet's steady state: one report signature left), next to the same
//! without RIMs, one RIM signature check alone and one bare report signature check (the unit
//! cost).
//! `cargo bench -p vigil-nvidia --bench gpu_verify` (reads `$VIGIL_FIXTURES`, default
//! `../shared/fixtures`; skipped when absent).

use std::path::{Path, PathBuf};

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use vigil_nvidia::chain::pem_certificates;
use vigil_nvidia::rim::check_rim_signature;
use vigil_nvidia::roots::rim_root_der;
use vigil_nvidia::signature::verify_report_signature;
use vigil_nvidia::{
    ChainCache, GpuCaches, RimStore, Verdict, VerifyOptions, parse_report_input, parse_rfc3339,
    verify_gpu_evidence_with,
};

const REPORT: &str = "nv-local-gpu-verifier-2.7.3/samples/hopperAttestationReport.txt";
const CHAIN: &str = "nv-local-gpu-verifier-2.7.3/samples/hopperCertChain.txt";
const RIMS: &str = "nvidia-rims-matching";
const DRIVER_RIM: &str = "nvidia-rims-matching/NV_GPU_DRIVER_GH100_550.90.07.swidtag";
/// The nonce in the sample report's request.
const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
/// Inside every validity window of the sample's chains and RIM signers.
const AT: &str = "2026-05-01T00:00:00Z";

fn bench(c: &mut Criterion) {
    let root = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    let (Ok(report), Ok(chain), Ok(driver_rim)) = (
        std::fs::read(root.join(REPORT)),
        std::fs::read_to_string(root.join(CHAIN)),
        std::fs::read_to_string(root.join(DRIVER_RIM)),
    ) else {
        eprintln!(
            "SKIPPED: NVIDIA fixtures not found under {}",
            root.display()
        );
        return;
    };
    let rims = RimStore::load_dir(&root.join(RIMS)).unwrap();
    let nonce: [u8; 32] = hex::decode(NONCE).unwrap().try_into().unwrap();
    let at = parse_rfc3339(AT).unwrap();
    let cold = VerifyOptions {
        expected_nonce: Some(&nonce),
        rims: Some(&rims),
        ..VerifyOptions::at(at)
    };
    // A benchmark of a failing verification would measure an early exit.
    assert_eq!(
        verify_gpu_evidence_with(&report, &chain, &cold).verdict,
        Verdict::Pass
    );

    let mut group = c.benchmark_group("hopper sample");
    let no_rims = VerifyOptions { rims: None, ..cold };
    group.bench_function("report + device chain, no RIMs, cold chain", |b| {
        b.iter(|| verify_gpu_evidence_with(black_box(&report), black_box(&chain), &no_rims))
    });
    group.bench_function("full verification with 2 RIMs, cold chain", |b| {
        b.iter(|| verify_gpu_evidence_with(black_box(&report), black_box(&chain), &cold))
    });
    let cache = ChainCache::new();
    let warm = VerifyOptions {
        chain_cache: Some(&cache),
        ..cold
    };
    verify_gpu_evidence_with(&report, &chain, &warm);
    assert_eq!(cache.len(), 1);
    group.bench_function("full verification with 2 RIMs, warm chain cache", |b| {
        b.iter(|| verify_gpu_evidence_with(black_box(&report), black_box(&chain), &warm))
    });
    group.bench_function(
        "per GPU cold: full verification with 2 RIMs, no caches",
        |b| b.iter(|| verify_gpu_evidence_with(black_box(&report), black_box(&chain), &cold)),
    );
    let caches = GpuCaches::new();
    let warm_all = cold.with_caches(&caches);
    let first = verify_gpu_evidence_with(&report, &chain, &warm_all);
    assert_eq!(first.verdict, Verdict::Pass);
    assert_eq!((caches.chains.len(), caches.rims.len()), (1, 2));
    group.bench_function(
        "per GPU warm: full verification with 2 RIMs, chain + RIM caches",
        |b| b.iter(|| verify_gpu_evidence_with(black_box(&report), black_box(&chain), &warm_all)),
    );
    // As the server receives it: raw SPDM bytes, no hex text to decode.
    let raw = vigil_nvidia::input::decode_report_input(&report).unwrap();
    group.bench_function(
        "per GPU warm, raw report bytes: full verification with 2 RIMs, chain + RIM caches",
        |b| b.iter(|| verify_gpu_evidence_with(black_box(&raw), black_box(&chain), &warm_all)),
    );
    let stats = (caches.chains.stats(), caches.rims.stats());
    assert!(stats.0.hits > 0 && stats.1.hits > 0, "{stats:?}");
    let rim_root = rim_root_der();
    let check = check_rim_signature("driver", &driver_rim, &rim_root, at);
    assert!(check.signature.is_ok() && check.chain.is_ok());
    group.bench_function(
        format!("driver RIM signature + chain ({} bytes)", driver_rim.len()),
        |b| b.iter(|| check_rim_signature("driver", black_box(&driver_rim), &rim_root, at)),
    );
    // The unit cost: every check above is dominated by P-384 verifications like this one.
    let parsed = parse_report_input(&report).unwrap();
    let leaf = pem_certificates(&chain).unwrap().remove(0);
    group.bench_function("report signature alone (leaf key + 1 P-384 verify)", |b| {
        b.iter(|| verify_report_signature(black_box(&parsed), black_box(&leaf)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
