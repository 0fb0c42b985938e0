//! `events`: the public intake.

use platform::config::Env;

// Lambda sends an instance one request at a time: a second worker thread
// would only hand the database connection's task and the handler back and
// forth between threads (measured slower by bench/intake.sh).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    platform::lambda::run(events::App::build(&Env::process())?).await
}
