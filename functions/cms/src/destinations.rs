//! Destinations: public lists and pages for the site, a view counter, and
//! editing.
//!
//! Rules beyond the route permissions:
//! - the public sees published destinations only, by slug or by airport
//!   code (`/api/destinations/lisbon` and `/api/destinations/LIS`);
//! - a slug is made from the city (or set by the editor), unique, and
//!   stays when the city's spelling changes; the airport code is unique
//!   too (409 naming `airportCode`);
//! - `priceRange` is `$` to `$$$$`; travel styles are slug-like words
//!   (`city-break`, `beach`); `shortDescription` fits a card (160).

use access::{Authorized, Change, Resource, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use platform::clock::from_db_timestamp as utc;
use platform::paging::{self, Page};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use crate::deals::{Counted, counted};
use crate::{AppState, content, editing, history, public};

const COLUMNS: &str = r#""id", "slug", "airportCode", "city", "country", "region", "description",
    "shortDescription", "highlights", "travelInfo", "priceRange", "avgPrice", "travelStyles",
    "images", "seo", "published", "featured", "trending", "views", "searches", "createdAt",
    "updatedAt""#;

const EDITABLE: &[&str] = &[
    "slug",
    "airportCode",
    "city",
    "country",
    "region",
    "description",
    "shortDescription",
    "highlights",
    "travelInfo",
    "priceRange",
    "avgPrice",
    "travelStyles",
    "images",
    "seo",
    "published",
    "featured",
    "trending",
];

/// The price ranges a destination may have, cheapest first.
pub const PRICE_RANGES: &[&str] = &["$", "$$", "$$$", "$$$$"];

/// A destination as editors see it: every column.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    pub id: String,
    pub slug: String,
    pub airport_code: String,
    pub city: String,
    pub country: String,
    pub region: String,
    pub description: String,
    pub short_description: String,
    pub highlights: Option<Vec<String>>,
    /// `{bestTimeToVisit, language, currency, timezone, visa}` by convention.
    #[schema(value_type = Object)]
    pub travel_info: Value,
    /// `$` to `$$$$`.
    pub price_range: String,
    pub avg_price: Option<f64>,
    pub travel_styles: Option<Vec<String>>,
    #[schema(value_type = Vec<Object>)]
    pub images: Value,
    #[schema(value_type = Object)]
    pub seo: Value,
    pub published: bool,
    pub featured: bool,
    pub trending: bool,
    pub views: i32,
    pub searches: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Destination {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            slug: row.get(1),
            airport_code: row.get(2),
            city: row.get(3),
            country: row.get(4),
            region: row.get(5),
            description: row.get(6),
            short_description: row.get(7),
            highlights: row.get(8),
            travel_info: row.get(9),
            price_range: row.get(10),
            avg_price: row.get(11),
            travel_styles: row.get(12),
            images: row.get(13),
            seo: row.get(14),
            published: row.get(15),
            featured: row.get(16),
            trending: row.get(17),
            views: row.get(18),
            searches: row.get(19),
            created_at: utc(row.get(20)),
            updated_at: utc(row.get(21)),
        }
    }

    fn view(&self) -> Value {
        serde_json::to_value(self).expect("destinations serialise")
    }

    /// What the site may show: no counters, no `published`.
    fn public(&self) -> Value {
        let mut view = self.view();
        if let Some(fields) = view.as_object_mut() {
            for private in ["views", "searches", "published"] {
                fields.remove(private);
            }
        }
        view
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    /// `Europe`, `Asia`, ...
    region: Option<String>,
    country: Option<String>,
    featured: Option<bool>,
    trending: Option<bool>,
    /// A travel style: `beach`, `city-break`, ...
    style: Option<String>,
    /// 1-200, default 50.
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of destinations by city.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PublicDestinationPage {
    /// As [`Destination`], without `views`, `searches` and `published`.
    #[schema(value_type = Vec<Object>)]
    destinations: Vec<Value>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_public_destinations",
    get,
    path = "/api/destinations",
    tag = "cms",
    summary = "List published destinations",
    description = "By city, filtered, in keyset pages. Cacheable: `ETag`, `Cache-Control`; `If-None-Match` gives 304.",
    params(PublicQuery, ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer.")),
    responses(
        (status = 200, description = "A page of destinations.", body = PublicDestinationPage, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not changed since the ETag given."),
        Invalid, Unavailable,
    )
)]
pub async fn public_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query: PublicQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let (after_city, after_id): (Option<String>, Option<String>) =
        paging::decode::<(String, String)>(query.cursor.as_deref())?.unzip();
    let region = content::optional_text("region", query.region.as_deref(), 100)?;
    let country = content::optional_text("country", query.country.as_deref(), 100)?;
    let style = query
        .style
        .as_deref()
        .map(|s| content::check_slug("style", s))
        .transpose()?;
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_cause(e.into()))?;
    let rows = client
        .query(
            &format!(
                r#"SELECT {COLUMNS} FROM "destinations"
                   WHERE "published"
                     AND ($1::text IS NULL OR "region" = $1)
                     AND ($2::text IS NULL OR "country" = $2)
                     AND ($3::bool IS NULL OR "featured" = $3)
                     AND ($4::bool IS NULL OR "trending" = $4)
                     AND ($5::text IS NULL OR "travelStyles" @> ARRAY[$5])
                     AND ($6::text IS NULL OR ("city", "id") > ($6, $7::text))
                   ORDER BY "city", "id"
                   LIMIT $8"#
            ),
            &[
                &region,
                &country,
                &query.featured,
                &query.trending,
                &style,
                &after_city,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing destinations"))?;
    let destinations: Vec<Destination> = rows.iter().map(Destination::from_row).collect();
    let shown: Vec<Value> = destinations.iter().map(Destination::public).collect();
    let page = Page::new("destinations", shown, limit, |d| {
        (
            d["city"].as_str().unwrap_or_default().to_owned(),
            d["id"].as_str().unwrap_or_default().to_owned(),
        )
    });
    Ok(public::cached_json(&headers, &page))
}

#[utoipa::path(
    operation_id = "get_public_destination",
    get,
    path = "/api/destinations/{slug}",
    tag = "cms",
    summary = "Get a published destination",
    description = "By slug, or by its airport's IATA code. 404 for one that does not exist or is not published. Cacheable like the list.",
    params(("slug" = String, Path, description = "The destination's slug, or its airport code."), ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer.")),
    responses(
        (status = 200, description = "The destination (as in the list).", body = serde_json::Value, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not changed since the ETag given."),
        NotFound, Unavailable,
    )
)]
pub async fn public_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_cause(e.into()))?;
    // By the unique indexes on "slug" and on "airportCode".
    let destination = client
        .query_opt(
            &format!(
                r#"SELECT {COLUMNS} FROM "destinations"
                   WHERE "published" AND ("slug" = $1 OR "airportCode" = $1)
                   ORDER BY "slug" = $1 DESC
                   LIMIT 1"#
            ),
            &[&slug],
        )
        .await
        .map_err(ApiError::internal("reading a destination"))?
        .as_ref()
        .map(Destination::from_row)
        .ok_or_else(|| ApiError::NotFound(format!("destination {slug:?}")))?;
    Ok(public::cached_json(&headers, &destination.public()))
}

#[utoipa::path(
    operation_id = "count_destination_view",
    post,
    path = "/api/destinations/{slug}/view",
    tag = "cms",
    summary = "Count a view of a destination",
    description = "A beacon; any body is ignored. Answered 202 once the increment is committed; known bots get a 202 that stores nothing.",
    params(("slug" = String, Path, description = "The destination's slug or airport code.")),
    responses(
        (status = 202, description = "Counted (or dropped, for a bot).", body = Counted),
        NotFound, Unavailable,
    )
)]
pub async fn count_view(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, Json<Counted>)> {
    if public::from_bot(&headers) {
        return Ok(counted(false));
    }
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_cause(e.into()))?;
    // One UPDATE: concurrent increments queue on the row's lock.
    let updated = client
        .execute(
            r#"UPDATE "destinations" SET "views" = "views" + 1
               WHERE "published" AND ("slug" = $1 OR "airportCode" = $1)"#,
            &[&slug],
        )
        .await
        .map_err(ApiError::internal("counting"))?;
    if updated == 0 {
        return Err(ApiError::NotFound(format!("destination {slug:?}")));
    }
    Ok(counted(true))
}

// ---- editing ----

/// A destination as an editor writes it: the body of a create, a change
/// merged onto the current one, or a version being restored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationInput {
    /// Made from the city when absent.
    slug: Option<String>,
    /// IATA code, unique.
    airport_code: String,
    city: String,
    country: String,
    region: String,
    description: String,
    /// At most 160 characters.
    short_description: String,
    highlights: Option<Vec<String>>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    travel_info: Value,
    /// `$` to `$$$$`.
    price_range: String,
    avg_price: Option<f64>,
    travel_styles: Option<Vec<String>>,
    #[serde(default = "empty_array")]
    #[schema(value_type = Vec<Object>)]
    images: Value,
    #[schema(value_type = Option<Object>)]
    seo: Option<Value>,
    #[serde(default)]
    published: bool,
    #[serde(default)]
    featured: bool,
    #[serde(default)]
    trending: bool,
}

fn empty_object() -> Value {
    json!({})
}
fn empty_array() -> Value {
    json!([])
}

struct Checked {
    slug: String,
    airport_code: String,
    city: String,
    country: String,
    region: String,
    description: String,
    short_description: String,
    highlights: Option<Vec<String>>,
    travel_info: Value,
    price_range: String,
    avg_price: Option<f64>,
    travel_styles: Option<Vec<String>>,
    images: Value,
    seo: Value,
    published: bool,
    featured: bool,
    trending: bool,
}

impl DestinationInput {
    fn check(self) -> ApiResult<Checked> {
        let city = content::text("city", &self.city, 100)?;
        let description = content::text("description", &self.description, 5000)?;
        let short_description = content::text(
            "shortDescription",
            &self.short_description,
            content::MAX_SEO_DESCRIPTION_CHARS,
        )?;
        if !PRICE_RANGES.contains(&self.price_range.as_str()) {
            return Err(ApiError::invalid_field(
                "priceRange",
                "must be one of $, $$, $$$, $$$$",
            ));
        }
        let travel_styles = self
            .travel_styles
            .map(|styles| {
                styles
                    .iter()
                    .enumerate()
                    .map(|(i, s)| content::check_slug(&format!("travelStyles[{i}]"), s))
                    .collect::<ApiResult<Vec<String>>>()
            })
            .transpose()?;
        let seo = content::seo(
            self.seo.as_ref(),
            &format!("{city}, {}", self.country.trim()),
            &short_description,
        )?;
        Ok(Checked {
            slug: content::new_slug(self.slug.as_deref(), "city", &city)?,
            airport_code: content::iata("airportCode", &self.airport_code)?,
            country: content::text("country", &self.country, 100)?,
            region: content::text("region", &self.region, 100)?,
            highlights: self
                .highlights
                .map(|h| content::texts("highlights", &h, 20, 300))
                .transpose()?,
            travel_info: content::object("travelInfo", &self.travel_info, 8 * 1024)?,
            avg_price: self
                .avg_price
                .map(|p| content::price("avgPrice", p))
                .transpose()?,
            images: serde_json::to_value(content::images(&self.images)?).expect("serialises"),
            seo: serde_json::to_value(seo).expect("serialises"),
            price_range: self.price_range,
            travel_styles,
            published: self.published,
            featured: self.featured,
            trending: self.trending,
            city,
            description,
            short_description,
        })
    }
}

async fn find(client: &impl GenericClient, id: &str, lock: bool) -> ApiResult<Option<Destination>> {
    let sql = if lock {
        format!(r#"SELECT {COLUMNS} FROM "destinations" WHERE "id" = $1 FOR UPDATE"#)
    } else {
        format!(r#"SELECT {COLUMNS} FROM "destinations" WHERE "id" = $1"#)
    };
    Ok(client
        .query_opt(&sql, &[&id])
        .await
        .map_err(ApiError::internal("reading a destination"))?
        .as_ref()
        .map(Destination::from_row))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("destination {id:?}"))
}

/// Writes `destination` as destination `id`: an insert when `exists` is
/// false (a new one, or a deleted one restored), else an update. A slug or
/// airport code another destination holds is a 409 naming it.
async fn write(
    tx: &impl GenericClient,
    id: &str,
    destination: &Checked,
    exists: bool,
) -> ApiResult<Destination> {
    let holder = tx
        .query_opt(
            r#"SELECT "slug" = $1 FROM "destinations"
               WHERE ("slug" = $1 OR "airportCode" = $2) AND "id" <> $3
               LIMIT 1"#,
            &[&destination.slug, &destination.airport_code, &id],
        )
        .await
        .map_err(ApiError::internal("checking a slug"))?;
    if let Some(row) = holder {
        return Err(if row.get::<_, bool>(0) {
            content::taken("slug", &destination.slug)
        } else {
            content::taken("airportCode", &destination.airport_code)
        });
    }
    let sql = if exists {
        format!(
            r#"UPDATE "destinations" SET "slug" = $2, "airportCode" = $3, "city" = $4, "country" = $5,
                   "region" = $6, "description" = $7, "shortDescription" = $8, "highlights" = $9,
                   "travelInfo" = $10, "priceRange" = $11, "avgPrice" = $12, "travelStyles" = $13,
                   "images" = $14, "seo" = $15, "published" = $16, "featured" = $17,
                   "trending" = $18, "updatedAt" = $19
               WHERE "id" = $1
               RETURNING {COLUMNS}"#
        )
    } else {
        format!(
            r#"INSERT INTO "destinations" ("id", "slug", "airportCode", "city", "country", "region",
                   "description", "shortDescription", "highlights", "travelInfo", "priceRange",
                   "avgPrice", "travelStyles", "images", "seo", "published", "featured", "trending",
                   "createdAt", "updatedAt")
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $19)
               RETURNING {COLUMNS}"#
        )
    };
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &destination.slug,
                &destination.airport_code,
                &destination.city,
                &destination.country,
                &destination.region,
                &destination.description,
                &destination.short_description,
                &destination.highlights,
                &destination.travel_info,
                &destination.price_range,
                &destination.avg_price,
                &destination.travel_styles,
                &destination.images,
                &destination.seo,
                &destination.published,
                &destination.featured,
                &destination.trending,
                &platform::clock::now_millis(),
            ],
        )
        .await
        .map_err(ApiError::internal("writing a destination"))?;
    Ok(Destination::from_row(&row))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminQuery {
    /// In the city, country, slug or airport code.
    search: Option<String>,
    region: Option<String>,
    published: Option<bool>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of destinations by city, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DestinationPage {
    destinations: Vec<Destination>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_destinations",
    get,
    path = "/api/admin/destinations",
    tag = "cms-admin",
    summary = "List every destination (unpublished too)",
    description = "By city. Needs `destinations:read`.",
    params(AdminQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of destinations.", body = DestinationPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Destinations, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: AdminQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let (after_city, after_id): (Option<String>, Option<String>) =
        paging::decode::<(String, String)>(query.cursor.as_deref())?.unzip();
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    let rows = auth
        .client()
        .query(
            &format!(
                r#"SELECT {COLUMNS} FROM "destinations"
                   WHERE ($1::text IS NULL OR "city" ILIKE $1 OR "country" ILIKE $1 OR "slug" ILIKE $1 OR "airportCode" ILIKE $1)
                     AND ($2::text IS NULL OR "region" = $2)
                     AND ($3::bool IS NULL OR "published" = $3)
                     AND ($4::text IS NULL OR ("city", "id") > ($4, $5::text))
                   ORDER BY "city", "id"
                   LIMIT $6"#
            ),
            &[
                &pattern,
                &query.region,
                &query.published,
                &after_city,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing destinations"))?;
    let destinations: Vec<Destination> = rows.iter().map(Destination::from_row).collect();
    Ok(Json(Page::new("destinations", destinations, limit, |d| {
        (d.city.clone(), d.id.clone())
    })))
}

#[utoipa::path(
    operation_id = "get_destination",
    get,
    path = "/api/admin/destinations/{id}",
    tag = "cms-admin",
    summary = "Get a destination",
    description = "Needs `destinations:read`.",
    params(("id" = String, Path, description = "The destination's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The destination.", body = Destination),
        Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Destinations, action::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<Destination>> {
    find(&***auth.client(), &id, false)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

#[utoipa::path(
    operation_id = "create_destination",
    post,
    path = "/api/admin/destinations",
    tag = "cms-admin",
    summary = "Create a destination",
    description = "The slug is made from the city unless given; a taken slug or airport code is a 409 naming it. Audited. Needs `destinations:create`.",
    request_body = DestinationInput,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new destination.", body = Destination),
        Invalid, Unauthenticated, Forbidden, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn create(
    mut auth: Authorized<resource::Destinations, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Destination>)> {
    let id = platform::ids::new_id();
    let created = auth
        .mutate(&id, async |tx| {
            let destination = platform::json::parse::<DestinationInput>(&body)?.check()?;
            let created = write(&**tx, &id, &destination, false).await?;
            Ok(Change {
                resource_id: created.id.clone(),
                before: Value::Null,
                after: created.view(),
                output: created,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    operation_id = "update_destination",
    patch,
    path = "/api/admin/destinations/{id}",
    tag = "cms-admin",
    summary = "Change a destination",
    description = "Absent fields stay as they are; `null` clears a nullable one. The slug changes only when given. Audited. Needs `destinations:update`.",
    params(("id" = String, Path, description = "The destination's id.")),
    request_body = DestinationInput,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The destination as it now is.", body = Destination),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn update(
    mut auth: Authorized<resource::Destinations, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Destination>> {
    let updated = auth
        .mutate(&id, async |tx| {
            let current = find(&**tx, &id, true)
                .await?
                .ok_or_else(|| not_found(&id))?;
            let merged = editing::merge(&current.view(), EDITABLE, &body)?;
            let destination = platform::json::parse::<DestinationInput>(&merged)?.check()?;
            let after = write(&**tx, &id, &destination, true).await?;
            Ok(Change {
                resource_id: id.clone(),
                before: current.view(),
                after: after.view(),
                output: after,
            })
        })
        .await?;
    Ok(Json(updated))
}

#[utoipa::path(
    operation_id = "delete_destination",
    delete,
    path = "/api/admin/destinations/{id}",
    tag = "cms-admin",
    summary = "Delete a destination",
    description = "Its history stays in the audit trail, from which `restore` can bring it back. Audited. Needs `destinations:delete`.",
    params(("id" = String, Path, description = "The destination's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn delete(
    mut auth: Authorized<resource::Destinations, action::Delete>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.mutate(&id, async |tx| {
        let current = find(&**tx, &id, true)
            .await?
            .ok_or_else(|| not_found(&id))?;
        tx.execute(r#"DELETE FROM "destinations" WHERE "id" = $1"#, &[&id])
            .await
            .map_err(ApiError::internal("deleting a destination"))?;
        Ok(Change {
            resource_id: id.clone(),
            before: current.view(),
            after: json!({"deleted": true}),
            output: (),
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    operation_id = "destination_history",
    get,
    path = "/api/admin/destinations/{id}/history",
    tag = "cms-admin",
    summary = "A destination's version history",
    description = "Every change, newest first, from the audit trail: who, when, before and after. Also for a deleted destination. Needs `destinations:read`.",
    params(("id" = String, Path, description = "The destination's id."), history::HistoryQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions.", body = history::VersionPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn history(
    mut auth: Authorized<resource::Destinations, action::Read>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    history::list(
        &***auth.client(),
        Resource::Destinations,
        &id,
        query.as_deref(),
    )
    .await
    .map(Json)
}

#[utoipa::path(
    operation_id = "restore_destination",
    post,
    path = "/api/admin/destinations/{id}/restore",
    tag = "cms-admin",
    summary = "Bring back a version of a destination",
    description = "The version a change of its history left (or found, with `state: before`), checked as an edit is, applied as an update; a deleted destination comes back under its id. Audited (`restoredFrom` in the row's `after`). Needs `destinations:update`.",
    params(("id" = String, Path, description = "The destination's id.")),
    request_body = history::RestoreRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The destination as it now is.", body = Destination),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn restore(
    mut auth: Authorized<resource::Destinations, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Destination>> {
    let restored = auth
        .mutate(&id, async |tx| {
            let request: history::RestoreRequest = platform::json::parse(&body)?;
            let version = history::version(&**tx, Resource::Destinations, &id, &request).await?;
            let current = find(&**tx, &id, true).await?;
            let input = serde_json::to_vec(&editing::editable(&version, EDITABLE))
                .expect("JSON serialises");
            let destination = platform::json::parse::<DestinationInput>(&input)?.check()?;
            let after = write(&**tx, &id, &destination, current.is_some()).await?;
            Ok(Change {
                resource_id: id.clone(),
                before: current.as_ref().map_or(Value::Null, Destination::view),
                after: history::restored(after.view(), &request.audit_id),
                output: after,
            })
        })
        .await?;
    Ok(Json(restored))
}
