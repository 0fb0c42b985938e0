//! Search suggestions: airports, cities and countries as the user types.
//!
//! | route | permission |
//! |---|---|
//! | `GET /api/search/suggestions?q=&type=&limit=` | public |
//! | `GET /api/admin/search-suggestions`, `GET .../{id}` | suggestions:read |
//! | `POST /api/admin/search-suggestions` | suggestions:create |
//! | `POST /api/admin/search-suggestions/import` | suggestions:create |
//! | `PATCH /api/admin/search-suggestions/{id}` | suggestions:update |
//! | `DELETE /api/admin/search-suggestions/{id}` | suggestions:delete |
//!
//! - **Search** ([`index`]): an in-memory `fst` index of every suggestion's
//!   words, per container, loaded from PostgreSQL on the first request and
//!   checked for changes after `SUGGESTION_CACHE_SECONDS` ([`store`]);
//!   prefix and typo-tolerant matching as Meilisearch does it, an exact
//!   IATA code first, `popularity` as the tiebreaker. Answers carry `ETag`
//!   and `Cache-Control` like every public read ([`crate::public`]).
//! - **The `query` key.** `search_suggestions.query` is unique; this API
//!   uses it as the suggestion's stable key, derived when not given, as
//!   the seed derives it ([`fields::derived_query`]): the IATA code for an
//!   airport (`LIS`: one suggestion per airport, stable across renames),
//!   `City, Country` for a city (`Paris, France`; the name alone without a
//!   country), the name for a country (`Portugal`). Imports upsert by it.
//!   An explicit key (any text up to 200 characters) is kept as given: two
//!   cities of one name in one country need one.
//! - **Fields** ([`fields`]): `type` one of airport, city, country; `code`
//!   an IATA code (required for an airport, optional metropolitan code
//!   for a city) or an ISO 3166-1 alpha-2 code for a country; `country`
//!   the country's *name* as the site shows it (`Portugal`), searched
//!   (so `portugal` finds Lisbon's airport) and absent for a country;
//!   `metadata` any JSON object of up to 4 KiB, whose `city` and `aliases`
//!   are searched too.
//! - **Editing** ([`admin`], [`import`]): CRUD and an all-or-nothing bulk
//!   import, each through [`access::Authorized::mutate`]; a change made
//!   through this container is in its index before the change is answered.
//! - **Popularity** ([`popularity`]): the scheduled job that credits
//!   suggestions with the flight searches naming their codes.

pub mod admin;
pub mod fields;
pub mod import;
pub mod index;
pub mod popularity;
pub mod store;

use axum::{
    Router,
    extract::{DefaultBodyLimit, RawQuery, State},
    http::HeaderMap,
    middleware,
    response::Response,
    routing::{get, post},
};
use platform::api_doc::{Invalid, Unavailable};
use platform::{ApiError, ApiResult, db::Pool};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

pub use store::SuggestionStore;

use crate::AppState;
use index::{Kind, Suggestion};

/// Longest `q`.
pub const MAX_Q_CHARS: usize = 100;
pub const DEFAULT_LIMIT: usize = 8;
pub const MAX_LIMIT: usize = 20;

/// `GET /api/search/suggestions`.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/api/search/suggestions", get(suggest))
}

/// `/api/admin/search-suggestions` and its import, with their own screening
/// (the import takes CSV as well as JSON, and larger bodies).
pub fn admin_routes() -> Router<AppState> {
    let crud = Router::new()
        .route(
            "/api/admin/search-suggestions",
            get(admin::list).post(admin::create),
        )
        .route(
            "/api/admin/search-suggestions/{id}",
            get(admin::get_one)
                .patch(admin::update)
                .delete(admin::delete),
        )
        .layer(DefaultBodyLimit::max(access::screen::MAX_BODY_BYTES))
        .layer(middleware::from_fn(access::screen::screen));
    let import = Router::new()
        .route("/api/admin/search-suggestions/import", post(import::import))
        .layer(DefaultBodyLimit::max(import::MAX_IMPORT_BYTES))
        .layer(middleware::from_fn(|request, next| {
            access::screen::screen_with(request, next, &["application/json", "text/csv"])
        }));
    crud.merge(import)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        suggest,
        admin::list,
        admin::get_one,
        admin::create,
        admin::update,
        admin::delete,
        import::import
    ),
    components(schemas(
        Suggestions,
        Suggestion,
        Kind,
        admin::SuggestionView,
        admin::SuggestionUpdate,
        fields::NewSuggestion,
        import::ImportOutcome,
        import::ImportRefused,
        import::RejectedRow,
    ))
)]
struct SuggestApi;

/// The suggestions' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    SuggestApi::openapi()
}

/// The search-popularity job: see [`popularity`].
pub async fn popularity(
    pool: &Pool,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<serde_json::Value> {
    popularity::run(pool, from, to).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SuggestQuery {
    /// What the visitor typed: 1-100 characters.
    q: Option<String>,
    /// `airport`, `city` or `country`; all when absent.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// 1-20, default 8.
    limit: Option<String>,
}

/// The suggestions for what was typed, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions<'a> {
    pub suggestions: Vec<Suggestion<'a>>,
}

/// The checked parameters of a suggestion request.
pub struct Request {
    pub q: String,
    pub kind: Option<Kind>,
    pub limit: usize,
}

impl Request {
    pub fn parse(query: Option<&str>) -> ApiResult<Self> {
        let query: SuggestQuery = platform::json::parse_query(query)?;
        let q = query.q.unwrap_or_default();
        if q.trim().is_empty() || q.chars().count() > MAX_Q_CHARS {
            return Err(ApiError::invalid_field(
                "q",
                format!("must be 1-{MAX_Q_CHARS} characters"),
            ));
        }
        let kind = query.kind.as_deref().map(fields::kind).transpose()?;
        let limit = match query.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIMIT}"))
                })?,
        };
        Ok(Self { q, kind, limit })
    }
}

#[utoipa::path(
    operation_id = "search_suggestions",
    get,
    path = "/api/search/suggestions",
    tag = "cms",
    summary = "Airports, cities and countries for what the visitor typed",
    description = "Prefix matching on the last word; typos allowed from 5 characters (1) and 9 (2); accents and case ignored (`sao pa` finds São Paulo). An exact IATA code comes first (`lis`), then fewer typos, whole words before prefixes, earlier attributes (code, name, aliases, country), then `popularity`. Cacheable: `ETag`, `Cache-Control`, 304 for a matching `If-None-Match`. No session.",
    params(SuggestQuery),
    responses(
        (status = 200, description = "The suggestions, best first.", body = Suggestions,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag."),
        Invalid, Unavailable,
    )
)]
async fn suggest(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let request = Request::parse(query.as_deref())?;
    let loaded = state.suggestions.index().await?;
    let found = loaded.index.search(&request.q, request.kind, request.limit);
    Ok(crate::public::cached_json(
        &headers,
        &Suggestions { suggestions: found },
    ))
}
