//! `GET /api/admin/analytics/vitals`: p75 and ratings per metric, day and
//! page, from the daily p75 snapshots.

use axum::http::StatusCode;
use serde_json::json;

use crate::analytics_overview::snapshot;
use crate::spawn_app;

#[tokio::test]
async fn vitals_come_per_metric_day_and_page_from_the_daily_snapshots() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    let page = |p75: f64, samples: u64, good: u64, poor: u64| json!({"p75": p75, "samples": samples, "good": good, "needs-improvement": samples - good - poor, "poor": poor});
    snapshot(
        &app,
        "vitals.LCP.p75",
        "day",
        "2026-11-03",
        2600.0,
        json!({"samples": 10, "rating": {"good": 6, "needs-improvement": 3, "poor": 1},
               "page": {"/": page(2000.0, 4, 3, 0), "/deals": page(3100.0, 6, 3, 1)},
               "device": {"mobile": page(3000.0, 5, 2, 1)}}),
    )
    .await;
    snapshot(
        &app,
        "vitals.CLS.p75",
        "day",
        "2026-11-04",
        0.12,
        json!({"samples": 2, "rating": {"good": 1, "needs-improvement": 1, "poor": 0}}),
    )
    .await;
    // An hourly row and a row outside the range are not read.
    snapshot(
        &app,
        "vitals.LCP.p75",
        "hour",
        "2026-11-03 10:00:00",
        9999.0,
        json!({"samples": 1}),
    )
    .await;
    snapshot(
        &app,
        "vitals.LCP.p75",
        "day",
        "2026-11-06",
        9999.0,
        json!({"samples": 1}),
    )
    .await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/vitals?from=2026-11-03&to=2026-11-05",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let metrics: Vec<&str> = answer["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["metric"].as_str().expect("metric"))
        .collect();
    assert_eq!(metrics, ["LCP", "INP", "CLS", "FCP", "TTFB"]);
    let lcp = &answer["metrics"][0]["days"];
    assert_eq!(lcp.as_array().expect("days").len(), 1);
    assert_eq!(lcp[0]["day"], "2026-11-03T00:00:00.000Z");
    assert_eq!(lcp[0]["p75"], json!(2600.0));
    assert_eq!(lcp[0]["samples"], json!(10));
    assert_eq!(
        lcp[0]["rating"],
        json!({"good": 6, "needs-improvement": 3, "poor": 1})
    );
    // Largest pages first.
    assert_eq!(
        lcp[0]["pages"],
        json!([
            {"page": "/deals", "p75": 3100.0, "samples": 6, "rating": {"good": 3, "needs-improvement": 2, "poor": 1}},
            {"page": "/", "p75": 2000.0, "samples": 4, "rating": {"good": 3, "needs-improvement": 1, "poor": 0}},
        ])
    );
    assert_eq!(answer["metrics"][1]["days"], json!([]));
    assert_eq!(answer["metrics"][2]["days"][0]["p75"], json!(0.12));

    let one_page = app
        .expect(
            "GET",
            "/api/admin/analytics/vitals?from=2026-11-03&to=2026-11-05&metric=lcp&page=/deals",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(one_page["metrics"].as_array().expect("metrics").len(), 1);
    let pages = &one_page["metrics"][0]["days"][0]["pages"];
    assert_eq!(pages.as_array().expect("pages").len(), 1);
    assert_eq!(pages[0]["page"], "/deals");
}

#[tokio::test]
async fn the_vitals_export_lists_each_day_then_its_pages() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    snapshot(
        &app,
        "vitals.INP.p75",
        "day",
        "2026-11-03",
        250.0,
        json!({"samples": 3, "rating": {"good": 2, "needs-improvement": 1, "poor": 0},
               "page": {"/=cmd": {"p75": 250.0, "samples": 3, "good": 2, "needs-improvement": 1, "poor": 0}}}),
    )
    .await;
    let answer = app
        .send(
            "GET",
            "/api/admin/analytics/export/vitals?from=2026-11-03&to=2026-11-04&metric=INP",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        String::from_utf8(answer.bytes).expect("utf-8"),
        "metric,day,page,p75,samples,good,needsImprovement,poor\n\
         INP,2026-11-03T00:00:00.000Z,,250,3,2,1,0\n\
         INP,2026-11-03T00:00:00.000Z,/=cmd,250,3,2,1,0\n"
    );
}

#[tokio::test]
async fn bad_vitals_parameters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for (query, field) in [
        ("from=2026-11-03&to=2026-11-05&metric=FID", "metric"),
        ("from=2026-11-03&to=2026-11-05&page=deals", "page"),
        ("from=2026-11-03&to=2028-11-05", "to"),
    ] {
        let body = app
            .expect(
                "GET",
                &format!("/api/admin/analytics/vitals?{query}"),
                Some(&token),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

/// 400 days of five metrics with 50 pages each would answer some 11 MB,
/// past what the function may return: refused naming `to`, while one
/// metric's page over the same days is answered.
#[tokio::test]
async fn a_vitals_answer_too_large_for_one_response_is_refused_naming_to() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.client
        .execute(
            r#"WITH pages AS (
                   SELECT jsonb_object_agg('/deals/page-number-' || i,
                          jsonb_build_object('p75', 2500.5 + i, 'samples', 1000 + i, 'good', 700,
                                             'needs-improvement', 200 + i, 'poor', 100)) AS page
                   FROM generate_series(1, 50) i)
               INSERT INTO "metric_snapshots" ("id", "metricName", "value", "dimensions", "timestamp", "granularity")
               SELECT m || d::text, 'vitals.' || m || '.p75', 2600.0,
                      jsonb_build_object('samples', 60000, 'rating', jsonb_build_object('good', 40000, 'needs-improvement', 15000, 'poor', 5000), 'page', pages.page),
                      d, 'day'
               FROM pages, unnest(ARRAY['LCP', 'INP', 'CLS', 'FCP', 'TTFB']) m,
                    generate_series(timestamp '2026-01-01', timestamp '2027-02-04', interval '1 day') d"#,
            &[],
        )
        .await
        .expect("snapshots");
    let body = app
        .expect(
            "GET",
            "/api/admin/analytics/vitals?from=2026-01-01&to=2027-02-05",
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["error"]["field"], "to", "{body}");
    let one_page = app
        .expect(
            "GET",
            "/api/admin/analytics/vitals?from=2026-01-01&to=2027-02-05&metric=LCP&page=/deals/page-number-7",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let days = one_page["metrics"][0]["days"].as_array().expect("days");
    assert_eq!(days.len(), 400);
    assert_eq!(days[0]["pages"][0]["samples"], json!(1007));
}
