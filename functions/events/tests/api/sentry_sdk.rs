//! The real Sentry SDKs send to the events function over HTTP: `@sentry/node`
//! from a script, and `@sentry/browser` from a page in headless Chromium on
//! another origin (tests/sentry/). Their events land in `error_logs`, the
//! repeated error as one group.
//!
//! Needs Node.js and npm (the packages are installed from the lock file on
//! first use) and Chromium (`CHROMIUM`, else `chromium` on the PATH; Debian:
//! `apt-get install chromium`; `.ci/run` installs it).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use platform::lambda::Function;
use serde_json::Value;

use crate::{
    TestApp,
    sentry::{KEY, PROJECT},
    spawn_app,
};

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sentry")
}

/// `npm install` from the lock file, once per test binary.
fn install_packages() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(scripts())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("npm (Node.js) is needed to run the real Sentry SDKs");
        assert!(status.success(), "npm install in tests/sentry failed");
    });
}

/// The Chromium binary's path.
fn chromium() -> String {
    std::env::var("CHROMIUM").ok().unwrap_or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(|name| {
                let found = Command::new("sh")
                    .args(["-c", &format!("command -v {name}")])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())?;
                Some(String::from_utf8_lossy(&found.stdout).trim().to_owned())
            })
            .expect("Chromium is needed (apt-get install chromium, or set CHROMIUM)")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The function's router on a port of its own, as `cargo lambda watch`
/// serves it.
async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("its address");
    let router = app.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

async fn run_node(script: &str, args: Vec<String>) -> Value {
    tokio::task::spawn_blocking(install_packages)
        .await
        .expect("npm install");
    let script = scripts().join(script);
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args(&args)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}: {stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the script's JSON line")
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
