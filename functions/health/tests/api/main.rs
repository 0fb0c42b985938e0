//! The health function against real PostgreSQL and real local HTTP
//! dependencies.

mod endpoint;
mod history;
mod schedule;

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
    routing::get,
};
use health::App;
use lambda_runtime::{Context, LambdaEvent};
use platform::lambda::Function;
use serde_json::Value;
use testkit::TestDatabase;

pub struct TestApp {
    pub db: TestDatabase,
    pub function: App,
}

/// A migrated database and the function, built from the given settings
/// (with the database's `POSTGRES_URL`) by the constructor `main.rs` uses.
pub async fn spawn_app(settings: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::migrated().await;
    let function = App::build(&db.env(settings)).expect("the function");
    TestApp { db, function }
}

/// The function, configured with a database that cannot be reached.
pub fn unreachable_database() -> App {
    let url = format!(
        "postgres://nobody@127.0.0.1:{}/nothing?sslmode=disable",
        closed_port()
    );
    App::build(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_POOL_MAX_SIZE", "1"),
        ("DB_CONNECT_TIMEOUT_MS", "2000"),
    ]))
    .expect("the function")
}

pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Sends a request through the production router, asserting its status.
pub async fn send(
    function: &App,
    method: &str,
    uri: &str,
    expected: StatusCode,
) -> (HeaderMap, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    testkit::call(function.router(), request, expected).await
}

/// Invokes the function with a raw Lambda payload through the shared
/// dispatch, as the runtime would.
pub async fn invoke(function: &App, payload: Value) -> Value {
    platform::lambda::invoke(function, LambdaEvent::new(payload, Context::default()))
        .await
        .expect("invocation")
}

/// A local HTTP dependency with one route per behaviour.
pub async fn dependency() -> String {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/unauthorized", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/forbidden", get(|| async { StatusCode::FORBIDDEN }))
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "late"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "never"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

pub async fn rows(db: &TestDatabase) -> Vec<(String, String, Option<f64>, Option<String>)> {
    db.connect()
        .await
        .query(r#"SELECT "service", "status", "responseTime", "errorMessage" FROM "health_checks" ORDER BY "service""#, &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Inserts a recorded check `age` ago.
pub async fn insert_check(db: &TestDatabase, service: &str, status: &str, age: chrono::Duration) {
    let at = platform::clock::to_db_timestamp(chrono::Utc::now() - age);
    db.connect()
        .await
        .execute(
            r#"INSERT INTO "health_checks" ("id", "service", "status", "responseTime", "timestamp") VALUES ($1, $2, $3, 12.5, $4)"#,
            &[&platform::ids::new_id(), &service, &status, &at],
        )
        .await
        .expect("insert check");
}
