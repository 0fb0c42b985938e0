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
