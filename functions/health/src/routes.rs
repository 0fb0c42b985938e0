//! HTTP: `GET|HEAD /api/health` and `GET /api/health/history`.

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::Utc;
use platform::{
    ApiError, ApiResult,
    api_doc::{Invalid, Unavailable},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

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
        "health",
        Router::new()
            .route("/api/health", get(health).head(head))
            .route("/api/health/history", get(history))
            .route("/api/openapi.json", get(api_description))
            .with_state(state),
    )
}

/// The health function's part of the API description.
#[derive(OpenApi)]
#[openapi(
    paths(health, head, history, api_description),
    components(schemas(platform::error::ErrorBody)),
    tags((name = "health", description = "Health of the bundle and its dependencies, probed on a schedule and live."))
)]
struct ApiDoc;

/// The health function's routes as an OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole bundle's API description, as committed beside the code
/// (`openapi.json`, generated from every function's handlers and checked
/// against them by the test suite). Served here because health is public
/// and small: the functions whose routes it describes need not be linked in.
const API_DESCRIPTION: &str = include_str!("../../../openapi.json");

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    summary = "This API's description",
    description = "OpenAPI 3.1, generated from the handlers' request and response types of every function.",
    responses((status = 200, description = "The document.", content_type = "application/json", body = Object))
)]
async fn api_description() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        API_DESCRIPTION,
    )
        .into_response()
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

/// `GET /api/health`'s body.
#[derive(Serialize, ToSchema)]
pub struct HealthReport {
    /// healthy, degraded or unhealthy.
    #[schema(example = "healthy")]
    status: &'static str,
    timestamp: chrono::DateTime<Utc>,
    /// The live probe.
    database: probe::Probe,
    /// The latest recorded check of every other service in the last 24 h.
    services: Vec<store::Recorded>,
}

/// The database decides between up and unhealthy (nothing works without
/// it); any other service degraded or down makes the whole degraded.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    summary = "Health of the bundle",
    description = "A live database probe and the latest recorded check of every other service: 200 healthy, 207 degraded, 503 unhealthy (the database is down).",
    responses(
        (status = 200, description = "Healthy.", body = HealthReport),
        (status = 207, description = "Degraded: the database is slow, or a service was last seen degraded or down.", body = HealthReport),
        (status = 503, description = "Unhealthy: the database is down.", body = HealthReport),
    )
)]
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
    let body = HealthReport {
        status: overall,
        timestamp: Utc::now(),
        database,
        services,
    };
    Ok((status_code(overall), no_cache(), Json(body)).into_response())
}

/// Load balancers and uptime monitors poll with HEAD: a live database probe
/// only, no history read, no body.
#[utoipa::path(
    head,
    path = "/api/health",
    tag = "health",
    summary = "Liveness for load balancers",
    description = "A live database probe only, no body.",
    responses(
        (status = 200, description = "The database answers."),
        (status = 503, description = "The database is down."),
    )
)]
async fn head(State(state): State<AppState>) -> Response {
    let database = probe::database(&state.pool, state.config.degraded_threshold).await;
    let code = if database.status == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, no_cache()).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// One service's history; all of them when absent.
    service: Option<String>,
    /// The window, 1 to 720 hours (default 24).
    hours: Option<String>,
    /// Newest checks listed per service, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// `GET /api/health/history`'s body.
#[derive(Serialize, ToSchema)]
pub struct HistoryReport {
    hours: i64,
    since: chrono::DateTime<Utc>,
    services: Vec<store::ServiceHistory>,
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

#[utoipa::path(
    get,
    path = "/api/health/history",
    tag = "health",
    summary = "Recent checks and uptime",
    description = "Per service: the check count, uptime (the share of checks not down, in percent), the average response time and the newest checks.",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The history.", body = HistoryReport),
        Invalid, Unavailable,
    )
)]
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
    let body = HistoryReport {
        hours,
        since,
        services,
    };
    Ok((StatusCode::OK, no_cache(), Json(body)).into_response())
}
