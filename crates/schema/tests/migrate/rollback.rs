use schema::{MigrateError, Migrator, contract, migrations};
use testkit::TestDatabase;

use crate::table_exists;

/// The bundle migration that lives on "audit_logs" and goes with it.
/// Also in schema `audit_trail`: it goes with the chain.
const AUDIT_AT_SCALE_MIGRATION: &str = "20261130140000_audit_checkpoints_and_refusal_windows";
const SENTRY_EVENTS_MIGRATION: &str = "20261130180000_sentry_events";
const EXPERIMENT_CONVERSIONS_MIGRATION: &str = "20261130200000_experiment_conversions";
const SEARCH_POPULARITY_MIGRATION: &str = "20261201100000_search_popularity";
const DESTINATION_SEARCHES_MIGRATION: &str = "20261201110000_destination_searches";
const ANALYTICS_ROLLUPS_MIGRATION: &str = "20261201120000_analytics_rollups";
const PRICE_MODELS_MIGRATION: &str = "20261201130000_price_models";
const PREDICTION_OUTCOMES_MIGRATION: &str = "20261201140000_prediction_outcomes";
const METRIC_SERIES_MIGRATION: &str = "20261201150000_metric_series";
const AUDIT_PSEUDONYMS_MIGRATION: &str = "20261201160000_audit_pseudonyms";
const AUDIT_TRAIL_MIGRATION: &str = "20251125090000_audit_trail_tamper_evidence";

#[tokio::test]
async fn down_without_confirmation_is_refused_and_changes_nothing() {
    let db = TestDatabase::migrated().await;
    let mut client = db.connect().await;
    let error = Migrator::embedded()
        .down(&mut client, false)
        .await
        .expect_err("refused");
    assert!(matches!(error, MigrateError::ConfirmationRequired));
    assert!(table_exists(&client, "deals").await);
}

#[tokio::test]
async fn down_drops_the_seventeen_tables_and_the_record_but_keeps_users() {
    let db = TestDatabase::migrated().await;
    let mut client = db.connect().await;
    let report = Migrator::embedded()
        .down(&mut client, true)
        .await
        .expect("down");
    assert_eq!(report.dropped_tables.len(), 17);
    assert_eq!(
        report.removed_records,
        [
            migrations::CONTRACT_MIGRATION,
            AUDIT_TRAIL_MIGRATION,
            AUDIT_AT_SCALE_MIGRATION,
            SENTRY_EVENTS_MIGRATION,
            EXPERIMENT_CONVERSIONS_MIGRATION,
            SEARCH_POPULARITY_MIGRATION,
            DESTINATION_SEARCHES_MIGRATION,
            ANALYTICS_ROLLUPS_MIGRATION,
            PRICE_MODELS_MIGRATION,
            PREDICTION_OUTCOMES_MIGRATION,
            METRIC_SERIES_MIGRATION,
            AUDIT_PSEUDONYMS_MIGRATION
        ]
    );
    let chain_left: bool = client
        .query_one("SELECT to_regnamespace('audit_trail') IS NOT NULL", &[])
        .await
        .expect("schema lookup")
        .get(0);
    assert!(!chain_left, "the audit chain must go with audit_logs");
    for table in contract::Contract::embedded().table_names() {
        assert!(!table_exists(&client, &table).await, "{table}");
    }
    assert!(table_exists(&client, "users").await);
}

#[tokio::test]
async fn up_after_down_restores_the_contract() {
    let db = TestDatabase::migrated().await;
    let mut client = db.connect().await;
    Migrator::embedded()
        .down(&mut client, true)
        .await
        .expect("down");
    let report = Migrator::embedded().up(&mut client).await.expect("up");
    assert_eq!(
        report.applied,
        [
            migrations::CONTRACT_MIGRATION,
            AUDIT_TRAIL_MIGRATION,
            AUDIT_AT_SCALE_MIGRATION,
            SENTRY_EVENTS_MIGRATION,
            EXPERIMENT_CONVERSIONS_MIGRATION,
            SEARCH_POPULARITY_MIGRATION,
            DESTINATION_SEARCHES_MIGRATION,
            ANALYTICS_ROLLUPS_MIGRATION,
            PRICE_MODELS_MIGRATION,
            PREDICTION_OUTCOMES_MIGRATION,
            METRIC_SERIES_MIGRATION,
            AUDIT_PSEUDONYMS_MIGRATION
        ]
    );
    let (_, differences) = contract::verify(&client).await.expect("verify");
    assert!(differences.is_empty(), "{differences:#?}");
}
