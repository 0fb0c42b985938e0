//! Running the real JavaScript clients (tests/<package>/, npm packages
//! installed from their lock files) against the function on a port of its
//! own, and headless Chromium for the browser ones.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

use platform::lambda::Function;
use serde_json::Value;

use crate::TestApp;

fn package(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(name)
}

/// `npm install` from the lock file, once per package and test binary.
fn install(name: &str) {
    static INSTALLED: OnceLock<Mutex<BTreeMap<String, ()>>> = OnceLock::new();
    let mut installed = INSTALLED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if installed.contains_key(name) {
        return;
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(package(name))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("npm (Node.js) is needed to run the real JavaScript clients");
    assert!(status.success(), "npm install in tests/{name} failed");
    installed.insert(name.to_owned(), ());
}

/// The Chromium binary's path.
pub fn chromium() -> String {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The function's router on a port of its own, as `cargo lambda watch`
/// serves it.
pub async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("its address");
    let router = app.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// Runs `tests/<package>/<script>` with `args`; returns the JSON of its
/// last line of output.
pub async fn run(package_name: &str, script: &str, args: Vec<String>) -> Value {
    let name = package_name.to_owned();
    tokio::task::spawn_blocking(move || install(&name))
        .await
        .expect("npm install");
    let script = package(package_name).join(script);
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
