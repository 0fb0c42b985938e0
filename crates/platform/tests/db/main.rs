//! Connections against real PostgreSQL servers: TLS as Neon serves it
//! (verified certificates, SNI, SCRAM with channel binding), and the pool
//! surviving connections the server drops.

use std::path::PathBuf;

use platform::db::{self, ConnectionSettings};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use testkit::{ClusterOptions, LocalCluster, TestDatabase};

const HBA: &str = "\
local   all  all                   trust
host    all  postgres 127.0.0.1/32 trust
hostssl all  app      127.0.0.1/32 scram-sha-256
hostssl all  plain    127.0.0.1/32 password
host    all  all      0.0.0.0/0    reject
";

/// A private cluster with TLS on, a certificate for `names` signed by a
/// fresh CA, and two roles: `app` (SCRAM) and `plain` (cleartext password,
/// which cannot do channel binding).
struct TlsServer {
    cluster: LocalCluster,
    ca_path: PathBuf,
}

impl TlsServer {
    fn start(names: &[&str]) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "travel-deals test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
            .expect("ca");
        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .expect("server cert");
        let cluster = LocalCluster::start(&ClusterOptions {
            tls: Some((server_cert.pem(), server_key.serialize_pem())),
            hba: Some(HBA.to_owned()),
        })
        .expect("cluster");
        cluster
            .psql("CREATE ROLE app LOGIN PASSWORD 'app-pass'; CREATE ROLE plain LOGIN PASSWORD 'plain-pass'")
            .expect("roles");
        let ca_path =
            std::env::temp_dir().join(format!("travel-deals-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&ca_path, ca.pem()).expect("ca file");
        Self { cluster, ca_path }
    }

    fn url(&self, user: &str, host: &str, query: &str) -> String {
        let password = if user == "app" {
            "app-pass"
        } else {
            "plain-pass"
        };
        format!(
            "postgres://{user}:{password}@{host}:{}/postgres?{query}",
            self.cluster.port()
        )
    }

    fn trusted(&self) -> String {
        format!("sslrootcert={}", self.ca_path.display())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_path);
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    db::connect(&ConnectionSettings::parse(url)?).await
}

#[tokio::test]
async fn verify_full_with_channel_binding_connects_over_tls_1_3() {
    let server = TlsServer::start(&["localhost"]);
    let url = server.url(
        "app",
        "localhost",
        &format!(
            "sslmode=verify-full&{}&channel_binding=require",
            server.trusted()
        ),
    );
    let client = connect(&url)
        .await
        .expect("TLS connection with channel binding");
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "TLSv1.3");
}

#[tokio::test]
async fn require_also_verifies_the_certificate_chain() {
    let server = TlsServer::start(&["localhost"]);
    let error = connect(&server.url("app", "localhost", "sslmode=require"))
        .await
        .expect_err("a private CA is not among the public roots");
    assert!(
        format!("{error:#}").to_lowercase().contains("certificate"),
        "{error:#}"
    );
    connect(&server.url(
        "app",
        "localhost",
        &format!("sslmode=require&{}", server.trusted()),
    ))
    .await
    .expect("trusted with sslrootcert");
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host_and_verify_ca_accepts_it() {
    let server = TlsServer::start(&["db.internal.example"]);
    let error = connect(&server.url(
        "app",
        "localhost",
        &format!("sslmode=verify-full&{}", server.trusted()),
    ))
    .await
    .expect_err("name mismatch");
    assert!(
        format!("{error:#}").to_lowercase().contains("certificate"),
        "{error:#}"
    );
    connect(&server.url(
        "app",
        "localhost",
        &format!("sslmode=verify-ca&{}", server.trusted()),
    ))
    .await
    .expect("verify-ca checks the chain only");
}

#[tokio::test]
async fn channel_binding_require_refuses_authentication_that_cannot_bind() {
    let server = TlsServer::start(&["localhost"]);
    let trusted = server.trusted();
    connect(&server.url(
        "plain",
        "localhost",
        &format!("sslmode=verify-full&{trusted}"),
    ))
    .await
    .expect("cleartext password over TLS works without channel binding");
    let error = connect(&server.url(
        "plain",
        "localhost",
        &format!("sslmode=verify-full&{trusted}&channel_binding=require"),
    ))
    .await
    .expect_err("no SCRAM, no channel binding");
    assert!(
        format!("{error:#}").contains("channel binding"),
        "{error:#}"
    );
}

#[tokio::test]
async fn the_pool_replaces_connections_the_server_dropped() {
    let database = TestDatabase::migrated().await;
    let pool = database.pool();
    let pid_before: i32 = {
        let client = pool.get().await.expect("first checkout");
        client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("query")
            .get(0)
    };
    let killed: i64 = database
        .connect()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1);
    let client = pool
        .get()
        .await
        .expect("checkout after the server dropped the connection");
    let pid_after: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("query works")
        .get(0);
    assert_ne!(pid_after, pid_before);
}
