//! Every parser of untrusted input the intake has (the Sentry endpoints'
//! included) returns, for any input:
//! an `Ok` or a client error, never a panic, and never a 5xx. Inputs are
//! generated near what the parsers read (their field names, JSON of every
//! shape, hostile strings), plus bytes that are not JSON at all.
//!
//! `PROPTEST_CASES` sets the inputs per parser (1,000 unless set);
//! `bench/parsers.sh` runs a million each.

use chrono::Utc;
use events::{
    analytics, browser_errors,
    client::ClientContext,
    fingerprint::fingerprint,
    sentry::{self, Endpoint},
    vitals,
};
use platform::ApiError;
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Map, Value};

/// The member names the parsers look for, and a few they do not.
const NAMES: &[&str] = &[
    "sessionId",
    "userId",
    "events",
    "eventType",
    "eventData",
    "timestamp",
    "eventId",
    "url",
    "referrer",
    "stage",
    "action",
    "duration",
    "metadata",
    "metricName",
    "name",
    "value",
    "rating",
    "id",
    "delta",
    "navigationType",
    "deviceType",
    "browser",
    "browserVersion",
    "os",
    "connectionType",
    "message",
    "stack",
    "errorType",
    "severity",
    "fingerprint",
    // Sentry's event payload.
    "event_id",
    "exception",
    "values",
    "type",
    "stacktrace",
    "frames",
    "filename",
    "abs_path",
    "function",
    "in_app",
    "lineno",
    "colno",
    "level",
    "logentry",
    "formatted",
    "request",
    "headers",
    "User-Agent",
    "user",
    "contexts",
    "runtime",
    "version",
    "trace",
    "trace_id",
    "tags",
    "release",
    "environment",
    "other",
    "",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_ ./:-]{0,24}",
        1 => ".{0,64}",
        1 => Just("\u{0}".to_owned()),
        1 => Just("x".repeat(5000)),
        1 => prop::sample::select(vec![
            "LCP", "cls", "FID", "good", "poor", "CRITICAL", "warn", "funnel", "page_view",
            "https://deals.example/a?b=c", "2026-11-30T10:00:00Z", "NaN", "-1", "1e400",
        ])
        .prop_map(str::to_owned),
        1 => Just("    at f (https://deals.example/app-3f9a1c2b.js:10:5)\n    at g@https://deals.example/vendor.js:1:1".to_owned()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            0.0, -0.0, 0.1, 2500.0, 600_000.0, 600_001.0, 1e300, -1e-300
        ])
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(Utc::now().timestamp_millis())),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..10).prop_map(
                |members| {
                    Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }
            ),
        ]
    })
}

/// Bodies: JSON text of any shape, the same cut short or with a byte
/// changed, and bytes that are not JSON.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let bytes = v.to_string().into_bytes();
            let at = cut.index(bytes.len() + 1);
            bytes[..at].to_vec()
        }),
        1 => (json(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = v.to_string().into_bytes();
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn client() -> impl Strategy<Value = ClientContext> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(ip_address, user_agent, page)| ClientContext {
            ip_address,
            user_agent,
            page,
        })
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// A refusal must be the client's fault: a 4xx, never a 500.
fn client_error(error: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(error.status().is_client_error(), "not a 4xx: {error:?}");
    Ok(())
}

#[test]
fn the_event_batch_reader_answers_any_bytes() {
    runner()
        .run(&(body(), client()), |(body, client)| {
            match analytics::parse_batch(&body, &client, Utc::now()) {
                Ok(batch) => prop_assert!(!batch.events.is_empty()),
                Err(error) => client_error(&error)?,
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn the_web_vitals_reader_answers_any_json() {
    runner()
        .run(
            &(json(), prop::option::of(text()), client()),
            |(body, session, client)| {
                match vitals::parse_metrics(&body, session.as_deref(), &client, Utc::now()) {
                    Ok(metrics) => prop_assert!(metrics.iter().all(|m| m.value.is_finite())),
                    Err(error) => client_error(&error)?,
                }
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn the_browser_error_reader_answers_any_json() {
    runner()
        .run(&(json(), client()), |(body, client)| {
            match browser_errors::read_report(&body, &client) {
                Ok(report) => prop_assert!(!report.fingerprint.is_empty()),
                Err(error) => client_error(&error)?,
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn the_fingerprinter_answers_any_text() {
    runner()
        .run(
            &(prop::option::of(text()), text(), prop::option::of(text())),
            |(error_type, message, stack)| {
                let print = fingerprint(error_type.as_deref(), &message, stack.as_deref());
                prop_assert!(
                    print.len() == 32 && print.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}",
                    print
                );
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Envelopes: a header line, then items whose headers name a type and a
/// length that may or may not be the payload's, or none.
fn envelope() -> impl Strategy<Value = Vec<u8>> {
    let item = (
        prop::sample::select(vec!["event", "session", "transaction", "attachment", ""]),
        prop_oneof![
            2 => Just(None),
            2 => Just(Some(0i64)),
            1 => any::<i64>().prop_map(Some),
        ],
        body(),
    )
        .prop_map(|(item_type, length, payload)| {
            let length = match length {
                // Mostly the payload's own length, so the payload is read.
                Some(0) => Value::from(payload.len()),
                Some(other) => Value::from(other),
                None => Value::Null,
            };
            let mut bytes = serde_json::json!({"type": item_type, "length": length})
                .to_string()
                .into_bytes();
            bytes.push(b'\n');
            bytes.extend(payload);
            bytes.push(b'\n');
            bytes
        });
    (body(), prop::collection::vec(item, 0..4)).prop_map(|(header, items)| {
        let mut bytes = header;
        bytes.push(b'\n');
        for item in items {
            bytes.extend(item);
        }
        bytes
    })
}

/// What a Sentry event became can be stored: no NUL in any text.
fn storable(upload: &sentry::Upload) -> Result<(), TestCaseError> {
    for event in &upload.events {
        let error = &event.error;
        for text in [
            &error.message,
            &error.url,
            &error.session_id,
            &error.fingerprint,
        ]
        .into_iter()
        .chain(error.stack.iter())
        .chain(error.user_id.iter())
        .chain(event.release.iter())
        {
            prop_assert!(!text.contains('\0'), "{text:?}");
        }
    }
    Ok(())
}

#[test]
fn the_sentry_envelope_reader_answers_any_bytes() {
    runner()
        .run(&(envelope(), client()), |(body, client)| {
            match sentry::read_upload(Endpoint::Envelope, &body, &client) {
                Ok(upload) => storable(&upload)?,
                Err(error) => client_error(&error)?,
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn the_sentry_store_reader_answers_any_bytes() {
    runner()
        .run(&(body(), client()), |(body, client)| {
            match sentry::read_upload(Endpoint::Store, &body, &client) {
                Ok(upload) => storable(&upload)?,
                Err(error) => client_error(&error)?,
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
