//! `/api/admin/search-suggestions`: editing suggestions one at a time.

use access::{Authorized, Change, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use platform::paging::{self, Page};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use super::fields::{self, NewSuggestion};
use super::index::Kind;
use crate::{AppState, content};

pub(super) const SELECT_SUGGESTION: &str = r#"SELECT "id", "query", "type", "code", "name",
    "country", "popularity", "metadata", "createdAt", "updatedAt"
    FROM "search_suggestions""#;

/// A suggestion as the admin API shows it: every column.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionView {
    pub id: String,
    /// The unique key: see the module documentation of `suggest`.
    pub query: String,
    /// `airport`, `city` or `country` (rows another writer stored may hold
    /// other values: they are shown, never suggested).
    #[serde(rename = "type")]
    pub kind: String,
    pub code: Option<String>,
    pub name: String,
    pub country: Option<String>,
    pub popularity: i32,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(value_type = String)]
    pub created_at: chrono::NaiveDateTime,
    #[schema(value_type = String)]
    pub updated_at: chrono::NaiveDateTime,
}

impl SuggestionView {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            query: row.get(1),
            kind: row.get(2),
            code: row.get(3),
            name: row.get(4),
            country: row.get(5),
            popularity: row.get(6),
            metadata: row.get(7),
            created_at: row.get(8),
            updated_at: row.get(9),
        }
    }

    fn audit_view(&self) -> Value {
        serde_json::to_value(self).expect("suggestions serialise")
    }
}

async fn find(
    client: &impl GenericClient,
    id: &str,
    lock: bool,
) -> ApiResult<Option<SuggestionView>> {
    let sql = if lock {
        format!(r#"{SELECT_SUGGESTION} WHERE "id" = $1 FOR UPDATE"#)
    } else {
        format!(r#"{SELECT_SUGGESTION} WHERE "id" = $1"#)
    };
    let row = client
        .query_opt(&sql, &[&id])
        .await
        .map_err(ApiError::internal("reading a suggestion"))?;
    Ok(row.as_ref().map(SuggestionView::from_row))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("search suggestion {id:?}"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// In the query key, name or code.
    search: Option<String>,
    /// `airport`, `city` or `country`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of suggestions, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SuggestionPage {
    suggestions: Vec<SuggestionView>,
    /// Continues after the last suggestion; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_search_suggestions",
    get,
    path = "/api/admin/search-suggestions",
    tag = "cms-admin",
    summary = "List search suggestions",
    description = "By query key. Needs `suggestions:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of suggestions.", body = SuggestionPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Suggestions, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after: Option<String> = paging::decode(query.cursor.as_deref())?;
    let kind = query
        .kind
        .as_deref()
        .map(|k| fields::kind(k).map(Kind::as_str))
        .transpose()?;
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    // By the unique index on "query".
    let rows = auth
        .client()
        .query(
            &format!(
                r#"{SELECT_SUGGESTION}
                   WHERE ($1::text IS NULL OR "type" = $1)
                     AND ($2::text IS NULL OR "query" ILIKE $2 OR "name" ILIKE $2 OR "code" ILIKE $2)
                     AND ($3::text IS NULL OR "query" > $3)
                   ORDER BY "query"
                   LIMIT $4"#
            ),
            &[&kind, &pattern, &after, &(limit + 1)],
        )
        .await
        .map_err(ApiError::internal("listing suggestions"))?;
    let suggestions: Vec<SuggestionView> = rows.iter().map(SuggestionView::from_row).collect();
    Ok(Json(Page::new("suggestions", suggestions, limit, |s| {
        s.query.clone()
    })))
}

#[utoipa::path(
    operation_id = "get_search_suggestion",
    get,
    path = "/api/admin/search-suggestions/{id}",
    tag = "cms-admin",
    summary = "Get a search suggestion",
    description = "Needs `suggestions:read`.",
    params(("id" = String, Path, description = "The suggestion's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The suggestion.", body = SuggestionView),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get_one(
    mut auth: Authorized<resource::Suggestions, action::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<SuggestionView>> {
    find(&***auth.client(), &id, false)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// A change to a suggestion; absent fields stay as they are, `null`
/// clears `code`, `country` and `metadata`. A `query` key that was derived
/// follows the fields it was derived from; one set by hand stays unless
/// given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuggestionUpdate {
    query: Option<String>,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<String>)]
    code: Option<Value>,
    name: Option<String>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<String>)]
    country: Option<Value>,
    popularity: Option<i64>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// A nullable text of a change: `null` clears it.
fn nullable_text(
    field: &str,
    given: Option<Value>,
    current: Option<String>,
) -> ApiResult<Option<String>> {
    match given {
        None => Ok(current),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::invalid_field(field, "must be a string or null")),
    }
}

/// `current` with `update` applied, as the fields of a new suggestion,
/// checked as a create checks them.
fn apply(current: &SuggestionView, update: SuggestionUpdate) -> ApiResult<fields::Checked> {
    let current_fields = NewSuggestion {
        query: None,
        kind: current.kind.clone(),
        code: current.code.clone(),
        name: current.name.clone(),
        country: current.country.clone(),
        popularity: Some(i64::from(current.popularity)),
        metadata: current.metadata.clone(),
    };
    let derived = fields::check(&current_fields)
        .ok()
        .is_some_and(|f| f.query == current.query);
    let merged = NewSuggestion {
        query: update
            .query
            .or_else(|| (!derived).then(|| current.query.clone())),
        kind: update.kind.unwrap_or_else(|| current.kind.clone()),
        code: nullable_text("code", update.code, current.code.clone())?,
        name: update.name.unwrap_or_else(|| current.name.clone()),
        country: nullable_text("country", update.country, current.country.clone())?,
        popularity: Some(update.popularity.unwrap_or(i64::from(current.popularity))),
        metadata: match update.metadata {
            None => current.metadata.clone(),
            Some(Value::Null) => None,
            Some(value) => Some(value),
        },
    };
    fields::check(&merged)
}

/// The 409 of a `query` that another suggestion has.
fn query_taken(error: ApiError, query: &str) -> ApiError {
    match &error {
        ApiError::Conflict { .. } => content::taken("query", query),
        _ => error,
    }
}

#[utoipa::path(
    operation_id = "create_search_suggestion",
    post,
    path = "/api/admin/search-suggestions",
    tag = "cms-admin",
    summary = "Create a search suggestion",
    description = "`query` defaults to the key convention (`LIS` for an airport, `Paris, France` for a city, `Portugal` for a country); 409 naming `query` when another suggestion has it. Visible to this container's next search at once. Audited. Needs `suggestions:create`.",
    request_body = NewSuggestion,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new suggestion.", body = SuggestionView),
        Invalid, Unauthenticated, Forbidden, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    mut auth: Authorized<resource::Suggestions, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SuggestionView>)> {
    let name_hint = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("name").and_then(Value::as_str).map(str::to_owned))
        .map(|k| k.chars().take(100).collect::<String>())
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let created = auth
        .mutate(&name_hint, async |tx| {
            let new: NewSuggestion = platform::json::parse(&body)?;
            let checked = fields::check(&new)?;
            let now = platform::clock::now_millis();
            let row = tx
                .query_opt(
                    r#"INSERT INTO "search_suggestions" ("id", "query", "type", "code", "name",
                           "country", "popularity", "metadata", "createdAt", "updatedAt")
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                       ON CONFLICT ("query") DO NOTHING
                       RETURNING "id", "query", "type", "code", "name", "country", "popularity",
                           "metadata", "createdAt", "updatedAt""#,
                    &[
                        &platform::ids::new_id(),
                        &checked.query,
                        &checked.kind.as_str(),
                        &checked.code,
                        &checked.name,
                        &checked.country,
                        &checked.popularity.unwrap_or(0),
                        &checked.metadata,
                        &now,
                    ],
                )
                .await
                .map_err(ApiError::internal("creating a suggestion"))?;
            let created = row
                .as_ref()
                .map(SuggestionView::from_row)
                .ok_or_else(|| content::taken("query", &checked.query))?;
            Ok(Change {
                resource_id: created.id.clone(),
                before: Value::Null,
                after: created.audit_view(),
                output: created,
            })
        })
        .await?;
    state.suggestions.changed().await;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    operation_id = "update_search_suggestion",
    patch,
    path = "/api/admin/search-suggestions/{id}",
    tag = "cms-admin",
    summary = "Change a search suggestion",
    description = "Absent fields stay; `null` clears `code`, `country` and `metadata`. Checked as a create is; 409 naming `query` when another suggestion has the key. Visible to this container's next search at once. Audited. Needs `suggestions:update`.",
    params(("id" = String, Path, description = "The suggestion's id.")),
    request_body = SuggestionUpdate,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The suggestion as it now is.", body = SuggestionView),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    mut auth: Authorized<resource::Suggestions, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<SuggestionView>> {
    let updated = auth
        .mutate(&id, async |tx| {
            let update: SuggestionUpdate = platform::json::parse(&body)?;
            let current = find(&**tx, &id, true)
                .await?
                .ok_or_else(|| not_found(&id))?;
            let checked = apply(&current, update)?;
            let row = tx
                .query_one(
                    r#"UPDATE "search_suggestions" SET "query" = $2, "type" = $3, "code" = $4,
                           "name" = $5, "country" = $6, "popularity" = $7, "metadata" = $8,
                           "updatedAt" = $9
                       WHERE "id" = $1
                       RETURNING "id", "query", "type", "code", "name", "country", "popularity",
                           "metadata", "createdAt", "updatedAt""#,
                    &[
                        &current.id,
                        &checked.query,
                        &checked.kind.as_str(),
                        &checked.code,
                        &checked.name,
                        &checked.country,
                        &checked.popularity.unwrap_or(current.popularity),
                        &checked.metadata,
                        &platform::clock::now_millis(),
                    ],
                )
                .await
                .map_err(|e| {
                    query_taken(
                        ApiError::internal("updating a suggestion")(e),
                        &checked.query,
                    )
                })?;
            let after = SuggestionView::from_row(&row);
            Ok(Change {
                resource_id: id.clone(),
                before: current.audit_view(),
                after: after.audit_view(),
                output: after,
            })
        })
        .await?;
    state.suggestions.changed().await;
    Ok(Json(updated))
}

#[utoipa::path(
    operation_id = "delete_search_suggestion",
    delete,
    path = "/api/admin/search-suggestions/{id}",
    tag = "cms-admin",
    summary = "Delete a search suggestion",
    description = "Gone from this container's next search at once. Audited. Needs `suggestions:delete`.",
    params(("id" = String, Path, description = "The suggestion's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    mut auth: Authorized<resource::Suggestions, action::Delete>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.mutate(&id, async |tx| {
        let current = find(&**tx, &id, true)
            .await?
            .ok_or_else(|| not_found(&id))?;
        tx.execute(
            r#"DELETE FROM "search_suggestions" WHERE "id" = $1"#,
            &[&current.id],
        )
        .await
        .map_err(ApiError::internal("deleting a suggestion"))?;
        Ok(Change {
            resource_id: id.clone(),
            before: current.audit_view(),
            after: json!({"deleted": true}),
            output: (),
        })
    })
    .await?;
    state.suggestions.changed().await;
    Ok(StatusCode::NO_CONTENT)
}
