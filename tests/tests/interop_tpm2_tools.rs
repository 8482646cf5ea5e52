//! Interop both ways with tpm2-tools against a real software TPM:
//! quotes made by `tpm2_quote` verify with `vigil quote verify`, and the files written by
//! `vigil-attester quote` pass `tpm2_checkquote`.

use std::process::Command;

use vigil_e2e::*;

const NONCE: &str = "5eed0f1a5eed0f1a5eed0f1a5eed0f1a";

/// Makes an EK, an AK of `key_alg`/`scheme`, and a quote over sha256:0,1,2,16,23 with NONCE.
fn tpm2_tools_quote(tpm: &Swtpm, dir: &TempDir, key_alg: &str, scheme: &str) {
    let d = dir.path();
    tpm2(
        tpm,
        d,
        "tpm2_createek",
        &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
    );
    tpm2(tpm, d, "tpm2_flushcontext", &["-t"]);
    tpm2(
        tpm,
        d,
        "tpm2_createak",
        &[
            "-C", "ek.ctx", "-c", "ak.ctx", "-G", key_alg, "-g", "sha256", "-s", scheme, "-u",
            "ak.pem", "-f", "pem", "-n", "ak.name",
        ],
    );
    tpm2(tpm, d, "tpm2_flushcontext", &["-t"]);
    tpm2(
        tpm,
        d,
        "tpm2_readpublic",
        &["-c", "ak.ctx", "-f", "tss", "-o", "ak.tss.pub"],
    );
    tpm2(tpm, d, "tpm2_flushcontext", &["-t"]);
    tpm2(
        tpm,
        d,
        "tpm2_pcrextend",
        &["23:sha256=b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"],
    );
    tpm2(
        tpm,
        d,
        "tpm2_quote",
        &[
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,1,2,16,23",
            "-q",
            NONCE,
            "-g",
            "sha256",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-o",
            "pcrs.serialized",
        ],
    );
    tpm2(tpm, d, "tpm2_flushcontext", &["-t"]);
    tpm2(
        tpm,
        d,
        "tpm2_quote",
        &[
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,1,2,16,23",
            "-q",
            NONCE,
            "-g",
            "sha256",
            "-m",
            "quote2.msg",
            "-s",
            "quote2.sig",
            "-o",
            "pcrs.values",
            "-F",
            "values",
        ],
    );
    tpm2(tpm, d, "tpm2_flushcontext", &["-t"]);
}

fn vigil_quote_verify(
    dir: &std::path::Path,
    ak: &str,
    msg: &str,
    sig: &str,
    pcrs: &str,
    nonce: &str,
) -> std::process::Output {
    vigil(&[
        "quote",
        "verify",
        "--ak-pub",
        dir.join(ak).to_str().unwrap(),
        "--message",
        dir.join(msg).to_str().unwrap(),
        "--signature",
        dir.join(sig).to_str().unwrap(),
        "--pcrs",
        dir.join(pcrs).to_str().unwrap(),
        "--nonce",
        nonce,
    ])
}

fn tpm2_tools_quotes_verify_in_vigil(key_alg: &str, scheme: &str) {
    require_tools(&["swtpm", "tpm2_quote"]);
    let tpm = Swtpm::start();
    let dir = TempDir::new("interop");
    tpm2_tools_quote(&tpm, &dir, key_alg, scheme);

    for ak in ["ak.pem", "ak.tss.pub"] {
        let out = vigil_quote_verify(
            dir.path(),
            ak,
            "quote.msg",
            "quote.sig",
            "pcrs.serialized",
            NONCE,
        );
        assert_eq!(code(&out), 0, "{ak}: {}{}", stdout(&out), stderr(&out));
    }
    let out = vigil_quote_verify(
        dir.path(),
        "ak.pem",
        "quote2.msg",
        "quote2.sig",
        "pcrs.values",
        NONCE,
    );
    assert_eq!(
        code(&out),
        0,
        "values format: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // A foreign nonce fails, naming the qualifying-data check.
    let out = vigil_quote_verify(
        dir.path(),
        "ak.pem",
        "quote.msg",
        "quote.sig",
        "pcrs.serialized",
        "00",
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("qualifying"), "{}", stdout(&out));

    // A flipped byte in the message fails.
    let mut message = std::fs::read(dir.join("quote.msg")).unwrap();
    let last = message.len() - 1;
    message[last] ^= 1;
    std::fs::write(dir.join("tampered.msg"), &message).unwrap();
    let out = vigil_quote_verify(
        dir.path(),
        "ak.pem",
        "tampered.msg",
        "quote.sig",
        "pcrs.serialized",
        NONCE,
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));

    // A PCR value that differs from the quoted one fails the digest check.
    let mut values = std::fs::read(dir.join("pcrs.values")).unwrap();
    values[0] ^= 1;
    std::fs::write(dir.join("tampered.values"), &values).unwrap();
    let out = vigil_quote_verify(
        dir.path(),
        "ak.pem",
        "quote2.msg",
        "quote2.sig",
        "tampered.values",
        NONCE,
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("pcr"), "{}", stdout(&out));
}

#[test]
fn tpm2_tools_ecc_quote_verifies_in_vigil() {
    tpm2_tools_quotes_verify_in_vigil("ecc", "ecdsa");
}

#[test]
fn tpm2_tools_rsa_quote_verifies_in_vigil() {
    tpm2_tools_quotes_verify_in_vigil("rsa", "rsassa");
}

fn vigil_attester_quote_passes_tpm2_checkquote(ak_alg: &str) {
    require_tools(&["swtpm", "tpm2_checkquote"]);
    let tpm = Swtpm::start();
    let dir = TempDir::new("attester-quote");
    let out = run(Command::new(binary("vigil-attester"))
        .args(["quote", "--tcti"])
        .arg(tpm.tcti())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args([
            "--ak-alg",
            ak_alg,
            "--nonce",
            NONCE,
            "--pcrs",
            "0,1,2,3,4,5,6,7,16,23",
            "--out",
        ])
        .arg(dir.join("out"))
        .env("TSS2_LOG", "all+none"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    drop(tpm); // tpm2_checkquote needs no TPM: it is an offline check.

    let check = |nonce: &str| {
        run(Command::new("tpm2_checkquote")
            .current_dir(dir.join("out"))
            .args([
                "-u",
                "ak.pub.pem",
                "-m",
                "quote.msg",
                "-s",
                "quote.sig",
                "-f",
                "quote.pcrs",
                "-q",
                nonce,
            ]))
    };
    let out = check(NONCE);
    assert_eq!(
        code(&out),
        0,
        "tpm2_checkquote: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_ne!(
        code(&check("00112233")),
        0,
        "a wrong nonce must fail tpm2_checkquote"
    );

    // And Vigil agrees on the same files, with both AK formats.
    for ak in ["ak.pub.pem", "ak.pub.tss"] {
        let out = vigil_quote_verify(
            &dir.join("out"),
            ak,
            "quote.msg",
            "quote.sig",
            "quote.pcrs",
            NONCE,
        );
        assert_eq!(code(&out), 0, "{ak}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn vigil_attester_ecc_quote_passes_tpm2_checkquote() {
    vigil_attester_quote_passes_tpm2_checkquote("ecc");
}

#[test]
fn vigil_attester_rsa_quote_passes_tpm2_checkquote() {
    vigil_attester_quote_passes_tpm2_checkquote("rsa");
}
