//! Erasure of one visitor on request (GDPR art. 17): `POST
//! /api/admin/privacy/erasure` and the `erase` command.
//!
//! A person is named by a user id, an email (the `users` rows of that
//! address, compared case-insensitively) or a session id. For a user, the
//! sessions are every session that carried their user id in any table: the
//! events a visitor sent before signing in, in the same session, are theirs
//! too. Their rows are then deleted, or anonymised where the row is shared
//! with other people, in one transaction, and the counts per table are the
//! answer (see [`PERSONAL_DATA`] for what happens to each table).
//!
//! Decisions:
//! - An erasure that matches nobody is answered 200 with zero counts, not
//!   404: a repeat of an erasure whose answer was lost must not look like a
//!   failure, and "we hold nothing on this person" is the answer the
//!   requester is owed. It is audited all the same.
//! - An error group (`error_logs`) is one row per fingerprint, written with
//!   the first reporter's user, session and user agent. A group only they
//!   reported (`count` 1) is deleted; a group others reported too is kept,
//!   since it is the site's bug, not the person's, with its identifying
//!   columns cleared (`userId` and `userAgent` null, `sessionId` the marker
//!   [`ERASED_SESSION`], the column being NOT NULL). Its page, browser and
//!   OS stay: they say where the bug is and name nobody.
//! - Rollups (`metric_snapshots`, `bundle.metric_series`, the error
//!   tallies and hours) hold counts, no person, and stay. So do
//!   `price_predictions` (a question about a route and a price, shared by
//!   everyone who asks it: no user, session or address is stored) and
//!   `bundle.observed_fares` (a fare; its `eventId` is an opaque id of a
//!   fare event, which the erasure deletes with the person's events).
//! - The account itself (`users`) and an admin's grant (`admin_users`)
//!   belong to the site's application, not to visitor analytics: deleting
//!   the account is the application's job (its delete cascades the grant).
//! - The audit trail is append-only; its rows are not deleted. The
//!   person's identifiers in it are replaced by keyed pseudonyms
//!   ([`access::audit::pseudonymise_person`], in the same transaction;
//!   rows chained before that procedure existed are kept and reported). An
//!   erasure without the key (`PRIVACY_PSEUDONYM_KEY`) is refused, 503,
//!   before anything is deleted: half an erasure would look like a whole
//!   one. The erasure's own audit row records which kind of identifier was
//!   given, the counts and the pseudonymisation's report, never the
//!   identifier.
//!
//! The person's rows are found by the contract's indexes where they exist
//! (`analytics_events` by user and by session, `error_logs` by user,
//! `conversion_funnels` by session, `user_cohorts` by its unique user);
//! `performance_metrics` in full, and `conversion_funnels`,
//! `experiment_participations` by user or session (their unique indexes
//! lead with the flag): an index there would be drift for Prisma, and an
//! erasure is rare.
//! Rows written by the intake after the erasure's snapshot (a visitor still
//! browsing while they are erased) are not seen; a repeat erases them.

use std::sync::Arc;

use access::audit::{Entry, Origin, PseudonymReport, Recorder, pseudonymise_person};
use access::pseudonym::{KEY_VAR, parse_key};
use access::rbac::{Action, Resource};
use access::{Authorized, Change, action, resource};
use axum::{Json, body::Bytes, extract::State};
use platform::api_doc::{
    Forbidden, Invalid, TooLarge, Unauthenticated, Unavailable, WrongMediaType,
};
use platform::config::{ConfigError, Env};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::GenericClient;
use utoipa::ToSchema;

use crate::AppState;
use crate::bootstrap::Channel;

/// The `sessionId` of an error group whose reporter was erased.
pub const ERASED_SESSION: &str = "erased";

/// What an erasure does to a table's rows of the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErasure {
    /// The person's rows are deleted.
    Deleted,
    /// Rows only the person is in are deleted; rows shared with others
    /// keep their place with the person's columns cleared.
    DeletedOrAnonymised,
    /// The rows hanging off rows the erasure deletes are deleted with them.
    DeletedWithParent(&'static str),
    /// Append-only: the identifiers are replaced by a keyed pseudonym.
    Pseudonymised,
}

/// A table holding personal data, the columns that hold it, and what an
/// erasure does to its rows.
#[derive(Debug, Clone, Copy)]
pub struct PersonalData {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub on_erasure: OnErasure,
}

/// Every table of the database whose rows name a visitor, with its
/// identifying columns. The erasure covers each (its test checks every
/// text and jsonb column of every table, so a table missing here fails it).
pub const PERSONAL_DATA: &[PersonalData] = &[
    PersonalData {
        table: "analytics_events",
        columns: &[
            "userId",
            "sessionId",
            "url",
            "referrer",
            "userAgent",
            "ipAddress",
            "eventData",
        ],
        on_erasure: OnErasure::Deleted,
    },
    PersonalData {
        table: "conversion_funnels",
        columns: &["userId", "sessionId", "metadata"],
        on_erasure: OnErasure::Deleted,
    },
    PersonalData {
        table: "performance_metrics",
        columns: &[
            "userId",
            "sessionId",
            "url",
            "deviceType",
            "browser",
            "browserVersion",
            "os",
            "connectionType",
        ],
        on_erasure: OnErasure::Deleted,
    },
    PersonalData {
        table: "error_logs",
        columns: &["userId", "sessionId", "userAgent", "url", "browser", "os"],
        on_erasure: OnErasure::DeletedOrAnonymised,
    },
    PersonalData {
        table: "bundle.sentry_events",
        columns: &["eventId", "errorLogId"],
        on_erasure: OnErasure::DeletedWithParent("error_logs"),
    },
    PersonalData {
        table: "experiment_participations",
        columns: &["userId", "sessionId"],
        on_erasure: OnErasure::Deleted,
    },
    PersonalData {
        table: "bundle.experiment_conversions",
        columns: &["participationId", "conversionId"],
        on_erasure: OnErasure::DeletedWithParent("experiment_participations"),
    },
    PersonalData {
        table: "user_cohorts",
        columns: &["userId"],
        on_erasure: OnErasure::Deleted,
    },
    PersonalData {
        table: "audit_logs",
        columns: &["userId", "userEmail", "ipAddress", "userAgent", "changes"],
        on_erasure: OnErasure::Pseudonymised,
    },
];

/// The erasure's settings, read once at cold start: the key of the audit
/// trail's pseudonyms.
#[derive(Clone, Default)]
pub struct ErasureConfig {
    key: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for ErasureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.key.is_some() { "set" } else { "not set" };
        f.debug_struct("ErasureConfig").field("key", &key).finish()
    }
}

impl ErasureConfig {
    /// `PRIVACY_PSEUDONYM_KEY` (hex, at least 32 bytes). Unset, the function
    /// starts and its erasures are refused (503): the other routes need no
    /// key. Set but unusable, the cold start fails naming it.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(hex) = env.optional(KEY_VAR) else {
            return Ok(Self::default());
        };
        let key = parse_key(&hex).map_err(|e| ConfigError {
            variable: KEY_VAR,
            problem: e.to_string(),
        })?;
        Ok(Self {
            key: Some(key.into()),
        })
    }

    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
}

/// Why an erasure cannot run without the key: it must not leave the
/// person's identifiers in the audit trail.
const NO_KEY: &str = "erasure needs PRIVACY_PSEUDONYM_KEY, the key of the audit trail's pseudonyms, and the function has none";

/// Longest user or session id taken (the intake's ids are far shorter).
const MAX_ID_CHARS: usize = 255;
/// Longest email address (RFC 5321's path limit, less the brackets).
const MAX_EMAIL_CHARS: usize = 320;

/// Whom to erase: the same type the audit trail's pseudonymisation takes.
pub use access::audit::Person;

/// The field a person was named by, which the audit row records (the value
/// it does not).
pub fn named_by(person: &Person) -> &'static str {
    match person {
        Person::UserId(_) => "userId",
        Person::Email(_) => "email",
        Person::SessionId(_) => "sessionId",
    }
}

/// Exactly one of the three, checked; errors name the field.
pub fn person(
    user_id: Option<String>,
    email: Option<String>,
    session_id: Option<String>,
) -> Result<Person, (&'static str, String)> {
    let given: Vec<&'static str> = [
        ("userId", user_id.is_some()),
        ("email", email.is_some()),
        ("sessionId", session_id.is_some()),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(field, _)| *field)
    .collect();
    match given.as_slice() {
        [] => {
            return Err((
                "userId",
                "is required: give exactly one of userId, email or sessionId".into(),
            ));
        }
        [_] => {}
        [_, second, ..] => {
            return Err((
                second,
                "give exactly one of userId, email or sessionId".into(),
            ));
        }
    }
    let id = |field: &'static str, value: String| {
        if value.is_empty() || value.chars().count() > MAX_ID_CHARS || value.contains('\0') {
            Err((field, format!("must be 1-{MAX_ID_CHARS} characters")))
        } else {
            Ok(value)
        }
    };
    if let Some(value) = user_id {
        return id("userId", value).map(Person::UserId);
    }
    if let Some(value) = session_id {
        return id("sessionId", value).map(Person::SessionId);
    }
    let email = email.unwrap_or_default();
    let email = email.trim();
    if !email.contains('@') || email.chars().count() > MAX_EMAIL_CHARS || email.contains('\0') {
        return Err((
            "email",
            format!("must be an email address of at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    Ok(Person::Email(email.to_owned()))
}

/// The body of the route: exactly one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErasureRequest {
    user_id: Option<String>,
    email: Option<String>,
    session_id: Option<String>,
}

impl ErasureRequest {
    fn person(self) -> ApiResult<Person> {
        person(self.user_id, self.email, self.session_id)
            .map_err(|(field, rule)| ApiError::invalid_field(field, rule))
    }
}

/// The rows of one table an erasure removed or cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableCount {
    pub table: String,
    pub deleted: u64,
    pub anonymised: u64,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// `userId`, `email` or `sessionId`.
    pub erased_by: String,
    /// Users the identifier named (an email may name none).
    pub users_matched: u64,
    /// Sessions erased: the one given, or every session of the users.
    pub sessions_matched: u64,
    /// Per table of [`PERSONAL_DATA`] except the audit trail, in its order.
    pub tables: Vec<TableCount>,
    /// The audit trail's pseudonymisation, one run per identity (a user
    /// id; an email that names no user; none for a session, which the
    /// trail does not record).
    pub audit_trail: Vec<PseudonymReport>,
}

impl Erasure {
    /// What the audit trail records: counts, and the kind of identifier,
    /// never the identifier.
    pub fn audit_view(&self) -> Value {
        json!(self)
    }

    pub fn deleted(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|t| t.table == table)
            .map_or(0, |t| t.deleted)
    }
}

type Sql = Result<u64, tokio_postgres::Error>;

/// Erases `person` through `client`, a transaction the caller commits with
/// its audit row; their identifiers in the audit trail are replaced by
/// pseudonyms under `key`.
pub async fn erase(
    client: &impl GenericClient,
    person: &Person,
    key: &[u8],
) -> Result<Erasure, anyhow::Error> {
    let users: Vec<String> = match person {
        Person::UserId(id) => vec![id.clone()],
        // No index on lower("email"): one read of the users per erasure.
        Person::Email(email) => client
            .query(
                r#"SELECT "id" FROM "users" WHERE lower("email") = lower($1)"#,
                &[email],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect(),
        Person::SessionId(_) => Vec::new(),
    };
    let sessions: Vec<String> = match person {
        Person::SessionId(id) => vec![id.clone()],
        _ if users.is_empty() => Vec::new(),
        _ => client
            .query(
                r#"SELECT "sessionId" FROM "analytics_events" WHERE "userId" = ANY($1)
                   UNION SELECT "sessionId" FROM "conversion_funnels" WHERE "userId" = ANY($1)
                   UNION SELECT "sessionId" FROM "performance_metrics" WHERE "userId" = ANY($1)
                   UNION SELECT "sessionId" FROM "error_logs" WHERE "userId" = ANY($1)
                   UNION SELECT "sessionId" FROM "experiment_participations" WHERE "userId" = ANY($1)"#,
                &[&users],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect(),
    };
    let delete = async |table: &str| -> Sql {
        // `table` is one of the names below, never input.
        client
            .execute(
                &format!(
                    r#"DELETE FROM "{table}" WHERE "userId" = ANY($1) OR "sessionId" = ANY($2)"#
                ),
                &[&users, &sessions],
            )
            .await
    };
    let analytics_events = delete("analytics_events").await?;
    let conversion_funnels = delete("conversion_funnels").await?;
    let performance_metrics = delete("performance_metrics").await?;

    let deleted_groups: Vec<String> = client
        .query(
            r#"DELETE FROM "error_logs"
               WHERE ("userId" = ANY($1) OR "sessionId" = ANY($2)) AND "count" <= 1
               RETURNING "id""#,
            &[&users, &sessions],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let anonymised_groups = client
        .execute(
            r#"UPDATE "error_logs" SET "userId" = NULL, "sessionId" = $3, "userAgent" = NULL
               WHERE "userId" = ANY($1) OR "sessionId" = ANY($2)"#,
            &[&users, &sessions, &ERASED_SESSION],
        )
        .await?;
    let sentry_events = client
        .execute(
            r#"DELETE FROM "bundle"."sentry_events" WHERE "errorLogId" = ANY($1)"#,
            &[&deleted_groups],
        )
        .await?;

    let participations: Vec<String> = client
        .query(
            r#"DELETE FROM "experiment_participations" WHERE "userId" = ANY($1) OR "sessionId" = ANY($2)
               RETURNING "id""#,
            &[&users, &sessions],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let conversions = client
        .execute(
            r#"DELETE FROM "bundle"."experiment_conversions" WHERE "participationId" = ANY($1)"#,
            &[&participations],
        )
        .await?;
    let cohorts = client
        .execute(
            r#"DELETE FROM "user_cohorts" WHERE "userId" = ANY($1)"#,
            &[&users],
        )
        .await?;

    let identities: Vec<Person> = match person {
        Person::SessionId(_) => Vec::new(),
        Person::Email(given) if users.is_empty() => vec![Person::Email(given.clone())],
        _ => users.iter().cloned().map(Person::UserId).collect(),
    };
    let mut audit_trail = Vec::new();
    for identity in &identities {
        audit_trail.push(pseudonymise_person(client, identity, key).await?);
    }

    let count = |table: &str, deleted: u64, anonymised: u64| TableCount {
        table: table.to_owned(),
        deleted,
        anonymised,
    };
    Ok(Erasure {
        erased_by: named_by(person).to_owned(),
        users_matched: users.len() as u64,
        sessions_matched: sessions.len() as u64,
        tables: vec![
            count("analytics_events", analytics_events, 0),
            count("conversion_funnels", conversion_funnels, 0),
            count("performance_metrics", performance_metrics, 0),
            count("error_logs", deleted_groups.len() as u64, anonymised_groups),
            count("bundle.sentry_events", sentry_events, 0),
            count("experiment_participations", participations.len() as u64, 0),
            count("bundle.experiment_conversions", conversions, 0),
            count("user_cohorts", cohorts, 0),
        ],
        audit_trail,
    })
}

/// What the erasure's audit row names as its target: not the person.
const AUDITED_TARGET: &str = "erasure";

#[utoipa::path(
    operation_id = "erase_person",
    post,
    path = "/api/admin/privacy/erasure",
    tag = "admin",
    summary = "Erase a visitor's data",
    description = "Deletes, in one transaction, the rows of every table that name the person given by exactly one of `userId`, `email` (the site's users of that address) or `sessionId`; for a user, every session that carried their id too. An error group that others reported as well is kept with its reporter's columns cleared. Rollups, which hold no person, stay. Answers the counts per table; nobody matched is a valid answer with zero counts. The person's identifiers in the audit trail are replaced by keyed pseudonyms in the same transaction; without the key (`PRIVACY_PSEUDONYM_KEY`) the erasure is refused with 503 and nothing changes. The audit row records the kind of identifier, the counts and the pseudonymisation's report, never the identifier. Needs `privacy:delete`.",
    request_body = ErasureRequest,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Erased and committed.", body = Erasure),
        Invalid, Unauthenticated, Forbidden, TooLarge, WrongMediaType, Unavailable,
    )
)]
pub async fn erase_person(
    mut auth: Authorized<resource::Privacy, action::Delete>,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<Erasure>> {
    let key = state
        .erasure
        .key()
        .ok_or_else(|| ApiError::Unavailable(NO_KEY.into()))?;
    let erasure = auth
        .mutate(AUDITED_TARGET, async |tx| {
            let request: ErasureRequest = platform::json::parse(&body)?;
            let person = request.person()?;
            let erasure = erase(&**tx, &person, key)
                .await
                .map_err(ApiError::from_cause)?;
            Ok(Change {
                resource_id: AUDITED_TARGET.to_owned(),
                before: Value::Null,
                after: erasure.audit_view(),
                output: erasure,
            })
        })
        .await?;
    tracing::info!(
        erased_by = %erasure.erased_by,
        users = erasure.users_matched,
        sessions = erasure.sessions_matched,
        "person erased"
    );
    Ok(Json(erasure))
}

/// The `erase` command: the same erasure, audited with the channel as the
/// recorded role (as a job's change is).
pub async fn erase_by_job(
    client: &mut deadpool_postgres::Client,
    person: &Person,
    config: &ErasureConfig,
    channel: Channel,
) -> anyhow::Result<Erasure> {
    let key = config.key().ok_or_else(|| anyhow::anyhow!(NO_KEY))?;
    let tx = client.transaction().await?;
    let erasure = erase(&*tx, person, key).await?;
    let role = match channel {
        Channel::Cli => "erase (command line)",
        Channel::Lambda => "erase (direct invoke)",
    };
    let recorder = Recorder {
        user_id: "system".into(),
        email: "system".into(),
        role: role.into(),
    };
    Entry::success(
        &recorder,
        &Origin::default(),
        Action::Delete,
        Resource::Privacy,
        AUDITED_TARGET,
        Value::Null,
        erasure.audit_view(),
    )
    .insert(&*tx)
    .await?;
    tx.commit().await?;
    Ok(erasure)
}
