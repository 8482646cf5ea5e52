//! `vigil certs import-tpm-cab`: the certificate files of Microsoft's TrustedTpm.cab (TPM
//! vendor root and intermediate CAs, which operators download themselves) written into an EK
//! trust directory. The cabinet itself is read by `vigil-cab` (MS-CAB, none/MSZIP, checksums,
//! bounds, safe names).

pub use vigil_cab::{CabError, CabFile, read_cabinet};

/// Largest cabinet read (TrustedTpm.cab is a few hundred KiB).
pub const MAX_CABINET_BYTES: usize = 64 * 1024 * 1024;

/// What an import did, file by file.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    /// Files written, with the number of certificates each holds.
    pub imported: Vec<(String, usize)>,
    /// Files left out, and why.
    pub skipped: Vec<(String, String)>,
}

/// Writes the certificate files of a trust cabinet (TrustedTpm.cab) below `out_dir`, keeping
/// its vendor folders, for `vigil serve --ek-roots`. Files that hold no certificate are
/// skipped and listed; an existing file with other content is refused unless `force`.
pub fn import_trust_cabinet(
    bytes: &[u8],
    out_dir: &std::path::Path,
    force: bool,
) -> Result<ImportReport, String> {
    let files = read_cabinet(bytes).map_err(|e| e.to_string())?;
    let mut report = ImportReport::default();
    for file in files {
        let certificates = super::trust::certificates_in(&file.data)
            .iter()
            .filter(|der| {
                use x509_parser::prelude::FromDer;
                x509_parser::certificate::X509Certificate::from_der(der).is_ok()
            })
            .count();
        if certificates == 0 {
            report
                .skipped
                .push((file.name, "holds no X.509 certificate".into()));
            continue;
        }
        let mut path = out_dir.to_path_buf();
        for part in file.name.split('/') {
            path.push(part);
        }
        // The trust directory loader reads .pem/.crt/.cer/.der; keep that visible.
        let known = ["pem", "crt", "cer", "der"];
        if !path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| known.contains(&e.to_ascii_lowercase().as_str()))
        {
            path.set_extension("cer");
        }
        if !force
            && let Ok(existing) = std::fs::read(&path)
            && existing != file.data
        {
            return Err(format!(
                "{} exists with other content (use --force to replace it)",
                path.display()
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &file.data).map_err(|e| format!("{}: {e}", path.display()))?;
        report.imported.push((file.name, certificates));
    }
    Ok(report)
}
