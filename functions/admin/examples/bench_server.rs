//! The admin router on a loopback socket, for the benchmarks under
//! `bench/`: the function's real HTTP stack (the session screen, the
//! permission check, the pool, SQL, JSON), built by its own constructor
//! from the same settings, without Lambda's runtime API in between.
//! Prints the bound address, then, when `BENCH_SESSION_USER` is set, a
//! NextAuth v4 session token for that user minted with `NEXTAUTH_SECRET`
//! (as the site would mint it), so a benchmark can call admin routes.
//!
//! The runtime is the one `main.rs` deploys: tokio's current-thread
//! runtime, one core's worth of server per Lambda instance.

use platform::{config::Env, lambda::Function};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let app = admin::App::build(&Env::process())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    if let Ok(user) = std::env::var("BENCH_SESSION_USER") {
        let secret = std::env::var("NEXTAUTH_SECRET")?;
        println!("{}", testkit::session::v4_token(&secret, &user));
    }
    axum::serve(listener, app.router()).await?;
    Ok(())
}
