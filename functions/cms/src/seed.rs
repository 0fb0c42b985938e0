//! The sample content `scripts/dev` loads: see [`run`].
//!
//! A fresh machine's site API should look alive: a few dozen deals and
//! destinations, the email templates the site sends, and a few thousand
//! search suggestions. The content lives in `functions/cms/seed/` and is
//! compiled into the binary (`include_str!`), so `cms seed` and a direct
//! invoke `{"command": "seed"}` need nothing but the database:
//!
//! - `deals.json`, `destinations.json`, `email_templates.json`: written by
//!   hand. Deal dates are offsets from the day of the seed (`departInDays`,
//!   `nights`, `expiresInDays`), so a fresh seed always has future
//!   departures, a few expired deals and one inactive one for the public
//!   filters to hide. A deal's destination, images and SEO fields come from
//!   its destination's row, so the two cannot disagree.
//! - `airports.csv`: airports with scheduled service, made by
//!   `make_airports.py` from open data (see `NOTICE` there); cities and
//!   countries are derived from it here.
//!
//! Every table is written by one statement (`jsonb_to_recordset` over all
//! its rows), in one transaction, `ON CONFLICT DO NOTHING` on the tables'
//! unique keys (slug, airport code, key and name, query): a rerun inserts
//! nothing and leaves every row as an editor left it. Trade-offs of that:
//! a sample row an editor deleted comes back at the next run, and a dev
//! database kept for months sees its sample deals expire and depart in the
//! past (a fresh database, or deleting the rows `createdBy` `seed`, gives
//! dates from today again).
//!
//! The image URLs have the form of Unsplash's CDN addresses but were not
//! checked to exist: they are sample data for layouts, not picked photos.

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use platform::{clock, db::Pool, ids};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::content;

const DEALS: &str = include_str!("../seed/deals.json");
const DESTINATIONS: &str = include_str!("../seed/destinations.json");
const EMAIL_TEMPLATES: &str = include_str!("../seed/email_templates.json");
const AIRPORTS: &str = include_str!("../seed/airports.csv");

/// Who the deals say created them.
pub const CREATED_BY: &str = "seed";

/// Loads the sample content; answers the rows inserted per table (all
/// zero on a rerun).
pub async fn run(pool: &Pool) -> anyhow::Result<Value> {
    let now = clock::now_millis();
    let sample = Sample::for_day(now)?;
    let mut client = pool.get().await.context("connecting to the database")?;
    let tx = client.transaction().await.context("starting the seed")?;
    // Sample content is for development databases: one whose deals an
    // editor wrote is a live site's, where sample deals would go public.
    let edited: i64 = tx
        .query_one(
            r#"SELECT count(*) FROM "deals" WHERE "createdBy" <> $1"#,
            &[&CREATED_BY],
        )
        .await
        .context("looking for editors' deals")?
        .get(0);
    if edited > 0 {
        anyhow::bail!(
            "this database holds {edited} deals written by editors: the sample content is only for a development database"
        );
    }
    let mut inserted = serde_json::Map::new();
    for (table, statement, rows) in [
        ("destinations", INSERT_DESTINATIONS, &sample.destinations),
        ("deals", INSERT_DEALS, &sample.deals),
        (
            "email_templates",
            INSERT_EMAIL_TEMPLATES,
            &sample.email_templates,
        ),
        (
            "search_suggestions",
            INSERT_SUGGESTIONS,
            &sample.suggestions,
        ),
    ] {
        let rows = Value::Array(rows.clone());
        let count = tx
            .execute(statement, &[&rows, &now])
            .await
            .with_context(|| format!("seeding {table}"))?;
        inserted.insert(table.to_owned(), json!(count));
    }
    tx.commit().await.context("committing the seed")?;
    Ok(json!({ "inserted": inserted }))
}

/// Each row of `$1` is an object keyed by column name; `$2` is the time
/// of the seed. Unique keys: slug, airportCode.
const INSERT_DESTINATIONS: &str = r#"
INSERT INTO "destinations" ("id", "slug", "airportCode", "city", "country", "region",
    "description", "shortDescription", "highlights", "travelInfo", "priceRange", "avgPrice",
    "travelStyles", "images", "seo", "published", "featured", "trending", "views", "searches",
    "createdAt", "updatedAt")
SELECT r."id", r."slug", r."airportCode", r."city", r."country", r."region",
    r."description", r."shortDescription", r."highlights", r."travelInfo", r."priceRange", r."avgPrice",
    r."travelStyles", r."images", r."seo", r."published", r."featured", r."trending", r."views", r."searches",
    $2, $2
FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "slug" text, "airportCode" text, "city" text,
    "country" text, "region" text, "description" text, "shortDescription" text, "highlights" text[],
    "travelInfo" jsonb, "priceRange" text, "avgPrice" float8, "travelStyles" text[], "images" jsonb,
    "seo" jsonb, "published" bool, "featured" bool, "trending" bool, "views" int, "searches" int)
ON CONFLICT DO NOTHING"#;

/// Unique key: slug.
const INSERT_DEALS: &str = r#"
INSERT INTO "deals" ("id", "slug", "title", "description", "destination", "origin",
    "originalPrice", "discountedPrice", "currency", "flightDetails", "dealScore", "featured",
    "active", "expiresAt", "category", "tags", "images", "restrictions", "seo", "views", "clicks",
    "conversions", "createdAt", "updatedAt", "createdBy")
SELECT r."id", r."slug", r."title", r."description", r."destination", r."origin",
    r."originalPrice", r."discountedPrice", r."currency", r."flightDetails", r."dealScore", r."featured",
    r."active", r."expiresAt", r."category", r."tags", r."images", r."restrictions", r."seo", r."views", r."clicks",
    r."conversions", $2, $2, r."createdBy"
FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "slug" text, "title" text, "description" text,
    "destination" jsonb, "origin" text, "originalPrice" float8, "discountedPrice" float8,
    "currency" text, "flightDetails" jsonb, "dealScore" int, "featured" bool, "active" bool,
    "expiresAt" timestamp(3), "category" text, "tags" text[], "images" jsonb,
    "restrictions" text[], "seo" jsonb, "views" int, "clicks" int, "conversions" int,
    "createdBy" text)
ON CONFLICT DO NOTHING"#;

/// Unique keys: key, name.
const INSERT_EMAIL_TEMPLATES: &str = r#"
INSERT INTO "email_templates" ("id", "name", "key", "subject", "preheader", "body", "variables",
    "layout", "brandColor", "footerText", "active", "testRecipients", "createdAt", "updatedAt")
SELECT r."id", r."name", r."key", r."subject", r."preheader", r."body", r."variables",
    r."layout", r."brandColor", r."footerText", r."active", r."testRecipients", $2, $2
FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "name" text, "key" text, "subject" text,
    "preheader" text, "body" text, "variables" jsonb, "layout" text, "brandColor" text,
    "footerText" text, "active" bool, "testRecipients" text[])
ON CONFLICT DO NOTHING"#;

/// Unique key: query.
const INSERT_SUGGESTIONS: &str = r#"
INSERT INTO "search_suggestions" ("id", "query", "type", "code", "name", "country",
    "popularity", "metadata", "createdAt", "updatedAt")
SELECT r."id", r."query", r."type", r."code", r."name", r."country",
    r."popularity", r."metadata", $2, $2
FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "query" text, "type" text, "code" text,
    "name" text, "country" text, "popularity" int, "metadata" jsonb)
ON CONFLICT DO NOTHING"#;

/// The sample content for one day, as rows keyed by column name (ids
/// new, timestamps set by the insert).
#[derive(Debug, Clone)]
pub struct Sample {
    pub deals: Vec<Value>,
    pub destinations: Vec<Value>,
    pub email_templates: Vec<Value>,
    pub suggestions: Vec<Value>,
}

impl Sample {
    /// The content as seeded at `now`: deal dates count from its day.
    pub fn for_day(now: NaiveDateTime) -> anyhow::Result<Self> {
        let destinations: Vec<DestinationSource> =
            serde_json::from_str(DESTINATIONS).context("seed/destinations.json")?;
        let deals: Vec<DealSource> = serde_json::from_str(DEALS).context("seed/deals.json")?;
        let email_templates: Vec<Value> =
            serde_json::from_str(EMAIL_TEMPLATES).context("seed/email_templates.json")?;
        let airports = airports()?;
        let by_code: BTreeMap<&str, &DestinationSource> = destinations
            .iter()
            .map(|d| (d.airport_code.as_str(), d))
            .collect();
        Ok(Self {
            deals: deals
                .iter()
                .map(|deal| {
                    let destination =
                        by_code.get(deal.destination.as_str()).with_context(|| {
                            format!("deal {:?}: no destination {}", deal.title, deal.destination)
                        })?;
                    deal.row(destination, now)
                })
                .collect::<anyhow::Result<_>>()?,
            destinations: destinations
                .iter()
                .map(DestinationSource::row)
                .collect::<anyhow::Result<_>>()?,
            email_templates: email_templates
                .into_iter()
                .map(email_template_row)
                .collect::<anyhow::Result<_>>()?,
            suggestions: suggestion_rows(&airports),
        })
    }
}

/// A check of `content` failed on sample data: a defect of the seed files.
fn invalid(what: &str, error: platform::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{what}: {error}")
}

/// SEO fields as the editing routes would store them: `content::seo`'s
/// defaults from a title and a description cut to search-engine lengths.
fn seo(what: &str, title: &str, description: &str) -> anyhow::Result<Value> {
    let seo = content::seo(None, title, description).map_err(|e| invalid(what, e))?;
    Ok(serde_json::to_value(seo)?)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DestinationSource {
    airport_code: String,
    city: String,
    country: String,
    region: String,
    description: String,
    short_description: String,
    highlights: Vec<String>,
    travel_info: Value,
    price_range: String,
    avg_price: f64,
    travel_styles: Vec<String>,
    images: Value,
    published: bool,
    featured: bool,
    trending: bool,
    views: i32,
    searches: i32,
}

impl DestinationSource {
    fn row(&self) -> anyhow::Result<Value> {
        let what = format!("destination {}", self.airport_code);
        content::iata("airportCode", &self.airport_code).map_err(|e| invalid(&what, e))?;
        let slug = content::new_slug(None, "city", &self.city).map_err(|e| invalid(&what, e))?;
        let images = content::images(&self.images).map_err(|e| invalid(&what, e))?;
        let title = format!("{}, {}: flights and travel guide", self.city, self.country);
        Ok(json!({
            "id": ids::new_id(),
            "slug": slug,
            "airportCode": self.airport_code,
            "city": self.city,
            "country": self.country,
            "region": self.region,
            "description": self.description,
            "shortDescription": self.short_description,
            "highlights": self.highlights,
            "travelInfo": self.travel_info,
            "priceRange": self.price_range,
            "avgPrice": self.avg_price,
            "travelStyles": self.travel_styles,
            "images": images,
            "seo": seo(&what, &title, &self.short_description)?,
            "published": self.published,
            "featured": self.featured,
            "trending": self.trending,
            "views": self.views,
            "searches": self.searches,
        }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DealSource {
    title: String,
    description: String,
    origin: String,
    /// The destination's airport code: the rest comes from its row.
    destination: String,
    original_price: f64,
    discounted_price: f64,
    currency: String,
    flight: FlightSource,
    deal_score: i32,
    featured: bool,
    active: bool,
    /// Days from the seed day; negative: already expired; none: no end.
    expires_in_days: Option<i64>,
    category: String,
    tags: Vec<String>,
    restrictions: Vec<String>,
    views: i32,
    clicks: i32,
    conversions: i32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FlightSource {
    airline: String,
    depart_in_days: i64,
    nights: i64,
    stops: i32,
    cabin_class: String,
    duration_minutes: i32,
}

impl DealSource {
    fn row(&self, destination: &DestinationSource, now: NaiveDateTime) -> anyhow::Result<Value> {
        let what = format!("deal {:?}", self.title);
        let slug = content::new_slug(None, "title", &self.title).map_err(|e| invalid(&what, e))?;
        content::iata("origin", &self.origin).map_err(|e| invalid(&what, e))?;
        content::currency("currency", &self.currency).map_err(|e| invalid(&what, e))?;
        anyhow::ensure!(
            0.0 < self.discounted_price && self.discounted_price < self.original_price,
            "{what}: the discounted price must be below the original one"
        );
        let today: NaiveDate = now.date();
        let depart = today + Duration::days(self.flight.depart_in_days);
        let image = destination
            .images
            .get(0)
            .cloned()
            .with_context(|| format!("{what}: its destination has no image"))?;
        let first_sentence = self
            .description
            .split_inclusive(". ")
            .next()
            .unwrap_or(&self.description);
        Ok(json!({
            "id": ids::new_id(),
            "slug": slug,
            "title": self.title,
            "description": self.description,
            "destination": {
                "airportCode": destination.airport_code,
                "city": destination.city,
                "country": destination.country,
            },
            "origin": self.origin,
            "originalPrice": self.original_price,
            "discountedPrice": self.discounted_price,
            "currency": self.currency,
            "flightDetails": {
                "airline": self.flight.airline,
                "departDate": depart.to_string(),
                "returnDate": (depart + Duration::days(self.flight.nights)).to_string(),
                "stops": self.flight.stops,
                "cabinClass": self.flight.cabin_class,
                "durationMinutes": self.flight.duration_minutes,
            },
            "dealScore": self.deal_score,
            "featured": self.featured,
            "active": self.active,
            "expiresAt": self
                .expires_in_days
                .map(|days| (now + Duration::days(days)).format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
            "category": self.category,
            "tags": self.tags,
            "images": [image],
            "restrictions": self.restrictions,
            "seo": seo(&what, &self.title, first_sentence.trim())?,
            "views": self.views,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "createdBy": CREATED_BY,
        }))
    }
}

/// The file's template with what every row of the table holds.
fn email_template_row(mut template: Value) -> anyhow::Result<Value> {
    let object = template
        .as_object_mut()
        .context("seed/email_templates.json: a template is not an object")?;
    object.insert("id".to_owned(), json!(ids::new_id()));
    object.insert("layout".to_owned(), json!("default"));
    object.insert("brandColor".to_owned(), json!("#3b82f6"));
    Ok(template)
}

/// One row of `airports.csv`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Airport {
    pub iata: String,
    pub icao: String,
    pub name: String,
    /// The city a traveller searches for (`Toronto` for YYZ).
    pub city: String,
    pub subdivision: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub country: String,
    /// The metropolitan area's IATA code (`LON`), where there is one.
    pub metro_code: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    /// `large` or `medium`.
    pub size: String,
    pub popularity: i32,
}

/// The airports the seed knows, by IATA code.
pub fn airports() -> anyhow::Result<Vec<Airport>> {
    csv::Reader::from_reader(AIRPORTS.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .context("seed/airports.csv")
}

/// A suggestion's unique key: the IATA code for an airport (`LIS`), `City,
/// Country` for a city (`Lisbon, Portugal`), the name for a country.
pub fn suggestion_query(kind: &str, name: &str, country: &str, code: &str) -> String {
    match kind {
        "airport" => code.to_owned(),
        "city" => format!("{name}, {country}"),
        _ => name.to_owned(),
    }
}

/// Airports, their cities and their countries as suggestion rows.
///
/// A city's code is its metropolitan area's (`LON`) where it has one, else
/// its main airport's; a country's is its ISO 3166 code. Popularity is a
/// prior until real searches count: an airport's comes from the CSV
/// (hubs, then large, then medium airports), a city takes its main
/// airport's plus a little per further airport, a country grows with its
/// number of airports.
fn suggestion_rows(airports: &[Airport]) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cities: BTreeMap<(&str, &str), Vec<&Airport>> = BTreeMap::new();
    let mut countries: BTreeMap<&str, Vec<&Airport>> = BTreeMap::new();
    for airport in airports {
        rows.push(json!({
            "id": ids::new_id(),
            "query": suggestion_query("airport", &airport.name, &airport.country, &airport.iata),
            "type": "airport",
            "code": airport.iata,
            "name": airport.name,
            "country": airport.country,
            "popularity": airport.popularity,
            "metadata": {
                "city": airport.city,
                "icao": airport.icao,
                "subdivision": airport.subdivision,
                "countryCode": airport.country_code,
                "timezone": airport.timezone,
                "latitude": airport.latitude,
                "longitude": airport.longitude,
                "size": airport.size,
            },
        }));
        cities
            .entry((&airport.city, &airport.country))
            .or_default()
            .push(airport);
        countries.entry(&airport.country).or_default().push(airport);
    }
    for ((city, country), mut members) in cities {
        members.sort_by(|a, b| b.popularity.cmp(&a.popularity).then(a.iata.cmp(&b.iata)));
        let main = members[0];
        let code = members
            .iter()
            .find(|a| !a.metro_code.is_empty())
            .map_or(&main.iata, |a| &a.metro_code);
        let extra = i32::try_from(members.len() - 1).unwrap_or(i32::MAX);
        rows.push(json!({
            "id": ids::new_id(),
            "query": suggestion_query("city", city, country, code),
            "type": "city",
            "code": code,
            "name": city,
            "country": country,
            "popularity": main.popularity.saturating_add(extra.saturating_mul(3)).min(100),
            "metadata": {
                "airports": members.iter().map(|a| &a.iata).collect::<Vec<_>>(),
                "countryCode": main.country_code,
                "timezone": main.timezone,
                "latitude": main.latitude,
                "longitude": main.longitude,
            },
        }));
    }
    for (country, members) in countries {
        let count = i32::try_from(members.len()).unwrap_or(i32::MAX);
        rows.push(json!({
            "id": ids::new_id(),
            "query": suggestion_query("country", country, country, &members[0].country_code),
            "type": "country",
            "code": members[0].country_code,
            "name": country,
            "country": Value::Null,
            "popularity": count.saturating_add(30).min(95),
            "metadata": { "airports": count },
        }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        Sample::for_day(clock::now_millis()).expect("the seed files are valid")
    }

    #[test]
    fn the_sample_has_a_few_dozen_deals_and_destinations_and_thousands_of_suggestions() {
        let sample = sample();
        assert!(
            (36..=48).contains(&sample.deals.len()),
            "{}",
            sample.deals.len()
        );
        assert!((28..=34).contains(&sample.destinations.len()));
        assert_eq!(sample.email_templates.len(), 4);
        assert!(
            sample.suggestions.len() > 3000,
            "{}",
            sample.suggestions.len()
        );
    }

    #[test]
    fn suggestion_queries_are_unique() {
        let sample = sample();
        let mut queries: Vec<&str> = sample
            .suggestions
            .iter()
            .map(|s| s["query"].as_str().expect("query"))
            .collect();
        let all = queries.len();
        queries.sort_unstable();
        queries.dedup();
        assert_eq!(queries.len(), all);
    }

    #[test]
    fn a_metropolitan_area_is_one_city_under_its_own_code() {
        let sample = sample();
        let london = sample
            .suggestions
            .iter()
            .find(|s| s["query"] == "London, United Kingdom")
            .expect("London");
        assert_eq!(london["code"], "LON");
        assert_eq!(london["metadata"]["airports"][0], "LHR");
        let lisbon = sample
            .suggestions
            .iter()
            .find(|s| s["query"] == "Lisbon, Portugal")
            .expect("Lisbon");
        assert_eq!(lisbon["code"], "LIS");
    }

    #[test]
    fn deal_dates_count_from_the_seed_day() {
        let now = NaiveDate::from_ymd_opt(2027, 1, 10)
            .and_then(|d| d.and_hms_opt(9, 30, 0))
            .expect("a time");
        let sample = Sample::for_day(now).expect("valid");
        let lisbon = sample
            .deals
            .iter()
            .find(|d| d["title"] == "New York to Lisbon from $389 round trip")
            .expect("the Lisbon deal");
        assert_eq!(lisbon["flightDetails"]["departDate"], "2027-03-13");
        assert_eq!(lisbon["flightDetails"]["returnDate"], "2027-03-20");
        assert_eq!(lisbon["expiresAt"], "2027-01-31T09:30:00.000");
    }
}
