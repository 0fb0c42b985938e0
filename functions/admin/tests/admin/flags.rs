//! `/api/admin/flags`: creating, validating, changing and deleting flags,
//! and what an experiment in flight refuses.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

async fn super_admin(app: &TestApp) -> String {
    app.admin("root", "super_admin", None).await
}

fn checkout_flag() -> Value {
    json!({
        "key": "new-checkout",
        "name": "New checkout",
        "description": "The one-page checkout",
        "enabled": true,
        "rolloutPercentage": 25,
        "variants": [
            {"id": "control", "weight": 50},
            {"id": "one-page", "name": "One page", "weight": 50, "config": {"steps": 1}}
        ],
        "targetSegments": {"country": {"$in": ["PT", "ES"]}, "appVersion": {"$vgte": "2.1.0"}},
        "isExperiment": true,
        "successMetric": "booking_complete",
        "minimumSampleSize": 1000
    })
}

#[tokio::test]
async fn a_new_flag_is_stored_as_sent_and_audited() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;

    let created = app
        .expect(
            "POST",
            "/api/admin/flags",
            Some(&token),
            Some(checkout_flag()),
            StatusCode::CREATED,
        )
        .await;

    assert_eq!(created["key"], "new-checkout");
    assert_eq!(created["rolloutPercentage"], 25);
    assert_eq!(created["experimentStatus"], "draft");
    assert_eq!(created["variants"][1]["config"], json!({"steps": 1}));
    let fetched = app
        .expect(
            "GET",
            "/api/admin/flags/new-checkout",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(fetched, created);
    let audit = app.audit_rows().await;
    let row = audit.last().expect("an audit row");
    assert_eq!(
        (
            &row["action"],
            &row["resource"],
            &row["resourceId"],
            &row["success"]
        ),
        (
            &json!("create"),
            &json!("flags"),
            &json!("new-checkout"),
            &json!(true)
        )
    );
    assert_eq!(row["changes"]["after"]["key"], "new-checkout");
}

#[tokio::test]
async fn a_key_in_use_is_a_409_naming_key() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.expect(
        "POST",
        "/api/admin/flags",
        Some(&token),
        Some(checkout_flag()),
        StatusCode::CREATED,
    )
    .await;

    let refused = app
        .expect(
            "POST",
            "/api/admin/flags",
            Some(&token),
            Some(checkout_flag()),
            StatusCode::CONFLICT,
        )
        .await;

    assert_eq!(refused["error"]["field"], "key");
}

#[tokio::test]
async fn each_invalid_field_is_a_400_naming_it() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    let cases: Vec<(&str, Value)> = vec![
        ("key", json!("New Checkout")),
        ("name", json!("")),
        ("rolloutPercentage", json!(101)),
        ("rolloutPercentage", json!(-1)),
        (
            "variants",
            json!([{"id": "a", "weight": 60}, {"id": "b", "weight": 60}]),
        ),
        (
            "variants[1].id",
            json!([{"id": "a", "weight": 50}, {"id": "a", "weight": 50}]),
        ),
        (
            "variants[0].weight",
            json!([{"id": "a", "weight": -5}, {"id": "b", "weight": 105}]),
        ),
        ("minimumSampleSize", json!(0)),
        (
            "targetSegments.country.$bogus",
            json!({"country": {"$bogus": 1}}),
        ),
    ];
    let mut failures = Vec::new();
    for (field, value) in cases {
        let top = field.split(['.', '[']).next().unwrap_or(field);
        let mut body = checkout_flag();
        body[top] = value.clone();
        let answer = app
            .send("POST", "/api/admin/flags", Some(&token), Some(body))
            .await;
        let named = answer.json()["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if answer.status != StatusCode::BAD_REQUEST || named != field {
            failures.push(format!(
                "{field} = {value}: {} naming {named:?}",
                answer.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "feature_flags""#).await,
        0
    );
}

#[tokio::test]
async fn a_condition_that_cannot_be_evaluated_is_refused_when_saved() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    let mut body = checkout_flag();
    body["targetSegments"] =
        json!({"$or": [{"country": "PT"}, {"email": {"$regex": "(unclosed"}}]});

    let refused = app
        .expect(
            "POST",
            "/api/admin/flags",
            Some(&token),
            Some(body),
            StatusCode::BAD_REQUEST,
        )
        .await;

    let field = refused["error"]["field"].as_str().unwrap_or_default();
    assert!(field.starts_with("targetSegments.$or[1]"), "{refused}");
}

#[tokio::test]
async fn a_key_never_changes() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.expect(
        "POST",
        "/api/admin/flags",
        Some(&token),
        Some(checkout_flag()),
        StatusCode::CREATED,
    )
    .await;

    let refused = app
        .expect(
            "PATCH",
            "/api/admin/flags/new-checkout",
            Some(&token),
            Some(json!({"key": "other"})),
            StatusCode::BAD_REQUEST,
        )
        .await;

    assert_eq!(refused["error"]["field"], "key");
}

#[tokio::test]
async fn a_change_keeps_what_it_does_not_name_and_null_clears() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.expect(
        "POST",
        "/api/admin/flags",
        Some(&token),
        Some(checkout_flag()),
        StatusCode::CREATED,
    )
    .await;

    let changed = app
        .expect(
            "PATCH",
            "/api/admin/flags/new-checkout",
            Some(&token),
            Some(json!({"rolloutPercentage": 50, "targetSegments": null, "description": null})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(changed["rolloutPercentage"], 50);
    assert_eq!(changed["targetSegments"], Value::Null);
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["name"], "New checkout");
    let audit = app.audit_rows().await;
    let row = audit.last().expect("an audit row");
    assert_eq!(row["changes"]["before"]["rolloutPercentage"], 25);
    assert_eq!(row["changes"]["after"]["rolloutPercentage"], 50);
}

#[tokio::test]
async fn a_running_experiment_refuses_changes_that_would_move_visitors() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("checkout-test", "running").await;
    app.client
        .execute(
            r#"UPDATE "feature_flags" SET "rolloutPercentage" = 50 WHERE "key" = 'checkout-test'"#,
            &[],
        )
        .await
        .expect("rollout");
    let refusals = [
        (
            json!({"variants": [{"id": "control", "weight": 30}, {"id": "treatment", "weight": 70}]}),
            "variants",
        ),
        (
            json!({"variants": [{"id": "control", "weight": 50}, {"id": "other", "weight": 50}]}),
            "variants",
        ),
        (
            json!({"targetSegments": {"country": "PT"}}),
            "targetSegments",
        ),
        (json!({"rolloutPercentage": 40}), "rolloutPercentage"),
        (json!({"isExperiment": false}), "isExperiment"),
    ];
    for (body, field) in refusals {
        let refused = app
            .expect(
                "PATCH",
                "/api/admin/flags/checkout-test",
                Some(&token),
                Some(body.clone()),
                StatusCode::CONFLICT,
            )
            .await;
        assert_eq!(refused["error"]["field"], field, "{body}");
    }

    let grown = app
        .expect(
            "PATCH",
            "/api/admin/flags/checkout-test",
            Some(&token),
            Some(json!({"rolloutPercentage": 80, "name": "Checkout test"})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(grown["rolloutPercentage"], 80);
}

#[tokio::test]
async fn lists_filter_by_experiment_status_and_page_by_key() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    for (key, status) in [
        ("a-test", "running"),
        ("b-test", "draft"),
        ("c-test", "running"),
    ] {
        app.experiment(key, status).await;
    }
    app.expect(
        "POST",
        "/api/admin/flags",
        Some(&token),
        Some(json!({"key": "d-banner", "name": "Banner"})),
        StatusCode::CREATED,
    )
    .await;

    let first = app
        .expect(
            "GET",
            "/api/admin/flags?status=running&limit=1",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .expect(
            "GET",
            &format!("/api/admin/flags?status=running&limit=1&cursor={cursor}"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let plain = app
        .expect(
            "GET",
            "/api/admin/flags?isExperiment=false",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;

    assert_eq!(first["flags"][0]["key"], "a-test");
    assert_eq!(second["flags"][0]["key"], "c-test");
    assert!(second["nextCursor"].is_null());
    assert_eq!(plain["flags"].as_array().map(Vec::len), Some(1));
    assert_eq!(plain["flags"][0]["key"], "d-banner");
}

#[tokio::test]
async fn an_experiment_in_flight_cannot_be_deleted_and_a_stopped_one_goes_with_its_participations()
{
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.experiment("running-test", "running").await;
    app.experiment("stopped-test", "stopped").await;
    app.client
        .execute(
            r#"INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant")
               VALUES ('p1', 'stopped-test', 's1', 'control')"#,
            &[],
        )
        .await
        .expect("participation");

    let refused = app
        .expect(
            "DELETE",
            "/api/admin/flags/running-test",
            Some(&token),
            None,
            StatusCode::CONFLICT,
        )
        .await;
    app.expect(
        "DELETE",
        "/api/admin/flags/stopped-test",
        Some(&token),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    assert_eq!(refused["error"]["field"], "experimentStatus");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "experiment_participations""#)
            .await,
        0
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "feature_flags""#).await,
        1
    );
}

#[tokio::test]
async fn an_unknown_flag_is_a_404() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"enabled": true}));
        app.expect(
            method,
            "/api/admin/flags/nothing",
            Some(&token),
            body,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
}
