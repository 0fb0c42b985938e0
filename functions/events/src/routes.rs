//! HTTP: `POST /api/analytics/events`.

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::post,
};
use lambda_http::RequestExt;
use platform::{ApiError, ApiResult, request_id};
use serde_json::Value;

use crate::{AppState, analytics, client::ClientContext};

/// `sendBeacon` caps a body at 64 KiB; `fetch` batches from the front end
/// (up to [`analytics::MAX_EVENTS_PER_BATCH`] events) may be larger.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/analytics/events", post(ingest_events))
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::from_fn(request_id::middleware))
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
