//! The rules CMS content follows, shared by deals, destinations, templates
//! and suggestions: slugs, texts, codes, SEO fields and images. Each rule
//! refuses with a 400 naming the field (its path for nested ones:
//! `images[2].url`, `seo.title`).

use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Longest slug: a readable URL segment.
pub const MAX_SLUG_CHARS: usize = 80;
/// Search engines cut titles after about 60 characters and descriptions
/// after about 160 (Google's snippets, Moz's guidance).
pub const MAX_SEO_TITLE_CHARS: usize = 60;
pub const MAX_SEO_DESCRIPTION_CHARS: usize = 160;
/// Most images one deal or destination holds.
pub const MAX_IMAGES: usize = 20;

/// `text` as a slug: transliterated to ASCII (`São Paulo` → `sao-paulo`,
/// `Zürich` → `zurich`, `東京` → `dong-jing`), lower-case, words joined by
/// hyphens, at most [`MAX_SLUG_CHARS`] and never ending on a hyphen; by the
/// `slug` crate (deunicode's tables), not a hand-written table.
pub fn slugify(text: &str) -> String {
    let slug = slug::slugify(text);
    if slug.len() <= MAX_SLUG_CHARS {
        return slug;
    }
    slug[..MAX_SLUG_CHARS].trim_end_matches('-').to_owned()
}

/// A slug an editor set, checked: what [`slugify`] would keep unchanged.
pub fn check_slug(field: &str, slug: &str) -> ApiResult<String> {
    if slug.is_empty() || slug.len() > MAX_SLUG_CHARS || slugify(slug) != slug {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "must be 1-{MAX_SLUG_CHARS} lower-case ASCII letters and digits in words joined by single hyphens (like {:?})",
                slugify(slug)
                    .chars()
                    .take(MAX_SLUG_CHARS)
                    .collect::<String>()
            ),
        ));
    }
    Ok(slug.to_owned())
}

/// The slug of a new thing: the editor's, checked, or one made from
/// `source` (a title, a city); a 400 naming `source_field` when that gives
/// nothing (a title of punctuation only).
pub fn new_slug(explicit: Option<&str>, source_field: &str, source: &str) -> ApiResult<String> {
    match explicit {
        Some(slug) => check_slug("slug", slug),
        None => {
            let slug = slugify(source);
            if slug.is_empty() {
                return Err(ApiError::invalid_field(
                    source_field,
                    "must hold letters or digits to make a slug from, or set slug",
                ));
            }
            Ok(slug)
        }
    }
}

/// The 409 of a slug (or another unique field) that is taken.
pub fn taken(field: &str, value: &str) -> ApiError {
    ApiError::Conflict {
        message: format!("{field} {value:?} is taken: choose another"),
        field: Some(field.to_owned()),
    }
}

/// A required text, trimmed, 1 to `max` characters, with no NUL.
pub fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    if trimmed.contains('\0') {
        return Err(ApiError::invalid_field(field, "must not contain NUL"));
    }
    Ok(trimmed.to_owned())
}

/// An optional text: absent or `null` is `None`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    value.map(|v| text(field, v, max)).transpose()
}

/// A list of short texts (tags, highlights, restrictions): each checked,
/// duplicates dropped, order kept.
pub fn texts(
    field: &str,
    values: &[String],
    max_items: usize,
    max: usize,
) -> ApiResult<Vec<String>> {
    if values.len() > max_items {
        return Err(ApiError::invalid_field(
            field,
            format!("must hold at most {max_items} items"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let value = text(&format!("{field}[{i}]"), value, max)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// An ISO 4217 currency code (`EUR`), as the `iso_currency` crate knows
/// them.
pub fn currency(field: &str, code: &str) -> ApiResult<String> {
    iso_currency::Currency::from_code(code)
        .map(|c| c.code().to_owned())
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                "must be an ISO 4217 currency code such as EUR or USD",
            )
        })
}

/// An IATA airport code: three capital letters (`LIS`).
pub fn iata(field: &str, code: &str) -> ApiResult<String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be an IATA airport code: three capital letters such as LIS",
        ))
    }
}

/// A price: a finite amount above zero.
pub fn price(field: &str, amount: f64) -> ApiResult<f64> {
    if amount.is_finite() && amount > 0.0 && amount < 1e9 {
        Ok(amount)
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be a positive amount below 1,000,000,000",
        ))
    }
}

/// An `https` URL.
pub fn https_url(field: &str, text: &str) -> ApiResult<String> {
    match url::Url::parse(text) {
        Ok(parsed)
            if parsed.scheme() == "https" && parsed.host().is_some() && text.len() <= 2048 =>
        {
            Ok(parsed.to_string())
        }
        _ => Err(ApiError::invalid_field(
            field,
            "must be an https URL of at most 2048 characters",
        )),
    }
}

/// SEO fields: what the page's `<title>` and meta description say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Seo {
    /// At most 60 characters.
    pub title: String,
    /// At most 160 characters.
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// An https URL of the page's canonical address, when not its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_url: Option<String>,
}

/// `value` as [`Seo`], checked; `default_title` and `default_description`
/// fill what is absent (an editor rarely writes SEO fields first).
pub fn seo(
    value: Option<&Value>,
    default_title: &str,
    default_description: &str,
) -> ApiResult<Seo> {
    let given: Seo = match value {
        None | Some(Value::Null) => Seo {
            title: cut(default_title, MAX_SEO_TITLE_CHARS),
            description: cut(default_description, MAX_SEO_DESCRIPTION_CHARS),
            keywords: Vec::new(),
            canonical_url: None,
        },
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
            ApiError::invalid_field(
                "seo",
                format!("must be {{title, description, keywords?, canonicalUrl?}}: {e}"),
            )
        })?,
    };
    Ok(Seo {
        title: text("seo.title", &given.title, MAX_SEO_TITLE_CHARS)?,
        description: text(
            "seo.description",
            &given.description,
            MAX_SEO_DESCRIPTION_CHARS,
        )?,
        keywords: texts("seo.keywords", &given.keywords, 20, 50)?,
        canonical_url: given
            .canonical_url
            .as_deref()
            .map(|u| https_url("seo.canonicalUrl", u))
            .transpose()?,
    })
}

/// `text` cut to `max` characters on a word boundary where one is near.
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    match head.rfind(' ') {
        Some(at) if at > max / 2 => head[..at].trim_end().to_owned(),
        _ => head,
    }
}

/// One image: an https URL and its alternative text (what a screen reader
/// says; required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub url: String,
    pub alt: String,
}

/// `value` as a list of [`Image`]s, each checked.
pub fn images(value: &Value) -> ApiResult<Vec<Image>> {
    let Value::Array(items) = value else {
        return Err(ApiError::invalid_field(
            "images",
            "must be an array of {url, alt}",
        ));
    };
    if items.len() > MAX_IMAGES {
        return Err(ApiError::invalid_field(
            "images",
            format!("must hold at most {MAX_IMAGES} images"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let image: Image = serde_json::from_value(item.clone()).map_err(|e| {
                ApiError::invalid_field(
                    format!("images[{i}]"),
                    format!("must be {{url, alt}}: {e}"),
                )
            })?;
            Ok(Image {
                url: https_url(&format!("images[{i}].url"), &image.url)?,
                alt: text(&format!("images[{i}].alt"), &image.alt, 300)?,
            })
        })
        .collect()
}

/// A JSON object (flight details, travel info), at most `max_bytes`.
pub fn object(field: &str, value: &Value, max_bytes: usize) -> ApiResult<Value> {
    if !value.is_object() {
        return Err(ApiError::invalid_field(field, "must be a JSON object"));
    }
    if let Some(path) = platform::json::nul_field(value) {
        return Err(ApiError::invalid_field(
            format!("{field}.{path}"),
            "must not contain NUL",
        ));
    }
    if value.to_string().len() > max_bytes {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {max_bytes} bytes of JSON"),
        ));
    }
    Ok(value.clone())
}

/// Distinguishes `"field": null` (`Some(Null)`) from no field (`None`) in
/// a change.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_transliterated_lower_case_and_hyphenated() {
        assert_eq!(
            slugify("São Paulo: 3 nights from €299!"),
            "sao-paulo-3-nights-from-eur299"
        );
        assert_eq!(slugify("Zürich"), "zurich");
        assert_eq!(slugify("  Lisbon -- Porto  "), "lisbon-porto");
        assert_eq!(slugify("Kraków"), "krakow");
    }

    #[test]
    fn a_long_title_gives_a_slug_within_the_limit_not_ending_on_a_hyphen() {
        let slug = slugify(&"word ".repeat(40));
        assert!(slug.len() <= MAX_SLUG_CHARS);
        assert!(!slug.ends_with('-'));
    }

    #[test]
    fn an_explicit_slug_must_already_be_one() {
        assert_eq!(
            check_slug("slug", "lisbon-in-may").expect("valid"),
            "lisbon-in-may"
        );
        for bad in ["Lisbon", "lisbon--may", "-lisbon", "lisbon may", "", "são"] {
            let error = check_slug("slug", bad).expect_err(bad);
            assert_eq!(error.field(), Some("slug"), "{bad}");
        }
    }

    #[test]
    fn a_title_without_letters_cannot_make_a_slug() {
        let error = new_slug(None, "title", "!!!").expect_err("no letters");
        assert_eq!(error.field(), Some("title"));
    }

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert_eq!(currency("currency", "EUR").expect("valid"), "EUR");
        assert!(currency("currency", "eur").is_err());
        assert!(currency("currency", "XYZ").is_err());
    }

    #[test]
    fn airport_codes_are_three_capital_letters() {
        assert!(iata("origin", "LIS").is_ok());
        for bad in ["lis", "LISB", "L1S", "", "ÉLS"] {
            assert!(iata("origin", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seo_fields_are_held_to_search_engine_lengths() {
        let long_title = serde_json::json!({"title": "t".repeat(61), "description": "d"});
        assert_eq!(
            seo(Some(&long_title), "", "").expect_err("long").field(),
            Some("seo.title")
        );
        let long_description = serde_json::json!({"title": "t", "description": "d".repeat(161)});
        assert_eq!(
            seo(Some(&long_description), "", "")
                .expect_err("long")
                .field(),
            Some("seo.description")
        );
        let defaulted = seo(None, &"A title ".repeat(20), "Short").expect("defaults");
        assert!(defaulted.title.chars().count() <= MAX_SEO_TITLE_CHARS);
    }

    #[test]
    fn images_need_https_urls_and_alt_text() {
        let ok = serde_json::json!([{"url": "https://cdn.example/a.jpg", "alt": "Tram 28"}]);
        assert_eq!(images(&ok).expect("valid").len(), 1);
        let http = serde_json::json!([{"url": "https://cdn.example/a.jpg", "alt": "a"}, {"url": "http://cdn.example/b.jpg", "alt": "b"}]);
        assert_eq!(
            images(&http).expect_err("http").field(),
            Some("images[1].url")
        );
        let no_alt = serde_json::json!([{"url": "https://cdn.example/a.jpg"}]);
        assert_eq!(images(&no_alt).expect_err("alt").field(), Some("images[0]"));
        assert_eq!(
            images(&serde_json::json!({})).expect_err("shape").field(),
            Some("images")
        );
    }
}
