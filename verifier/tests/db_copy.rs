//! `vigil db copy`: a SQLite installation with more than a thousand verdicts moved into a real
//! PostgreSQL server (the test harness's), checked by `vigil audit verify` on both sides;
//! a second copy into the filled database is refused; tampering on PostgreSQL is caught.
//! Skips, saying so, when PostgreSQL is not installed (fails under CI).

#[allow(dead_code)]
#[path = "../../tests/src/postgres.rs"]
mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use vigil_verifier::store::{NodeRecord, Store, audit_key_path};
use vigil_verifier::store_baselines::NewBaseline;

const VERDICTS: i64 = 1_050;
const T0: i64 = 1_800_000_000;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_CONFIG", "")
        .env_remove("VIGIL_DB")
        .env_remove("VIGIL_AUDIT_KEY")
        .env_remove("PGPASSWORD")
        .env_remove("VIGIL_DB_PASSWORD_FILE")
        .output()
        .expect("run vigil")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn node(id: &str, group: &str) -> NodeRecord {
    NodeRecord {
        node_id: id.to_owned(),
        ak_public: vec![1, 2, 3, b'\t', b'\\', b'\n'],
        ak_name: vec![0, 4, 5],
        ak_trust: "ek".to_owned(),
        address: Some(format!("{id}:7443")),
        first_seen: T0,
        last_seen: T0,
        last_verdict: None,
        ek_public: Some(vec![9; 8]),
        ek_certificate: None,
        group: group.to_owned(),
        registered_at: Some(T0),
        status: "unknown".to_owned(),
    }
}

/// A SQLite installation touching every table: nodes (one removed), nonces, > 1,000
/// verdicts with status changes, baselines and an assignment, IMA state, GPU identities, and
/// an evidence prune.
fn build_installation(db: &Path) {
    let mut store = Store::open(db).expect("open SQLite store");
    let nodes = ["gpu-1", "gpu-2", "gpu-3", "gpu-4"];
    for (i, id) in nodes.iter().enumerate() {
        assert!(
            store
                .insert_node(&node(id, if i % 2 == 0 { "hgx" } else { "pcie" }))
                .unwrap()
        );
    }
    for (version, body) in ["rules: 1\n", "rules: 2\twith a tab \\ and a backslash\n"]
        .iter()
        .enumerate()
    {
        let sha = format!("{:064x}", version + 1);
        store
            .put_baseline(&NewBaseline {
                name: "hgx-baseline",
                sha256: &sha,
                body,
                author: "ops",
                reason: "test",
                signed_by: None,
                rules: version as i64 + 1,
                time: T0 + version as i64,
            })
            .unwrap();
    }
    store
        .assign_baseline("hgx", "hgx-baseline", "ops", "roll out", T0 + 5)
        .unwrap();
    for i in 0..VERDICTS {
        let id = nodes[(i % 4) as usize];
        let verdict = if i % 7 == 3 { "fail" } else { "pass" };
        // Every third verdict repeats its node's previous evidence (one blob, shared).
        let evidence = format!("evidence of {id} round {}", i / 12);
        store
            .record_verdict(
                id,
                &i.to_be_bytes(),
                T0 + 10 + i,
                verdict,
                &format!(r#"{{"i":{i},"note":"line\nbreak"}}"#),
                evidence.as_bytes(),
                true,
            )
            .unwrap();
    }
    for i in 0..5i64 {
        store
            .insert_nonce(
                format!("nonce-{i}").as_bytes(),
                "gpu-1",
                T0 + i,
                T0 + 60 + i,
            )
            .unwrap();
    }
    store
        .set_gpu_identities("gpu-1", r#"[{"serial":"1650"}]"#)
        .unwrap();
    store
        .connection()
        .execute(
            "INSERT INTO ima_state (node_id, baseline, state_json, updated_at) VALUES ('gpu-2', 'hgx-baseline', '{\"entries\":3}', ?1)",
            [T0],
        )
        .unwrap();
    assert!(store.remove_node("gpu-4", T0 + 20_000).unwrap());
    let pruned = store
        .prune_evidence(T0 + 10 + VERDICTS / 2, T0 + 30_000)
        .unwrap();
    assert!(pruned.pruned > 0, "{pruned:?}");
}

fn sqlite_tree(db: &Path) -> (u64, String) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let size = vigil_audit::tree_size(&conn).unwrap();
    (
        size,
        hex::encode(vigil_audit::root_hash(&conn, size).unwrap()),
    )
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn copies_an_installation_verifies_it_and_refuses_a_second_copy() {
    let Some(pg) = postgres::PgServer::start() else {
        return;
    };
    let dir = Dir(std::env::temp_dir().join(format!("vigil-db-copy-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = dir.0.join("vigil.db");
    build_installation(&db);
    let (size, root) = sqlite_tree(&db);
    assert!(size > VERDICTS as u64, "{size}");
    let db_arg = db.to_str().unwrap();
    let key_file = audit_key_path(&db);
    let key_arg = key_file.to_str().unwrap();
    let url = pg.url();

    // A key that did not sign this log is refused before anything is written.
    let other_key = dir.0.join("other.audit-key");
    std::fs::write(&other_key, vigil_audit::generate_key().unwrap()).unwrap();
    let out = vigil(&[
        "db",
        "copy",
        "--from",
        db_arg,
        "--to",
        &url,
        "--audit-key",
        other_key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not sign"),
        "{}",
        text(&out)
    );

    let out = vigil(&["db", "copy", "--from", db_arg, "--to", &url]);
    eprintln!("{}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{size} entries, root {root}")),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("OK:"), "{}", text(&out));
    assert!(
        stdout.contains(&format!("verdicts {VERDICTS:>8} rows"))
            || stdout.contains(&format!("{VERDICTS} rows")),
        "{}",
        text(&out)
    );

    // The PostgreSQL side, read directly: same tree, and it is usable with the same key.
    let pkcs8 = std::fs::read(&key_file).unwrap();
    let key = Arc::new(vigil_audit::load_key(vigil_pgstore::AUDIT_ORIGIN, &pkcs8).unwrap());
    let mut pg_store = vigil_pgstore::PgStore::open(&url, key).expect("open the copy");
    assert_eq!(
        vigil_pgstore::audit::tree_size(pg_store.client()).unwrap(),
        size
    );
    assert_eq!(
        hex::encode(vigil_pgstore::audit::root_hash(pg_store.client(), size).unwrap()),
        root
    );
    assert_eq!(pg_store.verdict_count().unwrap(), VERDICTS);

    let out = vigil(&["audit", "verify", "--db", db_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let out = vigil(&["audit", "verify", "--db", &url, "--audit-key", key_arg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("snapshot of {size} entries")),
        "{}",
        text(&out)
    );

    // New ids continue after the copied ones, and the log keeps verifying.
    let id = pg_store
        .record_verdict("gpu-1", b"after", T0 + 40_000, "pass", "{}", b"ev", true)
        .unwrap();
    assert_eq!(id, VERDICTS + 1);
    let out = vigil(&["audit", "verify", "--db", &url, "--audit-key", key_arg]);
    assert!(out.status.success(), "{}", text(&out));
    // An auditor needs no signing key: the signer the database records is checked.
    let out = vigil(&["audit", "verify", "--db", &url]);
    assert!(out.status.success(), "{}", text(&out));

    // A second copy into the now filled database is refused, naming what is there.
    let out = vigil(&["db", "copy", "--from", db_arg, "--to", &url]);
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("verdicts"),
        "{}",
        text(&out)
    );

    // Rewriting one audit entry's body on PostgreSQL is caught.
    pg_store
        .client()
        .batch_execute(
            "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only;
             UPDATE audit_entry
                SET encoding = overlay(encoding placing '\"fail\"'::bytea
                                       from position('\"pass\"'::bytea in encoding) for 6)
              WHERE idx = (SELECT MIN(idx) FROM audit_entry
                            WHERE kind = 'verdict'
                              AND position('\"pass\"'::bytea in encoding) > 0);",
        )
        .unwrap();
    let out = vigil(&["audit", "verify", "--db", &url, "--audit-key", key_arg]);
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("TAMPERED"),
        "{}",
        text(&out)
    );
    // The SQLite original is untouched.
    let out = vigil(&["audit", "verify", "--db", db_arg]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn db_migrate_reports_versions() {
    let Some(pg) = postgres::PgServer::start() else {
        return;
    };
    let dir = Dir(std::env::temp_dir().join(format!("vigil-db-migrate-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = dir.0.join("vigil.db");
    drop(Store::open(&db).unwrap());
    let out = vigil(&["db", "migrate", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verifier schema version"),
        "{}",
        text(&out)
    );
    // No signing key is needed to migrate.
    let out = vigil(&["db", "migrate", "--db", &pg.url()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for component in vigil_pgstore::schema::COMPONENTS {
        assert!(
            stdout.contains(&format!(
                "{:<9} version {}",
                component.name,
                component.migrations.len()
            )),
            "{}",
            text(&out)
        );
    }
}
