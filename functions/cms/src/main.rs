//! `cms`: the CMS in Lambda (HTTP, the scheduled popularity job, direct
//! invokes); anywhere else, a command-line tool.

use std::process::ExitCode;

use platform::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let env = Env::process();
    if !platform::lambda::in_lambda() {
        return cms::commands::command_line(&env).await;
    }
    let served = async { platform::lambda::run(cms::App::build(&env)?).await };
    platform::lambda::exit_code(served.await)
}
