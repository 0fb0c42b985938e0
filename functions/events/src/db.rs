//! The intake's connection pool: a single beacon costs one round trip.
//!
//! platform's pools normally check each connection with an empty query
//! before handing it out (`Checkout::Verified`), so that one the server
//! dropped while the container was frozen is replaced instead of failing the
//! request. For a page-view beacon, whose write is one statement, that check
//! is half of the request's round trips to the database.
//!
//! Here checkout is `Checkout::Unprobed`: a connection the client already
//! knows to be closed is still replaced, but an open one is not probed. The write is the
//! probe: when it fails because the connection was lost, it runs once more
//! on a fresh connection ([`write_retrying`]). That is only sound for writes
//! that can be repeated without effect, because a connection can be lost
//! after a COMMIT took effect and before its answer arrived:
//! - analytics events: ids derived before the first attempt, and
//!   `ON CONFLICT ("id") DO NOTHING`, so a repeat stores nothing twice;
//! - Web Vitals: an upsert on the metric's id, which a repeat leaves as it
//!   was.
//!
//! A browser error increments its group's count, which a repeat would count
//! twice, so that route asks for a [`checked`] connection instead: the same
//! empty query `Verified` sends, paid only where it is needed.

use std::time::Instant;

use deadpool_postgres::Object;
use platform::{
    ApiError, ApiResult,
    config::DatabaseConfig,
    db::{Checkout, Pool, PooledClient, connection_lost},
    metrics::{self, Metric},
};

/// The function's pool: platform's, handing out connections unprobed.
pub fn pool(config: &DatabaseConfig) -> anyhow::Result<Pool> {
    platform::db::pool(config, Checkout::Unprobed)
}

/// Runs `write` on a pooled connection; if the connection turns out to be
/// lost, once more on a fresh one. `write` must be repeatable without
/// effect (see the module documentation), and hands the connection back
/// with its result. `doing` names the work in the log line of a failure.
pub async fn write_retrying<T, F, W>(pool: &Pool, doing: &'static str, mut write: F) -> ApiResult<T>
where
    F: FnMut(PooledClient) -> W,
    W: Future<Output = (PooledClient, Result<T, tokio_postgres::Error>)>,
{
    let started = Instant::now();
    let connection = pool.get().await?;
    let waited = started.elapsed();
    let (connection, written) = write(connection).await;
    let written = match written {
        Err(error) if connection_lost(&error) => {
            tracing::warn!(%error, "database connection lost; writing once more on a new one");
            // Out of the pool: the client may not know yet that it is closed.
            drop(Object::take(connection));
            write(pool.get().await?).await.1
        }
        written => written,
    };
    metrics::emit(
        "events",
        None,
        &[
            Metric::millis("DbWaitMs", waited),
            Metric::millis("DbWriteMs", started.elapsed() - waited),
        ],
    );
    written.map_err(ApiError::internal(doing))
}

/// A pooled connection that has just answered an empty query, replacing one
/// that has not, as `RecyclingMethod::Verified` would: for writes that must
/// not run twice.
pub async fn checked(pool: &Pool) -> ApiResult<PooledClient> {
    // Each idle connection may be stale; a new one is not.
    for _ in 0..pool.status().max_size {
        let connection = pool.get().await?;
        if connection.simple_query("").await.is_ok() {
            return Ok(connection);
        }
        drop(Object::take(connection));
    }
    Ok(pool.get().await?)
}
