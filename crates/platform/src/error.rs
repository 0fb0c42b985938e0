//! The one error type of HTTP handlers, mapped once to a JSON body.
//!
//! Every error response has the same shape:
//!
//! ```json
//! {"error": {"code": "invalid_field", "message": "...", "field": "hours", "requestId": "..."}}
//! ```
//!
//! `code` is stable for machines, `message` is for people, `field` names the
//! offending input when there is one, and `requestId` is API Gateway's
//! request id, which is also on every log line of the request. A 500 says
//! nothing about its cause: the cause is logged here, once, with that id.
//!
//! A failure is classified by its cause wherever it is made into an
//! `ApiError` ([`ApiError::internal`], `?` on a database or `anyhow`
//! error), so no route can answer a client's bad data with a 500 because
//! only PostgreSQL noticed it:
//! - SQLSTATE class 22 (data exception: a number out of range, text the
//!   encoding refuses) is a 400 `invalid_value`;
//! - class 23 (integrity constraint): a unique or exclusion violation is a
//!   409 naming the key's column, any other a 422 `constraint_violation`;
//! - a lost or refused connection (class 08, an administrator's or a
//!   crash's shutdown, a closed socket) and a transaction the server asks
//!   to retry (40001, 40P01) are a 503 with `Retry-After`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::request_id;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// 401: no valid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// 404: a field of the request names something that does not exist
    /// (`flagKey` of a conversion): the field is the client's to fix.
    #[error("{field} {rule}")]
    NoSuch { field: String, rule: String },
    /// 409: the change conflicts with existing data.
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
    },
    /// 413: the body is larger than the route accepts.
    #[error("request body larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// 415: the body's media type (or encoding) is not one the route reads.
    #[error("unsupported content type {0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well-formed, but the data breaks a rule of the
    /// database (a check or foreign key, a required value).
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// 503: a dependency is unavailable; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// Any other 4xx or 5xx status: what axum's router or an extractor
    /// answered (a method the path does not take, a body over the route's
    /// limit, a path parameter that is not UTF-8), in this shape
    /// ([`crate::http`]). The text of a 5xx is logged, never sent.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// 500: anything else. The cause is logged, never sent.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// How long a client should wait before retrying a 503, in whole seconds
/// (what OpenFeature's and most HTTP clients parse).
pub const RETRY_AFTER_SECONDS: u32 = 1;

impl ApiError {
    /// A 400 naming the field at fault. Every such message has one shape,
    /// the field followed by the rule it broke: `rule` is a predicate
    /// ("must be between 1 and 200", "is required"), and the message reads
    /// "limit must be between 1 and 200".
    pub fn invalid_field(field: impl Into<String>, rule: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::BadRequest {
            code: "invalid_field",
            message: format!("{field} {rule}"),
            field: Some(field),
        }
    }

    /// For `map_err`: a 500 whose logged cause says what was being done,
    /// unless the cause is the client's data or a database that is away
    /// (see the module documentation).
    pub fn internal<E>(doing: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |error| Self::from_cause(anyhow::Error::new(error).context(doing))
    }

    /// The answer for a failure, by the first database error in its chain
    /// of causes; a 500 when there is none or it is the server's fault.
    pub fn from_cause(cause: anyhow::Error) -> Self {
        cause
            .chain()
            .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
            .and_then(from_database)
            .unwrap_or(Self::Internal(cause))
    }

    /// `status` with `message`, for answers made outside this type.
    pub fn rejected(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Rejected {
            status,
            message: message.into(),
        }
    }

    /// A 400 for a body that is not valid JSON, with the parser's detail;
    /// `field` when the fault is known to lie in one (`eventData`).
    pub fn invalid_json(field: Option<String>, detail: impl std::fmt::Display) -> Self {
        Self::BadRequest {
            code: "invalid_json",
            message: format!("the body is not valid JSON: {detail}"),
            field,
        }
    }

    /// A 404 naming the field whose value names nothing that exists; the
    /// message reads like [`Self::invalid_field`]'s.
    pub fn no_such(field: impl Into<String>, rule: impl std::fmt::Display) -> Self {
        Self::NoSuch {
            field: field.into(),
            rule: rule.to_string(),
        }
    }

    /// A 400 for a request that is malformed as a whole.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoSuch { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Rejected { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) | Self::NoSuch { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unprocessable { code, .. } => code,
            Self::Unavailable(_) => "unavailable",
            Self::Rejected { status, .. } => match status.as_u16() {
                400 => "bad_request",
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                405 => "method_not_allowed",
                406 => "not_acceptable",
                408 => "request_timeout",
                409 => "conflict",
                411 => "length_required",
                413 => "payload_too_large",
                414 => "uri_too_long",
                415 => "unsupported_media_type",
                422 => "unprocessable_entity",
                429 => "too_many_requests",
                503 => "unavailable",
                500..=599 => "internal",
                _ => "rejected",
            },
            Self::Internal(_) => "internal",
        }
    }

    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadRequest { field, .. }
            | Self::Conflict { field, .. }
            | Self::Unprocessable { field, .. } => field.as_deref(),
            Self::NoSuch { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::from_cause(error.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(cause: anyhow::Error) -> Self {
        Self::from_cause(cause)
    }
}

/// The answer a database error calls for, when it is not the server's
/// fault. PostgreSQL's own message is about the value sent ("value
/// overflows numeric format"), never about the query, so it is passed on;
/// the `DETAIL`, which can quote other rows, is not.
fn from_database(error: &tokio_postgres::Error) -> Option<ApiError> {
    use tokio_postgres::error::SqlState;
    if crate::db::connection_lost(error) {
        return Some(ApiError::Unavailable(
            "database unavailable: connection lost".into(),
        ));
    }
    let db = error.as_db_error()?;
    let code = db.code();
    if [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ]
    .contains(code)
    {
        return Some(ApiError::Unavailable(
            "a concurrent change got in the way; retry".into(),
        ));
    }
    let field = db
        .column()
        .map(str::to_owned)
        .or_else(|| key_columns(db.detail()?));
    match &code.code()[..2] {
        "22" => Some(ApiError::BadRequest {
            code: "invalid_value",
            message: db.message().to_owned(),
            field,
        }),
        "23" if [SqlState::UNIQUE_VIOLATION, SqlState::EXCLUSION_VIOLATION].contains(code) => {
            Some(ApiError::Conflict {
                message: match &field {
                    Some(key) => format!("a row with this {key} already exists"),
                    None => db.message().to_owned(),
                },
                field,
            })
        }
        "23" => Some(ApiError::Unprocessable {
            code: "constraint_violation",
            message: db.message().to_owned(),
            field,
        }),
        _ => None,
    }
}

/// The column(s) of a key violation's detail, `Key ("email")=(...) already
/// exists`, without the values.
fn key_columns(detail: &str) -> Option<String> {
    let columns = detail.strip_prefix("Key (")?.split(")=(").next()?;
    Some(columns.replace('"', ""))
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(format!("database unavailable: {}", pool_error_kind(&error)))
    }
}

fn pool_error_kind(error: &deadpool_postgres::PoolError) -> &'static str {
    match error {
        deadpool_postgres::PoolError::Timeout(_) => "timed out",
        _ => "cannot connect",
    }
}

/// The body of every error answer of every function.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail<'a> {
    /// Stable, for machines: `invalid_field`, `invalid_json`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `constraint_violation`, `unavailable`,
    /// `internal`, ...
    pub code: &'a str,
    /// For people: the field followed by the rule it broke, or what went
    /// wrong. A 500 says only that it happened.
    pub message: String,
    /// The input field at fault, as a path (`events[3].eventType`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    /// API Gateway's request id, also on every log line of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                "internal error; quote the request id when reporting it".to_owned()
            }
            Self::Unavailable(reason) => {
                tracing::warn!(%reason, "dependency unavailable");
                self.to_string()
            }
            Self::Rejected { status, message } if status.is_server_error() => {
                tracing::error!(%status, %message, "request failed");
                "internal error; quote the request id when reporting it".to_owned()
            }
            _ => self.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                field: self.field(),
                request_id: request_id::current(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(http::header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = request_id::scope("req-1".into(), async { error.into_response() }).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn field_errors_name_the_field_and_carry_the_request_id() {
        let (status, body) = body_of(ApiError::invalid_field("hours", "must be 1..=720")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["field"], "hours");
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["requestId"], "req-1");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let cause = anyhow::anyhow!("relation \"secret_table\" does not exist");
        let (status, body) = body_of(ApiError::Internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret_table"));
        assert_eq!(body["error"]["code"], "internal");
    }

    #[tokio::test]
    async fn not_found_is_a_404_not_a_500() {
        let (status, body) = body_of(ApiError::NotFound("service \"x\"".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
    }
}
