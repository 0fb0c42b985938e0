//! Email templates: strict mustache (handlebars) templates with declared
//! variables, rendered into a layout with CSS inlined and a plain-text
//! alternative, and test sends over SMTP.
//!
//! | route | permission |
//! |---|---|
//! | `GET /api/admin/email-templates`, `GET .../{key}`, `GET .../{key}/history` | emails:read |
//! | `POST /api/admin/email-templates/{key}/render` | emails:read |
//! | `POST /api/admin/email-templates` | emails:create |
//! | `PATCH .../{key}`, `POST .../{key}/restore`, `POST .../{key}/test` | emails:update |
//! | `DELETE .../{key}` | emails:delete |
//!
//! Rules beyond the route permissions:
//! - a template is named by its `key`, a slug that never changes (the code
//!   that sends a mail names it); its audit rows and history use the key;
//!   `key` and `name` are each unique (409 naming the field);
//! - `variables` declares what the subject, preheader and body read
//!   ([`variables`]); a template that reads an undeclared variable, or does
//!   not parse, is refused when saved, with the line and column
//!   ([`template`]);
//! - a render checks the model against the declarations: a missing
//!   required variable or a value of the wrong type is a 422 naming
//!   `model.<name>` ([`render`]);
//! - a test send goes to at most [`MAX_TEST_RECIPIENTS`] addresses and is
//!   recorded on the template (`lastTested`, `testsSent`,
//!   `lastTestResults`) only when the SMTP server could be reached
//!   ([`mailer`]).

pub mod mailer;
pub mod render;
pub mod template;
pub mod variables;

pub use mailer::Mailer;

use access::{Authorized, Change, Resource, action, resource};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    routing::{get, post},
};
use platform::api_doc::{
    Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthenticated, Unavailable, Unprocessable,
    WrongMediaType,
};
use platform::paging::{self, Page};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_postgres::{GenericClient, Row};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::AppState;
use crate::content;
use crate::history::{self, RestoreRequest};
use render::Rendered;
use variables::{FieldError, Variable};

/// Most addresses one test send goes to.
pub const MAX_TEST_RECIPIENTS: usize = 10;
/// The `footerText` of a template that sets none: the column's default.
pub const DEFAULT_FOOTER: &str = "Copyright (c) 2025 Travel Deals. All rights reserved.";
const MAX_NAME_CHARS: usize = 200;
const MAX_SUBJECT_CHARS: usize = 500;
const MAX_PREHEADER_CHARS: usize = 500;
const MAX_BODY_CHARS: usize = 100_000;
const MAX_FOOTER_CHARS: usize = 1000;

const TEMPLATES_PATH: &str = "/api/admin/email-templates";

/// `/api/admin/email-templates` and its routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(TEMPLATES_PATH, get(list).post(create))
        .route(
            "/api/admin/email-templates/{key}",
            get(get_one).patch(update).delete(delete),
        )
        .route("/api/admin/email-templates/{key}/render", post(render_one))
        .route("/api/admin/email-templates/{key}/test", post(send_test))
        .route("/api/admin/email-templates/{key}/history", get(history))
        .route("/api/admin/email-templates/{key}/restore", post(restore))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list, get_one, create, update, delete, render_one, send_test, history, restore
    ),
    components(schemas(
        TemplateView,
        NewTemplate,
        TemplateUpdate,
        Variable,
        variables::VariableType,
        RenderRequest,
        Rendered,
        TestRequest,
        TestSend,
        RecipientResult,
        TemplatePage,
        history::VersionPage,
        history::Version,
        RestoreRequest,
    ))
)]
struct EmailApi;

/// The email templates' part of the API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    EmailApi::openapi()
}

const SELECT_TEMPLATE: &str = r#"SELECT "id", "name", "key", "subject", "preheader", "body",
    "variables", "layout", "brandColor", "headerImage", "footerText", "active", "lastTested",
    "testRecipients", "testsSent", "lastTestResults", "createdAt", "updatedAt"
    FROM "email_templates""#;

/// [`SELECT_TEMPLATE`] reading from `relation` (a CTE of the statement,
/// named by this code, never by a caller): a change answers with the row
/// it wrote, in one statement.
fn select_template_from(relation: &str) -> String {
    SELECT_TEMPLATE.replace(r#"FROM "email_templates""#, &format!("FROM {relation}"))
}

/// An email template as the admin API shows it: every column.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub key: String,
    pub subject: String,
    pub preheader: Option<String>,
    /// HTML with `{{variables}}`.
    pub body: String,
    /// `[{name, required, type, example, description}]`.
    #[schema(value_type = Vec<Variable>)]
    pub variables: Value,
    pub layout: String,
    pub brand_color: String,
    pub header_image: Option<String>,
    pub footer_text: String,
    pub active: bool,
    #[schema(value_type = Option<String>)]
    pub last_tested: Option<chrono::NaiveDateTime>,
    pub test_recipients: Option<Vec<String>>,
    pub tests_sent: i32,
    /// `{sentAt, server, results: [{recipient, accepted, response | error}]}`.
    #[schema(value_type = Option<Object>)]
    pub last_test_results: Option<Value>,
    #[schema(value_type = String)]
    pub created_at: chrono::NaiveDateTime,
    #[schema(value_type = String)]
    pub updated_at: chrono::NaiveDateTime,
}

impl TemplateView {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            name: row.get(1),
            key: row.get(2),
            subject: row.get(3),
            preheader: row.get(4),
            body: row.get(5),
            variables: row.get(6),
            layout: row.get(7),
            brand_color: row.get(8),
            header_image: row.get(9),
            footer_text: row.get(10),
            active: row.get(11),
            last_tested: row.get(12),
            test_recipients: row.get(13),
            tests_sent: row.get(14),
            last_test_results: row.get(15),
            created_at: row.get(16),
            updated_at: row.get(17),
        }
    }

    fn audit_view(&self) -> Value {
        serde_json::to_value(self).expect("templates serialise")
    }

    /// The declarations as stored, read leniently (see
    /// [`variables::stored_declarations`]).
    fn declarations(&self) -> Vec<Variable> {
        variables::stored_declarations(&self.variables)
    }

    fn source(&self) -> render::Source<'_> {
        render::Source {
            subject: &self.subject,
            preheader: self.preheader.as_deref(),
            body: &self.body,
            layout: &self.layout,
            brand_color: &self.brand_color,
            header_image: self.header_image.as_deref(),
            footer_text: &self.footer_text,
        }
    }
}

/// The template with `key`, locked for the change that follows when `lock`.
async fn find(
    client: &impl GenericClient,
    key: &str,
    lock: bool,
) -> ApiResult<Option<TemplateView>> {
    // By the unique index on "key".
    let sql = if lock {
        format!(r#"{SELECT_TEMPLATE} WHERE "key" = $1 FOR UPDATE"#)
    } else {
        format!(r#"{SELECT_TEMPLATE} WHERE "key" = $1"#)
    };
    let row = client
        .query_opt(&sql, &[&key])
        .await
        .map_err(ApiError::internal("reading an email template"))?;
    Ok(row.as_ref().map(TemplateView::from_row))
}

fn not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("email template {key:?}"))
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::invalid_field(error.field, error.rule)
}

fn unprocessable(error: FieldError) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_model",
        message: format!("{} {}", error.field, error.rule),
        field: Some(error.field),
    }
}

/// A unique index's 409 (which PostgreSQL names by column) with the value
/// that is taken.
fn taken(error: ApiError, key: &str, name: &str) -> ApiError {
    match &error {
        ApiError::Conflict {
            field: Some(field), ..
        } if field == "key" => content::taken("key", key),
        ApiError::Conflict {
            field: Some(field), ..
        } if field == "name" => content::taken("name", name),
        _ => error,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// In the key, name or subject.
    search: Option<String>,
    active: Option<bool>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of templates, as [`Page`] writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TemplatePage {
    templates: Vec<TemplateView>,
    /// Continues after the last template; absent on the last page.
    next_cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_email_templates",
    get,
    path = "/api/admin/email-templates",
    tag = "cms-admin",
    summary = "List email templates",
    description = "By key. Needs `emails:read`.",
    params(ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of templates.", body = TemplatePage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
async fn list(
    mut auth: Authorized<resource::Emails, action::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    let query: ListQuery = platform::json::parse_query(query.as_deref())?;
    let limit = paging::limit(query.limit)?;
    let after: Option<String> = paging::decode(query.cursor.as_deref())?;
    let pattern = paging::search_pattern("search", query.search.as_deref())?;
    // By the unique index on "key".
    let rows = auth
        .client()
        .query(
            &format!(
                r#"{SELECT_TEMPLATE}
                   WHERE ($1::bool IS NULL OR "active" = $1)
                     AND ($2::text IS NULL OR "key" ILIKE $2 OR "name" ILIKE $2 OR "subject" ILIKE $2)
                     AND ($3::text IS NULL OR "key" > $3)
                   ORDER BY "key"
                   LIMIT $4"#
            ),
            &[&query.active, &pattern, &after, &(limit + 1)],
        )
        .await
        .map_err(ApiError::internal("listing email templates"))?;
    let templates: Vec<TemplateView> = rows.iter().map(TemplateView::from_row).collect();
    Ok(Json(Page::new("templates", templates, limit, |t| {
        t.key.clone()
    })))
}

#[utoipa::path(
    operation_id = "get_email_template",
    get,
    path = "/api/admin/email-templates/{key}",
    tag = "cms-admin",
    summary = "Get an email template",
    description = "Needs `emails:read`.",
    params(("key" = String, Path, description = "The template's key.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The template.", body = TemplateView),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
async fn get_one(
    mut auth: Authorized<resource::Emails, action::Read>,
    Path(key): Path<String>,
) -> ApiResult<Json<TemplateView>> {
    find(&***auth.client(), &key, false)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&key))
}

/// A new template. Omitted: no preheader, no variables, the `default`
/// layout, brand colour `#3b82f6`, no header image, the default footer,
/// active, no test recipients.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewTemplate {
    /// A slug (`booking-confirmation`); never changes.
    key: String,
    name: String,
    subject: String,
    preheader: Option<String>,
    /// HTML with `{{variables}}`.
    body: String,
    #[serde(default = "no_variables")]
    #[schema(value_type = Option<Vec<Variable>>)]
    variables: Value,
    layout: Option<String>,
    /// `#rrggbb`.
    brand_color: Option<String>,
    /// An https URL.
    header_image: Option<String>,
    footer_text: Option<String>,
    active: Option<bool>,
    test_recipients: Option<Vec<String>>,
}

fn no_variables() -> Value {
    Value::Array(Vec::new())
}

/// A change to a template; absent fields stay as they are, `null` clears
/// the nullable ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TemplateUpdate {
    /// Only to repeat the current key: keys never change.
    key: Option<String>,
    name: Option<String>,
    subject: Option<String>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<String>)]
    preheader: Option<Value>,
    body: Option<String>,
    #[schema(value_type = Option<Vec<Variable>>)]
    variables: Option<Value>,
    layout: Option<String>,
    brand_color: Option<String>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<String>)]
    header_image: Option<Value>,
    footer_text: Option<String>,
    active: Option<bool>,
    #[serde(default, deserialize_with = "content::present")]
    #[schema(value_type = Option<Vec<String>>)]
    test_recipients: Option<Value>,
}

/// A template's settings, checked, as they will be stored.
struct Settings {
    name: String,
    subject: String,
    preheader: Option<String>,
    body: String,
    variables: Vec<Variable>,
    layout: String,
    brand_color: String,
    header_image: Option<String>,
    footer_text: String,
    active: bool,
    test_recipients: Option<Vec<String>>,
}

impl Settings {
    /// The subject, preheader and body parse and read only declared
    /// variables: a 400 naming the part, the variable, line and column.
    fn check_templates(&self) -> ApiResult<()> {
        let declared: Vec<&str> = self.variables.iter().map(|v| v.name.as_str()).collect();
        let parts = [
            ("subject", Some(self.subject.as_str())),
            ("preheader", self.preheader.as_deref()),
            ("body", Some(self.body.as_str())),
        ];
        for (field, source) in parts {
            if let Some(source) = source {
                template::check(source, &declared)
                    .map_err(|problem| ApiError::invalid_field(field, problem.rule()))?;
            }
        }
        Ok(())
    }

    fn variables_json(&self) -> Value {
        serde_json::to_value(&self.variables).expect("variables serialise")
    }
}

fn layout(value: &str) -> ApiResult<String> {
    if render::LAYOUTS.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid_field(
            "layout",
            format!("must be one of: {}", render::LAYOUTS.join(", ")),
        ))
    }
}

fn brand_color(value: &str) -> ApiResult<String> {
    if render::is_hex_color(value) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid_field(
            "brandColor",
            "must be a colour as #rrggbb (like #3b82f6)",
        ))
    }
}

/// An email address a test may go to: a bare `local@domain`, no name.
fn address(field: &str, text: &str) -> ApiResult<lettre::Address> {
    text.trim()
        .parse::<lettre::Address>()
        .ok()
        .filter(|_| text.len() <= 254)
        .ok_or_else(|| {
            ApiError::invalid_field(field, "must be an email address such as ana@example.com")
        })
}

/// Checked recipients, duplicates dropped, at most
/// [`MAX_TEST_RECIPIENTS`].
fn recipients(field: &str, values: &[String]) -> ApiResult<Vec<lettre::Address>> {
    if values.len() > MAX_TEST_RECIPIENTS {
        return Err(ApiError::invalid_field(
            field,
            format!("must hold at most {MAX_TEST_RECIPIENTS} addresses"),
        ));
    }
    let mut out: Vec<lettre::Address> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let parsed = address(&format!("{field}[{i}]"), value)?;
        if !out.iter().any(|a: &lettre::Address| {
            AsRef::<str>::as_ref(a).eq_ignore_ascii_case(parsed.as_ref())
        }) {
            out.push(parsed);
        }
    }
    Ok(out)
}

fn stored_recipients(values: Option<&[String]>) -> ApiResult<Option<Vec<String>>> {
    match values {
        None => Ok(None),
        Some(values) => Ok(Some(
            recipients("testRecipients", values)?
                .iter()
                .map(ToString::to_string)
                .collect(),
        )),
    }
}

fn header_image(value: Option<&str>) -> ApiResult<Option<String>> {
    value
        .map(|url| content::https_url("headerImage", url))
        .transpose()
}

fn parse_new(new: NewTemplate) -> ApiResult<(String, Settings)> {
    let key = content::check_slug("key", &new.key)?;
    let settings = Settings {
        name: content::text("name", &new.name, MAX_NAME_CHARS)?,
        subject: content::text("subject", &new.subject, MAX_SUBJECT_CHARS)?,
        preheader: content::optional_text(
            "preheader",
            new.preheader.as_deref(),
            MAX_PREHEADER_CHARS,
        )?,
        body: content::text("body", &new.body, MAX_BODY_CHARS)?,
        variables: variables::parse_declarations(&new.variables).map_err(invalid)?,
        layout: layout(new.layout.as_deref().unwrap_or(render::LAYOUTS[0]))?,
        brand_color: brand_color(
            new.brand_color
                .as_deref()
                .unwrap_or(render::DEFAULT_BRAND_COLOR),
        )?,
        header_image: header_image(new.header_image.as_deref())?,
        footer_text: content::text(
            "footerText",
            new.footer_text.as_deref().unwrap_or(DEFAULT_FOOTER),
            MAX_FOOTER_CHARS,
        )?,
        active: new.active.unwrap_or(true),
        test_recipients: stored_recipients(new.test_recipients.as_deref())?,
    };
    settings.check_templates()?;
    Ok((key, settings))
}

fn nullable_text(field: &str, value: &Value, max: usize) -> ApiResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => content::text(field, text, max).map(Some),
        _ => Err(ApiError::invalid_field(field, "must be a string or null")),
    }
}

/// `current` with `update` applied and checked. The templates are checked
/// again when the subject, preheader, body or variables change (a stored
/// template the other application wrote can still be switched off).
fn apply(current: &TemplateView, update: TemplateUpdate) -> ApiResult<Settings> {
    if update.key.as_ref().is_some_and(|k| *k != current.key) {
        return Err(ApiError::invalid_field(
            "key",
            "cannot change: the code that sends this mail names it, and its history is kept under it; create a new template instead",
        ));
    }
    let templates_change = update.subject.is_some()
        || update.preheader.is_some()
        || update.body.is_some()
        || update.variables.is_some();
    let settings = Settings {
        name: match &update.name {
            Some(name) => content::text("name", name, MAX_NAME_CHARS)?,
            None => current.name.clone(),
        },
        subject: match &update.subject {
            Some(subject) => content::text("subject", subject, MAX_SUBJECT_CHARS)?,
            None => current.subject.clone(),
        },
        preheader: match &update.preheader {
            Some(value) => nullable_text("preheader", value, MAX_PREHEADER_CHARS)?,
            None => current.preheader.clone(),
        },
        body: match &update.body {
            Some(body) => content::text("body", body, MAX_BODY_CHARS)?,
            None => current.body.clone(),
        },
        variables: match &update.variables {
            Some(value) => variables::parse_declarations(value).map_err(invalid)?,
            None => current.declarations(),
        },
        layout: match &update.layout {
            Some(value) => layout(value)?,
            None => current.layout.clone(),
        },
        brand_color: match &update.brand_color {
            Some(value) => brand_color(value)?,
            None => current.brand_color.clone(),
        },
        header_image: match &update.header_image {
            Some(Value::Null) => None,
            Some(Value::String(url)) => header_image(Some(url))?,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "headerImage",
                    "must be an https URL or null",
                ));
            }
            None => current.header_image.clone(),
        },
        footer_text: match &update.footer_text {
            Some(text) => content::text("footerText", text, MAX_FOOTER_CHARS)?,
            None => current.footer_text.clone(),
        },
        active: update.active.unwrap_or(current.active),
        test_recipients: match &update.test_recipients {
            Some(Value::Null) => None,
            Some(value) => {
                let list: Vec<String> = serde_json::from_value(value.clone()).map_err(|_| {
                    ApiError::invalid_field(
                        "testRecipients",
                        "must be an array of email addresses or null",
                    )
                })?;
                stored_recipients(Some(&list))?
            }
            None => current.test_recipients.clone(),
        },
    };
    if templates_change {
        settings.check_templates()?;
    }
    Ok(settings)
}

/// Stores `settings` as template `key`: a new row when `current` is none
/// (a create, or the restore of a deleted template), else an update.
async fn store(
    tx: &impl GenericClient,
    key: &str,
    current: Option<&TemplateView>,
    settings: &Settings,
) -> ApiResult<TemplateView> {
    let now = platform::clock::now_millis();
    let row = match current {
        None => tx
            .query_one(
                &format!(
                    r#"WITH inserted AS (
                         INSERT INTO "email_templates" ("id", "name", "key", "subject", "preheader",
                             "body", "variables", "layout", "brandColor", "headerImage", "footerText",
                             "active", "testRecipients", "createdAt", "updatedAt")
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
                         RETURNING *)
                       {}"#,
                    select_template_from("inserted")
                ),
                &[
                    &platform::ids::new_id(),
                    &settings.name,
                    &key,
                    &settings.subject,
                    &settings.preheader,
                    &settings.body,
                    &settings.variables_json(),
                    &settings.layout,
                    &settings.brand_color,
                    &settings.header_image,
                    &settings.footer_text,
                    &settings.active,
                    &settings.test_recipients,
                    &now,
                ],
            )
            .await
            .map_err(ApiError::internal("creating an email template")),
        Some(current) => tx
            .query_one(
                &format!(
                    r#"WITH updated AS (
                         UPDATE "email_templates" SET "name" = $2, "subject" = $3, "preheader" = $4,
                             "body" = $5, "variables" = $6, "layout" = $7, "brandColor" = $8,
                             "headerImage" = $9, "footerText" = $10, "active" = $11,
                             "testRecipients" = $12, "updatedAt" = $13
                         WHERE "id" = $1 RETURNING *)
                       {}"#,
                    select_template_from("updated")
                ),
                &[
                    &current.id,
                    &settings.name,
                    &settings.subject,
                    &settings.preheader,
                    &settings.body,
                    &settings.variables_json(),
                    &settings.layout,
                    &settings.brand_color,
                    &settings.header_image,
                    &settings.footer_text,
                    &settings.active,
                    &settings.test_recipients,
                    &now,
                ],
            )
            .await
            .map_err(ApiError::internal("updating an email template")),
    };
    row.map(|row| TemplateView::from_row(&row))
        .map_err(|error| taken(error, key, &settings.name))
}

#[utoipa::path(
    operation_id = "create_email_template",
    post,
    path = "/api/admin/email-templates",
    tag = "cms-admin",
    summary = "Create an email template",
    description = "The subject, preheader and body must parse and read only declared variables: a 400 names the part in `field` and the variable, line and column in the message. A taken key or name is a 409 naming it. Audited. Needs `emails:create`.",
    request_body = NewTemplate,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new template.", body = TemplateView),
        Invalid, Unauthenticated, Forbidden, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn create(
    mut auth: Authorized<resource::Emails, action::Create>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let key_hint = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("key").and_then(Value::as_str).map(str::to_owned))
        .map(|k| k.chars().take(100).collect::<String>())
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let created = auth
        .mutate(&key_hint, async |tx| {
            let (key, settings) = parse_new(platform::json::parse(&body)?)?;
            let created = store(&**tx, &key, None, &settings).await?;
            Ok(Change {
                resource_id: created.key.clone(),
                before: Value::Null,
                after: created.audit_view(),
                output: created,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    operation_id = "update_email_template",
    patch,
    path = "/api/admin/email-templates/{key}",
    tag = "cms-admin",
    summary = "Change an email template",
    description = "Absent fields stay; `null` clears `preheader`, `headerImage` and `testRecipients`. The key never changes (400 naming `key`). A change of the subject, preheader, body or variables is checked as on create. Audited. Needs `emails:update`.",
    params(("key" = String, Path, description = "The template's key.")),
    request_body = TemplateUpdate,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The template as it now is.", body = TemplateView),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn update(
    mut auth: Authorized<resource::Emails, action::Update>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<TemplateView>> {
    let updated = auth
        .mutate(&key, async |tx| {
            let update: TemplateUpdate = platform::json::parse(&body)?;
            let current = find(&**tx, &key, true)
                .await?
                .ok_or_else(|| not_found(&key))?;
            let settings = apply(&current, update)?;
            let after = store(&**tx, &key, Some(&current), &settings).await?;
            Ok(Change {
                resource_id: key.clone(),
                before: current.audit_view(),
                after: after.audit_view(),
                output: after,
            })
        })
        .await?;
    Ok(Json(updated))
}

#[utoipa::path(
    operation_id = "delete_email_template",
    delete,
    path = "/api/admin/email-templates/{key}",
    tag = "cms-admin",
    summary = "Delete an email template",
    description = "Its history stays, and a restore brings it back. Audited. Needs `emails:delete`.",
    params(("key" = String, Path, description = "The template's key.")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        Invalid, Unauthenticated, Forbidden, NotFound, Unavailable,
    )
)]
async fn delete(
    mut auth: Authorized<resource::Emails, action::Delete>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    auth.mutate(&key, async |tx| {
        let current = find(&**tx, &key, true)
            .await?
            .ok_or_else(|| not_found(&key))?;
        tx.execute(
            r#"DELETE FROM "email_templates" WHERE "id" = $1"#,
            &[&current.id],
        )
        .await
        .map_err(ApiError::internal("deleting an email template"))?;
        Ok(Change {
            resource_id: key.clone(),
            before: current.audit_view(),
            after: json!({"deleted": true}),
            output: (),
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to render a template with.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RenderRequest {
    /// A value for each declared variable (required ones must be there).
    #[serde(default)]
    #[schema(value_type = Object)]
    model: Map<String, Value>,
}

/// `template` rendered with `given`: a 422 naming `model.<name>` for a
/// missing or mistyped variable.
fn render_with(template: &TemplateView, given: &Map<String, Value>) -> ApiResult<Rendered> {
    let model = variables::model(&template.declarations(), given).map_err(unprocessable)?;
    render::render(&template.source(), &model).map_err(unprocessable)
}

#[utoipa::path(
    operation_id = "render_email_template",
    post,
    path = "/api/admin/email-templates/{key}/render",
    tag = "cms-admin",
    summary = "Render an email template with a model",
    description = "Answers the subject, preheader, the HTML in its layout with the CSS inlined, and the text alternative. Values are HTML-escaped. A missing required variable or a value of the wrong type is a 422 naming `model.<name>`. Needs `emails:read`.",
    params(("key" = String, Path, description = "The template's key.")),
    request_body = RenderRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The rendered mail.", body = Rendered),
        Invalid, Unauthenticated, Forbidden, NotFound, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn render_one(
    mut auth: Authorized<resource::Emails, action::Read>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Rendered>> {
    let request: RenderRequest = if body.is_empty() {
        RenderRequest::default()
    } else {
        platform::json::parse(&body)?
    };
    let template = find(&***auth.client(), &key, false)
        .await?
        .ok_or_else(|| not_found(&key))?;
    render_with(&template, &request.model).map(Json)
}

/// A test send: what to render with and where to send it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// The declared variables' examples when absent.
    #[schema(value_type = Option<Object>)]
    model: Option<Map<String, Value>>,
    /// The template's `testRecipients` when absent; at most 10.
    recipients: Option<Vec<String>>,
}

/// How one recipient fared.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RecipientResult {
    recipient: String,
    accepted: bool,
    /// The server's answer when it accepted the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<String>,
    /// The server's refusal, or the failure, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The outcome of a test send.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TestSend {
    /// How many recipients the server accepted the message for.
    sent: i32,
    results: Vec<RecipientResult>,
    /// The template with `lastTested`, `testsSent` and `lastTestResults`.
    template: TemplateView,
}

#[utoipa::path(
    operation_id = "test_email_template",
    post,
    path = "/api/admin/email-templates/{key}/test",
    tag = "cms-admin",
    summary = "Send an email template as a test",
    description = "Renders with `model` (the declared examples by default) and sends one multipart/alternative message to each recipient (the template's `testRecipients` by default; at most 10) over `SMTP_URL`. Records `lastTested`, `testsSent` (+ the number accepted) and `lastTestResults` (per recipient, accepted or the SMTP error). 503 when no SMTP server is configured or it cannot be reached; then nothing is recorded. Audited. Needs `emails:update`.",
    params(("key" = String, Path, description = "The template's key.")),
    request_body = TestRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "What each recipient's server answered.", body = TestSend),
        Invalid, Unauthenticated, Forbidden, NotFound, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn send_test(
    State(state): State<AppState>,
    mut auth: Authorized<resource::Emails, action::Update>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<TestSend>> {
    let request: TestRequest = if body.is_empty() {
        TestRequest::default()
    } else {
        platform::json::parse(&body)?
    };
    let smtp = state.mailer.smtp().ok_or_else(|| {
        ApiError::Unavailable("no SMTP server is configured for test sends: set SMTP_URL".into())
    })?;
    let outcome = auth
        .mutate(&key, async |tx| {
            let current = find(&**tx, &key, true)
                .await?
                .ok_or_else(|| not_found(&key))?;
            let to = match (&request.recipients, &current.test_recipients) {
                (Some(given), _) => recipients("recipients", given)?,
                (None, Some(stored)) => recipients("testRecipients", stored)?,
                (None, None) => Vec::new(),
            };
            if to.is_empty() {
                return Err(ApiError::invalid_field(
                    "recipients",
                    "is required: the template has no testRecipients",
                ));
            }
            let model = match &request.model {
                Some(model) => model.clone(),
                None => variables::example_model(&current.declarations()),
            };
            let rendered = render_with(&current, &model)?;
            smtp.check_reachable()
                .await
                .map_err(ApiError::Unavailable)?;
            let mut results = Vec::with_capacity(to.len());
            for address in &to {
                let sent = smtp.send(address, &rendered).await;
                results.push(RecipientResult {
                    recipient: address.to_string(),
                    accepted: sent.is_ok(),
                    response: sent.as_ref().ok().cloned(),
                    error: sent.err(),
                });
            }
            let sent = i32::try_from(results.iter().filter(|r| r.accepted).count())
                .expect("at most MAX_TEST_RECIPIENTS");
            let now = platform::clock::now_millis();
            let record = json!({
                "sentAt": now.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "server": smtp.server(),
                "subject": rendered.subject,
                "results": results,
            });
            let row = tx
                .query_one(
                    &format!(
                        r#"WITH updated AS (
                             UPDATE "email_templates" SET "lastTested" = $2,
                                 "testsSent" = "testsSent" + $3, "lastTestResults" = $4
                             WHERE "id" = $1 RETURNING *)
                           {}"#,
                        select_template_from("updated")
                    ),
                    &[&current.id, &now, &sent, &record],
                )
                .await
                .map_err(ApiError::internal("recording a test send"))?;
            let after = TemplateView::from_row(&row);
            Ok(Change {
                resource_id: key.clone(),
                before: current.audit_view(),
                after: after.audit_view(),
                output: TestSend {
                    sent,
                    results,
                    template: after,
                },
            })
        })
        .await?;
    Ok(Json(outcome))
}

#[utoipa::path(
    operation_id = "email_template_history",
    get,
    path = "/api/admin/email-templates/{key}/history",
    tag = "cms-admin",
    summary = "The versions of an email template",
    description = "Every successful change (create, update, test send, restore, delete) from the audit trail, newest first, with the template before and after it. Kept after a delete. Needs `emails:read`.",
    params(("key" = String, Path, description = "The template's key."), history::HistoryQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions.", body = history::VersionPage),
        Invalid, Unauthenticated, Forbidden, Unavailable,
    )
)]
async fn history(
    mut auth: Authorized<resource::Emails, action::Read>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    history::list(&***auth.client(), Resource::Emails, &key, query.as_deref())
        .await
        .map(Json)
}

/// The fields of a stored version that a restore brings back; the rest
/// (ids, times, test results) are the row's own.
const RESTORED_FIELDS: &[&str] = &[
    "name",
    "subject",
    "preheader",
    "body",
    "variables",
    "layout",
    "brandColor",
    "headerImage",
    "footerText",
    "active",
    "testRecipients",
];

#[utoipa::path(
    operation_id = "restore_email_template",
    post,
    path = "/api/admin/email-templates/{key}/restore",
    tag = "cms-admin",
    summary = "Restore a version of an email template",
    description = "Applies the version a change left (`state: after`, the default) or found (`before`) as an update, checked as one; a deleted template comes back. The audit row's `after` names the change restored (`restoredFrom`). Needs `emails:update`.",
    params(("key" = String, Path, description = "The template's key.")),
    request_body = RestoreRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The template as restored.", body = TemplateView),
        Invalid, Unauthenticated, Forbidden, NotFound, Conflict, TooLarge, WrongMediaType, Unprocessable, Unavailable,
    )
)]
async fn restore(
    mut auth: Authorized<resource::Emails, action::Update>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<TemplateView>> {
    let restored = auth
        .mutate(&key, async |tx| {
            let request: RestoreRequest = platform::json::parse(&body)?;
            let version = history::version(&**tx, Resource::Emails, &key, &request).await?;
            let mut fields: Map<String, Value> = RESTORED_FIELDS
                .iter()
                .filter_map(|name| Some(((*name).to_owned(), version.get(*name)?.clone())))
                .collect();
            let current = find(&**tx, &key, true).await?;
            let settings = match &current {
                Some(current) => {
                    let update: TemplateUpdate = serde_json::from_value(Value::Object(fields))
                        .map_err(|e| {
                            ApiError::invalid_field(
                                "auditId",
                                format!("names a version that cannot be restored: {e}"),
                            )
                        })?;
                    // Every part of the version is given, so all of it is
                    // checked, as a save would.
                    apply(current, update)?
                }
                None => {
                    fields.insert("key".into(), Value::from(key.clone()));
                    let new: NewTemplate =
                        serde_json::from_value(Value::Object(fields)).map_err(|e| {
                            ApiError::invalid_field(
                                "auditId",
                                format!("names a version that cannot be restored: {e}"),
                            )
                        })?;
                    parse_new(new)?.1
                }
            };
            let after = store(&**tx, &key, current.as_ref(), &settings).await?;
            Ok(Change {
                resource_id: key.clone(),
                before: current
                    .as_ref()
                    .map_or(Value::Null, TemplateView::audit_view),
                after: history::restored(after.audit_view(), &request.audit_id),
                output: after,
            })
        })
        .await?;
    Ok(Json(restored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_under_cms_admin_with_its_own_operation_id() {
        let doc = serde_json::to_value(openapi()).expect("the description serialises");
        let paths = doc["paths"].as_object().expect("paths");
        let mut operation_ids = Vec::new();
        for (path, operations) in paths {
            assert!(path.starts_with(TEMPLATES_PATH), "{path}");
            for (method, operation) in operations.as_object().expect("operations") {
                assert_eq!(operation["tags"], json!(["cms-admin"]), "{method} {path}");
                operation_ids.push(operation["operationId"].as_str().expect("an id").to_owned());
            }
        }
        let count = operation_ids.len();
        operation_ids.sort();
        operation_ids.dedup();
        assert_eq!(operation_ids.len(), count, "{operation_ids:?}");
        assert_eq!(
            count, 9,
            "list, get, create, update, delete, render, test, history, restore"
        );
    }
}
