//! `POST /api/predictions/price`: answered by the active price model (a
//! real one, trained here on the synthetic fares), stored before it is
//! answered, and the stored prediction given again for the same question.

use std::sync::LazyLock;

use axum::http::StatusCode;
use chrono::{Duration, NaiveDateTime, Utc};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const ROUTE: &str = "/api/predictions/price";

/// One model for every test of the binary: trained once.
static TRAINED: LazyLock<pricing::Trained> = LazyLock::new(|| {
    let fares = pricing::synthetic::fares(
        13,
        &pricing::synthetic::Options {
            count: 3_000,
            ..pricing::synthetic::Options::default()
        },
    );
    pricing::train(&fares, &pricing::TrainOptions::default()).expect("a model")
});

/// Writes `model` as version `version` of `price` and makes it the active
/// one, as the registry's activation leaves the two tables.
async fn activate(app: &TestApp, version: &str, model: &pricing::Model) {
    let parameters = serde_json::to_value(model).expect("parameters");
    let metrics = serde_json::to_value(&TRAINED.metrics).expect("metrics");
    let client = app.db.connect().await;
    client
        .execute(
            r#"UPDATE "bundle"."model_versions" SET "active" = false WHERE "name" = 'price'"#,
            &[],
        )
        .await
        .expect("deactivate");
    client
        .execute(
            r#"INSERT INTO "bundle"."model_versions" ("id", "name", "version", "modelType", "features",
                   "parameters", "metrics", "trainingData", "trainedAt", "activatedAt", "active")
               VALUES ($1, 'price', $1, $2, $3, $4, $5, '{}', now(), now(), true)"#,
            &[
                &version,
                &pricing::Model::TYPE,
                &pricing::Model::features(),
                &parameters,
                &metrics,
            ],
        )
        .await
        .expect("the version");
    client
        .execute(
            r#"INSERT INTO "ml_models" ("id", "name", "version", "modelType", "accuracy", "metrics",
                   "trainedAt", "trainingData", "features", "active", "deployedAt")
               VALUES ('m-price', 'price', $1, $2, $3, $4, now(), jsonb_build_object('parameters', $5::jsonb),
                       $6, true, now())
               ON CONFLICT ("name") DO UPDATE SET "version" = EXCLUDED."version",
                   "trainingData" = EXCLUDED."trainingData", "deployedAt" = EXCLUDED."deployedAt""#,
            &[
                &version,
                &pricing::Model::TYPE,
                &(1.0 - TRAINED.metrics.mape),
                &metrics,
                &parameters,
                &pricing::Model::features(),
            ],
        )
        .await
        .expect("the active model");
}

/// An app whose model cache is off, so that an activation is seen at once.
async fn app_with_model(settings: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("PRICE_MODEL_CACHE_SECONDS", "0")];
    all.extend_from_slice(settings);
    let app = spawn_app(&all).await;
    activate(&app, "v1", &TRAINED.model).await;
    app
}

fn days_ahead(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days)).to_string()
}

fn question(current_price: Option<f64>) -> Value {
    let mut body = json!({"origin": "lhr", "destination": "JFK", "departDate": days_ahead(60),
                          "returnDate": days_ahead(67)});
    if let Some(price) = current_price {
        body["currentPrice"] = json!(price);
    }
    body
}

async fn ask(app: &TestApp, body: &Value, expected: StatusCode) -> Value {
    app.post(
        ROUTE,
        &[("content-type", "application/json"), ("user-agent", CHROME)],
        body.to_string(),
        expected,
    )
    .await
}

fn instant(value: &Value) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .naive_utc()
}

#[tokio::test]
async fn without_an_active_model_the_answer_is_a_503_saying_so_and_nothing_is_stored() {
    let app = spawn_app(&[]).await;

    let answer = ask(&app, &question(None), StatusCode::SERVICE_UNAVAILABLE).await;

    assert_eq!(answer["error"]["code"], "unavailable");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no price model is active yet")),
        "{answer}"
    );
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn a_prediction_of_the_active_model_is_stored_with_its_expiry_before_it_is_answered() {
    let app = app_with_model(&[]).await;

    let answer = ask(&app, &question(Some(700.0)), StatusCode::OK).await;

    let expected = TRAINED
        .model
        .predict(&pricing::Question {
            origin: "LHR".into(),
            destination: "JFK".into(),
            depart_date: (Utc::now().date_naive() + Duration::days(60)),
            return_date: Some(Utc::now().date_naive() + Duration::days(67)),
            asked_at: Utc::now().naive_utc(),
            current_price: Some(700.0),
        })
        .expect("known route");
    assert_eq!(answer["modelVersion"], "v1");
    assert_eq!(answer["cached"], false);
    assert_eq!(answer["stored"], true);
    assert_eq!(answer["currency"], "EUR");
    assert_eq!(
        answer["recommendation"],
        expected.recommendation.as_str(),
        "{answer}"
    );
    let price = answer["predictedPrice"].as_f64().expect("a price");
    assert!(
        (price - expected.price).abs() <= 0.005,
        "{price} vs {}",
        expected.price
    );
    let (low, high) = (
        answer["priceRange"]["low"].as_f64().expect("low"),
        answer["priceRange"]["high"].as_f64().expect("high"),
    );
    assert!(low < price && price < high, "{answer}");
    assert!((0.0..=1.0).contains(&answer["confidence"].as_f64().expect("confidence")));
    assert_eq!(
        instant(&answer["expiresAt"]) - instant(&answer["createdAt"]),
        Duration::hours(6)
    );

    let row = app
        .db
        .connect()
        .await
        .query_one(
            r#"SELECT "id", "origin", "destination", "departDate", "returnDate", "predictedPrice",
                      "priceRange", "modelVersion", "features", "recommendation", "expiresAt"
               FROM "price_predictions""#,
            &[],
        )
        .await
        .expect("one stored prediction");
    assert_eq!(answer["id"], row.get::<_, String>(0));
    assert_eq!(row.get::<_, String>(1), "LHR");
    assert_eq!(row.get::<_, String>(2), "JFK");
    assert_eq!(row.get::<_, String>(3), days_ahead(60));
    assert_eq!(row.get::<_, Option<String>>(4), Some(days_ahead(67)));
    assert_eq!(row.get::<_, f64>(5), price);
    assert_eq!(row.get::<_, Value>(6), answer["priceRange"]);
    assert_eq!(row.get::<_, String>(7), "v1");
    let features: Value = row.get(8);
    assert_eq!(features["currentPrice"], 700.0);
    assert_eq!(features["route"], "LHR-JFK");
    assert_eq!(features["daysToDeparture"], 60);
    assert_eq!(
        row.get::<_, Option<String>>(9).as_deref(),
        answer["recommendation"].as_str()
    );
    assert_eq!(
        row.get::<_, NaiveDateTime>(10),
        instant(&answer["expiresAt"])
    );
}

#[tokio::test]
async fn the_same_question_within_its_validity_gets_the_stored_prediction() {
    let app = app_with_model(&[]).await;
    let first = ask(&app, &question(Some(700.0)), StatusCode::OK).await;

    let mut again = question(Some(700.0));
    again["origin"] = json!("LHR");
    let second = ask(&app, &again, StatusCode::OK).await;

    assert_eq!(second["cached"], true);
    for field in [
        "id",
        "predictedPrice",
        "priceRange",
        "confidence",
        "recommendation",
        "savingsEstimate",
        "modelVersion",
        "currency",
        "createdAt",
        "expiresAt",
    ] {
        assert_eq!(second[field], first[field], "{field}");
    }
    assert_eq!(app.count("price_predictions").await, 1);
}

#[tokio::test]
async fn a_different_current_price_or_none_is_a_different_question() {
    let app = app_with_model(&[]).await;
    let at_700 = ask(&app, &question(Some(700.0)), StatusCode::OK).await;

    let at_650 = ask(&app, &question(Some(650.0)), StatusCode::OK).await;
    let without = ask(&app, &question(None), StatusCode::OK).await;
    let without_again = ask(&app, &question(None), StatusCode::OK).await;

    assert_eq!(at_650["cached"], false);
    assert_ne!(at_650["id"], at_700["id"]);
    assert_eq!(without["cached"], false);
    assert_ne!(without["id"], at_700["id"]);
    assert_eq!(without_again["id"], without["id"]);
    assert_eq!(app.count("price_predictions").await, 3);
}

#[tokio::test]
async fn an_expired_prediction_is_not_given_again() {
    let app = app_with_model(&[]).await;
    let first = ask(&app, &question(Some(700.0)), StatusCode::OK).await;
    app.db
        .connect()
        .await
        .execute(
            r#"UPDATE "price_predictions" SET "expiresAt" = now() - interval '1 second'"#,
            &[],
        )
        .await
        .expect("expire it");

    let second = ask(&app, &question(Some(700.0)), StatusCode::OK).await;

    assert_eq!(second["cached"], false);
    assert_ne!(second["id"], first["id"]);
    assert_eq!(app.count("price_predictions").await, 2);
}

#[tokio::test]
async fn the_validity_is_the_configured_one() {
    let app = app_with_model(&[("PREDICTION_TTL_SECONDS", "120")]).await;

    let answer = ask(&app, &question(None), StatusCode::OK).await;

    assert_eq!(
        instant(&answer["expiresAt"]) - instant(&answer["createdAt"]),
        Duration::seconds(120)
    );
}

#[tokio::test]
async fn an_activated_version_answers_and_the_previous_ones_predictions_are_not_reused() {
    let app = app_with_model(&[]).await;
    let by_v1 = ask(&app, &question(Some(700.0)), StatusCode::OK).await;
    let mut cheaper = TRAINED.model.clone();
    for route in cheaper.routes.values_mut() {
        route.intercept -= 0.5;
    }

    activate(&app, "v2", &cheaper).await;
    let by_v2 = ask(&app, &question(Some(700.0)), StatusCode::OK).await;

    assert_eq!(by_v2["modelVersion"], "v2");
    assert_eq!(by_v2["cached"], false);
    assert_ne!(by_v2["id"], by_v1["id"]);
    assert!(
        by_v2["predictedPrice"].as_f64() < by_v1["predictedPrice"].as_f64(),
        "{by_v1} {by_v2}"
    );
}

#[tokio::test]
async fn within_the_cache_time_the_model_read_before_still_answers() {
    let app = spawn_app(&[("PRICE_MODEL_CACHE_SECONDS", "600")]).await;
    activate(&app, "v1", &TRAINED.model).await;
    ask(&app, &question(None), StatusCode::OK).await;

    activate(&app, "v2", &TRAINED.model).await;
    let answer = ask(&app, &question(Some(1.0)), StatusCode::OK).await;

    assert_eq!(answer["modelVersion"], "v1");
}

#[tokio::test]
async fn each_invalid_field_is_a_400_naming_it_and_nothing_is_stored() {
    let app = app_with_model(&[]).await;
    let cases = [
        ("origin", json!("LONDON")),
        ("destination", json!(null)),
        ("departDate", json!("2027/01/05")),
        ("returnDate", json!(days_ahead(59))),
        ("currentPrice", json!(-1)),
        ("currentPrice", json!("cheap")),
        ("seats", json!(2)),
    ];
    for (field, value) in cases {
        let mut body = question(None);
        body[field] = value;

        let answer = ask(&app, &body, StatusCode::BAD_REQUEST).await;

        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let answer = ask(&app, &json!(["LHR", "JFK"]), StatusCode::BAD_REQUEST).await;
    assert_eq!(answer["error"]["code"], "invalid_body");
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn a_departure_in_the_past_is_a_400_naming_the_departure_date() {
    let app = app_with_model(&[]).await;
    let mut body = question(None);
    body["departDate"] = json!(days_ahead(-1));
    body["returnDate"] = json!(days_ahead(3));

    let answer = ask(&app, &body, StatusCode::BAD_REQUEST).await;

    assert_eq!(answer["error"]["field"], "departDate");
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn a_route_the_model_has_no_fares_of_is_a_422_naming_the_destination() {
    let app = app_with_model(&[]).await;
    let mut body = question(None);
    body["destination"] = json!("NRT");

    let answer = ask(&app, &body, StatusCode::UNPROCESSABLE_ENTITY).await;

    assert_eq!(answer["error"]["code"], "unknown_route");
    assert_eq!(answer["error"]["field"], "destination");
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn a_bot_gets_the_numbers_but_nothing_is_stored() {
    let app = app_with_model(&[]).await;
    let visitor = ask(&app, &question(None), StatusCode::OK).await;

    let (headers, bot) = app
        .request(
            "POST",
            ROUTE,
            &[
                ("content-type", "application/json"),
                ("user-agent", GOOGLEBOT),
            ],
            question(None).to_string(),
            StatusCode::OK,
        )
        .await;

    assert_eq!(headers["x-analytics-dropped"], "bot");
    assert_eq!(bot["stored"], false);
    assert_eq!(bot["id"], Value::Null);
    assert_eq!(bot["predictedPrice"], visitor["predictedPrice"]);
    assert_eq!(bot["recommendation"], visitor["recommendation"]);
    assert_eq!(app.count("price_predictions").await, 1);
}

#[tokio::test]
async fn a_preflight_and_a_post_from_an_allowed_origin_get_the_grant() {
    let app = app_with_model(&[("CORS_ALLOWED_ORIGINS", "https://deals.example")]).await;
    let (preflight, _) = app
        .request(
            "OPTIONS",
            ROUTE,
            &[
                ("origin", "https://deals.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        preflight["access-control-allow-origin"],
        "https://deals.example"
    );

    let (headers, _) = app
        .request(
            "POST",
            ROUTE,
            &[
                ("origin", "https://deals.example"),
                ("content-type", "text/plain;charset=UTF-8"),
                ("user-agent", CHROME),
            ],
            question(None).to_string(),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://deals.example"
    );
}

#[tokio::test]
async fn a_database_that_is_away_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port();
    let url = format!("postgres://nobody@127.0.0.1:{closed}/nothing?sslmode=disable");
    let app = events::App::build(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "300"),
    ]))
    .expect("the function");
    let request = axum::http::Request::post(ROUTE)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(question(None).to_string()))
        .expect("request");

    let (headers, answer) = testkit::call(
        platform::lambda::Function::router(&app),
        request,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    assert_eq!(answer["error"]["code"], "unavailable");
    assert_eq!(headers["retry-after"], "1");
}

#[tokio::test]
async fn a_prediction_whose_commit_fails_is_not_answered_2xx_and_not_stored() {
    let app = app_with_model(&[]).await;
    crate::commit::refuse_at_commit(&app, "price_predictions", "true", "P0001").await;

    let answer = ask(&app, &question(None), StatusCode::INTERNAL_SERVER_ERROR).await;

    assert_eq!(answer["error"]["code"], "internal");
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn a_commit_refusing_the_prediction_as_data_is_a_4xx() {
    let app = app_with_model(&[]).await;
    crate::commit::refuse_at_commit(&app, "price_predictions", "true", "23514").await;

    let answer = ask(&app, &question(None), StatusCode::UNPROCESSABLE_ENTITY).await;

    assert_eq!(answer["error"]["code"], "constraint_violation");
    assert_eq!(app.count("price_predictions").await, 0);
}

#[tokio::test]
async fn hostile_questions_are_400s_naming_the_field_never_500s() {
    let app = app_with_model(&[]).await;
    let cases = [
        ("origin", json!("L\u{0}R")),
        ("origin", json!("ŁHR")),
        ("origin", json!("LHR\u{0}")),
        ("destination", json!(["JFK"])),
        ("departDate", json!("+10000-01-01")),
        ("departDate", json!("2026-02-30")),
        ("departDate", json!("2026-12-01\u{0}")),
        ("departDate", json!(20_261_201)),
        ("returnDate", json!({"date": "2027-01-01"})),
        ("returnDate", json!("9999-12-31")),
        ("currentPrice", json!("NaN")),
        ("currentPrice", json!(1e308)),
        ("currentPrice", json!(u64::MAX)),
        ("currentPrice", json!(0.001)),
    ];
    for (field, value) in cases {
        let mut body = question(None);
        body[field] = value;

        let answer = ask(&app, &body, StatusCode::BAD_REQUEST).await;

        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    for raw in ["", "null", "{", r#"{"currentPrice": 1e400}"#, "[]", "\u{0}"] {
        app.post(
            ROUTE,
            &[("content-type", "application/json"), ("user-agent", CHROME)],
            raw.to_owned(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    assert_eq!(app.count("price_predictions").await, 0);
}
