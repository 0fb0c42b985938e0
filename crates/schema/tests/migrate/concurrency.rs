use std::collections::HashMap;

use schema::Migrator;
use testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_runs_all_succeed_and_apply_each_migration_once() {
    let db = TestDatabase::empty().await;
    let mut runs = Vec::new();
    for _ in 0..8 {
        let mut client = db.connect().await;
        runs.push(tokio::spawn(async move {
            Migrator::embedded().up(&mut client).await
        }));
    }
    let mut applied: HashMap<String, usize> = HashMap::new();
    for run in runs {
        let report = run.await.expect("task").expect("every run succeeds");
        for name in report.applied {
            *applied.entry(name).or_default() += 1;
        }
    }
    let expected: HashMap<String, usize> = Migrator::embedded()
        .migrations()
        .iter()
        .map(|m| (m.name.clone(), 1))
        .collect();
    assert_eq!(applied, expected);
    let client = db.connect().await;
    let rows: i64 = client
        .query_one(
            r#"SELECT (SELECT count(*) FROM "_prisma_migrations") + (SELECT count(*) FROM "bundle"."migrations")"#,
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(usize::try_from(rows).expect("count"), expected.len());
}

#[tokio::test]
async fn a_rerun_on_a_migrated_database_applies_and_writes_nothing() {
    let db = TestDatabase::migrated().await;
    let mut client = db.connect().await;
    let before = crate::schema_snapshot(&client).await;
    let rows_before = ledger_rows(&client).await;
    let report = Migrator::embedded().up(&mut client).await.expect("rerun");
    assert!(report.applied.is_empty());
    assert_eq!(
        report.already_applied,
        Migrator::embedded().migrations().len()
    );
    assert_eq!(ledger_rows(&client).await, rows_before);
    assert_eq!(crate::schema_snapshot(&client).await, before);
}

async fn ledger_rows(client: &tokio_postgres::Client) -> Vec<String> {
    let mut rows = crate::rows_as_json(client, r#""_prisma_migrations""#).await;
    rows.extend(crate::rows_as_json(client, r#""bundle"."migrations""#).await);
    rows
}
