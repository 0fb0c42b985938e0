//! Storing a validated batch, answering only once it is committed.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use deadpool_postgres::{
    Client as PooledClient, GenericClient as PooledGenericClient, Transaction as PooledTransaction,
};
use futures_util::SinkExt;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_postgres::{CopyInSink, Statement, error::SqlState, types::Json};
use uuid::Uuid;

use super::batch::{Batch, FunnelStep, NewEvent};

/// What a request stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub funnel_steps: usize,
}

/// Batches at least this large go in by COPY; smaller ones by one prepared
/// INSERT, which costs fewer round trips than COPY's protocol.
pub const COPY_THRESHOLD: usize = 32;

/// Stores the events and their funnel steps; returns once they are
/// committed, so the 202 is never sent for anything that could be lost.
/// Repeating it stores nothing twice, which is what lets the route retry it
/// on a fresh connection (`crate::db::write_retrying`).
///
/// - A single event (a page-view beacon) is one prepared `INSERT ...
///   VALUES ... ON CONFLICT DO NOTHING` in autocommit: one round trip, and
///   no arrays to encode and unpack (6-15% more inserts per second than the
///   UNNEST form in a one-off pgbench comparison). A small batch is one
///   prepared `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING`.
///   A single statement is atomic on its own, and tokio-postgres returns
///   its result only at `ReadyForQuery`, after the implicit commit, so a
///   commit that fails is an error here.
/// - A larger batch, never seen before, goes in by binary `COPY`,
///   PostgreSQL's fastest way in, inside an explicit transaction whose
///   COMMIT is sent while the COPY's data is still going out. An
///   autocommit COPY would not do: its result (`CommandComplete`) arrives
///   before the implicit commit has happened, and a commit that failed
///   would go unnoticed. A retried batch makes that COPY hit the primary
///   key, which stores nothing; the batch then goes in again by the INSERT,
///   which keeps exactly the rows not stored before. Retries are rare, so
///   the slower path is paid rarely.
/// - Funnel steps are written in the same transaction as their events.
pub async fn store(
    client: &mut PooledClient,
    batch: &Batch<'_>,
) -> Result<Stored, tokio_postgres::Error> {
    let copy = if batch.events.len() >= COPY_THRESHOLD {
        // Prepared once per connection, like the INSERT: a COPY needs no
        // Parse round trip each time either.
        Some(client.prepare_cached(COPY_EVENTS).await?)
    } else {
        None
    };
    if batch.events.iter().all(|e| e.funnel.is_none()) {
        let inserted = match (&copy, batch.events.as_slice()) {
            (Some(copy), _) if copy_committed(client, copy, batch).await? => batch.events.len(),
            (_, [event]) => insert_one_event(&*client, batch, event).await?,
            _ => insert_new_events(&*client, batch).await?.len(),
        };
        return Ok(Stored {
            received: batch.events.len(),
            stored: inserted,
            duplicates: batch.events.len() - inserted,
            funnel_steps: 0,
        });
    }
    if let Some(copy) = &copy {
        let tx = client.transaction().await?;
        if copy_events(&tx, copy, batch).await? {
            let inserted = batch.events.iter().map(|e| e.id).collect();
            let stored = store_funnel_steps(&tx, batch, &inserted).await?;
            tx.commit().await?;
            return Ok(stored);
        }
        tx.rollback().await?;
    }
    let tx = client.transaction().await?;
    let inserted = insert_new_events(&tx, batch).await?.into_iter().collect();
    let stored = store_funnel_steps(&tx, batch, &inserted).await?;
    tx.commit().await?;
    Ok(stored)
}

const COPY_EVENTS: &str = r#"COPY "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp") FROM STDIN (FORMAT binary)"#;

/// The batch by COPY in a transaction of its own, committed: true if every
/// event went in, false if some were stored before (nothing of this attempt
/// is kept then).
///
/// The COMMIT is queued behind the COPY before the COPY's answer came
/// back, which saves its round trip: the connection sends requests in
/// order and does not start the COMMIT until the COPY's data has all gone
/// out. A COPY that failed has aborted the transaction, and the COMMIT then
/// only ends it (PostgreSQL answers it with ROLLBACK); the COPY's own error
/// says what happened. A COPY that succeeded and a COMMIT that returned no
/// error mean committed.
async fn copy_committed(
    client: &mut PooledClient,
    copy: &Statement,
    batch: &Batch<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let sink = tx.copy_in(copy).await;
    let (copied, committed) = tokio::join!(send_rows(sink, batch), tx.commit());
    let all = copied_all(copied)?;
    if all {
        committed?;
    }
    Ok(all)
}

/// The batch by COPY in the caller's transaction: true if every event went
/// in, false if some were stored before (the transaction is aborted then).
async fn copy_events(
    tx: &PooledTransaction<'_>,
    copy: &Statement,
    batch: &Batch<'_>,
) -> Result<bool, tokio_postgres::Error> {
    copied_all(send_rows(tx.copy_in(copy).await, batch).await)
}

async fn send_rows(
    sink: Result<CopyInSink<axum::body::Bytes>, tokio_postgres::Error>,
    batch: &Batch<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let mut sink = std::pin::pin!(sink?);
    sink.send(copy_rows(batch)).await?;
    sink.finish().await
}

/// A COPY that hit the primary key stored nothing: some of its events had
/// been stored before.
fn copied_all(copied: Result<u64, tokio_postgres::Error>) -> Result<bool, tokio_postgres::Error> {
    match copied {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The batch in COPY's binary format
/// (<https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>),
/// in one buffer: one message to the connection, rather than one per 4 KiB
/// as `BinaryCopyInWriter` sends.
fn copy_rows(batch: &Batch<'_>) -> axum::body::Bytes {
    /// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
        match value {
            Some(bytes) => {
                // Every value is far below 2 GiB: the body is at most 1 MiB.
                let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let shared = batch.session_id.len()
        + batch.user_id.as_deref().map_or(0, str::len)
        + batch.user_agent.map_or(0, str::len)
        + batch.ip_address.map_or(0, str::len);
    let per_event: usize = batch
        .events
        .iter()
        .map(|e| {
            e.event_type.len()
                + e.event_data.get().len()
                + e.url.as_deref().map_or(0, str::len)
                + e.referrer.as_deref().map_or(0, str::len)
        })
        .sum();
    let mut out =
        Vec::with_capacity(21 + per_event + batch.events.len() * (shared + 36 + 10 * 4 + 12));
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&[0; 8]); // flags, header extension length
    let mut id = uuid::Uuid::encode_buffer();
    for e in &batch.events {
        out.extend_from_slice(&10i16.to_be_bytes());
        field(
            &mut out,
            Some(e.id.hyphenated().encode_lower(&mut id).as_bytes()),
        );
        field(&mut out, batch.user_id.as_deref().map(str::as_bytes));
        field(&mut out, Some(batch.session_id.as_bytes()));
        field(&mut out, Some(e.event_type.as_bytes()));
        // jsonb's binary form: a version byte, then the JSON text.
        let data = e.event_data.get();
        out.extend_from_slice(&(i32::try_from(data.len() + 1).unwrap_or(i32::MAX)).to_be_bytes());
        out.push(1);
        out.extend_from_slice(data.as_bytes());
        field(&mut out, e.url.as_deref().map(str::as_bytes));
        field(&mut out, e.referrer.as_deref().map(str::as_bytes));
        field(&mut out, batch.user_agent.map(str::as_bytes));
        field(&mut out, batch.ip_address.map(str::as_bytes));
        let micros = e.timestamp.and_utc().timestamp_micros() - POSTGRES_EPOCH_MICROS;
        field(&mut out, Some(&micros.to_be_bytes()));
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.into()
}

/// The most common request: 1 if the event was stored, 0 if it had been.
async fn insert_one_event(
    client: &impl PooledGenericClient,
    batch: &Batch<'_>,
    event: &NewEvent<'_>,
) -> Result<usize, tokio_postgres::Error> {
    let mut id = Uuid::encode_buffer();
    let statement = client
        .prepare_cached(
            r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp")
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT ("id") DO NOTHING"#,
        )
        .await?;
    let inserted = client
        .execute(
            &statement,
            &[
                &&*event.id.hyphenated().encode_lower(&mut id),
                &batch.user_id.as_deref(),
                &&*batch.session_id,
                &&*event.event_type,
                &Json(event.event_data),
                &event.url.as_deref(),
                &event.referrer.as_deref(),
                &batch.user_agent,
                &batch.ip_address,
                &event.timestamp,
            ],
        )
        .await?;
    Ok(usize::from(inserted > 0))
}

/// One statement, arrays bound as parameters and expanded with UNNEST;
/// returns the ids actually inserted.
async fn insert_new_events(
    client: &impl PooledGenericClient,
    batch: &Batch<'_>,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let events = &batch.events;
    let n = events.len();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e.id.hyphenated().to_string())
        .collect();
    let user_ids = vec![batch.user_id.as_deref(); n];
    let sessions = vec![&*batch.session_id; n];
    let types: Vec<&str> = events.iter().map(|e| &*e.event_type).collect();
    let data: Vec<Json<&RawValue>> = events.iter().map(|e| Json(e.event_data)).collect();
    let urls: Vec<Option<&str>> = events.iter().map(|e| e.url.as_deref()).collect();
    let referrers: Vec<Option<&str>> = events.iter().map(|e| e.referrer.as_deref()).collect();
    let agents = vec![batch.user_agent; n];
    let ips = vec![batch.ip_address; n];
    let stamps: Vec<NaiveDateTime> = events.iter().map(|e| e.timestamp).collect();
    // Prepared once per connection: Neon's pooler (PgBouncer >= 1.22)
    // keeps protocol-level prepared statements.
    let statement = client
        .prepare_cached(
            r#"INSERT INTO "analytics_events" ("id", "userId", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp")
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamp[])
               ON CONFLICT ("id") DO NOTHING
               RETURNING "id""#,
        )
        .await?;
    Ok(client
        .query(
            &statement,
            &[
                &ids, &user_ids, &sessions, &types, &data, &urls, &referrers, &agents, &ips,
                &stamps,
            ],
        )
        .await?
        .iter()
        .filter_map(|row| Uuid::parse_str(row.get(0)).ok())
        .collect())
}

async fn store_funnel_steps(
    client: &PooledTransaction<'_>,
    batch: &Batch<'_>,
    inserted: &HashSet<Uuid>,
) -> Result<Stored, tokio_postgres::Error> {
    let steps: Vec<(&NewEvent, &FunnelStep)> = batch
        .events
        .iter()
        .filter(|e| inserted.contains(&e.id))
        .filter_map(|e| e.funnel.as_ref().map(|step| (e, step)))
        .collect();
    if !steps.is_empty() {
        let n = steps.len();
        let ids: Vec<String> = steps
            .iter()
            .map(|(e, _)| e.id.hyphenated().to_string())
            .collect();
        let sessions = vec![&*batch.session_id; n];
        let user_ids = vec![batch.user_id.as_deref(); n];
        let stages: Vec<&str> = steps.iter().map(|(_, f)| &*f.stage).collect();
        let actions: Vec<&str> = steps.iter().map(|(_, f)| &*f.action).collect();
        let metadata: Vec<Option<Json<&RawValue>>> =
            steps.iter().map(|(_, f)| f.metadata.map(Json)).collect();
        let durations: Vec<Option<i32>> = steps.iter().map(|(_, f)| f.duration).collect();
        let stamps: Vec<NaiveDateTime> = steps.iter().map(|(e, _)| e.timestamp).collect();
        client
            .execute(
                r#"INSERT INTO "conversion_funnels" ("id", "sessionId", "userId", "stage", "action", "metadata", "duration", "timestamp")
                   SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::int4[], $8::timestamp[])
                   ON CONFLICT ("id") DO NOTHING"#,
                &[&ids, &sessions, &user_ids, &stages, &actions, &metadata, &durations, &stamps],
            )
            .await?;
    }
    Ok(Stored {
        received: batch.events.len(),
        stored: inserted.len(),
        duplicates: batch.events.len() - inserted.len(),
        funnel_steps: steps.len(),
    })
}
