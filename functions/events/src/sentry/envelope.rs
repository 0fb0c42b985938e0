//! Sentry's envelope framing (<https://develop.sentry.dev/sdk/data-model/envelopes/>):
//! a JSON header line, then items, each a JSON header line and a payload
//! of `length` bytes (or, without a length, up to the next newline).
//!
//! Only the framing is read here; what an item holds is the caller's.

use serde_json::Value;

/// One item: its type (`event`, `transaction`, `session`, ...) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub item_type: String,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The envelope's header: `event_id`, `dsn`, `sdk`, `sent_at`, ...
    pub header: serde_json::Map<String, Value>,
    pub items: Vec<Item<'a>>,
}

/// Where an envelope broke the framing, and how: `field` names the part
/// (`envelope.header`, `envelope.items[2].length`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError {
    pub field: String,
    pub problem: String,
}

fn framing(field: impl Into<String>, problem: impl Into<String>) -> FramingError {
    FramingError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The line at the start of `rest` (without its newline), and what follows.
fn line(rest: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', rest) {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[]),
    }
}

fn json_object(bytes: &[u8], field: &str) -> Result<serde_json::Map<String, Value>, FramingError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(framing(field, "must be a JSON object")),
        Err(e) => Err(framing(field, format!("is not valid JSON: {e}"))),
    }
}

/// Splits `body` into its header and items.
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, FramingError> {
    let (header_line, mut rest) = line(body);
    let header = json_object(header_line, "envelope.header")?;
    let mut items = Vec::new();
    // A newline after the last item, or several, ends the envelope.
    while !rest.iter().all(|b| *b == b'\n') {
        let index = items.len();
        let field = |part: &str| format!("envelope.items[{index}].{part}");
        let (item_line, after_header) = line(rest);
        let item_header = json_object(item_line, &field("header"))?;
        let item_type = match item_header.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            Some(_) => return Err(framing(field("type"), "must be a non-empty string")),
            None => return Err(framing(field("type"), "is required")),
        };
        let (payload, after_payload) = match item_header.get("length") {
            None | Some(Value::Null) => line(after_header),
            Some(length) => {
                let length = length
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| framing(field("length"), "must be a non-negative integer"))?;
                if length > after_header.len() {
                    return Err(framing(
                        field("length"),
                        format!("is {length} bytes, but only {} follow", after_header.len()),
                    ));
                }
                let (payload, after) = after_header.split_at(length);
                // The newline after a payload of known length is optional.
                (payload, after.strip_prefix(b"\n").unwrap_or(after))
            }
        };
        items.push(Item { item_type, payload });
        rest = after_payload;
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_a_length_are_read() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"event\",\"length\":13}\n{\"message\":1}\n\
            {\"type\":\"session\"}\n{\"sid\":\"x\"}\n";
        let envelope = parse(body).expect("valid");
        assert_eq!(
            envelope.header["event_id"],
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(
            envelope.items,
            [
                Item {
                    item_type: "event".into(),
                    payload: b"{\"message\":1}"
                },
                Item {
                    item_type: "session".into(),
                    payload: b"{\"sid\":\"x\"}"
                },
            ]
        );
    }

    #[test]
    fn a_payload_of_known_length_may_hold_newlines_and_end_the_body() {
        let body = b"{}\n{\"type\":\"attachment\",\"length\":5}\na\nb\nc";
        let envelope = parse(body).expect("valid");
        assert_eq!(envelope.items[0].payload, b"a\nb\nc");
    }

    #[test]
    fn an_envelope_of_only_a_header_has_no_items() {
        assert!(parse(b"{}").expect("valid").items.is_empty());
        assert!(parse(b"{}\n\n").expect("valid").items.is_empty());
    }

    #[test]
    fn a_length_past_the_end_names_the_item() {
        let error = parse(b"{}\n{\"type\":\"event\",\"length\":99}\n{}").expect_err("short");
        assert_eq!(error.field, "envelope.items[0].length");
    }

    #[test]
    fn an_item_without_a_type_or_a_broken_header_names_the_part() {
        assert_eq!(
            parse(b"{}\n{\"length\":2}\n{}").expect_err("no type").field,
            "envelope.items[0].type"
        );
        assert_eq!(
            parse(b"not json\n").expect_err("header").field,
            "envelope.header"
        );
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\"}\n{}\n[1,2\n")
                .expect_err("second header")
                .field,
            "envelope.items[1].header"
        );
    }
}
