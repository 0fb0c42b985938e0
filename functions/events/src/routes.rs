//! HTTP: `POST /api/analytics/events`.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{RawQuery, Request, State},
    http::{Method, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::post,
};
use lambda_http::RequestExt;
use platform::{ApiError, ApiResult, request_id};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{AppState, analytics, client::ClientContext, errors, vitals};

/// `sendBeacon` caps a body at 64 KiB; `fetch` batches from the front end
/// (up to [`analytics::MAX_EVENTS_PER_BATCH`] events) may be larger.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Tells a dropped bot nothing it can act on, and tells people reading
/// responses why nothing was stored.
pub const DROPPED_HEADER: &str = "x-analytics-dropped";

pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(state.config.allowed_origins.clone()))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(24 * 60 * 60));
    Router::new()
        .route("/api/analytics/events", post(ingest_events))
        .route("/api/analytics/performance", post(ingest_vitals))
        .route("/api/analytics/vitals", post(ingest_vitals))
        .route("/api/analytics/errors", post(ingest_error))
        .route("/api/monitoring/client-error", post(ingest_error))
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::from_fn(request_id::middleware))
        .layer(cors)
        .with_state(state)
}

/// JSON, or `text/plain` (what `sendBeacon` sends for a string), or no type
/// at all; anything else is refused before the body is read.
fn check_content_type(request: &Request) -> ApiResult<()> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "text/plain" | "" => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "{other}; send application/json or text/plain"
        ))),
    }
}

/// Reads and parses the body, mapping an oversized body to 413 and
/// malformed JSON to 400.
pub async fn json_body(request: Request) -> ApiResult<Value> {
    check_content_type(&request)?;
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the request body is empty",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

async fn ingest_events(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let client = ClientContext::from_request(
        request.headers(),
        request.request_context_ref(),
        state.config.ip_storage,
    );
    if client.is_known_bot() {
        let nothing = analytics::Stored::default();
        return Ok((
            StatusCode::ACCEPTED,
            [(DROPPED_HEADER, "bot")],
            Json(nothing),
        )
            .into_response());
    }
    let body = json_body(request).await?;
    let events = analytics::parse_batch(&body, &client, chrono::Utc::now())?;
    let mut connection = state.pool.get().await?;
    let stored = analytics::store(&mut connection, &events)
        .await
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("storing analytics events"))
        })?;
    Ok((StatusCode::ACCEPTED, Json(stored)).into_response())
}

/// The answer a bot gets: the same success as anyone, nothing stored.
fn dropped(nothing: impl serde::Serialize) -> Response {
    (
        StatusCode::ACCEPTED,
        [(DROPPED_HEADER, "bot")],
        Json(nothing),
    )
        .into_response()
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
        .map_err(|_| ApiError::invalid_field("sessionId", "sessionId is not valid UTF-8"))?;
    if decoded.chars().count() > analytics::MAX_SESSION_ID_CHARS {
        return Err(ApiError::invalid_field(
            "sessionId",
            "sessionId is longer than 128 characters",
        ));
    }
    Ok(Some(decoded.into_owned()).filter(|s| !s.is_empty()))
}

async fn ingest_vitals(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<Response> {
    let client = ClientContext::from_request(
        request.headers(),
        request.request_context_ref(),
        state.config.ip_storage,
    );
    if client.is_known_bot() {
        return Ok(dropped(vitals::Recorded::default()));
    }
    let session_id = query_session_id(query.as_deref())?;
    let body = json_body(request).await?;
    let metrics = vitals::parse_metrics(&body, session_id.as_deref(), &client, chrono::Utc::now())?;
    let mut connection = state.pool.get().await?;
    let stored = async {
        let tx = connection.transaction().await?;
        let stored = vitals::store(&*tx, &metrics).await?;
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(stored)
    }
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("storing web vitals")))?;
    let recorded = vitals::Recorded {
        received: metrics.len(),
        stored: usize::try_from(stored).unwrap_or(usize::MAX),
    };
    Ok((StatusCode::ACCEPTED, Json(recorded)).into_response())
}

async fn ingest_error(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let client = ClientContext::from_request(
        request.headers(),
        request.request_context_ref(),
        state.config.ip_storage,
    );
    if client.is_known_bot() {
        return Ok(dropped(serde_json::json!({})));
    }
    let body = json_body(request).await?;
    let error = errors::parse_error(&body, &client)?;
    let mut connection = state.pool.get().await?;
    let recorded = async {
        let tx = connection.transaction().await?;
        let recorded = errors::record(&*tx, &error).await?;
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(recorded)
    }
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("recording a browser error")))?;
    Ok((StatusCode::ACCEPTED, Json(recorded)).into_response())
}
