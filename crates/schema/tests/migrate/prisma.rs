//! Living beside the Prisma application's migration history.

use schema::{Migrator, migrations};
use testkit::TestDatabase;

/// A users table as the application's own migrations made it: more columns
/// than the baseline, and no `users_email_key`.
const APP_USERS: &str = r#"CREATE TABLE "users" (
    "id" TEXT NOT NULL, "email" TEXT NOT NULL, "role" TEXT NOT NULL DEFAULT 'user',
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"));
    CREATE INDEX "users_role_idx" ON "users"("role");"#;

/// What `prisma migrate deploy` leaves behind: its ledger with its own row.
const PRISMA_LEDGER: &str = r#"CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
    INSERT INTO "_prisma_migrations" VALUES
      ('7a1c2d4e-0000-4000-8000-000000000001', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', now(), '0_init', NULL, NULL, now(), 1);"#;

#[tokio::test]
async fn a_database_prisma_already_migrated_is_recognised_and_left_untouched() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let contract = migrations::embedded()
        .into_iter()
        .find(|m| m.name == migrations::CONTRACT_MIGRATION)
        .expect("contract migration");
    client.batch_execute(APP_USERS).await.expect("app users");
    client
        .batch_execute(PRISMA_LEDGER)
        .await
        .expect("prisma ledger");
    client
        .batch_execute(&contract.sql)
        .await
        .expect("prisma applied the contract");
    // Prisma computed its checksum over its own copy of the file.
    client
        .execute(
            r#"INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "started_at", "applied_steps_count")
               VALUES ('7a1c2d4e-0000-4000-8000-000000000002', repeat('0', 64), now(), $1, now(), 1)"#,
            &[&migrations::CONTRACT_MIGRATION],
        )
        .await
        .expect("prisma row");
    let schema_before = crate::schema_snapshot(&client).await;
    let ledger_before = crate::rows_as_json(&client, r#""_prisma_migrations""#).await;

    let report = Migrator::embedded().up(&mut client).await.expect("up");

    assert!(
        !report
            .applied
            .contains(&migrations::CONTRACT_MIGRATION.to_owned())
    );
    assert_eq!(crate::schema_snapshot(&client).await, schema_before);
    assert_eq!(
        crate::rows_as_json(&client, r#""_prisma_migrations""#).await,
        ledger_before
    );
}

#[tokio::test]
async fn an_existing_users_table_is_not_altered() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    client.batch_execute(APP_USERS).await.expect("app users");
    let before = users_snapshot(&client).await;
    Migrator::embedded().up(&mut client).await.expect("up");
    assert_eq!(users_snapshot(&client).await, before);
    assert!(
        before.iter().any(|l| l.contains("users_role_idx")),
        "{before:?}"
    );
}

#[tokio::test]
async fn the_contract_is_recorded_the_way_prisma_migrate_deploy_reads_it() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    let contract = migrations::embedded()
        .into_iter()
        .find(|m| m.name == migrations::CONTRACT_MIGRATION)
        .expect("contract migration");
    let row = client
        .query_one(
            r#"SELECT "id", "checksum", "finished_at" IS NOT NULL, "rolled_back_at" IS NULL, "applied_steps_count", "logs" IS NULL
               FROM "_prisma_migrations" WHERE "migration_name" = $1"#,
            &[&migrations::CONTRACT_MIGRATION],
        )
        .await
        .expect("one row");
    assert!(uuid::Uuid::parse_str(row.get::<_, &str>(0)).is_ok());
    assert_eq!(row.get::<_, String>(1), contract.checksum());
    assert!(row.get::<_, bool>(2) && row.get::<_, bool>(3) && row.get::<_, bool>(5));
    assert_eq!(row.get::<_, i32>(4), 1);
}

#[tokio::test]
async fn bundle_only_migrations_stay_out_of_prismas_ledger() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    let names: Vec<String> = client
        .query(r#"SELECT "migration_name" FROM "_prisma_migrations""#, &[])
        .await
        .expect("ledger")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, [migrations::CONTRACT_MIGRATION]);
}

async fn users_snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    crate::schema_snapshot(client)
        .await
        .into_iter()
        .filter(|line| {
            line.starts_with("users.")
                || line.contains(" ON public.users ")
                || line.starts_with("users_")
        })
        .collect()
}
