//! `GET /api/admin/analytics/retention`: the cohort retention table, as
//! PostHog's retention view shows it.
//!
//! - A cohort is the signed-in users whose first-seen time
//!   (`user_cohorts."cohortDate"`) falls in one period (a UTC day, or an
//!   ISO week from Monday) of `[from, to)`. Membership comes from
//!   `user_cohorts` alone, so each user is in exactly one cohort: activity
//!   that falls in another cohort's period counts for the user's own.
//! - Period k of a cohort is the k-th period after its own (period 0 is the
//!   cohort's period); a user is active in it with any event of theirs
//!   (`analytics_events."userId"`) in it.
//! - Periods run up to `to`: the table is a triangle, each cohort showing
//!   the periods that began before `to` (later activity is read by asking
//!   with a later `to`).

use access::{Authorized, action, resource};
use axum::{Json, extract::RawQuery};
use chrono::NaiveDateTime;
use platform::api_doc::{Forbidden, Invalid, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};

use super::range::{Bucket, Range, iso};

pub const MAX_DAYS: i64 = 93;
pub const MAX_WEEKS: i64 = 53;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// First cohort period: RFC 3339 or `YYYY-MM-DD` (UTC), widened down to its period.
    pub from: Option<String>,
    /// End, exclusive, widened up to a period boundary.
    pub to: Option<String>,
    /// `day` (at most 93) or `week` (ISO weeks, at most 53; the default).
    pub period: Option<String>,
}

impl RetentionQuery {
    pub fn range(&self) -> ApiResult<Range> {
        let (bucket, max) = match self.period.as_deref() {
            Some("day") => (Bucket::Day, MAX_DAYS),
            None | Some("week") => (Bucket::Week, MAX_WEEKS),
            Some(_) => return Err(ApiError::invalid_field("period", "must be day or week")),
        };
        Range::parse(self.from.as_deref(), self.to.as_deref(), bucket, max)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Retained {
    /// k: periods after the cohort's own.
    pub period: i64,
    /// Users of the cohort active in period k.
    pub active: i64,
    /// `active` over the cohort's size, in percent.
    pub percentage: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cohort {
    /// The start of the cohort's period.
    pub cohort: String,
    pub size: i64,
    pub periods: Vec<Retained>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Retention {
    pub from: String,
    pub to: String,
    /// `day` or `week`.
    pub period: String,
    /// Cohorts with at least one user, oldest first.
    pub cohorts: Vec<Cohort>,
}

pub async fn read(client: &impl GenericClient, range: &Range) -> ApiResult<Retention> {
    let days_per_period: i32 = match range.bucket {
        Bucket::Week => 7,
        _ => 1,
    };
    // The cohorts by the index on user_cohorts("cohortDate"); each member's
    // events by analytics_events("userId", "timestamp").
    let rows = client
        .query(
            r#"WITH cohort AS (
                   SELECT "userId", date_trunc($1::text, "cohortDate") AS start
                   FROM "user_cohorts" WHERE "cohortDate" >= $2 AND "cohortDate" < $3
               ), active AS (
                   SELECT DISTINCT c."userId", c.start,
                          (date_trunc($1::text, e."timestamp")::date - c.start::date) / $4 AS k
                   FROM cohort c JOIN "analytics_events" e ON e."userId" = c."userId"
                   WHERE e."timestamp" >= c.start AND e."timestamp" < $3
               )
               SELECT start, -1 AS k, count(*) FROM cohort GROUP BY start
               UNION ALL
               SELECT start, k, count(*) FROM active GROUP BY start, k"#,
            &[
                &range.bucket.as_str(),
                &range.from,
                &range.to,
                &days_per_period,
            ],
        )
        .await
        .map_err(ApiError::internal("reading the retention table"))?;
    let mut sizes: BTreeMap<NaiveDateTime, i64> = BTreeMap::new();
    let mut active: BTreeMap<(NaiveDateTime, i64), i64> = BTreeMap::new();
    for row in &rows {
        let start: NaiveDateTime = row.get(0);
        let k: i32 = row.get(1);
        let count: i64 = row.get(2);
        if k < 0 {
            sizes.insert(start, count);
        } else {
            active.insert((start, i64::from(k)), count);
        }
    }
    let length = range.bucket.length();
    let cohorts = sizes
        .into_iter()
        .map(|(start, size)| {
            let periods = std::iter::successors(Some(0_i64), |k| Some(k + 1))
                .take_while(|k| start + length * i32::try_from(*k).unwrap_or(i32::MAX) < range.to)
                .map(|k| {
                    let count = active.get(&(start, k)).copied().unwrap_or(0);
                    Retained {
                        period: k,
                        active: count,
                        percentage: percent(count, size),
                    }
                })
                .collect();
            Cohort {
                cohort: iso(start),
                size,
                periods,
            }
        })
        .collect();
    Ok(Retention {
        from: iso(range.from),
        to: iso(range.to),
        period: range.bucket.as_str().to_owned(),
        cohorts,
    })
}

#[allow(clippy::cast_precision_loss)] // user counts far below 2^52
fn percent(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 * 100.0 / whole as f64
    } else {
        0.0
    }
}

#[utoipa::path(
    operation_id = "analytics_retention",
    get,
    path = "/api/admin/analytics/retention",
    tag = "admin",
    summary = "The cohort retention table",
    description = "Cohorts of signed-in users by first-seen day or ISO week (`user_cohorts`), each with its size and, for every period after it that began before `to`, the users active in it (any event) and their percentage. Needs `analytics:read`.",
    params(RetentionQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The table.", body = Retention),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn retention(
    mut auth: Authorized<resource::Analytics, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Retention>> {
    let query: RetentionQuery = platform::json::parse_query(query.as_deref())?;
    let range = query.range()?;
    let answer = super::within_budget(auth.client(), super::READ_BUDGET, async |tx| {
        read(tx, &range).await
    })
    .await?;
    Ok(Json(answer))
}
