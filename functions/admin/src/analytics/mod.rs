//! Business intelligence: the scheduled rollups into `metric_snapshots`,
//! the cohorts in `user_cohorts`, and the admin reads over them
//! (`analytics:read`, CSV under `analytics:export`).

use axum::Router;

use crate::AppState;

/// The analytics routes, merged into the admin router behind its screen.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The analytics routes' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}
