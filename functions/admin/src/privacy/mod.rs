//! Privacy (`/api/admin/privacy`, resource `privacy`): what the bundle does
//! for the people whose data it holds.
//!
//! - [`erasure`]: erase a visitor on request (audited).
//! - [`retention`]: raw rows deleted after their table's window (the
//!   `retention` job).

pub mod erasure;
pub mod retention;

use axum::{Router, routing::post};

use crate::AppState;

/// The privacy routes, merged into the admin router behind its screen.
///
/// | route | permission |
/// |---|---|
/// | `POST /api/admin/privacy/erasure` | privacy:delete |
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/privacy/erasure", post(erasure::erase_person))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(erasure::erase_person))]
struct ApiDoc;

/// The privacy routes' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
