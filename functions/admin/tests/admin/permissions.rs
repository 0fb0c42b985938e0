//! Every admin route x every role x custom overrides, with the expected
//! 401/403/2xx, and a check that every admin route deployed (template.yaml)
//! or served locally (the watch router) is in this table, so a new route
//! without a declared permission fails here.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use platform::lambda::Function as _;

use crate::{TestApp, spawn_app};

/// The actors of the matrix: (name, role, stored permissions).
fn actors() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("super_admin", "super_admin", None),
        ("admin", "admin", None),
        ("moderator", "moderator", None),
        ("user", "user", None),
        (
            "moderator+errors:manage",
            "moderator",
            Some(json!([{"resource": "errors", "actions": ["manage"]}])),
        ),
        (
            "admin-audit_logs",
            "admin",
            Some(json!([{"resource": "audit_logs", "actions": []}])),
        ),
        (
            "user+*:read",
            "user",
            Some(json!([{"resource": "*", "actions": ["read"]}])),
        ),
    ]
}

struct Route {
    method: &'static str,
    /// As declared in template.yaml.
    path: &'static str,
    permission: &'static str,
    /// Actors expected to get a 2xx; every other signed-in actor gets 403.
    allowed: &'static [&'static str],
    success: StatusCode,
}

/// Holders of users:read: the app's admin and moderator defaults, and the
/// overrides that keep or add it.
const USER_READERS: &[&str] = &[
    "super_admin",
    "admin",
    "moderator",
    "moderator+errors:manage",
    "admin-audit_logs",
    "user+*:read",
];

/// Flags and experiments are the admin role's (flags go with experiments:
/// an experiment is a flag).
const FLAG_READERS: &[&str] = &["super_admin", "admin", "admin-audit_logs", "user+*:read"];
const FLAG_EDITORS: &[&str] = &["super_admin", "admin", "admin-audit_logs"];
const EXPERIMENT_READERS: &[&str] = &["super_admin", "admin", "admin-audit_logs", "user+*:read"];
const EXPERIMENT_UPDATERS: &[&str] = &["super_admin", "admin", "admin-audit_logs"];

/// The CMS's content: the app's defaults give admins every action on deals
/// and destinations, and moderators read and update.
const CONTENT_READERS: &[&str] = &[
    "super_admin",
    "admin",
    "moderator",
    "moderator+errors:manage",
    "admin-audit_logs",
    "user+*:read",
];
const CONTENT_UPDATERS: &[&str] = &[
    "super_admin",
    "admin",
    "moderator",
    "moderator+errors:manage",
    "admin-audit_logs",
];
const CONTENT_OWNERS: &[&str] = &["super_admin", "admin", "admin-audit_logs"];
/// Email templates: admins create, read and update; deleting is super_admin's.
const EMAIL_READERS: &[&str] = &["super_admin", "admin", "admin-audit_logs", "user+*:read"];
const EMAIL_EDITORS: &[&str] = &["super_admin", "admin", "admin-audit_logs"];
/// Search suggestions are new: super_admin's until granted.
const SUGGESTION_READERS: &[&str] = &["super_admin", "user+*:read"];

/// Analytics: the app's defaults give admins read and export, moderators
/// read.
const ANALYTICS_READERS: &[&str] = &[
    "super_admin",
    "admin",
    "moderator",
    "moderator+errors:manage",
    "admin-audit_logs",
    "user+*:read",
];
const ANALYTICS_EXPORTERS: &[&str] = &["super_admin", "admin", "admin-audit_logs"];

/// The model registry is new: super_admin's until granted.
const MODEL_READERS: &[&str] = &["super_admin", "user+*:read"];

/// Error triage is new: super_admin's until granted.
const ERROR_READERS: &[&str] = &["super_admin", "moderator+errors:manage", "user+*:read"];

fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "GET",
            path: "/api/admin/users",
            permission: "users:read",
            allowed: USER_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/users",
            permission: "users:create",
            allowed: &["super_admin"],
            success: StatusCode::CREATED,
        },
        Route {
            method: "GET",
            path: "/api/admin/users/{userId}",
            permission: "users:read",
            allowed: USER_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/users/{userId}",
            permission: "users:update",
            allowed: &["super_admin", "admin", "admin-audit_logs"],
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/users/{userId}",
            permission: "users:delete",
            allowed: &["super_admin"],
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "GET",
            path: "/api/admin/audit",
            permission: "audit_logs:read",
            allowed: &["super_admin", "admin", "user+*:read"],
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/audit/export",
            permission: "audit_logs:export",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/audit/verify",
            permission: "audit_logs:read",
            allowed: &["super_admin", "admin", "user+*:read"],
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/errors",
            permission: "errors:read",
            allowed: ERROR_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/errors/{id}",
            permission: "errors:read",
            allowed: ERROR_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/errors/{id}",
            permission: "errors:update",
            allowed: &["super_admin", "moderator+errors:manage"],
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/flags",
            permission: "flags:read",
            allowed: FLAG_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/flags",
            permission: "flags:create",
            allowed: FLAG_EDITORS,
            success: StatusCode::CREATED,
        },
        Route {
            method: "GET",
            path: "/api/admin/flags/{key}",
            permission: "flags:read",
            allowed: FLAG_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/flags/{key}",
            permission: "flags:update",
            allowed: FLAG_EDITORS,
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/flags/{key}",
            permission: "flags:delete",
            allowed: FLAG_EDITORS,
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "POST",
            path: "/api/admin/experiments/{key}/start",
            permission: "experiments:update",
            allowed: EXPERIMENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/experiments/{key}/pause",
            permission: "experiments:update",
            allowed: EXPERIMENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/experiments/{key}/resume",
            permission: "experiments:update",
            allowed: EXPERIMENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/experiments/{key}/stop",
            permission: "experiments:update",
            allowed: EXPERIMENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/experiments/{key}/results",
            permission: "experiments:read",
            allowed: EXPERIMENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/deals",
            permission: "deals:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/deals",
            permission: "deals:create",
            allowed: CONTENT_OWNERS,
            success: StatusCode::CREATED,
        },
        Route {
            method: "GET",
            path: "/api/admin/deals/{id}",
            permission: "deals:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/deals/{id}",
            permission: "deals:update",
            allowed: CONTENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/deals/{id}",
            permission: "deals:delete",
            allowed: CONTENT_OWNERS,
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "GET",
            path: "/api/admin/deals/{id}/history",
            permission: "deals:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/deals/{id}/restore",
            permission: "deals:update",
            allowed: CONTENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/destinations",
            permission: "destinations:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/destinations",
            permission: "destinations:create",
            allowed: CONTENT_OWNERS,
            success: StatusCode::CREATED,
        },
        Route {
            method: "GET",
            path: "/api/admin/destinations/{id}",
            permission: "destinations:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/destinations/{id}",
            permission: "destinations:update",
            allowed: CONTENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/destinations/{id}",
            permission: "destinations:delete",
            allowed: CONTENT_OWNERS,
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "GET",
            path: "/api/admin/destinations/{id}/history",
            permission: "destinations:read",
            allowed: CONTENT_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/destinations/{id}/restore",
            permission: "destinations:update",
            allowed: CONTENT_UPDATERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/email-templates",
            permission: "emails:read",
            allowed: EMAIL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/email-templates",
            permission: "emails:create",
            allowed: EMAIL_EDITORS,
            success: StatusCode::CREATED,
        },
        Route {
            method: "GET",
            path: "/api/admin/email-templates/{key}",
            permission: "emails:read",
            allowed: EMAIL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/email-templates/{key}",
            permission: "emails:update",
            allowed: EMAIL_EDITORS,
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/email-templates/{key}",
            permission: "emails:delete",
            allowed: &["super_admin"],
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "POST",
            path: "/api/admin/email-templates/{key}/render",
            permission: "emails:read",
            allowed: EMAIL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/email-templates/{key}/test",
            permission: "emails:update",
            allowed: EMAIL_EDITORS,
            // No SMTP_URL in the matrix: past the permission check, a test
            // send answers 503 (the route's own tests run a real SMTP server).
            success: StatusCode::SERVICE_UNAVAILABLE,
        },
        Route {
            method: "GET",
            path: "/api/admin/email-templates/{key}/history",
            permission: "emails:read",
            allowed: EMAIL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/email-templates/{key}/restore",
            permission: "emails:update",
            allowed: EMAIL_EDITORS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/search-suggestions",
            permission: "suggestions:read",
            allowed: SUGGESTION_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/search-suggestions",
            permission: "suggestions:create",
            allowed: &["super_admin"],
            success: StatusCode::CREATED,
        },
        Route {
            method: "POST",
            path: "/api/admin/search-suggestions/import",
            permission: "suggestions:create",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/search-suggestions/{id}",
            permission: "suggestions:read",
            allowed: SUGGESTION_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "PATCH",
            path: "/api/admin/search-suggestions/{id}",
            permission: "suggestions:update",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
        Route {
            method: "DELETE",
            path: "/api/admin/search-suggestions/{id}",
            permission: "suggestions:delete",
            allowed: &["super_admin"],
            success: StatusCode::NO_CONTENT,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/overview",
            permission: "analytics:read",
            allowed: ANALYTICS_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/funnel",
            permission: "analytics:read",
            allowed: ANALYTICS_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/retention",
            permission: "analytics:read",
            allowed: ANALYTICS_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/vitals",
            permission: "analytics:read",
            allowed: ANALYTICS_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/errors/top",
            permission: "analytics:read",
            allowed: ANALYTICS_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/analytics/export/{report}",
            permission: "analytics:export",
            allowed: ANALYTICS_EXPORTERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/models",
            permission: "models:read",
            allowed: MODEL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "GET",
            path: "/api/admin/models/{name}",
            permission: "models:read",
            allowed: MODEL_READERS,
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/models/{name}/versions/{version}/activate",
            permission: "models:update",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/models/{name}/rollback",
            permission: "models:update",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
        Route {
            method: "POST",
            path: "/api/admin/privacy/erasure",
            permission: "privacy:delete",
            allowed: &["super_admin"],
            success: StatusCode::OK,
        },
    ]
}

/// A concrete request for `route`: fresh targets for mutations so every
/// allowed actor's call can succeed.
async fn request_for(app: &TestApp, route: &Route, n: usize) -> (String, Option<Value>) {
    let target = format!("target_{n}");
    match (route.method, route.path) {
        ("POST", "/api/admin/users") => {
            app.user(&target).await;
            (
                route.path.to_owned(),
                Some(json!({"userId": target, "role": "moderator"})),
            )
        }
        ("GET", "/api/admin/users/{userId}") => {
            app.user(&target).await;
            (format!("/api/admin/users/{target}"), None)
        }
        (_, "/api/admin/users/{userId}") => {
            app.admin(&target, "moderator", None).await;
            // A change every holder of users:update may make: within their own
            // grants, on an admin who holds no more than they do.
            let body = (route.method == "PATCH")
                .then(|| json!({"role": "moderator", "permissions": null}));
            (format!("/api/admin/users/{target}"), body)
        }
        (_, "/api/admin/errors/{id}") => {
            app.error_group(&target, &format!("fp-{n}"), "error", "boom")
                .await;
            let body =
                (route.method == "PATCH").then(|| json!({"resolved": true, "notes": "fixed"}));
            (format!("/api/admin/errors/{target}"), body)
        }
        ("POST", "/api/admin/flags") => (
            route.path.to_owned(),
            Some(json!({"key": format!("flag-{n}"), "name": "A flag"})),
        ),
        (_, "/api/admin/flags/{key}") => {
            app.experiment(&target, "stopped").await;
            let body = (route.method == "PATCH").then(|| json!({"enabled": false}));
            (format!("/api/admin/flags/{target}"), body)
        }
        (_, path) if path.starts_with("/api/admin/experiments/{key}/") => {
            let step = path.rsplit('/').next().unwrap_or_default();
            let status = match step {
                "start" => "draft",
                "resume" => "paused",
                _ => "running",
            };
            app.experiment(&target, status).await;
            (format!("/api/admin/experiments/{target}/{step}"), None)
        }
        ("POST", "/api/admin/deals") => (
            route.path.to_owned(),
            Some(
                json!({"title": format!("Deal {n}"), "description": "Seven nights.",
                "destination": {"airportCode": "LIS", "city": "Lisbon", "country": "Portugal"},
                "origin": "JFK", "originalPrice": 900.0, "discountedPrice": 500.0}),
            ),
        ),
        (_, path) if path.starts_with("/api/admin/deals/{id}") => {
            app.deal(&target, n).await;
            let body = match route.method {
                "PATCH" => Some(json!({"featured": true})),
                "POST" => Some(json!({"auditId": app.created_audit_row("deals", &target).await})),
                _ => None,
            };
            (path.replace("{id}", &target), body)
        }
        ("POST", "/api/admin/destinations") => (
            route.path.to_owned(),
            Some(
                json!({"airportCode": iata(n), "city": format!("City {n}"), "country": "Portugal",
                "region": "Europe", "description": "Hills.", "shortDescription": "Hills.",
                "priceRange": "$$"}),
            ),
        ),
        (_, path) if path.starts_with("/api/admin/destinations/{id}") => {
            app.destination(&target, &iata(n)).await;
            let body = match route.method {
                "PATCH" => Some(json!({"trending": true})),
                "POST" => {
                    Some(json!({"auditId": app.created_audit_row("destinations", &target).await}))
                }
                _ => None,
            };
            (path.replace("{id}", &target), body)
        }
        ("POST", "/api/admin/email-templates") => (
            route.path.to_owned(),
            Some(
                json!({"key": format!("template-{n}"), "name": format!("Template {n}"),
                "subject": "Hello", "body": "<p>Hello</p>", "variables": []}),
            ),
        ),
        (_, path) if path.starts_with("/api/admin/email-templates/{key}") => {
            let key = format!("template-{n}");
            app.email_template(&key).await;
            let body = match path.rsplit('/').next().unwrap_or_default() {
                "{key}" => (route.method == "PATCH").then(|| json!({"subject": "Hi"})),
                "render" | "test" => Some(json!({"model": {}})),
                "restore" => Some(json!({"auditId": app.created_audit_row("emails", &key).await})),
                _ => None,
            };
            (path.replace("{key}", &key), body)
        }
        ("POST", "/api/admin/search-suggestions") => (
            route.path.to_owned(),
            Some(
                json!({"query": format!("City {n}"), "type": "city", "name": format!("City {n}"),
                "country": "Portugal"}),
            ),
        ),
        ("POST", "/api/admin/search-suggestions/import") => (
            route.path.to_owned(),
            Some(
                json!([{"query": format!("City {n}"), "type": "city", "name": format!("City {n}"),
                "country": "Portugal"}]),
            ),
        ),
        (_, "/api/admin/search-suggestions/{id}") => {
            app.suggestion(&target, n).await;
            let body = (route.method == "PATCH").then(|| json!({"popularity": 5}));
            (format!("/api/admin/search-suggestions/{target}"), body)
        }
        ("GET", "/api/admin/analytics/export/{report}") => (
            "/api/admin/analytics/export/overview?from=2026-11-01&to=2026-11-08&granularity=day"
                .to_owned(),
            None,
        ),
        ("GET", path) if path.starts_with("/api/admin/analytics/") => {
            (format!("{path}?from=2026-11-01&to=2026-11-08"), None)
        }
        ("POST", "/api/admin/privacy/erasure") => (
            route.path.to_owned(),
            Some(json!({"sessionId": format!("session-{n}")})),
        ),
        (_, path) if path.starts_with("/api/admin/models") => {
            let versions = price_model_versions(app).await;
            let uri = path
                .replace("{name}", "price")
                .replace("{version}", &versions[0]);
            (uri, None)
        }
        (_, path) => (path.to_owned(), None),
    }
}

/// The versions of the `price` model, oldest first: two trained on
/// synthetic fares the first time a registry route is asked for, the
/// newest active, so an activation and a rollback each have a target.
async fn price_model_versions(app: &TestApp) -> Vec<String> {
    let versions = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|row| row.get(0)).collect()
    };
    let query = r#"SELECT "version" FROM "bundle"."model_versions" WHERE "name" = 'price' ORDER BY "trainedAt", "version""#;
    let existing = versions(app.client.query(query, &[]).await.expect("versions"));
    if existing.len() >= 2 {
        return existing;
    }
    crate::training::synthetic_fares(app, 7, 1_500).await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    for _ in 0..2 {
        let outcome = admin::models::training::run(
            &mut client,
            "price",
            true,
            admin::bootstrap::Channel::Cli,
        )
        .await
        .expect("train");
        assert_eq!(outcome["activated"], true, "{outcome}");
    }
    versions(app.client.query(query, &[]).await.expect("versions"))
}

/// A distinct IATA-shaped code for the `n`th request.
fn iata(n: usize) -> String {
    let letter = |k: usize| char::from(b'A' + u8::try_from(k % 26).expect("below 26"));
    [letter(n / 676), letter(n / 26), letter(n)]
        .iter()
        .collect()
}

/// Whether the cms function serves `path` (it serves the CMS's admin
/// routes; the admin function the rest).
fn served_by_cms(path: &str) -> bool {
    [
        "/api/admin/deals",
        "/api/admin/destinations",
        "/api/admin/email-templates",
        "/api/admin/search-suggestions",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

#[tokio::test]
async fn every_admin_route_answers_every_role_as_its_permission_says() {
    let app = spawn_app().await;
    // The cms function's admin routes, built by its own constructor on the
    // same database and secret.
    let cms = cms::App::build(&app.db.env(&[("NEXTAUTH_SECRET", &crate::fixture_secret())]))
        .expect("the cms function");
    let router_for = |path: &str| {
        if served_by_cms(path) {
            cms.router()
        } else {
            app.function.router()
        }
    };
    let mut tokens = Vec::new();
    for (name, role, permissions) in actors() {
        let id = format!("actor_{}", name.replace(['+', '*', ':', '-'], "_"));
        tokens.push((name, app.admin(&id, role, permissions).await));
    }
    let mut n = 0;
    let mut failures = Vec::new();
    for route in routes() {
        n += 1;
        let (uri, body) = request_for(&app, &route, n).await;
        let status = app
            .send_via(
                router_for(route.path),
                route.method,
                &uri,
                None,
                body.clone(),
            )
            .await
            .status;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!(
                "{} {} without a session: {status}",
                route.method, route.path
            ));
        }
        for (actor, token) in &tokens {
            n += 1;
            let (uri, body) = request_for(&app, &route, n).await;
            let answer = app
                .send_via(
                    router_for(route.path),
                    route.method,
                    &uri,
                    Some(token),
                    body,
                )
                .await;
            let expected = if route.allowed.contains(actor) {
                route.success
            } else {
                StatusCode::FORBIDDEN
            };
            if answer.status != expected {
                failures.push(format!(
                    "{} {} as {actor}: expected {expected}, got {} {}",
                    route.method,
                    route.path,
                    answer.status,
                    String::from_utf8_lossy(&answer.bytes)
                ));
            }
            if expected == StatusCode::FORBIDDEN {
                let message = answer.json()["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !message.contains(route.permission) {
                    failures.push(format!(
                        "{} {} as {actor}: 403 does not name {}: {message}",
                        route.method, route.path, route.permission
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_refused_attempt_is_in_the_audit_trail() {
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
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["success"], false);
    assert_eq!(rows[0]["action"], "read");
    assert_eq!(rows[0]["resource"], "audit_logs");
    assert_eq!(rows[0]["userId"], "mod");
    assert_eq!(rows[0]["userRole"], "moderator");
    assert_eq!(rows[0]["ipAddress"], "198.51.100.7");
    assert!(
        rows[0]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("audit_logs:read")
    );
}

fn admin_only(routes: BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    routes
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/admin"))
        .collect()
}

#[test]
fn every_deployed_and_locally_served_admin_route_declares_its_permission_here() {
    let declared: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let deployed = admin_only(testkit::deployed_routes());
    assert!(
        !deployed.is_empty(),
        "no admin routes found in template.yaml"
    );
    assert!(
        deployed.iter().all(|(_, p)| !p.contains('+')),
        "greedy admin paths would reach routes this table does not know"
    );
    assert_eq!(deployed, declared, "template.yaml vs the permission table");
    assert_eq!(
        admin_only(testkit::watched_routes()),
        declared,
        "the watch router vs the permission table"
    );
}
