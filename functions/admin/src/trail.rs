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

use crate::paging;

/// Most rows one CSV export holds.
pub const EXPORT_PAGE_ROWS: i64 = 5_000;
const EXPORT_PAGE_ROWS_USIZE: usize = 5_000;
/// The budget of one CSV export, counted as the bytes the body takes once
/// Lambda's response JSON escapes it, and checked before each row: 4 MiB
/// leaves room under Lambda's 6 MB response limit for one more large row.
pub const EXPORT_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
            return Err(ApiError::invalid_field(field, "at most 255 characters"));
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    entries: Vec<AuditRow>,
    next_cursor: Option<String>,
}

/// `GET /api/admin/audit?userId=&resource=&resourceId=&action=&success=&from=&to=&limit=&cursor=`.
pub async fn list(
    mut auth: Authorized<resource::AuditLogs, action::Read>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    let filters: Filters = platform::json::parse_query(raw.as_deref())?;
    let limit = paging::limit(filters.limit)?;
    let after = paging::time_cursor(filters.cursor.as_deref())?;
    let rows = query(auth.client(), &filters, after, limit + 1).await?;
    let (entries, next_cursor) =
        paging::finish(rows, limit, |r: &AuditRow| (r.timestamp, r.id.clone()));
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

/// `GET /api/admin/audit/export` with the same filters (and `cursor`): CSV,
/// newest first. A Lambda response is capped at 6 MB, so one export holds
/// at most [`EXPORT_PAGE_ROWS`] rows or [`EXPORT_PAGE_BYTES`] bytes; when
/// more remain, `x-next-cursor` continues where it stopped.
pub async fn export(
    mut auth: Authorized<resource::AuditLogs, action::Export>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let filters: Filters = platform::json::parse_query(raw.as_deref())?;
    if filters.limit.is_some() {
        return Err(ApiError::invalid_field(
            "limit",
            "an export is as large as a response may be; follow x-next-cursor for the rest",
        ));
    }
    let after = paging::time_cursor(filters.cursor.as_deref())?;
    let rows = query(auth.client(), &filters, after, EXPORT_PAGE_ROWS + 1).await?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut next_cursor = None;
    let write =
        |csv: &mut csv::Writer<Vec<u8>>, next: &mut Option<String>| -> Result<(), csv::Error> {
            csv.write_record([
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
            ])?;
            let mut escaped = 0;
            let mut counted = 0;
            for (index, row) in rows.iter().enumerate() {
                csv.flush()?;
                escaped += json_escaped_len(&csv.get_ref()[counted..]);
                counted = csv.get_ref().len();
                let full = escaped >= EXPORT_PAGE_BYTES;
                if full || index == EXPORT_PAGE_ROWS_USIZE {
                    *next = index
                        .checked_sub(1)
                        .map(|last| paging::encode(&(rows[last].timestamp, rows[last].id.clone())));
                    break;
                }
                csv.write_record([
                    row.id.as_str(),
                    &row.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    &row.user_id,
                    &row.user_email,
                    &row.user_role,
                    &row.action,
                    &row.resource,
                    &row.resource_id,
                    if row.success { "true" } else { "false" },
                    &spreadsheet_safe(row.error_message.as_deref().unwrap_or("")),
                    row.ip_address.as_deref().unwrap_or(""),
                    &spreadsheet_safe(row.user_agent.as_deref().unwrap_or("")),
                    row.request_id.as_deref().unwrap_or(""),
                    &row.changes
                        .as_ref()
                        .map(Value::to_string)
                        .unwrap_or_default(),
                ])?;
            }
            Ok(())
        };
    write(&mut csv, &mut next_cursor).map_err(ApiError::internal("writing CSV"))?;
    let body = csv
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("flushing CSV: {e}")))?;
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

/// How many bytes `bytes` take inside a JSON string.
fn json_escaped_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`) is
/// prefixed with `'`: free text here comes from browsers and error messages.
fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// `GET /api/admin/audit/verify`: recomputes the hash chain.
pub async fn verify(
    mut auth: Authorized<resource::AuditLogs, action::Read>,
) -> ApiResult<Json<Verification>> {
    let client = auth.client();
    let report = audit::verify(client)
        .await
        .map_err(ApiError::internal("verifying the audit trail"))?;
    if !report.intact {
        tracing::error!(
            problems = report.problem_count,
            "audit trail verification failed"
        );
    }
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping_is_counted() {
        assert_eq!(json_escaped_len(br#"a"b"#), 4);
        assert_eq!(json_escaped_len(b"\x01"), 6);
    }

    #[test]
    fn formulas_are_defused_in_csv_cells() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("plain"), "plain");
    }
}
