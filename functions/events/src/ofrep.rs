//! OpenFeature Remote Evaluation Protocol 0.3
//! (<https://github.com/open-feature/protocol>, `service/openapi.yaml`):
//! any OpenFeature SDK with an OFREP provider reads the flags here.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag, for server-side
//!   providers (the context changes per call).
//! - `POST /ofrep/v1/evaluate/flags`: every flag, for browsers (the web
//!   provider evaluates once per context and then polls). The answer's
//!   `ETag` covers the flags' configuration and the context, because the
//!   web provider sends its stored ETag again after the context changed;
//!   a match is a 304 without a body.
//!
//! Answers use the protocol's own shapes, not this API's problem body:
//! `{key, reason, variant?, value?, metadata?}`, and `{key?, errorCode,
//! errorDetails}` on 400 and 404, which the official client reads. Every
//! success carries a value (see `experiments::flag`). Bots are served
//! like anyone: evaluation stores nothing, and a crawler rendering the
//! site should see the pages visitors see.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use experiments::flag::{Evaluation, Flag, TargetingKeyMissing};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::AppState;
use crate::flags::{Entry, FlagJson, Snapshot};

/// The largest evaluation request: a context is a handful of attributes.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// Why a flag, or the whole request, could not be evaluated: the
/// protocol's failure shape, `{key?, errorCode, errorDetails}`.
#[derive(Debug, Serialize)]
pub struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(rename = "errorCode")]
    error_code: &'static str,
    #[serde(rename = "errorDetails")]
    error_details: String,
}

/// A flag's answer, success or [`Failure`], in the API description.
#[derive(ToSchema)]
#[allow(dead_code)]
struct FlagEvaluation {
    /// Absent on a failure of the whole request (bulk).
    key: Option<String>,
    /// STATIC, TARGETING_MATCH, SPLIT or DISABLED; absent on a failure.
    reason: Option<String>,
    /// The variant's id; `on`/`off` for a boolean flag.
    variant: Option<String>,
    /// The variant's `config` (or its id), or the boolean.
    #[schema(value_type = Option<Object>)]
    value: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// On a failure: PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT,
    /// GENERAL or FLAG_NOT_FOUND.
    #[schema(rename = "errorCode")]
    error_code: Option<String>,
    #[schema(rename = "errorDetails")]
    error_details: Option<String>,
}

impl<'a> Failure<'a> {
    fn new(key: Option<&'a str>, code: &'static str, details: impl Into<String>) -> Self {
        Self {
            key,
            error_code: code,
            error_details: details.into(),
        }
    }

    fn status(&self) -> StatusCode {
        if self.error_code == "FLAG_NOT_FOUND" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

impl IntoResponse for Failure<'_> {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}

/// The evaluation context of a request: the attributes targeting reads,
/// and the targeting key the split hashes.
pub struct Context {
    pub attributes: Value,
    pub targeting_key: Option<String>,
}

/// Reads `{"context": {...}}`; the failure is the protocol's PARSE_ERROR or
/// INVALID_CONTEXT.
pub fn read_context(headers: &HeaderMap, body: &[u8]) -> Result<Context, (&'static str, String)> {
    let declared = platform::http::media_type(headers).unwrap_or_default();
    if !(declared.is_empty() || declared == "application/json") {
        return Err((
            "PARSE_ERROR",
            format!("the body must be application/json, not {declared}"),
        ));
    }
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ("PARSE_ERROR", format!("the body is not valid JSON: {e}")))?
    };
    let Value::Object(mut request) = request else {
        return Err(("PARSE_ERROR", "the body must be a JSON object".into()));
    };
    let attributes = match request.remove("context") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(context @ Value::Object(_)) => context,
        Some(_) => return Err(("INVALID_CONTEXT", "context must be an object".into())),
    };
    let targeting_key = match attributes.get("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => {
            return Err((
                "INVALID_CONTEXT",
                "context.targetingKey must be a string".into(),
            ));
        }
    };
    Ok(Context {
        attributes,
        targeting_key,
    })
}

/// Writes `key`'s answer in `context` to `body`: a success put together
/// from the parts written when the flags were read ([`FlagJson`]), else
/// the protocol's failure. Returns the status the answer has on its own.
pub fn write_flag(
    body: &mut Vec<u8>,
    snapshot: &Snapshot,
    key: &str,
    context: &Context,
) -> StatusCode {
    let failure = match snapshot.get(key) {
        None => Failure::new(
            Some(key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} was not found"),
        ),
        Some(Entry::Unusable { problem }) => Failure::new(Some(key), "GENERAL", problem.clone()),
        Some(Entry::Ready(flag, json)) => {
            match flag.evaluate(&context.attributes, context.targeting_key.as_deref()) {
                Ok(evaluation) => {
                    write_success(body, flag, json, &evaluation);
                    return StatusCode::OK;
                }
                Err(TargetingKeyMissing) => Failure::new(
                    Some(key),
                    "TARGETING_KEY_MISSING",
                    "this flag splits visitors: context.targetingKey is required (the visitor's userId, else sessionId)",
                ),
            }
        }
    };
    serde_json::to_writer(&mut *body, &failure).expect("failures serialise");
    failure.status()
}

fn reason(evaluation: &Evaluation<'_>) -> &'static str {
    match evaluation.reason {
        experiments::flag::Reason::Static => "STATIC",
        experiments::flag::Reason::TargetingMatch => "TARGETING_MATCH",
        experiments::flag::Reason::Split => "SPLIT",
        experiments::flag::Reason::Disabled => "DISABLED",
    }
}

async fn read_body(request: Request) -> Result<(HeaderMap, Bytes), Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_CONTEXT_BYTES)
        .await
        .map_err(|_| {
            platform::ApiError::PayloadTooLarge {
                limit_bytes: MAX_CONTEXT_BYTES,
            }
            .into_response()
        })?;
    Ok((parts.headers, body))
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "flags",
    summary = "Evaluate one flag (OFREP)",
    description = "OpenFeature Remote Evaluation Protocol 0.3, for server-side providers. Body `{\"context\": {\"targetingKey\", ...attributes}}`; the targeting key is the visitor's userId, else sessionId (as `/api/experiments/assign` uses them).",
    params(("key" = String, Path, description = "The flag's key.")),
    request_body(content((Object = "application/json"))),
    responses(
        (status = 200, description = "Evaluated.", body = FlagEvaluation),
        (status = 400, description = "PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING or GENERAL.", body = FlagEvaluation),
        (status = 404, description = "FLAG_NOT_FOUND.", body = FlagEvaluation),
        platform::api_doc::TooLarge, platform::api_doc::Unavailable,
    )
)]
pub async fn evaluate_one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    request: Request,
) -> Response {
    let (headers, body) = match read_body(request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let context = match read_context(&headers, &body) {
        Ok(context) => context,
        Err((code, details)) => {
            return Failure::new(Some(&key), code, details).into_response();
        }
    };
    match state.flags.snapshot().await {
        Ok(snapshot) => {
            let mut body = Vec::with_capacity(256);
            let status = write_flag(&mut body, &snapshot, &key, &context);
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// A bulk answer (`{flags, metadata}`) in the API description.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BulkEvaluation {
    flags: Vec<FlagEvaluation>,
    #[schema(value_type = Object)]
    metadata: Value,
}

/// The ETag of a bulk answer: the flags' configuration and the context.
pub fn bulk_etag(snapshot: &Snapshot, context: &Context) -> String {
    let mut digest = Sha256::new();
    digest.update(snapshot.version.as_bytes());
    digest.update(b"\n");
    write_canonical(&context.attributes, &mut digest);
    let hash = digest.finalize();
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// JSON with object keys sorted: the same context hashes the same whatever
/// order its attributes came in.
fn write_canonical(value: &Value, digest: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            digest.update(b"{");
            for key in keys {
                // The key as a JSON string: quoted and escaped, so that no
                // key can imitate the structure around it.
                serde_json::to_writer(&mut *digest, key).expect("hashing cannot fail");
                digest.update(b":");
                write_canonical(&map[key], digest);
                digest.update(b",");
            }
            digest.update(b"}");
        }
        Value::Array(items) => {
            digest.update(b"[");
            for item in items {
                write_canonical(item, digest);
                digest.update(b",");
            }
            digest.update(b"]");
        }
        scalar => serde_json::to_writer(&mut *digest, scalar).expect("hashing cannot fail"),
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`), weak or strong.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "flags",
    summary = "Evaluate every flag (OFREP bulk)",
    description = "OpenFeature Remote Evaluation Protocol 0.3, for browser providers. The `ETag` covers the flags' configuration and the context; `If-None-Match` with it gets a 304.",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer.")),
    request_body(content((Object = "application/json"))),
    responses(
        (status = 200, description = "Every flag, evaluated.", body = BulkEvaluation, headers(("ETag" = String))),
        (status = 304, description = "Nothing changed since the ETag given."),
        (status = 400, description = "PARSE_ERROR or INVALID_CONTEXT.", body = FlagEvaluation),
        platform::api_doc::TooLarge, platform::api_doc::Unavailable,
    )
)]
pub async fn evaluate_all(State(state): State<AppState>, request: Request) -> Response {
    let (headers, body) = match read_body(request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let context = match read_context(&headers, &body) {
        Ok(context) => context,
        Err((code, details)) => {
            return Failure::new(None, code, details).into_response();
        }
    };
    let snapshot = match state.flags.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return error.into_response(),
    };
    let etag = bulk_etag(&snapshot, &context);
    let etag_header = HeaderValue::from_str(&etag).expect("hex in quotes is a header value");
    if none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag_header),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bulk_body(&snapshot, &context),
    )
        .into_response()
}

/// The bulk answer's bytes: every flag's answer as [`write_flag`] writes
/// it, by key.
pub fn bulk_body(snapshot: &Snapshot, context: &Context) -> Vec<u8> {
    let mut body = Vec::with_capacity(128 * snapshot.flags.len() + 64);
    body.extend_from_slice(b"{\"flags\":[");
    for (n, key) in snapshot.flags.keys().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        write_flag(&mut body, snapshot, key, context);
    }
    body.extend_from_slice(b"],\"metadata\":{\"version\":\"");
    body.extend_from_slice(&snapshot.version.as_bytes()[..16]);
    body.extend_from_slice(b"\"}}");
    body
}

fn write_success(body: &mut Vec<u8>, flag: &Flag, json: &FlagJson, evaluation: &Evaluation<'_>) {
    body.extend_from_slice(b"{\"key\":");
    body.extend_from_slice(&json.key);
    body.extend_from_slice(b",\"reason\":\"");
    body.extend_from_slice(reason(evaluation).as_bytes());
    body.push(b'"');
    let variant = evaluation.variant.and_then(|chosen| {
        flag.variants
            .iter()
            .position(|v| std::ptr::eq(v, chosen))
            .and_then(|i| json.variants.get(i))
    });
    match (variant, evaluation.on) {
        (Some(variant), _) => {
            body.extend_from_slice(b",\"variant\":");
            body.extend_from_slice(&variant.id);
            body.extend_from_slice(b",\"value\":");
            body.extend_from_slice(&variant.value);
        }
        (None, Some(true)) => body.extend_from_slice(b",\"variant\":\"on\",\"value\":true"),
        (None, Some(false)) => body.extend_from_slice(b",\"variant\":\"off\",\"value\":false"),
        (None, None) => {}
    }
    body.extend_from_slice(b",\"metadata\":");
    body.extend_from_slice(&json.metadata);
    body.push(b'}');
}
