//! The HTTP edge every function's router ends with, so that every answer
//! of every function has the same shape whatever produced it:
//!
//! - a request id scoped around the request ([`crate::request_id`]);
//! - a JSON 404 for paths no route serves, and a JSON 405 for methods a
//!   path does not take;
//! - axum's own rejections (a path parameter that is not UTF-8, a body over
//!   the route's limit, a missing header), which axum answers in plain text,
//!   rewritten into the JSON error shape with the request id;
//! - a panic in a handler caught and answered as a generic 500: its message
//!   goes to the log, never to the client.

use axum::{
    Router,
    extract::Request,
    http::{HeaderMap, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use lambda_http::request::RequestContext;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    ApiError, ApiResult,
    metrics::{self, Metric},
    request_id,
};

/// Longest rejection text carried over into an error body.
const MAX_REJECTION_TEXT: usize = 1024;

/// `routes` of `function` with the edge around them (see the module
/// documentation).
pub fn finish(function: &'static str, routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::from_fn(json_rejections))
        .layer(CatchPanicLayer::custom(panic_answer))
        .layer(middleware::from_fn(move |request, next| {
            count_answers(function, request, next)
        }))
        .layer(middleware::from_fn(request_id::middleware))
}

/// Every answer counted by its class, with its latency: the alarms on a
/// function's 5xx rate read these ([`crate::metrics`]).
async fn count_answers(function: &'static str, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    metrics::emit(
        function,
        None,
        &[
            Metric::count("Requests", 1),
            Metric::count("Http4xx", usize::from(status.is_client_error())),
            Metric::count("Http5xx", usize::from(status.is_server_error())),
            Metric::millis("LatencyMs", started.elapsed()),
        ],
    );
    response
}

fn panic_answer(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        })
}

/// Any 4xx or 5xx answer that is not JSON is rewritten into the JSON error
/// shape, keeping its status, its text as the message, and the headers a
/// client acts on (`Allow`, `Retry-After`).
async fn json_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT * 4)
        .await
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(MAX_REJECTION_TEXT)
                .collect::<String>()
        })
        .unwrap_or_default();
    let mut answer = ApiError::rejected(status, text).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// The client's address: API Gateway's `sourceIp`, the peer it saw, which
/// the client cannot forge; only without it (local runs, another front
/// door) the first `X-Forwarded-For` entry.
pub fn client_address(headers: &HeaderMap, context: Option<&RequestContext>) -> Option<String> {
    let source_ip = match context {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    source_ip.or_else(|| {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|first| first.trim().to_owned())
            .filter(|first| !first.is_empty())
    })
}

/// The body's declared media type, lower-case and without parameters
/// (`application/json` for `Application/JSON; charset=utf-8`).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"))
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Refuses, with a 415, a body whose media type is not one of `accepted`
/// (`""` accepts a request without a type), or that is compressed: no route
/// decodes a `Content-Encoding`, and reading compressed bytes as text would
/// be a wrong 400 at best.
pub fn check_body_type(headers: &HeaderMap, accepted: &[&str]) -> ApiResult<()> {
    if let Some(encoding) = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity")
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "content encoding {encoding}; send the body uncompressed"
        )));
    }
    let declared = media_type(headers).unwrap_or_default();
    if accepted.contains(&declared.as_str()) {
        return Ok(());
    }
    let shown = if declared.is_empty() {
        "(none)"
    } else {
        &declared
    };
    Err(ApiError::UnsupportedMediaType(format!(
        "{shown}; send {}",
        accepted
            .iter()
            .filter(|a| !a.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::StatusCode, routing::get};

    async fn answer(
        router: Router,
        request: Request,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let (status, headers, bytes) = testkit::send(router, request).await;
        (
            status,
            headers,
            serde_json::from_slice(&bytes).expect("a JSON body"),
        )
    }

    fn request(method: &str, uri: &str) -> Request {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_json_404_with_a_request_id() {
        let (status, _, body) =
            answer(finish("test", Router::new()), request("GET", "/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert!(body["error"]["requestId"].is_string());
    }

    #[tokio::test]
    async fn a_method_the_path_does_not_take_is_a_json_405_keeping_allow() {
        let routes = Router::new().route("/thing", get(|| async { "ok" }));
        let (status, headers, body) =
            answer(finish("test", routes), request("DELETE", "/thing")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert!(headers.contains_key(header::ALLOW));
    }

    #[tokio::test]
    async fn a_path_parameter_that_is_not_utf8_is_a_json_400() {
        let routes = Router::new().route(
            "/things/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id }),
        );
        let (status, _, body) =
            answer(finish("test", routes), request("GET", "/things/%FF%FE")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["requestId"].is_string());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_json_413() {
        let routes = Router::new()
            .route(
                "/things",
                axum::routing::post(
                    |body: axum::body::Bytes| async move { body.len().to_string() },
                ),
            )
            .layer(axum::extract::DefaultBodyLimit::max(8));
        let big = Request::builder()
            .method("POST")
            .uri("/things")
            .body(Body::from("0123456789"))
            .expect("request");
        let (status, _, body) = answer(finish("test", routes), big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn a_panic_is_a_generic_500_that_does_not_leak_its_message() {
        let routes = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("secret detail");
                }
                "unreachable"
            }),
        );
        let (status, _, body) = answer(finish("test", routes), request("GET", "/boom")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret detail"));
    }
}
