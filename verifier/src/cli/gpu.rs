//! `vigil gpu …`: NVIDIA GPU / NVSwitch attestation reports, offline.

use std::path::PathBuf;

use clap::Subcommand;
use vigil_verifier::report::Verdict;

use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum GpuCommand {
    /// Verify a report: parse, signature, certificate chain to NVIDIA's root, FWID, nonce, and
    /// with --rim-dir the measurements against NVIDIA's signed reference manifests.
    Verify {
        /// The report: hex text as NVIDIA's tools write it, or raw bytes.
        #[arg(long)]
        report: PathBuf,
        /// The device certificate chain, PEM.
        #[arg(long)]
        cert_chain: PathBuf,
        /// Directory of RIMs (SWID tags); without it, measurements are not appraised.
        #[arg(long, env = "VIGIL_RIM_DIR")]
        rim_dir: Option<PathBuf>,
        /// Directory of device identity root certificates (PEM/DER) trusted instead of
        /// NVIDIA's pinned root.
        #[arg(long, env = "VIGIL_GPU_ROOTS")]
        gpu_roots: Option<PathBuf>,
        /// Directory of RIM signing root certificates (PEM/DER) trusted instead of NVIDIA's
        /// pinned RIM root.
        #[arg(long, env = "VIGIL_RIM_ROOTS")]
        rim_roots: Option<PathBuf>,
        /// The expected 32-byte nonce, hex.
        #[arg(long)]
        nonce: Option<String>,
        /// Verification time, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print every decoded field of a report.
    Show {
        #[arg(long)]
        report: PathBuf,
    },
}

/// The roots of `--gpu-roots` and `--rim-roots`; each absent one keeps NVIDIA's pinned root.
pub(crate) fn load_gpu_roots(
    gpu_roots: Option<&std::path::Path>,
    rim_roots: Option<&std::path::Path>,
) -> Result<vigil_nvidia::roots::GpuRoots, AnyError> {
    let load = |flag: &str, dir: Option<&std::path::Path>| {
        dir.map(|dir| vigil_nvidia::roots::load_roots_dir(dir).map_err(|e| format!("{flag}: {e}")))
            .transpose()
    };
    Ok(vigil_nvidia::roots::GpuRoots {
        device: load("--gpu-roots", gpu_roots)?,
        rim: load("--rim-roots", rim_roots)?,
    })
}

/// Largest report or certificate chain file read.
const MAX_GPU_FILE_BYTES: u64 = 1024 * 1024;

pub(crate) fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, AnyError> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_GPU_FILE_BYTES {
        return Err(format!(
            "{}: {size} bytes exceeds {MAX_GPU_FILE_BYTES}",
            path.display()
        )
        .into());
    }
    Ok(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
}

pub(crate) fn gpu_command(command: GpuCommand) -> Result<Verdict, AnyError> {
    match command {
        GpuCommand::Show { report } => {
            let parsed = vigil_nvidia::parse_report_input(&read_bounded(&report)?)
                .map_err(|e| format!("{}: {e}", report.display()))?;
            print!("{parsed}");
            Ok(Verdict::Pass)
        }
        GpuCommand::Verify {
            report,
            cert_chain,
            rim_dir,
            gpu_roots,
            rim_roots,
            nonce,
            at,
            json,
        } => {
            let roots = load_gpu_roots(gpu_roots.as_deref(), rim_roots.as_deref())?;
            let report = read_bounded(&report)?;
            let chain = String::from_utf8(read_bounded(&cert_chain)?)
                .map_err(|_| format!("{}: not PEM text", cert_chain.display()))?;
            let nonce = nonce
                .map(|text| {
                    hex::decode(text.trim())
                        .ok()
                        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                        .ok_or_else(|| format!("--nonce must be 32 bytes of hex, got {text:?}"))
                })
                .transpose()?;
            let at = match at {
                Some(text) => vigil_nvidia::parse_rfc3339(&text)?,
                None => vigil_verifier::attest::unix_now(),
            };
            let rims = rim_dir
                .map(|dir| {
                    vigil_nvidia::RimStore::load_dir(&dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))
                })
                .transpose()?;
            let options = vigil_nvidia::VerifyOptions {
                expected_nonce: nonce.as_ref(),
                rims: rims.as_ref(),
                device_roots: roots.device.as_deref(),
                rim_roots: roots.rim.as_deref(),
                ..vigil_nvidia::VerifyOptions::at(at)
            };
            let result = vigil_nvidia::verify_gpu_evidence_with(&report, &chain, &options);
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{result}");
            }
            // Incomplete means nothing failed but something was not checked (no nonce, no
            // RIMs); the output says what. Only a failed check is a failure.
            Ok(match result.verdict {
                vigil_nvidia::Verdict::Fail => Verdict::Fail,
                _ => Verdict::Pass,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_flags_name_themselves_and_the_file_in_errors() {
        let dir = std::env::temp_dir().join(format!("vigil-cli-roots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let err = load_gpu_roots(Some(&dir), None).unwrap_err().to_string();
        assert!(
            err.starts_with("--gpu-roots") && err.contains("no certificate"),
            "{err}"
        );
        std::fs::write(dir.join("bad.pem"), "not a certificate").unwrap();
        let err = load_gpu_roots(None, Some(&dir)).unwrap_err().to_string();
        assert!(
            err.starts_with("--rim-roots") && err.contains("bad.pem"),
            "{err}"
        );
        std::fs::write(
            dir.join("bad.pem"),
            vigil_nvidia::roots::NVIDIA_RIM_ROOT_PEM,
        )
        .unwrap();
        let roots = load_gpu_roots(None, Some(&dir)).unwrap();
        assert_eq!(roots.device, None);
        assert_eq!(roots.rim, Some(vec![vigil_nvidia::roots::rim_root_der()]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
