//! Analytics events: validation into typed rows, and their storage.
//!
//! Two request shapes are in use and both are accepted:
//! - the batch the front end sends: `{"sessionId", "userId"?, "events":
//!   [{"eventType", "eventData"?, "timestamp"? (ms), "eventId"?}]}`;
//! - the single event of the migration README: `{"sessionId", "eventType",
//!   "eventData"?, "userId"?, "timestamp"?, "eventId"?}`.
//!
//! Retries store nothing twice. A row's id (an RFC 9562 version 8 UUID) is
//! derived from what identifies the event, so a resent batch maps to the
//! same ids and `ON CONFLICT DO NOTHING` drops it:
//! - with the client's `eventId`: a hash of session and `eventId` alone, so
//!   a resend is recognised whatever else it carries (such ids are not
//!   time-ordered: the price of not trusting the resend to repeat its
//!   timestamp);
//! - else, with a client timestamp: its milliseconds first, as in UUIDv7,
//!   then a hash of session, type, timestamp and data, so these rows still
//!   arrive in time order at the primary key's right edge;
//! - with neither, the event cannot be recognised when resent and gets a
//!   random UUIDv7.
//!
//! A `funnel` event (`eventData` `{stage, action, metadata?, duration?}`)
//! also writes its `conversion_funnels` row, in the same transaction and
//! with the same id.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use deadpool_postgres::{
    Client as PooledClient, GenericClient as PooledGenericClient, Transaction as PooledTransaction,
};
use platform::{ApiError, clock};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::{binary_copy::BinaryCopyInWriter, error::SqlState, types::Type};

use crate::client::{ClientContext, MAX_URL_CHARS};

/// Beyond this, a client should split its batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;
pub const MAX_SESSION_ID_CHARS: usize = 128;
pub const MAX_USER_ID_CHARS: usize = 128;
pub const MAX_EVENT_TYPE_CHARS: usize = 64;
pub const MAX_EVENT_ID_CHARS: usize = 128;
pub const MAX_FUNNEL_FIELD_CHARS: usize = 64;
/// Serialised size of one event's `eventData`.
pub const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// Client clocks drift and beacons queue offline; beyond these the
/// timestamp is wrong, not late.
const MAX_FUTURE_SKEW: chrono::Duration = chrono::Duration::hours(1);
const MAX_AGE: chrono::Duration = chrono::Duration::days(30);

#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStep {
    pub stage: String,
    pub action: String,
    pub metadata: Option<Value>,
    pub duration: Option<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub user_id: Option<String>,
    pub session_id: String,
    pub event_type: String,
    pub event_data: Value,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub timestamp: NaiveDateTime,
    pub funnel: Option<FunnelStep>,
}

pub(crate) fn field_error(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, message)
}

pub(crate) fn text<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(field_error(path, format!("{path} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() && required => {
            Err(field_error(path, format!("{path} must not be empty")))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(field_error(
            path,
            format!("{path} is longer than {max} characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(field_error(path, format!("{path} must be a string"))),
    }
}

fn parse_timestamp(
    value: Option<&Value>,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let instant = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Some(_) => None,
    }
    .ok_or_else(|| {
        field_error(
            path,
            format!("{path} must be milliseconds since the epoch or an RFC 3339 time"),
        )
    })?;
    if instant > now + MAX_FUTURE_SKEW || instant < now - MAX_AGE {
        return Err(field_error(
            path,
            format!("{path} is more than an hour ahead or 30 days behind the server clock"),
        ));
    }
    Ok(Some(instant))
}

fn funnel_step(data: &Map<String, Value>, path: &str) -> Result<FunnelStep, ApiError> {
    let stage = text(
        data,
        "stage",
        &format!("{path}.stage"),
        MAX_FUNNEL_FIELD_CHARS,
        true,
    )?
    .unwrap_or_default();
    let action = text(
        data,
        "action",
        &format!("{path}.action"),
        MAX_FUNNEL_FIELD_CHARS,
        true,
    )?
    .unwrap_or_default();
    let duration = match data.get("duration") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|d| i32::try_from(d).ok())
                .filter(|d| *d >= 0)
                .ok_or_else(|| {
                    field_error(
                        format!("{path}.duration"),
                        format!("{path}.duration must be a whole number of milliseconds"),
                    )
                })?,
        ),
    };
    Ok(FunnelStep {
        stage: stage.to_owned(),
        action: action.to_owned(),
        metadata: data.get("metadata").filter(|m| !m.is_null()).cloned(),
        duration,
    })
}

/// An id whose bits are a hash of `key`, led by `at`'s milliseconds when
/// given, so that such ids sort by time.
pub(crate) fn derived_id(at: Option<DateTime<Utc>>, key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    if let Some(at) = at {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    }
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Validates a request body into rows, naming the first offending field.
pub fn parse_batch(
    body: &Value,
    client: &ClientContext,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, ApiError> {
    let Some(root) = body.as_object() else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    let session_id =
        text(root, "sessionId", "sessionId", MAX_SESSION_ID_CHARS, true)?.unwrap_or_default();
    let user_id = text(root, "userId", "userId", MAX_USER_ID_CHARS, false)?;
    let (items, batched): (Vec<&Map<String, Value>>, bool) = match root.get("events") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                return Err(field_error("events", "events must hold at least one event"));
            }
            if list.len() > MAX_EVENTS_PER_BATCH {
                return Err(field_error(
                    "events",
                    format!("at most {MAX_EVENTS_PER_BATCH} events per request"),
                ));
            }
            let items = list
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_object().ok_or_else(|| {
                        field_error(
                            format!("events[{i}]"),
                            format!("events[{i}] must be an object"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            (items, true)
        }
        Some(_) => return Err(field_error("events", "events must be an array")),
        None if root.contains_key("eventType") => (vec![root], false),
        None => {
            return Err(field_error(
                "events",
                "expected an events array, or a single event with eventType",
            ));
        }
    };
    let no_data = Map::new();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = |name: &str| {
                if batched {
                    format!("events[{i}].{name}")
                } else {
                    name.to_owned()
                }
            };
            let event_type = text(
                item,
                "eventType",
                &path("eventType"),
                MAX_EVENT_TYPE_CHARS,
                true,
            )?
            .unwrap_or_default();
            let event_data = match item.get("eventData") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(v @ Value::Object(_)) => v.clone(),
                Some(_) => {
                    return Err(field_error(
                        path("eventData"),
                        format!("{} must be an object", path("eventData")),
                    ));
                }
            };
            let serialised = event_data.to_string();
            if serialised.len() > MAX_EVENT_DATA_BYTES {
                return Err(field_error(
                    path("eventData"),
                    format!(
                        "{} is larger than {MAX_EVENT_DATA_BYTES} bytes",
                        path("eventData")
                    ),
                ));
            }
            let data = event_data.as_object().unwrap_or(&no_data);
            let url = text(data, "url", &path("eventData.url"), MAX_URL_CHARS, false)?
                .map(str::to_owned)
                .or_else(|| client.page.clone());
            let referrer = text(
                data,
                "referrer",
                &path("eventData.referrer"),
                MAX_URL_CHARS,
                false,
            )?
            .map(str::to_owned);
            let event_id = text(item, "eventId", &path("eventId"), MAX_EVENT_ID_CHARS, false)?;
            let client_time = parse_timestamp(item.get("timestamp"), &path("timestamp"), now)?;
            let at = client_time.unwrap_or(now);
            let id = match (event_id, client_time) {
                (Some(event_id), _) => {
                    derived_id(None, format!("id\0{session_id}\0{event_id}").as_bytes())
                }
                (None, Some(t)) => derived_id(
                    Some(t),
                    format!(
                        "content\0{session_id}\0{event_type}\0{}\0{serialised}",
                        t.timestamp_millis()
                    )
                    .as_bytes(),
                ),
                (None, None) => platform::ids::new_id(),
            };
            let funnel = (event_type == "funnel")
                .then(|| funnel_step(data, &path("eventData")))
                .transpose()?;
            Ok(NewEvent {
                id,
                user_id: user_id.map(str::to_owned),
                session_id: session_id.to_owned(),
                event_type: event_type.to_owned(),
                event_data,
                url,
                referrer,
                user_agent: client.user_agent.clone(),
                ip_address: client.ip_address.clone(),
                timestamp: clock::to_db_timestamp(at),
                funnel,
            })
        })
        .collect()
}

/// What a request stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub funnel_steps: usize,
}

const EVENT_COLUMNS: &str = r#""id", "userId", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp""#;

/// Batches at least this large go in by COPY; smaller ones by one prepared
/// INSERT, which costs fewer round trips than COPY's protocol and savepoint.
pub const COPY_THRESHOLD: usize = 32;

/// Stores the events and their funnel steps; returns once they are
/// committed, so the 202 is never sent for anything that could be lost.
///
/// - A small batch without funnel steps is one prepared
///   `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING`, in
///   autocommit: a single statement is atomic on its own, and a single
///   page-view beacon costs one round trip.
/// - A larger batch, never seen before, goes in by binary `COPY`,
///   PostgreSQL's fastest way in. A retried batch makes that COPY hit the
///   primary key; its savepoint is rolled back and the batch goes in again
///   by the INSERT, which keeps exactly the rows not stored before. Retries
///   are rare, so the slower path is paid rarely.
/// - Funnel steps are written in the same transaction as their events.
pub async fn store(
    client: &mut PooledClient,
    events: &[NewEvent],
) -> Result<Stored, tokio_postgres::Error> {
    let has_funnel = events.iter().any(|e| e.funnel.is_some());
    if events.len() < COPY_THRESHOLD && !has_funnel {
        let inserted = insert_new_events(&*client, events).await?;
        return Ok(Stored {
            received: events.len(),
            stored: inserted.len(),
            duplicates: events.len() - inserted.len(),
            funnel_steps: 0,
        });
    }
    let mut tx = client.transaction().await?;
    let inserted: Vec<String> =
        if events.len() >= COPY_THRESHOLD && copy_events(&mut tx, events).await? {
            events.iter().map(|e| e.id.clone()).collect()
        } else {
            insert_new_events(&tx, events).await?
        };
    let stored = store_funnel_steps(&tx, events, inserted).await?;
    tx.commit().await?;
    Ok(stored)
}

/// True if every event went in by COPY; false if some were stored before
/// (nothing of this attempt is kept then).
async fn copy_events(
    tx: &mut PooledTransaction<'_>,
    events: &[NewEvent],
) -> Result<bool, tokio_postgres::Error> {
    let savepoint = tx.savepoint("bulk_copy").await?;
    let copied = async {
        let sink = savepoint
            .copy_in(&format!(
                r#"COPY "analytics_events" ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)"#
            ))
            .await?;
        let types = [
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::JSONB,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMP,
        ];
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for e in events {
            writer
                .as_mut()
                .write(&[
                    &e.id,
                    &e.user_id,
                    &e.session_id,
                    &e.event_type,
                    &e.event_data,
                    &e.url,
                    &e.referrer,
                    &e.user_agent,
                    &e.ip_address,
                    &e.timestamp,
                ])
                .await?;
        }
        writer.finish().await
    }
    .await;
    match copied {
        Ok(_) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// The retry path: one statement, arrays bound as parameters and expanded
/// with UNNEST; returns the ids actually inserted.
async fn insert_new_events(
    client: &impl PooledGenericClient,
    events: &[NewEvent],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let user_ids: Vec<Option<&str>> = events.iter().map(|e| e.user_id.as_deref()).collect();
    let sessions: Vec<&str> = events.iter().map(|e| e.session_id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let data: Vec<&Value> = events.iter().map(|e| &e.event_data).collect();
    let urls: Vec<Option<&str>> = events.iter().map(|e| e.url.as_deref()).collect();
    let referrers: Vec<Option<&str>> = events.iter().map(|e| e.referrer.as_deref()).collect();
    let agents: Vec<Option<&str>> = events.iter().map(|e| e.user_agent.as_deref()).collect();
    let ips: Vec<Option<&str>> = events.iter().map(|e| e.ip_address.as_deref()).collect();
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
        .map(|row| row.get(0))
        .collect())
}

async fn store_funnel_steps(
    client: &impl PooledGenericClient,
    events: &[NewEvent],
    inserted: Vec<String>,
) -> Result<Stored, tokio_postgres::Error> {
    let inserted: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    let steps: Vec<(&NewEvent, &FunnelStep)> = events
        .iter()
        .filter(|e| inserted.contains(e.id.as_str()))
        .filter_map(|e| e.funnel.as_ref().map(|step| (e, step)))
        .collect();
    if !steps.is_empty() {
        let ids: Vec<&str> = steps.iter().map(|(e, _)| e.id.as_str()).collect();
        let sessions: Vec<&str> = steps.iter().map(|(e, _)| e.session_id.as_str()).collect();
        let user_ids: Vec<Option<&str>> = steps.iter().map(|(e, _)| e.user_id.as_deref()).collect();
        let stages: Vec<&str> = steps.iter().map(|(_, f)| f.stage.as_str()).collect();
        let actions: Vec<&str> = steps.iter().map(|(_, f)| f.action.as_str()).collect();
        let metadata: Vec<Option<&Value>> =
            steps.iter().map(|(_, f)| f.metadata.as_ref()).collect();
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
        received: events.len(),
        stored: inserted.len(),
        duplicates: events.len() - inserted.len(),
        funnel_steps: steps.len(),
    })
}
