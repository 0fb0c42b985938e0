//! Request bodies read into typed structs, with errors that name the field.

use serde::de::DeserializeOwned;

use crate::ApiError;

/// Parses `body` as `T`. A wrong or missing field is a 400 naming it
/// (`permissions[1].actions`); a body that is not JSON at all is a 400 too.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(None, e))?;
    // PostgreSQL text cannot hold U+0000; refused here, it is a 400 naming
    // the field instead of a failed statement.
    if let Some(path) = nul_field(&value) {
        return Err(ApiError::invalid_field(
            path,
            "must not contain NUL (U+0000)",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        match (missing_field(&message), path.as_str()) {
            (Some(field), ".") => ApiError::invalid_field(field, "is required"),
            (Some(field), parent) => {
                ApiError::invalid_field(format!("{parent}.{field}"), "is required")
            }
            (None, ".") => ApiError::bad_request("invalid_body", message),
            (None, _) => ApiError::invalid_field(path, format!("is invalid: {message}")),
        }
    })
}

/// `text` as PostgreSQL text can hold it: U+0000 becomes U+FFFD (the
/// replacement character, visibly not what was sent), and at most `max`
/// characters are kept. For text a client sent that is stored rather than
/// refused (an audit row's, a Sentry event's).
pub fn storable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

/// The path of the first string (or key) of `value` holding U+0000, which
/// PostgreSQL text and jsonb cannot store: `events[3].eventData.note`.
pub fn nul_field(value: &serde_json::Value) -> Option<String> {
    nul_path(value, String::new())
}

fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => {
            Some(if path.is_empty() { ".".into() } else { path })
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(here)
            } else {
                nul_path(item, here)
            }
        }),
        _ => None,
    }
}

/// serde reports a missing field at its parent's path, naming it only in
/// the message: "missing field `role` at line 1 column 17".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Parses a query string as `T`, with the same field-naming 400s. No query
/// string reads as an empty one.
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    if let Some((name, _)) = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::invalid_field(
            name.replace('\0', ""),
            "must not contain NUL (U+0000)",
        ));
    }
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.unwrap_or("").as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        if path == "." {
            ApiError::bad_request("invalid_query", message)
        } else {
            ApiError::invalid_field(path, format!("is invalid: {message}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_text_has_no_nul_and_at_most_max_characters() {
        assert_eq!(storable("a\0bcd", 3), "a\u{FFFD}b");
        assert_eq!(storable("éé", 5), "éé");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patch {
        resolved: bool,
        notes: Option<String>,
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let error = parse::<Patch>(br#"{"resolved": "yes"}"#).expect_err("wrong type");
        assert!(
            matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "resolved")
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Filters {
        limit: Option<u32>,
    }

    #[test]
    fn a_bad_query_parameter_names_the_field() {
        let error = parse_query::<Filters>(Some("limit=lots")).expect_err("not a number");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "limit"));
        assert_eq!(parse_query::<Filters>(None).expect("empty").limit, None);
    }

    #[test]
    fn a_missing_field_is_named() {
        let error = parse::<Patch>(br#"{"notes": "x"}"#).expect_err("missing");
        assert!(
            matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "resolved")
        );
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        let error = parse::<Patch>(br#"{"resolved": true, "notes": "a\u0000b"}"#).expect_err("nul");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "notes"));
        let error = parse_query::<Filters>(Some("limit=1&q=%00")).expect_err("nul");
        assert!(matches!(error, ApiError::BadRequest { field: Some(ref f), .. } if f == "q"));
    }

    #[test]
    fn malformed_json_is_a_400_without_a_field() {
        let error = parse::<Patch>(b"{nope").expect_err("malformed");
        assert!(matches!(
            error,
            ApiError::BadRequest {
                code: "invalid_json",
                field: None,
                ..
            }
        ));
    }
}
