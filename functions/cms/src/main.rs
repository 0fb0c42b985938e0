//! `cms`: the CMS in Lambda (HTTP, the scheduled popularity job, direct
//! invokes); anywhere else, a command-line tool.

use std::process::ExitCode;

use platform::config::Env;

// One core's worth of server per instance, as for events: the public reads
// are the busy routes, and a multi-thread runtime only adds cross-thread
// wake-ups between the handler and the database connection's task.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let env = Env::process();
    if !platform::lambda::in_lambda() {
        return cms::commands::command_line(&env).await;
    }
    let served = async { platform::lambda::run(cms::App::build(&env)?).await };
    platform::lambda::exit_code(served.await)
}
