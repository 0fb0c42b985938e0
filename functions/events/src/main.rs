//! `events`: the public intake.

use events::{AppState, IntakeConfig};
use platform::config::{DatabaseConfig, Env};

// Lambda sends an instance one request at a time: a second worker thread
// would only hand the database connection's task and the handler back and
// forth between threads (measured slower by bench/intake.sh).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let env = Env::process();
    let database = DatabaseConfig::from_env(&env)?;
    let state = AppState::new(events::db::pool(&database)?, IntakeConfig::from_env(&env)?);
    platform::lambda::serve(events::router(state), |event, _context| async move {
        anyhow::bail!("events answers HTTP only, not {event:?}")
    })
    .await
}
