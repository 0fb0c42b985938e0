//! The seed command: the sample content a fresh machine's site shows.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use chrono::{NaiveDate, NaiveDateTime};
use cms::{content, seed};
use platform::lambda::{Event, Function};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const DEALS: i64 = 47;
const DESTINATIONS: i64 = 31;
const EMAIL_TEMPLATES: i64 = 4;
const CATEGORIES: [&str; 5] = [
    "featured",
    "last-minute",
    "weekend",
    "long-haul",
    "business",
];
const CABIN_CLASSES: [&str; 4] = ["economy", "premium-economy", "business", "first"];
const PRICE_RANGES: [&str; 4] = ["$", "$$", "$$$", "$$$$"];
const TRAVEL_STYLES: [&str; 9] = [
    "city-break",
    "beach",
    "culture",
    "food",
    "nature",
    "adventure",
    "nightlife",
    "family",
    "romantic",
];
const VARIABLE_TYPES: [&str; 6] = ["string", "number", "boolean", "url", "date", "list"];

async fn seeded() -> (TestApp, Value) {
    let app = spawn_app().await;
    let summary = seed::run(&app.function.state.pool)
        .await
        .expect("the seed runs");
    (app, summary)
}

/// Every row of `table` as a JSON object keyed by column name.
async fn rows(app: &TestApp, table: &str) -> Vec<Value> {
    let sql = match table {
        "deals" => r#"SELECT to_jsonb(t) FROM "deals" t ORDER BY "slug""#,
        "destinations" => r#"SELECT to_jsonb(t) FROM "destinations" t ORDER BY "slug""#,
        "email_templates" => r#"SELECT to_jsonb(t) FROM "email_templates" t ORDER BY "key""#,
        "search_suggestions" => {
            r#"SELECT to_jsonb(t) FROM "search_suggestions" t ORDER BY "query""#
        }
        other => panic!("no such table {other}"),
    };
    app.client
        .query(sql, &[])
        .await
        .expect(table)
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn text<'a>(row: &'a Value, field: &str) -> &'a str {
    row[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of {row}"))
}

fn strings(row: &Value, field: &str) -> Vec<String> {
    serde_json::from_value(row[field].clone()).unwrap_or_else(|e| panic!("{field}: {e}"))
}

fn timestamp(value: &Value) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(value.as_str().expect("a timestamp"), "%Y-%m-%dT%H:%M:%S%.f")
        .expect("a timestamp")
}

fn date(value: &Value) -> NaiveDate {
    value.as_str().expect("a date").parse().expect("a date")
}

#[tokio::test]
async fn seeding_a_fresh_database_loads_the_sample_and_says_how_much() {
    let (app, summary) = seeded().await;
    let suggestions = app
        .count(r#"SELECT count(*) FROM "search_suggestions""#)
        .await;
    assert_eq!(
        summary,
        json!({"inserted": {
            "destinations": DESTINATIONS,
            "deals": DEALS,
            "email_templates": EMAIL_TEMPLATES,
            "search_suggestions": suggestions,
        }})
    );
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, DEALS);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "destinations""#).await,
        DESTINATIONS
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "email_templates""#).await,
        EMAIL_TEMPLATES
    );
    assert!((3_000..10_000).contains(&suggestions), "{suggestions}");
}

#[tokio::test]
async fn a_rerun_inserts_nothing_and_keeps_what_an_editor_changed() {
    let (app, _) = seeded().await;
    app.client
        .execute(
            r#"UPDATE "deals" SET "title" = 'Edited by hand' WHERE "slug" = 'new-york-to-lisbon-from-389-round-trip'"#,
            &[],
        )
        .await
        .expect("an edit");
    app.client
        .execute(
            r#"UPDATE "search_suggestions" SET "popularity" = 3 WHERE "query" = 'LIS'"#,
            &[],
        )
        .await
        .expect("an edit");
    let before = app
        .count(r#"SELECT count(*) FROM "search_suggestions""#)
        .await;

    let again = seed::run(&app.function.state.pool)
        .await
        .expect("the rerun");

    assert_eq!(
        again,
        json!({"inserted": {"destinations": 0, "deals": 0, "email_templates": 0, "search_suggestions": 0}})
    );
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, DEALS);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "search_suggestions""#)
            .await,
        before
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "deals" WHERE "title" = 'Edited by hand'"#)
            .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT "popularity"::bigint FROM "search_suggestions" WHERE "query" = 'LIS'"#)
            .await,
        3
    );
}

#[tokio::test]
async fn a_direct_invoke_runs_the_seed() {
    let app = spawn_app().await;
    let answer = app
        .function
        .on_event(
            Event::Direct(json!({"command": "seed"})),
            lambda_runtime::Context::default(),
        )
        .await
        .expect("the invoke");
    assert_eq!(answer["inserted"]["deals"], DEALS);
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, DEALS);
}

#[tokio::test]
async fn every_seeded_deal_keeps_the_content_rules() {
    let (app, _) = seeded().await;
    let destinations: BTreeMap<String, Value> = rows(&app, "destinations")
        .await
        .into_iter()
        .map(|d| (text(&d, "airportCode").to_owned(), d))
        .collect();
    let today = chrono::Utc::now().date_naive();
    for deal in rows(&app, "deals").await {
        let title = text(&deal, "title");
        assert_eq!(
            content::check_slug("slug", text(&deal, "slug"))
                .ok()
                .as_deref(),
            Some(content::slugify(title).as_str()),
            "{title}"
        );
        content::text("title", title, 200).expect(title);
        let sentences = text(&deal, "description").matches(['.', '!', '?']).count();
        assert!(
            (2..=4).contains(&sentences),
            "{title}: {sentences} sentences"
        );
        content::iata("origin", text(&deal, "origin")).expect(title);
        let code = text(&deal["destination"], "airportCode");
        let destination = destinations
            .get(code)
            .unwrap_or_else(|| panic!("{title}: no destination row for {code}"));
        assert_eq!(deal["destination"]["city"], destination["city"], "{title}");
        assert_eq!(deal["destination"]["country"], destination["country"]);
        assert_ne!(
            deal["origin"], deal["destination"]["airportCode"],
            "{title}"
        );
        content::currency("currency", text(&deal, "currency")).expect(title);
        let original = deal["originalPrice"].as_f64().expect("a price");
        let discounted = deal["discountedPrice"].as_f64().expect("a price");
        content::price("discountedPrice", discounted).expect(title);
        assert!(discounted < original, "{title}");
        let flight = &deal["flightDetails"];
        content::object("flightDetails", flight, 4096).expect(title);
        content::text("flightDetails.airline", text(flight, "airline"), 100).expect(title);
        let depart = date(&flight["departDate"]);
        assert!(depart > today, "{title} departs {depart}");
        assert!(date(&flight["returnDate"]) > depart, "{title}");
        assert!(
            CABIN_CLASSES.contains(&text(flight, "cabinClass")),
            "{title}"
        );
        assert!((0..=2).contains(&flight["stops"].as_i64().expect("stops")));
        assert!(flight["durationMinutes"].as_i64().expect("minutes") > 30);
        assert!((0..=100).contains(&deal["dealScore"].as_i64().expect("a score")));
        assert!(CATEGORIES.contains(&text(&deal, "category")), "{title}");
        if !deal["expiresAt"].is_null() {
            assert!(
                timestamp(&deal["expiresAt"]).date() < depart,
                "{title} expires after it departs"
            );
        }
        content::texts("tags", &strings(&deal, "tags"), 20, 50).expect(title);
        content::texts("restrictions", &strings(&deal, "restrictions"), 20, 200).expect(title);
        assert!(!content::images(&deal["images"]).expect(title).is_empty());
        content::seo(Some(&deal["seo"]), "", "").expect(title);
        let (views, clicks, conversions) = (
            deal["views"].as_i64().expect("views"),
            deal["clicks"].as_i64().expect("clicks"),
            deal["conversions"].as_i64().expect("conversions"),
        );
        assert!(
            views > clicks && clicks > conversions && conversions >= 0,
            "{title}"
        );
        assert_eq!(deal["createdBy"], seed::CREATED_BY);
    }
}

#[tokio::test]
async fn every_seeded_destination_keeps_the_content_rules() {
    let (app, _) = seeded().await;
    let airports: BTreeMap<String, seed::Airport> = seed::airports()
        .expect("airports.csv")
        .into_iter()
        .map(|a| (a.iata.clone(), a))
        .collect();
    for destination in rows(&app, "destinations").await {
        let city = text(&destination, "city");
        assert_eq!(text(&destination, "slug"), content::slugify(city));
        content::check_slug("slug", text(&destination, "slug")).expect(city);
        let code = content::iata("airportCode", text(&destination, "airportCode")).expect(city);
        let airport = airports
            .get(&code)
            .unwrap_or_else(|| panic!("{city}: {code} is not in airports.csv"));
        let info = &destination["travelInfo"];
        assert_eq!(text(info, "timezone"), airport.timezone, "{city}");
        content::currency("travelInfo.currency", text(info, "currency")).expect(city);
        for field in ["bestTimeToVisit", "language", "visa"] {
            content::text(field, text(info, field), 300).expect(city);
        }
        content::text("description", text(&destination, "description"), 5000).expect(city);
        content::text(
            "shortDescription",
            text(&destination, "shortDescription"),
            160,
        )
        .expect(city);
        content::texts("highlights", &strings(&destination, "highlights"), 20, 200).expect(city);
        assert!(PRICE_RANGES.contains(&text(&destination, "priceRange")));
        content::price(
            "avgPrice",
            destination["avgPrice"].as_f64().expect("avgPrice"),
        )
        .expect(city);
        let styles = strings(&destination, "travelStyles");
        assert!(!styles.is_empty());
        for style in &styles {
            assert!(TRAVEL_STYLES.contains(&style.as_str()), "{city}: {style}");
        }
        assert!(
            !content::images(&destination["images"])
                .expect(city)
                .is_empty()
        );
        content::seo(Some(&destination["seo"]), "", "").expect(city);
    }
    assert!(
        app.count(r#"SELECT count(*) FROM "destinations" WHERE NOT "published""#)
            .await
            >= 1
    );
}

/// The `{{name}}`, `{{#each name}}` and `{{#if name}}` of a template's
/// top level (names inside an `each` block belong to its items).
fn top_level_names(template: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth = 0;
    for tag in template.split("{{").skip(1) {
        let tag = tag.split("}}").next().unwrap_or_default().trim();
        if let Some(name) = tag.strip_prefix("#each ") {
            if depth == 0 {
                names.insert(name.trim().to_owned());
            }
            depth += 1;
        } else if tag == "/each" {
            depth -= 1;
        } else if let Some(name) = tag.strip_prefix("#if ") {
            if depth == 0 {
                names.insert(name.trim().to_owned());
            }
        } else if depth == 0 && !tag.starts_with(['/', '#']) && tag != "else" {
            names.insert(tag.to_owned());
        }
    }
    names
}

#[tokio::test]
async fn every_seeded_email_template_declares_the_variables_it_uses_and_renders_its_examples() {
    let (app, _) = seeded().await;
    let mut strict = handlebars::Handlebars::new();
    strict.set_strict_mode(true);
    let keys: BTreeSet<String> = rows(&app, "email_templates")
        .await
        .iter()
        .map(|t| text(t, "key").to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "booking-confirmation",
            "deal-alert",
            "price-drop",
            "welcome"
        ]
        .map(String::from)
        .into()
    );
    for template in rows(&app, "email_templates").await {
        let key = text(&template, "key");
        let variables = template["variables"].as_array().expect("variables");
        let declared: BTreeSet<String> = variables
            .iter()
            .map(|v| text(v, "name").to_owned())
            .collect();
        let examples: serde_json::Map<String, Value> = variables
            .iter()
            .map(|v| {
                assert!(VARIABLE_TYPES.contains(&text(v, "type")), "{key}: {v}");
                assert!(v["required"].is_boolean(), "{key}: {v}");
                (text(v, "name").to_owned(), v["example"].clone())
            })
            .collect();
        let mut used = BTreeSet::new();
        for part in ["subject", "preheader", "body"] {
            let source = text(&template, part);
            used.extend(top_level_names(source));
            strict
                .render_template(source, &examples)
                .unwrap_or_else(|e| panic!("{key}.{part}: {e}"));
        }
        assert_eq!(used, declared, "{key}");
        assert_eq!(template["layout"], "default");
        assert_eq!(template["brandColor"], "#3b82f6");
        assert!(template["active"].as_bool().expect("active"));
        assert_eq!(strings(&template, "testRecipients"), ["qa@example.com"]);
    }
}

#[tokio::test]
async fn suggestions_hold_airports_their_cities_and_countries() {
    let (app, _) = seeded().await;
    let suggestions = rows(&app, "search_suggestions").await;
    let by_query: BTreeMap<&str, &Value> =
        suggestions.iter().map(|s| (text(s, "query"), s)).collect();
    let mut kinds = BTreeMap::<&str, usize>::new();
    for suggestion in &suggestions {
        let kind = text(suggestion, "type");
        *kinds.entry(kind).or_default() += 1;
        let code = text(suggestion, "code");
        let name = text(suggestion, "name");
        let popularity = suggestion["popularity"].as_i64().expect("popularity");
        assert!((1..=100).contains(&popularity), "{suggestion}");
        match kind {
            "airport" => {
                content::iata("code", code).expect(name);
                assert_eq!(text(suggestion, "query"), code);
            }
            "city" => {
                content::iata("code", code).expect(name);
                let country = text(suggestion, "country");
                assert_eq!(text(suggestion, "query"), format!("{name}, {country}"));
            }
            "country" => {
                assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()));
                assert_eq!(text(suggestion, "query"), name);
                assert!(suggestion["country"].is_null());
            }
            other => panic!("type {other}"),
        }
    }
    assert!(kinds["airport"] > 2_500, "{kinds:?}");
    assert!(kinds["city"] > 2_000, "{kinds:?}");
    assert!((150..=250).contains(&kinds["country"]), "{kinds:?}");

    let lisbon_airport = by_query["LIS"];
    assert_eq!(lisbon_airport["metadata"]["city"], "Lisbon");
    assert_eq!(lisbon_airport["country"], "Portugal");
    assert_eq!(by_query["Lisbon, Portugal"]["code"], "LIS");
    assert_eq!(by_query["Portugal"]["code"], "PT");
    assert_eq!(by_query["New York, United States"]["code"], "NYC");
    let popularity = |query: &str| by_query[query]["popularity"].as_i64().expect("popularity");
    assert!(popularity("LHR") > popularity("LIS"));
    assert!(
        popularity("LIS") > popularity("AAC"),
        "a hub before a small airport"
    );
}

/// The slugs a public list answers, following its pages.
async fn public_slugs(app: &TestApp, path: &str, field: &str) -> Vec<String> {
    let mut slugs = Vec::new();
    let mut uri = format!("{path}?limit=20");
    loop {
        let page = app.expect("GET", &uri, None, None, StatusCode::OK).await;
        slugs.extend(
            page[field]
                .as_array()
                .unwrap_or_else(|| panic!("{uri}: {page}"))
                .iter()
                .map(|item| text(item, "slug").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => uri = format!("{path}?limit=20&cursor={cursor}"),
            None => return slugs,
        }
    }
}

#[tokio::test]
async fn the_public_deal_list_shows_the_live_deals_and_hides_the_expired_and_the_inactive() {
    let (app, _) = seeded().await;
    let listed = public_slugs(&app, "/api/deals", "deals").await;
    let live = app
        .count(
            r#"SELECT count(*) FROM "deals"
               WHERE "active" AND ("expiresAt" IS NULL OR "expiresAt" > now() AT TIME ZONE 'UTC')"#,
        )
        .await;
    assert_eq!(live, DEALS - 3);
    assert_eq!(listed.len() as i64, live);
    for hidden in [
        "atlanta-to-cancun-spring-break-for-249",
        "manchester-to-istanbul-for-ps119",
        "miami-to-rio-de-janeiro-for-399",
    ] {
        assert!(!listed.iter().any(|s| s == hidden), "{hidden} is listed");
        let stored: i64 = app
            .client
            .query_one(
                r#"SELECT count(*) FROM "deals" WHERE "slug" = $1"#,
                &[&hidden],
            )
            .await
            .expect("a count")
            .get(0);
        assert_eq!(stored, 1, "{hidden} is stored");
        app.expect(
            "GET",
            &format!("/api/deals/{hidden}"),
            None,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let lisbon = app
        .expect(
            "GET",
            "/api/deals/new-york-to-lisbon-from-389-round-trip",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(lisbon["destination"]["city"], "Lisbon");
    let featured = app
        .expect(
            "GET",
            "/api/deals?featured=true",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert!(featured["deals"].as_array().expect("deals").len() >= 5);
}

#[tokio::test]
async fn the_public_destination_list_shows_only_published_destinations() {
    let (app, _) = seeded().await;
    let listed = public_slugs(&app, "/api/destinations", "destinations").await;
    let published = app
        .count(r#"SELECT count(*) FROM "destinations" WHERE "published""#)
        .await;
    assert!(published < DESTINATIONS);
    assert_eq!(listed.len() as i64, published);
    for draft in ["venice", "male"] {
        assert!(!listed.iter().any(|s| s == draft), "{draft} is listed");
    }
    app.expect(
        "GET",
        "/api/destinations/lisbon",
        None,
        None,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn the_seeded_suggestions_answer_a_search() {
    let (app, _) = seeded().await;
    let answer = app
        .expect(
            "GET",
            "/api/search/suggestions?q=lisb",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    let queries: Vec<&str> = answer["suggestions"]
        .as_array()
        .expect("suggestions")
        .iter()
        .map(|s| text(s, "query"))
        .collect();
    assert!(queries.contains(&"LIS"), "{queries:?}");
    assert!(queries.contains(&"Lisbon, Portugal"), "{queries:?}");
    let by_code = app
        .expect(
            "GET",
            "/api/search/suggestions?q=JFK",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(by_code["suggestions"][0]["query"], "JFK");
}

/// `row` as an editor would send it back: its editable fields only.
fn editable(mut row: Value, server_fields: &[&str]) -> Value {
    let object = row.as_object_mut().expect("a row");
    for field in server_fields {
        object.remove(*field);
    }
    if let Some(expires) = object.get("expiresAt").and_then(Value::as_str) {
        let utc = format!("{expires}Z");
        object.insert("expiresAt".to_owned(), json!(utc));
    }
    row
}

#[tokio::test]
async fn the_editing_routes_accept_every_seeded_deal_and_destination_as_it_is() {
    let (app, _) = seeded().await;
    let editor = app.editor().await;
    for deal in rows(&app, "deals").await {
        let uri = format!("/api/admin/deals/{}", text(&deal, "id"));
        let body = editable(
            deal.clone(),
            &[
                "id",
                "views",
                "clicks",
                "conversions",
                "createdAt",
                "updatedAt",
                "createdBy",
            ],
        );
        app.expect("PATCH", &uri, Some(&editor), Some(body), StatusCode::OK)
            .await;
    }
    for destination in rows(&app, "destinations").await {
        let uri = format!("/api/admin/destinations/{}", text(&destination, "id"));
        let body = editable(
            destination.clone(),
            &["id", "views", "searches", "createdAt", "updatedAt"],
        );
        app.expect("PATCH", &uri, Some(&editor), Some(body), StatusCode::OK)
            .await;
    }
}

#[tokio::test]
async fn the_email_routes_accept_every_seeded_template_and_render_its_examples() {
    let (app, _) = seeded().await;
    let editor = app.editor().await;
    for template in rows(&app, "email_templates").await {
        let key = text(&template, "key");
        let uri = format!("/api/admin/email-templates/{key}");
        let checked_again = json!({
            "subject": template["subject"],
            "preheader": template["preheader"],
            "body": template["body"],
            "variables": template["variables"],
        });
        app.expect(
            "PATCH",
            &uri,
            Some(&editor),
            Some(checked_again),
            StatusCode::OK,
        )
        .await;
        let model: serde_json::Map<String, Value> = template["variables"]
            .as_array()
            .expect("variables")
            .iter()
            .map(|v| (text(v, "name").to_owned(), v["example"].clone()))
            .collect();
        let rendered = app
            .expect(
                "POST",
                &format!("{uri}/render"),
                Some(&editor),
                Some(json!({ "model": model })),
                StatusCode::OK,
            )
            .await;
        let subject = rendered["subject"].as_str().expect("a subject");
        assert!(
            !subject.is_empty() && !subject.contains("{{"),
            "{key}: {subject}"
        );
    }
}

#[tokio::test]
async fn a_database_with_editors_deals_is_refused_and_left_as_it_is() {
    let app = spawn_app().await;
    let token = app.editor().await;
    app.expect(
        "POST",
        "/api/admin/deals",
        Some(&token),
        Some(crate::deals::deal("A real deal", json!({}))),
        StatusCode::CREATED,
    )
    .await;
    let refused = seed::run(&app.function.state.pool)
        .await
        .expect_err("a live site's database");
    assert!(refused.to_string().contains("editors"), "{refused}");
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, 1);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "search_suggestions""#)
            .await,
        0
    );
}
