//! GPU evidence for a challenge. Every GPU's evidence answers the verifier's own nonce, and
//! the TPM quote then commits to exactly this list (`vigil_proto::binding`).
//!
//! Sources: NVIDIA GPUs through NVML, loaded at run time (`vigil-nvml`: signed SPDM report
//! and device chain in confidential-computing mode, unsigned inventory otherwise; nothing at
//! all on a host without NVML), or recorded evidence replayed from files (`--gpu-replay`, for
//! tests and demos: the verifier checks it like any report, so a replayed report fails its
//! nonce check).

use std::path::PathBuf;

use vigil_proto::v1::GpuEvidence;

/// Largest recorded report or chain file read (NVML's buffers are 8 KiB and 5 KiB).
const MAX_REPLAY_FILE: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub enum GpuSource {
    /// No GPU evidence (`--gpus none`).
    None,
    /// NVIDIA GPUs through NVML, if the library and GPUs are present.
    Nvml,
    /// Recorded (report, PEM chain) files, one GPU each, in order.
    Replay(Vec<(PathBuf, PathBuf)>),
}

impl GpuSource {
    /// Evidence for `nonce`, one entry per GPU.
    pub fn collect(&self, nonce: &[u8; 32]) -> Result<Vec<GpuEvidence>, String> {
        match self {
            GpuSource::None => Ok(Vec::new()),
            GpuSource::Nvml => Ok(nvml_evidence(nonce)),
            GpuSource::Replay(files) => files
                .iter()
                .enumerate()
                .map(|(index, (report, chain))| {
                    Ok(GpuEvidence {
                        index: u32::try_from(index).map_err(|_| "too many GPUs")?,
                        vendor: "nvidia".into(),
                        report: read_limited(report)?,
                        cert_chain_pem: String::from_utf8(read_limited(chain)?)
                            .map_err(|_| format!("{}: not PEM text", chain.display()))?,
                        ..Default::default()
                    })
                })
                .collect(),
        }
    }
}

fn read_limited(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_REPLAY_FILE {
        return Err(format!(
            "{}: {size} bytes is over {MAX_REPLAY_FILE}",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// NVIDIA GPUs through NVML. A host without NVML or GPUs has no GPU evidence; a GPU whose
/// report cannot be fetched is still listed (inventory only), so the verifier sees it.
fn nvml_evidence(nonce: &[u8; 32]) -> Vec<GpuEvidence> {
    // Said once while it stays the same (a host without GPUs would say it every challenge).
    static LAST_PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let collection = crate::nvml::collect(nonce);
    if let Ok(mut last) = LAST_PROBLEMS.lock()
        && *last != collection.problems
    {
        for problem in &collection.problems {
            eprintln!("vigil-attester: GPU: {problem}");
        }
        last.clone_from(&collection.problems);
    }
    collection.gpus
}
