//! Test sends over SMTP (lettre): one multipart/alternative message per
//! recipient (text/plain, then text/html: clients show the last part they
//! can), so that each recipient's acceptance or refusal is its own.
//!
//! Settings, read once at cold start:
//! - `SMTP_URL`: `smtps://user:pass@email-smtp.eu-west-1.amazonaws.com:465`
//!   (TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS) or
//!   `smtp://localhost:2525` (plain, for local runs and tests). Unset: test
//!   sends answer 503. User and password are URL-encoded.
//! - `MAIL_FROM`: the sender, `Travel Deals <no-reply@localhost>` by
//!   default.
//! - `SMTP_TIMEOUT_MS`: how long one SMTP exchange may take (10 000).

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::config::{ConfigError, Env};

use super::render::Rendered;

pub const DEFAULT_FROM: &str = "Travel Deals <no-reply@localhost>";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Where test mails go.
pub struct Mailer {
    smtp: Option<Smtp>,
}

/// A configured SMTP server.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for messages: never the credentials.
    server: String,
}

impl Mailer {
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let Some(url) = env.optional("SMTP_URL") else {
            return Ok(Self { smtp: None });
        };
        let problem = |problem: String| ConfigError {
            variable: "SMTP_URL",
            problem,
        };
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            problem(format!(
                "is not a URL such as smtps://user:pass@host:465 ({e})"
            ))
        })?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err(problem("must start with smtp:// or smtps://".into()).into());
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| problem("names no host".into()))?;
        let server = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let timeout = env.millis_or("SMTP_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim())
            .map_err(|e| problem(format!("cannot be used: {e}")))?
            .timeout(Some(timeout))
            .build();
        let from_text = env
            .optional("MAIL_FROM")
            .unwrap_or_else(|| DEFAULT_FROM.to_owned());
        let from: Mailbox = from_text.trim().parse().map_err(|e| ConfigError {
            variable: "MAIL_FROM",
            problem: format!("is not a sender such as {DEFAULT_FROM} ({e})"),
        })?;
        Ok(Self {
            smtp: Some(Smtp {
                transport,
                from,
                server,
            }),
        })
    }

    /// The SMTP server, when `SMTP_URL` names one.
    pub fn smtp(&self) -> Option<&Smtp> {
        self.smtp.as_ref()
    }
}

/// An error of lettre's with its causes ("Connection error: Connection
/// refused (os error 111)").
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Smtp {
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether the server answers: connects, greets and says NOOP, so that
    /// an unreachable server is one clear error rather than one per
    /// recipient.
    pub async fn check_reachable(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the SMTP server {} does not answer", self.server)),
            Err(error) => Err(format!(
                "the SMTP server {} is unreachable: {}",
                self.server,
                describe(&error)
            )),
        }
    }

    /// Sends `rendered` to `to`: the server's answer when it accepted the
    /// message, its refusal (or the failure) when not.
    pub async fn send(&self, to: &Address, rendered: &Rendered) -> Result<String, String> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(rendered.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| format!("the message cannot be built: {e}"))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )
            .trim()
            .to_owned()),
            Err(error) => Err(describe(&error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer(pairs: &[(&str, &str)]) -> anyhow::Result<Mailer> {
        Mailer::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn no_smtp_url_means_no_server() {
        assert!(mailer(&[]).expect("valid").smtp().is_none());
    }

    #[test]
    fn the_server_is_described_without_its_credentials() {
        let mailer = mailer(&[(
            "SMTP_URL",
            "smtps://AKIAEXAMPLE:s3cret@email-smtp.eu-west-1.amazonaws.com:465",
        )])
        .expect("valid");
        let smtp = mailer.smtp().expect("configured");
        assert_eq!(smtp.server(), "email-smtp.eu-west-1.amazonaws.com:465");
        assert_eq!(smtp.from.to_string(), DEFAULT_FROM);
    }

    #[test]
    fn starttls_and_plain_urls_are_accepted() {
        assert!(mailer(&[("SMTP_URL", "smtp://user:pass@smtp.example:587?tls=required")]).is_ok());
        assert!(mailer(&[("SMTP_URL", "smtp://localhost:2525")]).is_ok());
    }

    #[test]
    fn bad_settings_fail_at_start_naming_the_variable() {
        let error = mailer(&[("SMTP_URL", "https://smtp.example")])
            .err()
            .expect("scheme");
        assert!(error.to_string().contains("SMTP_URL"), "{error}");
        let error = mailer(&[
            ("SMTP_URL", "smtp://localhost:2525"),
            ("MAIL_FROM", "not an address"),
        ])
        .err()
        .expect("from");
        assert!(error.to_string().contains("MAIL_FROM"), "{error}");
    }
}
