//! OFREP evaluation, the per-container flag cache, experiment assignment
//! and conversions.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// A flag row as the admin API writes one.
pub async fn flag(app: &TestApp, key: &str, settings: Value) {
    let get = |name: &str, default: Value| settings.get(name).cloned().unwrap_or(default);
    let targeting = settings.get("targetSegments").cloned();
    let status = settings
        .get("experimentStatus")
        .and_then(Value::as_str)
        .map(str::to_owned);
    app.db
        .connect()
        .await
        .execute(
            r#"INSERT INTO "feature_flags" ("id", "key", "name", "enabled", "rolloutPercentage", "variants",
                   "targetSegments", "isExperiment", "experimentStatus", "updatedAt")
               VALUES ($1, $1, $1, $2, $3, $4, $5, $6, $7, now())"#,
            &[
                &key,
                &get("enabled", json!(true)).as_bool().unwrap_or(true),
                &i32::try_from(get("rolloutPercentage", json!(100)).as_i64().unwrap_or(100)).unwrap_or(100),
                &get("variants", json!([])),
                &targeting,
                &get("isExperiment", json!(false)).as_bool().unwrap_or(false),
                &status,
            ],
        )
        .await
        .expect("insert flag");
}

pub async fn experiment(app: &TestApp, key: &str, status: &str) {
    flag(
        app,
        key,
        json!({
            "variants": [{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50, "config": {"steps": 1}}],
            "isExperiment": true,
            "experimentStatus": status,
        }),
    )
    .await;
}

pub async fn ofrep(app: &TestApp, key: &str, context: Value, expected: StatusCode) -> Value {
    app.post(
        &format!("/ofrep/v1/evaluate/flags/{key}"),
        &[("content-type", "application/json")],
        json!({"context": context}).to_string(),
        expected,
    )
    .await
}

async fn bulk(
    app: &TestApp,
    context: Value,
    if_none_match: Option<&str>,
    expected: StatusCode,
) -> (String, Value) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(tag) = if_none_match {
        headers.push(("if-none-match", tag));
    }
    let (headers, body) = app
        .request(
            "POST",
            "/ofrep/v1/evaluate/flags",
            &headers,
            json!({"context": context}).to_string(),
            expected,
        )
        .await;
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (etag, body)
}

async fn assign(app: &TestApp, body: Value, expected: StatusCode) -> Value {
    app.post(
        "/api/experiments/assign",
        &[
            ("content-type", "application/json"),
            ("user-agent", BROWSER),
        ],
        body.to_string(),
        expected,
    )
    .await
}

async fn convert(app: &TestApp, body: Value, expected: StatusCode) -> Value {
    app.post(
        "/api/experiments/convert",
        &[
            ("content-type", "application/json"),
            ("user-agent", BROWSER),
        ],
        body.to_string(),
        expected,
    )
    .await
}

async fn participations(app: &TestApp) -> Vec<(String, Option<String>, String, bool, Option<f64>)> {
    app.db
        .connect()
        .await
        .query(
            r#"SELECT "sessionId", "userId", "variant", "converted", "conversionValue"
               FROM "experiment_participations" ORDER BY "sessionId""#,
            &[],
        )
        .await
        .expect("participations")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test]
async fn a_boolean_flag_on_for_everyone_is_static_and_needs_no_targeting_key() {
    let app = spawn_app(&[]).await;
    flag(&app, "deal-banner", json!({})).await;

    let answer = ofrep(&app, "deal-banner", json!({}), StatusCode::OK).await;

    assert_eq!(
        answer,
        json!({"key": "deal-banner", "reason": "STATIC", "variant": "on", "value": true, "metadata": {}})
    );
}

#[tokio::test]
async fn a_disabled_flag_is_off_with_the_reason_disabled() {
    let app = spawn_app(&[]).await;
    flag(&app, "deal-banner", json!({"enabled": false})).await;

    let answer = ofrep(&app, "deal-banner", json!({}), StatusCode::OK).await;

    assert_eq!(
        (&answer["reason"], &answer["value"]),
        (&json!("DISABLED"), &json!(false))
    );
}

#[tokio::test]
async fn an_unknown_flag_is_the_protocols_404() {
    let app = spawn_app(&[]).await;

    let answer = ofrep(
        &app,
        "nothing",
        json!({"targetingKey": "u1"}),
        StatusCode::NOT_FOUND,
    )
    .await;

    assert_eq!(answer["key"], "nothing");
    assert_eq!(answer["errorCode"], "FLAG_NOT_FOUND");
}

#[tokio::test]
async fn malformed_requests_get_the_protocols_error_codes() {
    let app = spawn_app(&[]).await;
    flag(&app, "half", json!({"rolloutPercentage": 50})).await;
    let uri = "/ofrep/v1/evaluate/flags/half";
    let json_type = [("content-type", "application/json")];

    let not_json = app
        .post(uri, &json_type, "{", StatusCode::BAD_REQUEST)
        .await;
    let not_object = app
        .post(
            uri,
            &json_type,
            r#"{"context": [1]}"#,
            StatusCode::BAD_REQUEST,
        )
        .await;
    let bad_key = app
        .post(
            uri,
            &json_type,
            r#"{"context": {"targetingKey": 7}}"#,
            StatusCode::BAD_REQUEST,
        )
        .await;
    let no_key = ofrep(
        &app,
        "half",
        json!({"country": "PT"}),
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(not_json["errorCode"], "PARSE_ERROR");
    assert_eq!(not_object["errorCode"], "INVALID_CONTEXT");
    assert_eq!(bad_key["errorCode"], "INVALID_CONTEXT");
    assert_eq!(no_key["errorCode"], "TARGETING_KEY_MISSING");
    assert_eq!(no_key["key"], "half");
}

#[tokio::test]
async fn targeting_reads_the_context_with_growthbooks_conditions() {
    let app = spawn_app(&[]).await;
    flag(
        &app,
        "iberia-deals",
        json!({"targetSegments": {"country": {"$in": ["PT", "ES"]}, "appVersion": {"$vgte": "2.10.0"}}}),
    )
    .await;

    let hit = ofrep(
        &app,
        "iberia-deals",
        json!({"country": "PT", "appVersion": "2.10.1"}),
        StatusCode::OK,
    )
    .await;
    let old_app = ofrep(
        &app,
        "iberia-deals",
        json!({"country": "PT", "appVersion": "2.9.9"}),
        StatusCode::OK,
    )
    .await;
    let elsewhere = ofrep(
        &app,
        "iberia-deals",
        json!({"country": "FR", "appVersion": "3.0.0"}),
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        (&hit["reason"], &hit["value"]),
        (&json!("TARGETING_MATCH"), &json!(true))
    );
    assert_eq!(
        (&old_app["reason"], &old_app["value"]),
        (&json!("TARGETING_MATCH"), &json!(false))
    );
    assert_eq!(elsewhere["value"], false);
}

#[tokio::test]
async fn a_partial_rollout_splits_visitors_by_their_targeting_key_every_time_alike() {
    let app = spawn_app(&[]).await;
    flag(&app, "half", json!({"rolloutPercentage": 50})).await;
    let mut on = 0;
    for i in 0..200 {
        let context = json!({"targetingKey": format!("user-{i}")});
        let first = ofrep(&app, "half", context.clone(), StatusCode::OK).await;
        let again = ofrep(&app, "half", context, StatusCode::OK).await;
        assert_eq!(first, again);
        assert_eq!(first["reason"], "SPLIT");
        if first["value"] == true {
            on += 1;
        }
    }
    assert!((70..130).contains(&on), "{on} of 200 at 50%");
}

#[tokio::test]
async fn bulk_evaluation_answers_every_flag_with_an_etag_that_a_revalidation_matches() {
    let app = spawn_app(&[]).await;
    flag(&app, "deal-banner", json!({})).await;
    flag(&app, "half", json!({"rolloutPercentage": 50})).await;
    let context = json!({"targetingKey": "user-1", "country": "PT"});

    let (etag, answer) = bulk(&app, context.clone(), None, StatusCode::OK).await;
    let (again, nothing) = bulk(&app, context.clone(), Some(&etag), StatusCode::NOT_MODIFIED).await;
    let (other, _) = bulk(
        &app,
        json!({"targetingKey": "user-2", "country": "PT"}),
        Some(&etag),
        StatusCode::OK,
    )
    .await;

    let keys: Vec<&Value> = answer["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| &f["key"])
        .collect();
    assert_eq!(keys, [&json!("deal-banner"), &json!("half")]);
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag:?}");
    assert_eq!(again, etag);
    assert_eq!(nothing, Value::Null);
    assert_ne!(other, etag, "the ETag must cover the context");
}

#[tokio::test]
async fn each_flag_of_a_bulk_answer_is_what_its_own_evaluation_answers() {
    let app = spawn_app(&[]).await;
    flag(&app, "deal-banner", json!({})).await;
    flag(&app, "off-banner", json!({"enabled": false})).await;
    flag(&app, "half", json!({"rolloutPercentage": 50})).await;
    flag(
        &app,
        "iberia",
        json!({"targetSegments": {"country": {"$in": ["PT", "ES"]}}}),
    )
    .await;
    flag(
        &app,
        "theme",
        json!({"variants": [{"id": "sand", "weight": 50, "config": {"color": "#c2b280", "name": "Sand \"dune\""}}, {"id": "sea", "weight": 50}]}),
    )
    .await;
    experiment(&app, "checkout-test", "running").await;
    experiment(&app, "paused-test", "paused").await;
    flag(
        &app,
        "broken",
        json!({"variants": [{"id": "a", "weight": 10}]}),
    )
    .await;
    for i in 0..20 {
        let context = json!({"targetingKey": format!("user-{i}"), "country": if i % 2 == 0 { "PT" } else { "FR" }});

        let (_, answer) = bulk(&app, context.clone(), None, StatusCode::OK).await;

        for item in answer["flags"].as_array().expect("flags") {
            let key = item["key"].as_str().expect("a key");
            let expected = if key == "broken" {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            assert_eq!(
                item,
                &ofrep(&app, key, context.clone(), expected).await,
                "{key} for {context}"
            );
        }
        assert_eq!(answer["flags"].as_array().map(Vec::len), Some(8));
    }
}

#[tokio::test]
async fn a_bulk_evaluation_without_a_targeting_key_fails_only_the_flags_that_split() {
    let app = spawn_app(&[]).await;
    flag(&app, "deal-banner", json!({})).await;
    flag(&app, "half", json!({"rolloutPercentage": 50})).await;

    let (_, answer) = bulk(&app, json!({}), None, StatusCode::OK).await;

    assert_eq!(answer["flags"][0]["value"], true);
    assert_eq!(answer["flags"][1]["errorCode"], "TARGETING_KEY_MISSING");
}

#[tokio::test]
async fn flags_are_read_once_per_cache_time_and_a_change_shows_within_it() {
    let app = spawn_app(&[("FLAG_CACHE_SECONDS", "1")]).await;
    flag(&app, "deal-banner", json!({})).await;
    let (before, _) = bulk(&app, json!({}), None, StatusCode::OK).await;
    app.db
        .connect()
        .await
        .execute(r#"UPDATE "feature_flags" SET "enabled" = false"#, &[])
        .await
        .expect("turn off");

    let cached = ofrep(&app, "deal-banner", json!({}), StatusCode::OK).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = ofrep(&app, "deal-banner", json!({}), StatusCode::OK).await;
    let (after, _) = bulk(&app, json!({}), Some(&before), StatusCode::OK).await;

    assert_eq!(
        cached["value"], true,
        "served from the copy within the cache time"
    );
    assert_eq!(
        (&changed["reason"], &changed["value"]),
        (&json!("DISABLED"), &json!(false))
    );
    assert_ne!(
        after, before,
        "the ETag must cover the flags' configuration"
    );
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_may_revalidate_and_read_the_etag() {
    let app = spawn_app(&[("CORS_ALLOWED_ORIGINS", "https://deals.example")]).await;

    let (headers, _) = app
        .request(
            "OPTIONS",
            "/ofrep/v1/evaluate/flags",
            &[
                ("origin", "https://deals.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,if-none-match",
                ),
            ],
            "",
            StatusCode::OK,
        )
        .await;
    let (answer_headers, _) = app
        .request(
            "POST",
            "/ofrep/v1/evaluate/flags",
            &[
                ("origin", "https://deals.example"),
                ("content-type", "application/json"),
            ],
            r#"{"context": {}}"#,
            StatusCode::OK,
        )
        .await;

    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(allowed.contains("if-none-match"), "{allowed}");
    let exposed = answer_headers["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
}

#[tokio::test]
async fn assign_enrols_a_new_visitor_once_in_the_variant_ofrep_gives_them() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;

    let first = assign(&app, json!({"sessionId": "session_1_a"}), StatusCode::OK).await;
    let again = assign(&app, json!({"sessionId": "session_1_a"}), StatusCode::OK).await;
    let evaluated = ofrep(
        &app,
        "checkout-test",
        json!({"targetingKey": "session_1_a"}),
        StatusCode::OK,
    )
    .await;

    let assignment = &first["assignments"][0];
    assert_eq!(assignment["flagKey"], "checkout-test");
    assert_eq!(assignment["new"], true);
    assert_eq!(again["assignments"][0]["new"], false);
    assert_eq!(again["assignments"][0]["variant"], assignment["variant"]);
    assert_eq!(evaluated["variant"], assignment["variant"]);
    assert_eq!(evaluated["value"], assignment["value"]);
    assert_eq!(evaluated["reason"], "SPLIT");
    assert_eq!(participations(&app).await.len(), 1);
}

#[tokio::test]
async fn assign_enrols_a_visitor_in_every_running_experiment_at_once_and_only_in_those_named() {
    let app = spawn_app(&[]).await;
    for key in ["a-test", "b-test", "c-test"] {
        experiment(&app, key, "running").await;
    }

    let named = assign(
        &app,
        json!({"sessionId": "s1", "flags": ["b-test"]}),
        StatusCode::OK,
    )
    .await;
    let all = assign(&app, json!({"sessionId": "s1"}), StatusCode::OK).await;

    assert_eq!(named["assignments"].as_array().map(Vec::len), Some(1));
    let new: Vec<(&str, bool)> = all["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|a| (a["flagKey"].as_str().unwrap_or_default(), a["new"] == true))
        .collect();
    assert_eq!(new, [("a-test", true), ("b-test", false), ("c-test", true)]);
    assert_eq!(participations(&app).await.len(), 3);
}

#[tokio::test]
async fn a_recorded_variant_is_kept_when_the_weights_change_later() {
    let app = spawn_app(&[("FLAG_CACHE_SECONDS", "0")]).await;
    experiment(&app, "checkout-test", "running").await;
    let mut visitors = Vec::new();
    for i in 0..20 {
        let session = format!("session_{i}");
        let answer = assign(&app, json!({"sessionId": session}), StatusCode::OK).await;
        visitors.push((session, answer["assignments"][0]["variant"].clone()));
    }
    app.db
        .connect()
        .await
        .execute(
            r#"UPDATE "feature_flags" SET "variants" = '[{"id": "control", "weight": 1}, {"id": "treatment", "weight": 99}]'"#,
            &[],
        )
        .await
        .expect("reweight");

    for (session, variant) in visitors {
        let answer = assign(&app, json!({"sessionId": session}), StatusCode::OK).await;
        assert_eq!(answer["assignments"][0]["variant"], variant, "{session}");
    }
    assert_eq!(participations(&app).await.len(), 20);
}

#[tokio::test]
async fn experiments_that_are_not_running_enrol_nobody() {
    let app = spawn_app(&[]).await;
    experiment(&app, "draft-test", "draft").await;
    experiment(&app, "paused-test", "paused").await;
    experiment(&app, "stopped-test", "stopped").await;

    let answer = assign(&app, json!({"sessionId": "s1"}), StatusCode::OK).await;

    assert_eq!(answer["assignments"], json!([]));
    assert!(participations(&app).await.is_empty());
}

#[tokio::test]
async fn a_visitor_the_targeting_shuts_out_is_not_enrolled() {
    let app = spawn_app(&[]).await;
    flag(
        &app,
        "pt-test",
        json!({
            "variants": [{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}],
            "isExperiment": true, "experimentStatus": "running",
            "targetSegments": {"country": "PT"},
        }),
    )
    .await;

    let outside = assign(
        &app,
        json!({"sessionId": "s1", "attributes": {"country": "ES"}}),
        StatusCode::OK,
    )
    .await;
    let inside = assign(
        &app,
        json!({"sessionId": "s2", "attributes": {"country": "PT"}}),
        StatusCode::OK,
    )
    .await;

    assert_eq!(outside["assignments"], json!([]));
    assert_eq!(inside["assignments"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_signed_in_visitor_keeps_their_variant_in_a_new_session() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;

    let first = assign(
        &app,
        json!({"sessionId": "s1", "userId": "user-9"}),
        StatusCode::OK,
    )
    .await;
    let later = assign(
        &app,
        json!({"sessionId": "s2", "userId": "user-9"}),
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        later["assignments"][0]["variant"],
        first["assignments"][0]["variant"]
    );
    assert_eq!(later["assignments"][0]["new"], false);
    assert_eq!(participations(&app).await.len(), 1);
}

#[tokio::test]
async fn concurrent_assigns_of_one_visitor_record_one_participation() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;
    let app = std::sync::Arc::new(app);

    let answers = futures_util::future::join_all((0..8).map(|_| {
        let app = app.clone();
        async move { assign(&app, json!({"sessionId": "session_race"}), StatusCode::OK).await }
    }))
    .await;

    let variants: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            a["assignments"][0]["variant"]
                .as_str()
                .expect("a variant")
                .to_owned()
        })
        .collect();
    assert_eq!(variants.len(), 1);
    assert_eq!(participations(&app).await.len(), 1);
}

#[tokio::test]
async fn a_bot_is_neither_enrolled_nor_counted() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;

    for uri in ["/api/experiments/assign", "/api/experiments/convert"] {
        let (headers, _) = app
            .request(
                "POST",
                uri,
                &[
                    ("content-type", "application/json"),
                    ("user-agent", GOOGLEBOT),
                ],
                json!({"sessionId": "s1", "flagKey": "checkout-test"}).to_string(),
                StatusCode::ACCEPTED,
            )
            .await;
        assert_eq!(headers["x-analytics-dropped"], "bot");
    }
    assert!(participations(&app).await.is_empty());
}

#[tokio::test]
async fn conversions_keep_the_first_time_and_add_up_values() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;
    assign(&app, json!({"sessionId": "s1"}), StatusCode::OK).await;

    let first = convert(
        &app,
        json!({"flagKey": "checkout-test", "sessionId": "s1", "value": 120.5}),
        StatusCode::OK,
    )
    .await;
    let second = convert(
        &app,
        json!({"flagKey": "checkout-test", "sessionId": "s1", "value": 79.5}),
        StatusCode::OK,
    )
    .await;

    assert_eq!(second["convertedAt"], first["convertedAt"]);
    assert_eq!(second["conversionValue"], 200.0);
    let stored = participations(&app).await;
    assert_eq!((stored[0].3, stored[0].4), (true, Some(200.0)));
}

#[tokio::test]
async fn a_retried_conversion_with_its_id_adds_nothing() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;
    assign(&app, json!({"sessionId": "s1"}), StatusCode::OK).await;
    let body = json!({"flagKey": "checkout-test", "sessionId": "s1", "value": 99.0, "conversionId": "order-1"});

    let first = convert(&app, body.clone(), StatusCode::OK).await;
    let retry = convert(&app, body, StatusCode::OK).await;
    let other = convert(
        &app,
        json!({"flagKey": "checkout-test", "sessionId": "s1", "value": 1.0, "conversionId": "order-2"}),
        StatusCode::OK,
    )
    .await;

    assert_eq!(first["duplicate"], false);
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["conversionValue"], 99.0);
    assert_eq!(other["conversionValue"], 100.0);
}

#[tokio::test]
async fn a_conversion_of_a_visitor_who_never_took_part_is_a_404_naming_flag_key() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;

    let stranger = convert(
        &app,
        json!({"flagKey": "checkout-test", "sessionId": "s9"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    let no_flag = convert(
        &app,
        json!({"flagKey": "nothing", "sessionId": "s9"}),
        StatusCode::NOT_FOUND,
    )
    .await;

    assert_eq!(stranger["error"]["field"], "flagKey");
    assert_eq!(no_flag["error"]["field"], "flagKey");
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field() {
    let app = spawn_app(&[]).await;
    let cases = [
        ("/api/experiments/assign", json!({}), "sessionId"),
        (
            "/api/experiments/assign",
            json!({"sessionId": "s", "flags": "checkout"}),
            "flags",
        ),
        (
            "/api/experiments/assign",
            json!({"sessionId": "s", "flags": [1]}),
            "flags[0]",
        ),
        (
            "/api/experiments/assign",
            json!({"sessionId": "s", "attributes": []}),
            "attributes",
        ),
        (
            "/api/experiments/assign",
            json!({"sessionId": "s", "colour": "red"}),
            "colour",
        ),
        (
            "/api/experiments/convert",
            json!({"sessionId": "s"}),
            "flagKey",
        ),
        (
            "/api/experiments/convert",
            json!({"flagKey": "f", "sessionId": "s", "value": "12"}),
            "value",
        ),
        (
            "/api/experiments/convert",
            json!({"flagKey": "f", "sessionId": "s", "conversionId": 5}),
            "conversionId",
        ),
    ];
    for (uri, body, field) in cases {
        let answer = app
            .post(
                uri,
                &[
                    ("content-type", "application/json"),
                    ("user-agent", BROWSER),
                ],
                body.to_string(),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{uri} {body}");
    }
}

#[tokio::test]
async fn an_assignment_whose_commit_fails_is_not_answered() {
    let app = spawn_app(&[]).await;
    experiment(&app, "checkout-test", "running").await;
    app.db
        .connect()
        .await
        .batch_execute(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON "experiment_participations"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#,
        )
        .await
        .expect("the deferred trigger");

    let answer = app
        .request(
            "POST",
            "/api/experiments/assign",
            &[
                ("content-type", "application/json"),
                ("user-agent", BROWSER),
            ],
            json!({"sessionId": "s1"}).to_string(),
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await
        .1;

    assert!(answer["assignments"].is_null());
    assert!(participations(&app).await.is_empty());
}
