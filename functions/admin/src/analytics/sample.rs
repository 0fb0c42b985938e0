//! A realistic, deterministic sample of what the intake stores, for
//! `scripts/dev` (`admin sample-data`) and the rollup benchmark
//! (`bench/rollup.sh`, which takes the same generator's CSV).
//!
//! Sessions of visitors and signed-in users (a pool of returning users, so
//! cohorts retain), on phones, desktops and tablets in ten countries, each
//! a few page views, and for a share of them the booking flow
//! `flight_search` → `results_view` → `flight_selected` → `begin_checkout`
//! → `payment_started` → `booking_complete` with drop-off at every step
//! and revenue on the booking. Fares are `results_view` events with
//! `{origin, destination, departDate, returnDate?, price, currency}`,
//! priced by the price model's generator (`pricing::synthetic`: its routes
//! and `expected_price` at the event's time, with lognormal noise), so the
//! fares of the sample follow the curves a model can learn. Web Vitals per
//! page view (lognormal around typical field values, rated by the
//! web-vitals thresholds), error groups, and `conversion_funnels` steps
//! for a fifth of the funnel sessions; when an experiment is running,
//! participations of the sample's sessions in it.
//!
//! The same seed and window give the same rows, ids included
//! (`sample-<seed>-...`); loading a sample whose first event is stored
//! already does nothing.

use std::fmt::Write as _;

use axum::body::Bytes;
use chrono::{Duration, NaiveDateTime, Timelike};
use futures_util::SinkExt;
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub seed: u64,
    /// Sessions start in `[from, to)`.
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// How many sessions (3.7 events each on average).
    pub sessions: usize,
}

impl Options {
    /// `weeks` weeks up to `to`, with 1,100 sessions a day (about 4,000
    /// events a day).
    pub fn weeks(seed: u64, weeks: u32, to: NaiveDateTime) -> Self {
        let days = weeks.max(1) * 7;
        Options {
            seed,
            from: to - Duration::days(i64::from(days)),
            to,
            sessions: usize::try_from(days).unwrap_or(usize::MAX) * 1_100,
        }
    }
}

/// The generated rows, as CSV for `COPY ... (FORMAT csv)` in the column
/// orders of [`EVENT_COLUMNS`], [`VITAL_COLUMNS`], [`ERROR_COLUMNS`],
/// [`FUNNEL_COLUMNS`].
#[derive(Debug, Default)]
pub struct Sample {
    pub events: String,
    pub vitals: String,
    pub errors: String,
    pub funnels: String,
    pub event_count: usize,
    pub vital_count: usize,
    pub error_groups: usize,
    pub funnel_steps: usize,
    pub bookings: usize,
}

pub const EVENT_COLUMNS: &str = r#""id", "userId", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp""#;
pub const VITAL_COLUMNS: &str = r#""id", "metricName", "value", "rating", "url", "userId", "sessionId", "deviceType", "browser", "os", "timestamp""#;
pub const ERROR_COLUMNS: &str = r#""id", "message", "errorType", "url", "sessionId", "userAgent", "browser", "os", "severity", "resolved", "resolvedAt", "resolvedBy", "fingerprint", "count", "timestamp""#;
pub const FUNNEL_COLUMNS: &str =
    r#""id", "sessionId", "userId", "stage", "action", "metadata", "duration", "timestamp""#;

/// (user agent, device, browser, os, share in percent).
const AGENTS: [(&str, &str, &str, &str, u32); 6] = [
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "mobile",
        "Safari",
        "iOS",
        28,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Chrome",
        "Android",
        27,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "desktop",
        "Chrome",
        "Windows",
        24,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "desktop",
        "Safari",
        "macOS",
        9,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
        "Firefox",
        "Windows",
        7,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "tablet",
        "Safari",
        "iOS",
        5,
    ),
];

/// (country, share in percent).
const COUNTRIES: [(&str, u32); 10] = [
    ("US", 30),
    ("GB", 15),
    ("DE", 12),
    ("FR", 10),
    ("ES", 8),
    ("IT", 7),
    ("NL", 6),
    ("CA", 5),
    ("AU", 4),
    ("IN", 3),
];

const LANDING_PAGES: [&str; 8] = [
    "/",
    "/deals",
    "/destinations",
    "/destinations/lisbon",
    "/destinations/new-york",
    "/deals/paris-spring-sale",
    "/deals/bangkok-from-frankfurt",
    "/blog/cheapest-time-to-fly",
];

const SITE: &str = "https://www.example-travel.com";

/// The booking flow after `flight_search`, with the share of sessions at
/// each step that go on to it (percent).
const FLOW: [(&str, u32); 5] = [
    ("results_view", 88),
    ("flight_selected", 42),
    ("begin_checkout", 55),
    ("payment_started", 72),
    ("booking_complete", 78),
];

/// (name, median, log spread, good ≤, poor >): field values typical of a
/// travel site, thresholds of web-vitals.
const VITALS: [(&str, f64, f64, f64, f64); 5] = [
    ("LCP", 2_300.0, 0.45, 2_500.0, 4_000.0),
    ("FCP", 1_400.0, 0.4, 1_800.0, 3_000.0),
    ("TTFB", 550.0, 0.5, 800.0, 1_800.0),
    ("INP", 140.0, 0.6, 200.0, 500.0),
    ("CLS", 0.05, 0.9, 0.1, 0.25),
];

/// (message, type, severity, page).
const ERRORS: [(&str, &str, &str, &str); 12] = [
    (
        "TypeError: Cannot read properties of undefined (reading 'price')",
        "TypeError",
        "error",
        "/search",
    ),
    (
        "ChunkLoadError: Loading chunk 412 failed",
        "ChunkLoadError",
        "error",
        "/deals",
    ),
    (
        "NetworkError when attempting to fetch resource",
        "TypeError",
        "warning",
        "/search",
    ),
    (
        "ResizeObserver loop completed with undelivered notifications",
        "Error",
        "info",
        "/",
    ),
    (
        "Payment provider timeout after 30000ms",
        "TimeoutError",
        "critical",
        "/checkout",
    ),
    ("Invalid date: departDate", "RangeError", "error", "/search"),
    (
        "Hydration failed because the initial UI does not match",
        "Error",
        "warning",
        "/destinations",
    ),
    ("Script error.", "Error", "info", "/deals/paris-spring-sale"),
    (
        "Failed to load map tiles",
        "Error",
        "warning",
        "/destinations/lisbon",
    ),
    (
        "Unexpected token '<' in JSON",
        "SyntaxError",
        "error",
        "/checkout",
    ),
    ("Seat map failed to render", "Error", "error", "/checkout"),
    (
        "Quota exceeded for localStorage",
        "QuotaExceededError",
        "warning",
        "/",
    ),
];

/// Appends one CSV record: `None` is NULL (an unquoted empty field).
fn record(out: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(text) = field {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        }
    }
    out.push('\n');
}

fn stamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for item in items {
        let w = weight(item);
        if pick < w {
            return item;
        }
        pick -= w;
    }
    &items[0]
}

/// A standard normal deviate (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn percent(rng: &mut ChaCha8Rng, share: u32) -> bool {
    rng.random_range(0..100) < share
}

/// Generates the sample.
pub fn generate(options: &Options) -> Sample {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut sample = Sample::default();
    let seed = options.seed;
    let span = (options.to - options.from).num_milliseconds().max(1);
    // Sessions last up to 20 minutes, less in a short window (the
    // benchmark's hour).
    let session_span = (span / 4).clamp(1, 20 * 60 * 1000);
    let starts_span = (span - session_span).max(1);
    // Returning users: about one signed-in session in three is a new user.
    let users = (options.sessions / 8).max(1);
    let mut starts: Vec<i64> = (0..options.sessions)
        .map(|_| rng.random_range(0..starts_span))
        .collect();
    starts.sort_unstable();
    let mut event_no = 0usize;
    let mut next_id = |kind: &str| {
        event_no += 1;
        format!("sample-{seed}-{kind}{event_no:09}")
    };
    let mut error_hits: Vec<(usize, NaiveDateTime, String)> = Vec::new();
    for (session_no, start) in starts.into_iter().enumerate() {
        let start = options.from + Duration::milliseconds(start);
        let (agent, device, browser, os, _) = *weighted(&mut rng, &AGENTS, |a| a.4);
        let (country, _) = *weighted(&mut rng, &COUNTRIES, |c| c.1);
        let signed_in = percent(&mut rng, 35);
        // Early users come back more: a skewed pick of the pool.
        let user = signed_in.then(|| {
            let share: f64 = rng.random();
            // Within 0..users: share is below 1.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let n = (share.powf(1.7) * users as f64) as usize;
            format!("sample-user-{seed}-{n:06}")
        });
        let session = format!(
            "session_{}_{seed}s{session_no:07}",
            start.and_utc().timestamp_millis()
        );
        let ip = format!(
            "203.0.113.{}",
            1 + session_no % 250 // documentation range, RFC 5737
        );
        let mut at = start;
        let step = |rng: &mut ChaCha8Rng, at: &mut NaiveDateTime| {
            let gap = rng.random_range(2_000..(session_span / 8).max(3_000));
            *at += Duration::milliseconds(gap);
            (*at).min(options.to - Duration::milliseconds(1))
        };
        let event = |sample: &mut Sample,
                     id: String,
                     kind: &str,
                     data: Value,
                     page: &str,
                     at: NaiveDateTime| {
            let url = format!("{SITE}{page}?utm_source=sample");
            record(
                &mut sample.events,
                &[
                    Some(&id),
                    user.as_deref(),
                    Some(&session),
                    Some(kind),
                    Some(&data.to_string()),
                    Some(&url),
                    None,
                    Some(agent),
                    Some(&ip),
                    Some(&stamp(at)),
                ],
            );
            sample.event_count += 1;
        };
        let pages = 1 + rng.random_range(0..4);
        for p in 0..pages {
            let page = LANDING_PAGES[rng.random_range(0..LANDING_PAGES.len())];
            let when = if p == 0 { at } else { step(&mut rng, &mut at) };
            let id = next_id("e");
            event(
                &mut sample,
                id,
                "page_view",
                json!({"country": country, "title": page}),
                page,
                when,
            );
            if percent(&mut rng, 60) {
                vitals(
                    &mut sample,
                    &mut rng,
                    &mut next_id,
                    page,
                    user.as_deref(),
                    &session,
                    (device, browser, os),
                    when,
                );
            }
            if percent(&mut rng, 2) {
                error_hits.push((rng.random_range(0..ERRORS.len()), when, session.clone()));
            }
        }
        if !percent(&mut rng, 45) {
            continue;
        }
        // The booking flow, for one trip of the price model's routes.
        let &(origin, destination, _) =
            &pricing::synthetic::ROUTES[rng.random_range(0..pricing::synthetic::ROUTES.len())];
        let ahead: f64 = rng.random();
        // Within 0..300 days.
        #[allow(clippy::cast_possible_truncation)]
        let days_ahead = (ahead.powf(1.6) * 300.0) as i64;
        let depart = at.date() + Duration::days(days_ahead);
        let back =
            (!percent(&mut rng, 35)).then(|| depart + Duration::days(rng.random_range(1..=21)));
        let trip = json!({
            "country": country, "origin": origin, "destination": destination,
            "departDate": depart.format("%Y-%m-%d").to_string(),
            "returnDate": back.map(|d| d.format("%Y-%m-%d").to_string()),
        });
        let when = step(&mut rng, &mut at);
        let id = next_id("e");
        event(
            &mut sample,
            id,
            "flight_search",
            trip.clone(),
            "/search",
            when,
        );
        let funnel_rows = percent(&mut rng, 20);
        let mut previous = when;
        let mut price = 0.0;
        for (kind, share) in FLOW {
            if !percent(&mut rng, share) {
                break;
            }
            let when = step(&mut rng, &mut at);
            let mut data = trip.clone();
            if kind == "results_view" {
                let expected =
                    pricing::synthetic::expected_price(origin, destination, depart, back, when)
                        .unwrap_or(200.0);
                price = (expected * (0.12 * normal(&mut rng)).exp() * 100.0).round() / 100.0;
            }
            data["price"] = json!(price);
            data["currency"] = json!(pricing::synthetic::CURRENCY);
            if kind == "booking_complete" {
                let travellers = 1 + rng.random_range(0..3);
                data["travellers"] = json!(travellers);
                data["revenue"] = json!((price * f64::from(travellers) * 100.0).round() / 100.0);
                sample.bookings += 1;
            }
            let page = match kind {
                "results_view" | "flight_selected" => "/search",
                _ => "/checkout",
            };
            let id = next_id("e");
            event(&mut sample, id, kind, data, page, when);
            if funnel_rows {
                let id = next_id("f");
                let duration = (when - previous).num_milliseconds().to_string();
                record(
                    &mut sample.funnels,
                    &[
                        Some(&id),
                        Some(&session),
                        user.as_deref(),
                        Some(kind),
                        Some("completed"),
                        Some(&json!({"origin": origin, "destination": destination}).to_string()),
                        Some(&duration),
                        Some(&stamp(when)),
                    ],
                );
                sample.funnel_steps += 1;
            }
            previous = when;
        }
    }
    errors(&mut sample, seed, error_hits);
    sample
}

#[allow(clippy::too_many_arguments)]
fn vitals(
    sample: &mut Sample,
    rng: &mut ChaCha8Rng,
    next_id: &mut impl FnMut(&str) -> String,
    page: &str,
    user: Option<&str>,
    session: &str,
    (device, browser, os): (&str, &str, &str),
    at: NaiveDateTime,
) {
    let url = format!("{SITE}{page}");
    // Phones are slower.
    let slower = if device == "mobile" { 1.3 } else { 1.0 };
    for (name, median, spread, good, poor) in VITALS {
        if name == "INP" && !percent(rng, 50) {
            continue;
        }
        let value = if name == "CLS" {
            if percent(rng, 40) {
                0.0
            } else {
                ((median * (spread * normal(rng)).exp()) * 1000.0).round() / 1000.0
            }
        } else {
            (median * slower * (spread * normal(rng)).exp()).round()
        };
        let rating = if value <= good {
            "good"
        } else if value <= poor {
            "needs-improvement"
        } else {
            "poor"
        };
        let id = next_id("v");
        record(
            &mut sample.vitals,
            &[
                Some(&id),
                Some(name),
                Some(&value.to_string()),
                Some(rating),
                Some(&url),
                user,
                Some(session),
                Some(device),
                Some(browser),
                Some(os),
                Some(&stamp(at)),
            ],
        );
        sample.vital_count += 1;
    }
}

/// One group per error that occurred: its occurrences, last seen at the
/// last of them; every third group resolved a day after its first
/// occurrence, and, when it occurred again later, reopened (a regression,
/// as the intake leaves it: open with `resolvedAt` set).
fn errors(sample: &mut Sample, seed: u64, hits: Vec<(usize, NaiveDateTime, String)>) {
    for (n, (message, error_type, severity, page)) in ERRORS.iter().enumerate() {
        let mine: Vec<&(usize, NaiveDateTime, String)> =
            hits.iter().filter(|hit| hit.0 == n).collect();
        let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
            continue;
        };
        let resolved_at = (n % 3 == 0).then(|| first.1 + Duration::days(1));
        let regressed = resolved_at.is_some_and(|r| last.1 > r);
        let resolved = resolved_at.is_some() && !regressed;
        let id = format!("sample-{seed}-error{n:03}");
        let mut fingerprint = String::new();
        let _ = write!(fingerprint, "sample-{n:03}");
        let count = mine.len().to_string();
        let agent = AGENTS[n % AGENTS.len()];
        record(
            &mut sample.errors,
            &[
                Some(&id),
                Some(message),
                Some(error_type),
                Some(&format!("{SITE}{page}")),
                Some(&last.2),
                Some(agent.0),
                Some(agent.2),
                Some(agent.3),
                Some(severity),
                Some(if resolved { "true" } else { "false" }),
                resolved_at.map(stamp).as_deref(),
                resolved_at.map(|_| "sample@example.com"),
                Some(&fingerprint),
                Some(&count),
                Some(&stamp(last.1)),
            ],
        );
        sample.error_groups += 1;
    }
}

/// Loads `sample` by COPY in one transaction, with experiment
/// participations for its sessions if an experiment is running; how many
/// participations, or `None` when its first event is stored already (the
/// same sample was loaded: nothing is done).
pub async fn load(
    client: &mut deadpool_postgres::Client,
    options: &Options,
    sample: &Sample,
) -> anyhow::Result<Option<u64>> {
    let first = format!("sample-{}-e{:09}", options.seed, 1);
    let tx = client.transaction().await?;
    let loaded = tx
        .query_opt(
            r#"SELECT 1 FROM "analytics_events" WHERE "id" = $1"#,
            &[&first],
        )
        .await?
        .is_some();
    if loaded {
        return Ok(None);
    }
    for (table, columns, csv) in [
        ("analytics_events", EVENT_COLUMNS, &sample.events),
        ("performance_metrics", VITAL_COLUMNS, &sample.vitals),
        ("error_logs", ERROR_COLUMNS, &sample.errors),
        ("conversion_funnels", FUNNEL_COLUMNS, &sample.funnels),
    ] {
        // Table and column names are the constants above, never input.
        let copy = format!(r#"COPY "{table}" ({columns}) FROM STDIN (FORMAT csv)"#);
        let sink = tx.copy_in(&copy).await?;
        let mut sink = std::pin::pin!(sink);
        for chunk in csv.as_bytes().chunks(1 << 20) {
            sink.feed(Bytes::copy_from_slice(chunk)).await?;
        }
        sink.as_mut().finish().await?;
    }
    let participations = tx
        .execute(
            ASSIGN_SAMPLE_SESSIONS,
            &[
                &format!("sample-{}-", options.seed),
                &options.from,
                &options.to,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(Some(participations))
}

/// Assigns each session of the sample (its events' ids begin with `$1`;
/// by the timestamp index over `[$2, $3)`) to a variant of every running
/// experiment, as the evaluation would have: by a hash of the session, at
/// its first event; converted with its booking's revenue. By session only
/// (`userId` left empty): `experiment_participations` allows one row per
/// user and flag, and a returning user has many sessions.
const ASSIGN_SAMPLE_SESSIONS: &str = concat!(
    r#"
    INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant", "assignedAt",
        "converted", "convertedAt", "conversionValue")
    SELECT $1 || 'x-' || f."id" || '-' || s."sessionId", f."id", s."sessionId",
           f."variants"->(abs(hashtext(f."key" || s."sessionId")) % jsonb_array_length(f."variants"))->>'id',
           s."first", s."booked" IS NOT NULL, s."booked", s."revenue"
    FROM (
        SELECT e."sessionId", min(e."timestamp") AS "first",
               min(e."timestamp") FILTER (WHERE e."eventType" = 'booking_complete') AS "booked",
               sum(CASE WHEN e."eventType" = 'booking_complete' THEN "#,
    super::rollup::booking_revenue!(r#"e."eventData""#),
    r#" END) AS "revenue"
        FROM "analytics_events" e
        WHERE e."timestamp" >= $2 AND e."timestamp" < $3 AND starts_with(e."id", $1)
        GROUP BY e."sessionId"
    ) s
    CROSS JOIN "feature_flags" f
    WHERE f."isExperiment" AND f."experimentStatus" = 'running'
      AND jsonb_typeof(f."variants") = 'array' AND jsonb_array_length(f."variants") > 0
    ON CONFLICT DO NOTHING"#
);

/// The `sample-data` command: generates, loads, then rolls up and computes
/// the cohorts over the sample's window.
pub async fn run(
    client: &mut deadpool_postgres::Client,
    options: &Options,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let sample = generate(options);
    let generated = started.elapsed().as_secs_f64();
    let loaded = load(client, options, &sample).await?;
    let load_seconds = started.elapsed().as_secs_f64() - generated;
    let rollup = super::rollup::run(
        client,
        super::rollup::Window::Backfill {
            from: options.from,
            to: options.to,
        },
        super::rollup::Granularities::Both,
        None,
    )
    .await?;
    let cohorts = super::cohorts::run(client, Some((options.from, options.to)), None).await?;
    Ok(json!({
        "loaded": loaded.is_some(),
        "experimentParticipations": loaded.unwrap_or(0),
        "from": options.from.and_utc().to_rfc3339(),
        "to": options.to.and_utc().to_rfc3339(),
        "events": sample.event_count,
        "vitals": sample.vital_count,
        "errorGroups": sample.error_groups,
        "funnelSteps": sample.funnel_steps,
        "bookings": sample.bookings,
        "generateSeconds": generated,
        "loadSeconds": load_seconds,
        "rollup": rollup,
        "cohorts": cohorts,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// Writes the sample as CSV files into `dir` (for `psql \copy`: the
/// benchmark), named after their tables.
pub fn write_csv(sample: &Sample, dir: &std::path::Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir)?;
    for (name, csv) in [
        ("analytics_events", &sample.events),
        ("performance_metrics", &sample.vitals),
        ("error_logs", &sample.errors),
        ("conversion_funnels", &sample.funnels),
    ] {
        std::fs::write(dir.join(format!("{name}.csv")), csv)?;
    }
    Ok(json!({
        "events": sample.event_count,
        "vitals": sample.vital_count,
        "errorGroups": sample.error_groups,
        "funnelSteps": sample.funnel_steps,
        "columns": {
            "analytics_events": EVENT_COLUMNS,
            "performance_metrics": VITAL_COLUMNS,
            "error_logs": ERROR_COLUMNS,
            "conversion_funnels": FUNNEL_COLUMNS,
        },
    }))
}

/// The end of the current hour: the default end of a sample.
pub fn this_hour_end(now: NaiveDateTime) -> NaiveDateTime {
    now.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .map_or(now, |t| t + Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("time")
    }

    #[test]
    fn the_same_seed_gives_the_same_sample() {
        let options = Options {
            seed: 7,
            from: at("2026-11-01 00:00:00"),
            to: at("2026-11-02 00:00:00"),
            sessions: 300,
        };
        let a = generate(&options);
        let b = generate(&options);
        assert_eq!(a.events, b.events);
        assert_eq!(a.vitals, b.vitals);
        assert!(a.event_count > 300 && a.bookings > 0);
        let other = generate(&Options { seed: 8, ..options });
        assert_ne!(a.events, other.events);
    }

    #[test]
    fn every_event_lies_in_the_window() {
        let options = Options {
            seed: 1,
            from: at("2026-11-20 10:00:00"),
            to: at("2026-11-20 11:00:00"),
            sessions: 500,
        };
        let sample = generate(&options);
        for line in sample.events.lines() {
            let stamp = line
                .rsplit(',')
                .next()
                .expect("timestamp")
                .trim_matches('"');
            let time = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").expect("time");
            assert!(time >= options.from && time < options.to, "{time}");
        }
    }

    #[test]
    fn csv_quotes_text_and_leaves_null_empty() {
        let mut out = String::new();
        record(&mut out, &[Some("a\"b"), None, Some("")]);
        assert_eq!(out, "\"a\"\"b\",,\"\"\n");
    }
}
