//! Search suggestions: the public search, the admin routes, the import and
//! the popularity job.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::{Answer, BROWSER, TestApp, spawn_app, spawn_app_with};

const ADMIN: &str = "/api/admin/search-suggestions";

/// Creates a suggestion through the admin API; returns it.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    app.expect("POST", ADMIN, Some(token), Some(body), StatusCode::CREATED)
        .await
}

async fn airport(
    app: &TestApp,
    token: &str,
    code: &str,
    name: &str,
    country: &str,
    popularity: i64,
) -> Value {
    create(
        app,
        token,
        json!({"type": "airport", "code": code, "name": name, "country": country, "popularity": popularity}),
    )
    .await
}

async fn city(app: &TestApp, token: &str, name: &str, country: &str, popularity: i64) -> Value {
    create(
        app,
        token,
        json!({"type": "city", "name": name, "country": country, "popularity": popularity}),
    )
    .await
}

/// The names the public search answers for `q`, best first.
async fn search(app: &TestApp, q: &str) -> Vec<String> {
    let uri = format!("/api/search/suggestions?q={}", urlencode(q));
    let body = app.expect("GET", &uri, None, None, StatusCode::OK).await;
    body["suggestions"]
        .as_array()
        .expect("suggestions")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn sample(app: &TestApp) -> String {
    let token = app.editor().await;
    airport(
        app,
        &token,
        "LIS",
        "Humberto Delgado Airport",
        "Portugal",
        10,
    )
    .await;
    city(app, &token, "Lisbon", "Portugal", 90).await;
    airport(app, &token, "LSY", "Lismore Airport", "Australia", 50).await;
    city(app, &token, "São Paulo", "Brazil", 80).await;
    city(app, &token, "Rome", "Italy", 70).await;
    city(app, &token, "Paris", "France", 60).await;
    city(app, &token, "Amsterdam", "Netherlands", 40).await;
    token
}

#[tokio::test]
async fn a_prefix_of_the_last_word_finds_its_suggestions() {
    let app = spawn_app().await;
    sample(&app).await;
    assert_eq!(search(&app, "lisb").await, ["Lisbon"]);
    assert_eq!(search(&app, "ams").await, ["Amsterdam"]);
}

#[tokio::test]
async fn a_four_letter_word_with_a_typo_finds_nothing() {
    let app = spawn_app().await;
    sample(&app).await;
    assert!(search(&app, "rone").await.is_empty());
    assert_eq!(search(&app, "rome").await, ["Rome"]);
}

#[tokio::test]
async fn a_five_letter_word_may_have_one_typo() {
    let app = spawn_app().await;
    sample(&app).await;
    assert_eq!(search(&app, "parus").await, ["Paris"]);
    assert!(
        search(&app, "pxrus").await.is_empty(),
        "two typos in five letters"
    );
}

#[tokio::test]
async fn a_nine_letter_word_may_have_two_typos() {
    let app = spawn_app().await;
    sample(&app).await;
    assert_eq!(search(&app, "anstrrdam").await, ["Amsterdam"]);
}

#[tokio::test]
async fn accents_and_case_are_ignored() {
    let app = spawn_app().await;
    sample(&app).await;
    assert_eq!(search(&app, "sao pa").await, ["São Paulo"]);
    assert_eq!(search(&app, "SÃO PAULO").await, ["São Paulo"]);
}

#[tokio::test]
async fn an_exact_iata_code_comes_first_in_any_case() {
    let app = spawn_app().await;
    sample(&app).await;
    // Lisbon (90) and Lismore (50) are more popular prefix matches.
    assert_eq!(search(&app, "lis").await[0], "Humberto Delgado Airport");
    assert_eq!(search(&app, "LIS").await[0], "Humberto Delgado Airport");
    assert_eq!(search(&app, "lsy").await[0], "Lismore Airport");
}

async fn first_country(app: &TestApp, q: &str) -> String {
    let uri = format!("/api/search/suggestions?q={q}");
    let body = app.expect("GET", &uri, None, None, StatusCode::OK).await;
    body["suggestions"][0]["country"]
        .as_str()
        .expect("country")
        .to_owned()
}

#[tokio::test]
async fn popularity_breaks_ties_between_equal_matches() {
    let app = spawn_app().await;
    let token = app.editor().await;
    city(&app, &token, "Paris", "France", 10).await;
    let texas = city(&app, &token, "Paris", "United States", 20).await;
    assert_eq!(first_country(&app, "paris").await, "United States");
    app.expect(
        "PATCH",
        &format!("{ADMIN}/{}", texas["id"].as_str().expect("id")),
        Some(&token),
        Some(json!({"popularity": 1})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(first_country(&app, "paris").await, "France");
}

#[tokio::test]
async fn a_whole_word_ranks_before_a_longer_word_it_begins() {
    let app = spawn_app().await;
    let token = app.editor().await;
    city(&app, &token, "Romeo", "Italy", 99).await;
    city(&app, &token, "Rome", "Italy", 1).await;
    assert_eq!(search(&app, "rome").await, ["Rome", "Romeo"]);
}

#[tokio::test]
async fn the_type_and_limit_narrow_the_answer() {
    let app = spawn_app().await;
    sample(&app).await;
    let body = app
        .expect(
            "GET",
            "/api/search/suggestions?q=lis&type=city",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["suggestions"].as_array().expect("list").len(), 1);
    assert_eq!(body["suggestions"][0]["type"], "city");
    let body = app
        .expect(
            "GET",
            "/api/search/suggestions?q=lis&limit=1",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["suggestions"].as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn answers_are_cacheable_and_revalidate_with_a_304() {
    let app = spawn_app().await;
    sample(&app).await;
    let first = app
        .send("GET", "/api/search/suggestions?q=lisb", None, None)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag").expect("ETag").to_owned();
    assert!(
        first
            .header("cache-control")
            .expect("Cache-Control")
            .contains("max-age=")
    );
    let again = app
        .raw(
            Request::get("/api/search/suggestions?q=lisb")
                .header("user-agent", BROWSER)
                .header("if-none-match", &etag)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.bytes.is_empty());
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_them() {
    let app = spawn_app().await;
    let long = "a".repeat(101);
    for (uri, field) in [
        ("/api/search/suggestions".to_owned(), "q"),
        ("/api/search/suggestions?q=%20%20".to_owned(), "q"),
        (format!("/api/search/suggestions?q={long}"), "q"),
        ("/api/search/suggestions?q=lis&type=port".to_owned(), "type"),
        ("/api/search/suggestions?q=lis&limit=0".to_owned(), "limit"),
        ("/api/search/suggestions?q=lis&limit=21".to_owned(), "limit"),
        ("/api/search/suggestions?q=lis&limit=x".to_owned(), "limit"),
    ] {
        let body = app
            .expect("GET", &uri, None, None, StatusCode::BAD_REQUEST)
            .await;
        assert_eq!(body["error"]["field"], field, "{uri}");
    }
}

#[tokio::test]
async fn a_change_through_this_container_shows_in_the_next_search() {
    let app = spawn_app().await;
    let token = sample(&app).await;
    assert!(search(&app, "faro").await.is_empty());
    let faro = airport(&app, &token, "FAO", "Faro Airport", "Portugal", 5).await;
    assert_eq!(search(&app, "faro").await, ["Faro Airport"]);
    app.expect(
        "DELETE",
        &format!("{ADMIN}/{}", faro["id"].as_str().expect("id")),
        Some(&token),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(search(&app, "faro").await.is_empty());
}

#[tokio::test]
async fn another_writers_change_is_seen_once_the_index_is_stale() {
    let app = spawn_app_with(&[("SUGGESTION_CACHE_SECONDS", "0")]).await;
    sample(&app).await;
    assert!(search(&app, "madrid").await.is_empty());
    app.client
        .execute(
            r#"INSERT INTO "search_suggestions" ("id", "query", "type", "name", "updatedAt")
               VALUES ('s-madrid', 'Madrid, Spain', 'city', 'Madrid', now())"#,
            &[],
        )
        .await
        .expect("insert");
    // The stale index answers while a check runs in the background.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = search(&app, "madrid").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found, ["Madrid"]);
}

#[tokio::test]
async fn create_derives_the_query_key_and_refuses_a_taken_one_with_a_409() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let lisbon = airport(
        &app,
        &token,
        "LIS",
        "Humberto Delgado Airport",
        "Portugal",
        0,
    )
    .await;
    assert_eq!(lisbon["query"], "LIS");
    assert_eq!(lisbon["popularity"], 0);
    let city = city(&app, &token, "Lisbon", "Portugal", 3).await;
    assert_eq!(city["query"], "Lisbon, Portugal");
    let again = app
        .expect(
            "POST",
            ADMIN,
            Some(&token),
            Some(json!({"type": "airport", "code": "LIS", "name": "Lisbon Portela"})),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(again["error"]["field"], "query");
    let audit = app.audit_rows("suggestions").await;
    assert_eq!(audit.len(), 3, "two created, one refused");
    assert_eq!(audit[2]["success"], false);
}

#[tokio::test]
async fn invalid_fields_are_400s_naming_them() {
    let app = spawn_app().await;
    let token = app.editor().await;
    for (body, field) in [
        (json!({"type": "port", "name": "Lisbon"}), "type"),
        (json!({"type": "airport", "name": "Lisbon"}), "code"),
        (
            json!({"type": "airport", "code": "lis", "name": "Lisbon"}),
            "code",
        ),
        (
            json!({"type": "country", "code": "PRT", "name": "Portugal"}),
            "code",
        ),
        (json!({"type": "city", "name": ""}), "name"),
        (
            json!({"type": "city", "name": "Lisbon", "popularity": -1}),
            "popularity",
        ),
        (
            json!({"type": "city", "name": "Lisbon", "metadata": [1]}),
            "metadata",
        ),
        (
            json!({"type": "city", "name": "Lisbon", "colour": "red"}),
            "colour",
        ),
    ] {
        let answer = app
            .expect(
                "POST",
                ADMIN,
                Some(&token),
                Some(body.clone()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "search_suggestions""#)
            .await,
        0
    );
}

#[tokio::test]
async fn suggestions_are_read_changed_and_deleted_by_id() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let lisbon = city(&app, &token, "Lisbon", "Portugal", 3).await;
    let id = lisbon["id"].as_str().expect("id");
    let uri = format!("{ADMIN}/{id}");
    let read = app
        .expect("GET", &uri, Some(&token), None, StatusCode::OK)
        .await;
    assert_eq!(read["name"], "Lisbon");
    let changed = app
        .expect(
            "PATCH",
            &uri,
            Some(&token),
            Some(json!({"name": "Lisboa", "metadata": {"aliases": ["Lisbon"]}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(changed["name"], "Lisboa");
    assert_eq!(
        changed["query"], "Lisboa, Portugal",
        "a derived key follows the name"
    );
    assert_eq!(changed["popularity"], 3);
    assert_eq!(
        search(&app, "lisbon").await,
        ["Lisboa"],
        "aliases are searched"
    );
    let bad = app
        .expect(
            "PATCH",
            &uri,
            Some(&token),
            Some(json!({"type": "airport"})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(bad["error"]["field"], "code");
    app.expect("DELETE", &uri, Some(&token), None, StatusCode::NO_CONTENT)
        .await;
    app.expect("GET", &uri, Some(&token), None, StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn a_change_to_a_taken_query_is_a_409_naming_it() {
    let app = spawn_app().await;
    let token = app.editor().await;
    city(&app, &token, "Lisbon", "Portugal", 0).await;
    let porto = city(&app, &token, "Porto", "Portugal", 0).await;
    let answer = app
        .expect(
            "PATCH",
            &format!("{ADMIN}/{}", porto["id"].as_str().expect("id")),
            Some(&token),
            Some(json!({"query": "Lisbon, Portugal"})),
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(answer["error"]["field"], "query");
}

#[tokio::test]
async fn the_list_pages_by_query_key_and_filters_by_type() {
    let app = spawn_app().await;
    sample(&app).await;
    let token = app.editor().await;
    let first = app
        .expect(
            "GET",
            &format!("{ADMIN}?limit=3"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let queries = |page: &Value| -> Vec<String> {
        page["suggestions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["query"].as_str().expect("query").to_owned())
            .collect()
    };
    assert_eq!(queries(&first), ["Amsterdam, Netherlands", "LIS", "LSY"]);
    let cursor = first["nextCursor"].as_str().expect("cursor");
    let second = app
        .expect(
            "GET",
            &format!("{ADMIN}?limit=3&cursor={cursor}"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        queries(&second),
        ["Lisbon, Portugal", "Paris, France", "Rome, Italy"]
    );
    let airports = app
        .expect(
            "GET",
            &format!("{ADMIN}?type=airport"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(queries(&airports), ["LIS", "LSY"]);
    let bad = app
        .expect(
            "GET",
            &format!("{ADMIN}?type=port"),
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(bad["error"]["field"], "type");
}

#[tokio::test]
async fn admin_routes_need_the_suggestions_permission() {
    let app = spawn_app().await;
    let moderator = app.admin("mod", "moderator", None).await;
    app.expect("GET", ADMIN, Some(&moderator), None, StatusCode::FORBIDDEN)
        .await;
    app.expect("GET", ADMIN, None, None, StatusCode::UNAUTHORIZED)
        .await;
}

async fn import_csv(app: &TestApp, token: &str, csv: &str) -> Answer {
    app.raw(
        Request::post(format!("{ADMIN}/import"))
            .header("content-type", "text/csv")
            .header("cookie", format!("next-auth.session-token={token}"))
            .header("user-agent", BROWSER)
            .body(Body::from(csv.to_owned()))
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn a_json_import_with_an_invalid_row_stores_nothing_and_reports_it_by_index() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let report = app
        .expect(
            "POST",
            &format!("{ADMIN}/import"),
            Some(&token),
            Some(json!([
                {"type": "city", "name": "Lisbon", "country": "Portugal"},
                {"type": "airport", "code": "lis", "name": "Humberto Delgado Airport"},
                {"type": "city", "name": "Porto", "country": "Portugal"},
                {"type": "city", "name": "Lisbon", "country": "Portugal"},
            ])),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(report["rejectedCount"], 2);
    assert_eq!(report["rejected"][0]["index"], 1);
    assert_eq!(report["rejected"][0]["field"], "code");
    assert_eq!(report["rejected"][1]["index"], 3);
    assert_eq!(report["rejected"][1]["field"], "query");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "search_suggestions""#)
            .await,
        0
    );
}

#[tokio::test]
async fn a_csv_import_with_an_invalid_row_stores_nothing_and_reports_it_by_line() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let answer = import_csv(
        &app,
        &token,
        "type,code,name,country,popularity\n\
         airport,LIS,Humberto Delgado Airport,Portugal,10\n\
         harbour,,Lisbon,Portugal,\n\
         city,,Porto,Portugal,many\n",
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let report = answer.json();
    assert_eq!(report["rejected"][0]["line"], 3);
    assert_eq!(report["rejected"][0]["field"], "type");
    assert_eq!(report["rejected"][1]["line"], 4);
    assert_eq!(report["rejected"][1]["field"], "popularity");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "search_suggestions""#)
            .await,
        0
    );
}

#[tokio::test]
async fn an_import_upserts_by_query_and_keeps_popularity_unless_given() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let first = import_csv(
        &app,
        &token,
        "type,code,name,country,popularity\n\
         airport,LIS,Humberto Delgado Airport,Portugal,10\n\
         city,,Lisbon,Portugal,20\n",
    )
    .await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&first.bytes)
    );
    assert_eq!(
        first.json(),
        json!({"rows": 2, "inserted": 2, "updated": 0})
    );
    let second = app
        .expect(
            "POST",
            &format!("{ADMIN}/import"),
            Some(&token),
            Some(json!([
                {"type": "airport", "code": "LIS", "name": "Lisbon Airport", "country": "Portugal"},
                {"type": "city", "name": "Porto", "country": "Portugal", "popularity": 7},
            ])),
            StatusCode::OK,
        )
        .await;
    assert_eq!(second, json!({"rows": 2, "inserted": 1, "updated": 1}));
    let lisbon = app
        .client
        .query_one(
            r#"SELECT "name", "popularity" FROM "search_suggestions" WHERE "query" = 'LIS'"#,
            &[],
        )
        .await
        .expect("row");
    assert_eq!(lisbon.get::<_, String>(0), "Lisbon Airport");
    assert_eq!(lisbon.get::<_, i32>(1), 10);
    assert_eq!(search(&app, "lisbon air").await, ["Lisbon Airport"]);
    let audit = app.audit_rows("suggestions").await;
    assert_eq!(audit.len(), 2, "one audit row per import");
    assert_eq!(audit[1]["changes"]["after"]["inserted"], 1);
    assert_eq!(audit[1]["changes"]["after"]["updated"], 1);
}

#[tokio::test]
async fn an_import_over_the_row_limit_is_a_413() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let rows: Vec<Value> = (0..50_001)
        .map(|i| json!({"type": "city", "name": format!("c{i}")}))
        .collect();
    app.expect(
        "POST",
        &format!("{ADMIN}/import"),
        Some(&token),
        Some(Value::Array(rows)),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn an_import_in_another_media_type_is_a_415() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let answer = app
        .raw(
            Request::post(format!("{ADMIN}/import"))
                .header("content-type", "text/plain")
                .header("cookie", format!("next-auth.session-token={token}"))
                .body(Body::from("type,name\ncity,Lisbon\n"))
                .expect("request"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

// The popularity job.

async fn flight_search(app: &TestApp, at: DateTime<Utc>, data: Value) {
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "sessionId", "eventType", "eventData", "timestamp")
               VALUES (gen_random_uuid()::text, 's', 'flight_search', $1, $2)"#,
            &[&data, &at.naive_utc()],
        )
        .await
        .expect("event");
}

async fn popularity_of(app: &TestApp, query: &str) -> i32 {
    app.client
        .query_one(
            r#"SELECT "popularity" FROM "search_suggestions" WHERE "query" = $1"#,
            &[&query],
        )
        .await
        .expect("suggestion")
        .get(0)
}

async fn run_job(app: &TestApp, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Value {
    cms::suggest::popularity(&app.function.state.pool, from, to)
        .await
        .expect("the job")
}

async fn airports_for_the_job(app: &TestApp) {
    let token = app.editor().await;
    airport(
        app,
        &token,
        "LIS",
        "Humberto Delgado Airport",
        "Portugal",
        0,
    )
    .await;
    airport(
        app,
        &token,
        "JFK",
        "John F. Kennedy Airport",
        "United States",
        0,
    )
    .await;
}

#[tokio::test]
async fn searches_raise_their_origin_and_destination_once_however_often_the_job_runs() {
    let app = spawn_app().await;
    airports_for_the_job(&app).await;
    let now = Utc::now();
    flight_search(
        &app,
        now - Duration::hours(2),
        json!({"origin": "LIS", "destination": "JFK"}),
    )
    .await;
    flight_search(
        &app,
        now - Duration::minutes(5),
        json!({"origin": " lis ", "destination": "JFK"}),
    )
    .await;
    let summary = run_job(&app, None, None).await;
    assert_eq!(summary["events"], 2);
    assert_eq!(summary["suggestionsRaised"], 2);
    assert_eq!(popularity_of(&app, "LIS").await, 2);
    assert_eq!(popularity_of(&app, "JFK").await, 2);
    let again = run_job(&app, None, None).await;
    assert_eq!(again["suggestionsRaised"], 0);
    assert_eq!(popularity_of(&app, "LIS").await, 2);
}

#[tokio::test]
async fn a_missed_run_is_caught_up_by_the_next() {
    let app = spawn_app().await;
    airports_for_the_job(&app).await;
    let now = Utc::now();
    flight_search(&app, now - Duration::hours(60), json!({"origin": "LIS"})).await;
    run_job(&app, None, None).await;
    app.client
        .execute(
            r#"UPDATE "bundle"."search_popularity_watermark" SET "countedUntil" = "countedUntil" - interval '50 hours'"#,
            &[],
        )
        .await
        .expect("the watermark of a run 50 hours ago");
    // Searches made while no run happened, older than the recount window
    // of the watermark now, and newer.
    flight_search(&app, now - Duration::hours(40), json!({"origin": "LIS"})).await;
    flight_search(
        &app,
        now - Duration::hours(1),
        json!({"destination": "LIS"}),
    )
    .await;
    let summary = run_job(&app, None, None).await;
    assert_eq!(popularity_of(&app, "LIS").await, 3);
    assert_eq!(summary["suggestionsRaised"], 1);
}

#[tokio::test]
async fn a_backfill_counts_its_window_once_and_the_scheduled_run_adds_nothing_to_it() {
    let app = spawn_app().await;
    airports_for_the_job(&app).await;
    let now = Utc::now();
    let day = now - Duration::days(10);
    flight_search(&app, day, json!({"origin": "JFK", "destination": "LIS"})).await;
    flight_search(&app, day + Duration::hours(3), json!({"origin": "JFK"})).await;
    flight_search(&app, now - Duration::hours(1), json!({"origin": "JFK"})).await;
    let window = (
        Some(day - Duration::hours(1)),
        Some(day + Duration::hours(4)),
    );
    let backfill = run_job(&app, window.0, window.1).await;
    assert_eq!(backfill["events"], 2);
    assert_eq!(backfill["backfill"], true);
    assert_eq!(popularity_of(&app, "JFK").await, 2);
    run_job(&app, window.0, window.1).await;
    assert_eq!(
        popularity_of(&app, "JFK").await,
        2,
        "a rerun of the backfill adds nothing"
    );
    // The first scheduled run counts from the oldest event, the
    // backfilled hours included: only the newer search is added.
    run_job(&app, None, None).await;
    assert_eq!(popularity_of(&app, "JFK").await, 3);
    assert_eq!(popularity_of(&app, "LIS").await, 1);
}

#[tokio::test]
async fn unknown_codes_and_other_events_are_ignored() {
    let app = spawn_app().await;
    airports_for_the_job(&app).await;
    let now = Utc::now();
    flight_search(
        &app,
        now - Duration::minutes(10),
        json!({"origin": "XXX", "destination": "Lisbon"}),
    )
    .await;
    flight_search(
        &app,
        now - Duration::minutes(10),
        json!({"origin": 42, "destination": {"code": "LIS"}}),
    )
    .await;
    app.client
        .execute(
            r#"INSERT INTO "analytics_events" ("id", "sessionId", "eventType", "eventData", "timestamp")
               VALUES ('other', 's', 'results_view', '{"origin": "LIS"}', now())"#,
            &[],
        )
        .await
        .expect("event");
    let summary = run_job(&app, None, None).await;
    assert_eq!(summary["events"], 2);
    assert_eq!(summary["suggestionsRaised"], 0);
    assert_eq!(popularity_of(&app, "LIS").await, 0);
}

#[tokio::test]
async fn a_popularity_set_by_an_editor_is_the_base_the_job_adds_to() {
    let app = spawn_app().await;
    airports_for_the_job(&app).await;
    flight_search(
        &app,
        Utc::now() - Duration::minutes(10),
        json!({"origin": "LIS"}),
    )
    .await;
    run_job(&app, None, None).await;
    app.client
        .execute(
            r#"UPDATE "search_suggestions" SET "popularity" = 100 WHERE "query" = 'LIS'"#,
            &[],
        )
        .await
        .expect("an editor's value");
    flight_search(
        &app,
        Utc::now() - Duration::minutes(5),
        json!({"origin": "LIS"}),
    )
    .await;
    run_job(&app, None, None).await;
    assert_eq!(popularity_of(&app, "LIS").await, 101);
}

#[tokio::test]
async fn searches_to_a_destination_raise_its_searches_counter_once_and_keep_its_updated_at() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = app
        .expect(
            "POST",
            "/api/admin/destinations",
            Some(&token),
            Some(crate::destinations::destination("Lisbon", "LIS", json!({}))),
            StatusCode::CREATED,
        )
        .await;
    let now = Utc::now();
    for data in [
        json!({"origin": "JFK", "destination": "LIS"}),
        json!({"origin": "JFK", "destination": " lis "}),
        // From Lisbon: not a search for it.
        json!({"origin": "LIS", "destination": "JFK"}),
    ] {
        flight_search(&app, now - Duration::minutes(30), data).await;
    }
    let searches = || async {
        app.client
            .query_one(
                r#"SELECT "searches", "updatedAt" FROM "destinations" WHERE "airportCode" = 'LIS'"#,
                &[],
            )
            .await
            .expect("destination")
    };
    let summary = run_job(&app, None, None).await;
    assert_eq!(summary["destinationsCounted"], 1);
    let row = searches().await;
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(
        platform::clock::from_db_timestamp(row.get(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created["updatedAt"].as_str().expect("updatedAt")
    );
    run_job(&app, Some(now - Duration::hours(3)), Some(now)).await;
    assert_eq!(searches().await.get::<_, i32>(0), 2);
}
