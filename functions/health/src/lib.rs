//! Health monitoring: probes, their records, and the endpoint.
//!
//! A schedule (EventBridge, every few minutes) probes the database and each
//! configured HTTP dependency and writes one `health_checks` row per
//! service. `GET /api/health` combines a live database probe with the latest
//! recorded status of every other service; `GET /api/health/history` reports
//! recent checks and uptime.

pub mod config;
pub mod probe;
pub mod routes;
pub mod store;

use std::sync::{Arc, Mutex};

use axum::Router;
use lambda_runtime::Context;
use platform::metrics::Metric;
use platform::{
    config::{DatabaseConfig, Env},
    db::{Checkout, Pool},
    lambda::{Event, Function},
};
use serde_json::{Value, json};

pub use config::{HealthConfig, HttpTarget};
pub use probe::{Probe, Status};
pub use routes::openapi;

/// The function, built once per container from its settings: by `main.rs`
/// and by every test.
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    router: Router,
}

impl App {
    pub fn build(env: &Env) -> anyhow::Result<Self> {
        let database = DatabaseConfig::from_env(env)?;
        let state = AppState::new(
            platform::db::pool(&database, Checkout::Verified)?,
            HealthConfig::from_env(env)?,
        )?;
        Ok(Self {
            router: routes::router(state.clone()),
            state,
        })
    }
}

impl Function for App {
    fn router(&self) -> Router {
        self.router.clone()
    }

    async fn on_event(&self, event: Event, _: Context) -> anyhow::Result<Value> {
        on_event(&self.state, event).await
    }
}

/// What every request and scheduled run needs, built once per container.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<HealthConfig>,
    pub http: platform::http_client::LazyClient,
    /// Checks that could not be recorded (the database was down when they
    /// ran), with when they ran: recorded by the next run that can.
    unrecorded: Arc<Mutex<Vec<store::Check>>>,
}

/// Most unrecorded checks a container keeps: a day of runs every five
/// minutes for a handful of services. The oldest go first.
pub const MAX_UNRECORDED: usize = 2_000;

impl AppState {
    pub fn new(pool: Pool, config: HealthConfig) -> anyhow::Result<Self> {
        let http = platform::http_client::LazyClient::new(config.http_timeout);
        Ok(Self {
            pool,
            config: Arc::new(config),
            http,
            unrecorded: Arc::default(),
        })
    }
}

/// Probes everything, records the results (and those of earlier runs that
/// could not be recorded), prunes old rows.
///
/// With the database down nothing can be recorded, and the history would
/// show a gap exactly when it matters: the verdicts go to the log at once,
/// and are kept in the container until a run can record them, with the time
/// they were taken. A container that is recycled in between loses them;
/// the log line keeps every verdict either way.
pub async fn run_checks(state: &AppState) -> anyhow::Result<Vec<Probe>> {
    let threshold = state.config.degraded_threshold;
    let mut probes = vec![probe::database(&state.pool, threshold).await];
    let http_probes = if state.config.http_targets.is_empty() {
        Vec::new()
    } else {
        let http = state.http.get()?;
        futures_util::future::join_all(
            state
                .config
                .http_targets
                .iter()
                .map(|target| probe::http(http, target, threshold)),
        )
        .await
    };
    probes.extend(http_probes);
    let taken_at = platform::clock::now_millis();
    let mut checks =
        std::mem::take(&mut *state.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
    let late = checks.len();
    checks.extend(
        probes
            .iter()
            .cloned()
            .map(|probe| store::Check { taken_at, probe }),
    );
    let recorded = async {
        let mut client = state.pool.get().await?;
        let tx = client.transaction().await?;
        store::record(&*tx, &checks).await?;
        let pruned = store::prune(&*tx, state.config.retention).await?;
        tx.commit().await?;
        anyhow::Ok(pruned)
    }
    .await;
    for probe in &probes {
        platform::metrics::emit(
            "health",
            Some(("Service", &probe.service)),
            &[Metric::count(
                "HealthCheckDown",
                usize::from(probe.status == Status::Down),
            )],
        );
    }
    platform::metrics::emit(
        "health",
        None,
        &[Metric::count(
            "HealthRecordFailed",
            usize::from(recorded.is_err()),
        )],
    );
    let pruned = match recorded {
        Ok(pruned) => pruned,
        Err(error) => {
            tracing::error!(probes = ?probes, "health checks could not be recorded; kept for the next run");
            let mut unrecorded = state.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            let overflow = (checks.len() + unrecorded.len()).saturating_sub(MAX_UNRECORDED);
            checks.drain(..overflow.min(checks.len()));
            unrecorded.splice(0..0, checks);
            return Err(error.context("recording health checks"));
        }
    };
    tracing::info!(
        services = probes.len(),
        down = probes.iter().filter(|p| p.status == Status::Down).count(),
        late,
        pruned,
        "health checks recorded"
    );
    Ok(probes)
}

/// Non-HTTP invocations: the schedule, or a direct `{"command": "check"}`.
pub async fn on_event(state: &AppState, event: Event) -> anyhow::Result<Value> {
    match event {
        Event::Schedule(_) => {}
        Event::Direct(payload)
            if payload.get("command").and_then(Value::as_str) == Some("check") => {}
        other => {
            anyhow::bail!("health answers schedules and {{\"command\": \"check\"}}, not {other:?}")
        }
    }
    let probes = run_checks(state).await?;
    Ok(json!({ "checks": probes }))
}
