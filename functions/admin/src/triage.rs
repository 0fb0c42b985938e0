//! `/api/admin/errors`: triage of the browser error groups the intake
//! records.
//!
//! The intake keeps one `error_logs` row per group and counts occurrences
//! on it; rows written by the older front end are one per occurrence. A
//! group's "recent occurrences" are therefore the other rows sharing its
//! fingerprint, newest first.

use access::{Authorized, Change, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery},
};
use chrono::{DateTime, NaiveDateTime, Utc};
use platform::{ApiError, ApiResult, clock};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::{GenericClient, Row};

use platform::api_doc::{
    Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use utoipa::{IntoParams, ToSchema};

use platform::paging::{self, Page};

const COLUMNS: &str = r#""id", "message", "stack", "errorType", "url", "userId", "sessionId", "userAgent", "browser",
    "os", "severity", "resolved", "resolvedAt", "resolvedBy", "notes", "fingerprint", "count", "timestamp""#;
const OCCURRENCES_SHOWN: i64 = 20;
pub const MAX_NOTES_CHARS: usize = 5000;
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    id: String,
    message: String,
    stack: Option<String>,
    error_type: Option<String>,
    url: String,
    user_id: Option<String>,
    session_id: String,
    user_agent: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    severity: String,
    resolved: bool,
    /// UTC, ISO 8601 without an offset.
    #[schema(value_type = Option<String>)]
    resolved_at: Option<NaiveDateTime>,
    resolved_by: Option<String>,
    notes: Option<String>,
    fingerprint: Option<String>,
    count: i32,
    /// Last seen.
    /// Last seen: UTC, ISO 8601 without an offset.
    #[schema(value_type = String)]
    timestamp: NaiveDateTime,
}

impl ErrorGroup {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            message: row.get(1),
            stack: row.get(2),
            error_type: row.get(3),
            url: row.get(4),
            user_id: row.get(5),
            session_id: row.get(6),
            user_agent: row.get(7),
            browser: row.get(8),
            os: row.get(9),
            severity: row.get(10),
            resolved: row.get(11),
            resolved_at: row.get(12),
            resolved_by: row.get(13),
            notes: row.get(14),
            fingerprint: row.get(15),
            count: row.get(16),
            timestamp: row.get(17),
        }
    }

    fn triage_view(&self) -> Value {
        serde_json::json!({
            "resolved": self.resolved,
            "resolvedAt": self.resolved_at,
            "resolvedBy": self.resolved_by,
            "notes": self.notes,
        })
    }
}

async fn find(client: &impl GenericClient, id: &str) -> ApiResult<ErrorGroup> {
    read(client, id, "").await
}

/// The group, locked until the transaction ends, so concurrent triages
/// (and the intake's regression reopening) apply one after the other and
/// each audit row's "before" is what the change replaced.
async fn find_locked(client: &impl GenericClient, id: &str) -> ApiResult<ErrorGroup> {
    read(client, id, "FOR UPDATE").await
}

async fn read(client: &impl GenericClient, id: &str, locking: &str) -> ApiResult<ErrorGroup> {
    client
        .query_opt(
            &format!(r#"SELECT {COLUMNS} FROM "error_logs" WHERE "id" = $1 {locking}"#),
            &[&id],
        )
        .await
        .map_err(ApiError::internal("reading an error group"))?
        .as_ref()
        .map(ErrorGroup::from_row)
        .ok_or_else(|| ApiError::NotFound(format!("error group {id:?}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    severity: Option<String>,
    resolved: Option<bool>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// Text searched in the message, type and URL.
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /api/admin/errors?severity=&resolved=&from=&to=&q=&limit=&cursor=`,
/// most recently seen first.
/// A page of error groups, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ErrorPage {
    errors: Vec<ErrorGroup>,
    /// Continues after the last group; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_errors",
    get,
    path = "/api/admin/errors",
    tag = "admin",
    summary = "List error groups",
    description = "Most recently seen first, filtered; keyset paging with `limit` and the `nextCursor` of the previous page. Needs `errors:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of groups.", body = ErrorPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Errors, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    if let Some(severity) = &query.severity
        && !SEVERITIES.contains(&severity.as_str())
    {
        return Err(ApiError::invalid_field(
            "severity",
            format!("must be one of {}", SEVERITIES.join(", ")),
        ));
    }
    let after = paging::time_cursor(query.cursor.as_deref())?;
    let (after_time, after_id) = after.unzip();
    let from = paging::time("from", query.from)?;
    let to = paging::time("to", query.to)?;
    let pattern = paging::search_pattern("q", query.q.as_deref())?;
    let client = auth.client();
    let rows = client
        .query(
            &format!(
                r#"SELECT {COLUMNS} FROM "error_logs"
                   WHERE ($1::text IS NULL OR "severity" = $1)
                     AND ($2::bool IS NULL OR "resolved" = $2)
                     AND ($3::timestamp IS NULL OR "timestamp" >= $3)
                     AND ($4::timestamp IS NULL OR "timestamp" < $4)
                     AND ($5::text IS NULL OR "message" ILIKE $5 OR "errorType" ILIKE $5 OR "url" ILIKE $5)
                     AND ($6::timestamp IS NULL OR ("timestamp", "id") < ($6, $7::text))
                   ORDER BY "timestamp" DESC, "id" DESC
                   LIMIT $8"#
            ),
            &[
                &query.severity,
                &query.resolved,
                &from,
                &to,
                &pattern,
                &after_time,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing error groups"))?;
    let groups = rows.iter().map(ErrorGroup::from_row).collect();
    Ok(Json(Page::new(
        "errors",
        groups,
        limit,
        |g: &ErrorGroup| (g.timestamp, g.id.clone()),
    )))
}

/// An error group and other rows with its fingerprint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ErrorGroupDetail)]
pub struct ErrorDetail {
    #[serde(flatten)]
    group: ErrorGroup,
    recent_occurrences: Vec<ErrorGroup>,
}

/// `GET /api/admin/errors/{id}`: the group and up to 20 other rows with its
/// fingerprint.
#[utoipa::path(
    operation_id = "get_error",
    get,
    path = "/api/admin/errors/{id}",
    tag = "admin",
    summary = "Get an error group",
    description = "The group and up to 20 other rows with its fingerprint. Needs `errors:read`.",
    params(("id" = String, Path, description = "The group's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The group.", body = ErrorDetail),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Errors, action::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<ErrorDetail>> {
    let client = auth.client();
    let group = find(&***client, &id).await?;
    let recent_occurrences = match &group.fingerprint {
        None => Vec::new(),
        Some(fingerprint) => client
            .query(
                &format!(
                    r#"SELECT {COLUMNS} FROM "error_logs" WHERE "fingerprint" = $1 AND "id" <> $2
                       ORDER BY "timestamp" DESC LIMIT $3"#
                ),
                &[fingerprint, &id, &OCCURRENCES_SHOWN],
            )
            .await
            .map_err(ApiError::internal("reading occurrences"))?
            .iter()
            .map(ErrorGroup::from_row)
            .collect(),
    };
    Ok(Json(ErrorDetail {
        group,
        recent_occurrences,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Triage {
    resolved: bool,
    notes: Option<String>,
}

/// `PATCH /api/admin/errors/{id}`: `{"resolved": true|false, "notes"?}`.
/// Resolving records who and when; reopening clears both. Notes are
/// appended, dated and signed, never overwritten.
#[utoipa::path(
    operation_id = "triage_error",
    patch,
    path = "/api/admin/errors/{id}",
    tag = "admin",
    summary = "Resolve or reopen an error group",
    description = "Resolving records who and when; reopening clears both. Notes are appended, dated and signed, never overwritten. Audited. Needs `errors:update`.",
    params(("id" = String, Path, description = "The group's id.")),
    request_body = Triage,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The group as it now is.", body = ErrorGroup),
        Invalid, Unauthenticated, Forbidden, NotFound, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn triage(
    mut auth: Authorized<resource::Errors, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ErrorGroup>> {
    let who = if auth.actor.email.is_empty() {
        auth.actor.user_id.clone()
    } else {
        auth.actor.email.clone()
    };
    let updated = auth
        .mutate(&id, async |tx| {
            let triage: Triage = platform::json::parse(&body)?;
            if triage
                .notes
                .as_ref()
                .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
            {
                return Err(ApiError::invalid_field(
                    "notes",
                    format!("must be at most {MAX_NOTES_CHARS} characters"),
                ));
            }
            let before = find_locked(&**tx, &id).await?;
            let now = clock::now_millis();
            let note = triage
                .notes
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    format!(
                        "[{} UTC, {who}, {}] {n}",
                        now.format("%Y-%m-%d %H:%M"),
                        if triage.resolved {
                            "resolved"
                        } else {
                            "reopened"
                        }
                    )
                });
            tx.execute(
                r#"UPDATE "error_logs" SET "resolved" = $2,
                       "resolvedAt" = CASE WHEN $2 THEN $3::timestamp ELSE NULL END,
                       "resolvedBy" = CASE WHEN $2 THEN $4::text ELSE NULL END,
                       "notes" = CASE WHEN $5::text IS NULL THEN "notes"
                                      WHEN "notes" IS NULL OR "notes" = '' THEN $5
                                      ELSE "notes" || E'\n' || $5 END
                   WHERE "id" = $1"#,
                &[&id, &triage.resolved, &now, &who, &note],
            )
            .await
            .map_err(ApiError::internal("updating the error group"))?;
            let after = find(&**tx, &id).await?;
            Ok(Change {
                resource_id: id.clone(),
                before: before.triage_view(),
                after: after.triage_view(),
                output: after,
            })
        })
        .await?;
    Ok(Json(updated))
}
