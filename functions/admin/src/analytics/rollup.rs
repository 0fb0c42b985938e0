//! The rollup job: raw events, vitals, errors and experiment assignments
//! aggregated into `metric_snapshots`, one row per metric, granularity
//! (`hour`, `day`) and bucket start (UTC), breakdowns in `dimensions`.
//!
//! **How.** The aggregation runs in PostgreSQL: one statement per source
//! table per window, `GROUP BY GROUPING SETS` with one set per breakdown
//! and granularity, so each source's rows are read once; only the grouped
//! rows (a few hundred per day) come back, and are assembled here into the
//! catalogue's rows and upserted in one statement on the unique
//! `("metricName", "granularity", "timestamp")`. A day's rows are computed
//! from the raw rows of the whole day, never summed from its hours: unique
//! sessions and users, and p75s, do not add up. Rerunning a window rewrites
//! the same rows with the same ids (upsert; unchanged rows are not even
//! rewritten), so nothing is duplicated or counted twice.
//!
//! **Definitions** (the catalogue is in docs/analytics.md):
//! - device and browser come from `analytics_events."userAgent"` (the
//!   patterns in [`EVENT_GROUPS`]; no agent: `unknown`), country from
//!   `eventData.country`, page from the path of `url` (origin, query and
//!   fragment stripped). Every breakdown keeps its 50 largest keys.
//! - `revenue`: the `booking_complete` events' `eventData.revenue`, else
//!   `value`, else `price` (JSON numbers only), summed as recorded: amounts
//!   are not converted, `dimensions.currency` (`eventData.currency`,
//!   upper-cased, else `unknown`) shows the split, so a total over mixed
//!   currencies is visible as such.
//! - `conversion_rate`: sessions with a `booking_complete` / sessions.
//! - `vitals.<name>.p75`: `percentile_disc(0.75)`, i.e. nearest rank: the
//!   smallest value with at least 75% of the samples at or below it (the
//!   ⌈0.75·n⌉-th in order), as CrUX and web-vitals report; absent when the
//!   bucket has no samples. Ratings are the stored ones.
//! - `errors`: `error_logs` keeps one row per group with a running `count`
//!   and its last-seen time, not one per occurrence. Each run first tallies
//!   the groups seen since the previous run (`bundle.error_tallies`): the
//!   occurrences not yet attributed (the growth of `count`) go to the hour
//!   the group was last seen (`bundle.error_hours`), which, with hourly runs,
//!   is the hour they happened within a run's interval. `errors_new`: groups
//!   whose first occurrences are attributed to the bucket (not a group
//!   already resolved when first tallied: it existed before). `errors_regressions`:
//!   groups seen again in the bucket after a resolution (open, with a
//!   `resolvedAt` before their last-seen time: what the intake's regression
//!   leaves), each resolution's regression counted once.
//! - `experiment_participants`: participations by `assignedAt`.
//!
//! **Runs.** The unit of work is a UTC day (its 24 hours and the day, from
//! one scan), in a transaction of its own. Every hour covered, up to the
//! current one, gets every count metric, 0 when nothing happened; p75s only
//! where there are samples. The scheduled run recomputes
//! yesterday and today, so events up to a day late are picked up by the
//! next run, and catches up every day since its watermark
//! (`bundle.rollup_watermark`, the end of the days done), oldest first,
//! for as long as its time budget allows; the next run goes on. `--from`
//! `--to` recompute a window (whole days, or whole hours with
//! `--granularity hour`) and never move the watermark.
//!
//! **Indexes** (EXPLAIN ANALYZE through auto_explain while the job ran
//! over the sample of `admin sample-data`: 115k events and 206k vitals over
//! four weeks; bulk tables of 100k error groups and 200k participations for
//! the last two):
//! - events: Index Scan using `analytics_events_timestamp_idx`, the day's
//!   range (about 4,000 of 115,000 rows, 90 ms). When the window holds most
//!   of the table, as in the benchmark's hour, the planner reads it in full,
//!   as psql's hand-written query does.
//! - vitals: Index Scan using `performance_metrics_timestamp_idx`.
//! - error tally: Index Scan using `error_logs_timestamp_idx` (the groups
//!   seen since the previous tally), `error_tallies_pkey` for the join and
//!   upsert; the errors' rollup: Bitmap Index Scan on `error_hours_pkey`
//!   (a range of hours).
//! - experiment participations: **Seq Scan**: no index has `assignedAt`.
//!   The table holds one row per participant and experiment, far fewer than
//!   the events; an index would be a difference from the contract that
//!   `migrate verify` reports. If it grows large, an index on
//!   `("assignedAt")`, listed as a bundle addition, is the remedy.
//! - first run: Index Only Scans of the events' and vitals' timestamp
//!   indexes (`min`, one entry each).
//! - writes: `metric_snapshots_metricName_granularity_timestamp_key` (the
//!   upsert's arbiter); stale p75 rows: Bitmap Index Scan on
//!   `metric_snapshots_metricName_timestamp_idx`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DurationRound, NaiveDateTime, TimeDelta};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio_postgres::Row;

/// Keys a breakdown keeps at most: the largest.
pub const MAX_DIMENSION_KEYS: usize = 50;

/// How long a scheduled or invoked run starts new days for: the jobs
/// function is stopped at 300 s, and a day of a busy site takes seconds.
pub const RUN_BUDGET: Duration = Duration::from_secs(200);

/// The Web Vitals rolled up, in the catalogue's order.
pub const VITALS: [&str; 5] = ["LCP", "INP", "CLS", "FCP", "TTFB"];

/// The count metrics every covered bucket gets, 0 when nothing happened.
const COUNT_METRICS: [&str; 12] = [
    "page_views",
    "sessions",
    "users",
    "events",
    "searches",
    "bookings",
    "conversion_rate",
    "revenue",
    "errors",
    "errors_new",
    "errors_regressions",
    "experiment_participants",
];

/// Which granularities a run writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularities {
    /// Hours and days (windows rounded out to whole days).
    #[default]
    Both,
    /// Hours only (windows rounded out to whole hours).
    Hour,
    /// Days only.
    Day,
}

impl Granularities {
    fn hours(self) -> bool {
        self != Self::Day
    }
    fn days(self) -> bool {
        self != Self::Hour
    }
}

impl std::str::FromStr for Granularities {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "both" => Ok(Self::Both),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            other => Err(format!("granularity {other:?}: one of hour, day, both")),
        }
    }
}

/// A booking's revenue from its event data (`$data`, an SQL expression):
/// `revenue`, else `value`, else `price`, JSON numbers only; NULL without.
/// One definition for the rollup's `revenue` and the cohorts' lifetime
/// value.
macro_rules! booking_revenue {
    ($data:literal) => {
        concat!(
            "CASE WHEN jsonb_typeof(",
            $data,
            "->'revenue') = 'number' THEN (",
            $data,
            "->>'revenue')::float8 ",
            "WHEN jsonb_typeof(",
            $data,
            "->'value') = 'number' THEN (",
            $data,
            "->>'value')::float8 ",
            "WHEN jsonb_typeof(",
            $data,
            "->'price') = 'number' THEN (",
            $data,
            "->>'price')::float8 END"
        )
    };
}
pub(crate) use booking_revenue;

/// A time given to a job's `--from`/`--to`: RFC 3339, or a date
/// (`YYYY-MM-DD`, its midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub NaiveDateTime);

impl std::str::FromStr for Time {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Time(at.naive_utc()));
        }
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(Time)
            .ok_or_else(|| format!("{s:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The events' columns the breakdowns need, computed once per row.
///
/// Device: tablets first (iPad, Android without "Mobile"), then phones;
/// the vocabulary of the intake (functions/events/src/device.rs).
/// Browser: the family, Edge and Opera before Chrome (they say Chrome too),
/// Chrome before Safari (Chrome says Safari too).
const EVENT_COLUMNS: &str = concat!(
    r#"
    SELECT date_trunc('hour', e."timestamp") AS h,
           date_trunc('day', e."timestamp") AS d,
           CASE
               WHEN e."userAgent" IS NULL OR e."userAgent" = '' THEN 'unknown'
               WHEN e."userAgent" ~* 'ipad|tablet|kindle|silk|playbook' OR (e."userAgent" ~* 'android' AND e."userAgent" !~* 'mobile') THEN 'tablet'
               WHEN e."userAgent" ~* 'mobi|iphone|ipod|android|phone' THEN 'mobile'
               ELSE 'desktop'
           END AS device,
           CASE
               WHEN e."userAgent" IS NULL OR e."userAgent" = '' THEN 'unknown'
               WHEN e."userAgent" ~ 'Edg(e|A|iOS)?/' THEN 'Edge'
               WHEN e."userAgent" ~ 'OPR/|Opera' THEN 'Opera'
               WHEN e."userAgent" ~ 'SamsungBrowser/' THEN 'Samsung Internet'
               WHEN e."userAgent" ~ 'Firefox/|FxiOS/' THEN 'Firefox'
               WHEN e."userAgent" ~ 'Chrome/|CriOS/' THEN 'Chrome'
               WHEN e."userAgent" ~ 'Safari/' THEN 'Safari'
               ELSE 'other'
           END AS browser,
           coalesce(nullif(btrim(e."eventData"->>'country'), ''), 'unknown') AS country,
           CASE WHEN e."eventType" = 'page_view' THEN
               coalesce(nullif(regexp_replace(e."url", '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*|[?#].*$', '', 'g'), ''),
                        CASE WHEN e."url" IS NULL THEN 'unknown' ELSE '/' END)
           END AS page,
           e."eventType" AS event_type,
           e."sessionId" AS session,
           e."userId" AS user_id,
           CASE WHEN e."eventType" = 'booking_complete' THEN
               coalesce(nullif(upper(btrim(e."eventData"->>'currency')), ''), 'UNKNOWN')
           END AS currency,
           CASE WHEN e."eventType" = 'booking_complete' THEN "#,
    booking_revenue!(r#"e."eventData""#),
    r#"
           END AS revenue
    FROM "analytics_events" e
    WHERE e."timestamp" >= $1 AND e."timestamp" < $2"#
);

/// The aggregates of [`EVENT_COLUMNS`] per grouping set; `{sets}`,
/// `{granularity}` and `{bucket}` are replaced for the run's granularities
/// by [`grouped`] (fixed text, never a value).
const EVENT_GROUPS: &str = r#"
    SELECT {granularity} AS granularity,
           {bucket} AS bucket,
           CASE WHEN GROUPING(device) = 0 THEN 'device'
                WHEN GROUPING(browser) = 0 THEN 'browser'
                WHEN GROUPING(country) = 0 THEN 'country'
                WHEN GROUPING(page) = 0 THEN 'page'
                WHEN GROUPING(event_type) = 0 THEN 'eventType'
                WHEN GROUPING(currency) = 0 THEN 'currency'
           END AS dimension,
           coalesce(device, browser, country, page, event_type, currency) AS key,
           count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
           count(DISTINCT session) AS sessions,
           count(DISTINCT user_id) AS users,
           count(*) AS events,
           count(*) FILTER (WHERE event_type = 'flight_search') AS searches,
           count(*) FILTER (WHERE event_type = 'booking_complete') AS bookings,
           count(DISTINCT session) FILTER (WHERE event_type = 'booking_complete') AS converted_sessions,
           coalesce(sum(revenue), 0)::float8 AS revenue
    FROM e
    GROUP BY GROUPING SETS ({sets})"#;

/// Web Vitals p75 and ratings per metric, overall, per page and per device.
const VITAL_GROUPS: &str = r#"
    WITH v AS (
        SELECT date_trunc('hour', p."timestamp") AS h, date_trunc('day', p."timestamp") AS d,
               p."metricName" AS metric, p."value", p."rating",
               coalesce(nullif(regexp_replace(p."url", '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*|[?#].*$', '', 'g'), ''), '/') AS page,
               coalesce(nullif(p."deviceType", ''), 'unknown') AS device
        FROM "performance_metrics" p
        WHERE p."timestamp" >= $1 AND p."timestamp" < $2 AND p."metricName" = ANY($3)
    )
    SELECT {granularity} AS granularity,
           {bucket} AS bucket, metric,
           CASE WHEN GROUPING(page) = 0 THEN 'page' WHEN GROUPING(device) = 0 THEN 'device' END AS dimension,
           coalesce(page, device) AS key,
           percentile_disc(0.75) WITHIN GROUP (ORDER BY "value") AS p75,
           count(*) AS samples,
           count(*) FILTER (WHERE "rating" = 'good') AS good,
           count(*) FILTER (WHERE "rating" = 'needs-improvement') AS needs_improvement,
           count(*) FILTER (WHERE "rating" = 'poor') AS poor
    FROM v
    GROUP BY GROUPING SETS ({sets})"#;

/// Experiment participants per flag and per flag and variant.
const PARTICIPANT_GROUPS: &str = r#"
    WITH p AS (
        SELECT date_trunc('hour', p."assignedAt") AS h, date_trunc('day', p."assignedAt") AS d,
               f."key" AS flag, f."key" || '/' || p."variant" AS variant
        FROM "experiment_participations" p
        JOIN "feature_flags" f ON f."id" = p."flagId"
        WHERE p."assignedAt" >= $1 AND p."assignedAt" < $2
    )
    SELECT {granularity} AS granularity,
           {bucket} AS bucket,
           CASE WHEN GROUPING(flag) = 0 THEN 'flag' WHEN GROUPING(variant) = 0 THEN 'variant' END AS dimension,
           coalesce(flag, variant) AS key,
           count(*) AS participants
    FROM p
    GROUP BY GROUPING SETS ({sets})"#;

/// Error occurrences, new groups and regressions per bucket, from the
/// tally's hours (its primary key: a range of hours).
const ERROR_GROUPS: &str = r#"
    WITH x AS (
        SELECT "hour" AS h, date_trunc('day', "hour") AS d, "occurrences", "new", "regression"
        FROM "bundle"."error_hours"
        WHERE "hour" >= $1 AND "hour" < $2
    )
    SELECT {granularity} AS granularity,
           {bucket} AS bucket,
           coalesce(sum("occurrences"), 0)::float8 AS errors,
           count(*) FILTER (WHERE "new") AS errors_new,
           count(*) FILTER (WHERE "regression") AS errors_regressions
    FROM x
    GROUP BY GROUPING SETS ({sets})"#;

/// Attributes the occurrences of the groups seen since `$1` that are not
/// attributed yet to the hour each was last seen, and records the tally.
/// By `error_logs_timestamp_idx`; a group counts as new in its first
/// attribution, and a resolution's regression counts once.
const TALLY_ERRORS: &str = r#"
    WITH seen AS (
        SELECT l."id", l."count", date_trunc('hour', l."timestamp") AS "hour",
               t."errorLogId" IS NULL AS "first",
               -- A group resolved before its first tally was not new then.
               t."errorLogId" IS NULL AND l."resolvedAt" IS NULL AS "isNew",
               coalesce(t."counted", 0) AS "counted",
               (NOT l."resolved" AND l."resolvedAt" IS NOT NULL AND l."resolvedAt" < l."timestamp"
                AND l."resolvedAt" IS DISTINCT FROM t."regressionOf") AS "regressed",
               CASE WHEN NOT l."resolved" AND l."resolvedAt" IS NOT NULL AND l."resolvedAt" < l."timestamp"
                    THEN l."resolvedAt" ELSE t."regressionOf" END AS "regressionOf"
        FROM "error_logs" l
        LEFT JOIN "bundle"."error_tallies" t ON t."errorLogId" = l."id"
        WHERE l."timestamp" >= $1
    ), changed AS (
        SELECT * FROM seen WHERE "first" OR "count" > "counted" OR "regressed"
    ), attributed AS (
        INSERT INTO "bundle"."error_hours" ("hour", "errorLogId", "occurrences", "new", "regression")
        SELECT "hour", "id", greatest("count" - "counted", 0), "isNew", "regressed" FROM changed
        ON CONFLICT ("hour", "errorLogId") DO UPDATE
        SET "occurrences" = "bundle"."error_hours"."occurrences" + EXCLUDED."occurrences",
            "new" = "bundle"."error_hours"."new" OR EXCLUDED."new",
            "regression" = "bundle"."error_hours"."regression" OR EXCLUDED."regression"
        RETURNING "hour"
    ), tallied AS (
        INSERT INTO "bundle"."error_tallies" ("errorLogId", "counted", "regressionOf", "updatedAt")
        SELECT "id", greatest("count", "counted"), "regressionOf", $2 FROM changed
        ON CONFLICT ("errorLogId") DO UPDATE
        SET "counted" = EXCLUDED."counted", "regressionOf" = EXCLUDED."regressionOf", "updatedAt" = EXCLUDED."updatedAt"
    )
    SELECT min("hour"), count(*) FROM attributed"#;

/// How far before the previous tally the next one looks again: an
/// occurrence's transaction may commit after a tally started with a
/// last-seen time just before it.
const TALLY_OVERLAP: TimeDelta = TimeDelta::minutes(10);

const UPSERT_SNAPSHOTS: &str = r#"
    INSERT INTO "metric_snapshots" ("id", "metricName", "value", "dimensions", "timestamp", "granularity")
    SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::jsonb[], $5::timestamp[], $6::text[])
    ON CONFLICT ("metricName", "granularity", "timestamp") DO UPDATE
    SET "value" = EXCLUDED."value", "dimensions" = EXCLUDED."dimensions"
    WHERE ("metric_snapshots"."value", "metric_snapshots"."dimensions")
          IS DISTINCT FROM (EXCLUDED."value", EXCLUDED."dimensions")"#;

/// The same rows' series for the overview (`bundle.metric_series`: the
/// values without their dimensions, read by an index-only scan).
const UPSERT_SERIES: &str = r#"
    INSERT INTO "bundle"."metric_series" ("metricName", "granularity", "timestamp", "value")
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamp[], $4::float8[])
    ON CONFLICT ("metricName", "granularity", "timestamp") DO UPDATE
    SET "value" = EXCLUDED."value"
    WHERE "metric_series"."value" IS DISTINCT FROM EXCLUDED."value""#;

/// p75 rows of the window whose bucket has no samples any more.
const DELETE_STALE_VITALS: &str = r#"
    DELETE FROM "metric_snapshots" s
    WHERE s."timestamp" >= $1 AND s."timestamp" < $2 AND s."granularity" = ANY($3)
      AND s."metricName" = ANY($4)
      AND NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[], $7::timestamp[]) AS k("metricName", "granularity", "timestamp")
                      WHERE k."metricName" = s."metricName" AND k."granularity" = s."granularity" AND k."timestamp" = s."timestamp")"#;

/// The same for their series.
const DELETE_STALE_VITAL_SERIES: &str = r#"
    DELETE FROM "bundle"."metric_series" s
    WHERE s."timestamp" >= $1 AND s."timestamp" < $2 AND s."granularity" = ANY($3)
      AND s."metricName" = ANY($4)
      AND NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[], $7::timestamp[]) AS k("metricName", "granularity", "timestamp")
                      WHERE k."metricName" = s."metricName" AND k."granularity" = s."granularity" AND k."timestamp" = s."timestamp")"#;

/// One lock for every run and backfill: two never interleave their writes
/// of the same day.
const ROLLUP_LOCK: i64 = 0x726f_6c6c_7570; // "rollup"

/// What a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The scheduled run: yesterday, today, and every day since the
    /// watermark.
    Scheduled,
    /// A backfill of `[from, to)`, rounded out to whole days (whole hours
    /// for hours only).
    Backfill {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
}

/// Runs the job; `budget`: how long it starts new days for (`None`: until
/// done, the command line). Returns its summary.
pub async fn run(
    client: &mut deadpool_postgres::Client,
    window: Window,
    granularities: Granularities,
    budget: Option<Duration>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let now = platform::clock::now_millis();
    let tallied = tally_errors(client, now).await?;
    let today = day_floor(now)?;
    let (from, to) = match window {
        Window::Backfill { from, to } => {
            if granularities.days() {
                (day_floor(from)?, day_ceiling(to)?)
            } else {
                (hour_floor(from)?, hour_ceiling(to)?)
            }
        }
        Window::Scheduled => {
            let watermark: Option<NaiveDateTime> = client
                .query_opt(
                    r#"SELECT "rolledUntil" FROM "bundle"."rollup_watermark""#,
                    &[],
                )
                .await?
                .and_then(|row| row.get(0));
            let yesterday = today - TimeDelta::days(1);
            let start = match watermark {
                Some(watermark) => watermark.min(yesterday),
                None => first_data_day(&*client).await?.unwrap_or(yesterday),
            };
            (start.min(yesterday), today + TimeDelta::days(1))
        }
    };
    let mut done_until = from;
    let mut chunks = 0;
    while done_until < to {
        if budget.is_some_and(|budget| started.elapsed() >= budget) {
            break;
        }
        let chunk_end = (day_floor(done_until)? + TimeDelta::days(1)).min(to);
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK])
            .await?;
        roll_up(&tx, done_until, chunk_end, granularities, now).await?;
        if window == Window::Scheduled {
            // Today is never done: the next run does it again.
            let rolled = chunk_end.min(today);
            tx.execute(
                r#"INSERT INTO "bundle"."rollup_watermark" ("rolledUntil", "updatedAt") VALUES ($1, $2)
                   ON CONFLICT ("singleton") DO UPDATE
                   SET "rolledUntil" = greatest(EXCLUDED."rolledUntil", "bundle"."rollup_watermark"."rolledUntil"),
                       "updatedAt" = EXCLUDED."updatedAt""#,
                &[&rolled, &now],
            )
            .await?;
        }
        tx.commit().await?;
        done_until = chunk_end;
        chunks += 1;
    }
    let complete = done_until >= to;
    if !complete {
        tracing::warn!(from = %from, done_until = %done_until, to = %to, "rollup stopped at its time budget; the next run goes on");
    }
    Ok(json!({
        "from": from.and_utc().to_rfc3339(),
        "to": to.and_utc().to_rfc3339(),
        "rolledUntil": done_until.and_utc().to_rfc3339(),
        "complete": complete,
        "chunks": chunks,
        "granularities": match granularities { Granularities::Both => "both", Granularities::Hour => "hour", Granularities::Day => "day" },
        "errorGroupsTallied": tallied,
        "backfill": matches!(window, Window::Backfill { .. }),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// The day of the oldest event or vital sample (by their timestamp
/// indexes), or of the oldest tallied error hour.
async fn first_data_day(client: &impl GenericClient) -> anyhow::Result<Option<NaiveDateTime>> {
    let first: Option<NaiveDateTime> = client
        .query_one(
            r#"SELECT least((SELECT min("timestamp") FROM "analytics_events"),
                            (SELECT min("timestamp") FROM "performance_metrics"),
                            (SELECT min("hour") FROM "bundle"."error_hours"))"#,
            &[],
        )
        .await?
        .get(0);
    first.map(day_floor).transpose()
}

/// Attributes new error occurrences to hours (see the module's
/// definitions); returns how many groups changed.
async fn tally_errors(
    client: &mut deadpool_postgres::Client,
    now: NaiveDateTime,
) -> anyhow::Result<i64> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK])
        .await?;
    let since: Option<NaiveDateTime> = tx
        .query_opt(
            r#"SELECT "errorsTalliedAt" FROM "bundle"."rollup_watermark""#,
            &[],
        )
        .await?
        .and_then(|row| row.get(0));
    // Never tallied: every group.
    let since = since.map_or(chrono::DateTime::UNIX_EPOCH.naive_utc(), |at| {
        at - TALLY_OVERLAP
    });
    let row = tx.query_one(TALLY_ERRORS, &[&since, &now]).await?;
    let changed: i64 = row.get(1);
    tx.execute(
        r#"INSERT INTO "bundle"."rollup_watermark" ("rolledUntil", "errorsTalliedAt", "updatedAt")
           VALUES (NULL, $1, $1)
           ON CONFLICT ("singleton") DO UPDATE SET "errorsTalliedAt" = EXCLUDED."errorsTalliedAt""#,
        &[&now],
    )
    .await?;
    tx.commit().await?;
    Ok(changed)
}

/// The metric rows of one bucket, before they are written.
#[derive(Debug, Default)]
struct Bucket {
    /// metricName -> (value, dimensions).
    metrics: BTreeMap<String, (f64, Map<String, Value>)>,
}

impl Bucket {
    fn set(&mut self, metric: &str, value: f64) {
        self.metrics.entry(metric.to_owned()).or_default().0 = value;
    }
    fn slice(&mut self, metric: &str, dimension: &str, key: &str, value: Value) {
        let dims = &mut self.metrics.entry(metric.to_owned()).or_default().1;
        if let Value::Object(keys) = dims
            .entry(dimension.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            keys.insert(key.to_owned(), value);
        }
    }
}

type Buckets = BTreeMap<(&'static str, NaiveDateTime), Bucket>;

/// Rolls up `[from, to)` (within one day) into `metric_snapshots`; hours
/// from `now` on (the end of the current hour) have not happened yet and
/// get no zeros.
pub async fn roll_up(
    tx: &impl GenericClient,
    from: NaiveDateTime,
    to: NaiveDateTime,
    granularities: Granularities,
    now: NaiveDateTime,
) -> anyhow::Result<()> {
    let mut buckets = Buckets::new();
    // Every bucket covered gets every count metric, 0 when nothing
    // happened: a chart shows a true zero, and a rerun leaves no stale value.
    if granularities.hours() {
        let mut hour = from;
        while hour < to.min(hour_ceiling(now)?) {
            buckets.entry(("hour", hour)).or_default();
            hour += TimeDelta::hours(1);
        }
    }
    if granularities.days() {
        let mut day = day_floor(from)?;
        while day < to {
            buckets.entry(("day", day)).or_default();
            day += TimeDelta::days(1);
        }
    }
    for bucket in buckets.values_mut() {
        for metric in COUNT_METRICS {
            bucket.set(metric, 0.0);
        }
    }
    let events_sql = format!(
        "WITH e AS ({EVENT_COLUMNS}) {}",
        grouped(
            EVENT_GROUPS,
            granularities,
            &sets(
                granularities,
                &[
                    "",
                    "device",
                    "browser",
                    "country",
                    "page",
                    "event_type",
                    "currency",
                ]
            )
        )
    );
    for row in tx.query(&events_sql, &[&from, &to]).await? {
        add_event_group(&mut buckets, &row);
    }
    let vitals: Vec<String> = VITALS.iter().map(|v| (*v).to_owned()).collect();
    let vitals_sql = grouped(
        VITAL_GROUPS,
        granularities,
        &sets_with(granularities, "metric", &["", "page", "device"]),
    );
    let mut vital_keys = (Vec::new(), Vec::new(), Vec::new());
    for row in tx.query(&vitals_sql, &[&from, &to, &vitals]).await? {
        if let Some(key) = add_vital_group(&mut buckets, &row) {
            vital_keys.0.push(key.0);
            vital_keys.1.push(key.1.to_owned());
            vital_keys.2.push(key.2);
        }
    }
    let participants_sql = grouped(
        PARTICIPANT_GROUPS,
        granularities,
        &sets(granularities, &["", "flag", "variant"]),
    );
    for row in tx.query(&participants_sql, &[&from, &to]).await? {
        add_participant_group(&mut buckets, &row);
    }
    let errors_sql = grouped(ERROR_GROUPS, granularities, &sets(granularities, &[""]));
    for row in tx.query(&errors_sql, &[&from, &to]).await? {
        let Some(bucket) = bucket_of(&mut buckets, &row) else {
            continue;
        };
        bucket.set("errors", row.get("errors"));
        bucket.set("errors_new", count(&row, "errors_new"));
        bucket.set("errors_regressions", count(&row, "errors_regressions"));
    }
    write(tx, buckets).await?;
    let granularity_names: Vec<String> = [
        granularities.hours().then_some("hour"),
        granularities.days().then_some("day"),
    ]
    .into_iter()
    .flatten()
    .map(str::to_owned)
    .collect();
    let p75_names: Vec<String> = VITALS.iter().map(|v| format!("vitals.{v}.p75")).collect();
    for statement in [DELETE_STALE_VITALS, DELETE_STALE_VITAL_SERIES] {
        tx.execute(
            statement,
            &[
                &from,
                &to,
                &granularity_names,
                &p75_names,
                &vital_keys.0,
                &vital_keys.1,
                &vital_keys.2,
            ],
        )
        .await?;
    }
    Ok(())
}

/// `sql` with its `{sets}`, and its `{granularity}` and `{bucket}` columns
/// for the granularities written (a column that no set groups by cannot
/// be named).
fn grouped(sql: &str, granularities: Granularities, sets: &str) -> String {
    let (granularity, bucket) = match granularities {
        Granularities::Both => (
            "CASE WHEN GROUPING(h) = 0 THEN 'hour' ELSE 'day' END",
            "coalesce(h, d)",
        ),
        Granularities::Hour => ("'hour'", "h"),
        Granularities::Day => ("'day'", "d"),
    };
    sql.replace("{sets}", sets)
        .replace("{granularity}", granularity)
        .replace("{bucket}", bucket)
}

/// The grouping sets of `dimensions` ("" for the bucket alone) for each
/// granularity written.
fn sets(granularities: Granularities, dimensions: &[&str]) -> String {
    let mut out = Vec::new();
    for (wanted, bucket) in [(granularities.hours(), "h"), (granularities.days(), "d")] {
        if wanted {
            for dimension in dimensions {
                out.push(if dimension.is_empty() {
                    format!("({bucket})")
                } else {
                    format!("({bucket}, {dimension})")
                });
            }
        }
    }
    out.join(", ")
}

/// [`sets`] with `always` in every set.
fn sets_with(granularities: Granularities, always: &str, dimensions: &[&str]) -> String {
    let mut out = Vec::new();
    for (wanted, bucket) in [(granularities.hours(), "h"), (granularities.days(), "d")] {
        if wanted {
            for dimension in dimensions {
                out.push(if dimension.is_empty() {
                    format!("({bucket}, {always})")
                } else {
                    format!("({bucket}, {always}, {dimension})")
                });
            }
        }
    }
    out.join(", ")
}

fn count(row: &Row, column: &str) -> f64 {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^53
    let value = row.get::<_, i64>(column) as f64;
    value
}

fn bucket_of<'a>(buckets: &'a mut Buckets, row: &Row) -> Option<&'a mut Bucket> {
    let granularity = match row.get::<_, &str>("granularity") {
        "hour" => "hour",
        _ => "day",
    };
    let at: NaiveDateTime = row.get("bucket");
    buckets.get_mut(&(granularity, at))
}

/// Which event metrics each breakdown carries.
fn event_metrics_of(dimension: &str) -> &'static [&'static str] {
    match dimension {
        "device" => &[
            "page_views",
            "sessions",
            "users",
            "searches",
            "bookings",
            "conversion_rate",
            "revenue",
        ],
        "browser" => &["page_views", "sessions"],
        "country" => &["page_views", "sessions", "users", "searches", "bookings"],
        "page" => &["page_views"],
        "eventType" => &["events"],
        "currency" => &["revenue"],
        _ => &[],
    }
}

fn add_event_group(buckets: &mut Buckets, row: &Row) {
    let Some(bucket) = bucket_of(buckets, row) else {
        return;
    };
    let sessions = count(row, "sessions");
    let converted = count(row, "converted_sessions");
    let rate = if sessions > 0.0 {
        converted / sessions
    } else {
        0.0
    };
    let values: HashMap<&str, f64> = [
        ("page_views", count(row, "page_views")),
        ("sessions", sessions),
        ("users", count(row, "users")),
        ("events", count(row, "events")),
        ("searches", count(row, "searches")),
        ("bookings", count(row, "bookings")),
        ("conversion_rate", rate),
        ("revenue", row.get::<_, f64>("revenue")),
    ]
    .into_iter()
    .collect();
    match row.get::<_, Option<&str>>("dimension") {
        None => {
            for (metric, value) in values {
                bucket.set(metric, value);
            }
        }
        Some(dimension) => {
            // A NULL key is the rows the breakdown does not apply to (the
            // page of an event other than a page view, the currency of one
            // other than a booking).
            let Some(key) = row.get::<_, Option<&str>>("key") else {
                return;
            };
            let key = if key == "UNKNOWN" { "unknown" } else { key };
            for metric in event_metrics_of(dimension) {
                let value = values.get(metric).copied().unwrap_or(0.0);
                // A slice with sessions has a conversion rate, 0 or not;
                // other metrics list the slices where they happened.
                let listed = if *metric == "conversion_rate" {
                    sessions > 0.0
                } else {
                    value != 0.0
                };
                if listed {
                    bucket.slice(metric, dimension, key, json!(value));
                }
            }
        }
    }
}

/// Adds a vitals group; returns the key of the p75 row it makes, if it
/// is a bucket's overall group.
fn add_vital_group(
    buckets: &mut Buckets,
    row: &Row,
) -> Option<(String, &'static str, NaiveDateTime)> {
    let granularity = if row.get::<_, &str>("granularity") == "hour" {
        "hour"
    } else {
        "day"
    };
    let at: NaiveDateTime = row.get("bucket");
    let bucket = buckets.get_mut(&(granularity, at))?;
    let metric = format!("vitals.{}.p75", row.get::<_, &str>("metric"));
    let summary = json!({
        "p75": row.get::<_, f64>("p75"),
        "samples": row.get::<_, i64>("samples"),
        "good": row.get::<_, i64>("good"),
        "needs-improvement": row.get::<_, i64>("needs_improvement"),
        "poor": row.get::<_, i64>("poor"),
    });
    match row.get::<_, Option<&str>>("dimension") {
        None => {
            bucket.set(&metric, row.get("p75"));
            let dims = &mut bucket.metrics.entry(metric.clone()).or_default().1;
            dims.insert("samples".into(), summary["samples"].clone());
            dims.insert(
                "rating".into(),
                json!({
                    "good": summary["good"],
                    "needs-improvement": summary["needs-improvement"],
                    "poor": summary["poor"],
                }),
            );
            Some((metric, granularity, at))
        }
        Some(dimension) => {
            let key: &str = row.get("key");
            bucket.slice(&metric, dimension, key, summary);
            None
        }
    }
}

fn add_participant_group(buckets: &mut Buckets, row: &Row) {
    let Some(bucket) = bucket_of(buckets, row) else {
        return;
    };
    let participants = count(row, "participants");
    match row.get::<_, Option<&str>>("dimension") {
        None => bucket.set("experiment_participants", participants),
        Some(dimension) => {
            let key: &str = row.get("key");
            bucket.slice(
                "experiment_participants",
                dimension,
                key,
                json!(participants),
            );
        }
    }
}

/// Keeps the [`MAX_DIMENSION_KEYS`] largest keys of every breakdown
/// (largest by the value, or by samples for p75 breakdowns; ties by key).
fn capped(mut dims: Map<String, Value>) -> Map<String, Value> {
    for value in dims.values_mut() {
        let Value::Object(keys) = value else { continue };
        if keys.len() <= MAX_DIMENSION_KEYS {
            continue;
        }
        let size = |v: &Value| {
            v.as_f64()
                .or_else(|| v.get("samples").and_then(Value::as_f64))
                .unwrap_or(0.0)
        };
        let mut entries: Vec<(String, Value)> = std::mem::take(keys).into_iter().collect();
        entries.sort_by(|a, b| size(&b.1).total_cmp(&size(&a.1)).then(a.0.cmp(&b.0)));
        entries.truncate(MAX_DIMENSION_KEYS);
        keys.extend(entries);
    }
    dims
}

async fn write(tx: &impl GenericClient, buckets: Buckets) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut dimensions = Vec::new();
    let mut timestamps = Vec::new();
    let mut granularities = Vec::new();
    for ((granularity, at), bucket) in buckets {
        for (name, (value, dims)) in bucket.metrics {
            ids.push(platform::ids::new_id());
            names.push(name);
            values.push(value);
            dimensions.push(Value::Object(capped(dims)));
            timestamps.push(at);
            granularities.push(granularity.to_owned());
        }
    }
    tx.execute(
        UPSERT_SNAPSHOTS,
        &[
            &ids,
            &names,
            &values,
            &dimensions,
            &timestamps,
            &granularities,
        ],
    )
    .await?;
    tx.execute(
        UPSERT_SERIES,
        &[&names, &granularities, &timestamps, &values],
    )
    .await?;
    Ok(())
}

pub fn hour_floor(at: NaiveDateTime) -> anyhow::Result<NaiveDateTime> {
    Ok(at.duration_trunc(TimeDelta::hours(1))?)
}

pub fn hour_ceiling(at: NaiveDateTime) -> anyhow::Result<NaiveDateTime> {
    let floor = hour_floor(at)?;
    Ok(if floor == at {
        floor
    } else {
        floor + TimeDelta::hours(1)
    })
}

pub fn day_floor(at: NaiveDateTime) -> anyhow::Result<NaiveDateTime> {
    Ok(at.duration_trunc(TimeDelta::days(1))?)
}

pub fn day_ceiling(at: NaiveDateTime) -> anyhow::Result<NaiveDateTime> {
    let floor = day_floor(at)?;
    Ok(if floor == at {
        floor
    } else {
        floor + TimeDelta::days(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_a_date_at_midnight_utc() {
        let at: Time = "2026-11-20T10:30:00+01:00".parse().expect("time");
        assert_eq!(at.0.to_string(), "2026-11-20 09:30:00");
        let day: Time = "2026-11-20".parse().expect("date");
        assert_eq!(day.0.to_string(), "2026-11-20 00:00:00");
        assert!("20/11/2026".parse::<Time>().is_err());
    }

    #[test]
    fn grouping_sets_cover_each_granularity_written() {
        assert_eq!(
            sets(Granularities::Both, &["", "device"]),
            "(h), (h, device), (d), (d, device)"
        );
        assert_eq!(sets(Granularities::Hour, &[""]), "(h)");
        assert_eq!(
            sets_with(Granularities::Day, "metric", &["", "page"]),
            "(d, metric), (d, metric, page)"
        );
    }

    #[test]
    fn a_breakdown_keeps_its_fifty_largest_keys() {
        let mut dims = Map::new();
        let keys: Map<String, Value> = (0..60).map(|i| (format!("k{i:02}"), json!(i))).collect();
        dims.insert("page".into(), Value::Object(keys));
        let capped = capped(dims);
        let page = capped["page"].as_object().expect("object");
        assert_eq!(page.len(), MAX_DIMENSION_KEYS);
        assert!(page.contains_key("k59") && page.contains_key("k10"));
        assert!(!page.contains_key("k09"));
    }
}
