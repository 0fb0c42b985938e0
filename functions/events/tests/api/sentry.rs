//! Sentry's ingestion endpoints, as the SDKs call them, against real
//! PostgreSQL. (The real SDKs themselves: `sentry_sdk.rs`.)

use std::io::Write;

use axum::http::StatusCode;
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

pub const KEY: &str = "0123456789abcdef0123456789abcdef";
pub const PROJECT: u64 = 42;
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn dsn() -> String {
    format!("https://{KEY}@api.deals.example/{PROJECT}")
}

async fn sentry_app() -> TestApp {
    spawn_app(&[("SENTRY_DSNS", dsn().as_str())]).await
}

fn envelope_uri() -> String {
    format!("/api/{PROJECT}/envelope/?sentry_key={KEY}&sentry_version=7")
}

fn exception(event_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "level": "error",
        "platform": "javascript",
        "release": "deals@1.4.2",
        "environment": "production",
        "request": {"url": "https://deals.example/deals/lisbon", "headers": {"User-Agent": CHROME}},
        "exception": {"values": [{"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": [
            {"filename": "https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js", "function": "formatDeal", "lineno": 1, "colno": 2345, "in_app": true}
        ]}}]}
    })
}

/// An envelope of `items` (`(type, payload)`), each with its length.
fn envelope(header: &Value, items: &[(&str, String)]) -> String {
    let mut body = format!("{header}\n");
    for (item_type, payload) in items {
        body.push_str(&format!(
            "{}\n{payload}\n",
            json!({"type": item_type, "length": payload.len()})
        ));
    }
    body
}

fn event_envelope(event: &Value) -> String {
    envelope(
        &json!({"event_id": event["event_id"], "sent_at": "2026-11-30T12:00:00Z"}),
        &[("event", event.to_string())],
    )
}

const EVENT_A: &str = "9ec79c33ec9942ab8353589fcb2e04dc";
const EVENT_B: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";

async fn send_envelope(
    app: &TestApp,
    body: impl Into<axum::body::Body>,
    expected: StatusCode,
) -> Value {
    app.post(
        &envelope_uri(),
        &[
            ("content-type", "text/plain;charset=UTF-8"),
            ("user-agent", CHROME),
        ],
        body,
        expected,
    )
    .await
}

async fn groups(app: &TestApp) -> Vec<tokio_postgres::Row> {
    app.db
        .connect()
        .await
        .query(
            r#"SELECT "message", "errorType", "url", "severity", "count", "browser", "stack", "fingerprint"
               FROM "error_logs" ORDER BY "timestamp""#,
            &[],
        )
        .await
        .expect("error_logs")
}

#[tokio::test]
async fn an_event_in_an_envelope_is_grouped_in_error_logs_with_its_release_and_environment() {
    let app = sentry_app().await;

    let answer = send_envelope(&app, event_envelope(&exception(EVENT_A)), StatusCode::OK).await;

    assert_eq!(answer, json!({"id": EVENT_A}));
    let rows = groups(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "x is undefined");
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("TypeError")
    );
    assert_eq!(
        rows[0].get::<_, String>(2),
        "https://deals.example/deals/lisbon"
    );
    assert_eq!(rows[0].get::<_, String>(3), "error");
    assert_eq!(
        rows[0].get::<_, Option<String>>(5).as_deref(),
        Some("Chrome")
    );
    let kept = app
        .db
        .connect()
        .await
        .query_one(
            r#"SELECT "projectId", "release", "environment" FROM "bundle"."sentry_events""#,
            &[],
        )
        .await
        .expect("the event's row");
    assert_eq!(kept.get::<_, i64>(0), 42);
    assert_eq!(
        kept.get::<_, Option<String>>(1).as_deref(),
        Some("deals@1.4.2")
    );
    assert_eq!(
        kept.get::<_, Option<String>>(2).as_deref(),
        Some("production")
    );
}

#[tokio::test]
async fn a_retried_event_is_counted_once_and_a_repeated_error_twice() {
    let app = sentry_app().await;

    send_envelope(&app, event_envelope(&exception(EVENT_A)), StatusCode::OK).await;
    send_envelope(&app, event_envelope(&exception(EVENT_A)), StatusCode::OK).await;
    send_envelope(&app, event_envelope(&exception(EVENT_B)), StatusCode::OK).await;

    let rows = groups(&app).await;
    assert_eq!(rows.len(), 1, "one group");
    assert_eq!(
        rows[0].get::<_, i32>(4),
        2,
        "two events, one of them sent twice"
    );
}

#[tokio::test]
async fn the_store_endpoint_takes_one_event_as_json() {
    let app = sentry_app().await;

    let answer = app
        .post(
            &format!("/api/{PROJECT}/store/"),
            &[
                ("content-type", "application/json"),
                (
                    "x-sentry-auth",
                    &format!(
                        "Sentry sentry_version=7, sentry_client=raven-js/3.27.2, sentry_key={KEY}"
                    ),
                ),
            ],
            exception(EVENT_A).to_string(),
            StatusCode::OK,
        )
        .await;

    assert_eq!(answer["id"], EVENT_A);
    assert_eq!(groups(&app).await.len(), 1);
}

#[tokio::test]
async fn a_gzip_encoded_envelope_is_decoded() {
    let app = sentry_app().await;
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(event_envelope(&exception(EVENT_A)).as_bytes())
        .expect("gzip");

    app.post(
        &envelope_uri(),
        &[
            ("content-type", "application/x-sentry-envelope"),
            ("content-encoding", "gzip"),
        ],
        gzip.finish().expect("gzip"),
        StatusCode::OK,
    )
    .await;

    assert_eq!(groups(&app).await.len(), 1);
}

#[tokio::test]
async fn sessions_transactions_and_client_reports_are_accepted_and_dropped() {
    let app = sentry_app().await;
    let body = envelope(
        &json!({"sent_at": "2026-11-30T12:00:00Z"}),
        &[
            ("session", json!({"sid": "s", "status": "ok"}).to_string()),
            ("transaction", json!({"type": "transaction"}).to_string()),
            ("client_report", json!({"discarded_events": []}).to_string()),
            ("replay_recording", "\u{1}binary".to_owned()),
        ],
    );

    let answer = send_envelope(&app, body, StatusCode::OK).await;

    assert_eq!(answer, json!({"id": null}));
    assert_eq!(app.count("error_logs").await, 0);
}

#[tokio::test]
async fn a_tunnelled_envelope_is_authorised_by_the_dsn_in_its_header() {
    let app = sentry_app().await;
    let body = envelope(
        &json!({"event_id": EVENT_A, "dsn": dsn()}),
        &[("event", exception(EVENT_A).to_string())],
    );

    app.post(
        &format!("/api/{PROJECT}/envelope/"),
        &[("content-type", "application/x-sentry-envelope")],
        body,
        StatusCode::OK,
    )
    .await;

    assert_eq!(groups(&app).await.len(), 1);
}

#[tokio::test]
async fn a_missing_unknown_or_other_projects_key_is_a_401_and_stores_nothing() {
    let app = sentry_app().await;
    let body = event_envelope(&exception(EVENT_A));
    for uri in [
        format!("/api/{PROJECT}/envelope/"),
        format!("/api/{PROJECT}/envelope/?sentry_key=ffffffffffffffffffffffffffffffff"),
        format!("/api/7/envelope/?sentry_key={KEY}"),
    ] {
        let answer = app
            .post(
                &uri,
                &[("content-type", "text/plain")],
                body.clone(),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        assert_eq!(answer["error"]["code"], "unauthorized", "{uri}");
    }
    assert_eq!(app.count("error_logs").await, 0);
}

#[tokio::test]
async fn a_broken_envelope_is_a_400_naming_the_part() {
    let app = sentry_app().await;

    let answer = send_envelope(
        &app,
        "{}\n{\"type\":\"event\",\"length\":5000}\n{}",
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(answer["error"]["field"], "envelope.items[0].length");
}

#[tokio::test]
async fn a_project_id_that_is_not_a_number_is_a_400_naming_it() {
    let app = sentry_app().await;

    let answer = app
        .post(
            &format!("/api/deals/envelope/?sentry_key={KEY}"),
            &[("content-type", "text/plain")],
            event_envelope(&exception(EVENT_A)),
            StatusCode::BAD_REQUEST,
        )
        .await;

    assert_eq!(answer["error"]["field"], "projectId");
}

#[tokio::test]
async fn an_unknown_content_encoding_is_a_415() {
    let app = sentry_app().await;

    app.post(
        &envelope_uri(),
        &[("content-type", "text/plain"), ("content-encoding", "br")],
        "anything",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[tokio::test]
async fn an_event_whose_commit_fails_is_not_acknowledged_and_not_counted() {
    let app = sentry_app().await;
    app.db
        .connect()
        .await
        .batch_execute(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON "bundle"."sentry_events"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#,
        )
        .await
        .expect("the deferred trigger");

    send_envelope(
        &app,
        event_envelope(&exception(EVENT_A)),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;

    assert_eq!(app.count("error_logs").await, 0);
}

#[tokio::test]
async fn a_database_that_is_away_is_a_503_with_the_sdks_rate_limit_header() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port();
    let url = format!("postgres://nobody@127.0.0.1:{closed}/nothing?sslmode=disable");
    let app = events::App::build(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "300"),
        ("SENTRY_DSNS", dsn().as_str()),
    ]))
    .expect("the function");
    let request = axum::http::Request::post(envelope_uri())
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(event_envelope(&exception(EVENT_A))))
        .expect("request");

    let (headers, answer) = testkit::call(
        platform::lambda::Function::router(&app),
        request,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    assert_eq!(answer["error"]["code"], "unavailable");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-sentry-rate-limits"], "1::organization");
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_may_read_the_rate_limit_headers() {
    let app = spawn_app(&[
        ("SENTRY_DSNS", dsn().as_str()),
        ("CORS_ALLOWED_ORIGINS", "https://deals.example"),
    ])
    .await;

    let (headers, _) = app
        .request(
            "POST",
            &envelope_uri(),
            &[
                ("content-type", "text/plain"),
                ("origin", "https://deals.example"),
            ],
            event_envelope(&exception(EVENT_A)),
            StatusCode::OK,
        )
        .await;

    assert_eq!(
        headers["access-control-allow-origin"],
        "https://deals.example"
    );
    let exposed = headers["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-sentry-rate-limits") && exposed.contains("retry-after"),
        "{exposed}"
    );
}
