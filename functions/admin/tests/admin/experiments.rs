//! `/api/admin/experiments/{key}/...`: the lifecycle and the results.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

async fn super_admin(app: &TestApp) -> String {
    app.admin("root", "super_admin", None).await
}

async fn step(
    app: &TestApp,
    token: &str,
    key: &str,
    step: &str,
    body: Option<Value>,
    expected: StatusCode,
) -> Value {
    app.expect(
        "POST",
        &format!("/api/admin/experiments/{key}/{step}"),
        Some(token),
        body,
        expected,
    )
    .await
}

/// `n` participants of `variant`, `converted` of them converted with
/// `value` each.
async fn participants(app: &TestApp, key: &str, variant: &str, n: i32, converted: i32, value: f64) {
    app.client
        .execute(
            r#"INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant", "converted", "convertedAt", "conversionValue")
               SELECT $1 || '-' || $2 || '-' || g, $1, $1 || '-' || $2 || '-' || g, $2, g <= $4,
                      CASE WHEN g <= $4 THEN now() END, CASE WHEN g <= $4 THEN $5::float8 END
               FROM generate_series(1, $3) g"#,
            &[&key, &variant, &n, &converted, &value],
        )
        .await
        .expect("participants");
}

#[tokio::test]
async fn an_experiment_goes_from_draft_to_running_to_paused_and_back_to_stopped() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "draft").await;
    app.client
        .execute(r#"UPDATE "feature_flags" SET "enabled" = false"#, &[])
        .await
        .expect("disabled draft");

    let started = step(&app, &token, "checkout-test", "start", None, StatusCode::OK).await;
    let paused = step(&app, &token, "checkout-test", "pause", None, StatusCode::OK).await;
    let resumed = step(
        &app,
        &token,
        "checkout-test",
        "resume",
        None,
        StatusCode::OK,
    )
    .await;
    participants(&app, "checkout-test", "control", 10, 2, 100.0).await;
    participants(&app, "checkout-test", "treatment", 10, 4, 100.0).await;
    let stopped = step(
        &app,
        &token,
        "checkout-test",
        "stop",
        Some(json!({"winningVariant": "treatment"})),
        StatusCode::OK,
    )
    .await;

    assert_eq!(started["experimentStatus"], "running");
    assert_eq!(started["enabled"], true);
    assert!(started["startedAt"].is_string());
    assert_eq!(paused["experimentStatus"], "paused");
    assert_eq!(resumed["experimentStatus"], "running");
    assert_eq!(resumed["startedAt"], started["startedAt"]);
    assert_eq!(stopped["experimentStatus"], "stopped");
    assert_eq!(stopped["winningVariant"], "treatment");
    assert!(stopped["completedAt"].is_string());
    assert_eq!(
        stopped["experimentResults"]["variants"][1]["conversions"],
        4
    );
    let steps: Vec<Value> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|row| row["resource"] == "experiments")
        .map(|row| row["changes"]["after"]["experimentStatus"].clone())
        .collect();
    assert_eq!(
        steps,
        [
            json!("running"),
            json!("paused"),
            json!("running"),
            json!("stopped")
        ]
    );
}

#[tokio::test]
async fn a_step_the_lifecycle_does_not_allow_is_a_409_naming_the_status() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("draft-test", "draft").await;
    app.experiment("stopped-test", "stopped").await;
    for (key, name) in [
        ("draft-test", "pause"),
        ("draft-test", "resume"),
        ("draft-test", "stop"),
        ("stopped-test", "start"),
        ("stopped-test", "resume"),
    ] {
        let refused = step(&app, &token, key, name, None, StatusCode::CONFLICT).await;
        assert_eq!(
            refused["error"]["field"], "experimentStatus",
            "{key} {name}"
        );
    }
}

#[tokio::test]
async fn a_winner_that_is_not_a_variant_is_a_400_naming_it() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "running").await;

    let refused = step(
        &app,
        &token,
        "checkout-test",
        "stop",
        Some(json!({"winningVariant": "blue"})),
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(refused["error"]["field"], "winningVariant");
}

#[tokio::test]
async fn a_flag_that_is_not_an_experiment_has_no_lifecycle() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.expect(
        "POST",
        "/api/admin/flags",
        Some(&token),
        Some(json!({"key": "banner", "name": "Banner"})),
        StatusCode::CREATED,
    )
    .await;

    let refused = step(&app, &token, "banner", "start", None, StatusCode::CONFLICT).await;

    assert_eq!(refused["error"]["field"], "isExperiment");
}

#[tokio::test]
async fn results_count_each_arm_and_compare_it_with_the_control() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "running").await;
    app.client
        .execute(
            r#"UPDATE "feature_flags" SET "minimumSampleSize" = 1000"#,
            &[],
        )
        .await
        .expect("sample size");
    participants(&app, "checkout-test", "control", 1000, 100, 200.0).await;
    participants(&app, "checkout-test", "treatment", 1010, 130, 200.0).await;

    let results = app
        .expect(
            "GET",
            "/api/admin/experiments/checkout-test/results",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;

    assert_eq!(results["control"], "control");
    assert_eq!(results["variants"][0]["participants"], 1000);
    assert_eq!(results["variants"][0]["conversions"], 100);
    assert_eq!(results["variants"][0]["conversionRate"], 0.1);
    assert_eq!(results["variants"][1]["conversionValueSum"], 26_000.0);
    assert_eq!(results["variants"][1]["reachedMinimumSampleSize"], true);
    assert_eq!(results["minimumSampleSizeReached"], true);
    let rate = &results["comparisons"][0]["conversionRate"];
    let lift = rate["lift"].as_f64().expect("a lift");
    let expected_lift = (130.0 / 1010.0 - 0.1) / 0.1;
    assert!((lift - expected_lift).abs() < 1e-9, "{rate}");
    let (lower, upper) = (
        rate["ciLower"].as_f64().expect("lower"),
        rate["ciUpper"].as_f64().expect("upper"),
    );
    assert!(lower < lift && lift < upper, "{rate}");
    let p = rate["pValue"].as_f64().expect("a p-value");
    assert!(p > 0.0 && p < 0.1, "{rate}");
    assert_eq!(results["sampleRatio"]["mismatch"], false);
}

#[tokio::test]
async fn a_split_far_from_the_weights_is_flagged_as_a_sample_ratio_mismatch() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "running").await;
    participants(&app, "checkout-test", "control", 1000, 10, 1.0).await;
    participants(&app, "checkout-test", "treatment", 800, 10, 1.0).await;

    let results = app
        .expect(
            "GET",
            "/api/admin/experiments/checkout-test/results",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;

    assert_eq!(results["sampleRatio"]["mismatch"], true, "{results}");
    assert!(results["sampleRatio"]["pValue"].as_f64().expect("p") < 0.001);
    assert_eq!(results["minimumSampleSizeReached"], false);
}

#[tokio::test]
async fn a_stop_whose_commit_fails_is_not_answered_as_done_and_changes_nothing() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "running").await;
    app.client
        .batch_execute(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE ON "feature_flags"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#,
        )
        .await
        .expect("the deferred trigger");

    let answer = app
        .send(
            "POST",
            "/api/admin/experiments/checkout-test/stop",
            Some(&token),
            Some(json!({"winningVariant": "treatment"})),
        )
        .await;

    assert!(answer.status.is_server_error(), "{}", answer.status);
    assert_eq!(
        app.count(
            r#"SELECT count(*) FROM "feature_flags" WHERE "experimentStatus" = 'running' AND "winningVariant" IS NULL"#
        )
        .await,
        1
    );
}
