use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

async fn post_vitals(
    app: &TestApp,
    uri: &str,
    body: &Value,
    user_agent: &str,
    expected: StatusCode,
) -> Value {
    app.post_from_page(
        uri,
        "text/plain;charset=UTF-8",
        user_agent,
        "https://deals.example/lisbon",
        body,
        expected,
    )
    .await
}

async fn metrics(
    app: &TestApp,
) -> Vec<(
    String,
    f64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
)> {
    app.db
        .connect()
        .await
        .query(
            r#"SELECT "metricName", "value", "rating", "sessionId", "deviceType", "browser", "os", "url"
               FROM "performance_metrics" ORDER BY "metricName""#,
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect()
}

#[tokio::test]
async fn the_existing_front_end_payload_is_stored_with_the_servers_reading_of_the_device() {
    let app = spawn_app(&[]).await;
    let body = json!({
        "sessionId": "session_1732500000000_abc", "metricName": "LCP", "value": 2100.0, "rating": "good",
        "url": "https://deals.example/", "deviceType": "desktop", "browser": "Chrome", "browserVersion": "131",
        "os": "Windows", "connectionType": "4g"
    });
    let answer = post_vitals(
        &app,
        "/api/analytics/performance",
        &body,
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(answer, json!({"received": 1, "stored": 1}));
    let row = &metrics(&app).await[0];
    assert_eq!(row.0, "LCP");
    assert_eq!(
        row.5.as_deref(),
        Some("Edge"),
        "the front end reports Edge as Chrome; the server does not"
    );
    assert_eq!(row.6.as_deref(), Some("Windows"));
    assert_eq!(row.7, "https://deals.example/");
}

#[tokio::test]
async fn web_vitals_metric_objects_of_every_supported_version_are_stored_as_sent() {
    for (version, metric) in [
        (
            "v4",
            json!({"name": "INP", "value": 180, "rating": "good", "delta": 180, "id": "v4-1732500000000-4711", "navigationType": "navigate", "entries": []}),
        ),
        (
            "v5",
            json!({"name": "CLS", "value": 0.12, "rating": "needs-improvement", "delta": 0.02, "id": "v5-1732500000000-4712", "navigationType": "back-forward-cache", "entries": []}),
        ),
        (
            "v6",
            json!({"name": "TTFB", "value": 950, "rating": "needs-improvement", "delta": 950, "id": "v6-1732500000000-4713", "navigationType": "soft-navigation", "entries": [],
                      "attribution": {"waitingDuration": 10, "dnsDuration": 20, "connectionDuration": 30, "requestDuration": 890}}),
        ),
    ] {
        let app = spawn_app(&[]).await;
        post_vitals(
            &app,
            "/api/analytics/vitals",
            &metric,
            IPHONE,
            StatusCode::ACCEPTED,
        )
        .await;
        let rows = metrics(&app).await;
        assert_eq!(rows.len(), 1, "{version}");
        assert_eq!(rows[0].0, metric["name"], "{version}");
        assert_eq!(rows[0].2, metric["rating"], "{version}");
        assert_eq!(
            rows[0].3, metric["id"],
            "{version}: without a session the page load's id stands in"
        );
        assert_eq!(
            (rows[0].4.as_deref(), rows[0].6.as_deref()),
            (Some("mobile"), Some("iOS")),
            "{version}"
        );
        assert_eq!(
            rows[0].7, "https://deals.example/lisbon",
            "{version}: the page comes from the Referer"
        );
    }
}

#[tokio::test]
async fn a_missing_rating_is_computed_with_the_library_thresholds() {
    let app = spawn_app(&[]).await;
    let body = json!([
        {"name": "LCP", "value": 4200, "id": "v6-1-1"},
        {"name": "FCP", "value": 1800, "id": "v6-1-2"},
        {"name": "CLS", "value": 0.2, "id": "v6-1-3"},
    ]);
    post_vitals(
        &app,
        "/api/analytics/vitals?sessionId=s-9",
        &body,
        IPHONE,
        StatusCode::ACCEPTED,
    )
    .await;
    let ratings: Vec<(String, String, String)> = metrics(&app)
        .await
        .into_iter()
        .map(|r| (r.0, r.2, r.3))
        .collect();
    assert_eq!(
        ratings,
        [
            (
                "CLS".to_owned(),
                "needs-improvement".to_owned(),
                "s-9".to_owned()
            ),
            ("FCP".to_owned(), "good".to_owned(), "s-9".to_owned()),
            ("LCP".to_owned(), "poor".to_owned(), "s-9".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_metric_reported_again_replaces_its_earlier_value() {
    let app = spawn_app(&[]).await;
    let first = json!({"name": "CLS", "value": 0.05, "delta": 0.05, "id": "v6-1732500000000-1"});
    let later = json!({"name": "CLS", "value": 0.3, "delta": 0.25, "id": "v6-1732500000000-1"});
    post_vitals(
        &app,
        "/api/analytics/vitals",
        &first,
        IPHONE,
        StatusCode::ACCEPTED,
    )
    .await;
    post_vitals(
        &app,
        "/api/analytics/vitals",
        &later,
        IPHONE,
        StatusCode::ACCEPTED,
    )
    .await;
    let rows = metrics(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1, rows[0].2.as_str()), (0.3, "poor"));
}

#[tokio::test]
async fn repeats_within_one_request_keep_the_last_report() {
    let app = spawn_app(&[]).await;
    let body = json!([
        {"name": "INP", "value": 100, "id": "v6-2-1"},
        {"name": "INP", "value": 650, "id": "v6-2-1"},
    ]);
    let answer = post_vitals(
        &app,
        "/api/analytics/vitals",
        &body,
        IPHONE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(answer["received"], 1);
    let rows = metrics(&app).await;
    assert_eq!((rows.len(), rows[0].1), (1, 650.0));
}

#[tokio::test]
async fn unknown_metrics_and_impossible_values_are_400s_naming_the_field() {
    let app = spawn_app(&[]).await;
    let cases = [
        (json!({"name": "FID", "value": 10, "id": "a"}), "name"),
        (
            json!({"metricName": "SPEED", "value": 10, "sessionId": "s"}),
            "metricName",
        ),
        (json!({"value": 10, "id": "a"}), "name"),
        (json!({"name": "LCP", "value": -1, "id": "a"}), "value"),
        (json!({"name": "LCP", "value": "fast", "id": "a"}), "value"),
        (json!({"name": "LCP", "value": 1e9, "id": "a"}), "value"),
        (json!({"name": "CLS", "value": 500, "id": "a"}), "value"),
        (
            json!({"name": "LCP", "value": 10, "rating": "great", "id": "a"}),
            "rating",
        ),
        (json!({"name": "LCP", "value": 10}), "sessionId"),
        (
            json!([{"name": "LCP", "value": 10, "id": "a"}, {"name": "TTFB", "value": -5, "id": "b"}]),
            "[1].value",
        ),
        (json!([{"name": "LCP", "value": 10, "id": "a"}, 3]), "[1]"),
    ];
    for (body, field) in cases {
        let answer = post_vitals(
            &app,
            "/api/analytics/vitals",
            &body,
            IPHONE,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    assert!(metrics(&app).await.is_empty());
}

#[tokio::test]
async fn a_metric_without_a_url_or_referer_is_refused_naming_url() {
    let app = spawn_app(&[]).await;
    let body = json!({"name": "LCP", "value": 10, "id": "a"}).to_string();
    let answer = app
        .post(
            "/api/analytics/vitals",
            &[("content-type", "application/json"), ("user-agent", IPHONE)],
            body,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(answer["error"]["field"], "url");
}

#[tokio::test]
async fn an_empty_or_oversized_array_is_a_400() {
    let app = spawn_app(&[]).await;
    post_vitals(
        &app,
        "/api/analytics/vitals",
        &json!([]),
        IPHONE,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"name": "LCP", "value": 1, "id": format!("v6-{i}")}))
        .collect();
    post_vitals(
        &app,
        "/api/analytics/vitals",
        &Value::Array(many),
        IPHONE,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
