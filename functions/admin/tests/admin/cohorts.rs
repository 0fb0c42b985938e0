//! `admin cohorts`: one `user_cohorts` row per signed-in user, against
//! answers computed by hand.

use admin::analytics::{cohorts, rollup};
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::{Value, json};

use crate::rollups::{at, event};
use crate::{TestApp, spawn_app};

async fn backfill(app: &TestApp, from: &str, to: &str) -> Value {
    let mut client = app.function.state.access.pool.get().await.expect("client");
    cohorts::run(&mut client, Some((at(from), at(to))), None)
        .await
        .expect("cohorts")
}

async fn scheduled(app: &TestApp) -> Value {
    let mut client = app.function.state.access.pool.get().await.expect("client");
    cohorts::run(&mut client, None, None)
        .await
        .expect("cohorts")
}

async fn cohort(app: &TestApp, user: &str) -> Value {
    app.client
        .query_opt(
            r#"SELECT json_build_object('cohortDate', "cohortDate", 'cohortWeek', "cohortWeek", 'cohortMonth', "cohortMonth",
                   'lastActiveAt', "lastActiveAt", 'day1', "day1Retained", 'day7', "day7Retained", 'day30', "day30Retained",
                   'sessions', "totalSessions", 'searches', "totalSearches", 'bookings', "totalBookings",
                   'lifetimeValue', "lifetimeValue")
               FROM "user_cohorts" WHERE "userId" = $1"#,
            &[&user],
        )
        .await
        .expect("cohort")
        .map_or(Value::Null, |row| row.get(0))
}

async fn visit(
    app: &TestApp,
    user: &str,
    session: &str,
    event_type: &str,
    data: Value,
    time: NaiveDateTime,
) {
    event(
        app,
        Some(user),
        session,
        event_type,
        data,
        Some("https://deals.example/"),
        None,
        time,
    )
    .await;
}

#[tokio::test]
async fn a_user_s_cohort_totals_and_day_n_retention_are_computed() {
    let app = spawn_app().await;
    // u1: first seen 2026-11-20 (two sessions that day), back on the 21st
    // (day 1) and the 27th (day 7), not on 2026-12-20 (day 30) but on the
    // 21st of December (day 31).
    visit(
        &app,
        "u1",
        "s1",
        "page_view",
        json!({}),
        at("2026-11-20 10:05"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s1",
        "flight_search",
        json!({}),
        at("2026-11-20 10:06"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s1",
        "booking_complete",
        json!({"revenue": 100.5, "currency": "EUR"}),
        at("2026-11-20 10:20"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s2",
        "page_view",
        json!({}),
        at("2026-11-20 22:00"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s3",
        "flight_search",
        json!({}),
        at("2026-11-21 09:00"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s4",
        "booking_complete",
        json!({"price": 20}),
        at("2026-11-27 23:59"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s5",
        "page_view",
        json!({}),
        at("2026-12-21 00:01"),
    )
    .await;
    // u2: only on the day they came; a visitor without a user id.
    visit(
        &app,
        "u2",
        "s6",
        "page_view",
        json!({}),
        at("2026-11-20 12:00"),
    )
    .await;
    event(
        &app,
        None,
        "s7",
        "page_view",
        json!({}),
        None,
        None,
        at("2026-11-20 12:00"),
    )
    .await;
    backfill(&app, "2026-11-01 00:00", "2026-12-31 00:00").await;
    assert_eq!(
        cohort(&app, "u1").await,
        json!({
            "cohortDate": "2026-11-20T00:00:00", "cohortWeek": "2026-W47", "cohortMonth": "2026-11",
            "lastActiveAt": "2026-12-21T00:01:00", "day1": true, "day7": true, "day30": false,
            "sessions": 5, "searches": 2, "bookings": 2, "lifetimeValue": 120.5,
        })
    );
    let u2 = cohort(&app, "u2").await;
    assert_eq!(
        (u2["day1"].clone(), u2["sessions"].clone()),
        (json!(false), json!(1))
    );
    assert_eq!(app.count(r#"SELECT count(*) FROM "user_cohorts""#).await, 2);
}

#[tokio::test]
async fn cohort_weeks_are_iso_weeks_of_the_iso_year() {
    let app = spawn_app().await;
    // Monday 2025-12-29 begins 2026-W01; Friday 2027-01-01 is in 2026-W53.
    visit(
        &app,
        "december",
        "s1",
        "page_view",
        json!({}),
        at("2025-12-29 08:00"),
    )
    .await;
    visit(
        &app,
        "january",
        "s2",
        "page_view",
        json!({}),
        at("2027-01-01 08:00"),
    )
    .await;
    visit(
        &app,
        "sunday",
        "s3",
        "page_view",
        json!({}),
        at("2026-11-29 23:00"),
    )
    .await;
    backfill(&app, "2025-12-01 00:00", "2027-01-02 00:00").await;
    let weeks = |c: Value| (c["cohortWeek"].clone(), c["cohortMonth"].clone());
    assert_eq!(
        weeks(cohort(&app, "december").await),
        (json!("2026-W01"), json!("2025-12"))
    );
    assert_eq!(
        weeks(cohort(&app, "january").await),
        (json!("2026-W53"), json!("2027-01"))
    );
    assert_eq!(
        weeks(cohort(&app, "sunday").await),
        (json!("2026-W48"), json!("2026-11"))
    );
}

#[tokio::test]
async fn an_incremental_run_recomputes_only_the_users_active_since_the_last() {
    let app = spawn_app().await;
    let now = platform::clock::now_millis();
    let yesterday = rollup::day_floor(now).expect("today") - TimeDelta::days(1);
    visit(
        &app,
        "returning",
        "s1",
        "page_view",
        json!({}),
        yesterday + TimeDelta::hours(12),
    )
    .await;
    visit(
        &app,
        "idle",
        "s2",
        "page_view",
        json!({}),
        yesterday + TimeDelta::hours(1),
    )
    .await;
    let first = scheduled(&app).await;
    assert_eq!(first["usersRecomputed"], json!(2));
    assert_eq!(cohort(&app, "returning").await["day1"], json!(false));
    let idle_before: NaiveDateTime = app
        .client
        .query_one(
            r#"SELECT "updatedAt" FROM "user_cohorts" WHERE "userId" = 'idle'"#,
            &[],
        )
        .await
        .expect("idle")
        .get(0);
    // Back today: day 1 after the cohort day.
    visit(
        &app,
        "returning",
        "s3",
        "flight_search",
        json!({}),
        now - TimeDelta::seconds(1),
    )
    .await;
    let second = scheduled(&app).await;
    assert_eq!(second["usersRecomputed"], json!(1));
    let returning = cohort(&app, "returning").await;
    assert_eq!(
        (
            returning["day1"].clone(),
            returning["sessions"].clone(),
            returning["searches"].clone()
        ),
        (json!(true), json!(2), json!(1))
    );
    let idle_after: NaiveDateTime = app
        .client
        .query_one(
            r#"SELECT "updatedAt" FROM "user_cohorts" WHERE "userId" = 'idle'"#,
            &[],
        )
        .await
        .expect("idle")
        .get(0);
    assert_eq!(idle_after, idle_before);
    // Nothing new: nothing rewritten.
    assert_eq!(scheduled(&app).await["rowsWritten"], json!(0));
}

#[tokio::test]
async fn a_backfill_of_older_events_moves_the_first_seen_day_earlier() {
    let app = spawn_app().await;
    visit(
        &app,
        "u1",
        "s1",
        "page_view",
        json!({}),
        at("2026-11-20 10:00"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s2",
        "page_view",
        json!({}),
        at("2026-11-21 10:00"),
    )
    .await;
    backfill(&app, "2026-11-20 00:00", "2026-11-22 00:00").await;
    assert_eq!(cohort(&app, "u1").await["day1"], json!(true));
    // Events of the 10th arrive (an import): u1 was first seen then.
    visit(
        &app,
        "u1",
        "s0",
        "page_view",
        json!({}),
        at("2026-11-10 09:00"),
    )
    .await;
    visit(
        &app,
        "u1",
        "s0",
        "page_view",
        json!({}),
        at("2026-11-17 09:00"),
    )
    .await;
    backfill(&app, "2026-11-10 00:00", "2026-11-11 00:00").await;
    let u1 = cohort(&app, "u1").await;
    assert_eq!(
        (
            u1["cohortDate"].clone(),
            u1["cohortWeek"].clone(),
            u1["day1"].clone(),
            u1["day7"].clone(),
            u1["sessions"].clone()
        ),
        (
            json!("2026-11-10T00:00:00"),
            json!("2026-W46"),
            json!(false),
            json!(true),
            json!(3)
        )
    );
    let watermark = app
        .count(r#"SELECT count(*) FROM "bundle"."cohort_watermark""#)
        .await;
    assert_eq!(watermark, 0, "a backfill leaves the watermark alone");
}
