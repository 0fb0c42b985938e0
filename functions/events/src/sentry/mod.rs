//! Errors straight from the Sentry SDKs the site already runs
//! (`@sentry/nextjs`, `@sentry/browser`, `@sentry/node`): a site that points
//! its DSN at the bundle gets its errors grouped in `error_logs` as the
//! intake's own route groups them, as self-hosted GlitchTip and Bugsink do.
//!
//! Both ingestion endpoints: `POST /api/{projectId}/envelope/` (what
//! current SDKs send) and the older `POST /api/{projectId}/store/` (one
//! event as JSON). The public key is checked against `SENTRY_DSNS`, from
//! `X-Sentry-Auth`, `?sentry_key=` or, for a tunnelled envelope, the
//! envelope header's `dsn`. Only `event` items are kept; sessions,
//! transactions, replays, client reports and attachments are accepted and
//! dropped. An event id is stored once (`bundle.sentry_events`, beside
//! its release and environment, which `error_logs` has no column for), so
//! an SDK's retry is not counted twice.

pub mod envelope;
pub mod event;

use std::io::Read;

use axum::http::{HeaderMap, header};
use deadpool_postgres::Client as PooledClient;
use platform::{ApiError, ApiResult};
use serde_json::Value;

pub use event::{SentryEvent, read_event};

use crate::{
    browser_errors,
    client::ClientContext,
    config::{SentryKey, dsn_key},
};

/// Largest body once decoded: Sentry's own limit on an event is 1 MB.
pub const MAX_DECODED_BYTES: usize = 1024 * 1024;

/// The media types the SDKs send: envelopes as
/// `application/x-sentry-envelope` (or, from a browser's `fetch` without a
/// type, `text/plain`), events of the store endpoint as JSON.
pub const BODY_TYPES: &[&str] = &[
    "application/x-sentry-envelope",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "",
];

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Envelope,
    Store,
}

/// The public key a request names: `X-Sentry-Auth` (or `Authorization`)
/// `Sentry sentry_key=..., sentry_version=7, ...`, else `?sentry_key=`.
pub fn request_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = ["x-sentry-auth", "authorization"].iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        let pairs = value.strip_prefix("Sentry ").unwrap_or(value);
        pairs.split(',').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == "sentry_key").then(|| value.trim().to_owned())
        })
    });
    from_header.or_else(|| {
        query?.split('&').find_map(|pair| {
            let value = pair.strip_prefix("sentry_key=")?;
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        })
    })
}

/// Whether `key` is one of `keys` for `project`, comparing every key in
/// full, so the time taken does not tell which one came close.
pub fn authorised(keys: &[SentryKey], project: u64, key: Option<&str>) -> ApiResult<()> {
    let Some(key) = key else {
        return Err(ApiError::Unauthorized);
    };
    let found = keys
        .iter()
        .fold(false, |found, known| known.matches(project, key) | found);
    if found {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The body as sent, decoded from its `Content-Encoding` (gzip, deflate,
/// or none), at most [`MAX_DECODED_BYTES`].
pub fn decode(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<u8>> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let limit = u64::try_from(MAX_DECODED_BYTES).unwrap_or(u64::MAX) + 1;
    let mut decoded = Vec::new();
    let read = match encoding.as_str() {
        "" | "identity" => return bounded(body.to_vec()),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut decoded),
        // HTTP's deflate is zlib-wrapped; some clients send it raw.
        "deflate" => match flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut decoded)
        {
            Ok(n) => Ok(n),
            Err(_) => {
                decoded.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(limit)
                    .read_to_end(&mut decoded)
            }
        },
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content encoding {other}; send gzip, deflate or none"
            )));
        }
    };
    read.map_err(|e| {
        ApiError::bad_request(
            "invalid_encoding",
            format!("the body is not valid {encoding}: {e}"),
        )
    })?;
    bounded(decoded)
}

fn bounded(body: Vec<u8>) -> ApiResult<Vec<u8>> {
    if body.len() > MAX_DECODED_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_DECODED_BYTES,
        });
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the request body is empty",
        ));
    }
    Ok(body)
}

/// What a body holds: its events, the public key of the envelope header's
/// `dsn` (a tunnelled envelope's only credential), and the envelope's
/// `event_id`, which the answer repeats.
#[derive(Debug)]
pub struct Upload {
    pub events: Vec<SentryEvent>,
    pub dropped_items: usize,
    pub envelope_key: Option<String>,
    pub event_id: Option<String>,
}

/// Reads a decoded body of `endpoint`.
pub fn read_upload(endpoint: Endpoint, body: &[u8], client: &ClientContext) -> ApiResult<Upload> {
    match endpoint {
        Endpoint::Store => {
            let event = read_event(body, "event", client)?;
            Ok(Upload {
                event_id: Some(event.event_id.simple().to_string()),
                events: vec![event],
                dropped_items: 0,
                envelope_key: None,
            })
        }
        Endpoint::Envelope => {
            let envelope =
                envelope::parse(body).map_err(|e| ApiError::invalid_field(e.field, e.problem))?;
            let mut events = Vec::new();
            let mut dropped_items = 0;
            for (index, item) in envelope.items.iter().enumerate() {
                if item.item_type == "event" {
                    events.push(read_event(
                        item.payload,
                        &format!("envelope.items[{index}]"),
                        client,
                    )?);
                } else {
                    dropped_items += 1;
                }
            }
            Ok(Upload {
                envelope_key: envelope
                    .header
                    .get("dsn")
                    .and_then(Value::as_str)
                    .and_then(dsn_key)
                    .map(str::to_owned),
                event_id: envelope
                    .header
                    .get("event_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| events.first().map(|e| e.event_id.simple().to_string())),
                events,
                dropped_items,
            })
        }
    }
}

/// Whether an event was counted now or had been before (an SDK's retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Now,
    Before,
}

/// Counts one event in its error group and records its id, release and
/// environment, in one transaction: an id seen before rolls the count
/// back, so a retry, even one racing the first attempt, counts once.
pub async fn record(
    client: &mut PooledClient,
    project: u64,
    event: &SentryEvent,
) -> Result<Counted, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let (_, error_log_id) = browser_errors::record_in(&tx, &event.error).await?;
    let inserted = tx
        .execute(
            r#"INSERT INTO "bundle"."sentry_events" ("eventId", "projectId", "errorLogId", "release", "environment")
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT ("eventId") DO NOTHING"#,
            &[
                &event.event_id,
                &i64::try_from(project).unwrap_or(i64::MAX),
                &error_log_id,
                &event.release,
                &event.environment,
            ],
        )
        .await?;
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(Counted::Before);
    }
    tx.commit().await?;
    Ok(Counted::Now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn the_key_comes_from_the_auth_header_or_the_query() {
        let header = headers(&[(
            "x-sentry-auth",
            "Sentry sentry_version=7, sentry_client=sentry.javascript.browser/11.12.0, sentry_key=abc123",
        )]);
        assert_eq!(request_key(&header, None).as_deref(), Some("abc123"));
        assert_eq!(
            request_key(
                &HeaderMap::new(),
                Some("sentry_version=7&sentry_key=def456&sentry_client=x")
            )
            .as_deref(),
            Some("def456")
        );
        assert_eq!(
            request_key(&HeaderMap::new(), Some("sentry_version=7")),
            None
        );
    }

    #[test]
    fn gzip_and_deflate_bodies_are_decoded() {
        use flate2::{
            Compression,
            write::{GzEncoder, ZlibEncoder},
        };
        use std::io::Write;
        let body = b"{\"message\":\"hello\"}";
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(body).expect("gzip");
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(body).expect("zlib");

        let gzipped = decode(
            &headers(&[("content-encoding", "gzip")]),
            &gzip.finish().expect("gzip"),
        );
        let deflated = decode(
            &headers(&[("content-encoding", "deflate")]),
            &zlib.finish().expect("zlib"),
        );

        assert_eq!(gzipped.expect("gzip decoded"), body);
        assert_eq!(deflated.expect("deflate decoded"), body);
    }

    #[test]
    fn a_body_that_decodes_past_the_limit_is_a_413() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
        gzip.write_all(&vec![b' '; MAX_DECODED_BYTES + 1])
            .expect("gzip");
        let bomb = gzip.finish().expect("gzip");
        assert!(bomb.len() < 10_000);

        let decoded = decode(&headers(&[("content-encoding", "gzip")]), &bomb);

        assert!(
            matches!(decoded, Err(ApiError::PayloadTooLarge { .. })),
            "{decoded:?}"
        );
    }

    #[test]
    fn an_unknown_encoding_is_a_415_and_a_corrupt_one_a_400() {
        assert!(matches!(
            decode(&headers(&[("content-encoding", "br")]), b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            decode(&headers(&[("content-encoding", "gzip")]), b"not gzip"),
            Err(ApiError::BadRequest {
                code: "invalid_encoding",
                ..
            })
        ));
    }

    #[test]
    fn only_event_items_are_read_and_the_rest_dropped() {
        let body = concat!(
            "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k3y@h/7\"}\n",
            "{\"type\":\"session\"}\n{\"sid\":\"s\"}\n",
            "{\"type\":\"event\"}\n{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"message\":\"m\"}\n",
            "{\"type\":\"client_report\"}\n{}\n"
        );
        let upload = read_upload(
            Endpoint::Envelope,
            body.as_bytes(),
            &ClientContext::default(),
        )
        .expect("readable");
        assert_eq!(upload.events.len(), 1);
        assert_eq!(upload.dropped_items, 2);
        assert_eq!(upload.envelope_key.as_deref(), Some("k3y"));
        assert_eq!(
            upload.event_id.as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
    }

    #[test]
    fn a_broken_envelope_is_a_400_naming_the_part() {
        let error = read_upload(
            Endpoint::Envelope,
            b"{}\n{\"type\":\"event\",\"length\":500}\n{}",
            &ClientContext::default(),
        )
        .expect_err("broken");
        assert!(
            format!("{error:?}").contains("envelope.items[0].length"),
            "{error:?}"
        );
    }
}
