//! Observed fares (`fares-sync`, `import-fares`) and the `train` job,
//! against real PostgreSQL.

use admin::bootstrap::Channel;
use admin::commands::{Command, execute};
use admin::models::fares;
use chrono::{Duration, NaiveDateTime};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

async fn client(app: &TestApp) -> deadpool_postgres::Client {
    app.function.state.access.pool.get().await.expect("client")
}

async fn run(app: &TestApp, command: Value) -> anyhow::Result<Value> {
    let command = Command::from_payload(command).expect("a command");
    execute(&mut client(app).await, &command, Channel::Cli).await
}

/// A fare event as the intake stores it, `minutes_ago` before now.
async fn event(app: &TestApp, id: &str, event_type: &str, data: Value, minutes_ago: i64) {
    let at = platform::clock::now_millis() - Duration::minutes(minutes_ago);
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "sessionId", "eventType", "eventData", "timestamp")
               VALUES ($1, 'session_1', $2, $3, $4)"#,
            &[&id, &event_type, &data, &at],
        )
        .await
        .expect("insert event");
}

fn trip(price: Value) -> Value {
    let depart = (platform::clock::now_millis() + Duration::days(40)).date();
    json!({"origin": "LHR", "destination": "JFK", "departDate": depart.to_string(),
           "price": price, "currency": "EUR"})
}

/// `count` synthetic fares observed over the last 180 days, as the sample
/// loader stores them.
pub async fn synthetic_fares(app: &TestApp, seed: u64, count: usize) {
    let now = platform::clock::now_millis();
    let options = pricing::synthetic::Options {
        start: now - Duration::days(181),
        days: 180,
        count,
        ..pricing::synthetic::Options::default()
    };
    let fares = pricing::synthetic::fares(seed, &options);
    let ids: Vec<String> = (0..fares.len())
        .map(|i| format!("fare-{seed}-{i}"))
        .collect();
    let origins: Vec<&str> = fares.iter().map(|f| f.origin.as_str()).collect();
    let destinations: Vec<&str> = fares.iter().map(|f| f.destination.as_str()).collect();
    let departs: Vec<chrono::NaiveDate> = fares.iter().map(|f| f.depart_date).collect();
    let returns: Vec<Option<chrono::NaiveDate>> = fares.iter().map(|f| f.return_date).collect();
    let prices: Vec<f64> = fares.iter().map(|f| f.price).collect();
    let observed: Vec<NaiveDateTime> = fares.iter().map(|f| f.observed_at).collect();
    app.client
        .execute(
            r#"INSERT INTO "bundle"."observed_fares" ("id", "origin", "destination", "departDate",
                   "returnDate", "price", "currency", "observedAt", "source")
               SELECT id, o, d, dep, ret, p, 'EUR', obs, 'sample'
               FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[], $6::float8[], $7::timestamp[])
                    AS f(id, o, d, dep, ret, p, obs)"#,
            &[&ids, &origins, &destinations, &departs, &returns, &prices, &observed],
        )
        .await
        .expect("insert fares");
}

#[tokio::test]
async fn fares_sync_copies_fare_events_once_and_skips_malformed_ones() {
    let app = spawn_app().await;
    event(&app, "e1", "results_view", trip(json!(412.5)), 30).await;
    event(&app, "e2", "results_view", trip(json!(399)), 20).await;
    event(&app, "e3", "fare_observed", trip(json!(420)), 10).await;
    event(&app, "e4", "results_view", trip(json!("cheap")), 10).await;
    event(
        &app,
        "e5",
        "results_view",
        json!({"destination": "JFK"}),
        10,
    )
    .await;
    event(&app, "e6", "flight_search", trip(json!(100)), 10).await;

    let first = run(&app, json!({"command": "fares-sync"}))
        .await
        .expect("sync");
    assert_eq!(first["events"], 5);
    assert_eq!(first["inserted"], 3);
    assert_eq!(first["malformed"], json!({"origin": 1, "price": 1}));
    assert_eq!(first["watermarkMoved"], true);

    let second = run(&app, json!({"command": "fares-sync"}))
        .await
        .expect("sync again");
    assert_eq!(second["inserted"], 0);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."observed_fares" WHERE "source" = 'event'"#)
            .await,
        3
    );
    let (price, event_id): (f64, String) = app
        .client
        .query_one(
            r#"SELECT "price", "eventId" FROM "bundle"."observed_fares" WHERE "eventId" = 'e1'"#,
            &[],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .expect("the fare of e1");
    assert_eq!((price, event_id.as_str()), (412.5, "e1"));
}

#[tokio::test]
async fn a_sync_stops_at_its_limit_of_new_events_and_the_next_runs_go_on() {
    let app = spawn_app().await;
    // Three days apart: more than the late-event overlap re-read each run.
    for (i, days_ago) in [12, 9, 6, 3].into_iter().enumerate() {
        let id = format!("e{i}");
        event(
            &app,
            &id,
            "results_view",
            trip(json!(400 + i)),
            days_ago * 24 * 60,
        )
        .await;
    }
    let mut client = client(&app).await;
    let mut runs = Vec::new();
    loop {
        let report = fares::sync_at_most(&mut client, fares::SyncWindow::Scheduled, 2)
            .await
            .expect("sync");
        let more = report.more;
        runs.push(report);
        if !more || runs.len() > 10 {
            break;
        }
    }

    assert!(runs[0].more, "{runs:?}");
    assert_eq!(runs[0].inserted, 2, "{runs:?}");
    assert!(runs.len() <= 4, "{runs:?}");
    assert_eq!(runs.iter().map(|r| r.inserted).sum::<u64>(), 4);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."observed_fares""#)
            .await,
        4
    );
}

#[tokio::test]
async fn a_late_event_timestamped_before_the_watermark_is_picked_up_by_the_next_sync() {
    let app = spawn_app().await;
    event(&app, "e1", "results_view", trip(json!(412.5)), 5).await;
    run(&app, json!({"command": "fares-sync"}))
        .await
        .expect("sync");
    // Arrives now, seen three hours ago: before the watermark.
    event(&app, "late", "results_view", trip(json!(380)), 180).await;
    let next = run(&app, json!({"command": "fares-sync"}))
        .await
        .expect("sync");
    assert_eq!(next["inserted"], 1);
}

#[tokio::test]
async fn a_fares_sync_backfill_reads_only_its_window_and_leaves_the_watermark() {
    let app = spawn_app().await;
    event(&app, "old", "results_view", trip(json!(300)), 60 * 24 * 3).await;
    event(&app, "new", "results_view", trip(json!(310)), 5).await;
    let now = platform::clock::now_millis();
    let from = (now - Duration::days(4)).and_utc().to_rfc3339();
    let to = (now - Duration::days(2)).and_utc().to_rfc3339();
    let backfill = run(
        &app,
        json!({"command": "fares-sync", "from": from, "to": to}),
    )
    .await
    .expect("backfill");
    assert_eq!(
        (
            backfill["inserted"].clone(),
            backfill["watermarkMoved"].clone()
        ),
        (json!(1), json!(false))
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."fare_sync_watermark""#)
            .await,
        0
    );
}

#[tokio::test]
async fn an_import_with_a_bad_line_stores_nothing_and_names_every_bad_line() {
    let app = spawn_app().await;
    let csv = "origin,destination,departDate,returnDate,price,currency,observedAt\n\
               LHR,JFK,2027-03-01,,412.5,EUR,2026-12-01\n\
               LHR,JFK,2027-03-01,2027-02-01,412.5,EUR,2026-12-01\n\
               CDG,BCN,2027-03-01,,-5,EUR,2026-12-01\n";
    let refused = run(&app, json!({"command": "import-fares", "csv": csv}))
        .await
        .expect_err("refused");
    let message = refused.to_string();
    assert!(message.contains("2 line(s) refused"), "{message}");
    assert!(message.contains("line 3: returnDate"), "{message}");
    assert!(message.contains("line 4: price"), "{message}");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."observed_fares""#)
            .await,
        0
    );
}

#[tokio::test]
async fn a_valid_import_stores_every_line_once_even_when_run_twice() {
    let app = spawn_app().await;
    let csv = "origin,destination,departDate,returnDate,price,currency,observedAt\n\
               LHR,JFK,2027-03-01,,412.5,EUR,2026-12-01\n\
               cdg,bcn,2027-03-01,2027-03-05,99,eur,2026-12-02T10:00:00Z\n";
    let first = run(&app, json!({"command": "import-fares", "csv": csv}))
        .await
        .expect("import");
    assert_eq!(
        (first["lines"].clone(), first["imported"].clone()),
        (json!(2), json!(2))
    );
    let again = run(&app, json!({"command": "import-fares", "csv": csv}))
        .await
        .expect("import again");
    assert_eq!(
        (again["imported"].clone(), again["alreadyImported"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."observed_fares" WHERE "source" = 'import' AND "origin" = 'CDG'"#)
            .await,
        1
    );
}

#[tokio::test]
async fn training_stores_a_version_with_metrics_and_makes_the_first_one_serve() {
    let app = spawn_app().await;
    synthetic_fares(&app, 11, 3_000).await;
    let outcome = run(&app, json!({"command": "train"})).await.expect("train");
    assert_eq!(outcome["trained"], true, "{outcome}");
    assert_eq!(outcome["activated"], true, "{outcome}");
    let version = outcome["version"].as_str().expect("version").to_owned();
    let metrics = &outcome["metrics"];
    assert!(
        metrics["mape"].as_f64().expect("mape")
            < 0.75 * metrics["baselineMape"].as_f64().expect("baseline")
    );
    assert!(metrics["intervalCoverage"].as_f64().is_some() && metrics["mae"].as_f64().is_some());
    assert_eq!(outcome["trainingData"]["rows"], 3_000);

    let row = app
        .client
        .query_one(
            r#"SELECT "version", "modelType", "accuracy", "active", "trainingData", "features", "metrics"
               FROM "ml_models" WHERE "name" = 'price'"#,
            &[],
        )
        .await
        .expect("the active model");
    assert_eq!(row.get::<_, String>(0), version);
    assert_eq!(row.get::<_, String>(1), pricing::Model::TYPE);
    let accuracy: f64 = row.get(2);
    assert!((accuracy - (1.0 - metrics["mape"].as_f64().expect("mape"))).abs() < 1e-9);
    assert!(row.get::<_, bool>(3));
    let training_data: Value = row.get(4);
    assert_eq!(training_data["routes"], pricing::synthetic::ROUTES.len());
    let model: pricing::Model =
        serde_json::from_value(training_data["parameters"].clone()).expect("parameters");
    assert!(model.knows_route("LHR", "JFK"));
    assert_eq!(row.get::<_, Vec<String>>(5), pricing::Model::features());
    assert_eq!(&row.get::<_, Value>(6), metrics);

    let audit = app.audit_rows().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["resource"], "models");
    assert_eq!(audit[0]["resourceId"], "price");
    assert_eq!(audit[0]["changes"]["before"]["version"], Value::Null);
    assert_eq!(audit[0]["changes"]["after"]["version"], version.as_str());
    assert_eq!(audit[0]["userRole"], "train (command line)");
}

#[tokio::test]
async fn a_clearly_worse_version_is_stored_but_the_active_one_keeps_serving() {
    let app = spawn_app().await;
    synthetic_fares(&app, 12, 2_000).await;
    let first = run(&app, json!({"command": "train"})).await.expect("train");
    // The active version measured far better than any new one will.
    app.client
        .execute(
            r#"UPDATE "bundle"."model_versions" SET "metrics" = jsonb_set("metrics", '{mape}', '0.001')"#,
            &[],
        )
        .await
        .expect("a better active version");
    let second = run(&app, json!({"command": "train"})).await.expect("train");
    assert_eq!(second["trained"], true);
    assert_eq!(second["activated"], false, "{second}");
    assert_eq!(second["activation"]["kept"], first["version"]);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."model_versions""#)
            .await,
        2
    );
    let serving: String = app
        .client
        .query_one(
            r#"SELECT "version" FROM "ml_models" WHERE "name" = 'price'"#,
            &[],
        )
        .await
        .expect("serving")
        .get(0);
    assert_eq!(serving, first["version"].as_str().expect("version"));

    let forced = run(&app, json!({"command": "train", "activate": true}))
        .await
        .expect("train");
    assert_eq!(forced["activated"], true);
}

#[tokio::test]
async fn too_few_fares_train_nothing_and_say_why() {
    let app = spawn_app().await;
    synthetic_fares(&app, 13, 150).await;
    let outcome = run(&app, json!({"command": "train"})).await.expect("run");
    assert_eq!(outcome["trained"], false);
    assert!(
        outcome["reason"]
            .as_str()
            .expect("reason")
            .contains("too few fares"),
        "{outcome}"
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."model_versions""#)
            .await,
        0
    );
    assert_eq!(app.count(r#"SELECT count(*) FROM "ml_models""#).await, 0);
}
