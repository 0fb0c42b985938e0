use axum::http::StatusCode;
use serde_json::json;

use crate::spawn_app;

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[tokio::test]
async fn a_known_bot_gets_a_202_with_the_dropped_header_and_nothing_is_stored() {
    let app = spawn_app(&[]).await;
    let body = json!({"sessionId": "s1", "events": [{"eventType": "page_view"}]}).to_string();
    let (headers, answer) = app
        .request(
            "POST",
            "/api/analytics/events",
            &[
                ("content-type", "application/json"),
                ("user-agent", GOOGLEBOT),
            ],
            body,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(headers["x-analytics-dropped"], "bot");
    assert_eq!(answer, json!({"stored": 0, "dropped": "bot"}));
    assert_eq!(app.count("analytics_events").await, 0);
}

const INGEST_KEY: &str = "a-trusted-senders-key-of-32-chars-or-more";

#[tokio::test]
async fn a_trusted_server_with_an_ingest_key_is_not_dropped_and_names_its_visitor() {
    let app = spawn_app(&[("INGEST_KEYS", INGEST_KEY)]).await;
    let body = json!({"sessionId": "s1", "eventType": "page_view"}).to_string();
    app.request(
        "POST",
        "/api/analytics/events",
        &[
            ("content-type", "application/json"),
            ("user-agent", "curl/8.5.0"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-ingest-key", INGEST_KEY),
            ("x-visitor-ip", "203.0.113.77"),
            ("x-visitor-user-agent", "Mozilla/5.0 (iPhone) Safari/604.1"),
        ],
        body,
        StatusCode::ACCEPTED,
    )
    .await;
    let rows = app.events().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].get::<_, Option<String>>(6).as_deref(),
        Some("Mozilla/5.0 (iPhone) Safari/604.1")
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(7).as_deref(),
        Some("203.0.113.0")
    );
}

#[tokio::test]
async fn a_wrong_ingest_key_is_a_401_and_stores_nothing() {
    let app = spawn_app(&[("INGEST_KEYS", INGEST_KEY)]).await;
    let body = json!({"sessionId": "s1", "eventType": "page_view"}).to_string();
    let (_, answer) = app
        .request(
            "POST",
            "/api/analytics/events",
            &[
                ("content-type", "application/json"),
                ("x-ingest-key", "a-trusted-senders-key-of-32-chars-or-moRE"),
            ],
            body,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    assert_eq!(answer["error"]["code"], "unauthorized");
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn without_a_key_a_server_relaying_is_dropped_as_the_bot_it_looks_like() {
    let app = spawn_app(&[("INGEST_KEYS", INGEST_KEY)]).await;
    let body = json!({"sessionId": "s1", "eventType": "page_view"}).to_string();
    let (headers, _) = app
        .request(
            "POST",
            "/api/analytics/events",
            &[
                ("content-type", "application/json"),
                ("user-agent", "curl/8.5.0"),
            ],
            body,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(headers["x-analytics-dropped"], "bot");
}

#[tokio::test]
async fn a_bot_learns_nothing_from_an_invalid_body_either() {
    let app = spawn_app(&[]).await;
    app.request(
        "POST",
        "/api/analytics/events",
        &[
            ("content-type", "application/json"),
            ("user-agent", GOOGLEBOT),
        ],
        "{not json",
        StatusCode::ACCEPTED,
    )
    .await;
}

#[tokio::test]
async fn a_browser_is_not_dropped() {
    let app = spawn_app(&[]).await;
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let body = json!({"sessionId": "s1", "events": [{"eventType": "page_view"}]}).to_string();
    let (headers, _) = app
        .request(
            "POST",
            "/api/analytics/events",
            &[("content-type", "application/json"), ("user-agent", chrome)],
            body,
            StatusCode::ACCEPTED,
        )
        .await;
    assert!(headers.get("x-analytics-dropped").is_none());
    assert_eq!(app.count("analytics_events").await, 1);
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered() {
    let app = spawn_app(&[("CORS_ALLOWED_ORIGINS", "https://deals.example")]).await;
    let (headers, _) = app
        .request(
            "OPTIONS",
            "/api/analytics/events",
            &[
                ("origin", "https://deals.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://deals.example"
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|m| m.contains("POST"))
    );
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .is_ok_and(|h| h.contains("content-type"))
    );
}

#[tokio::test]
async fn another_origin_gets_no_cors_grant() {
    let app = spawn_app(&[("CORS_ALLOWED_ORIGINS", "https://deals.example")]).await;
    let (headers, _) = app
        .request(
            "OPTIONS",
            "/api/analytics/events",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
            "",
            StatusCode::OK,
        )
        .await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_cross_origin_post_from_an_allowed_origin_carries_the_grant() {
    let app = spawn_app(&[("CORS_ALLOWED_ORIGINS", "https://deals.example")]).await;
    let body = json!({"sessionId": "s1", "events": [{"eventType": "page_view"}]}).to_string();
    let (headers, _) = app
        .request(
            "POST",
            "/api/analytics/events",
            &[
                ("content-type", "text/plain"),
                ("origin", "https://deals.example"),
            ],
            body,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://deals.example"
    );
}
