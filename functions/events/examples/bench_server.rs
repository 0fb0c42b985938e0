//! The events router on a loopback socket, for `bench/intake.sh` and
//! `bench/flags.sh`: the real HTTP stack of the function (axum, body
//! reading, validation, the pool, SQL), built by the function's own
//! constructor from the same settings, without Lambda's runtime API in
//! between. Prints the bound address.
//!
//! The runtime is the one `main.rs` deploys: tokio's current-thread
//! runtime. The benchmark's concurrent connections stand for as many Lambda
//! instances, each with a CPU of its own; here they share one thread, so
//! the server side gets less CPU than in production, not more. (A
//! multi-thread runtime measured worse for single events on this 2-core
//! machine: the handler and the database connection's task wake each other
//! across threads; see bench/README.md.)
//!
//! With `BENCH_PRECOMPUTED_BODY` (a file), the same server also answers
//! `POST /bench/precomputed` with that file's bytes, behind the same
//! middleware as every route: the baseline of `bench/flags.sh`, an answer
//! of the same size that costs nothing to compute.

use axum::{Router, body::Bytes, routing::post};
use platform::{config::Env, lambda::Function};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let app = events::App::build(&Env::process())?;
    let router = match std::env::var("BENCH_PRECOMPUTED_BODY") {
        Ok(path) => {
            let body = Bytes::from(std::fs::read(path)?);
            let precomputed = Router::new().route(
                "/bench/precomputed",
                post(move |_request: Bytes| {
                    let body = body.clone();
                    async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
                }),
            );
            events::routes::router_with(app.state.clone(), precomputed)
        }
        Err(_) => app.router(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
