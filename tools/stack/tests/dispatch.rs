//! The local server reaches every deployed route: none of them gets the
//! stack's own "route not found", which is what a route missing from
//! `Stack::dispatch` would get (the API tests fuzz the routes through it).

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use testkit::TestDatabase;
use tower::ServiceExt;

#[tokio::test]
async fn every_deployed_route_reaches_its_function() {
    let db = TestDatabase::migrated().await;
    let stack =
        stack::Stack::build(&db.env(&[("NEXTAUTH_SECRET", "a-secret-for-the-dispatch-test")]))
            .expect("the stack");
    let mut unreached = Vec::new();
    for (method, path) in testkit::deployed_routes() {
        let uri = path
            .replace("{projectId}", "42")
            .replace("{key}", "no-such-flag")
            .replace("{userId}", "nobody")
            .replace("{id}", "nothing")
            .replace("{slug}", "no-such-deal");
        let request = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .body(Body::empty())
            .expect("a request");
        let answer = stack.router().oneshot(request).await.expect("an answer");
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("a body");
        if status == StatusCode::NOT_FOUND
            && String::from_utf8_lossy(&body).contains("route not found")
        {
            unreached.push(format!("{method} {path}"));
        }
    }
    assert!(unreached.is_empty(), "not dispatched: {unreached:?}");
}
