//! Intake settings.

use platform::config::{ConfigError, Env};

/// What is stored of a client's IP address (`ANALYTICS_IP_STORAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpStorage {
    /// The network only: IPv4 to /24, IPv6 to /48 (the default). Enough
    /// for coarse geography and abuse triage; not a person's address.
    Truncated,
    /// Nothing.
    None,
    /// The full address. Only where a legal basis for it exists.
    Full,
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub ip_storage: IpStorage,
}

impl IntakeConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ip_storage = match env.optional("ANALYTICS_IP_STORAGE").as_deref() {
            None | Some("truncate") => IpStorage::Truncated,
            Some("none") => IpStorage::None,
            Some("full") => IpStorage::Full,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ANALYTICS_IP_STORAGE",
                    problem: format!("{other:?} is not one of truncate, none, full"),
                });
            }
        };
        Ok(Self { ip_storage })
    }
}
