//! Public answers a CDN or a browser can keep: `ETag` over the exact body,
//! `Cache-Control` with a short `max-age` and a longer
//! `stale-while-revalidate`, and 304 for an `If-None-Match` that names the
//! current ETag. And the bot filter of the counters.

use std::sync::LazyLock;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::PUBLIC_MAX_AGE;

/// How long after `max-age` a cache may still answer with its copy while it
/// revalidates in the background: a deal list a few minutes old is fine;
/// an answer that waits for the database is not.
pub const STALE_WHILE_REVALIDATE_SECONDS: u64 = 300;

static CACHE_CONTROL: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&format!(
        "public, max-age={}, stale-while-revalidate={STALE_WHILE_REVALIDATE_SECONDS}",
        PUBLIC_MAX_AGE.as_secs()
    ))
    .expect("ASCII")
});

/// The strong ETag of `body`: 128 bits of its SHA-256, quoted.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names `etag` (weak or strong) or is `*`.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `value` as a cacheable JSON answer, or a bodiless 304 when the client
/// already holds it.
pub fn cached_json<T: Serialize>(request_headers: &HeaderMap, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("answers serialise");
    cached_bytes(request_headers, body)
}

/// [`cached_json`] for a body already written.
pub fn cached_bytes(request_headers: &HeaderMap, body: Vec<u8>) -> Response {
    let tag = etag(&body);
    let tag_header = HeaderValue::from_str(&tag).expect("hex in quotes");
    if none_match(request_headers, &tag) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, tag_header),
                (header::CACHE_CONTROL, CACHE_CONTROL.clone()),
            ],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag_header),
            (header::CACHE_CONTROL, CACHE_CONTROL.clone()),
        ],
        Body::from(body),
    )
        .into_response()
}

/// A page of a public list as the JSON body `{"<name>": [...],
/// "nextCursor": ...}`, written in one pass: `items` were fetched with
/// `limit + 1`, so a further item means a next page, whose cursor is `key`
/// of the last item kept. Like [`platform::paging::Page`], a page stops
/// early rather than outgrow [`platform::paging::MAX_PAGE_BYTES`] (counted as
/// Lambda's response escapes it); unlike it, items are written once, with
/// no tree built per item, because these lists are the busiest answers.
pub fn page_json<T: Serialize, K: Serialize>(
    name: &str,
    items: &[T],
    limit: i64,
    key: impl Fn(&T) -> K,
) -> Vec<u8> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::with_capacity(16 * 1024);
    body.extend_from_slice(b"{");
    serde_json::to_writer(&mut body, name).expect("a name serialises");
    body.extend_from_slice(b":[");
    let mut kept = 0;
    let mut budget = platform::paging::MAX_PAGE_BYTES;
    for item in items.iter().take(limit) {
        let start = body.len();
        if kept > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, item).expect("items serialise");
        let size = platform::paging::escaped_len(&String::from_utf8_lossy(&body[start..]));
        if kept > 0 && size > budget {
            body.truncate(start);
            break;
        }
        budget = budget.saturating_sub(size);
        kept += 1;
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    let next = (items.len() > kept)
        .then(|| {
            kept.checked_sub(1)
                .map(|last| platform::paging::encode(&key(&items[last])))
        })
        .flatten();
    serde_json::to_writer(&mut body, &next).expect("a cursor serialises");
    body.push(b'}');
    body
}

/// isbot's list (a port of the npm `isbot` patterns), as the intake uses.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

/// Whether the request comes from a known bot (or sends no user agent,
/// which no browser does): its counter beacons are dropped.
pub fn from_bot(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ua| ua.trim().is_empty() || BOTS.is_bot(ua))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_matching_if_none_match_is_a_304_and_keeps_the_cache_headers() {
        let first = cached_json(&HeaderMap::new(), &serde_json::json!({"a": 1}));
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag.clone());
        let again = cached_json(&headers, &serde_json::json!({"a": 1}));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag);
        assert!(
            again.headers()[header::CACHE_CONTROL]
                .to_str()
                .expect("ascii")
                .contains("stale-while-revalidate")
        );
        let changed = cached_json(&headers, &serde_json::json!({"a": 2}));
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn a_page_body_is_the_items_and_a_cursor_after_the_last_one_kept() {
        let items = vec![json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})];
        let body = page_json("deals", &items, 2, |item| item["id"].clone());
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(page["deals"], json!([{"id": "a"}, {"id": "b"}]));
        let cursor: String = platform::paging::decode(page["nextCursor"].as_str())
            .expect("a cursor")
            .expect("some");
        assert_eq!(cursor, "b");
        let last = page_json("deals", &items[..1], 2, |item| item["id"].clone());
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&last).expect("JSON"),
            json!({"deals": [{"id": "a"}], "nextCursor": null})
        );
    }

    #[test]
    fn a_page_stops_before_it_outgrows_a_lambda_response() {
        let big = "x".repeat(platform::paging::MAX_PAGE_BYTES / 3);
        let items: Vec<serde_json::Value> = (0..5).map(|i| json!({"id": i, "text": big})).collect();
        let body = page_json("deals", &items, 5, |item| item["id"].clone());
        assert!(body.len() < platform::paging::MAX_PAGE_BYTES);
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let kept = page["deals"].as_array().expect("deals").len();
        assert!((1..5).contains(&kept), "{kept}");
        assert!(page["nextCursor"].is_string());
    }

    #[test]
    fn crawlers_and_agentless_requests_are_bots_and_browsers_are_not() {
        let agent = |ua: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::USER_AGENT,
                HeaderValue::from_str(ua).expect("ascii"),
            );
            headers
        };
        assert!(from_bot(&agent(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        )));
        assert!(from_bot(&HeaderMap::new()));
        assert!(!from_bot(&agent(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
        )));
    }
}
