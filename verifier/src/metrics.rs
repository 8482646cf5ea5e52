//! Counts for `vigil serve --metrics-listen`: OpenMetrics text at `GET /metrics`.
//!
//! Only counts and durations, never node evidence or secrets. The appraisal path touches
//! atomics only: counters are atomic, label families take a shared read lock to find an
//! existing series, and the latency histograms here are lock-free (one atomic per bucket)
//! rather than `prometheus_client`'s histogram, which locks a mutex on every observation.
//! The node and audit-log gauges are read from the store when scraped, not kept up to date
//! on the hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// The phases of one appraisal, as timed in `Verifier::appraise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nonce consumption and the reads of the node, its baseline and IMA state.
    Nonce,
    /// Signature, quote, event-log, IMA and GPU checks (no lock held).
    Evidence,
    /// Baseline appraisal and signing the result.
    Appraisal,
    /// The durable append: verdict, status, audit log.
    Record,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Nonce,
        Phase::Evidence,
        Phase::Appraisal,
        Phase::Record,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Nonce => "nonce",
            Phase::Evidence => "evidence",
            Phase::Appraisal => "appraisal",
            Phase::Record => "record",
        }
    }
}

/// Upper bounds (seconds) of the appraisal-phase buckets: 100 µs to 10 s.
const PHASE_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];
/// Upper bounds (seconds) of the poll-lag buckets: 10 ms to 5 min.
const LAG_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A histogram with fixed buckets and no lock: one atomic counter per bucket, the sum kept
/// as f64 bits updated by compare-and-swap.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One per bound, then one for +Inf (not cumulative).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, so a scrape mid-observation stays consistent.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    status: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    outcome: &'static str,
}

/// A metric with one histogram per label value of a fixed set, all lock-free.
#[derive(Debug, Clone)]
struct Labelled<L: 'static> {
    labels: &'static [L],
    histograms: Arc<[AtomicHistogram]>,
}

impl<L> Labelled<L> {
    fn new(labels: &'static [L], bounds: &'static [f64]) -> Self {
        Labelled {
            labels,
            histograms: labels
                .iter()
                .map(|_| AtomicHistogram::new(bounds))
                .collect(),
        }
    }
}

impl<L: EncodeLabelSet + std::fmt::Debug + Send + Sync> TypedMetric for Labelled<L> {
    const TYPE: MetricType = MetricType::Histogram;
}

impl<L: EncodeLabelSet + std::fmt::Debug + Send + Sync> EncodeMetric for Labelled<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, histogram) in self.labels.iter().zip(self.histograms.iter()) {
            histogram.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

const PHASE_LABELS: [PhaseLabels; 4] = [
    PhaseLabels { phase: "nonce" },
    PhaseLabels { phase: "evidence" },
    PhaseLabels { phase: "appraisal" },
    PhaseLabels { phase: "record" },
];

/// The verifier's metrics; one per `Verifier`.
pub struct VerifierMetrics {
    registry: Registry,
    verdicts: Family<VerdictLabels, Counter>,
    failed_checks: Family<CheckLabels, Counter>,
    phases: Labelled<PhaseLabels>,
    poll_lag: Arc<AtomicHistogram>,
    nodes: Family<StatusLabels, Gauge>,
    audit_entries: Gauge,
    store_commits: Counter,
    store_writes: Counter,
    cache_lookups: Family<CacheLabels, Counter>,
}

impl std::fmt::Debug for VerifierMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifierMetrics")
    }
}

impl Default for VerifierMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers an `Arc`'d histogram (the registry keeps one handle, the owner another).
#[derive(Debug, Clone)]
struct SharedHistogram(Arc<AtomicHistogram>);

impl TypedMetric for SharedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for SharedHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl VerifierMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "vigil_verdicts",
            "Verdicts recorded, by result status (EAR) and verdict",
            verdicts.clone(),
        );
        let failed_checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "vigil_failed_checks",
            "Failed checks in recorded verdicts, by check name",
            failed_checks.clone(),
        );
        let phases = Labelled::new(&PHASE_LABELS, &PHASE_BUCKETS);
        registry.register(
            "vigil_appraisal_phase_seconds",
            "Time spent in each phase of an appraisal (nonce, evidence, appraisal, record)",
            phases.clone(),
        );
        let poll_lag = Arc::new(AtomicHistogram::new(&LAG_BUCKETS));
        registry.register(
            "vigil_poll_lag_seconds",
            "How late each continuous-attestation poll of a node started after its round was due",
            SharedHistogram(Arc::clone(&poll_lag)),
        );
        let nodes = Family::<StatusLabels, Gauge>::default();
        for status in NODE_STATUSES {
            let _ = nodes.get_or_create(&StatusLabels { status });
        }
        registry.register(
            "vigil_nodes",
            "Known nodes by status (read from the store when scraped)",
            nodes.clone(),
        );
        let audit_entries = Gauge::default();
        registry.register(
            "vigil_audit_entries",
            "Entries in the audit log (read from the store when scraped)",
            audit_entries.clone(),
        );
        let store_commits = Counter::default();
        registry.register(
            "vigil_store_commits",
            "Durable commits of the store (one fsync each; group commit lets one carry many writes)",
            store_commits.clone(),
        );
        let store_writes = Counter::default();
        registry.register(
            "vigil_store_writes",
            "Writes (nonces, verdicts, registrations, baseline changes) carried by those commits",
            store_writes.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "vigil_cache_lookups",
            "Lookups in the verification caches (device chains, RIMs, compiled baselines), by hit or miss",
            cache_lookups.clone(),
        );
        VerifierMetrics {
            registry,
            verdicts,
            failed_checks,
            phases,
            poll_lag,
            nodes,
            audit_entries,
            store_commits,
            store_writes,
            cache_lookups,
        }
    }

    /// Time spent in one phase of an appraisal.
    pub fn phase(&self, phase: Phase, elapsed: Duration) {
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phases.histograms[index].observe(elapsed.as_secs_f64());
    }

    /// Observations of one phase so far (tests).
    pub fn phase_count(&self, phase: Phase) -> u64 {
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phases.histograms[index].count()
    }

    /// One recorded verdict, with the names of its failed checks.
    pub fn verdict<'a>(
        &self,
        status: &str,
        verdict: &str,
        failed_checks: impl IntoIterator<Item = &'a str>,
    ) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                status: status.to_owned(),
                verdict: verdict.to_owned(),
            })
            .inc();
        for check in failed_checks {
            self.failed_checks
                .get_or_create(&CheckLabels {
                    check: check.to_owned(),
                })
                .inc();
        }
    }

    /// How late a poll started.
    pub fn poll_lag(&self, lag: Duration) {
        self.poll_lag.observe(lag.as_secs_f64());
    }

    /// Sets the gauges read from the store: nodes by status, audit-log size.
    pub fn set_store_gauges<'a>(
        &self,
        statuses: impl IntoIterator<Item = &'a str>,
        audit_entries: u64,
    ) {
        let mut counts = [0i64; NODE_STATUSES.len()];
        for status in statuses {
            if let Some(i) = NODE_STATUSES.iter().position(|s| *s == status) {
                counts[i] += 1;
            }
        }
        for (status, count) in NODE_STATUSES.iter().zip(counts) {
            self.nodes
                .get_or_create(&StatusLabels { status })
                .set(count);
        }
        self.audit_entries
            .set(i64::try_from(audit_entries).unwrap_or(i64::MAX));
    }

    /// Brings the store's commit counters up to the pool's totals (read when scraped).
    pub fn set_commit_counts(&self, commits: u64, writes: u64) {
        catch_up(&self.store_commits, commits);
        catch_up(&self.store_writes, writes);
    }

    /// Brings one cache's hit and miss counters up to its totals (read when scraped).
    pub fn set_cache_counts(&self, cache: &'static str, hits: u64, misses: u64) {
        for (outcome, total) in [("hit", hits), ("miss", misses)] {
            catch_up(
                &self
                    .cache_lookups
                    .get_or_create(&CacheLabels { cache, outcome }),
                total,
            );
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Raises a counter to `total` (counters only go up; totals kept elsewhere are copied in).
fn catch_up(counter: &Counter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

const NODE_STATUSES: [&str; 3] = [
    crate::store::STATUS_TRUSTED,
    crate::store::STATUS_UNTRUSTED,
    crate::store::STATUS_UNKNOWN,
];

/// The content type of [`VerifierMetrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until the process ends: a minimal HTTP/1.x responder
/// (one request per connection, then close). `render` makes the body for each scrape.
/// Anything but `GET /metrics` is answered 404 (or 405/400); requests are bounded in size
/// and time.
pub async fn serve_http<F, Fut>(listener: tokio::net::TcpListener, render: F)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, render)).await;
        });
    }
}

async fn answer<F, Fut>(mut stream: tokio::net::TcpStream, render: F) -> std::io::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let (status, body) = match (method, target) {
        (Some("GET"), Some("/metrics")) => ("200 OK", render().await),
        (Some("GET"), Some(_)) => ("404 Not Found", "not found: try /metrics\n".to_owned()),
        (Some(_), Some(_)) => ("405 Method Not Allowed", "GET only\n".to_owned()),
        _ => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_cache_totals_are_copied_in_and_never_go_down() {
        let metrics = VerifierMetrics::new();
        metrics.set_commit_counts(3, 40);
        metrics.set_commit_counts(2, 10);
        metrics.set_cache_counts("rim", 7, 1);
        let text = metrics.encode();
        assert!(text.contains("vigil_store_commits_total 3"), "{text}");
        assert!(text.contains("vigil_store_writes_total 40"), "{text}");
        assert!(
            text.contains(r#"vigil_cache_lookups_total{cache="rim",outcome="hit"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vigil_cache_lookups_total{cache="rim",outcome="miss"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn histograms_and_counters_are_encoded() {
        let metrics = VerifierMetrics::new();
        metrics.phase(Phase::Evidence, Duration::from_millis(3));
        metrics.phase(Phase::Evidence, Duration::from_secs(20));
        metrics.verdict("affirming", "pass", []);
        metrics.verdict(
            "contraindicated",
            "fail",
            ["quote.signature", "nonce.fresh"],
        );
        metrics.poll_lag(Duration::from_millis(20));
        metrics.set_store_gauges(["trusted", "trusted", "unknown"], 7);
        let text = metrics.encode();
        for line in [
            "vigil_verdicts_total{status=\"affirming\",verdict=\"pass\"} 1",
            "vigil_failed_checks_total{check=\"quote.signature\"} 1",
            "vigil_appraisal_phase_seconds_count{phase=\"evidence\"} 2",
            "vigil_appraisal_phase_seconds_bucket{le=\"0.005\",phase=\"evidence\"} 1",
            "vigil_appraisal_phase_seconds_bucket{le=\"+Inf\",phase=\"evidence\"} 2",
            "vigil_appraisal_phase_seconds_count{phase=\"record\"} 0",
            "vigil_poll_lag_seconds_count 1",
            "vigil_nodes{status=\"trusted\"} 2",
            "vigil_nodes{status=\"untrusted\"} 0",
            "vigil_audit_entries 7",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(metrics.phase_count(Phase::Evidence), 2);
    }

    #[tokio::test]
    async fn only_get_metrics_is_served() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve_http(listener, || async { "x_total 1\n".to_owned() }));
        for (request, expect) in [
            ("GET /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
            ("GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 404"),
            ("POST /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 405"),
        ] {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with(expect), "{request:?}: {answer}");
        }
    }
}
