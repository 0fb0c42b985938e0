//! Retention: raw rows that name or describe a visitor are deleted once
//! they are older than their table's window (settings below; docs/privacy.md
//! says why each default), by the `retention` job that the jobs function
//! runs hourly.
//!
//! **Never what a job still needs.** The rollup recomputes yesterday and
//! today and catches up from `bundle.rollup_watermark`; cohorts read from
//! `bundle.cohort_watermark` less [`cohorts::RECHECK`]; fares-sync from
//! `bundle.fare_sync_watermark` less [`fares::LATE_EVENTS`]; the error
//! tally from `"errorsTalliedAt"`; the accuracy job settles predictions
//! until `bundle.prediction_accuracy_watermark`. A table's cutoff is the
//! earliest of its window and of those positions, and a job that has never
//! run keeps every row it would read (deleting first would lose what it is
//! there to count). Rollups (`metric_snapshots`, `bundle.metric_series`)
//! hold no person and are kept.
//!
//! **Bounded.** Rows go in batches of at most [`BATCH_ROWS`], each one
//! statement and so its own short transaction, picked oldest first by the
//! table's time index and deleted by `ctid` with the cutoff checked again:
//! a row updated meanwhile (an error group seen again, a cohort
//! recomputed) is a new version that the delete passes over. Tables take
//! turns, a batch each, within the run's time budget; the next run goes
//! on, and a rerun finds nothing more to delete.
//!
//! `health_checks` (no person) is pruned by the health function itself
//! (`HEALTH_RETENTION_DAYS`), `bundle.sentry_events` (event ids) by
//! `audit-maintain` after 30 days: not repeated here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use platform::config::{ConfigError, Env};
use serde::Serialize;

use crate::analytics::cohorts;
use crate::models::fares;

/// One retention setting: its variable, its default in days, the tables
/// whose rows it deletes (a table's dependants in `bundle` with it).
/// docs/privacy.md lists each (a test holds it to this list).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub variable: &'static str,
    pub default_days: i64,
    pub tables: &'static [&'static str],
}

pub const EVENTS: Setting = Setting {
    variable: "RETENTION_EVENTS_DAYS",
    default_days: 395,
    tables: &["analytics_events", "conversion_funnels"],
};
pub const VITALS: Setting = Setting {
    variable: "RETENTION_VITALS_DAYS",
    default_days: 90,
    tables: &["performance_metrics"],
};
pub const ERRORS: Setting = Setting {
    variable: "RETENTION_ERRORS_DAYS",
    default_days: 90,
    tables: &["error_logs", "bundle.error_tallies", "bundle.error_hours"],
};
pub const PREDICTIONS: Setting = Setting {
    variable: "RETENTION_PREDICTIONS_DAYS",
    default_days: 90,
    tables: &["price_predictions"],
};
pub const PARTICIPATIONS: Setting = Setting {
    variable: "RETENTION_PARTICIPATIONS_DAYS",
    default_days: 90,
    tables: &["experiment_participations", "bundle.experiment_conversions"],
};
pub const COHORTS: Setting = Setting {
    variable: "RETENTION_COHORTS_DAYS",
    default_days: 395,
    tables: &["user_cohorts"],
};
pub const FARES: Setting = Setting {
    variable: "RETENTION_FARES_DAYS",
    default_days: 730,
    tables: &["bundle.observed_fares"],
};

/// Every setting, in the order the page lists them.
pub const SETTINGS: [Setting; 7] = [
    EVENTS,
    VITALS,
    ERRORS,
    PREDICTIONS,
    PARTICIPATIONS,
    COHORTS,
    FARES,
];

/// The longest window a setting accepts: ten years, as the health
/// function's `HEALTH_RETENTION_DAYS`.
const MAX_DAYS: i64 = 3650;

/// Rows one statement deletes at most: a few hundred milliseconds of
/// work on the largest table, so no lock is held for long.
pub const BATCH_ROWS: i64 = 5_000;

/// How long a scheduled or invoked run starts new batches for: the jobs
/// function is stopped at 300 s.
pub const RUN_BUDGET: Duration = Duration::from_secs(200);

/// An unsettled prediction is deleted this long after its window anyway:
/// one asked about a departure a year ahead is settled after it, and one
/// the accuracy job never settles (no price model) must not stay forever.
pub const UNSETTLED_PREDICTION_GRACE: TimeDelta = TimeDelta::days(366);

/// The windows, read once per container (a bad value stops the cold
/// start naming its variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    pub events: TimeDelta,
    pub vitals: TimeDelta,
    pub errors: TimeDelta,
    pub predictions: TimeDelta,
    pub participations: TimeDelta,
    pub cohorts: TimeDelta,
    pub fares: TimeDelta,
}

impl RetentionConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let days = |setting: Setting| -> Result<TimeDelta, ConfigError> {
            let days: i64 = env.parsed_or(setting.variable, setting.default_days)?;
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(ConfigError {
                    variable: setting.variable,
                    problem: format!("{days} days: must be between 1 and {MAX_DAYS}"),
                });
            }
            Ok(TimeDelta::days(days))
        };
        Ok(Self {
            events: days(EVENTS)?,
            vitals: days(VITALS)?,
            errors: days(ERRORS)?,
            predictions: days(PREDICTIONS)?,
            participations: days(PARTICIPATIONS)?,
            cohorts: days(COHORTS)?,
            fares: days(FARES)?,
        })
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |setting: Setting| TimeDelta::days(setting.default_days);
        Self {
            events: days(EVENTS),
            vitals: days(VITALS),
            errors: days(ERRORS),
            predictions: days(PREDICTIONS),
            participations: days(PARTICIPATIONS),
            cohorts: days(COHORTS),
            fares: days(FARES),
        }
    }
}

/// How much one run may do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub batch_rows: i64,
    /// Batches per table at most (none: until done or out of time).
    pub batches_per_table: Option<u32>,
    pub budget: Option<Duration>,
}

impl Limits {
    /// A scheduled or invoked run ([`RUN_BUDGET`]), or the command line's
    /// (to the end).
    pub fn for_job(budget: Option<Duration>) -> Self {
        Self {
            batch_rows: BATCH_ROWS,
            batches_per_table: None,
            budget,
        }
    }
}

/// What a run did to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    pub removed: u64,
    /// Rows older than this were due (none: the table was left alone).
    pub before: Option<NaiveDateTime>,
    /// What set `before`: `window`, or the job whose position held it
    /// back (`rollup`, `cohorts`, `fares-sync`, `error-tally`); with no
    /// `before`, the job that has never run.
    pub limited_by: &'static str,
    /// Every due row is gone (false: the run stopped at its limits).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub removed: u64,
    pub complete: bool,
    pub tables: BTreeMap<&'static str, TableReport>,
}

/// Where the jobs that read raw rows stand.
struct Positions {
    /// The rollup recomputes from here on: the earlier of its watermark
    /// and the start of yesterday.
    rollup: Option<NaiveDateTime>,
    error_tally: Option<NaiveDateTime>,
    cohorts: Option<NaiveDateTime>,
    fares_sync: Option<NaiveDateTime>,
    accuracy: Option<NaiveDateTime>,
}

async fn positions(
    client: &tokio_postgres::Client,
    now: NaiveDateTime,
) -> Result<Positions, tokio_postgres::Error> {
    let row = client
        .query_one(
            r#"SELECT (SELECT "rolledUntil" FROM "bundle"."rollup_watermark"),
                      (SELECT "errorsTalliedAt" FROM "bundle"."rollup_watermark"),
                      (SELECT "readUntil" FROM "bundle"."cohort_watermark"),
                      (SELECT "syncedUntil" FROM "bundle"."fare_sync_watermark"),
                      (SELECT "settledBefore" FROM "bundle"."prediction_accuracy_watermark")"#,
            &[],
        )
        .await?;
    let yesterday = now.date().and_time(chrono::NaiveTime::MIN) - TimeDelta::days(1);
    Ok(Positions {
        rollup: row
            .get::<_, Option<NaiveDateTime>>(0)
            .map(|w| w.min(yesterday)),
        error_tally: row.get(1),
        cohorts: row
            .get::<_, Option<NaiveDateTime>>(2)
            .map(|w| w - cohorts::RECHECK),
        fares_sync: row
            .get::<_, Option<NaiveDateTime>>(3)
            .map(|w| w - fares::LATE_EVENTS),
        accuracy: row.get(4),
    })
}

/// The earliest of `window` and the positions of the jobs in `holds`; no
/// cutoff while one of them has never run.
fn cutoff(
    window: NaiveDateTime,
    holds: &[(&'static str, Option<NaiveDateTime>)],
) -> (Option<NaiveDateTime>, &'static str) {
    let mut earliest = (window, "window");
    for &(job, position) in holds {
        match position {
            None => return (None, job),
            Some(at) if at < earliest.0 => earliest = (at, job),
            Some(_) => {}
        }
    }
    (Some(earliest.0), earliest.1)
}

/// Raw events: picked by `analytics_events_timestamp_idx`.
const DELETE_EVENTS: &str = r#"
    DELETE FROM "analytics_events" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "analytics_events" WHERE "timestamp" < $1 ORDER BY "timestamp" LIMIT $2))
      AND "timestamp" < $1"#;

/// Funnel steps: `conversion_funnels_timestamp_idx`.
const DELETE_FUNNEL_STEPS: &str = r#"
    DELETE FROM "conversion_funnels" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "conversion_funnels" WHERE "timestamp" < $1 ORDER BY "timestamp" LIMIT $2))
      AND "timestamp" < $1"#;

/// Web Vitals: `performance_metrics_timestamp_idx`.
const DELETE_VITALS: &str = r#"
    DELETE FROM "performance_metrics" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "performance_metrics" WHERE "timestamp" < $1 ORDER BY "timestamp" LIMIT $2))
      AND "timestamp" < $1"#;

/// Error groups by their last-seen time (`error_logs_timestamp_idx`),
/// resolved or open alike: a group not seen for the window is stale, and
/// one seen again is a new group. Their tallies go with them.
const DELETE_ERROR_GROUPS: &str = r#"
    WITH gone AS (
        DELETE FROM "error_logs" WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM "error_logs" WHERE "timestamp" < $1 ORDER BY "timestamp" LIMIT $2))
          AND "timestamp" < $1
        RETURNING "id"
    ), tallies AS (
        DELETE FROM "bundle"."error_tallies" t USING gone WHERE t."errorLogId" = gone."id"
    )
    SELECT count(*) FROM gone"#;

/// Occurrences per group and hour: `error_hours_pkey` (hour first).
const DELETE_ERROR_HOURS: &str = r#"
    DELETE FROM "bundle"."error_hours" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "bundle"."error_hours" WHERE "hour" < $1 ORDER BY "hour" LIMIT $2))
      AND "hour" < $1"#;

/// Predictions created and expired before the cutoff, once settled (an
/// outcome in `bundle.prediction_outcomes`, kept: it names no one) or
/// created before `$3`, where the accuracy job no longer looks.
/// `price_predictions_createdAt_idx`.
const DELETE_PREDICTIONS: &str = r#"
    DELETE FROM "price_predictions" WHERE ctid = ANY(ARRAY(
        SELECT p.ctid FROM "price_predictions" p
        WHERE p."createdAt" < $1 AND p."expiresAt" < $1
          AND (p."createdAt" < $3 OR EXISTS (
              SELECT 1 FROM "bundle"."prediction_outcomes" o WHERE o."predictionId" = p."id"))
        ORDER BY p."createdAt" LIMIT $2))"#;

/// Participations of experiments stopped before the cutoff (their results
/// were stored in `experimentResults` when they stopped), assigned before
/// `$3` (the rollup's position); their conversions go with them. Running
/// and paused experiments keep theirs. By the flag (`experiment_participations_flagId_variant_idx`).
const DELETE_PARTICIPATIONS: &str = r#"
    WITH gone AS (
        DELETE FROM "experiment_participations" WHERE ctid = ANY(ARRAY(
            SELECT p.ctid FROM "experiment_participations" p
            JOIN "feature_flags" f ON f."id" = p."flagId"
            WHERE f."experimentStatus" = 'stopped' AND f."completedAt" < $1 AND p."assignedAt" < $3
            LIMIT $2))
          AND "assignedAt" < $3
        RETURNING "id", "flagId"
    ), conversions AS (
        DELETE FROM "bundle"."experiment_conversions" c USING gone
        WHERE c."participationId" = gone."id" AND c."flagId" = gone."flagId"
    )
    SELECT count(*) FROM gone"#;

/// Cohort rows of users not active since the cutoff: their events are gone
/// too. No index has `lastActiveAt` (one row per user: a scan with a
/// limit, not a sort).
const DELETE_COHORTS: &str = r#"
    DELETE FROM "user_cohorts" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "user_cohorts" WHERE "lastActiveAt" < $1 LIMIT $2))
      AND "lastActiveAt" < $1"#;

/// Observed fares (no person; training data): `observed_fares_observedAt_idx`.
const DELETE_FARES: &str = r#"
    DELETE FROM "bundle"."observed_fares" WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM "bundle"."observed_fares" WHERE "observedAt" < $1 ORDER BY "observedAt" LIMIT $2))
      AND "observedAt" < $1"#;

/// How a batch statement reports its rows.
#[derive(Clone, Copy)]
enum Counted {
    /// `execute`'s row count.
    Affected,
    /// A `SELECT count(*)` over the deleted rows (a statement with CTEs).
    Selected,
}

struct Target {
    table: &'static str,
    sql: &'static str,
    counted: Counted,
    before: Option<NaiveDateTime>,
    limited_by: &'static str,
    /// The third parameter of the statements that take one.
    bound: Option<NaiveDateTime>,
}

fn targets(config: &RetentionConfig, at: &Positions, now: NaiveDateTime) -> Vec<Target> {
    let target = |table, sql, counted, (before, limited_by)| Target {
        table,
        sql,
        counted,
        before,
        limited_by,
        bound: None,
    };
    let events = cutoff(
        now - config.events,
        &[
            ("rollup", at.rollup),
            ("cohorts", at.cohorts),
            ("fares-sync", at.fares_sync),
        ],
    );
    // Predictions: settled ones after the window; the rest once the
    // accuracy job has passed them, or after the grace.
    let unsettled = now - config.predictions - UNSETTLED_PREDICTION_GRACE;
    let predictions_bound = at.accuracy.map_or(unsettled, |w| w.max(unsettled));
    let mut predictions = target(
        "price_predictions",
        DELETE_PREDICTIONS,
        Counted::Affected,
        (Some(now - config.predictions), "window"),
    );
    predictions.bound = Some(predictions_bound);
    // The window applies to the experiment's stop; the rollup's position
    // to the assignment.
    let mut participations = target(
        "experiment_participations",
        DELETE_PARTICIPATIONS,
        Counted::Selected,
        match at.rollup {
            Some(_) => (Some(now - config.participations), "window"),
            None => (None, "rollup"),
        },
    );
    participations.bound = at.rollup;
    vec![
        target("analytics_events", DELETE_EVENTS, Counted::Affected, events),
        // Funnel steps are read by the funnel route only: no job needs them.
        target(
            "conversion_funnels",
            DELETE_FUNNEL_STEPS,
            Counted::Affected,
            (Some(now - config.events), "window"),
        ),
        target(
            "performance_metrics",
            DELETE_VITALS,
            Counted::Affected,
            cutoff(now - config.vitals, &[("rollup", at.rollup)]),
        ),
        target(
            "error_logs",
            DELETE_ERROR_GROUPS,
            Counted::Selected,
            cutoff(now - config.errors, &[("error-tally", at.error_tally)]),
        ),
        target(
            "bundle.error_hours",
            DELETE_ERROR_HOURS,
            Counted::Affected,
            cutoff(now - config.errors, &[("rollup", at.rollup)]),
        ),
        predictions,
        participations,
        target(
            "user_cohorts",
            DELETE_COHORTS,
            Counted::Affected,
            cutoff(now - config.cohorts, &[("cohorts", at.cohorts)]),
        ),
        target(
            "bundle.observed_fares",
            DELETE_FARES,
            Counted::Affected,
            (Some(now - config.fares), "window"),
        ),
    ]
}

async fn delete_batch(
    client: &tokio_postgres::Client,
    target: &Target,
    before: NaiveDateTime,
    rows: i64,
) -> Result<u64, tokio_postgres::Error> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&before, &rows];
    if let Some(bound) = &target.bound {
        params.push(bound);
    }
    match target.counted {
        Counted::Affected => client.execute(target.sql, &params).await,
        Counted::Selected => {
            let deleted: i64 = client.query_one(target.sql, &params).await?.get(0);
            Ok(u64::try_from(deleted).unwrap_or(0))
        }
    }
}

/// Deletes the rows due at `now`, tables taking turns a batch each within
/// `limits`; each table's count is emitted as the metric
/// `RetentionRowsDeleted` (dimension `Table`).
pub async fn run(
    client: &tokio_postgres::Client,
    config: &RetentionConfig,
    now: NaiveDateTime,
    limits: Limits,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let positions = positions(client, now).await?;
    let targets = targets(config, &positions, now);
    let mut tables: BTreeMap<&'static str, TableReport> = targets
        .iter()
        .map(|t| {
            (
                t.table,
                TableReport {
                    removed: 0,
                    before: t.before,
                    limited_by: t.limited_by,
                    // Nothing is due in a table a job still holds whole.
                    complete: true,
                },
            )
        })
        .collect();
    let mut pending: Vec<&Target> = targets.iter().filter(|t| t.before.is_some()).collect();
    for target in &pending {
        if let Some(report) = tables.get_mut(target.table) {
            report.complete = false;
        }
    }
    let mut batches = 0u32;
    while !pending.is_empty() {
        if limits.batches_per_table.is_some_and(|most| batches >= most)
            || limits
                .budget
                .is_some_and(|budget| started.elapsed() >= budget)
        {
            break;
        }
        batches += 1;
        let mut still = Vec::with_capacity(pending.len());
        for target in pending {
            let Some(before) = target.before else {
                continue;
            };
            let removed = delete_batch(client, target, before, limits.batch_rows)
                .await
                .map_err(|e| anyhow::anyhow!("retention of {}: {e}", target.table))?;
            let report = tables
                .get_mut(target.table)
                .ok_or_else(|| anyhow::anyhow!("no report for {}", target.table))?;
            report.removed += removed;
            if i64::try_from(removed).unwrap_or(i64::MAX) < limits.batch_rows {
                report.complete = true;
            } else {
                still.push(target);
            }
        }
        pending = still;
    }
    for (table, report) in &tables {
        platform::metrics::emit(
            "admin",
            Some(("Table", table)),
            &[platform::metrics::Metric::count(
                "RetentionRowsDeleted",
                usize::try_from(report.removed).unwrap_or(usize::MAX),
            )],
        );
    }
    let report = Report {
        removed: tables.values().map(|t| t.removed).sum(),
        complete: tables.values().all(|t| t.complete),
        tables,
    };
    tracing::info!(
        removed = report.removed,
        complete = report.complete,
        "retention done"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
    }

    #[test]
    fn the_cutoff_is_the_earliest_of_the_window_and_the_jobs_positions() {
        let window = at("2026-01-10 00:00");
        assert_eq!(cutoff(window, &[]), (Some(window), "window"));
        assert_eq!(
            cutoff(
                window,
                &[
                    ("rollup", Some(at("2026-01-09 00:00"))),
                    ("cohorts", Some(at("2026-01-08 21:00"))),
                    ("fares-sync", Some(at("2026-02-01 00:00"))),
                ]
            ),
            (Some(at("2026-01-08 21:00")), "cohorts")
        );
    }

    #[test]
    fn nothing_is_due_while_a_job_that_reads_the_rows_has_never_run() {
        assert_eq!(
            cutoff(
                at("2026-01-10 00:00"),
                &[("rollup", Some(at("2026-01-01 00:00"))), ("cohorts", None)]
            ),
            (None, "cohorts")
        );
    }

    #[test]
    fn every_setting_defaults_when_unset() {
        assert_eq!(
            RetentionConfig::from_env(&Env::from_pairs([])).expect("defaults"),
            RetentionConfig::default()
        );
        assert_eq!(RetentionConfig::default().events, TimeDelta::days(395));
    }

    #[test]
    fn a_window_out_of_range_names_its_variable() {
        for setting in SETTINGS {
            for bad in ["0", "-3", "3651", "a year", "1.5"] {
                let error = RetentionConfig::from_env(&Env::from_pairs([(setting.variable, bad)]))
                    .expect_err(bad);
                assert_eq!(error.variable, setting.variable, "{bad}");
            }
        }
    }
}
