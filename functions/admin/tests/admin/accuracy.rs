//! The `prediction-accuracy` job against hand-computed outcomes: which
//! predictions it settles, when, and the realised metrics it writes into
//! the registry.

use admin::bootstrap::Channel;
use admin::commands::{Command, execute};
use admin::models::accuracy::{self, Report};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("a time")
}

/// A served prediction, as the events function stores it.
struct Asked {
    id: &'static str,
    version: &'static str,
    route: (&'static str, &'static str),
    depart: &'static str,
    created: &'static str,
    /// Hours of validity.
    valid_for: i32,
    predicted: f64,
    range: (f64, f64),
    recommendation: &'static str,
    current_price: Option<f64>,
}

const ASKED: Asked = Asked {
    id: "",
    version: "v1",
    route: ("LHR", "JFK"),
    depart: "2026-03-20",
    created: "",
    valid_for: 6,
    predicted: 0.0,
    range: (0.0, 0.0),
    recommendation: "book_now",
    current_price: None,
};

impl TestApp {
    async fn model_version(&self, version: &str, active: bool) {
        self.client
            .execute(
                r#"INSERT INTO "bundle"."model_versions" ("id", "name", "version", "modelType", "features",
                       "parameters", "metrics", "trainingData", "trainedAt", "active")
                   VALUES ($1, 'price', $1, 'log-linear-ridge', '{route}', '{}',
                           '{"mape": 0.09, "intervalCoverage": 0.8}', '{}', '2026-02-28', $2)"#,
                &[&version, &active],
            )
            .await
            .expect("a version");
        if active {
            self.client
                .execute(
                    r#"INSERT INTO "ml_models" ("id", "name", "version", "modelType", "accuracy", "metrics",
                           "trainedAt", "trainingData", "features", "active", "deployedAt")
                       VALUES ('m-price', 'price', $1, 'log-linear-ridge', 0.91,
                               '{"mape": 0.09, "intervalCoverage": 0.8}', '2026-02-28', '{}', '{route}',
                               true, '2026-02-28')"#,
                    &[&version],
                )
                .await
                .expect("the active model");
        }
    }

    async fn asked(&self, p: Asked) {
        let created = at(p.created);
        let expires = created + chrono::TimeDelta::hours(i64::from(p.valid_for));
        self.client
            .execute(
                r#"INSERT INTO "price_predictions" ("id", "origin", "destination", "departDate",
                       "predictedPrice", "confidence", "priceRange", "modelVersion", "features",
                       "recommendation", "savingsEstimate", "createdAt", "expiresAt")
                   VALUES ($1, $2, $3, $4, $5, 0.5, $6, $7, $8, $9, 0, $10, $11)"#,
                &[
                    &p.id,
                    &p.route.0,
                    &p.route.1,
                    &p.depart,
                    &p.predicted,
                    &json!({"low": p.range.0, "high": p.range.1}),
                    &p.version,
                    &json!({"currentPrice": p.current_price}),
                    &p.recommendation,
                    &created,
                    &expires,
                ],
            )
            .await
            .expect("a prediction");
    }

    async fn fare(&self, route: (&str, &str), depart: &str, observed: &str, price: f64) {
        let depart = NaiveDate::parse_from_str(depart, "%Y-%m-%d").expect("a date");
        self.client
            .execute(
                r#"INSERT INTO "bundle"."observed_fares" ("id", "origin", "destination", "departDate",
                       "price", "currency", "observedAt", "source")
                   VALUES (gen_random_uuid()::text, $1, $2, $3, $4, 'EUR', $5, 'import')"#,
                &[&route.0, &route.1, &depart, &price, &at(observed)],
            )
            .await
            .expect("a fare");
    }

    async fn run_accuracy(&self, window: Option<(&str, &str)>, now: &str) -> Report {
        let mut client = self.function.state.access.pool.get().await.expect("client");
        accuracy::run(
            &mut client,
            window.map(|(from, to)| (at(from), at(to))),
            at(now),
        )
        .await
        .expect("the accuracy run")
    }

    async fn realised(&self, table: &str, version: &str) -> Value {
        let sql =
            format!(r#"SELECT "metrics" FROM {table} WHERE "name" = 'price' AND "version" = $1"#);
        self.client
            .query_one(&sql, &[&version])
            .await
            .expect("metrics")
            .get(0)
    }

    async fn outcome(&self, id: &str) -> Option<tokio_postgres::Row> {
        self.client
            .query_opt(
                r#"SELECT "status", "observedPrice", "percentageError", "withinRange", "waitSaved",
                          "waitSaving", "referencePrice"
                   FROM "bundle"."prediction_outcomes" WHERE "predictionId" = $1"#,
                &[&id],
            )
            .await
            .expect("outcome")
    }
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-9)
}

/// Predictions of v1 (active) and v2 about trips departing 2026-03-08,
/// 03-09 and 03-20, and the fares seen after them; "now" is 2026-03-10.
async fn seeded() -> TestApp {
    let app = spawn_app().await;
    app.model_version("v1", true).await;
    app.model_version("v2", false).await;
    let lhr_jfk = ("LHR", "JFK");
    // Book now, 200 (180..230); the first later fare is 250: 20% off, outside.
    app.asked(Asked {
        id: "p1",
        created: "2026-03-01 10:00",
        predicted: 200.0,
        range: (180.0, 230.0),
        ..ASKED
    })
    .await;
    // Book now, 300 (250..350) against 320; the fare of 09:00 is before it,
    // the first after it 280: 20/280 off, inside.
    app.asked(Asked {
        id: "p2",
        created: "2026-03-02 10:00",
        predicted: 300.0,
        range: (250.0, 350.0),
        current_price: Some(320.0),
        ..ASKED
    })
    .await;
    // Wait, 240 (200..260) against 260: 250 came later, so waiting saved 10;
    // 250 is also its first fare: 4% off, inside.
    app.asked(Asked {
        id: "p3",
        created: "2026-03-01 12:00",
        predicted: 240.0,
        range: (200.0, 260.0),
        recommendation: "wait",
        current_price: Some(260.0),
        ..ASKED
    })
    .await;
    // Wait against 275: only 290 so far, and the departure is ten days off:
    // not settled.
    app.asked(Asked {
        id: "p4",
        created: "2026-03-05 10:00",
        predicted: 270.0,
        range: (240.0, 300.0),
        recommendation: "wait",
        current_price: Some(275.0),
        ..ASKED
    })
    .await;
    // Departed 03-08 with no fare at all: unmatched.
    app.asked(Asked {
        id: "p5",
        created: "2026-03-04 10:00",
        depart: "2026-03-08",
        predicted: 120.0,
        range: (100.0, 140.0),
        ..ASKED
    })
    .await;
    // Not expired yet at 03-10 00:00; no fare of its route is ever seen.
    app.asked(Asked {
        id: "p6",
        route: ("LHR", "DXB"),
        created: "2026-03-09 20:00",
        predicted: 260.0,
        range: (230.0, 290.0),
        ..ASKED
    })
    .await;
    // Not a version of the price model (the application's old heuristic).
    app.asked(Asked {
        id: "p7",
        version: "heuristic-1",
        created: "2026-02-01 10:00",
        predicted: 1.0,
        range: (0.0, 2.0),
        ..ASKED
    })
    .await;
    // Departed 03-09; its only fare came 7 days and an hour after it, out of
    // the price window: unmatched.
    app.asked(Asked {
        id: "p9",
        route: ("AMS", "LIS"),
        created: "2026-03-01 10:00",
        depart: "2026-03-09",
        predicted: 150.0,
        range: (130.0, 170.0),
        ..ASKED
    })
    .await;
    // v2's: 100 (90..110), and 100 it was.
    app.asked(Asked {
        id: "p8",
        version: "v2",
        route: ("CDG", "BCN"),
        created: "2026-03-03 10:00",
        depart: "2026-03-25",
        predicted: 100.0,
        range: (90.0, 110.0),
        ..ASKED
    })
    .await;
    app.fare(lhr_jfk, "2026-03-20", "2026-03-02 09:00", 250.0)
        .await;
    app.fare(lhr_jfk, "2026-03-20", "2026-03-03 08:00", 280.0)
        .await;
    app.fare(lhr_jfk, "2026-03-20", "2026-03-06 08:00", 290.0)
        .await;
    app.fare(("AMS", "LIS"), "2026-03-09", "2026-03-08 11:00", 160.0)
        .await;
    app.fare(("CDG", "BCN"), "2026-03-25", "2026-03-04 10:00", 100.0)
        .await;
    app
}

#[tokio::test]
async fn expired_predictions_are_settled_against_the_fares_seen_after_them() {
    let app = seeded().await;

    let report = app.run_accuracy(None, "2026-03-10 00:00").await;

    assert_eq!(
        (
            report.examined,
            report.scored,
            report.unmatched,
            report.more
        ),
        (6, 4, 2, false),
        "{report:?}"
    );
    let p1 = app.outcome("p1").await.expect("p1 settled");
    assert_eq!(p1.get::<_, String>(0), "scored");
    assert_eq!(p1.get::<_, Option<f64>>(1), Some(250.0));
    assert_eq!(p1.get::<_, Option<f64>>(2), Some(0.2));
    assert_eq!(p1.get::<_, Option<bool>>(3), Some(false));
    let p2 = app.outcome("p2").await.expect("p2 settled");
    assert_eq!(p2.get::<_, Option<f64>>(1), Some(280.0));
    assert_eq!(p2.get::<_, Option<bool>>(3), Some(true));
    assert_eq!(p2.get::<_, f64>(6), 320.0);
    let p3 = app.outcome("p3").await.expect("p3 settled");
    assert_eq!(p3.get::<_, Option<bool>>(4), Some(true));
    assert_eq!(p3.get::<_, Option<f64>>(5), Some(10.0));
    assert!(app.outcome("p4").await.is_none(), "p4 is not settled yet");
    assert_eq!(
        app.outcome("p5").await.expect("p5").get::<_, String>(0),
        "unmatched"
    );
    assert!(app.outcome("p6").await.is_none(), "p6 has not expired");
    assert!(app.outcome("p7").await.is_none(), "p7 is not the model's");
    let p9 = app.outcome("p9").await.expect("p9");
    assert_eq!(p9.get::<_, String>(0), "unmatched");
    assert_eq!(p9.get::<_, Option<f64>>(1), None);
}

#[tokio::test]
async fn each_version_gets_its_realised_metrics_and_the_active_one_in_ml_models_too() {
    let app = seeded().await;

    app.run_accuracy(None, "2026-03-10 00:00").await;

    let v1 = app.realised(r#""bundle"."model_versions""#, "v1").await;
    let realised = &v1["realised"];
    assert_eq!(realised["scored"], 3);
    assert_eq!(realised["unmatched"], 2);
    assert!(
        close(&realised["mape"], (0.2 + 20.0 / 280.0 + 0.04) / 3.0),
        "{realised}"
    );
    assert!(
        close(&realised["mae"], (50.0 + 20.0 + 10.0) / 3.0),
        "{realised}"
    );
    assert!(
        close(&realised["intervalCoverage"], 2.0 / 3.0),
        "{realised}"
    );
    assert_eq!(realised["waitJudged"], 1);
    assert!(close(&realised["waitSavedRate"], 1.0));
    assert!(close(&realised["waitAverageSaving"], 10.0));
    assert_eq!(v1["mape"], 0.09, "the holdout metrics are kept");
    let active = app.realised(r#""ml_models""#, "v1").await;
    assert_eq!(active["realised"], *realised);
    assert_eq!(active["intervalCoverage"], 0.8);

    let v2 = app.realised(r#""bundle"."model_versions""#, "v2").await;
    assert_eq!(v2["realised"]["scored"], 1);
    assert!(close(&v2["realised"]["mape"], 0.0));
    assert!(close(&v2["realised"]["intervalCoverage"], 1.0));
    assert_eq!(v2["realised"]["waitSavedRate"], Value::Null);
}

#[tokio::test]
async fn running_again_changes_nothing() {
    let app = seeded().await;
    app.run_accuracy(None, "2026-03-10 00:00").await;
    let before = app.realised(r#""bundle"."model_versions""#, "v1").await;

    let again = app.run_accuracy(None, "2026-03-10 00:00").await;

    assert_eq!((again.examined, again.scored, again.unmatched), (0, 0, 0));
    let after = app.realised(r#""bundle"."model_versions""#, "v1").await;
    assert_eq!(after, before);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."prediction_outcomes""#)
            .await,
        6
    );
}

#[tokio::test]
async fn a_wait_is_settled_when_a_cheaper_fare_comes_and_the_watermark_holds_until_then() {
    let app = seeded().await;
    let first = app.run_accuracy(None, "2026-03-10 00:00").await;
    assert_eq!(first.settled_before, Some(at("2026-03-05 10:00")));

    app.fare(("LHR", "JFK"), "2026-03-20", "2026-03-10 08:00", 260.0)
        .await;
    let second = app.run_accuracy(None, "2026-03-11 00:00").await;

    let p4 = app.outcome("p4").await.expect("p4 settled");
    assert_eq!(p4.get::<_, Option<f64>>(1), Some(290.0));
    assert_eq!(p4.get::<_, Option<bool>>(4), Some(true));
    assert_eq!(p4.get::<_, Option<f64>>(5), Some(15.0));
    // p6 expired meanwhile, with no fare: it holds the watermark now.
    assert_eq!(second.settled_before, Some(at("2026-03-09 20:00")));
    let realised = &app.realised(r#""bundle"."model_versions""#, "v1").await["realised"];
    assert_eq!(realised["waitJudged"], 2);
    assert!(close(&realised["waitAverageSaving"], 12.5), "{realised}");
    assert!(
        close(
            &realised["mape"],
            (0.2 + 20.0 / 280.0 + 0.04 + 20.0 / 290.0) / 4.0
        ),
        "{realised}"
    );
}

#[tokio::test]
async fn a_rescoring_window_settles_its_predictions_again_with_fares_imported_late() {
    let app = seeded().await;
    app.run_accuracy(None, "2026-03-10 00:00").await;
    app.fare(("LHR", "JFK"), "2026-03-08", "2026-03-05 09:00", 150.0)
        .await;

    let report = app
        .run_accuracy(
            Some(("2026-03-04 00:00", "2026-03-05 00:00")),
            "2026-03-10 00:00",
        )
        .await;

    assert_eq!((report.rescored, report.scored), (1, 1), "{report:?}");
    let p5 = app.outcome("p5").await.expect("p5");
    assert_eq!(p5.get::<_, String>(0), "scored");
    assert_eq!(p5.get::<_, Option<f64>>(2), Some(0.2));
    let realised = &app.realised(r#""bundle"."model_versions""#, "v1").await["realised"];
    assert_eq!(
        (realised["scored"].clone(), realised["unmatched"].clone()),
        (json!(4), json!(1))
    );
    assert_eq!(report.settled_before, Some(at("2026-03-05 10:00")));
}

#[tokio::test]
async fn a_rescoring_window_keeps_the_outcomes_of_predictions_retention_removed() {
    let app = seeded().await;
    app.run_accuracy(None, "2026-03-10 00:00").await;
    let before = app.realised(r#""bundle"."model_versions""#, "v1").await;
    app.client
        .execute(r#"DELETE FROM "price_predictions""#, &[])
        .await
        .expect("retention took the predictions");

    let report = app
        .run_accuracy(
            Some(("2026-03-01 00:00", "2026-03-10 00:00")),
            "2026-03-10 00:00",
        )
        .await;

    assert_eq!(report.rescored, 0, "{report:?}");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."prediction_outcomes""#)
            .await,
        6
    );
    assert_eq!(
        app.realised(r#""bundle"."model_versions""#, "v1").await["realised"]["scored"],
        before["realised"]["scored"]
    );
}

#[tokio::test]
async fn the_scheduled_command_runs_the_job() {
    let app = seeded().await;
    let mut client = app.function.state.access.pool.get().await.expect("client");

    let outcome = execute(
        &mut client,
        &Command::PredictionAccuracy {
            from: None,
            to: None,
        },
        Channel::Lambda,
    )
    .await
    .expect("the command");

    // Now is long after every departure: all but the old heuristic's are settled.
    assert_eq!(outcome["examined"], 8, "{outcome}");
    assert_eq!(outcome["more"], false);
    assert_eq!(outcome["versions"]["v1"]["waitJudged"], 2);
}

#[tokio::test]
async fn predictions_that_cannot_be_settled_yet_do_not_use_up_a_run() {
    let app = seeded().await;
    // Older than every other: a wait for a departure months off, no fare yet.
    app.asked(Asked {
        id: "p0",
        created: "2026-02-20 10:00",
        depart: "2026-06-01",
        predicted: 300.0,
        range: (250.0, 350.0),
        recommendation: "wait",
        ..ASKED
    })
    .await;
    let mut client = app.function.state.access.pool.get().await.expect("client");

    let report = accuracy::run_settling_at_most(&mut client, None, at("2026-03-10 00:00"), 1)
        .await
        .expect("the accuracy run");

    assert_eq!((report.examined, report.scored + report.unmatched), (1, 1));
    assert!(report.more);
    assert!(app.outcome("p0").await.is_none());
    assert_eq!(report.settled_before, Some(at("2026-02-20 10:00")));
}

#[tokio::test]
async fn a_run_stops_at_its_limit_and_the_next_runs_go_on_to_the_same_outcomes() {
    let app = seeded().await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let mut runs = Vec::new();
    loop {
        let report = accuracy::run_settling_at_most(&mut client, None, at("2026-03-10 00:00"), 2)
            .await
            .expect("the accuracy run");
        assert!(report.examined <= 2, "{report:?}");
        let more = report.more;
        runs.push(report);
        if !more || runs.len() > 10 {
            break;
        }
    }

    assert_eq!(runs.len(), 4, "{runs:?}");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."prediction_outcomes""#)
            .await,
        6
    );
    let realised = &app.realised(r#""bundle"."model_versions""#, "v1").await["realised"];
    assert_eq!(
        (realised["scored"].clone(), realised["unmatched"].clone()),
        (json!(3), json!(2))
    );
    assert!(
        close(&realised["mape"], (0.2 + 20.0 / 280.0 + 0.04) / 3.0),
        "{realised}"
    );
    assert_eq!(runs[3].settled_before, Some(at("2026-03-05 10:00")));
}
