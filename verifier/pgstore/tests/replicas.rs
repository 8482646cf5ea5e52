//! Two replicas (two or more PgStore connections) against one real PostgreSQL server started
//! by the test harness. Each test skips, saying so, when PostgreSQL is not installed (and
//! fails under CI).

#[allow(dead_code)]
#[path = "../../../tests/src/postgres.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vigil_audit::AuditSigningKey;
use vigil_pgstore::{AUDIT_ORIGIN, NewBaseline, NodeRecord, PgStore, PgStoreError};

fn key() -> Arc<AuditSigningKey> {
    let pkcs8 = vigil_audit::generate_key().expect("generate audit key");
    Arc::new(vigil_audit::load_key(AUDIT_ORIGIN, &pkcs8).expect("load audit key"))
}

fn node(id: &str) -> NodeRecord {
    NodeRecord {
        node_id: id.to_owned(),
        ak_public: vec![1, 2, 3],
        ak_name: vec![4, 5],
        ak_trust: "ek".to_owned(),
        address: Some(format!("{id}:7443")),
        first_seen: 100,
        last_seen: 100,
        last_verdict: None,
        ek_public: Some(vec![9; 8]),
        ek_certificate: None,
        group: "hgx".to_owned(),
        registered_at: Some(100),
        status: "unknown".to_owned(),
    }
}

#[test]
fn a_nonce_is_consumed_once_across_replicas() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    a.insert_nonce(b"nonce-1", "gpu-1", 10, 70).unwrap();
    // The wrong node cannot use it, and it stays usable.
    assert!(!b.consume_nonce(b"nonce-1", "gpu-2", 20).unwrap().0);
    let (used, before) = b.consume_nonce(b"nonce-1", "gpu-1", 20).unwrap();
    assert!(used, "first use through replica B");
    assert_eq!(before.unwrap().used_at, None);
    let (used, before) = a.consume_nonce(b"nonce-1", "gpu-1", 21).unwrap();
    assert!(!used, "replayed through replica A");
    assert_eq!(before.unwrap().used_at, Some(20), "A sees B's use");
    // Expired and unknown nonces are refused.
    a.insert_nonce(b"nonce-2", "gpu-1", 10, 30).unwrap();
    assert!(!b.consume_nonce(b"nonce-2", "gpu-1", 30).unwrap().0);
    assert_eq!(
        b.consume_nonce(b"never", "gpu-1", 20).unwrap(),
        (false, None)
    );

    // Many concurrent uses of one nonce from both replicas: exactly one wins.
    a.insert_nonce(b"nonce-3", "gpu-1", 10, 1000).unwrap();
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (url, key) = (pg.url(), key.clone());
                s.spawn(move || {
                    let mut store = PgStore::open(&url, key).unwrap();
                    usize::from(store.consume_nonce(b"nonce-3", "gpu-1", 50).unwrap().0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    assert_eq!(
        a.prune_nonces(31).unwrap(),
        1,
        "only nonce-2 expired before 31"
    );
}

/// Counts a finished writer when dropped.
struct Done<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn concurrent_verdicts_from_two_replicas_form_one_ordered_log() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    const THREADS_PER_REPLICA: usize = 4;
    const VERDICTS_PER_THREAD: usize = 12;
    let key = key();
    let mut setup = PgStore::open(&pg.url(), key.clone()).unwrap();
    let nodes = ["gpu-1", "gpu-2", "gpu-3"];
    for id in nodes {
        assert!(setup.insert_node(&node(id)).unwrap());
    }
    let writers = 2 * THREADS_PER_REPLICA;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let watched = std::thread::scope(|s| {
        // A Watch-like reader: polls `seq >= next` and must see every seq, in order, once.
        let watcher = {
            let (url, key, done) = (pg.url(), key.clone(), &done);
            s.spawn(move || {
                let mut store = PgStore::open(&url, key).unwrap();
                let mut seen = Vec::new();
                let mut next = 1;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
                    for change in store.status_changes(next, 1000).unwrap() {
                        assert_eq!(change.seq, next, "a reader skipped or reordered a seq");
                        next += 1;
                        seen.push(change);
                    }
                    if finished {
                        return seen;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        for replica in ["a", "b"] {
            for thread in 0..THREADS_PER_REPLICA {
                let (url, key, done) = (pg.url(), key.clone(), &done);
                s.spawn(move || {
                    // Counted even when this writer panics, so the watcher stops.
                    let _done = Done(done);
                    let mut store = PgStore::open(&url, key).unwrap();
                    for i in 0..VERDICTS_PER_THREAD {
                        let node = nodes[(thread + i) % nodes.len()];
                        let verdict = if (thread + i) % 2 == 0 {
                            "pass"
                        } else {
                            "fail"
                        };
                        store
                            .record_verdict(
                                node,
                                format!("{replica}-{thread}-{i}").as_bytes(),
                                1000 + i as i64,
                                verdict,
                                &format!(r#"{{"replica":"{replica}","i":{i}}}"#),
                                format!("evidence {replica} {thread} {i}").as_bytes(),
                                true,
                            )
                            .unwrap();
                    }
                });
            }
        }
        watcher.join().unwrap()
    });

    let total = (writers * VERDICTS_PER_THREAD) as u64;
    assert_eq!(setup.verdict_count().unwrap(), total as i64);

    // Status changes: seq 1..=n with no gap, and per node a chain (each change starts from
    // the status the previous one left), ending at the node's status.
    let changes = setup.status_changes(0, 100_000).unwrap();
    assert_eq!(
        changes, watched,
        "the watcher saw exactly the stored changes"
    );
    assert!(!changes.is_empty());
    for (i, change) in changes.iter().enumerate() {
        assert_eq!(change.seq, i as i64 + 1);
    }
    assert_eq!(setup.latest_status_seq().unwrap(), changes.len() as i64);
    let mut status: BTreeMap<&str, String> =
        nodes.iter().map(|n| (*n, "unknown".to_owned())).collect();
    for change in &changes {
        let current = status.get_mut(change.node_id.as_str()).unwrap();
        assert_eq!(&change.old_status, current, "seq {}", change.seq);
        assert_ne!(change.old_status, change.new_status);
        *current = change.new_status.clone();
    }
    for id in nodes {
        assert_eq!(setup.node(id).unwrap().unwrap().status, status[id]);
    }

    // The audit log: one entry and one checkpoint per verdict, gap-free, and vigil-audit's
    // full verification accepts it under the one shared key.
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&sqlite).unwrap();
    let copied = vigil_pgstore::audit::export_to_sqlite(setup.client(), &sqlite, true).unwrap();
    assert_eq!(copied, total);
    let report = vigil_audit::verify_log(&sqlite, &[key.public_key()]).unwrap();
    assert_eq!(report.tree_size, total);
    assert_eq!(report.checkpoints_verified as u64, total);
    assert_eq!(report.unsigned_entries, 0);
    // Every verdict is in the log exactly once.
    let entries = vigil_pgstore::audit::read_entries(setup.client(), 0, total + 10).unwrap();
    let ids: BTreeSet<i64> = entries
        .iter()
        .map(|e| e.entry.body["verdict_id"].as_i64().unwrap())
        .collect();
    let stored: BTreeSet<i64> = setup.verdicts(None).unwrap().iter().map(|v| v.id).collect();
    assert_eq!(ids, stored);
    // Proofs served from PostgreSQL verify against the latest signed checkpoint.
    let note = vigil_pgstore::audit::latest_checkpoint_note(setup.client())
        .unwrap()
        .unwrap();
    let checkpoint = vigil_audit::verify_checkpoint(&note, &[key.public_key()]).unwrap();
    assert_eq!(checkpoint.tree_size, total);
    let proof = vigil_pgstore::audit::inclusion_proof(setup.client(), 7, total).unwrap();
    proof.verify(&checkpoint.root_hash).unwrap();
    let old_root = vigil_pgstore::audit::root_hash(setup.client(), 10).unwrap();
    vigil_pgstore::audit::consistency_proof(setup.client(), 10, total)
        .unwrap()
        .verify(&old_root, &checkpoint.root_hash)
        .unwrap();
    assert!(vigil_pgstore::audit::inclusion_proof(setup.client(), total, total).is_err());
    // Evidence is stored content-addressed and read back checked.
    let digest = entries[0].entry.body["evidence"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    assert!(
        vigil_pgstore::audit::get_blob(setup.client(), &digest)
            .unwrap()
            .is_some()
    );
}

#[test]
fn leases_never_double_claim_and_expire() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    let all: BTreeSet<String> = (0..20).map(|i| format!("gpu-{i:02}")).collect();
    for id in &all {
        a.insert_node(&node(id)).unwrap();
    }
    let (now, lease) = (1_000, 30);
    // Six claimers on two replicas race for the nodes in small bites.
    let claims: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let (url, key) = (pg.url(), key.clone());
                s.spawn(move || {
                    let replica = if t % 2 == 0 { "a" } else { "b" };
                    let mut store = PgStore::open(&url, key).unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_due_nodes(replica, now, lease, 3).unwrap();
                        if got.is_empty() {
                            return (replica.to_owned(), mine);
                        }
                        mine.extend(got);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut claimed: Vec<&String> = claims.iter().flat_map(|(_, ids)| ids).collect();
    claimed.sort();
    let unique: BTreeSet<String> = claimed.iter().map(|s| s.to_string()).collect();
    assert_eq!(claimed.len(), unique.len(), "a node was claimed twice");
    assert_eq!(unique, all, "every due node was claimed");
    // Within the interval nothing is due, for either replica.
    assert!(
        a.claim_due_nodes("a", now + lease - 1, lease, 100)
            .unwrap()
            .is_empty()
    );
    assert!(
        b.claim_due_nodes("b", now + lease - 1, lease, 100)
            .unwrap()
            .is_empty()
    );
    // Replica A "dies": once its leases expire, B takes its nodes over (and renews its own).
    // (A fixed split first: which racer won what above is up to the scheduler.)
    let released = a.release_leases("a").unwrap() + b.release_leases("b").unwrap();
    assert_eq!(released, 20);
    let a_nodes: BTreeSet<String> = a
        .claim_due_nodes("a", now, lease, 10)
        .unwrap()
        .into_iter()
        .collect();
    let b_nodes = b.claim_due_nodes("b", now, lease, 100).unwrap();
    assert_eq!((a_nodes.len(), b_nodes.len()), (10, 10));
    assert!(b_nodes.iter().all(|n| !a_nodes.contains(n)));
    let b_node = b_nodes[0].clone();
    assert!(b.renew_lease("b", &b_node, now + 10, lease).unwrap());
    let taken: BTreeSet<String> = b
        .claim_due_nodes("b", now + lease, lease, 100)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!taken.contains(&b_node), "a renewed lease is not due");
    assert!(a_nodes.is_subset(&taken), "A's expired nodes went to B");
    let first = a_nodes.iter().next().unwrap();
    assert!(
        !a.renew_lease("a", first, now + lease, lease).unwrap(),
        "A lost it"
    );
    // B shuts down gracefully: its nodes are due for A at once.
    assert_eq!(b.release_leases("b").unwrap(), 20);
    assert_eq!(
        a.claim_due_nodes("a", now + lease, lease, 100)
            .unwrap()
            .len(),
        20
    );
    // A removed node's lease goes with it.
    assert!(a.remove_node("gpu-00", now).unwrap());
    assert!(
        a.claim_due_nodes("a", now + 10 * lease, lease, 100)
            .unwrap()
            .len()
            == 19
    );
    assert!(matches!(
        a.claim_due_nodes("a", now, 0, 1),
        Err(PgStoreError::Invalid(_))
    ));
}

#[test]
fn schema_keys_baselines_and_batches() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    // Opening again migrates nothing; every component is at its latest version.
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    let versions: BTreeMap<String, i64> = b
        .client()
        .query("SELECT component, version FROM schema_version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: BTreeMap<String, i64> = vigil_pgstore::schema::COMPONENTS
        .iter()
        .map(|c| (c.name.to_owned(), c.migrations.len() as i64))
        .collect();
    assert_eq!(versions, expected);
    // A replica with another audit key is refused.
    assert!(matches!(
        PgStore::open(&pg.url(), self::key()),
        Err(PgStoreError::AuditKeyMismatch { .. })
    ));

    // Baselines and assignments, across replicas.
    let new = |body: &'static str, sha: &'static str, time| NewBaseline {
        name: "hgx",
        sha256: sha,
        body,
        author: "alice",
        reason: "initial",
        signed_by: None,
        rules: 3,
        time,
    };
    assert_eq!(a.put_baseline(&new("a", "aa", 10)).unwrap().version, 1);
    assert_eq!(
        b.put_baseline(&new("a", "aa", 11)).unwrap().version,
        1,
        "same content"
    );
    assert_eq!(b.put_baseline(&new("b", "bb", 12)).unwrap().version, 2);
    assert_eq!(a.baseline("hgx", Some(1)).unwrap().unwrap().body, "a");
    assert!(matches!(
        a.assign_baseline("gpu", "nope", "a", "r", 13),
        Err(PgStoreError::NotFound(_))
    ));
    a.assign_baseline("gpu", "hgx", "alice", "rollout", 13)
        .unwrap();
    assert_eq!(b.baseline_for_group("gpu").unwrap().unwrap().version, 2);
    assert_eq!(b.baseline_assignments().unwrap()["gpu"], "hgx");
    assert_eq!(b.baselines().unwrap().len(), 2);

    // Nodes: insert once, replace (audited), remove (audited), IMA state and GPUs.
    assert!(a.insert_node(&node("gpu-1")).unwrap());
    assert!(!b.insert_node(&node("gpu-1")).unwrap());
    b.put_ima_state_json("gpu-1", "hgx@2", "{}", 20).unwrap();
    let mut replaced = node("gpu-1");
    replaced.ak_trust = "ek-registered".to_owned();
    let entry = vigil_audit::AuditEntry {
        kind: "node.registered".to_owned(),
        time: 20,
        subject: "gpu-1".to_owned(),
        body: serde_json::json!({}),
    };
    b.replace_node(&replaced, &entry).unwrap();
    assert_eq!(a.node("gpu-1").unwrap().unwrap(), replaced);
    assert_eq!(
        a.ima_state_json("gpu-1").unwrap(),
        None,
        "reset by replacement"
    );
    a.set_gpu_identities("gpu-1", r#"["gpu0"]"#).unwrap();
    assert_eq!(b.gpu_identities("gpu-1").unwrap(), r#"["gpu0"]"#);
    assert_eq!(b.gpu_identities("nobody").unwrap(), "[]");
    a.mark_unknown("gpu-1", "missed window", 21).unwrap();
    assert_eq!(a.status_changes(0, 10).unwrap().len(), 0, "already unknown");

    // A batch: one transaction, a savepoint per write; the failing write leaves the others.
    let results = a
        .write(|tx| {
            tx.lock_log()?;
            let first = tx.savepoint(|tx| tx.insert_nonce(b"n1", "gpu-1", 1, 100));
            let duplicate = tx.savepoint(|tx| tx.insert_nonce(b"n1", "gpu-1", 1, 100));
            let verdict =
                tx.savepoint(|tx| tx.record_verdict("gpu-1", b"n1", 30, "pass", "{}", b"ev", true));
            Ok((first.is_ok(), duplicate.is_ok(), verdict.is_ok()))
        })
        .unwrap();
    assert_eq!(results, (true, false, true));
    assert!(b.consume_nonce(b"n1", "gpu-1", 31).unwrap().0);
    assert_eq!(b.node("gpu-1").unwrap().unwrap().status, "trusted");
    assert!(b.remove_node("gpu-1", 40).unwrap());
    assert!(!a.remove_node("gpu-1", 41).unwrap());
    assert_eq!(a.nodes().unwrap(), vec![]);
    assert_eq!(a.verdicts(Some("gpu-1")).unwrap().len(), 1, "history stays");

    // Audit: 2 baseline versions, 1 assignment, registration, verdict, removal; append-only.
    let kinds: Vec<String> = vigil_pgstore::audit::read_entries(a.client(), 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.entry.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "baseline.version",
            "baseline.version",
            "baseline.assigned",
            "node.registered",
            "verdict",
            "node.removed"
        ]
    );
    let err = a
        .client()
        .execute("UPDATE audit_entry SET time = 0", &[])
        .unwrap_err();
    let message = err.as_db_error().map(|e| e.message().to_owned());
    assert_eq!(message.as_deref(), Some("audit log is append-only"));
    assert!(
        a.client()
            .execute("DELETE FROM audit_checkpoint", &[])
            .is_err()
    );
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&sqlite).unwrap();
    vigil_pgstore::audit::export_to_sqlite(a.client(), &sqlite, false).unwrap();
    assert_eq!(
        vigil_audit::verify_log(&sqlite, &[key.public_key()])
            .unwrap()
            .tree_size,
        6
    );
}
