//! Audit log benchmarks.
//!
//! - `append_durable`: one entry per committed transaction, file-backed
//!   database in a temp dir, WAL + synchronous=FULL (the verifier's setup).
//! - `proofs_1m`: inclusion and consistency proof generation from the
//!   stored nodes of a log of `VIGIL_AUDIT_BENCH_ENTRIES` entries (default
//!   1,000,000), built once with batched transactions.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::Connection;
use serde_json::json;
use vigil_audit::AuditEntry;

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        kind: "verdict".into(),
        time: 1_700_000_000 + i as i64,
        subject: format!("node-{}", i % 512),
        body: json!({"status": "affirming", "evidence": format!("sha256:{:064x}", i), "n": i}),
    }
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn open(path: &PathBuf, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open db");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};"
    ))
    .expect("pragmas");
    vigil_audit::migrate(&conn).expect("migrate");
    conn
}

fn append_durable(c: &mut Criterion) {
    let path = temp_db("append.db");
    let mut conn = open(&path, "FULL");
    let mut i = 0u64;
    let mut group = c.benchmark_group("append_durable");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_entry_per_commit", |b| {
        b.iter(|| {
            let tx = conn.transaction().expect("tx");
            vigil_audit::append(&tx, &entry(i)).expect("append");
            tx.commit().expect("commit");
            i += 1;
        })
    });
    group.finish();
}

fn proofs_large(c: &mut Criterion) {
    let n: u64 = std::env::var("VIGIL_AUDIT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path = temp_db("large.db");
    // Setup durability is irrelevant to what is measured; FULL is restored below.
    let mut conn = open(&path, "OFF");
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let tx = conn.transaction().expect("tx");
        for _ in 0..10_000.min(n - i) {
            vigil_audit::append(&tx, &entry(i)).expect("append");
            i += 1;
        }
        tx.commit().expect("commit");
    }
    conn.execute_batch("PRAGMA synchronous=FULL")
        .expect("pragma");
    eprintln!(
        "setup: built a {n}-entry log in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let mut group = c.benchmark_group(format!("proofs_{n}"));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    group.bench_function("inclusion", |b| {
        b.iter_batched(
            || next() % n,
            |index| vigil_audit::inclusion_proof(&conn, index, n).expect("proof"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("consistency", |b| {
        b.iter_batched(
            || 1 + next() % (n - 1),
            |first| vigil_audit::consistency_proof(&conn, first, n).expect("proof"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("root_hash", |b| {
        b.iter(|| vigil_audit::root_hash(&conn, n).expect("root"))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(path.parent().expect("parent"));
}

criterion_group!(benches, append_durable, proofs_large);
criterion_main!(benches);
