//! The Lambda face: direct invokes and the CloudFormation custom resource.

use std::{sync::Arc, time::Duration};

use lambda_runtime::Context;
use platform::{config::DatabaseConfig, lambda::Event};
use serde_json::{Value, json};

use crate::{Command, custom_resource, execute};

/// Time kept back from Lambda's deadline to send the FAILED reply.
const REPLY_MARGIN: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Handler {
    /// The configuration, or why it could not be loaded: reported on every
    /// invocation instead of crashing the cold start.
    config: Arc<Result<DatabaseConfig, String>>,
    http: reqwest::Client,
}

impl Handler {
    pub fn new(config: Result<DatabaseConfig, String>) -> Self {
        Self {
            config: Arc::new(config),
            http: platform::http_client::client(Duration::from_secs(10)).unwrap_or_default(),
        }
    }

    fn config(&self) -> anyhow::Result<&DatabaseConfig> {
        self.config
            .as_ref()
            .as_ref()
            .map_err(|problem| anyhow::anyhow!("{problem}"))
    }

    pub async fn handle(&self, event: Event, context: Context) -> anyhow::Result<Value> {
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
                let reply = custom_resource::answer(&request, &self.http, budget, || async {
                    let outcome = execute(self.config()?, &Command::Up).await?;
                    Ok(json!({
                        "Applied": outcome.result["applied"].as_array().map_or(0, Vec::len),
                        "AlreadyApplied": outcome.result["already_applied"],
                    }))
                })
                .await?;
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
