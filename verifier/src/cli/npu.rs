//! `vigil npu verify`: one Huawei Ascend NPU's attestation evidence (GTA's JSON format),
//! verified offline against a directory of NPU CA certificates.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use vigil_verifier::evidence::ascend::{
    AscendRoots, CHALLENGE_LEN, MAX_EVIDENCE_BYTES, challenge_for, verify_evidence_bytes,
};
use vigil_verifier::report::{Verdict, parse_utc};

use crate::AnyError;

#[derive(Subcommand)]
pub enum NpuCommand {
    /// Verify an NPU's evidence: IAK certificate chain, quote signature, challenge, PCR digest,
    /// boot log and IMA list. Exit 0 when every check passes, 1 when one fails, 2 on usage or
    /// I/O errors.
    Verify {
        /// The evidence, JSON as openEuler's Global Trust Authority takes it
        /// ({ak_cert, quote{quote_data, signature}, pcrs{hash_alg, pcr_values}, logs}).
        #[arg(long)]
        evidence: PathBuf,
        /// Directory of NPU CA certificates (PEM or DER): self-signed ones are roots, the
        /// others intermediates.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The verifier's nonce, hex: the NPU's challenge is
        /// SHA-256("vigil-npu-v1" || nonce || u32_be(index)).
        #[arg(
            long,
            required_unless_present = "challenge",
            conflicts_with = "challenge"
        )]
        nonce: Option<String>,
        /// The device index the challenge was derived for (with --nonce).
        #[arg(long, default_value_t = 0, conflicts_with = "challenge")]
        index: u32,
        /// The 32-byte challenge the NPU was sent, hex (evidence from GTA's own agent).
        #[arg(long)]
        challenge: Option<String>,
        /// Verification time: YYYY-MM-DDTHH:MM:SSZ or Unix seconds (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn npu_command(command: NpuCommand) -> Result<Verdict, AnyError> {
    match command {
        NpuCommand::Verify {
            evidence,
            ca_dir,
            nonce,
            index,
            challenge,
            at,
            json,
        } => {
            let challenge = match (nonce, challenge) {
                (_, Some(text)) => {
                    let bytes = hex::decode(text.trim())
                        .map_err(|e| format!("--challenge: not hex: {e}"))?;
                    <[u8; CHALLENGE_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
                        format!(
                            "--challenge must be {CHALLENGE_LEN} bytes, got {}",
                            bytes.len()
                        )
                    })?
                }
                (Some(text), None) => {
                    let nonce =
                        hex::decode(text.trim()).map_err(|e| format!("--nonce: not hex: {e}"))?;
                    if nonce.is_empty() {
                        return Err("--nonce is empty".into());
                    }
                    challenge_for(&nonce, index)
                }
                (None, None) => return Err("give --nonce or --challenge".into()),
            };
            let at = match at {
                Some(text) => parse_utc(text.trim()).ok_or_else(|| {
                    format!("--at: {text:?} is neither YYYY-MM-DDTHH:MM:SSZ nor Unix seconds")
                })?,
                None => vigil_verifier::attest::unix_now(),
            };
            let roots = AscendRoots::load_dir(&ca_dir)?;
            if roots.root_count() == 0 {
                return Err(format!(
                    "{}: no self-signed root certificate (.pem, .crt, .cer, .der) found",
                    ca_dir.display()
                )
                .into());
            }
            let data = read_bounded(&evidence)?;
            let result = verify_evidence_bytes(&data, &roots, &challenge, at);
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", result.render_text());
            }
            Ok(result.verdict)
        }
    }
}

/// Reads at most one byte more than the evidence limit, so an oversized file reaches the
/// parser's "exceeds the limit" failure instead of being read whole.
fn read_bounded(path: &Path) -> Result<Vec<u8>, AnyError> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut data = Vec::new();
    file.take(MAX_EVIDENCE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(data)
}
