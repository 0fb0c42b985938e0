//! One binary, every kind of invocation.
//!
//! A function answers HTTP (API Gateway HTTP API payload v2, function URLs)
//! and non-HTTP events (EventBridge schedules, CloudFormation custom
//! resources, direct invokes) from the same deployment. The runtime hands
//! over raw JSON; [`Invocation::classify`] decides what it is:
//!
//! - `requestContext` present: HTTP, served by the function's axum router
//!   through lambda_http's own request/response conversion, exactly as
//!   `lambda_http::run` would.
//! - `source` `aws.events` with `detail-type` `Scheduled Event`: a schedule.
//! - `RequestType`, `ResponseURL` and `StackId`: a CloudFormation custom
//!   resource request.
//! - anything else: a direct invoke, passed on as JSON.

use std::{convert::Infallible, future::Future};

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use axum::Router;
use lambda_http::{Adapter, request::LambdaRequest};
use lambda_runtime::{Context, LambdaEvent, Service, service_fn};
use serde::Deserialize;
use serde_json::Value;

/// An EventBridge scheduled event (the fields a handler may want).
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduledEvent {
    pub id: String,
    pub time: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub resources: Vec<String>,
}

/// A non-HTTP invocation.
#[derive(Debug)]
pub enum Event {
    Schedule(ScheduledEvent),
    CustomResource(Box<CloudFormationCustomResourceRequest>),
    Direct(Value),
}

/// What the runtime delivered.
#[derive(Debug)]
pub enum Invocation {
    Http(Box<LambdaRequest>),
    Event(Event),
}

impl Invocation {
    pub fn classify(payload: Value) -> Result<Self, serde_json::Error> {
        let has = |key: &str| payload.get(key).is_some();
        if has("requestContext") {
            return Ok(Self::Http(Box::new(serde_json::from_value(payload)?)));
        }
        if payload.get("source").and_then(Value::as_str) == Some("aws.events")
            && payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        {
            return Ok(Self::Event(Event::Schedule(serde_json::from_value(
                payload,
            )?)));
        }
        if has("RequestType") && has("ResponseURL") && has("StackId") {
            return Ok(Self::Event(Event::CustomResource(Box::new(
                serde_json::from_value(payload)?,
            ))));
        }
        Ok(Self::Event(Event::Direct(payload)))
    }
}

/// A function as the Lambda runtime runs it: its HTTP router, and its
/// answer to every other kind of invocation. Each function of the bundle
/// has one value of this, built by one constructor from its settings, which
/// `main.rs` runs and every test calls.
pub trait Function: Clone + Send + Sync + 'static {
    /// The function's routes, with [`crate::http::finish`] around them.
    fn router(&self) -> Router;

    /// Schedules, custom resources and direct invokes.
    fn on_event(
        &self,
        event: Event,
        context: Context,
    ) -> impl Future<Output = anyhow::Result<Value>> + Send;
}

/// Whether this process is a Lambda runtime's (the runtime API is there to
/// ask for invocations); otherwise it was started by hand, as a tool.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Answers one invocation: HTTP through the function's router, everything
/// else through its `on_event`.
pub async fn invoke<F: Function>(
    function: &F,
    invocation: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let LambdaEvent { payload, context } = invocation;
    match Invocation::classify(payload)? {
        Invocation::Http(request) => {
            let mut adapter: Adapter<'_, _, Router> = Adapter::from(function.router());
            let response = adapter
                .call(LambdaEvent::new(*request, context))
                .await
                .map_err(|never: Infallible| match never {})?;
            Ok(serde_json::to_value(response)?)
        }
        Invocation::Event(event) => function.on_event(event, context).await.map_err(|error| {
            tracing::error!(error = ?error, "event handler failed");
            error.into()
        }),
    }
}

/// A binary's exit code for how its runtime loop ended, the error logged.
pub fn exit_code(ended: Result<(), lambda_runtime::Error>) -> std::process::ExitCode {
    match ended {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "runtime stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the Lambda runtime loop for `function`.
pub async fn run<F: Function>(function: F) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |invocation: LambdaEvent<Value>| {
        let function = function.clone();
        async move { invoke(&function, invocation).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    #[test]
    fn api_gateway_v2_payloads_are_http() {
        assert!(matches!(
            Invocation::classify(fixture("apigw-v2-request.json")),
            Ok(Invocation::Http(_))
        ));
    }

    #[test]
    fn eventbridge_schedules_are_schedules() {
        assert!(matches!(
            Invocation::classify(fixture("eventbridge-schedule.json")),
            Ok(Invocation::Event(Event::Schedule(_)))
        ));
    }

    #[test]
    fn cloudformation_requests_are_custom_resources() {
        for name in [
            "cloudformation-create.json",
            "cloudformation-update.json",
            "cloudformation-delete.json",
        ] {
            assert!(
                matches!(
                    Invocation::classify(fixture(name)),
                    Ok(Invocation::Event(Event::CustomResource(_)))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn anything_else_is_a_direct_invoke() {
        assert!(matches!(
            Invocation::classify(serde_json::json!({"command": "status"})),
            Ok(Invocation::Event(Event::Direct(_)))
        ));
    }

    /// Answers `GET /api/ping` and says whether an event was a schedule.
    #[derive(Clone)]
    struct Ping;

    impl Function for Ping {
        fn router(&self) -> Router {
            Router::new().route("/api/ping", get(|| async { "pong" }))
        }

        async fn on_event(&self, event: Event, _: Context) -> anyhow::Result<Value> {
            Ok(serde_json::json!({"schedule": matches!(event, Event::Schedule(_))}))
        }
    }

    #[tokio::test]
    async fn http_invocations_reach_the_router_and_return_an_api_gateway_response() {
        let mut payload = fixture("apigw-v2-request.json");
        payload["rawPath"] = "/api/ping".into();
        payload["requestContext"]["http"]["path"] = "/api/ping".into();
        let response = invoke(&Ping, LambdaEvent::new(payload, Context::default()))
            .await
            .expect("handled");
        assert_eq!(response["statusCode"], 200);
        assert_eq!(response["body"], "pong");
    }

    #[tokio::test]
    async fn events_reach_the_event_handler() {
        let response = invoke(
            &Ping,
            LambdaEvent::new(fixture("eventbridge-schedule.json"), Context::default()),
        )
        .await
        .expect("handled");
        assert_eq!(response["schedule"], true);
    }
}
