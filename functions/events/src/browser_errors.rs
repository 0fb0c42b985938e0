//! Browser errors, grouped: one `error_logs` row per open group of the same
//! fingerprint, with `count` occurrences and `timestamp` the last seen.
//!
//! - An occurrence of an open group increments it.
//! - An occurrence of a resolved group reopens it as a regression and says
//!   so in `notes`, keeping who resolved it and when.
//! - Occurrences of one fingerprint are serialised by a transaction-scoped
//!   advisory lock on the fingerprint, so concurrent identical errors never
//!   open two groups. A partial unique index would say the same in the
//!   schema, but the Prisma application writes this table too and would
//!   start failing on it; the lock needs no schema change.
//!
//! Severities arrive in two vocabularies (`error`/`warning`/`info` from the
//! older client, `CRITICAL`/`HIGH`/`NORMAL`/`LOW` from the beacon route) and
//! are stored in one: `critical`, `error`, `warning`, `info`.

use deadpool_postgres::Client as PooledClient;
use platform::{ApiError, clock};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    client::{ClientContext, MAX_URL_CHARS},
    device,
    fields::{MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS, text},
    fingerprint,
};

pub const MAX_MESSAGE_CHARS: usize = 4_000;
pub const MAX_STACK_CHARS: usize = 32 * 1024;
pub const MAX_ERROR_TYPE_CHARS: usize = 128;
pub const MAX_FINGERPRINT_CHARS: usize = 128;

/// Advisory-lock class for error groups (two-int key space, apart from the
/// migrator's bigint key).
const ERROR_GROUP_LOCK_CLASS: i32 = 0x4552_5247; // "ERRG"

/// Both vocabularies in, one out.
pub fn normalise_severity(raw: &str) -> Option<&'static str> {
    Some(match raw.to_ascii_lowercase().as_str() {
        "critical" | "fatal" => "critical",
        "high" | "error" => "error",
        "normal" | "warning" | "warn" => "warning",
        "low" | "info" | "log" | "debug" => "info",
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewError {
    pub message: String,
    pub stack: Option<String>,
    pub error_type: Option<String>,
    pub url: String,
    pub user_id: Option<String>,
    pub session_id: String,
    pub user_agent: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub severity: &'static str,
    pub fingerprint: String,
}

/// The request body [`read_report`] reads, for the API description.
pub mod wire {
    use serde::Deserialize;
    use utoipa::ToSchema;

    /// A browser error, from the site's reporting code.
    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    pub struct ErrorReport {
        #[schema(
            min_length = 1,
            max_length = 4000,
            example = "TypeError: x is undefined"
        )]
        message: String,
        #[schema(min_length = 1, max_length = 128)]
        session_id: String,
        #[schema(max_length = 32768)]
        stack: Option<String>,
        #[schema(max_length = 128)]
        error_type: Option<String>,
        /// Else the `Referer` header; one of the two is required.
        #[schema(max_length = 2048)]
        url: Option<String>,
        /// critical, error, warning or info (or CRITICAL, HIGH, NORMAL, LOW;
        /// fatal, warn, debug); error when absent.
        severity: Option<String>,
        #[schema(max_length = 128)]
        user_id: Option<String>,
        /// Wins over the computed one, as in Sentry.
        #[schema(max_length = 128)]
        fingerprint: Option<String>,
    }
}

pub fn read_report(body: &Value, client: &ClientContext) -> Result<NewError, ApiError> {
    let item: &Map<String, Value> = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid_body", "the body must be a JSON object"))?;
    let message = text(item, "message", "message", MAX_MESSAGE_CHARS, true)?.unwrap_or_default();
    let stack = text(item, "stack", "stack", MAX_STACK_CHARS, false)?;
    let error_type = text(item, "errorType", "errorType", MAX_ERROR_TYPE_CHARS, false)?;
    let severity = match text(item, "severity", "severity", 16, false)? {
        None => "error",
        Some(raw) => normalise_severity(raw).ok_or_else(|| {
            ApiError::invalid_field(
                "severity",
                "must be one of critical, error, warning, info (or CRITICAL, HIGH, NORMAL, LOW)",
            )
        })?,
    };
    let url = text(item, "url", "url", MAX_URL_CHARS, false)?
        .map(str::to_owned)
        .or_else(|| client.page.clone())
        .ok_or_else(|| {
            ApiError::invalid_field("url", "is required when the request has no Referer")
        })?;
    let session_id =
        text(item, "sessionId", "sessionId", MAX_SESSION_ID_CHARS, true)?.unwrap_or_default();
    let fingerprint = match text(
        item,
        "fingerprint",
        "fingerprint",
        MAX_FINGERPRINT_CHARS,
        false,
    )? {
        Some(given) => given.to_owned(),
        None => fingerprint::fingerprint(error_type, message, stack),
    };
    let parsed = client
        .user_agent
        .as_deref()
        .map(device::parse)
        .unwrap_or_default();
    Ok(NewError {
        message: message.to_owned(),
        stack: stack.map(str::to_owned),
        error_type: error_type.map(str::to_owned),
        url,
        user_id: text(item, "userId", "userId", MAX_USER_ID_CHARS, false)?.map(str::to_owned),
        session_id: session_id.to_owned(),
        user_agent: client.user_agent.clone(),
        browser: parsed.browser,
        os: parsed.os,
        severity,
        fingerprint,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// A new group.
    New,
    /// Counted on an open group.
    Grouped,
    /// A resolved group seen again, reopened.
    Regression,
}

/// The group a browser error was counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorRecorded)]
pub struct Recorded {
    pub fingerprint: String,
    pub grouping: Grouping,
}

fn lock_key(fingerprint: &str) -> i32 {
    let digest = Sha256::digest(fingerprint.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Records one occurrence, in a transaction of its own: the lock, the
/// look-up and the write belong together.
pub async fn record(
    client: &mut PooledClient,
    error: &NewError,
) -> Result<Recorded, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let (recorded, _) = record_in(&tx, error).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Records one occurrence inside `tx`, which the caller commits; returns
/// the group and the id of its `error_logs` row.
pub async fn record_in(
    tx: &tokio_postgres::Transaction<'_>,
    error: &NewError,
) -> Result<(Recorded, String), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&ERROR_GROUP_LOCK_CLASS, &lock_key(&error.fingerprint)],
    )
    .await?;
    let now = clock::now_millis();
    // error_logs_fingerprint_timestamp_idx finds the fingerprint's rows;
    // an open group first, else the latest resolved one.
    let existing = tx
        .query_opt(
            r#"SELECT "id", "resolved", "resolvedAt", "resolvedBy" FROM "error_logs"
               WHERE "fingerprint" = $1 ORDER BY "resolved" ASC, "timestamp" DESC LIMIT 1"#,
            &[&error.fingerprint],
        )
        .await?;
    let (grouping, id) = match existing {
        Some(row) if !row.get::<_, bool>(1) => {
            let id: String = row.get(0);
            tx.execute(
                r#"UPDATE "error_logs" SET "count" = "count" + 1, "timestamp" = $2 WHERE "id" = $1"#,
                &[&id, &now],
            )
            .await?;
            (Grouping::Grouped, id)
        }
        Some(row) => {
            let id: String = row.get(0);
            let resolved_at: Option<chrono::NaiveDateTime> = row.get(2);
            let resolved_by: Option<String> = row.get(3);
            let note = format!(
                "Regression: seen again at {} UTC after being resolved{}{}.",
                now.format("%Y-%m-%d %H:%M:%S"),
                resolved_at
                    .map(|t| format!(" at {} UTC", t.format("%Y-%m-%d %H:%M:%S")))
                    .unwrap_or_default(),
                resolved_by
                    .map(|who| format!(" by {who}"))
                    .unwrap_or_default(),
            );
            tx.execute(
                r#"UPDATE "error_logs" SET "resolved" = false, "count" = "count" + 1, "timestamp" = $2,
                       "notes" = CASE WHEN "notes" IS NULL OR "notes" = '' THEN $3 ELSE "notes" || E'\n' || $3 END
                   WHERE "id" = $1"#,
                &[&id, &now, &note],
            )
            .await?;
            (Grouping::Regression, id)
        }
        None => {
            let id = platform::ids::new_id();
            tx.execute(
                r#"INSERT INTO "error_logs" ("id", "message", "stack", "errorType", "url", "userId", "sessionId", "userAgent",
                       "browser", "os", "severity", "fingerprint", "count", "timestamp")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13)"#,
                &[
                    &id,
                    &error.message,
                    &error.stack,
                    &error.error_type,
                    &error.url,
                    &error.user_id,
                    &error.session_id,
                    &error.user_agent,
                    &error.browser,
                    &error.os,
                    &error.severity,
                    &error.fingerprint,
                    &now,
                ],
            )
            .await?;
            (Grouping::New, id)
        }
    };
    Ok((
        Recorded {
            fingerprint: error.fingerprint.clone(),
            grouping,
        },
        id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_severity_vocabularies_map_to_one() {
        for (raw, stored) in [
            ("CRITICAL", "critical"),
            ("HIGH", "error"),
            ("NORMAL", "warning"),
            ("LOW", "info"),
            ("error", "error"),
            ("warning", "warning"),
            ("info", "info"),
        ] {
            assert_eq!(normalise_severity(raw), Some(stored), "{raw}");
        }
        assert_eq!(normalise_severity("apocalyptic"), None);
    }
}
