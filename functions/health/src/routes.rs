//! HTTP: `GET|HEAD /api/health` and `GET /api/health/history`.

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::Utc;
use platform::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::json;

use crate::{
    AppState,
    config::DATABASE_SERVICE,
    probe::{self, Status},
    store,
};

/// Recorded checks older than this are not "latest" any more: a service
/// dropped from the configuration disappears from the endpoint after a day.
const LATEST_WINDOW_HOURS: i64 = 24;
const MAX_HISTORY_HOURS: i64 = 24 * 30;
const MAX_HISTORY_LIMIT: i64 = 1_000;

pub fn router(state: AppState) -> Router {
    platform::http::finish(
        Router::new()
            .route("/api/health", get(health).head(head))
            .route("/api/health/history", get(history))
            .with_state(state),
    )
}

fn no_cache() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    headers
}

/// 200 healthy, 207 degraded, 503 unhealthy.
fn status_code(overall: &str) -> StatusCode {
    match overall {
        "healthy" => StatusCode::OK,
        "degraded" => StatusCode::MULTI_STATUS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The database decides between up and unhealthy (nothing works without
/// it); any other service degraded or down makes the whole degraded.
async fn health(State(state): State<AppState>) -> ApiResult<Response> {
    let (database, connection) =
        probe::database_keeping_connection(&state.pool, state.config.degraded_threshold).await;
    let services = match connection {
        None => Vec::new(),
        Some(client) => store::latest(
            &**client,
            Utc::now() - chrono::Duration::hours(LATEST_WINDOW_HOURS),
        )
        .await
        .map_err(ApiError::internal("reading the latest health checks"))?
        .into_iter()
        .filter(|r| r.service != DATABASE_SERVICE)
        .collect(),
    };
    let overall = if database.status == Status::Down {
        "unhealthy"
    } else if database.status == Status::Degraded
        || services.iter().any(|s| s.status != Status::Healthy)
    {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": overall,
        "timestamp": Utc::now(),
        "database": database,
        "services": services,
    });
    Ok((status_code(overall), no_cache(), Json(body)).into_response())
}

/// Load balancers and uptime monitors poll with HEAD: a live database probe
/// only, no history read, no body.
async fn head(State(state): State<AppState>) -> Response {
    let database = probe::database(&state.pool, state.config.degraded_threshold).await;
    let code = if database.status == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, no_cache()).into_response()
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    service: Option<String>,
    hours: Option<String>,
    limit: Option<String>,
}

fn bounded(field: &str, raw: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    match raw {
        None | Some("") => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(value) if (1..=max).contains(&value) => Ok(value),
            _ => Err(ApiError::invalid_field(
                field,
                format!("must be a whole number from 1 to {max}"),
            )),
        },
    }
}

async fn history(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Response> {
    let hours = bounded("hours", query.hours.as_deref(), 24, MAX_HISTORY_HOURS)?;
    let limit = bounded("limit", query.limit.as_deref(), 100, MAX_HISTORY_LIMIT)?;
    let service = query.service.filter(|s| !s.is_empty());
    if service.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::invalid_field(
            "service",
            "must be at most 64 characters",
        ));
    }
    let since = Utc::now() - chrono::Duration::hours(hours);
    let client = state.pool.get().await?;
    let services = store::history(&**client, since, service.as_deref(), limit)
        .await
        .map_err(ApiError::internal("reading health history"))?;
    let body = json!({ "hours": hours, "since": since, "services": services });
    Ok((StatusCode::OK, no_cache(), Json(body)).into_response())
}
