use std::time::{Duration, Instant};

use testkit::fixture;

use crate::{closed_port, dependency, insert_check, invoke, rows, spawn_app};

#[tokio::test]
async fn a_schedule_payload_writes_one_row_per_service() {
    let base = dependency().await;
    let targets = format!("search={base}/ok,payments={base}/broken");
    let app = spawn_app(&[("HEALTH_HTTP_TARGETS", &targets)]).await;
    let result = invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    assert_eq!(result["checks"].as_array().map(Vec::len), Some(3));
    let recorded: Vec<(String, String)> = rows(&app.db)
        .await
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        recorded,
        [
            ("database".to_owned(), "healthy".to_owned()),
            ("payments".to_owned(), "down".to_owned()),
            ("search".to_owned(), "healthy".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_healthy_row_carries_its_response_time() {
    let base = dependency().await;
    let app = spawn_app(&[("HEALTH_HTTP_TARGETS", &format!("search={base}/ok"))]).await;
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    let search = rows(&app.db)
        .await
        .into_iter()
        .find(|r| r.0 == "search")
        .expect("row");
    assert!(search.2.is_some_and(|ms| ms >= 0.0));
    assert_eq!(search.3, None);
}

#[tokio::test]
async fn a_dependency_on_a_closed_port_is_down_without_hanging() {
    let target = format!("gone=http://127.0.0.1:{}/", closed_port());
    let app = spawn_app(&[
        ("HEALTH_HTTP_TARGETS", &target),
        ("HEALTH_HTTP_TIMEOUT_MS", "3000"),
    ])
    .await;
    let started = Instant::now();
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let gone = rows(&app.db)
        .await
        .into_iter()
        .find(|r| r.0 == "gone")
        .expect("row");
    assert_eq!(gone.1, "down");
    assert!(gone.3.is_some_and(|e| e.contains("connection failed")));
}

#[tokio::test]
async fn a_dependency_that_never_answers_is_down_after_the_timeout() {
    let base = dependency().await;
    let app = spawn_app(&[
        ("HEALTH_HTTP_TARGETS", &format!("stuck={base}/hang")),
        ("HEALTH_HTTP_TIMEOUT_MS", "300"),
    ])
    .await;
    let started = Instant::now();
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let stuck = rows(&app.db)
        .await
        .into_iter()
        .find(|r| r.0 == "stuck")
        .expect("row");
    assert_eq!(stuck.1, "down");
    assert!(stuck.3.is_some_and(|e| e.contains("timed out")));
}

#[tokio::test]
async fn unauthorized_and_forbidden_count_as_reachable() {
    let base = dependency().await;
    let targets = format!("a={base}/unauthorized,b={base}/forbidden");
    let app = spawn_app(&[("HEALTH_HTTP_TARGETS", &targets)]).await;
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    let statuses: Vec<String> = rows(&app.db)
        .await
        .into_iter()
        .filter(|r| r.0 != "database")
        .map(|r| r.1)
        .collect();
    assert_eq!(statuses, ["healthy", "healthy"]);
}

#[tokio::test]
async fn a_dependency_slower_than_the_threshold_is_degraded() {
    let base = dependency().await;
    let app = spawn_app(&[
        ("HEALTH_HTTP_TARGETS", &format!("slow={base}/slow")),
        ("HEALTH_DEGRADED_MS", "100"),
        ("HEALTH_HTTP_TIMEOUT_MS", "5000"),
    ])
    .await;
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    let slow = rows(&app.db)
        .await
        .into_iter()
        .find(|r| r.0 == "slow")
        .expect("row");
    assert_eq!(slow.1, "degraded");
    assert!(slow.2.is_some_and(|ms| ms >= 400.0));
}

#[tokio::test]
async fn the_scheduled_run_prunes_rows_older_than_the_retention() {
    let app = spawn_app(&[("HEALTH_RETENTION_DAYS", "30")]).await;
    insert_check(&app.db, "old", "healthy", chrono::Duration::days(31)).await;
    insert_check(&app.db, "recent", "healthy", chrono::Duration::days(29)).await;
    invoke(&app.function, fixture("eventbridge-schedule.json")).await;
    let services: Vec<String> = rows(&app.db).await.into_iter().map(|r| r.0).collect();
    assert_eq!(services, ["database", "recent"]);
}

#[tokio::test]
async fn a_direct_check_command_runs_the_probes_too() {
    let app = spawn_app(&[]).await;
    invoke(&app.function, serde_json::json!({"command": "check"})).await;
    assert_eq!(rows(&app.db).await.len(), 1);
}

#[tokio::test]
async fn a_scheduled_run_without_a_database_reports_an_error_instead_of_hanging() {
    let state = crate::unreachable_database();
    let started = Instant::now();
    let error = health::run_checks(&state.state)
        .await
        .expect_err("nothing can be recorded");
    assert!(
        format!("{error:#}").contains("recording health checks"),
        "{error:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_taken_while_the_database_was_down_are_recorded_once_it_is_back() {
    let cluster = testkit::LocalCluster::start(&testkit::ClusterOptions::default())
        .expect("a cluster of its own");
    cluster.psql("CREATE DATABASE health").expect("database");
    let url = cluster.admin_url("health");
    let mut client =
        platform::db::connect(&platform::connection::ConnectionSettings::parse(&url).expect("url"))
            .await
            .expect("connection");
    schema::Migrator::embedded()
        .up(&mut client)
        .await
        .expect("migrated");
    let function = health::App::build(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "500"),
    ]))
    .expect("the function");

    tokio::task::block_in_place(|| cluster.stop(testkit::Shutdown::Fast)).expect("stopped");
    let down = health::run_checks(&function.state).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::task::block_in_place(|| cluster.restart()).expect("restarted");
    health::run_checks(&function.state)
        .await
        .expect("recorded once the database is back");

    assert!(down.is_err(), "nothing could be recorded while it was down");
    let rows =
        platform::db::connect(&platform::connection::ConnectionSettings::parse(&url).expect("url"))
            .await
            .expect("connection")
            .query(
                r#"SELECT "status", "errorMessage" FROM "health_checks" ORDER BY "timestamp""#,
                &[],
            )
            .await
            .expect("rows");
    let seen: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        seen,
        vec![
            ("down".to_owned(), Some("connection failed".to_owned())),
            ("healthy".to_owned(), None),
        ]
    );
}
