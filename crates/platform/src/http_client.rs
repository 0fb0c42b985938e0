//! The outbound HTTP client (health probes, CloudFormation responses).
//!
//! reqwest over rustls with the ring provider, the same TLS stack as the
//! database connections, so the binary carries one crypto library and
//! cross-compiles for arm64 without a C toolchain. Roots come from the
//! platform verifier (the system store: Amazon Linux 2023's CA bundle).

use std::time::Duration;

/// Makes ring the process-wide rustls provider; idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client whose every request gives up after `timeout`.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    install_crypto_provider();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("travel-deals-bundle/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A client made on first use, not at cold start: building one loads the
/// system's root certificates, several times the work of the rest of a
/// function's start-up, and most invocations (every HTTP request to
/// health, every direct invoke of migrate) never send anything.
#[derive(Clone)]
pub struct LazyClient {
    timeout: Duration,
    client: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl LazyClient {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: Default::default(),
        }
    }

    /// The client, made now if it was not yet.
    pub fn get(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let made = client(self.timeout)?;
        Ok(self.client.get_or_init(|| made))
    }
}
