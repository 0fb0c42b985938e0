//! What the admin binary does besides HTTP: the same commands from the
//! command line and from a direct Lambda invoke, and the scheduled chain
//! verification.

use std::process::ExitCode;

use platform::{
    config::{DatabaseConfig, Env},
    db::Checkout,
};
use serde::Deserialize;
use serde_json::{Value, json};

use access::audit;

use crate::bootstrap::{self, Channel};

pub const USAGE: &str = "usage:
  admin bootstrap-admin --email <email> [--force]   make an existing user super_admin (audited)
  admin audit-verify [--incremental]                recompute the audit trail's hash chain, whole
                                                    or from the newest checkpoint
  admin audit-maintain                              what the schedule runs: close refusal windows,
                                                    verify incrementally, go on with a full pass
Database settings come from POSTGRES_URL (and POSTGRES_URL_NON_POOLING, preferred when set).";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    BootstrapAdmin {
        email: String,
        #[serde(default)]
        force: bool,
    },
    AuditVerify {
        #[serde(default)]
        mode: VerifyMode,
        /// For `slice`: the pass to go on with.
        #[serde(default)]
        pass: Option<String>,
    },
    AuditMaintain,
}

/// How much of the chain a verification walks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// The whole chain, in one go (no time limit: the command line).
    #[default]
    Full,
    /// From the newest checkpoint.
    Incremental,
    /// One slice of a full pass.
    Slice,
}

/// Links one chunk of incremental verification walks at most (16.5-23 s
/// here, at 10 and 2 million rows: bench/README.md; the route and the
/// hourly run size their chunks by time, [`INCREMENTAL_BUDGET`]).
pub const INCREMENTAL_LINKS: i64 = 400_000;
/// Links of one slice of a full pass at most (16 s at 10 million rows
/// here: a slice also looks for rows without a link in its time range).
pub const SLICE_LINKS: i64 = 200_000;
/// When the scheduled maintenance should be done: the admin function is
/// stopped at 30 s, and the rest is margin for a slower database.
pub const MAINTENANCE_BUDGET: std::time::Duration = std::time::Duration::from_secs(24);
/// The slices' pace assumed until one of the run has measured it: below the
/// 12,800 links/s measured here.
const ASSUMED_SLICE_LINKS_PER_SECOND: f64 = 10_000.0;
/// A slice shorter than this is not worth starting.
const MIN_SLICE_LINKS: i64 = 10_000;

/// How long the ids of Sentry events are kept (`bundle.sentry_events`):
/// they exist so that an SDK's retry, within minutes or hours, is counted
/// once; a month covers any retry, and the table stays bounded.
pub const SENTRY_EVENT_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// Most expired Sentry event ids one run deletes: a first run over a large
/// backlog stays short, and the next runs finish it.
pub const SENTRY_EVENTS_PRUNED_PER_RUN: i64 = 50_000;

/// Deletes Sentry event ids older than [`SENTRY_EVENT_RETENTION`], at most
/// [`SENTRY_EVENTS_PRUNED_PER_RUN`]; by the index on "receivedAt".
async fn prune_sentry_events(client: &deadpool_postgres::Client) -> anyhow::Result<u64> {
    let before = platform::clock::now_millis() - SENTRY_EVENT_RETENTION;
    let pruned = client
        .execute(
            r#"DELETE FROM "bundle"."sentry_events" WHERE "eventId" IN (
                   SELECT "eventId" FROM "bundle"."sentry_events" WHERE "receivedAt" < $1 LIMIT $2)"#,
            &[&before, &SENTRY_EVENTS_PRUNED_PER_RUN],
        )
        .await?;
    Ok(pruned)
}

/// How long the maintenance's incremental verification may take, of
/// [`MAINTENANCE_BUDGET`]: it walks in chunks sized to end within it, each
/// with its own checkpoint, so a chain far ahead of its newest checkpoint
/// (a first deploy onto a large trail) is caught up over several runs
/// rather than in one that the function's 30 s limit would cut short, and
/// lose.
pub const INCREMENTAL_BUDGET: std::time::Duration = std::time::Duration::from_secs(14);

/// The links a walk can take in `left` at `pace` links per second, with a
/// fifth held back, at most `most`; `None` when too few to start.
fn links_within(pace: f64, left: std::time::Duration, most: i64) -> Option<i64> {
    #[allow(clippy::cast_precision_loss)]
    let affordable = (pace * left.as_secs_f64() * 0.8).clamp(0.0, most as f64);
    // Within 0..=most by the clamp, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let links = affordable as i64;
    (links >= MIN_SLICE_LINKS).then_some(links)
}

/// The links a slice can walk in `left` (see [`links_within`]), at most
/// [`SLICE_LINKS`].
fn slice_links(pace: f64, left: std::time::Duration) -> Option<i64> {
    links_within(pace, left, SLICE_LINKS)
}

/// The links the next chunk of incremental verification can walk in
/// `left`, at most [`INCREMENTAL_LINKS`].
fn incremental_links(pace: f64, left: std::time::Duration) -> Option<i64> {
    links_within(pace, left, INCREMENTAL_LINKS)
}

/// Verifies what was appended since the newest checkpoint, in chunks
/// sized to end within `budget` at the pace the previous chunk kept, each
/// recording its checkpoint (see [`INCREMENTAL_BUDGET`]); the chunks'
/// reports as one. At least one chunk runs.
pub async fn verify_incremental_within(
    client: &mut deadpool_postgres::Client,
    budget: std::time::Duration,
) -> Result<audit::Verification, tokio_postgres::Error> {
    let started = std::time::Instant::now();
    let mut pace = ASSUMED_SLICE_LINKS_PER_SECOND;
    let mut links = incremental_links(pace, budget).unwrap_or(MIN_SLICE_LINKS);
    let mut report: Option<audit::Verification> = None;
    loop {
        let chunk_started = std::time::Instant::now();
        let chunk = audit::verify_incremental(client, links).await?;
        let took = chunk_started.elapsed().as_secs_f64();
        if chunk.links > 0 && took > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let walked = chunk.links as f64;
            pace = walked / took;
        }
        let done = chunk.complete || !chunk.intact || chunk.links == 0;
        let so_far = match report {
            Some(before) => then(before, chunk),
            None => chunk,
        };
        match incremental_links(pace, budget.saturating_sub(started.elapsed())) {
            Some(next) if !done => {
                links = next;
                report = Some(so_far);
            }
            _ => return Ok(so_far),
        }
    }
}

/// Two consecutive verifications as one report: the second went on from
/// where the first stopped.
fn then(first: audit::Verification, next: audit::Verification) -> audit::Verification {
    let mut problems = first.problems;
    problems.extend(next.problems);
    problems.truncate(audit::MAX_LISTED_PROBLEMS);
    audit::Verification {
        intact: first.intact && next.intact,
        links: first.links + next.links,
        problem_count: first.problem_count + next.problem_count,
        problems,
        head_hash: next.head_hash.or(first.head_hash),
        first_seq: first.first_seq.or(next.first_seq),
        head_seq: next.head_seq.or(first.head_seq),
        from_seq: first.from_seq,
        complete: next.complete,
        pass: next.pass.or(first.pass),
    }
}

impl Command {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["audit-verify"] => Ok(Self::AuditVerify {
                mode: VerifyMode::Full,
                pass: None,
            }),
            ["audit-verify", "--incremental"] => Ok(Self::AuditVerify {
                mode: VerifyMode::Incremental,
                pass: None,
            }),
            ["audit-maintain"] => Ok(Self::AuditMaintain),
            ["bootstrap-admin", rest @ ..] => {
                let mut email = None;
                let mut force = false;
                let mut rest = rest.iter();
                while let Some(word) = rest.next() {
                    match *word {
                        "--email" => email = rest.next().map(|e| (*e).to_owned()),
                        "--force" => force = true,
                        other => return Err(format!("unknown option {other}\n{USAGE}")),
                    }
                }
                let email = email.ok_or_else(|| format!("--email is required\n{USAGE}"))?;
                Ok(Self::BootstrapAdmin { email, force })
            }
            _ => Err(USAGE.to_owned()),
        }
    }

    /// A direct invoke's payload, e.g. `{"command": "bootstrap-admin", "email": "a@b"}`.
    pub fn from_payload(payload: Value) -> Result<Self, String> {
        serde_json::from_value(payload).map_err(|e| format!("{e}\n{USAGE}"))
    }
}

/// Runs `command` on `client`; the JSON result is what the CLI prints and
/// a direct invoke returns.
pub async fn execute(
    client: &mut deadpool_postgres::Client,
    command: &Command,
    channel: Channel,
) -> anyhow::Result<Value> {
    match command {
        Command::BootstrapAdmin { email, force } => {
            let done = bootstrap::bootstrap_admin(client, email, *force, channel).await?;
            Ok(json!({"bootstrapped": done}))
        }
        Command::AuditVerify { mode, pass } => {
            let report = match mode {
                VerifyMode::Full => audit::verify(client).await?,
                VerifyMode::Incremental => {
                    audit::verify_incremental(client, INCREMENTAL_LINKS).await?
                }
                VerifyMode::Slice => {
                    audit::verify_slice(client, pass.as_deref(), SLICE_LINKS).await?
                }
            };
            report_verification(&report);
            Ok(serde_json::to_value(report)?)
        }
        Command::AuditMaintain => maintain(client).await,
    }
}

/// Whether a verification anywhere in `outcome` found the trail not intact.
fn not_intact(outcome: &Value) -> bool {
    match outcome {
        Value::Object(map) => {
            map.get("intact") == Some(&Value::Bool(false)) || map.values().any(not_intact)
        }
        Value::Array(items) => items.iter().any(not_intact),
        _ => false,
    }
}

/// The verification's verdict for the alarm, and its head for the log: a
/// record outside the database of where the chain stood.
fn report_verification(report: &audit::Verification) {
    platform::metrics::emit(
        "admin",
        None,
        &[platform::metrics::Metric::count(
            "AuditChainIntact",
            usize::from(report.intact),
        )],
    );
    if report.intact {
        tracing::info!(head_seq = ?report.head_seq, head_hash = ?report.head_hash, pass = ?report.pass, complete = report.complete, "audit trail verified");
    } else {
        tracing::error!(
            problems = report.problem_count,
            "audit trail verification failed"
        );
    }
}

/// What the schedule runs: closes refusal windows (their counts enter the
/// trail), verifies what was appended since the newest checkpoint (in
/// chunks sized to end within [`INCREMENTAL_BUDGET`]), then
/// goes on with the full re-verification under way (or starts one) in
/// slices sized to end within [`MAINTENANCE_BUDGET`], at the pace the
/// run's last slice kept. A chain of ten million links is walked in full
/// in about a day of hourly runs. Last, it prunes expired Sentry event ids.
async fn maintain(client: &mut deadpool_postgres::Client) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let flushed = audit::flush_refusal_windows(client).await?;
    let incremental = verify_incremental_within(client, INCREMENTAL_BUDGET).await?;
    report_verification(&incremental);
    let mut slices = Vec::new();
    let mut pass = audit::unfinished_pass(&***client).await?;
    // Slices walk slower than incremental chunks (they also look for rows
    // without a link): their pace is measured afresh.
    let mut pace = ASSUMED_SLICE_LINKS_PER_SECOND;
    while let Some(links) = slice_links(pace, MAINTENANCE_BUDGET.saturating_sub(started.elapsed()))
    {
        let slice_started = std::time::Instant::now();
        let slice = audit::verify_slice(client, pass.as_deref(), links).await?;
        let took = slice_started.elapsed().as_secs_f64();
        if slice.links > 0 && took > 0.0 {
            pace = slice.links as f64 / took;
        }
        report_verification(&slice);
        let done = slice.complete || slice.links == 0;
        pass.clone_from(&slice.pass);
        slices.push(slice);
        if done {
            break;
        }
    }
    // Last: housekeeping must not take the audit trail's time.
    let sentry_event_ids_pruned = prune_sentry_events(client).await?;
    Ok(json!({
        "refusalWindowsClosed": flushed,
        "incremental": incremental,
        "fullPassSlices": slices,
        "sentryEventIdsPruned": sentry_event_ids_pruned,
    }))
}

/// The binary outside Lambda: one command from the arguments, run on the
/// direct database URL; its result printed as JSON. Exit codes: 0 done, 1
/// failed (or the trail is not intact), 2 a usage error.
pub async fn command_line(env: &Env) -> ExitCode {
    let command = match Command::from_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let outcome = async {
        let database = DatabaseConfig::from_env(env)?;
        let pool = platform::db::pool_for(
            database.direct(),
            1,
            database.connect_timeout,
            Checkout::Verified,
        )?;
        let mut client = pool.get().await?;
        execute(&mut client, &command, Channel::Cli).await
    }
    .await;
    match outcome {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome).unwrap_or_default()
            );
            if not_intact(&outcome) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_slice_is_sized_to_end_within_the_time_left_with_a_fifth_held_back() {
        use std::time::Duration;
        // At the pace measured at 10 million rows, 9 s left.
        assert_eq!(slice_links(12_800.0, Duration::from_secs(9)), Some(92_160));
        assert_eq!(
            slice_links(ASSUMED_SLICE_LINKS_PER_SECOND, MAINTENANCE_BUDGET),
            Some(192_000)
        );
        assert_eq!(slice_links(1e9, MAINTENANCE_BUDGET), Some(SLICE_LINKS));
    }

    #[test]
    fn an_incremental_chunk_is_sized_to_its_budget_and_capped() {
        use std::time::Duration;
        assert_eq!(
            incremental_links(24_000.0, INCREMENTAL_BUDGET),
            Some(268_800)
        );
        assert_eq!(
            incremental_links(1e9, INCREMENTAL_BUDGET),
            Some(INCREMENTAL_LINKS)
        );
        assert_eq!(
            incremental_links(24_000.0, Duration::from_millis(300)),
            None
        );
        assert!(INCREMENTAL_BUDGET < MAINTENANCE_BUDGET);
    }

    #[test]
    fn chunks_of_one_verification_report_as_one() {
        let chunk = |from: i64, to: i64, intact: bool, complete: bool| audit::Verification {
            intact,
            links: u64::try_from(to - from).unwrap_or(0),
            problem_count: u64::from(!intact),
            problems: Vec::new(),
            head_hash: Some(format!("h{to}")),
            first_seq: Some(from + 1),
            head_seq: Some(to),
            from_seq: from,
            complete,
            pass: None,
        };
        let both = then(chunk(0, 100, true, false), chunk(100, 150, false, true));
        assert_eq!((both.links, both.problem_count), (150, 1));
        assert_eq!(
            (both.from_seq, both.first_seq, both.head_seq),
            (0, Some(1), Some(150))
        );
        assert_eq!(both.head_hash.as_deref(), Some("h150"));
        assert!(!both.intact && both.complete);
    }

    #[test]
    fn no_slice_is_started_that_would_be_too_short() {
        use std::time::Duration;
        assert_eq!(slice_links(12_800.0, Duration::from_millis(900)), None);
        assert_eq!(slice_links(12_800.0, Duration::ZERO), None);
        assert_eq!(slice_links(0.0, MAINTENANCE_BUDGET), None);
    }

    #[test]
    fn bootstrap_needs_an_email() {
        assert!(Command::from_args(args(&["bootstrap-admin"])).is_err());
        assert_eq!(
            Command::from_args(args(&["bootstrap-admin", "--email", "a@b.c", "--force"])),
            Ok(Command::BootstrapAdmin {
                email: "a@b.c".into(),
                force: true
            })
        );
    }

    #[test]
    fn direct_invoke_payloads_name_the_command() {
        assert_eq!(
            Command::from_payload(json!({"command": "bootstrap-admin", "email": "a@b.c"})),
            Ok(Command::BootstrapAdmin {
                email: "a@b.c".into(),
                force: false
            })
        );
        assert_eq!(
            Command::from_payload(json!({"command": "audit-verify"})),
            Ok(Command::AuditVerify {
                mode: VerifyMode::Full,
                pass: None
            })
        );
        assert_eq!(
            Command::from_payload(
                json!({"command": "audit-verify", "mode": "slice", "pass": "p1"})
            ),
            Ok(Command::AuditVerify {
                mode: VerifyMode::Slice,
                pass: Some("p1".into())
            })
        );
        assert!(Command::from_payload(json!({"command": "make-me-admin"})).is_err());
    }
}
