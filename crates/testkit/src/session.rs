//! Admin sessions for tests: the fixtures' secret, and NextAuth v4 tokens
//! made the way next-auth makes them, for every function with admin routes.

use serde_json::{Value, json};

/// The npm-generated session fixtures (tests/data/auth/generate.mjs).
pub fn tokens() -> Value {
    crate::fixture("auth/tokens.json")
}

pub fn fixture_secret() -> String {
    tokens()["secret"].as_str().expect("secret").to_owned()
}

/// A NextAuth v4 session token for `user_id`, made the way next-auth's
/// `encode` makes it (HKDF key, `dir` + `A256GCM`), valid for an hour.
pub fn v4_token(secret: &str, user_id: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    v4_token_of(
        secret,
        &json!({"sub": user_id, "email": format!("{user_id}@example.com"), "name": user_id,
            "iat": now, "exp": now + 3600, "jti": format!("jti-{user_id}")}),
    )
}

/// A NextAuth v4 session token holding `claims`: the compact JWE that
/// next-auth's `encode` writes, composed here from RFC 7516 rather than by
/// the reader under test (whose framing it checks; the real package's own
/// tokens are in `tests/data/auth/tokens.json`).
pub fn v4_token_of(secret: &str, claims: &Value) -> String {
    use aes_gcm::{
        Aes256Gcm, KeyInit,
        aead::{AeadInPlace, Nonce},
    };
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b""), secret.as_bytes())
        .expand(b"NextAuth.js Generated Encryption Key", &mut key)
        .expect("hkdf");
    let header = B64.encode(r#"{"alg":"dir","enc":"A256GCM"}"#);
    // A fresh IV per token, as a GCM key requires.
    static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut iv = [0u8; 12];
    iv[4..].copy_from_slice(
        &TOKENS
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes(),
    );
    let mut ciphertext = claims.to_string().into_bytes();
    let tag = Aes256Gcm::new(&key.into())
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
