//! Every admin route x every role x custom overrides, with the expected
//! 401/403/2xx, and a check that every admin route deployed (template.yaml)
//! or served locally (the watch router) is in this table, so a new route
//! without a declared permission fails here.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

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
        (_, path) => (path.to_owned(), None),
    }
}

#[tokio::test]
async fn every_admin_route_answers_every_role_as_its_permission_says() {
    let app = spawn_app().await;
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
            .send(route.method, &uri, None, body.clone())
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
            let answer = app.send(route.method, &uri, Some(token), body).await;
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
