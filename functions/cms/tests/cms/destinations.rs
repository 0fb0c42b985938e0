//! Destinations: public reads by slug or airport code, the view counter,
//! editing, history and restore.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

/// A valid destination body; `overrides` replace or add fields.
pub fn destination(city: &str, code: &str, overrides: Value) -> Value {
    let mut body = json!({
        "airportCode": code,
        "city": city,
        "country": "Portugal",
        "region": "Europe",
        "description": "Hills, trams and the Tagus: a city best seen on foot.",
        "shortDescription": "Seven hills, custard tarts and golden light.",
        "highlights": ["Alfama", "Belém"],
        "travelInfo": {"language": "Portuguese", "currency": "EUR", "timezone": "Europe/Lisbon"},
        "priceRange": "$$",
        "avgPrice": 620.0,
        "travelStyles": ["city-break", "food"],
        "images": [{"url": "https://images.example/lisbon.jpg", "alt": "Lisbon at dusk"}],
        "published": true,
    });
    if let (Some(fields), Value::Object(extra)) = (body.as_object_mut(), overrides) {
        fields.extend(extra);
    }
    body
}

async fn create(app: &TestApp, body: Value) -> Value {
    let token = app.editor().await;
    app.expect(
        "POST",
        "/api/admin/destinations",
        Some(&token),
        Some(body),
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn a_destination_is_read_by_slug_or_airport_code_when_published() {
    let app = spawn_app().await;
    let created = create(&app, destination("Kraków", "KRK", json!({}))).await;
    assert_eq!(created["slug"], "krakow");
    assert_eq!(created["seo"]["title"], "Kraków, Portugal");
    create(
        &app,
        destination("Porto", "OPO", json!({"published": false})),
    )
    .await;
    for path in ["krakow", "KRK"] {
        let shown = app
            .expect(
                "GET",
                &format!("/api/destinations/{path}"),
                None,
                None,
                StatusCode::OK,
            )
            .await;
        assert_eq!(shown["city"], "Kraków");
        assert!(shown.get("views").is_none() && shown.get("published").is_none());
    }
    for hidden in ["porto", "OPO", "nowhere"] {
        app.expect(
            "GET",
            &format!("/api/destinations/{hidden}"),
            None,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let answer = app.send("GET", "/api/destinations/KRK", None, None).await;
    assert!(answer.header("etag").is_some() && answer.header("cache-control").is_some());
}

#[tokio::test]
async fn public_filters_narrow_the_list_and_pages_continue() {
    let app = spawn_app().await;
    create(
        &app,
        destination(
            "Lisbon",
            "LIS",
            json!({"featured": true, "travelStyles": ["beach", "food"]}),
        ),
    )
    .await;
    create(
        &app,
        destination(
            "Tokyo",
            "HND",
            json!({"country": "Japan", "region": "Asia", "trending": true}),
        ),
    )
    .await;
    create(&app, destination("Faro", "FAO", json!({}))).await;
    let cities = |page: &Value| -> Vec<String> {
        page["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .map(|d| d["city"].as_str().expect("city").to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", vec!["Faro", "Lisbon", "Tokyo"]),
        ("region=Asia", vec!["Tokyo"]),
        ("country=Portugal", vec!["Faro", "Lisbon"]),
        ("featured=true", vec!["Lisbon"]),
        ("trending=true", vec!["Tokyo"]),
        ("style=beach", vec!["Lisbon"]),
    ] {
        let page = app
            .expect(
                "GET",
                &format!("/api/destinations?{query}"),
                None,
                None,
                StatusCode::OK,
            )
            .await;
        assert_eq!(cities(&page), expected, "{query}");
    }
    let first = app
        .expect(
            "GET",
            "/api/destinations?limit=2",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    let cursor = first["nextCursor"].as_str().expect("a cursor");
    let second = app
        .expect(
            "GET",
            &format!("/api/destinations?limit=2&cursor={cursor}"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(cities(&second), vec!["Tokyo"]);
    assert_eq!(second["nextCursor"], Value::Null);
}

#[tokio::test]
async fn invalid_fields_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let token = app.editor().await;
    for (overrides, field) in [
        (json!({"airportCode": "Lis"}), "airportCode"),
        (json!({"priceRange": "cheap"}), "priceRange"),
        (
            json!({"shortDescription": "s".repeat(161)}),
            "shortDescription",
        ),
        (json!({"travelStyles": ["Beach Life"]}), "travelStyles[0]"),
        (json!({"avgPrice": 0}), "avgPrice"),
        (
            json!({"images": [{"url": "ftp://images.example/a.jpg", "alt": "a"}]}),
            "images[0].url",
        ),
    ] {
        let answer = app
            .expect(
                "POST",
                "/api/admin/destinations",
                Some(&token),
                Some(destination("Lisbon", "LIS", overrides.clone())),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{overrides}: {answer}");
    }
}

#[tokio::test]
async fn a_taken_airport_code_or_slug_is_a_409_naming_it() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, destination("Lisbon", "LIS", json!({}))).await;
    let code = app
        .expect(
            "POST",
            "/api/admin/destinations",
            Some(&token),
            Some(destination("Lisboa", "LIS", json!({}))),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(code["error"]["field"], "airportCode");
    let slug = app
        .expect(
            "POST",
            "/api/admin/destinations",
            Some(&token),
            Some(destination("Lisbon", "LPX", json!({}))),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(slug["error"]["field"], "slug");
}

#[tokio::test]
async fn concurrent_views_lose_no_increment_and_bots_count_nothing() {
    let app = spawn_app().await;
    create(&app, destination("Lisbon", "LIS", json!({}))).await;
    let beacons = (0..30).map(|i| {
        let path = if i % 2 == 0 {
            "/api/destinations/lisbon/view"
        } else {
            "/api/destinations/LIS/view"
        };
        app.send("POST", path, None, None)
    });
    for answer in futures_util::future::join_all(beacons).await {
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let bot = app
        .raw(
            axum::http::Request::post("/api/destinations/lisbon/view")
                .header(
                    "user-agent",
                    "Googlebot/2.1 (+http://www.google.com/bot.html)",
                )
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(bot.json()["counted"], false);
    assert_eq!(
        app.count(r#"SELECT "views"::bigint FROM "destinations""#)
            .await,
        30
    );
}

#[tokio::test]
async fn history_and_restore_bring_back_an_earlier_version() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = create(&app, destination("Lisbon", "LIS", json!({}))).await;
    let id = created["id"].as_str().expect("id");
    app.expect(
        "PATCH",
        &format!("/api/admin/destinations/{id}"),
        Some(&token),
        Some(json!({"shortDescription": "Rewritten.", "trending": true})),
        StatusCode::OK,
    )
    .await;
    let history = app
        .expect(
            "GET",
            &format!("/api/admin/destinations/{id}/history"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(history["versions"].as_array().expect("versions").len(), 2);
    let original = history["versions"][1]["auditId"].as_str().expect("id");
    let restored = app
        .expect(
            "POST",
            &format!("/api/admin/destinations/{id}/restore"),
            Some(&token),
            Some(json!({"auditId": original})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        restored["shortDescription"],
        "Seven hills, custard tarts and golden light."
    );
    assert_eq!(restored["trending"], false);
    let rows = app.audit_rows("destinations").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["changes"]["after"]["restoredFrom"], original);
}
