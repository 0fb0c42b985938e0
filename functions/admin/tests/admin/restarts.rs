//! Admin changes and their audit rows survive the database restarting
//! under load together or not at all: workers append notes with unique
//! tokens to error groups while a durable private cluster is stopped (fast
//! and immediate) and started; afterwards every change that was answered
//! 200 is stored with exactly one audit row, and no audit row records a
//! change that is not stored.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use platform::{config::Env, connection::ConnectionSettings, lambda::Function};
use serde_json::{Value, json};
use testkit::{ClusterOptions, LocalCluster, Shutdown};

const WORKERS: usize = 3;

#[derive(Default)]
struct Outcomes {
    acknowledged: BTreeSet<String>,
    unavailable: usize,
    other: Vec<String>,
}

async fn connect(url: &str) -> tokio_postgres::Client {
    platform::db::connect(&ConnectionSettings::parse(url).expect("url"))
        .await
        .expect("connection")
}

async fn work(
    function: admin::App,
    token: String,
    worker: usize,
    running: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let mut n = 0;
    while running.load(Ordering::Relaxed) {
        n += 1;
        let mark = format!("w{worker}-n{n}");
        let request = Request::patch(format!("/api/admin/errors/group-{worker}"))
            .header("content-type", "application/json")
            .header("cookie", format!("next-auth.session-token={token}"))
            .body(Body::from(
                json!({"resolved": n % 2 == 0, "notes": mark}).to_string(),
            ))
            .expect("request");
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            testkit::send(function.router(), request),
        )
        .await;
        let unavailable = {
            let mut outcomes = outcomes.lock().expect("outcomes");
            match answer {
                Ok((StatusCode::OK, _, _)) => {
                    outcomes.acknowledged.insert(mark);
                    false
                }
                Ok((StatusCode::SERVICE_UNAVAILABLE, headers, _))
                    if headers.contains_key("retry-after") =>
                {
                    outcomes.unavailable += 1;
                    true
                }
                Ok((status, _, body)) => {
                    outcomes
                        .other
                        .push(format!("{status}: {}", String::from_utf8_lossy(&body)));
                    false
                }
                Err(_) => {
                    outcomes.other.push("no answer within 15 s".into());
                    false
                }
            }
        };
        if unavailable {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The token of a note line: `[2026-11-30 10:00 UTC, who, resolved] w0-n3`.
fn mark_of(line: &str) -> Option<String> {
    line.rsplit("] ").next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_is_stored_with_exactly_one_audit_row_across_restarts() {
    let cluster = LocalCluster::start(&ClusterOptions {
        durable: true,
        settings: Some("commit_delay = 20000\ncommit_siblings = 0".into()),
        ..ClusterOptions::default()
    })
    .expect("a durable cluster of its own");
    cluster.psql("CREATE DATABASE admin").expect("database");
    let url = cluster.admin_url("admin");
    let mut client = connect(&url).await;
    schema::Migrator::embedded()
        .up(&mut client)
        .await
        .expect("migrated");
    client
        .batch_execute(
            r#"INSERT INTO "users" ("id", "email", "name", "updatedAt") VALUES ('root', 'root@example.com', 'root', now());
               INSERT INTO "admin_users" ("id", "userId", "role", "updatedAt") VALUES ('root', 'root', 'super_admin', now());"#,
        )
        .await
        .expect("an admin");
    for worker in 0..WORKERS {
        client
            .execute(
                r#"INSERT INTO "error_logs" ("id", "message", "url", "sessionId", "severity", "fingerprint", "count", "timestamp")
                   VALUES ($1, 'boom', 'https://deals.example/', 's', 'error', $1, 1, now())"#,
                &[&format!("group-{worker}")],
            )
            .await
            .expect("an error group");
    }
    drop(client);
    let secret = crate::fixture_secret();
    let function = admin::App::build(&Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("NEXTAUTH_SECRET", secret.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "1000"),
        ("DB_POOL_MAX_SIZE", "4"),
    ]))
    .expect("the function");
    let token = crate::v4_token(&secret, "root");

    let running = Arc::new(AtomicBool::new(true));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(work(
                function.clone(),
                token.clone(),
                w,
                running.clone(),
                outcomes.clone(),
            ))
        })
        .collect();
    let schedule = [
        (Shutdown::Immediate, 300),
        (Shutdown::Fast, 1_500),
        (Shutdown::Immediate, 1_500),
        (Shutdown::Immediate, 300),
    ];
    let restarts = schedule.len() * testkit::restart_rounds();
    for &(mode, outage) in schedule.iter().cycle().take(restarts) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| cluster.stop(mode)).expect("stopped");
        tokio::time::sleep(Duration::from_millis(outage)).await;
        tokio::task::block_in_place(|| cluster.restart()).expect("started");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    let client = connect(&url).await;
    let stored: BTreeSet<String> = client
        .query(r#"SELECT "notes" FROM "error_logs""#, &[])
        .await
        .expect("notes")
        .iter()
        .filter_map(|row| row.get::<_, Option<String>>(0))
        .flat_map(|notes| notes.lines().filter_map(mark_of).collect::<Vec<_>>())
        .collect();
    let mut audited: BTreeMap<String, usize> = BTreeMap::new();
    for row in client
        .query(
            r#"SELECT "changes" FROM "audit_logs" WHERE "success" AND "resource" = 'errors'"#,
            &[],
        )
        .await
        .expect("audit rows")
    {
        let changes: Value = row.get(0);
        let last = changes["after"]["notes"]
            .as_str()
            .and_then(|notes| notes.lines().last())
            .and_then(mark_of)
            .expect("each change appends a note");
        *audited.entry(last).or_default() += 1;
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    eprintln!(
        "admin restarts: {restarts} restarts, {} changes acknowledged, {} answered 503, {} stored, {} audited",
        outcomes.acknowledged.len(),
        outcomes.unavailable,
        stored.len(),
        audited.len()
    );
    let unstored: Vec<_> = outcomes.acknowledged.difference(&stored).collect();
    assert!(
        unstored.is_empty(),
        "acknowledged but not stored: {unstored:?}"
    );
    let unaudited: Vec<_> = stored
        .iter()
        .filter(|m| !audited.contains_key(*m))
        .collect();
    assert!(
        unaudited.is_empty(),
        "stored without an audit row: {unaudited:?}"
    );
    let twice: Vec<_> = audited.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "audited more than once: {twice:?}");
    let phantom: Vec<_> = audited.keys().filter(|m| !stored.contains(*m)).collect();
    assert!(
        phantom.is_empty(),
        "an audit row without its change: {phantom:?}"
    );
    assert!(
        outcomes.other.is_empty(),
        "answers other than 200 and 503: {:?}",
        outcomes.other
    );
    assert!(
        outcomes.unavailable > 0,
        "no request met an outage: the test proved nothing"
    );
    let verified = admin_verification(&function, &token).await;
    assert_eq!(verified["intact"], true, "{verified}");
}

async fn admin_verification(function: &admin::App, token: &str) -> Value {
    let request = Request::get("/api/admin/audit/verify")
        .header("cookie", format!("next-auth.session-token={token}"))
        .body(Body::empty())
        .expect("request");
    testkit::call(function.router(), request, StatusCode::OK)
        .await
        .1
}
