//! Turns a challenge into evidence: validates the request, quotes through the TPM and
//! reads the measured-boot log. Everything the verifier needs, nothing it must trust.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use vigil_proto::binding::{NONCE_LEN, qualifying_data};
use vigil_proto::v1::{EventLog, Evidence, PcrBank, TpmEvidence, TpmQuote};

use crate::gpu::GpuSource;
use crate::ima::ImaSource;
use crate::tpm::{MAX_PCR_INDEX, Tpm, TpmError, bank_from_name};

/// Largest event log the attester will send (real logs are tens of KiB).
pub const MAX_EVENT_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// PCRs quoted when a request names none: the firmware and boot-loader PCRs.
pub const DEFAULT_PCRS: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Where Linux exposes the firmware's TCG event log.
pub const DEFAULT_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// Counts for `vigil-attester serve --metrics-listen`: how long quotes take and which
/// evidence sources failed. Counts only; nothing from the evidence itself.
pub struct AttesterMetrics {
    registry: Registry,
    quote_seconds: Histogram,
    collector_errors: Family<SourceLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// The evidence sources counted in `vigil_attester_collector_errors_total{source}`.
pub const SOURCES: [&str; 4] = ["tpm", "gpu", "event_log", "ima"];

impl Default for AttesterMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // 1 ms to 30 s: a hardware TPM quote takes tens to hundreds of milliseconds.
        let quote_seconds = Histogram::new([
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "vigil_attester_quote_seconds",
            "Time to produce a TPM quote (qualifying data to signed quote, TPM lock wait included)",
            quote_seconds.clone(),
        );
        let collector_errors = Family::<SourceLabels, Counter>::default();
        for source in SOURCES {
            let _ = collector_errors.get_or_create(&SourceLabels { source });
        }
        registry.register(
            "vigil_attester_collector_errors",
            "Evidence sources that failed while answering a challenge (a missing event log or \
             IMA list is not an error)",
            collector_errors.clone(),
        );
        AttesterMetrics {
            registry,
            quote_seconds,
            collector_errors,
        }
    }
}

impl AttesterMetrics {
    fn error(&self, source: &'static str, error: &dyn std::fmt::Display) {
        self.collector_errors
            .get_or_create(&SourceLabels { source })
            .inc();
        tracing::warn!(event = "collector_error", source, %error, "evidence source failed");
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Everything needed to answer challenges on one host.
pub struct Collector {
    tpm: Arc<Mutex<Tpm>>,
    node_id: String,
    event_log_path: PathBuf,
    ima: ImaSource,
    gpus: GpuSource,
    metrics: AttesterMetrics,
}

impl Collector {
    pub fn new(
        tpm: Tpm,
        node_id: String,
        event_log_path: PathBuf,
        ima_log_path: PathBuf,
        gpus: GpuSource,
    ) -> Self {
        Collector {
            tpm: Arc::new(Mutex::new(tpm)),
            node_id,
            event_log_path,
            ima: ImaSource::new(ima_log_path),
            gpus,
            metrics: AttesterMetrics::default(),
        }
    }

    pub fn metrics(&self) -> &AttesterMetrics {
        &self.metrics
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Runs `f` with the TPM; the TPM serves one command stream at a time.
    pub fn with_tpm<T>(
        &self,
        f: impl FnOnce(&mut Tpm) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let mut tpm = self
            .tpm
            .lock()
            .map_err(|_| TpmError::Request("an earlier TPM call panicked".into()))?;
        f(&mut tpm)
    }

    /// Evidence for `nonce` over `pcrs` in `banks` (empty: every allocated bank), with the
    /// IMA entries from `ima_offset` on.
    pub fn evidence(
        &self,
        nonce: &[u8],
        pcrs: &[u32],
        banks: &[String],
        ima_offset: u64,
    ) -> Result<Evidence, TpmError> {
        if nonce.len() != NONCE_LEN {
            return Err(TpmError::Request(format!(
                "nonce must be {NONCE_LEN} bytes, got {}",
                nonce.len()
            )));
        }
        let pcrs = normalise_pcrs(pcrs)?;
        // Each GPU answers the verifier's nonce itself; the quote then commits to exactly
        // this list of GPU evidence.
        let gpu_nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| TpmError::Request("nonce length".into()))?;
        let gpus = self.gpus.collect(&gpu_nonce).map_err(|e| {
            self.metrics.error("gpu", &e);
            TpmError::Request(format!("GPU evidence: {e}"))
        })?;
        let qualifying = qualifying_data(nonce, &gpus);
        let started = std::time::Instant::now();
        let (ak_public, quote) = self
            .with_tpm(|tpm| {
                let banks = choose_banks(tpm, banks)?;
                let quote = tpm.quote(&qualifying, &banks, &pcrs)?;
                Ok((tpm.ak_public_tpm2b()?, quote))
            })
            .inspect_err(|e| self.metrics.error("tpm", e))?;
        let elapsed = started.elapsed();
        self.metrics.quote_seconds.observe(elapsed.as_secs_f64());
        tracing::debug!(
            event = "quote",
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "TPM quote made"
        );
        let event_log = read_event_log(&self.event_log_path);
        if !event_log.present && !event_log.note.starts_with("no event log") {
            self.metrics.error("event_log", &event_log.note);
        }
        // Read after the quote: the list then holds every entry the quoted PCR 10 covers.
        let ima_log = self.ima.read(ima_offset);
        if !ima_log.present && !ima_log.note.starts_with("no IMA list") {
            self.metrics.error("ima", &ima_log.note);
        }
        let pcr_banks = quote
            .pcrs
            .into_iter()
            .map(|(bank, values)| PcrBank {
                bank: bank.to_owned(),
                values: values.into_iter().collect(),
            })
            .collect();
        Ok(Evidence {
            nonce: nonce.to_vec(),
            node_id: self.node_id.clone(),
            tpm: Some(TpmEvidence {
                ak_public,
                quote: Some(TpmQuote {
                    attest: quote.attest,
                    signature: quote.signature,
                }),
                pcrs: pcr_banks,
            }),
            event_log: Some(event_log),
            ima_log: Some(ima_log),
            gpus,
            attester_version: env!("CARGO_PKG_VERSION").to_owned(),
        })
    }
}

/// Sorted, de-duplicated PCR indices; the defaults when none are asked for.
pub fn normalise_pcrs(pcrs: &[u32]) -> Result<Vec<u32>, TpmError> {
    let mut out: Vec<u32> = if pcrs.is_empty() {
        DEFAULT_PCRS.to_vec()
    } else {
        pcrs.to_vec()
    };
    if let Some(bad) = out.iter().find(|&&index| index > MAX_PCR_INDEX) {
        return Err(TpmError::Request(format!(
            "PCR index {bad} is out of range 0..={MAX_PCR_INDEX}"
        )));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The requested banks the TPM has, or all allocated ones when none are named.
pub fn choose_banks(
    tpm: &mut Tpm,
    requested: &[String],
) -> Result<Vec<HashingAlgorithm>, TpmError> {
    let allocated = tpm.allocated_banks()?;
    if requested.is_empty() {
        return Ok(allocated);
    }
    let mut chosen = Vec::new();
    for name in requested {
        let alg = bank_from_name(name)
            .ok_or_else(|| TpmError::Request(format!("unknown PCR bank {name:?}")))?;
        if !allocated.contains(&alg) {
            return Err(TpmError::Request(format!(
                "PCR bank {name} is not allocated on this TPM"
            )));
        }
        if !chosen.contains(&alg) {
            chosen.push(alg);
        }
    }
    Ok(chosen)
}

/// Reads the event log; a missing file is reported as such, not as an error, because
/// many hosts (VMs without vTPM logs, swtpm) have none. The verifier decides what that means.
pub fn read_event_log(path: &Path) -> EventLog {
    let source = path.display().to_string();
    let absent = |note: String| EventLog {
        present: false,
        data: Vec::new(),
        source: source.clone(),
        note,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return absent(format!("no event log at {source}"));
        }
        Err(e) => return absent(format!("event log at {source} is unreadable: {e}")),
    };
    use std::io::Read;
    let mut data = Vec::new();
    // securityfs reports size 0, so read with a cap instead of trusting metadata.
    match file.take(MAX_EVENT_LOG_BYTES + 1).read_to_end(&mut data) {
        Ok(_) if data.len() as u64 > MAX_EVENT_LOG_BYTES => absent(format!(
            "event log at {source} exceeds {MAX_EVENT_LOG_BYTES} bytes; not sent"
        )),
        Ok(_) => EventLog {
            present: true,
            data,
            source,
            note: String::new(),
        },
        Err(e) => absent(format!("event log at {source} could not be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_lists_are_sorted_deduplicated_and_bounded() {
        assert_eq!(normalise_pcrs(&[7, 0, 7, 3]).unwrap(), vec![0, 3, 7]);
        assert_eq!(normalise_pcrs(&[]).unwrap(), DEFAULT_PCRS.to_vec());
        assert!(normalise_pcrs(&[24]).is_err());
    }

    #[test]
    fn attester_metrics_are_encoded() {
        let metrics = AttesterMetrics::default();
        metrics.quote_seconds.observe(0.02);
        metrics.error("tpm", &"busy");
        let text = metrics.encode();
        assert!(
            text.contains("vigil_attester_quote_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_attester_collector_errors_total{source=\"tpm\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_attester_collector_errors_total{source=\"gpu\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_event_log_is_reported_not_fatal() {
        let log = read_event_log(Path::new("/nonexistent/vigil/binary_bios_measurements"));
        assert!(!log.present);
        assert!(log.note.contains("no event log"));
    }

    #[test]
    fn an_event_log_is_sent_unmodified() {
        let dir = std::env::temp_dir().join(format!("vigil-collect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.bin");
        std::fs::write(&path, b"\x00\x01\x02").unwrap();
        let log = read_event_log(&path);
        assert!(log.present);
        assert_eq!(log.data, b"\x00\x01\x02");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
