//! The verifier's PostgreSQL engine (`store_pg`) against a real server started by the test
//! harness: two replicas' pools on one database share nonces once, the group commit batches
//! writes and undoes a failing one alone, a replica with another audit key is refused, and a
//! pool can be dropped on an async thread. Skips, saying so, when PostgreSQL is not
//! installed (fails under CI).

#[allow(dead_code)]
#[path = "../../tests/src/postgres.rs"]
mod harness;

use std::sync::Arc;

use vigil_audit::{AuditEntry, AuditSigningKey};
use vigil_verifier::attest::VerifierError;
use vigil_verifier::nonce::{self, NonceError};
use vigil_verifier::store::{AUDIT_ORIGIN, StoreError};
use vigil_verifier::store_api::StoreOps;
use vigil_verifier::store_pg::PgPool;

fn key() -> Arc<AuditSigningKey> {
    let pkcs8 = vigil_audit::generate_key().expect("generate audit key");
    Arc::new(vigil_audit::load_key(AUDIT_ORIGIN, &pkcs8).expect("load audit key"))
}

fn event(i: usize) -> AuditEntry {
    AuditEntry {
        kind: "test.write".to_owned(),
        time: 1_800_000_000,
        subject: format!("node-{i}"),
        body: serde_json::json!({ "i": i }),
    }
}

/// The subjects of the audit log's entries, in log order.
fn logged_subjects(pool: &PgPool) -> Vec<String> {
    pool.read(|store| {
        let size = store.audit_tree_size()?;
        Ok::<_, StoreError>(
            store
                .audit_entries(0, size)?
                .into_iter()
                .map(|e| e.entry.subject)
                .collect::<Vec<String>>(),
        )
    })
    .expect("read")
    .expect("entries")
}

#[test]
fn a_nonce_issued_by_one_replica_is_used_once_across_both() {
    let Some(server) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let a = PgPool::connect(&server.url(), Arc::clone(&key), "a").expect("replica a");
    let b = PgPool::connect(&server.url(), Arc::clone(&key), "b").expect("replica b");
    let issued = a
        .write(|store| Ok(nonce::issue(store, "node-1", 1_000, 60)?))
        .expect("issue on a");
    let consume = |pool: &PgPool, now: i64| {
        pool.write(move |store| Ok(nonce::consume(store, &issued, "node-1", now)))
            .expect("store")
    };
    assert_eq!(consume(&b, 1_001), Ok(()), "answered to b");
    assert_eq!(
        consume(&a, 1_002),
        Err(NonceError::Replayed { used_at: 1_001 }),
        "replayed to a"
    );
    assert_eq!(
        consume(&b, 1_003),
        Err(NonceError::Replayed { used_at: 1_001 }),
        "replayed to b"
    );
}

#[test]
fn queued_writes_commit_together_and_a_failing_one_is_undone_alone() {
    let Some(server) = harness::PgServer::start() else {
        return;
    };
    let pool = Arc::new(PgPool::connect(&server.url(), key(), "a").expect("replica"));
    let count = 6;
    let threads = {
        let held = pool.hold_writer().expect("writer");
        let threads: Vec<_> = (0..count)
            .map(|i| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    pool.write(move |store: &mut dyn StoreOps| {
                        store.record_event(&event(i))?;
                        if i == 3 {
                            return Err(VerifierError::InvalidRequest("write 3 refuses".into()));
                        }
                        Ok(i)
                    })
                })
            })
            .collect();
        while pool.queued() < count {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(held);
        threads
    };
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("writer thread"))
        .collect();
    let failed: Vec<usize> = (0..count).filter(|i| results[*i].is_err()).collect();
    assert_eq!(failed, vec![3], "only the refusing write fails");
    let counts = pool.commit_counts();
    assert_eq!(counts.writes, count as u64);
    assert_eq!(counts.commits, 1, "one COMMIT carried every queued write");
    let subjects: Vec<String> = logged_subjects(&pool);
    let mut expected: Vec<String> = (0..count)
        .filter(|i| *i != 3)
        .map(|i| format!("node-{i}"))
        .collect();
    let mut found = subjects.clone();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "the refused write left nothing behind");
}

#[test]
fn a_replica_with_another_audit_key_is_refused() {
    let Some(server) = harness::PgServer::start() else {
        return;
    };
    let first = PgPool::connect(&server.url(), key(), "a").expect("first replica");
    first
        .write(|store| Ok(store.record_event(&event(0))?))
        .expect("append");
    let Err(error) = PgPool::connect(&server.url(), key(), "b") else {
        panic!("a replica with another key must not open the shared log");
    };
    assert!(
        error.to_string().contains("same audit key"),
        "names the cause: {error}"
    );
}

#[test]
fn a_pool_is_dropped_safely_on_an_async_thread() {
    let Some(server) = harness::PgServer::start() else {
        return;
    };
    let pool = PgPool::connect(&server.url(), key(), "a").expect("replica");
    pool.read(|store| store.verdict_count())
        .expect("read")
        .expect("count");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    // The synchronous client's own runtime may not be dropped here; the pool closes its
    // connections on a thread of their own instead of panicking.
    runtime.block_on(async move { drop(pool) });
}

#[test]
fn a_replica_reconnects_after_the_database_closed_its_connections() {
    let Some(server) = harness::PgServer::start() else {
        return;
    };
    let pool = PgPool::connect(&server.url(), key(), "a").expect("replica");
    pool.write(|store| Ok(store.record_event(&event(0))?))
        .expect("first write");
    pool.read(|store| store.verdict_count())
        .expect("read")
        .expect("count");
    // An administrator (or a failover) ends every session of the role but this one.
    let mut admin = vigil_pgstore::connect_client(&server.url()).expect("admin connection");
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE usename = current_user AND pid <> pg_backend_pid()",
            &[],
        )
        .expect("terminate the replica's sessions");
    assert!(ended.len() >= 2, "the writer and a reader were ended");
    // A write that meets the dead connection fails, unacknowledged; the next one reconnects.
    let mut acknowledged = vec![0];
    for i in 1..=3 {
        if pool
            .write(move |store| Ok(store.record_event(&event(i))?))
            .is_ok()
        {
            acknowledged.push(i);
        }
    }
    assert!(
        acknowledged.len() >= 3,
        "writes resume after the reconnection: {acknowledged:?}"
    );
    let read_again =
        (0..2).any(|_| matches!(pool.read(|store| store.audit_tree_size()), Ok(Ok(_))));
    assert!(read_again, "reads resume after the reconnection");
    let subjects: Vec<String> = logged_subjects(&pool);
    let expected: Vec<String> = acknowledged.iter().map(|i| format!("node-{i}")).collect();
    assert_eq!(subjects, expected, "every acknowledged write, nothing else");
    drop(admin);
}
