//! Every event a client was told is stored survives the database
//! restarting under load, fast and immediate (a crash): clients send
//! batches of every write path (single INSERT, UNNEST, COPY, funnel
//! transaction) with unique keys while the server is stopped and started
//! six times; afterwards each key that was answered 202 is in the table.
//! During outages longer than the connect timeout the answers are 503s
//! with `Retry-After`, never a 500 or a hang, and service resumes soon after the server accepts
//! connections again.
//!
//! The server runs with PostgreSQL's default durability
//! (`synchronous_commit = on`): the shared test cluster's asynchronous
//! commits would lose acknowledged commits on an immediate shutdown by
//! design, and prove nothing.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use events::App;
use platform::{config::Env, lambda::Function};
use serde_json::{Value, json};
use testkit::{ClusterOptions, LocalCluster, Shutdown};

const CONNECT_TIMEOUT_MS: u64 = 1_000;
const WORKERS: usize = 4;

#[derive(Default)]
struct Outcomes {
    acknowledged: HashSet<String>,
    accepted: usize,
    unavailable: usize,
    other: Vec<String>,
    slowest_unavailable: Duration,
    last_accepted_at: Option<Instant>,
}

/// One request's events, by size: every write path in turn.
fn body(worker: usize, request: usize) -> (Value, Vec<String>) {
    // Half COPY batches: the path whose acknowledgement once came early.
    let sizes = [50, 1, 50, 31, 50, 40];
    let size = sizes[request % sizes.len()];
    let funnel = request % sizes.len() == 5;
    let keys: Vec<String> = (0..size)
        .map(|i| format!("w{worker}-r{request}-e{i}"))
        .collect();
    let events: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            if funnel && i == 0 {
                json!({"eventType": "funnel", "eventId": key,
                       "eventData": {"k": key, "stage": "checkout", "action": "view"}})
            } else {
                json!({"eventType": "page_view", "eventId": key, "eventData": {"k": key}})
            }
        })
        .collect();
    (
        json!({"sessionId": format!("s-{worker}"), "events": events}),
        keys,
    )
}

async fn send(app: &App, body: &Value) -> (StatusCode, Option<String>, Value) {
    let request = Request::post("/api/analytics/events")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, headers, bytes) = testkit::send(app.router(), request).await;
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn load(app: App, worker: usize, running: Arc<AtomicBool>, outcomes: Arc<Mutex<Outcomes>>) {
    let mut request = 0;
    while running.load(Ordering::Relaxed) {
        let (body, keys) = body(worker, request);
        request += 1;
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(15), send(&app, &body)).await;
        let took = started.elapsed();
        let unavailable = {
            let mut outcomes = outcomes.lock().expect("outcomes");
            match answer {
                Ok((StatusCode::ACCEPTED, _, answer)) => {
                    assert_eq!(answer["received"], keys.len(), "{answer}");
                    outcomes.acknowledged.extend(keys);
                    outcomes.accepted += 1;
                    outcomes.last_accepted_at = Some(Instant::now());
                    false
                }
                Ok((StatusCode::SERVICE_UNAVAILABLE, retry_after, answer))
                    if retry_after.is_some() && answer["error"]["code"] == "unavailable" =>
                {
                    outcomes.unavailable += 1;
                    outcomes.slowest_unavailable = outcomes.slowest_unavailable.max(took);
                    true
                }
                Ok((status, retry_after, answer)) => {
                    outcomes
                        .other
                        .push(format!("{status} (retry-after {retry_after:?}): {answer}"));
                    false
                }
                Err(_) => {
                    outcomes
                        .other
                        .push(format!("no answer within 15 s ({took:?})"));
                    false
                }
            }
        };
        if unavailable {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_fast_and_immediate_restarts_under_load() {
    let cluster = LocalCluster::start(&ClusterOptions {
        durable: true,
        // Every commit waits 50 ms before its WAL is written and flushed
        // (group commit's knob, without waiting for siblings): an answer
        // sent before the commit is durable then has a window wide enough
        // that an immediate shutdown lands in it, where in production it
        // is a rare race.
        settings: Some("commit_delay = 50000\ncommit_siblings = 0".into()),
        ..ClusterOptions::default()
    })
    .expect("a durable cluster of its own");
    cluster.psql("CREATE DATABASE intake").expect("database");
    let url = cluster.admin_url("intake");
    let mut migrating =
        platform::db::connect(&platform::connection::ConnectionSettings::parse(&url).expect("url"))
            .await
            .expect("connection");
    schema::Migrator::embedded()
        .up(&mut migrating)
        .await
        .expect("migrated");
    drop(migrating);

    let timeout = CONNECT_TIMEOUT_MS.to_string();
    let env = Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_POOL_MAX_SIZE", "4"),
        ("DB_CONNECT_TIMEOUT_MS", timeout.as_str()),
    ]);
    let app = App::build(&env).expect("the function");

    let running = Arc::new(AtomicBool::new(true));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(load(app.clone(), w, running.clone(), outcomes.clone())))
        .collect();

    let mut slowest_resumption = Duration::ZERO;
    // Short outages, which requests wait out (connections are retried within
    // the connect timeout), and outages longer than the connect timeout,
    // which requests are refused during.
    let schedule = [
        (Shutdown::Fast, 300),
        (Shutdown::Immediate, 1_500),
        (Shutdown::Immediate, 300),
        (Shutdown::Fast, 1_500),
        (Shutdown::Immediate, 300),
        (Shutdown::Immediate, 1_500),
    ];
    let restarts = schedule.len() * testkit::restart_rounds();
    for &(mode, outage) in schedule.iter().cycle().take(restarts) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        tokio::task::block_in_place(|| cluster.stop(mode)).expect("stopped");
        tokio::time::sleep(Duration::from_millis(outage)).await;
        tokio::task::block_in_place(|| cluster.restart()).expect("started");
        let accepting = Instant::now();
        loop {
            let resumed = outcomes
                .lock()
                .expect("outcomes")
                .last_accepted_at
                .is_some_and(|at| at > accepting);
            if resumed || accepting.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        slowest_resumption = slowest_resumption.max(accepting.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    let stored: HashSet<String> =
        platform::db::connect(&platform::connection::ConnectionSettings::parse(&url).expect("url"))
            .await
            .expect("connection")
            .query(r#"SELECT "eventData"->>'k' FROM "analytics_events""#, &[])
            .await
            .expect("rows")
            .iter()
            .map(|row| row.get(0))
            .collect();
    let outcomes = outcomes.lock().expect("outcomes");
    let missing: Vec<&String> = outcomes.acknowledged.difference(&stored).collect();
    eprintln!(
        "restarts: {restarts} restarts, {} requests answered 202 ({} events), {} answered 503 (slowest {:?}), \
         slowest resumption {:?} after the server accepted connections, {} acknowledged events missing",
        outcomes.accepted,
        outcomes.acknowledged.len(),
        outcomes.unavailable,
        outcomes.slowest_unavailable,
        slowest_resumption,
        missing.len(),
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert!(
        outcomes.other.is_empty(),
        "answers other than 202 and 503: {:?}",
        outcomes.other
    );
    assert!(
        outcomes.unavailable > 0,
        "no request met an outage: the test proved nothing"
    );
    assert!(
        outcomes.slowest_unavailable <= Duration::from_millis(CONNECT_TIMEOUT_MS + 1_000),
        "a 503 took {:?}, beyond the connect timeout",
        outcomes.slowest_unavailable
    );
    assert!(
        slowest_resumption <= Duration::from_secs(2),
        "service resumed {slowest_resumption:?} after the server accepted connections"
    );
}
