//! The request id that ties a response, its error body and its log lines
//! together.
//!
//! In Lambda it is API Gateway's `requestContext.requestId`, the id API
//! Gateway's own access logs carry. Outside Lambda (tests, `cargo lambda
//! watch` without a context) an `x-request-id` header is honoured, else an id
//! is made up. The id lives in a task-local for the duration of the request,
//! so [`crate::ApiError`] can put it in error bodies without every handler
//! threading it through.

use std::future::Future;

use axum::{extract::Request, middleware::Next, response::Response};
use lambda_http::{RequestExt, request::RequestContext};
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` as part of the request `id`.
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id API Gateway gave this request, else a header's, else a new one.
pub fn of(request: &Request) -> String {
    let from_gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    from_gateway
        .or_else(|| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map(str::to_owned)
        })
        .unwrap_or_else(crate::ids::new_id)
}

/// Middleware: scopes the request id, opens the request's log span, and
/// echoes the id in an `x-request-id` response header.
pub async fn middleware(request: Request, next: Next) -> Response {
    let id = of(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = scope(id.clone(), next.run(request)).instrument(span).await;
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
