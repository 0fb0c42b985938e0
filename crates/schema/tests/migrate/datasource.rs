//! The Prisma datasource's schema holds only what the application declares:
//! the contract's tables, `users` and Prisma's own ledger. Everything the
//! bundle owns lives in schemas of its own, so `prisma migrate dev` reports
//! no drift and offers no reset.

use schema::{Migrator, contract::Contract};
use testkit::TestDatabase;

async fn datasource_tables(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn expected_tables() -> Vec<String> {
    let mut tables = Contract::embedded().table_names();
    tables.extend(["_prisma_migrations".to_owned(), "users".to_owned()]);
    tables.sort();
    tables
}

#[tokio::test]
async fn after_up_the_datasource_schema_holds_only_the_contract_users_and_prismas_ledger() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    assert_eq!(datasource_tables(&client).await, expected_tables());
}

#[tokio::test]
async fn a_ledger_left_in_the_datasource_schema_by_an_earlier_version_is_moved_with_its_rows() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    // What an earlier version left: every migration before the move applied,
    // the bundle's ledger in the datasource's schema.
    let earlier: Vec<_> = Migrator::embedded()
        .migrations()
        .iter()
        .filter(|m| m.name.as_str() < "20261130120000_bundle_schema")
        .cloned()
        .collect();
    Migrator::new(earlier.clone())
        .up(&mut client)
        .await
        .expect("earlier up");
    client
        .batch_execute(
            r#"ALTER TABLE "bundle"."migrations" SET SCHEMA public;
               ALTER TABLE "migrations" RENAME TO "_bundle_migrations";
               ALTER TABLE "_bundle_migrations" RENAME CONSTRAINT "migrations_pkey" TO "_bundle_migrations_pkey";
               DROP SCHEMA "bundle";"#,
        )
        .await
        .expect("the earlier layout");
    let earlier_rows: i64 = client
        .query_one(r#"SELECT count(*) FROM "_bundle_migrations""#, &[])
        .await
        .expect("count")
        .get(0);

    let report = Migrator::embedded().up(&mut client).await.expect("up");

    assert_eq!(
        report.applied.first().map(String::as_str),
        Some("20261130120000_bundle_schema")
    );
    assert_eq!(datasource_tables(&client).await, expected_tables());
    let moved: i64 = client
        .query_one(
            r#"SELECT count(*) FROM "bundle"."migrations" WHERE "finished_at" IS NOT NULL"#,
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let applied = i64::try_from(report.applied.len()).expect("a few");
    assert_eq!(
        moved,
        earlier_rows + applied,
        "the earlier rows, the move's own and later ones"
    );
    let status = Migrator::embedded().status(&client).await.expect("status");
    assert_eq!(status.pending(), 0);
    assert!(status.blocking.is_empty());
}
