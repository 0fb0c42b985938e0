//! JSON logs for CloudWatch.
//!
//! One JSON object per line on stdout, with the current span's fields (the
//! request id among them) on every event, so CloudWatch Logs Insights can
//! pull a whole request by its id. `RUST_LOG` sets the filter (default
//! `info`). Logs go to stdout only, never to a file: `cargo lambda watch`
//! rebuilds on any file written inside the workspace.

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, Layer, fmt::MakeWriter, prelude::*, registry::LookupSpan};

/// The JSON formatting layer, writing to `writer`.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(writer)
}

/// Installs the global subscriber. Safe to call more than once (tests).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json_layer(std::io::stdout))
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{Router, body::Body, http::Request, middleware, routing::get};
    use tower::ServiceExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn log_lines_inside_a_request_carry_its_request_id() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(captured.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        let router = Router::new()
            .route(
                "/work",
                get(|| async {
                    tracing::info!("doing the work");
                    "done"
                }),
            )
            .layer(middleware::from_fn(crate::request_id::middleware));
        let request = Request::get("/work")
            .header("x-request-id", "req-42")
            .body(Body::empty())
            .expect("request");
        router.oneshot(request).await.expect("response");
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
        let line: serde_json::Value = text
            .lines()
            .find(|l| l.contains("doing the work"))
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .expect("the handler's log line");
        assert_eq!(line["span"]["request_id"], "req-42");
    }
}
