//! The real Sentry SDKs send to the events function over HTTP: `@sentry/node`
//! from a script, and `@sentry/browser` from a page in headless Chromium on
//! another origin (tests/sentry/). Their events land in `error_logs`, the
//! repeated error as one group.
//!
//! Needs Node.js and npm (the packages are installed from the lock file on
//! first use) and Chromium (`CHROMIUM`, else `chromium` on the PATH; Debian:
//! `apt-get install chromium`; `.ci/run` installs it).

use serde_json::Value;

use crate::{
    TestApp,
    node::{chromium, free_port, serve},
    sentry::{KEY, PROJECT},
    spawn_app,
};

async fn run_node(script: &str, args: Vec<String>) -> Value {
    crate::node::run("sentry", script, args).await
}

async fn groups(app: &TestApp) -> Vec<(String, Option<String>, i32, String, Option<String>)> {
    app.db
        .connect()
        .await
        .query(
            r#"SELECT "message", "errorType", "count", "severity", "browser" FROM "error_logs" ORDER BY "message""#,
            &[],
        )
        .await
        .expect("error_logs")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect()
}

async fn releases(app: &TestApp) -> Vec<(Option<String>, Option<String>)> {
    app.db
        .connect()
        .await
        .query(
            r#"SELECT DISTINCT "release", "environment" FROM "bundle"."sentry_events""#,
            &[],
        )
        .await
        .expect("sentry_events")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_sentry_node_are_grouped_in_error_logs() {
    let app = spawn_app(&[(
        "SENTRY_DSNS",
        &format!("https://{KEY}@api.deals.example/{PROJECT}"),
    )])
    .await;
    let address = serve(&app).await;

    let sent = run_node(
        "node.mjs",
        vec![format!("http://{KEY}@{address}/{PROJECT}")],
    )
    .await;

    assert_eq!(
        sent["answers"],
        serde_json::json!([200, 200, 200, 200]),
        "{sent}"
    );
    let groups = groups(&app).await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    let (message, error_type, count, severity, runtime) = &groups[0];
    assert!(
        message.contains("Cannot read properties of undefined"),
        "{message}"
    );
    assert_eq!(error_type.as_deref(), Some("TypeError"));
    assert_eq!((*count, severity.as_str()), (2, "error"));
    assert!(
        runtime.as_deref().is_some_and(|r| r.starts_with("node")),
        "{runtime:?}"
    );
    assert_eq!(groups[1].0, "price feed slow");
    assert_eq!((groups[1].2, groups[1].3.as_str()), (2, "warning"));
    assert_eq!(
        releases(&app).await,
        [(Some("deals@2.0.0".into()), Some("ci".into()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_sentry_browser_on_another_origin_are_grouped_in_error_logs() {
    let page_port = free_port();
    let app = spawn_app(&[
        (
            "SENTRY_DSNS",
            &format!("https://{KEY}@api.deals.example/{PROJECT}"),
        ),
        (
            "CORS_ALLOWED_ORIGINS",
            &format!("http://127.0.0.1:{page_port}"),
        ),
    ])
    .await;
    let address = serve(&app).await;

    let sent = run_node(
        "browser.mjs",
        vec![
            format!("http://{KEY}@{address}/{PROJECT}"),
            page_port.to_string(),
            chromium(),
        ],
    )
    .await;

    assert_eq!(
        sent["statuses"],
        serde_json::json!([200, 200, 200]),
        "{sent}"
    );
    let groups = groups(&app).await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    let error = groups
        .iter()
        .find(|g| g.1.as_deref() == Some("TypeError"))
        .expect("the uncaught TypeError");
    assert_eq!(error.2, 2, "both clicks in one group: {groups:?}");
    assert_eq!(error.4.as_deref(), Some("Chrome"));
    assert!(
        groups
            .iter()
            .any(|g| g.0 == "no deals for this search" && g.3 == "warning")
    );
    assert_eq!(
        releases(&app).await,
        [(Some("deals@1.4.2".into()), Some("ci".into()))]
    );
}
