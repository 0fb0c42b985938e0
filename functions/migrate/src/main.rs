//! `migrate`: in Lambda, answers direct invokes and the CloudFormation
//! custom resource; anywhere else, a command-line tool.

use std::process::ExitCode;

use migrate::{Command, cli};
use platform::config::{DatabaseConfig, Env};

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let config = DatabaseConfig::from_env(&Env::process());
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // A bad configuration must still reach CloudFormation as FAILED with
        // its reason, so the runtime starts either way.
        let handler = migrate::lambda::Handler::new(config.map_err(|e| e.to_string()));
        let served = platform::lambda::serve(axum::Router::new(), move |event, context| {
            let handler = handler.clone();
            async move { handler.handle(event, context).await }
        })
        .await;
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "runtime stopped");
                ExitCode::FAILURE
            }
        };
    }
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match Command::from_args(std::env::args().skip(1)) {
        Ok(command) => cli::run(&config, command).await,
        Err(usage) => {
            eprintln!("{usage}");
            ExitCode::from(2)
        }
    }
}
