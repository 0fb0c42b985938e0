//! Deals: public reads, counters, editing, history and restore.

use axum::{body::Body, http::Request, http::StatusCode};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

/// A valid deal body; `overrides` replace or add fields.
pub fn deal(title: &str, overrides: Value) -> Value {
    let mut body = json!({
        "title": title,
        "description": "Direct flights on TAP, seven nights, checked bag included.",
        "destination": {"airportCode": "LIS", "city": "Lisbon", "country": "Portugal"},
        "origin": "JFK",
        "originalPrice": 899.0,
        "discountedPrice": 499.0,
        "currency": "USD",
        "flightDetails": {"airline": "TAP Air Portugal", "departDate": "2027-03-14", "returnDate": "2027-03-21", "stops": 0},
        "images": [{"url": "https://images.example/lisbon.jpg", "alt": "Tram 28 in Alfama"}],
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
        "/api/admin/deals",
        Some(&token),
        Some(body),
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn a_new_deal_gets_a_transliterated_slug_its_author_and_default_seo() {
    let app = spawn_app().await;
    let created = create(&app, deal("São Paulo: 5 nights from €299!", json!({}))).await;
    assert_eq!(created["slug"], "sao-paulo-5-nights-from-eur299");
    assert_eq!(created["createdBy"], "editor");
    assert_eq!(created["seo"]["title"], "São Paulo: 5 nights from €299!");
    assert_eq!(created["active"], true);
    assert_eq!(created["category"], "featured");
    let audit = app.audit_rows("deals").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "create");
    assert_eq!(audit[0]["resourceId"], created["id"]);
}

#[tokio::test]
async fn a_taken_slug_is_a_409_naming_slug_and_an_explicit_one_resolves_it() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, deal("Lisbon in spring", json!({}))).await;
    let again = app
        .expect(
            "POST",
            "/api/admin/deals",
            Some(&token),
            Some(deal("Lisbon in Spring!", json!({}))),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(again["error"]["field"], "slug");
    let explicit = create(
        &app,
        deal("Lisbon in Spring!", json!({"slug": "lisbon-in-spring-2"})),
    )
    .await;
    assert_eq!(explicit["slug"], "lisbon-in-spring-2");
}

#[tokio::test]
async fn invalid_fields_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let cases = [
        (json!({"discountedPrice": 999.0}), "discountedPrice"),
        (json!({"originalPrice": -1.0}), "originalPrice"),
        (json!({"currency": "DOLLARS"}), "currency"),
        (json!({"origin": "jfk"}), "origin"),
        (
            json!({"destination": {"airportCode": "LISB", "city": "Lisbon", "country": "Portugal"}}),
            "destination.airportCode",
        ),
        (
            json!({"seo": {"title": "t".repeat(61), "description": "d"}}),
            "seo.title",
        ),
        (
            json!({"seo": {"title": "t", "description": "d".repeat(161)}}),
            "seo.description",
        ),
        (
            json!({"images": [{"url": "http://images.example/a.jpg", "alt": "a"}]}),
            "images[0].url",
        ),
        (json!({"dealScore": 101}), "dealScore"),
        (json!({"slug": "Not A Slug"}), "slug"),
        (json!({"flightDetails": [1, 2]}), "flightDetails"),
    ];
    for (overrides, field) in cases {
        let answer = app
            .expect(
                "POST",
                "/api/admin/deals",
                Some(&token),
                Some(deal("A deal", overrides.clone())),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{overrides}: {answer}");
    }
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, 0);
}

#[tokio::test]
async fn the_public_sees_only_active_unexpired_deals_without_counters_or_author() {
    let app = spawn_app().await;
    create(&app, deal("Live deal", json!({}))).await;
    create(&app, deal("Paused deal", json!({"active": false}))).await;
    create(
        &app,
        deal("Expired deal", json!({"expiresAt": "2020-01-01T00:00:00Z"})),
    )
    .await;
    create(
        &app,
        deal(
            "Expiring later",
            json!({"expiresAt": "2099-01-01T00:00:00Z"}),
        ),
    )
    .await;
    let page = app
        .expect("GET", "/api/deals", None, None, StatusCode::OK)
        .await;
    let slugs: Vec<&str> = page["deals"]
        .as_array()
        .expect("deals")
        .iter()
        .map(|d| d["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs.len(), 2, "{slugs:?}");
    assert!(slugs.contains(&"live-deal") && slugs.contains(&"expiring-later"));
    let first = &page["deals"][0];
    assert!(first.get("views").is_none() && first.get("createdBy").is_none());
    assert_eq!(first["discountPercent"], 44);
    for hidden in ["paused-deal", "expired-deal", "no-such-deal"] {
        let answer = app
            .expect(
                "GET",
                &format!("/api/deals/{hidden}"),
                None,
                None,
                StatusCode::NOT_FOUND,
            )
            .await;
        assert_eq!(answer["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn public_filters_narrow_the_list() {
    let app = spawn_app().await;
    create(
        &app,
        deal(
            "Lisbon weekend",
            json!({"category": "weekend", "discountedPrice": 300.0}),
        ),
    )
    .await;
    create(
        &app,
        deal(
            "Tokyo long haul",
            json!({"category": "long-haul", "origin": "LAX", "featured": true,
                "destination": {"airportCode": "HND", "city": "Tokyo", "country": "Japan"}}),
        ),
    )
    .await;
    let titles = |page: &Value| -> Vec<String> {
        page["deals"]
            .as_array()
            .expect("deals")
            .iter()
            .map(|d| d["title"].as_str().expect("title").to_owned())
            .collect()
    };
    for (query, expected) in [
        ("category=weekend", vec!["Lisbon weekend"]),
        ("origin=LAX", vec!["Tokyo long haul"]),
        ("destination=HND", vec!["Tokyo long haul"]),
        ("featured=true", vec!["Tokyo long haul"]),
        ("maxPrice=350", vec!["Lisbon weekend"]),
        ("currency=EUR", vec![]),
    ] {
        let page = app
            .expect(
                "GET",
                &format!("/api/deals?{query}"),
                None,
                None,
                StatusCode::OK,
            )
            .await;
        assert_eq!(titles(&page), expected, "{query}");
    }
    for (query, field) in [
        ("origin=lax", "origin"),
        ("maxPrice=-3", "maxPrice"),
        ("sort=cheapest", "sort"),
        ("limit=0", "limit"),
    ] {
        let answer = app
            .expect(
                "GET",
                &format!("/api/deals?{query}"),
                None,
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{query}");
    }
}

/// Every page of `sort`, `limit` at a time: the deals' titles in order.
async fn walk(app: &TestApp, sort: &str, limit: usize) -> Vec<String> {
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/deals?sort={sort}&limit={limit}&cursor={c}"),
            None => format!("/api/deals?sort={sort}&limit={limit}"),
        };
        let page = app.expect("GET", &uri, None, None, StatusCode::OK).await;
        let deals = page["deals"].as_array().expect("deals");
        assert!(deals.len() <= limit);
        titles.extend(
            deals
                .iter()
                .map(|d| d["title"].as_str().expect("title").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return titles,
        }
    }
}

#[tokio::test]
async fn every_sort_pages_through_every_deal_once_in_order() {
    let app = spawn_app().await;
    // Prices with ties and values without an exact decimal form (0.1 + 0.2).
    let specs: [(&str, f64, f64, i32); 7] = [
        ("A", 100.0, 50.0, 70),
        ("B", 100.0, 0.1 + 0.2, 90),
        ("C", 250.0, 125.0, 70),
        ("D", 80.0, 79.99, 10),
        ("E", 999.0, 50.0, 70),
        ("F", 120.0, 60.0, 55),
        ("G", 300.0, 299.0, 99),
    ];
    for (title, original, discounted, score) in specs {
        create(
            &app,
            deal(
                title,
                json!({"originalPrice": original, "discountedPrice": discounted, "dealScore": score}),
            ),
        )
        .await;
    }
    let price_titles = walk(&app, "price", 2).await;
    assert_eq!(price_titles.len(), specs.len(), "{price_titles:?}");
    let prices: Vec<f64> = price_titles
        .iter()
        .map(|t| specs.iter().find(|s| s.0 == t).expect("a spec").2)
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");

    let discount_titles = walk(&app, "discount", 3).await;
    let discounts: Vec<f64> = discount_titles
        .iter()
        .map(|t| {
            let s = specs.iter().find(|s| s.0 == t).expect("a spec");
            (s.1 - s.2) / s.1
        })
        .collect();
    assert_eq!(discounts.len(), specs.len());
    assert!(discounts.windows(2).all(|w| w[0] >= w[1]), "{discounts:?}");

    let score_titles = walk(&app, "dealScore", 2).await;
    let scores: Vec<i32> = score_titles
        .iter()
        .map(|t| specs.iter().find(|s| s.0 == t).expect("a spec").3)
        .collect();
    assert_eq!(scores.len(), specs.len());
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let newest = walk(&app, "newest", 4).await;
    assert_eq!(newest.len(), specs.len());
    let mut unique = newest.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), specs.len());
}

#[tokio::test]
async fn a_cursor_of_another_sort_is_refused() {
    let app = spawn_app().await;
    for title in ["One", "Two", "Three"] {
        create(&app, deal(title, json!({}))).await;
    }
    let page = app
        .expect(
            "GET",
            "/api/deals?sort=price&limit=1",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    let cursor = page["nextCursor"].as_str().expect("a cursor");
    let answer = app
        .expect(
            "GET",
            &format!("/api/deals?sort=newest&cursor={cursor}"),
            None,
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(answer["error"]["field"], "cursor");
}

#[tokio::test]
async fn public_reads_carry_an_etag_and_cache_control_and_revalidate_with_304() {
    let app = spawn_app().await;
    create(&app, deal("Cached deal", json!({}))).await;
    for uri in ["/api/deals", "/api/deals/cached-deal"] {
        let first = app.send("GET", uri, None, None).await;
        assert_eq!(first.status, StatusCode::OK);
        let etag = first.header("etag").expect("an ETag").to_owned();
        let cache = first.header("cache-control").expect("Cache-Control");
        assert!(cache.contains("max-age=") && cache.contains("stale-while-revalidate="));
        let again = app
            .raw(
                Request::get(uri)
                    .header("if-none-match", &etag)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.bytes.is_empty());
    }
    let token = app.editor().await;
    let id = app
        .expect(
            "GET",
            "/api/admin/deals",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await["deals"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let before = app.send("GET", "/api/deals/cached-deal", None, None).await;
    app.expect(
        "PATCH",
        &format!("/api/admin/deals/{id}"),
        Some(&token),
        Some(json!({"discountedPrice": 450.0})),
        StatusCode::OK,
    )
    .await;
    let after = app.send("GET", "/api/deals/cached-deal", None, None).await;
    assert_ne!(before.header("etag"), after.header("etag"));
}

#[tokio::test]
async fn concurrent_counter_beacons_lose_no_increment() {
    let app = spawn_app().await;
    create(&app, deal("Popular deal", json!({}))).await;
    let beacons = (0..40).map(|i| {
        let path = match i % 4 {
            0 | 1 => "/api/deals/popular-deal/view",
            2 => "/api/deals/popular-deal/click",
            _ => "/api/deals/popular-deal/conversion",
        };
        app.send("POST", path, None, None)
    });
    for answer in futures_util::future::join_all(beacons).await {
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(answer.json()["counted"], true);
    }
    let row = app
        .client
        .query_one(
            r#"SELECT "views", "clicks", "conversions" FROM "deals" WHERE "slug" = 'popular-deal'"#,
            &[],
        )
        .await
        .expect("counters");
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, i32>(1),
            row.get::<_, i32>(2)
        ),
        (20, 10, 10)
    );
}

#[tokio::test]
async fn a_bot_beacon_is_answered_but_counts_nothing() {
    let app = spawn_app().await;
    create(&app, deal("Crawled deal", json!({}))).await;
    let answer = app
        .raw(
            Request::post("/api/deals/crawled-deal/view")
                .header(
                    "user-agent",
                    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json()["counted"], false);
    assert_eq!(app.count(r#"SELECT "views"::bigint FROM "deals""#).await, 0);
    app.expect(
        "POST",
        "/api/deals/no-such-deal/view",
        None,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_change_keeps_the_slug_and_what_it_does_not_name_and_null_clears() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = create(
        &app,
        deal(
            "Original title",
            json!({"expiresAt": "2099-01-01T00:00:00Z", "tags": ["spring"]}),
        ),
    )
    .await;
    let id = created["id"].as_str().expect("id");
    let changed = app
        .expect(
            "PATCH",
            &format!("/api/admin/deals/{id}"),
            Some(&token),
            Some(json!({"title": "A new title", "expiresAt": null})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(changed["slug"], "original-title");
    assert_eq!(changed["expiresAt"], Value::Null);
    assert_eq!(changed["tags"], json!(["spring"]));
    assert_eq!(changed["createdBy"], "editor");
    let refused = app
        .expect(
            "PATCH",
            &format!("/api/admin/deals/{id}"),
            Some(&token),
            Some(json!({"views": 1000})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .expect("message")
            .contains("views"),
        "{refused}"
    );
}

#[tokio::test]
async fn history_lists_every_change_and_restore_brings_a_version_back_audited() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = create(&app, deal("Versioned deal", json!({}))).await;
    let id = created["id"].as_str().expect("id");
    for price in [450.0, 400.0] {
        app.expect(
            "PATCH",
            &format!("/api/admin/deals/{id}"),
            Some(&token),
            Some(json!({"discountedPrice": price})),
            StatusCode::OK,
        )
        .await;
    }
    let history = app
        .expect(
            "GET",
            &format!("/api/admin/deals/{id}/history"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["action"], "update");
    assert_eq!(versions[0]["before"]["discountedPrice"], 450.0);
    assert_eq!(versions[0]["after"]["discountedPrice"], 400.0);
    assert_eq!(versions[2]["action"], "create");
    assert_eq!(versions[2]["userId"], "editor");

    let first = versions[2]["auditId"].as_str().expect("audit id");
    let restored = app
        .expect(
            "POST",
            &format!("/api/admin/deals/{id}/restore"),
            Some(&token),
            Some(json!({"auditId": first})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(restored["discountedPrice"], 499.0);
    let audit = app.audit_rows("deals").await;
    let last = audit.last().expect("an audit row");
    assert_eq!(last["action"], "update");
    assert_eq!(last["changes"]["after"]["restoredFrom"], first);
    assert_eq!(last["changes"]["before"]["discountedPrice"], 400.0);
}

#[tokio::test]
async fn a_deleted_deal_comes_back_under_its_id_from_its_history() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = create(&app, deal("Deleted deal", json!({}))).await;
    let id = created["id"].as_str().expect("id");
    app.expect(
        "DELETE",
        &format!("/api/admin/deals/{id}"),
        Some(&token),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let history = app
        .expect(
            "GET",
            &format!("/api/admin/deals/{id}/history"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let deletion = history["versions"][0]["auditId"].as_str().expect("id");
    let refused = app
        .expect(
            "POST",
            &format!("/api/admin/deals/{id}/restore"),
            Some(&token),
            Some(json!({"auditId": deletion})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(refused["error"]["field"], "auditId");
    let restored = app
        .expect(
            "POST",
            &format!("/api/admin/deals/{id}/restore"),
            Some(&token),
            Some(json!({"auditId": deletion, "state": "before"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(restored["id"], created["id"]);
    assert_eq!(restored["slug"], "deleted-deal");
    app.expect("GET", "/api/deals/deleted-deal", None, None, StatusCode::OK)
        .await;
}

#[tokio::test]
async fn a_restore_naming_a_change_of_another_deal_is_a_404_naming_audit_id() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let one = create(&app, deal("Deal one", json!({}))).await;
    create(&app, deal("Deal two", json!({}))).await;
    let audit = app.audit_rows("deals").await;
    let other = audit[1]["id"].as_str().expect("audit id");
    let answer = app
        .expect(
            "POST",
            &format!(
                "/api/admin/deals/{}/restore",
                one["id"].as_str().expect("id")
            ),
            Some(&token),
            Some(json!({"auditId": other})),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(answer["error"]["field"], "auditId");
}

#[tokio::test]
async fn a_change_whose_commit_fails_is_not_answered_as_done_and_keeps_nothing() {
    let app = spawn_app().await;
    let token = app.editor().await;
    app.client
        .batch_execute(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON "deals"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#,
        )
        .await
        .expect("the deferred trigger");
    let answer = app
        .send(
            "POST",
            "/api/admin/deals",
            Some(&token),
            Some(deal("Never stored", json!({}))),
        )
        .await;
    assert!(answer.status.is_server_error(), "{}", answer.status);
    assert_eq!(app.count(r#"SELECT count(*) FROM "deals""#).await, 0);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "audit_logs" WHERE "success""#)
            .await,
        0
    );
}
