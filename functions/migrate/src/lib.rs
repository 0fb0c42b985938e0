//! Schema migration as a deployable function.
//!
//! The same [`Command`]s run from three doors: the command line (operators,
//! local development), a direct Lambda invoke (`{"command": "status"}`),
//! and a CloudFormation custom resource (every deploy migrates before the
//! other functions take traffic).

pub mod cli;
pub mod custom_resource;
pub mod lambda;

pub use lambda::App;

use serde::Deserialize;
use serde_json::{Value, json};

use platform::{config::DatabaseConfig, db};
use schema::{Migrator, contract};

/// What an operator can ask of the migrator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Up,
    Status,
    Verify,
    /// Drops the contract's 17 tables; refused unless `confirm` is true.
    Down {
        #[serde(default)]
        confirm: bool,
    },
    /// Marks a failed migration rolled back so the next `up` retries it.
    Resolve {
        rolled_back: String,
    },
}

pub const USAGE: &str = "usage: migrate <command>
  up                                apply pending migrations
  status                            show each migration's state
  verify                            compare the live schema with the contract
  down --confirm-drop-contract      drop the 17 contract tables and their record
  resolve --rolled-back <name>      mark a failed migration rolled back
  --json                            (any command) print the JSON result";

impl Command {
    /// Parses command-line arguments (`--json` is handled by the caller).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().filter(|a| a != "--json").collect();
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["up"] => Ok(Self::Up),
            ["status"] => Ok(Self::Status),
            ["verify"] => Ok(Self::Verify),
            ["down"] => Ok(Self::Down { confirm: false }),
            ["down", "--confirm-drop-contract"] => Ok(Self::Down { confirm: true }),
            ["resolve", "--rolled-back", name] => Ok(Self::Resolve {
                rolled_back: (*name).to_owned(),
            }),
            _ => Err(USAGE.to_owned()),
        }
    }
}

/// The outcome of a command, as JSON, and whether it succeeded.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub result: Value,
}

/// Runs `command` on a fresh direct connection (never the pooled URL when a
/// direct one is configured: see [`DatabaseConfig::direct`]).
pub async fn execute(config: &DatabaseConfig, command: &Command) -> anyhow::Result<Outcome> {
    let mut client = db::connect(config.direct()).await?;
    execute_on(&mut client, command).await
}

pub async fn execute_on(
    client: &mut tokio_postgres::Client,
    command: &Command,
) -> anyhow::Result<Outcome> {
    let migrator = Migrator::embedded();
    let outcome = match command {
        Command::Up => Outcome {
            ok: true,
            result: serde_json::to_value(migrator.up(client).await?)?,
        },
        Command::Status => {
            let status = migrator.status(client).await?;
            Outcome {
                ok: status.blocking.is_empty(),
                result: serde_json::to_value(status)?,
            }
        }
        Command::Verify => {
            let (figures, differences) = contract::verify(&*client).await?;
            Outcome {
                ok: differences.is_empty(),
                result: json!({
                    "figures": figures,
                    "differences": differences.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            }
        }
        Command::Down { confirm } => Outcome {
            ok: true,
            result: serde_json::to_value(migrator.down(client, *confirm).await?)?,
        },
        Command::Resolve { rolled_back } => {
            migrator.resolve_rolled_back(client, rolled_back).await?;
            Outcome {
                ok: true,
                result: json!({ "resolved": rolled_back }),
            }
        }
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn down_needs_the_explicit_confirmation_flag_to_confirm() {
        assert_eq!(
            Command::from_args(args(&["down"])),
            Ok(Command::Down { confirm: false })
        );
        assert_eq!(
            Command::from_args(args(&["down", "--confirm-drop-contract"])),
            Ok(Command::Down { confirm: true })
        );
    }

    #[test]
    fn unknown_commands_print_usage() {
        assert_eq!(
            Command::from_args(args(&["sideways"])),
            Err(USAGE.to_owned())
        );
    }

    #[test]
    fn direct_invoke_payloads_name_the_command() {
        let command: Command =
            serde_json::from_value(json!({"command": "resolve", "rolled_back": "x"}))
                .expect("valid");
        assert_eq!(
            command,
            Command::Resolve {
                rolled_back: "x".into()
            }
        );
        let command: Command = serde_json::from_value(json!({"command": "up"})).expect("valid");
        assert_eq!(command, Command::Up);
    }
}
