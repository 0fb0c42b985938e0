//! An HTTP Lambda function that answers "ok": what any function of the
//! bundle costs at cold start before it does anything of its own.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(
        |_request: lambda_http::Request| async { Ok::<_, lambda_http::Error>("ok") },
    ))
    .await
}
