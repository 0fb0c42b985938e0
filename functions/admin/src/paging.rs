//! Keyset paging: a page ends with an opaque cursor naming its last row's
//! sort key, and the next page starts strictly after it. Unlike OFFSET it
//! neither skips nor repeats rows when new ones arrive in between.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::ApiError;
use serde::{Serialize, de::DeserializeOwned};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// The page size asked for, checked.
pub fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

pub fn encode<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("cursor keys serialise"))
}

pub fn decode<K: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<K>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor this API issued"))
}

/// The years a time filter or cursor may name: PostgreSQL's `timestamp`
/// refuses some years chrono accepts (4714 BC, 294277 AD), and nothing in an
/// audit trail or error log lies outside these.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// `instant` checked to lie in [`YEARS`], as a `TIMESTAMP(3)` value.
pub fn time(
    field: &str,
    instant: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    use chrono::Datelike as _;
    match instant {
        Some(t) if !YEARS.contains(&t.year()) => Err(ApiError::invalid_field(
            field,
            "must be between 1970 and 9999",
        )),
        other => Ok(other.map(platform::clock::to_db_timestamp)),
    }
}

/// A `(time, id)` cursor, its time checked like [`time`]'s.
pub fn time_cursor(
    cursor: Option<&str>,
) -> Result<Option<(chrono::NaiveDateTime, String)>, ApiError> {
    use chrono::Datelike as _;
    let key: Option<(chrono::NaiveDateTime, String)> = decode(cursor)?;
    match key {
        Some((t, _)) if !YEARS.contains(&t.year()) => Err(ApiError::invalid_field(
            "cursor",
            "not a cursor this API issued",
        )),
        other => Ok(other),
    }
}

/// Splits one extra row off `rows` (fetched with `limit + 1`) into the
/// next cursor.
pub fn finish<T, K: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|last| encode(&key(last)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let cursor = encode(&("2025-11-25T10:00:00.000", "id-1"));
        let key: (String, String) = decode(Some(&cursor)).expect("ok").expect("some");
        assert_eq!(key, ("2025-11-25T10:00:00.000".into(), "id-1".into()));
    }

    #[test]
    fn a_forged_cursor_is_a_400_naming_the_field() {
        let error = decode::<(String, String)>(Some("%%%")).expect_err("forged");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "cursor"));
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(limit(None).expect("default"), DEFAULT_LIMIT);
    }
}
