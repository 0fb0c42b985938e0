//! Tokens minted by the real next-auth v4 `encode` and @auth/core v5
//! `encode` (tests/data/auth/generate.mjs) are accepted; everything else is
//! a 401.

use axum::{body::Body, http::Request, http::StatusCode};
use serde_json::Value;

use crate::{TestApp, spawn_app, tokens};

const ME: &str = "/api/admin/audit/verify";

fn case(name: &str) -> Value {
    tokens()["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .clone()
}

async fn app_with_fixture_admin() -> TestApp {
    let app = spawn_app().await;
    // Every fixture's `sub`.
    app.admin("user_admin_1", "super_admin", None).await;
    app
}

async fn with_cookie(app: &TestApp, cookie: &str) -> StatusCode {
    app.raw(
        Request::get(ME)
            .header("cookie", cookie)
            .body(Body::empty())
            .expect("request"),
    )
    .await
    .status
}

async fn with_bearer(app: &TestApp, token: &str) -> StatusCode {
    app.raw(
        Request::get(ME)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await
    .status
}

fn cookie_of(case: &Value) -> String {
    format!(
        "{}={}",
        case["cookieName"].as_str().expect("cookie name"),
        case["token"].as_str().expect("token")
    )
}

#[tokio::test]
async fn a_next_auth_v4_session_cookie_is_accepted() {
    let app = app_with_fixture_admin().await;
    assert_eq!(
        with_cookie(&app, &cookie_of(&case("v4-valid"))).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_next_auth_v4_token_is_accepted_as_a_bearer_token() {
    let app = app_with_fixture_admin().await;
    let token = case("v4-valid")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(with_bearer(&app, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_v4_cookie_chunked_by_next_auth_is_joined_and_accepted() {
    let app = app_with_fixture_admin().await;
    let chunks = case("v4-valid-chunked")["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .rev() // order on the wire must not matter
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().expect("name"),
                c["value"].as_str().expect("value")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    assert!(chunks.contains("next-auth.session-token.2="));
    assert_eq!(with_cookie(&app, &chunks).await, StatusCode::OK);
}

#[tokio::test]
async fn auth_js_v5_cookies_are_accepted_under_both_names() {
    let app = app_with_fixture_admin().await;
    assert_eq!(
        with_cookie(&app, &cookie_of(&case("v5-valid"))).await,
        StatusCode::OK
    );
    assert_eq!(
        with_cookie(&app, &cookie_of(&case("v5-valid-secure"))).await,
        StatusCode::OK
    );
    let token = case("v5-valid")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(with_bearer(&app, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_v5_token_under_the_other_cookie_name_is_refused() {
    // The cookie name is the HKDF salt: a token moved to another name does
    // not decrypt.
    let app = app_with_fixture_admin().await;
    let token = case("v5-valid")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let moved = format!("__Secure-authjs.session-token={token}");
    assert_eq!(with_cookie(&app, &moved).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_sessions_of_both_versions_are_refused() {
    let app = app_with_fixture_admin().await;
    for name in ["v4-expired", "v5-expired"] {
        assert_eq!(
            with_cookie(&app, &cookie_of(&case(name))).await,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_token_made_with_another_secret_is_refused() {
    let app = app_with_fixture_admin().await;
    assert_eq!(
        with_cookie(&app, &cookie_of(&case("v4-wrong-secret"))).await,
        StatusCode::UNAUTHORIZED
    );
}

/// `token` with one byte of segment `index` changed.
fn tamper(token: &str, index: usize) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = engine.decode(&parts[index]).expect("segment");
    bytes[0] ^= 0x01;
    parts[index] = engine.encode(bytes);
    parts.join(".")
}

#[tokio::test]
async fn tampered_ciphertext_iv_or_tag_is_refused() {
    let app = app_with_fixture_admin().await;
    for fixture in ["v4-valid", "v5-valid"] {
        let token = case(fixture)["token"].as_str().expect("token").to_owned();
        for (segment, what) in [(2, "iv"), (3, "ciphertext"), (4, "tag")] {
            let cookie = format!(
                "{}={}",
                case(fixture)["cookieName"].as_str().expect("name"),
                tamper(&token, segment)
            );
            assert_eq!(
                with_cookie(&app, &cookie).await,
                StatusCode::UNAUTHORIZED,
                "{fixture} {what}"
            );
        }
    }
}

/// `token` with its tag cut to `keep` bytes.
fn truncate_tag(token: &str, keep: usize) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (rest, tag) = token.rsplit_once('.').expect("tag");
    let tag = engine.decode(tag).expect("tag bytes");
    format!("{rest}.{}", engine.encode(&tag[..keep]))
}

#[tokio::test]
async fn a_truncated_tag_is_refused_so_it_cannot_be_guessed_byte_by_byte() {
    // OpenSSL would check a 1-byte GCM tag as a 1-byte tag: 256 guesses
    // would forge a session. The true tag cut short must already fail.
    let app = app_with_fixture_admin().await;
    for fixture in ["v4-valid", "v5-valid"] {
        let token = case(fixture)["token"].as_str().expect("token").to_owned();
        let name = case(fixture)["cookieName"]
            .as_str()
            .expect("name")
            .to_owned();
        for keep in [1, 4, 15] {
            let cookie = format!("{name}={}", truncate_tag(&token, keep));
            assert_eq!(
                with_cookie(&app, &cookie).await,
                StatusCode::UNAUTHORIZED,
                "{fixture}, {keep}-byte tag"
            );
        }
    }
}

#[tokio::test]
async fn a_tampered_header_is_refused_because_it_is_authenticated_data() {
    use base64::Engine as _;
    let app = app_with_fixture_admin().await;
    let token = case("v4-valid")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, rest) = token.split_once('.').expect("header");
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"enc":"A256GCM","alg":"dir"}"#);
    let cookie = format!("next-auth.session-token={header}.{rest}");
    assert_eq!(with_cookie(&app, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn alg_none_a_plain_jws_and_garbage_are_refused() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let app = app_with_fixture_admin().await;
    let claims = b64(r#"{"sub":"user_admin_1","exp":9999999999}"#);
    for token in [
        format!("{}.{claims}.", b64(r#"{"alg":"none"}"#)),
        format!(
            "{}.{claims}.c2lnbmF0dXJl",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#)
        ),
        format!(
            "{}..AAAAAAAAAAAAAAAA.{claims}.",
            b64(r#"{"alg":"none","enc":"A256GCM"}"#)
        ),
        "garbage".to_owned(),
        "a.b.c.d.e".to_owned(),
    ] {
        let cookie = format!("next-auth.session-token={token}");
        assert_eq!(
            with_cookie(&app, &cookie).await,
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
        assert_eq!(
            with_bearer(&app, &token).await,
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
}

#[tokio::test]
async fn an_oversized_cookie_is_refused() {
    let app = app_with_fixture_admin().await;
    let huge = "A".repeat(access::session::MAX_TOKEN_BYTES + 1);
    assert_eq!(
        with_cookie(&app, &format!("next-auth.session-token={huge}")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn no_credentials_at_all_is_a_401_json_error() {
    let app = app_with_fixture_admin().await;
    let body = app
        .expect("GET", ME, None, None, StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_valid_session_of_a_deleted_user_is_refused() {
    let app = spawn_app().await;
    // No users row for the fixtures' sub.
    assert_eq!(
        with_cookie(&app, &cookie_of(&case("v4-valid"))).await,
        StatusCode::UNAUTHORIZED
    );
}
