//! The migrator against real PostgreSQL: one database per test.

mod concurrency;
mod contract;
mod datasource;
mod failures;
mod prisma;
mod rollback;

use tokio_postgres::Client;

/// Everything about the application's schema a test may want to compare
/// before and after: columns, index definitions and constraints of every
/// table (the bundle's own objects live in schemas of their own).
pub async fn schema_snapshot(client: &Client) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for row in client
        .query(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '-') \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE connamespace = current_schema()::regnamespace \
             ORDER BY 1",
            &[],
        )
        .await
        .expect("snapshot")
    {
        lines.push(row.get(0));
    }
    lines
}

pub async fn table_exists(client: &Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass(quote_ident($1)) IS NOT NULL", &[&table])
        .await
        .expect("to_regclass")
        .get(0)
}

/// Every row of `table` (a quoted, possibly qualified name), as JSON text,
/// in a stable order: for comparing a ledger before and after.
pub async fn rows_as_json(client: &Client, table: &str) -> Vec<String> {
    client
        .query(
            &format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}
