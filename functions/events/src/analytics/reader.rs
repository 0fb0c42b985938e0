//! Reading a beacon's JSON in one pass, without building a tree: an
//! object's members with their values left as the JSON text sent, `events`
//! split into its items as it is read, and strings borrowed from the body
//! unless they had escapes.

use std::{borrow::Cow, fmt};

use platform::ApiError;
use serde::{Deserialize, Deserializer, de};
use serde_json::value::RawValue;

/// A JSON object's members, their values left as unparsed JSON text. A
/// repeated name keeps its last value, as `serde_json::Map` and `jsonb` do.
pub(super) struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    pub(super) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// A member that is present and not `null`.
    pub(super) fn value(&self, name: &str) -> Option<&'a RawValue> {
        self.get(name).filter(|v| v.get() != "null")
    }

    pub(super) fn parse(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
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
pub(super) struct Body<'a> {
    pub(super) members: Members<'a>,
    pub(super) events: Option<Events<'a>>,
}

pub(super) enum Events<'a> {
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
pub(super) enum Scalar<'a> {
    Absent,
    Text(Cow<'a, str>),
    Integer(i64),
    Other,
}

impl<'a> Scalar<'a> {
    /// A string whose escapes do not decode (a lone surrogate) is malformed
    /// JSON, as it was when the whole body was decoded up front.
    pub(super) fn of(value: Option<&'a RawValue>) -> Result<Self, ApiError> {
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

pub(super) fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::invalid_json(None, error)
}

pub(super) fn empty_object() -> &'static RawValue {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}
