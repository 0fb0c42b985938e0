//! `health`: the health endpoint and the scheduled dependency probes.

use health::{AppState, HealthConfig};
use platform::config::{DatabaseConfig, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let env = Env::process();
    let database = DatabaseConfig::from_env(&env)?;
    let config = HealthConfig::from_env(&env)?;
    let state = AppState::new(
        platform::db::pool(&database, platform::db::Checkout::Verified)?,
        config,
    )?;
    let router = health::router(state.clone());
    platform::lambda::serve(router, move |event, _context| {
        let state = state.clone();
        async move { health::on_event(&state, event).await }
    })
    .await
}
