use schema::{MigrateError, Migration, Migrator, migrations};
use testkit::TestDatabase;

use crate::table_exists;

fn with_a_broken_migration() -> Migrator {
    let mut list = migrations::embedded();
    list.push(Migration::new(
        "20991231000000_broken",
        r#"CREATE TABLE "half_done" ("id" TEXT PRIMARY KEY);
           ALTER TABLE "deals" ADD COLUMN "extra" TEXT;
           SELECT no_such_function();"#,
    ));
    Migrator::new(list)
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_of_itself_behind() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let error = with_a_broken_migration()
        .up(&mut client)
        .await
        .expect_err("must fail");
    assert!(
        matches!(error, MigrateError::Failed { ref migration, .. } if migration == "20991231000000_broken"),
        "{error}"
    );
    assert!(!table_exists(&client, "half_done").await);
    let extra: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'deals' AND column_name = 'extra'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(extra, 0);
    assert!(
        table_exists(&client, "deals").await,
        "earlier migrations stay applied"
    );
}

#[tokio::test]
async fn a_failure_is_recorded_with_its_cause_for_operators() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let _ = with_a_broken_migration().up(&mut client).await;
    let row = client
        .query_one(
            r#"SELECT "finished_at" IS NULL, "rolled_back_at" IS NULL, "logs" FROM "bundle"."migrations" WHERE "migration_name" = '20991231000000_broken'"#,
            &[],
        )
        .await
        .expect("failure row");
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
    let logs: String = row.get(2);
    assert!(
        logs.contains("no_such_function") && logs.contains("42883"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_recorded_failure_blocks_later_runs_with_a_clear_message() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let _ = with_a_broken_migration().up(&mut client).await;
    let error = Migrator::embedded()
        .up(&mut client)
        .await
        .expect_err("blocked");
    let message = error.to_string();
    assert!(matches!(error, MigrateError::Blocked { .. }));
    assert!(message.contains("20991231000000_broken"), "{message}");
    assert!(
        message.contains("migrate resolve --rolled-back"),
        "{message}"
    );
}

#[tokio::test]
async fn resolving_a_failure_as_rolled_back_lets_a_fixed_migration_apply() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let _ = with_a_broken_migration().up(&mut client).await;
    Migrator::embedded()
        .resolve_rolled_back(&mut client, "20991231000000_broken")
        .await
        .expect("resolve");
    let mut fixed = migrations::embedded();
    fixed.push(Migration::new(
        "20991231000000_broken",
        r#"CREATE TABLE "half_done" ("id" TEXT PRIMARY KEY)"#,
    ));
    let report = Migrator::new(fixed)
        .up(&mut client)
        .await
        .expect("up after resolve");
    assert_eq!(report.applied, ["20991231000000_broken"]);
    assert!(table_exists(&client, "half_done").await);
}

#[tokio::test]
async fn resolving_a_migration_that_did_not_fail_is_refused() {
    let db = TestDatabase::migrated().await;
    let mut client = db.connect().await;
    let error = Migrator::embedded()
        .resolve_rolled_back(&mut client, migrations::CONTRACT_MIGRATION)
        .await
        .expect_err("nothing to resolve");
    assert!(matches!(error, MigrateError::NothingToResolve(_)));
}
