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
    assert_eq!(answer["stored"], 0);
    assert_eq!(app.count("analytics_events").await, 0);
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
