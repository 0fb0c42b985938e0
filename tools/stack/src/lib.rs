//! The whole bundle in one process, for what needs every function at once:
//! the API description, merged from each function's handlers, and a local
//! server that routes each request to the function API Gateway would send
//! it to (the property-based API tests run against it).

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
};
use platform::{config::Env, lambda::Function};
use tower::ServiceExt;
use utoipa::openapi::{InfoBuilder, OpenApi};

/// Every function's routes, one OpenAPI 3.1 document.
pub fn openapi() -> OpenApi {
    let mut doc = events::openapi();
    doc.merge(admin::openapi());
    doc.merge(cms::openapi());
    doc.merge(health::openapi());
    doc.info = InfoBuilder::new()
        .title("Travel deals: serverless backend")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The public intake (analytics events, Web Vitals, browser errors, flag evaluation, experiments), the admin API, \
             the CMS (deals, destinations, email templates, search suggestions) and health, each an AWS Lambda function behind one API Gateway. Every error answer \
             has the shape of `ErrorBody`; a field at fault is named in `error.field`. The OFREP \
             routes answer evaluation errors in the protocol's own shape (`errorCode`).",
        ))
        .build();
    doc
}

/// The document as committed in `openapi.json`: pretty, with a final line
/// break.
pub fn openapi_json() -> String {
    let mut json = openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// Each function, built by its own constructor from the same settings.
#[derive(Clone)]
pub struct Stack {
    events: events::App,
    admin: admin::App,
    cms: cms::App,
    health: health::App,
}

impl Stack {
    pub fn build(env: &Env) -> anyhow::Result<Self> {
        Ok(Self {
            events: events::App::build(env)?,
            admin: admin::App::build(env)?,
            cms: cms::App::build(env)?,
            health: health::App::build(env)?,
        })
    }

    /// Routes a request by its path, as the API Gateway routes of
    /// `template.yaml` do.
    pub fn router(&self) -> Router {
        let stack = self.clone();
        Router::new().fallback(move |request: Request| {
            let stack = stack.clone();
            async move { stack.dispatch(request).await }
        })
    }

    async fn dispatch(&self, request: Request) -> Response {
        let path = request.uri().path();
        // API Gateway matches method and path: a POST to
        // `/api/deals/store` is a Sentry route, not a CMS one.
        let sentry = is_sentry_path(path) && request.method() == axum::http::Method::POST;
        let function = if sentry {
            self.events.router()
        } else if is_cms_path(path) {
            self.cms.router()
        } else if path.starts_with("/api/analytics/")
            || path.starts_with("/api/monitoring/")
            || path.starts_with("/api/experiments/")
            || path.starts_with("/api/predictions/")
            || path.starts_with("/ofrep/")
        {
            self.events.router()
        } else if path.starts_with("/api/admin/") {
            self.admin.router()
        } else if path.starts_with("/api/health") || path == "/api/openapi.json" {
            self.health.router()
        } else {
            return platform::http::finish("stack", Router::new())
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
        };
        match function.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
        .into_response()
    }
}

/// `/api/{projectId}/envelope` or `/api/{projectId}/store`, with or without
/// the trailing slash the Sentry SDKs add.
fn is_sentry_path(path: &str) -> bool {
    let mut segments = path.trim_end_matches('/').split('/');
    matches!(
        (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next()
        ),
        (
            Some(""),
            Some("api"),
            Some(_),
            Some("envelope" | "store"),
            None
        )
    )
}

/// The cms function's paths: its public reads and counters, and the admin
/// routes of its content.
fn is_cms_path(path: &str) -> bool {
    [
        "/api/deals",
        "/api/destinations",
        "/api/search/",
        "/api/admin/deals",
        "/api/admin/destinations",
        "/api/admin/email-templates",
        "/api/admin/search-suggestions",
    ]
    .iter()
    .any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'))
    })
}
