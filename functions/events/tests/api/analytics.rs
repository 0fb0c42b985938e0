use axum::http::StatusCode;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};
use testkit::fixture;

use crate::spawn_app;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn batch(session: &str, events: Vec<Value>) -> Value {
    json!({ "sessionId": session, "events": events })
}

#[tokio::test]
async fn a_front_end_batch_is_stored_and_answered_202_with_counts() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let body = json!({
        "sessionId": "session_1732500000000_abc",
        "userId": "user-1",
        "events": [
            {"eventType": "page_view", "eventData": {"url": "https://deals.example/", "referrer": "https://google.com/"}, "timestamp": t - 2000},
            {"eventType": "flight_search", "eventData": {"origin": "JFK", "destination": "LIS"}, "timestamp": t - 1000},
            {"eventType": "results_view", "timestamp": t},
        ]
    });
    let answer = app.post_json(&body, StatusCode::ACCEPTED).await;
    assert_eq!(
        answer,
        json!({"received": 3, "stored": 3, "duplicates": 0, "funnelSteps": 0})
    );
    let rows = app.events().await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, String>(0), "session_1732500000000_abc");
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("user-1")
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(4).as_deref(),
        Some("https://deals.example/")
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(5).as_deref(),
        Some("https://google.com/")
    );
    assert_eq!(
        rows[1].get::<_, Value>(3),
        json!({"origin": "JFK", "destination": "LIS"})
    );
    assert_eq!(rows[2].get::<_, Value>(3), json!({}));
    let stored_at: NaiveDateTime = rows[2].get(8);
    assert_eq!(
        stored_at.and_utc().timestamp_millis(),
        t,
        "the client's millisecond timestamp is kept"
    );
}

#[tokio::test]
async fn the_single_event_shape_of_the_migration_readme_is_accepted() {
    let app = spawn_app(&[]).await;
    let body =
        json!({"sessionId": "s1", "eventType": "deal_click", "eventData": {"dealId": "d-9"}});
    let answer = app.post_json(&body, StatusCode::ACCEPTED).await;
    assert_eq!(answer["stored"], 1);
    assert_eq!(app.events().await[0].get::<_, String>(2), "deal_click");
}

#[tokio::test]
async fn a_send_beacon_text_plain_body_is_read_as_json() {
    let app = spawn_app(&[]).await;
    let body = batch(
        "s1",
        vec![json!({"eventType": "page_view", "timestamp": now_ms()})],
    )
    .to_string();
    app.post(
        "/api/analytics/events",
        &[("content-type", "text/plain;charset=UTF-8")],
        body,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(app.count("analytics_events").await, 1);
}

#[tokio::test]
async fn the_page_url_falls_back_to_the_referer_header_and_the_user_agent_comes_from_its_header() {
    let app = spawn_app(&[]).await;
    let body = batch(
        "s1",
        vec![json!({"eventType": "page_view", "timestamp": now_ms()})],
    )
    .to_string();
    let headers = [
        ("content-type", "application/json"),
        ("referer", "https://deals.example/lisbon"),
        (
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        ),
    ];
    app.post(
        "/api/analytics/events",
        &headers,
        body,
        StatusCode::ACCEPTED,
    )
    .await;
    let row = &app.events().await[0];
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some("https://deals.example/lisbon")
    );
    assert_eq!(
        row.get::<_, Option<String>>(6).as_deref(),
        Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
    );
    assert_eq!(
        row.get::<_, Option<String>>(5),
        None,
        "the Referer header is the page, not the page's referrer"
    );
}

#[tokio::test]
async fn the_client_address_is_stored_truncated_by_default() {
    let app = spawn_app(&[]).await;
    let body = batch("s1", vec![json!({"eventType": "page_view"})]).to_string();
    let headers = [
        ("content-type", "application/json"),
        ("x-forwarded-for", "203.0.113.77, 10.0.0.1"),
    ];
    app.post(
        "/api/analytics/events",
        &headers,
        body,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        app.events().await[0].get::<_, Option<String>>(7).as_deref(),
        Some("203.0.113.0")
    );
}

#[tokio::test]
async fn no_address_is_stored_when_configured_so() {
    let app = spawn_app(&[("ANALYTICS_IP_STORAGE", "none")]).await;
    let body = batch("s1", vec![json!({"eventType": "page_view"})]).to_string();
    let headers = [
        ("content-type", "application/json"),
        ("x-forwarded-for", "203.0.113.77"),
    ];
    app.post(
        "/api/analytics/events",
        &headers,
        body,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(app.events().await[0].get::<_, Option<String>>(7), None);
}

#[tokio::test]
async fn a_retried_batch_is_stored_once() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let body = batch(
        "s1",
        vec![
            json!({"eventType": "page_view", "eventData": {"url": "/a"}, "timestamp": t}),
            json!({"eventType": "page_view", "eventData": {"url": "/b"}, "timestamp": t}),
        ],
    );
    app.post_json(&body, StatusCode::ACCEPTED).await;
    let retry = app.post_json(&body, StatusCode::ACCEPTED).await;
    assert_eq!(retry["stored"], 0);
    assert_eq!(retry["duplicates"], 2);
    assert_eq!(app.count("analytics_events").await, 2);
}

#[tokio::test]
async fn client_event_ids_identify_an_event_across_requests() {
    let app = spawn_app(&[]).await;
    let first = batch(
        "s1",
        vec![json!({"eventType": "page_view", "eventId": "e-1", "timestamp": now_ms()})],
    );
    let resent = batch(
        "s1",
        vec![json!({"eventType": "page_view", "eventId": "e-1", "timestamp": now_ms() + 5})],
    );
    app.post_json(&first, StatusCode::ACCEPTED).await;
    assert_eq!(
        app.post_json(&resent, StatusCode::ACCEPTED).await["duplicates"],
        1
    );
    let other_session = batch(
        "s2",
        vec![json!({"eventType": "page_view", "eventId": "e-1", "timestamp": now_ms()})],
    );
    assert_eq!(
        app.post_json(&other_session, StatusCode::ACCEPTED).await["stored"],
        1
    );
}

#[tokio::test]
async fn funnel_steps_also_write_conversion_funnel_rows() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let body = batch(
        "s1",
        vec![
            json!({"eventType": "funnel", "eventData": {"stage": "flight_search", "action": "submit", "duration": 1200, "metadata": {"pax": 2}}, "timestamp": t}),
            json!({"eventType": "funnel", "eventData": {"stage": "begin_checkout", "action": "view"}, "timestamp": t + 1}),
            json!({"eventType": "page_view", "timestamp": t}),
        ],
    );
    let answer = app.post_json(&body, StatusCode::ACCEPTED).await;
    assert_eq!(answer["funnelSteps"], 2);
    let rows = app
        .db
        .connect()
        .await
        .query(r#"SELECT "stage", "action", "duration", "metadata", "sessionId" FROM "conversion_funnels" ORDER BY "timestamp""#, &[])
        .await
        .expect("funnel rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>(0), "flight_search");
    assert_eq!(rows[0].get::<_, Option<i32>>(2), Some(1200));
    assert_eq!(rows[0].get::<_, Option<Value>>(3), Some(json!({"pax": 2})));
    assert_eq!(rows[1].get::<_, Option<i32>>(2), None);
    app.post_json(&body, StatusCode::ACCEPTED).await;
    assert_eq!(
        app.count("conversion_funnels").await,
        2,
        "a retry adds no funnel rows"
    );
}

#[tokio::test]
async fn every_invalid_input_is_a_400_naming_its_field_and_stores_nothing() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"eventType": "x"})).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"events": [{"eventType": "x"}]}), "sessionId"),
        (
            json!({"sessionId": "", "events": [{"eventType": "x"}]}),
            "sessionId",
        ),
        (
            json!({"sessionId": "x".repeat(129), "events": [{"eventType": "x"}]}),
            "sessionId",
        ),
        (
            json!({"sessionId": 42, "events": [{"eventType": "x"}]}),
            "sessionId",
        ),
        (
            json!({"sessionId": "s", "userId": ["u"], "events": [{"eventType": "x"}]}),
            "userId",
        ),
        (json!({"sessionId": "s", "events": "page_view"}), "events"),
        (json!({"sessionId": "s", "events": []}), "events"),
        (json!({"sessionId": "s", "events": too_many}), "events"),
        (json!({"sessionId": "s"}), "events"),
        (
            json!({"sessionId": "s", "events": [{"eventType": "ok"}, {"eventData": {}}]}),
            "events[1].eventType",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "ok"}, 7]}),
            "events[1]",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x".repeat(65)}]}),
            "events[0].eventType",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x", "eventData": [1, 2]}]}),
            "events[0].eventData",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x", "eventData": {"blob": "x".repeat(17_000)}}]}),
            "events[0].eventData",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x", "eventData": {"url": 5}}]}),
            "events[0].eventData.url",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x", "timestamp": t + 7_200_000}]}),
            "events[0].timestamp",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "x", "timestamp": "yesterday"}]}),
            "events[0].timestamp",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "funnel", "eventData": {"action": "a"}}]}),
            "events[0].eventData.stage",
        ),
        (
            json!({"sessionId": "s", "events": [{"eventType": "funnel", "eventData": {"stage": "s", "action": "a", "duration": -1}}]}),
            "events[0].eventData.duration",
        ),
        (json!({"sessionId": "s", "eventType": 3}), "eventType"),
    ];
    for (body, field) in cases {
        let answer = app.post_json(&body, StatusCode::BAD_REQUEST).await;
        assert_eq!(answer["error"]["field"], field, "{body}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn malformed_bodies_are_400s_with_a_code() {
    let app = spawn_app(&[]).await;
    for (body, code) in [
        ("{not json", "invalid_json"),
        ("", "empty_body"),
        ("[1,2]", "invalid_body"),
        ("\"text\"", "invalid_body"),
    ] {
        let answer = app
            .post(
                "/api/analytics/events",
                &[("content-type", "application/json")],
                body.to_owned(),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let app = spawn_app(&[]).await;
    let body = format!(
        "{{\"sessionId\": \"s\", \"padding\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let answer = app
        .post(
            "/api/analytics/events",
            &[("content-type", "application/json")],
            body,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_eq!(answer["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn other_media_types_are_a_415() {
    let app = spawn_app(&[]).await;
    app.post(
        "/api/analytics/events",
        &[("content-type", "application/x-www-form-urlencoded")],
        "a=b",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[tokio::test]
async fn an_api_gateway_v2_post_is_stored_with_the_gateway_source_ip() {
    let app = spawn_app(&[]).await;
    let mut payload = fixture("apigw-v2-request.json");
    payload["rawPath"] = "/api/analytics/events".into();
    payload["requestContext"]["http"]["path"] = "/api/analytics/events".into();
    payload["requestContext"]["http"]["method"] = "POST".into();
    payload["requestContext"]["http"]["sourceIp"] = "198.51.100.23".into();
    payload["headers"]["content-type"] = "text/plain;charset=UTF-8".into();
    payload["headers"]["x-forwarded-for"] = "203.0.113.1".into();
    // The sample's curl/7.58.0 would be dropped as a bot; a page sends its browser's.
    payload["headers"]["user-agent"] =
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15".into();
    payload["body"] = batch("s1", vec![json!({"eventType": "page_view"})])
        .to_string()
        .into();
    payload["isBase64Encoded"] = false.into();
    let response = platform::lambda::invoke(
        &app.app,
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
    )
    .await
    .expect("invocation");
    assert_eq!(response["statusCode"], 202, "{response}");
    assert_eq!(
        app.events().await[0].get::<_, Option<String>>(7).as_deref(),
        Some("198.51.100.0")
    );
}

#[tokio::test]
async fn a_batch_that_partly_repeats_an_earlier_one_stores_only_the_new_events() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let first = batch(
        "s1",
        vec![
            json!({"eventType": "a", "timestamp": t}),
            json!({"eventType": "b", "timestamp": t}),
        ],
    );
    let overlapping = batch(
        "s1",
        vec![
            json!({"eventType": "b", "timestamp": t}),
            json!({"eventType": "c", "timestamp": t}),
            json!({"eventType": "funnel", "eventData": {"stage": "results_view", "action": "view"}, "timestamp": t}),
        ],
    );
    app.post_json(&first, StatusCode::ACCEPTED).await;
    let answer = app.post_json(&overlapping, StatusCode::ACCEPTED).await;
    assert_eq!(
        answer,
        json!({"received": 3, "stored": 2, "duplicates": 1, "funnelSteps": 1})
    );
    assert_eq!(app.count("analytics_events").await, 4);
    assert_eq!(app.count("conversion_funnels").await, 1);
}

#[tokio::test]
async fn a_retried_large_batch_falls_back_from_copy_and_stores_only_new_events() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let events = |range: std::ops::Range<i32>| {
        range
            .map(
                |i| json!({"eventType": "page_view", "eventData": {"position": i}, "timestamp": t}),
            )
            .collect::<Vec<Value>>()
    };
    let first = batch("s1", events(0..40));
    assert_eq!(
        app.post_json(&first, StatusCode::ACCEPTED).await["stored"],
        40
    );
    let retry = app.post_json(&first, StatusCode::ACCEPTED).await;
    assert_eq!(
        (retry["stored"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(40))
    );
    let overlapping = batch("s1", events(39..79));
    let answer = app.post_json(&overlapping, StatusCode::ACCEPTED).await;
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(39), Some(1))
    );
    assert_eq!(app.count("analytics_events").await, 79);
}

#[tokio::test]
async fn a_retried_large_batch_with_a_funnel_step_stores_nothing_twice() {
    let app = spawn_app(&[]).await;
    let t = now_ms();
    let mut events: Vec<Value> = (0..40)
        .map(|i| json!({"eventType": "page_view", "eventData": {"position": i}, "timestamp": t}))
        .collect();
    events.push(json!({"eventType": "funnel", "eventData": {"stage": "results_view", "action": "view"}, "timestamp": t}));
    let body = batch("s1", events);
    assert_eq!(
        app.post_json(&body, StatusCode::ACCEPTED).await,
        json!({"received": 41, "stored": 41, "duplicates": 0, "funnelSteps": 1})
    );
    assert_eq!(
        app.post_json(&body, StatusCode::ACCEPTED).await,
        json!({"received": 41, "stored": 0, "duplicates": 41, "funnelSteps": 0})
    );
    assert_eq!(app.count("analytics_events").await, 41);
    assert_eq!(app.count("conversion_funnels").await, 1);
}

#[tokio::test]
async fn a_nul_character_anywhere_is_a_400_naming_its_field_not_a_500() {
    let app = spawn_app(&[]).await;
    let with_nul = batch(
        "s1",
        vec![json!({"eventType": "page_view", "eventData": {"note": "a\u{0}b"}})],
    );
    let body = app.post_json(&with_nul, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"]["field"], "events[0].eventData.note");
    let body = app
        .post_json(
            &json!({"sessionId": "s\u{0}1", "eventType": "page_view"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["error"]["field"], "sessionId");
    for uri in ["/api/analytics/vitals", "/api/analytics/errors"] {
        app.post(
            uri,
            &[("content-type", "application/json")],
            json!({"sessionId": "s1", "message": "x\u{0}", "name": "LCP\u{0}", "value": 1})
                .to_string(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    // An escaped backslash before "u0000" is text, not a NUL.
    let text = batch(
        "s1",
        vec![json!({"eventType": "page_view", "eventData": {"path": "C:\\u0000"}})],
    );
    app.post_json(&text, StatusCode::ACCEPTED).await;
    assert_eq!(app.count("analytics_events").await, 1);
}

#[tokio::test]
async fn numbers_beyond_what_jsonb_stores_are_a_400_naming_event_data() {
    let app = spawn_app(&[]).await;
    for number in ["1e200000", "1e-200000", "0e-99999"] {
        let body = format!(
            r#"{{"sessionId": "s1", "events": [{{"eventType": "x", "eventData": {{"n": {number}}}}}]}}"#
        );
        let answer = app
            .post(
                "/api/analytics/events",
                &[("content-type", "application/json")],
                body,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], "events[0].eventData", "{number}");
    }
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn a_nul_is_found_even_where_the_body_cannot_be_read_as_a_tree() {
    let app = spawn_app(&[]).await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let cases = [
        (
            r#"{"sessionId": "s\u00001", "eventType": "x", "other": 1e400}"#.to_owned(),
            "sessionId",
        ),
        (
            format!(r#"{{"sessionId": "s1", "events": [{{"eventType": "x\u0000", "n": {deep}}}]}}"#),
            "events[0].eventType",
        ),
        (
            r#"{"sessionId": "s1", "events": [{"eventType": "x", "eventData": {"a": "\u0000", "n": 1e400}}]}"#.to_owned(),
            "events[0].eventData",
        ),
    ];
    for (body, field) in cases {
        let answer = app
            .post(
                "/api/analytics/events",
                &[("content-type", "application/json")],
                body,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field);
    }
    assert_eq!(app.count("analytics_events").await, 0);
}

#[tokio::test]
async fn the_size_limit_holds_for_event_data_as_stored_not_only_as_sent() {
    let app = spawn_app(&[]).await;
    // 7 bytes sent, 17,001 digits stored.
    let expands = r#"{"sessionId": "s1", "eventType": "x", "eventData": {"n": 1e17000}}"#;
    let answer = app
        .post(
            "/api/analytics/events",
            &[("content-type", "application/json")],
            expands,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(answer["error"]["field"], "eventData");

    let fits = r#"{"sessionId": "s1", "eventType": "x", "eventData": {"n": 1e5000}}"#;
    app.post(
        "/api/analytics/events",
        &[("content-type", "application/json")],
        fits,
        StatusCode::ACCEPTED,
    )
    .await;
    let stored: i32 = app
        .db
        .connect()
        .await
        .query_one(
            r#"SELECT length("eventData"::text) FROM "analytics_events""#,
            &[],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(i64::from(stored), 5001 + r#"{"n": }"#.len() as i64);
}

#[tokio::test]
async fn event_data_nested_deeper_than_the_limit_is_a_400() {
    let app = spawn_app(&[]).await;
    let depth = events::analytics::MAX_EVENT_DATA_DEPTH;
    let data = format!("{}1{}", r#"{"a":"#.repeat(depth + 1), "}".repeat(depth + 1));
    let answer = app
        .post(
            "/api/analytics/events",
            &[("content-type", "application/json")],
            format!(r#"{{"sessionId": "s1", "eventType": "x", "eventData": {data}}}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(answer["error"]["field"], "eventData");
}

#[tokio::test]
async fn a_compressed_body_is_a_415_not_read_as_text() {
    let app = spawn_app(&[]).await;
    for uri in [
        "/api/analytics/events",
        "/api/analytics/vitals",
        "/api/analytics/errors",
    ] {
        let answer = app
            .post(
                uri,
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                r#"{"sessionId": "s1", "eventType": "x"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )
            .await;
        assert_eq!(answer["error"]["code"], "unsupported_media_type");
    }
}
