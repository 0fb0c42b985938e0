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

/// Answers one invocation: HTTP through `router`, everything else through
/// `on_event`.
pub async fn handle<H, Fut>(
    router: Router,
    on_event: &H,
    invocation: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error>
where
    H: Fn(Event, Context) -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    let LambdaEvent { payload, context } = invocation;
    match Invocation::classify(payload)? {
        Invocation::Http(request) => {
            let mut adapter: Adapter<'_, _, Router> = Adapter::from(router);
            let response = adapter
                .call(LambdaEvent::new(*request, context))
                .await
                .map_err(|never: Infallible| match never {})?;
            Ok(serde_json::to_value(response)?)
        }
        Invocation::Event(event) => on_event(event, context).await.map_err(|error| {
            tracing::error!(error = ?error, "event handler failed");
            error.into()
        }),
    }
}

/// Runs the Lambda runtime loop for a function with both faces.
pub async fn serve<H, Fut>(router: Router, on_event: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Event, Context) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Value>> + Send,
{
    lambda_runtime::run(service_fn(move |invocation: LambdaEvent<Value>| {
        let router = router.clone();
        let on_event = on_event.clone();
        async move { handle(router, &on_event, invocation).await }
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

    #[tokio::test]
    async fn http_invocations_reach_the_router_and_return_an_api_gateway_response() {
        let router = Router::new().route("/api/ping", get(|| async { "pong" }));
        let mut payload = fixture("apigw-v2-request.json");
        payload["rawPath"] = "/api/ping".into();
        payload["requestContext"]["http"]["path"] = "/api/ping".into();
        let never_called = |_: Event, _: Context| async { anyhow::bail!("not an event") };
        let response = handle(
            router,
            &never_called,
            LambdaEvent::new(payload, Context::default()),
        )
        .await
        .expect("handled");
        assert_eq!(response["statusCode"], 200);
        assert_eq!(response["body"], "pong");
    }

    #[tokio::test]
    async fn events_reach_the_event_handler() {
        let on_event = |event: Event, _: Context| async move {
            Ok(serde_json::json!({"schedule": matches!(event, Event::Schedule(_))}))
        };
        let response = handle(
            Router::new(),
            &on_event,
            LambdaEvent::new(fixture("eventbridge-schedule.json"), Context::default()),
        )
        .await
        .expect("handled");
        assert_eq!(response["schedule"], true);
    }
}
