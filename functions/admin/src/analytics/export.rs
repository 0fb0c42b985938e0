//! `GET /api/admin/analytics/export/{report}`: a report of the analytics
//! reads as CSV, with the same query parameters, one row per figure, every
//! cell defused against spreadsheet formulas by [`crate::csv_export`] (page
//! paths and error messages come from visitors).

use access::{Authorized, action, resource};
use axum::{
    extract::{Path, RawQuery},
    http::header,
    response::{IntoResponse, Response},
};
use platform::api_doc::{Forbidden, Invalid, NotFound, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult, paging};

use super::{errors_top, funnel, overview, retention, vitals};
use crate::csv_export::CsvPage;

pub const REPORTS: [&str; 5] = ["overview", "funnel", "retention", "vitals", "errors-top"];

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Fills a page; a report too large for one response is refused, naming
/// `to`, rather than cut silently.
struct Sheet(CsvPage);

impl Sheet {
    fn new(header: &[&str]) -> ApiResult<Self> {
        CsvPage::new(header, paging::MAX_PAGE_BYTES)
            .map(Self)
            .map_err(ApiError::internal("writing CSV"))
    }

    fn row(&mut self, cells: &[&str]) -> ApiResult<()> {
        let fits = self
            .0
            .push(cells.iter().copied())
            .map_err(ApiError::internal("writing CSV"))?;
        if fits {
            Ok(())
        } else {
            Err(ApiError::invalid_field(
                "to",
                "makes the export larger than one response may be: export a shorter range",
            ))
        }
    }
}

fn overview_csv(report: &overview::Overview) -> ApiResult<Sheet> {
    let mut sheet = Sheet::new(&["metric", "bucket", "value", "previousValue"])?;
    for series in &report.series {
        for (i, bucket) in report.buckets.iter().enumerate() {
            let value = number(series.points.get(i).copied().flatten());
            let previous = number(series.previous.points.get(i).copied().flatten());
            sheet.row(&[&series.metric, bucket, &value, &previous])?;
        }
        let total = number(series.total);
        let previous = number(series.previous.total);
        sheet.row(&[&series.metric, "total", &total, &previous])?;
    }
    Ok(sheet)
}

fn funnel_csv(report: &funnel::Funnel) -> ApiResult<Sheet> {
    let mut sheet = Sheet::new(&[
        "breakdown",
        "step",
        "count",
        "conversionFromPrevious",
        "conversionFromFirst",
        "dropOff",
        "medianSecondsFromPrevious",
    ])?;
    let overall = std::iter::once(("", &report.steps));
    let broken_down = report
        .breakdown_values
        .iter()
        .flatten()
        .map(|row| (row.value.as_str(), &row.steps));
    for (value, steps) in overall.chain(broken_down) {
        for step in steps {
            sheet.row(&[
                value,
                &step.step,
                &step.count.to_string(),
                &number(step.conversion_from_previous),
                &number(step.conversion_from_first),
                &step.drop_off.to_string(),
                &number(step.median_seconds_from_previous),
            ])?;
        }
    }
    Ok(sheet)
}

fn retention_csv(report: &retention::Retention) -> ApiResult<Sheet> {
    let mut sheet = Sheet::new(&["cohort", "size", "period", "active", "percentage"])?;
    for cohort in &report.cohorts {
        for period in &cohort.periods {
            sheet.row(&[
                &cohort.cohort,
                &cohort.size.to_string(),
                &period.period.to_string(),
                &period.active.to_string(),
                &period.percentage.to_string(),
            ])?;
        }
    }
    Ok(sheet)
}

fn vitals_csv(report: &vitals::Vitals) -> ApiResult<Sheet> {
    let mut sheet = Sheet::new(&[
        "metric",
        "day",
        "page",
        "p75",
        "samples",
        "good",
        "needsImprovement",
        "poor",
    ])?;
    for metric in &report.metrics {
        for day in &metric.days {
            let figures = std::iter::once(("", Some(day.p75), day.samples, &day.rating)).chain(
                day.pages
                    .iter()
                    .map(|p| (p.page.as_str(), p.p75, p.samples, &p.rating)),
            );
            for (page, p75, samples, rating) in figures {
                sheet.row(&[
                    &metric.metric,
                    &day.day,
                    page,
                    &number(p75),
                    &samples.to_string(),
                    &rating.good.to_string(),
                    &rating.needs_improvement.to_string(),
                    &rating.poor.to_string(),
                ])?;
            }
        }
    }
    Ok(sheet)
}

fn errors_csv(report: &errors_top::ErrorsTop) -> ApiResult<Sheet> {
    let mut sheet = Sheet::new(&[
        "fingerprint",
        "id",
        "message",
        "severity",
        "resolved",
        "occurrences",
        "firstSeen",
        "lastSeen",
    ])?;
    for error in &report.errors {
        sheet.row(&[
            error.fingerprint.as_deref().unwrap_or(""),
            &error.id,
            &error.message,
            &error.severity,
            if error.resolved { "true" } else { "false" },
            &error.occurrences.to_string(),
            &error.first_seen,
            &error.last_seen,
        ])?;
    }
    Ok(sheet)
}

#[utoipa::path(
    operation_id = "analytics_export",
    get,
    path = "/api/admin/analytics/export/{report}",
    tag = "admin",
    summary = "Export an analytics report as CSV",
    description = "`report` is overview, funnel, retention, vitals or errors-top, with that report's query parameters; one row per figure (the overview: per metric and bucket with the previous period's value, then a `total` row). Every cell is defused against spreadsheet formulas. A report over 4 MiB is refused (400 naming `to`). Needs `analytics:export`.",
    params(("report" = String, Path, description = "overview, funnel, retention, vitals or errors-top.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "CSV with a header row.", content_type = "text/csv", body = String),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn export(
    mut auth: Authorized<resource::Analytics, action::Export>,
    Path(report): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query = query.as_deref();
    let sheet = super::within_budget(auth.client(), super::READ_BUDGET, async |tx| {
        let client = tx;
        Ok(match report.as_str() {
            "overview" => {
                let range =
                    platform::json::parse_query::<overview::OverviewQuery>(query)?.range()?;
                overview_csv(&overview::read(client, &range).await?)?
            }
            "funnel" => {
                let question =
                    platform::json::parse_query::<funnel::FunnelQuery>(query)?.question()?;
                funnel_csv(&funnel::read(client, &question).await?)?
            }
            "retention" => {
                let range =
                    platform::json::parse_query::<retention::RetentionQuery>(query)?.range()?;
                retention_csv(&retention::read(client, &range).await?)?
            }
            "vitals" => {
                let question =
                    platform::json::parse_query::<vitals::VitalsQuery>(query)?.question()?;
                vitals_csv(&vitals::read(client, &question).await?)?
            }
            "errors-top" => {
                let question =
                    platform::json::parse_query::<errors_top::ErrorsTopQuery>(query)?.question()?;
                errors_csv(&errors_top::read(client, &question).await?)?
            }
            _ => {
                return Err(ApiError::NotFound(format!(
                    "report {report:?} (one of {})",
                    REPORTS.join(", ")
                )));
            }
        })
    })
    .await?;
    let disposition = format!("attachment; filename=\"{report}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        sheet.0.into_body(),
    )
        .into_response())
}
