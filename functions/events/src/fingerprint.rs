//! Error fingerprints that group the same bug and separate different ones,
//! the way Sentry groups: a caller's fingerprint wins; otherwise the error
//! type, the message with its variable parts replaced, and the top in-app
//! stack frames with line and column numbers and bundle hashes removed.
//! So the same bug seen in two browsers (different stack syntax) or two
//! builds (different chunk hashes, shifted lines) gets one fingerprint.

use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// How many in-app frames identify a bug.
const FRAMES: usize = 5;

struct Rule {
    pattern: Regex,
    placeholder: &'static str,
}

fn rule(pattern: &str, placeholder: &'static str) -> Rule {
    Rule {
        pattern: Regex::new(pattern).expect("a valid built-in pattern"),
        placeholder,
    }
}

/// Applied in order: URLs and emails before the numbers inside them.
static MESSAGE_RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\x22`)]+", "<url>"),
        rule(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", "<email>"),
        rule(
            r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "<uuid>",
        ),
        rule(r#""[^"]*"|'[^']*'|`[^`]*`"#, "<str>"),
        rule(
            r"(?i)\b0x[0-9a-f]+\b|\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b",
            "<hex>",
        ),
        rule(r"\d+(\.\d+)?", "<n>"),
    ]
});

/// The variable parts of a message replaced by placeholders.
pub fn normalise_message(message: &str) -> String {
    let mut text = message.trim().to_owned();
    for rule in MESSAGE_RULES.iter() {
        text = rule
            .pattern
            .replace_all(&text, rule.placeholder)
            .into_owned();
    }
    text
}

/// Chrome/Edge `at fn (url:line:col)` / `at url:line:col`, Firefox and
/// Safari `fn@url:line:col`.
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:at\s+(?:(?P<cfn>.+?)\s+\()?(?P<curl>[^()\s]+?)(?::\d+)?(?::\d+)?\)?|(?P<ffn>[^@\s]*)@(?P<furl>\S+?)(?::\d+)?(?::\d+)?)\s*$")
        .expect("a valid built-in pattern")
});

fn normalise_file(url: &str) -> Option<String> {
    if url.contains("-extension://") || url.starts_with("native") || url == "<anonymous>" {
        return None;
    }
    let without_origin = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => url,
    };
    let path = without_origin.split(['?', '#']).next().unwrap_or_default();
    if path.contains("/node_modules/") {
        return None;
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(without_content_hashes)
        .collect();
    Some(segments.join("/"))
}

/// Drops the content hashes bundlers put in file names, with the separator
/// before each: `app-3f9a1c2b.js` -> `app.js`, `main.8d2f41ac.chunk.js` ->
/// `main.chunk.js`. A hash is 6+ hex digits with at least one digit, so
/// words like `facade` survive.
fn without_content_hashes(name: &str) -> String {
    let is_hash = |part: &str| {
        part.len() >= 6
            && part.chars().all(|c| c.is_ascii_hexdigit())
            && part.chars().any(|c| c.is_ascii_digit())
    };
    let mut out = String::new();
    let mut part = String::new();
    let mut separator: Option<char> = None;
    let flush = |out: &mut String, part: &str, separator: Option<char>| {
        if !is_hash(part) || separator.is_none() {
            if let Some(sep) = separator {
                out.push(sep);
            }
            out.push_str(part);
        }
    };
    for c in name.chars() {
        if matches!(c, '.' | '-' | '_') {
            flush(&mut out, &part, separator);
            part.clear();
            separator = Some(c);
        } else {
            part.push(c);
        }
    }
    flush(&mut out, &part, separator);
    out
}

fn normalise_function(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_prefix("async ").unwrap_or(name);
    let name = name.strip_prefix("new ").unwrap_or(name);
    // Firefox's `outer/inner<` and Safari's `@` forms: keep the last name.
    name.rsplit(['/', '<', '*'])
        .find(|s| !s.is_empty())
        .unwrap_or("?")
        .to_owned()
}

/// The top in-app frames as `function@file`.
pub fn in_app_frames(stack: &str) -> Vec<String> {
    stack
        .lines()
        .filter_map(|line| {
            let captures = FRAME.captures(line)?;
            let (function, url) = match (captures.name("curl"), captures.name("furl")) {
                (Some(url), _) => (
                    captures.name("cfn").map_or("", |m| m.as_str()),
                    url.as_str(),
                ),
                (_, Some(url)) => (
                    captures.name("ffn").map_or("", |m| m.as_str()),
                    url.as_str(),
                ),
                _ => return None,
            };
            if !(url.contains('/') || url.contains(':')) {
                return None;
            }
            let file = normalise_file(url)?;
            Some(format!("{}@{file}", normalise_function(function)))
        })
        .take(FRAMES)
        .collect()
}

/// The fingerprint of an error: 32 hex characters.
pub fn fingerprint(error_type: Option<&str>, message: &str, stack: Option<&str>) -> String {
    let frames = stack.map(in_app_frames).unwrap_or_default();
    let mut material = format!(
        "{}\n{}",
        error_type.unwrap_or("Error"),
        normalise_message(message)
    );
    for frame in &frames {
        material.push('\n');
        material.push_str(frame);
    }
    Sha256::digest(material.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_BUILD_A: &str = "TypeError: Cannot read properties of undefined (reading 'price')
    at formatDeal (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:2345)
    at DealCard (https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:9876)
    at renderWithHooks (https://deals.example/_next/static/chunks/framework-0a1b2c3d4e.js:1:55)";
    const CHROME_BUILD_B: &str = "TypeError: Cannot read properties of undefined (reading 'price')
    at formatDeal (https://deals.example/_next/static/chunks/app/deals-9e8d7c6b.js:1:2401)
    at DealCard (https://deals.example/_next/static/chunks/app/deals-9e8d7c6b.js:1:9990)
    at renderWithHooks (https://deals.example/_next/static/chunks/framework-5f6e7d8c9b.js:1:55)";
    const FIREFOX: &str =
        "formatDeal@https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:2345
DealCard@https://deals.example/_next/static/chunks/app/deals-3f9a1c2b.js:1:9876
renderWithHooks@https://deals.example/_next/static/chunks/framework-0a1b2c3d4e.js:1:55";

    #[test]
    fn numbers_ids_emails_urls_and_quoted_strings_are_placeholders() {
        assert_eq!(
            normalise_message(
                "Deal 4711 not found for user ann@example.com at https://deals.example/d/4711?x=1"
            ),
            "Deal <n> not found for user <email> at <url>"
        );
        assert_eq!(
            normalise_message(
                "Request 0b7c3a12-8e0f-4c55-9d7e-2b1e4a6f9c01 failed with 'timeout' after 30.5s (0xdeadbeef)"
            ),
            "Request <uuid> failed with <str> after <n>s (<hex>)"
        );
    }

    #[test]
    fn line_numbers_and_bundle_hashes_are_dropped_from_frames() {
        assert_eq!(
            in_app_frames(CHROME_BUILD_A),
            [
                "formatDeal@_next/static/chunks/app/deals.js",
                "DealCard@_next/static/chunks/app/deals.js",
                "renderWithHooks@_next/static/chunks/framework.js",
            ]
        );
    }

    #[test]
    fn the_same_bug_in_two_builds_has_one_fingerprint() {
        assert_eq!(
            fingerprint(
                Some("TypeError"),
                "Cannot read properties of undefined (reading 'price')",
                Some(CHROME_BUILD_A)
            ),
            fingerprint(
                Some("TypeError"),
                "Cannot read properties of undefined (reading 'price')",
                Some(CHROME_BUILD_B)
            ),
        );
    }

    #[test]
    fn the_same_bug_in_two_browsers_has_one_fingerprint() {
        assert_eq!(in_app_frames(CHROME_BUILD_A), in_app_frames(FIREFOX));
        assert_eq!(
            fingerprint(Some("TypeError"), "x is undefined", Some(CHROME_BUILD_A)),
            fingerprint(Some("TypeError"), "x is undefined", Some(FIREFOX)),
        );
    }

    #[test]
    fn the_same_message_with_other_numbers_has_one_fingerprint() {
        assert_eq!(
            fingerprint(Some("Error"), "Deal 17 not found", None),
            fingerprint(Some("Error"), "Deal 99041 not found", None),
        );
    }

    #[test]
    fn different_bugs_have_different_fingerprints() {
        let base = fingerprint(
            Some("TypeError"),
            "Cannot read properties of undefined (reading 'price')",
            Some(CHROME_BUILD_A),
        );
        let other_type = fingerprint(
            Some("RangeError"),
            "Cannot read properties of undefined (reading 'price')",
            Some(CHROME_BUILD_A),
        );
        let other_message = fingerprint(Some("TypeError"), "Failed to fetch", Some(CHROME_BUILD_A));
        let other_place = fingerprint(
            Some("TypeError"),
            "Cannot read properties of undefined (reading 'price')",
            Some(
                "TypeError: boom\n    at checkout (https://deals.example/_next/static/chunks/app/checkout-3f9a1c2b.js:1:2)",
            ),
        );
        assert_ne!(base, other_type);
        assert_ne!(base, other_message);
        assert_ne!(base, other_place);
    }

    #[test]
    fn extension_and_node_modules_frames_are_not_in_app() {
        let stack = "Error: x
    at inject (chrome-extension://abcdefghijklmnop/content.js:1:1)
    at useQuery (https://deals.example/node_modules/react-query/index.js:5:5)
    at Search (https://deals.example/static/js/main.8d2f41ac.chunk.js:2:3)";
        assert_eq!(in_app_frames(stack), ["Search@static/js/main.chunk.js"]);
    }
}
