//! The official OpenFeature OFREP providers, unmodified, read the flags:
//! `@openfeature/ofrep-provider` under `@openfeature/server-sdk` from a
//! script, and `@openfeature/ofrep-web-provider` under
//! `@openfeature/web-sdk` from a page in headless Chromium on another
//! origin, with a context change and an ETag revalidation (tests/openfeature/).
//!
//! Needs Node.js, npm and Chromium, as the Sentry SDK tests do.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    TestApp,
    flags::{flag, ofrep},
    node::{chromium, free_port, run, serve},
    spawn_app,
};

async fn flags(app: &TestApp) {
    flag(app, "deal-banner", json!({})).await;
    flag(app, "half", json!({"rolloutPercentage": 50})).await;
    flag(
        app,
        "iberia-deals",
        json!({"targetSegments": {"country": {"$in": ["PT", "ES"]}}}),
    )
    .await;
    flag(
        app,
        "theme",
        json!({"variants": [
            {"id": "sand", "weight": 34, "config": "sand"},
            {"id": "ocean", "weight": 33, "config": "ocean"},
            {"id": "forest", "weight": 33, "config": "forest"}
        ]}),
    )
    .await;
    flag(
        app,
        "checkout-test",
        json!({
            "variants": [{"id": "control", "weight": 50, "config": {"steps": 3}}, {"id": "one-page", "weight": 50, "config": {"steps": 1}}],
            "isExperiment": true, "experimentStatus": "running",
        }),
    )
    .await;
}

/// What the function itself answers for `key` in `context`: the oracle
/// for what the providers report.
async fn served(app: &TestApp, key: &str, context: Value) -> (Value, Value, Value) {
    let answer = ofrep(app, key, context, StatusCode::OK).await;
    (
        answer["value"].clone(),
        answer["variant"].clone(),
        answer["reason"].clone(),
    )
}

fn reported(result: &Value) -> (Value, Value, Value) {
    (
        result["value"].clone(),
        result["variant"].clone(),
        result["reason"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfeature_node_provider_reads_every_kind_of_flag() {
    let app = spawn_app(&[]).await;
    flags(&app).await;
    let address = serve(&app).await;
    let visitor = json!({"targetingKey": "user-42", "country": "PT"});
    let evaluations = json!([
        {"flag": "deal-banner", "type": "boolean", "default": false, "context": visitor},
        {"flag": "iberia-deals", "type": "boolean", "default": false, "context": visitor},
        {"flag": "iberia-deals", "type": "boolean", "default": true, "context": {"targetingKey": "user-42", "country": "FR"}},
        {"flag": "half", "type": "boolean", "default": false, "context": visitor},
        {"flag": "theme", "type": "string", "default": "plain", "context": visitor},
        {"flag": "checkout-test", "type": "object", "default": {}, "context": visitor},
        {"flag": "nothing", "type": "boolean", "default": true, "context": visitor},
        {"flag": "half", "type": "boolean", "default": true, "context": {"country": "PT"}},
        {"flag": "deal-banner", "type": "string", "default": "no", "context": visitor}
    ]);

    let results = run(
        "openfeature",
        "node.mjs",
        vec![format!("http://{address}"), evaluations.to_string()],
    )
    .await;
    let results = results["results"].as_array().expect("results").clone();

    assert_eq!(
        reported(&results[0]),
        (json!(true), json!("on"), json!("STATIC"))
    );
    assert_eq!(
        reported(&results[1]),
        (json!(true), json!("on"), json!("TARGETING_MATCH"))
    );
    assert_eq!(
        reported(&results[2]),
        (json!(false), json!("off"), json!("TARGETING_MATCH"))
    );
    assert_eq!(
        reported(&results[3]),
        served(&app, "half", visitor.clone()).await
    );
    assert_eq!(
        reported(&results[4]),
        served(&app, "theme", visitor.clone()).await
    );
    assert_eq!(
        reported(&results[5]),
        served(&app, "checkout-test", visitor.clone()).await
    );
    assert_eq!(results[5]["flagMetadata"]["experiment"], true);
    assert_eq!(
        (&results[6]["errorCode"], &results[6]["value"]),
        (&json!("FLAG_NOT_FOUND"), &json!(true))
    );
    assert_eq!(
        (&results[7]["errorCode"], &results[7]["value"]),
        (&json!("TARGETING_KEY_MISSING"), &json!(true))
    );
    assert_eq!(
        (&results[8]["errorCode"], &results[8]["value"]),
        (&json!("TYPE_MISMATCH"), &json!("no"))
    );
    assert!(
        results.iter().take(6).all(|r| r["errorCode"].is_null()),
        "{results:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfeature_node_provider_gets_the_variant_assign_records() {
    let app = spawn_app(&[]).await;
    flags(&app).await;
    let address = serve(&app).await;
    let sessions: Vec<String> = (0..12).map(|i| format!("session_{i}")).collect();
    let evaluations: Vec<Value> = sessions
        .iter()
        .map(|s| json!({"flag": "checkout-test", "type": "object", "default": {}, "context": {"targetingKey": s}}))
        .collect();

    let results = run(
        "openfeature",
        "node.mjs",
        vec![
            format!("http://{address}"),
            Value::from(evaluations).to_string(),
        ],
    )
    .await;

    for (session, result) in sessions
        .iter()
        .zip(results["results"].as_array().expect("results"))
    {
        let assigned = app
            .post(
                "/api/experiments/assign",
                &[("content-type", "application/json")],
                json!({"sessionId": session}).to_string(),
                StatusCode::OK,
            )
            .await;
        assert_eq!(
            result["variant"], assigned["assignments"][0]["variant"],
            "{session}"
        );
        assert_eq!(
            result["value"], assigned["assignments"][0]["value"],
            "{session}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfeature_web_provider_follows_a_context_change_and_revalidates_with_the_etag() {
    let page_port = free_port();
    let app = spawn_app(&[(
        "CORS_ALLOWED_ORIGINS",
        &format!("http://127.0.0.1:{page_port}"),
    )])
    .await;
    flags(&app).await;
    let address = serve(&app).await;
    let first = json!({"targetingKey": "user-1", "country": "PT"});
    let second = json!({"targetingKey": "user-22", "country": "FR"});
    let scenario = json!({
        "context": first,
        "secondContext": second,
        "flags": [
            {"flag": "deal-banner", "type": "boolean", "default": false},
            {"flag": "iberia-deals", "type": "boolean", "default": false},
            {"flag": "theme", "type": "string", "default": "plain"},
            {"flag": "checkout-test", "type": "object", "default": {}}
        ]
    });

    let seen = run(
        "openfeature",
        "browser.mjs",
        vec![
            format!("http://{address}"),
            page_port.to_string(),
            chromium(),
            scenario.to_string(),
        ],
    )
    .await;

    for (round, context) in [("first", &first), ("second", &second)] {
        let details = seen[round].as_array().expect("details");
        assert_eq!(details.len(), 4, "{seen}");
        for detail in details {
            let key = detail["flag"].as_str().expect("a key");
            assert_eq!(
                reported(detail),
                served(&app, key, context.clone()).await,
                "{round} {key}"
            );
            assert!(detail["errorCode"].is_null(), "{round}: {detail}");
        }
    }
    assert_eq!(seen["first"][1]["value"], true, "PT is in iberia-deals");
    assert_eq!(seen["second"][1]["value"], false, "FR is not");
    let requests = seen["requests"].as_array().expect("requests");
    assert!(
        requests
            .iter()
            .any(|r| r["status"] == 304 && r["ifNoneMatch"] == true),
        "a poll revalidated with the ETag: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r["status"] == 200 || r["status"] == 304),
        "{requests:#?}"
    );
}
