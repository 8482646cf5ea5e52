//! `vigil serve` starting up: one server per database file (a second one refuses, naming the
//! file, and the first keeps serving); every path and the address are checked before anything
//! is created.

use std::process::Command;

use vigil_e2e::*;

#[test]
fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = TempDir::new("serve-lock");
    let db = dir.join("vigil.db");
    let first = start_verifier(&db, &[]);
    let out = run(Command::new(binary("vigil"))
        .args(["serve", "--listen", "127.0.0.1:0", "--dev", "--db"])
        .arg(&db));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("vigil.db"), "{message}");
    assert!(
        message.contains("in use by another `vigil serve`"),
        "{message}"
    );
    // The first server still answers.
    let out = vigil(&["baseline", "list", "--verifier", &first.url()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    first.stop();
    // Once it is gone, the database can be served again.
    let again = start_verifier(&db, &[]);
    again.stop();
}

#[test]
fn a_missing_rim_dir_or_a_busy_port_stops_the_server_before_anything_is_created() {
    let dir = TempDir::new("serve-paths");
    let db = dir.join("vigil.db");
    let out = run(Command::new(binary("vigil"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev",
            "--rim-dir",
            "/nonexistent/rims",
            "--db",
        ])
        .arg(&db));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("--rim-dir /nonexistent/rims: not a directory"),
        "{}",
        stderr(&out)
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "{created:?}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let out = run(Command::new(binary("vigil"))
        .args(["serve", "--listen", &address, "--dev", "--db"])
        .arg(&db));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {address}")),
        "{}",
        stderr(&out)
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "{created:?}");
}
