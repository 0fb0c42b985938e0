//! The public API for visitors: analytics events, Web Vitals, browser
//! errors, flag evaluation (OFREP), experiment assignment and
//! conversions, and price predictions.
//!
//! Browsers post here, often with `navigator.sendBeacon` while a page
//! unloads, so the route reads `text/plain` as well as JSON, answers only
//! after the data is committed, and never answers a client's mistake with a
//! 500.

pub mod analytics;
pub mod beacon;
pub mod browser_errors;
pub mod client;
pub mod config;
pub mod db;
pub mod device;
pub mod experiments;
pub mod fields;
pub mod fingerprint;
pub mod flags;
pub mod jsonb;
pub mod ofrep;
pub mod predictions;
pub mod routes;
pub mod sentry;
pub mod vitals;

use std::sync::Arc;

use axum::Router;
use lambda_runtime::Context;
use platform::{
    config::{DatabaseConfig, Env},
    db::Pool,
    lambda::{Event, Function},
};
use serde_json::Value;

pub use config::{IntakeConfig, IpStorage};
pub use routes::openapi;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<IntakeConfig>,
    /// The flags as last read (per container, for `FLAG_CACHE_SECONDS`).
    pub flags: Arc<flags::FlagStore>,
    /// The active price model as last read (per container, for
    /// `PRICE_MODEL_CACHE_SECONDS`).
    pub price_models: Arc<predictions::PriceModels>,
}

/// The function, built once per container from its settings: by `main.rs`
/// and by every test, so tests run the configuration path production runs.
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    router: Router,
}

impl App {
    pub fn build(env: &Env) -> anyhow::Result<Self> {
        let database = DatabaseConfig::from_env(env)?;
        let pool = db::pool(&database)?;
        let config = IntakeConfig::from_env(env)?;
        let state = AppState {
            flags: Arc::new(flags::FlagStore::new(pool.clone(), config.flag_cache_time)),
            price_models: Arc::new(predictions::PriceModels::new(
                pool.clone(),
                config.price_model_cache_time,
            )),
            pool,
            config: Arc::new(config),
        };
        Ok(Self {
            router: routes::router(state.clone()),
            state,
        })
    }
}

impl Function for App {
    fn router(&self) -> Router {
        self.router.clone()
    }

    async fn on_event(&self, event: Event, _: Context) -> anyhow::Result<Value> {
        anyhow::bail!("events answers HTTP only, not {event:?}")
    }
}
