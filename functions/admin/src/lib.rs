//! The admin API.
//!
//! Every route declares its permission in its signature with
//! [`access::Authorized`]; every change goes through
//! [`access::Authorized::mutate`], which writes its audit row in the same
//! transaction. The routes, and the permission each needs:
//!
//! | route | permission |
//! |---|---|
//! | `GET /api/admin/users` | users:read |
//! | `POST /api/admin/users` | users:create |
//! | `GET /api/admin/users/{userId}` | users:read |
//! | `PATCH /api/admin/users/{userId}` | users:update |
//! | `DELETE /api/admin/users/{userId}` | users:delete |
//! | `GET /api/admin/audit` | audit_logs:read |
//! | `GET /api/admin/audit/export` | audit_logs:export |
//! | `GET /api/admin/audit/verify` | audit_logs:read |
//! | `GET /api/admin/errors` | errors:read |
//! | `GET /api/admin/errors/{id}` | errors:read |
//! | `PATCH /api/admin/errors/{id}` | errors:update |
//! | `GET /api/admin/flags` | flags:read |
//! | `POST /api/admin/flags` | flags:create |
//! | `GET /api/admin/flags/{key}` | flags:read |
//! | `PATCH /api/admin/flags/{key}` | flags:update |
//! | `DELETE /api/admin/flags/{key}` | flags:delete |
//! | `POST /api/admin/experiments/{key}/start` | experiments:update |
//! | `POST /api/admin/experiments/{key}/pause` | experiments:update |
//! | `POST /api/admin/experiments/{key}/resume` | experiments:update |
//! | `POST /api/admin/experiments/{key}/stop` | experiments:update |
//! | `GET /api/admin/experiments/{key}/results` | experiments:read |

pub mod analytics;
pub mod bootstrap;
pub mod commands;
pub mod csv_export;
pub mod experiments;
pub mod flags;
pub mod models;
pub mod privacy;
pub mod trail;
pub mod triage;
pub mod users;

use access::{Access, session::SessionKeys};
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    middleware,
    routing::{get, post},
};
use bootstrap::Channel;
use commands::Command;
use lambda_runtime::Context;
use platform::{
    config::{DatabaseConfig, Env},
    db::Checkout,
    lambda::{Event, Function},
};
use serde_json::Value;

#[derive(Clone)]
pub struct AppState {
    pub access: Access,
    /// The retention windows, read at cold start.
    pub retention: privacy::retention::RetentionConfig,
    /// The audit trail's pseudonym key, read at cold start.
    pub erasure: privacy::erasure::ErasureConfig,
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
            access: Access::new(pool, SessionKeys::from_env(env)?),
            retention: privacy::retention::RetentionConfig::from_env(env)?,
            erasure: privacy::erasure::ErasureConfig::from_env(env)?,
        };
        Ok(Self {
            router: router(state.clone()),
            state,
        })
    }
}

impl Function for App {
    fn router(&self) -> Router {
        self.router.clone()
    }

    /// Direct invokes run the commands of the command line; the daily
    /// schedule verifies the chain, so verification failures and the
    /// chain's head hash land in the logs, an anchor outside the database.
    async fn on_event(&self, event: Event, _: Context) -> anyhow::Result<Value> {
        let command = match event {
            Event::Direct(payload) => Command::from_payload(payload).map_err(anyhow::Error::msg)?,
            Event::Schedule(_) => Command::AuditMaintain,
            Event::CustomResource(_) => anyhow::bail!("admin has no custom resource"),
        };
        let mut client = self.state.access.pool.get().await?;
        let outcome = match command {
            // With the windows read at cold start, not the process's now.
            Command::Retention {} => {
                commands::retention(&client, &self.state.retention, Channel::Lambda).await?
            }
            command @ Command::Erase { .. } => {
                commands::erase(&mut client, &command, &self.state.erasure, Channel::Lambda).await?
            }
            command => commands::execute(&mut client, &command, Channel::Lambda).await?,
        };
        tracing::info!(%outcome, "command done");
        Ok(outcome)
    }
}

impl FromRef<AppState> for Access {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}

/// The admin API's part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        users::list, users::grant, users::get, users::update, users::revoke,
        trail::list, trail::export, trail::verify,
        triage::list, triage::get, triage::triage,
        flags::list, flags::create, flags::get, flags::update, flags::delete,
        experiments::start, experiments::pause, experiments::resume, experiments::stop,
        experiments::results,
    ),
    components(schemas(platform::error::ErrorBody)),
    modifiers(&SessionSchemes),
    tags((name = "admin", description = "The admin API: a session of the Next.js site (NextAuth v4 or Auth.js v5), role-based permissions declared per route, every change audited in its own transaction."))
)]
struct ApiDoc;

/// The session the admin routes read: the site's cookie, or the same token
/// as a bearer token.
struct SessionSchemes;

impl utoipa::Modify for SessionSchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Secure-authjs.session-token",
                "The site's session cookie (Auth.js v5; also authjs.session-token, and NextAuth v4's next-auth.session-token, __Secure- on https; chunks .0, .1, ... joined).",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWE")
                    .description(Some("The same session token in `Authorization: Bearer`."))
                    .build(),
            ),
        );
    }
}

/// The admin API as an OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(analytics::openapi());
    doc.merge(models::openapi());
    doc.merge(privacy::openapi());
    doc
}

pub use access::screen::MAX_BODY_BYTES;

fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/admin/users", get(users::list).post(users::grant))
        .route(
            "/api/admin/users/{userId}",
            get(users::get).patch(users::update).delete(users::revoke),
        )
        .route("/api/admin/audit", get(trail::list))
        .route("/api/admin/audit/export", get(trail::export))
        .route("/api/admin/audit/verify", get(trail::verify))
        .route("/api/admin/errors", get(triage::list))
        .route(
            "/api/admin/errors/{id}",
            get(triage::get).patch(triage::triage),
        )
        .route("/api/admin/flags", get(flags::list).post(flags::create))
        .route(
            "/api/admin/flags/{key}",
            get(flags::get).patch(flags::update).delete(flags::delete),
        )
        .route(
            "/api/admin/experiments/{key}/start",
            post(experiments::start),
        )
        .route(
            "/api/admin/experiments/{key}/pause",
            post(experiments::pause),
        )
        .route(
            "/api/admin/experiments/{key}/resume",
            post(experiments::resume),
        )
        .route("/api/admin/experiments/{key}/stop", post(experiments::stop))
        .route(
            "/api/admin/experiments/{key}/results",
            get(experiments::results),
        )
        .merge(analytics::routes())
        .merge(models::routes())
        .merge(privacy::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(access::screen::screen))
        .with_state(state);
    platform::http::finish("admin", routes)
}
