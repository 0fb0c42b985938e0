//! Shared plumbing for every Lambda function of the bundle.
//!
//! Functions stay thin: they load [`config::Config`] once, build a
//! [`db::Pool`] once, and hand an axum router and an event handler to
//! [`lambda::serve`]. Everything here is testable without Lambda.

pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod http_client;
pub mod ids;
pub mod json;
pub mod lambda;
pub mod request_id;
pub mod telemetry;

pub use error::{ApiError, ApiResult};
