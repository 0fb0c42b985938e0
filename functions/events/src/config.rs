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
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (`https://deals.example`)
    /// whose pages may call the intake from the browser. Empty: none, so
    /// only same-origin pages (behind the same domain) can.
    pub allowed_origins: Vec<http::HeaderValue>,
    /// `INGEST_KEYS`: comma-separated keys of trusted server-side senders
    /// (the Next.js server relaying its visitors' events, a backfill
    /// script). A request carrying one in `x-ingest-key` skips the bot
    /// filter and may name its visitor (see `crate::client`). Each at least
    /// 32 characters; two allow a rotation. Empty: no trusted senders.
    pub ingest_keys: Vec<IngestKey>,
    /// `SENTRY_DSNS`: comma-separated DSNs (`https://<public key>@<this
    /// API's host>/<project id>`) whose events the Sentry endpoints take
    /// (see `crate::sentry`). The site's SDK is given the same DSN. Empty:
    /// the endpoints refuse every event.
    pub sentry_keys: Vec<SentryKey>,
    /// `FLAG_CACHE_SECONDS` (default 5, at most 300): how long a container
    /// evaluates flags from its copy before reading them again, and so how
    /// long an admin's change takes to reach every visitor.
    pub flag_cache_time: std::time::Duration,
    /// `PREDICTION_TTL_SECONDS` (default 21600, 6 h; from 60 to 604800):
    /// how long a served price prediction stays valid ("expiresAt"), and so
    /// how long the same question is answered with the stored prediction.
    pub prediction_ttl: std::time::Duration,
    /// `PRICE_MODEL_CACHE_SECONDS` (default 60, at most 600): how long a
    /// container serves predictions from its copy of the active price model
    /// before reading `ml_models` again, and so how long an activation or a
    /// rollback takes to reach every visitor.
    pub price_model_cache_time: std::time::Duration,
}

/// The default of `FLAG_CACHE_SECONDS`.
pub const DEFAULT_FLAG_CACHE_SECONDS: u64 = 5;
/// The default of `PREDICTION_TTL_SECONDS`: 6 hours.
pub const DEFAULT_PREDICTION_TTL_SECONDS: u64 = 6 * 60 * 60;
/// The default of `PRICE_MODEL_CACHE_SECONDS`.
pub const DEFAULT_PRICE_MODEL_CACHE_SECONDS: u64 = 60;

/// A whole number of seconds from `variable`, `default` when unset, within
/// `range`; otherwise an error naming the variable.
fn seconds(
    env: &Env,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<std::time::Duration, ConfigError> {
    let seconds = match env.optional(variable) {
        None => default,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| range.contains(s))
            .ok_or_else(|| ConfigError {
                variable,
                problem: format!(
                    "{text:?} is not a whole number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            })?,
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// A Sentry project and the public key its DSN carries. Public keys are in
/// every page of the site, so they say which project an event is for, not
/// that its sender is trusted; still never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SentryKey {
    project: u64,
    public_key: String,
}

impl std::fmt::Debug for SentryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentryKey(project {}, ..)", self.project)
    }
}

/// The public key of a DSN (`https://<key>@host/<project>`).
pub fn dsn_key(dsn: &str) -> Option<&str> {
    let (_, rest) = dsn.split_once("://")?;
    let (user_info, _) = rest.split_once('@')?;
    Some(user_info.split(':').next().unwrap_or_default()).filter(|k| !k.is_empty())
}

/// Shortest public key taken (Sentry's are 32 hexadecimal digits).
pub const MIN_SENTRY_KEY_CHARS: usize = 16;

impl SentryKey {
    /// Reads `https://<public key>@<host>/<project id>`.
    pub fn from_dsn(dsn: &str) -> Option<Self> {
        let public_key = dsn_key(dsn)?;
        let project = dsn.trim_end_matches('/').rsplit('/').next()?.parse().ok()?;
        (public_key.len() >= MIN_SENTRY_KEY_CHARS
            && public_key.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| Self {
            project,
            public_key: public_key.to_owned(),
        })
    }

    /// Whether `key` is this key and `project` its project, in time that
    /// does not depend on where the keys first differ.
    pub fn matches(&self, project: u64, key: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let same_key: bool = self.public_key.as_bytes().ct_eq(key.as_bytes()).into();
        same_key & (self.project == project)
    }
}

/// A trusted sender's key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct IngestKey(String);

impl std::fmt::Debug for IngestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestKey(..)")
    }
}

/// Shortest ingest key taken: a key is a shared secret, not a name.
pub const MIN_INGEST_KEY_CHARS: usize = 32;

impl IngestKey {
    /// Whether `candidate` is this key, in time that does not depend on
    /// where they first differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(candidate).into()
    }
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
        let allowed_origins = env.allowed_origins()?;
        let mut ingest_keys = Vec::new();
        for key in env
            .optional("INGEST_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            if key.chars().count() < MIN_INGEST_KEY_CHARS {
                return Err(ConfigError {
                    variable: "INGEST_KEYS",
                    problem: format!(
                        "every key must be at least {MIN_INGEST_KEY_CHARS} characters (one is {})",
                        key.chars().count()
                    ),
                });
            }
            ingest_keys.push(IngestKey(key.to_owned()));
        }
        let mut sentry_keys = Vec::new();
        for dsn in env
            .optional("SENTRY_DSNS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            sentry_keys.push(SentryKey::from_dsn(dsn).ok_or_else(|| ConfigError {
                variable: "SENTRY_DSNS",
                problem: format!(
                    "every entry must be a DSN like https://<public key of at least {MIN_SENTRY_KEY_CHARS} letters and digits>@<host>/<project id>"
                ),
            })?);
        }
        Ok(Self {
            ip_storage,
            allowed_origins,
            ingest_keys,
            sentry_keys,
            flag_cache_time: seconds(
                env,
                "FLAG_CACHE_SECONDS",
                DEFAULT_FLAG_CACHE_SECONDS,
                0..=300,
            )?,
            prediction_ttl: seconds(
                env,
                "PREDICTION_TTL_SECONDS",
                DEFAULT_PREDICTION_TTL_SECONDS,
                60..=7 * 24 * 60 * 60,
            )?,
            price_model_cache_time: seconds(
                env,
                "PRICE_MODEL_CACHE_SECONDS",
                DEFAULT_PRICE_MODEL_CACHE_SECONDS,
                0..=600,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_comma_separated_list() {
        let env = Env::from_pairs([(
            "CORS_ALLOWED_ORIGINS",
            "https://deals.example, http://localhost:3000",
        )]);
        assert_eq!(
            IntakeConfig::from_env(&env)
                .expect("valid")
                .allowed_origins
                .len(),
            2
        );
    }

    #[test]
    fn an_origin_with_a_path_or_wildcard_names_the_variable() {
        for bad in [
            "https://deals.example/app",
            "https://*.deals.example",
            "deals.example",
        ] {
            let env = Env::from_pairs([("CORS_ALLOWED_ORIGINS", bad)]);
            assert_eq!(
                IntakeConfig::from_env(&env).expect_err(bad).variable,
                "CORS_ALLOWED_ORIGINS"
            );
        }
    }

    #[test]
    fn a_short_ingest_key_is_refused_and_keys_never_print() {
        let short = Env::from_pairs([("INGEST_KEYS", "letmein")]);
        assert_eq!(
            IntakeConfig::from_env(&short).expect_err("short").variable,
            "INGEST_KEYS"
        );
        let key = "k".repeat(MIN_INGEST_KEY_CHARS);
        let env = Env::from_pairs([("INGEST_KEYS", key.as_str())]);
        let config = IntakeConfig::from_env(&env).expect("valid");
        assert!(config.ingest_keys[0].matches(key.as_bytes()));
        assert!(!format!("{config:?}").contains(&key));
    }

    #[test]
    fn a_sentry_dsn_gives_its_project_and_key_and_a_bad_one_names_the_variable() {
        let env = Env::from_pairs([(
            "SENTRY_DSNS",
            "https://0123456789abcdef0123456789abcdef@api.deals.example/42",
        )]);
        let config = IntakeConfig::from_env(&env).expect("valid");
        assert!(config.sentry_keys[0].matches(42, "0123456789abcdef0123456789abcdef"));
        assert!(!config.sentry_keys[0].matches(43, "0123456789abcdef0123456789abcdef"));
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        for bad in [
            "https://short@host/1",
            "https://0123456789abcdef0123@host/project",
            "0123456789abcdef0123",
        ] {
            let env = Env::from_pairs([("SENTRY_DSNS", bad)]);
            assert_eq!(
                IntakeConfig::from_env(&env).expect_err(bad).variable,
                "SENTRY_DSNS"
            );
        }
    }

    #[test]
    fn a_dsn_names_its_public_key() {
        assert_eq!(
            dsn_key("https://0123abcd@api.deals.example/42"),
            Some("0123abcd")
        );
        assert_eq!(dsn_key("https://pub:secret@host/1"), Some("pub"));
        assert_eq!(dsn_key("https://host/1"), None);
    }

    #[test]
    fn the_flag_cache_time_defaults_to_five_seconds_and_a_bad_one_names_the_variable() {
        let config = IntakeConfig::from_env(&Env::from_pairs([])).expect("valid");
        assert_eq!(config.flag_cache_time, std::time::Duration::from_secs(5));
        for bad in ["-1", "301", "soon"] {
            let env = Env::from_pairs([("FLAG_CACHE_SECONDS", bad)]);
            assert_eq!(
                IntakeConfig::from_env(&env).expect_err(bad).variable,
                "FLAG_CACHE_SECONDS"
            );
        }
    }

    #[test]
    fn the_prediction_settings_default_to_six_hours_and_a_minute_and_bad_ones_name_the_variable() {
        let config = IntakeConfig::from_env(&Env::from_pairs([])).expect("valid");
        assert_eq!(
            config.prediction_ttl,
            std::time::Duration::from_secs(6 * 60 * 60)
        );
        assert_eq!(
            config.price_model_cache_time,
            std::time::Duration::from_secs(60)
        );
        for (variable, bad) in [
            ("PREDICTION_TTL_SECONDS", "59"),
            ("PREDICTION_TTL_SECONDS", "604801"),
            ("PREDICTION_TTL_SECONDS", "6h"),
            ("PRICE_MODEL_CACHE_SECONDS", "601"),
        ] {
            let env = Env::from_pairs([(variable, bad)]);
            assert_eq!(
                IntakeConfig::from_env(&env).expect_err(bad).variable,
                variable
            );
        }
    }

    #[test]
    fn an_unknown_ip_storage_names_the_variable() {
        let env = Env::from_pairs([("ANALYTICS_IP_STORAGE", "hashed")]);
        assert_eq!(
            IntakeConfig::from_env(&env).expect_err("bad").variable,
            "ANALYTICS_IP_STORAGE"
        );
    }
}
