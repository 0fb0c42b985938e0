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

use axum::{Router, routing::get};

use crate::AppState;

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
