//! `events`: the public intake.

use events::{AppState, IntakeConfig};
use platform::config::{DatabaseConfig, Env};

#[tokio::main]
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
