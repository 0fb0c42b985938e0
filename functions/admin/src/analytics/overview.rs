//! `GET /api/admin/analytics/overview`: the headline series of the
//! dashboard, read from the snapshots alone (never from raw events, so its
//! cost depends on the range, not on traffic), each beside the previous
//! period of the same length. It reads their values from
//! `bundle.metric_series`, the narrow copy the rollup writes with every
//! `metric_snapshots` row in the same transaction.
//!
//! How a period's headline (`total`) is formed from its buckets, by series
//! (`headline` in the answer):
//! - `sum` (page views, searches, bookings, revenue, errors, new errors):
//!   the sum of the buckets;
//! - `sumOfDistinct` (sessions, users): the sum of each bucket's distinct
//!   count. Distinct counts do not add up: a session that spans two hours,
//!   or a user seen on three days, counts in each bucket. Day granularity
//!   reads the daily rows, so only sessions across midnight and users of
//!   several days are counted more than once; at hour granularity the
//!   total is an upper bound of "session-hours", not of sessions;
//! - `sessionWeightedRate` (conversion rate): the buckets' rates weighted by
//!   their sessions, i.e. converting sessions over sessions, summed per
//!   bucket (exact when no session spans two buckets);
//! - `pageViewWeightedP75` (Web Vitals): the buckets' p75 weighted by the
//!   same buckets' page views (their plain mean when the period has no page
//!   views). Percentiles do not combine exactly; the exact p75 of a day is
//!   its daily row, so read days at day granularity. Page views stand in
//!   for the sample counts, which live in the p75 rows' `dimensions`:
//!   opening those (compressed jsonb of a few KB) for 2,160 hourly buckets
//!   of five metrics cost 290 ms, six times the whole answer's budget,
//!   while every other figure comes from the index alone.
//!
//! A bucket without a row is `null` in `points`, never 0: the rollup writes
//! a 0 for every hour it covered, so a null means "not rolled up (yet)" (or,
//! for a p75, no samples), and a chart can tell a gap from a true zero.
//! Totals skip nulls; a period with no row at all has a `null` total.

use std::collections::HashMap;

use access::{Authorized, action, resource};
use axum::{Json, extract::RawQuery};
use chrono::NaiveDateTime;
use platform::api_doc::{Forbidden, Invalid, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};

use super::range::{Bucket, Range, iso};

/// At most a quarter of hours (the 90-day hourly view) or 400 days.
pub const MAX_HOURS: i64 = 93 * 24;
pub const MAX_DAYS: i64 = 400;

/// How a series' period total is formed from its buckets (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Headline {
    Sum,
    SumOfDistinct,
    SessionWeightedRate,
    PageViewWeightedP75,
}

/// The series, in the order the answer lists them.
pub const SERIES: [(&str, Headline); 14] = [
    ("page_views", Headline::Sum),
    ("sessions", Headline::SumOfDistinct),
    ("users", Headline::SumOfDistinct),
    ("searches", Headline::Sum),
    ("bookings", Headline::Sum),
    ("conversion_rate", Headline::SessionWeightedRate),
    ("revenue", Headline::Sum),
    ("errors", Headline::Sum),
    ("errors_new", Headline::Sum),
    ("vitals.LCP.p75", Headline::PageViewWeightedP75),
    ("vitals.INP.p75", Headline::PageViewWeightedP75),
    ("vitals.CLS.p75", Headline::PageViewWeightedP75),
    ("vitals.FCP.p75", Headline::PageViewWeightedP75),
    ("vitals.TTFB.p75", Headline::PageViewWeightedP75),
];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Start, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC), widened down to its bucket.
    pub from: Option<String>,
    /// End, exclusive: RFC 3339 or `YYYY-MM-DD` (UTC), widened up to a bucket boundary.
    pub to: Option<String>,
    /// `hour` (at most 93 days) or `day` (at most 400 days; the default).
    pub granularity: Option<String>,
}

impl OverviewQuery {
    pub fn range(&self) -> ApiResult<Range> {
        let (bucket, max) = match self.granularity.as_deref() {
            None | Some("day") => (Bucket::Day, MAX_DAYS),
            Some("hour") => (Bucket::Hour, MAX_HOURS),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "granularity",
                    "must be hour or day",
                ));
            }
        };
        Range::parse(self.from.as_deref(), self.to.as_deref(), bucket, max)
    }
}

/// One period of a series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Period {
    /// The period's headline, formed as `headline` says; null without rows.
    pub total: Option<f64>,
    /// One per bucket, aligned with the answer's `buckets` (for the previous
    /// period: `buckets[i]` minus the period's length); null where no row.
    pub points: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// The `metricName` of the snapshots.
    pub metric: String,
    pub headline: Headline,
    pub total: Option<f64>,
    pub points: Vec<Option<f64>>,
    pub previous: Period,
    /// `(total - previous.total) / previous.total * 100`; null when either
    /// is null or the previous total is 0.
    pub change_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// The range read, widened to whole buckets: `[from, to)`.
    pub from: String,
    pub to: String,
    /// `hour` or `day`.
    pub granularity: String,
    pub previous_from: String,
    pub previous_to: String,
    /// The start of each bucket of `[from, to)`: the points' time axis.
    pub buckets: Vec<String>,
    pub series: Vec<Series>,
}

/// Reads the series of `range` and of the period before it.
pub async fn read(client: &impl GenericClient, range: &Range) -> ApiResult<Overview> {
    let previous = range.previous();
    let names: Vec<&str> = SERIES.iter().map(|(name, _)| *name).collect();
    // The snapshots' values as the rollup copies them, in the same
    // transaction, into `bundle.metric_series`: per metric, an index-only
    // range scan of its primary key, the range's values coming back as two
    // arrays. From "metric_snapshots" each value would be a heap fetch past
    // a few KB of dimensions, and one message per value costs more than the
    // scan (docs/analytics.md, "The dashboards' reads").
    let rows = client
        .query(
            r#"SELECT m.i, s.times, s.values
               FROM unnest($1::text[]) WITH ORDINALITY AS m(name, i)
               CROSS JOIN LATERAL (
                   SELECT array_agg("timestamp") AS times, array_agg("value") AS values
                   FROM "bundle"."metric_series"
                   WHERE "metricName" = m.name AND "granularity" = $2
                     AND "timestamp" >= $3 AND "timestamp" < $4) s"#,
            &[&names, &range.bucket.as_str(), &previous.from, &range.to],
        )
        .await
        .map_err(ApiError::internal("reading the overview's snapshots"))?;
    let buckets = usize::try_from(range.buckets()).expect("a capped range's bucket count");
    let index_of: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut current = vec![vec![None::<f64>; buckets]; SERIES.len()];
    let mut before = vec![vec![None::<f64>; buckets]; SERIES.len()];
    let bucket_ms = range.bucket.length().num_milliseconds();
    for row in &rows {
        // WITH ORDINALITY counts from 1.
        let Some(series) = usize::try_from(row.get::<_, i64>(0) - 1)
            .ok()
            .filter(|i| *i < SERIES.len())
        else {
            continue;
        };
        let times: Option<Vec<NaiveDateTime>> = row.get(1);
        let values: Option<Vec<f64>> = row.get(2);
        for (at, value) in times
            .unwrap_or_default()
            .into_iter()
            .zip(values.unwrap_or_default())
        {
            let (points, start) = if at >= range.from {
                (&mut current[series], range.from)
            } else {
                (&mut before[series], previous.from)
            };
            // A row off the bucket grid (not one the rollup writes) is
            // skipped rather than moved into a neighbour.
            let offset = (at - start).num_milliseconds();
            if offset % bucket_ms == 0
                && let Some(slot) = usize::try_from(offset / bucket_ms)
                    .ok()
                    .and_then(|i| points.get_mut(i))
            {
                *slot = Some(value);
            }
        }
    }
    let weights_of = |headline: Headline| match headline {
        Headline::SessionWeightedRate => index_of["sessions"],
        _ => index_of["page_views"],
    };
    let series = SERIES
        .iter()
        .enumerate()
        .map(|(i, (name, headline))| {
            let weights = weights_of(*headline);
            let total = headline_of(*headline, &current[i], &current[weights]);
            let previous_total = headline_of(*headline, &before[i], &before[weights]);
            Series {
                metric: (*name).to_owned(),
                headline: *headline,
                total,
                points: current[i].clone(),
                previous: Period {
                    total: previous_total,
                    points: before[i].clone(),
                },
                change_percent: change_percent(total, previous_total),
            }
        })
        .collect();
    Ok(Overview {
        from: iso(range.from),
        to: iso(range.to),
        granularity: range.bucket.as_str().to_owned(),
        previous_from: iso(previous.from),
        previous_to: iso(previous.to),
        buckets: range.starts().map(iso).collect(),
        series,
    })
}

/// A period's headline from its points, `weights` being the same
/// period's sessions (for a rate) or page views (for a p75).
fn headline_of(headline: Headline, points: &[Option<f64>], weights: &[Option<f64>]) -> Option<f64> {
    let present = || points.iter().flatten();
    present().next()?;
    let weighted_mean = || {
        let (sum, weight) = points
            .iter()
            .zip(weights)
            .filter_map(|(value, weight)| Some(((*value)?, (*weight)?)))
            .fold((0.0, 0.0), |(sum, all), (value, weight)| {
                (sum + value * weight, all + weight)
            });
        (weight > 0.0).then(|| sum / weight)
    };
    Some(match headline {
        Headline::Sum | Headline::SumOfDistinct => present().sum(),
        Headline::SessionWeightedRate => weighted_mean().unwrap_or(0.0),
        Headline::PageViewWeightedP75 => weighted_mean().unwrap_or_else(|| {
            let values: Vec<f64> = present().copied().collect();
            #[allow(clippy::cast_precision_loss)] // at most a few thousand buckets
            let n = values.len() as f64;
            values.iter().sum::<f64>() / n
        }),
    })
}

fn change_percent(total: Option<f64>, previous: Option<f64>) -> Option<f64> {
    let (total, previous) = (total?, previous?);
    (previous != 0.0).then(|| (total - previous) / previous * 100.0)
}

#[utoipa::path(
    operation_id = "analytics_overview",
    get,
    path = "/api/admin/analytics/overview",
    tag = "admin",
    summary = "The headline series, with the previous period",
    description = "Page views, sessions, users, searches, bookings, conversion rate, revenue, errors, new errors and the Web Vitals p75s, read from `metric_snapshots` only, per hour (at most 93 days) or day (at most 400 days), each with the previous period of the same length and the change in percent. `points[i]` is the bucket starting at `buckets[i]`; a bucket with no snapshot is null. How each `total` is formed is in `headline` (docs/analytics.md). Needs `analytics:read`.",
    params(OverviewQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The series.", body = Overview),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn overview(
    mut auth: Authorized<resource::Analytics, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Overview>> {
    let query: OverviewQuery = platform::json::parse_query(query.as_deref())?;
    let range = query.range()?;
    Ok(Json(read(&***auth.client(), &range).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_skip_missing_buckets_and_an_empty_period_has_no_total() {
        assert_eq!(
            headline_of(Headline::Sum, &[Some(2.0), None, Some(3.0)], &[]),
            Some(5.0)
        );
        assert_eq!(headline_of(Headline::Sum, &[None, None], &[]), None);
    }

    #[test]
    fn a_conversion_rate_is_weighted_by_sessions() {
        let rate = [Some(0.5), Some(0.0)];
        let sessions = [Some(10.0), Some(30.0)];
        assert_eq!(
            headline_of(Headline::SessionWeightedRate, &rate, &sessions),
            Some(5.0 / 40.0)
        );
    }

    #[test]
    fn a_p75_is_weighted_by_page_views_or_else_a_plain_mean() {
        let p75 = [Some(1000.0), Some(2000.0), Some(9000.0)];
        let views = [Some(1.0), Some(3.0), None];
        assert_eq!(
            headline_of(Headline::PageViewWeightedP75, &p75, &views),
            Some(1750.0)
        );
        assert_eq!(
            headline_of(Headline::PageViewWeightedP75, &p75, &[None, None, None]),
            Some(4000.0)
        );
    }

    #[test]
    fn no_change_is_given_against_a_zero_or_missing_period() {
        assert_eq!(change_percent(Some(15.0), Some(10.0)), Some(50.0));
        assert_eq!(change_percent(Some(15.0), Some(0.0)), None);
        assert_eq!(change_percent(Some(15.0), None), None);
    }
}
