//! The public intake, starting with analytics events.
//!
//! Browsers post here, often with `navigator.sendBeacon` while a page
//! unloads, so the route reads `text/plain` as well as JSON, answers only
//! after the data is committed, and never answers a client's mistake with a
//! 500.

pub mod analytics;
pub mod client;
pub mod config;
pub mod db;
pub mod device;
pub mod errors;
pub mod fingerprint;
pub mod jsonb;
pub mod routes;
pub mod vitals;

use std::sync::Arc;

use platform::db::Pool;

pub use config::{IntakeConfig, IpStorage};
pub use routes::router;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<IntakeConfig>,
}

impl AppState {
    pub fn new(pool: Pool, config: IntakeConfig) -> Self {
        Self {
            pool,
            config: Arc::new(config),
        }
    }
}
