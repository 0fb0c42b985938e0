//! The cms router on a loopback socket, for the benchmarks under `bench/`:
//! the function's real HTTP stack (axum, validation, the pool, SQL, JSON,
//! ETag), built by its own constructor from the same settings, without
//! Lambda's runtime API in between. Prints the bound address.
//!
//! The runtime is the one `main.rs` deploys: tokio's current-thread
//! runtime, one core's worth of server per Lambda instance.

use platform::{config::Env, lambda::Function};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let app = cms::App::build(&Env::process())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app.router()).await?;
    Ok(())
}
