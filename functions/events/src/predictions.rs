//! `POST /api/predictions/price`: the active price model's answer to "what
//! will this trip cost, and should I book now?", stored in
//! `price_predictions` so that the accuracy job (admin's
//! `prediction-accuracy`) can later compare it with the fares observed.
//!
//! - The model is the active version of `ml_models` named `price`: its
//!   fitted numbers are `"trainingData"->'parameters'` (serde of
//!   [`pricing::Model`]). A container reads it at most once per
//!   `PRICE_MODEL_CACHE_SECONDS` (default 60), so an activation or a
//!   rollback in the registry reaches every visitor within that time. No
//!   active model is a 503 that says so, never a guess.
//! - The same question (origin, destination, departDate, returnDate,
//!   currentPrice) asked again while a prediction of the active version for
//!   it is valid is answered with that stored prediction (`cached: true`),
//!   found by the contract's index on (origin, destination, departDate). A
//!   prediction is valid for `PREDICTION_TTL_SECONDS` (default 6 h). Only
//!   the active version's predictions are reused, so a rollback also stops
//!   the stored answers of the version rolled back.
//! - A new prediction is answered only once its row is committed.
//! - A known bot (by its user agent, or the visitor's a trusted server names)
//!   gets the same numbers, computed from the cached model, but nothing is
//!   stored and the database is not asked: crawlers rendering a page should
//!   see what visitors see, but must not fill the table or the accuracy
//!   figures (they ask about every route a page links to, not trips people
//!   consider). Its answer says `stored: false` and has no id, with the
//!   intake's `x-analytics-dropped: bot` header.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::{
    Json,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use lambda_http::RequestExt;
use platform::db::{Pool, PooledClient};
use platform::{ApiError, ApiResult};
use pricing::{Model, Question, Unpredictable};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::{AppState, beacon, client::ClientContext, db};

/// The `ml_models` name serving reads.
pub const MODEL_NAME: &str = "price";
/// Farthest departure asked about, in days from today (UTC).
pub const MAX_DAYS_AHEAD: i64 = 365;
/// Longest trip: a return at most this many days after the departure.
pub const MAX_TRIP_DAYS: i64 = 365;
/// Highest `currentPrice` taken: above any fare, below what makes the
/// arithmetic of savings meaningless.
pub const MAX_CURRENT_PRICE: f64 = 100_000.0;

const FIELDS: &[&str] = &[
    "origin",
    "destination",
    "departDate",
    "returnDate",
    "currentPrice",
];

/// A price question, checked: codes upper-cased, dates parsed,
/// `currentPrice` taken to the cent (so that 450 and 450.001 are one
/// question).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceQuestion {
    pub origin: String,
    pub destination: String,
    pub depart_date: NaiveDate,
    pub return_date: Option<NaiveDate>,
    pub current_price: Option<f64>,
}

impl PriceQuestion {
    /// Reads the body; `today` is the UTC date of the question.
    pub fn read(body: &Value, today: NaiveDate) -> ApiResult<Self> {
        let object = body.as_object().ok_or_else(|| {
            ApiError::bad_request("invalid_body", "the body must be a JSON object")
        })?;
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(ApiError::invalid_field(
                unknown.clone(),
                format!(
                    "is not a field of this request (fields: {})",
                    FIELDS.join(", ")
                ),
            ));
        }
        let origin = airport(object, "origin")?;
        let destination = airport(object, "destination")?;
        if origin == destination {
            return Err(ApiError::invalid_field(
                "destination",
                "must differ from origin",
            ));
        }
        let depart_date = date(object, "departDate")?
            .ok_or_else(|| ApiError::invalid_field("departDate", "is required"))?;
        if depart_date < today {
            return Err(ApiError::invalid_field(
                "departDate",
                format!("must be today ({today}, UTC) or later"),
            ));
        }
        if (depart_date - today).num_days() > MAX_DAYS_AHEAD {
            return Err(ApiError::invalid_field(
                "departDate",
                format!("must be at most {MAX_DAYS_AHEAD} days ahead"),
            ));
        }
        let return_date = date(object, "returnDate")?;
        if let Some(back) = return_date {
            if back < depart_date {
                return Err(ApiError::invalid_field(
                    "returnDate",
                    "must be on or after departDate",
                ));
            }
            if (back - depart_date).num_days() > MAX_TRIP_DAYS {
                return Err(ApiError::invalid_field(
                    "returnDate",
                    format!("must be at most {MAX_TRIP_DAYS} days after departDate"),
                ));
            }
        }
        let current_price = match object.get("currentPrice") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_f64()
                    .map(cents)
                    .filter(|p| p.is_finite() && *p > 0.0 && *p <= MAX_CURRENT_PRICE)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "currentPrice",
                            format!("must be a price above 0 and at most {MAX_CURRENT_PRICE}"),
                        )
                    })?,
            ),
        };
        Ok(Self {
            origin,
            destination,
            depart_date,
            return_date,
            current_price,
        })
    }

    fn for_model(&self, asked_at: NaiveDateTime) -> Question {
        Question {
            origin: self.origin.clone(),
            destination: self.destination.clone(),
            depart_date: self.depart_date,
            return_date: self.return_date,
            asked_at,
            current_price: self.current_price,
        }
    }
}

fn airport(object: &Map<String, Value>, field: &str) -> ApiResult<String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid_field(field, "is required")),
        Some(Value::String(text)) => {
            let code = text.trim().to_ascii_uppercase();
            if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(code)
            } else {
                Err(ApiError::invalid_field(
                    field,
                    "must be a 3-letter IATA airport code, such as \"LHR\"",
                ))
            }
        }
        Some(_) => Err(ApiError::invalid_field(field, "must be a string")),
    }
}

fn date(object: &Map<String, Value>, field: &str) -> ApiResult<Option<NaiveDate>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let shaped = text.len() == 10
                && text.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                });
            if !shaped {
                return Err(ApiError::invalid_field(
                    field,
                    "must be a date as YYYY-MM-DD",
                ));
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| ApiError::invalid_field(field, "is not a date of the calendar"))
        }
        Some(_) => Err(ApiError::invalid_field(
            field,
            "must be a date as YYYY-MM-DD",
        )),
    }
}

/// `value` to the cent.
fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The model's refusal as an answer naming the field: a route or a horizon
/// the model does not know is a 422 (the question is well-formed; this
/// model cannot answer it), anything else the question's own fault, a 400.
fn unpredictable(reason: Unpredictable) -> ApiError {
    let field = reason.field();
    match reason {
        Unpredictable::UnknownRoute { .. } => ApiError::Unprocessable {
            code: "unknown_route",
            message: format!("{field}: {reason}; no prediction can be made for this route"),
            field: Some(field.to_owned()),
        },
        Unpredictable::TooFarAhead { .. } => ApiError::Unprocessable {
            code: "beyond_model_horizon",
            message: format!("{field}: {reason}"),
            field: Some(field.to_owned()),
        },
        Unpredictable::DepartureInThePast
        | Unpredictable::ReturnBeforeDeparture
        | Unpredictable::InvalidCurrentPrice => ApiError::invalid_field(field, reason),
    }
}

/// The active version of the price model, as read.
#[derive(Debug)]
pub struct ActiveModel {
    pub version: String,
    pub model: Model,
}

/// One read of `ml_models`: the active model, or none.
struct Read {
    active: Option<Arc<ActiveModel>>,
    read_at: Instant,
}

/// The per-container copy of the active price model (see the module
/// documentation). One request refreshes a stale copy while the others
/// wait for it.
pub struct PriceModels {
    pool: Pool,
    ttl: Duration,
    current: RwLock<Option<Arc<Read>>>,
    refreshing: tokio::sync::Mutex<()>,
}

/// The active model's version and, unless it is the version already held
/// (`$2`), its parameters; by the unique index on "name".
const ACTIVE_MODEL: &str = r#"
SELECT "version", CASE WHEN "version" IS DISTINCT FROM $2 THEN "trainingData"->'parameters' END
FROM "ml_models" WHERE "name" = $1 AND "active""#;

impl PriceModels {
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn held(&self) -> Option<Arc<Read>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fresh(&self) -> Option<Arc<Read>> {
        self.held().filter(|read| read.read_at.elapsed() < self.ttl)
    }

    /// The active model; a 503 when there is none (or it cannot be read).
    pub async fn active(&self) -> ApiResult<Arc<ActiveModel>> {
        let read = match self.fresh() {
            Some(read) => read,
            None => {
                let _refreshing = self.refreshing.lock().await;
                match self.fresh() {
                    Some(read) => read,
                    None => {
                        let held = self.held().and_then(|r| r.active.clone());
                        let read = Arc::new(Read {
                            active: self.read(held).await?,
                            read_at: Instant::now(),
                        });
                        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
                            Some(read.clone());
                        read
                    }
                }
            }
        };
        read.active.clone().ok_or_else(|| {
            ApiError::Unavailable(
                "no price model is active yet: train one and activate it in the model registry (/api/admin/models)".into(),
            )
        })
    }

    async fn read(&self, held: Option<Arc<ActiveModel>>) -> ApiResult<Option<Arc<ActiveModel>>> {
        let client = self.pool.get().await?;
        let held_version = held.as_ref().map(|h| h.version.clone());
        let row = client
            .query_opt(ACTIVE_MODEL, &[&MODEL_NAME, &held_version])
            .await
            .map_err(ApiError::internal("reading the active price model"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version: String = row.get(0);
        let parameters: Option<Value> = row.get(1);
        let Some(parameters) = parameters else {
            // The version held is still the active one.
            return Ok(held);
        };
        match serde_json::from_value::<Model>(parameters) {
            Ok(model) => Ok(Some(Arc::new(ActiveModel { version, model }))),
            Err(error) => {
                tracing::error!(%version, %error, "the active price model cannot be read");
                Err(ApiError::Unavailable(format!(
                    "no price model is usable: the active version {version} cannot be read by this server"
                )))
            }
        }
    }
}

/// The prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PriceRange {
    /// 10% of fares are expected below it.
    pub low: f64,
    /// 10% of fares are expected above it.
    pub high: f64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricePrediction {
    /// The stored prediction's id; null when nothing was stored (a bot's).
    pub id: Option<String>,
    /// The expected price, in `currency`.
    pub predicted_price: f64,
    /// The 80% prediction interval.
    pub price_range: PriceRange,
    /// 0..1: narrower intervals and routes with more fares give more.
    pub confidence: f64,
    /// `book_now`, or `wait` when a later day is expected to be cheaper.
    #[schema(example = "book_now")]
    pub recommendation: String,
    /// For `wait`: the expected saving over today's (or the current) price.
    pub savings_estimate: f64,
    /// The model version that answered.
    pub model_version: String,
    /// The currency of the route's fares.
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Until when the prediction stands and the same question gets it again.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
    /// Answered with a prediction stored before.
    pub cached: bool,
    /// Stored (false for a bot).
    pub stored: bool,
}

/// A new prediction, as it would be stored.
struct Fresh<'a> {
    question: &'a PriceQuestion,
    id: String,
    answer: PricePrediction,
    features: Value,
    /// Serialises concurrent requests with the same question.
    lock_key: String,
}

impl<'a> Fresh<'a> {
    fn new(
        question: &'a PriceQuestion,
        active: &ActiveModel,
        prediction: pricing::Prediction,
        now: NaiveDateTime,
        ttl: Duration,
    ) -> Self {
        let id = platform::ids::new_id();
        let mut features = match prediction.features {
            Value::Object(map) => map,
            other => Map::from_iter([("model".to_owned(), other)]),
        };
        // What the stored prediction is found by, besides its columns.
        features.insert("currentPrice".into(), json!(question.current_price));
        features.insert("currency".into(), json!(prediction.currency));
        let expires_at =
            now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(6));
        let lock_key = format!(
            "price_predictions {} {} {} {:?} {:?} {}",
            question.origin,
            question.destination,
            question.depart_date,
            question.return_date,
            question.current_price,
            active.version
        );
        Self {
            question,
            answer: PricePrediction {
                id: Some(id.clone()),
                predicted_price: cents(prediction.price),
                price_range: PriceRange {
                    low: cents(prediction.low),
                    high: cents(prediction.high),
                },
                confidence: (prediction.confidence * 1e4).round() / 1e4,
                recommendation: prediction.recommendation.as_str().to_owned(),
                savings_estimate: cents(prediction.savings_estimate),
                model_version: active.version.clone(),
                currency: Some(prediction.currency),
                created_at: now.and_utc(),
                expires_at: expires_at.and_utc(),
                cached: false,
                stored: true,
            },
            id,
            features: Value::Object(features),
            lock_key,
        }
    }

    fn unstored(mut self) -> PricePrediction {
        self.answer.id = None;
        self.answer.stored = false;
        self.answer
    }
}

/// The valid prediction of the active version for the same question, if
/// any; by the index on ("origin", "destination", "departDate").
const STORED_PREDICTION: &str = r#"
SELECT "id", "predictedPrice", "confidence", "priceRange", "recommendation", "savingsEstimate",
       "features"->>'currency', "createdAt", "expiresAt"
FROM "price_predictions"
WHERE "origin" = $1 AND "destination" = $2 AND "departDate" = $3
  AND "returnDate" IS NOT DISTINCT FROM $4 AND "features"->'currentPrice' = $5
  AND "modelVersion" = $6 AND "expiresAt" > $7
ORDER BY "createdAt" DESC
LIMIT 1"#;

const INSERT_PREDICTION: &str = r#"
INSERT INTO "price_predictions" ("id", "origin", "destination", "departDate", "returnDate",
    "predictedPrice", "confidence", "priceRange", "modelVersion", "features", "recommendation",
    "savingsEstimate", "createdAt", "expiresAt")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#;

/// The stored prediction for the question, or the new one stored, in one
/// transaction holding a lock on the question so that two identical
/// questions at once store one prediction. Repeatable: a repeat after a
/// lost COMMIT finds the row (and answers it as `cached`).
async fn stored_or_new(
    client: &mut PooledClient,
    fresh: &Fresh<'_>,
) -> Result<PricePrediction, tokio_postgres::Error> {
    let question = fresh.question;
    let depart = question.depart_date.to_string();
    let back = question.return_date.map(|d| d.to_string());
    let now = fresh.answer.created_at.naive_utc();
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&fresh.lock_key],
    )
    .await?;
    let lookup = tx.prepare_cached(STORED_PREDICTION).await?;
    let found = tx
        .query_opt(
            &lookup,
            &[
                &question.origin,
                &question.destination,
                &depart,
                &back,
                &json!(question.current_price),
                &fresh.answer.model_version,
                &now,
            ],
        )
        .await?;
    if let Some(row) = found {
        tx.commit().await?;
        let range: Value = row.get(3);
        let created_at: NaiveDateTime = row.get(7);
        let expires_at: NaiveDateTime = row.get(8);
        return Ok(PricePrediction {
            id: Some(row.get(0)),
            predicted_price: row.get(1),
            price_range: PriceRange {
                low: range["low"].as_f64().unwrap_or(f64::NAN),
                high: range["high"].as_f64().unwrap_or(f64::NAN),
            },
            confidence: row.get(2),
            recommendation: row
                .get::<_, Option<String>>(4)
                .unwrap_or_else(|| "book_now".into()),
            savings_estimate: row.get::<_, Option<f64>>(5).unwrap_or(0.0),
            model_version: fresh.answer.model_version.clone(),
            currency: row.get(6),
            created_at: created_at.and_utc(),
            expires_at: expires_at.and_utc(),
            cached: true,
            stored: true,
        });
    }
    let answer = &fresh.answer;
    let insert = tx.prepare_cached(INSERT_PREDICTION).await?;
    tx.execute(
        &insert,
        &[
            &fresh.id,
            &question.origin,
            &question.destination,
            &depart,
            &back,
            &answer.predicted_price,
            &answer.confidence,
            &json!({"low": answer.price_range.low, "high": answer.price_range.high}),
            &answer.model_version,
            &fresh.features,
            &answer.recommendation,
            &answer.savings_estimate,
            &now,
            &answer.expires_at.naive_utc(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(answer.clone())
}

#[utoipa::path(
    post,
    path = "/api/predictions/price",
    tag = "predictions",
    summary = "Predict a trip's price and whether to book now",
    description = "`{origin, destination, departDate, returnDate?, currentPrice?}`: IATA codes (any case), dates as YYYY-MM-DD (departDate from today, UTC, to 365 days ahead; returnDate on or after it), currentPrice the price on offer (to the cent). Answered by the active version of the `price` model (read at most once a minute per container) and stored in `price_predictions` until `expiresAt` (`PREDICTION_TTL_SECONDS`, default 6 h); the same question asked again meanwhile gets the stored prediction (`cached: true`). A route the model has no fares of is a 422 naming `destination`; no active model is a 503. Known bots get the numbers, but nothing is stored (`stored: false`, no id, `x-analytics-dropped: bot`).",
    request_body(content((Object = "application/json"), (Object = "text/plain"))),
    responses(
        (status = 200, description = "The prediction, committed (or stored before).", body = PricePrediction),
        platform::api_doc::Invalid, platform::api_doc::Unauthenticated, platform::api_doc::TooLarge,
        platform::api_doc::WrongMediaType, platform::api_doc::Unprocessable, platform::api_doc::Unavailable,
    )
)]
pub async fn predict_price(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let sender = beacon::sender(request.headers(), &state)?;
    let bot = ClientContext::from_request(
        request.headers(),
        request.request_context_ref(),
        state.config.ip_storage,
        sender,
    )
    .is_known_bot();
    let body = beacon::body_bytes(request).await?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(None, e))?;
    let now = platform::clock::now_millis();
    let question = PriceQuestion::read(&body, now.date())?;
    let active = state.price_models.active().await?;
    let prediction = active
        .model
        .predict(&question.for_model(now))
        .map_err(unpredictable)?;
    let fresh = Fresh::new(
        &question,
        &active,
        prediction,
        now,
        state.config.prediction_ttl,
    );
    if bot {
        return Ok(([(beacon::DROPPED_HEADER, "bot")], Json(fresh.unstored())).into_response());
    }
    let answer = db::write_retrying(
        &state.pool,
        "storing a price prediction",
        |mut connection| {
            let fresh = &fresh;
            async move {
                let answer = stored_or_new(&mut connection, fresh).await;
                (connection, answer)
            }
        },
    )
    .await?;
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")
    }

    fn field_of(body: Value) -> String {
        let error = PriceQuestion::read(&body, today()).expect_err("refused");
        assert_eq!(
            error.status(),
            axum::http::StatusCode::BAD_REQUEST,
            "{error}"
        );
        error.field().unwrap_or_default().to_owned()
    }

    #[test]
    fn codes_are_upper_cased_and_the_price_taken_to_the_cent() {
        let question = PriceQuestion::read(
            &json!({"origin": " lhr", "destination": "Jfk", "departDate": "2026-12-24",
                    "returnDate": "2027-01-02", "currentPrice": 450.004}),
            today(),
        )
        .expect("valid");
        assert_eq!(question.origin, "LHR");
        assert_eq!(question.destination, "JFK");
        assert_eq!(question.return_date, NaiveDate::from_ymd_opt(2027, 1, 2));
        assert_eq!(question.current_price, Some(450.0));
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = json!({"origin": "LHR", "destination": "JFK", "departDate": "2026-12-24"});
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        assert_eq!(field_of(with("origin", json!("LH"))), "origin");
        assert_eq!(field_of(with("origin", json!("L1R"))), "origin");
        assert_eq!(field_of(with("origin", json!(42))), "origin");
        assert_eq!(field_of(with("destination", json!("lhr"))), "destination");
        assert_eq!(
            field_of(with("departDate", json!("24/12/2026"))),
            "departDate"
        );
        assert_eq!(
            field_of(with("departDate", json!("2026-2-03"))),
            "departDate"
        );
        assert_eq!(
            field_of(with("departDate", json!("2027-02-30"))),
            "departDate"
        );
        assert_eq!(
            field_of(with("departDate", json!("2026-11-30"))),
            "departDate"
        );
        assert_eq!(
            field_of(with("departDate", json!("2027-12-02"))),
            "departDate"
        );
        assert_eq!(
            field_of(with("returnDate", json!("2026-12-23"))),
            "returnDate"
        );
        assert_eq!(field_of(with("currentPrice", json!(0))), "currentPrice");
        assert_eq!(field_of(with("currentPrice", json!(-5))), "currentPrice");
        assert_eq!(field_of(with("currentPrice", json!("450"))), "currentPrice");
        assert_eq!(field_of(with("currentPrice", json!(1e9))), "currentPrice");
        assert_eq!(field_of(with("passengers", json!(2))), "passengers");
        let mut missing = ok.clone();
        missing
            .as_object_mut()
            .expect("object")
            .remove("departDate");
        assert_eq!(field_of(missing), "departDate");
    }

    #[test]
    fn today_and_a_year_ahead_are_the_bounds_of_the_departure_date() {
        for (depart, fine) in [
            ("2026-12-01", true),
            ("2027-12-01", true),
            ("2027-12-02", false),
            ("2026-11-30", false),
        ] {
            let read = PriceQuestion::read(
                &json!({"origin": "LHR", "destination": "JFK", "departDate": depart}),
                today(),
            );
            assert_eq!(read.is_ok(), fine, "{depart}");
        }
    }

    #[test]
    fn an_unknown_route_is_a_422_naming_the_destination() {
        let error = unpredictable(Unpredictable::UnknownRoute {
            origin: "LHR".into(),
            destination: "XYZ".into(),
        });
        assert_eq!(error.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.field(), Some("destination"));
    }
}
