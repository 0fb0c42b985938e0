//! The flags as this container last read them.
//!
//! Evaluating a flag must not cost a database round trip: the whole table
//! is read at most once per `FLAG_CACHE_SECONDS` (default 5) per container,
//! and every evaluation in between reads the copy in memory. A change made
//! in the admin API is therefore seen within that time. One request
//! refreshes a stale copy while the others wait for it, so a container
//! never sends more than one such read at a time.
//!
//! Flags the application wrote that this service cannot evaluate (variants
//! or targeting that do not parse) are kept as [`Entry::Unusable`], and
//! evaluating one is an error naming what is wrong, never a guess.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use experiments::flag::{self, ExperimentStatus, Flag};
use platform::db::Pool;
use platform::{ApiError, ApiResult};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A flag as read: ready to evaluate (with its answers' JSON parts), or
/// why it cannot be.
#[derive(Debug, Clone)]
pub enum Entry {
    Ready(Flag, FlagJson),
    Unusable { problem: String },
}

/// The parts of a flag's OFREP answer that do not depend on the visitor,
/// as JSON, written once per read: a bulk answer is then assembled from
/// them, with nothing to escape or format per request.
#[derive(Debug, Clone)]
pub struct FlagJson {
    /// `"key"` (a JSON string).
    pub key: Box<[u8]>,
    /// The metadata object.
    pub metadata: Box<[u8]>,
    /// Per variant, in order.
    pub variants: Vec<VariantJson>,
}

/// A variant's id and value, each as JSON.
#[derive(Debug, Clone)]
pub struct VariantJson {
    pub id: Box<[u8]>,
    pub value: Box<[u8]>,
}

fn json_bytes(value: &impl serde::Serialize) -> Box<[u8]> {
    serde_json::to_vec(value)
        .expect("strings and JSON values serialise")
        .into_boxed_slice()
}

impl FlagJson {
    pub fn new(flag: &Flag) -> Self {
        let metadata = if flag.is_experiment {
            serde_json::json!({"experiment": true, "experimentStatus": flag.status.as_str()})
        } else {
            serde_json::json!({})
        };
        Self {
            key: json_bytes(&flag.key),
            metadata: json_bytes(&metadata),
            variants: flag
                .variants
                .iter()
                .map(|v| VariantJson {
                    id: json_bytes(&v.id),
                    value: json_bytes(&v.value()),
                })
                .collect(),
        }
    }
}

/// Every flag, by key, as of one read.
#[derive(Debug)]
pub struct Snapshot {
    pub flags: BTreeMap<String, Entry>,
    /// A digest of everything read: it changes whenever any flag's
    /// configuration does (the bulk ETag covers it).
    pub version: String,
    read_at: Instant,
}

impl Snapshot {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.flags.get(key)
    }

    /// The running experiments: what `assign` enrols visitors in.
    pub fn running_experiments(&self) -> impl Iterator<Item = &Flag> {
        self.flags.values().filter_map(|entry| match entry {
            Entry::Ready(flag, _)
                if flag.is_experiment
                    && flag.enabled
                    && flag.status == ExperimentStatus::Running =>
            {
                Some(flag)
            }
            _ => None,
        })
    }
}

/// The per-container copy of the flags.
pub struct FlagStore {
    pool: Pool,
    ttl: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held by the one request refreshing the copy.
    refreshing: tokio::sync::Mutex<()>,
}

impl FlagStore {
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|s| s.read_at.elapsed() < self.ttl)
            .cloned()
    }

    /// The flags, read from the database when the copy is older than the
    /// cache time.
    pub async fn snapshot(&self) -> ApiResult<Arc<Snapshot>> {
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        let _refreshing = self.refreshing.lock().await;
        // Another request may have refreshed it while this one waited.
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        let snapshot = Arc::new(self.read().await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }

    async fn read(&self) -> ApiResult<Snapshot> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                r#"SELECT "id", "key", "enabled", "rolloutPercentage", "variants", "targetSegments",
                          "isExperiment", "experimentStatus", "winningVariant"
                   FROM "feature_flags" ORDER BY "key""#,
                &[],
            )
            .await
            .map_err(ApiError::internal("reading the flags"))?;
        let mut digest = Sha256::new();
        let mut flags = BTreeMap::new();
        for row in &rows {
            let id: String = row.get(0);
            let key: String = row.get(1);
            let enabled: bool = row.get(2);
            let rollout: i32 = row.get(3);
            let variants: Value = row.get(4);
            let targeting: Option<Value> = row.get(5);
            let is_experiment: bool = row.get(6);
            let status: Option<String> = row.get(7);
            let winner: Option<String> = row.get(8);
            let described = serde_json::json!([
                id,
                key,
                enabled,
                rollout,
                variants,
                targeting,
                is_experiment,
                status,
                winner
            ]);
            digest.update(described.to_string().as_bytes());
            digest.update(b"\n");
            let entry = match (
                flag::parse_variants(&variants),
                flag::parse_targeting(targeting.as_ref().unwrap_or(&Value::Null)),
            ) {
                (Ok(variants), Ok(targeting)) => {
                    let flag = Flag {
                        id,
                        key: key.clone(),
                        enabled,
                        rollout_percentage: rollout,
                        variants,
                        targeting,
                        is_experiment,
                        status: ExperimentStatus::from_stored(status.as_deref()),
                        winning_variant: winner,
                    };
                    let json = FlagJson::new(&flag);
                    Entry::Ready(flag, json)
                }
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(flag = %key, %error, "a stored flag cannot be evaluated");
                    Entry::Unusable {
                        problem: format!("the flag's configuration is invalid: {error}"),
                    }
                }
            };
            flags.insert(key, entry);
        }
        Ok(Snapshot {
            flags,
            version: hex(&digest.finalize()),
            read_at: Instant::now(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
