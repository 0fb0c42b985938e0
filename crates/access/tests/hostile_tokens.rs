//! The session reader answers any credential: cookie headers and bearer
//! tokens of any bytes, and compact JWEs whose parts are any base64 and
//! whose headers are any JSON, are refused with a reason (or, for what is
//! really a token of the secret, opened), never with a panic.
//!
//! `PROPTEST_CASES` sets the inputs per test (1,000 unless set);
//! `bench/parsers.sh` runs a million each.

use access::session::{Credential, SessionKeys, Source, credential};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use http::{HeaderMap, HeaderValue};
use proptest::{prelude::*, test_runner::TestRunner};

const NOW: i64 = 1_800_000_000;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

const COOKIE_NAMES: &[&str] = &[
    "next-auth.session-token",
    "__Secure-next-auth.session-token",
    "authjs.session-token",
    "__Secure-authjs.session-token",
    "next-auth.session-token.0",
    "next-auth.session-token.1",
    "authjs.session-token.0",
    "theme",
];

/// A header value's visible ASCII.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,64}",
        (prop::sample::select(COOKIE_NAMES), "[ -~]{0,64}").prop_map(|(n, v)| format!("{n}={v}")),
        prop::collection::vec(
            (prop::sample::select(COOKIE_NAMES), "[A-Za-z0-9._-]{0,40}"),
            0..6
        )
        .prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        "Bearer [ -~]{0,80}",
    ]
}

/// Five dot-separated parts: a header of any JSON-ish text, and parts of
/// any bytes (some of the sizes the algorithms use).
fn compact_jwe() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(r#"{"alg":"dir","enc":"A256GCM"}"#.to_owned()),
        Just(r#"{"alg":"dir","enc":"A256CBC-HS512","kid":"k"}"#.to_owned()),
        r#"\{"alg":"[a-zA-Z0-9]{0,8}","enc":"[A-Z0-9-]{0,16}"(,"zip":"DEF")?(,"crit":\[\])?\}"#,
        ".{0,40}",
    ];
    let bytes = |max: usize| prop::collection::vec(any::<u8>(), 0..max);
    (
        header,
        bytes(8),
        bytes(20),
        bytes(200),
        bytes(40),
        0usize..3,
    )
        .prop_map(|(header, key, iv, body, tag, extra_dots)| {
            let mut token = [
                B64.encode(header),
                B64.encode(key),
                B64.encode(iv),
                B64.encode(body),
                B64.encode(tag),
            ]
            .join(".");
            token.push_str(&".".repeat(extra_dots));
            token
        })
}

#[test]
fn any_request_headers_give_a_credential_or_a_reason() {
    runner()
        .run(
            &prop::collection::vec((prop::bool::ANY, header_text()), 0..4),
            |headers| {
                let mut map = HeaderMap::new();
                for (is_cookie, value) in headers {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        let name = if is_cookie {
                            http::header::COOKIE
                        } else {
                            http::header::AUTHORIZATION
                        };
                        map.append(name, value);
                    }
                }
                let _ = credential(&map);
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn any_token_is_refused_with_a_reason_not_a_panic() {
    let keys = SessionKeys::derive("a-secret-for-hostile-tokens");
    let sources = prop_oneof![
        Just(Source::Bearer),
        prop::sample::select(&COOKIE_NAMES[..4]).prop_map(Source::Cookie),
    ];
    runner()
        .run(
            &(prop_oneof![compact_jwe(), ".{0,200}"], sources),
            |(token, source)| {
                let opened = keys.open(&Credential { token, source }, NOW);
                prop_assert!(opened.is_err(), "a random token opened: {opened:?}");
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}
