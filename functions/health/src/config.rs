//! The health function's settings.

use std::time::Duration;

use platform::config::{ConfigError, Env};

/// One HTTP dependency to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// `HEALTH_HTTP_TARGETS`: comma-separated `name=url` pairs.
    pub http_targets: Vec<HttpTarget>,
    /// `HEALTH_DEGRADED_MS` (default 1000): slower than this is `degraded`.
    pub degraded_threshold: Duration,
    /// `HEALTH_HTTP_TIMEOUT_MS` (default 3000): slower than this is `down`.
    pub http_timeout: Duration,
    /// `HEALTH_RETENTION_DAYS` (default 30): older rows are pruned.
    pub retention: chrono::Duration,
}

/// The database's own row in `health_checks`.
pub const DATABASE_SERVICE: &str = "database";

impl HealthConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let http_targets = match env.optional("HEALTH_HTTP_TARGETS") {
            None => Vec::new(),
            Some(raw) => parse_targets(&raw).map_err(|problem| ConfigError {
                variable: "HEALTH_HTTP_TARGETS",
                problem,
            })?,
        };
        let retention_days: i64 = env.parsed_or("HEALTH_RETENTION_DAYS", 30)?;
        if !(1..=3650).contains(&retention_days) {
            return Err(ConfigError {
                variable: "HEALTH_RETENTION_DAYS",
                problem: "must be between 1 and 3650".into(),
            });
        }
        Ok(Self {
            http_targets,
            degraded_threshold: env.millis_or("HEALTH_DEGRADED_MS", 1_000)?,
            http_timeout: env.millis_or("HEALTH_HTTP_TIMEOUT_MS", 3_000)?,
            retention: chrono::Duration::days(retention_days),
        })
    }
}

fn parse_targets(raw: &str) -> Result<Vec<HttpTarget>, String> {
    let mut targets: Vec<HttpTarget> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {entry:?} is not name=url"))?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || name.len() > 64 || name == DATABASE_SERVICE {
            return Err(format!(
                "service name {name:?} must be 1-64 characters and not {DATABASE_SERVICE:?}"
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("url of {name} must start with http:// or https://"));
        }
        if targets.iter().any(|t| t.name == name) {
            return Err(format!("service {name} is listed twice"));
        }
        targets.push(HttpTarget {
            name: name.to_owned(),
            url: url.to_owned(),
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_name_url_pairs() {
        let env = Env::from_pairs([(
            "HEALTH_HTTP_TARGETS",
            "search=https://a.example/ping, site=http://b.example",
        )]);
        let config = HealthConfig::from_env(&env).expect("valid");
        assert_eq!(config.http_targets.len(), 2);
        assert_eq!(config.http_targets[1].name, "site");
    }

    #[test]
    fn a_malformed_target_names_the_variable() {
        let env = Env::from_pairs([("HEALTH_HTTP_TARGETS", "search")]);
        assert_eq!(
            HealthConfig::from_env(&env).expect_err("bad").variable,
            "HEALTH_HTTP_TARGETS"
        );
    }

    #[test]
    fn a_target_may_not_pose_as_the_database() {
        let env = Env::from_pairs([("HEALTH_HTTP_TARGETS", "database=https://x.example")]);
        assert!(HealthConfig::from_env(&env).is_err());
    }

    #[test]
    fn a_non_numeric_threshold_names_the_variable() {
        let env = Env::from_pairs([("HEALTH_DEGRADED_MS", "fast")]);
        assert_eq!(
            HealthConfig::from_env(&env).expect_err("bad").variable,
            "HEALTH_DEGRADED_MS"
        );
    }
}
