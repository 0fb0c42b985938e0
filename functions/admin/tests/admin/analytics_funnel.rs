//! `GET /api/admin/analytics/funnel`: an ordered funnel over sessions,
//! against answers computed by hand on seeded sessions.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

pub const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const MOBILE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// An analytics event as the intake stores it; `at` is UTC text.
pub async fn event(
    app: &TestApp,
    session: &str,
    user: Option<&str>,
    event_type: &str,
    at: &str,
    user_agent: Option<&str>,
) -> String {
    let id = format!("ev-{}", uuid_like(app).await);
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "userAgent", "timestamp")
               VALUES ($1, $2, $3, $4, '{}', $5, $6::text::timestamp)"#,
            &[&id, &user, &session, &event_type, &user_agent, &at],
        )
        .await
        .expect("insert event");
    id
}

async fn uuid_like(app: &TestApp) -> String {
    app.client
        .query_one("SELECT gen_random_uuid()::text", &[])
        .await
        .expect("uuid")
        .get(0)
}

/// A funnel step as the intake writes it for a `funnel` event: the event
/// and its `conversion_funnels` row, with the same id.
async fn funnel_step(app: &TestApp, session: &str, stage: &str, at: &str) {
    let id = event(app, session, None, "funnel", at, None).await;
    app.client
        .execute(
            r#"INSERT INTO "conversion_funnels" ("id", "sessionId", "stage", "action", "timestamp")
               VALUES ($1, $2, $3, 'view', $4::text::timestamp)"#,
            &[&id, &session, &stage, &at],
        )
        .await
        .expect("insert funnel step");
}

const STEPS: &str = "steps=flight_search,results_view,booking_complete";

/// The seeded sessions, each for one rule (2026-11-02, window 1 hour):
/// - s1 (desktop) completes: search 10:00, results 10:10, booking 10:20;
/// - s2 (mobile) books before the results: booking 10:03 does not count
///   after results 10:05, so it stops at results;
/// - s3 (desktop) searches twice (10:00, 10:30), results 10:40: counted
///   once, from the earliest search (2,400 s to results);
/// - s4 (mobile): results exactly one hour after the search: counts;
/// - s5 (mobile): results one hour and 1 ms after: does not;
/// - s6 (no user agent) only through `conversion_funnels`: 12:00, 12:01,
///   12:02, completes;
/// - s7 has results without a search, s8 searched the day before: neither
///   enters.
async fn seed(app: &TestApp) {
    let d = "2026-11-02";
    for (session, ua, steps) in [
        (
            "s1",
            DESKTOP,
            vec![
                ("flight_search", "10:00:00"),
                ("results_view", "10:10:00"),
                ("booking_complete", "10:20:00"),
            ],
        ),
        (
            "s2",
            MOBILE,
            vec![
                ("flight_search", "10:00:00"),
                ("booking_complete", "10:03:00"),
                ("results_view", "10:05:00"),
            ],
        ),
        (
            "s3",
            DESKTOP,
            vec![
                ("flight_search", "10:00:00"),
                ("flight_search", "10:30:00"),
                ("results_view", "10:40:00"),
            ],
        ),
        (
            "s4",
            MOBILE,
            vec![("flight_search", "10:00:00"), ("results_view", "11:00:00")],
        ),
        (
            "s5",
            MOBILE,
            vec![
                ("flight_search", "10:00:00"),
                ("results_view", "11:00:00.001"),
            ],
        ),
        ("s7", DESKTOP, vec![("results_view", "10:00:00")]),
    ] {
        for (step, time) in steps {
            event(app, session, None, step, &format!("{d} {time}"), Some(ua)).await;
        }
    }
    event(
        app,
        "s8",
        None,
        "flight_search",
        "2026-11-01 23:00:00",
        Some(DESKTOP),
    )
    .await;
    for (stage, time) in [
        ("flight_search", "12:00:00"),
        ("results_view", "12:01:00"),
        ("booking_complete", "12:02:00"),
    ] {
        funnel_step(app, "s6", stage, &format!("{d} {time}")).await;
    }
}

async fn funnel(app: &TestApp, token: &str, query: &str) -> Value {
    app.expect(
        "GET",
        &format!(
            "/api/admin/analytics/funnel?from=2026-11-02&to=2026-11-03&window=1h&{STEPS}{query}"
        ),
        Some(token),
        None,
        StatusCode::OK,
    )
    .await
}

fn counts(steps: &Value) -> Vec<u64> {
    steps
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["count"].as_u64().expect("count"))
        .collect()
}

fn by_value(answer: &Value) -> Vec<(String, Vec<u64>)> {
    answer["breakdownValues"]
        .as_array()
        .expect("breakdown values")
        .iter()
        .map(|row| {
            (
                row["value"].as_str().expect("value").to_owned(),
                counts(&row["steps"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_funnel_counts_sessions_in_order_within_the_window() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    let answer = funnel(&app, &token, "").await;
    assert_eq!(counts(&answer["steps"]), vec![6, 5, 2], "{answer}");
    let steps = &answer["steps"];
    assert_eq!(steps[0]["conversionFromPrevious"], json!(1.0));
    assert_eq!(steps[1]["conversionFromPrevious"], json!(5.0 / 6.0));
    assert_eq!(steps[2]["conversionFromPrevious"], json!(2.0 / 5.0));
    assert_eq!(steps[2]["conversionFromFirst"], json!(2.0 / 6.0));
    assert_eq!(
        steps
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["dropOff"].clone())
            .collect::<Vec<_>>(),
        vec![json!(0), json!(1), json!(3)]
    );
    // Results after 600, 300, 2,400, 3,600 and 60 s; bookings after 600 and 60 s.
    assert_eq!(steps[0]["medianSecondsFromPrevious"], Value::Null);
    assert_eq!(steps[1]["medianSecondsFromPrevious"], json!(600.0));
    assert_eq!(steps[2]["medianSecondsFromPrevious"], json!(330.0));
    assert_eq!(answer["windowSeconds"], json!(3600));
}

#[tokio::test]
async fn the_window_edge_counts_and_one_millisecond_later_does_not() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    event(
        &app,
        "edge",
        None,
        "flight_search",
        "2026-11-02 10:00:00",
        None,
    )
    .await;
    event(
        &app,
        "edge",
        None,
        "results_view",
        "2026-11-02 11:00:00",
        None,
    )
    .await;
    event(
        &app,
        "late",
        None,
        "flight_search",
        "2026-11-02 10:00:00",
        None,
    )
    .await;
    event(
        &app,
        "late",
        None,
        "results_view",
        "2026-11-02 11:00:00.001",
        None,
    )
    .await;
    let answer = funnel(&app, &token, "").await;
    assert_eq!(counts(&answer["steps"]), vec![2, 1, 0]);
    let wider = app
        .expect(
            "GET",
            &format!(
                "/api/admin/analytics/funnel?from=2026-11-02&to=2026-11-03&window=61m&{STEPS}"
            ),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(counts(&wider["steps"]), vec![2, 2, 0]);
}

#[tokio::test]
async fn a_step_before_the_previous_one_does_not_count() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    event(
        &app,
        "s",
        None,
        "booking_complete",
        "2026-11-02 09:59:00",
        None,
    )
    .await;
    event(&app, "s", None, "results_view", "2026-11-02 09:59:30", None).await;
    event(
        &app,
        "s",
        None,
        "flight_search",
        "2026-11-02 10:00:00",
        None,
    )
    .await;
    let answer = funnel(&app, &token, "").await;
    assert_eq!(counts(&answer["steps"]), vec![1, 0, 0]);
}

#[tokio::test]
async fn a_repeated_step_counts_once_from_its_earliest_occurrence() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for at in ["10:00:00", "10:30:00", "10:35:00"] {
        event(
            &app,
            "s",
            None,
            "flight_search",
            &format!("2026-11-02 {at}"),
            None,
        )
        .await;
    }
    event(&app, "s", None, "results_view", "2026-11-02 10:40:00", None).await;
    event(&app, "s", None, "results_view", "2026-11-02 10:45:00", None).await;
    let answer = funnel(&app, &token, "").await;
    assert_eq!(counts(&answer["steps"]), vec![1, 1, 0]);
    assert_eq!(
        answer["steps"][1]["medianSecondsFromPrevious"],
        json!(2400.0)
    );
}

#[tokio::test]
async fn both_funnel_sources_are_read_and_named_without_double_counting() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    let answer = funnel(&app, &token, "").await;
    assert_eq!(answer["source"], "analytics_events+conversion_funnels");
    // s1-s5 and s7 have 14 step events; s6's `funnel` events are not read,
    // only their three conversion_funnels rows.
    assert_eq!(
        answer["rows"],
        json!({"analyticsEvents": 14, "conversionFunnels": 3})
    );
    let only_events = app.expect(
        "GET",
        &format!("/api/admin/analytics/funnel?from=2026-11-02T10:00:00Z&to=2026-11-02T11:00:00Z&window=1m&{STEPS}"),
        Some(&token),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(only_events["source"], "analytics_events");
}

#[tokio::test]
async fn a_funnel_breaks_down_by_device() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    let answer = funnel(&app, &token, "&breakdown=device").await;
    assert_eq!(answer["breakdown"], "device");
    assert_eq!(
        by_value(&answer),
        vec![
            ("desktop".to_owned(), vec![2, 2, 1]),
            ("mobile".to_owned(), vec![3, 2, 0]),
            ("unknown".to_owned(), vec![1, 1, 1]),
        ]
    );
    assert_eq!(counts(&answer["steps"]), vec![6, 5, 2]);
}

#[tokio::test]
async fn a_funnel_breaks_down_by_experiment_variant() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    app.experiment("checkout-copy", "running").await;
    for (session, variant) in [("s1", "control"), ("s2", "treatment"), ("s3", "treatment")] {
        app.client
            .execute(
                r#"INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant")
                   VALUES ($1, 'checkout-copy', $1, $2)"#,
                &[&session, &variant],
            )
            .await
            .expect("insert participation");
    }
    let answer = funnel(&app, &token, "&breakdown=variant&flag=checkout-copy").await;
    assert_eq!(
        by_value(&answer),
        vec![
            ("control".to_owned(), vec![1, 1, 1]),
            ("none".to_owned(), vec![3, 2, 1]),
            ("treatment".to_owned(), vec![2, 2, 0]),
        ]
    );
    let missing = app
        .expect(
            "GET",
            &format!("/api/admin/analytics/funnel?from=2026-11-02&to=2026-11-03&{STEPS}&breakdown=variant&flag=nope"),
            Some(&token),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(missing["error"]["field"], "flag");
}

#[tokio::test]
async fn the_default_steps_are_the_booking_flow() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/funnel?from=2026-11-02&to=2026-11-03",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let names: Vec<&str> = answer["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(
        names,
        [
            "flight_search",
            "results_view",
            "flight_selected",
            "begin_checkout",
            "payment_started",
            "booking_complete"
        ]
    );
    assert_eq!(answer["windowSeconds"], json!(86400));
    assert_eq!(answer["source"], "none");
}

#[tokio::test]
async fn bad_funnel_parameters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for (query, field) in [
        ("to=2026-11-03", "from"),
        ("from=2026-11-02&to=2026-11-02", "to"),
        ("from=2026-11-02&to=2027-11-02", "to"),
        ("from=2026-11-02&to=2026-11-03&steps=flight_search", "steps"),
        ("from=2026-11-02&to=2026-11-03&steps=a,b,a", "steps"),
        ("from=2026-11-02&to=2026-11-03&window=soon", "window"),
        ("from=2026-11-02&to=2026-11-03&window=91d", "window"),
        ("from=2026-11-02&to=2026-11-03&breakdown=os", "breakdown"),
        ("from=2026-11-02&to=2026-11-03&breakdown=variant", "flag"),
        ("from=2026-11-02&to=2026-11-03&flag=x", "flag"),
        ("from=yesterday&to=2026-11-03", "from"),
    ] {
        let body = app
            .expect(
                "GET",
                &format!("/api/admin/analytics/funnel?{query}"),
                Some(&token),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}
