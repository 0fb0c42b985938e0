//! `/api/admin/experiments/{key}/...`: an experiment's lifecycle and its
//! results.
//!
//! `draft` -> `running` <-> `paused` -> `stopped`. Start sets `startedAt`
//! (and enables the flag); stop sets `completedAt`, may name the winning
//! variant (which the flag then serves to everyone; else the control) and
//! stores the results
//! as they stand in `experimentResults`.
//!
//! Results are GrowthBook's frequentist engine ([`experiments::stats`]) on
//! the participations: per variant, participants, conversions and the
//! conversion value; each treatment against the control (the first
//! variant) for the conversion rate and for the value per participant.
//! The p-values are fixed-horizon p-values: valid once, at the sample size
//! planned in advance (`minimumSampleSize`), not when looked at daily and
//! acted on the first time they cross 0.05.

use access::{Authorized, Change, action, resource};
use axum::{Json, body::Bytes, extract::Path};
use experiments::flag::{ExperimentStatus, Variant};
use experiments::stats::{self, ArmSummary, MetricKind};
use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::GenericClient;
use utoipa::ToSchema;

use crate::flags::{self, FlagView};

/// One variant's numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    pub id: String,
    pub name: Option<String>,
    /// The configured share, of 1.
    pub weight: f64,
    pub participants: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    /// Summed over converted participants.
    pub conversion_value_sum: f64,
    /// Per participant (those who did not convert count as 0).
    pub conversion_value_mean: f64,
    /// Whether `participants` reached `minimumSampleSize` (absent: none set).
    pub reached_minimum_sample_size: Option<bool>,
}

/// A treatment against the control, for one metric.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantComparison {
    pub variant: String,
    /// Relative lift of the conversion rate, with its 95% interval and
    /// two-sided p-value.
    #[schema(value_type = Object)]
    pub conversion_rate: stats::Comparison,
    /// Relative lift of the conversion value per participant.
    #[schema(value_type = Object)]
    pub conversion_value: stats::Comparison,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleRatio {
    /// Pearson chi-square against the configured weights; absent when the
    /// weights do not describe a split (all zero).
    pub p_value: Option<f64>,
    /// `p_value` < 0.001: the split is not what was configured, and the
    /// results cannot be trusted until the cause is found.
    pub mismatch: bool,
}

/// An experiment's results.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub flag_key: String,
    pub status: String,
    pub success_metric: Option<String>,
    pub minimum_sample_size: Option<i32>,
    /// The first variant.
    pub control: String,
    pub variants: Vec<VariantResult>,
    pub comparisons: Vec<VariantComparison>,
    pub sample_ratio: SampleRatio,
    /// Every variant reached `minimumSampleSize` (false when none is set:
    /// without a planned size, no p-value here is a stopping rule).
    pub minimum_sample_size_reached: bool,
    /// Participations in variants the flag no longer has (left out above).
    pub participants_in_unknown_variants: u64,
    #[schema(value_type = String)]
    pub computed_at: chrono::NaiveDateTime,
}

/// Per stored variant: participants, conversions, sum and sum of squares of
/// the value per participant. By the index on ("flagId", "variant").
async fn tallies(
    client: &impl GenericClient,
    flag_id: &str,
) -> ApiResult<Vec<(String, i64, i64, f64, f64)>> {
    let rows = client
        .query(
            r#"SELECT "variant", count(*), count(*) FILTER (WHERE "converted"),
                      coalesce(sum("conversionValue") FILTER (WHERE "converted"), 0),
                      coalesce(sum("conversionValue" * "conversionValue") FILTER (WHERE "converted"), 0)
               FROM "experiment_participations" WHERE "flagId" = $1
               GROUP BY "variant""#,
            &[&flag_id],
        )
        .await
        .map_err(ApiError::internal("counting participations"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The results of `flag` from its participations.
pub async fn results_of(client: &impl GenericClient, flag: &FlagView) -> ApiResult<Results> {
    let variants: Vec<Variant> = flag.variant_list();
    let Some(control) = variants.first() else {
        return Err(ApiError::Conflict {
            message: "the flag has no variants to compare".into(),
            field: Some("variants".into()),
        });
    };
    let tallies = tallies(client, &flag.id).await?;
    let total_weight: f64 = variants.iter().map(|v| v.weight).sum();
    let summaries: Vec<(ArmSummary, u64)> = variants
        .iter()
        .map(|variant| {
            let (units, conversions, sum, sum_squares) = tallies
                .iter()
                .find(|t| t.0 == variant.id)
                .map(|t| (count(t.1), count(t.2), t.3, t.4))
                .unwrap_or_default();
            (
                ArmSummary {
                    units,
                    sum,
                    sum_squares,
                },
                conversions,
            )
        })
        .collect();
    let minimum = flag.minimum_sample_size.and_then(|m| u64::try_from(m).ok());
    let variant_results: Vec<VariantResult> = variants
        .iter()
        .zip(&summaries)
        .map(|(variant, (summary, conversions))| {
            let per_unit = |x: f64| {
                if summary.units == 0 {
                    0.0
                } else {
                    #[allow(clippy::cast_precision_loss)]
                    let units = summary.units as f64;
                    x / units
                }
            };
            #[allow(clippy::cast_precision_loss)]
            let converted = *conversions as f64;
            VariantResult {
                id: variant.id.clone(),
                name: variant.name.clone(),
                weight: if total_weight > 0.0 {
                    variant.weight / total_weight
                } else {
                    0.0
                },
                participants: summary.units,
                conversions: *conversions,
                conversion_rate: per_unit(converted),
                conversion_value_sum: summary.sum,
                conversion_value_mean: per_unit(summary.sum),
                reached_minimum_sample_size: minimum.map(|m| summary.units >= m),
            }
        })
        .collect();
    let proportion = |(summary, conversions): &(ArmSummary, u64)| {
        ArmSummary::from_conversions(summary.units, *conversions)
    };
    let comparisons = variants
        .iter()
        .zip(&summaries)
        .skip(1)
        .map(|(variant, arm)| VariantComparison {
            variant: variant.id.clone(),
            conversion_rate: stats::compare(
                &proportion(&summaries[0]),
                &proportion(arm),
                MetricKind::Proportion,
            ),
            conversion_value: stats::compare(&summaries[0].0, &arm.0, MetricKind::Mean),
        })
        .collect();
    let observed: Vec<u64> = summaries.iter().map(|(s, _)| s.units).collect();
    let weights: Vec<f64> = variant_results.iter().map(|v| v.weight).collect();
    let srm_p = stats::sample_ratio_mismatch(&observed, &weights).ok();
    let unknown = tallies
        .iter()
        .filter(|t| !variants.iter().any(|v| v.id == t.0))
        .map(|t| count(t.1))
        .sum();
    Ok(Results {
        flag_key: flag.key.clone(),
        status: flag
            .status()
            .unwrap_or(ExperimentStatus::Draft)
            .as_str()
            .to_owned(),
        success_metric: flag.success_metric.clone(),
        minimum_sample_size: flag.minimum_sample_size,
        control: control.id.clone(),
        minimum_sample_size_reached: minimum
            .is_some_and(|m| summaries.iter().all(|(s, _)| s.units >= m)),
        variants: variant_results,
        comparisons,
        sample_ratio: SampleRatio {
            p_value: srm_p,
            mismatch: srm_p.is_some_and(|p| p < stats::SRM_THRESHOLD),
        },
        participants_in_unknown_variants: unknown,
        computed_at: chrono::Utc::now().naive_utc(),
    })
}

async fn experiment(client: &impl GenericClient, key: &str, lock: bool) -> ApiResult<FlagView> {
    let flag = flags::find(client, key, lock)
        .await?
        .ok_or_else(|| flags::not_found(key))?;
    if !flag.is_experiment {
        return Err(ApiError::Conflict {
            message: format!("flag {key:?} is not an experiment (isExperiment is false)"),
            field: Some("isExperiment".into()),
        });
    }
    Ok(flag)
}

#[utoipa::path(
    operation_id = "experiment_results",
    get,
    path = "/api/admin/experiments/{key}/results",
    tag = "admin",
    summary = "An experiment's results, now",
    description = "Per variant participants, conversions, rate and value; each treatment against the control (the first variant): relative lift, 95% interval and two-sided p-value (Welch's t-test, delta method: GrowthBook's frequentist engine); a sample-ratio-mismatch check. Needs `experiments:read`.",
    params(("key" = String, Path, description = "The flag's key.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The results.", body = Results),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub async fn results(
    mut auth: Authorized<resource::Experiments, action::Read>,
    Path(key): Path<String>,
) -> ApiResult<Json<Results>> {
    let client = auth.client();
    let flag = experiment(&***client, &key, false).await?;
    Ok(Json(results_of(&***client, &flag).await?))
}

/// A lifecycle step.
#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    Pause,
    Resume,
    Stop,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
        }
    }

    fn from(self) -> &'static [ExperimentStatus] {
        use ExperimentStatus::*;
        match self {
            Self::Start => &[Draft],
            Self::Pause => &[Running],
            Self::Resume => &[Paused],
            Self::Stop => &[Running, Paused],
        }
    }

    fn to(self) -> ExperimentStatus {
        match self {
            Self::Start | Self::Resume => ExperimentStatus::Running,
            Self::Pause => ExperimentStatus::Paused,
            Self::Stop => ExperimentStatus::Stopped,
        }
    }
}

/// `{"winningVariant"?}`, for stop.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StopRequest {
    /// A variant id the flag will serve to everyone from now on; absent:
    /// everyone gets the control.
    winning_variant: Option<String>,
}

async fn transition(
    mut auth: Authorized<resource::Experiments, action::Update>,
    key: String,
    step: Step,
    body: Bytes,
) -> ApiResult<Json<FlagView>> {
    let changed = auth
        .mutate(&key, async |tx| {
            let stop: StopRequest = if body.is_empty() {
                StopRequest::default()
            } else {
                platform::json::parse(&body)?
            };
            if !matches!(step, Step::Stop) && stop.winning_variant.is_some() {
                return Err(ApiError::invalid_field(
                    "winningVariant",
                    "is only taken when stopping",
                ));
            }
            let current = experiment(&**tx, &key, true).await?;
            let status = current.status().unwrap_or(ExperimentStatus::Draft);
            if !step.from().contains(&status) {
                return Err(ApiError::Conflict {
                    message: format!(
                        "cannot {} an experiment that is {}",
                        step.name(),
                        status.as_str()
                    ),
                    field: Some("experimentStatus".into()),
                });
            }
            let variants = current.variant_list();
            if matches!(step, Step::Start) && variants.len() < 2 {
                return Err(ApiError::Conflict {
                    message: "an experiment needs at least two variants to start".into(),
                    field: Some("variants".into()),
                });
            }
            if let Some(winner) = &stop.winning_variant
                && !variants.iter().any(|v| &v.id == winner)
            {
                return Err(ApiError::invalid_field(
                    "winningVariant",
                    format!(
                        "must be one of the variants: {}",
                        variants
                            .iter()
                            .map(|v| v.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let results = match step {
                Step::Stop => Some(
                    serde_json::to_value(results_of(&**tx, &current).await?)
                        .expect("results serialise"),
                ),
                _ => None,
            };
            let now = platform::clock::now_millis();
            let row = tx
                .query_one(
                    &format!(
                        r#"WITH changed AS (
                             UPDATE "feature_flags" SET "experimentStatus" = $2, "updatedAt" = $3,
                                 "enabled" = CASE WHEN $4 THEN true ELSE "enabled" END,
                                 "startedAt" = CASE WHEN $4 THEN $3 ELSE "startedAt" END,
                                 "completedAt" = CASE WHEN $5 THEN $3 ELSE "completedAt" END,
                                 "experimentResults" = CASE WHEN $5 THEN $6 ELSE "experimentResults" END,
                                 "winningVariant" = CASE WHEN $5 THEN $7 ELSE "winningVariant" END
                             WHERE "id" = $1 RETURNING *)
                           {} "#,
                        flags::select_flag_from("changed")
                    ),
                    &[
                        &current.id,
                        &step.to().as_str(),
                        &now,
                        &matches!(step, Step::Start),
                        &matches!(step, Step::Stop),
                        &results,
                        &stop.winning_variant,
                    ],
                )
                .await
                .map_err(ApiError::internal("changing an experiment's status"))?;
            let after = FlagView::from_row(&row);
            let mut audit_after = after.audit_view();
            if let Some(results) = &results {
                audit_after["experimentResults"] = results.clone();
            }
            Ok(Change {
                resource_id: key.clone(),
                before: json!({
                    "experimentStatus": current.experiment_status,
                    "enabled": current.enabled,
                }),
                after: audit_after,
                output: after,
            })
        })
        .await?;
    Ok(Json(changed))
}

macro_rules! lifecycle_route {
    ($name:ident, $step:expr, $path:literal, $summary:literal, $description:literal) => {
        #[utoipa::path(
            post,
            operation_id = concat!(stringify!($name), "_experiment"),
            path = $path,
            tag = "admin",
            summary = $summary,
            description = $description,
            params(("key" = String, Path, description = "The flag's key.")),
            security(("session" = []), ("bearer" = [])),
            responses(
                (status = 200, description = "The experiment as it now is.", body = FlagView),
                Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
            )
        )]
        pub async fn $name(
            auth: Authorized<resource::Experiments, action::Update>,
            Path(key): Path<String>,
            body: Bytes,
        ) -> ApiResult<Json<FlagView>> {
            transition(auth, key, $step, body).await
        }
    };
}

lifecycle_route!(
    start,
    Step::Start,
    "/api/admin/experiments/{key}/start",
    "Start an experiment",
    "draft -> running; sets `startedAt` and enables the flag. Audited. Needs `experiments:update`."
);
lifecycle_route!(
    pause,
    Step::Pause,
    "/api/admin/experiments/{key}/pause",
    "Pause an experiment",
    "running -> paused: nobody new is enrolled, and evaluation serves everyone the control. Audited. Needs `experiments:update`."
);
lifecycle_route!(
    resume,
    Step::Resume,
    "/api/admin/experiments/{key}/resume",
    "Resume an experiment",
    "paused -> running. Audited. Needs `experiments:update`."
);
lifecycle_route!(
    stop,
    Step::Stop,
    "/api/admin/experiments/{key}/stop",
    "Stop an experiment",
    "running or paused -> stopped, with `{\"winningVariant\"?}`; sets `completedAt` and stores the results in `experimentResults`. The winner, if named, is served to everyone; else the control. Audited. Needs `experiments:update`."
);
