//! Logs of `vigil serve`: `tracing` events to stderr, as text or one JSON object a line,
//! filtered by `RUST_LOG` (default `info`). Stdout keeps the "listening on" line alone.
//!
//! Events carry node ids, addresses, check names and statuses, never keys, tokens or
//! evidence; nonces are not logged.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL target: message key=value ...`
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// The filter from `RUST_LOG`, `info` when it is unset or does not parse.
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the process-wide subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
