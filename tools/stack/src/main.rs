//! `stack openapi`: prints the API description (`openapi.json`).
//! `stack serve [port]`: serves every function on 127.0.0.1 from the
//! environment's settings, and prints the address.

use platform::config::Env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["openapi"] => {
            print!("{}", stack::openapi_json());
            Ok(())
        }
        ["serve", rest @ ..] => {
            let port: u16 = rest.first().map_or(Ok(0), |p| p.parse())?;
            let stack = stack::Stack::build(&Env::process())?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("http://{}", listener.local_addr()?);
            axum::serve(listener, stack.router()).await?;
            Ok(())
        }
        _ => anyhow::bail!("usage: stack openapi | stack serve [port]"),
    }
}
