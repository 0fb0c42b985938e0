//! The model registry: `/api/admin/models`, activation and rollback.

use admin::bootstrap::Channel;
use admin::models::training;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::training::synthetic_fares;
use crate::{TestApp, spawn_app};

/// Trains `count` versions of `price` on the same synthetic fares, oldest
/// first; each becomes active in turn (as good as the one before).
async fn versions(app: &TestApp, count: usize) -> Vec<String> {
    synthetic_fares(app, 21, 1_500).await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let mut names = Vec::new();
    for _ in 0..count {
        let outcome = training::run(&mut client, "price", false, Channel::Cli)
            .await
            .expect("train");
        assert_eq!(outcome["activated"], true, "{outcome}");
        names.push(outcome["version"].as_str().expect("version").to_owned());
    }
    names
}

async fn serving(app: &TestApp) -> String {
    app.client
        .query_one(
            r#"SELECT "version" FROM "ml_models" WHERE "name" = 'price' AND "active""#,
            &[],
        )
        .await
        .expect("an active model")
        .get(0)
}

async fn active_versions(app: &TestApp) -> Vec<String> {
    app.client
        .query(
            r#"SELECT "version" FROM "bundle"."model_versions" WHERE "name" = 'price' AND "active""#,
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn activate_uri(version: &str) -> String {
    format!("/api/admin/models/price/versions/{version}/activate")
}

#[tokio::test]
async fn the_list_shows_each_model_with_its_active_version_and_realised_metrics() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    let versions = versions(&app, 2).await;
    // What the accuracy job writes once predictions have been settled.
    app.client
        .execute(
            r#"UPDATE "ml_models" SET "metrics" = "metrics" || '{"realised": {"mape": 0.12, "predictions": 40}}'"#,
            &[],
        )
        .await
        .expect("realised metrics");
    let page = app
        .expect(
            "GET",
            "/api/admin/models",
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;
    let models = page["models"].as_array().expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "price");
    assert_eq!(models[0]["activeVersion"], versions[1].as_str());
    assert_eq!(models[0]["versions"], 2);
    assert_eq!(models[0]["metrics"]["realised"]["mape"], 0.12);
    assert_eq!(models[0]["modelType"], pricing::Model::TYPE);
}

#[tokio::test]
async fn a_model_shows_its_versions_newest_first_with_their_metrics_and_the_active_parameters() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    let versions = versions(&app, 3).await;
    let model = app
        .expect(
            "GET",
            "/api/admin/models/price",
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;
    let listed: Vec<&str> = model["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["version"].as_str().expect("version"))
        .collect();
    assert_eq!(listed, [&versions[2], &versions[1], &versions[0]]);
    let newest = &model["versions"][0];
    assert_eq!(newest["active"], true);
    assert_eq!(newest["features"], json!(pricing::Model::features()));
    assert!(newest["metrics"]["mape"].as_f64().is_some());
    assert_eq!(newest["trainingData"]["rows"], 1_500);
    assert_eq!(model["active"]["version"], versions[2].as_str());
    let parameters: pricing::Model =
        serde_json::from_value(model["active"]["trainingData"]["parameters"].clone())
            .expect("the active parameters");
    assert!(parameters.knows_route("CDG", "BCN"));
    assert_eq!(model["activations"].as_array().map(Vec::len), Some(3));

    let first_page = app
        .expect(
            "GET",
            "/api/admin/models/price?limit=2",
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;
    let cursor = first_page["nextCursor"].as_str().expect("a next page");
    let second_page = app
        .expect(
            "GET",
            &format!("/api/admin/models/price?limit=2&cursor={cursor}"),
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(second_page["versions"][0]["version"], versions[0].as_str());
    assert_eq!(second_page["nextCursor"], Value::Null);
}

#[tokio::test]
async fn activation_switches_the_serving_version_and_audits_from_and_to() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    let versions = versions(&app, 2).await;
    let audit_before = app.audit_rows().await.len();
    let switched = app
        .expect(
            "POST",
            &activate_uri(&versions[0]),
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(switched["from"], versions[1].as_str());
    assert_eq!(switched["to"], versions[0].as_str());
    assert_eq!(serving(&app).await, versions[0]);
    assert_eq!(active_versions(&app).await, [versions[0].clone()]);
    let audit = app.audit_rows().await;
    assert_eq!(audit.len(), audit_before + 1);
    let row = audit.last().expect("the activation's row");
    assert_eq!(
        (
            &row["action"],
            &row["resource"],
            &row["resourceId"],
            &row["userId"]
        ),
        (
            &json!("update"),
            &json!("models"),
            &json!("price"),
            &json!("root")
        )
    );
    assert_eq!(row["changes"]["before"]["version"], versions[1].as_str());
    assert_eq!(row["changes"]["after"]["version"], versions[0].as_str());
}

#[tokio::test]
async fn rollback_goes_back_one_activation_at_a_time_until_there_is_none() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    let versions = versions(&app, 3).await;
    let rollback = "/api/admin/models/price/rollback";
    let first = app
        .expect("POST", rollback, Some(&root), None, StatusCode::OK)
        .await;
    assert_eq!(
        (&first["from"], &first["to"], &first["rollback"]),
        (&json!(versions[2]), &json!(versions[1]), &json!(true))
    );
    assert_eq!(serving(&app).await, versions[1]);
    let second = app
        .expect("POST", rollback, Some(&root), None, StatusCode::OK)
        .await;
    assert_eq!(second["to"], versions[0].as_str());
    assert_eq!(serving(&app).await, versions[0]);
    let none_left = app
        .expect("POST", rollback, Some(&root), None, StatusCode::CONFLICT)
        .await;
    assert_eq!(none_left["error"]["field"], "name", "{none_left}");
    assert_eq!(serving(&app).await, versions[0]);
    let audit = app.audit_rows().await;
    let last = audit.last().expect("the refusal");
    assert_eq!(last["success"], false);
    let rollbacks: Vec<&Value> = audit
        .iter()
        .filter(|r| r["changes"]["after"]["rollback"] == true)
        .collect();
    assert_eq!(rollbacks.len(), 2);
    assert_eq!(
        rollbacks[0]["changes"]["before"]["version"],
        versions[2].as_str()
    );
}

#[tokio::test]
async fn a_rollback_with_a_single_activation_is_a_conflict() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    versions(&app, 1).await;
    app.expect(
        "POST",
        "/api/admin/models/price/rollback",
        Some(&root),
        None,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn unknown_names_and_versions_are_404s_naming_the_field() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    versions(&app, 1).await;
    let no_model = app
        .expect(
            "GET",
            "/api/admin/models/weather",
            Some(&root),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(no_model["error"]["field"], "name", "{no_model}");
    let no_version = app
        .expect(
            "POST",
            &activate_uri("1999-01-01T000000Z"),
            Some(&root),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(no_version["error"]["field"], "version", "{no_version}");
    let no_model_rollback = app
        .expect(
            "POST",
            "/api/admin/models/weather/rollback",
            Some(&root),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(no_model_rollback["error"]["field"], "name");
}

#[tokio::test]
async fn two_activations_at_once_leave_exactly_one_active_version_which_serves() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    let versions = versions(&app, 3).await;
    for _ in 0..5 {
        let (first, second) = (activate_uri(&versions[0]), activate_uri(&versions[1]));
        let (a, b) = tokio::join!(
            app.send("POST", &first, Some(&root), None),
            app.send("POST", &second, Some(&root), None),
        );
        assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
        let active = active_versions(&app).await;
        assert_eq!(active.len(), 1, "{active:?}");
        assert_eq!(serving(&app).await, active[0]);
        // One ran after the other: the second switched from the first's
        // version, and its version is the one left active.
        let (a, b) = (a.json(), b.json());
        let active = json!(active[0]);
        assert!(
            (b["from"] == a["to"] && b["to"] == active)
                || (a["from"] == b["to"] && a["to"] == active),
            "{a} {b} {active}"
        );
    }
}

#[tokio::test]
async fn an_admin_without_the_models_permission_cannot_activate() {
    let app = spawn_app().await;
    let admin = app.admin("ada", "admin", None).await;
    let versions = versions(&app, 2).await;
    app.expect(
        "POST",
        &activate_uri(&versions[0]),
        Some(&admin),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(serving(&app).await, versions[1]);
}

#[tokio::test]
async fn a_name_or_version_with_a_nul_byte_or_of_any_length_is_a_4xx_naming_it() {
    let app = spawn_app().await;
    let root = app.admin("root", "super_admin", None).await;
    versions(&app, 1).await;
    let long = "p".repeat(2_000);
    let cases = [
        // NUL bytes are refused for the whole path, before any handler.
        (
            "GET",
            "/api/admin/models/pr%00ice".to_owned(),
            StatusCode::BAD_REQUEST,
            "path",
        ),
        (
            "POST",
            activate_uri("v%001"),
            StatusCode::BAD_REQUEST,
            "path",
        ),
        (
            "GET",
            format!("/api/admin/models/{long}"),
            StatusCode::NOT_FOUND,
            "name",
        ),
        (
            "POST",
            format!("/api/admin/models/{long}/rollback"),
            StatusCode::NOT_FOUND,
            "name",
        ),
        (
            "POST",
            activate_uri(&long),
            StatusCode::NOT_FOUND,
            "version",
        ),
        (
            "POST",
            activate_uri("%C5%81"),
            StatusCode::NOT_FOUND,
            "version",
        ),
    ];
    for (method, uri, status, field) in cases {
        let answer = app.expect(method, &uri, Some(&root), None, status).await;
        assert_eq!(answer["error"]["field"], field, "{uri}: {answer}");
    }
}
