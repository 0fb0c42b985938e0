//! `health_checks` rows: written by the schedule, read by the endpoint.

use chrono::{DateTime, NaiveDateTime, Utc};
use platform::clock;
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::probe::{Probe, Status};

/// A probe and when it was taken.
#[derive(Debug, Clone)]
pub struct Check {
    pub taken_at: NaiveDateTime,
    pub probe: Probe,
}

/// Writes one row per check in a single statement.
pub async fn record(
    client: &impl GenericClient,
    checks: &[Check],
) -> Result<u64, tokio_postgres::Error> {
    let probes = || checks.iter().map(|c| &c.probe);
    let ids: Vec<String> = checks.iter().map(|_| platform::ids::new_id()).collect();
    let services: Vec<&str> = probes().map(|p| p.service.as_str()).collect();
    let statuses: Vec<&str> = probes().map(|p| p.status.as_str()).collect();
    let times: Vec<Option<f64>> = probes().map(|p| p.response_time).collect();
    let errors: Vec<Option<&str>> = probes().map(|p| p.error_message.as_deref()).collect();
    let metadata: Vec<&serde_json::Value> = probes().map(|p| &p.metadata).collect();
    let stamps: Vec<NaiveDateTime> = checks.iter().map(|c| c.taken_at).collect();
    client
        .execute(
            r#"INSERT INTO "health_checks" ("id", "service", "status", "responseTime", "errorMessage", "metadata", "timestamp")
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::jsonb[], $7::timestamp[])"#,
            &[&ids, &services, &statuses, &times, &errors, &metadata, &stamps],
        )
        .await
}

/// Deletes rows older than `retention`. The table holds a few rows per
/// service per schedule tick, so a scan of it is cheap; no index on
/// `timestamp` alone is added for this.
pub async fn prune(
    client: &impl GenericClient,
    retention: chrono::Duration,
) -> Result<u64, tokio_postgres::Error> {
    let cutoff = clock::to_db_timestamp(Utc::now() - retention);
    client
        .execute(
            r#"DELETE FROM "health_checks" WHERE "timestamp" < $1"#,
            &[&cutoff],
        )
        .await
}

/// One recorded check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RecordedCheck)]
pub struct Recorded {
    pub service: String,
    pub status: Status,
    pub response_time: Option<f64>,
    pub error_message: Option<String>,
    pub checked_at: DateTime<Utc>,
}

fn recorded(row: &tokio_postgres::Row) -> Recorded {
    Recorded {
        service: row.get(0),
        status: Status::parse(row.get(1)),
        response_time: row.get(2),
        error_message: row.get(3),
        checked_at: clock::from_db_timestamp(row.get(4)),
    }
}

/// The newest check of every service seen since `since`. Reads
/// `health_checks_service_timestamp_idx` in order.
pub async fn latest(
    client: &impl GenericClient,
    since: DateTime<Utc>,
) -> Result<Vec<Recorded>, tokio_postgres::Error> {
    let since = clock::to_db_timestamp(since);
    Ok(client
        .query(
            r#"SELECT DISTINCT ON ("service") "service", "status", "responseTime", "errorMessage", "timestamp"
               FROM "health_checks" WHERE "timestamp" >= $1
               ORDER BY "service", "timestamp" DESC"#,
            &[&since],
        )
        .await?
        .iter()
        .map(recorded)
        .collect())
}

/// Uptime of one service over a window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHistory {
    pub service: String,
    pub checks: i64,
    /// Share of checks that were not `down`, in percent.
    pub uptime_percent: f64,
    pub average_response_time: Option<f64>,
    pub recent: Vec<Recorded>,
}

/// Checks since `since`, per service: counts, uptime, and the newest
/// `limit` checks.
pub async fn history(
    client: &impl GenericClient,
    since: DateTime<Utc>,
    service: Option<&str>,
    limit: i64,
) -> Result<Vec<ServiceHistory>, tokio_postgres::Error> {
    let since = clock::to_db_timestamp(since);
    let totals = client
        .query(
            r#"SELECT "service", count(*), count(*) FILTER (WHERE "status" <> 'down'), avg("responseTime")
               FROM "health_checks" WHERE "timestamp" >= $1 AND ($2::text IS NULL OR "service" = $2)
               GROUP BY "service" ORDER BY "service""#,
            &[&since, &service],
        )
        .await?;
    let recent: Vec<Recorded> = client
        .query(
            r#"SELECT "service", "status", "responseTime", "errorMessage", "timestamp" FROM (
                 SELECT *, row_number() OVER (PARTITION BY "service" ORDER BY "timestamp" DESC) AS "rank"
                 FROM "health_checks" WHERE "timestamp" >= $1 AND ($2::text IS NULL OR "service" = $2)
               ) ranked WHERE "rank" <= $3 ORDER BY "service", "timestamp" DESC"#,
            &[&since, &service, &limit],
        )
        .await?
        .iter()
        .map(recorded)
        .collect();
    Ok(totals
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let checks: i64 = row.get(1);
            let up: i64 = row.get(2);
            ServiceHistory {
                checks,
                uptime_percent: if checks == 0 {
                    0.0
                } else {
                    (up as f64 * 10_000.0 / checks as f64).round() / 100.0
                },
                average_response_time: row
                    .get::<_, Option<f64>>(3)
                    .map(|v| (v * 1000.0).round() / 1000.0),
                recent: recent
                    .iter()
                    .filter(|r| r.service == name)
                    .cloned()
                    .collect(),
                service: name,
            }
        })
        .collect())
}
