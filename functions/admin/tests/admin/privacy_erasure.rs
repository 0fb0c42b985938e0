//! `POST /api/admin/privacy/erasure` and the `erase` command: a visitor's
//! rows leave every table, in one transaction, audited without the
//! visitor's identifiers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use admin::App;
use testkit::TestDatabase;

use crate::{TestApp, fixture_secret};

const ERASURE: &str = "/api/admin/privacy/erasure";

/// A test key of the audit trail's pseudonyms (32 bytes).
const PSEUDONYM_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The function as `spawn_app` builds it, with `settings` besides the
/// session secret.
async fn spawn_with(settings: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::migrated().await;
    let secret = fixture_secret();
    let mut env = vec![("NEXTAUTH_SECRET", secret.as_str())];
    env.extend_from_slice(settings);
    let function = App::build(&db.env(&env)).expect("the function");
    let client = db.connect().await;
    TestApp {
        db,
        function,
        client,
    }
}

/// The function with a pseudonym key, as deployed.
async fn spawn_app() -> TestApp {
    spawn_with(&[("PRIVACY_PSEUDONYM_KEY", PSEUDONYM_KEY)]).await
}

/// A visitor as the intake and the jobs would have recorded them: two
/// sessions, the first begun before they signed in.
struct Visitor {
    user_id: &'static str,
    sessions: [&'static str; 2],
    user_agent: &'static str,
    ip_address: &'static str,
    /// Their order number, as a conversion's id.
    order: &'static str,
}

impl Visitor {
    /// Every string that names them.
    fn identifiers(&self) -> Vec<String> {
        vec![
            self.user_id.to_owned(),
            self.sessions[0].to_owned(),
            self.sessions[1].to_owned(),
            self.user_agent.to_owned(),
            self.ip_address.to_owned(),
            self.order.to_owned(),
        ]
    }
}

const ERASED: Visitor = Visitor {
    user_id: "visitor-erase-me",
    sessions: ["sess-erase-me-1", "sess-erase-me-2"],
    user_agent: "EraseMeBrowser/1.0",
    ip_address: "203.0.113.99",
    order: "order-erase-me",
};

const KEPT: Visitor = Visitor {
    user_id: "visitor-keep",
    sessions: ["sess-keep-1", "sess-keep-2"],
    user_agent: "KeepBrowser/1.0",
    ip_address: "203.0.113.7",
    order: "order-keep",
};

async fn exec(app: &TestApp, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) {
    app.client
        .execute(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `visitor`'s rows in every table that can hold a visitor, written with
/// the columns the events function and the jobs write. `shared_group` is
/// an error group of `count` 5 that they reported first.
async fn record(app: &TestApp, visitor: &Visitor, flag: &str, shared_group: &str) {
    let user = visitor.user_id;
    let [first, second] = visitor.sessions;
    let (agent, ip) = (visitor.user_agent, visitor.ip_address);
    app.user(user).await;
    let events = r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url",
                        "referrer", "userAgent", "ipAddress", "timestamp")
                    VALUES ($1, $2, $3, 'page_view', $4, $5, 'https://search.example/', $6, $7, now())"#;
    let data = json!({"path": "/deals", "visitor": user});
    for (n, (user_id, session)) in [(None, first), (Some(user), first), (Some(user), second)]
        .into_iter()
        .enumerate()
    {
        let id = format!("{user}-event-{n}");
        let url = format!("https://deals.example/?s={session}");
        exec(
            app,
            events,
            &[&id, &user_id, &session, &data, &url, &agent, &ip],
        )
        .await;
    }
    let funnel = r#"INSERT INTO "conversion_funnels" ("id", "sessionId", "userId", "stage", "action", "metadata", "duration", "timestamp")
                    VALUES ($1, $2, $3, 'search', 'submit', $4, 1200, now())"#;
    for (n, (user_id, session)) in [(None, first), (Some(user), second)]
        .into_iter()
        .enumerate()
    {
        let id = format!("{user}-funnel-{n}");
        exec(
            app,
            funnel,
            &[&id, &session, &user_id, &json!({"by": user})],
        )
        .await;
    }
    exec(
        app,
        r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "userId", "sessionId",
               "deviceType", "browser", "os", "timestamp")
           VALUES ($1, 'LCP', 2100, 'good', $2, NULL, $3, 'desktop', $4, 'Linux', now())"#,
        &[
            &format!("{user}-vital"),
            &format!("https://deals.example/?s={first}"),
            &first,
            &agent,
        ],
    )
    .await;
    let group = r#"INSERT INTO "error_logs" ("id", "message", "url", "userId", "sessionId", "userAgent", "browser",
                       "os", "severity", "fingerprint", "count", "timestamp")
                   VALUES ($1, 'TypeError: x is undefined', 'https://deals.example/checkout', $2, $3, $4,
                       'Firefox', 'Linux', 'error', $1, $5, now())"#;
    let own_group = format!("{user}-group");
    exec(app, group, &[&own_group, &user, &first, &agent, &1_i32]).await;
    exec(app, group, &[&shared_group, &user, &second, &agent, &5_i32]).await;
    for (n, group) in [own_group.as_str(), shared_group].into_iter().enumerate() {
        exec(
            app,
            r#"INSERT INTO "bundle"."sentry_events" ("eventId", "projectId", "errorLogId", "release", "environment")
               VALUES (gen_random_uuid(), $1, $2, 'web@1.2.3', 'production')"#,
            &[&i64::try_from(n).expect("small"), &group],
        )
        .await;
    }
    let participation = format!("{user}-participation");
    exec(
        app,
        r#"INSERT INTO "experiment_participations" ("id", "flagId", "userId", "sessionId", "variant", "converted",
               "convertedAt", "conversionValue")
           VALUES ($1, $2, $3, $4, 'treatment', true, now(), 420)"#,
        &[&participation, &flag, &user, &first],
    )
    .await;
    exec(
        app,
        r#"INSERT INTO "bundle"."experiment_conversions" ("flagId", "conversionId", "participationId", "value")
           VALUES ($1, $2, $3, 420)"#,
        &[&flag, &visitor.order, &participation],
    )
    .await;
    exec(
        app,
        r#"INSERT INTO "user_cohorts" ("id", "userId", "cohortDate", "cohortWeek", "cohortMonth", "lastActiveAt",
               "totalSessions", "updatedAt")
           VALUES ($1, $2, '2026-11-02', '2026-W45', '2026-11', now(), 2, now())"#,
        &[&format!("{user}-cohort"), &user],
    )
    .await;
}

/// Two visitors of every route, an experiment they took part in, a shared
/// error group each, and a price prediction (which names nobody).
async fn two_visitors(app: &TestApp) {
    app.experiment("new-checkout", "running").await;
    record(app, &ERASED, "new-checkout", "group-shared-a").await;
    record(app, &KEPT, "new-checkout", "group-shared-b").await;
    exec(
        app,
        r#"INSERT INTO "price_predictions" ("id", "origin", "destination", "departDate", "predictedPrice",
               "confidence", "priceRange", "modelVersion", "features", "expiresAt")
           VALUES ('prediction-1', 'JFK', 'LIS', '2026-12-20', 512.5, 0.8, '{"low": 480, "high": 560}',
               'v1', '{"currentPrice": 530, "currency": "USD"}', now() + interval '6 hours')"#,
        &[],
    )
    .await;
}

/// Occurrences of `needle` in every text, json, jsonb, array, uuid and
/// address column of every table of the database, by table and column,
/// the `users` accounts aside (the site's application owns the account; the erasure leaves it).
/// Read from the catalogue, so a table the erasure forgets cannot escape.
async fn occurrences(app: &TestApp, needle: &str) -> Vec<String> {
    let columns = app
        .client
        .query(
            r#"SELECT table_schema, table_name, column_name FROM information_schema.columns
               WHERE table_schema IN ('public', 'bundle', 'audit_trail')
                 AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY',
                                   'uuid', 'inet', 'cidr')
                 AND NOT (table_schema = 'public' AND table_name = 'users')
                 AND (table_schema, table_name) IN
                     (SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')
               ORDER BY 1, 2, 3"#,
            &[],
        )
        .await
        .expect("columns");
    assert!(columns.len() > 50, "the catalogue lists the columns");
    let mut found = Vec::new();
    for column in &columns {
        let (schema, table, name): (String, String, String) =
            (column.get(0), column.get(1), column.get(2));
        // Names from the catalogue, quoted.
        let sql = format!(
            r#"SELECT count(*) FROM "{schema}"."{table}" WHERE strpos("{name}"::text, $1) > 0"#
        );
        let count: i64 = app
            .client
            .query_one(&sql, &[&needle])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0);
        if count > 0 {
            found.push(format!("{schema}.{table}.{name}: {count}"));
        }
    }
    found
}

/// Occurrences of each of `visitor`'s identifiers.
async fn traces(app: &TestApp, visitor: &Visitor) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for identifier in visitor.identifiers() {
        let found = occurrences(app, &identifier).await;
        all.push((identifier, found));
    }
    all
}

async fn super_admin(app: &TestApp) -> String {
    app.admin("root", "super_admin", None).await
}

fn counts(answer: &Value) -> Value {
    let mut by_table = serde_json::Map::new();
    for table in answer["tables"].as_array().expect("tables") {
        by_table.insert(
            table["table"].as_str().expect("name").to_owned(),
            json!([table["deleted"], table["anonymised"]]),
        );
    }
    Value::Object(by_table)
}

#[tokio::test]
async fn erasing_a_user_leaves_no_row_anywhere_that_names_them() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;
    assert!(
        traces(&app, &ERASED)
            .await
            .iter()
            .all(|(_, found)| !found.is_empty()),
        "every identifier is stored before the erasure"
    );

    app.expect(
        "POST",
        ERASURE,
        Some(&token),
        Some(json!({"userId": ERASED.user_id})),
        StatusCode::OK,
    )
    .await;

    for (identifier, found) in traces(&app, &ERASED).await {
        assert!(found.is_empty(), "{identifier} is still in {found:?}");
    }
}

#[tokio::test]
async fn erasing_a_user_leaves_everyone_elses_rows_as_they_were() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;
    let before = traces(&app, &KEPT).await;

    app.expect(
        "POST",
        ERASURE,
        Some(&token),
        Some(json!({"userId": ERASED.user_id})),
        StatusCode::OK,
    )
    .await;

    assert_eq!(traces(&app, &KEPT).await, before);
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "price_predictions""#)
            .await,
        1
    );
}

#[tokio::test]
async fn the_answer_counts_the_rows_of_each_table() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"userId": ERASED.user_id})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(answer["erasedBy"], "userId");
    assert_eq!(answer["usersMatched"], 1);
    assert_eq!(answer["sessionsMatched"], 2);
    assert_eq!(
        counts(&answer),
        json!({
            "analytics_events": [3, 0],
            "conversion_funnels": [2, 0],
            "performance_metrics": [1, 0],
            "error_logs": [1, 1],
            "bundle.sentry_events": [1, 0],
            "experiment_participations": [1, 0],
            "bundle.experiment_conversions": [1, 0],
            "user_cohorts": [1, 0],
        })
    );
}

#[tokio::test]
async fn an_error_group_others_reported_too_is_kept_without_its_reporter() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    app.expect(
        "POST",
        ERASURE,
        Some(&token),
        Some(json!({"userId": ERASED.user_id})),
        StatusCode::OK,
    )
    .await;

    let group = app
        .client
        .query_one(
            r#"SELECT "userId", "sessionId", "userAgent", "count", "url" FROM "error_logs" WHERE "id" = 'group-shared-a'"#,
            &[],
        )
        .await
        .expect("the shared group is kept");
    assert_eq!(group.get::<_, Option<String>>(0), None);
    assert_eq!(group.get::<_, String>(1), "erased");
    assert_eq!(group.get::<_, Option<String>>(2), None);
    assert_eq!(group.get::<_, i32>(3), 5);
    assert_eq!(group.get::<_, String>(4), "https://deals.example/checkout");
}

#[tokio::test]
async fn erasing_a_session_erases_that_session_only() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"sessionId": ERASED.sessions[0]})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(answer["erasedBy"], "sessionId");
    assert_eq!(
        (
            answer["usersMatched"].clone(),
            answer["sessionsMatched"].clone()
        ),
        (json!(0), json!(1))
    );
    assert!(occurrences(&app, ERASED.sessions[0]).await.is_empty());
    assert_eq!(
        counts(&answer),
        json!({
            "analytics_events": [2, 0],
            "conversion_funnels": [1, 0],
            "performance_metrics": [1, 0],
            "error_logs": [1, 0],
            "bundle.sentry_events": [1, 0],
            "experiment_participations": [1, 0],
            "bundle.experiment_conversions": [1, 0],
            "user_cohorts": [0, 0],
        })
    );
    // The other session, and the user's cohort, stay.
    assert_eq!(
        app.count(
            r#"SELECT count(*) FROM "analytics_events" WHERE "sessionId" = 'sess-erase-me-2'"#
        )
        .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "user_cohorts" WHERE "userId" = 'visitor-erase-me'"#)
            .await,
        1
    );
}

#[tokio::test]
async fn erasing_by_email_erases_the_users_of_that_address_whatever_its_case() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"email": " Visitor-Erase-Me@Example.com "})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(
        (answer["erasedBy"].clone(), answer["usersMatched"].clone()),
        (json!("email"), json!(1))
    );
    for (identifier, found) in traces(&app, &ERASED).await {
        assert!(found.is_empty(), "{identifier} is still in {found:?}");
    }
    assert!(!occurrences(&app, KEPT.user_id).await.is_empty());
}

#[tokio::test]
async fn an_erasure_that_matches_nobody_is_answered_with_zero_counts_and_audited() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"email": "nobody@example.com"})),
            StatusCode::OK,
        )
        .await;

    assert_eq!(answer["usersMatched"], 0);
    assert!(
        answer["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .all(|t| t["deleted"] == 0 && t["anonymised"] == 0),
        "{answer}"
    );
    let row = app.audit_rows().await.pop().expect("audit row");
    assert_eq!(
        (row["resource"].clone(), row["success"].clone()),
        (json!("privacy"), json!(true))
    );
}

#[tokio::test]
async fn the_erasure_is_audited_with_its_counts_and_without_the_identifier() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;

    app.expect(
        "POST",
        ERASURE,
        Some(&token),
        Some(json!({"userId": ERASED.user_id})),
        StatusCode::OK,
    )
    .await;

    let row = app.audit_rows().await.pop().expect("audit row");
    assert_eq!(row["action"], "delete");
    assert_eq!(row["resource"], "privacy");
    assert_eq!(row["resourceId"], "erasure");
    assert_eq!(row["userId"], "root");
    assert_eq!(row["changes"]["after"]["erasedBy"], "userId");
    assert_eq!(row["changes"]["after"]["usersMatched"], 1);
    assert!(!row.to_string().contains(ERASED.user_id), "{row}");
    let verified = app
        .expect(
            "GET",
            "/api/admin/audit/verify",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(verified["intact"], true, "{verified}");
}

#[tokio::test]
async fn an_admin_without_the_privacy_permission_is_refused_and_nothing_is_erased() {
    let app = spawn_app().await;
    two_visitors(&app).await;
    let admin = app.admin("ops", "admin", None).await;
    let before = traces(&app, &ERASED).await;

    let answer = app
        .send(
            "POST",
            ERASURE,
            Some(&admin),
            Some(json!({"userId": ERASED.user_id})),
        )
        .await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("privacy:delete"))
    );
    assert_eq!(traces(&app, &ERASED).await, before);
}

#[tokio::test]
async fn a_request_must_name_exactly_one_identifier() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    for (body, field) in [
        (json!({}), "userId"),
        (json!({"userId": "a", "email": "a@example.com"}), "email"),
        (json!({"userId": "a", "sessionId": "s"}), "sessionId"),
        (json!({"userId": ""}), "userId"),
        (json!({"sessionId": "s".repeat(256)}), "sessionId"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"userId": 7}), "userId"),
    ] {
        let answer = app
            .expect(
                "POST",
                ERASURE,
                Some(&token),
                Some(body.clone()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    app.expect(
        "POST",
        ERASURE,
        Some(&token),
        Some(json!({"user": "a"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn an_erasure_whose_commit_fails_is_not_answered_as_done_and_erases_nothing() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;
    app.client
        .batch_execute(
            r#"CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
               CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER DELETE ON "analytics_events"
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();"#,
        )
        .await
        .expect("the deferred trigger");
    let before = traces(&app, &ERASED).await;

    let answer = app
        .send(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"userId": ERASED.user_id})),
        )
        .await;

    assert!(answer.status.is_server_error(), "{}", answer.status);
    assert_eq!(traces(&app, &ERASED).await, before);
}

#[tokio::test]
async fn a_direct_invoke_erases_a_session_and_is_audited_as_a_job() {
    let app = spawn_app().await;
    two_visitors(&app).await;

    let outcome = platform::lambda::invoke(
        &app.function,
        lambda_runtime::LambdaEvent::new(
            json!({"command": "erase", "sessionId": ERASED.sessions[0]}),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("invocation");

    assert_eq!(outcome["erasedBy"], "sessionId", "{outcome}");
    assert!(occurrences(&app, ERASED.sessions[0]).await.is_empty());
    let row = app.audit_rows().await.pop().expect("audit row");
    assert_eq!(
        (row["userRole"].clone(), row["resource"].clone()),
        (json!("erase (direct invoke)"), json!("privacy"))
    );
}

#[tokio::test]
async fn a_direct_invoke_naming_two_identifiers_is_refused() {
    let payload = json!({"command": "erase", "userId": "a", "sessionId": "s"});
    let command = admin::commands::Command::from_payload(payload).expect("a command");
    let app = spawn_app().await;
    two_visitors(&app).await;
    let mut client = app.function.state.access.pool.get().await.expect("client");

    let outcome =
        admin::commands::execute(&mut client, &command, admin::bootstrap::Channel::Lambda).await;

    let error = outcome.expect_err("refused").to_string();
    assert!(error.contains("sessionId"), "{error}");
}

#[tokio::test]
async fn the_command_line_erases_a_user_and_prints_the_counts() {
    let app = spawn_app().await;
    two_visitors(&app).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_admin"))
            .args(args)
            .env("POSTGRES_URL", app.db.url())
            .env("PRIVACY_PSEUDONYM_KEY", PSEUDONYM_KEY)
            .env_remove("POSTGRES_URL_NON_POOLING")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run admin")
    };

    let usage = run(&["erase", "--user-id", "a", "--email", "a@example.com"]);
    assert_eq!(usage.status.code(), Some(2));
    let done = run(&["erase", "--user-id", ERASED.user_id]);

    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let printed: Value = serde_json::from_slice(&done.stdout).expect("JSON");
    assert_eq!(counts(&printed)["analytics_events"], json!([3, 0]));
    for (identifier, found) in traces(&app, &ERASED).await {
        assert!(found.is_empty(), "{identifier} is still in {found:?}");
    }
    let row = app.audit_rows().await.pop().expect("audit row");
    assert_eq!(row["userRole"], "erase (command line)");
}

#[tokio::test]
async fn without_the_pseudonym_key_an_erasure_is_refused_and_nothing_is_erased() {
    let app = spawn_with(&[]).await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;
    let before = traces(&app, &ERASED).await;

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"userId": ERASED.user_id})),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;

    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("PRIVACY_PSEUDONYM_KEY")),
        "{answer}"
    );
    assert_eq!(traces(&app, &ERASED).await, before);
}

#[tokio::test]
async fn a_malformed_pseudonym_key_stops_the_cold_start_naming_it() {
    let db = TestDatabase::migrated().await;
    let secret = fixture_secret();
    let built = App::build(&db.env(&[
        ("NEXTAUTH_SECRET", secret.as_str()),
        ("PRIVACY_PSEUDONYM_KEY", "0a0b"),
    ]));

    let error = built.err().expect("refused").to_string();
    assert!(error.contains("PRIVACY_PSEUDONYM_KEY"), "{error}");
}

#[tokio::test]
async fn the_persons_identifiers_in_the_audit_trail_become_pseudonyms_and_the_chain_verifies() {
    let app = spawn_app().await;
    let token = super_admin(&app).await;
    two_visitors(&app).await;
    // The visitor was briefly a moderator: the trail names them.
    app.expect(
        "POST",
        "/api/admin/users",
        Some(&token),
        Some(json!({"userId": ERASED.user_id, "role": "moderator"})),
        StatusCode::CREATED,
    )
    .await;
    app.expect(
        "DELETE",
        &format!("/api/admin/users/{}", ERASED.user_id),
        Some(&token),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(!occurrences(&app, ERASED.user_id).await.is_empty());

    let answer = app
        .expect(
            "POST",
            ERASURE,
            Some(&token),
            Some(json!({"userId": ERASED.user_id})),
            StatusCode::OK,
        )
        .await;

    assert!(
        answer["auditTrail"][0]["rowsPseudonymised"]
            .as_u64()
            .is_some_and(|rows| rows >= 2),
        "{answer}"
    );
    for (identifier, found) in traces(&app, &ERASED).await {
        assert!(found.is_empty(), "{identifier} is still in {found:?}");
    }
    assert!(
        app.count(r#"SELECT count(*) FROM "audit_logs" WHERE "resourceId" LIKE 'pseudonym:%'"#)
            .await
            >= 2
    );
    let verified = app
        .expect(
            "GET",
            "/api/admin/audit/verify",
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(verified["intact"], true, "{verified}");
}
