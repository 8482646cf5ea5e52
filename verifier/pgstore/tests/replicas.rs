//! Two replicas (two or more PgStore connections) against one real PostgreSQL server started
//! by the test harness. Each test skips, saying so, when PostgreSQL is not installed (and
//! fails under CI).

#[allow(dead_code)]
#[path = "../../../tests/src/postgres.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vigil_audit::AuditSigningKey;
use vigil_pgstore::{
    AUDIT_ORIGIN, NewBaseline, NodeRecord, PgStore, PgStoreError, PruneReport, VerdictRecord,
};

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
    assert_eq!(
        a.lease_counts(now).unwrap(),
        BTreeMap::from([("a".to_owned(), 10), ("b".to_owned(), 10)]),
        "both replicas are live, with their shares"
    );
    assert!(
        a.lease_counts(now + lease).unwrap().is_empty(),
        "expired leases name no live replica"
    );
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

/// Every read is also on `PgTx`, and it runs inside the transaction: it sees the
/// transaction's own uncommitted writes, which another replica does not see until COMMIT.
#[test]
fn reads_inside_a_transaction_see_its_own_writes() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    a.put_baseline(&NewBaseline {
        name: "hgx",
        sha256: "aa",
        body: "a",
        author: "alice",
        reason: "initial",
        signed_by: None,
        rules: 1,
        time: 5,
    })
    .unwrap();
    let seen = a
        .write(|tx| {
            tx.insert_node(&node("gpu-1"))?;
            tx.assign_baseline("hgx", "hgx", "alice", "rollout", 6)?;
            tx.put_ima_state_json("gpu-1", "hgx@1", r#"{"n":1}"#, 7)?;
            tx.set_gpu_identities("gpu-1", r#"["g"]"#)?;
            let id = tx.record_verdict("gpu-1", b"n", 8, "pass", "{}", b"ev", true)?;
            // Not visible to another replica before COMMIT.
            assert_eq!(b.node("gpu-1").unwrap(), None);
            assert_eq!(b.verdict_count().unwrap(), 0);
            assert_eq!(b.baseline_for_group("hgx").unwrap(), None);
            Ok((
                (
                    tx.node("gpu-1")?.map(|n| n.status),
                    tx.nodes()?.len(),
                    tx.status_changes(0, 10)?.len(),
                    tx.latest_status_seq()?,
                    tx.verdicts(Some("gpu-1"))?
                        .iter()
                        .map(|v| v.id)
                        .collect::<Vec<_>>(),
                    tx.verdict_count()?,
                    tx.latest_verdicts()?.len(),
                    tx.recent_verdicts(None, 5)?.first().map(|v| v.id),
                ),
                (
                    tx.ima_state_json("gpu-1")?,
                    tx.gpu_identities("gpu-1")?,
                    tx.baseline("hgx", None)?.map(|b| b.version),
                    tx.baselines()?.len(),
                    tx.baseline_assignments()?,
                    tx.baseline_for_group("hgx")?.map(|b| b.version),
                    id,
                ),
            ))
        })
        .unwrap();
    let id = seen.1.6;
    assert_eq!(
        seen,
        (
            (
                Some("trusted".to_owned()),
                1,
                1,
                1,
                vec![id],
                1,
                1,
                Some(id),
            ),
            (
                Some(("hgx@1".to_owned(), r#"{"n":1}"#.to_owned())),
                r#"["g"]"#.to_owned(),
                Some(1),
                1,
                BTreeMap::from([("hgx".to_owned(), "hgx".to_owned())]),
                Some(1),
                id,
            )
        )
    );
    // Committed: the other replica's autocommit reads agree.
    assert_eq!(b.node("gpu-1").unwrap().unwrap().status, "trusted");
    assert_eq!(b.baseline_for_group("hgx").unwrap().unwrap().version, 1);
    assert_eq!(b.latest_status_seq().unwrap(), 1);
}

/// `PgTx`'s own writes: nonce pruning, GPU identities, IMA state, audit events; a failing
/// savepoint undoes them and leaves the rest of the batch.
#[test]
fn transaction_writes_commit_together_or_not_at_all() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    a.insert_node(&node("gpu-1")).unwrap();
    a.insert_nonce(b"old", "gpu-1", 1, 10).unwrap();
    a.insert_nonce(b"new", "gpu-1", 1, 100).unwrap();
    a.put_ima_state_json("gpu-1", "hgx@1", "{}", 1).unwrap();
    let event = |subject: &str| vigil_audit::AuditEntry {
        kind: "node.registered".to_owned(),
        time: 50,
        subject: subject.to_owned(),
        body: serde_json::json!({"by": "test"}),
    };
    let (pruned, index, undone) = a
        .write(|tx| {
            let pruned = tx.prune_nonces(50)?;
            tx.set_gpu_identities("gpu-1", r#"["g1"]"#)?;
            tx.delete_ima_state("gpu-1")?;
            let index = tx.record_event(&event("gpu-1"))?;
            // Everything in this savepoint is undone by its failure.
            let undone = tx.savepoint(|tx| {
                tx.put_ima_state_json("gpu-1", "hgx@2", "{}", 60)?;
                tx.set_gpu_identities("gpu-1", r#"["lost"]"#)?;
                tx.record_event(&event("lost"))?;
                tx.insert_nonce(b"new", "gpu-1", 1, 100)
            });
            Ok((pruned, index, undone.is_err()))
        })
        .unwrap();
    assert_eq!((pruned, index, undone), (1, 0, true));
    assert_eq!(a.gpu_identities("gpu-1").unwrap(), r#"["g1"]"#);
    assert_eq!(a.ima_state_json("gpu-1").unwrap(), None);
    assert!(a.consume_nonce(b"new", "gpu-1", 60).unwrap().0);
    assert_eq!(a.consume_nonce(b"old", "gpu-1", 5).unwrap(), (false, None));
    let entries = vigil_pgstore::audit::read_entries(a.client(), 0, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry, event("gpu-1"));
    // The event was checkpointed, as on SQLite.
    let checkpoints: i64 = a
        .client()
        .query_one("SELECT COUNT(*) FROM audit_checkpoint", &[])
        .unwrap()
        .get(0);
    assert_eq!(checkpoints, 1);
    // A failed batch keeps nothing.
    let failed = a.write(|tx| {
        tx.set_gpu_identities("gpu-1", r#"["gone"]"#)?;
        tx.prune_nonces(1000)?;
        Err::<(), _>(PgStoreError::Invalid("abort".into()))
    });
    assert!(failed.is_err());
    assert_eq!(a.gpu_identities("gpu-1").unwrap(), r#"["g1"]"#);
    assert_eq!(a.prune_nonces(1000).unwrap(), 1);
}

/// SQLite's statements for the same listings, on a SQLite database built from the shared
/// schema, to compare row for row.
fn sqlite_verifier_db() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for migration in vigil_pgstore::schema::VERIFIER.migrations {
        conn.execute_batch(&vigil_pgstore::schema::render(
            migration,
            vigil_pgstore::schema::Engine::Sqlite,
        ))
        .unwrap();
    }
    vigil_audit::migrate(&conn).unwrap();
    conn
}

fn sqlite_verdicts(conn: &rusqlite::Connection, sql: &str) -> Vec<VerdictRecord> {
    let mut s = conn.prepare(sql).unwrap();
    s.query_map([], |r| {
        Ok(VerdictRecord {
            id: r.get(0)?,
            node_id: r.get(1)?,
            nonce: r.get(2)?,
            verified_at: r.get(3)?,
            verdict: r.get(4)?,
            result_json: r.get(5)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Node ids that a locale orders differently from SQLite's bytewise BINARY collation.
const MIXED_CASE_NODES: [&str; 4] = ["b-node", "B-node", "a-node", "_node"];

#[test]
fn latest_and_recent_verdicts_match_sqlite() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let sqlite = sqlite_verifier_db();
    let mut time = 100;
    for round in 0..3 {
        for id in MIXED_CASE_NODES {
            time += 1;
            let verdict = if round == 2 && id == "a-node" {
                "fail"
            } else {
                "pass"
            };
            let result = format!(r#"{{"round":{round}}}"#);
            let vid = a
                .record_verdict(id, id.as_bytes(), time, verdict, &result, b"ev", true)
                .unwrap();
            sqlite
                .execute(
                    "INSERT INTO verdicts (id, node_id, nonce, verified_at, verdict, result_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![vid, id, id.as_bytes(), time, verdict, result],
                )
                .unwrap();
        }
    }
    // latest_verdicts: the SQLite store's own statement gives the same rows, same order.
    let latest = a.latest_verdicts().unwrap();
    let expected = sqlite_verdicts(
        &sqlite,
        "SELECT id, node_id, nonce, verified_at, verdict, result_json FROM verdicts
         WHERE id IN (SELECT MAX(id) FROM verdicts GROUP BY node_id) ORDER BY node_id",
    );
    assert_eq!(latest, expected);
    assert_eq!(
        latest
            .iter()
            .map(|v| v.node_id.as_str())
            .collect::<Vec<_>>(),
        ["B-node", "_node", "a-node", "b-node"],
        "bytewise, as SQLite"
    );
    assert!(latest.iter().all(|v| v.result_json == r#"{"round":2}"#));
    assert_eq!(latest[2].verdict, "fail");
    // recent_verdicts: newest first, at most `limit`, one node's when asked.
    let all = a.verdicts(None).unwrap();
    let recent = a.recent_verdicts(None, 5).unwrap();
    let newest: Vec<VerdictRecord> = all.iter().rev().take(5).cloned().collect();
    assert_eq!(recent, newest);
    let mine = a.recent_verdicts(Some("B-node"), 2).unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|v| v.node_id == "B-node"));
    assert!(mine[0].id > mine[1].id);
    assert_eq!(mine[0].id, latest[0].id);
    assert_eq!(a.recent_verdicts(Some("nobody"), 5).unwrap(), vec![]);
    assert_eq!(a.recent_verdicts(None, 0).unwrap(), vec![]);
    assert_eq!(a.recent_verdicts(None, 1000).unwrap().len(), all.len());
    assert!(matches!(
        a.recent_verdicts(None, -1),
        Err(PgStoreError::Invalid(_))
    ));
}

/// In a database whose default collation is a natural-language one, listings still come
/// out bytewise, as on SQLite (without `COLLATE "C"`, ICU's `en` puts `a-node` first).
#[test]
fn listings_are_ordered_bytewise_whatever_the_database_locale() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let superuser = format!("postgres://postgres@127.0.0.1:{}/vigil", pg.port);
    let mut admin = postgres::Client::connect(&superuser, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "CREATE DATABASE vigil_icu OWNER vigil TEMPLATE template0 ENCODING 'UTF8'
             LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
        )
        .unwrap();
    let url = format!("postgres://vigil@127.0.0.1:{}/vigil_icu", pg.port);
    let mut a = PgStore::open(&url, key()).unwrap();
    // The locale does order differently here.
    let icu_first: String = a
        .client()
        .query_one(
            "SELECT n FROM (VALUES ('B-node'), ('a-node')) AS t(n) ORDER BY n LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(icu_first, "a-node");
    for (i, id) in MIXED_CASE_NODES.iter().enumerate() {
        a.insert_node(&node(id)).unwrap();
        a.record_verdict(id, id.as_bytes(), 10 + i as i64, "pass", "{}", b"e", true)
            .unwrap();
        let baseline = NewBaseline {
            name: id,
            sha256: "s",
            body: "b",
            author: "a",
            reason: "r",
            signed_by: None,
            rules: 1,
            time: 1,
        };
        a.put_baseline(&baseline).unwrap();
    }
    let bytewise = ["B-node", "_node", "a-node", "b-node"];
    let ids = |v: Vec<String>| v;
    assert_eq!(
        ids(a.nodes().unwrap().into_iter().map(|n| n.node_id).collect()),
        bytewise
    );
    assert_eq!(
        ids(a
            .latest_verdicts()
            .unwrap()
            .into_iter()
            .map(|v| v.node_id)
            .collect()),
        bytewise
    );
    assert_eq!(
        ids(a.baselines().unwrap().into_iter().map(|b| b.name).collect()),
        bytewise
    );
}

/// The canonical body of `store`'s audit entries and their leaf hashes.
fn entry_rows(conn: &rusqlite::Connection) -> Vec<(i64, String, i64, String, Vec<u8>)> {
    let mut s = conn
        .prepare("SELECT idx, kind, time, subject, encoding FROM audit_entry ORDER BY idx")
        .unwrap();
    s.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn checkpoint_rows(conn: &rusqlite::Connection) -> Vec<(i64, i64, Vec<u8>, i64, String, String)> {
    let mut s = conn
        .prepare("SELECT id, tree_size, root, time, origin, note FROM audit_checkpoint ORDER BY id")
        .unwrap();
    s.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// (node, nonce, time, verdict, result_json, evidence, speaks_for_node)
type Case = (
    &'static str,
    &'static [u8],
    i64,
    &'static str,
    &'static str,
    &'static [u8],
    bool,
);

/// A verdict recorded on PostgreSQL is logged byte for byte as the SQLite store logs it
/// (entry encoding, hence leaf hash; one checkpoint per verdict, same notes under the same
/// key), and its `result_json` is stored re-serialised, as SQLite's `PreparedVerdict` does.
#[test]
fn verdict_audit_entries_match_the_sqlite_store() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    a.insert_node(&node("gpu-1")).unwrap();
    let cases: [Case; 4] = [
        (
            "gpu-1",
            b"\x01\xff",
            1000,
            "pass",
            r#"{ "z": 1, "a": [true, null, "x"], "m": {"k": -2} }"#,
            b"evidence-1",
            true,
        ),
        (
            "gpu-1",
            b"n2",
            1001,
            "fail",
            "not json",
            b"evidence-2",
            true,
        ),
        (
            "gpu-9",
            b"n3",
            1002,
            "pass",
            r#"{"claim":"caf\u00e9 \u2603","q":"\"quoted\""}"#,
            b"evidence-1",
            false,
        ),
        ("gpu-1", b"", 1003, "pass", "{}", b"", true),
    ];
    // SQLite: the store's steps with vigil-audit's SQLite functions (append the whole entry,
    // then checkpoint at the verdict's time; the SQLite store's own test pins its prepared
    // encoding to this).
    let sqlite = sqlite_verifier_db();
    for (i, (node_id, nonce, time, verdict, result_json, evidence, speaks)) in
        cases.iter().enumerate()
    {
        let id = a
            .record_verdict(
                node_id,
                nonce,
                *time,
                verdict,
                result_json,
                evidence,
                *speaks,
            )
            .unwrap();
        assert_eq!(id, i as i64 + 1);
        let result: serde_json::Value =
            serde_json::from_str(result_json).unwrap_or(serde_json::Value::Null);
        let entry = vigil_audit::AuditEntry {
            kind: "verdict".to_owned(),
            time: *time,
            subject: (*node_id).to_owned(),
            body: serde_json::json!({
                "verdict": verdict,
                "nonce": hex::encode(nonce),
                "evidence": format!("sha256:{}", vigil_audit::blob_digest(evidence)),
                "claimed_identity": !speaks,
                "result": result,
                "verdict_id": id,
            }),
        };
        vigil_audit::append(&sqlite, &entry).unwrap();
        vigil_audit::checkpoint(&sqlite, &key, AUDIT_ORIGIN, *time).unwrap();
        // Stored re-serialised, as the SQLite store stores it.
        let stored = a.verdicts(None).unwrap().pop().unwrap();
        assert_eq!(stored.result_json, serde_json::to_string(&result).unwrap());
    }
    assert_eq!(a.verdicts(None).unwrap()[1].result_json, "null");
    // A result canonical JSON cannot hold (a fraction) is refused before anything is written,
    // as the SQLite store refuses it when preparing.
    assert!(matches!(
        a.record_verdict("gpu-1", b"n5", 1004, "pass", r#"{"x":0.5}"#, b"e", true),
        Err(PgStoreError::Audit(_))
    ));
    assert_eq!(a.verdict_count().unwrap(), cases.len() as i64);
    assert_eq!(
        a.status_changes(0, 10).unwrap()[0].result_json,
        r#"{"a":[true,null,"x"],"m":{"k":-2},"z":1}"#
    );
    let exported = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&exported).unwrap();
    vigil_pgstore::audit::export_to_sqlite(a.client(), &exported, false).unwrap();
    assert_eq!(entry_rows(&exported), entry_rows(&sqlite));
    assert_eq!(checkpoint_rows(&exported).len(), cases.len());
    assert_eq!(checkpoint_rows(&exported), checkpoint_rows(&sqlite));
    // The first body, spelled out: canonical (sorted keys, no spaces), `verdict_id` last.
    let first = vigil_pgstore::audit::read_entries(a.client(), 0, 1).unwrap();
    let body = vigil_audit::entry::canonical_json(&first[0].entry.body).unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!(
            r#"{{"claimed_identity":false,"evidence":"sha256:{}","nonce":"01ff","result":{{"a":[true,null,"x"],"m":{{"k":-2}},"z":1}},"verdict":"pass","verdict_id":1}}"#,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"evidence-1"))
        )
    );
    let leaf = vigil_audit::merkle::leaf_hash(&entry_rows(&sqlite)[0].4);
    assert_eq!(first[0].leaf_hash, leaf);
    vigil_audit::verify_log(&exported, &[key.public_key()]).unwrap();
}

/// Evidence pruning as the SQLite store's `prune_evidence`: blobs of verdicts before the
/// cutoff go unless a later verdict shares them, each is remembered, one audit entry says so.
#[test]
fn evidence_older_than_the_cutoff_is_pruned_unless_shared() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    let digest = |e: &[u8]| vigil_audit::blob_digest(e);
    let blob =
        |s: &mut PgStore, e: &[u8]| vigil_pgstore::audit::get_blob(s.client(), &digest(e)).unwrap();
    a.record_verdict("n", b"1", 100, "pass", "{}", b"old-only", true)
        .unwrap();
    a.record_verdict("n", b"2", 110, "pass", "{}", b"shared", true)
        .unwrap();
    a.record_verdict("n", b"3", 120, "pass", "{}", b"old-too", true)
        .unwrap();
    a.record_verdict("n", b"4", 200, "pass", "{}", b"shared", true)
        .unwrap();
    a.record_verdict("n", b"5", 210, "pass", "{}", b"new", true)
        .unwrap();
    // A verdict whose evidence column is empty (copied from an older database): filled in
    // from its audit entry, then pruned like the others.
    let legacy = a
        .record_verdict("n", b"6", 130, "pass", "{}", b"legacy", true)
        .unwrap();
    a.client()
        .execute(
            "UPDATE verdicts SET evidence = NULL WHERE id = $1",
            &[&legacy],
        )
        .unwrap();
    let report = b.prune_evidence(150, 300).unwrap();
    assert_eq!(
        report,
        PruneReport {
            pruned: 3,
            kept_shared: 1,
            audit_index: Some(6),
        }
    );
    for gone in [&b"old-only"[..], b"old-too", b"legacy"] {
        assert_eq!(blob(&mut a, gone), None);
    }
    for kept in [&b"shared"[..], b"new"] {
        assert!(blob(&mut a, kept).is_some());
    }
    let mut pruned: Vec<String> = [&b"old-only"[..], b"old-too", b"legacy"]
        .iter()
        .map(|e| digest(e))
        .collect();
    pruned.sort();
    let remembered: Vec<(String, i64, i64, i64)> = a
        .client()
        .query(
            "SELECT digest, pruned_at, cutoff, audit_index FROM pruned_evidence ORDER BY digest",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        remembered,
        pruned
            .iter()
            .map(|d| (d.clone(), 300, 150, 6))
            .collect::<Vec<_>>()
    );
    let listing: String = pruned.iter().map(|d| format!("{d}\n")).collect();
    let entry = vigil_pgstore::audit::read_entries(a.client(), 6, 1)
        .unwrap()
        .remove(0)
        .entry;
    assert_eq!(
        entry,
        vigil_audit::AuditEntry {
            kind: "evidence.pruned".to_owned(),
            time: 300,
            subject: "evidence".to_owned(),
            body: serde_json::json!({
                "cutoff": 150,
                "blobs": 3,
                "digests_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(listing.as_bytes())),
                "policy": "--retain-evidence",
            }),
        }
    );
    // Nothing left to prune: no entry. Later, the shared blob's newer verdict ages out too.
    assert_eq!(
        a.prune_evidence(150, 301).unwrap(),
        PruneReport {
            pruned: 0,
            kept_shared: 1,
            audit_index: None,
        }
    );
    let report = a.write(|tx| tx.prune_evidence(205, 400)).unwrap();
    assert_eq!((report.pruned, report.kept_shared), (1, 0));
    assert_eq!(blob(&mut a, b"shared"), None);
    assert!(blob(&mut a, b"new").is_some());
    // The log still verifies: entries keep their digests.
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&sqlite).unwrap();
    vigil_pgstore::audit::export_to_sqlite(a.client(), &sqlite, false).unwrap();
    assert_eq!(
        vigil_audit::verify_log(&sqlite, &[key.public_key()])
            .unwrap()
            .tree_size,
        8
    );
}

/// The uid and gid of the `postgres` system user (the harness runs the server as it when we
/// are root).
fn postgres_user_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))?
    })
}

/// A CA and a certificate for 127.0.0.1 (and no host name) signed by it, as PEM.
fn tls_files() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::default();
    server.subject_alt_names = vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
    let cert = server.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// `sslmode=require` connects over TLS, verifying the server against `sslrootcert`, with
/// SCRAM password authentication on top; another CA or another host name is refused, and no
/// error shows the password.
#[test]
fn tls_connections_verify_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let (ca, cert, server_key) = tls_files();
    let (other_ca, _, _) = tls_files();
    let dir = pg.dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let (cert_file, key_file) = (write("server.crt", &cert), write("server.key", &server_key));
    let (ca_file, other_ca_file) = (write("ca.pem", &ca), write("other-ca.pem", &other_ca));
    // As root the harness runs the server as `postgres`, which must own its key file.
    if current_uid() == 0
        && let Some((uid, gid)) = postgres_user_ids()
    {
        for path in [&dir.display().to_string(), &cert_file, &key_file] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }
    // Turn TLS on, and require a password of `vigil` over TLS.
    let superuser = format!("postgres://postgres@127.0.0.1:{}/vigil", pg.port);
    let mut admin = postgres::Client::connect(&superuser, postgres::NoTls).unwrap();
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{cert_file}'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{key_file}'"),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SET password_encryption = 'scram-sha-256'".to_owned(),
        "ALTER ROLE vigil PASSWORD 's3cr3t-pw'".to_owned(),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    let hba: String = admin.query_one("SHOW hba_file", &[]).unwrap().get(0);
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostssl all vigil 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();

    let key = key();
    let url = |host: &str, password: &str, ca: &str| {
        format!(
            "postgres://vigil:{password}@{host}:{}/vigil?sslmode=require&sslrootcert={ca}",
            pg.port
        )
    };
    // The reload is asynchronous: retry briefly.
    let mut store = None;
    for _ in 0..50 {
        match PgStore::connect(&url("127.0.0.1", "s3cr3t-pw", &ca_file), key.clone()) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(e) => {
                assert!(!e.to_string().contains("s3cr3t"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    let mut store = store.expect("a TLS connection once the server has reloaded");
    let ssl: bool = store
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "the session is encrypted");
    store.insert_node(&node("gpu-1")).unwrap();
    // Refused: a server certificate from another CA, a host name the certificate does not
    // name, a wrong password. None of the messages carries the password.
    let refusals = [
        (
            url("127.0.0.1", "s3cr3t-pw", &other_ca_file),
            "invalid peer certificate",
        ),
        (
            url("localhost", "s3cr3t-pw", &ca_file),
            "not valid for name \"localhost\"",
        ),
        (
            url("127.0.0.1", "wrong-s3cr3t", &ca_file),
            "password authentication failed",
        ),
    ];
    for (bad, why) in refusals {
        let err = match PgStore::connect(&bad, key.clone()) {
            Ok(_) => panic!("connected with {}", vigil_pgstore::redacted(&bad)),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(matches!(err, PgStoreError::Connect { .. }), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("vigil:***@"), "{text}");
        assert!(text.contains(why), "{text}");
    }
}

/// This process's uid, from /proc (std has no getuid).
fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

fn node_rows(conn: &rusqlite::Connection) -> Vec<(i64, i64, Vec<u8>)> {
    let mut s = conn
        .prepare("SELECT level, idx, hash FROM audit_node ORDER BY level, idx")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Each replica's writer remembers the audit frontier between its transactions. Replica B
/// appending in between, a batch or savepoint of A's that appended and rolled back (followed
/// by B appending as many entries, so only the content differs), and an append through the
/// raw transaction must all leave A's next appends and checkpoints exactly those of one
/// log built from scratch: every row (entries, tree nodes, checkpoints) as vigil-audit's
/// SQLite functions write them, and the exported log verifies.
#[test]
fn the_audit_frontier_cache_follows_other_replicas_and_rollbacks() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let key = key();
    let mut a = PgStore::open(&pg.url(), key.clone()).unwrap();
    let mut b = PgStore::open(&pg.url(), key.clone()).unwrap();
    let reference = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&reference).unwrap();
    let mut time = 5000;
    let mut entry = |who: &str| {
        time += 1;
        vigil_audit::AuditEntry {
            kind: "test.event".to_owned(),
            time,
            subject: format!("{who}-{time}"),
            body: serde_json::json!({ "n": time }),
        }
    };
    let expect = |e: &vigil_audit::AuditEntry| {
        vigil_audit::append(&reference, e).unwrap();
        vigil_audit::checkpoint(&reference, &key, AUDIT_ORIGIN, e.time).unwrap();
    };
    // Interleavings: runs of A, of B, alternating, and batches of several appends in one
    // transaction (one savepoint each, as the verifier's writer does).
    let pattern = "AABABBBAAAABABBBBBBBAABBAAAAAAAABA";
    for (i, who) in pattern.chars().enumerate() {
        let store = if who == 'A' { &mut a } else { &mut b };
        let batch: Vec<_> = (0..=(i % 3)).map(|_| entry(&who.to_string())).collect();
        let indexes = store
            .write(|tx| {
                tx.lock_log()?;
                batch
                    .iter()
                    .map(|e| tx.savepoint(|sp| sp.record_event(e)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for (e, index) in batch.iter().zip(indexes) {
            assert_eq!(index, vigil_audit::tree_size(&reference).unwrap());
            expect(e);
        }
    }
    // A whole batch of A's that appended is rolled back; B then appends as many entries as
    // A's cached frontier would claim: A must not trust its memory of the lost append.
    let lost = entry("lost");
    let failed = a.write(|tx| {
        tx.record_event(&lost)?;
        Err::<(), _>(PgStoreError::Invalid("roll back".into()))
    });
    assert!(failed.is_err());
    let from_b = entry("B");
    b.record_event(&from_b).unwrap();
    expect(&from_b);
    let from_a = entry("A");
    a.record_event(&from_a).unwrap();
    expect(&from_a);
    // The same with a savepoint rolled back inside a batch that then commits.
    let (lost, kept) = (entry("lost"), entry("A"));
    a.write(|tx| {
        let undone = tx.savepoint(|sp| {
            sp.record_event(&lost)?;
            Err::<(), _>(PgStoreError::Invalid("roll back".into()))
        });
        assert!(undone.is_err());
        tx.savepoint(|sp| sp.record_event(&kept))
    })
    .unwrap();
    expect(&kept);
    let from_b = entry("B");
    b.record_event(&from_b).unwrap();
    expect(&from_b);
    let from_a = entry("A");
    a.record_event(&from_a).unwrap();
    expect(&from_a);
    // An append through the raw transaction, then one through the store, in one batch.
    let (raw, wrapped) = (entry("raw"), entry("A"));
    a.write(|tx| {
        vigil_pgstore::audit::append(tx.transaction(), &raw)?;
        vigil_pgstore::audit::checkpoint(tx.transaction(), &key, AUDIT_ORIGIN, raw.time)?;
        tx.record_event(&wrapped)
    })
    .unwrap();
    expect(&raw);
    expect(&wrapped);
    let from_a = entry("A");
    a.record_event(&from_a).unwrap();
    expect(&from_a);

    let exported = rusqlite::Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&exported).unwrap();
    vigil_pgstore::audit::export_to_sqlite(b.client(), &exported, false).unwrap();
    assert_eq!(entry_rows(&exported), entry_rows(&reference));
    assert_eq!(node_rows(&exported), node_rows(&reference));
    assert_eq!(checkpoint_rows(&exported), checkpoint_rows(&reference));
    vigil_audit::verify_log(&exported, &[key.public_key()]).unwrap();
    // Proofs read from audit_node agree with the reference's roots.
    let size = vigil_audit::tree_size(&reference).unwrap();
    assert_eq!(
        vigil_pgstore::audit::root_hash(a.client(), size).unwrap(),
        vigil_audit::root_hash(&reference, size).unwrap()
    );
}

#[test]
fn large_results_are_compressed_with_lz4() {
    let Some(pg) = harness::PgServer::start() else {
        return;
    };
    let mut store = PgStore::open(&pg.url(), key()).unwrap();
    store.insert_node(&node("gpu-1")).unwrap();
    // A result the size of a few GPUs' claims: compressible, well past the TOAST threshold.
    let claims: Vec<String> = (0..400)
        .map(|i| format!(r#"{{"name":"gpu[{}].claim.{i}","value":"ok"}}"#, i % 8))
        .collect();
    let result = format!(r#"{{"claims":[{}]}}"#, claims.join(","));
    store
        .record_verdict("gpu-1", b"n-lz4", 40, "pass", &result, b"ev", true)
        .unwrap();
    let row = store
        .client()
        .query_one(
            "SELECT pg_column_compression(result_json) FROM verdicts WHERE nonce = $1",
            &[&b"n-lz4".as_slice()],
        )
        .unwrap();
    let method: Option<String> = row.get(0);
    assert_eq!(method.as_deref(), Some("lz4"), "not pglz: see prefer_lz4");
}
