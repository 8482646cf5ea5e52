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
            nonce,
            at,
            json,
        } => {
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
            let result = vigil_nvidia::verify_gpu_evidence(
                &report,
                &chain,
                nonce.as_ref(),
                rims.as_ref(),
                at,
            );
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
