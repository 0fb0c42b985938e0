//! A Sentry event (<https://develop.sentry.dev/sdk/data-model/event-payloads/>)
//! read as a browser error of the intake: the same row, grouped by the same
//! fingerprints as the intake's own route.
//!
//! An SDK cannot correct what it sends, so, as Sentry's own ingestion does,
//! values are made storable rather than refused: texts are cut to the
//! intake's limits and a NUL becomes U+FFFD. Only an event that is not a
//! JSON object, or an `event_id` that is not one, is a 400.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    browser_errors::{
        MAX_ERROR_TYPE_CHARS, MAX_FINGERPRINT_CHARS, MAX_MESSAGE_CHARS, MAX_STACK_CHARS, NewError,
        normalise_severity,
    },
    client::{ClientContext, MAX_URL_CHARS, MAX_USER_AGENT_CHARS},
    device,
    fields::{MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS, id_from_hash},
    fingerprint,
};
use platform::ApiError;
use platform::json::storable;

pub const MAX_RELEASE_CHARS: usize = 200;
pub const MAX_ENVIRONMENT_CHARS: usize = 64;

/// A Sentry event as the intake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentryEvent {
    /// The SDK's `event_id`: a retry of the event is counted once.
    pub event_id: Uuid,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub error: NewError,
}

fn string(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// A string, or a number (user ids are either), as text.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The exception the event is about: the last of `exception.values` (the
/// protocol lists chained exceptions from the cause to the one raised).
fn main_exception(event: &Value) -> Option<&Value> {
    let exception = event.get("exception")?;
    exception
        .get("values")
        .unwrap_or(exception)
        .as_array()?
        .iter()
        .rev()
        .find(|value| value.is_object())
}

/// A `logentry`'s (or the older `message`'s) text: a string, or an object
/// with `formatted` or `message`.
fn logentry(entry: Option<&Value>) -> Option<&str> {
    match entry? {
        Value::String(text) => Some(text.as_str()),
        entry => string(entry.get("formatted")).or(string(entry.get("message"))),
    }
}

/// The event's text: the exception's value (else its type), else the
/// message of `captureMessage` (`logentry` or the older `message`).
fn message_of(event: &Value, exception: Option<&Value>) -> String {
    let from_exception = exception.and_then(|e| string(e.get("value")).or(string(e.get("type"))));
    from_exception
        .or_else(|| logentry(event.get("logentry")))
        .or_else(|| logentry(event.get("message")))
        .map(str::to_owned)
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The in-app frames as a JavaScript stack (newest first, `at function
/// (file:line:column)`), which the fingerprinter reads as it reads a
/// browser's. The protocol lists frames oldest first; a frame is in-app
/// when the SDK says so, or, when it said so of none, unless it said not.
fn stack_of(exception: Option<&Value>, event: &Value, headline: &str) -> Option<String> {
    let frames = exception
        .and_then(|e| at(e, &["stacktrace", "frames"]))
        .or_else(|| at(event, &["stacktrace", "frames"]))?
        .as_array()?;
    let frames: Vec<&Map<String, Value>> = frames.iter().filter_map(Value::as_object).collect();
    let any_in_app = frames
        .iter()
        .any(|f| f.get("in_app") == Some(&Value::Bool(true)));
    let mut stack = headline.to_owned();
    for frame in frames.iter().rev().filter(|f| match f.get("in_app") {
        Some(Value::Bool(in_app)) => *in_app,
        _ => !any_in_app,
    }) {
        let file = string(frame.get("abs_path"))
            .or(string(frame.get("filename")))
            .or(string(frame.get("module")))
            .unwrap_or("<unknown>");
        let mut location = file.to_owned();
        for key in ["lineno", "colno"] {
            if let Some(n) = frame.get(key).and_then(Value::as_u64) {
                location.push_str(&format!(":{n}"));
            }
        }
        match string(frame.get("function")) {
            Some(function) => stack.push_str(&format!("\n    at {function} ({location})")),
            None => stack.push_str(&format!("\n    at {location}")),
        }
    }
    Some(stack)
}

/// `User-Agent` of the event's `request.headers` (an object or a list of
/// pairs, as the protocol allows both).
fn event_user_agent(event: &Value) -> Option<&str> {
    match at(event, &["request", "headers"])? {
        Value::Object(headers) => headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
            .and_then(|(_, value)| value.as_str()),
        Value::Array(pairs) => pairs
            .iter()
            .find_map(|pair| match pair.as_array()?.as_slice() {
                [Value::String(name), Value::String(value)]
                    if name.eq_ignore_ascii_case("user-agent") =>
                {
                    Some(value.as_str())
                }
                _ => None,
            }),
        _ => None,
    }
}

/// A context's `name` and `version` (`contexts.os`, `contexts.runtime`).
fn context_name(event: &Value, context: &str) -> Option<String> {
    let context = at(event, &["contexts", context])?;
    let name = string(context.get("name"))?;
    Some(match string(context.get("version")) {
        Some(version) => format!("{name} {version}"),
        None => name.to_owned(),
    })
}

/// The SDK's `fingerprint`: `{{ default }}` stands for the intake's own.
/// One value is the fingerprint; several are hashed into one.
fn fingerprint_of(event: &Value, computed: String) -> String {
    let Some(parts) = event.get("fingerprint").and_then(Value::as_array) else {
        return computed;
    };
    let parts: Vec<String> = parts
        .iter()
        .map(|part| match part {
            Value::String(s) if s.replace(' ', "") == "{{default}}" => computed.clone(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    match parts.as_slice() {
        [] => computed,
        [one] if one.chars().count() <= MAX_FINGERPRINT_CHARS && !one.contains('\0') => one.clone(),
        _ => Sha256::digest(parts.join("\n").as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// Reads one event. `raw` is the payload as sent: an event without an
/// `event_id` gets one derived from it, so that its retry is still
/// recognised. `path` names the event in errors (`envelope.items[0]`).
pub fn read_event(raw: &[u8], path: &str, client: &ClientContext) -> Result<SentryEvent, ApiError> {
    let event: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::invalid_json(Some(path.to_owned()), e))?;
    if !event.is_object() {
        return Err(ApiError::invalid_field(path, "must be a JSON object"));
    }
    let event_id = match event.get("event_id") {
        None | Some(Value::Null) => id_from_hash(None, Sha256::new_with_prefix(raw)),
        Some(Value::String(id)) => Uuid::try_parse(id).map_err(|_| {
            ApiError::invalid_field(
                format!("{path}.event_id"),
                "must be 32 hexadecimal digits (a UUID)",
            )
        })?,
        Some(_) => {
            return Err(ApiError::invalid_field(
                format!("{path}.event_id"),
                "must be a string",
            ));
        }
    };
    let exception = main_exception(&event);
    let error_type = exception
        .and_then(|e| string(e.get("type")))
        .map(|t| storable(t, MAX_ERROR_TYPE_CHARS));
    let message = storable(&message_of(&event, exception), MAX_MESSAGE_CHARS);
    let headline = match &error_type {
        Some(t) => format!("{t}: {message}"),
        None => message.clone(),
    };
    let stack = stack_of(exception, &event, &headline).map(|s| storable(&s, MAX_STACK_CHARS));
    let user_agent = event_user_agent(&event)
        .map(str::to_owned)
        .or_else(|| client.user_agent.clone())
        .map(|ua| storable(&ua, MAX_USER_AGENT_CHARS));
    let parsed = user_agent.as_deref().map(device::parse).unwrap_or_default();
    let computed = fingerprint::fingerprint(error_type.as_deref(), &message, stack.as_deref());
    let session_id = string(at(&event, &["tags", "sessionId"]))
        .or(string(at(&event, &["tags", "session_id"])))
        .or(string(at(&event, &["contexts", "trace", "trace_id"])))
        .map(str::to_owned)
        .unwrap_or_else(|| event_id.simple().to_string());
    let error = NewError {
        message,
        error_type,
        url: string(at(&event, &["request", "url"]))
            .map(str::to_owned)
            .or_else(|| client.page.clone())
            .map(|url| storable(&url, MAX_URL_CHARS))
            .unwrap_or_default(),
        user_id: id_text(at(&event, &["user", "id"])).map(|id| storable(&id, MAX_USER_ID_CHARS)),
        session_id: storable(&session_id, MAX_SESSION_ID_CHARS),
        browser: context_name(&event, "browser")
            .map(|name| name.split(' ').next().unwrap_or_default().to_owned())
            .or(parsed.browser)
            .or_else(|| context_name(&event, "runtime"))
            .map(|b| storable(&b, 64)),
        os: at(&event, &["contexts", "os", "name"])
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(parsed.os)
            .map(|os| storable(&os, 64)),
        user_agent,
        severity: string(event.get("level"))
            .and_then(normalise_severity)
            .unwrap_or("error"),
        fingerprint: storable(&fingerprint_of(&event, computed), MAX_FINGERPRINT_CHARS),
        stack,
    };
    Ok(SentryEvent {
        event_id,
        release: string(event.get("release")).map(|r| storable(r, MAX_RELEASE_CHARS)),
        environment: string(event.get("environment")).map(|e| storable(e, MAX_ENVIRONMENT_CHARS)),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(event: Value) -> SentryEvent {
        read_event(
            event.to_string().as_bytes(),
            "event",
            &ClientContext::default(),
        )
        .expect("readable")
    }

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    fn browser_exception() -> Value {
        json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "level": "error",
            "platform": "javascript",
            "release": "deals@1.4.2",
            "environment": "production",
            "request": {"url": "https://deals.example/deals/lisbon", "headers": {"User-Agent": CHROME}},
            "user": {"id": 42},
            "exception": {"values": [
                {"type": "Error", "value": "the cause"},
                {"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": [
                    {"filename": "https://deals.example/_next/static/chunks/framework-0a1b2c3d.js", "function": "renderWithHooks", "lineno": 1, "colno": 55, "in_app": false},
                    {"filename": "https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js", "function": "DealCard", "lineno": 1, "colno": 9876, "in_app": true},
                    {"filename": "https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js", "function": "formatDeal", "lineno": 1, "colno": 2345, "in_app": true}
                ]}}
            ]}
        })
    }

    #[test]
    fn an_exception_becomes_its_type_value_and_in_app_frames_newest_first() {
        let event = read(browser_exception());

        assert_eq!(event.error.error_type.as_deref(), Some("TypeError"));
        assert_eq!(event.error.message, "x is undefined");
        assert_eq!(
            event.error.stack.as_deref(),
            Some(
                "TypeError: x is undefined\n    at formatDeal (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:2345)\n    at DealCard (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:9876)"
            )
        );
    }

    #[test]
    fn the_request_user_release_and_environment_are_kept() {
        let event = read(browser_exception());

        assert_eq!(event.error.url, "https://deals.example/deals/lisbon");
        assert_eq!(event.error.user_id.as_deref(), Some("42"));
        assert_eq!(event.error.browser.as_deref(), Some("Chrome"));
        assert_eq!(event.error.os.as_deref(), Some("Windows"));
        assert_eq!(event.release.as_deref(), Some("deals@1.4.2"));
        assert_eq!(event.environment.as_deref(), Some("production"));
        assert_eq!(
            event.event_id.simple().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
    }

    #[test]
    fn the_same_bug_groups_with_the_intakes_own_route() {
        let stack = "TypeError: x is undefined
    at formatDeal (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:2345)
    at DealCard (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:9876)";
        let own = fingerprint::fingerprint(Some("TypeError"), "x is undefined", Some(stack));

        assert_eq!(read(browser_exception()).error.fingerprint, own);
    }

    #[test]
    fn a_captured_message_is_the_message_at_its_level() {
        let event = read(json!({"message": "checkout slow", "level": "warning"}));
        let entry = read(json!({"logentry": {"formatted": "price %s missing"}, "level": "info"}));

        assert_eq!(
            (event.error.message.as_str(), event.error.severity),
            ("checkout slow", "warning")
        );
        assert_eq!(
            (entry.error.message.as_str(), entry.error.severity),
            ("price %s missing", "info")
        );
        assert_eq!(event.error.error_type, None);
    }

    #[test]
    fn sentry_levels_map_to_the_stored_severities() {
        for (level, stored) in [
            ("fatal", "critical"),
            ("error", "error"),
            ("warning", "warning"),
            ("log", "info"),
            ("info", "info"),
            ("debug", "info"),
            ("nonsense", "error"),
        ] {
            assert_eq!(
                read(json!({"message": "m", "level": level})).error.severity,
                stored
            );
        }
    }

    #[test]
    fn an_sdk_fingerprint_wins_and_default_stands_for_the_computed_one() {
        let mut custom = browser_exception();
        custom["fingerprint"] = json!(["checkout-timeout"]);
        let mut default = browser_exception();
        default["fingerprint"] = json!(["{{ default }}"]);
        let mut extended = browser_exception();
        extended["fingerprint"] = json!(["{{ default }}", "eu-west"]);

        let computed = read(browser_exception()).error.fingerprint;
        assert_eq!(read(custom).error.fingerprint, "checkout-timeout");
        assert_eq!(read(default).error.fingerprint, computed);
        let extended = read(extended).error.fingerprint;
        assert_ne!(extended, computed);
        assert_eq!(extended.len(), 32);
    }

    #[test]
    fn an_event_without_an_id_gets_one_from_its_content() {
        let body = json!({"message": "no id"}).to_string();
        let read_twice = || {
            read_event(body.as_bytes(), "event", &ClientContext::default())
                .expect("readable")
                .event_id
        };
        assert_eq!(read_twice(), read_twice());
    }

    #[test]
    fn a_bad_event_id_or_a_non_object_is_a_400_naming_it() {
        let client = ClientContext::default();
        for (body, field) in [
            (r#"{"event_id": "not-an-id"}"#, "envelope.items[0].event_id"),
            (r#"{"event_id": 7}"#, "envelope.items[0].event_id"),
            ("[1, 2]", "envelope.items[0]"),
        ] {
            let error = read_event(body.as_bytes(), "envelope.items[0]", &client).expect_err(body);
            assert!(format!("{error:?}").contains(field), "{body}: {error:?}");
        }
    }

    #[test]
    fn nul_and_oversized_values_are_made_storable_not_refused() {
        let event = read(json!({
            "message": format!("a\u{0}b{}", "x".repeat(10_000)),
            "user": {"id": "u\u{0}"},
        }));
        assert!(event.error.message.starts_with("a\u{FFFD}b"));
        assert_eq!(event.error.message.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(event.error.user_id.as_deref(), Some("u\u{FFFD}"));
    }

    #[test]
    fn a_server_event_names_its_runtime_and_os() {
        let event = read(json!({
            "message": "boom", "platform": "node",
            "contexts": {"runtime": {"name": "node", "version": "v22.1.0"}, "os": {"name": "Linux", "version": "6.1"}},
            "tags": {"sessionId": "s-123"}
        }));
        assert_eq!(event.error.browser.as_deref(), Some("node v22.1.0"));
        assert_eq!(event.error.os.as_deref(), Some("Linux"));
        assert_eq!(event.error.session_id, "s-123");
        assert_eq!(event.error.url, "");
    }
}
