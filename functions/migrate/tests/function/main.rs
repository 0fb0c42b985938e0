//! The migrate function end to end: real payloads in, real database, and a
//! local listener standing in for CloudFormation's presigned ResponseURL.

mod custom_resource;
mod direct;

use std::time::Duration;

use axum::{Router, body::Bytes, http::HeaderMap, routing::put};
use lambda_runtime::{Context, LambdaEvent};
use migrate::App;
use platform::config::Env;
use serde_json::Value;
use tokio::sync::mpsc;

pub struct Captured {
    pub headers: HeaderMap,
    pub body: Value,
}

/// A local stand-in for the presigned S3 URL CloudFormation waits on.
pub async fn response_listener() -> (String, mpsc::UnboundedReceiver<Captured>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/{*path}",
        put(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = sender.send(Captured { headers, body });
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://{address}/cr-response-key?sig-params=sig-values"),
        receiver,
    )
}

/// The function, built by the constructor `main.rs` uses, for the database
/// at `url`.
pub fn handler_for(url: &str) -> App {
    App::build(&Env::from_pairs([("POSTGRES_URL", url)]))
}

/// A context with a minute left, like a real invocation.
pub fn context() -> Context {
    let mut context = Context::default();
    let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
    let since_epoch = in_a_minute
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    context.deadline = u64::try_from(since_epoch.as_millis()).expect("fits");
    context
}

/// Invokes the function as the Lambda runtime would: raw JSON through the
/// shared dispatch.
pub async fn invoke(function: &App, payload: Value) -> Result<Value, lambda_runtime::Error> {
    platform::lambda::invoke(function, LambdaEvent::new(payload, context())).await
}
