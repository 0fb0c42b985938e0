//! `/api/admin/users`: who is an admin, with which role and permissions.
//!
//! Rules beyond the route permissions:
//! - nobody grants more than they hold: the target's effective permissions
//!   after the change must be a subset of the acting admin's;
//! - nobody changes or revokes an admin who holds more than they do;
//! - the last super_admin cannot be demoted or revoked.

use access::rbac::{self, Action, Permissions, Resource, Role};
use access::{Authorized, Change, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery},
    http::StatusCode,
};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};

use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use utoipa::{IntoParams, ToSchema};

use platform::paging::{self, Page};

const SELECT_USER: &str = r#"SELECT u."id", u."email", u."name", a."role", a."permissions", a."createdAt", a."updatedAt"
    FROM "users" u LEFT JOIN "admin_users" a ON a."userId" = u."id""#;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `user` for someone with no admin grant.
    pub role: String,
    /// The stored overrides, `null` for the role's defaults:
    /// `[{"resource", "actions": [...]}]`.
    pub permissions: Value,
    /// What the role and overrides add up to: resource to actions.
    pub effective_permissions: Value,
    /// UTC, ISO 8601 without an offset; `null` for someone with no grant.
    #[schema(value_type = Option<String>)]
    pub admin_since: Option<chrono::NaiveDateTime>,
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<chrono::NaiveDateTime>,
}

impl AdminUser {
    fn from_row(row: &Row) -> Self {
        let stored_role: Option<String> = row.get(3);
        let permissions: Option<Value> = row.get(4);
        let role = stored_role
            .as_deref()
            .and_then(Role::parse)
            .unwrap_or(Role::User);
        Self {
            user_id: row.get(0),
            email: row.get(1),
            name: row.get(2),
            role: stored_role.unwrap_or_else(|| Role::User.as_str().to_owned()),
            effective_permissions: Permissions::from_stored(role, permissions.as_ref()).to_json(),
            permissions: permissions.unwrap_or(Value::Null),
            admin_since: row.get(5),
            updated_at: row.get(6),
        }
    }

    fn is_admin(&self) -> bool {
        self.admin_since.is_some()
    }

    fn effective(&self) -> Permissions {
        let role = Role::parse(&self.role).unwrap_or(Role::User);
        Permissions::from_stored(role, Some(&self.permissions))
    }

    fn audit_view(&self) -> Value {
        if self.is_admin() {
            json!({"role": self.role, "permissions": self.permissions})
        } else {
            Value::Null
        }
    }
}

async fn find(client: &impl GenericClient, user_id: &str) -> ApiResult<Option<AdminUser>> {
    let row = client
        .query_opt(&format!(r#"{SELECT_USER} WHERE u."id" = $1"#), &[&user_id])
        .await
        .map_err(ApiError::internal("reading a user"))?;
    Ok(row.as_ref().map(AdminUser::from_row))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    search: Option<String>,
    role: Option<String>,
    /// `admins` (default): users with an admin grant; `all`: every user, to
    /// find one to grant.
    scope: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /api/admin/users?search=&role=&scope=admins|all&limit=&cursor=`,
/// ordered by email then id.
/// A page of users, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct UserPage {
    users: Vec<AdminUser>,
    /// Continues after the last user; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_users",
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "List admins (or all users)",
    description = "By email then id; `scope=all` lists every user, to find one to grant. Needs `users:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of users.", body = UserPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Users, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after: Option<(String, String)> = paging::decode(query.cursor.as_deref())?;
    let admins_only = match query.scope.as_deref() {
        None | Some("admins") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::invalid_field("scope", "must be admins or all")),
    };
    if let Some(role) = &query.role {
        Role::parse(role).ok_or_else(|| {
            ApiError::invalid_field("role", "must be super_admin, admin, moderator or user")
        })?;
    }
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    let (after_email, after_id) = after.unzip();
    let client = auth.client();
    let rows = client
        .query(
            &format!(
                r#"{SELECT_USER}
                   WHERE ($1::bool IS FALSE OR a."id" IS NOT NULL)
                     AND ($2::text IS NULL OR coalesce(a."role", 'user') = $2)
                     AND ($3::text IS NULL OR u."email" ILIKE $3 OR u."name" ILIKE $3)
                     AND ($4::text IS NULL OR (coalesce(u."email", ''), u."id") > ($4, $5::text))
                   ORDER BY coalesce(u."email", ''), u."id"
                   LIMIT $6"#
            ),
            &[
                &admins_only,
                &query.role,
                &pattern,
                &after_email,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing users"))?;
    let users: Vec<AdminUser> = rows.iter().map(AdminUser::from_row).collect();
    Ok(Json(Page::new("users", users, limit, |u| {
        (u.email.clone().unwrap_or_default(), u.user_id.clone())
    })))
}

/// `GET /api/admin/users/{userId}`.
#[utoipa::path(
    operation_id = "get_user",
    get,
    path = "/api/admin/users/{userId}",
    tag = "admin",
    summary = "Get a user and their admin grant",
    params(("userId" = String, Path, description = "`users.id`.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The user.", body = AdminUser),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Users, action::Read>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    let client = auth.client();
    find(&***client, &user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id:?}")))
}

/// Makes an existing user (by `userId` or `email`, not both) an admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Grant {
    user_id: Option<String>,
    email: Option<String>,
    #[schema(value_type = Role)]
    role: String,
    /// Overrides, each resource and each action of an entry at most once;
    /// `null` or absent for the role's defaults.
    #[serde(default)]
    #[schema(value_type = Option<Vec<rbac::Override>>)]
    permissions: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Update {
    /// Demoting to user needs users:delete.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Absent: unchanged; `null`: back to the role's defaults.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<rbac::Override>>)]
    permissions: Option<Value>,
}

/// Distinguishes `"permissions": null` (Some(Null)) from no field (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn parse_role(text: &str) -> ApiResult<Role> {
    Role::parse(text).ok_or_else(|| {
        ApiError::invalid_field("role", "must be super_admin, admin, moderator or user")
    })
}

fn parse_permissions(value: &Value) -> ApiResult<Option<Value>> {
    let overrides = rbac::parse_submitted(value)
        .map_err(|problem| ApiError::invalid_field(problem.field, problem.message))?;
    Ok((!value.is_null()).then(|| serde_json::to_value(overrides).expect("overrides serialise")))
}

/// Refuses a grant beyond the acting admin's own.
fn within_own(actor: &access::Actor, role: Role, permissions: Option<&Value>) -> ApiResult<()> {
    if role == Role::SuperAdmin
        && !(actor.role == Role::SuperAdmin && actor.permissions.is_everything())
    {
        return Err(ApiError::Forbidden(
            "only an unrestricted super_admin grants the super_admin role".into(),
        ));
    }
    let granted = Permissions::from_stored(role, permissions);
    let beyond = granted.beyond(&actor.permissions);
    if beyond.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "cannot grant permissions you do not hold: {}",
            beyond.join(", ")
        )))
    }
}

/// Demoting an admin to `user`, or to a role and overrides that leave no
/// permission at all, removes their admin access as a revocation does, and
/// needs what a revocation needs: `users:delete`, not only `users:update`.
fn removal_allowed(
    actor: &access::Actor,
    role: Role,
    permissions: Option<&Value>,
) -> ApiResult<()> {
    let removes_access =
        role == Role::User || Permissions::from_stored(role, permissions) == Permissions::none();
    if removes_access && !actor.permissions.allows(Resource::Users, Action::Delete) {
        return Err(ApiError::Forbidden(
            "removing someone's admin access, by revocation or by demotion to user, requires users:delete"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses to touch an admin who holds more than the acting one.
fn outranked_by(actor: &access::Actor, target: &AdminUser) -> ApiResult<()> {
    let beyond = target.effective().beyond(&actor.permissions);
    if beyond.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{} holds permissions you do not: {}",
            target.user_id,
            beyond.join(", ")
        )))
    }
}

/// Locks `user_id`'s admin row together with every super_admin row, always
/// in `userId` order so that two changes cannot deadlock, before anything
/// about them is read. Two super_admins revoking each other at once are
/// thereby serialised, and the second sees the first's change.
async fn lock_admins(client: &impl GenericClient, user_id: &str) -> ApiResult<Vec<(String, bool)>> {
    let rows = client
        .query(
            r#"SELECT "userId", "role", "permissions" FROM "admin_users"
               WHERE "role" = 'super_admin' OR "userId" = $1
               ORDER BY "userId" FOR UPDATE"#,
            &[&user_id],
        )
        .await
        .map_err(ApiError::internal("locking admin rows"))?;
    Ok(rows
        .iter()
        .map(|row| {
            let role = row.get::<_, String>(1);
            let permissions: Option<Value> = row.get(2);
            let unrestricted = role == Role::SuperAdmin.as_str()
                && Permissions::from_stored(Role::SuperAdmin, permissions.as_ref()).is_everything();
            (row.get(0), unrestricted)
        })
        .collect())
}

/// The admin a change or revocation targets, read after [`lock_admins`]
/// (whose rows are returned too) and refused when the acting admin is
/// outranked.
async fn admin_to_change(
    client: &impl GenericClient,
    actor: &access::Actor,
    user_id: &str,
) -> ApiResult<(Vec<(String, bool)>, AdminUser)> {
    let locked = lock_admins(client, user_id).await?;
    let target = find(client, user_id)
        .await?
        .filter(AdminUser::is_admin)
        .ok_or_else(|| ApiError::NotFound(format!("admin {user_id:?}")))?;
    outranked_by(actor, &target)?;
    Ok((locked, target))
}

/// Refuses a change that would leave no unrestricted super_admin: someone
/// must always be able to manage everything, including the admins.
/// `after` is what `target` holds after the change (`None`: revoked).
fn keep_one_super_admin(
    locked: &[(String, bool)],
    target: &str,
    after: Option<&Permissions>,
) -> ApiResult<()> {
    let target_unrestricted = locked
        .iter()
        .any(|(id, unrestricted)| id == target && *unrestricted);
    let others = locked
        .iter()
        .filter(|(id, unrestricted)| id != target && *unrestricted)
        .count();
    let still_unrestricted = after.is_some_and(Permissions::is_everything);
    if target_unrestricted && !still_unrestricted && others == 0 {
        return Err(ApiError::Conflict {
            message: "the last unrestricted super_admin cannot be demoted, restricted or revoked"
                .into(),
            field: None,
        });
    }
    Ok(())
}

/// `POST /api/admin/users`: `{"userId" | "email", "role", "permissions"?}`
/// makes an existing user an admin.
#[utoipa::path(
    operation_id = "grant_admin",
    post,
    path = "/api/admin/users",
    tag = "admin",
    summary = "Grant admin to an existing user",
    description = "Nobody grants beyond their own permissions; only an unrestricted super_admin grants super_admin. Audited. Needs `users:create`.",
    request_body = Grant,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new admin.", body = AdminUser),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn grant(
    mut auth: Authorized<resource::Users, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AdminUser>)> {
    let actor = auth.actor.clone();
    // For the refusal row, the user asked for, when the body says.
    let requested: Option<Value> = serde_json::from_slice(&body).ok();
    let target_hint = requested
        .as_ref()
        .and_then(|b| b.get("userId").or_else(|| b.get("email")))
        .and_then(Value::as_str)
        .map(|t| t.chars().take(255).collect::<String>())
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let created = auth
        .mutate(&target_hint, async |tx| {
            let grant: Grant = platform::json::parse(&body)?;
            let role = parse_role(&grant.role)?;
            let permissions = parse_permissions(&grant.permissions)?;
            within_own(&actor, role, permissions.as_ref())?;
            let rows = match (&grant.user_id, &grant.email) {
                (Some(id), None) => tx
                    .query(&format!(r#"{SELECT_USER} WHERE u."id" = $1"#), &[id])
                    .await,
                (None, Some(email)) => tx
                    .query(
                        &format!(r#"{SELECT_USER} WHERE lower(u."email") = lower($1) LIMIT 2"#),
                        &[email],
                    )
                    .await,
                _ => {
                    return Err(ApiError::invalid_field(
                        "userId",
                        "or email must be given, not both",
                    ));
                }
            }
            .map_err(ApiError::internal("finding the user"))?;
            // `users_email_key` is case-sensitive; two users may differ only in case.
            if rows.len() > 1 {
                return Err(ApiError::Conflict {
                    message: "several users have this email in different cases; grant by userId".into(),
                    field: Some("email".into()),
                });
            }
            let target = rows
                .first()
                .map(AdminUser::from_row)
                .ok_or_else(|| ApiError::NotFound("user".into()))?;
            if target.is_admin() {
                return Err(ApiError::Conflict {
                    message: format!("{} is already an admin; use PATCH to change", target.user_id),
                    field: Some("userId".into()),
                });
            }
            let now = platform::clock::now_millis();
            let inserted = tx
                .execute(
                    r#"INSERT INTO "admin_users" ("id", "userId", "role", "permissions", "createdAt", "updatedAt")
                       VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT ("userId") DO NOTHING"#,
                    &[&platform::ids::new_id(), &target.user_id, &role.as_str(), &permissions, &now],
                )
                .await
                .map_err(ApiError::internal("granting admin"))?;
            if inserted != 1 {
                // Granted by a concurrent request since it was read.
                return Err(ApiError::Conflict {
                    message: format!("{} is already an admin; use PATCH to change", target.user_id),
                    field: Some("userId".into()),
                });
            }
            let after = find(&**tx, &target.user_id)
                .await?
                .ok_or_else(|| ApiError::NotFound("user".into()))?;
            Ok(Change {
                resource_id: target.user_id.clone(),
                before: target.audit_view(),
                after: after.audit_view(),
                output: after,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `PATCH /api/admin/users/{userId}`: `{"role"?, "permissions"?}`.
#[utoipa::path(
    operation_id = "update_user",
    patch,
    path = "/api/admin/users/{userId}",
    tag = "admin",
    summary = "Change an admin's role or overrides",
    description = "Nobody changes an admin who holds more than they do; the last unrestricted super_admin stays; demoting to user needs users:delete. Audited. Needs `users:update`.",
    params(("userId" = String, Path, description = "`users.id`.")),
    request_body = Update,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The admin as they now are.", body = AdminUser),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn update(
    mut auth: Authorized<resource::Users, action::Update>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AdminUser>> {
    let actor = auth.actor.clone();
    let updated = auth
        .mutate(&user_id, async |tx| {
            let update: Update = platform::json::parse(&body)?;
            let (locked, target) = admin_to_change(&**tx, &actor, &user_id).await?;
            let role = match &update.role {
                Some(text) => parse_role(text)?,
                None => Role::parse(&target.role).unwrap_or(Role::User),
            };
            let permissions = match &update.permissions {
                Some(value) => parse_permissions(value)?,
                None => (!target.permissions.is_null()).then(|| target.permissions.clone()),
            };
            within_own(&actor, role, permissions.as_ref())?;
            removal_allowed(&actor, role, permissions.as_ref())?;
            let after = if role == Role::SuperAdmin {
                Permissions::from_stored(role, permissions.as_ref())
            } else {
                Permissions::none()
            };
            keep_one_super_admin(&locked, &user_id, Some(&after))?;
            tx.execute(
                r#"UPDATE "admin_users" SET "role" = $2, "permissions" = $3, "updatedAt" = $4 WHERE "userId" = $1"#,
                &[&user_id, &role.as_str(), &permissions, &platform::clock::now_millis()],
            )
            .await
            .map_err(ApiError::internal("updating the admin"))?;
            let after = find(&**tx, &user_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("admin {user_id:?}")))?;
            Ok(Change {
                resource_id: user_id.clone(),
                before: target.audit_view(),
                after: after.audit_view(),
                output: after,
            })
        })
        .await?;
    Ok(Json(updated))
}

/// `DELETE /api/admin/users/{userId}`: revokes the admin grant; the user
/// stays a user of the site.
#[utoipa::path(
    operation_id = "revoke_admin",
    delete,
    path = "/api/admin/users/{userId}",
    tag = "admin",
    summary = "Revoke an admin grant",
    description = "The user stays a user of the site. Audited. Needs `users:delete`.",
    params(("userId" = String, Path, description = "`users.id`.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked."),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub async fn revoke(
    mut auth: Authorized<resource::Users, action::Delete>,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor.clone();
    auth.mutate(&user_id, async |tx| {
        let (locked, target) = admin_to_change(&**tx, &actor, &user_id).await?;
        keep_one_super_admin(&locked, &user_id, None)?;
        tx.execute(
            r#"DELETE FROM "admin_users" WHERE "userId" = $1"#,
            &[&user_id],
        )
        .await
        .map_err(ApiError::internal("revoking the admin"))?;
        Ok(Change {
            resource_id: user_id.clone(),
            before: target.audit_view(),
            after: Value::Null,
            output: (),
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
