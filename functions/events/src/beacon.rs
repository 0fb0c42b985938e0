//! What every public route that stores a visitor's data starts from
//! ([`Beacon`]): who sent it (a browser, or a trusted server with an ingest
//! key), known bots dropped before the body is read, and the body read
//! within its limits.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use lambda_http::RequestExt;
use platform::metrics::{self, Metric};
use platform::{ApiError, ApiResult};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    AppState,
    client::{ClientContext, Sender},
};

/// `sendBeacon` caps a body at 64 KiB; `fetch` batches from the front end
/// (up to [`crate::analytics::MAX_EVENTS_PER_BATCH`] events) may be larger.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A trusted server-side sender's key (`INGEST_KEYS`).
pub const INGEST_KEY_HEADER: &str = "x-ingest-key";

/// Tells a dropped bot nothing it can act on, and tells people reading
/// responses why nothing was stored.
pub const DROPPED_HEADER: &str = "x-analytics-dropped";

/// JSON, or `text/plain` (what `sendBeacon` sends for a string), or no type
/// at all; anything else, and a compressed body, is refused before the body
/// is read.
const BODY_TYPES: &[&str] = &["application/json", "text/plain", ""];

/// Reads the body, mapping an oversized body to 413 and an empty one to
/// 400.
pub async fn body_bytes(request: Request) -> ApiResult<Bytes> {
    platform::http::check_body_type(request.headers(), BODY_TYPES)?;
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the request body is empty",
        ));
    }
    Ok(bytes)
}

/// The answer to a beacon from a known bot: a 202 like anyone's, nothing
/// stored, and why (also in the `x-analytics-dropped` header).
#[derive(Serialize, ToSchema)]
pub struct Dropped {
    #[schema(minimum = 0, maximum = 0)]
    stored: usize,
    /// Why nothing was stored.
    #[schema(example = "bot")]
    dropped: &'static str,
}

pub fn dropped() -> Response {
    metrics::emit("events", None, &[Metric::count("BeaconsDroppedBot", 1)]);
    let nothing = Dropped {
        stored: 0,
        dropped: "bot",
    };
    (
        StatusCode::ACCEPTED,
        [(DROPPED_HEADER, "bot")],
        Json(nothing),
    )
        .into_response()
}

/// What every intake route starts from: who sent the request, and its
/// body. A known bot never gets further: it is answered here, before its
/// body is read, so it learns nothing from validation either.
pub struct Beacon {
    pub client: ClientContext,
    pub body: Bytes,
}

impl Beacon {
    /// The body as a JSON tree; malformed JSON is a 400, and so is a NUL
    /// anywhere in it (PostgreSQL text cannot hold one), naming its field.
    pub fn json(&self) -> ApiResult<Value> {
        let value =
            serde_json::from_slice(&self.body).map_err(|e| ApiError::invalid_json(None, e))?;
        if let Some(field) = platform::json::nul_field(&value) {
            return Err(ApiError::invalid_field(
                field,
                "must not contain NUL (\\u0000): PostgreSQL cannot store it",
            ));
        }
        Ok(value)
    }
}

/// Who sent the request: a trusted server when it carries one of
/// `INGEST_KEYS`, a browser when it carries none; a key that is not one is
/// a 401.
pub fn sender(headers: &http::HeaderMap, state: &AppState) -> ApiResult<Sender> {
    match headers.get(INGEST_KEY_HEADER) {
        None => Ok(Sender::Browser),
        // Every key is compared, so the time taken does not say which
        // one (if any) came close.
        Some(given)
            if state
                .config
                .ingest_keys
                .iter()
                .fold(false, |found, key| key.matches(given.as_bytes()) | found) =>
        {
            Ok(Sender::Trusted)
        }
        Some(_) => Err(ApiError::Unauthorized),
    }
}

impl FromRequest<AppState> for Beacon {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let sender = sender(request.headers(), state).map_err(IntoResponse::into_response)?;
        let client = ClientContext::from_request(
            request.headers(),
            request.request_context_ref(),
            state.config.ip_storage,
            sender,
        );
        if sender == Sender::Browser && client.is_known_bot() {
            return Err(dropped());
        }
        let body = body_bytes(request)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self { client, body })
    }
}
