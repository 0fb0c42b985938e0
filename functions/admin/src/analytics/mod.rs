//! Business intelligence: the scheduled rollups into `metric_snapshots`,
//! the cohorts in `user_cohorts`, and the admin reads over them
//! (`analytics:read`, CSV under `analytics:export`).

pub mod cohorts;
pub mod errors_top;
pub mod export;
pub mod funnel;
pub mod overview;
pub mod range;
pub mod retention;
pub mod rollup;
pub mod sample;
pub mod vitals;

use std::time::Duration;

use axum::{Router, routing::get};
use platform::{ApiError, ApiResult, db::PooledClient};
use tokio_postgres::error::SqlState;

use crate::AppState;

/// How long the statements of one read over raw rows (funnel, retention,
/// top errors) may run: the admin function is stopped at 30 s, and a
/// statement left running past it would go on in PostgreSQL for nobody.
pub const READ_BUDGET: Duration = Duration::from_secs(20);

/// Runs `read` in a read-only transaction whose statements stop after
/// `budget`; a read stopped there is a 503 asking for a shorter range
/// rather than a 500 (or the function killed mid-answer).
pub async fn within_budget<T>(
    client: &mut PooledClient,
    budget: Duration,
    read: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> ApiResult<T>,
) -> ApiResult<T> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(ApiError::internal("starting a read"))?;
    let millis = i64::try_from(budget.as_millis()).unwrap_or(i64::MAX);
    tx.execute(
        "SELECT set_config('statement_timeout', $1, true)",
        &[&format!("{millis}ms")],
    )
    .await
    .map_err(ApiError::internal("bounding a read"))?;
    let answer = read(&tx).await.map_err(|error| too_slow(error, budget))?;
    tx.commit()
        .await
        .map_err(ApiError::internal("ending a read"))?;
    Ok(answer)
}

fn too_slow(error: ApiError, budget: Duration) -> ApiError {
    let ApiError::Internal(cause) = &error else {
        return error;
    };
    let cancelled = cause
        .chain()
        .filter_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .any(|e| e.code() == Some(&SqlState::QUERY_CANCELED));
    if cancelled {
        ApiError::Unavailable(format!(
            "the report did not finish within {} s: ask for a shorter range",
            budget.as_secs_f64()
        ))
    } else {
        error
    }
}

/// The analytics routes, merged into the admin router behind its screen.
///
/// | route | permission |
/// |---|---|
/// | `GET /api/admin/analytics/overview` | analytics:read |
/// | `GET /api/admin/analytics/funnel` | analytics:read |
/// | `GET /api/admin/analytics/retention` | analytics:read |
/// | `GET /api/admin/analytics/vitals` | analytics:read |
/// | `GET /api/admin/analytics/errors/top` | analytics:read |
/// | `GET /api/admin/analytics/export/{report}` | analytics:export |
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/analytics/overview", get(overview::overview))
        .route("/api/admin/analytics/funnel", get(funnel::funnel))
        .route("/api/admin/analytics/retention", get(retention::retention))
        .route("/api/admin/analytics/vitals", get(vitals::vitals))
        .route(
            "/api/admin/analytics/errors/top",
            get(errors_top::errors_top),
        )
        .route("/api/admin/analytics/export/{report}", get(export::export))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    overview::overview,
    funnel::funnel,
    retention::retention,
    vitals::vitals,
    errors_top::errors_top,
    export::export,
))]
struct ApiDoc;

/// The analytics routes' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
