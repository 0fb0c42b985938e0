//! The `prediction-accuracy` job: how right the served price predictions
//! turned out, per model version.
//!
//! Each expired prediction of `price_predictions` (made by a version of the
//! `price` model in `bundle.model_versions`) is settled once against the
//! fares observed after it (`bundle.observed_fares`, same origin,
//! destination, departDate and returnDate), and its outcome recorded in
//! `bundle.prediction_outcomes`:
//!
//! - **Price**: the realised price is the first fare observed from the
//!   prediction's `createdAt` until [`PRICE_WINDOW`] later (7 days, or the
//!   end of the departure day if sooner). Its absolute and percentage error
//!   against `predictedPrice`, and whether it fell within `priceRange`
//!   (low..=high), are what MAPE, MAE and interval coverage average. A
//!   prediction is about the price when it is asked; a fare seen weeks
//!   later is a different question, hence the window. Fares are sparse
//!   (they come from visitors' searches), hence not the prediction's own
//!   few hours of validity.
//! - **Wait**: measured against the reference price, the asker's
//!   `currentPrice` or, without one, the predicted price. `wait` saved
//!   money when a fare observed after `createdAt` and before the end of the
//!   departure day was below the reference; the saving recorded is the
//!   reference less the lowest such fare (the best a visitor who waited
//!   could have done; negative when every later fare was dearer).
//!
//! A prediction is settled when it has expired and either its departure day
//! has ended, or its realised price is known and (for `wait`) a cheaper
//! fare has been seen; until then it is left for a later run. So a
//! prediction with no later fare stays unsettled until its departure, then
//! is recorded `unmatched` (and a `wait` without any later fare has no
//! verdict). Settled outcomes are not revisited, except by a rescoring
//! window (`--from/--to`, by the predictions' `createdAt`), which deletes
//! and settles again the outcomes of that window: for fares imported late.
//!
//! Per version, the outcomes give `metrics -> 'realised'` of its
//! `bundle.model_versions` row and, when it is the active version, of its
//! `ml_models` row (the rest of `metrics` is kept; activation copies the
//! version's metrics, `realised` included). The numbers use the units of the
//! holdout metrics: `mape` 0.1 = 10%.
//!
//! A scheduled run reads predictions from `bundle.prediction_accuracy_watermark`
//! on, by the index on "createdAt": every prediction created before it is
//! settled. A `wait` far ahead of its departure holds the watermark back
//! until it is settled, which is the price of settling it right. One run at
//! a time (an advisory lock); a run is one transaction, so repeating it, or
//! running it after a failure, changes nothing that was settled.
//!
//! A run is bounded (the jobs function has 300 s): it reads only the
//! predictions it can settle now, oldest first, at most
//! [`MAX_SETTLED_PER_RUN`] of them (`more` in its report says it stopped
//! there; the next run goes on). Those that must wait for fares or their
//! departure are passed over in the query, not read, so however many are
//! waiting, each run settles what can be settled.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde::Serialize;
use serde_json::{Value, json};

/// The model whose predictions are scored.
pub const MODEL_NAME: &str = "price";

/// How long after a prediction the fare that realises its price may be
/// observed.
pub const PRICE_WINDOW: TimeDelta = TimeDelta::days(7);

/// Predictions settled at most by one run.
pub const MAX_SETTLED_PER_RUN: i64 = 20_000;

/// Outcomes inserted per statement.
const OUTCOMES_PER_INSERT: usize = 2_000;

/// Before any prediction: the lower bound of a first run.
const BEGINNING: NaiveDateTime = chrono::DateTime::UNIX_EPOCH.naive_utc();

/// Serialises runs (an arbitrary constant, unique in this code base).
const RUN_LOCK: i64 = 0x7072_6564_6163_6375; // "predacu"

/// An expired prediction, with what was observed after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub model_version: String,
    pub predicted_at: NaiveDateTime,
    pub depart_date: NaiveDate,
    pub predicted_price: f64,
    pub low: f64,
    pub high: f64,
    pub recommendation: Option<String>,
    pub current_price: Option<f64>,
    /// The first fare (price, when observed) within the price window.
    pub first_fare: Option<(f64, NaiveDateTime)>,
    /// The lowest fare observed after the prediction, until now and the end
    /// of the departure day.
    pub lowest_later: Option<f64>,
}

/// What became of a prediction (a row of `bundle.prediction_outcomes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub prediction_id: String,
    pub model_version: String,
    pub predicted_at: NaiveDateTime,
    /// `scored` or `unmatched`.
    pub status: &'static str,
    pub predicted_price: f64,
    pub low: f64,
    pub high: f64,
    pub recommendation: Option<String>,
    pub reference_price: f64,
    pub observed_price: Option<f64>,
    pub observed_at: Option<NaiveDateTime>,
    pub absolute_error: Option<f64>,
    pub percentage_error: Option<f64>,
    pub within_range: Option<bool>,
    pub lowest_later_price: Option<f64>,
    pub wait_saved: Option<bool>,
    pub wait_saving: Option<f64>,
    pub scored_at: NaiveDateTime,
}

/// The end of the departure day (UTC): fares are still seen on it.
fn departure_end(depart: NaiveDate) -> NaiveDateTime {
    (depart + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or(NaiveDateTime::MAX)
}

impl Candidate {
    /// The outcome, once it can be settled at `now` (see the module
    /// documentation); `None` while it cannot.
    pub fn settle(&self, now: NaiveDateTime) -> Option<Outcome> {
        let reference = self.current_price.unwrap_or(self.predicted_price);
        let is_wait = self.recommendation.as_deref() == Some("wait");
        let cheaper_seen = self.lowest_later.is_some_and(|lowest| lowest < reference);
        let departed = now >= departure_end(self.depart_date);
        let decided = departed || (self.first_fare.is_some() && (!is_wait || cheaper_seen));
        if !decided {
            return None;
        }
        let observed = self.first_fare.map(|(price, _)| price);
        let absolute_error = observed.map(|o| (o - self.predicted_price).abs());
        let (wait_saved, wait_saving) = match (is_wait, self.lowest_later) {
            (true, Some(lowest)) => (Some(lowest < reference), Some(reference - lowest)),
            _ => (None, None),
        };
        Some(Outcome {
            prediction_id: self.id.clone(),
            model_version: self.model_version.clone(),
            predicted_at: self.predicted_at,
            status: if observed.is_some() {
                "scored"
            } else {
                "unmatched"
            },
            predicted_price: self.predicted_price,
            low: self.low,
            high: self.high,
            recommendation: self.recommendation.clone(),
            reference_price: reference,
            observed_price: observed,
            observed_at: self.first_fare.map(|(_, at)| at),
            absolute_error,
            percentage_error: observed.zip(absolute_error).map(|(o, error)| error / o),
            within_range: observed.map(|o| self.low <= o && o <= self.high),
            lowest_later_price: self.lowest_later,
            wait_saved,
            wait_saving,
            scored_at: now,
        })
    }
}

/// Predictions of the `price` model's versions, not settled, created in
/// [$1, $2), expired by $3, that can be settled at $3 (the condition of
/// [`Candidate::settle`], so that those that cannot are not read), the
/// oldest $6; with the first fare of their price window and the lowest fare
/// after them. The fares by the index on (origin,
/// destination, departDate, observedAt); the predictions by the one on
/// "createdAt". "departDate" is text in the contract: only predictions
/// serving wrote (the version check) are read, whose dates are YYYY-MM-DD.
const CANDIDATES: &str = r#"
SELECT p."id", p."modelVersion", p."createdAt", p."departDate"::date, p."predictedPrice",
       (p."priceRange"->>'low')::float8, (p."priceRange"->>'high')::float8, p."recommendation",
       (p."features"->>'currentPrice')::float8, first_fare."price", first_fare."observedAt", later."lowest"
FROM "price_predictions" p
LEFT JOIN LATERAL (
    SELECT f."price", f."observedAt" FROM "bundle"."observed_fares" f
    WHERE f."origin" = p."origin" AND f."destination" = p."destination"
      AND f."departDate" = p."departDate"::date
      AND f."returnDate" IS NOT DISTINCT FROM p."returnDate"::date
      AND f."observedAt" >= p."createdAt"
      AND f."observedAt" < least(p."createdAt" + make_interval(secs => $4), p."departDate"::date + 1, $3)
    ORDER BY f."observedAt", f."id"
    LIMIT 1
) first_fare ON true
LEFT JOIN LATERAL (
    SELECT min(f."price") AS "lowest" FROM "bundle"."observed_fares" f
    WHERE f."origin" = p."origin" AND f."destination" = p."destination"
      AND f."departDate" = p."departDate"::date
      AND f."returnDate" IS NOT DISTINCT FROM p."returnDate"::date
      AND f."observedAt" >= p."createdAt"
      AND f."observedAt" < least(p."departDate"::date + 1, $3)
) later ON true
WHERE p."createdAt" >= $1 AND p."createdAt" < $2 AND p."expiresAt" <= $3
  AND p."departDate" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
  AND (p."returnDate" IS NULL OR p."returnDate" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$')
  AND EXISTS (SELECT 1 FROM "bundle"."model_versions" v
              WHERE v."name" = $5 AND v."version" = p."modelVersion")
  AND NOT EXISTS (SELECT 1 FROM "bundle"."prediction_outcomes" o WHERE o."predictionId" = p."id")
  AND (p."departDate"::date + 1 <= $3
       OR (first_fare."price" IS NOT NULL
           AND (p."recommendation" IS DISTINCT FROM 'wait'
                OR later."lowest" < coalesce((p."features"->>'currentPrice')::float8, p."predictedPrice"))))
ORDER BY p."createdAt", p."id"
LIMIT $6"#;

const INSERT_OUTCOMES: &str = r#"
INSERT INTO "bundle"."prediction_outcomes" ("predictionId", "modelVersion", "predictedAt", "status",
    "predictedPrice", "low", "high", "recommendation", "referencePrice", "observedPrice", "observedAt",
    "absoluteError", "percentageError", "withinRange", "lowestLaterPrice", "waitSaved", "waitSaving",
    "scoredAt")
SELECT * FROM jsonb_to_recordset($1::jsonb) AS o("predictionId" text, "modelVersion" text,
    "predictedAt" timestamp(3), "status" text, "predictedPrice" float8, "low" float8, "high" float8,
    "recommendation" text, "referencePrice" float8, "observedPrice" float8, "observedAt" timestamp(3),
    "absoluteError" float8, "percentageError" float8, "withinRange" boolean, "lowestLaterPrice" float8,
    "waitSaved" boolean, "waitSaving" float8, "scoredAt" timestamp(3))
ON CONFLICT ("predictionId") DO NOTHING"#;

/// The oldest prediction of the window still unsettled (what the watermark
/// may not pass); the same predictions as [`CANDIDATES`] reads.
const OLDEST_UNSETTLED: &str = r#"
SELECT min(p."createdAt") FROM "price_predictions" p
WHERE p."createdAt" >= $1 AND p."createdAt" < $2
  AND p."departDate" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
  AND (p."returnDate" IS NULL OR p."returnDate" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$')
  AND EXISTS (SELECT 1 FROM "bundle"."model_versions" v
              WHERE v."name" = $3 AND v."version" = p."modelVersion")
  AND NOT EXISTS (SELECT 1 FROM "bundle"."prediction_outcomes" o WHERE o."predictionId" = p."id")"#;

/// Per version, the realised metrics over all its outcomes.
const REALISED: &str = r#"
SELECT "modelVersion",
       count(*) FILTER (WHERE "status" = 'scored'),
       count(*) FILTER (WHERE "status" = 'unmatched'),
       avg("percentageError") FILTER (WHERE "status" = 'scored'),
       avg("absoluteError") FILTER (WHERE "status" = 'scored'),
       avg(CASE WHEN "withinRange" THEN 1.0::float8 ELSE 0.0 END) FILTER (WHERE "status" = 'scored'),
       count(*) FILTER (WHERE "waitSaved" IS NOT NULL),
       count(*) FILTER (WHERE "waitSaved"),
       avg("waitSaving") FILTER (WHERE "waitSaved" IS NOT NULL),
       min("predictedAt"), max("predictedAt")
FROM "bundle"."prediction_outcomes"
WHERE "modelVersion" = ANY($1)
GROUP BY "modelVersion"
ORDER BY "modelVersion""#;

/// `metrics -> 'realised'`, keeping the rest (a `metrics` that is not an
/// object has nothing to keep).
const SET_VERSION_REALISED: &str = r#"
UPDATE "bundle"."model_versions"
SET "metrics" = jsonb_set(CASE WHEN jsonb_typeof("metrics") = 'object' THEN "metrics" ELSE '{}' END,
                          '{realised}', $3)
WHERE "name" = $1 AND "version" = $2"#;

const SET_ACTIVE_REALISED: &str = r#"
UPDATE "ml_models"
SET "metrics" = jsonb_set(CASE WHEN jsonb_typeof("metrics") = 'object' THEN "metrics" ELSE '{}' END,
                          '{realised}', $3)
WHERE "name" = $1 AND "version" = $2"#;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The predictions' `createdAt` window read.
    pub from: Option<NaiveDateTime>,
    pub to: NaiveDateTime,
    /// Outcomes of a rescoring window deleted first.
    pub rescored: u64,
    /// Expired predictions read: those that could be settled.
    pub examined: usize,
    pub scored: usize,
    pub unmatched: usize,
    /// The run stopped at its limit: more predictions can be settled now.
    pub more: bool,
    /// Where the next scheduled run starts (none before the first).
    pub settled_before: Option<NaiveDateTime>,
    /// `realised` of each version whose outcomes changed.
    pub versions: serde_json::Map<String, Value>,
}

/// Runs the job at `now`: scheduled (`window` None: from the watermark) or
/// rescoring the predictions created in `window`.
pub async fn run(
    client: &mut deadpool_postgres::Client,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    now: NaiveDateTime,
) -> anyhow::Result<Report> {
    run_settling_at_most(client, window, now, MAX_SETTLED_PER_RUN).await
}

/// [`run`], settling at most `limit` predictions.
pub async fn run_settling_at_most(
    client: &mut deadpool_postgres::Client,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    now: NaiveDateTime,
    limit: i64,
) -> anyhow::Result<Report> {
    use anyhow::Context as _;
    let tx = client
        .transaction()
        .await
        .context("starting the accuracy run")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RUN_LOCK])
        .await
        .context("waiting for another accuracy run")?;
    let watermark: Option<NaiveDateTime> = tx
        .query_opt(
            r#"SELECT "settledBefore" FROM "bundle"."prediction_accuracy_watermark""#,
            &[],
        )
        .await
        .context("reading the accuracy watermark")?
        .map(|row| row.get(0));
    let (from, to) = match window {
        Some((from, to)) => (Some(from), to.min(now)),
        None => (watermark, now),
    };
    let lower = from.unwrap_or(BEGINNING);
    let mut touched: Vec<String> = Vec::new();
    let rescored = if window.is_some() {
        let deleted = tx
            .query(
                // Only outcomes whose prediction is still there to settle
                // again: retention deletes settled predictions and keeps
                // their outcomes (which name no one), the only record left.
                r#"DELETE FROM "bundle"."prediction_outcomes" o
                   WHERE o."predictedAt" >= $1 AND o."predictedAt" < $2
                     AND EXISTS (SELECT 1 FROM "price_predictions" p WHERE p."id" = o."predictionId")
                   RETURNING o."modelVersion""#,
                &[&lower, &to],
            )
            .await
            .context("deleting the outcomes to rescore")?;
        touched.extend(deleted.iter().map(|row| row.get::<_, String>(0)));
        deleted.len() as u64
    } else {
        0
    };

    let window_seconds = PRICE_WINDOW.as_seconds_f64();
    let candidates: Vec<Candidate> = tx
        .query(
            CANDIDATES,
            &[
                &lower,
                &to,
                &now,
                &window_seconds,
                &MODEL_NAME,
                &limit.max(1),
            ],
        )
        .await
        .context("reading the expired predictions")?
        .iter()
        .map(|row| Candidate {
            id: row.get(0),
            model_version: row.get(1),
            predicted_at: row.get(2),
            depart_date: row.get(3),
            predicted_price: row.get(4),
            low: row.get::<_, Option<f64>>(5).unwrap_or(f64::NAN),
            high: row.get::<_, Option<f64>>(6).unwrap_or(f64::NAN),
            recommendation: row.get(7),
            current_price: row.get(8),
            first_fare: row
                .get::<_, Option<f64>>(9)
                .zip(row.get::<_, Option<NaiveDateTime>>(10)),
            lowest_later: row.get(11),
        })
        .collect();
    let outcomes: Vec<Outcome> = candidates.iter().filter_map(|c| c.settle(now)).collect();
    if outcomes.len() < candidates.len() {
        // CANDIDATES and `settle` disagree: these would be read again by every run.
        tracing::warn!(
            read = candidates.len(),
            settled = outcomes.len(),
            "predictions read as settleable were not settled"
        );
    }
    for chunk in outcomes.chunks(OUTCOMES_PER_INSERT) {
        tx.execute(INSERT_OUTCOMES, &[&serde_json::to_value(chunk)?])
            .await
            .context("recording the outcomes")?;
    }
    touched.extend(outcomes.iter().map(|o| o.model_version.clone()));
    touched.sort();
    touched.dedup();

    let oldest_unsettled: Option<NaiveDateTime> = tx
        .query_one(OLDEST_UNSETTLED, &[&lower, &to, &MODEL_NAME])
        .await
        .context("finding the oldest unsettled prediction")?
        .get(0);
    // A scheduled run moves the watermark to its oldest unsettled
    // prediction, or to its end. A rescoring window leaves it, unless it left
    // a prediction unsettled behind it; before any scheduled run there is
    // none to move (the first one starts from the beginning).
    let settled_before = match (window, watermark) {
        (None, _) => Some(oldest_unsettled.unwrap_or(to)),
        (Some(_), Some(mark)) => Some(oldest_unsettled.map_or(mark, |oldest| oldest.min(mark))),
        (Some(_), None) => None,
    };
    if let Some(settled_before) = settled_before {
        tx.execute(
            r#"INSERT INTO "bundle"."prediction_accuracy_watermark" ("settledBefore", "updatedAt")
               VALUES ($1, $2)
               ON CONFLICT ("singleton") DO UPDATE SET "settledBefore" = excluded."settledBefore",
                   "updatedAt" = excluded."updatedAt""#,
            &[&settled_before, &now],
        )
        .await
        .context("moving the accuracy watermark")?;
    }

    let mut versions = serde_json::Map::new();
    for row in tx
        .query(REALISED, &[&touched])
        .await
        .context("computing the realised metrics")?
    {
        let version: String = row.get(0);
        let scored: i64 = row.get(1);
        let wait_judged: i64 = row.get(6);
        let wait_saved: i64 = row.get(7);
        let realised = json!({
            "scored": scored,
            "unmatched": row.get::<_, i64>(2),
            "mape": row.get::<_, Option<f64>>(3),
            "mae": row.get::<_, Option<f64>>(4),
            "intervalCoverage": row.get::<_, Option<f64>>(5),
            "waitJudged": wait_judged,
            "waitSaved": wait_saved,
            "waitSavedRate": rate(wait_saved, wait_judged),
            "waitAverageSaving": row.get::<_, Option<f64>>(8),
            "firstPrediction": row.get::<_, NaiveDateTime>(9),
            "lastPrediction": row.get::<_, NaiveDateTime>(10),
            "measuredAt": now,
        });
        tx.execute(SET_VERSION_REALISED, &[&MODEL_NAME, &version, &realised])
            .await
            .context("writing a version's realised metrics")?;
        tx.execute(SET_ACTIVE_REALISED, &[&MODEL_NAME, &version, &realised])
            .await
            .context("writing the active model's realised metrics")?;
        versions.insert(version, realised);
    }
    tx.commit().await.context("committing the accuracy run")?;

    let scored = outcomes.iter().filter(|o| o.status == "scored").count();
    Ok(Report {
        from,
        to,
        rescored,
        examined: candidates.len(),
        scored,
        unmatched: outcomes.len() - scored,
        more: i64::try_from(candidates.len()).unwrap_or(i64::MAX) >= limit.max(1),
        settled_before,
        versions,
    })
}

/// `part / whole`, none of none.
fn rate(part: i64, whole: i64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
    }

    /// Asked 2026-03-01 10:00 about a departure on 2026-03-20: 200
    /// predicted within 180..230, with nothing observed yet.
    fn asked(recommendation: &str, current_price: Option<f64>) -> Candidate {
        Candidate {
            id: "p1".into(),
            model_version: "v1".into(),
            predicted_at: at("2026-03-01 10:00"),
            depart_date: NaiveDate::from_ymd_opt(2026, 3, 20).expect("date"),
            predicted_price: 200.0,
            low: 180.0,
            high: 230.0,
            recommendation: Some(recommendation.into()),
            current_price,
            first_fare: None,
            lowest_later: None,
        }
    }

    #[test]
    fn book_now_with_a_fare_in_its_window_is_scored_at_once() {
        let mut candidate = asked("book_now", None);
        candidate.first_fare = Some((250.0, at("2026-03-02 09:00")));
        candidate.lowest_later = Some(250.0);

        let outcome = candidate.settle(at("2026-03-03 00:00")).expect("settled");

        assert_eq!(outcome.status, "scored");
        assert_eq!(outcome.absolute_error, Some(50.0));
        assert_eq!(outcome.percentage_error, Some(0.2));
        assert_eq!(outcome.within_range, Some(false));
        assert_eq!(outcome.wait_saved, None);
        assert_eq!(outcome.reference_price, 200.0);
    }

    #[test]
    fn without_a_later_fare_it_waits_for_the_departure_then_is_unmatched() {
        let candidate = asked("book_now", None);

        assert_eq!(candidate.settle(at("2026-03-20 23:59")), None);
        let outcome = candidate.settle(at("2026-03-21 00:00")).expect("settled");

        assert_eq!(outcome.status, "unmatched");
        assert_eq!(outcome.observed_price, None);
        assert_eq!(outcome.percentage_error, None);
    }

    #[test]
    fn wait_is_settled_as_soon_as_a_cheaper_fare_than_the_current_price_is_seen() {
        let mut candidate = asked("wait", Some(240.0));
        candidate.first_fare = Some((245.0, at("2026-03-02 09:00")));
        candidate.lowest_later = Some(245.0);
        assert_eq!(candidate.settle(at("2026-03-05 00:00")), None);

        candidate.lowest_later = Some(210.0);
        let outcome = candidate.settle(at("2026-03-06 00:00")).expect("settled");

        assert_eq!(outcome.wait_saved, Some(true));
        assert_eq!(outcome.wait_saving, Some(30.0));
        assert_eq!(outcome.reference_price, 240.0);
        assert_eq!(outcome.observed_price, Some(245.0));
        assert_eq!(outcome.within_range, Some(false));
    }

    #[test]
    fn wait_without_a_cheaper_fare_is_settled_at_departure_as_not_saving() {
        let mut candidate = asked("wait", None);
        candidate.first_fare = Some((205.0, at("2026-03-01 12:00")));
        candidate.lowest_later = Some(205.0);

        let outcome = candidate.settle(at("2026-03-21 00:00")).expect("settled");

        assert_eq!(outcome.wait_saved, Some(false));
        assert_eq!(outcome.wait_saving, Some(-5.0));
        assert_eq!(outcome.within_range, Some(true));
    }

    #[test]
    fn wait_with_no_later_fare_at_all_has_no_verdict() {
        let outcome = asked("wait", Some(250.0))
            .settle(at("2026-03-22 00:00"))
            .expect("settled");

        assert_eq!(outcome.status, "unmatched");
        assert_eq!(outcome.wait_saved, None);
        assert_eq!(outcome.wait_saving, None);
    }

    #[test]
    fn a_rate_of_nothing_is_none() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(1, 4), Some(0.25));
    }
}
