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

use crate::analytics::{cohorts, rollup, sample};
use crate::bootstrap::{self, Channel};
use crate::models;
use crate::privacy::erasure;
use crate::privacy::retention::{self, RetentionConfig};

/// How long a job starts new work for: a scheduled or invoked run stops
/// within the jobs function's time limit and the next run goes on; the
/// command line runs to the end.
fn job_budget(channel: Channel) -> Option<std::time::Duration> {
    match channel {
        Channel::Lambda => Some(rollup::RUN_BUDGET),
        Channel::Cli => None,
    }
}

pub const USAGE: &str = "usage:
  admin bootstrap-admin --email <email> [--force]   make an existing user super_admin (audited)
  admin audit-verify [--incremental]                recompute the audit trail's hash chain, whole
                                                    or from the newest checkpoint
  admin audit-maintain                              what the schedule runs: close refusal windows,
                                                    verify incrementally, go on with a full pass
  admin rollup [--from <time> --to <time>] [--granularity hour|day|both]
                                                    roll events, vitals, errors and experiment
                                                    participants up into metric_snapshots: the
                                                    recent days and any missed since the last run,
                                                    or the window given (a backfill)
  admin cohorts [--from <time> --to <time>]         update user_cohorts for the users active since
                                                    the last run, or in the window given
  admin sample-data [--weeks N] [--seed S] [--since <time>] [--until <time>] [--sessions N]
                    [--csv <dir>]
                                                    load a realistic sample (events, fares, vitals,
                                                    errors, funnel steps), then roll it up; with
                                                    --csv, write it as CSV files instead
  admin fares-sync [--from <time> --to <time>]      copy fare events (results_view, fare_observed)
                                                    into the observed fares: those since the last
                                                    run, or the window given (a backfill)
  admin import-fares --file <csv>                   import observed fares from a CSV with the header
                                                    origin,destination,departDate,returnDate,price,
                                                    currency,observedAt: every line or none
  admin train [--name price] [--activate]           sync fares, train the price model, store the
                                                    version; activate it if asked, if none is
                                                    active, or if it is no worse than the active one
  admin prediction-accuracy [--from <time> --to <time>]
                                                    settle the expired price predictions against
                                                    the fares observed later; record the realised
                                                    accuracy per model version; with a window,
                                                    rescore the predictions created in it
  admin erase --user-id <id> | --email <email> | --session-id <id>
                                                    erase a visitor's rows in every table that
                                                    names them (audited without the identifier);
                                                    prints the counts per table
  admin retention                                   delete the raw rows older than their table's
                                                    window (RETENTION_*_DAYS) and no longer needed
                                                    by the rollup, cohorts, fares-sync or accuracy
                                                    jobs, in bounded batches; prints the counts
  Times are RFC 3339 or YYYY-MM-DD (midnight UTC).
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
    /// Deletes expired raw rows (see [`crate::privacy::retention`]). A
    /// struct variant, so that an unknown field (a hoped-for `dryRun`) is
    /// refused rather than ignored by a run that deletes.
    Retention {},
    /// The realised accuracy of served price predictions; a window (of
    /// the predictions' `createdAt`) rescores.
    PredictionAccuracy {
        #[serde(default)]
        from: Option<rollup::Time>,
        #[serde(default)]
        to: Option<rollup::Time>,
    },
    /// The rollups into `metric_snapshots`; a window is a backfill.
    Rollup {
        #[serde(default)]
        from: Option<rollup::Time>,
        #[serde(default)]
        to: Option<rollup::Time>,
        #[serde(default)]
        granularity: rollup::Granularities,
    },
    /// `user_cohorts`; a window is a backfill.
    Cohorts {
        #[serde(default)]
        from: Option<rollup::Time>,
        #[serde(default)]
        to: Option<rollup::Time>,
    },
    /// Fare events into `bundle.observed_fares`; a window is a backfill.
    FaresSync {
        #[serde(default)]
        from: Option<rollup::Time>,
        #[serde(default)]
        to: Option<rollup::Time>,
    },
    /// A fares CSV: `file` on the command line, the text as `csv` in a
    /// direct invoke.
    ImportFares {
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        csv: Option<String>,
    },
    /// Trains a version of the price model (see [`crate::models::training`]).
    Train {
        #[serde(default = "default_model_name")]
        name: String,
        #[serde(default)]
        activate: bool,
    },
    /// Erases a visitor: exactly one of the three (see
    /// [`crate::privacy::erasure`]).
    Erase {
        #[serde(default, rename = "userId")]
        user_id: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default, rename = "sessionId")]
        session_id: Option<String>,
    },
    SampleData {
        #[serde(default = "default_sample_weeks")]
        weeks: u32,
        #[serde(default = "default_sample_seed")]
        seed: u64,
        /// The sample's end; the end of the current hour when absent.
        #[serde(default)]
        until: Option<rollup::Time>,
        /// The sample's start, instead of `weeks` before its end.
        #[serde(default)]
        since: Option<rollup::Time>,
        /// Sessions in all (3.7 events each on average); 1,100 a day when absent.
        #[serde(default)]
        sessions: Option<usize>,
        /// Write CSV files into this directory instead of the database.
        #[serde(default)]
        csv: Option<String>,
    },
}

fn default_model_name() -> String {
    crate::models::training::PRICE_MODEL.to_owned()
}

fn default_sample_weeks() -> u32 {
    4
}

fn default_sample_seed() -> u64 {
    42
}

/// `--from`/`--to` of a job: both or neither, `from` before `to`.
fn window(args: &[String]) -> Result<(Option<rollup::Time>, Option<rollup::Time>), String> {
    let time = |flag: &str| -> Result<Option<rollup::Time>, String> {
        match args.iter().position(|a| a == flag) {
            None => Ok(None),
            Some(at) => args
                .get(at + 1)
                .ok_or_else(|| format!("{flag} needs a time\n{USAGE}"))?
                .parse()
                .map(Some)
                .map_err(|e| format!("{flag}: {e}\n{USAGE}")),
        }
    };
    let (from, to) = (time("--from")?, time("--to")?);
    match (from, to) {
        (Some(f), Some(t)) if f.0 >= t.0 => Err(format!("--from must be before --to\n{USAGE}")),
        (Some(_), None) | (None, Some(_)) => {
            Err(format!("a backfill needs both --from and --to\n{USAGE}"))
        }
        window => Ok(window),
    }
}

/// A job's window as a direct invoke gives it: both ends or neither, in
/// order (the command line checks the same in [`window`]).
fn payload_window(
    from: Option<rollup::Time>,
    to: Option<rollup::Time>,
) -> anyhow::Result<Option<(chrono::NaiveDateTime, chrono::NaiveDateTime)>> {
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) if from.0 < to.0 => Ok(Some((from.0, to.0))),
        (Some(_), Some(_)) => anyhow::bail!("from must be before to"),
        _ => anyhow::bail!("a backfill needs both from and to"),
    }
}

/// The value after `flag`, parsed, if the flag is given.
fn option<T: std::str::FromStr>(args: &[String], flag: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(at) => args
            .get(at + 1)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?
            .parse()
            .map(Some)
            .map_err(|e| format!("{flag}: {e}\n{USAGE}")),
    }
}

/// Every word of a job's arguments is one of its flags or a flag's value.
fn only_flags(args: &[String], flags: &[&str], switches: &[&str]) -> Result<(), String> {
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        if flags.contains(&word.as_str()) {
            words.next();
        } else if !switches.contains(&word.as_str()) {
            return Err(format!("unknown option {word}\n{USAGE}"));
        }
    }
    Ok(())
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
            ["retention"] => Ok(Self::Retention {}),
            ["prediction-accuracy", ..] => {
                only_flags(&args, &["--from", "--to"], &[])?;
                let (from, to) = window(&args)?;
                Ok(Self::PredictionAccuracy { from, to })
            }
            ["rollup", ..] => {
                only_flags(&args, &["--from", "--to", "--granularity"], &[])?;
                let (from, to) = window(&args)?;
                Ok(Self::Rollup {
                    from,
                    to,
                    granularity: option(&args, "--granularity")?.unwrap_or_default(),
                })
            }
            ["cohorts", ..] => {
                only_flags(&args, &["--from", "--to"], &[])?;
                let (from, to) = window(&args)?;
                Ok(Self::Cohorts { from, to })
            }
            ["fares-sync", ..] => {
                only_flags(&args, &["--from", "--to"], &[])?;
                let (from, to) = window(&args)?;
                Ok(Self::FaresSync { from, to })
            }
            ["import-fares", ..] => {
                only_flags(&args, &["--file"], &[])?;
                let file: Option<String> = option(&args, "--file")?;
                let file = file.ok_or_else(|| format!("--file is required\n{USAGE}"))?;
                Ok(Self::ImportFares {
                    file: Some(file),
                    csv: None,
                })
            }
            ["train", ..] => {
                only_flags(&args, &["--name"], &["--activate"])?;
                Ok(Self::Train {
                    name: option(&args, "--name")?.unwrap_or_else(default_model_name),
                    activate: args.iter().any(|a| a == "--activate"),
                })
            }
            ["sample-data", ..] => {
                only_flags(
                    &args,
                    &[
                        "--weeks",
                        "--seed",
                        "--since",
                        "--until",
                        "--sessions",
                        "--csv",
                    ],
                    &[],
                )?;
                Ok(Self::SampleData {
                    weeks: option(&args, "--weeks")?.unwrap_or_else(default_sample_weeks),
                    seed: option(&args, "--seed")?.unwrap_or_else(default_sample_seed),
                    until: option(&args, "--until")?,
                    since: option(&args, "--since")?,
                    sessions: option(&args, "--sessions")?,
                    csv: option(&args, "--csv")?,
                })
            }
            ["erase", ..] => {
                only_flags(&args, &["--user-id", "--email", "--session-id"], &[])?;
                let command = Self::Erase {
                    user_id: option(&args, "--user-id")?,
                    email: option(&args, "--email")?,
                    session_id: option(&args, "--session-id")?,
                };
                command.person().map_err(|e| format!("{e}\n{USAGE}"))?;
                Ok(command)
            }
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

    /// The person an `erase` names, checked; `None` for other commands.
    fn person(&self) -> anyhow::Result<Option<erasure::Person>> {
        match self {
            Self::Erase {
                user_id,
                email,
                session_id,
            } => erasure::person(user_id.clone(), email.clone(), session_id.clone())
                .map(Some)
                .map_err(|(field, rule)| anyhow::anyhow!("{field} {rule}")),
            _ => Ok(None),
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
        // The command line's own settings; the Lambda passes the windows it
        // read at cold start to [`retention`] instead.
        Command::Retention {} => {
            let config = RetentionConfig::from_env(&Env::process())?;
            retention(client, &config, channel).await
        }
        // The command line's own settings; the Lambda passes the key it
        // read at cold start to [`erase`] instead.
        Command::Erase { .. } => {
            let config = erasure::ErasureConfig::from_env(&Env::process())?;
            erase(client, command, &config, channel).await
        }
        Command::PredictionAccuracy { from, to } => {
            let window = payload_window(*from, *to)?;
            let report =
                models::accuracy::run(client, window, platform::clock::now_millis()).await?;
            Ok(serde_json::to_value(report)?)
        }
        Command::Rollup {
            from,
            to,
            granularity,
        } => {
            let window = match payload_window(*from, *to)? {
                Some((from, to)) => rollup::Window::Backfill { from, to },
                None => rollup::Window::Scheduled,
            };
            rollup::run(client, window, *granularity, job_budget(channel)).await
        }
        Command::Cohorts { from, to } => {
            let window = payload_window(*from, *to)?;
            cohorts::run(client, window, job_budget(channel)).await
        }
        Command::FaresSync { from, to } => {
            let window = match payload_window(*from, *to)? {
                Some((from, to)) => models::fares::SyncWindow::Backfill { from, to },
                None => models::fares::SyncWindow::Scheduled,
            };
            Ok(serde_json::to_value(
                models::fares::sync(client, window).await?,
            )?)
        }
        Command::ImportFares { file, csv } => {
            let text = match (file, csv) {
                (Some(path), None) => tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?,
                (None, Some(text)) => text.clone(),
                _ => anyhow::bail!("give the fares as a file (--file) or as csv text, one of them"),
            };
            match models::fares::import(client, &text).await? {
                Ok(report) => Ok(serde_json::to_value(report)?),
                Err(refused) => Err(refused.into()),
            }
        }
        Command::Train { name, activate } => {
            models::training::run(client, name, *activate, channel).await
        }
        Command::SampleData {
            weeks,
            seed,
            until,
            since,
            sessions,
            csv,
        } => {
            let until = until.map_or_else(
                || sample::this_hour_end(platform::clock::now_millis()),
                |t| t.0,
            );
            let mut options = sample::Options::weeks(*seed, *weeks, until);
            if let Some(since) = since {
                anyhow::ensure!(since.0 < until, "since must be before until");
                options.from = since.0;
            }
            if let Some(sessions) = sessions {
                options.sessions = *sessions;
            }
            match csv {
                Some(dir) => sample::write_csv(&sample::generate(&options), dir.as_ref()),
                None => sample::run(client, &options).await,
            }
        }
    }
}

/// The `retention` job with `config`: bounded by the jobs function's time
/// limit when scheduled or invoked.
pub async fn retention(
    client: &tokio_postgres::Client,
    config: &RetentionConfig,
    channel: Channel,
) -> anyhow::Result<Value> {
    let limits = retention::Limits::for_job(match channel {
        Channel::Lambda => Some(retention::RUN_BUDGET),
        Channel::Cli => None,
    });
    let report = retention::run(client, config, platform::clock::now_millis(), limits).await?;
    Ok(serde_json::to_value(report)?)
}

/// The `erase` command with the pseudonyms' key of `config`.
pub async fn erase(
    client: &mut deadpool_postgres::Client,
    command: &Command,
    config: &erasure::ErasureConfig,
    channel: Channel,
) -> anyhow::Result<Value> {
    let person = command
        .person()?
        .ok_or_else(|| anyhow::anyhow!("not an erase command"))?;
    let erasure = erasure::erase_by_job(client, &person, config, channel).await?;
    Ok(serde_json::to_value(erasure)?)
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

    #[test]
    fn a_rollup_backfill_window_is_read_from_the_command_line_as_rfc_3339_or_dates() {
        let command = Command::from_args(args(&[
            "rollup",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02T06:00:00Z",
            "--granularity",
            "hour",
        ]))
        .expect("valid");
        let Command::Rollup {
            from,
            to,
            granularity,
        } = command
        else {
            panic!("{command:?}")
        };
        assert_eq!(from.expect("from").0.to_string(), "2026-11-01 00:00:00");
        assert_eq!(to.expect("to").0.to_string(), "2026-11-02 06:00:00");
        assert_eq!(granularity, rollup::Granularities::Hour);
        assert_eq!(
            Command::from_args(args(&["rollup"])),
            Ok(Command::Rollup {
                from: None,
                to: None,
                granularity: rollup::Granularities::Both
            })
        );
    }

    #[test]
    fn a_job_window_needs_both_ends_in_order() {
        assert!(Command::from_args(args(&["rollup", "--from", "2026-11-01"])).is_err());
        assert!(
            Command::from_args(args(&[
                "cohorts",
                "--from",
                "2026-11-02",
                "--to",
                "2026-11-01"
            ]))
            .is_err()
        );
        assert!(Command::from_args(args(&["rollup", "--form", "2026-11-01"])).is_err());
        assert!(Command::from_args(args(&["rollup", "--granularity", "week"])).is_err());
    }

    #[test]
    fn job_payloads_name_the_command_and_its_window() {
        assert_eq!(
            Command::from_payload(json!({"command": "rollup"})),
            Ok(Command::Rollup {
                from: None,
                to: None,
                granularity: rollup::Granularities::Both
            })
        );
        let Ok(Command::Cohorts { from, to }) = Command::from_payload(
            json!({"command": "cohorts", "from": "2026-11-01", "to": "2026-11-08T00:00:00Z"}),
        ) else {
            panic!("cohorts payload")
        };
        assert_eq!(from.expect("from").0.to_string(), "2026-11-01 00:00:00");
        assert!(to.is_some());
        assert_eq!(
            Command::from_payload(json!({"command": "sample-data"})),
            Ok(Command::SampleData {
                weeks: 4,
                seed: 42,
                until: None,
                since: None,
                sessions: None,
                csv: None
            })
        );
        assert_eq!(
            Command::from_args(args(&["sample-data", "--weeks", "2", "--seed", "7"])),
            Ok(Command::SampleData {
                weeks: 2,
                seed: 7,
                until: None,
                since: None,
                sessions: None,
                csv: None
            })
        );
    }

    #[test]
    fn the_fare_jobs_are_read_from_the_command_line() {
        assert_eq!(
            Command::from_args(args(&["fares-sync"])),
            Ok(Command::FaresSync {
                from: None,
                to: None
            })
        );
        let Ok(Command::FaresSync { from, to }) = Command::from_args(args(&[
            "fares-sync",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02T06:00:00Z",
        ])) else {
            panic!("a fares-sync backfill")
        };
        assert_eq!(from.expect("from").0.to_string(), "2026-11-01 00:00:00");
        assert_eq!(to.expect("to").0.to_string(), "2026-11-02 06:00:00");
        assert!(Command::from_args(args(&["fares-sync", "--to", "2026-11-01"])).is_err());
        assert_eq!(
            Command::from_args(args(&["import-fares", "--file", "fares.csv"])),
            Ok(Command::ImportFares {
                file: Some("fares.csv".into()),
                csv: None
            })
        );
        assert!(Command::from_args(args(&["import-fares"])).is_err());
        assert_eq!(
            Command::from_args(args(&["train"])),
            Ok(Command::Train {
                name: "price".into(),
                activate: false
            })
        );
        assert_eq!(
            Command::from_args(args(&["train", "--activate", "--name", "price-b"])),
            Ok(Command::Train {
                name: "price-b".into(),
                activate: true
            })
        );
        assert!(Command::from_args(args(&["train", "--force"])).is_err());
    }

    #[test]
    fn the_fare_jobs_are_read_from_direct_invoke_payloads() {
        assert_eq!(
            Command::from_payload(json!({"command": "train"})),
            Ok(Command::Train {
                name: "price".into(),
                activate: false
            })
        );
        assert_eq!(
            Command::from_payload(json!({"command": "import-fares", "csv": "origin,destination"})),
            Ok(Command::ImportFares {
                file: None,
                csv: Some("origin,destination".into())
            })
        );
        assert!(matches!(
            Command::from_payload(
                json!({"command": "fares-sync", "from": "2026-11-01", "to": "2026-11-02"})
            ),
            Ok(Command::FaresSync {
                from: Some(_),
                to: Some(_)
            })
        ));
    }

    #[test]
    fn prediction_accuracy_runs_scheduled_or_rescores_a_window() {
        assert_eq!(
            Command::from_args(args(&["prediction-accuracy"])),
            Ok(Command::PredictionAccuracy {
                from: None,
                to: None
            })
        );
        let Ok(Command::PredictionAccuracy { from, to }) = Command::from_args(args(&[
            "prediction-accuracy",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-08T12:00:00Z",
        ])) else {
            panic!("a rescoring window")
        };
        assert_eq!(from.expect("from").0.to_string(), "2026-11-01 00:00:00");
        assert_eq!(to.expect("to").0.to_string(), "2026-11-08 12:00:00");
        assert!(
            Command::from_args(args(&["prediction-accuracy", "--from", "2026-11-01"])).is_err()
        );
        assert!(
            Command::from_args(args(&["prediction-accuracy", "--since", "2026-11-01"])).is_err()
        );
        assert_eq!(
            Command::from_payload(json!({"command": "prediction-accuracy"})),
            Ok(Command::PredictionAccuracy {
                from: None,
                to: None
            })
        );
        let Ok(Command::PredictionAccuracy { from, .. }) = Command::from_payload(
            json!({"command": "prediction-accuracy", "from": "2026-11-01", "to": "2026-11-02"}),
        ) else {
            panic!("a rescoring payload")
        };
        assert!(from.is_some());
    }

    #[test]
    fn erase_names_exactly_one_person_from_the_command_line_or_a_payload() {
        assert_eq!(
            Command::from_args(args(&["erase", "--email", "a@b.c"])),
            Ok(Command::Erase {
                user_id: None,
                email: Some("a@b.c".into()),
                session_id: None
            })
        );
        assert!(Command::from_args(args(&["erase"])).is_err());
        assert!(
            Command::from_args(args(&["erase", "--user-id", "u", "--session-id", "s"])).is_err()
        );
        assert!(Command::from_args(args(&["erase", "--user", "u"])).is_err());
        assert_eq!(
            Command::from_payload(json!({"command": "erase", "sessionId": "s"})),
            Ok(Command::Erase {
                user_id: None,
                email: None,
                session_id: Some("s".into())
            })
        );
        assert!(Command::from_payload(json!({"command": "erase", "user_id": "u"})).is_err());
    }
}
