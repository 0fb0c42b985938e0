//! A success answer means committed: when the COMMIT itself fails (here a
//! deferred constraint trigger that raises at commit time, after every
//! statement succeeded), no write path answers 2xx, and nothing is stored.

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Makes every commit that wrote a row of `table` matching `condition`
/// fail. `sqlstate` is what the failure reports: `P0001` (a server-side
/// fault, a 500) or a class 23 code (the client's data, a 4xx).
pub async fn refuse_at_commit(app: &TestApp, table: &str, condition: &str, sqlstate: &str) {
    app.db
        .connect()
        .await
        .batch_execute(&format!(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF {condition} THEN
                   RAISE EXCEPTION 'refused at commit' USING ERRCODE = '{sqlstate}';
                 END IF;
                 RETURN NULL;
               END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON "{table}"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#
        ))
        .await
        .expect("the deferred trigger");
}

fn doomed_batch(size: usize, event_type: &str) -> Value {
    let t = Utc::now().timestamp_millis();
    let events: Vec<Value> = (0..size)
        .map(|i| {
            json!({"eventType": event_type, "eventId": format!("e-{i}"), "eventData": {"i": i}, "timestamp": t})
        })
        .collect();
    json!({"sessionId": "s-doomed", "events": events})
}

async fn assert_batch_is_refused_at_commit(size: usize) {
    let app = spawn_app(&[]).await;
    refuse_at_commit(
        &app,
        "analytics_events",
        r#"NEW."eventType" = 'doomed'"#,
        "P0001",
    )
    .await;

    let answer = app
        .post_json(
            &doomed_batch(size, "doomed"),
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await;

    assert_eq!(answer["error"]["code"], "internal");
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn a_single_event_whose_commit_fails_is_not_acknowledged() {
    assert_batch_is_refused_at_commit(1).await;
}

#[tokio::test]
async fn a_batch_below_the_copy_threshold_whose_commit_fails_is_not_acknowledged() {
    assert_batch_is_refused_at_commit(events::analytics::COPY_THRESHOLD - 1).await;
}

#[tokio::test]
async fn a_batch_at_the_copy_threshold_whose_commit_fails_is_not_acknowledged() {
    assert_batch_is_refused_at_commit(events::analytics::COPY_THRESHOLD).await;
}

#[tokio::test]
async fn a_batch_of_500_whose_commit_fails_is_not_acknowledged() {
    assert_batch_is_refused_at_commit(500).await;
}

#[tokio::test]
async fn a_copied_batch_with_funnel_steps_whose_commit_fails_is_not_acknowledged() {
    let app = spawn_app(&[]).await;
    refuse_at_commit(
        &app,
        "conversion_funnels",
        r#"NEW."stage" = 'doomed'"#,
        "P0001",
    )
    .await;
    let t = Utc::now().timestamp_millis();
    let events: Vec<Value> = (0..40)
        .map(|i| {
            json!({"eventType": "funnel", "eventId": format!("f-{i}"), "timestamp": t,
                   "eventData": {"stage": "doomed", "action": "view"}})
        })
        .collect();

    app.post_json(
        &json!({"sessionId": "s1", "events": events}),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;

    assert_eq!(app.count("analytics_events").await, 0);
    assert_eq!(app.count("conversion_funnels").await, 0);
}

#[tokio::test]
async fn a_small_batch_with_funnel_steps_whose_commit_fails_is_not_acknowledged() {
    let app = spawn_app(&[]).await;
    refuse_at_commit(
        &app,
        "conversion_funnels",
        r#"NEW."stage" = 'doomed'"#,
        "P0001",
    )
    .await;
    let body = json!({"sessionId": "s1", "events": [
        {"eventType": "funnel", "eventData": {"stage": "doomed", "action": "view"}},
    ]});

    app.post_json(&body, StatusCode::INTERNAL_SERVER_ERROR)
        .await;

    assert_eq!(app.count("analytics_events").await, 0);
    assert_eq!(app.count("conversion_funnels").await, 0);
}

#[tokio::test]
async fn a_commit_refusing_the_clients_data_is_a_4xx_not_a_500() {
    let app = spawn_app(&[]).await;
    refuse_at_commit(
        &app,
        "analytics_events",
        r#"NEW."eventType" = 'doomed'"#,
        "23514",
    )
    .await;

    for size in [1, 31, 32, 500] {
        let answer = app
            .post_json(
                &doomed_batch(size, "doomed"),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert_eq!(answer["error"]["code"], "constraint_violation", "{size}");
    }
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn web_vitals_whose_commit_fails_are_not_acknowledged() {
    let app = spawn_app(&[]).await;
    refuse_at_commit(&app, "performance_metrics", "true", "P0001").await;
    let metric = json!({"name": "LCP", "value": 2100.0, "rating": "good", "delta": 2100.0,
                        "id": "v6-1732500000000-1", "navigationType": "navigate", "entries": []});

    app.post_from_page(
        "/api/analytics/vitals?sessionId=s1",
        "text/plain;charset=UTF-8",
        CHROME,
        "https://deals.example/",
        &metric,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;

    assert_eq!(app.count("performance_metrics").await, 0);
}

#[tokio::test]
async fn a_browser_error_whose_commit_fails_is_not_acknowledged() {
    let app = spawn_app(&[]).await;
    refuse_at_commit(&app, "error_logs", "true", "P0001").await;
    let report = json!({"message": "TypeError: x is undefined", "sessionId": "s1",
                        "url": "https://deals.example/", "severity": "error"});

    app.post_from_page(
        "/api/analytics/errors",
        "application/json",
        CHROME,
        "https://deals.example/",
        &report,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;

    assert_eq!(app.count("error_logs").await, 0);
}
