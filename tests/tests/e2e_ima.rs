//! IMA end to end on a software TPM: a real IMA list (the Supermicro H12SSL's, from the
//! fixtures, behind a boot_aggregate for this swtpm's boot) and a measured-boot log, extended
//! into the swtpm as firmware and kernel would; the node registered; a baseline captured from
//! it; then a file outside the allow-list, and a list whose digest was rewritten, each fail
//! naming what they must. Re-attestations send only the entries after the verified ones.

use vigil_e2e::*;

const H12SSL_LIST: &str = "immune-guard-oss/test-raw/h12ssl.binary_measurements";
/// Entries of the H12SSL list its quoted PCR 10 covers.
const H12SSL_QUOTED: usize = 2364;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn claim_int(report: &serde_json::Value, name: &str) -> i64 {
    report["host_claims"]["claims"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .and_then(|c| c["value"]["value"].as_i64())
        .unwrap_or_else(|| panic!("no claim {name}"))
}

/// Firmware: shim and the kernel command line (SHA-256), and their log.
fn boot(tpm: &Swtpm, dir: &std::path::Path) -> std::path::PathBuf {
    firmware_boot(
        tpm,
        dir,
        &[b"shim 15.8"],
        "root=/dev/sda1 ro quiet ima_policy=tcb",
    )
}

/// The kernel: a boot_aggregate over this boot's PCRs 0-9 (SHA-256), then the H12SSL's
/// measurements, extended into PCR 10. Returns the list and the paths of its violations.
fn kernel_measurements(
    tpm: &Swtpm,
    dir: &std::path::Path,
    real_list: &[u8],
) -> (Vec<u8>, Vec<String>) {
    let pcrs = dir.join("pcrs-0-9.bin");
    tpm2(
        tpm,
        dir,
        "tpm2_pcrread",
        &["sha256:0,1,2,3,4,5,6,7,8,9", "-o", pcrs.to_str().unwrap()],
    );
    let aggregate = sha256(&std::fs::read(&pcrs).unwrap());
    let parsed = vigil_ima::parse(real_list, vigil_ima::HashAlg::Sha1, 0).unwrap();
    let vigil_ima::Location::Offset(second) = parsed.entries[1].location else {
        panic!("binary list")
    };
    let vigil_ima::Location::Offset(end) = parsed.entries[H12SSL_QUOTED].location else {
        panic!("binary list")
    };
    let mut list = ima_ng_entry("boot_aggregate", "sha256", &aggregate);
    list.extend_from_slice(&real_list[second..end]);
    extend_ima_list(tpm, dir, &list);
    let violations = parsed.entries[1..H12SSL_QUOTED]
        .iter()
        .filter(|e| e.is_violation())
        .map(|e| vigil_ima::decode(e).unwrap().name)
        .collect();
    (list, violations)
}

/// Measures one more file: appends its entry to the list and extends it.
fn measure(
    tpm: &Swtpm,
    dir: &std::path::Path,
    list_path: &std::path::Path,
    path: &str,
    digest: &[u8],
) {
    let entry = ima_ng_entry(path, "sha1", digest);
    extend_ima_list(tpm, dir, &entry);
    let mut list = std::fs::read(list_path).unwrap();
    list.extend(entry);
    std::fs::write(list_path, list).unwrap();
}

#[test]
fn ima_lists_are_appraised_incrementally_and_unknown_or_rewritten_files_fail() {
    require_tools(&["tpm2_pcrextend", "tpm2_pcrread"]);
    let Some(fixtures) = fixtures("immune-guard-oss") else {
        return;
    };
    let real_list = std::fs::read(fixtures.join(H12SSL_LIST)).unwrap();
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new("ima");
    let event_log = boot(&tpm, dir.path());
    let (list, violations) = kernel_measurements(&tpm, dir.path(), &real_list);
    assert_eq!(violations.len(), 2);
    let list_path = dir.join("binary_runtime_measurements");
    std::fs::write(&list_path, &list).unwrap();
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "h12ssl",
        &[
            "--event-log",
            event_log.to_str().unwrap(),
            "--ima-log",
            list_path.to_str().unwrap(),
        ],
    );
    let db = dir.join("vigil.db");
    let db = db.to_str().unwrap();
    // Before registration the node's AK is unknown: its list may replay, but nothing of it is
    // kept to be continued later.
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        db,
        "--json",
        "--allow-no-baseline",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let store = vigil_verifier::store::Store::open(std::path::Path::new(db)).unwrap();
    assert!(store.ima_state("h12ssl").unwrap().is_none());
    drop(store);
    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--group",
        "ima-hosts",
        "--db",
        db,
        "--ek-roots",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let verify = || vigil(&["verify", "--node", &attester.address, "--db", db, "--json"]);

    // A baseline captured from the node: its whole list becomes the allow-list. The reviewer
    // excludes the two files the kernel recorded as violations (content unknown).
    let baseline = dir.join("ima-hosts.toml");
    let out = vigil(&[
        "baseline",
        "capture",
        "--node",
        &attester.address,
        "--db",
        db,
        "--name",
        "ima-hosts",
        "--out",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let captured = std::fs::read_to_string(&baseline).unwrap();
    assert!(captured.contains("[ima.allow]"), "{captured}");
    assert!(
        captured.contains("\"/usr/bin/sh\" = [\"sha1:"),
        "{captured}"
    );
    let excludes: Vec<String> = violations.iter().map(|p| format!("{p:?}")).collect();
    let reviewed = captured.replace(
        "boot_aggregate = true\n",
        &format!(
            "boot_aggregate = true\nexclude = [{}]\n",
            excludes.join(", ")
        ),
    );
    std::fs::write(&baseline, reviewed).unwrap();
    for args in [
        vec![
            "baseline",
            "put",
            baseline.to_str().unwrap(),
            "--author",
            "e2e",
            "--reason",
            "golden h12ssl",
        ],
        vec![
            "baseline",
            "assign",
            "ima-hosts",
            "ima-hosts",
            "--author",
            "e2e",
            "--reason",
            "rollout",
        ],
    ] {
        let mut args = args;
        args.extend(["--db", db]);
        let out = vigil(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}{}", stdout(&out), stderr(&out));
    }

    // First attestation under the baseline: the whole list (a new baseline judges it all).
    let out = verify();
    let report = json(&out);
    assert_eq!(code(&out), 0, "{report:#}");
    assert_eq!(claim_int(&report, "ima.entries"), H12SSL_QUOTED as i64);
    assert_eq!(claim_int(&report, "ima.entries_new"), H12SSL_QUOTED as i64);
    let parse = check(&report, "ima.parse")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(parse.starts_with("2364 entries from entry 0"), "{parse}");
    eprintln!("first attestation: {parse}");
    let boot_aggregate = report["appraisal"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "ima.boot_aggregate")
        .unwrap();
    assert_eq!(boot_aggregate["outcome"], "pass", "{boot_aggregate:#}");

    // Next: nothing new measured, nothing but the quote sent.
    let out = verify();
    let report = json(&out);
    assert_eq!(code(&out), 0, "{report:#}");
    let parse = check(&report, "ima.parse")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(parse.starts_with("0 entries from entry 2364"), "{parse}");
    assert_eq!(claim_int(&report, "ima.entries_new"), 0);
    eprintln!("second attestation: {parse}");

    // An allowed file measured again: one new entry sent, allowed.
    let sh = vigil_ima::parse(&list, vigil_ima::HashAlg::Sha1, 0)
        .unwrap()
        .entries
        .iter()
        .map(|e| vigil_ima::decode(e).unwrap())
        .find(|m| m.name == "/usr/bin/sh")
        .unwrap();
    measure(&tpm, dir.path(), &list_path, "/usr/bin/sh", &sh.digest);
    let out = verify();
    let report = json(&out);
    assert_eq!(code(&out), 0, "{report:#}");
    let parse = check(&report, "ima.parse")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(parse.starts_with("1 entries from entry 2364"), "{parse}");
    assert_eq!(claim_int(&report, "ima.entries"), 2365);
    eprintln!("third attestation: {parse}");
    // That verdict re-appraises from its stored evidence alone: the incremental list is
    // replayed from the state the verdict recorded.
    let out = vigil(&["audit", "list", "--db", db, "--kind", "verdict", "--json"]);
    let entries = json(&out);
    let last = entries.as_array().unwrap().last().unwrap()["index"]
        .as_u64()
        .unwrap();
    let out = vigil(&["audit", "reappraise", &last.to_string(), "--db", db]);
    assert!(
        stdout(&out).starts_with("AGREES"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // A file outside the allow-list: the verdict fails naming the file and its entry, and
    // keeps failing (the verified state does not move past it).
    measure(
        &tpm,
        dir.path(),
        &list_path,
        "/tmp/.x/implant.so",
        &[0x5a; 20],
    );
    for attempt in 0..2 {
        let out = verify();
        let report = json(&out);
        assert_eq!(code(&out), 1, "{report:#}");
        let parse = check(&report, "ima.parse")["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            parse.starts_with("1 entries from entry 2365"),
            "attempt {attempt}: {parse}"
        );
        let failure = report["appraisal"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == "ima.allowlist" && r["outcome"] != "pass")
            .unwrap_or_else(|| panic!("{report:#}"));
        assert_eq!(failure["claim"], "ima.entries[2365]", "{failure:#}");
        assert!(
            failure["found"]
                .as_str()
                .unwrap()
                .contains("/tmp/.x/implant.so is not in the allow-list"),
            "{failure:#}"
        );
        assert_eq!(failure["source"]["entry"], 2365, "{failure:#}");
    }
    let out = vigil(&["verify", "--node", &attester.address, "--db", db]);
    assert!(stdout(&out).contains("implant.so"), "{}", stdout(&out));

    // A digest rewritten inside the list (entry 100): a verifier that sees the whole list
    // names the entry; the quote cannot be matched by any prefix.
    let parsed = vigil_ima::parse(&list, vigil_ima::HashAlg::Sha1, 0).unwrap();
    let vigil_ima::Location::Offset(at) = parsed.entries[100].location else {
        panic!()
    };
    let digest_end = at + 4 + 20 + 4 + "ima-ng".len() + 4 + 4 + "sha1:\0".len() + 20;
    let mut tampered = std::fs::read(&list_path).unwrap();
    tampered[digest_end - 1] ^= 0x01;
    std::fs::write(&list_path, &tampered).unwrap();
    let fresh = dir.join("other.db");
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        fresh.to_str().unwrap(),
        "--json",
        "--tofu",
        "--allow-no-baseline",
    ]);
    let report = json(&out);
    assert_eq!(code(&out), 1, "{report:#}");
    let replay = check(&report, "ima.replay");
    assert_eq!(replay["passed"], false);
    assert!(
        replay["detail"].as_str().unwrap().contains("entry 100"),
        "{replay:#}"
    );
    // The template hash rewritten too: then only the replay against the quote catches it.
    let mut rehashed = tampered.clone();
    let data_start = at + 4 + 20 + 4 + "ima-ng".len() + 4;
    let data_len =
        u32::from_le_bytes(tampered[data_start - 4..data_start].try_into().unwrap()) as usize;
    let new_hash = vigil_ima::HashAlg::Sha1.digest(&tampered[data_start..data_start + data_len]);
    rehashed[at + 4..at + 24].copy_from_slice(&new_hash);
    std::fs::write(&list_path, &rehashed).unwrap();
    let out = vigil(&[
        "verify",
        "--node",
        &attester.address,
        "--db",
        fresh.to_str().unwrap(),
        "--json",
        "--tofu",
        "--allow-no-baseline",
    ]);
    let report = json(&out);
    assert_eq!(code(&out), 1, "{report:#}");
    let replay = check(&report, "ima.replay");
    assert!(
        replay["detail"]
            .as_str()
            .unwrap()
            .contains("no prefix of the"),
        "{replay:#}"
    );
}
