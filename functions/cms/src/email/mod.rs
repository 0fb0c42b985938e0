//! Email templates: strict mustache (handlebars) templates with declared
//! variables, rendered into a layout with CSS inlined and a plain-text
//! alternative, and test sends over SMTP.

use axum::Router;
use platform::config::Env;

use crate::AppState;

/// Where test mails go (`SMTP_URL`).
pub struct Mailer {}

impl Mailer {
    pub fn from_env(_env: &Env) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

/// `/api/admin/email-templates` and its routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}

/// The email templates' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}
