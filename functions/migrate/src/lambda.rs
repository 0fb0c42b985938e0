//! The Lambda face: direct invokes and the CloudFormation custom resource.

use std::{sync::Arc, time::Duration};

use axum::Router;
use lambda_runtime::Context;
use platform::{
    config::{DatabaseConfig, Env},
    lambda::{Event, Function},
};
use serde_json::{Value, json};

use crate::{Command, custom_resource, execute};

/// Time kept back from Lambda's deadline to send the FAILED reply.
const REPLY_MARGIN: Duration = Duration::from_secs(10);

/// The function, built once per container from its settings: by `main.rs`
/// and by every test.
#[derive(Clone)]
pub struct App {
    /// The configuration, or why it could not be loaded: reported on every
    /// invocation instead of crashing the cold start, so that a bad
    /// configuration still reaches CloudFormation as FAILED with its reason.
    config: Arc<Result<DatabaseConfig, String>>,
    http: platform::http_client::LazyClient,
}

impl App {
    pub fn build(env: &Env) -> Self {
        Self {
            config: Arc::new(DatabaseConfig::from_env(env).map_err(|e| e.to_string())),
            http: platform::http_client::LazyClient::new(Duration::from_secs(10)),
        }
    }

    fn config(&self) -> anyhow::Result<&DatabaseConfig> {
        self.config
            .as_ref()
            .as_ref()
            .map_err(|problem| anyhow::anyhow!("{problem}"))
    }
}

impl Function for App {
    /// migrate has no routes; an HTTP request gets the JSON 404.
    fn router(&self) -> Router {
        platform::http::finish("migrate", Router::new())
    }

    async fn on_event(&self, event: Event, context: Context) -> anyhow::Result<Value> {
        match event {
            Event::Direct(payload) => {
                let command: Command = serde_json::from_value(payload).map_err(|e| {
                    anyhow::anyhow!("expected {{\"command\": \"up\" | \"status\" | \"verify\" | \"down\" | \"resolve\"}}: {e}")
                })?;
                let outcome = execute(self.config()?, &command).await?;
                Ok(json!({ "ok": outcome.ok, "result": outcome.result }))
            }
            Event::CustomResource(request) => {
                let budget = time_budget(&context);
                // The reply must go out whatever happens: a default client if
                // ours cannot be made.
                let http = self.http.get().cloned().unwrap_or_default();
                let reply = custom_resource::answer(&request, &http, budget, || async {
                    let outcome = execute(self.config()?, &Command::Up).await?;
                    Ok(json!({
                        "Applied": outcome.result["applied"].as_array().map_or(0, Vec::len),
                        "AlreadyApplied": outcome.result["already_applied"],
                    }))
                })
                .await?;
                // The alarm on a failed migration reads this.
                platform::metrics::emit(
                    "migrate",
                    None,
                    &[platform::metrics::Metric::count(
                        "MigrationFailed",
                        usize::from(reply.status == custom_resource::ReplyStatus::Failed),
                    )],
                );
                Ok(serde_json::to_value(reply)?)
            }
            Event::Schedule(_) => anyhow::bail!("migrate is not meant to run on a schedule"),
        }
    }
}

fn time_budget(context: &Context) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(context.deadline.saturating_sub(now_ms));
    left.checked_sub(REPLY_MARGIN)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}
