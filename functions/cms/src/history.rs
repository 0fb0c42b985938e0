//! Version history from the audit trail: every successful change of a
//! deal, destination or email template already has its audit row holding
//! the thing as it was before and after, in the same transaction as the
//! change ([`access::Authorized::mutate`]), so the trail *is* the history,
//! and it cannot miss a change or hold one that did not happen.
//!
//! A restore reads the chosen version back and applies it as an ordinary
//! update, itself audited; its `after` says which change it restored
//! ([`RESTORED_FROM`]).

use access::Resource;
use chrono::NaiveDateTime;
use platform::paging::{self, Page};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};

/// The key a restore adds to its audit row's `after`: the audit id of the
/// change whose version it brought back. Not part of the version itself.
pub const RESTORED_FROM: &str = "restoredFrom";

/// One change of the thing, as the audit trail recorded it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// The audit row's id: what a restore names.
    pub audit_id: String,
    /// `create`, `update` (a restore is one) or `delete`.
    pub action: String,
    pub user_id: String,
    pub user_email: String,
    pub user_role: String,
    #[schema(value_type = String)]
    pub timestamp: NaiveDateTime,
    /// The thing before the change (`null` for a create).
    #[schema(value_type = Object)]
    pub before: Value,
    /// The thing after the change (`{"deleted": true}` for a delete).
    #[schema(value_type = Object)]
    pub after: Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of versions, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct VersionPage {
    versions: Vec<Version>,
    next_cursor: Option<String>,
}

/// The successful changes of `resource` `resource_id`, newest first, by the
/// index on ("resource", "resourceId").
pub async fn list(
    client: &impl GenericClient,
    resource: Resource,
    resource_id: &str,
    query: Option<&str>,
) -> ApiResult<Page> {
    let query: HistoryQuery = platform::json::parse_query(query)?;
    let limit = paging::limit(query.limit)?;
    let after = paging::time_cursor(query.cursor.as_deref())?;
    let (after_time, after_id) = after.unzip();
    let rows = client
        .query(
            r#"SELECT "id", "action", "userId", "userEmail", "userRole", "timestamp", "changes"
               FROM "audit_logs"
               WHERE "resource" = $1 AND "resourceId" = $2 AND "success"
                 AND ($3::timestamp IS NULL OR ("timestamp", "id") < ($3, $4::text))
               ORDER BY "timestamp" DESC, "id" DESC
               LIMIT $5"#,
            &[
                &resource.as_str(),
                &resource_id,
                &after_time,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("reading the history"))?;
    let versions: Vec<Version> = rows
        .iter()
        .map(|row| {
            let changes: Option<Value> = row.get(6);
            let changes = changes.unwrap_or(Value::Null);
            Version {
                audit_id: row.get(0),
                action: row.get(1),
                user_id: row.get(2),
                user_email: row.get(3),
                user_role: row.get(4),
                timestamp: row.get(5),
                before: changes.get("before").cloned().unwrap_or(Value::Null),
                after: changes.get("after").cloned().unwrap_or(Value::Null),
            }
        })
        .collect();
    Ok(Page::new("versions", versions, limit, |v| {
        (v.timestamp, v.audit_id.clone())
    }))
}

/// What a restore names: a change of the thing, and which side of it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestoreRequest {
    /// The audit id of a change in the thing's history.
    pub audit_id: String,
    /// The version as the change left it (`after`, the default) or as it
    /// found it (`before`).
    #[serde(default)]
    pub state: Side,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Before,
    #[default]
    After,
}

/// The version of `resource` `resource_id` a restore asks for, as the
/// admin view wrote it: a 404 naming `auditId` when it is not a change of
/// this thing, a 400 naming it when that side of the change holds no
/// version (before a create, after a delete).
pub async fn version(
    client: &impl GenericClient,
    resource: Resource,
    resource_id: &str,
    request: &RestoreRequest,
) -> ApiResult<Value> {
    let row = client
        .query_opt(
            r#"SELECT "changes" FROM "audit_logs"
               WHERE "id" = $1 AND "resource" = $2 AND "resourceId" = $3 AND "success""#,
            &[&request.audit_id, &resource.as_str(), &resource_id],
        )
        .await
        .map_err(ApiError::internal("reading a version"))?
        .ok_or_else(|| {
            ApiError::no_such(
                "auditId",
                format!("names no change of this {}", resource.as_str()),
            )
        })?;
    let changes: Option<Value> = row.get(0);
    let side = match request.state {
        Side::Before => "before",
        Side::After => "after",
    };
    let mut version = changes
        .as_ref()
        .and_then(|c| c.get(side))
        .cloned()
        .filter(|v| v.get("id").is_some())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "auditId",
                format!("names a change that left no version {side} it (a create or a delete)"),
            )
        })?;
    if let Some(object) = version.as_object_mut() {
        object.remove(RESTORED_FROM);
    }
    Ok(version)
}

/// `after` of a restore's audit row: the version, and where it came from.
pub fn restored(mut after: Value, audit_id: &str) -> Value {
    if let Some(object) = after.as_object_mut() {
        object.insert(RESTORED_FROM.into(), Value::from(audit_id));
    }
    after
}
