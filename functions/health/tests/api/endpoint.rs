use axum::http::StatusCode;
use testkit::fixture;

use crate::{insert_check, invoke, send, spawn_app, unreachable_database};

#[tokio::test]
async fn answers_200_healthy_when_the_database_and_every_service_are_healthy() {
    let app = spawn_app(&[]).await;
    insert_check(&app.db, "search", "healthy", chrono::Duration::minutes(1)).await;
    let (_, body) = send(&app.function, "GET", "/api/health", StatusCode::OK).await;
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"]["status"], "healthy");
    assert_eq!(body["services"][0]["service"], "search");
}

#[tokio::test]
async fn answers_207_degraded_when_a_service_was_last_seen_down() {
    let app = spawn_app(&[]).await;
    insert_check(&app.db, "search", "healthy", chrono::Duration::minutes(10)).await;
    insert_check(&app.db, "search", "down", chrono::Duration::minutes(1)).await;
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health",
        StatusCode::MULTI_STATUS,
    )
    .await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["services"][0]["status"], "down");
}

#[tokio::test]
async fn a_recovered_service_counts_by_its_latest_check() {
    let app = spawn_app(&[]).await;
    insert_check(&app.db, "search", "down", chrono::Duration::minutes(10)).await;
    insert_check(&app.db, "search", "healthy", chrono::Duration::minutes(1)).await;
    send(&app.function, "GET", "/api/health", StatusCode::OK).await;
}

#[tokio::test]
async fn answers_503_unhealthy_when_the_database_is_unreachable() {
    let state = unreachable_database();
    let (_, body) = send(
        &state,
        "GET",
        "/api/health",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["database"]["status"], "down");
}

#[tokio::test]
async fn health_responses_are_never_cached() {
    let app = spawn_app(&[]).await;
    let (headers, _) = send(&app.function, "GET", "/api/health", StatusCode::OK).await;
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
}

#[tokio::test]
async fn head_answers_with_a_status_and_no_body() {
    let app = spawn_app(&[]).await;
    let (headers, body) = send(&app.function, "HEAD", "/api/health", StatusCode::OK).await;
    assert_eq!(body, serde_json::Value::Null);
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    send(
        &unreachable_database(),
        "HEAD",
        "/api/health",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}

#[tokio::test]
async fn an_api_gateway_v2_request_is_served_with_its_request_id() {
    let app = spawn_app(&[]).await;
    let mut payload = fixture("apigw-v2-request.json");
    payload["rawPath"] = "/api/health".into();
    payload["requestContext"]["http"]["path"] = "/api/health".into();
    let response = invoke(&app.function, payload).await;
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["headers"]["x-request-id"], "LV7fzho-PHcEJPw=");
    let body: serde_json::Value =
        serde_json::from_str(response["body"].as_str().expect("text body")).expect("json");
    assert_eq!(body["status"], "healthy");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let app = spawn_app(&[]).await;
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/nope",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_database_that_is_down_is_named_with_a_short_reason_not_the_drivers_text() {
    let function = unreachable_database();
    let (_, body) = send(
        &function,
        "GET",
        "/api/health",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["database"]["service"], "database");
    assert_eq!(body["database"]["errorMessage"], "connection failed");
    let text = body.to_string();
    for inside in [
        "os error",
        "Connection refused",
        "error connecting",
        "object",
        "127.0.0.1",
    ] {
        assert!(!text.contains(inside), "{inside:?} leaks: {text}");
    }
}
