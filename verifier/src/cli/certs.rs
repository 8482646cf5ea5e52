//! `vigil certs import-tpm-cab` and `vigil dev-certs`.

use std::path::PathBuf;

use clap::Subcommand;
use vigil_verifier::report::Verdict;

use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum CertsCommand {
    /// Extract Microsoft's TrustedTpm.cab (downloaded by you) into a directory for --ek-roots.
    ImportTpmCab {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Replace files that exist with other content.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn import_tpm_cab(
    file: &std::path::Path,
    out: &std::path::Path,
    force: bool,
) -> Result<Verdict, AnyError> {
    use vigil_verifier::registration::cab;
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    if size > cab::MAX_CABINET_BYTES as u64 {
        return Err(format!("{}: {size} bytes is over the cabinet limit", file.display()).into());
    }
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let report = cab::import_trust_cabinet(&bytes, out, force)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    for (name, count) in &report.imported {
        println!(
            "imported {name} ({count} certificate{})",
            if *count == 1 { "" } else { "s" }
        );
    }
    for (name, reason) in &report.skipped {
        println!("skipped  {name}: {reason}");
    }
    // Prove the result loads the way `vigil serve --ek-roots` will load it.
    let trust = vigil_verifier::registration::trust::TrustStore::load_dir(out)?;
    println!(
        "{} files imported into {} ({} skipped); as an EK trust directory: {} roots, {} intermediates",
        report.imported.len(),
        out.display(),
        report.skipped.len(),
        trust.anchor_count(),
        trust.intermediate_count()
    );
    Ok(Verdict::Pass)
}

pub(crate) fn dev_certs(
    dir: &std::path::Path,
    force: bool,
    sans: &[vigil_tls::ServerName],
) -> Result<Verdict, AnyError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let validity = vigil_tls::DevCertValidity::one_year_from(std::time::SystemTime::now());
    let written = vigil_tls::write_dev_certs_with_names(dir, force, validity, sans)?;
    for path in &written {
        println!("{}", path.display());
    }
    let mut names: Vec<String> = vigil_tls::ServerName::defaults()
        .iter()
        .map(ToString::to_string)
        .collect();
    for name in sans.iter().map(ToString::to_string) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    println!(
        "development CA and certificates in {} (server: {}; one client certificate per role).\n\
         Try: vigil serve --tls-dir {0} ; vigil-attester serve --tls-dir {0} ; vigil verify --verifier https://localhost:7444 --tls-dir {0} ...",
        dir.display(),
        names.join(", ")
    );
    Ok(Verdict::Pass)
}
