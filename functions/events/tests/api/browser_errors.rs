use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
const FIREFOX: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

const CHROME_STACK_BUILD_A: &str =
    "TypeError: Cannot read properties of undefined (reading 'price')
    at formatDeal (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:2345)
    at DealCard (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:9876)";
const FIREFOX_STACK_BUILD_B: &str =
    "formatDeal@https://deals.example/_next/static/chunks/app/deals-9e8d7c6b.js:1:2401
DealCard@https://deals.example/_next/static/chunks/app/deals-9e8d7c6b.js:1:9990";

async fn report(
    app: &TestApp,
    uri: &str,
    body: &Value,
    user_agent: &str,
    expected: StatusCode,
) -> Value {
    app.post_from_page(
        uri,
        "application/json",
        user_agent,
        "https://deals.example/deals/lisbon",
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
            r#"SELECT "fingerprint", "count", "resolved", "notes", "severity", "browser", "os", "url", "message" FROM "error_logs" ORDER BY "message""#,
            &[],
        )
        .await
        .expect("groups")
}

fn price_error(stack: &str) -> Value {
    json!({"message": "Cannot read properties of undefined (reading 'price')", "errorType": "TypeError", "stack": stack, "sessionId": "s1"})
}

#[tokio::test]
async fn a_first_occurrence_opens_a_group_with_browser_os_and_page() {
    let app = spawn_app(&[]).await;
    let answer = report(
        &app,
        "/api/analytics/errors",
        &price_error(CHROME_STACK_BUILD_A),
        IPHONE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(answer["grouping"], "new");
    let rows = groups(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(1), 1);
    assert_eq!(
        rows[0].get::<_, String>(4),
        "error",
        "severity defaults to error"
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(5).as_deref(),
        Some("Safari")
    );
    assert_eq!(rows[0].get::<_, Option<String>>(6).as_deref(), Some("iOS"));
    assert_eq!(
        rows[0].get::<_, String>(7),
        "https://deals.example/deals/lisbon"
    );
}

#[tokio::test]
async fn the_same_bug_from_two_browsers_and_two_builds_is_one_group() {
    let app = spawn_app(&[]).await;
    report(
        &app,
        "/api/analytics/errors",
        &price_error(CHROME_STACK_BUILD_A),
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    let second = report(
        &app,
        "/api/monitoring/client-error",
        &price_error(FIREFOX_STACK_BUILD_B),
        FIREFOX,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(second["grouping"], "grouped");
    let rows = groups(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(1), 2);
}

#[tokio::test]
async fn different_bugs_are_different_groups() {
    let app = spawn_app(&[]).await;
    report(
        &app,
        "/api/analytics/errors",
        &price_error(CHROME_STACK_BUILD_A),
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    let other = json!({"message": "Failed to fetch", "errorType": "TypeError", "sessionId": "s1"});
    report(
        &app,
        "/api/analytics/errors",
        &other,
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(groups(&app).await.len(), 2);
}

#[tokio::test]
async fn a_caller_fingerprint_wins() {
    let app = spawn_app(&[]).await;
    let mut first = price_error(CHROME_STACK_BUILD_A);
    first["fingerprint"] = "checkout-timeout".into();
    let second = json!({"message": "something else entirely", "sessionId": "s2", "fingerprint": "checkout-timeout"});
    report(
        &app,
        "/api/analytics/errors",
        &first,
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    let answer = report(
        &app,
        "/api/analytics/errors",
        &second,
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        answer,
        json!({"fingerprint": "checkout-timeout", "grouping": "grouped"})
    );
}

#[tokio::test]
async fn a_resolved_group_seen_again_is_reopened_as_a_regression() {
    let app = spawn_app(&[]).await;
    report(
        &app,
        "/api/analytics/errors",
        &price_error(CHROME_STACK_BUILD_A),
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    app.db
        .connect()
        .await
        .execute(
            r#"UPDATE "error_logs" SET "resolved" = true, "resolvedAt" = '2026-11-20 10:00:00', "resolvedBy" = 'ops@deals.example', "notes" = 'fixed in 1.4.2'"#,
            &[],
        )
        .await
        .expect("resolve");
    let answer = report(
        &app,
        "/api/analytics/errors",
        &price_error(CHROME_STACK_BUILD_A),
        EDGE,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(answer["grouping"], "regression");
    let rows = groups(&app).await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].get::<_, bool>(2), "reopened");
    assert_eq!(rows[0].get::<_, i32>(1), 2);
    let notes: String = rows[0].get(3);
    assert!(
        notes.starts_with("fixed in 1.4.2\nRegression: seen again at "),
        "{notes}"
    );
    assert!(
        notes.contains("2026-11-20 10:00:00") && notes.contains("ops@deals.example"),
        "{notes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_errors_open_one_group() {
    let app = spawn_app(&[]).await;
    // Three rounds: one race can go the right way by luck, three rarely do.
    for round in ["alpha", "beta", "gamma"] {
        let body = json!({"message": format!("race {round}"), "sessionId": "s"}).to_string();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let router = platform::lambda::Function::router(&app.app);
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                use tower::ServiceExt;
                let request = axum::http::Request::post("/api/analytics/errors")
                    .header("content-type", "application/json")
                    .header("user-agent", EDGE)
                    .header("referer", "https://deals.example/")
                    .body(axum::body::Body::from(body))
                    .expect("request");
                router.oneshot(request).await.expect("response").status()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task"), StatusCode::ACCEPTED);
        }
    }
    let counts: Vec<i32> = groups(&app).await.iter().map(|r| r.get(1)).collect();
    assert_eq!(counts, [16, 16, 16]);
}

#[tokio::test]
async fn both_severity_vocabularies_are_stored_in_one() {
    let app = spawn_app(&[]).await;
    for (i, severity) in ["HIGH", "warning", "CRITICAL"].iter().enumerate() {
        let body = json!({"message": format!("bug {}", ["a", "b", "c"][i]), "sessionId": "s", "severity": severity, "fingerprint": format!("f{i}")});
        report(
            &app,
            "/api/analytics/errors",
            &body,
            EDGE,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    let stored: Vec<String> = groups(&app).await.iter().map(|r| r.get(4)).collect();
    assert_eq!(stored, ["error", "warning", "critical"]);
}

#[tokio::test]
async fn invalid_reports_are_400s_naming_the_field() {
    let app = spawn_app(&[]).await;
    let cases = [
        (json!({"sessionId": "s"}), "message"),
        (json!({"message": "", "sessionId": "s"}), "message"),
        (
            json!({"message": "x".repeat(4001), "sessionId": "s"}),
            "message",
        ),
        (json!({"message": "boom"}), "sessionId"),
        (
            json!({"message": "boom", "sessionId": "s", "severity": "apocalyptic"}),
            "severity",
        ),
        (
            json!({"message": "boom", "sessionId": "s", "stack": "x".repeat(40_000)}),
            "stack",
        ),
        (
            json!({"message": "boom", "sessionId": "s", "errorType": 7}),
            "errorType",
        ),
        (
            json!({"message": "boom", "sessionId": "s", "fingerprint": "f".repeat(129)}),
            "fingerprint",
        ),
    ];
    for (body, field) in cases {
        let answer = report(
            &app,
            "/api/analytics/errors",
            &body,
            EDGE,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    let no_page = app
        .post(
            "/api/analytics/errors",
            &[("content-type", "application/json"), ("user-agent", EDGE)],
            json!({"message": "boom", "sessionId": "s"}).to_string(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(no_page["error"]["field"], "url");
    assert!(groups(&app).await.is_empty());
}
