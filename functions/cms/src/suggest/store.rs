//! The container's copy of the index, and when it is read again.
//!
//! - The first suggestion request of a container loads every row of
//!   `search_suggestions` and builds the [`Index`] (the cold answer waits
//!   for it).
//! - After `SUGGESTION_CACHE_SECONDS` (default 60) a request still answers
//!   from the index it finds, and starts a check in the background (one at
//!   a time): `count(*)` and `max("updatedAt")`, read in one statement. A
//!   change of either reloads; no change only restarts the clock. No
//!   request waits for a check: stale-while-revalidate, as the CDN does.
//!   Every writer of this bundle sets `updatedAt` (the popularity job
//!   too), and an insert or delete changes the count; what the check
//!   cannot see is a write by another application that keeps `updatedAt`
//!   and the count, and that is seen at the next change.
//! - An admin change made through this container reloads before its
//!   answer is sent ([`SuggestionStore::changed`]), so the next query here
//!   sees it; other containers see it after their next check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use platform::{ApiError, ApiResult, config::Env, db::Pool};

use super::index::{Entry, Index, IndexBuilder, Kind};

/// Default of `SUGGESTION_CACHE_SECONDS`.
pub const DEFAULT_CACHE_SECONDS: u64 = 60;

/// What the cheap check reads: a change of either means a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    rows: i64,
    updated: Option<NaiveDateTime>,
}

/// An index and the state of the table it was built from.
pub struct Loaded {
    pub index: Index,
    fingerprint: Fingerprint,
    /// How long reading and building took, and reading alone.
    pub load_time: Duration,
    pub read_time: Duration,
}

/// The suggestion index of this container.
pub struct SuggestionStore {
    pool: Pool,
    max_age: Duration,
    current: RwLock<Option<Arc<Loaded>>>,
    /// When the current index was last known to match the table.
    checked_at: Mutex<Instant>,
    /// Serialises loads: concurrent first requests build one index.
    loading: tokio::sync::Mutex<()>,
    checking: AtomicBool,
    /// A change was made here but its reload failed: the next request
    /// loads before answering.
    dirty: AtomicBool,
}

const FINGERPRINT: &str = r#"SELECT count(*), max("updatedAt") FROM "search_suggestions""#;

/// Every row, with what the fingerprint is made of: one statement is one
/// snapshot, so the index and its fingerprint cannot disagree, and no
/// second scan counts the rows.
const ALL_ROWS: &str = r#"SELECT "id", "query", "type", "code", "name", "country", "popularity", "metadata",
        "updatedAt"
    FROM "search_suggestions""#;

impl SuggestionStore {
    /// Reads `SUGGESTION_CACHE_SECONDS`; loads nothing yet.
    pub fn from_env(pool: Pool, env: &Env) -> anyhow::Result<Self> {
        let seconds: u64 = env.parsed_or("SUGGESTION_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)?;
        Ok(Self::new(pool, Duration::from_secs(seconds)))
    }

    pub fn new(pool: Pool, max_age: Duration) -> Self {
        Self {
            pool,
            max_age,
            current: RwLock::new(None),
            checked_at: Mutex::new(Instant::now()),
            loading: tokio::sync::Mutex::new(()),
            checking: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Option<Arc<Loaded>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn install(&self, loaded: Arc<Loaded>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(loaded);
        self.touch();
    }

    fn touch(&self) {
        *self
            .checked_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn is_stale(&self) -> bool {
        self.checked_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            >= self.max_age
    }

    /// The index to answer from: loaded now if there is none (or a change
    /// here awaits its reload), else the current one, with a check started
    /// in the background when it is stale.
    pub async fn index(self: &Arc<Self>) -> ApiResult<Arc<Loaded>> {
        if !self.dirty.load(Ordering::Acquire)
            && let Some(loaded) = self.snapshot()
        {
            if self.is_stale() && !self.checking.swap(true, Ordering::AcqRel) {
                let store = Arc::clone(self);
                tokio::spawn(async move {
                    if let Err(error) = store.check().await {
                        tracing::warn!(
                            ?error,
                            "suggestion index check failed; serving the old one"
                        );
                    }
                    store.checking.store(false, Ordering::Release);
                });
            }
            return Ok(loaded);
        }
        let _loading = self.loading.lock().await;
        if !self.dirty.load(Ordering::Acquire)
            && let Some(loaded) = self.snapshot()
        {
            return Ok(loaded);
        }
        self.reload_locked().await
    }

    /// After a change made through this container: the index is read
    /// again before the change is answered. A failed reload leaves the
    /// next request to load.
    pub async fn changed(&self) {
        self.dirty.store(true, Ordering::Release);
        let _loading = self.loading.lock().await;
        if let Err(error) = self.reload_locked().await {
            tracing::warn!(?error, "reloading suggestions after a change failed");
        }
    }

    async fn check(&self) -> anyhow::Result<()> {
        let Some(loaded) = self.snapshot() else {
            return Ok(());
        };
        let client = self.pool.get().await?;
        let row = client.query_one(FINGERPRINT, &[]).await?;
        let now = Fingerprint {
            rows: row.get(0),
            updated: row.get(1),
        };
        drop(client);
        if now == loaded.fingerprint {
            self.touch();
            return Ok(());
        }
        let _loading = self.loading.lock().await;
        self.reload_locked().await?;
        Ok(())
    }

    /// Reads the table and installs its index; the caller holds `loading`.
    async fn reload_locked(&self) -> ApiResult<Arc<Loaded>> {
        let loaded = Arc::new(load(&self.pool).await?);
        self.install(Arc::clone(&loaded));
        self.dirty.store(false, Ordering::Release);
        tracing::info!(
            suggestions = loaded.index.len(),
            words = loaded.index.words(),
            load_ms = loaded.load_time.as_millis(),
            read_ms = loaded.read_time.as_millis(),
            "suggestion index loaded"
        );
        Ok(loaded)
    }
}

/// Every row and the fingerprint they match, read in one statement.
/// Rows are turned into suggestions and their words indexed as they
/// arrive, while PostgreSQL is still sending the rest; `read_time` ends
/// with the last row, so it includes that share of the build.
pub async fn load(pool: &Pool) -> ApiResult<Loaded> {
    use futures_util::TryStreamExt as _;
    let started = Instant::now();
    let client = pool.get().await?;
    let rows = client
        .query_raw(
            ALL_ROWS,
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await
        .map_err(ApiError::internal("reading the suggestions"))?;
    let mut rows = std::pin::pin!(rows);
    let mut builder = IndexBuilder::default();
    let mut fingerprint = Fingerprint {
        rows: 0,
        updated: None,
    };
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(ApiError::internal("reading the suggestions"))?
    {
        fingerprint.rows += 1;
        let updated: NaiveDateTime = row.get(8);
        fingerprint.updated = fingerprint.updated.max(Some(updated));
        // Rows written by another application may hold a type this API
        // does not know: they are not suggested.
        let Some(kind) = Kind::parse(row.get::<_, &str>(2)) else {
            continue;
        };
        // Borrowed from the row: the builder copies the texts into the
        // index's one string.
        let metadata =
            row.get::<_, Option<tokio_postgres::types::Json<&serde_json::value::RawValue>>>(7);
        let suggestion = Entry {
            id: row.get(0),
            query: row.get(1),
            kind,
            code: row.get(3),
            name: row.get(4),
            country: row.get(5),
            popularity: row.get(6),
            metadata: metadata.map(|m| m.0.get()),
        };
        builder.add(&suggestion).map_err(ApiError::Internal)?;
    }
    drop(client);
    let read_time = started.elapsed();
    let index = builder.finish().map_err(ApiError::Internal)?;
    Ok(Loaded {
        index,
        fingerprint,
        load_time: started.elapsed(),
        read_time,
    })
}
