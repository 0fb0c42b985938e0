//! `migrate`: in Lambda, answers direct invokes and the CloudFormation
//! custom resource; anywhere else, a command-line tool.

use std::process::ExitCode;

use platform::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let env = Env::process();
    if !platform::lambda::in_lambda() {
        return migrate::cli::run(&env).await;
    }
    platform::lambda::exit_code(platform::lambda::run(migrate::App::build(&env)).await)
}
