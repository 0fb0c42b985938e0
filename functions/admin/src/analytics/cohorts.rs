//! The cohort job: one `user_cohorts` row per signed-in user (events with
//! a `userId`), updated incrementally.
//!
//! **Definitions** (all days are UTC calendar days):
//! - `cohortDate`: the day of the user's first event, at 00:00;
//!   `cohortWeek`: its ISO 8601 week, `2026-W48` (the ISO year: 2025-12-29
//!   is in `2026-W01`, 2027-01-01 in `2026-W53`); `cohortMonth`: `2026-11`.
//! - `dayNRetained` (N = 1, 7, 30): the user has an event on day N after
//!   the cohort day, i.e. on `cohortDate + N days`, as PostHog's and
//!   Amplitude's "day N" retention: exactly that day, not "N days or later".
//! - `lastActiveAt`: the time of the user's newest event.
//! - `totalSessions`: distinct `sessionId`s of the user's events;
//!   `totalSearches` / `totalBookings`: their `flight_search` /
//!   `booking_complete` events; `lifetimeValue`: the bookings' revenue, as
//!   the rollup defines it (`revenue`, else `value`, else `price`).
//!
//! **Incremental.** A run reads the events stored since its watermark
//! (`bundle.cohort_watermark`, less [`RECHECK`] for events that arrive a
//! little late) by `analytics_events_timestamp_idx`, only to learn which
//! users were active; each of those users is then recomputed from their
//! whole history by `analytics_events_userId_timestamp_idx` (a user's
//! retention on day 30 needs their first day; their totals need everything).
//! A user not active since the last run cannot have changed. Rows are
//! upserted on `user_cohorts_userId_key`, and rewritten only when a value
//! changed. The cohort day can only move earlier (a backfill of older
//! events): it is the earlier of the stored one and the first event's day,
//! so the retention flags are measured from it. Runs go in slices of a day
//! of events, each committed with the watermark, for as long as the time
//! budget allows: a missed run or a first run over a long history is
//! caught up over the next runs. `--from/--to` recomputes the users active
//! in the window and leaves the watermark alone.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};

use super::rollup::booking_revenue;

/// How far before its watermark a run looks again for active users: events
/// carry the client's time and arrive a little late (batched beacons).
/// Later ones are taken in by a backfill of their window.
pub const RECHECK: TimeDelta = TimeDelta::hours(3);

/// The events a slice of a run reads: a day.
const SLICE: TimeDelta = TimeDelta::days(1);

/// Users recomputed per statement.
const USERS_PER_STATEMENT: usize = 2_000;

/// The users with an event in `[$1, $2)`, by the timestamp index.
const ACTIVE_USERS: &str = r#"
    SELECT DISTINCT "userId" FROM "analytics_events"
    WHERE "timestamp" >= $1 AND "timestamp" < $2 AND "userId" IS NOT NULL"#;

/// Recomputes the rows of the users in `$1` (their new row ids in `$2`)
/// from their whole history; `$3` is the time written to `updatedAt`.
const RECOMPUTE: &str = concat!(
    r#"
    WITH wanted AS (
        SELECT * FROM unnest($1::text[], $2::text[]) AS w("userId", "id")
    ), history AS (
        SELECT e."userId",
               min(e."timestamp") AS "first",
               max(e."timestamp") AS "last",
               count(DISTINCT e."sessionId")::int AS "sessions",
               count(*) FILTER (WHERE e."eventType" = 'flight_search')::int AS "searches",
               count(*) FILTER (WHERE e."eventType" = 'booking_complete')::int AS "bookings",
               coalesce(sum(CASE WHEN e."eventType" = 'booking_complete' THEN "#,
    booking_revenue!(r#"e."eventData""#),
    r#" END), 0)::float8 AS "ltv",
               array_agg(DISTINCT date_trunc('day', e."timestamp")) AS "days"
        FROM "analytics_events" e
        WHERE e."userId" = ANY($1)
        GROUP BY e."userId"
    ), computed AS (
        SELECT w."id", h.*,
               least(date_trunc('day', h."first"), c."cohortDate") AS "cohortDay",
               greatest(h."last", c."lastActiveAt") AS "lastActive"
        FROM wanted w
        JOIN history h ON h."userId" = w."userId"
        LEFT JOIN "user_cohorts" c ON c."userId" = w."userId"
    )
    INSERT INTO "user_cohorts" ("id", "userId", "cohortDate", "cohortWeek", "cohortMonth", "lastActiveAt",
        "day1Retained", "day7Retained", "day30Retained", "totalSessions", "totalSearches", "totalBookings",
        "lifetimeValue", "createdAt", "updatedAt")
    SELECT "id", "userId", "cohortDay", to_char("cohortDay", 'IYYY-"W"IW'), to_char("cohortDay", 'YYYY-MM'),
           "lastActive",
           ("cohortDay" + interval '1 day') = ANY("days"),
           ("cohortDay" + interval '7 days') = ANY("days"),
           ("cohortDay" + interval '30 days') = ANY("days"),
           "sessions", "searches", "bookings", "ltv", $3, $3
    FROM computed
    ON CONFLICT ("userId") DO UPDATE
    SET "cohortDate" = EXCLUDED."cohortDate", "cohortWeek" = EXCLUDED."cohortWeek",
        "cohortMonth" = EXCLUDED."cohortMonth", "lastActiveAt" = EXCLUDED."lastActiveAt",
        "day1Retained" = EXCLUDED."day1Retained", "day7Retained" = EXCLUDED."day7Retained",
        "day30Retained" = EXCLUDED."day30Retained", "totalSessions" = EXCLUDED."totalSessions",
        "totalSearches" = EXCLUDED."totalSearches", "totalBookings" = EXCLUDED."totalBookings",
        "lifetimeValue" = EXCLUDED."lifetimeValue", "updatedAt" = EXCLUDED."updatedAt"
    WHERE ("user_cohorts"."cohortDate", "user_cohorts"."lastActiveAt", "user_cohorts"."day1Retained",
           "user_cohorts"."day7Retained", "user_cohorts"."day30Retained", "user_cohorts"."totalSessions",
           "user_cohorts"."totalSearches", "user_cohorts"."totalBookings", "user_cohorts"."lifetimeValue")
          IS DISTINCT FROM
          (EXCLUDED."cohortDate", EXCLUDED."lastActiveAt", EXCLUDED."day1Retained", EXCLUDED."day7Retained",
           EXCLUDED."day30Retained", EXCLUDED."totalSessions", EXCLUDED."totalSearches",
           EXCLUDED."totalBookings", EXCLUDED."lifetimeValue")"#
);

/// One lock for every cohort run: two never recompute the same user at once.
const COHORTS_LOCK: i64 = 0x636f_686f_7274; // "cohort"

/// Runs the job over the events since the watermark, or, with a window,
/// over `[from, to)`; `budget`: how long it starts new slices for. Its
/// summary's `usersRecomputed` counts a user once per slice they were
/// active in.
pub async fn run(
    client: &mut deadpool_postgres::Client,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    budget: Option<Duration>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let now = platform::clock::now_millis();
    let (from, to) = match window {
        Some(window) => window,
        None => {
            let watermark: Option<NaiveDateTime> = client
                .query_opt(
                    r#"SELECT "readUntil" FROM "bundle"."cohort_watermark""#,
                    &[],
                )
                .await?
                .map(|row| row.get(0));
            let from = match watermark {
                Some(watermark) => Some(watermark - RECHECK),
                // By the timestamp index: its first entry.
                None => client
                    .query_one(r#"SELECT min("timestamp") FROM "analytics_events""#, &[])
                    .await?
                    .get(0),
            };
            // Events stamped a little ahead of the server's clock count
            // too; the next run reads from here less RECHECK anyway.
            (from.unwrap_or(now), now + TimeDelta::minutes(1))
        }
    };
    let mut read_until = from;
    let mut users = 0usize;
    let mut changed = 0u64;
    while read_until < to {
        if budget.is_some_and(|budget| started.elapsed() >= budget) {
            break;
        }
        let slice_end = (read_until + SLICE).min(to);
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COHORTS_LOCK])
            .await?;
        let (active, rewritten) = recompute_active(&tx, read_until, slice_end, now).await?;
        users += active;
        changed += rewritten;
        if window.is_none() {
            tx.execute(
                r#"INSERT INTO "bundle"."cohort_watermark" ("readUntil", "updatedAt") VALUES ($1, $2)
                   ON CONFLICT ("singleton") DO UPDATE
                   SET "readUntil" = greatest(EXCLUDED."readUntil", "bundle"."cohort_watermark"."readUntil"),
                       "updatedAt" = EXCLUDED."updatedAt""#,
                &[&slice_end, &now],
            )
            .await?;
        }
        tx.commit().await?;
        read_until = slice_end;
    }
    Ok(json!({
        "from": from.and_utc().to_rfc3339(),
        "to": to.and_utc().to_rfc3339(),
        "readUntil": read_until.and_utc().to_rfc3339(),
        "complete": read_until >= to,
        "usersRecomputed": users,
        "rowsWritten": changed,
        "backfill": window.is_some(),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// Recomputes every user active in `[from, to)`; returns how many there
/// were and how many rows changed.
async fn recompute_active(
    tx: &impl GenericClient,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> anyhow::Result<(usize, u64)> {
    let active: Vec<String> = tx
        .query(ACTIVE_USERS, &[&from, &to])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut changed = 0;
    for users in active.chunks(USERS_PER_STATEMENT) {
        let ids: Vec<String> = users.iter().map(|_| platform::ids::new_id()).collect();
        changed += tx.execute(RECOMPUTE, &[&users, &ids, &now]).await?;
    }
    Ok((active.len(), changed))
}
