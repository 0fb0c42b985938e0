//! The test harness: real PostgreSQL, one database per test.
//!
//! The server is the one named by `TEST_POSTGRES_URL` (an admin URL allowed
//! to create databases), or else a local cluster the harness starts itself
//! from the PostgreSQL server binaries, once per machine, and reuses across
//! test processes and runs. As root it runs the server as the `postgres` OS
//! user, because PostgreSQL refuses to run as root.
//!
//! Every [`TestDatabase`] is a new database, migrated by the same
//! [`schema::Migrator`] production runs, and dropped when the value is.

mod cluster;
pub mod session;

use std::sync::OnceLock;

use platform::{config::Env, connection::ConnectionSettings};
use tokio_postgres::NoTls;

pub use cluster::{ClusterOptions, LocalCluster, Shutdown, restart_rounds};

/// The admin URL of the server tests use.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => LocalCluster::shared()
            .unwrap_or_else(|e| panic!("cannot start a local PostgreSQL for the tests: {e:#}"))
            .admin_url("postgres"),
    })
}

/// `server_url` with the database name replaced.
fn url_for_database(server: &str, database: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server_url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    tokio::spawn(connection);
    client
}

/// A database of its own for one test, dropped with the value.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A new, empty database.
    pub async fn empty() -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = url_for_database(server_url(), &name);
        Self { name, url }
    }

    /// A new database with every embedded migration applied by the
    /// production migrator.
    pub async fn migrated() -> Self {
        let database = Self::empty().await;
        let mut client = database.connect().await;
        schema::Migrator::embedded()
            .up(&mut client)
            .await
            .unwrap_or_else(|e| panic!("migrating the test database failed: {e}"));
        database
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL as the application would be given it in `POSTGRES_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings::parse(&self.url).unwrap_or_else(|e| panic!("bad test url: {e}"))
    }

    /// A dedicated connection.
    pub async fn connect(&self) -> tokio_postgres::Client {
        platform::db::connect(&self.settings())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e:#}", self.name))
    }

    /// The settings a function deployed against this database is given:
    /// `POSTGRES_URL`, then `extra` (which may override it). A test builds
    /// its function from these with the constructor `main.rs` uses.
    pub fn env(&self, extra: &[(&str, &str)]) -> Env {
        Env::from_pairs(
            [("POSTGRES_URL", self.url.as_str())]
                .into_iter()
                .chain(extra.iter().copied()),
        )
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we can rely on (the test's
        // runtime may be shutting down), so the DROP runs on a thread with a
        // runtime of its own. FORCE ends connections a test left open.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                admin_client()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// Sends `request` through a function's production router; returns the
/// status, headers and body bytes as they came.
pub async fn send(
    router: axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (
    axum::http::StatusCode,
    axum::http::HeaderMap,
    axum::body::Bytes,
) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let described = format!("{} {}", request.method(), request.uri());
    let response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{described}: reading the body: {e}"))
        .to_bytes();
    (status, headers, bytes)
}

/// Sends `request` through a function's production router and asserts the
/// status; returns the response headers and JSON body (null when empty).
pub async fn call(
    router: axum::Router,
    request: axum::http::Request<axum::body::Body>,
    expected: axum::http::StatusCode,
) -> (axum::http::HeaderMap, serde_json::Value) {
    let described = format!("{} {}", request.method(), request.uri());
    let (status, headers, bytes) = send(router, request).await;
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{described}: body is not JSON: {e}"))
    };
    assert_eq!(status, expected, "{described}: {body}");
    (headers, body)
}

/// `(METHOD, path)` of every HTTP route `template.yaml` deploys.
pub fn deployed_routes() -> std::collections::BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .unwrap_or_else(|e| panic!("template.yaml: {e}"));
    let mut routes = std::collections::BTreeSet::new();
    let mut method = None;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.to_owned());
        }
        if let Some(path) = line.strip_prefix("Path: ")
            && let Some(m) = method.take()
        {
            routes.insert((m, path.to_owned()));
        }
    }
    routes
}

/// `(METHOD, path)` of every route `cargo lambda watch` serves locally (the
/// `[workspace.metadata.lambda.watch.router]` table of `Cargo.toml`), a
/// trailing slash left out: API Gateway routes `/x/` to `/x`, and the watch
/// router lists both where clients send the first.
pub fn watched_routes() -> std::collections::BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .unwrap_or_else(|e| panic!("Cargo.toml: {e}"));
    let mut routes = std::collections::BTreeSet::new();
    let mut path = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("\"/api/") || line.starts_with("\"/ofrep/") {
            path = line
                .split('"')
                .nth(1)
                .map(|p| p.trim_end_matches('/').to_owned());
        }
        for chunk in line.split("method = \"").skip(1) {
            let method = chunk.split('"').next().unwrap_or_default().to_owned();
            if let Some(p) = &path {
                routes.insert((method, p.clone()));
            }
        }
    }
    routes
}

/// A JSON payload from the workspace's `tests/data/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_replace_only_the_database() {
        assert_eq!(
            url_for_database(
                "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
                "t1"
            ),
            "postgres://u:p@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            url_for_database("postgres://u@h", "t2"),
            "postgres://u@h/t2"
        );
    }
}
