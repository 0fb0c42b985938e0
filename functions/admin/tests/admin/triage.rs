//! `/api/admin/errors`: triage of the intake's error groups.

use axum::http::StatusCode;
use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn groups_are_listed_by_severity_resolution_and_text() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "fp1", "critical", "Payment widget crashed")
        .await;
    app.error_group("g2", "fp2", "warning", "Slow image").await;
    app.client
        .execute(
            r#"UPDATE "error_logs" SET "resolved" = true WHERE "id" = 'g2'"#,
            &[],
        )
        .await
        .expect("resolve");
    let critical = app
        .expect(
            "GET",
            "/api/admin/errors?severity=critical",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(critical["errors"].as_array().expect("errors").len(), 1);
    assert_eq!(critical["errors"][0]["id"], "g1");
    let resolved = app
        .expect(
            "GET",
            "/api/admin/errors?resolved=true",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(resolved["errors"][0]["id"], "g2");
    let text = app
        .expect(
            "GET",
            "/api/admin/errors?q=payment",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(text["errors"][0]["id"], "g1");
    let body = app
        .expect(
            "GET",
            "/api/admin/errors?severity=apocalyptic",
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["error"]["field"], "severity");
}

#[tokio::test]
async fn a_group_comes_with_its_recent_occurrences() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "shared", "error", "boom").await;
    app.error_group("old1", "shared", "error", "boom").await;
    app.error_group("other", "different", "error", "bang").await;
    let detail = app
        .expect(
            "GET",
            "/api/admin/errors/g1",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(detail["id"], "g1");
    let occurrences: Vec<&str> = detail["recentOccurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(occurrences, ["old1"]);
    app.expect(
        "GET",
        "/api/admin/errors/nope",
        Some(&token),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn resolving_records_who_and_when_and_reopening_clears_them() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "fp", "error", "boom").await;
    let resolved = app
        .expect(
            "PATCH",
            "/api/admin/errors/g1",
            Some(&token),
            Some(json!({"resolved": true, "notes": "fixed in 1.2"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(resolved["resolved"], true);
    assert_eq!(resolved["resolvedBy"], "root@example.com");
    assert!(resolved["resolvedAt"].is_string());
    assert!(
        resolved["notes"]
            .as_str()
            .expect("notes")
            .ends_with("fixed in 1.2")
    );
    let reopened = app
        .expect(
            "PATCH",
            "/api/admin/errors/g1",
            Some(&token),
            Some(json!({"resolved": false, "notes": "back again"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(reopened["resolved"], false);
    assert!(reopened["resolvedBy"].is_null() && reopened["resolvedAt"].is_null());
    let notes = reopened["notes"].as_str().expect("notes");
    assert!(
        notes.contains("fixed in 1.2") && notes.contains("back again"),
        "notes are appended: {notes}"
    );
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["changes"]["before"]["resolved"], true);
    assert_eq!(rows[1]["changes"]["after"]["resolved"], false);
}

#[tokio::test]
async fn triage_of_a_missing_group_is_a_404_recorded_as_refused() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.expect(
        "PATCH",
        "/api/admin/errors/nope",
        Some(&token),
        Some(json!({"resolved": true})),
        StatusCode::NOT_FOUND,
    )
    .await;
    let rows = app.audit_rows().await;
    assert_eq!((rows.len(), &rows[0]["success"]), (1, &json!(false)));
}

#[tokio::test]
async fn notes_longer_than_the_limit_are_refused() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "fp", "error", "boom").await;
    let long = "x".repeat(admin::triage::MAX_NOTES_CHARS + 1);
    let body = app
        .expect(
            "PATCH",
            "/api/admin/errors/g1",
            Some(&token),
            Some(json!({"resolved": true, "notes": long})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["error"]["field"], "notes");
}
