//! The search-popularity job: flight searches raise the popularity of the
//! suggestions they name.
//!
//! **What is read.** `analytics_events` rows of type `flight_search`, by
//! the `("eventType", "timestamp")` index over the window's hours only. Of
//! their `eventData`, the keys `origin` and `destination`, when each holds
//! an IATA code (three letters, any case, surrounding spaces ignored; the
//! intake stores what the site sends, e.g. `{"origin": "LIS",
//! "destination": "JFK", ...}`). Each names the airport and city
//! suggestions whose `code` it is (an airport `LIS`; a city with a
//! metropolitan code such as `NYC`); every occurrence counts one search.
//! Anything else (city names, unknown codes) is ignored.
//!
//! **Why a ledger.** Events carry the client's time, which the intake
//! accepts up to 30 days late, so "events since the last timestamp
//! counted" misses late ones; and a backfill must not count twice what a
//! run already counted. So the job keeps, in
//! `bundle.search_popularity_hours`, what it credited per hour and
//! suggestion. Counting a window means: count its hours again from the
//! events, add `new − recorded` to each suggestion's `popularity`, and
//! record the new counts. Hence:
//! - a rerun of the same window adds nothing (the difference is zero);
//! - a backfill (`--from/--to`) of any window, counted or not, adds only
//!   what was not credited yet, and never moves the watermark;
//! - late events are credited when their hour is counted again;
//! - `popularity` stays the column an editor sets: the job only adds
//!   differences to it, so a value set by hand is the new base.
//!
//! **The scheduled run** (no window) counts from [`RECOUNT_HOURS`] before
//! its watermark (`bundle.search_popularity_watermark`) to the end of the
//! current hour, then sets the watermark there: a missed run is caught up
//! by the next, and events up to a day late are credited. The first run
//! starts at the oldest `flight_search` event. Events later than a day are
//! credited by a backfill of their window.
//!
//! **Destinations** are counted the same way, into their `searches`
//! counter: the events whose `destination` is a destination's airport,
//! with a ledger of their own (`bundle.destination_search_hours`). A count
//! is not an edit, so their `updatedAt` stays.
//!
//! One run is one transaction holding an exclusive lock on the ledger, so
//! two runs never credit the same hour twice. Raised suggestions get a new
//! `updatedAt`, which the containers' index check sees.

use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, TimeDelta, Utc};
use platform::db::Pool;
use serde_json::{Value, json};

/// How far before its watermark the scheduled run counts again, for
/// events that arrive late (offline beacons).
pub const RECOUNT_HOURS: i64 = 24;

/// Searches per hour and suggestion, from the events.
const COUNT_SEARCHES: &str = r#"
    SELECT date_trunc('hour', e."timestamp") AS "hour", s."id", count(*)::int
    FROM "analytics_events" e
    CROSS JOIN LATERAL (VALUES (e."eventData"->>'origin'), (e."eventData"->>'destination')) AS named("code")
    JOIN "search_suggestions" s
      ON s."code" = upper(btrim(named."code")) AND s."type" IN ('airport', 'city')
    WHERE e."eventType" = 'flight_search' AND e."timestamp" >= $1 AND e."timestamp" < $2
      AND btrim(named."code") ~ '^[A-Za-z]{3}$'
    GROUP BY 1, 2"#;

/// Adds to each suggestion the difference between its fresh count over
/// the window and what the ledger recorded for it there.
const APPLY_DIFFERENCES: &str = r#"
    WITH fresh AS (
        SELECT "suggestionId", sum("searches")::bigint AS "searches"
        FROM unnest($1::text[], $2::int[]) AS f("suggestionId", "searches")
        GROUP BY 1
    ), recorded AS (
        SELECT "suggestionId", sum("searches")::bigint AS "searches"
        FROM "bundle"."search_popularity_hours"
        WHERE "hour" >= $3 AND "hour" < $4
        GROUP BY 1
    ), difference AS (
        SELECT coalesce(f."suggestionId", r."suggestionId") AS "id",
               coalesce(f."searches", 0) - coalesce(r."searches", 0) AS "change"
        FROM fresh f FULL JOIN recorded r ON r."suggestionId" = f."suggestionId"
    )
    UPDATE "search_suggestions" s
    SET "popularity" = greatest(0, least(2147483647, s."popularity"::bigint + d."change"))::int,
        "updatedAt" = $5
    FROM difference d
    WHERE s."id" = d."id" AND d."change" <> 0
    RETURNING d."change""#;

/// Searches per hour and destination: the events' `destination` only (a
/// search *to* the place).
const COUNT_DESTINATION_SEARCHES: &str = r#"
    SELECT date_trunc('hour', e."timestamp") AS "hour", d."id", count(*)::int
    FROM "analytics_events" e
    JOIN "destinations" d ON d."airportCode" = upper(btrim(e."eventData"->>'destination'))
    WHERE e."eventType" = 'flight_search' AND e."timestamp" >= $1 AND e."timestamp" < $2
      AND btrim(e."eventData"->>'destination') ~ '^[A-Za-z]{3}$'
    GROUP BY 1, 2"#;

/// [`APPLY_DIFFERENCES`] for destinations' `searches` counter. A count is
/// not an edit: `updatedAt` stays.
const APPLY_DESTINATION_DIFFERENCES: &str = r#"
    WITH fresh AS (
        SELECT "destinationId", sum("searches")::bigint AS "searches"
        FROM unnest($1::text[], $2::int[]) AS f("destinationId", "searches")
        GROUP BY 1
    ), recorded AS (
        SELECT "destinationId", sum("searches")::bigint AS "searches"
        FROM "bundle"."destination_search_hours"
        WHERE "hour" >= $3 AND "hour" < $4
        GROUP BY 1
    ), difference AS (
        SELECT coalesce(f."destinationId", r."destinationId") AS "id",
               coalesce(f."searches", 0) - coalesce(r."searches", 0) AS "change"
        FROM fresh f FULL JOIN recorded r ON r."destinationId" = f."destinationId"
    )
    UPDATE "destinations" t
    SET "searches" = greatest(0, least(2147483647, t."searches"::bigint + d."change"))::int
    FROM difference d
    WHERE t."id" = d."id" AND d."change" <> 0
    RETURNING d."change""#;

/// Runs the job over `[from, to)` (each rounded out to whole hours), or,
/// with neither, from the watermark; returns its summary.
pub async fn run(
    pool: &Pool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> anyhow::Result<Value> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(r#"LOCK TABLE "bundle"."search_popularity_hours" IN EXCLUSIVE MODE"#)
        .await?;
    let watermark: Option<NaiveDateTime> = tx
        .query_opt(
            r#"SELECT "countedUntil" FROM "bundle"."search_popularity_watermark""#,
            &[],
        )
        .await?
        .map(|row| row.get(0));
    let backfill = from.is_some() || to.is_some();
    let end = hour_ceiling(to.unwrap_or_else(Utc::now))?;
    let start = match (from, watermark) {
        (Some(from), _) => Some(hour_floor(from)?),
        (None, Some(watermark)) => Some(watermark - Duration::hours(RECOUNT_HOURS)),
        // By the index: the first entry of the "flight_search" range.
        (None, None) => tx
            .query_one(
                r#"SELECT min("timestamp") FROM "analytics_events" WHERE "eventType" = 'flight_search'"#,
                &[],
            )
            .await?
            .get::<_, Option<NaiveDateTime>>(0)
            .map(|first| hour_floor(first.and_utc()))
            .transpose()?,
    };
    let summary = match start.filter(|start| *start < end) {
        None => {
            json!({"hours": 0, "events": 0, "searches": 0, "suggestionsRaised": 0, "suggestionsLowered": 0})
        }
        Some(start) => count_window(&tx, start, end).await?,
    };
    // A backfill never moves the watermark: the hours between the
    // watermark and the backfill's start are not counted yet.
    if !backfill {
        tx.execute(
            r#"INSERT INTO "bundle"."search_popularity_watermark" ("countedUntil", "updatedAt")
               VALUES ($1, $2)
               ON CONFLICT ("singleton") DO UPDATE SET "countedUntil" = greatest(EXCLUDED."countedUntil",
                   "bundle"."search_popularity_watermark"."countedUntil"), "updatedAt" = EXCLUDED."updatedAt""#,
            &[&end, &platform::clock::now_millis()],
        )
        .await?;
    }
    tx.commit().await?;
    let mut summary = summary;
    if let Some(object) = summary.as_object_mut() {
        object.insert("backfill".into(), json!(backfill));
        object.insert(
            "from".into(),
            json!(start.map(|s| s.and_utc().to_rfc3339())),
        );
        object.insert("to".into(), json!(end.and_utc().to_rfc3339()));
    }
    Ok(summary)
}

async fn count_window(
    tx: &deadpool_postgres::Transaction<'_>,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> anyhow::Result<Value> {
    let events: i64 = tx
        .query_one(
            r#"SELECT count(*) FROM "analytics_events"
               WHERE "eventType" = 'flight_search' AND "timestamp" >= $1 AND "timestamp" < $2"#,
            &[&start, &end],
        )
        .await?
        .get(0);
    let counted = tx.query(COUNT_SEARCHES, &[&start, &end]).await?;
    let hours: Vec<NaiveDateTime> = counted.iter().map(|r| r.get(0)).collect();
    let ids: Vec<String> = counted.iter().map(|r| r.get(1)).collect();
    let searches: Vec<i32> = counted.iter().map(|r| r.get(2)).collect();
    let changes: Vec<i64> = tx
        .query(
            APPLY_DIFFERENCES,
            &[
                &ids,
                &searches,
                &start,
                &end,
                &platform::clock::now_millis(),
            ],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    tx.execute(
        r#"DELETE FROM "bundle"."search_popularity_hours" WHERE "hour" >= $1 AND "hour" < $2"#,
        &[&start, &end],
    )
    .await?;
    tx.execute(
        r#"INSERT INTO "bundle"."search_popularity_hours" ("hour", "suggestionId", "searches")
           SELECT * FROM unnest($1::timestamp[], $2::text[], $3::int[])"#,
        &[&hours, &ids, &searches],
    )
    .await?;
    let destinations = count_destinations(tx, start, end).await?;
    Ok(json!({
        "destinationsCounted": destinations,
        "hours": (end - start).num_hours(),
        "events": events,
        "searches": searches.iter().map(|&s| i64::from(s)).sum::<i64>(),
        "suggestionsRaised": changes.iter().filter(|&&c| c > 0).count(),
        "suggestionsLowered": changes.iter().filter(|&&c| c < 0).count(),
    }))
}

/// The destinations' share of [`count_window`]: their `searches` counter
/// and its ledger; returns how many destinations changed.
async fn count_destinations(
    tx: &deadpool_postgres::Transaction<'_>,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> anyhow::Result<usize> {
    let counted = tx
        .query(COUNT_DESTINATION_SEARCHES, &[&start, &end])
        .await?;
    let hours: Vec<NaiveDateTime> = counted.iter().map(|r| r.get(0)).collect();
    let ids: Vec<String> = counted.iter().map(|r| r.get(1)).collect();
    let searches: Vec<i32> = counted.iter().map(|r| r.get(2)).collect();
    let changed = tx
        .query(
            APPLY_DESTINATION_DIFFERENCES,
            &[&ids, &searches, &start, &end],
        )
        .await?
        .len();
    tx.execute(
        r#"DELETE FROM "bundle"."destination_search_hours" WHERE "hour" >= $1 AND "hour" < $2"#,
        &[&start, &end],
    )
    .await?;
    tx.execute(
        r#"INSERT INTO "bundle"."destination_search_hours" ("hour", "destinationId", "searches")
           SELECT * FROM unnest($1::timestamp[], $2::text[], $3::int[])"#,
        &[&hours, &ids, &searches],
    )
    .await?;
    Ok(changed)
}

fn hour_floor(instant: DateTime<Utc>) -> anyhow::Result<NaiveDateTime> {
    Ok(instant.duration_trunc(TimeDelta::hours(1))?.naive_utc())
}

fn hour_ceiling(instant: DateTime<Utc>) -> anyhow::Result<NaiveDateTime> {
    let floor = instant.duration_trunc(TimeDelta::hours(1))?;
    Ok(if floor == instant {
        floor
    } else {
        floor + TimeDelta::hours(1)
    }
    .naive_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_rounded_out_to_whole_hours() {
        let t: DateTime<Utc> = "2026-11-01T10:20:00Z".parse().expect("time");
        assert_eq!(
            hour_floor(t).expect("floor").to_string(),
            "2026-11-01 10:00:00"
        );
        assert_eq!(
            hour_ceiling(t).expect("ceiling").to_string(),
            "2026-11-01 11:00:00"
        );
        let on_the_hour: DateTime<Utc> = "2026-11-01T10:00:00Z".parse().expect("time");
        assert_eq!(
            hour_ceiling(on_the_hour).expect("ceiling").to_string(),
            "2026-11-01 10:00:00"
        );
    }
}
