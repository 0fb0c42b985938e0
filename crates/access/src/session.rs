//! Recognising the sessions the Next.js site already issues.
//!
//! Admins sign in there with NextAuth; the bundle reads the same session
//! token, so there is no second login. Two formats are accepted:
//!
//! | | NextAuth v4 | Auth.js v5 |
//! |---|---|---|
//! | cookie | `next-auth.session-token`, `__Secure-` on https | `authjs.session-token`, `__Secure-` on https |
//! | JWE | `alg: dir`, `enc: A256GCM` | `alg: dir`, `enc: A256CBC-HS512` |
//! | key | HKDF-SHA256(secret, salt "", info "NextAuth.js Generated Encryption Key"), 32 bytes | HKDF-SHA256(secret, salt = cookie name, info "Auth.js Generated Encryption Key (<cookie name>)"), 64 bytes |
//!
//! Cookies too large for one `Set-Cookie` arrive split as `<name>.0`,
//! `<name>.1`, ... and are joined in index order. `Authorization: Bearer`
//! carries the same token; its `enc` says which format it is.
//!
//! The JWE is opened by [`crate::jwe`] with RustCrypto's AES-GCM, AES-CBC
//! and HMAC, and the keys derived by its `hkdf`: no primitive is written
//! here.

use crate::jwe::{Compact, ContentKey, JweError};
use hkdf::Hkdf;
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

/// Both libraries allow this much clock skew when checking `exp`.
pub const CLOCK_SKEW_SECONDS: i64 = 15;

/// A session token larger than this is refused before any decoding. NextAuth
/// chunks cookies at about 4 KB and browsers send at most a few; 16 KiB is
/// four chunks.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// `sub` is a `users.id`: Prisma's cuids and the bundle's UUIDs are far
/// shorter; anything longer is not an id of this application.
pub const MAX_SUB_BYTES: usize = 255;

const V4_COOKIES: [&str; 2] = [
    "__Secure-next-auth.session-token",
    "next-auth.session-token",
];
const V5_COOKIES: [&str; 2] = ["__Secure-authjs.session-token", "authjs.session-token"];
const V4_INFO: &[u8] = b"NextAuth.js Generated Encryption Key";

/// Why a credential was refused. Callers answer all of them with 401; the
/// reason is for logs only.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("no session cookie or bearer token")]
    Missing,
    #[error("session token larger than {MAX_TOKEN_BYTES} bytes")]
    Oversized,
    #[error("not a compact JWE")]
    Malformed,
    #[error("unsupported JWE header: {0}")]
    UnsupportedHeader(String),
    #[error("token does not decrypt with this secret")]
    Undecryptable,
    #[error("claims unreadable: {0}")]
    Claims(String),
    #[error("session expired")]
    Expired,
    #[error("session issued in the future")]
    NotYetValid,
}

/// Where a token came from, which decides the key that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Cookie(&'static str),
    Bearer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub token: String,
    pub source: Source,
}

/// The claims the bundle relies on. NextAuth puts the user's `users.id` in
/// `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub iat: Option<i64>,
    pub exp: i64,
    #[serde(default)]
    pub jti: Option<String>,
}

/// The decryption keys of every accepted format, derived once per container
/// from `NEXTAUTH_SECRET`.
pub struct SessionKeys {
    v4: ContentKey,
    /// One per v5 cookie name: the name is the HKDF salt.
    v5: Vec<(&'static str, ContentKey)>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

fn hkdf_sha256<const N: usize>(secret: &[u8], salt: &[u8], info: &[u8]) -> [u8; N] {
    let mut key = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), secret)
        .expand(info, &mut key)
        .expect("32 and 64 bytes are valid HKDF-SHA256 output lengths");
    key
}

impl SessionKeys {
    /// From `NEXTAUTH_SECRET` (v4's name), else `AUTH_SECRET` (v5's): the
    /// Next.js site's own secret.
    pub fn from_env(env: &platform::config::Env) -> Result<Self, platform::config::ConfigError> {
        let secret = match env.optional("AUTH_SECRET") {
            Some(secret) if env.optional("NEXTAUTH_SECRET").is_none() => secret,
            _ => env.required("NEXTAUTH_SECRET")?,
        };
        Ok(Self::derive(&secret))
    }

    pub fn derive(secret: &str) -> Self {
        let secret = secret.as_bytes();
        let v4 = ContentKey::A256Gcm(hkdf_sha256(secret, b"", V4_INFO));
        let v5 = V5_COOKIES
            .iter()
            .map(|name| {
                let info = format!("Auth.js Generated Encryption Key ({name})");
                let key = hkdf_sha256(secret, name.as_bytes(), info.as_bytes());
                (*name, ContentKey::A256CbcHs512(key))
            })
            .collect();
        Self { v4, v5 }
    }

    /// Opens `credential` and checks its lifetime at `now` (Unix seconds).
    pub fn open(&self, credential: &Credential, now: i64) -> Result<Claims, SessionError> {
        let token = credential.token.as_str();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(SessionError::Oversized);
        }
        let compact = Compact::parse(token).map_err(|error| match error {
            JweError::Unsupported(what) => SessionError::UnsupportedHeader(what),
            JweError::Malformed | JweError::Undecryptable => SessionError::Malformed,
        })?;
        let candidates: Vec<&ContentKey> = match (&credential.source, compact.enc.as_str()) {
            (Source::Cookie(name), "A256GCM") if V4_COOKIES.contains(name) => vec![&self.v4],
            (Source::Cookie(name), "A256CBC-HS512") => self
                .v5
                .iter()
                .filter(|(salt, _)| salt == name)
                .map(|(_, key)| key)
                .collect(),
            (Source::Bearer, "A256GCM") => vec![&self.v4],
            (Source::Bearer, "A256CBC-HS512") => self.v5.iter().map(|(_, key)| key).collect(),
            (_, other) => {
                return Err(SessionError::UnsupportedHeader(format!(
                    "enc {other} from {:?}",
                    credential.source
                )));
            }
        };
        let payload = candidates
            .into_iter()
            .find_map(|key| compact.open(key).ok())
            .ok_or(SessionError::Undecryptable)?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|error| SessionError::Claims(error.to_string()))?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUB_BYTES || claims.sub.contains('\0') {
            return Err(SessionError::Claims("sub must be a user id".into()));
        }
        // Saturating: a token's numbers are the client's, and i64::MAX or
        // i64::MIN must neither overflow nor wrap into a valid lifetime.
        if claims.exp.saturating_add(CLOCK_SKEW_SECONDS) < now {
            return Err(SessionError::Expired);
        }
        if claims
            .iat
            .is_some_and(|iat| iat.saturating_sub(CLOCK_SKEW_SECONDS) > now)
        {
            return Err(SessionError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The session credential of a request: a session cookie (chunks joined),
/// else `Authorization: Bearer`. `__Secure-` cookies win over plain ones,
/// and v4 over v5 when a browser carries both during a migration.
pub fn credential(headers: &HeaderMap) -> Result<Credential, SessionError> {
    let cookies: Vec<(&str, &str)> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .collect();
    let total: usize = cookies.iter().map(|(_, v)| v.len()).sum();
    if total > 4 * MAX_TOKEN_BYTES {
        return Err(SessionError::Oversized);
    }
    for name in V4_COOKIES.iter().chain(V5_COOKIES.iter()) {
        if let Some(token) = cookie_value(&cookies, name)? {
            return Ok(Credential {
                token,
                source: Source::Cookie(name),
            });
        }
    }
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match bearer {
        Some(token) if token.len() > MAX_TOKEN_BYTES => Err(SessionError::Oversized),
        Some(token) => Ok(Credential {
            token: token.to_owned(),
            source: Source::Bearer,
        }),
        None => Err(SessionError::Missing),
    }
}

/// `name` whole, else `name.0`, `name.1`, ... joined until the first gap.
fn cookie_value(cookies: &[(&str, &str)], name: &str) -> Result<Option<String>, SessionError> {
    if let Some((_, value)) = cookies.iter().find(|(n, _)| *n == name) {
        return Ok(Some((*value).to_owned()));
    }
    let mut joined = String::new();
    for index in 0.. {
        let chunk_name = format!("{name}.{index}");
        let Some((_, value)) = cookies.iter().find(|(n, _)| *n == chunk_name) else {
            break;
        };
        joined.push_str(value);
        if joined.len() > MAX_TOKEN_BYTES {
            return Err(SessionError::Oversized);
        }
    }
    Ok((!joined.is_empty()).then_some(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn chunked_cookies_are_joined_in_index_order() {
        let found = credential(&headers(&[(
            "cookie",
            "other=1; next-auth.session-token.1=world; next-auth.session-token.0=hello",
        )]))
        .expect("credential");
        assert_eq!(found.token, "helloworld");
        assert_eq!(found.source, Source::Cookie("next-auth.session-token"));
    }

    #[test]
    fn the_secure_cookie_wins_over_the_plain_one() {
        let found = credential(&headers(&[(
            "cookie",
            "next-auth.session-token=plain; __Secure-next-auth.session-token=secure",
        )]))
        .expect("credential");
        assert_eq!(found.token, "secure");
    }

    #[test]
    fn a_bearer_token_is_used_without_a_cookie() {
        let found = credential(&headers(&[("authorization", "Bearer abc.def")])).expect("bearer");
        assert_eq!(found.source, Source::Bearer);
        assert_eq!(found.token, "abc.def");
    }

    #[test]
    fn no_credential_is_missing() {
        assert_eq!(
            credential(&headers(&[("cookie", "theme=dark")])),
            Err(SessionError::Missing)
        );
    }

    #[test]
    fn an_oversized_cookie_is_refused_before_decoding() {
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        let found = credential(&headers(&[(
            "cookie",
            &format!("next-auth.session-token={huge}"),
        )]))
        .expect("credential");
        let keys = SessionKeys::derive("secret");
        assert_eq!(keys.open(&found, 0), Err(SessionError::Oversized));
    }

    #[test]
    fn alg_none_and_a_plain_jws_are_refused_before_any_key_is_tried() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"u1"}"#));
        let jws = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"u1"}"#)
        );
        let none_jwe = format!("{}....", b64(r#"{"alg":"none","enc":"A256GCM"}"#));
        for token in [none, jws, none_jwe, "garbage".to_owned()] {
            let found = SessionKeys::derive("s").open(
                &Credential {
                    token: token.clone(),
                    source: Source::Bearer,
                },
                0,
            );
            assert!(
                matches!(
                    found,
                    Err(SessionError::Malformed | SessionError::UnsupportedHeader(_))
                ),
                "{token}: {found:?}"
            );
        }
    }
}
