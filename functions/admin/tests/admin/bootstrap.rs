//! `bootstrap-admin`: the first super_admin, from the command line or a
//! direct invoke, never over HTTP.

use admin::bootstrap::{BootstrapError, Channel, bootstrap_admin};
use admin::commands::{Command, execute};
use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn bootstrap_makes_an_existing_user_super_admin_and_is_audited() {
    let app = spawn_app().await;
    app.user("ada").await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let done = bootstrap_admin(&mut client, "Ada@Example.com", false, Channel::Cli)
        .await
        .expect("bootstrap");
    assert_eq!(done.user_id, "ada");
    assert_eq!(done.previous_role, "user");
    assert_eq!(app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'ada' AND "role" = 'super_admin'"#).await, 1);
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["resourceId"], "ada");
    assert_eq!(rows[0]["changes"]["after"]["role"], "super_admin");
    assert!(
        rows[0]["userRole"]
            .as_str()
            .unwrap_or_default()
            .contains("command line")
    );
}

#[tokio::test]
async fn bootstrap_refuses_while_a_super_admin_exists_unless_forced() {
    let app = spawn_app().await;
    app.admin("root", "super_admin", None).await;
    app.user("ada").await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let refused = bootstrap_admin(&mut client, "ada@example.com", false, Channel::Cli).await;
    assert_eq!(
        refused,
        Err(BootstrapError::AlreadyBootstrapped("root".into()))
    );
    let rows = app.audit_rows().await;
    assert_eq!(
        (rows.len(), &rows[0]["success"]),
        (1, &json!(false)),
        "the refusal is recorded"
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "userId" = 'ada'"#)
            .await,
        0
    );
    bootstrap_admin(&mut client, "ada@example.com", true, Channel::Cli)
        .await
        .expect("forced");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "admin_users" WHERE "role" = 'super_admin'"#)
            .await,
        2
    );
}

#[tokio::test]
async fn bootstrap_of_an_unknown_email_changes_nothing() {
    let app = spawn_app().await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let refused = bootstrap_admin(&mut client, "ghost@example.com", false, Channel::Cli).await;
    assert!(matches!(refused, Err(BootstrapError::NoSuchUser(_))));
    assert_eq!(app.count(r#"SELECT count(*) FROM "admin_users""#).await, 0);
}

#[tokio::test]
async fn the_direct_invoke_runs_bootstrap_and_verification() {
    let app = spawn_app().await;
    app.user("ada").await;
    let mut client = app.function.state.access.pool.get().await.expect("client");
    let command =
        Command::from_payload(json!({"command": "bootstrap-admin", "email": "ada@example.com"}))
            .expect("command");
    let outcome = execute(&mut client, &command, Channel::Lambda)
        .await
        .expect("bootstrap");
    assert_eq!(outcome["bootstrapped"]["userId"], "ada");
    let verify = Command::AuditVerify {
        mode: admin::commands::VerifyMode::Full,
        pass: None,
    };
    let report = execute(&mut client, &verify, Channel::Lambda)
        .await
        .expect("verify");
    assert_eq!(report["intact"], true);
    assert_eq!(report["links"], 1);
}
