//! What an operator installs: `vigil dev-certs --san`, the production-certificate guide
//! (`docs/production-certificates.md`, its OpenSSL commands run as written, then served and
//! called), the systemd units (`systemd-analyze verify`) and the Debian package
//! (`packaging/build-deb.sh`, checked with `dpkg-deb`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_e2e::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// `openssl x509 -noout -ext subjectAltName` of a PEM certificate.
fn subject_alt_names(cert: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(cert));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// With CI set a missing tool fails the test; otherwise the test says it was skipped.
fn tool_or_skip(tool: &str, test: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is missing and CI is set: run tests/scripts/run-tests.sh, which installs it"
    );
    eprintln!("SKIPPED {test}: {tool} is not installed (set CI to make this a failure)");
    false
}

#[test]
fn dev_certs_san_names_other_hosts_and_refuses_garbage() {
    require_tools(&["openssl"]);
    let dir = TempDir::new("devcerts-san");
    let certs = dir.join("certs");
    let out = vigil(&[
        "dev-certs",
        certs.to_str().unwrap(),
        "--san",
        "verifier.lab.example",
        "--san",
        "10.20.30.40",
        "--san",
        "fd00::7",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verifier.lab.example, 10.20.30.40, fd00::7"),
        "{}",
        stdout(&out)
    );
    let names = subject_alt_names(&certs.join("server.pem"));
    for expected in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:verifier.lab.example",
        "IP Address:10.20.30.40",
        "IP Address:FD00:0:0:0:0:0:0:7",
    ] {
        assert!(names.contains(expected), "{expected} missing from {names}");
    }
    // Client certificates are unchanged: roles only.
    let admin = subject_alt_names(&certs.join("admin.pem"));
    assert!(!admin.contains("verifier.lab.example"), "{admin}");

    for garbage in [
        "not a host",
        "*.lab.example",
        "https://verifier.lab.example",
        "1.2.3.999",
        "",
    ] {
        let target = dir.join("garbage");
        let out = vigil(&["dev-certs", target.to_str().unwrap(), "--san", garbage]);
        assert_eq!(code(&out), 2, "{garbage:?} accepted: {}", stdout(&out));
        assert!(
            stderr(&out).contains("is not a DNS name or IP address"),
            "{garbage:?}: {}",
            stderr(&out)
        );
        assert!(!target.exists(), "nothing is written for {garbage:?}");
    }
}

/// The `bash` blocks of the guide, in order, with its example names replaced by loopback ones.
fn guide_script() -> String {
    let guide = std::fs::read_to_string(repo_root().join("docs/production-certificates.md"))
        .expect("docs/production-certificates.md");
    let mut script = String::from("set -euo pipefail\n");
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```bash\n") {
        let body = &rest[start + "```bash\n".len()..];
        let end = body.find("```").expect("a closed bash block");
        script.push_str(&body[..end]);
        blocks += 1;
        rest = &body[end..][3..];
    }
    assert!(blocks >= 4, "the guide lost its command blocks ({blocks})");
    for example in [
        "DNS:verifier.example.com,IP:10.0.0.5",
        "DNS:gpu-host-1.example.com",
    ] {
        assert!(
            script.contains(example),
            "the guide no longer uses {example}"
        );
        script = script.replace(example, "DNS:localhost,IP:127.0.0.1");
    }
    script
}

#[test]
fn production_certificate_guide_works_with_vigil() {
    require_tools(&["openssl", "swtpm", "swtpm_setup"]);
    let dir = TempDir::new("prod-certs");
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let out = run(Command::new("bash")
        .arg("-c")
        .arg(guide_script())
        .current_dir(&pki));
    assert_eq!(
        code(&out),
        0,
        "the guide's commands failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let verifier_dir = pki.join("verifier-host");
    let gpu_dir = pki.join("gpu-host-1");
    let admin_dir = pki.join("admin-workstation");
    let attester_names = subject_alt_names(&gpu_dir.join("attester.pem"));
    assert!(
        attester_names.contains("URI:urn:vigil:role:attester")
            && attester_names.contains("URI:urn:vigil:node:gpu-host-1"),
        "{attester_names}"
    );

    // The verifier serves with the guide's certificates; the attester with the GPU host's.
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let verifier = start_verifier(
        &dir.join("vigil.db"),
        &[
            "--tls-dir",
            verifier_dir.to_str().unwrap(),
            "--ek-roots",
            ca.trust_dir().to_str().unwrap(),
            "--poll-interval",
            "0",
            "--allow-no-baseline",
        ],
    );
    let attester = start_attester(
        &tpm,
        &dir.join("attester-state"),
        "gpu-host-1",
        &["--tls-dir", gpu_dir.to_str().unwrap()],
    );
    let url = verifier.tls_url();
    let admin = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--verifier",
            &url,
            "--tls-dir",
            admin_dir.to_str().unwrap(),
            "--as",
            "admin",
        ]);
        vigil(&all)
    };
    let out = admin(&["baseline", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The verifier registers and attests the node, pulling with its `verifier` certificate
    // from the attester's server certificate.
    let out = admin(&["node", "register", &attester.address, "--group", "lab"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = admin(&["verify", "--node", &attester.address, "--json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // The attester certificate (role attester) may not act as an admin.
    for file in ["attester.pem", "attester-key.pem"] {
        std::fs::copy(gpu_dir.join(file), admin_dir.join(file)).unwrap();
    }
    let out = vigil(&[
        "baseline",
        "list",
        "--verifier",
        &url,
        "--tls-dir",
        admin_dir.to_str().unwrap(),
        "--as",
        "attester",
    ]);
    assert_eq!(code(&out), 2, "an attester certificate listed baselines");
    assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
}

#[test]
fn systemd_units_verify() {
    if !tool_or_skip("systemd-analyze", "systemd_units_verify") {
        return;
    }
    let dir = TempDir::new("units");
    for (unit, bin) in [
        ("vigil.service", "vigil"),
        ("vigil-attester.service", "vigil-attester"),
    ] {
        let text = std::fs::read_to_string(repo_root().join("packaging/systemd").join(unit))
            .expect("unit file");
        for hardening in [
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "EnvironmentFile=-/etc/default/vigil",
            &format!("StateDirectory={bin}"),
            &format!("ExecStart=/usr/bin/{bin} serve"),
        ] {
            assert!(text.contains(hardening), "{unit} lacks {hardening}");
        }
        assert!(
            text.lines().any(|l| l.starts_with("User=")),
            "{unit}: a dedicated user"
        );
        if bin == "vigil-attester" {
            for line in [
                "SupplementaryGroups=tss",
                "DeviceAllow=/dev/tpmrm0 rw",
                "ReadOnlyPaths=/sys/kernel/security",
            ] {
                assert!(text.contains(line), "{unit} lacks {line}");
            }
        }
        // systemd-analyze insists that ExecStart's binary exists: point it at the built one.
        let built = binary(bin);
        let text = text.replace(
            &format!("/usr/bin/{bin} "),
            &format!("{} ", built.display()),
        );
        std::fs::write(dir.join(unit), text).unwrap();
    }
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("vigil.service"))
        .arg(dir.join("vigil-attester.service")));
    assert_eq!(
        code(&out),
        0,
        "systemd-analyze verify:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    let noise = stderr(&out);
    assert!(
        !noise.contains("vigil"),
        "systemd-analyze warns about the units:\n{noise}"
    );
}

#[test]
fn debian_package_holds_binaries_units_docs_and_roots() {
    require_tools(&["dpkg-deb", "dpkg"]);
    // Both binaries must be built (the package is made from them).
    binary("vigil");
    binary("vigil-attester");
    let dir = TempDir::new("deb");
    let out = run(Command::new("bash")
        .arg(repo_root().join("packaging/build-deb.sh"))
        .arg(bin_dir())
        .arg(dir.path())
        .env("VIGIL_DEB_COMPRESSION", "gzip"));
    assert_eq!(code(&out), 0, "build-deb.sh: {}", stderr(&out));
    let deb = PathBuf::from(stdout(&out).trim());
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")))
        .trim()
        .to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb,
        dir.join(&format!("vigil_{version}_{arch}.deb")),
        "package name"
    );

    let out = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let contents = stdout(&out);
    for path in [
        "./usr/bin/vigil",
        "./usr/bin/vigil-attester",
        "./lib/systemd/system/vigil.service",
        "./lib/systemd/system/vigil-attester.service",
        "./usr/share/doc/vigil/copyright",
        "./usr/share/doc/vigil/README.md",
        "./usr/share/vigil/certs/nvidia/verifier_device_root.pem",
        "./usr/share/vigil/certs/nvidia/verifier_RIM_root.pem",
    ] {
        assert!(
            contents.lines().any(|line| line.ends_with(path)),
            "{path} missing from the package:\n{contents}"
        );
    }
    assert!(
        contents
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with("./usr/bin/vigil")),
        "binaries are root-owned and executable:\n{contents}"
    );

    let field = |name: &str| {
        let out = run(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    assert_eq!(field("Package"), "vigil");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), arch);
    assert!(!field("Maintainer").is_empty());
    assert!(!field("Description").is_empty());
    let depends = field("Depends");
    for library in [
        "libtss2-esys",
        "libtss2-tctildr",
        "libtss2-mu",
        "libtss2-sys",
    ] {
        assert!(
            depends.contains(library),
            "Depends lacks {library}: {depends}"
        );
    }
}
