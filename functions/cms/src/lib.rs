//! The CMS: deals, destinations, email templates and search suggestions.
//!
//! Two kinds of routes share one function:
//!
//! - **public reads** for the site (no session): deal and destination lists
//!   and pages, search suggestions, each with `ETag` and `Cache-Control`
//!   so a CDN or the browser can keep it; and the counters a page's views,
//!   clicks and conversions raise (bots dropped, as on the intake);
//! - **editing** for admins: the same session, the same
//!   [`access::Authorized`] guard declared per route, every change through
//!   [`access::Authorized::mutate`] with its audit row; version history and
//!   restore read that audit trail ([`history`]).
//!
//! | route | permission |
//! |---|---|
//! | `GET /api/deals`, `GET /api/deals/{slug}` | public |
//! | `POST /api/deals/{slug}/view\|click\|conversion` | public |
//! | `GET /api/destinations`, `GET /api/destinations/{slug}` | public |
//! | `POST /api/destinations/{slug}/view` | public |
//! | `GET /api/search/suggestions` | public |
//! | `GET /api/admin/deals`, `GET /api/admin/deals/{id}`, `.../history` | deals:read |
//! | `POST /api/admin/deals` | deals:create |
//! | `PATCH /api/admin/deals/{id}`, `POST .../restore` | deals:update |
//! | `DELETE /api/admin/deals/{id}` | deals:delete |
//! | the same under `/api/admin/destinations` | destinations:* |
//! | `/api/admin/email-templates` (by `key`), `.../render`, `.../test` | emails:* |
//! | `/api/admin/search-suggestions`, `.../import` | suggestions:* |

pub mod commands;
pub mod content;
pub mod deals;
pub mod destinations;
pub mod editing;
pub mod email;
pub mod history;
pub mod public;
pub mod seed;
pub mod suggest;

use std::sync::Arc;
use std::time::Duration;

use access::{Access, session::SessionKeys};
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    http::{Method, header},
    middleware,
    routing::{get, post},
};
use lambda_runtime::Context;
use platform::{
    config::{DatabaseConfig, Env},
    db::{Checkout, Pool},
    lambda::{Event, Function},
};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

#[derive(Clone)]
pub struct AppState {
    pub access: Access,
    pub pool: Pool,
    /// The suggestion index, loaded per container (see [`suggest`]).
    pub suggestions: Arc<suggest::SuggestionStore>,
    /// `SMTP_URL`: where test mails go (see [`email`]).
    pub mailer: Arc<email::Mailer>,
}

/// The function, built once per container from its settings: by `main.rs`
/// and by every test.
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    router: Router,
}

impl App {
    pub fn build(env: &Env) -> anyhow::Result<Self> {
        let database = DatabaseConfig::from_env(env)?;
        let pool = platform::db::pool(&database, Checkout::Verified)?;
        let state = AppState {
            access: Access::new(pool.clone(), SessionKeys::from_env(env)?),
            suggestions: Arc::new(suggest::SuggestionStore::from_env(pool.clone(), env)?),
            mailer: Arc::new(email::Mailer::from_env(env)?),
            pool,
        };
        Ok(Self {
            router: router(state.clone(), &env.allowed_origins()?),
            state,
        })
    }
}

impl Function for App {
    fn router(&self) -> Router {
        self.router.clone()
    }

    /// Direct invokes run the commands of the command line; the schedule
    /// runs the search-popularity job.
    async fn on_event(&self, event: Event, _: Context) -> anyhow::Result<Value> {
        let command = match event {
            Event::Direct(payload) => {
                commands::Command::from_payload(payload).map_err(anyhow::Error::msg)?
            }
            Event::Schedule(_) => commands::Command::SCHEDULED,
            Event::CustomResource(_) => anyhow::bail!("cms has no custom resource"),
        };
        let outcome = commands::execute(&self.state.pool, &command).await?;
        tracing::info!(%outcome, "command done");
        Ok(outcome)
    }
}

impl FromRef<AppState> for Access {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}

/// The CMS's part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        deals::public_list, deals::public_get, deals::count_view, deals::count_click,
        deals::count_conversion,
        destinations::public_list, destinations::public_get, destinations::count_view,
        deals::list, deals::create, deals::get, deals::update, deals::delete, deals::history,
        deals::restore,
        destinations::list, destinations::create, destinations::get, destinations::update,
        destinations::delete, destinations::history, destinations::restore,
    ),
    components(schemas(platform::error::ErrorBody)),
    tags(
        (name = "cms", description = "Deals, destinations and search suggestions for the site: public, cacheable (`ETag`, `Cache-Control`), no session."),
        (name = "cms-admin", description = "Editing the CMS: an admin session, permissions per route, every change audited; history and restore from the audit trail."),
    )
)]
struct ApiDoc;

/// The CMS as an OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(email::openapi());
    doc.merge(suggest::openapi());
    doc
}

/// How long a browser may keep a public answer before revalidating, and how
/// long a CDN may serve it stale while it does: see [`public`].
pub const PUBLIC_MAX_AGE: Duration = Duration::from_secs(60);

fn router(state: AppState, allowed_origins: &[http::HeaderValue]) -> Router {
    // The site's pages read the public routes from the browser; nothing
    // there carries credentials.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed_origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::IF_NONE_MATCH])
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(24 * 60 * 60));
    let public = Router::new()
        .route("/api/deals", get(deals::public_list))
        .route("/api/deals/{slug}", get(deals::public_get))
        .route("/api/deals/{slug}/view", post(deals::count_view))
        .route("/api/deals/{slug}/click", post(deals::count_click))
        .route(
            "/api/deals/{slug}/conversion",
            post(deals::count_conversion),
        )
        .route("/api/destinations", get(destinations::public_list))
        .route("/api/destinations/{slug}", get(destinations::public_get))
        .route(
            "/api/destinations/{slug}/view",
            post(destinations::count_view),
        )
        .merge(suggest::public_routes())
        .layer(cors);
    let admin = Router::new()
        .route("/api/admin/deals", get(deals::list).post(deals::create))
        .route(
            "/api/admin/deals/{id}",
            get(deals::get).patch(deals::update).delete(deals::delete),
        )
        .route("/api/admin/deals/{id}/history", get(deals::history))
        .route("/api/admin/deals/{id}/restore", post(deals::restore))
        .route(
            "/api/admin/destinations",
            get(destinations::list).post(destinations::create),
        )
        .route(
            "/api/admin/destinations/{id}",
            get(destinations::get)
                .patch(destinations::update)
                .delete(destinations::delete),
        )
        .route(
            "/api/admin/destinations/{id}/history",
            get(destinations::history),
        )
        .route(
            "/api/admin/destinations/{id}/restore",
            post(destinations::restore),
        )
        .merge(email::admin_routes())
        .layer(DefaultBodyLimit::max(access::screen::MAX_BODY_BYTES))
        .layer(middleware::from_fn(access::screen::screen))
        // The bulk import takes CSV as well as JSON, and larger bodies.
        .merge(suggest::admin_routes());
    platform::http::finish("cms", public.merge(admin).with_state(state))
}
