//! The README's commands run as written. Its fenced blocks marked ```` ```bash runnable ````
//! run in order, each with `bash -euo pipefail`, in one scratch directory, against a live
//! setup: a swtpm manufactured with an EK certificate from a local CA and "booted" with a
//! synthetic measured-boot log, and the servers started by the block marked
//! ```` ```bash runnable-servers ````. Every block names its hosts in `NAME=value` lines; the
//! test replaces the values of the names it knows (`VARIABLES`) with the live setup's and
//! leaves every other line alone. In the servers block it only swaps each `--listen` address
//! for a free loopback port, and gives the attester its TPM through `VIGIL_…` variables
//! (`docs/configuration.md`), as `--tcti` or a config file would on a GPU host.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_e2e::*;

/// The node name the README uses (the attester's `--node-id`, its hostname by default).
const NODE: &str = "gpu-host-1";

/// A fenced block of README.md: its info string and body.
struct Block {
    info: String,
    body: String,
}

fn readme() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join("README.md")).expect("README.md")
}

fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let mut body = String::new();
            for line in lines.by_ref() {
                if line.starts_with("```") {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            blocks.push(Block {
                info: info.trim().to_owned(),
                body,
            });
        }
    }
    blocks
}

/// `NAME` of a `NAME=value` line.
fn assigned(line: &str) -> Option<&str> {
    let (name, _) = line.split_once('=')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')).then_some(name)
}

/// `body` with the values of the variables in `values` replaced; panics on a variable the
/// test does not know that is not derived from others (a placeholder it would not fill).
fn substitute(body: &str, values: &[(&str, String)]) -> String {
    let mut out = String::new();
    for line in body.lines() {
        match assigned(line) {
            Some(name) => {
                if let Some((_, value)) = values.iter().find(|(n, _)| *n == name) {
                    out.push_str(&format!("{name}='{value}'\n"));
                    continue;
                }
                assert!(
                    line.contains('$'),
                    "README variable {name} is unknown to tests/tests/readme.rs: {line}"
                );
                out.push_str(line);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `line` with its `--listen ADDRESS` replaced by a free loopback port.
fn listen_on_any_port(line: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    let at = words
        .iter()
        .position(|w| *w == "--listen")
        .unwrap_or_else(|| panic!("a server line without --listen: {line}"));
    words[at + 1] = "127.0.0.1:0";
    words.join(" ")
}

/// A command with PATH starting at the workspace binaries and no `VIGIL_…` settings of the
/// machine running the test.
fn shell(work: &Path, script: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(work);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            command.env_remove(key);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths: Vec<PathBuf> = vec![bin_dir()];
    paths.extend(std::env::split_paths(&path));
    command
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("TSS2_LOG", "all+none");
    command
}

#[test]
fn readme_runnable_blocks_run_as_written() {
    let text = readme();
    let all = blocks(&text);
    let runnable: Vec<&Block> = all
        .iter()
        .filter(|b| b.info.starts_with("bash runnable"))
        .collect();
    let servers = runnable
        .iter()
        .filter(|b| b.info == "bash runnable-servers")
        .count();
    assert_eq!(
        servers, 1,
        "README.md needs one ```bash runnable-servers block"
    );
    assert!(
        runnable.len() >= 4,
        "README.md lost its runnable blocks ({})",
        runnable.len()
    );
    // No block's info string is misspelt into being skipped silently.
    for block in &all {
        assert!(
            matches!(
                block.info.as_str(),
                "bash" | "bash runnable" | "bash runnable-servers" | "toml" | "text" | ""
            ),
            "unknown README block kind {:?}",
            block.info
        );
    }

    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("readme");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let event_log = firmware_boot(
        &tpm,
        dir.path(),
        &[b"shim", b"grub", b"vmlinuz"],
        "BOOT_IMAGE=/vmlinuz ro",
    );

    let mut values: Vec<(&str, String)> = vec![
        ("EK_ROOTS", trust.display().to_string()),
        ("NODE", NODE.to_owned()),
    ];
    let mut running: Vec<Server> = Vec::new();
    let mut outputs: Vec<String> = Vec::new();
    for (index, block) in runnable.iter().enumerate() {
        let script = substitute(&block.body, &values);
        if block.info == "bash runnable-servers" {
            let preamble: String = script
                .lines()
                .filter(|l| assigned(l).is_some())
                .map(|l| format!("{l}\n"))
                .collect();
            for line in script.lines() {
                let attester = line.starts_with("vigil-attester serve ");
                if !attester && !line.starts_with("vigil serve ") {
                    continue;
                }
                let mut command = shell(
                    &work,
                    &format!("{preamble}exec {}", listen_on_any_port(line)),
                );
                if attester {
                    // What a GPU host has without flags: its TPM, its firmware's log, its name.
                    command
                        .env("VIGIL_TCTI", tpm.tcti())
                        .env("VIGIL_ATTESTER_STATE", dir.join("attester-state"))
                        .env("VIGIL_ATTESTER_NODE_ID", NODE)
                        .env("VIGIL_ATTESTER_EVENT_LOG", &event_log)
                        .env(
                            "VIGIL_ATTESTER_IMA_LOG",
                            "/nonexistent/vigil-e2e/binary_runtime_measurements",
                        );
                }
                let server = Server::start(command);
                if attester {
                    values.push(("ATTESTER", server.address.clone()));
                } else {
                    values.push(("VERIFIER", server.tls_url()));
                }
                running.push(server);
            }
            assert_eq!(running.len(), 2, "the servers block starts both servers");
            outputs.push(String::new());
            continue;
        }
        let out = run(&mut shell(&work, &script));
        let output = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(
            code(&out),
            0,
            "README runnable block {index} failed:\n{script}\n--- output:\n{output}"
        );
        eprintln!("--- block {index}:\n{output}");
        outputs.push(output);
    }

    // What the blocks' comments promise.
    let all_output = outputs.concat();
    for promised in [
        "certs/ca.pem",
        "certs/admin.pem",
        "PASS: node gpu-host-1",
        "exit 1: no baseline assigned to hgx yet",
        "wrote hgx-h100.toml",
        "hgx-h100.toml: baseline \"hgx-h100\",",
        "group hgx now uses baseline hgx-h100",
        "status      affirming",
        "PASS: node gpu-host-1 - all 13 checks passed",
        "VALID result for gpu-host-1 - status affirming",
        "checkpoints verified, 0 entries after the newest",
        "\"missing_blobs\": []",
    ] {
        assert!(
            all_output.contains(promised),
            "no {promised:?} in the README blocks' output:\n{all_output}"
        );
    }
    assert!(work.join("hgx-h100.toml").is_file());
    assert!(work.join("bundle.json").is_file());
    let token = std::fs::read_to_string(work.join("result.jwt")).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "result.jwt: {token}");
}
