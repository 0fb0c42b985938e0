//! The rules every field of every intake route follows (analytics events,
//! Web Vitals, browser errors), whichever JSON reader found the field, and
//! the ids derived from what a client sent. Below all three routes: nothing
//! here knows which one is asking.

use std::fmt;

use chrono::{DateTime, Utc};
use platform::ApiError;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const MAX_SESSION_ID_CHARS: usize = 128;
pub const MAX_USER_ID_CHARS: usize = 128;

/// The rules every text field follows, whichever JSON reader found it.
pub(crate) fn check_text(
    s: &str,
    path: &dyn fmt::Display,
    max: usize,
    required: bool,
) -> Result<(), ApiError> {
    if required && s.trim().is_empty() {
        return Err(ApiError::invalid_field(
            path.to_string(),
            "must not be empty",
        ));
    }
    if s.contains('\0') {
        return Err(ApiError::invalid_field(
            path.to_string(),
            "must not contain NUL (\\u0000): PostgreSQL cannot store it",
        ));
    }
    if s.len() > max && s.chars().count() > max {
        return Err(ApiError::invalid_field(
            path.to_string(),
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn missing_or_not_text(path: &dyn fmt::Display, present: bool) -> ApiError {
    if present {
        ApiError::invalid_field(path.to_string(), "must be a string")
    } else {
        ApiError::invalid_field(path.to_string(), "is required")
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

/// An id whose bits are a hash of `key`, led by `at`'s milliseconds when
/// given, so that such ids sort by time.
pub(crate) fn derived_id(at: Option<DateTime<Utc>>, key: &[u8]) -> String {
    id_from_hash(at, Sha256::new_with_prefix(key))
        .hyphenated()
        .to_string()
}

pub(crate) fn id_from_hash(at: Option<DateTime<Utc>>, hash: Sha256) -> Uuid {
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    if let Some(at) = at {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    }
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
