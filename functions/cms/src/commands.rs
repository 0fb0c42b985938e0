//! What the cms binary does besides HTTP: the same commands from the
//! command line and from a direct Lambda invoke, and the scheduled
//! search-popularity job.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use platform::{
    config::{DatabaseConfig, Env},
    db::{Checkout, Pool},
};
use serde::Deserialize;
use serde_json::Value;

pub const USAGE: &str = "usage:
  cms seed                                   load the sample content (deals, destinations, email
                                             templates, suggestions) into an empty CMS; a rerun adds nothing
  cms popularity [--from <time>] [--to <time>]
                                             raise suggestions' popularity from the flight_search events
                                             stored since the last run (or in the window given: a backfill)
Database settings come from POSTGRES_URL (and POSTGRES_URL_NON_POOLING, preferred when set).";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    Seed,
    Popularity {
        #[serde(default)]
        from: Option<DateTime<Utc>>,
        #[serde(default)]
        to: Option<DateTime<Utc>>,
    },
}

impl Command {
    /// The scheduled run: everything since the last one.
    pub const SCHEDULED: Command = Command::Popularity {
        from: None,
        to: None,
    };

    pub fn from_payload(payload: Value) -> Result<Self, String> {
        serde_json::from_value(payload).map_err(|e| format!("{e}\n{USAGE}"))
    }

    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let time = |flag: &str| -> Result<Option<DateTime<Utc>>, String> {
            match args.iter().position(|a| a == flag) {
                None => Ok(None),
                Some(at) => args
                    .get(at + 1)
                    .ok_or_else(|| format!("{flag} needs a time\n{USAGE}"))?
                    .parse()
                    .map(Some)
                    .map_err(|e| format!("{flag}: {e} (an RFC 3339 time)\n{USAGE}")),
            }
        };
        match args.first().map(String::as_str) {
            Some("seed") if args.len() == 1 => Ok(Self::Seed),
            Some("popularity") => Ok(Self::Popularity {
                from: time("--from")?,
                to: time("--to")?,
            }),
            _ => Err(USAGE.to_owned()),
        }
    }
}

/// Runs `command`; the JSON result is what the CLI prints and a direct
/// invoke returns.
pub async fn execute(pool: &Pool, command: &Command) -> anyhow::Result<Value> {
    match command {
        Command::Seed => crate::seed::run(pool).await,
        Command::Popularity { from, to } => crate::suggest::popularity(pool, *from, *to).await,
    }
}

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
        execute(&pool, &command).await
    }
    .await;
    match outcome {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome).unwrap_or_default()
            );
            ExitCode::SUCCESS
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

    #[test]
    fn a_backfill_window_is_read_from_the_command_line() {
        let command = Command::from_args(
            [
                "popularity",
                "--from",
                "2026-11-01T00:00:00Z",
                "--to",
                "2026-11-02T00:00:00Z",
            ]
            .map(String::from),
        )
        .expect("valid");
        let Command::Popularity { from, to } = command else {
            panic!("{command:?}")
        };
        assert_eq!(
            from.expect("from").to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(to.is_some());
    }

    #[test]
    fn a_direct_invoke_names_its_command() {
        assert_eq!(
            Command::from_payload(serde_json::json!({"command": "seed"})),
            Ok(Command::Seed)
        );
        assert!(Command::from_payload(serde_json::json!({"command": "nope"})).is_err());
    }
}
