//! Database errors caused by a client's data are 4xx answers, whatever the
//! route: PostgreSQL is often the only one to notice them.

use axum::{http::StatusCode, response::IntoResponse};
use platform::ApiError;
use testkit::TestDatabase;

async fn failure_of(sql: &str) -> ApiError {
    let db = TestDatabase::empty().await;
    let client = db.connect().await;
    client
        .batch_execute(
            r#"CREATE TABLE "accounts" ("id" int PRIMARY KEY, "email" text UNIQUE,
                                        "age" int CHECK ("age" >= 0), "name" text NOT NULL DEFAULT 'x')"#,
        )
        .await
        .expect("table");
    let error = client
        .batch_execute(sql)
        .await
        .expect_err("the statement fails");
    ApiError::internal("running the test statement")(error)
}

#[tokio::test]
async fn a_data_exception_is_a_400_invalid_value() {
    for sql in [
        r#"SELECT '{"n": 1e200000}'::jsonb"#,
        r#"SELECT 'x\u0000y'::jsonb"#,
        "SELECT 'not a number'::int",
        "SELECT 2147483647::int + 1",
    ] {
        let error = failure_of(sql).await;
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{sql}: {error:?}");
        assert!(
            matches!(
                error,
                ApiError::BadRequest {
                    code: "invalid_value",
                    ..
                }
            ),
            "{sql}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_unique_violation_is_a_409_naming_the_key_without_its_value() {
    let error = failure_of(
        r#"INSERT INTO "accounts" ("id", "email") VALUES (1, 'a@example.com'), (2, 'a@example.com')"#,
    )
    .await;
    assert_eq!(error.status(), StatusCode::CONFLICT);
    assert_eq!(error.field(), Some("email"));
    assert!(!error.to_string().contains("a@example.com"), "{error}");
}

#[tokio::test]
async fn other_constraint_violations_are_422s() {
    for (sql, field) in [
        (
            r#"INSERT INTO "accounts" ("id", "age") VALUES (1, -1)"#,
            None,
        ),
        (
            r#"INSERT INTO "accounts" ("id", "name") VALUES (1, NULL)"#,
            Some("name"),
        ),
    ] {
        let error = failure_of(sql).await;
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{sql}");
        assert_eq!(error.field(), field, "{sql}");
    }
}

#[tokio::test]
async fn a_server_fault_stays_a_500() {
    let error = failure_of(r#"SELECT * FROM "no_such_table""#).await;
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_connection_the_server_ended_is_a_503_with_retry_after() {
    let db = TestDatabase::empty().await;
    let client = db.connect().await;
    let error = client
        .batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
        .await
        .expect_err("the session ends");
    let answer = ApiError::internal("running the test statement")(error).into_response();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["retry-after"], "1");
}
