//! `/api/admin/users`: grants, changes and revocations, within the acting
//! admin's own permissions, never leaving the site without a super_admin.

use axum::http::StatusCode;
use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn a_super_admin_grants_admin_to_an_existing_user_by_email() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.user("ada").await;
    let granted = app
        .expect(
            "POST",
            "/api/admin/users",
            Some(&token),
            Some(json!({"email": "ADA@example.com", "role": "moderator",
                        "permissions": [{"resource": "errors", "actions": ["read", "update"]}]})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(granted["userId"], "ada");
    assert_eq!(granted["role"], "moderator");
    assert_eq!(
        granted["effectivePermissions"]["errors"],
        json!(["read", "update"])
    );
    let fetched = app
        .expect(
            "GET",
            "/api/admin/users/ada",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(fetched["permissions"][0]["resource"], "errors");
}

#[tokio::test]
async fn granting_to_an_unknown_user_is_a_404_and_is_recorded_as_refused() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.expect(
        "POST",
        "/api/admin/users",
        Some(&token),
        Some(json!({"userId": "ghost", "role": "admin"})),
        StatusCode::NOT_FOUND,
    )
    .await;
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["success"], false);
}

#[tokio::test]
async fn invalid_grants_name_the_field() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.user("ada").await;
    for (body, field) in [
        (json!({"userId": "ada", "role": "emperor"}), "role"),
        (
            json!({"userId": "ada", "role": "admin", "permissions": [{"resource": "castles", "actions": []}]}),
            "permissions[0].resource",
        ),
        (json!({"userId": "ada"}), "role"),
        (
            json!({"userId": "ada", "email": "ada@example.com", "role": "admin"}),
            "userId",
        ),
        (json!({"userId": 7, "role": "admin"}), "userId"),
    ] {
        let answer = app
            .expect(
                "POST",
                "/api/admin/users",
                Some(&token),
                Some(body.clone()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn nobody_grants_more_than_they_hold() {
    let app = spawn_app().await;
    // An admin who may manage users, but holds only admin's other grants.
    let token = app
        .admin(
            "lead",
            "admin",
            Some(json!([{"resource": "users", "actions": ["manage"]}])),
        )
        .await;
    app.user("ada").await;
    let refused = app
        .expect(
            "POST",
            "/api/admin/users",
            Some(&token),
            Some(json!({"userId": "ada", "role": "super_admin"})),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("super_admin"),
        "{refused}"
    );
    let beyond = app
        .expect("POST", "/api/admin/users", Some(&token),
            Some(json!({"userId": "ada", "role": "admin", "permissions": [{"resource": "system", "actions": ["update"]}]})),
            StatusCode::FORBIDDEN)
        .await;
    assert!(
        beyond["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("system:update"),
        "{beyond}"
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'ada'"#)
            .await,
        0
    );
    // Within their own grants it works.
    app.expect(
        "POST",
        "/api/admin/users",
        Some(&token),
        Some(json!({"userId": "ada", "role": "moderator"})),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn an_admin_cannot_change_or_revoke_someone_who_holds_more() {
    let app = spawn_app().await;
    let token = app
        .admin(
            "lead",
            "admin",
            Some(json!([{"resource": "users", "actions": ["manage"]}])),
        )
        .await;
    app.admin("root", "super_admin", None).await;
    app.admin("root2", "super_admin", None).await;
    app.expect(
        "PATCH",
        "/api/admin/users/root",
        Some(&token),
        Some(json!({"role": "moderator"})),
        StatusCode::FORBIDDEN,
    )
    .await;
    app.expect(
        "DELETE",
        "/api/admin/users/root",
        Some(&token),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "role" = 'super_admin'"#)
            .await,
        2
    );
}

#[tokio::test]
async fn the_last_super_admin_cannot_be_demoted_or_revoked() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.expect(
        "PATCH",
        "/api/admin/users/root",
        Some(&token),
        Some(json!({"role": "admin"})),
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        "PATCH",
        "/api/admin/users/root",
        Some(&token),
        Some(json!({"permissions": [{"resource": "*", "actions": ["read"]}]})),
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        "DELETE",
        "/api/admin/users/root",
        Some(&token),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(app.count(r#"SELECT count(*) FROM "admin_users" WHERE "role" = 'super_admin' AND "permissions" IS NULL"#).await, 1);
}

#[tokio::test]
async fn two_super_admins_demoting_each_other_at_once_leave_one() {
    let app = spawn_app().await;
    let a = app.admin("a", "super_admin", None).await;
    let b = app.admin("b", "super_admin", None).await;
    let (first, second) = tokio::join!(
        app.send("DELETE", "/api/admin/users/b", Some(&a), None),
        app.send("DELETE", "/api/admin/users/a", Some(&b), None),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    // One revocation wins; the other finds its target is the last one, or
    // finds itself no longer an admin.
    assert_eq!(statuses[0], StatusCode::NO_CONTENT, "{statuses:?}");
    assert!(
        statuses[1] == StatusCode::CONFLICT || statuses[1] == StatusCode::FORBIDDEN,
        "{statuses:?}"
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "role" = 'super_admin'"#)
            .await,
        1
    );
}

#[tokio::test]
async fn revoking_keeps_the_user_and_removes_the_grant() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.admin("mod", "moderator", None).await;
    app.expect(
        "DELETE",
        "/api/admin/users/mod",
        Some(&token),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let fetched = app
        .expect(
            "GET",
            "/api/admin/users/mod",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(fetched["role"], "user");
    app.expect(
        "DELETE",
        "/api/admin/users/mod",
        Some(&token),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn the_list_searches_and_pages_admins_by_email() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for id in ["ann", "bob", "cat", "dan"] {
        app.admin(id, "moderator", None).await;
    }
    app.user("eve").await;
    let mut seen = Vec::new();
    let mut uri = "/api/admin/users?limit=2".to_owned();
    loop {
        let page = app
            .expect("GET", &uri, Some(&token), None, StatusCode::OK)
            .await;
        seen.extend(
            page["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| u["userId"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => uri = format!("/api/admin/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["ann", "bob", "cat", "dan", "root"]);
    let found = app
        .expect(
            "GET",
            "/api/admin/users?scope=all&search=eve",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(found["users"][0]["userId"], "eve");
    assert_eq!(found["users"][0]["role"], "user");
    let none = app
        .expect(
            "GET",
            "/api/admin/users?search=%25",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        none["users"].as_array().expect("users").len(),
        0,
        "% is literal"
    );
}

#[tokio::test]
async fn a_signed_in_user_without_an_admin_grant_is_forbidden() {
    let app = spawn_app().await;
    app.user("visitor").await;
    let token = app.token("visitor");
    app.expect(
        "GET",
        "/api/admin/errors",
        Some(&token),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_restricted_super_admin_does_not_count_as_the_last_one() {
    let app = spawn_app().await;
    app.admin("a", "super_admin", None).await;
    let b = app.admin("b", "super_admin", None).await;
    // b strips a of everything while keeping the label...
    app.expect(
        "PATCH",
        "/api/admin/users/a",
        Some(&b),
        Some(json!({"permissions": [{"resource": "*", "actions": []}]})),
        StatusCode::OK,
    )
    .await;
    // ...and is then the last one who can manage anything.
    app.expect(
        "DELETE",
        "/api/admin/users/b",
        Some(&b),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        "PATCH",
        "/api/admin/users/b",
        Some(&b),
        Some(json!({"role": "admin"})),
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn only_an_unrestricted_super_admin_grants_the_super_admin_role() {
    let app = spawn_app().await;
    app.admin("root", "super_admin", None).await;
    let lead = app
        .admin(
            "lead",
            "admin",
            Some(json!([{"resource": "users", "actions": ["manage"]}])),
        )
        .await;
    app.user("ada").await;
    // An empty super_admin would otherwise let the real one revoke itself.
    app.expect("POST", "/api/admin/users", Some(&lead),
        Some(json!({"userId": "ada", "role": "super_admin", "permissions": [{"resource": "*", "actions": []}]})),
        StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn concurrent_change_and_revocation_of_one_admin_never_audit_a_change_that_did_not_happen() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    for round in 0..10 {
        let target = format!("t{round}");
        app.admin(&target, "moderator", None).await;
        let uri = format!("/api/admin/users/{target}");
        let (patch, delete) = if round % 2 == 0 {
            let (delete, patch) = tokio::join!(
                app.send("DELETE", &uri, Some(&token), None),
                app.send("PATCH", &uri, Some(&token), Some(json!({"role": "admin"}))),
            );
            (patch, delete)
        } else {
            tokio::join!(
                app.send("PATCH", &uri, Some(&token), Some(json!({"role": "admin"}))),
                app.send("DELETE", &uri, Some(&token), None),
            )
        };
        assert_eq!(delete.status, StatusCode::NO_CONTENT, "round {round}");
        assert!(
            patch.status == StatusCode::OK || patch.status == StatusCode::NOT_FOUND,
            "round {round}: {}",
            patch.status
        );
        if patch.status == StatusCode::OK {
            assert_eq!(
                patch.json()["role"],
                "admin",
                "round {round}: the answer is the change made"
            );
        }
    }
    for row in app
        .audit_rows()
        .await
        .iter()
        .filter(|r| r["success"] == true && r["action"] == "update")
    {
        assert_eq!(row["changes"]["after"]["role"], "admin", "{row}");
    }
}

#[tokio::test]
async fn nul_characters_and_impossible_dates_are_400s_not_500s() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "fp", "error", "boom").await;
    let far_cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"["-5000-01-01T00:00:00","x"]"#)
    };
    for (method, uri, body, field) in [
        (
            "GET",
            "/api/admin/users?search=%00".to_owned(),
            None,
            "search",
        ),
        ("GET", "/api/admin/users/a%00b".to_owned(), None, "path"),
        (
            "GET",
            "/api/admin/audit?userId=%00".to_owned(),
            None,
            "userId",
        ),
        ("GET", "/api/admin/errors?q=%00".to_owned(), None, "q"),
        (
            "GET",
            "/api/admin/audit?from=-5000-01-01T00:00:00Z".to_owned(),
            None,
            "from",
        ),
        (
            "GET",
            format!("/api/admin/audit?cursor={far_cursor}"),
            None,
            "cursor",
        ),
        (
            "GET",
            format!("/api/admin/errors?cursor={far_cursor}"),
            None,
            "cursor",
        ),
        (
            "PATCH",
            "/api/admin/errors/g1".to_owned(),
            Some(json!({"resolved": true, "notes": "a\u{0}b"})),
            "notes",
        ),
        (
            "POST",
            "/api/admin/users".to_owned(),
            Some(json!({"email": "a\u{0}@b", "role": "admin"})),
            "email",
        ),
    ] {
        let answer = app.send(method, &uri, Some(&token), body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&answer.bytes)
        );
        assert_eq!(answer.json()["error"]["field"], field, "{method} {uri}");
    }
}

#[tokio::test]
async fn a_mutation_sent_as_a_form_or_text_is_refused() {
    use axum::{body::Body, http::Request};
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.user("ada").await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let answer = app
            .raw(
                Request::post("/api/admin/users")
                    .header("cookie", format!("next-auth.session-token={token}"))
                    .header("content-type", content_type)
                    .body(Body::from(r#"{"userId":"ada","role":"admin"}"#))
                    .expect("request"),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'ada'"#)
            .await,
        0
    );
}
