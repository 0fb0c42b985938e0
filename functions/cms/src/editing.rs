//! What deals and destinations share as editable things: one input type per
//! kind, read the same way from a create's body, from a change merged onto
//! the current state, and from a version of the history, so that the three
//! cannot drift apart in what they accept.

use platform::{ApiError, ApiResult};
use serde_json::{Map, Value};

/// `view`'s editable fields (those named in `keys`), as an input body.
pub fn editable(view: &Value, keys: &[&str]) -> Value {
    let mut fields = Map::new();
    for key in keys {
        if let Some(value) = view.get(*key) {
            fields.insert((*key).to_owned(), value.clone());
        }
    }
    Value::Object(fields)
}

/// A change (`PATCH` body) merged onto the current state's editable fields:
/// absent fields stay as they are, `null` clears a nullable one, and a field
/// that is not editable is refused by the input type's parse, which names
/// it.
pub fn merge(current_view: &Value, keys: &[&str], change: &[u8]) -> ApiResult<Vec<u8>> {
    let change: Value =
        serde_json::from_slice(change).map_err(|e| ApiError::invalid_json(None, e))?;
    let Value::Object(change) = change else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object of the fields to change",
        ));
    };
    let mut merged = editable(current_view, keys);
    if let Value::Object(fields) = &mut merged {
        for (key, value) in change {
            fields.insert(key, value);
        }
    }
    Ok(serde_json::to_vec(&merged).expect("JSON serialises"))
}

/// A float for a keyset cursor, exactly: its bits, since a decimal
/// rendering may not read back to the same value.
pub fn float_key(value: f64) -> i64 {
    i64::from_ne_bytes(value.to_bits().to_ne_bytes())
}

/// The float a [`float_key`] holds.
pub fn float_of_key(key: i64) -> f64 {
    f64::from_bits(u64::from_ne_bytes(key.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_overrides_only_what_it_names_and_null_clears() {
        let view = serde_json::json!({"id": "d1", "title": "Old", "expiresAt": "2027-01-01T00:00:00Z", "views": 9});
        let merged =
            merge(&view, &["title", "expiresAt"], br#"{"expiresAt": null}"#).expect("merged");
        let merged: Value = serde_json::from_slice(&merged).expect("json");
        assert_eq!(
            merged,
            serde_json::json!({"title": "Old", "expiresAt": null})
        );
    }

    #[test]
    fn a_change_that_is_not_an_object_is_refused() {
        assert!(merge(&serde_json::json!({}), &[], b"[1]").is_err());
        assert!(merge(&serde_json::json!({}), &[], b"{").is_err());
    }

    #[test]
    fn float_keys_round_trip_exactly() {
        for value in [0.1 + 0.2, 299.99, 1e-300, 0.0, 123_456.789_012_345] {
            assert_eq!(float_of_key(float_key(value)).to_bits(), value.to_bits());
        }
    }
}
