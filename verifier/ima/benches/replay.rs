//! IMA list throughput: a synthetic binary list of 100,000 `ima-ng` entries with SHA-256 file
//! digests, parsed and replayed against PCR 10 quoted in the SHA-1 bank (template hashes) and
//! the SHA-256 bank (SHA-256 of each entry's template data, as Linux 5.11 and later extend),
//! next to raw SHA-256 over the same bytes. `cargo bench -p vigil-ima --bench replay`

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use vigil_ima::{HashAlg, Quoted, ReplayState, parse, replay};

const ENTRIES: usize = 100_000;

/// The list as the kernel writes `binary_runtime_measurements`, and PCR 10 in both banks.
fn synthetic_list() -> (Vec<u8>, Quoted) {
    let mut list = Vec::with_capacity(ENTRIES * 120);
    let mut sha1_pcr = vec![0u8; 20];
    let mut sha256_pcr = vec![0u8; 32];
    for i in 0..ENTRIES {
        let name = if i == 0 {
            "boot_aggregate".to_owned()
        } else {
            format!("/usr/lib/x86_64-linux-gnu/libvigil-bench-{i:06}.so.1")
        };
        let file_digest = HashAlg::Sha256.digest(name.as_bytes());
        // ima-ng template data: d-ng (`sha256:\0` + digest), n-ng (the name and its NUL).
        let mut data = Vec::with_capacity(100);
        let digest_field = [b"sha256:\0".as_slice(), &file_digest].concat();
        let name_field = [name.as_bytes(), b"\0"].concat();
        for field in [digest_field, name_field] {
            data.extend_from_slice(&(field.len() as u32).to_le_bytes());
            data.extend_from_slice(&field);
        }
        let template_hash = HashAlg::Sha1.digest(&data);
        list.extend_from_slice(&10u32.to_le_bytes());
        list.extend_from_slice(&template_hash);
        list.extend_from_slice(&6u32.to_le_bytes());
        list.extend_from_slice(b"ima-ng");
        list.extend_from_slice(&(data.len() as u32).to_le_bytes());
        list.extend_from_slice(&data);
        HashAlg::Sha1.extend(&mut sha1_pcr, &template_hash);
        HashAlg::Sha256.extend(&mut sha256_pcr, &HashAlg::Sha256.digest(&data));
    }
    let mut quoted = Quoted::new();
    quoted.insert((HashAlg::Sha1, 10), sha1_pcr);
    quoted.insert((HashAlg::Sha256, 10), sha256_pcr);
    (list, quoted)
}

fn bench(c: &mut Criterion) {
    let (list, both) = synthetic_list();
    let mut sha1_only = both.clone();
    sha1_only.remove(&(HashAlg::Sha256, 10));
    let mut sha256_only = both.clone();
    sha256_only.remove(&(HashAlg::Sha1, 10));
    // The quote must be reached by the last entry, in every bank, before anything is timed.
    for quoted in [&both, &sha1_only, &sha256_only] {
        let parsed = parse(&list, HashAlg::Sha1, 0).unwrap();
        let replayed = replay(
            &parsed.entries,
            parsed.template_hash,
            &ReplayState::boot(),
            quoted,
        )
        .unwrap();
        assert_eq!(replayed.matched, ENTRIES);
    }

    let mut group = c.benchmark_group(format!(
        "ima {ENTRIES} ima-ng entries, {} bytes",
        list.len()
    ));
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| parse(black_box(&list), HashAlg::Sha1, 0).unwrap())
    });
    for (label, quoted) in [
        ("parse + replay, PCR 10 sha1", &sha1_only),
        ("parse + replay, PCR 10 sha256", &sha256_only),
        ("parse + replay, PCR 10 sha1 + sha256", &both),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let parsed = parse(black_box(&list), HashAlg::Sha1, 0).unwrap();
                replay(
                    &parsed.entries,
                    parsed.template_hash,
                    &ReplayState::boot(),
                    quoted,
                )
                .unwrap()
            })
        });
    }
    group.bench_function("raw SHA-256 of the list bytes", |b| {
        b.iter(|| HashAlg::Sha256.digest(black_box(&list)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
