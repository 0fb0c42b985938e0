//! The admin function as deployed: an API Gateway v2 payload, whose cookies
//! arrive in their own `cookies` array, and the binary's command line.

use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn an_api_gateway_v2_request_is_authenticated_from_its_cookies_array() {
    let app = spawn_app().await;
    let token = app.admin("root", "super_admin", None).await;
    app.error_group("g1", "fp", "error", "boom").await;
    let mut payload = testkit::fixture("apigw-v2-request.json");
    payload["rawPath"] = "/api/admin/errors/g1".into();
    payload["rawQueryString"] = "".into();
    payload["queryStringParameters"] = json!({});
    payload["requestContext"]["http"]["path"] = "/api/admin/errors/g1".into();
    payload["requestContext"]["http"]["method"] = "PATCH".into();
    payload["requestContext"]["http"]["sourceIp"] = "198.51.100.23".into();
    payload["requestContext"]["requestId"] = "gateway-request-1".into();
    payload["headers"]["content-type"] = "application/json".into();
    payload["cookies"] = json!([
        "theme=dark",
        format!("__Secure-next-auth.session-token={token}")
    ]);
    payload["body"] = json!({"resolved": true}).to_string().into();
    payload["isBase64Encoded"] = false.into();
    let response = platform::lambda::invoke(
        &app.function,
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
    )
    .await
    .expect("invocation");
    assert_eq!(response["statusCode"], 200, "{response}");
    let row = app.audit_rows().await.pop().expect("audit row");
    assert_eq!(row["ipAddress"], "198.51.100.23");
    assert_eq!(row["requestId"], "gateway-request-1");
}

#[tokio::test]
async fn the_command_line_bootstraps_the_first_admin_and_verifies_the_trail() {
    let app = spawn_app().await;
    app.user("ada").await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_admin"))
            .args(args)
            .env("POSTGRES_URL", app.db.url())
            .env_remove("POSTGRES_URL_NON_POOLING")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run admin")
    };
    let done = run(&["bootstrap-admin", "--email", "ada@example.com"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("\"userId\": \"ada\""));
    let again = run(&["bootstrap-admin", "--email", "ada@example.com"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds super_admin"));
    let verified = run(&["audit-verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("\"intact\": true"));
    let usage = run(&["make-me-admin"]);
    assert_eq!(usage.status.code(), Some(2));
}
