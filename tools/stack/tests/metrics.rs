//! With `METRICS=emf`, every function writes CloudWatch Embedded Metric
//! Format lines on stdout: here the real binary serves a request and its
//! answer is counted, by function.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use testkit::TestDatabase;

#[tokio::test]
async fn an_answer_is_counted_in_an_embedded_metric_line_by_function() {
    let db = TestDatabase::migrated().await;
    let mut server = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["serve"])
        .env("POSTGRES_URL", db.url())
        .env("NEXTAUTH_SECRET", "a-secret-for-the-metrics-test")
        .env("METRICS", "emf")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the stack binary");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let address = lines.next().expect("an address").expect("a line");

    let mut connection =
        std::net::TcpStream::connect(address.trim_start_matches("http://")).expect("connected");
    std::io::Write::write_all(
        &mut connection,
        b"GET /api/health/nowhere HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .expect("sent");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut connection, &mut answer).expect("an answer");

    // Read on a thread of its own: a line that never comes must fail the
    // test, not hang it.
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let found = lines
            .map_while(Result::ok)
            .find(|line| line.contains("\"_aws\""));
        let _ = sender.send(found);
    });
    let line = received.recv_timeout(std::time::Duration::from_secs(10));
    server.kill().expect("stopped");
    server.wait().expect("reaped");
    let line = line
        .ok()
        .flatten()
        .expect("an embedded metric line within 10 s");
    let metric: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(metric["Function"], "health");
    assert_eq!(metric["Requests"], 1.0);
    assert_eq!(metric["Http4xx"], 1.0);
    assert_eq!(metric["Http5xx"], 0.0);
    assert_eq!(
        metric["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "TravelDeals"
    );
}
