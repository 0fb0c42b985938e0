//! The intake's pool does not probe connections before use (see
//! `events::db`): a connection the server ended while the pool held it must
//! cost neither the request nor a duplicate row.

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};

use crate::spawn_app;

const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

#[tokio::test(flavor = "current_thread")]
async fn a_beacon_after_the_server_ended_the_pooled_connection_is_stored_once() {
    let app = spawn_app(&[]).await;
    let first = json!({"sessionId": "s1", "eventType": "page_view", "eventData": {"url": "/a"}});
    app.post_json(&first, StatusCode::ACCEPTED).await;
    assert!(app.end_sessions_unnoticed() >= 1, "no session was ended");

    let second = json!({"sessionId": "s1", "eventType": "page_view", "eventData": {"url": "/b"}});
    let answer = app.post_json(&second, StatusCode::ACCEPTED).await;

    assert_eq!(
        answer,
        json!({"received": 1, "stored": 1, "duplicates": 0, "funnelSteps": 0})
    );
    assert_eq!(app.count("analytics_events").await, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_copied_batch_after_the_server_ended_the_pooled_connection_is_stored_once() {
    let app = spawn_app(&[]).await;
    let t = Utc::now().timestamp_millis();
    let batch = |from: i64| {
        let events: Vec<Value> = (from..from + 40)
            .map(
                |i| json!({"eventType": "page_view", "eventData": {"position": i}, "timestamp": t}),
            )
            .collect();
        json!({"sessionId": "s1", "events": events})
    };
    app.post_json(&batch(0), StatusCode::ACCEPTED).await;
    assert!(app.end_sessions_unnoticed() >= 1, "no session was ended");

    let answer = app.post_json(&batch(40), StatusCode::ACCEPTED).await;

    assert_eq!(answer["stored"], 40);
    assert_eq!(app.count("analytics_events").await, 80);
}

#[tokio::test(flavor = "current_thread")]
async fn an_error_report_after_the_server_ended_the_pooled_connection_is_counted_once() {
    let app = spawn_app(&[]).await;
    let report = json!({"message": "boom", "sessionId": "s1", "url": "https://deals.example/"});
    let post = || {
        app.post_from_page(
            "/api/analytics/errors",
            "application/json",
            SAFARI,
            "https://deals.example/",
            &report,
            StatusCode::ACCEPTED,
        )
    };
    post().await;
    assert!(app.end_sessions_unnoticed() >= 1, "no session was ended");

    post().await;

    let count: i32 = app
        .db
        .connect()
        .await
        .query_one(r#"SELECT "count" FROM "error_logs""#, &[])
        .await
        .expect("one group")
        .get(0);
    assert_eq!(count, 2);
}
