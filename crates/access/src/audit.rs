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
use platform::json::storable;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

pub use crate::pseudonym::{Person, PseudonymReport, pseudonymise_person};
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

/// `value` with every string and key made storable (see
/// [`platform::json::storable`];
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
    /// The checkpoint a verification started from no longer matches the
    /// link it names: the chain was changed behind it.
    CheckpointMismatch { seq: i64, expected_hash: String },
    /// The chain starts over from the genesis hash after its first
    /// sequence number: the links before were removed together (the trail
    /// was truncated with its triggers disabled), and what remains verifies
    /// on its own. `first_seq` is the number the chain started with.
    Restarted {
        seq: i64,
        audit_id: String,
        first_seq: i64,
    },
    /// A record of the pseudonymisation procedure
    /// (`audit_trail.pseudonymisations`) that no longer hashes to its place
    /// in the records' chain: changed, removed or spliced in. `seq` is the
    /// record's.
    PseudonymisationAltered { seq: i64, audit_id: String },
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
    /// The link the verification started after: 0 from the genesis, else a
    /// checkpoint's.
    pub from_seq: i64,
    /// Whether it reached the head; when not, the next verification (or
    /// the next slice of the pass) goes on from `headSeq`.
    pub complete: bool,
    /// The full re-verification this was a slice of.
    pub pass: Option<String>,
}

/// How far a row's own timestamp (the writer's clock) may be from the
/// moment the database chained it (the server's clock): clock drift between
/// the Lambda, the Prisma application and the database, plus the time from
/// the insert to the trigger in a long transaction.
pub const MAX_CLOCK_DRIFT: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Recomputes the whole chain in one snapshot, from the genesis to the
/// head, and looks for rows without a link at any time. Rows are streamed,
/// so memory stays flat however long the trail is; time does not (about
/// 21,000 links/s measured), which is what [`verify_incremental`] and
/// [`verify_slice`] are for. Records no checkpoint.
pub async fn verify(
    client: &mut deadpool_postgres::Client,
) -> Result<Verification, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let report = walk(&*tx, Start::genesis(), None, true).await?;
    tx.commit().await?;
    Ok(report)
}

/// Verifies what was appended since the furthest intact checkpoint, at
/// most `max_links` links of it, and records a checkpoint at the link it
/// reached. The checkpoint it starts from is itself
/// checked against the link it names. Rows written without a link (with
/// the triggers off) are looked for among those dated since that
/// checkpoint was made, give or take [`MAX_CLOCK_DRIFT`]: a back-dated one
/// is found by a full pass ([`verify_slice`]).
pub async fn verify_incremental(
    client: &mut deadpool_postgres::Client,
    max_links: i64,
) -> Result<Verification, tokio_postgres::Error> {
    let tx = snapshot(client).await?;
    let newest = tx
        .query_opt(
            r#"SELECT "seq", "hash", ("verifiedAt" AT TIME ZONE 'UTC') FROM "audit_trail"."checkpoints"
               WHERE "intact" ORDER BY "seq" DESC, "id" DESC LIMIT 1"#,
            &[],
        )
        .await?;
    let start = match newest {
        None => Start::genesis(),
        Some(row) => Start {
            after: row.get(0),
            previous: row.get(1),
            unchained_since: Some(row.get::<_, NaiveDateTime>(2) - MAX_CLOCK_DRIFT),
        },
    };
    let report = walk(&*tx, start, Some(max_links), true).await?;
    checkpoint(&*tx, &report).await?;
    tx.commit().await?;
    Ok(report)
}

/// One slice of a full re-verification: `max_links` links, after where the
/// pass named `pass` stopped (a new pass from the genesis when `None`),
/// with a checkpoint recorded at its end, intact or not: a pass goes on
/// past a problem, to find the others. A pass walks the whole chain in as many slices as it
/// takes, each within a Lambda's time, and finds everything [`verify`]
/// does: each slice looks for rows without a link dated between its first
/// and last links (the first slice from the beginning of time, the last to
/// the end).
pub async fn verify_slice(
    client: &mut deadpool_postgres::Client,
    pass: Option<&str>,
    max_links: i64,
) -> Result<Verification, tokio_postgres::Error> {
    let tx = snapshot(client).await?;
    let resumed = match pass {
        None => None,
        Some(pass) => tx
            .query_opt(
                r#"SELECT "seq", "hash" FROM "audit_trail"."checkpoints" WHERE "pass" = $1
                   ORDER BY "seq" DESC LIMIT 1"#,
                &[&pass],
            )
            .await?
            .map(|row| {
                (
                    pass.to_owned(),
                    row.get::<_, i64>(0),
                    row.get::<_, String>(1),
                )
            }),
    };
    // The records of pseudonymisations are checked once per pass, by its
    // first slice.
    let first_slice = resumed.is_none();
    let (pass, start) = match resumed {
        Some((pass, after, previous)) => {
            let since: Option<NaiveDateTime> = tx
                .query_opt(
                    r#"SELECT ("chainedAt" AT TIME ZONE 'UTC') FROM "audit_trail"."chain" WHERE "seq" = $1"#,
                    &[&after],
                )
                .await?
                .map(|row| row.get::<_, NaiveDateTime>(0) - MAX_CLOCK_DRIFT);
            (
                pass,
                Start {
                    after,
                    previous,
                    unchained_since: since,
                },
            )
        }
        None => (platform::ids::new_id(), Start::genesis()),
    };
    let mut report = walk(&*tx, start, Some(max_links), first_slice).await?;
    report.pass = Some(pass);
    checkpoint(&*tx, &report).await?;
    tx.commit().await?;
    Ok(report)
}

/// The full re-verification still under way: the newest pass whose last
/// slice did not reach the head.
pub async fn unfinished_pass(
    client: &impl GenericClient,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            r#"SELECT "pass", "complete" FROM "audit_trail"."checkpoints" WHERE "pass" IS NOT NULL
               ORDER BY "id" DESC LIMIT 1"#,
            &[],
        )
        .await?
        .filter(|row| !row.get::<_, bool>(1))
        .map(|row| row.get(0)))
}

/// How long identical refusals are counted on one row of the trail.
pub const REFUSAL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Records a refused attempt. The first of identical refusals (same user,
/// action, resource, target and reason) in a [`REFUSAL_WINDOW`] gets its
/// row in the trail; the others are counted on the window
/// (`audit_trail.refusal_windows`), and the count enters the trail as one
/// summary row once the window closes (at the next such refusal, or by
/// [`flush_refusal_windows`]). So no one can grow the append-only trail at
/// will by repeating a refused request, and none of the refusals goes
/// unrecorded.
pub async fn record_refusal(
    client: &mut deadpool_postgres::Client,
    entry: &Entry,
) -> Result<(), tokio_postgres::Error> {
    let key = refusal_key(entry);
    let tx = client.transaction().await?;
    let now = chrono::Utc::now();
    let window = tx
        .query_opt(
            r#"SELECT "windowStart", "repeats", "firstAuditId", "lastAt" FROM "audit_trail"."refusal_windows"
               WHERE "key" = $1 FOR UPDATE"#,
            &[&key],
        )
        .await?;
    if let Some(row) = &window {
        let started: chrono::DateTime<chrono::Utc> = row.get(0);
        if started > now - REFUSAL_WINDOW {
            tx.execute(
                r#"UPDATE "audit_trail"."refusal_windows" SET "repeats" = "repeats" + 1, "lastAt" = $2 WHERE "key" = $1"#,
                &[&key, &now],
            )
            .await?;
            return tx.commit().await;
        }
        let repeats: i32 = row.get(1);
        if repeats > 0 {
            summarise(&*tx, row.get(2), repeats, started, row.get(3)).await?;
        }
    }
    let id = entry.insert(&*tx).await?;
    tx.execute(
        r#"INSERT INTO "audit_trail"."refusal_windows" ("key", "windowStart", "firstAuditId", "repeats", "lastAt")
           VALUES ($1, $2, $3, 0, $2)
           ON CONFLICT ("key") DO UPDATE SET "windowStart" = $2, "firstAuditId" = $3, "repeats" = 0, "lastAt" = $2"#,
        &[&key, &now, &id],
    )
    .await?;
    tx.commit().await
}

/// Writes the summary rows of closed windows that counted repeats, and
/// resets them; returns how many. For the schedule: a window nobody
/// refused again after would otherwise keep its count out of the trail.
pub async fn flush_refusal_windows(
    client: &mut deadpool_postgres::Client,
) -> Result<u64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let closed = tx
        .query(
            r#"SELECT "key", "firstAuditId", "repeats", "windowStart", "lastAt" FROM "audit_trail"."refusal_windows"
               WHERE "repeats" > 0 AND "windowStart" <= $1
               ORDER BY "windowStart" FOR UPDATE SKIP LOCKED"#,
            &[&(chrono::Utc::now() - REFUSAL_WINDOW)],
        )
        .await?;
    for row in &closed {
        summarise(&*tx, row.get(1), row.get(2), row.get(3), row.get(4)).await?;
        tx.execute(
            r#"UPDATE "audit_trail"."refusal_windows" SET "repeats" = 0 WHERE "key" = $1"#,
            &[&row.get::<_, String>(0)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(u64::try_from(closed.len()).unwrap_or(u64::MAX))
}

/// The trail's row saying how many refusals a window counted: the first
/// refusal's row again (same actor, action, resource and target), with the
/// count and the window in `errorMessage`.
async fn summarise(
    tx: &impl GenericClient,
    first_audit_id: String,
    repeats: i32,
    started: chrono::DateTime<chrono::Utc>,
    last: chrono::DateTime<chrono::Utc>,
) -> Result<(), tokio_postgres::Error> {
    let reason = format!(
        "refused {repeats} more time(s) as in audit row {first_audit_id}, from {} to {} UTC",
        started.format("%Y-%m-%d %H:%M:%S"),
        last.format("%Y-%m-%d %H:%M:%S")
    );
    tx.execute(
        r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId",
               "ipAddress", "userAgent", "requestId", "success", "errorMessage", "timestamp")
           SELECT $1, "userId", "userEmail", "userRole", "action", "resource", "resourceId",
                  "ipAddress", "userAgent", NULL, false, $2, $3
           FROM "audit_logs" WHERE "id" = $4"#,
        &[
            &platform::ids::new_id(),
            &storable(&reason, MAX_TEXT_CHARS),
            &platform::clock::now_millis(),
            &first_audit_id,
        ],
    )
    .await?;
    Ok(())
}

/// What makes two refusals identical.
fn refusal_key(entry: &Entry) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in [
        entry.recorder.user_id.as_str(),
        &entry.action,
        &entry.resource,
        &entry.resource_id,
        entry.error_message.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A transaction that sees one state of the trail from start to end.
async fn snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
}

/// Records where a verification got to, and whether what it walked was
/// intact.
async fn checkpoint(
    tx: &impl GenericClient,
    report: &Verification,
) -> Result<(), tokio_postgres::Error> {
    let (Some(seq), Some(hash)) = (report.head_seq, &report.head_hash) else {
        return Ok(());
    };
    tx.execute(
        r#"INSERT INTO "audit_trail"."checkpoints" ("seq", "hash", "fromSeq", "links", "pass", "complete", "intact")
           VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        &[
            &seq,
            hash,
            &report.from_seq,
            &i64::try_from(report.links).unwrap_or(i64::MAX),
            &report.pass,
            &report.complete,
            &report.intact,
        ],
    )
    .await?;
    Ok(())
}

/// Where a walk starts: after link `after` (0: from the genesis), whose
/// hash the first link must follow, and since when rows without a link are
/// looked for (`None`: at any time).
struct Start {
    after: i64,
    previous: String,
    unchained_since: Option<NaiveDateTime>,
}

impl Start {
    fn genesis() -> Self {
        Self {
            after: 0,
            previous: GENESIS.to_owned(),
            unchained_since: None,
        }
    }
}

/// Recomputes up to `limit` links after `start` (all of them with `None`),
/// and looks for rows without a link dated from `start.unchained_since` to
/// the last link walked (to any time when the walk reached the head). With
/// `records`, also recomputes the chain of pseudonymisation records (a few
/// per erased person, so all of them each time).
async fn walk(
    tx: &impl GenericClient,
    start: Start,
    limit: Option<i64>,
    records: bool,
) -> Result<Verification, tokio_postgres::Error> {
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
    let mut report = Verification {
        intact: true,
        links: 0,
        problem_count: 0,
        problems: Vec::new(),
        head_hash: None,
        first_seq: None,
        head_seq: None,
        from_seq: start.after,
        complete: true,
        pass: None,
    };
    let note = |report: &mut Verification, problem: Problem| {
        report.problem_count += 1;
        if report.problems.len() < MAX_LISTED_PROBLEMS {
            report.problems.push(problem);
        }
    };
    // Where the walk picks up: the link it starts after is checked against
    // the hash it was verified with, and says whether the backfill is over.
    let mut live_seen = false;
    let mut last_backfilled: Option<NaiveDateTime> = None;
    if start.after > 0 {
        let link = tx
            .query_opt(
                r#"SELECT c."hash", c."backfilled", a."timestamp"
                   FROM "audit_trail"."chain" c LEFT JOIN "audit_logs" a ON a."id" = c."auditId"
                   WHERE c."seq" = $1"#,
                &[&start.after],
            )
            .await?;
        match link {
            Some(row) if row.get::<_, String>(0) == start.previous => {
                let backfilled: bool = row.get(1);
                live_seen = !backfilled;
                last_backfilled = if backfilled { row.get(2) } else { None };
            }
            _ => note(
                &mut report,
                Problem::CheckpointMismatch {
                    seq: start.after,
                    expected_hash: start.previous.clone(),
                },
            ),
        }
    }
    let limit = limit.unwrap_or(i64::MAX);
    let links = tx
        .query_raw(
            r#"SELECT c."seq", c."auditId", c."prevHash", c."hash",
                      "audit_trail"."expected_link"(c."prevHash", to_jsonb(a), s, p."records",
                                                    c."chainedAt", c."backfilled"),
                      a."timestamp", (c."chainedAt" AT TIME ZONE 'UTC'), c."backfilled"
               FROM "audit_trail"."chain" c LEFT JOIN "audit_logs" a ON a."id" = c."auditId"
                    LEFT JOIN "audit_trail"."salts" s ON s."auditId" = c."auditId"
                    LEFT JOIN (SELECT r."auditId",
                                      jsonb_object_agg(r."column", jsonb_build_object('digest', r."originalDigest",
                                                       'now', r."pseudonymisedDigest") ORDER BY r."seq") AS "records"
                               FROM "audit_trail"."pseudonymisations" r GROUP BY r."auditId") p
                           ON p."auditId" = c."auditId"
               WHERE c."seq" > $1
               ORDER BY c."seq"
               LIMIT $2"#,
            [&start.after as &(dyn tokio_postgres::types::ToSql + Sync), &limit],
        )
        .await?;
    futures_util::pin_mut!(links);
    let mut previous = start.previous.clone();
    let mut last_chained_at: Option<NaiveDateTime> = None;
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
        last_chained_at = Some(chained_at);
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
    report.complete = i64::try_from(report.links).unwrap_or(i64::MAX) < limit;
    // A walk that stopped short of the head looks up to its last link only;
    // the next slice looks on from there.
    let until = if report.complete {
        None
    } else {
        last_chained_at.map(|at| at + MAX_CLOCK_DRIFT)
    };
    // audit_logs_timestamp_idx serves the window; without one (a full
    // verification) the anti-join reads every row.
    let unchained = tx
        .query(
            r#"SELECT a."id" FROM "audit_logs" a
               WHERE ($1::timestamp IS NULL OR a."timestamp" >= $1)
                 AND ($2::timestamp IS NULL OR a."timestamp" < $2)
                 AND NOT EXISTS (SELECT 1 FROM "audit_trail"."chain" c WHERE c."auditId" = a."id")
               ORDER BY a."timestamp", a."id""#,
            &[&start.unchained_since, &until],
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
    if records {
        let records = tx
            .query_raw(
                r#"SELECT "seq", "auditId", "prevHash", "hash",
                          "audit_trail"."record_hash"("prevHash", "auditId", "column", "originalDigest",
                                                      "pseudonymisedDigest", "procedure", "pseudonymisedAt")
                   FROM "audit_trail"."pseudonymisations" ORDER BY "seq""#,
                std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
            )
            .await?;
        futures_util::pin_mut!(records);
        let mut previous = GENESIS.to_owned();
        while let Some(row) = records.try_next().await? {
            let prev_hash: String = row.get(2);
            let hash: String = row.get(3);
            let recomputed: Option<String> = row.get(4);
            if prev_hash != previous || recomputed.as_deref() != Some(hash.as_str()) {
                note(
                    &mut report,
                    Problem::PseudonymisationAltered {
                        seq: row.get(0),
                        audit_id: row.get(1),
                    },
                );
            }
            previous = hash;
        }
    }
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
