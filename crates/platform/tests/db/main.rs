//! Connections against real PostgreSQL servers: TLS as Neon serves it
//! (verified certificates, SCRAM with channel binding), and the pool
//! surviving connections the server drops.
//!
//! Every TLS test starts a private cluster of its own with a certificate
//! from a CA made for that test, so the tests share nothing and can run in
//! parallel.

mod errors;

use std::path::{Path, PathBuf};

use platform::{
    config::DatabaseConfig,
    connection::ConnectionSettings,
    db::{self, Checkout},
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::CertificateError;
use testkit::{ClusterOptions, LocalCluster, TestDatabase};

/// The superuser connects without TLS so `psql` can administer the cluster;
/// `app` connects only over TLS and with SCRAM, as on Neon; `nopass`
/// (trust) and `legacy` (md5) connect over TLS without SCRAM, so they cannot
/// bind the channel.
const HBA: &str = "\
host      all  postgres  127.0.0.1/32  trust
hostssl   all  app       127.0.0.1/32  scram-sha-256
hostnossl all  app       0.0.0.0/0     reject
hostssl   all  nopass    127.0.0.1/32  trust
hostssl   all  legacy    127.0.0.1/32  md5
";

const PASSWORD: &str = "x";

/// A certificate authority made for one test, its certificate written to a
/// PEM file for `sslrootcert`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_path: PathBuf,
}

impl Ca {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a CA with the same name as the server's would
        // fail the signature check, not the issuer look-up.
        params
            .distinguished_name
            .push(DnType::CommonName, format!("travel-deals test CA {id}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA certificate");
        let pem_path = std::env::temp_dir().join(format!("travel-deals-ca-{id}.pem"));
        std::fs::write(&pem_path, issuer.pem()).expect("writing the CA certificate");
        Self { issuer, pem_path }
    }

    /// A server certificate and its key, as PEM, for `names` (host names or
    /// IP addresses).
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server certificate parameters");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("signing the server certificate");
        (certificate.pem(), key.serialize_pem())
    }

    fn pem_path(&self) -> &Path {
        &self.pem_path
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_path);
    }
}

/// A private cluster with `ssl = on`, presenting a certificate for `names`
/// signed by its own CA, with the roles [`HBA`] names.
struct TlsServer {
    cluster: LocalCluster,
    ca: Ca,
}

impl TlsServer {
    fn start(names: &[&str]) -> Self {
        let ca = Ca::new();
        let cluster = LocalCluster::start(&ClusterOptions {
            tls: Some(ca.issue(names)),
            hba: Some(HBA.to_owned()),
            ..ClusterOptions::default()
        })
        .expect("starting a cluster with TLS");
        let legacy_has_md5_password = cluster
            .psql(&format!(
                "CREATE ROLE app LOGIN PASSWORD '{PASSWORD}';
                 CREATE ROLE nopass LOGIN;
                 SET password_encryption = 'md5';
                 CREATE ROLE legacy LOGIN PASSWORD '{PASSWORD}';
                 SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'legacy';"
            ))
            .expect("creating the roles");
        // With a SCRAM verifier stored, `md5` in pg_hba.conf would do SCRAM.
        assert_eq!(
            legacy_has_md5_password.trim(),
            "t",
            "legacy's password is not stored as md5"
        );
        Self { cluster, ca }
    }

    /// A URL for `user` at `host`, with `query` after the `?`.
    fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!(
            "postgres://{user}:{PASSWORD}@{host}:{}/postgres?{query}",
            self.cluster.port()
        )
    }

    /// The `sslrootcert` parameter trusting this server's CA.
    fn trusting_its_ca(&self) -> String {
        format!("sslrootcert={}", self.ca.pem_path().display())
    }
}

async fn connect(url: &str) -> anyhow::Result<db::Client> {
    db::connect(&ConnectionSettings::parse(url)?).await
}

async fn uses_tls(client: &db::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("reading pg_stat_ssl")
        .get(0)
}

/// The rustls error a failed handshake ended with, if that is why it failed
/// (tokio-rustls wraps it in an `io::Error`, whose `source` skips it).
fn tls_error(error: &anyhow::Error) -> Option<&rustls::Error> {
    error.chain().find_map(|cause| {
        cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()?
                .get_ref()?
                .downcast_ref::<rustls::Error>()
        })
    })
}

#[tokio::test]
async fn verify_full_with_channel_binding_connects_over_tls_1_3() {
    let server = TlsServer::start(&["localhost", "127.0.0.1"]);
    let url = server.url(
        "app",
        "localhost",
        &format!(
            "sslmode=verify-full&{}&channel_binding=require",
            server.trusting_its_ca()
        ),
    );

    let client = connect(&url)
        .await
        .expect("verify-full with channel binding connects");

    let row = client
        .query_one(
            "SELECT current_user::text, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("a query over the connection");
    assert_eq!(row.get::<_, String>(0), "app");
    assert!(row.get::<_, bool>(1), "the session is not encrypted");
    assert_eq!(row.get::<_, String>(2), "TLSv1.3");
}

#[tokio::test]
async fn require_connects_when_sslrootcert_trusts_the_private_ca() {
    let server = TlsServer::start(&["localhost", "127.0.0.1"]);
    let url = server.url(
        "app",
        "127.0.0.1",
        &format!("sslmode=require&{}", server.trusting_its_ca()),
    );

    let client = connect(&url)
        .await
        .expect("require with the CA trusted connects");

    assert!(uses_tls(&client).await, "the session is not encrypted");
}

#[tokio::test]
async fn verify_ca_accepts_a_trusted_certificate_issued_for_another_host() {
    let server = TlsServer::start(&["otherhost.example"]);
    let url = server.url(
        "app",
        "127.0.0.1",
        &format!("sslmode=verify-ca&{}", server.trusting_its_ca()),
    );

    let client = connect(&url)
        .await
        .expect("verify-ca does not compare the name with the host");

    assert!(uses_tls(&client).await, "the session is not encrypted");
}

#[tokio::test]
async fn every_sslmode_but_verify_ca_refuses_a_trusted_certificate_issued_for_another_host() {
    let server = TlsServer::start(&["otherhost.example"]);
    for sslmode in ["prefer", "require", "verify-full"] {
        let url = server.url(
            "app",
            "127.0.0.1",
            &format!("sslmode={sslmode}&{}", server.trusting_its_ca()),
        );

        let error = connect(&url)
            .await
            .expect_err("a certificate for another host must be refused");

        assert!(
            matches!(
                tls_error(&error),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "sslmode={sslmode}: {error:#}"
        );
    }
}

#[tokio::test]
async fn every_sslmode_that_uses_tls_refuses_a_certificate_from_an_untrusted_ca() {
    let server = TlsServer::start(&["localhost", "127.0.0.1"]);
    let another_ca = Ca::new();
    let roots = [
        ("public roots".to_owned(), String::new()),
        (
            "another private CA".to_owned(),
            format!("&sslrootcert={}", another_ca.pem_path().display()),
        ),
    ];
    for sslmode in ["prefer", "require", "verify-ca", "verify-full"] {
        for (trusted, parameter) in &roots {
            let url = server.url("app", "localhost", &format!("sslmode={sslmode}{parameter}"));

            let error = connect(&url)
                .await
                .expect_err("a certificate from an untrusted CA must be refused");

            assert!(
                matches!(
                    tls_error(&error),
                    Some(rustls::Error::InvalidCertificate(
                        CertificateError::UnknownIssuer
                    ))
                ),
                "sslmode={sslmode} trusting {trusted}: {error:#}"
            );
        }
    }
}

#[tokio::test]
async fn channel_binding_require_refuses_a_server_that_trusts_without_a_password() {
    let server = TlsServer::start(&["localhost", "127.0.0.1"]);
    let verified = format!("sslmode=verify-full&{}", server.trusting_its_ca());
    connect(&server.url("nopass", "localhost", &verified))
        .await
        .expect("without channel_binding=require the same user connects");

    let error = connect(&server.url(
        "nopass",
        "localhost",
        &format!("{verified}&channel_binding=require"),
    ))
    .await
    .expect_err("trust authentication cannot bind the channel");

    assert!(
        format!("{error:#}").contains("server did not use channel binding"),
        "{error:#}"
    );
}

#[tokio::test]
async fn channel_binding_require_refuses_md5_password_authentication() {
    let server = TlsServer::start(&["localhost", "127.0.0.1"]);
    let verified = format!("sslmode=verify-full&{}", server.trusting_its_ca());
    connect(&server.url("legacy", "localhost", &verified))
        .await
        .expect("without channel_binding=require the same user connects");

    let error = connect(&server.url(
        "legacy",
        "localhost",
        &format!("{verified}&channel_binding=require"),
    ))
    .await
    .expect_err("md5 authentication cannot bind the channel");

    assert!(
        format!("{error:#}").contains("server did not use channel binding"),
        "{error:#}"
    );
}

// A current-thread runtime, and the backend terminated from another thread
// while this one blocks: the pooled connection's task cannot run in between,
// so the client has not yet noticed its connection is gone when the pool
// hands it out again, as after a Lambda container thaws. Only the test
// query of `RecyclingMethod::Verified` can catch it then.
#[tokio::test(flavor = "current_thread")]
async fn the_pool_replaces_a_connection_the_server_terminated_before_the_client_noticed() {
    let database = TestDatabase::migrated().await;
    let config = DatabaseConfig::from_env(&database.env(&[])).expect("settings");
    let pool = db::pool(&config, Checkout::Verified).expect("the pool functions build");
    let pid_before: i32 = pool
        .get()
        .await
        .expect("first checkout")
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("first query")
        .get(0);

    let settings = database.settings();
    let terminated = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the terminating connection")
            .block_on(async {
                db::connect(&settings)
                    .await
                    .expect("a second connection")
                    .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid_before])
                    .await
                    .expect("pg_terminate_backend")
                    .get::<_, bool>(0)
            })
    })
    .join()
    .expect("the terminating thread");
    assert!(terminated, "backend {pid_before} was not terminated");

    let client = pool
        .get()
        .await
        .expect("checkout after the server dropped the connection");
    let pid_after: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("a query on the replacement connection")
        .get(0);
    assert_ne!(pid_after, pid_before);
}

/// A server that accepts connections only after a delay, as a suspended
/// Neon compute or a restarting server does: the first checkout waits for
/// it, within the connect timeout, and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_checkout_after_the_server_wakes_succeeds_within_the_connect_timeout() {
    let cluster = LocalCluster::start(&ClusterOptions::default()).expect("a cluster of its own");
    let url = cluster.admin_url("postgres");
    let config = DatabaseConfig::from_env(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "10000"),
    ]))
    .expect("settings");
    let pool = db::pool(&config, Checkout::Verified).expect("pool");
    cluster.stop(testkit::Shutdown::Fast).expect("stopped");

    let started = std::time::Instant::now();
    let waking = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        cluster.restart().expect("restarted");
        (cluster, started.elapsed())
    });
    let answer = async {
        let client = pool.get().await?;
        anyhow::Ok(client.query_one("SELECT 1", &[]).await?.get::<_, i32>(0))
    }
    .await;
    let answered_after = started.elapsed();
    let (_cluster, accepting_after) = waking.join().expect("the waking thread");

    // pg_ctl returns once it has seen the server accept, so the answer may
    // come before that moment, never long after it.
    eprintln!(
        "server known to accept after {accepting_after:?}; first answer after {answered_after:?}"
    );
    assert_eq!(answer.expect("the first request after the server woke"), 1);
    assert!(
        answered_after < accepting_after + std::time::Duration::from_secs(1),
        "answered {answered_after:?}, the server accepting by {accepting_after:?}"
    );
}

/// Errors that waiting cannot cure are answered at once, not retried until
/// the connect timeout is spent.
#[tokio::test]
async fn a_database_that_does_not_exist_is_not_waited_for() {
    let database = TestDatabase::empty().await;
    let url = database.url().replace(database.name(), "no_such_database");
    let config = DatabaseConfig::from_env(&platform::config::Env::from_pairs([
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", "10000"),
    ]))
    .expect("settings");
    let pool = db::pool(&config, Checkout::Verified).expect("pool");
    let started = std::time::Instant::now();
    assert!(pool.get().await.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
