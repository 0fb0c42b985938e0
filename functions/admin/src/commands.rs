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

use crate::bootstrap::{self, Channel};

pub const USAGE: &str = "usage:
  admin bootstrap-admin --email <email> [--force]   make an existing user super_admin (audited)
  admin audit-verify                                recompute the audit trail's hash chain
Database settings come from POSTGRES_URL (and POSTGRES_URL_NON_POOLING, preferred when set).";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    BootstrapAdmin {
        email: String,
        #[serde(default)]
        force: bool,
    },
    AuditVerify,
}

impl Command {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["audit-verify"] => Ok(Self::AuditVerify),
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
        Command::AuditVerify => {
            let report = access::audit::verify(client).await?;
            // The alarm on a failed verification reads this.
            platform::metrics::emit(
                "admin",
                None,
                &[platform::metrics::Metric::count(
                    "AuditChainIntact",
                    usize::from(report.intact),
                )],
            );
            Ok(serde_json::to_value(report)?)
        }
    }
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
            if outcome.get("intact") == Some(&Value::Bool(false)) {
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
            Ok(Command::AuditVerify)
        );
        assert!(Command::from_payload(json!({"command": "make-me-admin"})).is_err());
    }
}
