//! The audit trail at scale: verification from checkpoints and in slices,
//! and refusals that cannot grow the trail at will.

use access::audit;
use axum::http::StatusCode;
use serde_json::Value;

use crate::{TestApp, spawn_app};

/// `n` audit rows as the Prisma application writes them, chained by the
/// trigger.
async fn rows(app: &TestApp, prefix: &str, n: usize) {
    for i in 0..n {
        app.client
            .execute(
                r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
                   VALUES ($1, 'app', 'app@example.com', 'admin', 'update', 'deals', 'deal-1')"#,
                &[&format!("{prefix}-{i}")],
            )
            .await
            .expect("audit row");
    }
}

async fn behind_the_triggers(app: &TestApp, sql: &str) {
    app.client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;"
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn pooled(app: &TestApp) -> platform::db::PooledClient {
    app.function
        .state
        .access
        .pool
        .get()
        .await
        .expect("connection")
}

fn kinds(report: &audit::Verification) -> Vec<String> {
    report
        .problems
        .iter()
        .map(|p| {
            serde_json::to_value(p).expect("json")["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn an_incremental_verification_starts_where_the_last_one_stopped() {
    let app = spawn_app().await;
    rows(&app, "a", 5).await;
    let mut client = pooled(&app).await;
    let first = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("first");
    rows(&app, "b", 3).await;

    let second = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("second");

    assert!(first.intact && second.intact, "{first:?} {second:?}");
    assert_eq!((first.from_seq, first.links), (0, 5));
    assert_eq!(second.from_seq, first.head_seq.expect("a head"));
    assert_eq!(second.links, 3);
    assert!(second.complete);
}

#[tokio::test]
async fn a_checkpoint_the_chain_no_longer_matches_is_reported() {
    let app = spawn_app().await;
    rows(&app, "a", 4).await;
    let mut client = pooled(&app).await;
    let first = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("first");
    let head = first.head_seq.expect("a head");
    behind_the_triggers(
        &app,
        &format!(
            r#"UPDATE "audit_trail"."chain" SET "hash" = repeat('f', 64) WHERE "seq" = {head}"#
        ),
    )
    .await;

    let second = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("second");

    assert!(!second.intact);
    assert_eq!(kinds(&second), ["checkpoint_mismatch"]);
}

#[tokio::test]
async fn a_full_pass_in_slices_finds_an_old_alteration_an_incremental_one_cannot() {
    let app = spawn_app().await;
    rows(&app, "a", 10).await;
    let mut client = pooled(&app).await;
    audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("a checkpoint at the head");
    behind_the_triggers(
        &app,
        r#"UPDATE "audit_logs" SET "resourceId" = 'deal-2' WHERE "id" = 'a-4'"#,
    )
    .await;
    let incremental = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("incremental");

    let mut slices = Vec::new();
    let mut pass: Option<String> = None;
    loop {
        let slice = audit::verify_slice(&mut client, pass.as_deref(), 3)
            .await
            .expect("slice");
        let done = slice.complete || slice.links == 0;
        pass.clone_from(&slice.pass);
        slices.push(slice);
        if done || slices.len() > 10 {
            break;
        }
    }

    assert!(
        incremental.intact,
        "nothing was appended since: {incremental:?}"
    );
    assert_eq!(slices[0].links, 3);
    assert_eq!(slices[1].from_seq, slices[0].head_seq.expect("a head"));
    let found: Vec<String> = slices.iter().flat_map(kinds).collect();
    assert_eq!(found, ["altered"], "{slices:?}");
    assert!(slices.iter().all(|s| s.pass == slices[0].pass));
}

#[tokio::test]
async fn a_back_dated_row_without_a_link_is_found_by_the_slice_covering_its_date() {
    let app = spawn_app().await;
    rows(&app, "a", 6).await;
    behind_the_triggers(
        &app,
        r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
           VALUES ('sneaked', 'x', 'x@example.com', 'admin', 'delete', 'users', 'u', now() - interval '1 second')"#,
    )
    .await;
    let mut client = pooled(&app).await;
    let mut found = Vec::new();
    let mut pass: Option<String> = None;
    for _ in 0..5 {
        let slice = audit::verify_slice(&mut client, pass.as_deref(), 2)
            .await
            .expect("slice");
        found.extend(kinds(&slice));
        pass.clone_from(&slice.pass);
        if slice.complete {
            break;
        }
    }
    assert!(found.contains(&"unchained".to_owned()), "{found:?}");
}

async fn refused_read(app: &TestApp, token: &str) {
    app.expect(
        "GET",
        "/api/admin/audit",
        Some(token),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn refusal_rows(app: &TestApp) -> Vec<Value> {
    app.audit_rows()
        .await
        .into_iter()
        .filter(|r| r["success"] == false)
        .collect()
}

#[tokio::test]
async fn identical_refusals_in_a_window_are_counted_on_one_row() {
    let app = spawn_app().await;
    app.user("curious").await;
    let token = app.token("curious");
    for _ in 0..30 {
        refused_read(&app, &token).await;
    }

    assert_eq!(refusal_rows(&app).await.len(), 1);
    let repeats: i32 = app
        .client
        .query_one(
            r#"SELECT "repeats" FROM "audit_trail"."refusal_windows""#,
            &[],
        )
        .await
        .expect("the window")
        .get(0);
    assert_eq!(repeats, 29);
}

#[tokio::test]
async fn a_closed_window_enters_the_trail_as_one_summary_row() {
    let app = spawn_app().await;
    app.user("curious").await;
    let token = app.token("curious");
    for _ in 0..5 {
        refused_read(&app, &token).await;
    }
    app.client
        .batch_execute(
            r#"UPDATE "audit_trail"."refusal_windows" SET "windowStart" = "windowStart" - interval '11 minutes'"#,
        )
        .await
        .expect("the window closed");

    refused_read(&app, &token).await;

    let refusals = refusal_rows(&app).await;
    assert_eq!(
        refusals.len(),
        3,
        "the first, the summary, the next window's first"
    );
    assert!(
        refusals[1]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused 4 more time(s)")),
        "{refusals:?}"
    );
    assert_eq!(refusals[1]["userId"], "curious");
}

#[tokio::test]
async fn the_schedule_closes_windows_nobody_refused_again_and_verifies() {
    let app = spawn_app().await;
    app.user("curious").await;
    let token = app.token("curious");
    for _ in 0..3 {
        refused_read(&app, &token).await;
    }
    app.client
        .batch_execute(
            r#"UPDATE "audit_trail"."refusal_windows" SET "windowStart" = "windowStart" - interval '11 minutes'"#,
        )
        .await
        .expect("the window closed");

    let outcome = platform::lambda::invoke(
        &app.function,
        lambda_runtime::LambdaEvent::new(
            testkit::fixture("eventbridge-schedule.json"),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("the scheduled run");

    assert_eq!(outcome["refusalWindowsClosed"], 1);
    assert_eq!(outcome["incremental"]["intact"], true, "{outcome}");
    assert_eq!(outcome["fullPassSlices"][0]["complete"], true, "{outcome}");
    let refusals = refusal_rows(&app).await;
    assert_eq!(refusals.len(), 2);
    assert!(
        refusals[1]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused 2 more time(s)"))
    );
}

#[tokio::test]
async fn the_unfinished_pass_is_the_one_whose_last_slice_stopped_short_of_the_head() {
    let app = spawn_app().await;
    rows(&app, "a", 5).await;
    let mut client = pooled(&app).await;
    let before = audit::unfinished_pass(&**client).await.expect("none yet");

    let first = audit::verify_slice(&mut client, None, 2)
        .await
        .expect("a first slice");
    let under_way = audit::unfinished_pass(&**client).await.expect("under way");
    let mut pass = first.pass.clone();
    for _ in 0..5 {
        let slice = audit::verify_slice(&mut client, pass.as_deref(), 2)
            .await
            .expect("slice");
        pass.clone_from(&slice.pass);
        if slice.complete {
            break;
        }
    }
    let after = audit::unfinished_pass(&**client).await.expect("finished");

    assert_eq!(before, None);
    assert!(first.pass.is_some() && !first.complete, "{first:?}");
    assert_eq!(under_way, first.pass);
    assert_eq!(after, None);
}

#[tokio::test]
async fn a_row_without_a_link_dated_shortly_before_the_checkpoint_is_found_incrementally() {
    // A writer whose clock runs behind dates its row before the checkpoint
    // that was made after it: the next incremental run must still look.
    let app = spawn_app().await;
    rows(&app, "a", 3).await;
    let mut client = pooled(&app).await;
    audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("a checkpoint at the head");
    behind_the_triggers(
        &app,
        r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
           VALUES ('sneaked', 'x', 'x@example.com', 'admin', 'delete', 'users', 'u', now() - interval '1 minute')"#,
    )
    .await;

    let next = audit::verify_incremental(&mut client, 1_000)
        .await
        .expect("incremental");

    assert_eq!(kinds(&next), ["unchained"], "{next:?}");
}

#[tokio::test]
async fn a_row_without_a_link_written_between_two_slices_is_found_by_the_rest_of_the_pass() {
    let app = spawn_app().await;
    rows(&app, "a", 6).await;
    let mut client = pooled(&app).await;
    let first = audit::verify_slice(&mut client, None, 2)
        .await
        .expect("a first slice");
    behind_the_triggers(
        &app,
        r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
           VALUES ('sneaked', 'x', 'x@example.com', 'admin', 'delete', 'users', 'u')"#,
    )
    .await;

    let mut found = Vec::new();
    let mut pass = first.pass.clone();
    for _ in 0..5 {
        let slice = audit::verify_slice(&mut client, pass.as_deref(), 2)
            .await
            .expect("slice");
        found.extend(kinds(&slice));
        pass.clone_from(&slice.pass);
        if slice.complete {
            break;
        }
    }

    // Rows chained within the same second: every later slice's window,
    // drift margin included, covers the sneaked row.
    assert!(first.intact, "{first:?}");
    assert!(!found.is_empty(), "missed");
    assert!(found.iter().all(|kind| kind == "unchained"), "{found:?}");
}

#[tokio::test]
async fn a_closed_window_without_repeats_adds_no_summary_row() {
    let app = spawn_app().await;
    app.user("curious").await;
    let token = app.token("curious");
    refused_read(&app, &token).await;
    app.client
        .batch_execute(
            r#"UPDATE "audit_trail"."refusal_windows" SET "windowStart" = "windowStart" - interval '11 minutes'"#,
        )
        .await
        .expect("the window closed");

    refused_read(&app, &token).await;

    let refusals = refusal_rows(&app).await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals.iter().all(|r| !r["errorMessage"]
            .as_str()
            .unwrap_or("")
            .starts_with("refused ")),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn an_open_window_is_not_closed_by_the_schedule() {
    let app = spawn_app().await;
    app.user("curious").await;
    let token = app.token("curious");
    for _ in 0..3 {
        refused_read(&app, &token).await;
    }
    let mut client = pooled(&app).await;

    let closed = audit::flush_refusal_windows(&mut client)
        .await
        .expect("flush");

    assert_eq!(closed, 0);
    assert_eq!(refusal_rows(&app).await.len(), 1);
}

#[tokio::test]
async fn the_hourly_run_prunes_sentry_event_ids_past_their_retention_and_keeps_the_rest() {
    let app = spawn_app().await;
    app.client
        .batch_execute(
            r#"INSERT INTO "bundle"."sentry_events" ("eventId", "projectId", "errorLogId", "receivedAt") VALUES
                 ('00000000-0000-4000-8000-000000000001', 42, 'e1', now() - interval '31 days'),
                 ('00000000-0000-4000-8000-000000000002', 42, 'e1', now() - interval '29 days'),
                 ('00000000-0000-4000-8000-000000000003', 42, 'e1', now())"#,
        )
        .await
        .expect("event ids");

    let outcome = platform::lambda::invoke(
        &app.function,
        lambda_runtime::LambdaEvent::new(
            testkit::fixture("eventbridge-schedule.json"),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("the scheduled run");

    assert_eq!(outcome["sentryEventIdsPruned"], 1, "{outcome}");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "bundle"."sentry_events""#)
            .await,
        2
    );
}
