//! The session reader's refusals, one behaviour each, through its public
//! API (`credential`, `SessionKeys::open`). Interoperability with the real
//! next-auth and @auth/core packages is proven by the admin tests' npm-made
//! fixtures; here tokens are minted with OpenSSL so that a test can vary
//! one thing (a claim, a header member, a size) while everything else is
//! valid: each refusal is then the only thing standing between the token
//! and acceptance, and a test fails when its check is weakened.

use access::session::{
    CLOCK_SKEW_SECONDS, Claims, Credential, MAX_SUB_BYTES, MAX_TOKEN_BYTES, SessionError,
    SessionKeys, Source, credential,
};
use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{AeadInPlace, Nonce},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hkdf::Hkdf;
use http::{HeaderMap, HeaderValue};
use platform::config::Env;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "test-secret-for-session-specifications";
const NOW: i64 = 1_800_000_000;
const V4: &str = "next-auth.session-token";
const V5: &str = "authjs.session-token";

fn v4_key(secret: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b""), secret.as_bytes())
        .expand(b"NextAuth.js Generated Encryption Key", &mut key)
        .expect("hkdf");
    key
}

/// A NextAuth v4 token (A256GCM, direct key) with `header` as its protected
/// header and `claims` as its payload, encrypted with `secret`.
fn mint_with_header(secret: &str, header: &Value, claims: &Value) -> String {
    let header = B64.encode(header.to_string());
    let iv = [7u8; 12];
    let mut ciphertext = claims.to_string().into_bytes();
    let tag = Aes256Gcm::new(&v4_key(secret).into())
        .encrypt_in_place_detached(
            Nonce::<Aes256Gcm>::from_slice(&iv),
            header.as_bytes(),
            &mut ciphertext,
        )
        .expect("AES-GCM");
    format!(
        "{header}..{}.{}.{}",
        B64.encode(iv),
        B64.encode(ciphertext),
        B64.encode(tag)
    )
}

fn mint(claims: &Value) -> String {
    mint_with_header(SECRET, &json!({"alg": "dir", "enc": "A256GCM"}), claims)
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "email": "ada@example.com", "iat": NOW - 60, "exp": NOW + 3600})
}

fn bearer(token: String) -> Credential {
    Credential {
        token,
        source: Source::Bearer,
    }
}

fn open(token: String) -> Result<Claims, SessionError> {
    SessionKeys::derive(SECRET).open(&bearer(token), NOW)
}

fn cookies(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        HeaderValue::from_str(value).expect("cookie"),
    );
    headers
}

#[test]
fn a_well_formed_token_opens_to_its_claims() {
    let found = open(mint(&claims("user_1"))).expect("valid");
    assert_eq!(found.sub, "user_1");
    assert_eq!(found.email.as_deref(), Some("ada@example.com"));
}

#[test]
fn a_token_issued_beyond_the_skew_in_the_future_is_not_yet_valid() {
    let mut early = claims("user_1");
    early["iat"] = json!(NOW + CLOCK_SKEW_SECONDS + 1);
    assert_eq!(open(mint(&early)), Err(SessionError::NotYetValid));
}

#[test]
fn a_token_issued_within_the_skew_in_the_future_is_valid() {
    let mut early = claims("user_1");
    early["iat"] = json!(NOW + CLOCK_SKEW_SECONDS);
    assert!(open(mint(&early)).is_ok());
}

#[test]
fn a_token_expired_exactly_the_skew_ago_is_still_valid() {
    let mut edge = claims("user_1");
    edge["exp"] = json!(NOW - CLOCK_SKEW_SECONDS);
    assert!(open(mint(&edge)).is_ok());
}

#[test]
fn a_token_expired_a_second_beyond_the_skew_is_expired() {
    let mut expired = claims("user_1");
    expired["exp"] = json!(NOW - CLOCK_SKEW_SECONDS - 1);
    assert_eq!(open(mint(&expired)), Err(SessionError::Expired));
}

#[test]
fn extreme_lifetimes_neither_overflow_nor_wrap() {
    let mut forever = claims("user_1");
    forever["exp"] = json!(i64::MAX);
    forever["iat"] = json!(i64::MIN);
    assert!(open(mint(&forever)).is_ok());
    let mut never = claims("user_1");
    never["exp"] = json!(i64::MIN);
    assert_eq!(open(mint(&never)), Err(SessionError::Expired));
    let mut future = claims("user_1");
    future["iat"] = json!(i64::MAX);
    assert_eq!(open(mint(&future)), Err(SessionError::NotYetValid));
}

#[test]
fn an_empty_sub_is_refused() {
    assert!(matches!(
        open(mint(&claims(""))),
        Err(SessionError::Claims(_))
    ));
}

#[test]
fn a_sub_longer_than_an_id_is_refused() {
    let long = "u".repeat(MAX_SUB_BYTES + 1);
    assert!(matches!(
        open(mint(&claims(&long))),
        Err(SessionError::Claims(_))
    ));
}

#[test]
fn a_sub_of_the_longest_id_is_accepted() {
    let longest = "u".repeat(MAX_SUB_BYTES);
    assert!(open(mint(&claims(&longest))).is_ok());
}

#[test]
fn a_sub_holding_a_nul_is_refused() {
    assert!(matches!(
        open(mint(&claims("user\u{0}1"))),
        Err(SessionError::Claims(_))
    ));
}

#[test]
fn a_header_with_zip_alone_is_refused_before_decryption() {
    let token = mint_with_header(
        SECRET,
        &json!({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}),
        &claims("user_1"),
    );
    assert!(matches!(
        open(token),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn a_header_with_crit_alone_is_refused_before_decryption() {
    let token = mint_with_header(
        SECRET,
        &json!({"alg": "dir", "enc": "A256GCM", "crit": ["exp"]}),
        &claims("user_1"),
    );
    assert!(matches!(
        open(token),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn a_key_wrapping_alg_over_a_well_formed_body_is_refused() {
    let token = mint_with_header(
        SECRET,
        &json!({"alg": "A256KW", "enc": "A256GCM"}),
        &claims("user_1"),
    );
    assert!(matches!(
        open(token),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn an_encrypted_key_beside_dir_is_refused() {
    let token = mint(&claims("user_1")).replacen("..", ".AAAA.", 1);
    assert!(matches!(
        open(token),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn an_unknown_content_encryption_is_refused() {
    let token = mint_with_header(
        SECRET,
        &json!({"alg": "dir", "enc": "A128GCM"}),
        &claims("user_1"),
    );
    assert!(matches!(
        open(token),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn a_v4_token_under_a_v5_cookie_name_is_refused() {
    let token = mint(&claims("user_1"));
    let found = credential(&cookies(&format!("{V5}={token}"))).expect("a credential");
    assert_eq!(found.source, Source::Cookie(V5));
    assert!(matches!(
        SessionKeys::derive(SECRET).open(&found, NOW),
        Err(SessionError::UnsupportedHeader(_))
    ));
}

#[test]
fn a_v4_token_under_a_v4_cookie_name_is_accepted() {
    let token = mint(&claims("user_1"));
    let found = credential(&cookies(&format!("{V4}={token}"))).expect("a credential");
    assert!(SessionKeys::derive(SECRET).open(&found, NOW).is_ok());
}

/// A valid token exactly `bytes` long: claims padded with filler, and a
/// `kid` in the header of 0 to 3 characters, since base64 cannot reach every
/// length from one part alone.
fn token_of_length(bytes: usize) -> String {
    for kid in 0..4 {
        let header = json!({"alg": "dir", "enc": "A256GCM", "kid": "k".repeat(kid)});
        let fixed = mint_with_header(SECRET, &header, &claims("user_1")).len();
        // Plaintext grows the token by 4/3 of a byte per byte.
        let start = (bytes.saturating_sub(fixed) * 3 / 4).saturating_sub(8);
        for filler in start..start + 16 {
            let mut padded = claims("user_1");
            padded["pad"] = json!("x".repeat(filler));
            let token = mint_with_header(SECRET, &header, &padded);
            if token.len() == bytes {
                return token;
            }
        }
    }
    panic!("no token of exactly {bytes} bytes");
}

#[test]
fn a_token_of_exactly_the_size_limit_is_opened() {
    assert!(open(token_of_length(MAX_TOKEN_BYTES)).is_ok());
}

#[test]
fn a_token_one_byte_over_the_size_limit_is_refused_unopened() {
    let over = format!("{}A", token_of_length(MAX_TOKEN_BYTES));
    assert_eq!(open(over), Err(SessionError::Oversized));
}

#[test]
fn a_bearer_token_over_the_size_limit_is_refused_when_read() {
    let mut headers = HeaderMap::new();
    let over = "a".repeat(MAX_TOKEN_BYTES + 1);
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {over}")).expect("header"),
    );
    assert_eq!(credential(&headers), Err(SessionError::Oversized));
    let exact = "a".repeat(MAX_TOKEN_BYTES);
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {exact}")).expect("header"),
    );
    assert_eq!(
        credential(&headers).map(|c| c.token.len()),
        Ok(MAX_TOKEN_BYTES)
    );
}

#[test]
fn chunks_joining_to_exactly_the_size_limit_are_read() {
    let half = "a".repeat(MAX_TOKEN_BYTES / 2);
    let found = credential(&cookies(&format!("{V4}.0={half}; {V4}.1={half}"))).expect("credential");
    assert_eq!(found.token.len(), MAX_TOKEN_BYTES);
}

#[test]
fn chunks_joining_to_one_byte_over_the_size_limit_are_refused() {
    let half = "a".repeat(MAX_TOKEN_BYTES / 2);
    assert_eq!(
        credential(&cookies(&format!("{V4}.0={half}; {V4}.1={half}a"))),
        Err(SessionError::Oversized)
    );
}

#[test]
fn cookies_totalling_exactly_the_header_budget_are_read() {
    let quarter = "c".repeat(MAX_TOKEN_BYTES);
    let header = format!("a={quarter}; b={quarter}; c={quarter}; {V4}={quarter}");
    assert!(credential(&cookies(&header)).is_ok());
}

#[test]
fn cookies_totalling_one_byte_over_the_header_budget_are_refused() {
    let quarter = "c".repeat(MAX_TOKEN_BYTES);
    let header = format!("a={quarter}; b={quarter}; c={quarter}a; {V4}={quarter}");
    assert_eq!(credential(&cookies(&header)), Err(SessionError::Oversized));
}

#[test]
fn auth_secret_alone_opens_the_sites_tokens() {
    let keys = SessionKeys::from_env(&Env::from_pairs([("AUTH_SECRET", SECRET)])).expect("keys");
    assert!(keys.open(&bearer(mint(&claims("user_1"))), NOW).is_ok());
}

#[test]
fn nextauth_secret_wins_over_auth_secret_beside_it() {
    let keys = SessionKeys::from_env(&Env::from_pairs([
        ("NEXTAUTH_SECRET", SECRET),
        ("AUTH_SECRET", "another-secret-entirely"),
    ]))
    .expect("keys");
    assert!(keys.open(&bearer(mint(&claims("user_1"))), NOW).is_ok());
    let other = mint_with_header(
        "another-secret-entirely",
        &json!({"alg": "dir", "enc": "A256GCM"}),
        &claims("user_1"),
    );
    assert_eq!(
        keys.open(&bearer(other), NOW),
        Err(SessionError::Undecryptable)
    );
}

#[test]
fn no_secret_at_all_fails_naming_the_variable() {
    let error = SessionKeys::from_env(&Env::from_pairs([])).expect_err("no secret");
    assert_eq!(error.variable, "NEXTAUTH_SECRET");
}

#[test]
fn the_keys_print_as_a_placeholder_not_as_key_material() {
    let keys = SessionKeys::derive(SECRET);
    assert_eq!(format!("{keys:?}"), "SessionKeys(..)");
}
