//! The ML model registry (`/api/admin/models`, resource `models`), training
//! and the accuracy of served predictions.

use axum::Router;

use crate::AppState;

/// The registry routes, merged into the admin router behind its screen.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The registry routes' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}
