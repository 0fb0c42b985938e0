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
use http_body_util::BodyExt;
use platform::config::Env;
use serde_json::Value;
use testkit::TestDatabase;
use tower::ServiceExt;

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
        let response = events::router(self.state.clone())
            .oneshot(request.body(body.into()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, expected, "{method} {uri}: {body}");
        (headers, body)
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
