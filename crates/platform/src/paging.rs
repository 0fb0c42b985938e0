//! Keyset paging: a page ends with an opaque cursor naming its last row's
//! sort key, and the next page starts strictly after it. Unlike OFFSET it
//! neither skips nor repeats rows when new ones arrive in between.

use crate::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

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
    // Read as a tree first: a forged cursor can hold anything JSON can,
    // and a NUL in it would reach PostgreSQL, which cannot take one.
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter(|tree| crate::json::nul_field(tree).is_none())
        .and_then(|tree| serde_json::from_value(tree).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_field("cursor", "is not one this API issued"))
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
        other => Ok(other.map(crate::clock::to_db_timestamp)),
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
            "is not one this API issued",
        )),
        other => Ok(other),
    }
}

/// Largest JSON body one page may take. Lambda caps a response at 6 MB,
/// counted after it escapes the body into its own JSON envelope, so the
/// budget is counted the same way and leaves room for the rest.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest value one field of one item may carry in a page: a longer text
/// is cut, and a larger JSON value replaced, each with a marker saying so.
/// An item of a list has a few dozen fields at most, so any one item fits
/// in a page whatever its rows hold (an admin's stored overrides, a
/// change's before and after, a stack trace the application wrote).
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// One page of a list: its items under the list's own name (`users`,
/// `entries`, `errors`) and the cursor that continues after the last one.
pub struct Page {
    name: &'static str,
    items: Vec<Value>,
    next_cursor: Option<String>,
}

impl Page {
    /// `rows`, fetched with `limit + 1`, as a page of at most `limit` items
    /// that fits in [`MAX_PAGE_BYTES`]; when rows remain, the next cursor
    /// is `key` of the last item kept.
    pub fn new<T: Serialize, K: Serialize>(
        name: &'static str,
        rows: Vec<T>,
        limit: i64,
        key: impl Fn(&T) -> K,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut used = 0;
        for row in rows.iter().take(limit) {
            let item = bounded(serde_json::to_value(row).unwrap_or(Value::Null));
            let size = escaped_len(&item.to_string()) + 1;
            if !items.is_empty() && used + size > MAX_PAGE_BYTES {
                break;
            }
            used += size;
            items.push(item);
        }
        let next_cursor = (rows.len() > items.len())
            .then(|| {
                items
                    .len()
                    .checked_sub(1)
                    .map(|last| encode(&key(&rows[last])))
            })
            .flatten();
        Self {
            name,
            items,
            next_cursor,
        }
    }
}

impl Serialize for Page {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(self.name, &self.items)?;
        map.serialize_entry("nextCursor", &self.next_cursor)?;
        map.end()
    }
}

/// `item` with each field held to [`MAX_FIELD_BYTES`].
fn bounded(item: Value) -> Value {
    let Value::Object(fields) = item else {
        return item;
    };
    Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| {
                let size = escaped_len(&value.to_string());
                let value = match value {
                    _ if size <= MAX_FIELD_BYTES => value,
                    Value::String(text) => Value::String(cut_text(&text, MAX_FIELD_BYTES)),
                    _ => serde_json::json!({"omitted": true, "bytes": size}),
                };
                (name, value)
            })
            .collect(),
    )
}

/// `text` cut so that it takes at most `budget` bytes escaped, with a
/// marker saying how much was cut.
pub fn cut_text(text: &str, budget: usize) -> String {
    let mut used = 0;
    let end = text
        .char_indices()
        .find(|(_, c)| {
            used += escaped_len(c.encode_utf8(&mut [0; 4]));
            used > budget.saturating_sub(64)
        })
        .map_or(text.len(), |(at, _)| at);
    if end == text.len() {
        return text.to_owned();
    }
    format!("{}…[cut: {} more bytes]", &text[..end], text.len() - end)
}

/// How many bytes `text` takes inside a JSON string.
pub fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// `%text%` with LIKE's wildcards in `text` escaped: a search box's words
/// matched anywhere, never as patterns.
pub fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Longest text a list's search box takes.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A list's search text, checked ([`MAX_SEARCH_CHARS`], a 400 naming
/// `field`), as the LIKE pattern that finds it anywhere; `None` without one.
pub fn search_pattern(field: &str, search: Option<&str>) -> Result<Option<String>, ApiError> {
    match search {
        Some(text) if text.chars().count() > MAX_SEARCH_CHARS => Err(ApiError::invalid_field(
            field,
            format!("must be at most {MAX_SEARCH_CHARS} characters"),
        )),
        other => Ok(other.map(like_pattern)),
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
    fn a_cursor_holding_a_nul_is_a_400_naming_the_field() {
        let forged = encode(&("2025-11-25T10:00:00.000", "id\u{0}1"));
        let error = decode::<(String, String)>(Some(&forged)).expect_err("forged");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "cursor"));
    }

    #[test]
    fn a_page_keeps_within_its_byte_budget_and_continues_after_its_last_item() {
        let big = "x".repeat(MAX_FIELD_BYTES - 100);
        let rows: Vec<(u32, Vec<String>)> = (0..200).map(|i| (i, vec![big.clone()])).collect();
        let page = Page::new("rows", rows, 200, |row| row.0);
        let body = serde_json::to_string(&page).expect("json");
        assert!(escaped_len(&body) <= MAX_PAGE_BYTES, "{}", body.len());
        assert!(page.items.len() < 200);
        let cursor: u32 = decode(page.next_cursor.as_deref())
            .expect("ok")
            .expect("a cursor");
        assert_eq!(
            usize::try_from(cursor).expect("small"),
            page.items.len() - 1
        );
    }

    #[test]
    fn an_oversized_field_is_cut_or_omitted_with_a_marker() {
        let huge_text = "y".repeat(MAX_FIELD_BYTES * 3);
        let huge_value: Vec<&str> = vec!["read"; MAX_FIELD_BYTES];
        let row = serde_json::json!({"text": huge_text, "value": huge_value, "small": 1});
        let page = Page::new("rows", vec![row], 10, |_| 0);
        let item = &page.items[0];
        assert!(
            item["text"]
                .as_str()
                .expect("text")
                .ends_with("more bytes]")
        );
        assert!(escaped_len(item["text"].as_str().expect("text")) <= MAX_FIELD_BYTES);
        assert_eq!(item["value"]["omitted"], true);
        assert_eq!(item["small"], 1);
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(limit(None).expect("default"), DEFAULT_LIMIT);
    }

    #[test]
    fn search_text_cannot_smuggle_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn a_search_longer_than_the_limit_is_a_400_naming_its_field() {
        let long = "x".repeat(MAX_SEARCH_CHARS + 1);
        let error = search_pattern("q", Some(&long)).expect_err("too long");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "q"));
        assert_eq!(
            search_pattern("q", Some("a_b")).expect("ok").as_deref(),
            Some("%a\\_b%")
        );
        assert_eq!(search_pattern("q", None).expect("ok"), None);
    }
}
