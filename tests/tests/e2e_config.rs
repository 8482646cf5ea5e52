//! The configuration file (`--config`, `VIGIL_CONFIG`, docs/configuration.md): its keys set
//! what flags and environment variables do not, in the order flags > environment > file;
//! unknown keys stop the program naming them.

use std::path::Path;
use std::process::Command;

use vigil_e2e::*;

/// `vigil` with no configuration from the test's own environment.
fn vigil_command() -> Command {
    let mut command = Command::new(binary("vigil"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIGIL_") {
            command.env_remove(&name);
        }
    }
    command
}

fn write_config(dir: &TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.join("vigil.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn serve_config(db: &Path, port: u16) -> String {
    format!(
        "[vigil]\ndb = \"{}\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\npoll_interval = 30\n",
        db.display()
    )
}

#[test]
fn serve_listens_and_stores_where_the_file_says_and_clients_find_it_through_the_file() {
    let dir = TempDir::new("config-serve");
    let db = dir.join("from-file.db");
    let port = free_port();
    let config = write_config(&dir, &serve_config(&db, port));
    let mut command = vigil_command();
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--dev");
    let server = Server::start(command);
    assert_eq!(server.address, format!("127.0.0.1:{port}"));
    assert!(
        db.exists(),
        "the database named in the file was not created"
    );

    // A client with `verifier` in [vigil] reaches the server without --verifier.
    let client = write_config(&dir, &format!("[vigil]\nverifier = \"{}\"\n", server.url()));
    let out = run(vigil_command()
        .args(["baseline", "list", "--json", "--db"])
        .arg(dir.join("never-created.db"))
        .env("VIGIL_CONFIG", &client));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        !dir.join("never-created.db").exists(),
        "the client opened the database in process instead of asking the server"
    );
    server.stop();
}

#[test]
fn the_environment_overrides_the_file_and_a_flag_overrides_the_environment() {
    let dir = TempDir::new("config-layers");
    let db = dir.join("vigil.db");
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = write_config(&dir, &serve_config(&db, file_port));

    let mut command = vigil_command();
    command
        .args(["serve", "--dev"])
        .env("VIGIL_CONFIG", &config)
        .env("VIGIL_LISTEN", format!("127.0.0.1:{env_port}"));
    let server = Server::start(command);
    assert_eq!(server.address, format!("127.0.0.1:{env_port}"));
    server.stop();

    let mut command = vigil_command();
    command
        .args(["serve", "--dev", "--listen"])
        .arg(format!("127.0.0.1:{flag_port}"))
        .arg(format!("--config={}", config.display()))
        .env("VIGIL_LISTEN", format!("127.0.0.1:{env_port}"));
    let server = Server::start(command);
    assert_eq!(server.address, format!("127.0.0.1:{flag_port}"));
    server.stop();
}

#[test]
fn an_unknown_key_a_wrong_type_or_a_missing_named_file_exits_2_naming_it() {
    let dir = TempDir::new("config-errors");
    let config = write_config(&dir, "[serve]\nlisten = \"127.0.0.1:0\"\nlsiten = \"x\"\n");
    let out = run(vigil_command()
        .args(["serve", "--dev", "--config"])
        .arg(&config));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("[serve] unknown key `lsiten`"),
        "{message}"
    );
    assert!(message.contains(&config.display().to_string()), "{message}");

    // The attester checks the whole file too.
    let out = run(Command::new(binary("vigil-attester"))
        .args(["gpus", "--config"])
        .arg(&config));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("unknown key `lsiten`"),
        "{}",
        stderr(&out)
    );

    // Security-weakening switches are flags only.
    let config = write_config(&dir, "[serve]\ndev = true\n");
    let out = run(vigil_command().args(["serve", "--config"]).arg(&config));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("unknown key `dev`"),
        "{}",
        stderr(&out)
    );

    let config = write_config(&dir, "[serve]\npoll_interval = \"soon\"\n");
    let out = run(vigil_command()
        .args(["serve", "--dev", "--config"])
        .arg(&config));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("poll_interval: expected an integer"),
        "{}",
        stderr(&out)
    );

    let missing = dir.join("absent.toml");
    let out = run(vigil_command()
        .args(["baseline", "list", "--config"])
        .arg(&missing));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&missing.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_vigil_config_reads_no_file() {
    for program in ["vigil", "vigil-attester"] {
        let args: &[&str] = if program == "vigil" {
            &["baseline", "claims"]
        } else {
            &["--help"]
        };
        let out = run(std::process::Command::new(binary(program))
            .args(args)
            .env("VIGIL_CONFIG", ""));
        assert_eq!(code(&out), 0, "{program}: {}{}", stdout(&out), stderr(&out));
    }
}
