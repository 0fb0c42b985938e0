//! The events function against real PostgreSQL.

mod analytics;
mod bots_and_cors;
mod browser_errors;
mod commit;
mod connections;
mod flags;
mod node;
mod openfeature;
mod predictions;
mod restarts;
mod sentry;
mod sentry_sdk;
mod storable;
mod vitals;

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use events::App;
use platform::lambda::Function;
use serde_json::Value;
use testkit::TestDatabase;

pub struct TestApp {
    pub db: TestDatabase,
    pub app: App,
}

/// A migrated database, and the function built from `settings` (with the
/// database's `POSTGRES_URL`) by the constructor `main.rs` uses.
pub async fn spawn_app(settings: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::migrated().await;
    let app = App::build(&db.env(settings)).expect("the function");
    TestApp { db, app }
}

impl TestApp {
    /// Sends a request through the production router and asserts the
    /// status; returns the response headers and JSON body.
    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
        expected: StatusCode,
    ) -> (HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).expect("request");
        testkit::call(self.app.router(), request, expected).await
    }

    /// POSTs `body` as a browser on `page` would.
    pub async fn post_from_page(
        &self,
        uri: &str,
        content_type: &str,
        user_agent: &str,
        page: &str,
        body: &Value,
        expected: StatusCode,
    ) -> Value {
        let headers = [
            ("content-type", content_type),
            ("user-agent", user_agent),
            ("referer", page),
        ];
        self.post(uri, &headers, body.to_string(), expected).await
    }

    pub async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
        expected: StatusCode,
    ) -> Value {
        self.request("POST", uri, headers, body, expected).await.1
    }

    pub async fn post_json(&self, body: &Value, expected: StatusCode) -> Value {
        self.post(
            "/api/analytics/events",
            &[("content-type", "application/json")],
            body.to_string(),
            expected,
        )
        .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.db
            .connect()
            .await
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Ends every server session of the app's pool from another thread
    /// while this one blocks, as a server restart or an idle timeout does
    /// while a Lambda container is frozen. On a current-thread runtime the
    /// pool's connection tasks cannot run meanwhile, so the pool does not
    /// know yet that its connections are gone. Returns how many ended.
    pub fn end_sessions_unnoticed(&self) -> i64 {
        let settings = self.db.settings();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the terminating connection")
                .block_on(async {
                    platform::db::connect(&settings)
                        .await
                        .expect("a connection of its own")
                        .query_one(
                            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity
                             WHERE datname = current_database() AND pid <> pg_backend_pid()",
                            &[],
                        )
                        .await
                        .expect("pg_terminate_backend")
                        .get(0)
                })
        })
        .join()
        .expect("the terminating thread")
    }

    pub async fn events(&self) -> Vec<tokio_postgres::Row> {
        self.db
            .connect()
            .await
            .query(
                r#"SELECT "sessionId", "userId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp"
                   FROM "analytics_events" ORDER BY "timestamp", "eventType""#,
                &[],
            )
            .await
            .expect("rows")
    }
}
