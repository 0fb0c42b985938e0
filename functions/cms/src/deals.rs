//! Deals: public lists and pages for the site, counters, and editing.
//!
//! Rules beyond the route permissions:
//! - the public sees only active deals that have not expired; a deal's
//!   counters and its author are not public;
//! - a slug is made from the title (or set by the editor), unique, and does
//!   not change when the title does: links to the deal keep working;
//! - prices are positive, `discountedPrice` <= `originalPrice`, in an ISO
//!   4217 currency; airports are IATA codes;
//! - `destination` is `{airportCode, city, country}`; `flightDetails` a
//!   free object (`{airline, departDate, returnDate, stops, cabinClass,
//!   durationMinutes}` by convention); images `[{url, alt}]` over https.

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
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_postgres::types::{Json as JsonColumn, ToSql};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState, content,
    editing::{self, float_key, float_of_key},
    history, public,
};

const COLUMNS: &str = r#""id", "slug", "title", "description", "destination", "origin",
    "originalPrice", "discountedPrice", "currency", "flightDetails", "dealScore", "featured",
    "active", "expiresAt", "category", "tags", "images", "restrictions", "seo", "views",
    "clicks", "conversions", "createdAt", "updatedAt", "createdBy""#;

/// The fields an editor sets; everything else is kept by the API.
const EDITABLE: &[&str] = &[
    "slug",
    "title",
    "description",
    "destination",
    "origin",
    "originalPrice",
    "discountedPrice",
    "currency",
    "flightDetails",
    "dealScore",
    "featured",
    "active",
    "expiresAt",
    "category",
    "tags",
    "images",
    "restrictions",
    "seo",
];

/// A deal as editors see it: every column.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// `{airportCode, city, country}`.
    #[schema(value_type = Object)]
    pub destination: Value,
    /// The departure airport's IATA code.
    pub origin: String,
    pub original_price: f64,
    pub discounted_price: f64,
    pub currency: String,
    #[schema(value_type = Object)]
    pub flight_details: Value,
    pub deal_score: i32,
    pub featured: bool,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub category: String,
    pub tags: Option<Vec<String>>,
    /// `[{url, alt}]`.
    #[schema(value_type = Vec<Object>)]
    pub images: Value,
    pub restrictions: Option<Vec<String>>,
    /// `{title, description, keywords?, canonicalUrl?}`.
    #[schema(value_type = Object)]
    pub seo: Value,
    pub views: i32,
    pub clicks: i32,
    pub conversions: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
}

impl Deal {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            slug: row.get(1),
            title: row.get(2),
            description: row.get(3),
            destination: row.get(4),
            origin: row.get(5),
            original_price: row.get(6),
            discounted_price: row.get(7),
            currency: row.get(8),
            flight_details: row.get(9),
            deal_score: row.get(10),
            featured: row.get(11),
            active: row.get(12),
            expires_at: row.get::<_, Option<chrono::NaiveDateTime>>(13).map(utc),
            category: row.get(14),
            tags: row.get(15),
            images: row.get(16),
            restrictions: row.get(17),
            seo: row.get(18),
            views: row.get(19),
            clicks: row.get(20),
            conversions: row.get(21),
            created_at: utc(row.get(22)),
            updated_at: utc(row.get(23)),
            created_by: row.get(24),
        }
    }

    fn view(&self) -> Value {
        serde_json::to_value(self).expect("deals serialise")
    }
}

/// The whole percentage saved, as the site shows it.
fn discount_percent(original: f64, discounted: f64) -> i64 {
    // Prices are positive and below 1e9, so the ratio fits.
    #[allow(clippy::cast_possible_truncation)]
    let percent = ((1.0 - discounted / original) * 100.0).round() as i64;
    percent
}

/// The columns the site may see: no counters, no author, no `active`
/// (the public sees active deals only).
const PUBLIC_COLUMNS: &str = r#""id", "slug", "title", "description", "destination", "origin",
    "originalPrice", "discountedPrice", "currency", "flightDetails", "dealScore", "featured",
    "expiresAt", "category", "tags", "images", "restrictions", "seo", "createdAt", "updatedAt""#;

// Read from PUBLIC_COLUMNS. Its JSON columns stay the text PostgreSQL
// sent: the answer carries them as they are, with no tree built and
// written again for each of a page's deals.
/// A deal as the site shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicDeal {
    id: String,
    slug: String,
    title: String,
    description: String,
    /// `{airportCode, city, country}`.
    #[schema(value_type = Object)]
    destination: Box<RawValue>,
    origin: String,
    original_price: f64,
    discounted_price: f64,
    /// Rounded to a whole percent.
    discount_percent: i64,
    currency: String,
    #[schema(value_type = Object)]
    flight_details: Box<RawValue>,
    deal_score: i32,
    featured: bool,
    expires_at: Option<DateTime<Utc>>,
    category: String,
    tags: Vec<String>,
    /// `[{url, alt}]`.
    #[schema(value_type = Vec<Object>)]
    images: Box<RawValue>,
    restrictions: Vec<String>,
    /// `{title, description, keywords?, canonicalUrl?}`.
    #[schema(value_type = Object)]
    seo: Box<RawValue>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PublicDeal {
    fn from_row(row: &Row) -> Self {
        let raw = |i: usize| row.get::<_, JsonColumn<Box<RawValue>>>(i).0;
        let original_price: f64 = row.get(6);
        let discounted_price: f64 = row.get(7);
        Self {
            id: row.get(0),
            slug: row.get(1),
            title: row.get(2),
            description: row.get(3),
            destination: raw(4),
            origin: row.get(5),
            original_price,
            discounted_price,
            discount_percent: discount_percent(original_price, discounted_price),
            currency: row.get(8),
            flight_details: raw(9),
            deal_score: row.get(10),
            featured: row.get(11),
            expires_at: row.get::<_, Option<chrono::NaiveDateTime>>(12).map(utc),
            category: row.get(13),
            tags: row.get::<_, Option<Vec<String>>>(14).unwrap_or_default(),
            images: raw(15),
            restrictions: row.get::<_, Option<Vec<String>>>(16).unwrap_or_default(),
            seo: raw(17),
            created_at: utc(row.get(18)),
            updated_at: utc(row.get(19)),
        }
    }
}

/// The order of a public list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Sort {
    /// Best deals first (the default).
    #[default]
    DealScore,
    /// Cheapest first.
    Price,
    /// Largest discount first.
    Discount,
    /// Newest first.
    Newest,
}

impl Sort {
    /// ORDER BY and the keyset condition of the sort, the latter with
    /// `{}` where its key's parameter number goes. Fixed text per sort: no
    /// value is formatted in.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Sort::DealScore => (
                r#""dealScore" DESC, "id" DESC"#,
                r#"("dealScore", "id") < (${key}, ${id})"#,
            ),
            Sort::Price => (
                r#""discountedPrice" ASC, "id" ASC"#,
                r#"("discountedPrice", "id") > (${key}, ${id})"#,
            ),
            Sort::Discount => (
                r#"("originalPrice" - "discountedPrice") / "originalPrice" DESC, "id" DESC"#,
                r#"(("originalPrice" - "discountedPrice") / "originalPrice", "id") < (${key}, ${id})"#,
            ),
            Sort::Newest => (
                r#""createdAt" DESC, "id" DESC"#,
                r#"("createdAt", "id") < (${key}, ${id})"#,
            ),
        }
    }
}

/// Where a page of a public list ends: the sort it was made for and the
/// last deal's key in it (floats as their bits: [`float_key`]).
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    sort: Sort,
    score: Option<i32>,
    number: Option<i64>,
    time: Option<chrono::NaiveDateTime>,
    id: String,
}

impl Cursor {
    fn after(sort: Sort, deal: &PublicDeal) -> Self {
        let number = match sort {
            Sort::Price => Some(float_key(deal.discounted_price)),
            Sort::Discount => Some(float_key(
                (deal.original_price - deal.discounted_price) / deal.original_price,
            )),
            Sort::DealScore | Sort::Newest => None,
        };
        Self {
            sort,
            score: (sort == Sort::DealScore).then_some(deal.deal_score),
            number,
            time: (sort == Sort::Newest).then(|| platform::clock::to_db_timestamp(deal.created_at)),
            id: deal.id.clone(),
        }
    }

    /// The parameter of the sort's key, or a 400 naming `cursor` for one
    /// that does not hold it (a forged cursor).
    fn key(&self) -> ApiResult<Box<dyn ToSql + Sync + Send>> {
        let forged = || ApiError::invalid_field("cursor", "is not one this API issued");
        Ok(match self.sort {
            Sort::DealScore => Box::new(self.score.ok_or_else(forged)?),
            Sort::Price | Sort::Discount => Box::new(float_of_key(self.number.ok_or_else(forged)?)),
            Sort::Newest => Box::new(self.time.ok_or_else(forged)?),
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    /// `featured`, `last-minute`, `weekend`, `long-haul`, `business`, ...
    category: Option<String>,
    /// The departure airport's IATA code.
    origin: Option<String>,
    /// The destination airport's IATA code.
    destination: Option<String>,
    featured: Option<bool>,
    /// Deals in this ISO 4217 currency only.
    currency: Option<String>,
    /// Deals at or below this discounted price (in the deal's currency;
    /// with `currency` for one currency's deals).
    max_price: Option<f64>,
    sort: Option<Sort>,
    /// 1-200, default 50.
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of deals.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PublicDealPage {
    deals: Vec<PublicDeal>,
    /// Continues after the last deal; absent on the last page.
    next_cursor: Option<String>,
}

/// Active and not expired at `$1`.
const LIVE: &str = r#""active" AND ("expiresAt" IS NULL OR "expiresAt" > $1)"#;

/// A statement and its parameters, built from the filters a request sets:
/// each condition is fixed text naming its parameter by number, and only
/// the conditions in use are in the statement, so PostgreSQL plans exactly
/// the query asked for (a generic plan of `$2 IS NULL OR ...` for every
/// filter would have to keep every branch).
struct Statement {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    fn new(base: String, now: chrono::NaiveDateTime) -> Self {
        Self {
            sql: base,
            params: vec![Box::new(now)],
        }
    }

    /// Adds ` AND <condition>`, its `{}` replaced by the next parameter.
    fn and(&mut self, condition: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.params.push(value);
        let number = format!("${}", self.params.len());
        self.sql.push_str(" AND ");
        self.sql.push_str(&condition.replace("{}", &number));
    }
}

#[utoipa::path(
    operation_id = "list_public_deals",
    get,
    path = "/api/deals",
    tag = "cms",
    summary = "List live deals",
    description = "Active, unexpired deals, filtered and sorted, in keyset pages. Cacheable: `ETag`, `Cache-Control`; `If-None-Match` gives 304.",
    params(PublicQuery, ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer.")),
    responses(
        (status = 200, description = "A page of deals.", body = PublicDealPage, headers(("ETag" = String), ("Cache-Control" = String))),
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
    let sort = query.sort.unwrap_or_default();
    let limit = paging::limit(query.limit)?;
    let cursor: Option<Cursor> = paging::decode(query.cursor.as_deref())?;
    if cursor.as_ref().is_some_and(|c| c.sort != sort) {
        return Err(ApiError::invalid_field(
            "cursor",
            "was issued for another sort: keep the sort of the first page",
        ));
    }
    let mut statement = Statement::new(
        format!(r#"SELECT {PUBLIC_COLUMNS} FROM "deals" WHERE {LIVE}"#),
        platform::clock::now_millis(),
    );
    if let Some(category) = &query.category {
        let category = content::check_slug("category", category)?;
        statement.and(r#""category" = {}"#, Box::new(category));
    }
    if let Some(origin) = &query.origin {
        let origin = content::iata("origin", origin)?;
        statement.and(r#""origin" = {}"#, Box::new(origin));
    }
    if let Some(destination) = &query.destination {
        let destination = content::iata("destination", destination)?;
        statement.and(
            r#""destination"->>'airportCode' = {}"#,
            Box::new(destination),
        );
    }
    if let Some(featured) = query.featured {
        statement.and(r#""featured" = {}"#, Box::new(featured));
    }
    if let Some(currency) = &query.currency {
        let currency = content::currency("currency", currency)?;
        statement.and(r#""currency" = {}"#, Box::new(currency));
    }
    if let Some(max_price) = query.max_price {
        let max_price = content::price("maxPrice", max_price)?;
        statement.and(r#""discountedPrice" <= {}"#, Box::new(max_price));
    }
    let (order, after) = sort.sql();
    if let Some(cursor) = &cursor {
        statement.params.push(cursor.key()?);
        let key = statement.params.len();
        statement.params.push(Box::new(cursor.id.clone()));
        statement.sql.push_str(" AND ");
        statement.sql.push_str(
            &after
                .replace("{key}", &key.to_string())
                .replace("{id}", &(key + 1).to_string()),
        );
    }
    statement.params.push(Box::new(limit + 1));
    statement.sql.push_str(&format!(
        " ORDER BY {order} LIMIT ${}",
        statement.params.len()
    ));
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_cause(e.into()))?;
    // Cached per connection: one statement per combination of filters used.
    let prepared = client
        .prepare_cached(&statement.sql)
        .await
        .map_err(ApiError::internal("preparing the deal list"))?;
    let params: Vec<&(dyn ToSql + Sync)> = statement
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = client
        .query(&prepared, &params)
        .await
        .map_err(ApiError::internal("listing deals"))?;
    let deals: Vec<PublicDeal> = rows.iter().map(PublicDeal::from_row).collect();
    let body = public::page_json("deals", &deals, limit, |deal| Cursor::after(sort, deal));
    Ok(public::cached_bytes(&headers, body))
}

/// The live deal with `slug`, or a 404 naming it.
async fn find_live(client: &impl GenericClient, slug: &str) -> ApiResult<PublicDeal> {
    client
        .query_opt(
            &format!(r#"SELECT {PUBLIC_COLUMNS} FROM "deals" WHERE "slug" = $2 AND {LIVE}"#),
            &[&platform::clock::now_millis(), &slug],
        )
        .await
        .map_err(ApiError::internal("reading a deal"))?
        .as_ref()
        .map(PublicDeal::from_row)
        .ok_or_else(|| ApiError::NotFound(format!("deal {slug:?}")))
}

#[utoipa::path(
    operation_id = "get_public_deal",
    get,
    path = "/api/deals/{slug}",
    tag = "cms",
    summary = "Get a live deal",
    description = "By slug; 404 for a slug that does not exist, an inactive or an expired deal. Cacheable like the list.",
    params(("slug" = String, Path, description = "The deal's slug."), ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer.")),
    responses(
        (status = 200, description = "The deal.", body = PublicDeal, headers(("ETag" = String), ("Cache-Control" = String))),
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
    let deal = find_live(&**client, &slug).await?;
    Ok(public::cached_json(&headers, &deal))
}

/// A counter of a deal.
#[derive(Clone, Copy)]
enum Counter {
    Views,
    Clicks,
    Conversions,
}

/// What a counter beacon is answered.
#[derive(Serialize, ToSchema)]
pub struct Counted {
    /// Whether the increment was stored (false for a bot's beacon).
    counted: bool,
    /// Why nothing was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<&'static str>,
}

/// The answer to a counter beacon: 202 once the increment is committed, or
/// 202 storing nothing for a bot.
pub fn counted(stored: bool) -> (StatusCode, Json<Counted>) {
    (
        StatusCode::ACCEPTED,
        Json(Counted {
            counted: stored,
            dropped: (!stored).then_some("bot"),
        }),
    )
}

/// One increment of `counter` of the live deal `slug`. A single UPDATE:
/// concurrent increments queue on the row's lock and none is lost.
async fn count(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    counter: Counter,
) -> ApiResult<(StatusCode, Json<Counted>)> {
    if public::from_bot(headers) {
        return Ok(counted(false));
    }
    let sql = match counter {
        Counter::Views => {
            r#"UPDATE "deals" SET "views" = "views" + 1 WHERE "slug" = $2 AND "active" AND ("expiresAt" IS NULL OR "expiresAt" > $1)"#
        }
        Counter::Clicks => {
            r#"UPDATE "deals" SET "clicks" = "clicks" + 1 WHERE "slug" = $2 AND "active" AND ("expiresAt" IS NULL OR "expiresAt" > $1)"#
        }
        Counter::Conversions => {
            r#"UPDATE "deals" SET "conversions" = "conversions" + 1 WHERE "slug" = $2 AND "active" AND ("expiresAt" IS NULL OR "expiresAt" > $1)"#
        }
    };
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_cause(e.into()))?;
    let updated = client
        .execute(sql, &[&platform::clock::now_millis(), &slug])
        .await
        .map_err(ApiError::internal("counting"))?;
    if updated == 0 {
        return Err(ApiError::NotFound(format!("deal {slug:?}")));
    }
    Ok(counted(true))
}

macro_rules! counter_route {
    ($name:ident, $counter:expr, $path:literal, $operation:literal, $summary:literal) => {
        #[utoipa::path(
            operation_id = $operation,
            post,
            path = $path,
            tag = "cms",
            summary = $summary,
            description = "A beacon (`navigator.sendBeacon` or `fetch`); any body is ignored. Answered 202 once the increment is committed; known bots get a 202 that stores nothing.",
            params(("slug" = String, Path, description = "The deal's slug.")),
            responses(
                (status = 202, description = "Counted (or dropped, for a bot).", body = Counted),
                NotFound, Unavailable,
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(slug): Path<String>,
        ) -> ApiResult<(StatusCode, Json<Counted>)> {
            count(&state, &headers, &slug, $counter).await
        }
    };
}

counter_route!(
    count_view,
    Counter::Views,
    "/api/deals/{slug}/view",
    "count_deal_view",
    "Count a view of a deal"
);
counter_route!(
    count_click,
    Counter::Clicks,
    "/api/deals/{slug}/click",
    "count_deal_click",
    "Count a click on a deal"
);
counter_route!(
    count_conversion,
    Counter::Conversions,
    "/api/deals/{slug}/conversion",
    "count_deal_conversion",
    "Count a conversion of a deal"
);

// ---- editing ----

/// A deal's destination.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Place {
    /// IATA code.
    pub airport_code: String,
    pub city: String,
    pub country: String,
}

fn usd() -> String {
    "USD".into()
}
fn empty_object() -> Value {
    json!({})
}
fn empty_array() -> Value {
    json!([])
}
fn default_score() -> i64 {
    50
}
fn yes() -> bool {
    true
}
fn featured_category() -> String {
    "featured".into()
}

/// A deal as an editor writes it: the body of a create, a change merged
/// onto the current deal, or a version being restored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DealInput {
    /// Made from the title when absent.
    slug: Option<String>,
    title: String,
    description: String,
    destination: Place,
    /// IATA code of the departure airport.
    origin: String,
    original_price: f64,
    /// At most `originalPrice`.
    discounted_price: f64,
    /// ISO 4217; default USD.
    #[serde(default = "usd")]
    currency: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    flight_details: Value,
    /// 0-100; default 50.
    #[serde(default = "default_score")]
    deal_score: i64,
    #[serde(default)]
    featured: bool,
    #[serde(default = "yes")]
    active: bool,
    expires_at: Option<DateTime<Utc>>,
    /// A slug-like word; default `featured`.
    #[serde(default = "featured_category")]
    category: String,
    tags: Option<Vec<String>>,
    /// `[{url, alt}]`, https only.
    #[serde(default = "empty_array")]
    #[schema(value_type = Vec<Object>)]
    images: Value,
    restrictions: Option<Vec<String>>,
    /// Made from the title and description when absent.
    #[schema(value_type = Option<Object>)]
    seo: Option<Value>,
}

/// A deal's fields, checked, as they will be stored.
struct Checked {
    slug: String,
    title: String,
    description: String,
    destination: Value,
    origin: String,
    original_price: f64,
    discounted_price: f64,
    currency: String,
    flight_details: Value,
    deal_score: i32,
    featured: bool,
    active: bool,
    expires_at: Option<chrono::NaiveDateTime>,
    category: String,
    tags: Option<Vec<String>>,
    images: Value,
    restrictions: Option<Vec<String>>,
    seo: Value,
}

impl DealInput {
    fn check(self) -> ApiResult<Checked> {
        let title = content::text("title", &self.title, 200)?;
        let description = content::text("description", &self.description, 5000)?;
        let original_price = content::price("originalPrice", self.original_price)?;
        let discounted_price = content::price("discountedPrice", self.discounted_price)?;
        if discounted_price > original_price {
            return Err(ApiError::invalid_field(
                "discountedPrice",
                "must be at most originalPrice",
            ));
        }
        let destination = Place {
            airport_code: content::iata("destination.airportCode", &self.destination.airport_code)?,
            city: content::text("destination.city", &self.destination.city, 100)?,
            country: content::text("destination.country", &self.destination.country, 100)?,
        };
        let deal_score = i32::try_from(self.deal_score)
            .ok()
            .filter(|s| (0..=100).contains(s))
            .ok_or_else(|| ApiError::invalid_field("dealScore", "must be between 0 and 100"))?;
        let images = content::images(&self.images)?;
        let seo = content::seo(self.seo.as_ref(), &title, &description)?;
        Ok(Checked {
            slug: content::new_slug(self.slug.as_deref(), "title", &title)?,
            destination: serde_json::to_value(destination).expect("serialises"),
            origin: content::iata("origin", &self.origin)?,
            currency: content::currency("currency", &self.currency)?,
            flight_details: content::object("flightDetails", &self.flight_details, 8 * 1024)?,
            featured: self.featured,
            active: self.active,
            expires_at: paging::time("expiresAt", self.expires_at)?,
            category: content::check_slug("category", &self.category)?,
            tags: self
                .tags
                .map(|t| content::texts("tags", &t, 20, 50))
                .transpose()?,
            images: serde_json::to_value(images).expect("serialises"),
            restrictions: self
                .restrictions
                .map(|r| content::texts("restrictions", &r, 20, 300))
                .transpose()?,
            seo: serde_json::to_value(seo).expect("serialises"),
            title,
            description,
            original_price,
            discounted_price,
            deal_score,
        })
    }
}

/// The deal with `id`, locked for the change that follows when `lock`.
async fn find(client: &impl GenericClient, id: &str, lock: bool) -> ApiResult<Option<Deal>> {
    let sql = if lock {
        format!(r#"SELECT {COLUMNS} FROM "deals" WHERE "id" = $1 FOR UPDATE"#)
    } else {
        format!(r#"SELECT {COLUMNS} FROM "deals" WHERE "id" = $1"#)
    };
    Ok(client
        .query_opt(&sql, &[&id])
        .await
        .map_err(ApiError::internal("reading a deal"))?
        .as_ref()
        .map(Deal::from_row))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("deal {id:?}"))
}

/// Writes `deal` as deal `id`: an insert when `existing` is `None` (a new
/// deal, or a deleted one restored), else an update. A slug another deal
/// holds is a 409 naming `slug`.
async fn write(
    tx: &impl GenericClient,
    id: &str,
    deal: &Checked,
    existing: Option<&Deal>,
    created_by: &str,
) -> ApiResult<Deal> {
    let taken = tx
        .query_opt(
            r#"SELECT 1 FROM "deals" WHERE "slug" = $1 AND "id" <> $2"#,
            &[&deal.slug, &id],
        )
        .await
        .map_err(ApiError::internal("checking a slug"))?;
    if taken.is_some() {
        return Err(content::taken("slug", &deal.slug));
    }
    let now = platform::clock::now_millis();
    let sql = if existing.is_some() {
        format!(
            r#"UPDATE "deals" SET "slug" = $2, "title" = $3, "description" = $4, "destination" = $5,
                   "origin" = $6, "originalPrice" = $7, "discountedPrice" = $8, "currency" = $9,
                   "flightDetails" = $10, "dealScore" = $11, "featured" = $12, "active" = $13,
                   "expiresAt" = $14, "category" = $15, "tags" = $16, "images" = $17,
                   "restrictions" = $18, "seo" = $19, "updatedAt" = $20
               WHERE "id" = $1
               RETURNING {COLUMNS}"#
        )
    } else {
        format!(
            r#"INSERT INTO "deals" ("id", "slug", "title", "description", "destination", "origin",
                   "originalPrice", "discountedPrice", "currency", "flightDetails", "dealScore",
                   "featured", "active", "expiresAt", "category", "tags", "images", "restrictions",
                   "seo", "createdAt", "updatedAt", "createdBy")
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $20, $21)
               RETURNING {COLUMNS}"#
        )
    };
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 21] = [
        &id,
        &deal.slug,
        &deal.title,
        &deal.description,
        &deal.destination,
        &deal.origin,
        &deal.original_price,
        &deal.discounted_price,
        &deal.currency,
        &deal.flight_details,
        &deal.deal_score,
        &deal.featured,
        &deal.active,
        &deal.expires_at,
        &deal.category,
        &deal.tags,
        &deal.images,
        &deal.restrictions,
        &deal.seo,
        &now,
        &created_by,
    ];
    // An update keeps the author: the last parameter is the insert's only.
    let params = if existing.is_some() {
        &params[..20]
    } else {
        &params[..]
    };
    let row = tx
        .query_one(&sql, params)
        .await
        .map_err(ApiError::internal("writing a deal"))?;
    Ok(Deal::from_row(&row))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminQuery {
    /// In the title, slug or description.
    search: Option<String>,
    category: Option<String>,
    active: Option<bool>,
    featured: Option<bool>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of deals, newest first, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DealPage {
    deals: Vec<Deal>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_deals",
    get,
    path = "/api/admin/deals",
    tag = "cms-admin",
    summary = "List every deal (inactive and expired too)",
    description = "Newest first. Needs `deals:read`.",
    params(AdminQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of deals.", body = DealPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn list(
    mut auth: Authorized<resource::Deals, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: AdminQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let (after_time, after_id) = paging::time_cursor(query.cursor.as_deref())?.unzip();
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    let rows = auth
        .client()
        .query(
            &format!(
                r#"SELECT {COLUMNS} FROM "deals"
                   WHERE ($1::text IS NULL OR "title" ILIKE $1 OR "slug" ILIKE $1 OR "description" ILIKE $1)
                     AND ($2::text IS NULL OR "category" = $2)
                     AND ($3::bool IS NULL OR "active" = $3)
                     AND ($4::bool IS NULL OR "featured" = $4)
                     AND ($5::timestamp IS NULL OR ("createdAt", "id") < ($5, $6::text))
                   ORDER BY "createdAt" DESC, "id" DESC
                   LIMIT $7"#
            ),
            &[
                &pattern,
                &query.category,
                &query.active,
                &query.featured,
                &after_time,
                &after_id,
                &(limit + 1),
            ],
        )
        .await
        .map_err(ApiError::internal("listing deals"))?;
    let deals: Vec<Deal> = rows.iter().map(Deal::from_row).collect();
    Ok(Json(Page::new("deals", deals, limit, |d| {
        (platform::clock::to_db_timestamp(d.created_at), d.id.clone())
    })))
}

#[utoipa::path(
    operation_id = "get_deal",
    get,
    path = "/api/admin/deals/{id}",
    tag = "cms-admin",
    summary = "Get a deal",
    description = "Needs `deals:read`.",
    params(("id" = String, Path, description = "The deal's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The deal.", body = Deal),
        Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn get(
    mut auth: Authorized<resource::Deals, action::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deal>> {
    find(&***auth.client(), &id, false)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

#[utoipa::path(
    operation_id = "create_deal",
    post,
    path = "/api/admin/deals",
    tag = "cms-admin",
    summary = "Create a deal",
    description = "The slug is made from the title unless given; a slug that is taken is a 409 naming `slug`. `createdBy` is the session's user. Audited. Needs `deals:create`.",
    request_body = DealInput,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new deal.", body = Deal),
        Invalid, Unauthenticated, Forbidden, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn create(
    mut auth: Authorized<resource::Deals, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Deal>)> {
    let author = auth.actor.user_id.clone();
    let id = platform::ids::new_id();
    let created = auth
        .mutate(&id, async |tx| {
            let deal = platform::json::parse::<DealInput>(&body)?.check()?;
            let created = write(&**tx, &id, &deal, None, &author).await?;
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
    operation_id = "update_deal",
    patch,
    path = "/api/admin/deals/{id}",
    tag = "cms-admin",
    summary = "Change a deal",
    description = "Absent fields stay as they are; `null` clears a nullable one. The slug changes only when given. Audited. Needs `deals:update`.",
    params(("id" = String, Path, description = "The deal's id.")),
    request_body = DealInput,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The deal as it now is.", body = Deal),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn update(
    mut auth: Authorized<resource::Deals, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Deal>> {
    let updated = auth
        .mutate(&id, async |tx| {
            let current = find(&**tx, &id, true)
                .await?
                .ok_or_else(|| not_found(&id))?;
            let merged = editing::merge(&current.view(), EDITABLE, &body)?;
            let deal = platform::json::parse::<DealInput>(&merged)?.check()?;
            let after = write(&**tx, &id, &deal, Some(&current), &current.created_by).await?;
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
    operation_id = "delete_deal",
    delete,
    path = "/api/admin/deals/{id}",
    tag = "cms-admin",
    summary = "Delete a deal",
    description = "Its history stays in the audit trail, from which `restore` can bring it back. Audited. Needs `deals:delete`.",
    params(("id" = String, Path, description = "The deal's id.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn delete(
    mut auth: Authorized<resource::Deals, action::Delete>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.mutate(&id, async |tx| {
        let current = find(&**tx, &id, true)
            .await?
            .ok_or_else(|| not_found(&id))?;
        tx.execute(r#"DELETE FROM "deals" WHERE "id" = $1"#, &[&id])
            .await
            .map_err(ApiError::internal("deleting a deal"))?;
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
    operation_id = "deal_history",
    get,
    path = "/api/admin/deals/{id}/history",
    tag = "cms-admin",
    summary = "A deal's version history",
    description = "Every change, newest first, from the audit trail: who, when, before and after. Also for a deleted deal. Needs `deals:read`.",
    params(("id" = String, Path, description = "The deal's id."), history::HistoryQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions.", body = history::VersionPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
pub async fn history(
    mut auth: Authorized<resource::Deals, action::Read>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    history::list(&***auth.client(), Resource::Deals, &id, query.as_deref())
        .await
        .map(Json)
}

#[utoipa::path(
    operation_id = "restore_deal",
    post,
    path = "/api/admin/deals/{id}/restore",
    tag = "cms-admin",
    summary = "Bring back a version of a deal",
    description = "The version a change of its history left (or found, with `state: before`), checked as an edit is, applied as an update; a deleted deal comes back under its id. Audited (`restoredFrom` in the row's `after`). Needs `deals:update`.",
    params(("id" = String, Path, description = "The deal's id.")),
    request_body = history::RestoreRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The deal as it now is.", body = Deal),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, WrongMediaType, Unprocessable, Unavailable,
    )
)]
pub async fn restore(
    mut auth: Authorized<resource::Deals, action::Update>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Deal>> {
    let restored = auth
        .mutate(&id, async |tx| {
            let request: history::RestoreRequest = platform::json::parse(&body)?;
            let version = history::version(&**tx, Resource::Deals, &id, &request).await?;
            let current = find(&**tx, &id, true).await?;
            let input = serde_json::to_vec(&editing::editable(&version, EDITABLE))
                .expect("JSON serialises");
            let deal = platform::json::parse::<DealInput>(&input)?.check()?;
            let created_by = version
                .get("createdBy")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let after = write(&**tx, &id, &deal, current.as_ref(), &created_by).await?;
            Ok(Change {
                resource_id: id.clone(),
                before: current.as_ref().map_or(Value::Null, Deal::view),
                after: history::restored(after.view(), &request.audit_id),
                output: after,
            })
        })
        .await?;
    Ok(Json(restored))
}
