//! The events function against real PostgreSQL.

mod analytics;
mod bots_and_cors;
mod errors;
mod vitals;

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use events::{AppState, IntakeConfig};
use platform::config::Env;
use serde_json::Value;
use testkit::TestDatabase;

pub struct TestApp {
    pub db: TestDatabase,
    pub state: AppState,
}

pub async fn spawn_app(settings: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::migrated().await;
    let config =
        IntakeConfig::from_env(&Env::from_pairs(settings.iter().copied())).expect("config");
    let state = AppState::new(db.pool(), config);
    TestApp { db, state }
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
        testkit::call(events::router(self.state.clone()), request, expected).await
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
