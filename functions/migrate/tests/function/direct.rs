use serde_json::json;
use testkit::TestDatabase;

use crate::{handler_for, invoke};

#[tokio::test]
async fn up_then_status_reports_every_migration_applied() {
    let db = TestDatabase::empty().await;
    let handler = handler_for(db.url());
    let up = invoke(&handler, json!({"command": "up"}))
        .await
        .expect("up");
    assert_eq!(up["ok"], true);
    assert_eq!(
        up["result"]["applied"].as_array().map(Vec::len),
        Some(schema::migrations::embedded().len())
    );
    let status = invoke(&handler, json!({"command": "status"}))
        .await
        .expect("status");
    let states: Vec<&str> = status["result"]["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .filter_map(|m| m["state"].as_str())
        .collect();
    assert_eq!(states.len(), schema::migrations::embedded().len());
    assert!(states.iter().all(|s| *s == "applied"), "{states:?}");
}

#[tokio::test]
async fn verify_reports_the_contract_figures_and_no_differences() {
    let db = TestDatabase::migrated().await;
    let verify = invoke(&handler_for(db.url()), json!({"command": "verify"}))
        .await
        .expect("verify");
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["result"]["differences"], json!([]));
    assert_eq!(verify["result"]["figures"]["tables"], 17);
    assert_eq!(verify["result"]["figures"]["regular_indexes"], 48);
}

#[tokio::test]
async fn verify_on_an_empty_database_is_not_ok() {
    let db = TestDatabase::empty().await;
    let verify = invoke(&handler_for(db.url()), json!({"command": "verify"}))
        .await
        .expect("verify");
    assert_eq!(verify["ok"], false);
    let differences = verify["result"]["differences"]
        .as_array()
        .expect("differences");
    let missing_tables = differences
        .iter()
        .filter(|d| {
            d.as_str()
                .is_some_and(|d| d.starts_with("table ") && d.ends_with("found missing"))
        })
        .count();
    assert_eq!(missing_tables, 17);
    assert_eq!(
        differences.len(),
        17 + 61 + 2,
        "tables, indexes and foreign keys are all missing"
    );
}

#[tokio::test]
async fn down_by_invoke_without_confirm_is_refused() {
    let db = TestDatabase::migrated().await;
    let error = invoke(&handler_for(db.url()), json!({"command": "down"}))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("confirmation"), "{error}");
}

#[tokio::test]
async fn an_unknown_command_is_an_error_that_lists_the_commands() {
    let db = TestDatabase::empty().await;
    let error = invoke(&handler_for(db.url()), json!({"command": "sideways"}))
        .await
        .expect_err("unknown");
    assert!(error.to_string().contains("\"up\""), "{error}");
}
