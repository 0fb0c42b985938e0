//! Retention: the `retention` job deletes the rows past their table's
//! window, and nothing a job still has to read.

use admin::privacy::retention::{self, Limits, RetentionConfig};
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::json;

use crate::{TestApp, spawn_app};

/// The time the runs take as now.
fn now() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-06-15 12:00", "%Y-%m-%d %H:%M").expect("now")
}

/// `days` days (and `minutes` minutes) before [`now`].
fn ago(days: i64, minutes: i64) -> NaiveDateTime {
    now() - TimeDelta::days(days) - TimeDelta::minutes(minutes)
}

/// A minute either side of a window of `days`: past it, within it.
fn past(days: i64) -> NaiveDateTime {
    ago(days, 1)
}
fn within(days: i64) -> NaiveDateTime {
    ago(days, -1)
}

fn unbounded() -> Limits {
    Limits {
        batch_rows: retention::BATCH_ROWS,
        batches_per_table: None,
        budget: None,
    }
}

async fn run(app: &TestApp, config: &RetentionConfig, limits: Limits) -> retention::Report {
    retention::run(&app.client, config, now(), limits)
        .await
        .expect("the retention run")
}

async fn ids(app: &TestApp, table: &str, key: &str) -> Vec<String> {
    // Table and key are the tests' own constants.
    app.client
        .query(&format!(r#"SELECT "{key}" FROM {table} ORDER BY 1"#), &[])
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Every job that reads raw rows has run up to `at`.
async fn jobs_ran_until(app: &TestApp, at: NaiveDateTime) {
    app.client
        .execute(
            r#"WITH r AS (INSERT INTO "bundle"."rollup_watermark" ("rolledUntil", "errorsTalliedAt") VALUES ($1, $1)),
                    c AS (INSERT INTO "bundle"."cohort_watermark" ("readUntil") VALUES ($1)),
                    f AS (INSERT INTO "bundle"."fare_sync_watermark" ("syncedUntil") VALUES ($1))
               SELECT 1"#,
            &[&at],
        )
        .await
        .expect("watermarks");
}

async fn event(app: &TestApp, id: &str, at: NaiveDateTime) {
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url", "ipAddress", "timestamp")
               VALUES ($1, 'u1', 's1', 'page_view', '{}', 'https://deals.example/', '198.51.100.7', $2)"#,
            &[&id, &at],
        )
        .await
        .expect("insert event");
}

/// One row on each side of every window, the jobs' positions at now.
async fn rows_either_side_of_every_window(app: &TestApp) {
    let c = &app.client;
    for (id, at) in [("a-past", past(395)), ("b-within", within(395))] {
        event(app, id, at).await;
        c.execute(
            r#"INSERT INTO "conversion_funnels" ("id", "sessionId", "stage", "action", "timestamp")
               VALUES ($1, 's1', 'search', 'view', $2)"#,
            &[&id, &at],
        )
        .await
        .expect("funnel step");
    }
    for (id, at) in [("a-past", past(90)), ("b-within", within(90))] {
        c.execute(
            r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "sessionId", "timestamp")
               VALUES ($1, 'LCP', 1800, 'good', 'https://deals.example/', 's1', $2)"#,
            &[&id, &at],
        )
        .await
        .expect("vital");
        c.execute(
            r#"WITH g AS (INSERT INTO "error_logs" ("id", "message", "url", "sessionId", "severity", "resolved", "timestamp")
                          VALUES ($1, 'boom', 'https://deals.example/', 's1', 'error', $1 = 'a-past', $2))
               INSERT INTO "bundle"."error_tallies" ("errorLogId", "counted") VALUES ($1, 1)"#,
            &[&id, &at],
        )
        .await
        .expect("error group");
        c.execute(
            r#"INSERT INTO "bundle"."error_hours" ("hour", "errorLogId", "occurrences") VALUES ($1, $2, 1)"#,
            &[&at, &id],
        )
        .await
        .expect("error hour");
    }
    // Predictions: settled or not, either side of the window; the accuracy
    // job has passed everything created 200 days ago.
    c.execute(
        r#"INSERT INTO "bundle"."prediction_accuracy_watermark" ("settledBefore") VALUES ($1)"#,
        &[&ago(200, 0)],
    )
    .await
    .expect("accuracy watermark");
    for (id, created, settled) in [
        ("a-past-settled", past(90), true),
        ("b-past-unsettled", past(90), false),
        ("c-within-settled", within(90), true),
        ("d-passed-by-the-accuracy-job", past(201), false),
    ] {
        c.execute(
            r#"INSERT INTO "price_predictions" ("id", "origin", "destination", "departDate", "predictedPrice",
                   "confidence", "priceRange", "modelVersion", "features", "createdAt", "expiresAt")
               VALUES ($1, 'JFK', 'LIS', '2027-01-10', 500, 0.5, '{}', 'v1', '{}', $2, $2)"#,
            &[&id, &created],
        )
        .await
        .expect("prediction");
        if settled {
            c.execute(
                r#"INSERT INTO "bundle"."prediction_outcomes" ("predictionId", "modelVersion", "predictedAt", "status",
                       "predictedPrice", "low", "high", "referencePrice", "scoredAt")
                   VALUES ($1, 'v1', $2, 'unmatched', 500, 400, 600, 500, $2)"#,
                &[&id, &created],
            )
            .await
            .expect("outcome");
        }
    }
    // Participations: of an experiment stopped either side of the window,
    // and of one still running.
    for (flag, status, completed) in [
        ("a-stopped-past", "stopped", Some(past(90))),
        ("b-stopped-within", "stopped", Some(within(90))),
        ("c-running", "running", None),
    ] {
        c.execute(
            r#"INSERT INTO "feature_flags" ("id", "key", "name", "variants", "isExperiment", "experimentStatus", "completedAt", "updatedAt")
               VALUES ($1, $1, $1, '[]', true, $2, $3, now())"#,
            &[&flag, &status, &completed],
        )
        .await
        .expect("experiment");
        c.execute(
            r#"WITH p AS (INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant", "assignedAt")
                          VALUES ($1, $1, 's1', 'control', $2))
               INSERT INTO "bundle"."experiment_conversions" ("flagId", "conversionId", "participationId") VALUES ($1, 'c1', $1)"#,
            &[&flag, &ago(400, 0)],
        )
        .await
        .expect("participation");
    }
    for (id, last_active) in [("a-past", past(395)), ("b-within", within(395))] {
        c.execute(
            r#"INSERT INTO "user_cohorts" ("id", "userId", "cohortDate", "cohortWeek", "cohortMonth", "lastActiveAt", "updatedAt")
               VALUES ($1, $1, $2, '2025-W20', '2025-05', $2, now())"#,
            &[&id, &last_active],
        )
        .await
        .expect("cohort");
    }
    for (id, observed) in [("a-past", past(730)), ("b-within", within(730))] {
        c.execute(
            r#"INSERT INTO "bundle"."observed_fares" ("id", "origin", "destination", "departDate", "price", "currency", "observedAt", "source")
               VALUES ($1, 'JFK', 'LIS', '2027-01-10', 420, 'USD', $2, 'import')"#,
            &[&id, &observed],
        )
        .await
        .expect("fare");
    }
    jobs_ran_until(app, now()).await;
}

#[tokio::test]
async fn retention_removes_exactly_the_rows_past_each_window() {
    let app = spawn_app().await;
    rows_either_side_of_every_window(&app).await;

    let report = run(&app, &RetentionConfig::default(), unbounded()).await;

    let within = vec!["b-within".to_owned()];
    assert_eq!(ids(&app, r#""analytics_events""#, "id").await, within);
    assert_eq!(ids(&app, r#""conversion_funnels""#, "id").await, within);
    assert_eq!(ids(&app, r#""performance_metrics""#, "id").await, within);
    assert_eq!(ids(&app, r#""error_logs""#, "id").await, within);
    assert_eq!(
        ids(&app, r#""bundle"."error_tallies""#, "errorLogId").await,
        within
    );
    assert_eq!(
        ids(&app, r#""bundle"."error_hours""#, "errorLogId").await,
        within
    );
    assert_eq!(ids(&app, r#""user_cohorts""#, "id").await, within);
    assert_eq!(
        ids(&app, r#""bundle"."observed_fares""#, "id").await,
        within
    );
    assert_eq!(
        ids(&app, r#""price_predictions""#, "id").await,
        ["b-past-unsettled", "c-within-settled"],
        "an unsettled prediction waits for the accuracy job"
    );
    assert_eq!(
        ids(&app, r#""bundle"."prediction_outcomes""#, "predictionId").await,
        ["a-past-settled", "c-within-settled"],
        "outcomes name no one and are kept"
    );
    assert_eq!(
        ids(&app, r#""experiment_participations""#, "id").await,
        ["b-stopped-within", "c-running"]
    );
    assert_eq!(
        ids(
            &app,
            r#""bundle"."experiment_conversions""#,
            "participationId"
        )
        .await,
        ["b-stopped-within", "c-running"]
    );

    let removed: Vec<(&str, u64)> = report
        .tables
        .iter()
        .map(|(table, t)| (*table, t.removed))
        .collect();
    assert_eq!(
        removed,
        [
            ("analytics_events", 1),
            ("bundle.error_hours", 1),
            ("bundle.observed_fares", 1),
            ("conversion_funnels", 1),
            ("error_logs", 1),
            ("experiment_participations", 1),
            ("performance_metrics", 1),
            ("price_predictions", 2),
            ("user_cohorts", 1),
        ]
    );
    assert_eq!(report.removed, 10);
    assert!(report.complete);
}

#[tokio::test]
async fn a_rerun_removes_nothing_more() {
    let app = spawn_app().await;
    rows_either_side_of_every_window(&app).await;
    let first = run(&app, &RetentionConfig::default(), unbounded()).await;
    assert!(first.removed > 0);

    let again = run(&app, &RetentionConfig::default(), unbounded()).await;

    assert_eq!(again.removed, 0, "{again:?}");
    assert!(again.complete);
}

#[tokio::test]
async fn raw_events_the_rollup_has_not_rolled_up_are_kept_past_their_window() {
    let app = spawn_app().await;
    event(&app, "before-the-rollup", ago(601, 0)).await;
    event(&app, "after-the-rollup", ago(500, 0)).await;
    jobs_ran_until(&app, now()).await;
    app.client
        .execute(
            r#"UPDATE "bundle"."rollup_watermark" SET "rolledUntil" = $1"#,
            &[&ago(600, 0)],
        )
        .await
        .expect("the rollup is behind");

    let report = run(&app, &RetentionConfig::default(), unbounded()).await;

    assert_eq!(
        ids(&app, r#""analytics_events""#, "id").await,
        ["after-the-rollup"]
    );
    let events = &report.tables["analytics_events"];
    assert_eq!(
        (events.removed, events.limited_by, events.before),
        (1, "rollup", Some(ago(600, 0)))
    );
}

#[tokio::test]
async fn raw_events_cohorts_have_not_read_are_kept_past_their_window() {
    let app = spawn_app().await;
    event(&app, "read-by-cohorts", ago(601, 0)).await;
    event(&app, "not-yet-read-by-cohorts", ago(600, 0)).await;
    jobs_ran_until(&app, now()).await;
    // Cohorts read again from three hours before their watermark.
    app.client
        .execute(
            r#"UPDATE "bundle"."cohort_watermark" SET "readUntil" = $1"#,
            &[&(ago(600, 0) + TimeDelta::hours(3))],
        )
        .await
        .expect("cohorts are behind");

    let report = run(&app, &RetentionConfig::default(), unbounded()).await;

    assert_eq!(
        ids(&app, r#""analytics_events""#, "id").await,
        ["not-yet-read-by-cohorts"]
    );
    assert_eq!(report.tables["analytics_events"].limited_by, "cohorts");
}

#[tokio::test]
async fn nothing_is_deleted_that_a_job_which_never_ran_would_read() {
    let app = spawn_app().await;
    event(&app, "ancient", ago(3000, 0)).await;
    app.client
        .execute(
            r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "sessionId", "timestamp")
               VALUES ('ancient', 'LCP', 1800, 'good', 'https://deals.example/', 's1', $1)"#,
            &[&ago(3000, 0)],
        )
        .await
        .expect("vital");

    let report = run(&app, &RetentionConfig::default(), unbounded()).await;

    assert_eq!(report.removed, 0);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "analytics_events""#)
            .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "performance_metrics""#)
            .await,
        1
    );
    let events = &report.tables["analytics_events"];
    assert_eq!((events.before, events.limited_by), (None, "rollup"));
}

#[tokio::test]
async fn bounded_batches_make_progress_across_runs_until_done() {
    let app = spawn_app().await;
    for n in 0..7 {
        event(&app, &format!("expired-{n}"), ago(400 + n, 0)).await;
    }
    event(&app, "kept", ago(1, 0)).await;
    jobs_ran_until(&app, now()).await;
    let one_batch_of_two = Limits {
        batch_rows: 2,
        batches_per_table: Some(1),
        budget: None,
    };

    let mut removed = Vec::new();
    let mut complete = Vec::new();
    for _ in 0..5 {
        let report = run(&app, &RetentionConfig::default(), one_batch_of_two).await;
        removed.push(report.tables["analytics_events"].removed);
        complete.push(report.tables["analytics_events"].complete);
    }

    assert_eq!(removed, [2, 2, 2, 1, 0]);
    assert_eq!(complete, [false, false, false, true, true]);
    assert_eq!(ids(&app, r#""analytics_events""#, "id").await, ["kept"]);
}

#[tokio::test]
async fn the_windows_come_from_the_settings() {
    let app = spawn_app().await;
    event(&app, "eight-days-old", ago(8, 0)).await;
    event(&app, "six-days-old", ago(6, 0)).await;
    jobs_ran_until(&app, now()).await;
    let week = RetentionConfig::from_env(&platform::config::Env::from_pairs([(
        "RETENTION_EVENTS_DAYS",
        "7",
    )]))
    .expect("valid");

    run(&app, &week, unbounded()).await;

    assert_eq!(
        ids(&app, r#""analytics_events""#, "id").await,
        ["six-days-old"]
    );
}

#[tokio::test]
async fn a_bad_retention_setting_stops_the_cold_start_naming_the_variable() {
    let app = spawn_app().await;
    for (variable, value) in [
        ("RETENTION_EVENTS_DAYS", "13 months"),
        ("RETENTION_VITALS_DAYS", "0"),
        ("RETENTION_PREDICTIONS_DAYS", "99999"),
    ] {
        let secret = crate::fixture_secret();
        let built = admin::App::build(
            &app.db
                .env(&[("NEXTAUTH_SECRET", &secret), (variable, value)]),
        );
        let error = built.err().expect(variable).to_string();
        assert!(error.contains(variable), "{variable}={value}: {error}");
    }
}

#[tokio::test]
async fn the_direct_invoke_reports_the_rows_removed_per_table() {
    let app = spawn_app().await;
    let real_now = platform::clock::now_millis();
    app.client
        .execute(
            r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "sessionId", "timestamp")
               VALUES ('old', 'LCP', 1800, 'good', 'https://deals.example/', 's1', $1)"#,
            &[&(real_now - TimeDelta::days(120))],
        )
        .await
        .expect("vital");
    jobs_ran_until(&app, real_now).await;

    let outcome = platform::lambda::invoke(
        &app.function,
        lambda_runtime::LambdaEvent::new(
            json!({"command": "retention"}),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("the invoked run");

    assert_eq!(
        outcome["tables"]["performance_metrics"]["removed"], 1,
        "{outcome}"
    );
    assert_eq!(outcome["tables"]["analytics_events"]["removed"], 0);
    assert_eq!(outcome["removed"], 1);
    assert_eq!(outcome["complete"], true);
}

#[test]
fn retention_is_a_command_of_the_command_line_and_of_a_direct_invoke() {
    use admin::commands::Command;
    assert_eq!(
        Command::from_args(["retention".to_owned()]),
        Ok(Command::Retention {})
    );
    assert_eq!(
        Command::from_payload(json!({"command": "retention"})),
        Ok(Command::Retention {})
    );
    assert!(Command::from_args(["retention".to_owned(), "--all".to_owned()]).is_err());
    assert!(Command::from_payload(json!({"command": "retention", "days": 1})).is_err());
}
