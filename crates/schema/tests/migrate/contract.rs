use schema::{
    Migrator,
    contract::{self, Contract},
};
use testkit::TestDatabase;

#[tokio::test]
async fn up_on_an_empty_database_then_verify_reports_no_differences() {
    let db = TestDatabase::empty().await;
    let mut client = db.connect().await;
    let report = Migrator::embedded().up(&mut client).await.expect("up");
    assert_eq!(
        report.applied.len(),
        Migrator::embedded().migrations().len()
    );
    let (figures, differences) = contract::verify(&client).await.expect("verify");
    assert!(differences.is_empty(), "{differences:#?}");
    assert_eq!(figures, Contract::embedded().figures());
}

#[tokio::test]
async fn the_catalog_equals_the_contract_column_by_column_and_index_by_index() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    let contract = Contract::embedded();
    let found = Contract::read_catalog(&client, &contract.migration, &contract.table_names())
        .await
        .expect("catalog");
    for table in &contract.tables {
        let live = found
            .tables
            .iter()
            .find(|t| t.name == table.name)
            .expect("table exists");
        for column in &table.columns {
            let live_column = live.columns.iter().find(|c| c.name == column.name);
            assert_eq!(live_column, Some(column), "{}.{}", table.name, column.name);
        }
        assert_eq!(live.columns.len(), table.columns.len(), "{}", table.name);
        assert_eq!(live.primary_key, vec!["id".to_owned()]);
        assert_eq!(
            live.primary_key_name.as_deref(),
            Some(format!("{}_pkey", table.name).as_str())
        );
    }
    let mut expected_indexes = contract.indexes.clone();
    let mut live_indexes = found.indexes.clone();
    expected_indexes.sort_by(|a, b| a.name.cmp(&b.name));
    live_indexes.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(live_indexes, expected_indexes);
    let mut live_keys = found.foreign_keys.clone();
    live_keys.sort_by(|a, b| a.name.cmp(&b.name));
    let mut expected_keys = contract.foreign_keys.clone();
    expected_keys.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(live_keys, expected_keys);
}

#[tokio::test]
async fn verify_names_a_column_that_drifted() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    client
        .batch_execute(r#"ALTER TABLE "deals" ALTER COLUMN "currency" SET DEFAULT 'EUR'; DROP INDEX "deals_category_idx""#)
        .await
        .expect("drift");
    let (_, differences) = contract::verify(&client).await.expect("verify");
    let objects: Vec<&str> = differences.iter().map(|d| d.object.as_str()).collect();
    assert_eq!(
        objects,
        ["column deals.currency", "index deals_category_idx"]
    );
    assert!(differences[0].to_string().contains("'EUR'::text"));
}

/// Two rows for `table` that agree on `same` columns and differ everywhere
/// else; values are cast from text so one statement shape fits every table.
async fn insert_row(
    client: &tokio_postgres::Client,
    table: &contract::Table,
    same: &[String],
    variant: &str,
) -> Result<u64, tokio_postgres::Error> {
    let mut names = Vec::new();
    let mut casts = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let v = if same.contains(&column.name) {
            "a"
        } else {
            variant
        };
        let value = match column.data_type.as_str() {
            "text" if column.name == "id" => format!("{}-{variant}", table.name),
            "text" => v.to_owned(),
            "integer" | "double precision" => if v == "a" { "1" } else { "2" }.to_owned(),
            "boolean" => (v != "a").to_string(),
            "jsonb" => format!("{{\"v\": \"{v}\"}}"),
            "text[]" => format!("{{{v}}}"),
            _ => if v == "a" {
                "2025-01-01 00:00:00"
            } else {
                "2025-01-02 00:00:00"
            }
            .to_owned(),
        };
        names.push(format!("\"{}\"", column.name));
        casts.push(format!("${}::text::{}", i + 1, column.data_type));
        values.push(value);
    }
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        table.name,
        names.join(", "),
        casts.join(", ")
    );
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        values.iter().map(|v| v as _).collect();
    client.execute(&sql, &params).await
}

#[tokio::test]
async fn every_unique_index_rejects_a_duplicate_under_its_own_name() {
    let contract = Contract::embedded();
    for index in contract.indexes.iter().filter(|i| i.unique) {
        let db = TestDatabase::migrated().await;
        let client = db.connect().await;
        client
            .batch_execute(
                r#"INSERT INTO "users" ("id", "updatedAt") VALUES ('a', now()), ('b', now());
                   INSERT INTO "feature_flags" ("id", "key", "name", "variants", "updatedAt") VALUES
                     ('a', 'flag-a', 'A', '[]', now()), ('b', 'flag-b', 'B', '[]', now());"#,
            )
            .await
            .expect("parents");
        let table = contract
            .tables
            .iter()
            .find(|t| t.name == index.table)
            .expect("table");
        insert_row(&client, table, &index.columns, "a")
            .await
            .expect("first row");
        let error = insert_row(&client, table, &index.columns, "b")
            .await
            .expect_err("duplicate must fail");
        let db_error = error.as_db_error().expect("database error");
        assert_eq!(db_error.code().code(), "23505", "{}", index.name);
        assert_eq!(db_error.constraint(), Some(index.name.as_str()));
    }
}

#[tokio::test]
async fn deleting_or_renaming_a_flag_cascades_to_its_participations() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    client
        .batch_execute(
            r#"INSERT INTO "feature_flags" ("id", "key", "name", "variants", "updatedAt") VALUES ('f1', 'k1', 'F', '[]', now());
               INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant") VALUES ('p1', 'f1', 's1', 'control');
               UPDATE "feature_flags" SET "id" = 'f2' WHERE "id" = 'f1';"#,
        )
        .await
        .expect("setup");
    let flag: String = client
        .query_one(
            r#"SELECT "flagId" FROM "experiment_participations" WHERE "id" = 'p1'"#,
            &[],
        )
        .await
        .expect("participation")
        .get(0);
    assert_eq!(flag, "f2");
    client
        .execute(r#"DELETE FROM "feature_flags" WHERE "id" = 'f2'"#, &[])
        .await
        .expect("delete flag");
    let left: i64 = client
        .query_one(r#"SELECT count(*) FROM "experiment_participations""#, &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_participation_for_a_missing_flag_is_refused() {
    let db = TestDatabase::migrated().await;
    let client = db.connect().await;
    let error = client
        .execute(
            r#"INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant") VALUES ('p1', 'nope', 's1', 'a')"#,
            &[],
        )
        .await
        .expect_err("foreign key");
    assert_eq!(
        error.as_db_error().and_then(|e| e.constraint()),
        Some("experiment_participations_flagId_fkey")
    );
}
