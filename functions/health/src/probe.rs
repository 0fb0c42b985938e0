//! Probes: one dependency, one verdict.
//!
//! - `healthy`: answered within the degraded threshold.
//! - `degraded`: answered, but slower than the threshold (or HTTP 429).
//! - `down`: no answer within the timeout, a refused connection, or an
//!   HTTP status that says the service is broken (5xx, or a 4xx other than
//!   401/403/429). 401 and 403 count as reachable: a probe carries no
//!   credentials, and a service that refuses them is up.

use std::time::{Duration, Instant};

use platform::db::{Pool, PooledClient};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{DATABASE_SERVICE, HttpTarget};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "healthy" => Self::Healthy,
            "degraded" => Self::Degraded,
            _ => Self::Down,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub service: String,
    pub status: Status,
    /// Milliseconds; absent when nothing answered.
    pub response_time: Option<f64>,
    pub error_message: Option<String>,
    pub metadata: Value,
}

fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

fn by_speed(elapsed: Duration, threshold: Duration) -> Status {
    if elapsed > threshold {
        Status::Degraded
    } else {
        Status::Healthy
    }
}

/// A round trip through the pool: checkout (reconnecting if needed) and a
/// trivial query.
pub async fn database(pool: &Pool, threshold: Duration) -> Probe {
    database_keeping_connection(pool, threshold).await.0
}

/// The same probe, handing back the connection it proved alive, so a
/// caller that reads next does not pay for a second checkout.
pub async fn database_keeping_connection(
    pool: &Pool,
    threshold: Duration,
) -> (Probe, Option<PooledClient>) {
    let started = Instant::now();
    let outcome = async {
        let client = pool.get().await?;
        client.query_one("SELECT 1", &[]).await?;
        anyhow::Ok(client)
    }
    .await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(client) => (
            Probe {
                service: DATABASE_SERVICE.into(),
                status: by_speed(elapsed, threshold),
                response_time: Some(millis(elapsed)),
                error_message: None,
                metadata: json!({ "thresholdMs": u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX) }),
            },
            Some(client),
        ),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "database probe failed");
            (
                Probe {
                    service: DATABASE_SERVICE.into(),
                    status: Status::Down,
                    response_time: None,
                    error_message: Some(database_reason(&error).to_owned()),
                    metadata: json!({ "elapsedMs": millis(elapsed) }),
                },
                None,
            )
        }
    }
}

/// What a failed database probe says in public (the endpoint, the
/// recorded history): the kind of failure, never the driver's text, which
/// names the pool, the driver and the network inside. That goes to the log.
fn database_reason(error: &anyhow::Error) -> &'static str {
    if let Some(pool_error) = error.downcast_ref::<platform::db::PoolError>() {
        return match pool_error {
            platform::db::PoolError::Timeout(_) => "timed out",
            _ => "connection failed",
        };
    }
    match error.downcast_ref::<tokio_postgres::Error>() {
        Some(e) if platform::db::connection_lost(e) => "connection lost",
        _ => "query failed",
    }
}

/// A GET of the target; the client's timeout bounds it.
pub async fn http(client: &reqwest::Client, target: &HttpTarget, threshold: Duration) -> Probe {
    let started = Instant::now();
    let outcome = client.get(&target.url).send().await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(response) => {
            let code = response.status().as_u16();
            let (status, error_message) = match code {
                200..=399 | 401 | 403 => (by_speed(elapsed, threshold), None),
                429 => (Status::Degraded, Some("rate limited (HTTP 429)".to_owned())),
                _ => (Status::Down, Some(format!("HTTP {code}"))),
            };
            Probe {
                service: target.name.clone(),
                status,
                response_time: Some(millis(elapsed)),
                error_message,
                metadata: json!({ "url": target.url, "statusCode": code }),
            }
        }
        Err(error) => {
            let reason = if error.is_timeout() {
                "timed out"
            } else if error.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            tracing::warn!(service = %target.name, %error, "HTTP probe failed");
            Probe {
                service: target.name.clone(),
                status: Status::Down,
                response_time: None,
                error_message: Some(reason.to_owned()),
                metadata: json!({ "url": target.url, "elapsedMs": millis(elapsed) }),
            }
        }
    }
}
