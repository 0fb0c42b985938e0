//! The audit trail: one row per admin change, written in the change's own
//! transaction, one row per refused attempt, and verification of the hash
//! chain the database keeps over every row.
//!
//! Handlers do not call [`Entry::insert`] themselves: they go through
//! [`crate::Authorized::mutate`], which opens the transaction, runs the
//! change, writes the row last (the chain trigger serialises writers from
//! that insert to their commit) and commits both, or records the refusal.

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::rbac::{Action, Resource};

/// Longest `errorMessage` and `userAgent` kept; the rest is cut.
const MAX_TEXT_CHARS: usize = 1000;
/// Longest id, email, role, name or address kept.
const MAX_KEY_CHARS: usize = 255;
/// At most this many problems are listed by a verification; counts stay exact.
pub const MAX_LISTED_PROBLEMS: usize = 100;

/// Who acted, as the row records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorder {
    pub user_id: String,
    pub email: String,
    pub role: String,
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// One `audit_logs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub recorder: Recorder,
    pub origin: Origin,
    pub action: String,
    pub resource: String,
    pub resource_id: String,
    pub changes: Option<Value>,
    pub success: bool,
    pub error_message: Option<String>,
}

impl Entry {
    fn new(
        recorder: &Recorder,
        origin: &Origin,
        action: Action,
        resource: Resource,
        resource_id: impl Into<String>,
    ) -> Self {
        Self {
            recorder: recorder.clone(),
            origin: origin.clone(),
            action: action.as_str().to_owned(),
            resource: resource.as_str().to_owned(),
            resource_id: resource_id.into(),
            changes: None,
            success: false,
            error_message: None,
        }
    }

    /// A change, with what it changed from and to (secrets redacted).
    pub fn success(
        recorder: &Recorder,
        origin: &Origin,
        action: Action,
        resource: Resource,
        resource_id: impl Into<String>,
        before: Value,
        after: Value,
    ) -> Self {
        Self {
            changes: Some(serde_json::json!({
                "before": redact(before),
                "after": redact(after),
            })),
            success: true,
            ..Self::new(recorder, origin, action, resource, resource_id)
        }
    }

    /// A refused attempt, and why.
    pub fn refused(
        recorder: &Recorder,
        origin: &Origin,
        action: Action,
        resource: Resource,
        resource_id: impl Into<String>,
        reason: &str,
    ) -> Self {
        Self {
            error_message: Some(cut(reason)),
            ..Self::new(recorder, origin, action, resource, resource_id)
        }
    }

    /// Writes the row through `client`: inside the change's transaction for
    /// a success, in autocommit for a refusal.
    ///
    /// Every text is made storable first (NUL replaced, lengths cut), and so
    /// are the strings and keys of `changes`: much of a row is chosen by
    /// whoever is refused (a grant body's email, a JSON key, a user agent),
    /// and a row must never fail to be written because of what an attacker
    /// sent.
    pub async fn insert(
        &self,
        client: &impl GenericClient,
    ) -> Result<String, tokio_postgres::Error> {
        let id = platform::ids::new_id();
        let short = |text: &str| storable(text, MAX_KEY_CHARS);
        let long = |text: &str| storable(text, MAX_TEXT_CHARS);
        client
            .execute(
                r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource",
                       "resourceId", "changes", "ipAddress", "userAgent", "requestId", "success", "errorMessage", "timestamp")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
                &[
                    &id,
                    &short(&self.recorder.user_id),
                    &short(&self.recorder.email),
                    &short(&self.recorder.role),
                    &short(&self.action),
                    &short(&self.resource),
                    &short(&self.resource_id),
                    &self.changes.clone().map(storable_json),
                    &self.origin.ip_address.as_deref().map(short),
                    &self.origin.user_agent.as_deref().map(long),
                    &self.origin.request_id.as_deref().map(short),
                    &self.success,
                    &self.error_message.as_deref().map(long),
                    &platform::clock::now_millis(),
                ],
            )
            .await?;
        Ok(id)
    }
}

/// `text` as PostgreSQL text can hold it: U+0000 becomes U+FFFD (the
/// replacement character, visibly not what was sent), and at most `max`
/// characters are kept.
fn storable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

/// `value` with every string and key made storable (see [`storable`];
/// values are not cut: a change's before and after are kept whole).
fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) if text.contains('\0') => Value::String(text.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), storable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

fn cut(text: &str) -> String {
    storable(text, MAX_TEXT_CHARS)
}

/// Keys whose values never enter the audit trail.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace(['_', '-'], "");
    [
        "password",
        "secret",
        "token",
        "apikey",
        "credential",
        "privatekey",
        "smtppass",
    ]
    .iter()
    .any(|needle| key.contains(needle))
}

/// `value` with the values of secret-looking keys replaced, at any depth.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(&k) && !v.is_null() {
                        Value::from("[redacted]")
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// What is wrong with one link of the chain or one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The row's content no longer hashes to its link: it was changed.
    Altered { seq: i64, audit_id: String },
    /// The link's row is gone: it was deleted.
    Missing { seq: i64, audit_id: String },
    /// The link does not follow the one before it: a link was removed,
    /// reordered or spliced in.
    BrokenLink {
        seq: i64,
        audit_id: String,
        expected_prev_hash: String,
        found_prev_hash: String,
    },
    /// A row without a link: written with the chain trigger disabled.
    Unchained { audit_id: String },
    /// The chain starts over from the genesis hash after its first
    /// sequence number: the links before were removed together (the trail
    /// was truncated with its triggers disabled), and what remains verifies
    /// on its own. `first_seq` is the number the chain started with.
    Restarted {
        seq: i64,
        audit_id: String,
        first_seq: i64,
    },
    /// A row whose timestamp is not when it entered the chain: back- or
    /// forward-dated, or slipped in among the migration's backfill.
    OutOfOrder {
        seq: i64,
        audit_id: String,
        #[schema(value_type = String)]
        timestamp: NaiveDateTime,
        #[schema(value_type = String)]
        chained_at: NaiveDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub intact: bool,
    /// Links checked.
    pub links: u64,
    /// Problems found in all; at most [`MAX_LISTED_PROBLEMS`] are listed.
    pub problem_count: u64,
    pub problems: Vec<Problem>,
    /// The last link's hash: recorded somewhere else (a ticket, a log
    /// archive), it also proves the chain was not cut short since.
    pub head_hash: Option<String>,
    /// The sequence range the verification covered, first to head: kept
    /// beside earlier reports, it shows a trail that shrank.
    pub first_seq: Option<i64>,
    pub head_seq: Option<i64>,
}

/// How far a row's own timestamp (the writer's clock) may be from the
/// moment the database chained it (the server's clock): clock drift between
/// the Lambda, the Prisma application and the database, plus the time from
/// the insert to the trigger in a long transaction.
pub const MAX_CLOCK_DRIFT: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Recomputes the whole chain in one snapshot. Rows are streamed, so memory
/// stays flat however long the trail is.
pub async fn verify(
    client: &mut deadpool_postgres::Client,
) -> Result<Verification, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // The identity's own first value: a genesis link numbered after it is
    // a chain that started over.
    let first_seq: i64 = tx
        .query_one(
            r#"SELECT s."seqstart" FROM pg_catalog.pg_sequence s
               WHERE s."seqrelid" = pg_get_serial_sequence('"audit_trail"."chain"', 'seq')::regclass"#,
            &[],
        )
        .await?
        .get(0);
    let links = tx
        .query_raw(
            r#"SELECT c."seq", c."auditId", c."prevHash", c."hash",
                      CASE WHEN a."id" IS NULL THEN NULL
                           ELSE "audit_trail"."link"(c."prevHash", to_jsonb(a), c."chainedAt", c."backfilled") END,
                      a."timestamp", (c."chainedAt" AT TIME ZONE 'UTC'), c."backfilled"
               FROM "audit_trail"."chain" c LEFT JOIN "audit_logs" a ON a."id" = c."auditId"
               ORDER BY c."seq""#,
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await?;
    futures_util::pin_mut!(links);
    let mut report = Verification {
        intact: true,
        links: 0,
        problem_count: 0,
        problems: Vec::new(),
        head_hash: None,
        first_seq: None,
        head_seq: None,
    };
    let note = |report: &mut Verification, problem: Problem| {
        report.problem_count += 1;
        if report.problems.len() < MAX_LISTED_PROBLEMS {
            report.problems.push(problem);
        }
    };
    let mut previous = GENESIS.to_owned();
    let mut live_seen = false;
    let mut last_backfilled: Option<NaiveDateTime> = None;
    while let Some(row) = links.try_next().await? {
        let seq: i64 = row.get(0);
        let audit_id: String = row.get(1);
        let prev_hash: String = row.get(2);
        let hash: String = row.get(3);
        let recomputed: Option<String> = row.get(4);
        let timestamp: Option<NaiveDateTime> = row.get(5);
        let chained_at: NaiveDateTime = row.get(6);
        let backfilled: bool = row.get(7);
        report.links += 1;
        if let Some(timestamp) = timestamp {
            // A live row is chained as it is written, so its timestamp is
            // the chaining time give or take clock drift; rows chained by the
            // migration come first, oldest first.
            let misdated = if backfilled {
                live_seen || last_backfilled.is_some_and(|last| timestamp < last)
            } else {
                (timestamp - chained_at).abs() > MAX_CLOCK_DRIFT
            };
            if misdated {
                note(
                    &mut report,
                    Problem::OutOfOrder {
                        seq,
                        audit_id: audit_id.clone(),
                        timestamp,
                        chained_at,
                    },
                );
            }
            if backfilled {
                last_backfilled = Some(timestamp);
            }
        }
        live_seen |= !backfilled;
        report.first_seq.get_or_insert(seq);
        if prev_hash == GENESIS && seq != first_seq {
            note(
                &mut report,
                Problem::Restarted {
                    seq,
                    audit_id: audit_id.clone(),
                    first_seq,
                },
            );
        } else if prev_hash != previous {
            note(
                &mut report,
                Problem::BrokenLink {
                    seq,
                    audit_id: audit_id.clone(),
                    expected_prev_hash: previous.clone(),
                    found_prev_hash: prev_hash,
                },
            );
        }
        match recomputed {
            None => note(&mut report, Problem::Missing { seq, audit_id }),
            Some(recomputed) if recomputed != hash => {
                note(&mut report, Problem::Altered { seq, audit_id })
            }
            Some(_) => {}
        }
        report.head_seq = Some(seq);
        previous = hash;
    }
    report.head_hash = report.head_seq.map(|_| previous.clone());
    let unchained = tx
        .query(
            r#"SELECT a."id" FROM "audit_logs" a
               WHERE NOT EXISTS (SELECT 1 FROM "audit_trail"."chain" c WHERE c."auditId" = a."id")
               ORDER BY a."timestamp", a."id""#,
            &[],
        )
        .await?;
    for row in unchained {
        note(
            &mut report,
            Problem::Unchained {
                audit_id: row.get(0),
            },
        );
    }
    tx.commit().await?;
    report.intact = report.problem_count == 0;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let redacted = redact(json!({
            "name": "welcome",
            "smtp": {"apiKey": "k-123", "host": "mail"},
            "users": [{"password": "hunter2", "email": "a@b"}],
            "refresh_token": null,
        }));
        assert_eq!(redacted["smtp"]["apiKey"], "[redacted]");
        assert_eq!(redacted["smtp"]["host"], "mail");
        assert_eq!(redacted["users"][0]["password"], "[redacted]");
        assert_eq!(redacted["users"][0]["email"], "a@b");
        assert_eq!(redacted["refresh_token"], Value::Null);
        assert_eq!(redacted["name"], "welcome");
    }

    #[test]
    fn a_nul_in_a_changed_value_or_key_is_replaced_at_any_depth() {
        let stored = storable_json(json!({
            "name\u{0}": "a\u{0}b",
            "items": [{"note": "\u{0}"}, "clean", 7],
        }));
        assert_eq!(
            stored,
            json!({
                "name\u{FFFD}": "a\u{FFFD}b",
                "items": [{"note": "\u{FFFD}"}, "clean", 7],
            })
        );
    }

    // Verification against a real database (crates/testkit). The chain is
    // written by hand where a test needs links the trigger would not make
    // (the migration's backfill, chosen chaining times): each row is
    // inserted with the triggers off and then linked to the head with the
    // database's own `audit_trail.link`, so every link is genuine and only
    // the dates under test vary.

    async fn trail() -> (testkit::TestDatabase, tokio_postgres::Client) {
        let db = testkit::TestDatabase::migrated().await;
        let client = db.connect().await;
        (db, client)
    }

    /// An audit row dated `timestamp` (UTC), chained at `chained_at`,
    /// by the migration's backfill when `backfilled`, else as a live row.
    async fn chain(
        client: &tokio_postgres::Client,
        id: &str,
        timestamp: &str,
        chained_at: &str,
        backfilled: bool,
    ) {
        client
            .batch_execute(&format!(
                r#"BEGIN;
                   SET LOCAL session_replication_role = replica;
                   INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "timestamp")
                   VALUES ('{id}', 'app', 'app@example.com', 'admin', 'update', 'deals', 'deal-1', '{timestamp}');
                   COMMIT;
                   INSERT INTO "audit_trail"."chain" ("auditId", "prevHash", "hash", "chainedAt", "backfilled")
                   SELECT a."id", h."prev", "audit_trail"."link"(h."prev", to_jsonb(a), '{chained_at}+00', {backfilled}),
                          '{chained_at}+00', {backfilled}
                   FROM "audit_logs" a,
                        (SELECT coalesce((SELECT "hash" FROM "audit_trail"."chain" ORDER BY "seq" DESC LIMIT 1),
                                         repeat('0', 64)) AS "prev") h
                   WHERE a."id" = '{id}';"#
            ))
            .await
            .unwrap_or_else(|e| panic!("chaining {id}: {e}"));
    }

    async fn verified(db: &testkit::TestDatabase) -> Verification {
        let pool = platform::db::pool_for(
            &db.settings(),
            1,
            std::time::Duration::from_secs(10),
            platform::db::Checkout::Verified,
        )
        .expect("pool");
        let mut client = pool.get().await.expect("connection");
        verify(&mut client).await.expect("verify")
    }

    /// The migration ran on 2025-06-01; the rows it chained are older.
    const MIGRATED_AT: &str = "2025-06-01 00:00:00";

    fn out_of_order_ids(report: &Verification) -> Vec<&str> {
        report
            .problems
            .iter()
            .map(|problem| match problem {
                Problem::OutOfOrder { audit_id, .. } => audit_id.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn backfilled_rows_in_timestamp_order_verify_intact() {
        let (db, client) = trail().await;
        chain(&client, "old-1", "2025-01-01 00:00:00", MIGRATED_AT, true).await;
        chain(&client, "old-2", "2025-01-02 00:00:00", MIGRATED_AT, true).await;
        chain(&client, "old-3", "2025-01-03 00:00:00", MIGRATED_AT, true).await;
        let report = verified(&db).await;
        assert!(report.intact, "{report:?}");
        assert_eq!(report.links, 3);
    }

    #[tokio::test]
    async fn backfilled_rows_sharing_a_timestamp_verify_intact() {
        let (db, client) = trail().await;
        chain(&client, "same-a", "2025-01-01 00:00:00", MIGRATED_AT, true).await;
        chain(&client, "same-b", "2025-01-01 00:00:00", MIGRATED_AT, true).await;
        let report = verified(&db).await;
        assert!(report.intact, "{report:?}");
    }

    #[tokio::test]
    async fn a_backfilled_row_older_than_the_one_before_it_is_out_of_order() {
        let (db, client) = trail().await;
        chain(&client, "newer", "2025-01-02 00:00:00", MIGRATED_AT, true).await;
        chain(&client, "older", "2025-01-01 00:00:00", MIGRATED_AT, true).await;
        assert_eq!(out_of_order_ids(&verified(&db).await), ["older"]);
    }

    #[tokio::test]
    async fn a_backfilled_row_after_a_live_row_is_out_of_order() {
        let (db, client) = trail().await;
        chain(&client, "live", MIGRATED_AT, MIGRATED_AT, false).await;
        chain(&client, "late", "2025-06-02 00:00:00", MIGRATED_AT, true).await;
        assert_eq!(out_of_order_ids(&verified(&db).await), ["late"]);
    }

    #[tokio::test]
    async fn a_live_row_dated_exactly_the_allowed_drift_from_its_chaining_is_in_order() {
        let (db, client) = trail().await;
        chain(&client, "ahead", "2025-06-01 00:05:00", MIGRATED_AT, false).await;
        chain(
            &client,
            "behind",
            "2025-06-01 00:00:00",
            "2025-06-01 00:05:00",
            false,
        )
        .await;
        let report = verified(&db).await;
        assert!(report.intact, "{report:?}");
    }

    #[tokio::test]
    async fn a_live_row_dated_a_millisecond_beyond_the_allowed_drift_is_out_of_order() {
        let (db, client) = trail().await;
        chain(
            &client,
            "ahead",
            "2025-06-01 00:05:00.001",
            MIGRATED_AT,
            false,
        )
        .await;
        assert_eq!(out_of_order_ids(&verified(&db).await), ["ahead"]);
    }

    #[tokio::test]
    async fn a_verification_lists_at_most_the_limit_of_problems_but_counts_them_all() {
        let (db, client) = trail().await;
        let over = MAX_LISTED_PROBLEMS + 1;
        client
            .batch_execute(&format!(
                r#"BEGIN;
                   SET LOCAL session_replication_role = replica;
                   INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
                   SELECT 'unchained-' || i, 'app', 'app@example.com', 'admin', 'update', 'deals', 'deal-1'
                   FROM generate_series(1, {over}) i;
                   COMMIT;"#
            ))
            .await
            .expect("unchained rows");
        let report = verified(&db).await;
        assert_eq!(report.problem_count, over as u64);
        assert_eq!(report.problems.len(), MAX_LISTED_PROBLEMS);
        assert!(!report.intact);
    }
}
