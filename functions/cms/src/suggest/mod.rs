//! Search suggestions: airports, cities and countries as the user types.

use axum::Router;
use platform::{config::Env, db::Pool};

use crate::AppState;

/// The suggestion index of this container.
pub struct SuggestionStore {}

impl SuggestionStore {
    pub fn from_env(_pool: Pool, _env: &Env) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

/// `GET /api/search/suggestions`.
pub fn public_routes() -> Router<AppState> {
    Router::new()
}

/// `/api/admin/search-suggestions` and its import, with their own screening
/// (the import takes CSV as well as JSON).
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}

/// The suggestions' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}

/// The search-popularity job: see the module documentation.
pub async fn popularity(
    _pool: &Pool,
    _from: Option<chrono::DateTime<chrono::Utc>>,
    _to: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<serde_json::Value> {
    anyhow::bail!("the search-popularity job is not built yet")
}
