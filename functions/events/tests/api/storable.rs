//! No input that the beacon parser accepts fails to be stored: generated
//! batches full of what JSON allows and PostgreSQL does not (numbers
//! beyond `numeric`, NUL and surrogate escapes, deep nesting, expanding
//! exponents) are either refused by `parse_batch` with a 400 naming a field,
//! or stored by `store` through both of its paths (INSERT and COPY), with
//! `eventData` within its size limit as stored.
//!
//! `PROPTEST_CASES` sets the number of generated batches (300 unless set).

use chrono::Utc;
use events::{
    analytics::{self, MAX_EVENT_DATA_BYTES},
    client::ClientContext,
};
use platform::ApiError;
use proptest::{prelude::*, test_runner::TestRunner};

use crate::spawn_app;

/// Numbers that are valid JSON, chosen around `numeric`'s edges.
fn number() -> impl Strategy<Value = String> {
    let edge = prop::sample::select(vec![
        "0",
        "-0",
        "1.50",
        "1e400",
        "-1e400",
        "1e-400",
        "1e200000",
        "1e-200000",
        "0e-99999",
        "0e999999999",
        "1e131071",
        "1e131072",
        "1e-16383",
        "1e-16384",
        "1.5e-16383",
        "1e16000",
        "1e5000",
        "12e131070",
        "1E+2",
        "-1.25e-1",
        "123456789012345678901234567890",
    ])
    .prop_map(str::to_owned);
    let random = (
        any::<bool>(),
        0u64..1_000_000,
        prop::option::of(0u32..1000),
        prop::option::of(-200_000i64..200_000),
    )
        .prop_map(|(negative, integer, fraction, exponent)| {
            let mut n = format!("{}{integer}", if negative { "-" } else { "" });
            if let Some(f) = fraction {
                n.push_str(&format!(".{f}"));
            }
            if let Some(e) = exponent {
                n.push_str(&format!("e{e}"));
            }
            n
        });
    prop_oneof![edge, random]
}

/// JSON string literals, escapes included.
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        30 => "[a-zA-Z0-9 ]{0,8}",
        1 => Just(r"\u0000".to_owned()),
        1 => Just(r"\\u0000".to_owned()),
        1 => Just(r"\ud800".to_owned()),
        1 => Just(r"\udc00".to_owned()),
        2 => Just(r"\ud83d\ude00".to_owned()),
        2 => Just(r"\u00e9".to_owned()),
        2 => Just(r#"\"\\\/\b\f\n\r\t"#.to_owned()),
        2 => Just("São Paulo ✈".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// Any JSON value as text, nested up to about 80 levels.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        number(),
        string(),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    let nested = leaf.prop_recursive(80, 400, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((string(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    });
    prop_oneof![
        8 => nested,
        1 => (1usize..120, number()).prop_map(|(depth, n)| format!("{}{n}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))),
    ]
}

fn event() -> impl Strategy<Value = String> {
    (
        prop_oneof![1 => string(), 20 => Just("\"page_view\"".to_owned())],
        prop::option::of(prop_oneof![
            20 => value().prop_map(|v| format!(r#"{{"v": {v}}}"#)),
            1 => value(),
        ]),
        prop::option::of(string()),
    )
        .prop_map(|(event_type, data, event_id)| {
            let mut event = format!(r#"{{"eventType": {event_type}"#);
            if let Some(data) = data {
                event.push_str(&format!(r#", "eventData": {data}"#));
            }
            if let Some(id) = event_id {
                event.push_str(&format!(r#", "eventId": {id}"#));
            }
            event.push('}');
            event
        })
}

/// A batch below or above the COPY threshold.
fn body() -> impl Strategy<Value = String> {
    let events = prop_oneof![
        prop::collection::vec(event(), 1..3),
        prop::collection::vec(
            event(),
            analytics::COPY_THRESHOLD..analytics::COPY_THRESHOLD + 4
        ),
    ];
    let session = prop_oneof![1 => string(), 20 => Just("\"s1\"".to_owned())];
    (session, events).prop_map(|(session, events)| {
        format!(
            r#"{{"sessionId": {session}, "events": [{}]}}"#,
            events.join(", ")
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn no_batch_the_parser_accepts_fails_to_be_stored() {
    let app = spawn_app(&[]).await;
    let pool = app.app.state.pool.clone();
    let handle = tokio::runtime::Handle::current();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let (stored, refused) = tokio::task::spawn_blocking(move || {
        let client = ClientContext::default();
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            ..ProptestConfig::default()
        });
        let counts = std::cell::Cell::new((0u32, 0u32));
        runner
            .run(&body(), |body| {
                let batch = match analytics::parse_batch(body.as_bytes(), &client, Utc::now()) {
                    Ok(batch) => batch,
                    Err(error @ ApiError::BadRequest { .. }) => {
                        prop_assert!(
                            error.field().is_some() || error.to_string().contains("JSON"),
                            "{error}"
                        );
                        counts.set((counts.get().0, counts.get().1 + 1));
                        return Ok(());
                    }
                    Err(error) => return Err(TestCaseError::fail(format!("not a 400: {error:?}"))),
                };
                for event in &batch.events {
                    let data = event.event_data.get();
                    prop_assert!(data.len() <= MAX_EVENT_DATA_BYTES);
                }
                let result = handle.block_on(async {
                    let mut connection = pool.get().await.expect("a connection");
                    analytics::store(&mut connection, &batch).await
                });
                prop_assert!(
                    result.is_ok(),
                    "accepted but not stored: {:?}\n{body}",
                    result.err()
                );
                counts.set((counts.get().0 + 1, counts.get().1));
                Ok(())
            })
            .map(|()| counts.get())
    })
    .await
    .expect("the property test thread")
    .unwrap_or_else(|failure| panic!("{failure}"));

    let longest: Option<i32> = app
        .db
        .connect()
        .await
        .query_one(
            r#"SELECT max(length("eventData"::text)) FROM "analytics_events""#,
            &[],
        )
        .await
        .expect("row")
        .get(0);
    assert!(longest.unwrap_or(0) as usize <= MAX_EVENT_DATA_BYTES);
    eprintln!("stored {stored} batches, refused {refused}");
    assert!(
        stored > 0 && refused > 0,
        "stored {stored}, refused {refused}: the generator misses one side"
    );
}
