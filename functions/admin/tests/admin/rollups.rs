//! `admin rollup`: events, vitals, errors and participations rolled up
//! into `metric_snapshots`, against answers computed by hand.

use admin::analytics::rollup::{self, Granularities, Window};
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const WINDOWS_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

pub fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
}

#[allow(clippy::too_many_arguments)]
pub async fn event(
    app: &TestApp,
    user: Option<&str>,
    session: &str,
    event_type: &str,
    data: Value,
    url: Option<&str>,
    agent: Option<&str>,
    time: NaiveDateTime,
) {
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url", "userAgent", "timestamp")
               VALUES (gen_random_uuid()::text, $1, $2, $3, $4, $5, $6, $7)"#,
            &[&user, &session, &event_type, &data, &url, &agent, &time],
        )
        .await
        .expect("insert event");
}

/// The hand-computed day of the tests below, 2026-11-20 (UTC):
/// - s1 (u1, iPhone, GB): page view of /deals?x=1 at 10:05, search 10:06,
///   booking of 100.5 eur (`revenue`) 10:20;
/// - s2 (visitor, Windows Chrome, US): page views of / at 10:10 and of
///   /deals#top at 10:12;
/// - s4 (u2, iPad, DE): page view of /destinations/lisbon 10:35, booking
///   of 50 USD (`value`) 10:40;
/// - s3 (u1, iPhone, no country): a search at 11:30.
async fn seed_day(app: &TestApp) {
    let gb = json!({"country": "GB"});
    event(
        app,
        Some("u1"),
        "s1",
        "page_view",
        gb.clone(),
        Some("https://deals.example/deals?x=1"),
        Some(IPHONE),
        at("2026-11-20 10:05"),
    )
    .await;
    event(
        app,
        Some("u1"),
        "s1",
        "flight_search",
        json!({"country": "GB", "origin": "LHR", "destination": "JFK"}),
        Some("https://deals.example/search"),
        Some(IPHONE),
        at("2026-11-20 10:06"),
    )
    .await;
    event(
        app,
        Some("u1"),
        "s1",
        "booking_complete",
        json!({"country": "GB", "revenue": 100.5, "currency": "eur"}),
        Some("https://deals.example/checkout"),
        Some(IPHONE),
        at("2026-11-20 10:20"),
    )
    .await;
    let us = json!({"country": "US"});
    event(
        app,
        None,
        "s2",
        "page_view",
        us.clone(),
        Some("https://deals.example/"),
        Some(WINDOWS_CHROME),
        at("2026-11-20 10:10"),
    )
    .await;
    event(
        app,
        None,
        "s2",
        "page_view",
        us,
        Some("https://deals.example/deals#top"),
        Some(WINDOWS_CHROME),
        at("2026-11-20 10:12"),
    )
    .await;
    let de = json!({"country": "DE"});
    event(
        app,
        Some("u2"),
        "s4",
        "page_view",
        de,
        Some("/destinations/lisbon"),
        Some(IPAD),
        at("2026-11-20 10:35"),
    )
    .await;
    event(
        app,
        Some("u2"),
        "s4",
        "booking_complete",
        json!({"country": "DE", "value": 50, "currency": "USD"}),
        Some("https://deals.example/checkout"),
        Some(IPAD),
        at("2026-11-20 10:40"),
    )
    .await;
    event(
        app,
        Some("u1"),
        "s3",
        "flight_search",
        json!({}),
        None,
        Some(IPHONE),
        at("2026-11-20 11:30"),
    )
    .await;
}

async fn backfill(app: &TestApp, from: &str, to: &str, granularities: Granularities) -> Value {
    let mut client = app.function.state.access.pool.get().await.expect("client");
    rollup::run(
        &mut client,
        Window::Backfill {
            from: at(from),
            to: at(to),
        },
        granularities,
        None,
    )
    .await
    .expect("rollup")
}

async fn scheduled(app: &TestApp) -> Value {
    let mut client = app.function.state.access.pool.get().await.expect("client");
    rollup::run(&mut client, Window::Scheduled, Granularities::Both, None)
        .await
        .expect("rollup")
}

/// (value, dimensions) of a snapshot, if there is one.
async fn snapshot(
    app: &TestApp,
    metric: &str,
    granularity: &str,
    bucket: NaiveDateTime,
) -> Option<(f64, Value)> {
    app.client
        .query_opt(
            r#"SELECT "value", "dimensions" FROM "metric_snapshots"
               WHERE "metricName" = $1 AND "granularity" = $2 AND "timestamp" = $3"#,
            &[&metric, &granularity, &bucket],
        )
        .await
        .expect("snapshot")
        .map(|row| (row.get(0), row.get(1)))
}

async fn value(app: &TestApp, metric: &str, granularity: &str, bucket: NaiveDateTime) -> f64 {
    snapshot(app, metric, granularity, bucket)
        .await
        .unwrap_or_else(|| panic!("no {metric} {granularity} at {bucket}"))
        .0
}

async fn every_row(app: &TestApp) -> Vec<(String, String, f64, Value, NaiveDateTime, String)> {
    app.client
        .query(
            r#"SELECT "id", "metricName", "value", "dimensions", "timestamp", "granularity"
               FROM "metric_snapshots" ORDER BY "metricName", "granularity", "timestamp""#,
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

#[tokio::test]
async fn an_hour_s_counts_are_rolled_up_with_their_breakdowns() {
    let app = spawn_app().await;
    seed_day(&app).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let ten = at("2026-11-20 10:00");
    let (page_views, dims) = snapshot(&app, "page_views", "hour", ten)
        .await
        .expect("page views");
    assert_eq!(page_views, 4.0);
    assert_eq!(
        dims,
        json!({
            "device": {"mobile": 1.0, "desktop": 2.0, "tablet": 1.0},
            "browser": {"Safari": 2.0, "Chrome": 2.0},
            "country": {"GB": 1.0, "US": 2.0, "DE": 1.0},
            "page": {"/deals": 2.0, "/": 1.0, "/destinations/lisbon": 1.0},
        })
    );
    let (sessions, dims) = snapshot(&app, "sessions", "hour", ten)
        .await
        .expect("sessions");
    assert_eq!(sessions, 3.0);
    assert_eq!(
        dims,
        json!({
            "device": {"mobile": 1.0, "desktop": 1.0, "tablet": 1.0},
            "browser": {"Safari": 2.0, "Chrome": 1.0},
            "country": {"GB": 1.0, "US": 1.0, "DE": 1.0},
        })
    );
    let (users, dims) = snapshot(&app, "users", "hour", ten).await.expect("users");
    assert_eq!(users, 2.0);
    assert_eq!(
        dims,
        json!({"device": {"mobile": 1.0, "tablet": 1.0}, "country": {"GB": 1.0, "DE": 1.0}})
    );
    let (events, dims) = snapshot(&app, "events", "hour", ten).await.expect("events");
    assert_eq!(events, 7.0);
    assert_eq!(
        dims,
        json!({"eventType": {"page_view": 4.0, "flight_search": 1.0, "booking_complete": 2.0}})
    );
    let (searches, dims) = snapshot(&app, "searches", "hour", ten)
        .await
        .expect("searches");
    assert_eq!(
        (searches, dims),
        (
            1.0,
            json!({"device": {"mobile": 1.0}, "country": {"GB": 1.0}})
        )
    );
    let (bookings, dims) = snapshot(&app, "bookings", "hour", ten)
        .await
        .expect("bookings");
    assert_eq!(
        (bookings, dims),
        (
            2.0,
            json!({"device": {"mobile": 1.0, "tablet": 1.0}, "country": {"GB": 1.0, "DE": 1.0}})
        )
    );
}

#[tokio::test]
async fn conversion_rate_and_revenue_follow_their_definitions() {
    let app = spawn_app().await;
    seed_day(&app).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let ten = at("2026-11-20 10:00");
    // Sessions with a booking / sessions: s1 and s4 of s1, s2, s4.
    let (rate, dims) = snapshot(&app, "conversion_rate", "hour", ten)
        .await
        .expect("rate");
    assert!((rate - 2.0 / 3.0).abs() < 1e-12, "{rate}");
    assert_eq!(
        dims,
        json!({"device": {"mobile": 1.0, "desktop": 0.0, "tablet": 1.0}})
    );
    // `revenue` of s1's booking, `value` of s4's; currencies upper-cased.
    let (revenue, dims) = snapshot(&app, "revenue", "hour", ten)
        .await
        .expect("revenue");
    assert_eq!(revenue, 150.5);
    assert_eq!(
        dims,
        json!({"currency": {"EUR": 100.5, "USD": 50.0}, "device": {"mobile": 100.5, "tablet": 50.0}})
    );
    // The hour after has sessions but no booking.
    assert_eq!(
        value(&app, "conversion_rate", "hour", at("2026-11-20 11:00")).await,
        0.0
    );
}

#[tokio::test]
async fn a_day_counts_distinct_sessions_and_users_from_its_raw_events() {
    let app = spawn_app().await;
    seed_day(&app).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let day = at("2026-11-20 00:00");
    // u1 is in both hours: the hours' users add up to 3, the day has 2.
    assert_eq!(
        value(&app, "users", "hour", at("2026-11-20 11:00")).await,
        1.0
    );
    assert_eq!(value(&app, "users", "day", day).await, 2.0);
    assert_eq!(value(&app, "sessions", "day", day).await, 4.0);
    assert_eq!(value(&app, "events", "day", day).await, 8.0);
    assert_eq!(value(&app, "searches", "day", day).await, 2.0);
    let (_, dims) = snapshot(&app, "searches", "day", day)
        .await
        .expect("searches");
    assert_eq!(dims["country"], json!({"GB": 1.0, "unknown": 1.0}));
}

#[tokio::test]
async fn every_hour_covered_gets_its_counts_even_when_zero() {
    let app = spawn_app().await;
    seed_day(&app).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    for metric in [
        "page_views",
        "sessions",
        "revenue",
        "errors",
        "experiment_participants",
    ] {
        let hours = app
            .count(&format!(
                r#"SELECT count(*) FROM "metric_snapshots" WHERE "metricName" = '{metric}' AND "granularity" = 'hour'
                   AND "timestamp" >= '2026-11-20' AND "timestamp" < '2026-11-21'"#
            ))
            .await;
        assert_eq!(hours, 24, "{metric}");
    }
    let (views, dims) = snapshot(&app, "page_views", "hour", at("2026-11-20 03:00"))
        .await
        .expect("zero");
    assert_eq!((views, dims), (0.0, json!({})));
    // No samples, no p75.
    assert!(
        snapshot(&app, "vitals.LCP.p75", "hour", at("2026-11-20 03:00"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn rerunning_a_window_rewrites_the_same_rows_and_adds_none() {
    let app = spawn_app().await;
    seed_day(&app).await;
    app.experiment("new-checkout", "running").await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let first = every_row(&app).await;
    assert!(first.len() > 24 * 12);
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    backfill(
        &app,
        "2026-11-20 09:00",
        "2026-11-20 12:00",
        Granularities::Hour,
    )
    .await;
    assert_eq!(every_row(&app).await, first);
}

#[tokio::test]
async fn web_vitals_p75_is_the_nearest_rank_overall_per_page_and_per_device() {
    let app = spawn_app().await;
    // LCP at 10:xx: 1000 / (mobile) 2000 / 3000 /deals (desktop) ...
    for (value, rating, page, device) in [
        (1000.0, "good", "/deals", "mobile"),
        (2000.0, "good", "/", "mobile"),
        (3000.0, "needs-improvement", "/deals", "desktop"),
        (4000.0, "needs-improvement", "/", "desktop"),
        (5000.0, "poor", "/deals?utm=x", "desktop"),
    ] {
        app.client
            .execute(
                r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "sessionId", "deviceType", "timestamp")
                   VALUES (gen_random_uuid()::text, 'LCP', $1, $2, $3, 's1', $4, '2026-11-20 10:30')"#,
                &[&value, &rating, &format!("https://deals.example{page}"), &device],
            )
            .await
            .expect("vital");
    }
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    // n = 5: the ⌈3.75⌉ = 4th value.
    let (p75, dims) = snapshot(&app, "vitals.LCP.p75", "hour", at("2026-11-20 10:00"))
        .await
        .expect("p75");
    assert_eq!(p75, 4000.0);
    assert_eq!(dims["samples"], json!(5));
    assert_eq!(
        dims["rating"],
        json!({"good": 2, "needs-improvement": 2, "poor": 1})
    );
    // /deals: 1000, 3000, 5000 -> the 3rd; /: 2000, 4000 -> the 2nd.
    assert_eq!(
        dims["page"],
        json!({
            "/deals": {"p75": 5000.0, "samples": 3, "good": 1, "needs-improvement": 1, "poor": 1},
            "/": {"p75": 4000.0, "samples": 2, "good": 1, "needs-improvement": 1, "poor": 0},
        })
    );
    assert_eq!(dims["device"]["mobile"]["p75"], json!(2000.0));
    assert_eq!(dims["device"]["desktop"]["p75"], json!(5000.0));
    assert_eq!(
        value(&app, "vitals.LCP.p75", "day", at("2026-11-20 00:00")).await,
        4000.0
    );
    assert!(
        snapshot(&app, "vitals.CLS.p75", "hour", at("2026-11-20 10:00"))
            .await
            .is_none()
    );
}

/// Snapshot rows whose value differs from (or is missing in) the series
/// copy `bundle.metric_series` the overview reads, and copies left without
/// their snapshot row.
async fn series_disagreements(app: &TestApp) -> i64 {
    app.client
        .query_one(
            r#"SELECT count(*) FROM "metric_snapshots" s
               FULL JOIN "bundle"."metric_series" m USING ("metricName", "granularity", "timestamp")
               WHERE s."value" IS DISTINCT FROM m."value""#,
            &[],
        )
        .await
        .expect("compare")
        .get(0)
}

#[tokio::test]
async fn the_overview_series_copy_follows_every_snapshot_row_written_or_removed() {
    let app = spawn_app().await;
    seed_day(&app).await;
    app.client
        .execute(
            r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "sessionId", "timestamp")
               VALUES ('lcp-1', 'LCP', 1800, 'good', 'https://deals.example/', 's1', '2026-11-20 10:30')"#,
            &[],
        )
        .await
        .expect("vital");
    let day = || {
        backfill(
            &app,
            "2026-11-20 00:00",
            "2026-11-21 00:00",
            Granularities::Both,
        )
    };
    day().await;
    let copied: i64 = app
        .client
        .query_one(r#"SELECT count(*) FROM "bundle"."metric_series""#, &[])
        .await
        .expect("count")
        .get(0);
    assert!(copied > 24, "{copied} rows copied");
    assert_eq!(series_disagreements(&app).await, 0);
    // A late event changes counts; the vital withdrawn removes its p75 rows.
    event(
        &app,
        None,
        "s9",
        "page_view",
        json!({}),
        Some("https://deals.example/"),
        Some(IPHONE),
        at("2026-11-20 10:50"),
    )
    .await;
    app.client
        .execute(
            r#"DELETE FROM "performance_metrics" WHERE "id" = 'lcp-1'"#,
            &[],
        )
        .await
        .expect("withdraw");
    day().await;
    assert!(
        snapshot(&app, "vitals.LCP.p75", "hour", at("2026-11-20 10:00"))
            .await
            .is_none()
    );
    assert_eq!(series_disagreements(&app).await, 0);
}

async fn error_group(
    app: &TestApp,
    id: &str,
    count: i32,
    last_seen: &str,
    resolved_at: Option<&str>,
) {
    let resolved_at = resolved_at.map(at);
    app.client
        .execute(
            r#"INSERT INTO "error_logs" ("id", "message", "url", "sessionId", "severity", "fingerprint", "count",
                   "timestamp", "resolved", "resolvedAt")
               VALUES ($1, 'Boom', 'https://deals.example/', 's1', 'error', $1, $2, $3, false, $4)"#,
            &[&id, &count, &at(last_seen), &resolved_at],
        )
        .await
        .expect("error group");
}

#[tokio::test]
async fn errors_count_occurrences_new_groups_and_regressions_once() {
    let app = spawn_app().await;
    // g1: new, three occurrences; g2: seen again at 10:50 after being
    // resolved the day before (what the intake's regression leaves).
    error_group(&app, "g1", 3, "2026-11-20 10:30", None).await;
    error_group(&app, "g2", 2, "2026-11-20 10:50", Some("2026-11-19 12:00")).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let ten = at("2026-11-20 10:00");
    assert_eq!(value(&app, "errors", "hour", ten).await, 5.0);
    assert_eq!(value(&app, "errors_new", "hour", ten).await, 1.0);
    assert_eq!(value(&app, "errors_regressions", "hour", ten).await, 1.0);
    assert_eq!(
        value(&app, "errors", "day", at("2026-11-20 00:00")).await,
        5.0
    );
    // g1 occurs once more now (the intake stamps the server's time): one
    // occurrence in this hour, the 10:00 hour unchanged, no new group, no
    // regression counted twice.
    let now = platform::clock::now_millis();
    app.client
        .execute(
            r#"UPDATE "error_logs" SET "count" = 4, "timestamp" = $1 WHERE "id" = 'g1'"#,
            &[&now],
        )
        .await
        .expect("occurrence");
    scheduled(&app).await;
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    assert_eq!(value(&app, "errors", "hour", ten).await, 5.0);
    let this_hour = rollup::hour_floor(now).expect("hour");
    assert_eq!(value(&app, "errors", "hour", this_hour).await, 1.0);
    assert_eq!(value(&app, "errors_new", "hour", this_hour).await, 0.0);
    assert_eq!(
        value(&app, "errors_new", "day", at("2026-11-20 00:00")).await,
        1.0
    );
    assert_eq!(
        value(&app, "errors_regressions", "day", at("2026-11-20 00:00")).await,
        1.0
    );
    assert_eq!(
        value(&app, "errors_regressions", "hour", this_hour).await,
        0.0
    );
}

#[tokio::test]
async fn experiment_participants_are_counted_per_flag_and_variant() {
    let app = spawn_app().await;
    app.experiment("new-checkout", "running").await;
    for (n, variant, minute) in [
        (1, "control", "15"),
        (2, "treatment", "20"),
        (3, "treatment", "25"),
    ] {
        app.client
            .execute(
                r#"INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant", "assignedAt")
                   VALUES ($1, 'new-checkout', $1, $2, $3)"#,
                &[&format!("p{n}"), &variant, &at(&format!("2026-11-20 10:{minute}"))],
            )
            .await
            .expect("participation");
    }
    backfill(
        &app,
        "2026-11-20 00:00",
        "2026-11-21 00:00",
        Granularities::Both,
    )
    .await;
    let (participants, dims) = snapshot(
        &app,
        "experiment_participants",
        "hour",
        at("2026-11-20 10:00"),
    )
    .await
    .expect("participants");
    assert_eq!(participants, 3.0);
    assert_eq!(
        dims,
        json!({"flag": {"new-checkout": 3.0}, "variant": {"new-checkout/control": 1.0, "new-checkout/treatment": 2.0}})
    );
}

#[tokio::test]
async fn a_late_event_is_picked_up_by_the_next_scheduled_run() {
    let app = spawn_app().await;
    let now = platform::clock::now_millis();
    let earlier = now - TimeDelta::hours(2);
    let hour = rollup::hour_floor(earlier).expect("hour");
    event(
        &app,
        None,
        "s1",
        "page_view",
        json!({}),
        Some("https://deals.example/"),
        Some(IPHONE),
        earlier,
    )
    .await;
    scheduled(&app).await;
    assert_eq!(value(&app, "page_views", "hour", hour).await, 1.0);
    // Stored after the run, stamped two hours ago by the client.
    event(
        &app,
        None,
        "s2",
        "page_view",
        json!({}),
        Some("https://deals.example/"),
        Some(IPHONE),
        earlier,
    )
    .await;
    scheduled(&app).await;
    assert_eq!(value(&app, "page_views", "hour", hour).await, 2.0);
    // The hours of today still to come get no zeros.
    let future = app
        .client
        .query_one(
            r#"SELECT count(*) FROM "metric_snapshots" WHERE "granularity" = 'hour' AND "timestamp" > $1"#,
            &[&now],
        )
        .await
        .expect("future hours")
        .get::<_, i64>(0);
    assert_eq!(future, 0);
    assert_eq!(
        value(
            &app,
            "sessions",
            "day",
            rollup::day_floor(earlier).expect("day")
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn a_missed_run_is_caught_up_from_the_watermark() {
    let app = spawn_app().await;
    let now = platform::clock::now_millis();
    let today = rollup::day_floor(now).expect("today");
    // The last run finished five days ago; an event of four days ago was
    // stored since.
    app.client
        .execute(
            r#"INSERT INTO "bundle"."rollup_watermark" ("rolledUntil", "updatedAt") VALUES ($1, $1)"#,
            &[&(today - TimeDelta::days(5))],
        )
        .await
        .expect("watermark");
    let then = today - TimeDelta::days(4) + TimeDelta::hours(9);
    event(
        &app,
        None,
        "s1",
        "page_view",
        json!({}),
        Some("https://deals.example/"),
        Some(IPHONE),
        then,
    )
    .await;
    // A run out of time does nothing and says so; the next goes on.
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let stopped = rollup::run(
        &mut client,
        Window::Scheduled,
        Granularities::Both,
        Some(std::time::Duration::ZERO),
    )
    .await
    .expect("rollup");
    assert_eq!(stopped["complete"], json!(false));
    assert!(snapshot(&app, "page_views", "hour", then).await.is_none());
    let caught_up = scheduled(&app).await;
    assert_eq!(caught_up["complete"], json!(true));
    assert_eq!(caught_up["chunks"], json!(6));
    assert_eq!(value(&app, "page_views", "hour", then).await, 1.0);
    assert_eq!(
        value(&app, "page_views", "day", today - TimeDelta::days(4)).await,
        1.0
    );
    let watermark: NaiveDateTime = app
        .client
        .query_one(
            r#"SELECT "rolledUntil" FROM "bundle"."rollup_watermark""#,
            &[],
        )
        .await
        .expect("watermark")
        .get(0);
    assert_eq!(watermark, today);
}

#[tokio::test]
async fn a_backfill_rolls_up_its_window_and_leaves_the_watermark_alone() {
    let app = spawn_app().await;
    seed_day(&app).await;
    let report = backfill(
        &app,
        "2026-11-20 10:00",
        "2026-11-20 10:30",
        Granularities::Hour,
    )
    .await;
    assert_eq!(report["from"], json!("2026-11-20T10:00:00+00:00"));
    assert_eq!(report["to"], json!("2026-11-20T11:00:00+00:00"));
    assert_eq!(
        value(&app, "page_views", "hour", at("2026-11-20 10:00")).await,
        4.0
    );
    // Hours only, and that hour only.
    assert!(
        snapshot(&app, "page_views", "hour", at("2026-11-20 11:00"))
            .await
            .is_none()
    );
    assert!(
        snapshot(&app, "page_views", "day", at("2026-11-20 00:00"))
            .await
            .is_none()
    );
    let rolled: Option<NaiveDateTime> = app
        .client
        .query_opt(
            r#"SELECT "rolledUntil" FROM "bundle"."rollup_watermark""#,
            &[],
        )
        .await
        .expect("watermark")
        .and_then(|row| row.get(0));
    assert_eq!(rolled, None);
}

async fn invoke(app: &TestApp, payload: Value) -> Value {
    use admin::{bootstrap::Channel, commands};
    let command = commands::Command::from_payload(payload).expect("a command");
    let mut client = app.function.state.access.pool.get().await.expect("client");
    commands::execute(&mut client, &command, Channel::Lambda)
        .await
        .expect("command")
}

#[tokio::test]
async fn the_sample_loads_once_and_its_rollups_agree_with_its_raw_events() {
    let app = spawn_app().await;
    app.experiment("new-checkout", "running").await;
    let payload = json!({"command": "sample-data", "weeks": 1, "seed": 3, "until": "2026-11-21", "sessions": 600});
    let loaded = invoke(&app, payload.clone()).await;
    assert_eq!(loaded["loaded"], json!(true));
    // Every session takes part in the running experiment, once.
    assert_eq!(loaded["experimentParticipations"], json!(600));
    let participants: f64 = app
        .client
        .query_one(
            r#"SELECT sum("value") FROM "metric_snapshots" WHERE "metricName" = 'experiment_participants' AND "granularity" = 'day'"#,
            &[],
        )
        .await
        .expect("sum")
        .get(0);
    assert_eq!(participants, 600.0);
    let events = app
        .count(r#"SELECT count(*) FROM "analytics_events""#)
        .await;
    assert_eq!(json!(events), loaded["events"]);
    // Every page view of the week is in exactly one hour and one day.
    let page_views = app
        .count(r#"SELECT count(*) FROM "analytics_events" WHERE "eventType" = 'page_view'"#)
        .await;
    for granularity in ["hour", "day"] {
        let rolled: f64 = app
            .client
            .query_one(
                r#"SELECT sum("value") FROM "metric_snapshots" WHERE "metricName" = 'page_views' AND "granularity" = $1"#,
                &[&granularity],
            )
            .await
            .expect("sum")
            .get(0);
        #[allow(clippy::cast_precision_loss)]
        let expected = page_views as f64;
        assert_eq!(rolled, expected, "{granularity}");
    }
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "user_cohorts""#).await,
        app.count(r#"SELECT count(DISTINCT "userId") FROM "analytics_events""#)
            .await
    );
    // Fares as the price model reads them.
    let fares = app
        .count(
            r#"SELECT count(*) FROM "analytics_events" WHERE "eventType" = 'results_view'
               AND jsonb_typeof("eventData"->'price') = 'number' AND "eventData" ? 'origin'
               AND "eventData" ? 'destination' AND "eventData" ? 'departDate' AND "eventData"->>'currency' = 'EUR'"#,
        )
        .await;
    assert!(fares > 0);
    assert_eq!(
        fares,
        app.count(r#"SELECT count(*) FROM "analytics_events" WHERE "eventType" = 'results_view'"#)
            .await
    );
    let again = invoke(&app, payload).await;
    assert_eq!(again["loaded"], json!(false));
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "analytics_events""#)
            .await,
        events
    );
}

#[tokio::test]
async fn the_scheduled_payload_rolls_up_and_a_half_window_is_refused() {
    let app = spawn_app().await;
    let done = invoke(&app, json!({"command": "rollup"})).await;
    assert_eq!(done["complete"], json!(true));
    let command =
        admin::commands::Command::from_payload(json!({"command": "rollup", "from": "2026-11-20"}))
            .expect("a command");
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let refused =
        admin::commands::execute(&mut client, &command, admin::bootstrap::Channel::Lambda).await;
    assert!(
        refused
            .expect_err("refused")
            .to_string()
            .contains("both from and to")
    );
}
