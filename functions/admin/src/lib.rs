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

pub mod bootstrap;
pub mod commands;
pub mod errors;
pub mod paging;
pub mod trail;
pub mod users;

use access::Access;
use axum::{Router, extract::FromRef, middleware, routing::get};
use platform::{ApiError, request_id};

#[derive(Clone)]
pub struct AppState {
    pub access: Access,
}

impl FromRef<AppState> for Access {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/admin/users", get(users::list).post(users::grant))
        .route(
            "/api/admin/users/{userId}",
            get(users::get).patch(users::update).delete(users::revoke),
        )
        .route("/api/admin/audit", get(trail::list))
        .route("/api/admin/audit/export", get(trail::export))
        .route("/api/admin/audit/verify", get(trail::verify))
        .route("/api/admin/errors", get(errors::list))
        .route(
            "/api/admin/errors/{id}",
            get(errors::get).patch(errors::triage),
        )
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::from_fn(request_id::middleware))
        .with_state(state)
}
