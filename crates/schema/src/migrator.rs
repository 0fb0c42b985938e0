//! Applies migrations the way Prisma would, safely under concurrency.
//!
//! - Each migration runs in one transaction together with its ledger row:
//!   it is applied completely or not at all.
//! - Every transaction first takes `pg_advisory_xact_lock(72707369)`, the
//!   key `prisma migrate deploy` locks, so the bundle and Prisma never
//!   migrate at once. It is transaction-scoped on purpose: it works through
//!   a transaction-mode pooler and cannot leak if a connection dies (a
//!   leaked session lock is a known way to wedge Prisma deploys on Neon).
//! - A failure is recorded in its own transaction as a ledger row with
//!   neither `finished_at` nor `rolled_back_at`, Prisma's "failed" state.
//!   Like Prisma's P3009, any such row blocks further runs until an
//!   operator marks it rolled back (`migrate resolve --rolled-back <name>`).
//! - A run on an up-to-date database reads the ledgers once and writes
//!   nothing.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::{
    contract::Contract,
    migrations::{self, CONTRACT_MIGRATION, INDEPENDENT_OF_CONTRACT, Ledger, Migration},
};

/// `prisma migrate deploy`'s advisory lock key.
pub const ADVISORY_LOCK_KEY: i64 = 72_707_369;

/// Prisma's own definition of its ledger (schema-engine, postgres flavour);
/// the bundle's ledger has the same columns, so one mental model serves both.
const CREATE_LEDGER: &str = r#"CREATE TABLE IF NOT EXISTS {ledger} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"#;

/// The bundle's ledger, in the bundle's own schema, where Prisma's drift
/// check does not look.
const BUNDLE_LEDGER: &str = r#""bundle"."migrations""#;
/// Where versions before migration `20261130120000_bundle_schema` kept it:
/// in the datasource's schema, which that migration moves it out of.
const EARLIER_BUNDLE_LEDGER: &str = r#""_bundle_migrations""#;
const PRISMA_LEDGER: &str = r#""_prisma_migrations""#;

/// Which ledgers exist, and where the bundle's is.
#[derive(Debug, Clone, Copy)]
struct Ledgers {
    prisma: bool,
    bundle: Option<&'static str>,
}

impl Ledgers {
    async fn locate(client: &impl tokio_postgres::GenericClient) -> Result<Self, MigrateError> {
        let found = client
            .query_one(
                r#"SELECT to_regclass('"_prisma_migrations"') IS NOT NULL,
                          to_regclass('"bundle"."migrations"') IS NOT NULL,
                          to_regclass('"_bundle_migrations"') IS NOT NULL"#,
                &[],
            )
            .await
            .doing("looking for the ledgers")?;
        Ok(Self {
            prisma: found.get(0),
            bundle: if found.get(1) {
                Some(BUNDLE_LEDGER)
            } else if found.get(2) {
                Some(EARLIER_BUNDLE_LEDGER)
            } else {
                None
            },
        })
    }

    /// The table of `ledger`, if it exists.
    fn table(self, ledger: Ledger) -> Option<&'static str> {
        match ledger {
            Ledger::Prisma => self.prisma.then_some(PRISMA_LEDGER),
            Ledger::Bundle => self.bundle,
        }
    }
}

/// `template` with `{ledger}` replaced by the ledger's quoted table name.
/// Identifiers cannot be bound as parameters; these come from constants,
/// never from input, and every value stays a bound parameter.
fn on_ledger(table: &str, template: &str) -> String {
    template.replace("{ledger}", table)
}

/// The table of `ledger`, which [`lock_and_prepare_ledgers`] made sure of.
async fn ledger_table(
    tx: &tokio_postgres::Transaction<'_>,
    ledger: Ledger,
) -> Result<&'static str, MigrateError> {
    Ledgers::locate(tx)
        .await?
        .table(ledger)
        .ok_or_else(|| MigrateError::Database {
            doing: "finding the migration ledger",
            cause: format!("the {} ledger is missing", ledger.table()),
        })
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "migration {migration} failed (started {started_at}) and blocks all further migrations: {logs}. \
         Fix the cause, make sure nothing of it was left applied, then run \
         `migrate resolve --rolled-back {migration}` (or `prisma migrate resolve --rolled-back {migration}`) and migrate again"
    )]
    Blocked {
        migration: String,
        started_at: DateTime<Utc>,
        logs: String,
    },
    #[error("migration {migration} failed and was rolled back; nothing of it was applied: {cause}")]
    Failed { migration: String, cause: String },
    #[error(
        "`down` drops the 17 contract tables and their data; it needs an explicit confirmation"
    )]
    ConfirmationRequired,
    #[error("no failed migration named {0} to resolve")]
    NothingToResolve(String),
    #[error("database error while {doing}: {cause}")]
    Database { doing: &'static str, cause: String },
}

trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T, MigrateError>;
}

impl<T> Doing<T> for Result<T, tokio_postgres::Error> {
    fn doing(self, doing: &'static str) -> Result<T, MigrateError> {
        self.map_err(|e| MigrateError::Database {
            doing,
            cause: describe(&e),
        })
    }
}

/// A database error as an operator wants to read it: SQLSTATE, message,
/// detail, hint and position.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" (detail: {detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
                text.push_str(&format!(" (at character {pos})"));
            }
            text
        }
        None => error.to_string(),
    }
}

/// One ledger row.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    pub ledger: Ledger,
    pub migration_name: String,
    pub checksum: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rolled_back_at: Option<DateTime<Utc>>,
    pub logs: Option<String>,
}

impl LedgerRow {
    fn is_applied(&self) -> bool {
        self.finished_at.is_some() && self.rolled_back_at.is_none()
    }

    fn is_failed(&self) -> bool {
        self.finished_at.is_none() && self.rolled_back_at.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum MigrationState {
    Applied {
        finished_at: DateTime<Utc>,
        checksum_matches: bool,
    },
    Pending,
    Failed {
        started_at: DateTime<Utc>,
        logs: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub name: String,
    pub ledger: Ledger,
    #[serde(flatten)]
    pub state: MigrationState,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub migrations: Vec<MigrationStatus>,
    /// Rows of the bundle's ledger this binary has no migration for: the
    /// database was migrated by a newer build.
    pub unknown_bundle_migrations: Vec<String>,
    /// Failed rows that block migration, whoever wrote them.
    pub blocking: Vec<String>,
}

impl Status {
    pub fn pending(&self) -> usize {
        self.migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Pending))
            .count()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub applied: Vec<String>,
    pub already_applied: usize,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub dropped_tables: Vec<String>,
    pub removed_records: Vec<String>,
}

/// Applies a fixed, ordered list of migrations.
#[derive(Debug, Clone)]
pub struct Migrator {
    migrations: Vec<Migration>,
}

impl Default for Migrator {
    fn default() -> Self {
        Self::embedded()
    }
}

impl Migrator {
    /// The migrations compiled into this binary.
    pub fn embedded() -> Self {
        Self::new(migrations::embedded())
    }

    pub fn new(migrations: Vec<Migration>) -> Self {
        Self { migrations }
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Applies every pending migration, oldest first.
    pub async fn up(&self, client: &mut Client) -> Result<UpReport, MigrateError> {
        let started = Instant::now();
        let rows = read_ledgers(client).await?;
        block_on_failures(&rows)?;
        let pending: Vec<&Migration> = self
            .migrations
            .iter()
            .filter(|m| {
                !rows
                    .iter()
                    .any(|r| r.migration_name == m.name && r.ledger == m.ledger() && r.is_applied())
            })
            .collect();
        let mut applied = Vec::new();
        for migration in pending {
            if self.apply_one(client, migration).await? {
                applied.push(migration.name.clone());
            }
        }
        let report = UpReport {
            already_applied: self.migrations.len() - applied.len(),
            applied,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(applied = ?report.applied, already_applied = report.already_applied, elapsed_ms = report.elapsed_ms, "migrations up to date");
        Ok(report)
    }

    /// Applies `migration` unless another run did first; true if this run
    /// applied it.
    async fn apply_one(
        &self,
        client: &mut Client,
        migration: &Migration,
    ) -> Result<bool, MigrateError> {
        let ledger = migration.ledger();
        let tx = client.transaction().await.doing("starting a transaction")?;
        lock_and_prepare_ledgers(&tx).await?;
        let rows = read_ledger_rows(
            &tx,
            ledger,
            ledger_table(&tx, ledger).await?,
            Some(&migration.name),
        )
        .await?;
        block_on_failures(&rows)?;
        if rows.iter().any(LedgerRow::is_applied) {
            tx.commit().await.doing("committing")?;
            return Ok(false);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let insert = on_ledger(
            ledger_table(&tx, ledger).await?,
            r#"INSERT INTO {ledger} ("id", "checksum", "migration_name", "started_at", "applied_steps_count") VALUES ($1, $2, $3, now(), 0)"#,
        );
        tx.execute(&insert, &[&id, &migration.checksum(), &migration.name])
            .await
            .doing("recording the migration")?;
        tracing::info!(migration = %migration.name, ledger = ledger.table(), "applying migration");
        if let Err(error) = tx.batch_execute(&migration.sql).await {
            let cause = describe(&error);
            drop(tx);
            self.record_failure(client, migration, &cause).await?;
            tracing::error!(migration = %migration.name, %cause, "migration failed and was rolled back");
            return Err(MigrateError::Failed {
                migration: migration.name.clone(),
                cause,
            });
        }
        // Located again: a migration may move the ledger (as
        // 20261130120000_bundle_schema does), its own row with it.
        let finish = on_ledger(
            ledger_table(&tx, ledger).await?,
            r#"UPDATE {ledger} SET "finished_at" = now(), "applied_steps_count" = 1 WHERE "id" = $1"#,
        );
        tx.execute(&finish, &[&id])
            .await
            .doing("marking the migration finished")?;
        tx.commit().await.doing("committing the migration")?;
        Ok(true)
    }

    /// Leaves a failed row behind so operators see what failed and why, and
    /// so no later run builds on a schema that is not what it expects.
    async fn record_failure(
        &self,
        client: &mut Client,
        migration: &Migration,
        cause: &str,
    ) -> Result<(), MigrateError> {
        let tx = client.transaction().await.doing("starting a transaction")?;
        lock_and_prepare_ledgers(&tx).await?;
        let insert = on_ledger(
            ledger_table(&tx, migration.ledger()).await?,
            r#"INSERT INTO {ledger} ("id", "checksum", "migration_name", "logs", "started_at", "applied_steps_count") VALUES ($1, $2, $3, $4, now(), 0)"#,
        );
        let logs = format!("rolled back, nothing applied: {cause}");
        tx.execute(
            &insert,
            &[
                &uuid::Uuid::new_v4().to_string(),
                &migration.checksum(),
                &migration.name,
                &logs,
            ],
        )
        .await
        .doing("recording the failure")?;
        tx.commit().await.doing("committing the failure record")
    }

    /// Where every migration stands.
    pub async fn status(&self, client: &Client) -> Result<Status, MigrateError> {
        let rows = read_ledgers(client).await?;
        let migrations = self
            .migrations
            .iter()
            .map(|m| {
                let mine: Vec<&LedgerRow> = rows
                    .iter()
                    .filter(|r| r.migration_name == m.name && r.ledger == m.ledger())
                    .collect();
                let state = if let Some(row) = mine.iter().find(|r| r.is_failed()) {
                    MigrationState::Failed {
                        started_at: row.started_at,
                        logs: row.logs.clone().unwrap_or_default(),
                    }
                } else if let Some(row) = mine.iter().find(|r| r.is_applied()) {
                    MigrationState::Applied {
                        finished_at: row.finished_at.unwrap_or(row.started_at),
                        checksum_matches: row.checksum == m.checksum(),
                    }
                } else {
                    MigrationState::Pending
                };
                MigrationStatus {
                    name: m.name.clone(),
                    ledger: m.ledger(),
                    state,
                }
            })
            .collect();
        let unknown_bundle_migrations = rows
            .iter()
            .filter(|r| {
                r.ledger == Ledger::Bundle
                    && !self.migrations.iter().any(|m| m.name == r.migration_name)
            })
            .map(|r| r.migration_name.clone())
            .collect();
        let blocking = rows
            .iter()
            .filter(|r| r.is_failed())
            .map(|r| format!("{} ({})", r.migration_name, r.ledger.table()))
            .collect();
        Ok(Status {
            migrations,
            unknown_bundle_migrations,
            blocking,
        })
    }

    /// Marks a failed migration rolled back, as `prisma migrate resolve
    /// --rolled-back` does, so the next run retries it.
    pub async fn resolve_rolled_back(
        &self,
        client: &mut Client,
        name: &str,
    ) -> Result<(), MigrateError> {
        let tx = client.transaction().await.doing("starting a transaction")?;
        lock_and_prepare_ledgers(&tx).await?;
        let mut resolved = 0;
        for ledger in [Ledger::Prisma, Ledger::Bundle] {
            let sql = on_ledger(
                ledger_table(&tx, ledger).await?,
                r#"UPDATE {ledger} SET "rolled_back_at" = now() WHERE "migration_name" = $1 AND "finished_at" IS NULL AND "rolled_back_at" IS NULL"#,
            );
            resolved += tx
                .execute(&sql, &[&name])
                .await
                .doing("resolving the failed migration")?;
        }
        if resolved == 0 {
            return Err(MigrateError::NothingToResolve(name.to_owned()));
        }
        tx.commit().await.doing("committing")
    }

    /// The rollback the contract migration's README describes: drop its 17
    /// tables and remove its record (and the records of bundle migrations
    /// that came after it, which lived on those tables). The baseline
    /// `users` table stays: it may hold the application's users.
    pub async fn down(
        &self,
        client: &mut Client,
        confirmed: bool,
    ) -> Result<DownReport, MigrateError> {
        if !confirmed {
            return Err(MigrateError::ConfirmationRequired);
        }
        let contract = Contract::embedded();
        let tables: Vec<String> = contract.tables.iter().map(|t| t.name.clone()).collect();
        let tx = client.transaction().await.doing("starting a transaction")?;
        lock_and_prepare_ledgers(&tx).await?;
        let existing: Vec<String> = tx
            .query(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY($1) ORDER BY c.relname",
                &[&tables],
            )
            .await
            .doing("listing the contract tables")?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !existing.is_empty() {
            // Identifiers cannot be bound as parameters; these come from the
            // compiled-in contract and the catalog, never from a caller.
            let list = existing
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(", ");
            tx.batch_execute(&format!("DROP TABLE {list}"))
                .await
                .doing("dropping the contract tables")?;
        }
        // The audit trail's hash chain (a later bundle migration) covers rows
        // of "audit_logs", just dropped; a chain left behind would point at
        // nothing and fail every verification after a fresh `up`.
        tx.batch_execute(r#"DROP SCHEMA IF EXISTS "audit_trail" CASCADE"#)
            .await
            .doing("dropping the audit chain")?;
        // Sentry events name the error groups they were counted in, just
        // dropped with "error_logs".
        tx.batch_execute(r#"DROP TABLE IF EXISTS "bundle"."sentry_events""#)
            .await
            .doing("dropping the Sentry events")?;
        // Idempotent conversions name participations, dropped with the flags.
        tx.batch_execute(r#"DROP TABLE IF EXISTS "bundle"."experiment_conversions""#)
            .await
            .doing("dropping the experiment conversions")?;
        // The search-popularity ledger names suggestions and counts
        // events, both just dropped; a watermark kept would skip the
        // events of a new contract.
        tx.batch_execute(
            r#"DROP TABLE IF EXISTS "bundle"."search_popularity_hours", "bundle"."search_popularity_watermark",
                   "bundle"."destination_search_hours""#,
        )
        .await
        .doing("dropping the search-popularity ledger")?;
        // The overview's copy of the snapshots' values, just dropped.
        tx.batch_execute(r#"DROP TABLE IF EXISTS "bundle"."metric_series""#)
            .await
            .doing("dropping the snapshots' series")?;
        // Price models: versions and fares name contract rows ("ml_models",
        // "analytics_events"), just dropped; a watermark kept would skip events.
        tx.batch_execute(
            r#"DROP TABLE IF EXISTS "bundle"."model_versions", "bundle"."model_activations",
                   "bundle"."observed_fares", "bundle"."fare_sync_watermark""#,
        )
        .await
        .doing("dropping the price models")?;
        // Prediction outcomes name predictions, just dropped; a watermark kept
        // would skip the predictions of a new contract.
        tx.batch_execute(
            r#"DROP TABLE IF EXISTS "bundle"."prediction_outcomes", "bundle"."prediction_accuracy_watermark""#,
        )
        .await
        .doing("dropping the prediction outcomes")?;
        // The analytics jobs' watermarks and error tallies count events and
        // name error groups, just dropped; kept, they would skip the rows of
        // a new contract.
        tx.batch_execute(
            r#"DROP TABLE IF EXISTS "bundle"."rollup_watermark", "bundle"."cohort_watermark",
                   "bundle"."error_tallies", "bundle"."error_hours""#,
        )
        .await
        .doing("dropping the analytics rollups' bookkeeping")?;
        let later: Vec<String> = self
            .migrations
            .iter()
            .filter(|m| {
                m.ledger() == Ledger::Bundle
                    && m.name.as_str() > CONTRACT_MIGRATION
                    && !INDEPENDENT_OF_CONTRACT.contains(&m.name.as_str())
            })
            .map(|m| m.name.clone())
            .collect();
        let mut removed: Vec<String> = tx
            .query(
                r#"DELETE FROM "_prisma_migrations" WHERE "migration_name" = $1 RETURNING "migration_name""#,
                &[&CONTRACT_MIGRATION],
            )
            .await
            .doing("removing the contract record")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let remove_later = on_ledger(
            ledger_table(&tx, Ledger::Bundle).await?,
            r#"DELETE FROM {ledger} WHERE "migration_name" = ANY($1) RETURNING "migration_name""#,
        );
        removed.extend(
            tx.query(&remove_later, &[&later])
                .await
                .doing("removing later bundle records")?
                .iter()
                .map(|r| r.get::<_, String>(0)),
        );
        tx.commit().await.doing("committing the rollback")?;
        Ok(DownReport {
            dropped_tables: existing,
            removed_records: removed,
        })
    }
}

fn block_on_failures(rows: &[LedgerRow]) -> Result<(), MigrateError> {
    match rows.iter().find(|r| r.is_failed()) {
        Some(row) => Err(MigrateError::Blocked {
            migration: row.migration_name.clone(),
            started_at: row.started_at,
            logs: row
                .logs
                .clone()
                .unwrap_or_else(|| "no logs recorded".into()),
        }),
        None => Ok(()),
    }
}

async fn lock_and_prepare_ledgers(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<(), MigrateError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK_KEY])
        .await
        .doing("waiting for the migration lock")?;
    let ledgers = Ledgers::locate(tx).await?;
    if !ledgers.prisma {
        tx.batch_execute(&on_ledger(PRISMA_LEDGER, CREATE_LEDGER))
            .await
            .doing("creating a migration ledger")?;
    }
    if ledgers.bundle.is_none() {
        tx.batch_execute(&format!(
            r#"CREATE SCHEMA IF NOT EXISTS "bundle"; {}"#,
            on_ledger(BUNDLE_LEDGER, CREATE_LEDGER)
        ))
        .await
        .doing("creating a migration ledger")?;
    }
    Ok(())
}

/// Both ledgers, whichever exist, in one round trip each.
async fn read_ledgers(client: &Client) -> Result<Vec<LedgerRow>, MigrateError> {
    let ledgers = Ledgers::locate(client).await?;
    let mut rows = Vec::new();
    for ledger in [Ledger::Prisma, Ledger::Bundle] {
        if let Some(table) = ledgers.table(ledger) {
            rows.extend(read_ledger_rows(client, ledger, table, None).await?);
        }
    }
    Ok(rows)
}

async fn read_ledger_rows(
    client: &impl tokio_postgres::GenericClient,
    ledger: Ledger,
    table: &str,
    only: Option<&str>,
) -> Result<Vec<LedgerRow>, MigrateError> {
    let sql = on_ledger(
        table,
        r#"SELECT "migration_name", "checksum", "started_at", "finished_at", "rolled_back_at", "logs" FROM {ledger} WHERE $1::text IS NULL OR "migration_name" = $1 ORDER BY "started_at""#,
    );
    Ok(client
        .query(&sql, &[&only])
        .await
        .doing("reading the migration ledger")?
        .iter()
        .map(|row| LedgerRow {
            ledger,
            migration_name: row.get(0),
            checksum: row.get(1),
            started_at: row.get(2),
            finished_at: row.get(3),
            rolled_back_at: row.get(4),
            logs: row.get(5),
        })
        .collect())
}
