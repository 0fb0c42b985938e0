//! The audit trail: one row per change in the change's transaction, refused
//! attempts recorded, rows append-only, and the hash chain verified.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app};

async fn super_admin(app: &TestApp) -> String {
    app.admin("root", "super_admin", None).await
}

/// Every mutating route, with a request that succeeds on a fresh target.
async fn mutations(
    app: &TestApp,
    n: usize,
) -> Vec<(&'static str, String, Option<Value>, &'static str, String)> {
    let grantee = format!("grantee_{n}");
    let changed = format!("changed_{n}");
    let revoked = format!("revoked_{n}");
    let group = format!("group_{n}");
    app.user(&grantee).await;
    app.admin(&changed, "moderator", None).await;
    app.admin(&revoked, "moderator", None).await;
    app.error_group(&group, &format!("fp_{n}"), "error", "boom")
        .await;
    vec![
        (
            "POST",
            "/api/admin/users".into(),
            Some(json!({"userId": grantee, "role": "moderator"})),
            "users",
            grantee,
        ),
        (
            "PATCH",
            format!("/api/admin/users/{changed}"),
            Some(json!({"role": "admin"})),
            "users",
            changed,
        ),
        (
            "DELETE",
            format!("/api/admin/users/{revoked}"),
            None,
            "users",
            revoked,
        ),
        (
            "PATCH",
            format!("/api/admin/errors/{group}"),
            Some(json!({"resolved": true})),
            "errors",
            group,
        ),
    ]
}

#[tokio::test]
async fn every_mutating_route_writes_exactly_one_audit_row() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    for (method, uri, body, resource, target) in mutations(&app, 1).await {
        let before = app.audit_rows().await.len();
        let answer = app.send(method, &uri, Some(&token), body).await;
        assert!(
            answer.status.is_success(),
            "{method} {uri}: {}",
            answer.status
        );
        let rows = app.audit_rows().await;
        assert_eq!(rows.len(), before + 1, "{method} {uri}");
        let row = rows.last().expect("row");
        assert_eq!(row["success"], true);
        assert_eq!(row["resource"], resource);
        assert_eq!(row["resourceId"], target.as_str());
        assert_eq!(row["userId"], "root");
        assert_eq!(row["userAgent"], "admin-tests/1.0");
        assert!(row["requestId"].is_string(), "{row}");
        assert!(row["changes"].get("before").is_some() && row["changes"].get("after").is_some());
    }
}

#[tokio::test]
async fn the_audit_row_records_before_and_after() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.admin("mod", "moderator", None).await;
    app.expect(
        "PATCH",
        "/api/admin/users/mod",
        Some(&token),
        Some(json!({"role": "admin"})),
        StatusCode::OK,
    )
    .await;
    let row = app.audit_rows().await.pop().expect("row");
    assert_eq!(row["action"], "update");
    assert_eq!(row["changes"]["before"]["role"], "moderator");
    assert_eq!(row["changes"]["after"]["role"], "admin");
}

#[tokio::test]
async fn a_failed_mutation_keeps_neither_change_nor_success_row_only_the_refusal() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.error_group("g1", "fp", "error", "boom").await;
    let body = app
        .expect(
            "PATCH",
            "/api/admin/errors/g1",
            Some(&token),
            Some(json!({"resolved": "yes"})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["error"]["field"], "resolved");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "error_logs" WHERE "resolved""#)
            .await,
        0
    );
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["success"], false);
    assert_eq!(rows[0]["resourceId"], "g1");
    assert!(
        rows[0]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("resolved")
    );
}

#[tokio::test]
async fn when_the_audit_row_cannot_be_written_the_change_is_rolled_back() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    app.user("grantee").await;
    app.error_group("g1", "fp", "error", "boom").await;
    // Makes every successful audit insert fail: the change must go with it.
    app.client
        .batch_execute(
            r#"CREATE FUNCTION fail_success() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW."success" THEN RAISE EXCEPTION 'audit store down'; END IF; RETURN NEW; END $$;
               CREATE TRIGGER fail_success BEFORE INSERT ON "audit_logs" FOR EACH ROW EXECUTE FUNCTION fail_success();"#,
        )
        .await
        .expect("trigger");
    app.expect(
        "PATCH",
        "/api/admin/errors/g1",
        Some(&token),
        Some(json!({"resolved": true})),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "error_logs" WHERE "resolved""#)
            .await,
        0
    );
    app.expect(
        "POST",
        "/api/admin/users",
        Some(&token),
        Some(json!({"userId": "grantee", "role": "admin"})),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'grantee'"#)
            .await,
        0
    );
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_deleted_or_truncated() {
    let app = spawn_app().await;
    let token = app.admin("mod", "moderator", None).await;
    app.expect(
        "GET",
        "/api/admin/audit",
        Some(&token),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    for sql in [
        r#"UPDATE "audit_logs" SET "success" = true"#,
        r#"DELETE FROM "audit_logs""#,
        r#"TRUNCATE "audit_logs""#,
        r#"DELETE FROM "audit_trail"."chain""#,
        r#"UPDATE "audit_trail"."chain" SET "hash" = 'x'"#,
    ] {
        let error = app.client.batch_execute(sql).await.expect_err(sql);
        let message = error
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(message.contains("append-only"), "{sql}: {error:?}");
    }
    assert_eq!(app.count(r#"SELECT count(*) FROM "audit_logs""#).await, 1);
}

/// Writes `n` audit rows the way the Prisma application would: plain SQL.
async fn prisma_rows(client: &tokio_postgres::Client, prefix: &str, n: usize) {
    for i in 0..n {
        client
            .execute(
                r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "changes")
                   VALUES ($1, 'app', 'app@example.com', 'admin', 'update', 'deals', $2, $3)"#,
                &[&format!("{prefix}-{i}"), &format!("deal-{i}"), &json!({"after": {"price": i}})],
            )
            .await
            .expect("insert audit row");
    }
}

async fn verify(app: &TestApp, token: &str) -> Value {
    app.expect(
        "GET",
        "/api/admin/audit/verify",
        Some(token),
        None,
        StatusCode::OK,
    )
    .await
}

fn kinds(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn an_untouched_trail_verifies_intact() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 5).await;
    let report = verify(&app, &token).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["links"], 5);
    assert!(report["headHash"].as_str().is_some_and(|h| h.len() == 64));
}

/// Runs `sql` with triggers off, as a superuser bypassing the guards would.
async fn behind_the_triggers(app: &TestApp, sql: &str) {
    app.client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;"
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn verification_detects_an_altered_row() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 5).await;
    behind_the_triggers(
        &app,
        r#"UPDATE "audit_logs" SET "resourceId" = 'deal-99' WHERE "id" = 'row-2'"#,
    )
    .await;
    let report = verify(&app, &token).await;
    assert_eq!(report["intact"], false);
    assert_eq!(kinds(&report), ["altered"]);
    assert_eq!(report["problems"][0]["audit_id"], "row-2");
}

#[tokio::test]
async fn verification_detects_a_deleted_row() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 5).await;
    behind_the_triggers(&app, r#"DELETE FROM "audit_logs" WHERE "id" = 'row-1'"#).await;
    assert_eq!(kinds(&verify(&app, &token).await), ["missing"]);
}

#[tokio::test]
async fn verification_detects_a_row_deleted_with_its_link() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 5).await;
    behind_the_triggers(
        &app,
        r#"DELETE FROM "audit_logs" WHERE "id" = 'row-1'; DELETE FROM "audit_trail"."chain" WHERE "auditId" = 'row-1'"#,
    )
    .await;
    let report = verify(&app, &token).await;
    assert_eq!(kinds(&report), ["broken_link"]);
    assert_eq!(report["problems"][0]["audit_id"], "row-2");
}

#[tokio::test]
async fn verification_detects_a_row_inserted_out_of_order() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 5).await;
    // Back-dated and written with the chain trigger off: no link.
    behind_the_triggers(
        &app,
        r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
           VALUES ('forged', 'app', 'app@example.com', 'admin', 'delete', 'deals', 'deal-1', now() - interval '1 day')"#,
    )
    .await;
    assert_eq!(kinds(&verify(&app, &token).await), ["unchained"]);
}

#[tokio::test]
async fn verification_detects_a_forged_link_spliced_into_the_middle() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "early", 2).await;
    // A rolled-back audit insert leaves a gap in the link numbers.
    app.client
        .batch_execute(
            r#"BEGIN; INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
               VALUES ('rolled-back', 'app', 'a@b', 'admin', 'update', 'deals', 'd'); ROLLBACK;"#,
        )
        .await
        .expect("rolled back insert");
    prisma_rows(&app.client, "late", 2).await;
    // A correctly hashed link for a forged row, put in the gap after early-1;
    // the one-successor constraint has to go first.
    behind_the_triggers(
        &app,
        r#"ALTER TABLE "audit_trail"."chain" DROP CONSTRAINT "chain_prevHash_key";
           INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
             VALUES ('forged', 'app', 'app@example.com', 'admin', 'delete', 'deals', 'deal-1');
           INSERT INTO "audit_trail"."chain" ("seq", "auditId", "prevHash", "hash", "chainedAt") OVERRIDING SYSTEM VALUE
             SELECT c."seq" + 1, 'forged', c."hash", "audit_trail"."link"(c."hash", to_jsonb(a), now(), false), now()
             FROM "audit_trail"."chain" c, "audit_logs" a WHERE c."auditId" = 'early-1' AND a."id" = 'forged'"#,
    )
    .await;
    let report = verify(&app, &token).await;
    assert_eq!(kinds(&report), ["broken_link"], "{report}");
    assert_eq!(report["problems"][0]["audit_id"], "late-0");
}

#[tokio::test]
async fn rows_written_concurrently_from_many_connections_verify_intact() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = app.db.connect().await;
        writers.push(tokio::spawn(async move {
            prisma_rows(&client, &format!("w{w}"), 25).await;
        }));
    }
    // And the API itself, at the same time.
    for i in 0..10 {
        app.send("GET", "/api/admin/audit", Some(&format!("bogus-{i}")), None)
            .await;
        app.error_group(&format!("g{i}"), &format!("fp{i}"), "error", "boom")
            .await;
        app.expect(
            "PATCH",
            &format!("/api/admin/errors/g{i}"),
            Some(&token),
            Some(json!({"resolved": true})),
            StatusCode::OK,
        )
        .await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let report = verify(&app, &token).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["links"], 8 * 25 + 10);
}

#[tokio::test]
async fn the_trail_filters_by_user_resource_action_and_success_with_cursor_paging() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 7).await;
    let mod_token = app.admin("mod", "moderator", None).await;
    app.expect(
        "GET",
        "/api/admin/audit",
        Some(&mod_token),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;

    let refused = app
        .expect(
            "GET",
            "/api/admin/audit?success=false&userId=mod",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(refused["entries"].as_array().expect("entries").len(), 1);
    assert_eq!(refused["entries"][0]["resource"], "audit_logs");

    let mut seen = Vec::new();
    let mut uri = "/api/admin/audit?resource=deals&action=update&limit=3".to_owned();
    loop {
        let page = app
            .expect("GET", &uri, Some(&token), None, StatusCode::OK)
            .await;
        for entry in page["entries"].as_array().expect("entries") {
            seen.push(entry["id"].as_str().expect("id").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                uri =
                    format!("/api/admin/audit?resource=deals&action=update&limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("row-{i}")).collect();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each row once");
}

#[tokio::test]
async fn bad_trail_filters_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    for (query, field) in [
        ("success=maybe", "success"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("cursor=forged", "cursor"),
        ("colour=red", "."),
    ] {
        let body = app
            .expect(
                "GET",
                &format!("/api/admin/audit?{query}"),
                Some(&token),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        if field != "." {
            assert_eq!(body["error"]["field"], field, "{query}: {body}");
        }
    }
}

#[tokio::test]
async fn the_csv_export_holds_the_filtered_rows() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 3).await;
    let answer = app
        .send(
            "GET",
            "/api/admin/audit/export?resource=deals",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let mut reader = csv::Reader::from_reader(answer.bytes.as_slice());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(&headers[0], "id");
    let ids: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[0].to_owned())
        .collect();
    assert_eq!(ids, ["row-2", "row-1", "row-0"]);
}

#[tokio::test]
async fn a_large_export_continues_with_its_cursor() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    let total = admin::trail::EXPORT_PAGE_ROWS + 3;
    app.client
        .execute(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
               SELECT 'bulk-' || lpad(n::text, 6, '0'), 'app', 'app@example.com', 'admin', 'update', 'deals', 'd',
                      timestamp '2025-01-01' + n * interval '1 second'
               FROM generate_series(1, $1::bigint) n"#,
            &[&total],
        )
        .await
        .expect("bulk rows");
    let first = app
        .send(
            "GET",
            "/api/admin/audit/export?resource=deals",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let cursor = first
        .headers
        .get("x-next-cursor")
        .expect("more to come")
        .to_str()
        .expect("cursor")
        .to_owned();
    let first_ids: Vec<String> = csv::Reader::from_reader(first.bytes.as_slice())
        .records()
        .map(|r| r.expect("record")[0].to_owned())
        .collect();
    let second = app
        .send(
            "GET",
            &format!("/api/admin/audit/export?resource=deals&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert!(second.headers.get("x-next-cursor").is_none());
    let second_ids: Vec<String> = csv::Reader::from_reader(second.bytes.as_slice())
        .records()
        .map(|r| r.expect("record")[0].to_owned())
        .collect();
    assert_eq!(first_ids.len() as i64, admin::trail::EXPORT_PAGE_ROWS);
    assert_eq!(second_ids, ["bulk-000003", "bulk-000002", "bulk-000001"]);
}

#[tokio::test]
async fn verification_detects_a_back_dated_row_written_through_the_triggers() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    prisma_rows(&app.client, "row", 3).await;
    app.client
        .batch_execute(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
               VALUES ('back-dated', 'app', 'app@example.com', 'admin', 'delete', 'deals', 'deal-1', now() - interval '300 days')"#,
        )
        .await
        .expect("insert");
    let report = verify(&app, &token).await;
    assert_eq!(kinds(&report), ["out_of_order"], "{report}");
    assert_eq!(report["problems"][0]["audit_id"], "back-dated");
}

#[tokio::test]
async fn a_repeatable_read_writer_behind_the_head_gets_a_retryable_error_not_a_fork() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    let stale = app.db.connect().await;
    stale
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .expect("snapshot");
    prisma_rows(&app.client, "committed", 1).await;
    let error = stale
        .batch_execute(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
               VALUES ('late', 'app', 'a@b', 'admin', 'update', 'deals', 'd')"#,
        )
        .await
        .expect_err("stale head");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)
    );
    stale.batch_execute("ROLLBACK").await.expect("rollback");
    // Retried, it goes in.
    prisma_rows(&stale, "late", 1).await;
    let report = verify(&app, &token).await;
    assert_eq!(
        (report["intact"].clone(), report["links"].clone()),
        (json!(true), json!(2)),
        "{report}"
    );
}

#[tokio::test]
async fn an_export_stays_under_lambdas_response_limit_once_json_escaped() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    // Quote-heavy rows: CSV doubles each quote, the Lambda response escapes it again.
    app.client
        .execute(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "changes")
               SELECT 'big-' || n, 'app', 'app@example.com', 'admin', 'update', 'deals', 'd',
                      jsonb_build_object('after', repeat('"', 20000))
               FROM generate_series(1, 300) n"#,
            &[],
        )
        .await
        .expect("big rows");
    let answer = app
        .send("GET", "/api/admin/audit/export", Some(&token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers.get("x-next-cursor").is_some(),
        "300 such rows cannot fit one response"
    );
    let as_lambda_body =
        serde_json::to_string(&String::from_utf8(answer.bytes.clone()).expect("utf-8"))
            .expect("json");
    assert!(
        as_lambda_body.len() < 6_000_000,
        "{} bytes",
        as_lambda_body.len()
    );
}
