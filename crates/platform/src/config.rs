//! Typed configuration, read once at cold start.
//!
//! A missing or malformed variable fails the cold start with an error that
//! names the variable, so a misconfigured deploy shows up in the first log
//! line instead of as a 500 on the first request. Nothing secret prints:
//! a parsed database URL's `Debug` shows hosts and names, never a password.

use std::{collections::HashMap, str::FromStr, time::Duration};

use crate::connection::ConnectionSettings;

/// A setting that is missing or cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Where settings come from: the process environment in production, a map
/// in tests (edition 2024 makes mutating the process environment unsafe).
pub struct Env {
    lookup: Box<Lookup>,
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins
    /// (`https://deals.example`) whose pages may call a function's public
    /// routes from the browser. Empty: none, so only same-origin pages
    /// (behind the same domain) can.
    pub fn allowed_origins(&self) -> Result<Vec<http::HeaderValue>, ConfigError> {
        let mut allowed_origins = Vec::new();
        for origin in self
            .optional("CORS_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && origin.matches('/').count() == 2;
            let value = http::HeaderValue::from_str(origin)
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| ConfigError {
                    variable: "CORS_ALLOWED_ORIGINS",
                    problem: format!(
                        "{origin:?} is not an origin like https://deals.example (no path, no wildcard)"
                    ),
                })?;
            allowed_origins.push(value);
        }
        Ok(allowed_origins)
    }

    pub fn process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// The value of `variable`, treating an empty string as unset (SAM and
    /// most CI systems cannot express "unset" for an optional parameter).
    pub fn optional(&self, variable: &'static str) -> Option<String> {
        (self.lookup)(variable).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, variable: &'static str) -> Result<String, ConfigError> {
        self.optional(variable).ok_or_else(|| ConfigError {
            variable,
            problem: "is required but not set".into(),
        })
    }

    pub fn parsed_or<T>(&self, variable: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(variable) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e| ConfigError {
                variable,
                problem: format!("cannot parse {raw:?}: {e}"),
            }),
        }
    }

    pub fn millis_or(
        &self,
        variable: &'static str,
        default_ms: u64,
    ) -> Result<Duration, ConfigError> {
        self.parsed_or(variable, default_ms)
            .map(Duration::from_millis)
    }
}

/// How to reach PostgreSQL. The URLs are parsed here, once, at cold start;
/// `Debug` shows hosts and names, never a password.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `POSTGRES_URL`: the pooled URL the application and its hosting use.
    pub url: ConnectionSettings,
    /// `POSTGRES_URL_NON_POOLING`: a direct connection, preferred by migrate
    /// because a transaction-mode pooler does not keep session state.
    pub non_pooling_url: Option<ConnectionSettings>,
    /// `DB_POOL_MAX_SIZE`: connections one container may hold. A Lambda
    /// container serves one request at a time, so 2 leaves room for a
    /// concurrent probe without multiplying connections across containers.
    pub pool_max_size: usize,
    /// `DB_CONNECT_TIMEOUT_MS`: a Neon compute waking from suspend takes a
    /// few hundred milliseconds; beyond this the request fails fast.
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let parse = |variable: &'static str, raw: &str| {
            ConnectionSettings::parse(raw).map_err(|e| ConfigError {
                variable,
                problem: e.to_string(),
            })
        };
        let url = parse("POSTGRES_URL", &env.required("POSTGRES_URL")?)?;
        let non_pooling_url = env
            .optional("POSTGRES_URL_NON_POOLING")
            .map(|raw| parse("POSTGRES_URL_NON_POOLING", &raw))
            .transpose()?;
        let pool_max_size = env.parsed_or("DB_POOL_MAX_SIZE", 2usize)?;
        if pool_max_size == 0 {
            return Err(ConfigError {
                variable: "DB_POOL_MAX_SIZE",
                problem: "must be at least 1".into(),
            });
        }
        Ok(Self {
            url,
            non_pooling_url,
            pool_max_size,
            connect_timeout: env.millis_or("DB_CONNECT_TIMEOUT_MS", 10_000)?,
        })
    }

    /// Where work that needs a session of its own (migrations, commands)
    /// connects.
    pub fn direct(&self) -> &ConnectionSettings {
        self.non_pooling_url.as_ref().unwrap_or(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(settings: &ConnectionSettings) -> String {
        format!("{:?}", settings.pg.get_hosts())
    }

    #[test]
    fn missing_database_url_names_the_variable() {
        let err = DatabaseConfig::from_env(&Env::from_pairs([])).expect_err("must fail");
        assert_eq!(err.variable, "POSTGRES_URL");
        assert!(err.to_string().contains("POSTGRES_URL"));
    }

    #[test]
    fn malformed_database_url_names_the_variable() {
        let env = Env::from_pairs([("POSTGRES_URL", "postgres://h/db?sslmode=sometimes")]);
        let err = DatabaseConfig::from_env(&env).expect_err("must fail");
        assert_eq!(err.variable, "POSTGRES_URL");
        assert!(err.problem.contains("sslmode"), "{}", err.problem);
    }

    #[test]
    fn migrate_prefers_the_non_pooling_url() {
        let env = Env::from_pairs([
            ("POSTGRES_URL", "postgres://pooler/db"),
            ("POSTGRES_URL_NON_POOLING", "postgres://direct/db"),
        ]);
        let config = DatabaseConfig::from_env(&env).expect("valid");
        assert_eq!(
            host(config.direct()),
            host(&ConnectionSettings::parse("postgres://direct/db").expect("url"))
        );
    }

    #[test]
    fn an_empty_non_pooling_url_counts_as_unset() {
        let env = Env::from_pairs([
            ("POSTGRES_URL", "postgres://pooler/db"),
            ("POSTGRES_URL_NON_POOLING", ""),
        ]);
        let config = DatabaseConfig::from_env(&env).expect("valid");
        assert_eq!(
            host(config.direct()),
            host(&ConnectionSettings::parse("postgres://pooler/db").expect("url"))
        );
    }

    #[test]
    fn secrets_never_print() {
        let env = Env::from_pairs([("POSTGRES_URL", "postgres://u:hunter2@h/db")]);
        let config = DatabaseConfig::from_env(&env).expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_zero_pool_size_is_refused() {
        let env = Env::from_pairs([
            ("POSTGRES_URL", "postgres://h/db"),
            ("DB_POOL_MAX_SIZE", "0"),
        ]);
        assert_eq!(
            DatabaseConfig::from_env(&env)
                .expect_err("must fail")
                .variable,
            "DB_POOL_MAX_SIZE"
        );
    }
}
