//! `GET /api/admin/analytics/errors/top`: the error groups with the most
//! occurrences in a range.
//!
//! Groups are as triage forms them (see [`crate::triage`]): rows sharing a
//! `fingerprint` (a row without one is a group of its own). The intake
//! keeps one row per open group, counting occurrences in `count`, with
//! `timestamp` the last one; rows of the older front end are one per
//! occurrence. So, from what `error_logs` stores:
//! - `occurrences` in the range is the sum of `count` of the group's rows
//!   last seen in it (a row's count also holds its occurrences before
//!   `from`: error_logs keeps no time per occurrence);
//! - `firstSeen` is the earliest `timestamp` of the group's rows, and
//!   `lastSeen` the latest; for a group kept on one row these are the same,
//!   since no column records when a group was opened;
//! - `id`, `message`, `severity` and `resolved` are those of the group's
//!   latest row, the one triage acts on.

use access::{Authorized, action, resource};
use axum::{Json, extract::RawQuery};
use chrono::NaiveDateTime;
use platform::api_doc::{Forbidden, Invalid, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};

use super::range::{Bucket, Range, iso};

pub const MAX_DAYS: i64 = 400;
pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErrorsTopQuery {
    /// Start, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC), widened to its hour.
    pub from: Option<String>,
    /// End, exclusive (at most 400 days after `from`).
    pub to: Option<String>,
    /// 1 to 100 groups; 10 by default.
    pub limit: Option<i64>,
}

pub struct Question {
    pub range: Range,
    pub limit: i64,
}

impl ErrorsTopQuery {
    pub fn question(&self) -> ApiResult<Question> {
        let range = Range::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            Bucket::Hour,
            MAX_DAYS * 24,
        )?;
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(Question { range, limit })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopError {
    /// Null for a row without a fingerprint (a group of its own).
    pub fingerprint: Option<String>,
    /// The group's latest row: `/api/admin/errors/{id}`.
    pub id: String,
    pub message: String,
    pub severity: String,
    pub resolved: bool,
    pub occurrences: i64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorsTop {
    pub from: String,
    pub to: String,
    /// Most occurrences first; ties by the latest seen.
    pub errors: Vec<TopError>,
}

pub async fn read(client: &impl GenericClient, question: &Question) -> ApiResult<ErrorsTop> {
    // The range by error_logs("timestamp"); each group's rows by
    // ("fingerprint", "timestamp") or the primary key.
    let rows = client
        .query(
            r#"WITH in_range AS (
                   SELECT "fingerprint", CASE WHEN "fingerprint" IS NULL THEN "id" END AS lone,
                          sum("count")::int8 AS occurrences
                   FROM "error_logs" WHERE "timestamp" >= $1 AND "timestamp" < $2
                   GROUP BY 1, 2
               )
               SELECT g."fingerprint", latest."id", latest."message", latest."severity", latest."resolved",
                      g.occurrences, span.first_seen, span.last_seen
               FROM in_range g
               CROSS JOIN LATERAL (
                   SELECT min(l."timestamp") AS first_seen, max(l."timestamp") AS last_seen FROM "error_logs" l
                   WHERE l."fingerprint" = g."fingerprint" OR l."id" = g.lone) span
               CROSS JOIN LATERAL (
                   SELECT l."id", l."message", l."severity", l."resolved" FROM "error_logs" l
                   WHERE l."fingerprint" = g."fingerprint" OR l."id" = g.lone
                   ORDER BY l."timestamp" DESC, l."id" DESC LIMIT 1) latest
               ORDER BY g.occurrences DESC, span.last_seen DESC, latest."id"
               LIMIT $3"#,
            &[&question.range.from, &question.range.to, &question.limit],
        )
        .await
        .map_err(ApiError::internal("reading the top errors"))?;
    Ok(ErrorsTop {
        from: iso(question.range.from),
        to: iso(question.range.to),
        errors: rows
            .iter()
            .map(|row| TopError {
                fingerprint: row.get(0),
                id: row.get(1),
                message: row.get(2),
                severity: row.get(3),
                resolved: row.get(4),
                occurrences: row.get(5),
                first_seen: iso(row.get::<_, NaiveDateTime>(6)),
                last_seen: iso(row.get::<_, NaiveDateTime>(7)),
            })
            .collect(),
    })
}

#[utoipa::path(
    operation_id = "analytics_errors_top",
    get,
    path = "/api/admin/analytics/errors/top",
    tag = "admin",
    summary = "The error groups with the most occurrences in a range",
    description = "Groups by fingerprint, as triage forms them; occurrences are the counts of the group's rows last seen in the range (docs/analytics.md). With severity, first and last seen, and whether resolved. Needs `analytics:read`.",
    params(ErrorsTopQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The top groups.", body = ErrorsTop),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn errors_top(
    mut auth: Authorized<resource::Analytics, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ErrorsTop>> {
    let query: ErrorsTopQuery = platform::json::parse_query(query.as_deref())?;
    let question = query.question()?;
    let answer = super::within_budget(auth.client(), super::READ_BUDGET, async |tx| {
        read(tx, &question).await
    })
    .await?;
    Ok(Json(answer))
}
