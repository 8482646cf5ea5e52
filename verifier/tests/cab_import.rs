//! `vigil certs import-tpm-cab` on a cabinet laid out like TrustedTpm.cab (built with GNOME's
//! gcab, MSZIP): vendor folders are kept, only certificate files are written, and the result
//! loads as an EK trust directory. The vendor certificates are real ones from the fixtures
//! (read in place, copied only into a temporary directory). The cabinet reader itself is
//! tested in `verifier/cab`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_verifier::registration::cab::import_trust_cabinet;

fn gcab() -> bool {
    let present = Command::new("gcab").arg("--version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but gcab is missing (tests/scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: gcab is not installed (apt-get install gcab)");
    }
    present
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-cab-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Vendor-folder layout like TrustedTpm.cab, with real TPM vendor CA certificates as DER.
fn inputs(dir: &Path, root: &Path) -> Vec<(String, Vec<u8>)> {
    let pem =
        std::fs::read(root.join("tpm-ca-certificates/MIRROR.tpm-ca-certificates.pem")).unwrap();
    let certificates = vigil_verifier::registration::trust::certificates_in(&pem);
    assert!(certificates.len() >= 3);
    let mut files = vec![
        (
            "Infineon/RootCA/Infineon OPTIGA(TM) RSA Root CA.cer".to_owned(),
            certificates[0].clone(),
        ),
        (
            "NuvotonTPM/RootCA/NTC TPM EK Root CA 01.cer".to_owned(),
            certificates[1].clone(),
        ),
        (
            "STMicro/IntermediateCA/STM TPM EK Intermediate CA 05.crt".to_owned(),
            certificates[2].clone(),
        ),
        (
            "version.txt".to_owned(),
            b"TrustedTpm test cabinet\n".to_vec(),
        ),
    ];
    // Large enough for many 32 KiB MSZIP blocks: compressible text, then noise.
    let mut big: Vec<u8> = b"a line that compresses well\n".repeat(8000);
    let mut state = 0x1234_5678u32;
    big.extend((0..120_000).map(|_| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    }));
    files.push(("big.bin".to_owned(), big));
    for (name, data) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    files
}

fn make_cabinet(dir: &Path, names: &[String], compress: bool) -> Vec<u8> {
    let cab = dir.join(if compress { "zip.cab" } else { "plain.cab" });
    let mut command = Command::new("gcab");
    command
        .current_dir(dir)
        .arg(if compress { "-cz" } else { "-c" })
        .arg(&cab)
        .args(names);
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(cab).unwrap()
}

#[test]
fn the_trust_import_keeps_vendor_folders_and_only_certificates() {
    if !gcab() {
        return;
    }
    let Some(root) = common::fixtures("tpm-ca-certificates") else {
        return;
    };
    let dir = temp_dir("import");
    let wanted = inputs(&dir, &root);
    let names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let cabinet = make_cabinet(&dir, &names, true);
    let out = dir.join("trust");
    let report = import_trust_cabinet(&cabinet, &out, false).unwrap();
    assert_eq!(report.imported.len(), 3, "{report:?}");
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert!(
        out.join("Infineon/RootCA/Infineon OPTIGA(TM) RSA Root CA.cer")
            .exists()
    );
    let trust = vigil_verifier::registration::trust::TrustStore::load_dir(&out).unwrap();
    assert_eq!(trust.anchor_count() + trust.intermediate_count(), 3);
    // Importing again is idempotent; another cabinet with other content is refused.
    assert!(import_trust_cabinet(&cabinet, &out, false).is_ok());
    std::fs::write(
        out.join("Infineon/RootCA/Infineon OPTIGA(TM) RSA Root CA.cer"),
        b"x",
    )
    .unwrap();
    assert!(
        import_trust_cabinet(&cabinet, &out, false)
            .unwrap_err()
            .contains("--force")
    );
    assert!(import_trust_cabinet(&cabinet, &out, true).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
