//! A beacon's body validated into rows: every field checked, every id
//! derived, nothing of a request with one bad event kept.

use std::{borrow::Cow, fmt};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use platform::{ApiError, clock};
use serde_json::{Value, value::RawValue};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::reader::{Body, Events, Members, Scalar, empty_object, malformed};
use crate::{
    client::{ClientContext, MAX_URL_CHARS},
    fields::{
        MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS, check_text, id_from_hash, missing_or_not_text,
    },
    jsonb::{self, Unstorable},
};

/// Beyond this, a client should split its batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;
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
        ApiError::invalid_field(
            path.to_string(),
            "must be milliseconds since the epoch or an RFC 3339 time",
        )
    })?;
    if instant > now + MAX_FUTURE_SKEW || instant < now - MAX_AGE {
        return Err(ApiError::invalid_field(
            path.to_string(),
            "is more than an hour ahead or 30 days behind the server clock",
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
            ApiError::invalid_field(path.to_string(), "must be a whole number of milliseconds")
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

/// `eventData` must be an object PostgreSQL can store as `jsonb`, within
/// the size limit as sent and as stored.
fn check_event_data(data: &RawValue, path: FieldPath<'_>) -> Result<(), ApiError> {
    let too_large = || {
        ApiError::invalid_field(
            path.to_string(),
            format!("is larger than {MAX_EVENT_DATA_BYTES} bytes"),
        )
    };
    if data.get().len() > MAX_EVENT_DATA_BYTES {
        return Err(too_large());
    }
    let footprint = jsonb::check(data.get(), MAX_EVENT_DATA_DEPTH).map_err(|problem| {
        let (field, message) = match problem {
            Unstorable::Number(number) => (
                path.to_string(),
                format!("holds the number {number}, beyond what PostgreSQL stores (131072 digits before the decimal point, 16383 after)"),
            ),
            Unstorable::TooDeep { limit } => (
                path.to_string(),
                format!("is nested deeper than {limit} levels"),
            ),
            Unstorable::Nul => (
                nul_path(data, path),
                "must not contain NUL (\\u0000): PostgreSQL cannot store it".to_owned(),
            ),
            Unstorable::LoneSurrogate => {
                return ApiError::invalid_json(
                    Some(path.to_string()),
                    format_args!("{path} holds half a UTF-16 surrogate pair"),
                );
            }
        };
        ApiError::invalid_field(field, message)
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
        if e.is_data() && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
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
                return Err(ApiError::invalid_field(
                    "events",
                    "must hold at least one event",
                ));
            }
            if list.len() > MAX_EVENTS_PER_BATCH {
                return Err(ApiError::invalid_field(
                    "events",
                    format!("must hold at most {MAX_EVENTS_PER_BATCH} events"),
                ));
            }
            if let Some(i) = list.iter().position(Option::is_none) {
                return Err(ApiError::invalid_field(
                    format!("events[{i}]"),
                    "must be an object",
                ));
            }
            list.into_iter()
                .flatten()
                .enumerate()
                .map(|(i, item)| (Some(i), item))
                .collect()
        }
        Some(Events::NotAList) => {
            return Err(ApiError::invalid_field("events", "must be an array"));
        }
        None if root.get("eventType").is_some() => vec![(None, root)],
        None => {
            return Err(ApiError::invalid_field(
                "events",
                "is required: an array of events, or a single event with eventType",
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
            return Err(ApiError::invalid_field(
                path.to_string(),
                "must be an object",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::derived_id;

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
