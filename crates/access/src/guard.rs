//! The permission a route needs, declared in its signature.
//!
//! ```ignore
//! async fn resolve(auth: Authorized<resource::Errors, action::Update>, ...) -> ApiResult<...>
//! ```
//!
//! Extracting [`Authorized`] authenticates the session (401 without one),
//! loads the admin, and refuses with 403, naming the permission, when the
//! admin lacks it; the refusal is written to the audit trail. A handler
//! cannot run without its permission, and the permission it declared is the
//! action and resource its audit rows record.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use lambda_http::RequestExt;
use platform::{
    ApiError, ApiResult,
    db::{Pool, PooledClient},
};
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::audit::{Entry, Origin, Recorder};
use crate::rbac::{Action, Permissions, Resource, Role};
use crate::session::{self, SessionKeys};

/// What the guard needs: the pool and the session keys. Functions provide
/// it from their state with `FromRef`.
#[derive(Clone)]
pub struct Access {
    pub pool: Pool,
    keys: Arc<SessionKeys>,
}

impl Access {
    pub fn new(pool: Pool, keys: SessionKeys) -> Self {
        Self {
            pool,
            keys: Arc::new(keys),
        }
    }
}

/// A signed-in user and what they may do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub permissions: Permissions,
}

impl Actor {
    /// The user behind a session, with their admin grants; `None` when the
    /// user no longer exists. A user without an `admin_users` row has role
    /// `user` and may do nothing.
    pub async fn load(
        client: &impl GenericClient,
        user_id: &str,
        token_email: Option<&str>,
    ) -> Result<Option<Self>, tokio_postgres::Error> {
        let Some(row) = client
            .query_opt(
                r#"SELECT u."email", u."name", a."role", a."permissions"
                   FROM "users" u LEFT JOIN "admin_users" a ON a."userId" = u."id"
                   WHERE u."id" = $1"#,
                &[&user_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let email: Option<String> = row.get(0);
        let stored_role: Option<String> = row.get(2);
        let stored_permissions: Option<Value> = row.get(3);
        let role = match stored_role.as_deref() {
            None => Role::User,
            Some(text) => Role::parse(text).unwrap_or_else(|| {
                tracing::warn!(role = text, "unknown admin role; treating as user");
                Role::User
            }),
        };
        Ok(Some(Self {
            user_id: user_id.to_owned(),
            email: email.or(token_email.map(str::to_owned)).unwrap_or_default(),
            name: row.get(1),
            role,
            permissions: Permissions::from_stored(role, stored_permissions.as_ref()),
        }))
    }

    pub fn recorder(&self) -> Recorder {
        Recorder {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
        }
    }
}

/// Marker types naming a resource in a route's signature.
pub trait ResourceMarker: Send + Sync + 'static {
    const RESOURCE: Resource;
}

/// Marker types naming an action in a route's signature.
pub trait ActionMarker: Send + Sync + 'static {
    const ACTION: Action;
}

macro_rules! markers {
    ($trait:ident, $const:ident, $enum:ident: $($name:ident),+) => {
        $(
            pub struct $name;
            impl super::$trait for $name {
                const $const: super::$enum = super::$enum::$name;
            }
        )+
    };
}

pub mod resource {
    markers!(ResourceMarker, RESOURCE, Resource: Deals, Destinations, Emails, Suggestions,
        Experiments, Flags, Models, Analytics, Errors, System, AuditLogs, Users, Privacy);
}

pub mod action {
    markers!(ActionMarker, ACTION, Action: Create, Read, Update, Delete, Export, Manage);
}

/// The result of a change, for [`Authorized::mutate`] to record.
pub struct Change<T> {
    /// The changed thing's id (for a create, the new id).
    pub resource_id: String,
    pub before: Value,
    pub after: Value,
    /// What the handler answers.
    pub output: T,
}

/// A request whose session holds `R`:`A`.
/// It keeps the connection the guard loaded the admin through, so the
/// handler's reads and its change use it too: one checkout per request.
pub struct Authorized<R: ResourceMarker, A: ActionMarker> {
    pub actor: Actor,
    pub origin: Origin,
    pub path: String,
    client: PooledClient,
    permission: PhantomData<fn() -> (R, A)>,
}

fn origin_of(parts: &Parts) -> Origin {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Origin {
        ip_address: platform::http::client_address(
            &parts.headers,
            parts.extensions.request_context_ref(),
        ),
        user_agent: header("user-agent"),
        request_id: platform::request_id::current(),
    }
}

impl<S, R, A> FromRequestParts<S> for Authorized<R, A>
where
    Access: FromRef<S>,
    S: Send + Sync,
    R: ResourceMarker,
    A: ActionMarker,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let access = Access::from_ref(state);
        let credential = session::credential(&parts.headers).map_err(|reason| {
            tracing::info!(%reason, "no usable session");
            ApiError::Unauthorized
        })?;
        let claims = access
            .keys
            .open(&credential, chrono::Utc::now().timestamp())
            .map_err(|reason| {
                tracing::info!(%reason, source = ?credential.source, "session refused");
                ApiError::Unauthorized
            })?;
        let mut client = access.pool.get().await?;
        let actor = Actor::load(&**client, &claims.sub, claims.email.as_deref())
            .await
            .map_err(ApiError::internal("loading the signed-in user"))?
            .ok_or_else(|| {
                tracing::info!(user = %claims.sub, "session of a user that no longer exists");
                ApiError::Unauthorized
            })?;
        let origin = origin_of(parts);
        let path = parts.uri.path().to_owned();
        if !actor.permissions.allows(R::RESOURCE, A::ACTION) {
            let reason = format!(
                "{} lacks {}:{}, which {} {} requires",
                actor.role,
                R::RESOURCE,
                A::ACTION,
                parts.method,
                path
            );
            let refusal = Entry::refused(
                &actor.recorder(),
                &origin,
                A::ACTION,
                R::RESOURCE,
                &path,
                &reason,
            );
            // The 403 stands even if the trail cannot take the row; the
            // failure is logged with the request id.
            if let Err(error) = crate::audit::record_refusal(&mut client, &refusal).await {
                tracing::error!(?error, "could not record a refused attempt");
            }
            return Err(ApiError::Forbidden(format!(
                "missing permission {}:{}",
                R::RESOURCE,
                A::ACTION
            )));
        }
        Ok(Self {
            actor,
            origin,
            path,
            client,
            permission: PhantomData,
        })
    }
}

impl<R: ResourceMarker, A: ActionMarker> Authorized<R, A> {
    /// The request's connection, for reads.
    pub fn client(&mut self) -> &mut PooledClient {
        &mut self.client
    }

    /// Runs `change` in a transaction and writes its audit row in the same
    /// transaction, last, then commits both. When `change` fails with a
    /// client error (validation, not found, conflict, a grant beyond the
    /// admin's own) nothing of it is kept and the refused attempt is
    /// recorded in a transaction of its own; `resource_id` names the target
    /// for that row.
    pub async fn mutate<T>(
        &mut self,
        resource_id: &str,
        change: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> ApiResult<Change<T>>,
    ) -> ApiResult<T> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(ApiError::internal("starting a transaction"))?;
        match change(&tx).await {
            Ok(Change {
                resource_id,
                before,
                after,
                output,
            }) => {
                Entry::success(
                    &self.actor.recorder(),
                    &self.origin,
                    A::ACTION,
                    R::RESOURCE,
                    resource_id,
                    before,
                    after,
                )
                .insert(&*tx)
                .await
                .map_err(ApiError::internal("writing the audit row"))?;
                tx.commit()
                    .await
                    .map_err(ApiError::internal("committing the change"))?;
                Ok(output)
            }
            Err(error) => {
                let _ = tx.rollback().await;
                if error.status().is_client_error() {
                    let refusal = Entry::refused(
                        &self.actor.recorder(),
                        &self.origin,
                        A::ACTION,
                        R::RESOURCE,
                        resource_id,
                        &match error.field() {
                            Some(field) => format!("{field}: {error}"),
                            None => error.to_string(),
                        },
                    );
                    if let Err(cause) =
                        crate::audit::record_refusal(&mut self.client, &refusal).await
                    {
                        tracing::error!(error = ?cause, "could not record a refused change");
                    }
                }
                Err(error)
            }
        }
    }
}
