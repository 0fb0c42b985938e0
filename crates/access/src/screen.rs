//! What every admin router screens before routing: the same for every
//! function with admin routes (admin, cms), so it is written once.

use axum::{
    extract::Request,
    http::{Method, header},
    middleware::Next,
    response::Response,
};
use platform::ApiError;

/// The largest body an admin mutation takes. The biggest legitimate ones (a
/// deal with its images and SEO, an email template's body) stay well under
/// it; refused bodies are cut into the audit trail, and accepted ones are
/// stored in it whole, so this bounds what one request can add to an
/// append-only table.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Refuses before routing what no admin route can take: a path holding an
/// encoded NUL (PostgreSQL text cannot store one), and a body sent as
/// anything but JSON. The second keeps cross-site form posts, which
/// browsers send as form or text types without a preflight, away from
/// every mutation.
pub async fn screen(request: Request, next: Next) -> Result<Response, ApiError> {
    screen_with(request, next, &["application/json"]).await
}

/// [`screen`] for routes that also take other body types (a CSV import);
/// still never a type a cross-site form can send without a preflight.
pub async fn screen_with(
    request: Request,
    next: Next,
    accepted: &[&str],
) -> Result<Response, ApiError> {
    if request.uri().path().to_ascii_lowercase().contains("%00") {
        return Err(ApiError::invalid_field(
            "path",
            "must not contain NUL (%00)",
        ));
    }
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v != "0");
    if matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::PUT
    ) && has_body
    {
        platform::http::check_body_type(request.headers(), accepted)?;
    }
    Ok(next.run(request).await)
}
