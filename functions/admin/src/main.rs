//! `admin`: the admin API in Lambda (HTTP, direct invokes, the scheduled
//! chain verification); anywhere else, a command-line tool.

use std::process::ExitCode;

use platform::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let env = Env::process();
    if !platform::lambda::in_lambda() {
        return admin::commands::command_line(&env).await;
    }
    let served = async { platform::lambda::run(admin::App::build(&env)?).await };
    platform::lambda::exit_code(served.await)
}
