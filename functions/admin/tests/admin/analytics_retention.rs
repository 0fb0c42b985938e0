//! `GET /api/admin/analytics/retention`: the cohort table, against answers
//! computed by hand.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::analytics_funnel::event;
use crate::{TestApp, spawn_app};

async fn cohort_member(app: &TestApp, user: &str, first_seen: &str) {
    app.client
        .execute(
            r#"INSERT INTO "user_cohorts" ("id", "userId", "cohortDate", "cohortWeek", "cohortMonth", "lastActiveAt", "updatedAt")
               VALUES ($1, $1, $2::text::timestamp, to_char($2::text::timestamp, 'IYYY-"W"IW'),
                       to_char($2::text::timestamp, 'YYYY-MM'), $2::text::timestamp, now())"#,
            &[&user, &first_seen],
        )
        .await
        .expect("insert cohort member");
}

async fn active(app: &TestApp, user: &str, at: &str) {
    event(
        app,
        &format!("session-{user}"),
        Some(user),
        "page_view",
        at,
        None,
    )
    .await;
}

/// (cohort start, size, [active per period])
fn table(answer: &Value) -> Vec<(String, i64, Vec<i64>)> {
    answer["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .map(|c| {
            (
                c["cohort"].as_str().expect("cohort").to_owned(),
                c["size"].as_i64().expect("size"),
                c["periods"]
                    .as_array()
                    .expect("periods")
                    .iter()
                    .map(|p| p["active"].as_i64().expect("active"))
                    .collect(),
            )
        })
        .collect()
}

/// Cohorts of 2026-11-02 (u1, u2) and 2026-11-03 (u3); u0 was first seen
/// before the range. u1 is active on 11-03, the second cohort's first day:
/// it counts in its own cohort's period 1 only.
async fn seed(app: &TestApp) {
    cohort_member(app, "u0", "2026-11-01 08:00:00").await;
    cohort_member(app, "u1", "2026-11-02 10:00:00").await;
    cohort_member(app, "u2", "2026-11-02 15:00:00").await;
    cohort_member(app, "u3", "2026-11-03 09:00:00").await;
    active(app, "u0", "2026-11-02 12:00:00").await;
    active(app, "u1", "2026-11-02 10:00:00").await;
    active(app, "u1", "2026-11-03 18:00:00").await;
    active(app, "u2", "2026-11-02 15:00:00").await;
    active(app, "u2", "2026-11-04 01:00:00").await;
    active(app, "u3", "2026-11-03 09:00:00").await;
    active(app, "u3", "2026-11-04 09:00:00").await;
    active(app, "u3", "2026-11-04 21:00:00").await;
    // After `to`: outside the table.
    active(app, "u3", "2026-11-05 09:00:00").await;
    active(app, "u1", "2026-11-10 09:00:00").await;
}

#[tokio::test]
async fn daily_cohorts_count_each_user_in_their_own_cohort_only() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/retention?from=2026-11-02&to=2026-11-05&period=day",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        table(&answer),
        vec![
            ("2026-11-02T00:00:00.000Z".to_owned(), 2, vec![2, 1, 1]),
            ("2026-11-03T00:00:00.000Z".to_owned(), 1, vec![1, 1]),
        ],
        "{answer}"
    );
    let first = &answer["cohorts"][0]["periods"];
    assert_eq!(
        first[1],
        json!({"period": 1, "active": 1, "percentage": 50.0})
    );
    assert_eq!(answer["period"], "day");
}

#[tokio::test]
async fn weekly_cohorts_start_on_monday() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    seed(&app).await;
    // 2026-11-02 is a Monday; asking from the Wednesday widens to it.
    let answer = app
        .expect(
            "GET",
            "/api/admin/analytics/retention?from=2026-11-04&to=2026-11-16&period=week",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(answer["from"], "2026-11-02T00:00:00.000Z");
    // u1, u2 and u3 are all of that week; only u1 returns in the next.
    assert_eq!(
        table(&answer),
        vec![("2026-11-02T00:00:00.000Z".to_owned(), 3, vec![3, 1])]
    );
}

#[tokio::test]
async fn bad_retention_parameters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for (query, field) in [
        ("from=2026-11-02&to=2026-11-05&period=month", "period"),
        ("from=2026-11-02&period=day", "to"),
        ("from=2026-11-02&to=2027-06-01&period=day", "to"),
        ("from=2026-11-02T25:00:00Z&to=2026-11-05", "from"),
    ] {
        let body = app
            .expect(
                "GET",
                &format!("/api/admin/analytics/retention?{query}"),
                Some(&token),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}
