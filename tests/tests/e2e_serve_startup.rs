//! One `vigil serve` per database file: a second server on the same SQLite file refuses to
//! start, naming the file, and the first keeps serving.

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
