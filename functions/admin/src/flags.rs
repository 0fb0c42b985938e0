//! `/api/admin/flags`: feature flags, and the configuration of experiments
//! (an experiment is a flag with `isExperiment`; its lifecycle and results
//! are in [`crate::experiments`]).
//!
//! Rules beyond the route permissions:
//! - a key is a plain slug, unique, and never changes (SDKs and the
//!   bucketing seed use it);
//! - variants have unique ids and weights summing to 100 or to 1;
//! - a targeting condition is GrowthBook's syntax, refused when saved if it
//!   cannot be evaluated;
//! - while an experiment runs or is paused, nothing that would move a
//!   visitor to another arm may change: its variants' ids and weights, its
//!   targeting, `isExperiment`, or a smaller rollout (a larger one only
//!   lets new visitors in: GrowthBook's ranges grow in place).

use access::{Authorized, Change, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery},
    http::StatusCode,
};
use experiments::flag::{self, ExperimentStatus, FieldError, Variant};
use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use platform::paging::{self, Page};

pub(crate) const SELECT_FLAG: &str = r#"SELECT "id", "key", "name", "description", "enabled",
    "rolloutPercentage", "variants", "targetSegments", "isExperiment", "experimentStatus",
    "successMetric", "minimumSampleSize", "experimentResults", "winningVariant",
    "createdAt", "updatedAt", "startedAt", "completedAt"
    FROM "feature_flags""#;

/// [`SELECT_FLAG`] reading from `relation` (a CTE of the statement, named
/// by this code, never by a caller) instead of the table: a change answers
/// with the row it wrote, in one statement.
pub(crate) fn select_flag_from(relation: &str) -> String {
    SELECT_FLAG.replace(r#"FROM "feature_flags""#, &format!("FROM {relation}"))
}

/// A flag as the admin API shows it: every column of `feature_flags`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagView {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub rollout_percentage: i32,
    /// `[{id, name?, weight, config?}]`.
    #[schema(value_type = Vec<Object>)]
    pub variants: Value,
    /// A GrowthBook condition, `null` for everyone.
    #[schema(value_type = Option<Object>)]
    pub target_segments: Option<Value>,
    pub is_experiment: bool,
    /// `draft`, `running`, `paused` or `stopped` for an experiment.
    pub experiment_status: Option<String>,
    pub success_metric: Option<String>,
    pub minimum_sample_size: Option<i32>,
    /// The results as they stood when the experiment was stopped.
    #[schema(value_type = Option<Object>)]
    pub experiment_results: Option<Value>,
    pub winning_variant: Option<String>,
    #[schema(value_type = String)]
    pub created_at: chrono::NaiveDateTime,
    #[schema(value_type = String)]
    pub updated_at: chrono::NaiveDateTime,
    #[schema(value_type = Option<String>)]
    pub started_at: Option<chrono::NaiveDateTime>,
    #[schema(value_type = Option<String>)]
    pub completed_at: Option<chrono::NaiveDateTime>,
}

impl FlagView {
    pub(crate) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            key: row.get(1),
            name: row.get(2),
            description: row.get(3),
            enabled: row.get(4),
            rollout_percentage: row.get(5),
            variants: row.get(6),
            target_segments: row.get(7),
            is_experiment: row.get(8),
            experiment_status: row.get(9),
            success_metric: row.get(10),
            minimum_sample_size: row.get(11),
            experiment_results: row.get(12),
            winning_variant: row.get(13),
            created_at: row.get(14),
            updated_at: row.get(15),
            started_at: row.get(16),
            completed_at: row.get(17),
        }
    }

    pub(crate) fn status(&self) -> Option<ExperimentStatus> {
        self.is_experiment
            .then(|| ExperimentStatus::from_stored(self.experiment_status.as_deref()))
    }

    /// Running or paused: visitors hold arms that must not move.
    pub(crate) fn in_flight(&self) -> bool {
        matches!(
            self.status(),
            Some(ExperimentStatus::Running | ExperimentStatus::Paused)
        )
    }

    /// The variants as stored, read leniently: rows the application wrote
    /// may not follow this API's rules.
    pub(crate) fn variant_list(&self) -> Vec<Variant> {
        flag::parse_variants(&self.variants).unwrap_or_default()
    }

    /// What the audit trail records of a flag: its configuration, without
    /// the stored results (large, and derived from participations).
    pub(crate) fn audit_view(&self) -> Value {
        let mut view = serde_json::to_value(self).expect("flags serialise");
        if let Some(object) = view.as_object_mut() {
            object.remove("experimentResults");
        }
        view
    }
}

/// The flag with `key`, locked for the change that follows when `lock`.
pub(crate) async fn find(
    client: &impl GenericClient,
    key: &str,
    lock: bool,
) -> ApiResult<Option<FlagView>> {
    let sql = if lock {
        format!(r#"{SELECT_FLAG} WHERE "key" = $1 FOR UPDATE"#)
    } else {
        format!(r#"{SELECT_FLAG} WHERE "key" = $1"#)
    };
    let row = client
        .query_opt(&sql, &[&key])
        .await
        .map_err(ApiError::internal("reading a flag"))?;
    Ok(row.as_ref().map(FlagView::from_row))
}

pub(crate) fn not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("flag {key:?}"))
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::invalid_field(error.field, error.rule)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// In the key, name or description.
    search: Option<String>,
    enabled: Option<bool>,
    is_experiment: Option<bool>,
    /// An experiment status: draft, running, paused, stopped.
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of flags, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FlagPage {
    flags: Vec<FlagView>,
    /// Continues after the last flag; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_flags",
    get,
    path = "/api/admin/flags",
    tag = "admin",
    summary = "List feature flags and experiments",
    description = "By key. Needs `flags:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of flags.", body = FlagPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Flags, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after: Option<String> = paging::decode(query.cursor.as_deref())?;
    let statuses: Option<Vec<&str>> = match query.status.as_deref() {
        None => None,
        Some("draft") => Some(vec!["draft"]),
        Some("running") => Some(vec!["running"]),
        Some("paused") => Some(vec!["paused"]),
        Some("stopped") => Some(vec!["stopped", "completed"]),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "must be draft, running, paused or stopped",
            ));
        }
    };
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    let client = auth.client();
    // By the unique index on "key".
    let rows = client
        .query(
            &format!(
                r#"{SELECT_FLAG}
                   WHERE ($1::bool IS NULL OR "enabled" = $1)
                     AND ($2::bool IS NULL OR "isExperiment" = $2)
                     AND ($3::text[] IS NULL OR ("isExperiment" AND coalesce("experimentStatus", 'draft') = ANY($3)))
                     AND ($4::text IS NULL OR "key" ILIKE $4 OR "name" ILIKE $4 OR "description" ILIKE $4)
                     AND ($5::text IS NULL OR "key" > $5)
                   ORDER BY "key"
                   LIMIT $6"#
            ),
            &[
                &query.enabled,
                &query.is_experiment,
                &statuses,
                &pattern,
                &after,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing flags"))?;
    let flags: Vec<FlagView> = rows.iter().map(FlagView::from_row).collect();
    Ok(Json(Page::new("flags", flags, limit, |f| f.key.clone())))
}

#[utoipa::path(
    operation_id = "get_flag",
    get,
    path = "/api/admin/flags/{key}",
    tag = "admin",
    summary = "Get a feature flag",
    description = "Needs `flags:read`.",
    params(("key" = String, Path, description = "The flag's key.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The flag.", body = FlagView),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Flags, action::Read>,
    Path(key): Path<String>,
) -> ApiResult<Json<FlagView>> {
    let client = auth.client();
    find(&***client, &key, false)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&key))
}

/// A new flag. Omitted: disabled, rollout 0, no variants (a boolean flag),
/// no targeting, not an experiment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewFlag {
    key: String,
    name: String,
    description: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    rollout_percentage: i64,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    variants: Value,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    target_segments: Value,
    #[serde(default)]
    is_experiment: bool,
    success_metric: Option<String>,
    minimum_sample_size: Option<i64>,
}

/// A change to a flag; absent fields stay as they are, `null` clears the
/// nullable ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FlagUpdate {
    /// Only to repeat the current key: keys never change.
    key: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Value>,
    enabled: Option<bool>,
    rollout_percentage: Option<i64>,
    #[schema(value_type = Option<Vec<Object>>)]
    variants: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    target_segments: Option<Value>,
    is_experiment: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    success_metric: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    minimum_sample_size: Option<Value>,
}

/// Distinguishes `"field": null` (Some(Null)) from no field (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A flag's settings, checked, as they will be stored.
struct Settings {
    name: String,
    description: Option<String>,
    enabled: bool,
    rollout_percentage: i32,
    variants: Vec<Variant>,
    target_segments: Option<Value>,
    is_experiment: bool,
    success_metric: Option<String>,
    minimum_sample_size: Option<i32>,
}

fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn optional_text(field: &str, value: &Value, max: usize) -> ApiResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => text(field, s, max).map(Some),
        _ => Err(ApiError::invalid_field(field, "must be a string or null")),
    }
}

fn rollout(value: i64) -> ApiResult<i32> {
    i32::try_from(value)
        .ok()
        .filter(|v| (0..=100).contains(v))
        .ok_or_else(|| ApiError::invalid_field("rolloutPercentage", "must be between 0 and 100"))
}

fn sample_size(value: &Value) -> ApiResult<Option<i32>> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "minimumSampleSize",
                    "must be a whole number of at least 1, or null",
                )
            }),
    }
}

impl Settings {
    fn check(&self) -> ApiResult<()> {
        if self.is_experiment && self.variants.len() < 2 {
            return Err(ApiError::invalid_field(
                "variants",
                "must hold at least two variants for an experiment: the first is the control",
            ));
        }
        Ok(())
    }

    fn variants_json(&self) -> Value {
        serde_json::to_value(&self.variants).expect("variants serialise")
    }
}

fn parse_new(body: &[u8]) -> ApiResult<(String, Settings)> {
    let new: NewFlag = platform::json::parse(body)?;
    flag::check_key(&new.key).map_err(invalid)?;
    let variants = if new.variants.is_null() {
        Vec::new()
    } else {
        flag::parse_variants(&new.variants).map_err(invalid)?
    };
    flag::parse_targeting(&new.target_segments).map_err(invalid)?;
    let settings = Settings {
        name: text("name", &new.name, 200)?,
        description: optional_text(
            "description",
            &new.description.map(Value::String).unwrap_or(Value::Null),
            2000,
        )?,
        enabled: new.enabled,
        rollout_percentage: rollout(new.rollout_percentage)?,
        variants,
        target_segments: Some(new.target_segments).filter(|t| !t.is_null()),
        is_experiment: new.is_experiment,
        success_metric: optional_text(
            "successMetric",
            &new.success_metric.map(Value::String).unwrap_or(Value::Null),
            100,
        )?,
        minimum_sample_size: sample_size(
            &new.minimum_sample_size.map_or(Value::Null, Value::from),
        )?,
    };
    settings.check()?;
    Ok((new.key, settings))
}

/// `current` with `update` applied and checked, refusing what would move
/// visitors between the arms of an experiment in flight.
fn apply(current: &FlagView, update: FlagUpdate) -> ApiResult<Settings> {
    if update.key.as_ref().is_some_and(|k| *k != current.key) {
        return Err(ApiError::invalid_field(
            "key",
            "cannot change: SDKs and the bucketing seed use it; create a new flag instead",
        ));
    }
    let variants = match &update.variants {
        Some(value) => flag::parse_variants(value).map_err(invalid)?,
        None => current.variant_list(),
    };
    let target_segments = match update.target_segments {
        Some(value) => {
            flag::parse_targeting(&value).map_err(invalid)?;
            Some(value).filter(|t| !t.is_null())
        }
        None => current.target_segments.clone(),
    };
    let settings = Settings {
        name: match &update.name {
            Some(name) => text("name", name, 200)?,
            None => current.name.clone(),
        },
        description: match &update.description {
            Some(value) => optional_text("description", value, 2000)?,
            None => current.description.clone(),
        },
        enabled: update.enabled.unwrap_or(current.enabled),
        rollout_percentage: match update.rollout_percentage {
            Some(value) => rollout(value)?,
            None => current.rollout_percentage,
        },
        variants,
        target_segments,
        is_experiment: update.is_experiment.unwrap_or(current.is_experiment),
        success_metric: match &update.success_metric {
            Some(value) => optional_text("successMetric", value, 100)?,
            None => current.success_metric.clone(),
        },
        minimum_sample_size: match &update.minimum_sample_size {
            Some(value) => sample_size(value)?,
            None => current.minimum_sample_size,
        },
    };
    settings.check()?;
    if current.in_flight() {
        frozen_arms(current, &settings)?;
    }
    Ok(settings)
}

/// Refuses a change to an experiment in flight that would move a visitor
/// from one arm to another, or out of the experiment.
fn frozen_arms(current: &FlagView, next: &Settings) -> ApiResult<()> {
    let conflict = |field: &str, why: &str| ApiError::Conflict {
        message: format!(
            "{field} cannot change while the experiment is {}: {why}; stop it and start a new one",
            current.experiment_status.as_deref().unwrap_or("running")
        ),
        field: Some(field.to_owned()),
    };
    let arms = |variants: &[Variant]| -> Vec<(String, f64)> {
        variants.iter().map(|v| (v.id.clone(), v.weight)).collect()
    };
    if arms(&current.variant_list()) != arms(&next.variants) {
        return Err(conflict(
            "variants",
            "changing arms or weights would move visitors between arms",
        ));
    }
    if current.target_segments != next.target_segments {
        return Err(conflict(
            "targetSegments",
            "changing the targeting would let in or shut out visitors mid-test",
        ));
    }
    if !next.is_experiment {
        return Err(conflict(
            "isExperiment",
            "its participants would lose their arms",
        ));
    }
    if next.rollout_percentage < current.rollout_percentage {
        return Err(conflict(
            "rolloutPercentage",
            "a smaller rollout would take visitors out of their arms (a larger one is allowed)",
        ));
    }
    Ok(())
}

#[utoipa::path(
    operation_id = "create_flag",
    post,
    path = "/api/admin/flags",
    tag = "admin",
    summary = "Create a feature flag (or an experiment, as a draft)",
    description = "Audited. Needs `flags:create`.",
    request_body = NewFlag,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new flag.", body = FlagView),
        Invalid, Unauthenticated, Forbidden, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn create(
    mut auth: Authorized<resource::Flags, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FlagView>)> {
    let key_hint = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("key").and_then(Value::as_str).map(str::to_owned))
        .map(|k| k.chars().take(100).collect::<String>())
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let created = auth
        .mutate(&key_hint, async |tx| {
            let (key, settings) = parse_new(&body)?;
            let now = platform::clock::now_millis();
            let status = settings
                .is_experiment
                .then_some(ExperimentStatus::Draft.as_str());
            let row = tx
                .query_opt(
                    &format!(
                        r#"WITH inserted AS (
                             INSERT INTO "feature_flags" ("id", "key", "name", "description", "enabled",
                                 "rolloutPercentage", "variants", "targetSegments", "isExperiment",
                                 "experimentStatus", "successMetric", "minimumSampleSize", "createdAt", "updatedAt")
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
                             ON CONFLICT ("key") DO NOTHING
                             RETURNING *)
                           {} "#,
                        select_flag_from("inserted")
                    ),
                    &[
                        &platform::ids::new_id(),
                        &key,
                        &settings.name,
                        &settings.description,
                        &settings.enabled,
                        &settings.rollout_percentage,
                        &settings.variants_json(),
                        &settings.target_segments,
                        &settings.is_experiment,
                        &status,
                        &settings.success_metric,
                        &settings.minimum_sample_size,
                        &now,
                    ],
                )
                .await
                .map_err(ApiError::internal("creating a flag"))?;
            let created = row.as_ref().map(FlagView::from_row).ok_or_else(|| ApiError::Conflict {
                message: format!("a flag with key {key:?} exists"),
                field: Some("key".into()),
            })?;
            Ok(Change {
                resource_id: created.key.clone(),
                before: Value::Null,
                after: created.audit_view(),
                output: created,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    operation_id = "update_flag",
    patch,
    path = "/api/admin/flags/{key}",
    tag = "admin",
    summary = "Change a feature flag",
    description = "While an experiment runs or is paused, its variants, weights and targeting stay as they are and its rollout can only grow (409 naming the field). Audited. Needs `flags:update`.",
    params(("key" = String, Path, description = "The flag's key.")),
    request_body = FlagUpdate,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The flag as it now is.", body = FlagView),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn update(
    mut auth: Authorized<resource::Flags, action::Update>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<FlagView>> {
    let updated = auth
        .mutate(&key, async |tx| {
            let update: FlagUpdate = platform::json::parse(&body)?;
            let current = find(&**tx, &key, true)
                .await?
                .ok_or_else(|| not_found(&key))?;
            let settings = apply(&current, update)?;
            // A flag that becomes an experiment starts as a draft; one that
            // stops being one (only outside a run) keeps no status.
            let status = match (current.is_experiment, settings.is_experiment) {
                (false, true) => Some(ExperimentStatus::Draft.as_str().to_owned()),
                (true, true) => current.experiment_status.clone(),
                (_, false) => None,
            };
            let row = tx
                .query_one(
                    &format!(
                        r#"WITH updated AS (
                             UPDATE "feature_flags" SET "name" = $2, "description" = $3, "enabled" = $4,
                                 "rolloutPercentage" = $5, "variants" = $6, "targetSegments" = $7,
                                 "isExperiment" = $8, "experimentStatus" = $9, "successMetric" = $10,
                                 "minimumSampleSize" = $11, "updatedAt" = $12
                             WHERE "id" = $1 RETURNING *)
                           {} "#,
                        select_flag_from("updated")
                    ),
                    &[
                        &current.id,
                        &settings.name,
                        &settings.description,
                        &settings.enabled,
                        &settings.rollout_percentage,
                        &settings.variants_json(),
                        &settings.target_segments,
                        &settings.is_experiment,
                        &status,
                        &settings.success_metric,
                        &settings.minimum_sample_size,
                        &platform::clock::now_millis(),
                    ],
                )
                .await
                .map_err(ApiError::internal("updating a flag"))?;
            let after = FlagView::from_row(&row);
            Ok(Change {
                resource_id: key.clone(),
                before: current.audit_view(),
                after: after.audit_view(),
                output: after,
            })
        })
        .await?;
    Ok(Json(updated))
}

#[utoipa::path(
    operation_id = "delete_flag",
    delete,
    path = "/api/admin/flags/{key}",
    tag = "admin",
    summary = "Delete a feature flag",
    description = "With its participations. An experiment that runs or is paused must be stopped first (409). Audited. Needs `flags:delete`.",
    params(("key" = String, Path, description = "The flag's key.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub async fn delete(
    mut auth: Authorized<resource::Flags, action::Delete>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    auth.mutate(&key, async |tx| {
        let current = find(&**tx, &key, true)
            .await?
            .ok_or_else(|| not_found(&key))?;
        if current.in_flight() {
            return Err(ApiError::Conflict {
                message: format!(
                    "the experiment is {}: stop it before deleting, so its results are kept",
                    current.experiment_status.as_deref().unwrap_or("running")
                ),
                field: Some("experimentStatus".into()),
            });
        }
        let participants: i64 = tx
            .query_one(
                r#"WITH gone AS (DELETE FROM "experiment_participations" WHERE "flagId" = $1 RETURNING 1)
                   SELECT count(*) FROM gone"#,
                &[&current.id],
            )
            .await
            .map_err(ApiError::internal("deleting participations"))?
            .get(0);
        tx.execute(r#"DELETE FROM "feature_flags" WHERE "id" = $1"#, &[&current.id])
            .await
            .map_err(ApiError::internal("deleting a flag"))?;
        Ok(Change {
            resource_id: key.clone(),
            before: current.audit_view(),
            after: json!({"deleted": true, "participationsDeleted": participants}),
            output: (),
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
