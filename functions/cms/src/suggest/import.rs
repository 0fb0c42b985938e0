//! `POST /api/admin/search-suggestions/import`: many suggestions at once,
//! all or nothing.
//!
//! - A JSON array of suggestions (the create body), or CSV (`text/csv`)
//!   with a header row naming columns among `query`, `type`, `code`,
//!   `name`, `country`, `popularity` and `metadata` (a JSON object); an
//!   empty cell is an absent field.
//! - Every row is checked as a create is, and a row repeating an earlier
//!   row's `query` is refused. If any row is refused, nothing is stored
//!   and the answer is a 422 listing the refused rows (up to
//!   [`MAX_REPORTED`]) by CSV line number or JSON index, with the field
//!   and the rule.
//! - Rows are upserted by `query`: a new key is inserted, a known one
//!   updated with the row's fields (an absent `code`, `country` or
//!   `metadata` clears it: the row describes the whole suggestion), except
//!   `popularity`, which stays unless the row gives one (it holds the
//!   counted searches).
//! - At most [`MAX_IMPORT_BYTES`] and [`MAX_IMPORT_ROWS`] rows (413).
//! - One audit row for the import, with the counts in `after`.

use access::{Authorized, Change, action, resource};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use platform::api_doc::{
    Forbidden, Invalid, TooLarge, Unauthenticated, Unavailable, WrongMediaType,
};
use platform::{ApiError, ApiResult};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa::ToSchema;

use super::fields::{self, Checked, NewSuggestion};
use crate::AppState;

/// The largest import body: 50,000 rows of a few dozen bytes each, with
/// room to spare.
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_IMPORT_ROWS: usize = 50_000;
/// Refused rows listed in a report; the count says how many there were.
pub const MAX_REPORTED: usize = 1000;

const CSV_COLUMNS: &[&str] = &[
    "query",
    "type",
    "code",
    "name",
    "country",
    "popularity",
    "metadata",
];

/// One refused row.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRow {
    /// The CSV line (the header is line 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    /// The position in the JSON array, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    field: Option<String>,
    message: String,
}

/// The answer to an import with refused rows: nothing was stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRefused {
    #[schema(value_type = Object)]
    error: Value,
    /// How many rows were refused.
    rejected_count: usize,
    /// The first refused rows, in order.
    rejected: Vec<RejectedRow>,
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    rows: usize,
    inserted: usize,
    updated: usize,
}

/// Where a row was in the body.
#[derive(Debug, Clone, Copy)]
enum Place {
    Line(u64),
    Index(usize),
}

impl Place {
    fn reject(self, error: &ApiError) -> RejectedRow {
        let (line, index) = match self {
            Place::Line(line) => (Some(line), None),
            Place::Index(index) => (None, Some(index)),
        };
        RejectedRow {
            line,
            index,
            field: error.field().map(str::to_owned),
            message: error.to_string(),
        }
    }
}

fn too_many_rows() -> ApiError {
    ApiError::rejected(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("an import takes at most {MAX_IMPORT_ROWS} rows: split the file"),
    )
}

/// The rows of a body, each parsed or refused.
type Rows = Vec<(Place, ApiResult<NewSuggestion>)>;

/// The body's format and rows.
fn rows(headers: &HeaderMap, body: &[u8]) -> ApiResult<(&'static str, Rows)> {
    match platform::http::media_type(headers).as_deref() {
        Some("text/csv") => csv_rows(body).map(|rows| ("csv", rows)),
        _ => json_rows(body).map(|rows| ("json", rows)),
    }
}

fn json_rows(body: &[u8]) -> ApiResult<Rows> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(None, e))?;
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "an import is a JSON array of suggestions (or CSV sent as text/csv)",
        ));
    };
    if items.len() > MAX_IMPORT_ROWS {
        return Err(too_many_rows());
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let parsed = serde_json::to_vec(&item)
                .map_err(ApiError::internal("reading an import row"))
                .and_then(|bytes| platform::json::parse::<NewSuggestion>(&bytes));
            (Place::Index(index), parsed)
        })
        .collect())
}

fn csv_rows(body: &[u8]) -> ApiResult<Rows> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid_field("header", format!("is not readable CSV: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut columns: HashMap<&str, usize> = HashMap::new();
    for (at, name) in header.iter().enumerate() {
        let Some(known) = CSV_COLUMNS.iter().find(|c| **c == name) else {
            return Err(ApiError::invalid_field(
                "header",
                format!(
                    "names an unknown column {name:?}: the columns are {}",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        };
        if columns.insert(known, at).is_some() {
            return Err(ApiError::invalid_field(
                "header",
                format!("names the column {name:?} twice"),
            ));
        }
    }
    for required in ["type", "name"] {
        if !columns.contains_key(required) {
            return Err(ApiError::invalid_field(
                "header",
                format!("must name the column {required:?}"),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        if rows.len() == MAX_IMPORT_ROWS {
            return Err(too_many_rows());
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                rows.push((
                    Place::Line(line),
                    Err(ApiError::invalid_field(
                        "row",
                        format!("is not readable CSV: {error}"),
                    )),
                ));
                // A broken record (a quote never closed) can swallow the
                // rest of the file: the first such error is reported alone.
                if matches!(
                    error.kind(),
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                ) {
                    continue;
                }
                break;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |column: &str| {
            columns
                .get(column)
                .and_then(|&at| record.get(at))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
        };
        let parsed = (|| -> ApiResult<NewSuggestion> {
            let popularity = cell("popularity")
                .map(|p| {
                    p.parse::<i64>().map_err(|_| {
                        ApiError::invalid_field(
                            "popularity",
                            "must be a whole number from 0 to 2147483647",
                        )
                    })
                })
                .transpose()?;
            let metadata = cell("metadata")
                .map(|m| {
                    serde_json::from_str::<Value>(&m).map_err(|e| {
                        ApiError::invalid_field("metadata", format!("must be a JSON object: {e}"))
                    })
                })
                .transpose()?;
            Ok(NewSuggestion {
                query: cell("query"),
                kind: cell("type").unwrap_or_default(),
                code: cell("code"),
                name: cell("name").unwrap_or_default(),
                country: cell("country"),
                popularity,
                metadata,
            })
        })();
        rows.push((Place::Line(line), parsed));
    }
    Ok(rows)
}

/// Every row checked; the refused ones reported.
fn check_all(
    rows: Vec<(Place, ApiResult<NewSuggestion>)>,
) -> (Vec<Checked>, Vec<RejectedRow>, usize) {
    let mut accepted = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    let mut refused = 0;
    let mut seen: HashMap<String, Place> = HashMap::new();
    for (place, parsed) in rows {
        let checked = parsed
            .and_then(|new| fields::check(&new))
            .and_then(|checked| match seen.insert(checked.query.clone(), place) {
                Some(Place::Line(first)) => Err(ApiError::invalid_field(
                    "query",
                    format!("repeats the query {:?} of line {first}", checked.query),
                )),
                Some(Place::Index(first)) => Err(ApiError::invalid_field(
                    "query",
                    format!("repeats the query {:?} of row {first}", checked.query),
                )),
                None => Ok(checked),
            });
        match checked {
            Ok(checked) => accepted.push(checked),
            Err(error) => {
                refused += 1;
                if rejected.len() < MAX_REPORTED {
                    rejected.push(place.reject(&error));
                }
            }
        }
    }
    (accepted, rejected, refused)
}

/// Inserts or updates by `query`; `popularity` only where given.
const UPSERT: &str = r#"
    WITH given AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::jsonb[])
            AS g("id", "query", "type", "code", "name", "country", "popularity", "metadata")
    )
    INSERT INTO "search_suggestions" AS s ("id", "query", "type", "code", "name", "country",
        "popularity", "metadata", "createdAt", "updatedAt")
    SELECT "id", "query", "type", "code", "name", "country", coalesce("popularity", 0), "metadata", $9, $9
    FROM given
    ON CONFLICT ("query") DO UPDATE SET "type" = EXCLUDED."type", "code" = EXCLUDED."code",
        "name" = EXCLUDED."name", "country" = EXCLUDED."country", "metadata" = EXCLUDED."metadata",
        "updatedAt" = EXCLUDED."updatedAt",
        "popularity" = coalesce((SELECT g."popularity" FROM given g WHERE g."query" = EXCLUDED."query"), s."popularity")
    RETURNING (xmax = 0)"#;

#[utoipa::path(
    operation_id = "import_search_suggestions",
    post,
    path = "/api/admin/search-suggestions/import",
    tag = "cms-admin",
    summary = "Import search suggestions (JSON or CSV), all or nothing",
    description = "A JSON array of suggestions, or CSV (`text/csv`) with a header row naming columns among `query`, `type`, `code`, `name`, `country`, `popularity`, `metadata` (a JSON object). Rows are upserted by `query` (derived as on create when absent); `popularity` stays unless given. If any row is refused, nothing is stored and the 422 lists the refused rows by CSV line or JSON index, with the field. At most 5 MiB and 50,000 rows (413). One audit row with the counts. Needs `suggestions:create`.",
    request_body(content(
        (Vec<super::fields::NewSuggestion> = "application/json"),
        (String = "text/csv"),
    )),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Stored: the counts.", body = ImportOutcome),
        (status = 422, description = "Refused rows; nothing stored.", body = ImportRefused),
        Invalid, Unauthenticated, Forbidden, TooLarge, WrongMediaType, Unavailable,
    )
)]
pub async fn import(
    State(state): State<AppState>,
    mut auth: Authorized<resource::Suggestions, action::Create>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut report: Option<ImportRefused> = None;
    let outcome = auth
        .mutate("import", async |tx| {
            let (format, rows) = rows(&headers, &body)?;
            let total = rows.len();
            let (accepted, rejected, refused) = check_all(rows);
            if refused > 0 {
                let summary = format!(
                    "{refused} of {total} rows refused; nothing stored (first: {})",
                    rejected.first().map_or(String::new(), |r| r.message.clone())
                );
                let error = ApiError::Unprocessable {
                    code: "invalid_rows",
                    message: summary,
                    field: Some("rows".into()),
                };
                report = Some(ImportRefused {
                    error: json!({"code": "invalid_rows", "message": error.to_string(), "field": "rows"}),
                    rejected_count: refused,
                    rejected,
                });
                return Err(error);
            }
            if accepted.is_empty() {
                return Err(ApiError::invalid_field("rows", "must hold at least one suggestion"));
            }
            let ids: Vec<String> = accepted.iter().map(|_| platform::ids::new_id()).collect();
            let queries: Vec<&str> = accepted.iter().map(|c| c.query.as_str()).collect();
            let kinds: Vec<&str> = accepted.iter().map(|c| c.kind.as_str()).collect();
            let codes: Vec<Option<&str>> = accepted.iter().map(|c| c.code.as_deref()).collect();
            let names: Vec<&str> = accepted.iter().map(|c| c.name.as_str()).collect();
            let countries: Vec<Option<&str>> =
                accepted.iter().map(|c| c.country.as_deref()).collect();
            let popularities: Vec<Option<i32>> = accepted.iter().map(|c| c.popularity).collect();
            let metadata: Vec<Option<&Value>> =
                accepted.iter().map(|c| c.metadata.as_ref()).collect();
            let inserted: Vec<bool> = tx
                .query(
                    UPSERT,
                    &[
                        &ids,
                        &queries,
                        &kinds,
                        &codes,
                        &names,
                        &countries,
                        &popularities,
                        &metadata,
                        &platform::clock::now_millis(),
                    ],
                )
                .await
                .map_err(ApiError::internal("importing suggestions"))?
                .iter()
                .map(|row| row.get(0))
                .collect();
            let outcome = ImportOutcome {
                rows: total,
                inserted: inserted.iter().filter(|i| **i).count(),
                updated: inserted.iter().filter(|i| !**i).count(),
            };
            Ok(Change {
                resource_id: "import".into(),
                before: Value::Null,
                after: json!({
                    "format": format,
                    "rows": outcome.rows,
                    "inserted": outcome.inserted,
                    "updated": outcome.updated,
                }),
                output: outcome,
            })
        })
        .await;
    match (outcome, report) {
        (Ok(outcome), _) => {
            state.suggestions.changed().await;
            Ok(Json(outcome).into_response())
        }
        (Err(_), Some(report)) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(report)).into_response())
        }
        (Err(error), None) => Err(error),
    }
}
