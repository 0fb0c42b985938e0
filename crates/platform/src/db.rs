//! The per-container connection pool, and one-off connections.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, QueueMode, RecyclingMethod, Runtime};

use crate::{config::DatabaseConfig, connection::ConnectionSettings};

pub use deadpool_postgres::{Client as PooledClient, Pool, PoolError};
pub use tokio_postgres::{Client, GenericClient, Transaction};

/// The connection, not the statement, failed: it was closed under the
/// client, or the server ended the session (`pg_terminate_backend`, a
/// restart, a pooler or Neon closing an idle client), or refused it.
pub fn connection_lost(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::IDLE_SESSION_TIMEOUT,
            ]
            .contains(code)
                || code.code().starts_with("08")
        }
        None => std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// How a pooled connection is checked when it is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkout {
    /// An empty query first, so that a connection the server dropped while
    /// the container was frozen (Neon suspends idle computes; poolers close
    /// idle clients) is replaced instead of failing the request. One round
    /// trip per checkout.
    Verified,
    /// Only connections the client already knows to be closed are replaced.
    /// For callers whose first statement is the probe and that can repeat
    /// it on a new connection (the intake: `events::db::write_retrying`).
    Unprobed,
}

/// Builds the container's pool. Connections open lazily, so a cold start
/// costs nothing until the first query.
pub fn pool(config: &DatabaseConfig, checkout: Checkout) -> anyhow::Result<Pool> {
    pool_for(
        &config.url,
        config.pool_max_size,
        config.connect_timeout,
        checkout,
    )
}

/// Connections are handed out last in, first out, as PgBouncer does by
/// default (`server_round_robin = 0`): the most recently used connection's
/// server process has its caches warm, and the ones a burst left behind go
/// idle instead of being cycled through.
pub fn pool_for(
    settings: &ConnectionSettings,
    max_size: usize,
    connect_timeout: Duration,
    checkout: Checkout,
) -> anyhow::Result<Pool> {
    let mut pg = settings.pg.clone();
    pg.connect_timeout(connect_timeout);
    let recycling_method = match checkout {
        Checkout::Verified => RecyclingMethod::Verified,
        Checkout::Unprobed => RecyclingMethod::Fast,
    };
    let manager = Manager::from_config(pg, settings.tls()?, ManagerConfig { recycling_method });
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(connect_timeout))
        .wait_timeout(Some(connect_timeout))
        .build()?)
}

/// One dedicated connection, for work that needs a session of its own.
pub async fn connect(settings: &ConnectionSettings) -> anyhow::Result<Client> {
    let (client, connection) = settings.pg.connect(settings.tls()?).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "database connection closed with an error");
        }
    });
    Ok(client)
}
