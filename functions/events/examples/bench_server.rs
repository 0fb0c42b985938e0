//! The events router on a loopback socket, for `bench/intake.sh`: the real
//! HTTP stack of the function (axum, body reading, validation, the pool,
//! SQL), without Lambda's runtime API in between. Prints the bound address.
//!
//! The runtime is the one `main.rs` deploys: tokio's current-thread
//! runtime. The benchmark's concurrent connections stand for as many Lambda
//! instances, each with a CPU of its own; here they share one thread, so
//! the server side gets less CPU than in production, not more. (A
//! multi-thread runtime measured worse for single events on this 2-core
//! machine: the handler and the database connection's task wake each other
//! across threads; see README, "Intake".)

use std::time::Duration;

use events::{AppState, IntakeConfig};
use platform::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let env = Env::process();
    let url = env.required("POSTGRES_URL")?;
    let pool_size = env.parsed_or("DB_POOL_MAX_SIZE", 4usize)?;
    let settings = platform::db::ConnectionSettings::parse(&url)?;
    let pool = platform::db::pool_for(
        &settings,
        pool_size,
        Duration::from_secs(10),
        platform::db::Checkout::Unprobed,
    )?;
    let state = AppState::new(pool, IntakeConfig::from_env(&env)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, events::router(state)).await?;
    Ok(())
}
