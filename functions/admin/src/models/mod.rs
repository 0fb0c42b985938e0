//! The ML model registry (`/api/admin/models`, resource `models`), training
//! and the accuracy of served predictions.
//!
//! - [`registry`]: versions, activation and rollback (audited);
//! - [`fares`]: observed fares, from fare events (`fares-sync`) or a CSV
//!   (`import-fares`);
//! - [`training`]: the `train` job.

pub mod accuracy;
pub mod fares;
pub mod registry;
pub mod training;

use axum::{
    Router,
    routing::{get, post},
};

use crate::AppState;

/// The registry routes, merged into the admin router behind its screen.
///
/// | route | permission |
/// |---|---|
/// | `GET /api/admin/models` | models:read |
/// | `GET /api/admin/models/{name}` | models:read |
/// | `POST /api/admin/models/{name}/versions/{version}/activate` | models:update |
/// | `POST /api/admin/models/{name}/rollback` | models:update |
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/models", get(registry::list))
        .route("/api/admin/models/{name}", get(registry::get))
        .route(
            "/api/admin/models/{name}/versions/{version}/activate",
            post(registry::activate_version),
        )
        .route(
            "/api/admin/models/{name}/rollback",
            post(registry::rollback_model),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    registry::list,
    registry::get,
    registry::activate_version,
    registry::rollback_model,
))]
struct ApiDoc;

/// The registry routes' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
