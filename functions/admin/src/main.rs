//! `admin`: the admin API in Lambda (HTTP, direct invokes, the scheduled
//! chain verification); anywhere else, a command-line tool.

use std::process::ExitCode;
use std::time::Duration;

use access::Access;
use access::session::SessionKeys;
use admin::bootstrap::Channel;
use admin::commands::{self, Command};
use admin::{AppState, router};
use platform::config::{DatabaseConfig, Env};
use platform::lambda::Event;
use secrecy::ExposeSecret;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let env = Env::process();
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        serve(&env).await
    } else {
        return command_line(&env).await;
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "admin stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(env: &Env) -> Result<(), lambda_runtime::Error> {
    let database = DatabaseConfig::from_env(env)?;
    let pool = platform::db::pool(&database, platform::db::Checkout::Verified)?;
    let state = AppState {
        access: Access::new(pool.clone(), SessionKeys::from_env(env)?),
    };
    platform::lambda::serve(router(state), move |event, _context| {
        let pool = pool.clone();
        async move {
            let command = match event {
                Event::Direct(payload) => {
                    Command::from_payload(payload).map_err(anyhow::Error::msg)?
                }
                // The daily schedule: verification failures and the chain's
                // head hash land in the logs, an anchor outside the database.
                Event::Schedule(_) => Command::AuditVerify,
                Event::CustomResource(_) => anyhow::bail!("admin has no custom resource"),
            };
            let mut client = pool.get().await?;
            let outcome = commands::execute(&mut client, &command, Channel::Lambda).await?;
            tracing::info!(%outcome, "command done");
            Ok(outcome)
        }
    })
    .await
}

async fn command_line(env: &Env) -> ExitCode {
    let command = match Command::from_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let outcome = async {
        let database = DatabaseConfig::from_env(env)?;
        let settings =
            platform::db::ConnectionSettings::parse(database.direct_url().expose_secret())?;
        let pool = platform::db::pool_for(
            &settings,
            1,
            Duration::from_secs(10),
            platform::db::Checkout::Verified,
        )?;
        let mut client = pool.get().await?;
        commands::execute(&mut client, &command, Channel::Cli).await
    }
    .await;
    match outcome {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome).unwrap_or_default()
            );
            if outcome.get("intact") == Some(&serde_json::Value::Bool(false)) {
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
