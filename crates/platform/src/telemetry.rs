//! JSON logs for CloudWatch.
//!
//! One JSON object per line on stdout, with the current span's fields (the
//! request id among them) on every event, so CloudWatch Logs Insights can
//! pull a whole request by its id. `RUST_LOG` sets the filter (default
//! `info`). Logs go to stdout only, never to a file: `cargo lambda watch`
//! rebuilds on any file written inside the workspace.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. Safe to call more than once (tests).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init();
}
