//! Where and how to connect: a database URL parsed and normalised once,
//! and the TLS it asks for.
//!
//! URLs arrive as Neon and Vercel hand them out, with libpq's `sslmode`
//! vocabulary and Prisma's own query parameters. tokio-postgres 0.7 accepts
//! only `disable`, `prefer` and `require`, so the URL is normalised first:
//!
//! | sslmode       | TLS        | certificate chain | host name |
//! |---------------|------------|-------------------|-----------|
//! | `disable`     | never      | -                 | -         |
//! | `allow`, `prefer` (default) | if offered | verified | verified |
//! | `require`     | always     | verified          | verified  |
//! | `verify-ca`   | always     | verified          | not checked |
//! | `verify-full` | always     | verified          | verified  |
//!
//! `require` verifies more than libpq does, on purpose: serverless Postgres
//! presents publicly trusted certificates, so verification costs nothing and
//! closes the man-in-the-middle hole libpq's `require` leaves open. A private
//! CA is trusted with libpq's `sslrootcert=<pem file>`.
//!
//! TLS is rustls with the ring provider (no C toolchain needed to
//! cross-compile for arm64) through tokio-postgres-rustls, which sends SNI
//! (Neon routes on it) and implements `tls-server-end-point` channel binding,
//! so `channel_binding=require` works.

use std::{fmt, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A database URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDatabaseUrl(String);

/// How strictly the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateCheck {
    /// Chain and host name (`require`, `verify-full`, `prefer`).
    Full,
    /// Chain only (`verify-ca`).
    ChainOnly,
}

/// A parsed, normalised connection target.
#[derive(Clone)]
pub struct ConnectionSettings {
    pub pg: tokio_postgres::Config,
    pub certificate_check: CertificateCheck,
    /// PEM file of a private CA (`sslrootcert`); public roots otherwise.
    pub root_cert_path: Option<String>,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("hosts", &self.pg.get_hosts())
            .field("dbname", &self.pg.get_dbname())
            .field("user", &self.pg.get_user())
            .field("ssl_mode", &self.pg.get_ssl_mode())
            .field("certificate_check", &self.certificate_check)
            .finish_non_exhaustive()
    }
}

/// Query parameters that belong to Prisma's or Vercel's URL dialect and mean
/// nothing to a PostgreSQL connection; they are dropped, not refused, so the
/// app's URL can be used as it is.
const FOREIGN_PARAMETERS: &[&str] = &[
    "schema",
    "pgbouncer",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "statement_cache_size",
    "sslaccept",
];

impl ConnectionSettings {
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(InvalidDatabaseUrl(
                "must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept: Vec<&str> = Vec::new();
        let mut ssl_mode = SslMode::Prefer;
        let mut certificate_check = CertificateCheck::Full;
        let mut root_cert_path = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key)?;
            let value = decode(raw_value)?;
            match key.as_str() {
                "sslmode" => {
                    (ssl_mode, certificate_check) = match value.as_str() {
                        "disable" => (SslMode::Disable, CertificateCheck::Full),
                        "allow" | "prefer" => (SslMode::Prefer, CertificateCheck::Full),
                        "require" | "verify-full" => (SslMode::Require, CertificateCheck::Full),
                        "verify-ca" => (SslMode::Require, CertificateCheck::ChainOnly),
                        other => {
                            return Err(InvalidDatabaseUrl(format!(
                                "unknown sslmode {other:?} (expected disable, allow, prefer, require, verify-ca or verify-full)"
                            )));
                        }
                    }
                }
                "sslrootcert" if value != "system" => root_cert_path = Some(value),
                "sslrootcert" => {}
                "sslcert" | "sslkey" => {
                    return Err(InvalidDatabaseUrl(format!(
                        "{key} (client certificates) is not supported"
                    )));
                }
                k if FOREIGN_PARAMETERS.contains(&k) => {}
                _ => kept.push(pair),
            }
        }
        kept.push(match ssl_mode {
            SslMode::Disable => "sslmode=disable",
            SslMode::Require => "sslmode=require",
            _ => "sslmode=prefer",
        });
        let normalised = format!("{base}?{}", kept.join("&"));
        let pg: tokio_postgres::Config = normalised
            .parse()
            .map_err(|e: tokio_postgres::Error| InvalidDatabaseUrl(e.to_string()))?;
        if pg.get_hosts().is_empty() {
            return Err(InvalidDatabaseUrl("names no host".into()));
        }
        Ok(Self {
            pg,
            certificate_check,
            root_cert_path,
        })
    }

    /// The TLS connector for this target.
    pub fn tls(&self) -> anyhow::Result<MakeRustlsConnect> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert_path {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("reading sslrootcert {path}: {e}"))?;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    roots.add(cert?)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match self.certificate_check {
            CertificateCheck::Full => builder.with_root_certificates(roots).with_no_client_auth(),
            CertificateCheck::ChainOnly => {
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier { inner }))
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// Percent-decoding only, as libpq does: a `+` in a URL query is a plus,
/// not a space (form encoding would turn `a+b.pem` into `a b.pem`).
fn decode(raw: &str) -> Result<String, InvalidDatabaseUrl> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| InvalidDatabaseUrl(format!("query parameter {raw:?} is not UTF-8")))
}

/// libpq's `verify-ca`: the chain must lead to a trusted root, the name on
/// the certificate is not compared with the host.
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(url: &str) -> ConnectionSettings {
        ConnectionSettings::parse(url).expect("valid url")
    }

    #[test]
    fn verify_full_is_accepted_and_checks_the_host_name() {
        let s =
            parse("postgresql://u:p@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=verify-full");
        assert_eq!(s.pg.get_ssl_mode(), SslMode::Require);
        assert_eq!(s.certificate_check, CertificateCheck::Full);
    }

    #[test]
    fn verify_ca_checks_the_chain_only() {
        let s = parse("postgres://u@h/db?sslmode=verify-ca");
        assert_eq!(s.pg.get_ssl_mode(), SslMode::Require);
        assert_eq!(s.certificate_check, CertificateCheck::ChainOnly);
    }

    #[test]
    fn neon_urls_with_channel_binding_parse() {
        let s = parse(
            "postgresql://neondb_owner:secret@ep-cool-1-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require",
        );
        assert_eq!(s.pg.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            s.pg.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Require
        );
    }

    #[test]
    fn prisma_parameters_are_dropped() {
        let s = parse("postgres://u@h:5432/db?pgbouncer=true&connect_timeout=15&schema=public");
        assert_eq!(s.pg.get_connect_timeout(), Some(&Duration::from_secs(15)));
    }

    #[test]
    fn prefer_is_the_default_and_disable_turns_tls_off() {
        assert_eq!(
            parse("postgres://u@h/db").pg.get_ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            parse("postgres://u@h/db?sslmode=disable").pg.get_ssl_mode(),
            SslMode::Disable
        );
    }

    #[test]
    fn an_unknown_sslmode_is_refused_with_its_name() {
        let err = ConnectionSettings::parse("postgres://u@h/db?sslmode=maybe").expect_err("bad");
        assert!(err.to_string().contains("sslmode"));
    }

    #[test]
    fn a_non_postgres_url_is_refused() {
        assert!(ConnectionSettings::parse("mysql://u@h/db").is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let s = parse("postgres://u:hunter2@h/db");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_plus_in_a_parameter_is_a_plus() {
        let s = parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fcerts%2Fa+b.pem");
        assert_eq!(s.root_cert_path.as_deref(), Some("/certs/a+b.pem"));
    }

    #[test]
    fn a_private_root_certificate_path_is_kept() {
        let s = parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(s.root_cert_path.as_deref(), Some("/etc/ca.pem"));
    }
}
