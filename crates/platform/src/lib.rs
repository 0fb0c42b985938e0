//! Shared plumbing for every Lambda function of the bundle.
//!
//! Functions stay thin: each builds one [`lambda::Function`] from its
//! settings ([`config`]: read once, with a [`db::Pool`] built once), whose
//! router ends with [`http::finish`], and hands it to [`lambda::run`].
//! Everything here is testable without Lambda.

pub mod api_doc;
pub mod clock;
pub mod config;
pub mod connection;
pub mod db;
pub mod error;
pub mod http;
pub mod http_client;
pub mod ids;
pub mod json;
pub mod lambda;
pub mod metrics;
pub mod paging;
pub mod request_id;
pub mod telemetry;

pub use error::{ApiError, ApiResult};
