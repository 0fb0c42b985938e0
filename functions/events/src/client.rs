//! What the request itself says about the client: address, user agent,
//! page.

use std::{net::IpAddr, sync::LazyLock};

use axum::http::HeaderMap;
use lambda_http::request::RequestContext;

use crate::config::IpStorage;

/// User agents longer than this are cut, not refused: the header is the
/// browser's, not the caller's choice.
pub const MAX_USER_AGENT_CHARS: usize = 512;
pub const MAX_URL_CHARS: usize = 2048;

/// isbot's list (a port of the npm `isbot` patterns, kept current
/// upstream), compiled once per container.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientContext {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The `Referer` header: the page that sent the request.
    pub page: Option<String>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl ClientContext {
    /// A known crawler or bot, by its user agent. No user agent at all is
    /// not proof of a bot (privacy tools strip it), so it is not one.
    pub fn is_known_bot(&self) -> bool {
        self.user_agent.as_deref().is_some_and(|ua| BOTS.is_bot(ua))
    }

    /// A browser: the address by [`platform::http::client_address`]'s rule
    /// (kept as far as `storage` allows), its `User-Agent`, and its page.
    ///
    /// A trusted sender (a server relaying its visitors' events, with a
    /// valid ingest key) is not the visitor: its own address and agent are
    /// not stored. It names the visitor with `x-visitor-ip` and
    /// `x-visitor-user-agent`, under the same storage rules.
    pub fn from_request(
        headers: &HeaderMap,
        context: Option<&RequestContext>,
        storage: IpStorage,
        sender: Sender,
    ) -> Self {
        let (address, agent) = match sender {
            Sender::Browser => (
                platform::http::client_address(headers, context),
                header(headers, "user-agent"),
            ),
            Sender::Trusted => (
                header(headers, "x-visitor-ip"),
                header(headers, "x-visitor-user-agent"),
            ),
        };
        Self {
            ip_address: address.and_then(|ip| stored_ip(&ip, storage)),
            user_agent: agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
            page: header(headers, "referer").filter(|p| p.chars().count() <= MAX_URL_CHARS),
        }
    }
}

/// Who sent a beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A visitor's browser: bots are dropped.
    Browser,
    /// A server with a valid ingest key, sending for its visitors.
    Trusted,
}

/// The part of `ip` that `storage` allows to be kept.
pub fn stored_ip(ip: &str, storage: IpStorage) -> Option<String> {
    let parsed: IpAddr = ip.parse().ok()?;
    match storage {
        IpStorage::None => None,
        IpStorage::Full => Some(parsed.to_string()),
        IpStorage::Truncated => Some(match parsed {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_truncated_to_its_slash_24() {
        assert_eq!(
            stored_ip("203.0.113.77", IpStorage::Truncated).as_deref(),
            Some("203.0.113.0")
        );
    }

    #[test]
    fn ipv6_is_truncated_to_its_slash_48() {
        assert_eq!(
            stored_ip("2001:db8:abcd:12:1:2:3:4", IpStorage::Truncated).as_deref(),
            Some("2001:db8:abcd::")
        );
    }

    #[test]
    fn nothing_is_stored_when_configured_so() {
        assert_eq!(stored_ip("203.0.113.77", IpStorage::None), None);
    }

    #[test]
    fn full_storage_keeps_the_address() {
        assert_eq!(
            stored_ip("203.0.113.77", IpStorage::Full).as_deref(),
            Some("203.0.113.77")
        );
    }

    #[test]
    fn garbage_is_not_an_address() {
        assert_eq!(stored_ip("not-an-ip", IpStorage::Full), None);
    }

    fn with_agent(ua: &str) -> ClientContext {
        ClientContext {
            user_agent: Some(ua.to_owned()),
            ..ClientContext::default()
        }
    }

    #[test]
    fn crawlers_are_known_bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.4.0",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
        ] {
            assert!(with_agent(ua).is_known_bot(), "{ua}");
        }
    }

    #[test]
    fn browsers_are_not_bots() {
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0",
        ] {
            assert!(!with_agent(ua).is_known_bot(), "{ua}");
        }
        assert!(!ClientContext::default().is_known_bot());
    }

    #[test]
    fn the_first_forwarded_address_is_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.9, 10.0.0.1".parse().expect("header"),
        );
        let client = ClientContext::from_request(&headers, None, IpStorage::Full, Sender::Browser);
        assert_eq!(client.ip_address.as_deref(), Some("198.51.100.9"));
    }
}
