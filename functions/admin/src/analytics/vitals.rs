//! `GET /api/admin/analytics/vitals`: per Web Vitals metric and day, the
//! p75 and the rating distribution (as the web-vitals library rates each
//! sample: good, needs-improvement, poor), overall and per page, as CrUX
//! reports them. Read from the daily `vitals.<metric>.p75` snapshots and
//! their `dimensions` (`samples`, `rating`, `page`); a day without samples
//! has no snapshot and is absent.

use access::{Authorized, action, resource};
use axum::{
    extract::RawQuery,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::NaiveDateTime;
use platform::api_doc::{Forbidden, Invalid, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult, paging};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};

use super::range::{Bucket, Range, iso};

pub const METRICS: [&str; 5] = ["LCP", "INP", "CLS", "FCP", "TTFB"];
pub const MAX_DAYS: i64 = 400;
pub const MAX_PAGE_CHARS: usize = 2000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VitalsQuery {
    /// First day: RFC 3339 or `YYYY-MM-DD` (UTC).
    pub from: Option<String>,
    /// End, exclusive (at most 400 days after `from`).
    pub to: Option<String>,
    /// One of LCP, INP, CLS, FCP, TTFB; all by default.
    pub metric: Option<String>,
    /// A page path (`/deals`): only that page's figures under `pages`.
    pub page: Option<String>,
}

/// A vitals question, checked.
pub struct Question {
    pub range: Range,
    pub metrics: Vec<&'static str>,
    pub page: Option<String>,
}

impl VitalsQuery {
    pub fn question(&self) -> ApiResult<Question> {
        let range = Range::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            Bucket::Day,
            MAX_DAYS,
        )?;
        let metrics = match self.metric.as_deref() {
            None => METRICS.to_vec(),
            Some(name) => vec![
                *METRICS
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(name.trim()))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "metric",
                            format!("must be one of {}", METRICS.join(", ")),
                        )
                    })?,
            ],
        };
        let page = match self.page.as_deref() {
            None => None,
            Some(path) if path.starts_with('/') && path.chars().count() <= MAX_PAGE_CHARS => {
                Some(path.to_owned())
            }
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "page",
                    format!(
                        "must be a path starting with / of at most {MAX_PAGE_CHARS} characters"
                    ),
                ));
            }
        };
        Ok(Question {
            range,
            metrics,
            page,
        })
    }
}

/// Samples by rating, as web-vitals names the ratings.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Ratings {
    pub good: u64,
    #[serde(rename = "needs-improvement")]
    pub needs_improvement: u64,
    pub poor: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageVitals {
    pub page: String,
    pub p75: Option<f64>,
    pub samples: u64,
    pub rating: Ratings,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayVitals {
    /// The day's start (UTC).
    pub day: String,
    pub p75: f64,
    pub samples: u64,
    pub rating: Ratings,
    /// By p75 sample count, largest first (the rollup keeps the 50 largest).
    pub pages: Vec<PageVitals>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricVitals {
    pub metric: String,
    pub days: Vec<DayVitals>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Vitals {
    pub from: String,
    pub to: String,
    pub metrics: Vec<MetricVitals>,
}

fn count(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_f64).map_or(0, |n| {
        // Counts the rollup wrote; anything else reads as 0.
        if (0.0..9.0e15).contains(&n) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = n as u64;
            whole
        } else {
            0
        }
    })
}

/// The rating counts of `dims` (an object with `rating`, or with the
/// ratings inline, as a page's figures are).
fn ratings(dims: Option<&Value>, inline: bool) -> Ratings {
    let holder = if inline {
        dims
    } else {
        dims.and_then(|d| d.get("rating"))
    };
    Ratings {
        good: count(holder.and_then(|r| r.get("good"))),
        needs_improvement: count(holder.and_then(|r| r.get("needs-improvement"))),
        poor: count(holder.and_then(|r| r.get("poor"))),
    }
}

fn pages(dims: &Value, only: Option<&str>) -> Vec<PageVitals> {
    let Some(pages) = dims.get("page").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut pages: Vec<PageVitals> = pages
        .iter()
        .filter(|(path, _)| only.is_none_or(|only| only == path.as_str()))
        .map(|(path, figures)| PageVitals {
            page: path.clone(),
            p75: figures.get("p75").and_then(Value::as_f64),
            samples: count(figures.get("samples")),
            rating: ratings(Some(figures), true),
        })
        .collect();
    pages.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.page.cmp(&b.page)));
    pages
}

pub async fn read(client: &impl GenericClient, question: &Question) -> ApiResult<Vitals> {
    let names: Vec<String> = question
        .metrics
        .iter()
        .map(|m| format!("vitals.{m}.p75"))
        .collect();
    // By the unique index on ("metricName", "granularity", "timestamp").
    let rows = client
        .query(
            r#"SELECT "metricName", "timestamp", "value", "dimensions" FROM "metric_snapshots"
               WHERE "metricName" = ANY($1) AND "granularity" = 'day'
                 AND "timestamp" >= $2 AND "timestamp" < $3
               ORDER BY "metricName", "timestamp""#,
            &[&names, &question.range.from, &question.range.to],
        )
        .await
        .map_err(ApiError::internal("reading the vitals snapshots"))?;
    let metrics = question
        .metrics
        .iter()
        .zip(&names)
        .map(|(metric, name)| MetricVitals {
            metric: (*metric).to_owned(),
            days: rows
                .iter()
                .filter(|row| row.get::<_, &str>(0) == name)
                .map(|row| {
                    let dims: Value = row.get(3);
                    DayVitals {
                        day: iso(row.get::<_, NaiveDateTime>(1)),
                        p75: row.get(2),
                        samples: count(dims.get("samples")),
                        rating: ratings(Some(&dims), false),
                        pages: pages(&dims, question.page.as_deref()),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(Vitals {
        from: iso(question.range.from),
        to: iso(question.range.to),
        metrics,
    })
}

#[utoipa::path(
    operation_id = "analytics_vitals",
    get,
    path = "/api/admin/analytics/vitals",
    tag = "admin",
    summary = "Web Vitals p75 and ratings per metric, day and page",
    description = "From the daily `vitals.<metric>.p75` snapshots: per metric and day, the p75, the sample count and the samples per rating, overall and per page (only `page` when given). Days without samples are absent. An answer over 4 MiB (every page of a long range) is refused, 400 naming `to`: ask for fewer days, one `metric` or one `page`. Needs `analytics:read`.",
    params(VitalsQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The vitals.", body = Vitals),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn vitals(
    mut auth: Authorized<resource::Analytics, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query: VitalsQuery = platform::json::parse_query(query.as_deref())?;
    let question = query.question()?;
    let answer = read(&***auth.client(), &question).await?;
    let body = serde_json::to_string(&answer).map_err(ApiError::internal("writing the vitals"))?;
    // Every page of every day of 400 days and five metrics is some 11 MB,
    // past what Lambda may answer (6 MB, counted escaped, as pages are).
    if paging::escaped_len(&body) > paging::MAX_PAGE_BYTES {
        return Err(ApiError::invalid_field(
            "to",
            "makes the answer larger than one response may be: ask for a shorter range, one metric or one page",
        ));
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
