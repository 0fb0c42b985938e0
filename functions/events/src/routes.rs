//! The intake's HTTP routes: analytics events, Web Vitals (two paths) and
//! browser errors (two paths), and what every one of them starts with
//! ([`Beacon`]: who sent it, bots dropped, the body read).

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, RawQuery, Request, State},
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use lambda_http::RequestExt;
use platform::{ApiError, ApiResult};
use tower_http::cors::{AllowOrigin, CorsLayer};

use platform::api_doc::{
    Invalid, TooLarge, Unauthenticated, Unavailable, Unprocessable, WrongMediaType,
};
use platform::metrics::{self, Metric};
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::{
    AppState,
    analytics::{self, wire::EventsRequest},
    beacon::{Beacon, Dropped, MAX_BODY_BYTES, dropped},
    browser_errors::{self, wire::ErrorReport},
    client::{ClientContext, Sender},
    db, experiments, fields, ofrep, predictions,
    sentry::{self, Counted, Endpoint},
    vitals::{self, wire::VitalsRequest},
};

/// The headers of a trusted server-side sender, in the API description.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct TrustedSender {
    /// A key of `INGEST_KEYS`: the beacon skips the bot filter, and the
    /// sender's own address and agent are not stored. A key that is not one
    /// is a 401.
    #[param(rename = "x-ingest-key")]
    ingest_key: Option<String>,
    /// With a key: the visitor's address, stored as `ANALYTICS_IP_STORAGE`
    /// allows.
    #[param(rename = "x-visitor-ip")]
    visitor_ip: Option<String>,
    /// With a key: the visitor's user agent.
    #[param(rename = "x-visitor-user-agent")]
    visitor_user_agent: Option<String>,
}

/// The intake's part of the API description.
#[derive(OpenApi)]
#[openapi(
    paths(
        ingest_events, ingest_vitals, ingest_error, sentry_envelope, sentry_store,
        ofrep::evaluate_one, ofrep::evaluate_all, experiments::assign, experiments::convert_route,
        predictions::predict_price,
    ),
    components(schemas(platform::error::ErrorBody)),
    tags(
        (name = "events", description = "The public intake: analytics events, Web Vitals, browser errors. Browsers post here, often with `navigator.sendBeacon`; bots are dropped."),
        (name = "flags", description = "Feature flags and experiments for visitors: OpenFeature remote evaluation (OFREP 0.3), enrolment in running experiments, conversions."),
        (name = "predictions", description = "Price predictions from the active price model, stored so that their accuracy is measured later."),
    )
)]
struct ApiDoc;

/// The intake's routes as an OpenAPI document, aliases included.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for (path, alias) in [
        ("/api/analytics/performance", "/api/analytics/vitals"),
        ("/api/analytics/errors", "/api/monitoring/client-error"),
    ] {
        platform::api_doc::alias(&mut doc, path, alias);
    }
    doc
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The function's router with `extra` routes behind the same middleware:
/// for benchmarks that compare a route with a baseline served the same way
/// (`examples/bench_server.rs`).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    // The Sentry SDKs read their rate limits from the answer, which a
    // browser shows them only when exposed.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(state.config.allowed_origins.clone()))
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::HeaderName::from_static("x-sentry-auth"),
            // The OFREP web provider revalidates its bulk evaluation.
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            header::HeaderName::from_static(SENTRY_RATE_LIMITS_HEADER),
        ])
        .max_age(Duration::from_secs(24 * 60 * 60));
    platform::http::finish(
        "events",
        Router::new()
            .route("/api/analytics/events", post(ingest_events))
            .route("/api/analytics/performance", post(ingest_vitals))
            .route("/api/analytics/vitals", post(ingest_vitals))
            .route("/api/analytics/errors", post(ingest_error))
            .route("/api/monitoring/client-error", post(ingest_error))
            // The SDKs add a trailing slash; API Gateway routes both forms
            // to the route without one.
            .route("/api/{projectId}/envelope", post(sentry_envelope))
            .route("/api/{projectId}/envelope/", post(sentry_envelope))
            .route("/api/{projectId}/store", post(sentry_store))
            .route("/api/{projectId}/store/", post(sentry_store))
            .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_all))
            .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_one))
            .route("/api/experiments/assign", post(experiments::assign))
            .route("/api/experiments/convert", post(experiments::convert_route))
            .route("/api/predictions/price", post(predictions::predict_price))
            .merge(extra)
            .with_state(state),
    )
    .layer(cors)
}

/// A route's answer, or `Dropped` for a bot's beacon.
// Only in the API description: the two are answered from different places.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Answer<T> {
    Done(T),
    Dropped(Dropped),
}

fn accepted(body: impl serde::Serialize) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Parsed straight from the body's bytes, without a JSON tree (see
/// [`analytics::Batch`]). The write may run twice (see [`crate::db`]).
#[utoipa::path(
    post,
    path = "/api/analytics/events",
    tag = "events",
    summary = "Store analytics events",
    description = "A batch (the front end's) or a single event (the migration README's), as JSON or as the text/plain body of `navigator.sendBeacon`. Answered 202 only once every event is committed; retries are stored once (ids derive from `eventId`, else from the event's content and timestamp). A `funnel` event also writes its `conversion_funnels` row. Known bots get a 202 that stores nothing.",
    params(TrustedSender),
    request_body(content(
        (EventsRequest = "application/json"),
        (EventsRequest = "text/plain"),
    )),
    responses(
        (status = 202, description = "Committed, or dropped as a bot's.", body = Answer<analytics::Stored>),
        Invalid, Unauthenticated, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn ingest_events(State(state): State<AppState>, beacon: Beacon) -> ApiResult<Response> {
    let batch = analytics::parse_batch(&beacon.body, &beacon.client, chrono::Utc::now())?;
    let stored = db::write_retrying(&state.pool, "storing analytics events", |mut connection| {
        let batch = &batch;
        async move {
            let stored = analytics::store(&mut connection, batch).await;
            (connection, stored)
        }
    })
    .await?;
    metrics::emit(
        "events",
        None,
        &[
            Metric::count("EventsReceived", stored.received),
            Metric::count("EventsStored", stored.stored),
            Metric::count("EventsDuplicate", stored.duplicates),
        ],
    );
    Ok(accepted(stored))
}

/// `?sessionId=` of the query string, read by hand so a malformed query
/// gets this crate's JSON 400 rather than the extractor's plain text.
fn query_session_id(query: Option<&str>) -> ApiResult<Option<String>> {
    let Some(raw) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
    else {
        return Ok(None);
    };
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::invalid_field("sessionId", "is not valid UTF-8"))?;
    if decoded.contains('\0') {
        return Err(ApiError::invalid_field(
            "sessionId",
            "must not contain NUL (\\u0000): PostgreSQL cannot store it",
        ));
    }
    if decoded.chars().count() > fields::MAX_SESSION_ID_CHARS {
        return Err(ApiError::invalid_field(
            "sessionId",
            "is longer than 128 characters",
        ));
    }
    Ok(Some(decoded.into_owned()).filter(|s| !s.is_empty()))
}

#[utoipa::path(
    post,
    path = "/api/analytics/performance",
    tag = "events",
    summary = "Store Web Vitals",
    description = "The front end's payload, or the `Metric` objects web-vitals (v4 to v6) hands its callback, one or up to 50, as JSON or as a beacon's text/plain. A missing rating is computed at the library's thresholds; a later report of the same metric id replaces the earlier one. Also served at `/api/analytics/vitals`.",
    params(
        ("sessionId" = Option<String>, Query, description = "The session, when the metric does not carry one (a `Metric` sent as it is).", max_length = 128),
        TrustedSender,
    ),
    request_body(content(
        (VitalsRequest = "application/json"),
        (VitalsRequest = "text/plain"),
    )),
    responses(
        (status = 202, description = "Committed, or dropped as a bot's.", body = Answer<vitals::Recorded>),
        Invalid, Unauthenticated, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn ingest_vitals(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    beacon: Beacon,
) -> ApiResult<Response> {
    let session_id = query_session_id(query.as_deref())?;
    let metrics = vitals::parse_metrics(
        &beacon.json()?,
        session_id.as_deref(),
        &beacon.client,
        chrono::Utc::now(),
    )?;
    let stored = db::write_retrying(&state.pool, "storing web vitals", |connection| {
        let metrics = &metrics;
        async move {
            let stored = vitals::store(&connection, metrics).await;
            (connection, stored)
        }
    })
    .await?;
    Ok(accepted(vitals::Recorded {
        received: metrics.len(),
        stored: usize::try_from(stored).unwrap_or(usize::MAX),
    }))
}

#[utoipa::path(
    post,
    path = "/api/analytics/errors",
    tag = "events",
    summary = "Record a browser error",
    description = "Grouped by a Sentry-style fingerprint (a caller's `fingerprint` wins); a group seen again after it was resolved is reopened as a regression. Also served at `/api/monitoring/client-error`.",
    params(TrustedSender),
    request_body(content(
        (ErrorReport = "application/json"),
        (ErrorReport = "text/plain"),
    )),
    responses(
        (status = 202, description = "Committed, or dropped as a bot's.", body = Answer<browser_errors::Recorded>),
        Invalid, Unauthenticated, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn ingest_error(State(state): State<AppState>, beacon: Beacon) -> ApiResult<Response> {
    let error = browser_errors::read_report(&beacon.json()?, &beacon.client)?;
    // Not retried: a repeat would count the occurrence twice.
    let mut connection = db::checked(&state.pool).await?;
    let recorded = browser_errors::record(&mut connection, &error)
        .await
        .map_err(ApiError::internal("recording a browser error"))?;
    Ok(accepted(recorded))
}

/// The header in which Sentry's SDKs read how long to hold back
/// (`<seconds>:<categories>:<scope>`; no categories: all of them).
pub const SENTRY_RATE_LIMITS_HEADER: &str = "x-sentry-rate-limits";

/// The SDK's credentials, in the API description.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SentryAuth {
    /// The DSN's public key, as the browser SDK sends it; or in
    /// `X-Sentry-Auth: Sentry sentry_key=<key>, sentry_version=7`, or in a
    /// tunnelled envelope's header (`dsn`).
    sentry_key: Option<String>,
    sentry_version: Option<String>,
    sentry_client: Option<String>,
}

/// What the Sentry endpoints answer: the event's id, as Sentry does.
#[derive(Serialize, ToSchema)]
pub struct SentryAccepted {
    /// The (first) event's id; absent for an envelope without events.
    #[schema(example = "9ec79c33ec9942ab8353589fcb2e04dc")]
    id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/{projectId}/envelope",
    tag = "events",
    summary = "Take events from a Sentry SDK",
    description = "Sentry's envelope endpoint, also served with the trailing slash the SDKs add: point the SDK's DSN at this API (`https://<public key>@<host>/<project id>`, one of `SENTRY_DSNS`). `event` items are grouped into `error_logs` as browser errors are; every other item (sessions, transactions, replays, client reports, attachments) is accepted and dropped. An event id is counted once. Bodies may be gzip- or deflate-encoded. A 503 carries `Retry-After` and `X-Sentry-Rate-Limits`, which the SDKs obey.",
    params(
        ("projectId" = String, Path, description = "The DSN's project id (digits).", pattern = "^[0-9]{1,18}$", example = "42"),
        SentryAuth,
    ),
    request_body(content(
        (String = "application/x-sentry-envelope"),
        (String = "text/plain"),
    )),
    responses(
        (status = 200, description = "Committed (or seen before).", body = SentryAccepted),
        (status = 202, description = "Dropped as a bot's.", body = Dropped),
        Invalid, Unauthenticated, TooLarge, WrongMediaType, Unavailable,
    )
)]
async fn sentry_envelope(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    with_sentry_rate_limits(
        ingest_sentry(
            &state,
            &project,
            query.as_deref(),
            request,
            Endpoint::Envelope,
        )
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/api/{projectId}/store",
    tag = "events",
    summary = "Take one event from an older Sentry SDK",
    description = "Sentry's older store endpoint: one event as JSON, otherwise as the envelope endpoint.",
    params(
        ("projectId" = String, Path, description = "The DSN's project id (digits).", pattern = "^[0-9]{1,18}$", example = "42"),
        SentryAuth,
    ),
    request_body(content((Object = "application/json"))),
    responses(
        (status = 200, description = "Committed (or seen before).", body = SentryAccepted),
        (status = 202, description = "Dropped as a bot's.", body = Dropped),
        Invalid, Unauthenticated, TooLarge, WrongMediaType, Unavailable,
    )
)]
async fn sentry_store(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    with_sentry_rate_limits(
        ingest_sentry(&state, &project, query.as_deref(), request, Endpoint::Store).await,
    )
}

/// A `Retry-After` repeated as `X-Sentry-Rate-Limits` for every category,
/// which is what the SDKs read first.
fn with_sentry_rate_limits(answer: ApiResult<Response>) -> Response {
    let mut response = answer.into_response();
    if let Some(seconds) = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| http::HeaderValue::from_str(&format!("{v}::organization")).ok())
    {
        response
            .headers_mut()
            .insert(SENTRY_RATE_LIMITS_HEADER, seconds);
    }
    response
}

async fn ingest_sentry(
    state: &AppState,
    project: &str,
    query: Option<&str>,
    request: Request,
    endpoint: Endpoint,
) -> ApiResult<Response> {
    let project: u64 = project.parse().map_err(|_| {
        ApiError::invalid_field("projectId", "must be a Sentry project id (digits)")
    })?;
    let client = ClientContext::from_request(
        request.headers(),
        request.request_context_ref(),
        state.config.ip_storage,
        Sender::Browser,
    );
    if client.is_known_bot() {
        return Ok(dropped());
    }
    // Checked before the body is read when the request names a key; a
    // tunnelled envelope names it only inside.
    let key = sentry::request_key(request.headers(), query);
    if key.is_some() {
        sentry::authorised(&state.config.sentry_keys, project, key.as_deref())?;
    }
    let declared = platform::http::media_type(request.headers()).unwrap_or_default();
    if !sentry::BODY_TYPES.contains(&declared.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{declared}; send application/x-sentry-envelope, application/json or text/plain"
        )));
    }
    let headers = request.headers().clone();
    let raw = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        })?;
    let body = sentry::decode(&headers, &raw)?;
    let upload = sentry::read_upload(endpoint, &body, &client)?;
    if key.is_none() {
        sentry::authorised(
            &state.config.sentry_keys,
            project,
            upload.envelope_key.as_deref(),
        )?;
    }
    let counted = if upload.events.is_empty() {
        0
    } else {
        // Repeatable: an event id already stored is not counted again.
        db::write_retrying(&state.pool, "recording Sentry events", |mut connection| {
            let events = &upload.events;
            async move {
                let mut counted = 0;
                for event in events {
                    match sentry::record(&mut connection, project, event).await {
                        Ok(Counted::Now) => counted += 1,
                        Ok(Counted::Before) => {}
                        Err(error) => return (connection, Err(error)),
                    }
                }
                (connection, Ok(counted))
            }
        })
        .await?
    };
    metrics::emit(
        "events",
        None,
        &[
            Metric::count("SentryEventsReceived", upload.events.len()),
            Metric::count("SentryEventsStored", counted),
            Metric::count("SentryItemsDropped", upload.dropped_items),
        ],
    );
    Ok((
        StatusCode::OK,
        Json(SentryAccepted {
            id: upload.event_id,
        }),
    )
        .into_response())
}
