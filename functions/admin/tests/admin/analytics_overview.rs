//! `GET /api/admin/analytics/overview` (from snapshots only), the top
//! error groups, the CSV exports and the analytics permissions.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::analytics_funnel::event;
use crate::{TestApp, spawn_app};

/// A snapshot row as the rollup writes it: with its copy in
/// `bundle.metric_series`, in one statement.
pub async fn snapshot(
    app: &TestApp,
    metric: &str,
    granularity: &str,
    at: &str,
    value: f64,
    dimensions: Value,
) {
    app.client
        .execute(
            r#"WITH snapshot AS (
                   INSERT INTO "metric_snapshots" ("id", "metricName", "value", "dimensions", "timestamp", "granularity")
                   VALUES (gen_random_uuid()::text, $1, $2, $3, $4::text::timestamp, $5)
                   RETURNING "metricName", "granularity", "timestamp", "value")
               INSERT INTO "bundle"."metric_series" ("metricName", "granularity", "timestamp", "value")
               SELECT * FROM snapshot"#,
            &[&metric, &value, &dimensions, &at, &granularity],
        )
        .await
        .expect("insert snapshot");
}

fn series<'a>(answer: &'a Value, metric: &str) -> &'a Value {
    answer["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|s| s["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {answer}"))
}

/// Days 2026-11-01 to 11-04; the range asked is 11-03..11-05 and its
/// previous period 11-01..11-03.
async fn seed_days(app: &TestApp) {
    for (day, views) in [
        ("2026-11-01", 10.0),
        ("2026-11-02", 20.0),
        ("2026-11-03", 30.0),
    ] {
        snapshot(
            app,
            "page_views",
            "day",
            day,
            views,
            json!({"device": {"desktop": views}}),
        )
        .await;
    }
    // 11-04 has no page_views row: a gap, not a zero.
    for (day, sessions, rate) in [
        ("2026-11-02", 20.0, 0.25),
        ("2026-11-03", 10.0, 0.5),
        ("2026-11-04", 30.0, 0.0),
    ] {
        snapshot(app, "sessions", "day", day, sessions, json!({})).await;
        snapshot(app, "conversion_rate", "day", day, rate, json!({})).await;
    }
    for (day, p75) in [
        ("2026-11-01", 1000.0),
        ("2026-11-02", 4000.0),
        ("2026-11-03", 1500.0),
        ("2026-11-04", 2000.0),
    ] {
        snapshot(
            app,
            "vitals.LCP.p75",
            "day",
            day,
            p75,
            json!({"samples": 1}),
        )
        .await;
    }
    // Rows the day view must not read: an hour, and a day after the range.
    snapshot(
        app,
        "page_views",
        "hour",
        "2026-11-03 05:00:00",
        7.0,
        json!({}),
    )
    .await;
    snapshot(app, "page_views", "day", "2026-11-05", 99.0, json!({})).await;
}

#[tokio::test]
async fn the_overview_reads_day_snapshots_with_the_previous_period() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed_days(&app).await;
    // Raw events are never read: this one is in no snapshot.
    event(&app, "s", None, "page_view", "2026-11-03 12:00:00", None).await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/overview?from=2026-11-03&to=2026-11-05&granularity=day",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        answer["buckets"],
        json!(["2026-11-03T00:00:00.000Z", "2026-11-04T00:00:00.000Z"])
    );
    assert_eq!(answer["previousFrom"], "2026-11-01T00:00:00.000Z");
    let views = series(&answer, "page_views");
    assert_eq!(views["points"], json!([30.0, null]));
    assert_eq!(views["total"], json!(30.0));
    assert_eq!(
        views["previous"],
        json!({"total": 30.0, "points": [10.0, 20.0]})
    );
    assert_eq!(views["changePercent"], json!(0.0));
    assert_eq!(views["headline"], "sum");
    let sessions = series(&answer, "sessions");
    assert_eq!(sessions["total"], json!(40.0));
    assert_eq!(
        sessions["previous"],
        json!({"total": 20.0, "points": [null, 20.0]})
    );
    assert_eq!(sessions["changePercent"], json!(100.0));
    assert_eq!(sessions["headline"], "sumOfDistinct");
    // (0.5 * 10 + 0 * 30) / 40 against 0.25.
    let rate = series(&answer, "conversion_rate");
    assert_eq!(rate["total"], json!(0.125));
    assert_eq!(rate["previous"]["total"], json!(0.25));
    assert_eq!(rate["changePercent"], json!(-50.0));
    // Weighted by page views: 11-04 has none, so weighs nothing; before,
    // (1000 * 10 + 4000 * 20) / 30.
    let lcp = series(&answer, "vitals.LCP.p75");
    assert_eq!(lcp["total"], json!(1500.0));
    assert_eq!(lcp["previous"]["total"], json!(3000.0));
    assert_eq!(lcp["headline"], "pageViewWeightedP75");
    // No rows at all: null totals and points, no change.
    let bookings = series(&answer, "bookings");
    assert_eq!(bookings["points"], json!([null, null]));
    assert_eq!(bookings["total"], Value::Null);
    assert_eq!(bookings["changePercent"], Value::Null);
    assert_eq!(answer["series"].as_array().expect("series").len(), 14);
}

#[tokio::test]
async fn the_hourly_overview_widens_the_range_to_whole_hours() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    snapshot(
        &app,
        "searches",
        "hour",
        "2026-11-03 09:00:00",
        4.0,
        json!({}),
    )
    .await;
    snapshot(
        &app,
        "searches",
        "hour",
        "2026-11-03 10:00:00",
        5.0,
        json!({}),
    )
    .await;
    snapshot(
        &app,
        "searches",
        "hour",
        "2026-11-03 11:00:00",
        6.0,
        json!({}),
    )
    .await;
    snapshot(&app, "searches", "day", "2026-11-03", 1000.0, json!({})).await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/overview?from=2026-11-03T10:30:00Z&to=2026-11-03T11:15:00%2B00:00&granularity=hour",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(answer["from"], "2026-11-03T10:00:00.000Z");
    assert_eq!(answer["to"], "2026-11-03T12:00:00.000Z");
    let searches = series(&answer, "searches");
    assert_eq!(searches["points"], json!([5.0, 6.0]));
    assert_eq!(searches["previous"]["points"], json!([null, 4.0]));
    assert_eq!(searches["changePercent"], json!(175.0));
}

#[tokio::test]
async fn bad_overview_parameters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for (query, field) in [
        (
            "from=2026-11-03&to=2026-11-05&granularity=minute",
            "granularity",
        ),
        ("to=2026-11-05", "from"),
        ("from=2026-11-03", "to"),
        ("from=2026-11-05&to=2026-11-03", "to"),
        ("from=2026-01-01&to=2026-11-03&granularity=hour", "to"),
        ("from=2025-01-01&to=2026-11-03", "to"),
        ("from=03/11/2026&to=2026-11-05", "from"),
    ] {
        let body = app
            .expect(
                "GET",
                &format!("/api/admin/analytics/overview?{query}"),
                Some(&token),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

/// An error group's row as the intake writes it.
async fn error_row(
    app: &TestApp,
    id: &str,
    fingerprint: Option<&str>,
    message: &str,
    count: i32,
    at: &str,
    resolved: bool,
) {
    app.client
        .execute(
            r#"INSERT INTO "error_logs" ("id", "message", "url", "sessionId", "severity", "fingerprint", "count", "resolved", "timestamp")
               VALUES ($1, $2, 'https://deals.example/', 'session_1', 'error', $3, $4, $5, $6::text::timestamp)"#,
            &[&id, &message, &fingerprint, &count, &resolved, &at],
        )
        .await
        .expect("insert error row");
}

async fn seed_errors(app: &TestApp) {
    // fp-a: two rows (an old per-occurrence row and the group row), 1 + 4.
    error_row(
        app,
        "a-old",
        Some("fp-a"),
        "Payment failed",
        1,
        "2026-11-02 08:00:00",
        false,
    )
    .await;
    error_row(
        app,
        "a",
        Some("fp-a"),
        "Payment failed",
        4,
        "2026-11-03 09:00:00",
        true,
    )
    .await;
    error_row(
        app,
        "b",
        Some("fp-b"),
        "=HYPERLINK(\"https://evil.example\")",
        7,
        "2026-11-03 10:00:00",
        false,
    )
    .await;
    error_row(
        app,
        "lone",
        None,
        "No fingerprint",
        2,
        "2026-11-03 11:00:00",
        false,
    )
    .await;
    error_row(
        app,
        "c",
        Some("fp-c"),
        "Outside the range",
        50,
        "2026-10-01 11:00:00",
        false,
    )
    .await;
}

#[tokio::test]
async fn the_top_errors_are_groups_by_occurrences_in_the_range() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed_errors(&app).await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/errors/top?from=2026-11-02&to=2026-11-04",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let errors = answer["errors"].as_array().expect("errors");
    let summary: Vec<(Value, i64)> = errors
        .iter()
        .map(|e| {
            (
                e["id"].clone(),
                e["occurrences"].as_i64().expect("occurrences"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(json!("b"), 7), (json!("a"), 5), (json!("lone"), 2)]
    );
    assert_eq!(errors[1]["firstSeen"], "2026-11-02T08:00:00.000Z");
    assert_eq!(errors[1]["lastSeen"], "2026-11-03T09:00:00.000Z");
    assert_eq!(errors[1]["resolved"], true);
    assert_eq!(errors[1]["fingerprint"], "fp-a");
    assert_eq!(errors[2]["fingerprint"], Value::Null);
    let one = app
        .expect(
            "GET",
            "/api/admin/analytics/errors/top?from=2026-11-02&to=2026-11-04&limit=1",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(one["errors"].as_array().expect("errors").len(), 1);
    let bad = app
        .expect(
            "GET",
            "/api/admin/analytics/errors/top?from=2026-11-02&to=2026-11-04&limit=0",
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(bad["error"]["field"], "limit");
}

async fn csv(app: &TestApp, token: &str, uri: &str) -> String {
    let answer = app.send("GET", uri, Some(token), None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    assert!(
        answer.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    String::from_utf8(answer.bytes).expect("utf-8")
}

#[tokio::test]
async fn the_overview_exports_as_csv_with_the_previous_period() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed_days(&app).await;
    let body = csv(
        &app,
        &token,
        "/api/admin/analytics/export/overview?from=2026-11-03&to=2026-11-05",
    )
    .await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "metric,bucket,value,previousValue");
    assert_eq!(lines[1], "page_views,2026-11-03T00:00:00.000Z,30,10");
    assert_eq!(lines[2], "page_views,2026-11-04T00:00:00.000Z,,20");
    assert_eq!(lines[3], "page_views,total,30,30");
    // 14 series of two buckets and a total each.
    assert_eq!(lines.len(), 1 + 14 * 3);
}

#[tokio::test]
async fn exported_cells_are_defused_against_formulas() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed_errors(&app).await;
    let body = csv(
        &app,
        &token,
        "/api/admin/analytics/export/errors-top?from=2026-11-02&to=2026-11-04",
    )
    .await;
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("fingerprint,id,message,severity,resolved,occurrences,firstSeen,lastSeen")
    );
    assert_eq!(
        lines.next(),
        Some(
            r#"fp-b,b,"'=HYPERLINK(""https://evil.example"")",error,false,7,2026-11-03T10:00:00.000Z,2026-11-03T10:00:00.000Z"#
        )
    );
}

#[tokio::test]
async fn the_funnel_and_retention_export_their_tables() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    event(
        &app,
        "s",
        None,
        "flight_search",
        "2026-11-02 10:00:00",
        None,
    )
    .await;
    event(&app, "s", None, "results_view", "2026-11-02 10:01:00", None).await;
    let funnel = csv(
        &app,
        &token,
        "/api/admin/analytics/export/funnel?from=2026-11-02&to=2026-11-03&steps=flight_search,results_view",
    )
    .await;
    assert_eq!(
        funnel,
        "breakdown,step,count,conversionFromPrevious,conversionFromFirst,dropOff,medianSecondsFromPrevious\n\
         ,flight_search,1,1,1,0,\n\
         ,results_view,1,1,1,0,60\n"
    );
    let retention = csv(
        &app,
        &token,
        "/api/admin/analytics/export/retention?from=2026-11-02&to=2026-11-03&period=day",
    )
    .await;
    assert_eq!(retention, "cohort,size,period,active,percentage\n");
}

#[tokio::test]
async fn an_unknown_report_is_not_found() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.expect(
        "GET",
        "/api/admin/analytics/export/everything?from=2026-11-02&to=2026-11-03",
        Some(&token),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn analytics_need_read_and_exports_need_export() {
    let app = spawn_app().await;
    let nobody = app.admin("plain", "user", None).await;
    let moderator = app.admin("mod", "moderator", None).await;
    let overview = "/api/admin/analytics/overview?from=2026-11-03&to=2026-11-05";
    app.expect("GET", overview, Some(&nobody), None, StatusCode::FORBIDDEN)
        .await;
    app.expect("GET", overview, Some(&moderator), None, StatusCode::OK)
        .await;
    app.expect(
        "GET",
        "/api/admin/analytics/export/overview?from=2026-11-03&to=2026-11-05",
        Some(&moderator),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
}

/// Hostile values of every parameter of the six analytics routes: each is
/// a 4xx naming the field, never a 500 or a dropped connection (a panic),
/// both as JSON and through the export of the same report.
#[tokio::test]
async fn hostile_parameters_of_every_analytics_route_are_4xx_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    let d = "from=2026-11-02&to=2026-11-03";
    let eleven = (0..11)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let long_step = "x".repeat(101);
    let ranges: Vec<(String, &str)> = vec![
        ("from=2026-11-02%00&to=2026-11-03".into(), "from"),
        ("from=2026-11-02&to=2026-11-03%00".into(), "to"),
        ("from=%2B10000-01-01&to=2026-11-03".into(), "from"),
        ("from=2026-11-02&to=%2B10000-01-01".into(), "to"),
        ("from=2026-02-30&to=2026-11-03".into(), "from"),
        ("from=2026-11-02&to=9999-12-31T23:59:59-05:00".into(), "to"),
        ("from=1969-12-31&to=2026-11-03".into(), "from"),
        ("from=99999999999999999999&to=2026-11-03".into(), "from"),
        ("from=2026-11-03&to=2026-11-02".into(), "to"),
        ("from=1970-01-01&to=9999-12-31".into(), "to"),
        ("from=&to=2026-11-03".into(), "from"),
    ];
    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    for report in ["overview", "funnel", "retention", "vitals", "errors-top"] {
        for (query, field) in &ranges {
            cases.push((report, query.clone(), field));
        }
    }
    for (query, field) in [
        (format!("{d}&granularity=hour%00"), "granularity"),
        (format!("{d}&granularity="), "granularity"),
        // The caps: 93 days of hours and 400 days pass, one bucket more does not.
        (
            "from=2026-01-01&to=2026-04-04T01:00:00Z&granularity=hour".into(),
            "to",
        ),
        ("from=2026-01-01&to=2027-02-05T00:00:01Z".into(), "to"),
    ] {
        cases.push(("overview", query, field));
    }
    for (query, field) in [
        (format!("{d}&steps="), "steps"),
        (format!("{d}&steps=,"), "steps"),
        (format!("{d}&steps=a,a"), "steps"),
        (format!("{d}&steps=a,b,A,a"), "steps"),
        (format!("{d}&steps={eleven}"), "steps"),
        (format!("{d}&steps=a,{long_step}"), "steps"),
        (format!("{d}&steps=a,b%00"), "steps"),
        (format!("{d}&window=0s"), "window"),
        (format!("{d}&window=-1h"), "window"),
        (format!("{d}&window=99999999d"), "window"),
        (format!("{d}&window=9223372036854775807s"), "window"),
        (format!("{d}&window=18446744073709551616d"), "window"),
        (format!("{d}&window=1%00d"), "window"),
        (format!("{d}&window=%C3%A9"), "window"),
        (format!("{d}&window="), "window"),
        (format!("{d}&breakdown=browser"), "breakdown"),
        (format!("{d}&breakdown="), "breakdown"),
        (format!("{d}&breakdown=variant&flag=x%00y"), "flag"),
        (format!("{d}&breakdown=variant&flag="), "flag"),
        (format!("{d}&breakdown=device&flag=x"), "flag"),
        ("from=2026-01-01&to=2026-04-04T01:00:00Z".into(), "to"),
    ] {
        cases.push(("funnel", query, field));
    }
    for (query, field) in [
        (format!("{d}&period=month"), "period"),
        (format!("{d}&period=day%00"), "period"),
        (
            "from=2026-01-01&to=2026-04-04T00:00:01Z&period=day".into(),
            "to",
        ),
        (
            "from=2026-01-05&to=2027-01-12T00:00:01Z&period=week".into(),
            "to",
        ),
    ] {
        cases.push(("retention", query, field));
    }
    for (query, field) in [
        (format!("{d}&metric=FID"), "metric"),
        (format!("{d}&metric=LCP%00"), "metric"),
        (format!("{d}&page="), "page"),
        (format!("{d}&page=/deals%00"), "page"),
        (format!("{d}&page=/{}", "p".repeat(2000)), "page"),
        ("from=2026-01-01&to=2027-02-05T00:00:01Z".into(), "to"),
    ] {
        cases.push(("vitals", query, field));
    }
    for (query, field) in [
        (format!("{d}&limit=0"), "limit"),
        (format!("{d}&limit=-1"), "limit"),
        (format!("{d}&limit=101"), "limit"),
        (format!("{d}&limit=99999999999999999999"), "limit"),
        (format!("{d}&limit=1e3"), "limit"),
        (format!("{d}&limit="), "limit"),
        (format!("{d}&limit=1%00"), "limit"),
        ("from=2026-01-01&to=2027-02-05T01:00:00Z".into(), "to"),
    ] {
        cases.push(("errors-top", query, field));
    }
    for (report, query, field) in &cases {
        let read = if *report == "errors-top" {
            "errors/top"
        } else {
            report
        };
        for uri in [
            format!("/api/admin/analytics/{read}?{query}"),
            format!("/api/admin/analytics/export/{report}?{query}"),
        ] {
            let answer = app.send("GET", &uri, Some(&token), None).await;
            let text = String::from_utf8_lossy(&answer.bytes).into_owned();
            assert!(
                answer.status.is_client_error(),
                "{uri}: {} {text}",
                answer.status
            );
            let body: Value = serde_json::from_str(&text).expect("a JSON error");
            assert_eq!(body["error"]["field"], *field, "{uri}: {text}");
        }
    }
    // A repeated parameter is refused by the shared query parser, which
    // names it in the message only.
    let body = app
        .expect(
            "GET",
            "/api/admin/analytics/funnel?from=2026-11-02&to=2026-11-03&steps=a,b&steps=c,d",
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`steps`")),
        "{body}"
    );
}

/// The ranges at the caps themselves are answered.
#[tokio::test]
async fn ranges_at_the_caps_are_answered() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for uri in [
        "/api/admin/analytics/overview?from=2026-01-01&to=2026-04-04&granularity=hour",
        "/api/admin/analytics/overview?from=2026-01-01&to=2027-02-05",
        "/api/admin/analytics/funnel?from=2026-01-01&to=2026-04-04&window=90d",
        "/api/admin/analytics/retention?from=2026-01-01&to=2026-04-04&period=day",
        "/api/admin/analytics/retention?from=2026-01-05&to=2027-01-11&period=week",
        "/api/admin/analytics/vitals?from=2026-01-01&to=2027-02-05",
        "/api/admin/analytics/errors/top?from=2026-01-01&to=2027-02-05&limit=100",
        "/api/admin/analytics/overview?from=1970-01-01&to=1970-01-02",
        "/api/admin/analytics/overview?from=9999-12-30&to=9999-12-31T23:59:59Z&granularity=hour",
        "/api/admin/analytics/funnel?from=9999-12-30&to=9999-12-31T23:59:59Z&window=90d",
        "/api/admin/analytics/retention?from=9999-12-20&to=9999-12-31T23:59:59Z",
    ] {
        app.expect("GET", uri, Some(&token), None, StatusCode::OK)
            .await;
    }
}

/// A read over raw rows that outlasts its budget is stopped in PostgreSQL
/// and answered 503 asking for a shorter range, not a 500; its other
/// failures pass through; a read within budget is answered.
#[tokio::test]
async fn a_read_past_its_budget_is_stopped_and_answered_503() {
    use admin::analytics::within_budget;
    use platform::ApiError;
    use std::time::Duration;
    let app = spawn_app().await;
    let mut client = app
        .function
        .state
        .access
        .pool
        .get()
        .await
        .expect("a client");
    let budget = Duration::from_millis(200);
    let slow = within_budget(&mut client, budget, async |tx| {
        tx.execute("SELECT pg_sleep(5)", &[])
            .await
            .map_err(ApiError::internal("sleeping"))?;
        Ok(())
    })
    .await
    .expect_err("stopped");
    assert!(
        matches!(&slow, ApiError::Unavailable(message) if message.contains("shorter range")),
        "{slow:?}"
    );
    let refused = within_budget(&mut client, budget, async |_| -> platform::ApiResult<()> {
        Err(ApiError::invalid_field("to", "no"))
    })
    .await
    .expect_err("refused");
    assert!(
        matches!(refused, ApiError::BadRequest { .. }),
        "{refused:?}"
    );
    let answered = within_budget(&mut client, budget, async |tx| {
        let row = tx
            .query_one("SELECT current_setting('statement_timeout')", &[])
            .await
            .map_err(ApiError::internal("reading"))?;
        Ok(row.get::<_, String>(0))
    })
    .await
    .expect("answered");
    assert_eq!(answered, "200ms");
    // The budget was the transaction's: the connection goes back without it.
    let after: String = client
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .expect("setting")
        .get(0);
    assert_eq!(after, "0");
}
