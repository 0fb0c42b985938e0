//! The cms function against real PostgreSQL, through its production
//! router.

mod deals;
mod destinations;
mod email_templates;
mod seed;
mod suggestions;

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use cms::App;
use platform::lambda::Function;
use serde_json::Value;
use testkit::TestDatabase;
use testkit::session::{fixture_secret, v4_token};

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

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A migrated database, and the function built by the constructor `main.rs`
/// uses, with the database's `POSTGRES_URL` and the fixtures' secret.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with more settings (`SMTP_URL`, `CORS_ALLOWED_ORIGINS`).
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
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

/// What a browser sends as its user agent: counters drop bots.
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

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
        v4_token(&fixture_secret(), id)
    }

    /// A super_admin's session token (a user `editor`, made on first use).
    pub async fn editor(&self) -> String {
        let exists = self
            .count(r#"SELECT count(*) FROM "users" WHERE "id" = 'editor'"#)
            .await;
        if exists == 0 {
            self.admin("editor", "super_admin", None).await
        } else {
            v4_token(&fixture_secret(), "editor")
        }
    }

    /// A request with a JSON body (or none) and the session `token`.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("user-agent", BROWSER)
            .header("x-forwarded-for", "198.51.100.7");
        if let Some(token) = token {
            request = request.header("cookie", format!("next-auth.session-token={token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            None => {
                request = request.header("content-length", "0");
                Body::empty()
            }
        };
        self.raw(request.body(body).expect("request")).await
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

    pub async fn count(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// Audit rows of `resource`, oldest first, as JSON objects.
    pub async fn audit_rows(&self, resource: &str) -> Vec<Value> {
        self.client
            .query(
                r#"SELECT json_build_object('id', "id", 'userId', "userId", 'action', "action",
                          'resource', "resource", 'resourceId', "resourceId", 'changes', "changes",
                          'success', "success", 'errorMessage', "errorMessage")
                   FROM "audit_logs" WHERE "resource" = $1 ORDER BY "timestamp", "id""#,
                &[&resource],
            )
            .await
            .expect("audit rows")
            .iter()
            .map(|row| row.get::<_, Value>(0))
            .collect()
    }
}
