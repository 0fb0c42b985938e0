//! `GET /api/admin/analytics/funnel`: an ordered funnel over sessions.
//!
//! Rules, as PostHog's and Amplitude's ordered funnels count:
//! - a session enters with an occurrence of the first step in `[from, to)`;
//! - step k counts when it occurs at or after the time step k-1 was
//!   counted at, and no later than the entry time plus the conversion
//!   `window` (measured from the first step, inclusive: a step exactly at
//!   the window's edge counts, one millisecond later does not). Later steps
//!   may fall after `to`, so late entries are not cut short;
//! - a step occurring before the previous one does not count (out of
//!   order), and a session counts at most once per step: its earliest
//!   qualifying occurrence is used;
//! - a session that enters several times is counted by its deepest
//!   attempt, the earliest such attempt giving the times to convert.
//!
//! Both funnel sources the intake writes are read: events whose
//! `eventType` is a step, and `conversion_funnels` rows whose `stage` is a
//! step (the intake writes one for each `funnel` event, with the same id;
//! those `funnel` events themselves are not read, so nothing is read
//! twice, and a step seen in both sources is one occurrence of a session's
//! step like any repeat). `source` says which of them contributed rows.
//!
//! The occurrences stream from PostgreSQL ordered by session (indexes
//! `analytics_events(eventType, timestamp)` and `conversion_funnels(stage,
//! action, timestamp)`), and sessions are matched in Rust one at a time,
//! so memory holds one session's occurrences (at most
//! [`MAX_OCCURRENCES_PER_SESSION`], the earliest) and, per step, the
//! durations for its median: each one up to [`EXACT_DURATIONS`]
//! conversions, then counts in bins 1% wide (the median within 0.5%), so
//! 93 days of a busy site fit the function's memory.

use std::collections::BTreeMap;

use access::{Authorized, action, resource};
use axum::{Json, extract::RawQuery};
use chrono::{Duration, NaiveDateTime};
use futures_util::{StreamExt as _, pin_mut};
use platform::api_doc::{Forbidden, Invalid, NotFound, Unauthenticated, Unavailable};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use utoipa::{IntoParams, ToSchema};

use super::range::{Bucket, Range, duration, iso};

/// The booking flow.
pub const DEFAULT_STEPS: [&str; 6] = [
    "flight_search",
    "results_view",
    "flight_selected",
    "begin_checkout",
    "payment_started",
    "booking_complete",
];
pub const MAX_STEPS: usize = 10;
pub const MAX_STEP_CHARS: usize = 100;
pub const MAX_DAYS: i64 = 93;
/// A session with more step occurrences than this (a bot, a loop) is
/// matched on its earliest ones.
pub const MAX_OCCURRENCES_PER_SESSION: usize = 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    /// Entries from, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC).
    pub from: Option<String>,
    /// Entries until, exclusive (at most 93 days after `from`).
    pub to: Option<String>,
    /// 2 to 10 distinct event types, comma-separated; the booking flow by default.
    pub steps: Option<String>,
    /// Conversion window from the first step: `30m`, `1h`, `1d`... (1 s to 90 d; default `1d`).
    pub window: Option<String>,
    /// `device` or `variant` (then `flag` names the experiment).
    pub breakdown: Option<String>,
    /// The experiment's flag key, with `breakdown=variant`.
    pub flag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breakdown {
    Device,
    Variant { flag: String },
}

/// A funnel question, checked.
#[derive(Debug, Clone)]
pub struct Question {
    pub range: Range,
    pub steps: Vec<String>,
    pub window: Duration,
    pub breakdown: Option<Breakdown>,
}

impl FunnelQuery {
    pub fn question(&self) -> ApiResult<Question> {
        // Widened to whole hours, as every analytics range is to its buckets.
        let range = Range::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            Bucket::Hour,
            MAX_DAYS * 24,
        )?;
        let steps: Vec<String> = match self.steps.as_deref() {
            None => DEFAULT_STEPS.iter().map(|s| (*s).to_owned()).collect(),
            Some(text) => text.split(',').map(|s| s.trim().to_owned()).collect(),
        };
        if !(2..=MAX_STEPS).contains(&steps.len()) {
            return Err(ApiError::invalid_field(
                "steps",
                format!("must list 2 to {MAX_STEPS} event types, comma-separated"),
            ));
        }
        if steps
            .iter()
            .any(|s| s.is_empty() || s.chars().count() > MAX_STEP_CHARS)
        {
            return Err(ApiError::invalid_field(
                "steps",
                format!("must be event types of 1 to {MAX_STEP_CHARS} characters"),
            ));
        }
        if steps
            .iter()
            .enumerate()
            .any(|(i, s)| steps[..i].contains(s))
        {
            return Err(ApiError::invalid_field(
                "steps",
                "must not repeat an event type",
            ));
        }
        let window = match self.window.as_deref() {
            None => Duration::days(1),
            Some(text) => duration("window", text, Duration::seconds(1), Duration::days(90))?,
        };
        let breakdown = match (self.breakdown.as_deref(), &self.flag) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ApiError::invalid_field(
                    "flag",
                    "is only taken with breakdown=variant",
                ));
            }
            (Some("device"), None) => Some(Breakdown::Device),
            (Some("device"), Some(_)) => {
                return Err(ApiError::invalid_field(
                    "flag",
                    "is only taken with breakdown=variant",
                ));
            }
            (Some("variant"), Some(flag)) if !flag.trim().is_empty() => Some(Breakdown::Variant {
                flag: flag.trim().to_owned(),
            }),
            (Some("variant"), _) => {
                return Err(ApiError::invalid_field(
                    "flag",
                    "is required with breakdown=variant",
                ));
            }
            (Some(_), _) => {
                return Err(ApiError::invalid_field(
                    "breakdown",
                    "must be device or variant",
                ));
            }
        };
        Ok(Question {
            range,
            steps,
            window,
            breakdown,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The event type (or `conversion_funnels` stage).
    pub step: String,
    /// Sessions that reached this step in order, within the window.
    pub count: u64,
    /// `count` over the previous step's (1 for the first step); null when the previous is 0.
    pub conversion_from_previous: Option<f64>,
    /// `count` over the first step's; null when the first is 0.
    pub conversion_from_first: Option<f64>,
    /// Sessions of the previous step that did not reach this one (0 for the first).
    pub drop_off: u64,
    /// Median seconds from the previous step to this one; null for the first step or no conversions.
    pub median_seconds_from_previous: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The device (`desktop`, `mobile`, `tablet`, `other`, `unknown`) or the
    /// variant (`none`: the session was not in the experiment).
    pub value: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    pub from: String,
    pub to: String,
    /// The conversion window in seconds.
    pub window_seconds: i64,
    /// Which sources held occurrences: `analytics_events`,
    /// `conversion_funnels`, both joined by `+`, or `none`.
    pub source: String,
    /// Occurrences read from each source.
    pub rows: SourceRows,
    pub steps: Vec<Step>,
    /// `device` or `variant`, when broken down.
    pub breakdown: Option<String>,
    /// One funnel per value, by value; absent without a breakdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown_values: Option<Vec<BreakdownRow>>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRows {
    pub analytics_events: u64,
    pub conversion_funnels: u64,
}

/// Counts and durations of a set of sessions, per step.
#[derive(Default)]
struct Tally {
    reached: Vec<u64>,
    /// From step k-1 to step k, for k >= 1.
    durations: Vec<Durations>,
}

impl Tally {
    fn new(steps: usize) -> Self {
        Self {
            reached: vec![0; steps],
            durations: (0..steps).map(|_| Durations::default()).collect(),
        }
    }

    fn add(&mut self, times: &[NaiveDateTime]) {
        for (k, at) in times.iter().enumerate() {
            self.reached[k] += 1;
            if k > 0 {
                self.durations[k].push((*at - times[k - 1]).num_milliseconds());
            }
        }
    }

    fn steps(mut self, names: &[String]) -> Vec<Step> {
        let first = self.reached.first().copied().unwrap_or(0);
        names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let count = self.reached[k];
                let previous = if k == 0 { count } else { self.reached[k - 1] };
                Step {
                    step: name.clone(),
                    count,
                    conversion_from_previous: ratio(count, previous),
                    conversion_from_first: ratio(count, first),
                    drop_off: previous - count,
                    median_seconds_from_previous: self.durations[k].median().map(|ms| ms / 1000.0),
                }
            })
            .collect()
    }
}

/// Conversions a step's median is exact for; beyond, its durations go
/// into bins.
pub const EXACT_DURATIONS: usize = 10_000;

/// How much wider each bin is than the previous: a binned median is within
/// 0.5% of the exact one.
const BIN_GROWTH: f64 = 1.01;

/// The milliseconds of one step's conversions, for their median: every
/// value up to [`EXACT_DURATIONS`], then counts in logarithmic bins (about
/// 2,300 up to the 90-day window), so a funnel over millions of sessions
/// holds a few tens of KB per step rather than 8 bytes per conversion.
enum Durations {
    Exact(Vec<i64>),
    Binned { bins: Vec<u64>, n: u64 },
}

impl Default for Durations {
    fn default() -> Self {
        Self::Exact(Vec::new())
    }
}

impl Durations {
    fn push(&mut self, ms: i64) {
        match self {
            Self::Exact(values) if values.len() < EXACT_DURATIONS => values.push(ms),
            Self::Exact(values) => {
                let mut binned = Self::Binned {
                    bins: Vec::new(),
                    n: 0,
                };
                for value in values.iter().copied().chain([ms]) {
                    binned.push(value);
                }
                *self = binned;
            }
            Self::Binned { bins, n } => {
                let bin = bin_of(ms);
                if bins.len() <= bin {
                    bins.resize(bin + 1, 0);
                }
                bins[bin] += 1;
                *n += 1;
            }
        }
    }

    fn median(&mut self) -> Option<f64> {
        match self {
            Self::Exact(values) => median(values),
            Self::Binned { bins, n } => {
                // The values of ranks ⌈n/2⌉ and ⌊n/2⌋+1 (1-based): the
                // middle one twice for an odd n, the middle pair for an even.
                let at_rank = |rank: u64| {
                    let mut seen = 0;
                    bins.iter()
                        .position(|count| {
                            seen += count;
                            seen >= rank
                        })
                        .map(middle_of_bin)
                };
                let (low, high) = (at_rank(n.div_ceil(2))?, at_rank(*n / 2 + 1)?);
                Some(f64::midpoint(low, high))
            }
        }
    }
}

/// The bin of a duration: bin i holds [BIN_GROWTH^i - 1, BIN_GROWTH^(i+1) - 1).
fn bin_of(ms: i64) -> usize {
    #[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
    let scaled = (ms.max(0) as f64 + 1.0).ln() / BIN_GROWTH.ln();
    // Non-negative and at most ~2,600 for any i64 of milliseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bin = scaled.floor() as usize;
    bin
}

/// The geometric middle of bin `i`, in milliseconds.
fn middle_of_bin(i: usize) -> f64 {
    let i = i32::try_from(i).unwrap_or(i32::MAX);
    BIN_GROWTH.powf(f64::from(i) + 0.5) - 1.0
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] as f64 + values[middle] as f64) / 2.0
    } else {
        values[middle] as f64
    })
}

/// One session's step occurrences, in time order: (step index, time).
type Occurrences = Vec<(usize, NaiveDateTime)>;

/// The times a session reached each step, by the rules of the module docs.
fn match_session(
    occurrences: &[(usize, NaiveDateTime)],
    steps: usize,
    range: &Range,
    window: Duration,
) -> Vec<NaiveDateTime> {
    let mut best: Vec<NaiveDateTime> = Vec::new();
    let entries = occurrences
        .iter()
        .enumerate()
        .filter(|(_, (step, at))| *step == 0 && *at >= range.from && *at < range.to);
    for (start, (_, entry)) in entries {
        let deadline = *entry + window;
        let mut times = vec![*entry];
        // One pass from the entry: the occurrences come by time, then
        // step, so the first occurrence of step k after the one taken for
        // step k-1 is the earliest at or after its time. Linear in the
        // session's occurrences per entry, not times the steps.
        for (step, at) in occurrences[start + 1..]
            .iter()
            .take_while(|(_, at)| *at <= deadline)
        {
            if *step == times.len() {
                times.push(*at);
                if times.len() == steps {
                    break;
                }
            }
        }
        if times.len() > best.len() {
            best = times;
            if best.len() == steps {
                break;
            }
        }
    }
    best
}

/// A device class from a user agent, as the events intake classifies it.
pub fn device_of(user_agent: Option<&str>) -> &'static str {
    let Some(result) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return "unknown";
    };
    match (result.category, result.os) {
        (_, "iPad") => "tablet",
        ("pc", _) => "desktop",
        ("smartphone" | "mobilephone", _) => "mobile",
        _ => "other",
    }
}

/// Answers `question`.
pub async fn read(client: &impl GenericClient, question: &Question) -> ApiResult<Funnel> {
    let flag_id: Option<String> = match &question.breakdown {
        Some(Breakdown::Variant { flag }) => Some(
            client
                .query_opt(
                    r#"SELECT "id" FROM "feature_flags" WHERE "key" = $1"#,
                    &[flag],
                )
                .await
                .map_err(ApiError::internal("reading the breakdown's flag"))?
                .map(|row| row.get(0))
                .ok_or_else(|| ApiError::NoSuch {
                    field: "flag".into(),
                    rule: format!("names no flag: {flag:?}"),
                })?,
        ),
        _ => None,
    };
    let last = question.range.to + question.window;
    let params: [&(dyn ToSql + Sync); 4] = [&question.steps, &question.range.from, &last, &flag_id];
    // Per source, one index range per step: analytics_events(eventType,
    // timestamp) and conversion_funnels(stage, action, timestamp). The
    // variant comes from the unique index on
    // experiment_participations(flagId, sessionId).
    let stream = client
        .query_raw(
            r#"WITH steps AS (SELECT name, i::int - 1 AS step FROM unnest($1::text[]) WITH ORDINALITY AS s(name, i))
               SELECT o."sessionId", o.step, o."timestamp", o."userAgent", o.source, p."variant"
               FROM (
                   SELECT e."sessionId", s.step, e."timestamp", e."userAgent", 0 AS source
                   FROM "analytics_events" e JOIN steps s ON s.name = e."eventType"
                   WHERE e."eventType" = ANY($1) AND e."timestamp" >= $2 AND e."timestamp" <= $3
                   UNION ALL
                   SELECT c."sessionId", s.step, c."timestamp", NULL, 1
                   FROM "conversion_funnels" c JOIN steps s ON s.name = c."stage"
                   WHERE c."stage" = ANY($1) AND c."timestamp" >= $2 AND c."timestamp" <= $3
               ) o
               LEFT JOIN "experiment_participations" p ON p."flagId" = $4 AND p."sessionId" = o."sessionId"
               ORDER BY o."sessionId", o."timestamp", o.step"#,
            params,
        )
        .await
        .map_err(ApiError::internal("reading the funnel's steps"))?;
    pin_mut!(stream);
    let steps = question.steps.len();
    let mut overall = Tally::new(steps);
    let mut by_value: BTreeMap<String, Tally> = BTreeMap::new();
    let mut rows = SourceRows::default();
    let mut session: Option<String> = None;
    let mut occurrences: Occurrences = Vec::new();
    let mut value: Option<String> = None;
    let mut finish = |occurrences: &mut Occurrences, value: &mut Option<String>| {
        let times = match_session(occurrences, steps, &question.range, question.window);
        if !times.is_empty() {
            overall.add(&times);
            if question.breakdown.is_some() {
                let key = value.take().unwrap_or_else(|| match question.breakdown {
                    Some(Breakdown::Device) => "unknown".to_owned(),
                    _ => "none".to_owned(),
                });
                by_value
                    .entry(key)
                    .or_insert_with(|| Tally::new(steps))
                    .add(&times);
            }
        }
        occurrences.clear();
        *value = None;
    };
    while let Some(row) = stream.next().await {
        let row = row.map_err(ApiError::internal("reading the funnel's steps"))?;
        let id: String = row.get(0);
        if session.as_deref() != Some(id.as_str()) {
            finish(&mut occurrences, &mut value);
            session = Some(id);
        }
        let step: i32 = row.get(1);
        let at: NaiveDateTime = row.get(2);
        let source: i32 = row.get(4);
        if source == 0 {
            rows.analytics_events += 1;
        } else {
            rows.conversion_funnels += 1;
        }
        if value.is_none() {
            value = match &question.breakdown {
                Some(Breakdown::Device) if source == 0 => {
                    Some(device_of(row.get::<_, Option<&str>>(3)).to_owned())
                }
                Some(Breakdown::Variant { .. }) => row.get::<_, Option<String>>(5),
                _ => None,
            };
        }
        if occurrences.len() < MAX_OCCURRENCES_PER_SESSION
            && let Ok(step) = usize::try_from(step)
        {
            occurrences.push((step, at));
        }
    }
    finish(&mut occurrences, &mut value);
    let source = match (rows.analytics_events > 0, rows.conversion_funnels > 0) {
        (true, true) => "analytics_events+conversion_funnels",
        (true, false) => "analytics_events",
        (false, true) => "conversion_funnels",
        (false, false) => "none",
    };
    Ok(Funnel {
        from: iso(question.range.from),
        to: iso(question.range.to),
        window_seconds: question.window.num_seconds(),
        source: source.to_owned(),
        rows,
        steps: overall.steps(&question.steps),
        breakdown: question.breakdown.as_ref().map(|b| match b {
            Breakdown::Device => "device".to_owned(),
            Breakdown::Variant { .. } => "variant".to_owned(),
        }),
        breakdown_values: question.breakdown.as_ref().map(|_| {
            by_value
                .into_iter()
                .map(|(value, tally)| BreakdownRow {
                    value,
                    steps: tally.steps(&question.steps),
                })
                .collect()
        }),
    })
}

#[utoipa::path(
    operation_id = "analytics_funnel",
    get,
    path = "/api/admin/analytics/funnel",
    tag = "admin",
    summary = "An ordered funnel over sessions",
    description = "Sessions entering with the first step in `[from, to)`; each later step counts at or after the previous one and at most `window` after the first (inclusive). Per step: count, conversion from the previous and the first step, drop-off, median seconds from the previous step; optionally broken down by device or by an experiment's variant. Reads events of the step types and `conversion_funnels` stages, and says which held rows in `source`. Needs `analytics:read`.",
    params(FunnelQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The funnel.", body = Funnel),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn funnel(
    mut auth: Authorized<resource::Analytics, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Funnel>> {
    let query: FunnelQuery = platform::json::parse_query(query.as_deref())?;
    let question = query.question()?;
    let answer = super::within_budget(auth.client(), super::READ_BUDGET, async |tx| {
        read(tx, &question).await
    })
    .await?;
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .expect("instant")
            .naive_utc()
            + Duration::minutes(minutes)
    }

    fn range() -> Range {
        Range {
            from: t(0),
            to: t(600),
            bucket: Bucket::Hour,
        }
    }

    #[test]
    fn steps_count_only_in_order() {
        let times = match_session(
            &[(1, t(1)), (0, t(2)), (2, t(3))],
            3,
            &range(),
            Duration::hours(1),
        );
        assert_eq!(times, vec![t(2)]);
    }

    #[test]
    fn the_deepest_attempt_counts_and_the_window_edge_is_inclusive() {
        let occurrences = [(0, t(1)), (0, t(100)), (1, t(160)), (2, t(161))];
        let at_the_edge = match_session(&occurrences, 3, &range(), Duration::hours(1));
        assert_eq!(at_the_edge, vec![t(100), t(160)]);
        let wider = match_session(&occurrences, 3, &range(), Duration::minutes(61));
        assert_eq!(wider, vec![t(100), t(160), t(161)]);
        let narrower = match_session(&occurrences, 3, &range(), Duration::minutes(59));
        assert_eq!(narrower, vec![t(1)]);
    }

    /// The rules read literally: for each step, the earliest occurrence
    /// at or after the previous step's time, within the window.
    fn match_by_the_rules(
        occurrences: &[(usize, NaiveDateTime)],
        steps: usize,
        window: Duration,
    ) -> Vec<NaiveDateTime> {
        let mut best = Vec::new();
        for (_, entry) in occurrences
            .iter()
            .filter(|(step, at)| *step == 0 && *at >= range().from && *at < range().to)
        {
            let mut times = vec![*entry];
            while times.len() < steps {
                let next = occurrences
                    .iter()
                    .filter(|(step, at)| {
                        *step == times.len()
                            && *at >= times[times.len() - 1]
                            && *at <= *entry + window
                    })
                    .map(|(_, at)| *at)
                    .min();
                match next {
                    Some(at) => times.push(at),
                    None => break,
                }
            }
            if times.len() > best.len() {
                best = times;
            }
        }
        best
    }

    #[test]
    fn matching_in_one_pass_agrees_with_the_rules_on_random_sessions() {
        let mut seed: u64 = 0x5eed;
        let mut next = |below: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % below
        };
        for _ in 0..2000 {
            let steps = usize::try_from(2 + next(4)).expect("small");
            let mut occurrences: Vec<(usize, NaiveDateTime)> = (0..next(12))
                .map(|_| {
                    let step = usize::try_from(next(steps as u64)).expect("small");
                    let minute = i64::try_from(next(700)).expect("small");
                    (step, t(minute))
                })
                .collect();
            occurrences.sort_by_key(|(step, at)| (*at, *step));
            let window = Duration::minutes(i64::try_from(1 + next(120)).expect("small"));
            assert_eq!(
                match_session(&occurrences, steps, &range(), window),
                match_by_the_rules(&occurrences, steps, window),
                "{occurrences:?} {steps} {window}"
            );
        }
    }

    #[test]
    fn a_median_over_many_conversions_is_binned_within_half_a_percent() {
        let mut durations = Durations::default();
        let mut exact = Vec::new();
        for i in 0..250_000_i64 {
            // Spread from a second to about a day, unevenly.
            let ms = 1000 + (i * i) % 86_400_000;
            durations.push(ms);
            exact.push(ms);
        }
        let Durations::Binned { bins, n } = &durations else {
            panic!("still exact after {} values", exact.len());
        };
        assert_eq!(*n, 250_000);
        assert!(bins.len() < 2_000, "{} bins", bins.len());
        let exact = median(&mut exact).expect("a median");
        let binned = durations.median().expect("a median");
        assert!(
            (binned - exact).abs() <= exact * 0.005,
            "{binned} against {exact}"
        );
    }

    #[test]
    fn a_median_stays_exact_up_to_its_exact_count() {
        let mut durations = Durations::default();
        for ms in (0..i64::try_from(EXACT_DURATIONS).expect("small")).rev() {
            durations.push(ms);
        }
        assert!(matches!(durations, Durations::Exact(_)));
        assert_eq!(durations.median(), Some(4999.5));
    }

    #[test]
    fn medians_of_even_counts_average_the_middle_pair() {
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn steps_must_be_two_to_ten_distinct_types() {
        for steps in ["a", "a,a", "a,,b", &["x"; 11].join(",")] {
            let query = FunnelQuery {
                from: Some("2026-12-01".into()),
                to: Some("2026-12-02".into()),
                steps: Some(steps.into()),
                ..FunnelQuery::default()
            };
            assert!(query.question().is_err(), "{steps}");
        }
    }
}
