use axum::http::StatusCode;

use crate::{insert_check, send, spawn_app};

#[tokio::test]
async fn hours_outside_one_to_seven_hundred_twenty_is_a_400_naming_the_field() {
    let app = spawn_app(&[]).await;
    for hours in ["0", "721", "abc", "-3", "1.5"] {
        let (_, body) = send(
            &app.function,
            "GET",
            &format!("/api/health/history?hours={hours}"),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["error"]["field"], "hours", "hours={hours}");
        assert!(body["error"]["requestId"].is_string());
    }
}

#[tokio::test]
async fn a_limit_out_of_range_is_a_400_naming_the_field() {
    let app = spawn_app(&[]).await;
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/history?limit=5000",
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["error"]["field"], "limit");
}

#[tokio::test]
async fn uptime_is_the_share_of_checks_that_were_not_down() {
    let app = spawn_app(&[]).await;
    for (status, minutes) in [
        ("healthy", 5),
        ("degraded", 10),
        ("healthy", 15),
        ("down", 20),
    ] {
        insert_check(
            &app.db,
            "search",
            status,
            chrono::Duration::minutes(minutes),
        )
        .await;
    }
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/history?hours=1",
        StatusCode::OK,
    )
    .await;
    let search = &body["services"][0];
    assert_eq!(search["service"], "search");
    assert_eq!(search["checks"], 4);
    assert_eq!(search["uptimePercent"], 75.0);
    assert_eq!(search["recent"][0]["status"], "healthy", "newest first");
}

#[tokio::test]
async fn history_covers_only_the_requested_window() {
    let app = spawn_app(&[]).await;
    insert_check(&app.db, "search", "healthy", chrono::Duration::minutes(30)).await;
    insert_check(&app.db, "search", "down", chrono::Duration::hours(3)).await;
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/history?hours=2",
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["services"][0]["checks"], 1);
    assert_eq!(body["services"][0]["uptimePercent"], 100.0);
}

#[tokio::test]
async fn history_filters_by_service() {
    let app = spawn_app(&[]).await;
    insert_check(&app.db, "search", "healthy", chrono::Duration::minutes(5)).await;
    insert_check(&app.db, "payments", "down", chrono::Duration::minutes(5)).await;
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/history?service=payments",
        StatusCode::OK,
    )
    .await;
    let services = body["services"].as_array().expect("services");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["service"], "payments");
    assert_eq!(services[0]["uptimePercent"], 0.0);
}

#[tokio::test]
async fn recent_checks_are_capped_by_the_limit() {
    let app = spawn_app(&[]).await;
    for minutes in 1..=5 {
        insert_check(
            &app.db,
            "search",
            "healthy",
            chrono::Duration::minutes(minutes),
        )
        .await;
    }
    let (_, body) = send(
        &app.function,
        "GET",
        "/api/health/history?limit=2",
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["services"][0]["checks"], 5);
    assert_eq!(
        body["services"][0]["recent"].as_array().map(Vec::len),
        Some(2)
    );
}
