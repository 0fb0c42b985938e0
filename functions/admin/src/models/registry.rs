//! The registry of model versions: every trained version in
//! `bundle.model_versions`, the active one of each name also in the
//! contract's `ml_models` row (one per name), which serving reads.
//!
//! Exactly one version per name is active once any has been: activation and
//! rollback switch it in one transaction (serialised per name by an advisory
//! lock, and the partial unique index allows at most one active row), and
//! nothing deactivates a version without activating another.
//!
//! A rollback reactivates the version active before the current one and
//! marks the current activation rolled back, so that a second rollback goes
//! further back rather than returning (the history is a stack).

use access::audit::{Entry, Origin, Recorder};
use access::{Action, Authorized, Change, Resource, action, resource};
use axum::{
    Json,
    extract::{Path, RawQuery},
};
use chrono::NaiveDateTime;
use platform::api_doc::{Conflict, Forbidden, Invalid, NotFound, Unauthenticated, Unavailable};
use platform::paging::{self, Page};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use crate::bootstrap::Channel;

/// A version as the registry shows it (its fitted parameters are in
/// [`ActiveModel`] for the active one).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    pub id: String,
    pub name: String,
    pub version: String,
    pub model_type: String,
    pub features: Vec<String>,
    /// Holdout metrics of training (`mape`, `mae`, `intervalCoverage`,
    /// `baselineMape`, `trainRows`, `holdoutRows`, `unpredictableRows`) and,
    /// once predictions of it have been settled, `realised` (the accuracy job's).
    #[schema(value_type = Object)]
    pub metrics: Value,
    /// `rows`, `from`, `to`, `routes`, `holdoutFrom`, `droppedRows`.
    #[schema(value_type = Object)]
    pub training_data: Value,
    #[schema(value_type = String)]
    pub trained_at: NaiveDateTime,
    #[schema(value_type = String)]
    pub created_at: NaiveDateTime,
    /// The last time it became active.
    #[schema(value_type = Option<String>)]
    pub activated_at: Option<NaiveDateTime>,
    pub active: bool,
}

const SELECT_VERSION: &str = r#"SELECT "id", "name", "version", "modelType", "features", "metrics",
    "trainingData", "trainedAt", "createdAt", "activatedAt", "active"
    FROM "bundle"."model_versions""#;

impl VersionView {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            name: row.get(1),
            version: row.get(2),
            model_type: row.get(3),
            features: row.get(4),
            metrics: row.get(5),
            training_data: row.get(6),
            trained_at: row.get(7),
            created_at: row.get(8),
            activated_at: row.get(9),
            active: row.get(10),
        }
    }
}

/// The `ml_models` row of a name: what serving uses.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveModel {
    pub version: String,
    pub model_type: String,
    /// 1 - holdout MAPE.
    pub accuracy: Option<f64>,
    #[schema(value_type = Object)]
    pub metrics: Value,
    /// The training summary, and `parameters`: every number the model
    /// predicts with.
    #[schema(value_type = Object)]
    pub training_data: Value,
    pub features: Option<Vec<String>>,
    pub active: bool,
    #[schema(value_type = Option<String>)]
    pub deployed_at: Option<NaiveDateTime>,
    #[schema(value_type = String)]
    pub trained_at: NaiveDateTime,
}

/// A model name in the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub name: String,
    /// The version serving uses; absent before the first activation.
    pub active_version: Option<String>,
    pub model_type: Option<String>,
    pub accuracy: Option<f64>,
    /// The active version's metrics, with `realised` when measured.
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub deployed_at: Option<NaiveDateTime>,
    /// Versions stored.
    pub versions: i64,
    /// The newest version trained.
    pub latest_version: Option<String>,
}

/// One activation of the history, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivationView {
    pub version: String,
    #[schema(value_type = String)]
    pub activated_at: NaiveDateTime,
    /// When a rollback undid it.
    #[schema(value_type = Option<String>)]
    pub rolled_back_at: Option<NaiveDateTime>,
}

/// A model: what serves, its versions newest first, its activations.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDetail {
    pub name: String,
    pub active: Option<ActiveModel>,
    pub versions: Vec<VersionView>,
    /// Continues the versions after the last one; absent on the last page.
    pub next_cursor: Option<String>,
    /// The newest 20 activations.
    pub activations: Vec<ActivationView>,
}

/// The answer of an activation or a rollback.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Switched {
    pub name: String,
    /// The version active before; absent at a first activation.
    pub from: Option<String>,
    pub to: String,
    pub rollback: bool,
    /// The version now active.
    pub version: VersionView,
}

impl Switched {
    fn audit(&self) -> (Value, Value) {
        (
            json!({"version": self.from}),
            json!({"version": self.to, "rollback": self.rollback}),
        )
    }
}

fn unknown_name(name: &str) -> ApiError {
    ApiError::no_such("name", format!("{name:?} names no model"))
}

/// Serialises activations and rollbacks of one name until the transaction ends.
async fn lock_name(client: &impl GenericClient, name: &str) -> ApiResult<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('models:' || $1, 0))",
            &[&name],
        )
        .await
        .map_err(ApiError::internal("locking the model name"))?;
    Ok(())
}

async fn has_versions(client: &impl GenericClient, name: &str) -> ApiResult<bool> {
    // By the unique index on ("name", "version").
    Ok(client
        .query_opt(
            r#"SELECT 1 FROM "bundle"."model_versions" WHERE "name" = $1 LIMIT 1"#,
            &[&name],
        )
        .await
        .map_err(ApiError::internal("looking up a model"))?
        .is_some())
}

async fn active_version(client: &impl GenericClient, name: &str) -> ApiResult<Option<String>> {
    Ok(client
        .query_opt(
            r#"SELECT "version" FROM "bundle"."model_versions" WHERE "name" = $1 AND "active""#,
            &[&name],
        )
        .await
        .map_err(ApiError::internal("reading the active version"))?
        .map(|row| row.get(0)))
}

/// Makes `version` the active one of `name`: the versions table, then the
/// `ml_models` row serving reads, rewritten from the version. `record`: a
/// new activation in the history (not for a rollback, which returns to one).
async fn switch_to(
    client: &impl GenericClient,
    name: &str,
    version: &str,
    record: bool,
) -> ApiResult<VersionView> {
    let now = platform::clock::now_millis();
    client
        .execute(
            r#"UPDATE "bundle"."model_versions" SET "active" = false
               WHERE "name" = $1 AND "active" AND "version" <> $2"#,
            &[&name, &version],
        )
        .await
        .map_err(ApiError::internal("deactivating a version"))?;
    let row = client
        .query_one(
            &format!(
                r#"WITH switched AS (
                     UPDATE "bundle"."model_versions" SET "active" = true, "activatedAt" = $3
                     WHERE "name" = $1 AND "version" = $2 RETURNING *)
                   {}"#,
                SELECT_VERSION.replace(r#"FROM "bundle"."model_versions""#, "FROM switched")
            ),
            &[&name, &version, &now],
        )
        .await
        .map_err(ApiError::internal("activating a version"))?;
    if record {
        client
            .execute(
                r#"INSERT INTO "bundle"."model_activations" ("name", "version", "activatedAt")
                   VALUES ($1, $2, $3)"#,
                &[&name, &version, &now],
            )
            .await
            .map_err(ApiError::internal("recording the activation"))?;
    }
    // ml_models keeps one row per name (its unique index): the active
    // version's, with its fitted parameters inside "trainingData".
    client
        .execute(
            r#"INSERT INTO "ml_models" ("id", "name", "version", "modelType", "accuracy", "metrics",
                   "trainedAt", "trainingData", "features", "active", "deployedAt", "createdAt")
               SELECT $1, v."name", v."version", v."modelType",
                   greatest(0, 1 - (v."metrics"->>'mape')::float8), v."metrics", v."trainedAt",
                   v."trainingData" || jsonb_build_object('parameters', v."parameters"),
                   v."features", true, $4, $4
               FROM "bundle"."model_versions" v WHERE v."name" = $2 AND v."version" = $3
               ON CONFLICT ("name") DO UPDATE SET "version" = excluded."version",
                   "modelType" = excluded."modelType", "accuracy" = excluded."accuracy",
                   "metrics" = excluded."metrics", "trainedAt" = excluded."trainedAt",
                   "trainingData" = excluded."trainingData", "features" = excluded."features",
                   "active" = true, "deployedAt" = excluded."deployedAt""#,
            &[&platform::ids::new_id(), &name, &version, &now],
        )
        .await
        .map_err(ApiError::internal("writing the active model"))?;
    Ok(VersionView::from_row(&row))
}

/// Activates `version` of `name` in the caller's transaction (which writes
/// the audit row). Activating the active version changes nothing.
pub(crate) async fn activate(
    client: &impl GenericClient,
    name: &str,
    version: &str,
) -> ApiResult<Switched> {
    lock_name(client, name).await?;
    if !has_versions(client, name).await? {
        return Err(unknown_name(name));
    }
    let exists = client
        .query_opt(
            r#"SELECT 1 FROM "bundle"."model_versions" WHERE "name" = $1 AND "version" = $2"#,
            &[&name, &version],
        )
        .await
        .map_err(ApiError::internal("looking up a version"))?
        .is_some();
    if !exists {
        return Err(ApiError::no_such(
            "version",
            format!("{version:?} names no version of model {name:?}"),
        ));
    }
    let from = active_version(client, name).await?;
    let changes = from.as_deref() != Some(version);
    let view = switch_to(client, name, version, changes).await?;
    Ok(Switched {
        name: name.to_owned(),
        from,
        to: version.to_owned(),
        rollback: false,
        version: view,
    })
}

/// Reactivates the version active before the current one of `name`.
pub(crate) async fn rollback(client: &impl GenericClient, name: &str) -> ApiResult<Switched> {
    lock_name(client, name).await?;
    if !has_versions(client, name).await? {
        return Err(unknown_name(name));
    }
    // By the index on ("name", "id"): the current activation and the one before.
    let history = client
        .query(
            r#"SELECT "id", "version" FROM "bundle"."model_activations"
               WHERE "name" = $1 AND "rolledBackAt" IS NULL ORDER BY "id" DESC LIMIT 2"#,
            &[&name],
        )
        .await
        .map_err(ApiError::internal("reading the activations"))?;
    let (current_id, current, previous): (i64, String, String) = match history.as_slice() {
        [current, previous] => (current.get(0), current.get(1), previous.get(1)),
        _ => {
            return Err(ApiError::Conflict {
                message: format!("model {name:?} has no earlier active version to roll back to"),
                field: Some("name".into()),
            });
        }
    };
    client
        .execute(
            r#"UPDATE "bundle"."model_activations" SET "rolledBackAt" = $2 WHERE "id" = $1"#,
            &[&current_id, &platform::clock::now_millis()],
        )
        .await
        .map_err(ApiError::internal("marking the rollback"))?;
    let view = switch_to(client, name, &previous, false).await?;
    Ok(Switched {
        name: name.to_owned(),
        from: Some(current),
        to: previous,
        rollback: true,
        version: view,
    })
}

/// The active version of `name` and its holdout MAPE, as a job decides
/// on it.
pub type ActiveVersion = Option<(String, Option<f64>)>;

/// Activates `version` of `name` for a job (training) when `decide`, shown
/// the active version under the name's lock (so no activation in between
/// can make its comparison stale), gives a reason; audited like the route
/// with the channel as the recorded role. `None`: not activated, with the
/// active version it was compared with.
pub async fn activate_by_job(
    client: &mut deadpool_postgres::Client,
    name: &str,
    version: &str,
    channel: Channel,
    decide: impl FnOnce(&ActiveVersion) -> Option<String>,
) -> anyhow::Result<(Option<(Switched, String)>, ActiveVersion)> {
    let tx = client.transaction().await?;
    lock_name(&*tx, name)
        .await
        .map_err(|e| anyhow::anyhow!("locking {name}: {e}"))?;
    let active: ActiveVersion = tx
        .query_opt(
            r#"SELECT "version", ("metrics"->>'mape')::float8 FROM "bundle"."model_versions"
               WHERE "name" = $1 AND "active""#,
            &[&name],
        )
        .await?
        .map(|row| (row.get(0), row.get(1)));
    let Some(why) = decide(&active) else {
        return Ok((None, active));
    };
    let switched = activate(&*tx, name, version)
        .await
        .map_err(|e| anyhow::anyhow!("activating {name} {version}: {e}"))?;
    let role = match channel {
        Channel::Cli => "train (command line)",
        Channel::Lambda => "train (direct invoke or schedule)",
    };
    let recorder = Recorder {
        user_id: "system".into(),
        email: "system".into(),
        role: role.into(),
    };
    let (before, mut after) = switched.audit();
    after["reason"] = json!(why);
    Entry::success(
        &recorder,
        &Origin::default(),
        Action::Update,
        Resource::Models,
        name,
        before,
        after,
    )
    .insert(&*tx)
    .await?;
    tx.commit().await?;
    Ok((Some((switched, why)), active))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of models, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ModelPage {
    models: Vec<ModelSummary>,
    /// Continues after the last model; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_models",
    get,
    path = "/api/admin/models",
    tag = "admin",
    summary = "List models with their active version",
    description = "By name: the version serving uses, its metrics (holdout, and `realised` once measured), and how many versions are stored. Needs `models:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of models.", body = ModelPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Models, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after: Option<String> = paging::decode(query.cursor.as_deref())?;
    // Names with versions, and any ml_models row the application wrote
    // without one.
    let rows = auth
        .client()
        .query(
            r#"WITH names AS (
                   SELECT "name" FROM "bundle"."model_versions" GROUP BY "name"
                   UNION SELECT "name" FROM "ml_models")
               SELECT n."name", CASE WHEN m."active" THEN m."version" END, m."modelType", m."accuracy",
                   m."metrics", m."deployedAt",
                   (SELECT count(*) FROM "bundle"."model_versions" v WHERE v."name" = n."name"),
                   (SELECT v."version" FROM "bundle"."model_versions" v WHERE v."name" = n."name"
                    ORDER BY v."trainedAt" DESC, v."id" DESC LIMIT 1)
               FROM names n LEFT JOIN "ml_models" m ON m."name" = n."name"
               WHERE ($1::text IS NULL OR n."name" > $1)
               ORDER BY n."name" LIMIT $2"#,
            &[&after, &(limit + 1)],
        )
        .await
        .map_err(ApiError::internal("listing models"))?;
    let models: Vec<ModelSummary> = rows
        .iter()
        .map(|row| ModelSummary {
            name: row.get(0),
            active_version: row.get(1),
            model_type: row.get(2),
            accuracy: row.get(3),
            metrics: row.get(4),
            deployed_at: row.get(5),
            versions: row.get(6),
            latest_version: row.get(7),
        })
        .collect();
    Ok(Json(Page::new("models", models, limit, |m| m.name.clone())))
}

#[utoipa::path(
    operation_id = "get_model",
    get,
    path = "/api/admin/models/{name}",
    tag = "admin",
    summary = "A model: its active version with parameters, its versions, its activations",
    description = "Versions newest first, with type, features, training data summary and metrics (holdout, and `realised` once measured), paged by `cursor`. Needs `models:read`.",
    params(("name" = String, Path, description = "The model's name, e.g. `price`."), ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The model.", body = ModelDetail),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Models, action::Read>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ModelDetail>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after = paging::time_cursor(query.cursor.as_deref())?;
    let client = auth.client();
    // By the unique index on "name".
    let active = client
        .query_opt(
            r#"SELECT "version", "modelType", "accuracy", "metrics", "trainingData", "features",
                   "active", "deployedAt", "trainedAt"
               FROM "ml_models" WHERE "name" = $1"#,
            &[&name],
        )
        .await
        .map_err(ApiError::internal("reading the active model"))?
        .map(|row| ActiveModel {
            version: row.get(0),
            model_type: row.get(1),
            accuracy: row.get(2),
            metrics: row.get(3),
            training_data: row.get(4),
            features: row.get(5),
            active: row.get(6),
            deployed_at: row.get(7),
            trained_at: row.get(8),
        });
    let (after_time, after_id) = after.unzip();
    let rows = client
        .query(
            &format!(
                r#"{SELECT_VERSION} WHERE "name" = $1
                     AND ($2::timestamp IS NULL OR ("trainedAt", "id") < ($2, $3))
                   ORDER BY "trainedAt" DESC, "id" DESC LIMIT $4"#
            ),
            &[&name, &after_time, &after_id, &(limit + 1)],
        )
        .await
        .map_err(ApiError::internal("reading the versions"))?;
    if rows.is_empty() && active.is_none() && after_time.is_none() {
        return Err(unknown_name(&name));
    }
    let mut versions: Vec<VersionView> = rows.iter().map(VersionView::from_row).collect();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = (versions.len() > limit).then(|| {
        versions.truncate(limit);
        versions
            .last()
            .map(|v| paging::encode(&(v.trained_at, v.id.clone())))
    });
    let activations = client
        .query(
            r#"SELECT "version", "activatedAt", "rolledBackAt" FROM "bundle"."model_activations"
               WHERE "name" = $1 ORDER BY "id" DESC LIMIT 20"#,
            &[&name],
        )
        .await
        .map_err(ApiError::internal("reading the activations"))?
        .iter()
        .map(|row| ActivationView {
            version: row.get(0),
            activated_at: row.get(1),
            rolled_back_at: row.get(2),
        })
        .collect();
    Ok(Json(ModelDetail {
        name,
        active,
        versions,
        next_cursor: next_cursor.flatten(),
        activations,
    }))
}

#[utoipa::path(
    operation_id = "activate_model_version",
    post,
    path = "/api/admin/models/{name}/versions/{version}/activate",
    tag = "admin",
    summary = "Make a version the one serving uses",
    description = "Switches the active version and rewrites the model's `ml_models` row in one transaction; the audit row shows from and to. Activating the active version changes nothing. Needs `models:update`.",
    params(
        ("name" = String, Path, description = "The model's name."),
        ("version" = String, Path, description = "The version to activate."),
    ),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The switch.", body = Switched),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn activate_version(
    mut auth: Authorized<resource::Models, action::Update>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Switched>> {
    let switched = auth
        .mutate(&name, async |tx| {
            let switched = activate(&**tx, &name, &version).await?;
            let (before, after) = switched.audit();
            Ok(Change {
                resource_id: name.clone(),
                before,
                after,
                output: switched,
            })
        })
        .await?;
    Ok(Json(switched))
}

#[utoipa::path(
    operation_id = "rollback_model",
    post,
    path = "/api/admin/models/{name}/rollback",
    tag = "admin",
    summary = "Return to the version active before the current one",
    description = "A second rollback goes one further back. 409 when there is no earlier active version. Audited. Needs `models:update`.",
    params(("name" = String, Path, description = "The model's name.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The switch.", body = Switched),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub async fn rollback_model(
    mut auth: Authorized<resource::Models, action::Update>,
    Path(name): Path<String>,
) -> ApiResult<Json<Switched>> {
    let switched = auth
        .mutate(&name, async |tx| {
            let switched = rollback(&**tx, &name).await?;
            let (before, after) = switched.audit();
            Ok(Change {
                resource_id: name.clone(),
                before,
                after,
                output: switched,
            })
        })
        .await?;
    Ok(Json(switched))
}
