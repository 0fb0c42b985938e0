//! The admin function against real PostgreSQL, through its production
//! router.

mod accuracy;
mod analytics_funnel;
mod analytics_overview;
mod analytics_retention;
mod analytics_vitals;
mod audit_scale;
mod audit_trail;
mod bootstrap;
mod cohorts;
mod experiments;
mod flags;
mod hostile_input;
mod lambda;
mod models;
mod permissions;
mod privacy_docs;
mod privacy_erasure;
mod restarts;
mod retention;
mod rollups;
mod sessions;
mod training;
mod triage;
mod users;

use admin::App;
use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use platform::lambda::Function;
use serde_json::Value;
use testkit::TestDatabase;

pub use testkit::session::{fixture_secret, tokens, v4_token, v4_token_of};

pub struct TestApp {
    pub db: TestDatabase,
    pub function: App,
    pub client: tokio_postgres::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        if self.bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes))
            })
        }
    }
}

/// The audit pseudonyms' key the shared harness deploys with (hex, 32
/// bytes; a test value).
pub const TEST_PSEUDONYM_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A migrated database, and the function built by the constructor `main.rs`
/// uses, with the database's `POSTGRES_URL`, the fixtures' secret and a
/// pseudonym key, as the template deploys it.
pub async fn spawn_app() -> TestApp {
    let db = TestDatabase::migrated().await;
    let secret = fixture_secret();
    let function = App::build(&db.env(&[
        ("NEXTAUTH_SECRET", &secret),
        ("PRIVACY_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY),
    ]))
    .expect("the function");
    let client = db.connect().await;
    TestApp {
        db,
        function,
        client,
    }
}

impl TestApp {
    pub async fn user(&self, id: &str) {
        self.client
            .execute(
                r#"INSERT INTO "users" ("id", "email", "name", "updatedAt") VALUES ($1, $2, $3, now())"#,
                &[&id, &format!("{id}@example.com"), &id],
            )
            .await
            .expect("insert user");
    }

    /// A user with an admin grant; returns their session token.
    pub async fn admin(&self, id: &str, role: &str, permissions: Option<Value>) -> String {
        self.user(id).await;
        self.client
            .execute(
                r#"INSERT INTO "admin_users" ("id", "userId", "role", "permissions", "updatedAt")
                   VALUES ($1, $1, $2, $3, now())"#,
                &[&id, &role, &permissions],
            )
            .await
            .expect("insert admin");
        self.token(id)
    }

    pub fn token(&self, user_id: &str) -> String {
        v4_token(&fixture_secret(), user_id)
    }

    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send_via(self.function.router(), method, uri, token, body)
            .await
    }

    /// [`Self::send`] to another function's router: the admin routes the
    /// cms function serves, in the route matrix.
    pub async fn send_via(
        &self,
        router: axum::Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("user-agent", "admin-tests/1.0")
            .header("x-forwarded-for", "198.51.100.7");
        if let Some(token) = token {
            request = request.header("cookie", format!("next-auth.session-token={token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            // As HTTP clients send a bodiless POST (the lifecycle steps).
            None => {
                request = request.header("content-length", "0");
                Body::empty()
            }
        };
        let (status, headers, bytes) =
            testkit::send(router, request.body(body).expect("request")).await;
        Answer {
            status,
            headers,
            bytes: bytes.to_vec(),
        }
    }

    pub async fn raw(&self, request: Request<Body>) -> Answer {
        let (status, headers, bytes) = testkit::send(self.function.router(), request).await;
        Answer {
            status,
            headers,
            bytes: bytes.to_vec(),
        }
    }

    /// Sends and asserts the status; returns the JSON body.
    pub async fn expect(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let answer = self.send(method, uri, token, body).await;
        assert_eq!(
            answer.status,
            expected,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&answer.bytes)
        );
        answer.json()
    }

    /// Audit rows, oldest first, as JSON objects.
    pub async fn audit_rows(&self) -> Vec<Value> {
        self.client
            .query(
                r#"SELECT json_build_object('userId', "userId", 'userRole', "userRole", 'action', "action",
                          'resource', "resource", 'resourceId', "resourceId", 'changes', "changes",
                          'success', "success", 'errorMessage', "errorMessage", 'ipAddress', "ipAddress",
                          'userAgent', "userAgent", 'requestId', "requestId")
                   FROM "audit_logs" ORDER BY "timestamp", "id""#,
                &[],
            )
            .await
            .expect("audit rows")
            .iter()
            .map(|row| row.get::<_, Value>(0))
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// An experiment flag as the admin API would have written it, in
    /// `status`, with a control and a treatment of equal weight.
    pub async fn experiment(&self, key: &str, status: &str) {
        self.client
            .execute(
                r#"INSERT INTO "feature_flags" ("id", "key", "name", "enabled", "rolloutPercentage", "variants",
                       "isExperiment", "experimentStatus", "updatedAt")
                   VALUES ($1, $1, $1, true, 100, '[{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}]',
                       true, $2, now())"#,
                &[&key, &status],
            )
            .await
            .expect("insert experiment");
    }

    /// An error group as the intake would have written it.
    pub async fn error_group(&self, id: &str, fingerprint: &str, severity: &str, message: &str) {
        self.client
            .execute(
                r#"INSERT INTO "error_logs" ("id", "message", "url", "sessionId", "severity", "fingerprint", "count", "timestamp")
                   VALUES ($1, $2, 'https://deals.example/', 'session_1', $3, $4, 1, now())"#,
                &[&id, &message, &severity, &fingerprint],
            )
            .await
            .expect("insert error group");
    }

    /// A deal as the cms function would have written it.
    pub async fn deal(&self, id: &str, n: usize) {
        self.client
            .execute(
                r#"INSERT INTO "deals" ("id", "slug", "title", "description", "destination", "origin",
                       "originalPrice", "discountedPrice", "flightDetails", "images", "seo", "updatedAt", "createdBy")
                   VALUES ($1, $2, 'A deal', 'Seven nights.',
                       '{"airportCode": "LIS", "city": "Lisbon", "country": "Portugal"}', 'JFK', 900, 500,
                       '{}', '[]', '{"title": "A deal", "description": "Seven nights."}', now(), 'editor')"#,
                &[&id, &format!("deal-{n}")],
            )
            .await
            .expect("insert deal");
    }

    /// A destination as the cms function would have written it.
    pub async fn destination(&self, id: &str, airport_code: &str) {
        self.client
            .execute(
                r#"INSERT INTO "destinations" ("id", "slug", "airportCode", "city", "country", "region",
                       "description", "shortDescription", "travelInfo", "priceRange", "images", "seo", "updatedAt")
                   VALUES ($1, lower($2), $2, 'A city', 'Portugal', 'Europe', 'Hills.', 'Hills.', '{}', '$$',
                       '[]', '{"title": "A city", "description": "Hills."}', now())"#,
                &[&id, &airport_code],
            )
            .await
            .expect("insert destination");
    }

    /// An email template without variables.
    pub async fn email_template(&self, key: &str) {
        self.client
            .execute(
                r#"INSERT INTO "email_templates" ("id", "name", "key", "subject", "body", "variables", "updatedAt")
                   VALUES ($1, $1, $1, 'Hello', '<p>Hello</p>', '[]', now())"#,
                &[&key],
            )
            .await
            .expect("insert email template");
    }

    /// A search suggestion.
    pub async fn suggestion(&self, id: &str, n: usize) {
        self.client
            .execute(
                r#"INSERT INTO "search_suggestions" ("id", "query", "type", "name", "country", "updatedAt")
                   VALUES ($1, $2, 'city', $2, 'Portugal', now())"#,
                &[&id, &format!("Town {n}")],
            )
            .await
            .expect("insert suggestion");
    }

    /// An audit row recording the creation of the `resource` thing
    /// `resource_id` as it now is (its row as JSON): a version a restore can
    /// name. Returns the row's id.
    pub async fn created_audit_row(&self, resource: &str, resource_id: &str) -> String {
        let (table, key) = match resource {
            "deals" => ("deals", "id"),
            "destinations" => ("destinations", "id"),
            "emails" => ("email_templates", "key"),
            other => panic!("no table for {other}"),
        };
        let audit_id = format!("audit-{resource_id}");
        // Table and key come from the match above, never from input.
        let sql = format!(
            r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource",
                   "resourceId", "changes", "success", "timestamp")
               SELECT $1, 'editor', 'editor@example.com', 'super_admin', 'create', $2, $3,
                   jsonb_build_object('before', null, 'after', to_jsonb(t)), true, now()
               FROM "{table}" t WHERE t."{key}" = $3"#
        );
        let inserted = self
            .client
            .execute(&sql, &[&audit_id, &resource, &resource_id])
            .await
            .expect("insert audit row");
        assert_eq!(inserted, 1, "no {resource} {resource_id}");
        audit_id
    }
}
