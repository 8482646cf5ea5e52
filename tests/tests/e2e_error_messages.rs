//! Errors say what is wrong and what to do (issue #15): TLS on one side only, a certificate
//! directory from another CA, an unreachable attester, a TPM that cannot be opened, and a
//! quote checked without its nonce.

use std::process::Command;

use vigil_e2e::*;

fn dev_certs(dir: &TempDir, name: &str) -> String {
    let path = dir.join(name);
    let out = vigil(&["dev-certs", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    path.to_str().unwrap().to_owned()
}

/// `vigil verify --address 127.0.0.1:1` through `url` with `extra` arguments: exit 2 and stderr.
fn verify_error(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["verify", "--address", "127.0.0.1:1", "--verifier", url];
    args.extend_from_slice(extra);
    let out = vigil(&args);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    stderr(&out)
}

#[test]
fn client_side_tls_mistakes_are_explained() {
    let dir = TempDir::new("errmsg-tls");
    let certs = dev_certs(&dir, "certs");
    let foreign = dev_certs(&dir, "foreign");
    // The server's CA, a client certificate from another CA.
    let mixed = dir.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    for entry in std::fs::read_dir(&foreign).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, mixed.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        std::path::Path::new(&certs).join("ca.pem"),
        mixed.join("ca.pem"),
    )
    .unwrap();
    let mixed = mixed.to_str().unwrap();

    let verifier = start_verifier(
        &dir.join("v.db"),
        &["--tls-dir", &certs, "--poll-interval", "0"],
    );
    let url = verifier.tls_url();
    let plain_url = url.replacen("https://", "http://", 1);

    let message = verify_error(&plain_url, &[]);
    assert!(
        message.contains("https://") && message.contains("--tls-dir"),
        "{message}"
    );
    assert!(!message.contains("Unknown error"), "{message}");

    let message = verify_error(&url, &[]);
    assert!(
        message.contains("no --tls-dir was given") && message.contains("--tls-dir DIR"),
        "{message}"
    );

    let message = verify_error(&url, &["--tls-dir", &foreign]);
    assert!(
        message.contains("not issued by the CA in --tls-dir"),
        "{message}"
    );
    assert!(!message.contains("transport error"), "{message}");

    let message = verify_error(&url, &["--tls-dir", mixed]);
    assert!(
        message.contains("rejected this client certificate"),
        "{message}"
    );

    // A working certificate directory reaches the verifier (and then the closed port).
    let message = verify_error(&url, &["--tls-dir", &certs]);
    assert!(
        message.contains("cannot connect to 127.0.0.1:1: connection refused")
            && message.contains("is the attester"),
        "{message}"
    );
    verifier.stop();

    // TLS against a plaintext (--dev) server.
    let dev = start_verifier(&dir.join("d.db"), &["--poll-interval", "0"]);
    let dev_tls = dev.url().replacen("http://", "https://", 1);
    let message = verify_error(&dev_tls, &["--tls-dir", &certs]);
    assert!(message.contains("does not speak TLS"), "{message}");
    dev.stop();
}

#[test]
fn an_unreachable_attester_is_named_with_what_to_check() {
    let dir = TempDir::new("errmsg-attester");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let out = vigil(&[
        "verify",
        "--address",
        &address,
        "--db",
        dir.join("v.db").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("cannot connect to {address}: connection refused"))
            && message.contains("is the attester")
            && message.contains("running and listening there?"),
        "{message}"
    );
    assert!(!message.contains("refused GetIdentity"), "{message}");
}

#[test]
fn a_tpm_that_cannot_be_opened_names_tcti() {
    let dir = TempDir::new("errmsg-tcti");
    let port = free_port();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let out = run(Command::new(binary("vigil-attester"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--tcti", &tcti])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("TSS2_LOG"));
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("cannot open the TPM through TCTI \"{tcti}\""))
            && message.contains("connection refused")
            && message.contains("--tcti device:/dev/tpmrm0")
            && message.contains("--tcti swtpm:host="),
        "{message}"
    );
    assert!(!message.contains("ERROR:tcti"), "{message}");
}

#[test]
fn a_quote_checked_without_its_nonce_is_incomplete() {
    require_tools(&["swtpm"]);
    let tpm = Swtpm::start();
    let dir = TempDir::new("errmsg-quote");
    let nonce = "00112233445566778899aabbccddeeff";
    let out = run(Command::new(binary("vigil-attester"))
        .args(["quote", "--tcti"])
        .arg(tpm.tcti())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--nonce", nonce, "--pcrs", "0,1,2,3,7", "--out"])
        .arg(dir.join("out"))
        .env("TSS2_LOG", "all+none"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out_dir = dir.join("out");
    let file = |name: &str| out_dir.join(name).to_str().unwrap().to_owned();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "quote".to_owned(),
            "verify".to_owned(),
            "--ak-pub".to_owned(),
            file("ak.pub.pem"),
            "--message".to_owned(),
            file("quote.msg"),
            "--signature".to_owned(),
            file("quote.sig"),
            "--pcrs".to_owned(),
            file("quote.pcrs"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vigil(&args)
    };

    let out = verify(&[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("INCOMPLETE")
            && stdout(&out).contains("qualifying data not checked: no --nonce")
            && !stdout(&out).contains("PASS"),
        "{}",
        stdout(&out)
    );

    let out = verify(&["--nonce", nonce]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("PASS: quote verified"),
        "{}",
        stdout(&out)
    );

    let out = verify(&["--nonce", "00"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}
