//! The `train` job: syncs fare events, fits the price model on the observed
//! fares of the last year, stores the version with its holdout metrics, and
//! activates it when it is no worse than the active one.
//!
//! Activation rule (the schedule and the command line alike): a new version
//! is activated when `--activate` asks for it, when the name has no active
//! version yet, or when its holdout MAPE is at most 5% (relative) above the
//! active version's: newer fares are worth a hair of measured accuracy, a
//! clearly worse version is stored but left for a person to look at (and
//! activate from the registry). Activations by the job are audited with the
//! channel as the recorded role, as the first admin's bootstrap is.

use chrono::{Duration, NaiveDateTime};
use pricing::{Fare, Model, TrainError, TrainOptions};
use serde_json::{Value, json};

use super::fares::{self, SyncWindow};
use super::registry;
use crate::bootstrap::Channel;

/// The model the price predictions use.
pub const PRICE_MODEL: &str = "price";
/// Fares older than this are not trained on: prices drift.
pub const TRAINING_WINDOW: Duration = Duration::days(365);
/// The newest this many fares at most (memory of the job stays bounded).
pub const MAX_TRAINING_FARES: i64 = 500_000;
/// How much worse (relative holdout MAPE) a new version may be and still
/// replace the active one by itself.
pub const REPLACE_TOLERANCE: f64 = 0.05;

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    anyhow::ensure!(
        valid,
        "name must be 1-100 characters of a-z, 0-9, - and _ (got {name:?})"
    );
    Ok(())
}

/// The observed fares of the training window, newest first.
async fn training_fares(
    client: &deadpool_postgres::Client,
    now: NaiveDateTime,
) -> anyhow::Result<Vec<Fare>> {
    // By the index on "observedAt".
    let rows = client
        .query(
            r#"SELECT "origin", "destination", "departDate", "returnDate", "observedAt", "price", "currency"
               FROM "bundle"."observed_fares" WHERE "observedAt" >= $1 AND "observedAt" <= $2
               ORDER BY "observedAt" DESC LIMIT $3"#,
            &[&(now - TRAINING_WINDOW), &now, &MAX_TRAINING_FARES],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Fare {
            origin: row.get(0),
            destination: row.get(1),
            depart_date: row.get(2),
            return_date: row.get(3),
            observed_at: row.get(4),
            price: row.get(5),
            currency: row.get(6),
        })
        .collect())
}

/// A version name from the training time, e.g. `2026-12-01T030012Z`;
/// `attempt` > 0 adds a suffix for a second training within the same second.
fn version_name(at: NaiveDateTime, attempt: u32) -> String {
    let base = at.format("%Y-%m-%dT%H%M%SZ").to_string();
    if attempt == 0 {
        base
    } else {
        format!("{base}-{}", attempt + 1)
    }
}

/// Runs the job; `activate` forces the activation of the new version.
pub async fn run(
    client: &mut deadpool_postgres::Client,
    name: &str,
    activate: bool,
    channel: Channel,
) -> anyhow::Result<Value> {
    check_name(name)?;
    let sync = fares::sync(client, SyncWindow::Scheduled).await?;
    let now = platform::clock::now_millis();
    let fares = training_fares(client, now).await?;
    let trained = match pricing::train(&fares, &TrainOptions::default()) {
        Ok(trained) => trained,
        Err(
            refused @ (TrainError::TooFewFares { .. }
            | TrainError::TooFewRoutes { .. }
            | TrainError::NothingToMeasure),
        ) => {
            tracing::warn!(%refused, "no model trained");
            return Ok(json!({
                "trained": false,
                "reason": refused.to_string(),
                "fares": fares.len(),
                "sync": sync,
            }));
        }
        Err(failed) => anyhow::bail!("training {name}: {failed}"),
    };
    let parameters = serde_json::to_value(&trained.model)?;
    let metrics = serde_json::to_value(&trained.metrics)?;
    let summary = serde_json::to_value(&trained.summary)?;
    let mut version = String::new();
    for attempt in 0..5 {
        let candidate = version_name(now, attempt);
        let stored = client
            .execute(
                r#"INSERT INTO "bundle"."model_versions" ("id", "name", "version", "modelType", "features",
                       "parameters", "metrics", "trainingData", "trainedAt", "createdAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                   ON CONFLICT ("name", "version") DO NOTHING"#,
                &[
                    &platform::ids::new_id(),
                    &name,
                    &candidate,
                    &Model::TYPE,
                    &Model::features(),
                    &parameters,
                    &metrics,
                    &summary,
                    &now,
                ],
            )
            .await?;
        if stored == 1 {
            version = candidate;
            break;
        }
    }
    anyhow::ensure!(
        !version.is_empty(),
        "no free version name for {name} at {now}"
    );

    let new_mape = trained.metrics.mape;
    // Decided under the registry's lock of the name, against the version
    // active then: an activation by a person in between is not overridden
    // by a comparison made before it.
    let decide = |active: &registry::ActiveVersion| match (active, activate) {
        (_, true) => Some("asked to (--activate)".to_owned()),
        (None, false) => Some("no version was active".to_owned()),
        (Some((_, Some(old))), false) if new_mape <= old * (1.0 + REPLACE_TOLERANCE) => Some(
            format!("holdout MAPE {new_mape:.4} against the active version's {old:.4}"),
        ),
        (Some((_, None)), false) => Some("the active version has no holdout MAPE".to_owned()),
        (Some(_), false) => None,
    };
    let (activation, active_mape) =
        registry::activate_by_job(client, name, &version, channel, decide).await?;
    let (activation, reason) = match activation {
        Some((switched, why)) => (Some(switched), Some(why)),
        None => (None, None),
    };
    tracing::info!(%name, %version, mape = new_mape, activated = activation.is_some(), "model trained");
    Ok(json!({
        "trained": true,
        "name": name,
        "version": version,
        "metrics": metrics,
        "trainingData": summary,
        "activated": activation.is_some(),
        "activation": reason.map_or_else(
            || json!({
                "kept": active_mape.map(|(v, _)| v),
                "reason": format!(
                    "holdout MAPE {new_mape:.4} is more than {:.0}% above the active version's",
                    REPLACE_TOLERANCE * 100.0
                ),
            }),
            |why| json!({"from": activation.as_ref().and_then(|a| a.from.clone()), "reason": why}),
        ),
        "sync": sync,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_the_training_second_with_a_suffix_on_collision() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_milli_opt(3, 0, 12, 345))
            .expect("time");
        assert_eq!(version_name(at, 0), "2026-12-01T030012Z");
        assert_eq!(version_name(at, 1), "2026-12-01T030012Z-2");
    }

    #[test]
    fn model_names_are_plain_slugs() {
        assert!(check_name("price").is_ok());
        assert!(check_name("price_v2-test").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("Price Model").is_err());
    }
}
