//! The CloudFormation custom resource that migrates at every deploy.
//!
//! CloudFormation waits for a reply PUT to the request's presigned
//! `ResponseURL`; a handler that never replies leaves the stack waiting for
//! up to the resource's `ServiceTimeout`. So every path replies: success,
//! an error, a panic, and running out of time (the work is abandoned a few
//! seconds before Lambda's deadline, which rolls its transaction back, and
//! FAILED is sent while there is still time).
//!
//! - Create and Update apply pending migrations.
//! - Delete succeeds without touching the database: deleting the stack must
//!   never drop a shared production schema.
//! - The PhysicalResourceId never changes: a new id on Update would make
//!   CloudFormation treat it as a replacement and send a Delete for the old.
//!
//! <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html>

use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::Value;

/// The id of the one schema this resource manages.
pub const PHYSICAL_RESOURCE_ID: &str = "schema-migrations";

/// CloudFormation rejects response bodies over 4096 bytes.
const MAX_REASON_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReplyStatus {
    Success,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    pub status: ReplyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

struct Envelope<'a> {
    response_url: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
    physical_resource_id: Option<&'a str>,
    migrates: bool,
}

fn envelope(request: &CloudFormationCustomResourceRequest) -> Option<Envelope<'_>> {
    Some(match request {
        CloudFormationCustomResourceRequest::Create(r) => Envelope {
            response_url: &r.response_url,
            stack_id: &r.stack_id,
            request_id: &r.request_id,
            logical_resource_id: &r.logical_resource_id,
            physical_resource_id: None,
            migrates: true,
        },
        CloudFormationCustomResourceRequest::Update(r) => Envelope {
            response_url: &r.response_url,
            stack_id: &r.stack_id,
            request_id: &r.request_id,
            logical_resource_id: &r.logical_resource_id,
            physical_resource_id: Some(&r.physical_resource_id),
            migrates: true,
        },
        CloudFormationCustomResourceRequest::Delete(r) => Envelope {
            response_url: &r.response_url,
            stack_id: &r.stack_id,
            request_id: &r.request_id,
            logical_resource_id: &r.logical_resource_id,
            physical_resource_id: Some(&r.physical_resource_id),
            migrates: false,
        },
        _ => return None,
    })
}

/// Runs `migrate` for Create/Update (nothing for Delete), within
/// `time_budget`, and PUTs the reply. Returns the reply sent.
pub async fn answer<F, Fut>(
    request: &CloudFormationCustomResourceRequest,
    http: &reqwest::Client,
    time_budget: Duration,
    migrate: F,
) -> anyhow::Result<Reply>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    let Some(envelope) = envelope(request) else {
        anyhow::bail!("unknown CloudFormation request type");
    };
    let outcome: anyhow::Result<Value> = if envelope.migrates {
        match tokio::time::timeout(time_budget, AssertUnwindSafe(migrate()).catch_unwind()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(anyhow::anyhow!("the migration handler panicked")),
            Err(_elapsed) => Err(anyhow::anyhow!(
                "migration did not finish within {} s and was rolled back; raise the function timeout",
                time_budget.as_secs()
            )),
        }
    } else {
        Ok(serde_json::json!({ "deleted": "nothing: the schema outlives the stack" }))
    };
    let (status, reason, data) = match outcome {
        Ok(data) => (ReplyStatus::Success, None, Some(data)),
        Err(error) => {
            tracing::error!(error = ?error, "custom resource request failed");
            let mut reason = format!("{error:#}");
            if reason.chars().count() > MAX_REASON_CHARS {
                reason = reason.chars().take(MAX_REASON_CHARS).collect::<String>() + "...";
            }
            (ReplyStatus::Failed, Some(reason), None)
        }
    };
    let reply = Reply {
        status,
        reason,
        physical_resource_id: envelope
            .physical_resource_id
            .unwrap_or(PHYSICAL_RESOURCE_ID)
            .to_owned(),
        stack_id: envelope.stack_id.to_owned(),
        request_id: envelope.request_id.to_owned(),
        logical_resource_id: envelope.logical_resource_id.to_owned(),
        data,
    };
    put(http, envelope.response_url, &reply).await?;
    Ok(reply)
}

/// PUTs the reply, retrying transient failures. No Content-Type header: the
/// presigned S3 URL is signed without one.
async fn put(http: &reqwest::Client, url: &str, reply: &Reply) -> anyhow::Result<()> {
    let body = serde_json::to_string(reply)?;
    let mut last_error = None;
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
        match http.put(url).body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                last_error = Some(anyhow::anyhow!(
                    "ResponseURL answered {}",
                    response.status()
                ))
            }
            Err(error) => last_error = Some(error.into()),
        }
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context("sending the CloudFormation reply"))
}
