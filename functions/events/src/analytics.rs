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
//!   arrive in time order at the primary key's right edge. The data is
//!   hashed as the JSON text the client sent: a resend of the same body
//!   matches, and compact text with sorted keys (what this code hashed
//!   when it still parsed `eventData` into a `serde_json::Value`) gives
//!   the same ids as before;
//! - with neither, the event cannot be recognised when resent and gets a
//!   random UUIDv7.
//!
//! A `funnel` event (`eventData` `{stage, action, metadata?, duration?}`)
//! also writes its `conversion_funnels` row, in the same transaction and
//! with the same id.

use std::{borrow::Cow, collections::HashSet, fmt};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use deadpool_postgres::{
    Client as PooledClient, GenericClient as PooledGenericClient, Transaction as PooledTransaction,
};
use futures_util::SinkExt;
use platform::{ApiError, clock};
use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::{Map, Value, value::RawValue};
use sha2::{Digest, Sha256};
use tokio_postgres::{CopyInSink, Statement, error::SqlState, types::Json};
use uuid::Uuid;

use crate::{
    client::{ClientContext, MAX_URL_CHARS},
    jsonb::{self, Unstorable},
};

/// Beyond this, a client should split its batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;
pub const MAX_SESSION_ID_CHARS: usize = 128;
pub const MAX_USER_ID_CHARS: usize = 128;
pub const MAX_EVENT_TYPE_CHARS: usize = 64;
pub const MAX_EVENT_ID_CHARS: usize = 128;
pub const MAX_FUNNEL_FIELD_CHARS: usize = 64;
/// Size of one event's `eventData`, both as sent and as stored (its
/// `jsonb` text form, which can be longer: see [`crate::jsonb`]).
pub const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// Nesting of one event's `eventData`. Analytics properties are nearly
/// flat; this keeps far below what the server's stack allows.
pub const MAX_EVENT_DATA_DEPTH: usize = 64;
/// Client clocks drift and beacons queue offline; beyond these the
/// timestamp is wrong, not late.
const MAX_FUTURE_SKEW: chrono::Duration = chrono::Duration::hours(1);
const MAX_AGE: chrono::Duration = chrono::Duration::days(30);

/// A validated request: what all its events share, and the events. Text
/// is borrowed from the request body and headers wherever it was sent
/// without escapes, and `eventData` is kept as the JSON text the client
/// sent (PostgreSQL parses it into `jsonb` anyway): parsing a 500-event
/// batch into `serde_json::Value` trees, cloning them and serialising them
/// twice more cost more CPU than PostgreSQL's own work on the rows.
#[derive(Debug)]
pub struct Batch<'a> {
    pub session_id: Cow<'a, str>,
    pub user_id: Option<Cow<'a, str>>,
    pub user_agent: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub events: Vec<NewEvent<'a>>,
}

#[derive(Debug)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub event_type: Cow<'a, str>,
    pub event_data: &'a RawValue,
    pub url: Option<Cow<'a, str>>,
    pub referrer: Option<Cow<'a, str>>,
    pub timestamp: NaiveDateTime,
    pub funnel: Option<FunnelStep<'a>>,
}

#[derive(Debug)]
pub struct FunnelStep<'a> {
    pub stage: Cow<'a, str>,
    pub action: Cow<'a, str>,
    pub metadata: Option<&'a RawValue>,
    pub duration: Option<i32>,
}

pub(crate) fn field_error(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// The rules every text field follows, whichever JSON reader found it.
fn check_text(
    s: &str,
    path: &dyn fmt::Display,
    max: usize,
    required: bool,
) -> Result<(), ApiError> {
    if required && s.trim().is_empty() {
        return Err(field_error(
            path.to_string(),
            format!("{path} must not be empty"),
        ));
    }
    if s.contains('\0') {
        return Err(field_error(
            path.to_string(),
            format!("{path} must not contain NUL (\\u0000): PostgreSQL cannot store it"),
        ));
    }
    if s.len() > max && s.chars().count() > max {
        return Err(field_error(
            path.to_string(),
            format!("{path} is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn missing_or_not_text(path: &dyn fmt::Display, present: bool) -> ApiError {
    if present {
        field_error(path.to_string(), format!("{path} must be a string"))
    } else {
        field_error(path.to_string(), format!("{path} is required"))
    }
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
        None | Some(Value::Null) => Err(missing_or_not_text(&path, false)),
        Some(Value::String(s)) => check_text(s, &path, max, required).map(|()| Some(s.as_str())),
        Some(_) => Err(missing_or_not_text(&path, true)),
    }
}

/// A field's name in error messages: `sessionId`, `events[3].eventType`,
/// `events[3].eventData.url`. Formatted only when there is an error.
#[derive(Clone, Copy)]
struct FieldPath<'p> {
    index: Option<usize>,
    name: &'p str,
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "events[{i}].{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// A JSON object's members, their values left as unparsed JSON text. A
/// repeated name keeps its last value, as `serde_json::Map` and `jsonb` do.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// A member that is present and not `null`.
    fn value(&self, name: &str) -> Option<&'a RawValue> {
        self.get(name).filter(|v| v.get() != "null")
    }

    fn parse(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw.get())
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                members(map, |_, _| Ok(false))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Reads an object's members, except those `take` consumes itself.
fn members<'de, M: de::MapAccess<'de>>(
    mut map: M,
    mut take: impl FnMut(&str, &mut M) -> Result<bool, M::Error>,
) -> Result<Members<'de>, M::Error> {
    let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
    while let Some(Str(name)) = map.next_key()? {
        if !take(&name, &mut map)? {
            members.push((name, map.next_value()?));
        }
    }
    Ok(Members(members))
}

/// The request body, read in one pass: its members, and `events` already
/// split into its items' members, so that no event is scanned twice.
struct Body<'a> {
    members: Members<'a>,
    events: Option<Events<'a>>,
}

enum Events<'a> {
    /// Each item's members; `None` for an item that is not an object.
    List(Vec<Option<Members<'a>>>),
    NotAList,
}

/// A visitor's answers for every JSON value it does not want: `$value`,
/// with arrays and objects read to their end.
macro_rules! anything_else_is {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                let mut events = None;
                let members = members(map, |name, map| {
                    if name != "events" {
                        return Ok(false);
                    }
                    events = Some(map.next_value()?);
                    Ok(true)
                })?;
                Ok(Body { members, events })
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl<'de> Deserialize<'de> for Events<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Events<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(Item(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Events::List(items))
            }
            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                de::Visitor::visit_map(de::IgnoredAny, map).map(|_| Events::NotAList)
            }
            anything_else_is!(Events::NotAList);
        }
        deserializer.deserialize_any(Visit)
    }
}

/// One item of `events`: its members if it is an object.
struct Item<'a>(Option<Members<'a>>);

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                members(map, |_, _| Ok(false)).map(|m| Item(Some(m)))
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                de::Visitor::visit_seq(de::IgnoredAny, seq).map(|_| Item(None))
            }
            anything_else_is!(Item(None));
        }
        deserializer.deserialize_any(Visit)
    }
}

/// A JSON string, borrowed from the body unless it had escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// What a member holds, as far as validation cares.
enum Scalar<'a> {
    Absent,
    Text(Cow<'a, str>),
    Integer(i64),
    Other,
}

impl<'a> Scalar<'a> {
    /// A string whose escapes do not decode (a lone surrogate) is malformed
    /// JSON, as it was when the whole body was decoded up front.
    fn of(value: Option<&'a RawValue>) -> Result<Self, ApiError> {
        let Some(raw) = value.map(RawValue::get) else {
            return Ok(Self::Absent);
        };
        Ok(match raw.as_bytes().first() {
            Some(b'n') => Self::Absent,
            Some(b'"') => Self::Text(
                serde_json::from_str::<Str<'a>>(raw)
                    .map_err(|e| malformed(&e))?
                    .0,
            ),
            Some(b'-' | b'0'..=b'9') => {
                serde_json::from_str(raw).map_or(Self::Other, Self::Integer)
            }
            _ => Self::Other,
        })
    }
}

fn raw_text<'a>(
    value: Option<&'a RawValue>,
    path: FieldPath<'_>,
    max: usize,
    required: bool,
) -> Result<Option<Cow<'a, str>>, ApiError> {
    match Scalar::of(value)? {
        Scalar::Absent if !required => Ok(None),
        Scalar::Absent => Err(missing_or_not_text(&path, false)),
        Scalar::Text(s) => check_text(&s, &path, max, required).map(|()| Some(s)),
        Scalar::Integer(_) | Scalar::Other => Err(missing_or_not_text(&path, true)),
    }
}

fn parse_timestamp(
    value: Option<&RawValue>,
    path: FieldPath<'_>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let instant = match Scalar::of(value)? {
        Scalar::Absent => return Ok(None),
        Scalar::Integer(ms) => Utc.timestamp_millis_opt(ms).single(),
        Scalar::Text(s) => DateTime::parse_from_rfc3339(&s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Scalar::Other => None,
    }
    .ok_or_else(|| {
        field_error(
            path.to_string(),
            format!("{path} must be milliseconds since the epoch or an RFC 3339 time"),
        )
    })?;
    if instant > now + MAX_FUTURE_SKEW || instant < now - MAX_AGE {
        return Err(field_error(
            path.to_string(),
            format!("{path} is more than an hour ahead or 30 days behind the server clock"),
        ));
    }
    Ok(Some(instant))
}

fn funnel_step<'a>(data: &Members<'a>, index: Option<usize>) -> Result<FunnelStep<'a>, ApiError> {
    let at = |name| FieldPath { index, name };
    let stage = raw_text(
        data.get("stage"),
        at("eventData.stage"),
        MAX_FUNNEL_FIELD_CHARS,
        true,
    )?;
    let action = raw_text(
        data.get("action"),
        at("eventData.action"),
        MAX_FUNNEL_FIELD_CHARS,
        true,
    )?;
    let duration = match Scalar::of(data.get("duration"))? {
        Scalar::Absent => None,
        Scalar::Integer(d) => Some(i32::try_from(d).ok().filter(|d| *d >= 0)),
        Scalar::Text(_) | Scalar::Other => Some(None),
    }
    .map(|d| {
        d.ok_or_else(|| {
            let path = at("eventData.duration");
            field_error(
                path.to_string(),
                format!("{path} must be a whole number of milliseconds"),
            )
        })
    })
    .transpose()?;
    Ok(FunnelStep {
        stage: stage.unwrap_or_default(),
        action: action.unwrap_or_default(),
        metadata: data.value("metadata"),
        duration,
    })
}

/// An id whose bits are a hash of `key`, led by `at`'s milliseconds when
/// given, so that such ids sort by time.
pub(crate) fn derived_id(at: Option<DateTime<Utc>>, key: &[u8]) -> String {
    id_from_hash(at, Sha256::new_with_prefix(key))
        .hyphenated()
        .to_string()
}

fn id_from_hash(at: Option<DateTime<Utc>>, hash: Sha256) -> Uuid {
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    if let Some(at) = at {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    }
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// `eventData` must be an object PostgreSQL can store as `jsonb`, within
/// the size limit as sent and as stored.
fn check_event_data(data: &RawValue, path: FieldPath<'_>) -> Result<(), ApiError> {
    let too_large = || {
        field_error(
            path.to_string(),
            format!("{path} is larger than {MAX_EVENT_DATA_BYTES} bytes"),
        )
    };
    if data.get().len() > MAX_EVENT_DATA_BYTES {
        return Err(too_large());
    }
    let footprint = jsonb::check(data.get(), MAX_EVENT_DATA_DEPTH).map_err(|problem| {
        let (field, message) = match problem {
            Unstorable::Number(number) => (
                path.to_string(),
                format!("{path} holds the number {number}, beyond what PostgreSQL stores (131072 digits before the decimal point, 16383 after)"),
            ),
            Unstorable::TooDeep { limit } => (
                path.to_string(),
                format!("{path} is nested deeper than {limit} levels"),
            ),
            Unstorable::Nul => (
                nul_path(data, path),
                format!("{path} must not contain NUL (\\u0000): PostgreSQL cannot store it"),
            ),
            Unstorable::LoneSurrogate => {
                return ApiError::BadRequest {
                    code: "invalid_json",
                    message: format!("the body is not valid JSON: {path} holds half a UTF-16 surrogate pair"),
                    field: Some(path.to_string()),
                };
            }
        };
        field_error(field, message)
    })?;
    if footprint.stored_text_bytes > MAX_EVENT_DATA_BYTES {
        return Err(too_large());
    }
    Ok(())
}

/// The member of `data` holding a NUL (`events[0].eventData.note`), when
/// `data` can be read as a tree; else `data`'s own path.
fn nul_path(data: &RawValue, path: FieldPath<'_>) -> String {
    serde_json::from_str::<Value>(data.get())
        .ok()
        .and_then(|tree| platform::json::nul_field(&tree))
        .map_or_else(|| path.to_string(), |inner| format!("{path}.{inner}"))
}

fn empty_object() -> &'static RawValue {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "invalid_json",
        format!("the body is not valid JSON: {error}"),
    )
}

/// Validates a request body into rows, naming the first offending field.
/// Nothing of a request with one bad event is stored.
pub fn parse_batch<'a>(
    body: &'a [u8],
    client: &'a ClientContext,
    now: DateTime<Utc>,
) -> Result<Batch<'a>, ApiError> {
    let Body {
        members: root,
        events,
    } = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() && serde_json::from_slice::<de::IgnoredAny>(body).is_ok() {
            ApiError::bad_request("invalid_body", "the body must be a JSON object")
        } else {
            malformed(&e)
        }
    })?;
    let top = |name| FieldPath { index: None, name };
    let session_id = raw_text(
        root.get("sessionId"),
        top("sessionId"),
        MAX_SESSION_ID_CHARS,
        true,
    )?
    .unwrap_or_default();
    let user_id = raw_text(root.get("userId"), top("userId"), MAX_USER_ID_CHARS, false)?;
    let items: Vec<(Option<usize>, Members<'a>)> = match events {
        Some(Events::List(list)) => {
            if list.is_empty() {
                return Err(field_error("events", "events must hold at least one event"));
            }
            if list.len() > MAX_EVENTS_PER_BATCH {
                return Err(field_error(
                    "events",
                    format!("at most {MAX_EVENTS_PER_BATCH} events per request"),
                ));
            }
            if let Some(i) = list.iter().position(Option::is_none) {
                return Err(field_error(
                    format!("events[{i}]"),
                    format!("events[{i}] must be an object"),
                ));
            }
            list.into_iter()
                .flatten()
                .enumerate()
                .map(|(i, item)| (Some(i), item))
                .collect()
        }
        Some(Events::NotAList) => return Err(field_error("events", "events must be an array")),
        None if root.get("eventType").is_some() => vec![(None, root)],
        None => {
            return Err(field_error(
                "events",
                "expected an events array, or a single event with eventType",
            ));
        }
    };
    let events = items
        .into_iter()
        .map(|(index, item)| parse_event(&item, index, &session_id, client, now))
        .collect::<Result<_, _>>()?;
    Ok(Batch {
        session_id,
        user_id,
        user_agent: client.user_agent.as_deref(),
        ip_address: client.ip_address.as_deref(),
        events,
    })
}

fn parse_event<'a>(
    item: &Members<'a>,
    index: Option<usize>,
    session_id: &str,
    client: &'a ClientContext,
    now: DateTime<Utc>,
) -> Result<NewEvent<'a>, ApiError> {
    let at = |name| FieldPath { index, name };
    let event_type = raw_text(
        item.get("eventType"),
        at("eventType"),
        MAX_EVENT_TYPE_CHARS,
        true,
    )?
    .unwrap_or_default();
    let event_data = match item.value("eventData") {
        None => empty_object(),
        Some(raw) if raw.get().starts_with('{') => raw,
        Some(_) => {
            let path = at("eventData");
            return Err(field_error(
                path.to_string(),
                format!("{path} must be an object"),
            ));
        }
    };
    check_event_data(event_data, at("eventData"))?;
    let data = Members::parse(event_data).map_err(|e| malformed(&e))?;
    let url = raw_text(data.get("url"), at("eventData.url"), MAX_URL_CHARS, false)?
        .or_else(|| client.page.as_deref().map(Cow::Borrowed));
    let referrer = raw_text(
        data.get("referrer"),
        at("eventData.referrer"),
        MAX_URL_CHARS,
        false,
    )?;
    let event_id = raw_text(
        item.get("eventId"),
        at("eventId"),
        MAX_EVENT_ID_CHARS,
        false,
    )?;
    let client_time = parse_timestamp(item.get("timestamp"), at("timestamp"), now)?;
    let id = match (&event_id, client_time) {
        (Some(event_id), _) => {
            let mut hash = Sha256::new();
            for part in ["id\0", session_id, "\0", event_id] {
                hash.update(part);
            }
            id_from_hash(None, hash)
        }
        (None, Some(t)) => {
            let mut hash = Sha256::new();
            let ms = t.timestamp_millis().to_string();
            for part in ["content\0", session_id, "\0", &event_type, "\0", &ms, "\0"] {
                hash.update(part);
            }
            hash.update(event_data.get());
            id_from_hash(Some(t), hash)
        }
        (None, None) => Uuid::now_v7(),
    };
    let funnel = (event_type == "funnel")
        .then(|| funnel_step(&data, index))
        .transpose()?;
    Ok(NewEvent {
        id,
        event_type,
        event_data,
        url,
        referrer,
        timestamp: clock::to_db_timestamp(client_time.unwrap_or(now)),
        funnel,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Batch<'_>, ApiError> {
        static CLIENT: std::sync::LazyLock<ClientContext> =
            std::sync::LazyLock::new(ClientContext::default);
        parse_batch(body.as_bytes(), &CLIENT, Utc::now())
    }

    #[test]
    fn ids_from_a_client_event_id_are_those_of_the_earlier_derivation() {
        let batch =
            parse(r#"{"sessionId": "s1", "events": [{"eventType": "x", "eventId": "e-1"}]}"#)
                .expect("valid");
        assert_eq!(
            batch.events[0].id.hyphenated().to_string(),
            derived_id(None, b"id\0s1\0e-1")
        );
    }

    #[test]
    fn content_ids_of_compact_data_are_those_of_the_earlier_derivation() {
        let t = Utc::now().timestamp_millis();
        let data = r#"{"a":1,"b":"two"}"#;
        let body = format!(
            r#"{{"sessionId": "s1", "events": [{{"eventType": "x", "eventData": {data}, "timestamp": {t}}}]}}"#
        );
        let batch = parse(&body).expect("valid");
        let at = Utc.timestamp_millis_opt(t).single();
        // What the earlier code hashed: serde_json's compact text of the data.
        let key = format!("content\0s1\0x\0{t}\0{data}");
        assert_eq!(
            batch.events[0].id.hyphenated().to_string(),
            derived_id(at, key.as_bytes())
        );
    }

    #[test]
    fn escaped_text_is_unescaped_and_data_is_kept_as_sent() {
        let batch = parse(
            r#"{"sessionId": "s\u0031", "events": [{"eventType": "page_view", "eventData": {"\u0075rl": "/caf\u00e9", "n": 1.50}}]}"#,
        )
        .expect("valid");
        assert_eq!(batch.session_id, "s1");
        assert_eq!(batch.events[0].url.as_deref(), Some("/café"));
        assert_eq!(
            batch.events[0].event_data.get(),
            r#"{"\u0075rl": "/caf\u00e9", "n": 1.50}"#
        );
    }

    #[test]
    fn a_repeated_member_keeps_its_last_value() {
        let batch =
            parse(r#"{"sessionId": "a", "sessionId": "b", "eventType": "x"}"#).expect("valid");
        assert_eq!(batch.session_id, "b");
    }

    #[test]
    fn a_lone_surrogate_in_event_data_is_malformed_json() {
        let error = parse(r#"{"sessionId": "s", "eventType": "x", "eventData": {"k": "\ud800"}}"#)
            .expect_err("jsonb would refuse it");
        assert!(
            matches!(
                error,
                ApiError::BadRequest {
                    code: "invalid_json",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_lone_surrogate_in_a_field_is_malformed_json() {
        let error = parse(r#"{"sessionId": "\ud800", "eventType": "x"}"#).expect_err("not text");
        assert!(
            matches!(
                error,
                ApiError::BadRequest {
                    code: "invalid_json",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn missing_data_is_an_empty_object() {
        let batch =
            parse(r#"{"sessionId": "s", "eventType": "x", "eventData": null}"#).expect("valid");
        assert_eq!(batch.events[0].event_data.get(), "{}");
    }
}
