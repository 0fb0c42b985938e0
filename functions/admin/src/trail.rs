//! `/api/admin/audit`: reading, exporting and verifying the audit trail.

use access::audit::{self, Verification};
use access::{Authorized, action, resource};
use axum::{
    Json,
    extract::RawQuery,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDateTime, Utc};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;

use platform::api_doc::{Forbidden, Invalid, Unauthenticated, Unavailable};
use utoipa::{IntoParams, ToSchema};

use crate::csv_export::CsvPage;
use platform::paging::{self, Page};

/// Most rows one CSV export holds.
pub const EXPORT_PAGE_ROWS: i64 = 5_000;
const EXPORT_PAGE_ROWS_USIZE: usize = 5_000;
/// The budget of one CSV export, counted as the bytes the body takes once
/// Lambda's response JSON escapes it, and checked before each row is added.
pub const EXPORT_PAGE_BYTES: usize = paging::MAX_PAGE_BYTES;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    id: String,
    user_id: String,
    user_email: String,
    user_role: String,
    action: String,
    resource: String,
    resource_id: String,
    changes: Option<Value>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    success: bool,
    error_message: Option<String>,
    /// UTC, ISO 8601 without an offset.
    #[schema(value_type = String)]
    timestamp: NaiveDateTime,
}

impl AuditRow {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            user_id: row.get(1),
            user_email: row.get(2),
            user_role: row.get(3),
            action: row.get(4),
            resource: row.get(5),
            resource_id: row.get(6),
            changes: row.get(7),
            ip_address: row.get(8),
            user_agent: row.get(9),
            request_id: row.get(10),
            success: row.get(11),
            error_message: row.get(12),
            timestamp: row.get(13),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct Filters {
    user_id: Option<String>,
    resource: Option<String>,
    resource_id: Option<String>,
    action: Option<String>,
    success: Option<bool>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The filtered rows, newest first, starting after `after`.
async fn query(
    client: &platform::db::PooledClient,
    filters: &Filters,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> ApiResult<Vec<AuditRow>> {
    for (field, value) in [
        ("userId", &filters.user_id),
        ("resource", &filters.resource),
        ("resourceId", &filters.resource_id),
        ("action", &filters.action),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
            return Err(ApiError::invalid_field(
                field,
                "must be at most 255 characters",
            ));
        }
    }
    let from = paging::time("from", filters.from)?;
    let to = paging::time("to", filters.to)?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::invalid_field("to", "must not be before from"));
    }
    let (after_time, after_id) = after.unzip();
    let rows = client
        .query(
            r#"SELECT "id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "changes",
                      "ipAddress", "userAgent", "requestId", "success", "errorMessage", "timestamp"
               FROM "audit_logs"
               WHERE ($1::text IS NULL OR "userId" = $1)
                 AND ($2::text IS NULL OR "resource" = $2)
                 AND ($3::text IS NULL OR "resourceId" = $3)
                 AND ($4::text IS NULL OR "action" = $4)
                 AND ($5::bool IS NULL OR "success" = $5)
                 AND ($6::timestamp IS NULL OR "timestamp" >= $6)
                 AND ($7::timestamp IS NULL OR "timestamp" < $7)
                 AND ($8::timestamp IS NULL OR ("timestamp", "id") < ($8, $9::text))
               ORDER BY "timestamp" DESC, "id" DESC
               LIMIT $10"#,
            &[
                &filters.user_id,
                &filters.resource,
                &filters.resource_id,
                &filters.action,
                &filters.success,
                &from,
                &to,
                &after_time,
                &after_id,
                &limit,
            ],
        )
        .await
        .map_err(ApiError::internal("reading the audit trail"))?;
    Ok(rows.iter().map(AuditRow::from_row).collect())
}

/// A page of audit rows, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct AuditPage {
    entries: Vec<AuditRow>,
    /// Continues after the last row; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/admin/audit?userId=&resource=&resourceId=&action=&success=&from=&to=&limit=&cursor=`.
#[utoipa::path(
    operation_id = "list_audit",
    get,
    path = "/api/admin/audit",
    tag = "admin",
    summary = "Read the audit trail",
    description = "Newest first, filtered; keyset paging. A field of a row over 64 KiB is cut (text) or replaced by `{omitted, bytes}`. Needs `audit_logs:read`.",
    params(Filters),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of rows.", body = AuditPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::AuditLogs, action::Read>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page>> {
    let filters: Filters = platform::json::parse_query(raw.as_deref())?;
    let limit = paging::limit(filters.limit)?;
    let after = paging::time_cursor(filters.cursor.as_deref())?;
    let rows = query(auth.client(), &filters, after, limit + 1).await?;
    Ok(Json(Page::new("entries", rows, limit, |r: &AuditRow| {
        (r.timestamp, r.id.clone())
    })))
}

/// `GET /api/admin/audit/export` with the same filters (and `cursor`): CSV,
/// newest first. A Lambda response is capped at 6 MB, so one export holds
/// at most [`EXPORT_PAGE_ROWS`] rows or [`EXPORT_PAGE_BYTES`] bytes; when
/// more remain, `x-next-cursor` continues where it stopped.
#[utoipa::path(
    operation_id = "export_audit",
    get,
    path = "/api/admin/audit/export",
    tag = "admin",
    summary = "Export the audit trail as CSV",
    description = "The filters of the list, newest first, at most 5,000 rows or 4 MiB once JSON-escaped (Lambda's response limit is 6 MB); `x-next-cursor` continues. Every cell is defused against spreadsheet formulas and cut at 64 KiB. Needs `audit_logs:export`.",
    params(Filters),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "CSV with a header row.", content_type = "text/csv", body = String,
         headers(("x-next-cursor" = String, description = "The cursor of the next export, when rows remain."))),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn export(
    mut auth: Authorized<resource::AuditLogs, action::Export>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let filters: Filters = platform::json::parse_query(raw.as_deref())?;
    if filters.limit.is_some() {
        return Err(ApiError::invalid_field(
            "limit",
            "is not taken by an export, which is as large as a response may be; follow x-next-cursor for the rest",
        ));
    }
    let after = paging::time_cursor(filters.cursor.as_deref())?;
    let rows = query(auth.client(), &filters, after, EXPORT_PAGE_ROWS + 1).await?;
    let mut page = CsvPage::new(
        &[
            "id",
            "timestamp",
            "userId",
            "userEmail",
            "userRole",
            "action",
            "resource",
            "resourceId",
            "success",
            "errorMessage",
            "ipAddress",
            "userAgent",
            "requestId",
            "changes",
        ],
        EXPORT_PAGE_BYTES,
    )
    .map_err(ApiError::internal("writing CSV"))?;
    let mut written = 0;
    for row in rows.iter().take(EXPORT_PAGE_ROWS_USIZE) {
        let timestamp = row.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let changes = row
            .changes
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        let fits = page
            .push([
                row.id.as_str(),
                &timestamp,
                &row.user_id,
                &row.user_email,
                &row.user_role,
                &row.action,
                &row.resource,
                &row.resource_id,
                if row.success { "true" } else { "false" },
                row.error_message.as_deref().unwrap_or(""),
                row.ip_address.as_deref().unwrap_or(""),
                row.user_agent.as_deref().unwrap_or(""),
                row.request_id.as_deref().unwrap_or(""),
                &changes,
            ])
            .map_err(ApiError::internal("writing CSV"))?;
        if !fits {
            break;
        }
        written += 1;
    }
    let next_cursor = (rows.len() > written)
        .then(|| written.checked_sub(1))
        .flatten()
        .map(|last| paging::encode(&(rows[last].timestamp, rows[last].id.clone())));
    let body = page.into_body();
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-log.csv\"",
            ),
        ],
        body,
    )
        .into_response();
    if let Some(cursor) = next_cursor.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

/// What to verify: from the newest checkpoint, or one slice of a full pass.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct VerifyQuery {
    /// `incremental` (default): what was appended since the newest
    /// checkpoint. `slice`: the next slice of a full re-verification.
    mode: Option<String>,
    /// With `slice`: the pass to go on with (its `pass`); absent: a new pass.
    pass: Option<String>,
}

/// `GET /api/admin/audit/verify`: recomputes the hash chain.
#[utoipa::path(
    operation_id = "verify_audit",
    get,
    path = "/api/admin/audit/verify",
    tag = "admin",
    summary = "Verify the audit trail's hash chain",
    description = "Recomputes links: altered, missing, reordered, unchained, misdated rows, a chain restarted from genesis, a checkpoint the chain no longer matches. By default from the newest checkpoint (at most 400,000 links; `complete` says whether the head was reached); `mode=slice` walks the next 200,000 links of a full re-verification (`pass` goes on with one). An intact verification records a checkpoint. Needs `audit_logs:read`.",
    params(VerifyQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The verification.", body = Verification),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn verify(
    mut auth: Authorized<resource::AuditLogs, action::Read>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Verification>> {
    let query: VerifyQuery = platform::json::parse_query(raw.as_deref())?;
    if query.pass.as_ref().is_some_and(|p| p.chars().count() > 64) {
        return Err(ApiError::invalid_field(
            "pass",
            "must be at most 64 characters",
        ));
    }
    let client = auth.client();
    let report = match query.mode.as_deref() {
        None | Some("incremental") => {
            if query.pass.is_some() {
                return Err(ApiError::invalid_field("pass", "goes with mode=slice only"));
            }
            // Sized to API Gateway's 30 s like the hourly run's.
            crate::commands::verify_incremental_within(client, crate::commands::INCREMENTAL_BUDGET)
                .await
        }
        Some("slice") => {
            audit::verify_slice(client, query.pass.as_deref(), crate::commands::SLICE_LINKS).await
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "mode",
                "must be incremental or slice",
            ));
        }
    }
    .map_err(ApiError::internal("verifying the audit trail"))?;
    if !report.intact {
        tracing::error!(
            problems = report.problem_count,
            "audit trail verification failed"
        );
    }
    Ok(Json(report))
}
