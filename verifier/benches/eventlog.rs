//! Event log throughput on the largest real log in the fixtures, next to raw SHA-256 over the
//! same bytes on the same machine. `cargo bench -p vigil-verifier --bench eventlog`
//! (reads `$VIGIL_FIXTURES`, default `../shared/fixtures`; skipped when absent).

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use vigil_verifier::evidence::eventlog::{claims, parse, replay};

const LARGEST_LOG: &str = "go-attestation/attest/testdata/option_rom_eventlog";

fn bench(c: &mut Criterion) {
    let root = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    let Ok(data) = std::fs::read(root.join(LARGEST_LOG)) else {
        eprintln!("SKIPPED: {LARGEST_LOG} not found under {}", root.display());
        return;
    };
    let mut group = c.benchmark_group(format!("eventlog {} bytes", data.len()));
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&data)).unwrap()));
    group.bench_function("parse + replay", |b| {
        b.iter(|| replay(&parse(black_box(&data)).unwrap()))
    });
    group.bench_function("parse + replay + claims", |b| {
        b.iter(|| {
            let log = parse(black_box(&data)).unwrap();
            (replay(&log), claims(&log))
        })
    });
    group.bench_function("raw SHA-256 of the log bytes", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&data)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
