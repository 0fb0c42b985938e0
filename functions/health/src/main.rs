//! `health`: the health endpoint and the scheduled dependency probes.

use platform::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    platform::lambda::run(health::App::build(&Env::process())?).await
}
