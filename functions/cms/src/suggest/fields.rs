//! The rules a suggestion's fields follow, for a create, a change and each
//! row of an import; and the convention of its `query` key.

use platform::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::index::Kind;
use crate::content;

pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_COUNTRY_CHARS: usize = 100;
pub const MAX_METADATA_BYTES: usize = 4096;
pub const MAX_ALIASES: usize = 20;
pub const MAX_ALIAS_CHARS: usize = 100;

/// A suggestion as a create or an import row sends it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewSuggestion {
    /// The unique key; by default the IATA code for an airport (`LIS`),
    /// `City, Country` for a city (`São Paulo, Brazil`), the name for a
    /// country (`Portugal`).
    pub query: Option<String>,
    /// `airport`, `city` or `country`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// Required for an airport: its IATA code (`LIS`). A city may have its
    /// IATA metropolitan code (`NYC`), a country its ISO 3166-1 alpha-2
    /// code (`PT`).
    pub code: Option<String>,
    pub name: String,
    /// The country's name as the site shows it (`Portugal`), for an
    /// airport or a city; searched, so `portugal` finds Lisbon.
    pub country: Option<String>,
    /// 0 when created; an import keeps the current value when absent.
    pub popularity: Option<i64>,
    /// Any JSON object up to 4 KiB. `city` (a text) and `aliases` (up to 20
    /// texts) are searched too: an airport named for a person is found by
    /// its city.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A suggestion's fields, checked, as they will be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub query: String,
    pub kind: Kind,
    pub code: Option<String>,
    pub name: String,
    pub country: Option<String>,
    pub popularity: Option<i32>,
    pub metadata: Option<Value>,
}

pub fn kind(text: &str) -> ApiResult<Kind> {
    Kind::parse(text)
        .ok_or_else(|| ApiError::invalid_field("type", format!("must be {}", Kind::NAMES)))
}

/// `new`, checked; its `query` derived when not given.
pub fn check(new: &NewSuggestion) -> ApiResult<Checked> {
    let kind = kind(&new.kind)?;
    let name = content::text("name", &new.name, MAX_NAME_CHARS)?;
    let code = match (kind, new.code.as_deref()) {
        (Kind::Airport, None) => {
            return Err(ApiError::invalid_field(
                "code",
                "is required for an airport: its IATA code such as LIS",
            ));
        }
        (Kind::Airport | Kind::City, Some(code)) => Some(content::iata("code", code)?),
        (Kind::Country, Some(code)) => Some(country_code(code)?),
        (_, None) => None,
    };
    let country = match kind {
        Kind::Country if new.country.is_some() => {
            return Err(ApiError::invalid_field(
                "country",
                "must be absent for a country: its name is the country",
            ));
        }
        _ => content::optional_text("country", new.country.as_deref(), MAX_COUNTRY_CHARS)?,
    };
    let popularity = new
        .popularity
        .map(|p| {
            i32::try_from(p).ok().filter(|p| *p >= 0).ok_or_else(|| {
                ApiError::invalid_field("popularity", "must be a whole number from 0 to 2147483647")
            })
        })
        .transpose()?;
    let metadata = match &new.metadata {
        None | Some(Value::Null) => None,
        Some(value) => Some(metadata(value)?),
    };
    let query = match &new.query {
        Some(query) => content::text("query", query, MAX_QUERY_CHARS)?,
        None => derived_query(kind, code.as_deref(), &name, country.as_deref()),
    };
    Ok(Checked {
        query,
        kind,
        code,
        name,
        country,
        popularity,
        metadata,
    })
}

/// The key a suggestion gets when none is given, the convention the seed
/// uses too ([`crate::seed::suggestion_query`]): the IATA code for an
/// airport (`LIS`: stable across renames, unique among airports), `City,
/// Country` for a city (`Paris, France` and `Paris, United States`; the
/// name alone without a country), the name for a country (`Portugal`).
pub fn derived_query(kind: Kind, code: Option<&str>, name: &str, country: Option<&str>) -> String {
    match (kind, country) {
        (Kind::City, None) => name.to_owned(),
        _ => crate::seed::suggestion_query(
            kind.as_str(),
            name,
            country.unwrap_or(name),
            code.unwrap_or_default(),
        ),
    }
}

fn country_code(code: &str) -> ApiResult<String> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err(ApiError::invalid_field(
            "code",
            "must be an ISO 3166-1 alpha-2 code for a country: two capital letters such as PT",
        ))
    }
}

fn metadata(value: &Value) -> ApiResult<Value> {
    let value = content::object("metadata", value, MAX_METADATA_BYTES)?;
    match value.get("city") {
        None | Some(Value::Null) => {}
        Some(Value::String(city)) => {
            content::text("metadata.city", city, MAX_ALIAS_CHARS)?;
        }
        Some(_) => {
            return Err(ApiError::invalid_field("metadata.city", "must be a text"));
        }
    }
    match value.get("aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Array(aliases)) if aliases.len() <= MAX_ALIASES => {
            for (i, alias) in aliases.iter().enumerate() {
                let field = format!("metadata.aliases[{i}]");
                let text = alias
                    .as_str()
                    .ok_or_else(|| ApiError::invalid_field(&field, "must be a text"))?;
                content::text(&field, text, MAX_ALIAS_CHARS)?;
            }
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "metadata.aliases",
                format!("must be an array of at most {MAX_ALIASES} texts"),
            ));
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(kind: &str, code: Option<&str>, name: &str, country: Option<&str>) -> NewSuggestion {
        NewSuggestion {
            kind: kind.into(),
            code: code.map(str::to_owned),
            name: name.into(),
            country: country.map(str::to_owned),
            ..NewSuggestion::default()
        }
    }

    #[test]
    fn keys_are_derived_by_code_for_airports_and_by_name_otherwise() {
        let query = |n: NewSuggestion| check(&n).expect("valid").query;
        assert_eq!(
            query(new(
                "airport",
                Some("LIS"),
                "Humberto Delgado",
                Some("Portugal")
            )),
            "LIS"
        );
        assert_eq!(
            query(new("city", None, "São Paulo", Some("Brazil"))),
            "São Paulo, Brazil"
        );
        assert_eq!(
            query(new("city", Some("NYC"), "New York", None)),
            "New York"
        );
        assert_eq!(
            query(new("country", Some("PT"), "Portugal", None)),
            "Portugal"
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let field = |n: NewSuggestion| check(&n).expect_err("invalid").field().map(str::to_owned);
        assert_eq!(field(new("port", None, "x", None)).as_deref(), Some("type"));
        assert_eq!(
            field(new("airport", None, "Lisbon", None)).as_deref(),
            Some("code")
        );
        assert_eq!(
            field(new("airport", Some("lis"), "Lisbon", None)).as_deref(),
            Some("code")
        );
        assert_eq!(
            field(new("country", Some("PRT"), "Portugal", None)).as_deref(),
            Some("code")
        );
        assert_eq!(
            field(new("country", None, "Portugal", Some("Portugal"))).as_deref(),
            Some("country")
        );
        assert_eq!(field(new("city", None, " ", None)).as_deref(), Some("name"));
        assert_eq!(
            field(new("city", None, "x".repeat(201).as_str(), None)).as_deref(),
            Some("name")
        );
        let mut aliases = new("city", None, "Lisbon", None);
        aliases.metadata = Some(serde_json::json!({"aliases": ["Lisboa", 3]}));
        assert_eq!(field(aliases).as_deref(), Some("metadata.aliases[1]"));
        let mut negative = new("city", None, "Lisbon", None);
        negative.popularity = Some(-1);
        assert_eq!(field(negative).as_deref(), Some("popularity"));
    }
}
