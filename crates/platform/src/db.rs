//! The per-container connection pool, and one-off connections.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use deadpool_postgres::{Connect, Manager, ManagerConfig, QueueMode, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres_rustls::MakeRustlsConnect;

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
    let recycling_method = match checkout {
        Checkout::Verified => RecyclingMethod::Verified,
        Checkout::Unprobed => RecyclingMethod::Fast,
    };
    let connect = PatientConnect {
        tls: settings.tls()?,
        budget: connect_timeout,
    };
    let manager = Manager::from_connect(
        settings.pg.clone(),
        connect,
        ManagerConfig { recycling_method },
    );
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(connect_timeout))
        .wait_timeout(Some(connect_timeout))
        .build()?)
}

/// First wait between connection attempts; it doubles up to the cap.
const FIRST_RETRY: Duration = Duration::from_millis(25);
const RETRY_CAP: Duration = Duration::from_millis(250);

/// Connects, and while the server cannot take the connection yet, tries
/// again with backoff until the connect timeout is spent: a suspended Neon
/// compute, a server restarting or recovering after a crash, refuses or
/// answers "starting up" for a moment, and the first request after it wakes
/// should be served, not refused. Errors that waiting does not cure (bad
/// credentials, a wrong database name, TLS) are answered at once.
struct PatientConnect {
    tls: MakeRustlsConnect,
    budget: Duration,
}

type Connected = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>;

impl Connect for PatientConnect {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + '_>> {
        let mut config = pg_config.clone();
        Box::pin(async move {
            let deadline = Instant::now() + self.budget;
            let mut wait = FIRST_RETRY;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                config.connect_timeout(left.max(Duration::from_millis(1)));
                match config.connect(self.tls.clone()).await {
                    Ok((client, connection)) => {
                        let task = tokio::spawn(async move {
                            if let Err(error) = connection.await {
                                tracing::warn!(%error, "database connection closed with an error");
                            }
                        });
                        return Ok((client, task));
                    }
                    Err(error) if not_yet(&error) && left > wait => {
                        tracing::info!(%error, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "database not accepting connections yet");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(RETRY_CAP);
                    }
                    Err(error) => return Err(error),
                }
            }
        })
    }
}

/// The server is not taking connections yet, and may soon: refused or
/// reset, or starting up, recovering or shutting down.
fn not_yet(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if let Some(code) = error.code() {
        return [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
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
