//! HTTP: `POST /api/analytics/events`.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::post,
};
use lambda_http::RequestExt;
use platform::{ApiError, ApiResult, request_id};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{AppState, analytics, client::ClientContext};

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
    let stored = async {
        let tx = connection.transaction().await?;
        let stored = analytics::store(&*tx, &events).await?;
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(stored)
    }
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("storing analytics events")))?;
    Ok((StatusCode::ACCEPTED, Json(stored)).into_response())
}
