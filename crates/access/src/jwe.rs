//! Compact JWE with direct key agreement (`alg: dir`): the one shape of
//! token NextAuth and Auth.js issue, opened with RustCrypto's audited
//! primitives.
//!
//! The content encryptions are those the two libraries use:
//!
//! - `A256GCM` (RFC 7518 §5.3): the `aes-gcm` AEAD, 12-byte IV, 16-byte tag.
//! - `A256CBC-HS512` (RFC 7518 §5.2): the first half of the 64-byte key
//!   authenticates `AAD || IV || ciphertext || AAD length in bits` with
//!   HMAC-SHA-512, whose left 32 bytes are the tag; only once the tag
//!   matches (compared in constant time by `hmac`) is the second half used
//!   to decrypt the ciphertext with AES-256-CBC and PKCS #7 padding.
//!
//! In both, the additional authenticated data is the protected header as
//! sent (its base64url text), so a changed header fails authentication.
//!
//! A pure-Rust implementation keeps OpenSSL out of the admin bootstrap: it
//! was over a third of its size and a C build in every cross-compile.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha512;

/// Why a token did not open. The session reader maps these to its own
/// refusals; none says which byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JweError {
    /// Not five base64url segments with a JSON protected header.
    Malformed,
    /// A header this reader does not accept (`alg`, `enc`, `zip`, `crit`).
    Unsupported(String),
    /// Authentication failed: wrong key, or any byte changed.
    Undecryptable,
}

/// A content encryption with its key: what `dir` uses directly as the CEK.
#[derive(Clone)]
pub enum ContentKey {
    A256Gcm([u8; 32]),
    A256CbcHs512([u8; 64]),
}

impl ContentKey {
    fn enc(&self) -> &'static str {
        match self {
            Self::A256Gcm(_) => "A256GCM",
            Self::A256CbcHs512(_) => "A256CBC-HS512",
        }
    }
}

#[derive(Deserialize)]
struct ProtectedHeader {
    alg: String,
    enc: String,
    #[serde(default)]
    zip: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A compact JWE split and decoded, header checked, not yet authenticated.
#[derive(Debug)]
pub struct Compact<'a> {
    /// The protected header's base64url text: the AAD.
    protected: &'a str,
    /// `A256GCM` or `A256CBC-HS512`.
    pub enc: String,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl<'a> Compact<'a> {
    /// Splits `token` and checks its header before any key is tried: only
    /// `dir` with an empty encrypted key, no compression and no critical
    /// extensions is accepted, so `alg: none`, a JWS (three parts) or a zip
    /// bomb never reach decryption. IV and tag must have exactly the sizes
    /// the algorithm defines: a shorter GCM tag would be forgeable in a few
    /// hundred tries by a library that accepts it.
    pub fn parse(token: &'a str) -> Result<Self, JweError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(JweError::Malformed);
        };
        let decode = |segment: &str| BASE64URL.decode(segment).map_err(|_| JweError::Malformed);
        let header: ProtectedHeader =
            serde_json::from_slice(&decode(protected)?).map_err(|_| JweError::Malformed)?;
        if header.alg != "dir" || !encrypted_key.is_empty() {
            return Err(JweError::Unsupported(format!("alg {}", header.alg)));
        }
        if header.zip.is_some() || header.crit.is_some() {
            return Err(JweError::Unsupported("zip or crit".into()));
        }
        let (iv_len, tag_len) = match header.enc.as_str() {
            "A256GCM" => (12, 16),
            "A256CBC-HS512" => (16, 32),
            other => return Err(JweError::Unsupported(format!("enc {other}"))),
        };
        let (iv, ciphertext, tag) = (decode(iv)?, decode(ciphertext)?, decode(tag)?);
        if iv.len() != iv_len || tag.len() != tag_len {
            return Err(JweError::Malformed);
        }
        Ok(Self {
            protected,
            enc: header.enc,
            iv,
            ciphertext,
            tag,
        })
    }

    /// The plaintext, if `key` is of this token's `enc` and authenticates it.
    pub fn open(&self, key: &ContentKey) -> Result<Vec<u8>, JweError> {
        if key.enc() != self.enc {
            return Err(JweError::Undecryptable);
        }
        let aad = self.protected.as_bytes();
        match key {
            ContentKey::A256Gcm(key) => {
                let mut sealed = Vec::with_capacity(self.ciphertext.len() + self.tag.len());
                sealed.extend_from_slice(&self.ciphertext);
                sealed.extend_from_slice(&self.tag);
                aes_gcm::Aes256Gcm::new(key.into())
                    .decrypt(
                        aes_gcm::Nonce::from_slice(&self.iv),
                        Payload { msg: &sealed, aad },
                    )
                    .map_err(|_| JweError::Undecryptable)
            }
            ContentKey::A256CbcHs512(key) => {
                let (mac_key, enc_key) = key.split_at(32);
                let aad_bits = u64::try_from(aad.len())
                    .ok()
                    .and_then(|bytes| bytes.checked_mul(8))
                    .ok_or(JweError::Malformed)?;
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(mac_key)
                    .map_err(|_| JweError::Undecryptable)?;
                mac.update(aad);
                mac.update(&self.iv);
                mac.update(&self.ciphertext);
                mac.update(&aad_bits.to_be_bytes());
                // `parse` fixed the tag at 32 bytes, so this compares the
                // full truncated MAC the algorithm defines, in constant time.
                mac.verify_truncated_left(&self.tag)
                    .map_err(|_| JweError::Undecryptable)?;
                cbc::Decryptor::<aes::Aes256>::new_from_slices(enc_key, &self.iv)
                    .map_err(|_| JweError::Undecryptable)?
                    .decrypt_padded_vec_mut::<Pkcs7>(&self.ciphertext)
                    .map_err(|_| JweError::Undecryptable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 7518 Appendix B.3, the AES_256_CBC_HMAC_SHA_512 test case. The
    /// RFC's AAD is arbitrary bytes; a JWE's is its header text, so the
    /// vector is checked through the same composition `open` uses.
    #[test]
    fn the_rfc_7518_a256cbc_hs512_vector_authenticates_and_decrypts() {
        let key: [u8; 64] = hex("00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
             10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
             20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
             30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f")
        .try_into()
        .expect("64 bytes");
        let plaintext = hex("41 20 63 69 70 68 65 72 20 73 79 73 74 65 6d 20
             6d 75 73 74 20 6e 6f 74 20 62 65 20 72 65 71 75
             69 72 65 64 20 74 6f 20 62 65 20 73 65 63 72 65
             74 2c 20 61 6e 64 20 69 74 20 6d 75 73 74 20 62
             65 20 61 62 6c 65 20 74 6f 20 66 61 6c 6c 20 69
             6e 74 6f 20 74 68 65 20 68 61 6e 64 73 20 6f 66
             20 74 68 65 20 65 6e 65 6d 79 20 77 69 74 68 6f
             75 74 20 69 6e 63 6f 6e 76 65 6e 69 65 6e 63 65");
        let iv = hex("1a f3 8c 2d c2 b9 6f fd d8 66 94 09 23 41 bc 04");
        let aad = hex("54 68 65 20 73 65 63 6f 6e 64 20 70 72 69 6e 63
             69 70 6c 65 20 6f 66 20 41 75 67 75 73 74 65 20
             4b 65 72 63 6b 68 6f 66 66 73");
        let ciphertext = hex("4a ff aa ad b7 8c 31 c5 da 4b 1b 59 0d 10 ff bd
             3d d8 d5 d3 02 42 35 26 91 2d a0 37 ec bc c7 bd
             82 2c 30 1d d6 7c 37 3b cc b5 84 ad 3e 92 79 c2
             e6 d1 2a 13 74 b7 7f 07 75 53 df 82 94 10 44 6b
             36 eb d9 70 66 29 6a e6 42 7e a7 5c 2e 08 46 a1
             1a 09 cc f5 37 0d c8 0b fe cb ad 28 c7 3f 09 b3
             a3 b7 5e 66 2a 25 94 41 0a e4 96 b2 e2 e6 60 9e
             31 e6 e0 2c c8 37 f0 53 d2 1f 37 ff 4f 51 95 0b
             be 26 38 d0 9d d7 a4 93 09 30 80 6d 07 03 b1 f6");
        let tag = hex("4d d3 b4 c0 88 a7 f4 5c 21 68 39 64 5b 20 12 bf
             2e 62 69 a8 c5 6a 81 6d bc 1b 26 77 61 95 5b c5");
        // Stand the RFC's AAD in for a header: `open` authenticates
        // `protected.as_bytes()`, which for this test is the AAD itself.
        let aad_text = String::from_utf8(aad).expect("the RFC's AAD is ASCII");
        let compact = Compact {
            protected: &aad_text,
            enc: "A256CBC-HS512".into(),
            iv,
            ciphertext,
            tag,
        };
        let key = ContentKey::A256CbcHs512(key);
        assert_eq!(compact.open(&key), Ok(plaintext));

        let other_header = aad_text.replace("Kerckhoffs", "Kerckhoffz");
        let reheaded = Compact {
            protected: &other_header,
            enc: compact.enc.clone(),
            iv: compact.iv.clone(),
            ciphertext: compact.ciphertext.clone(),
            tag: compact.tag.clone(),
        };
        assert_eq!(reheaded.open(&key), Err(JweError::Undecryptable));

        let mut forged = Compact { ..compact };
        forged.tag[31] ^= 1;
        assert_eq!(forged.open(&key), Err(JweError::Undecryptable));
    }

    #[test]
    fn a_key_of_the_other_content_encryption_does_not_open_a_token() {
        let token =
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA";
        let compact = Compact::parse(token).expect("well-formed");
        assert_eq!(
            compact.open(&ContentKey::A256CbcHs512([0; 64])),
            Err(JweError::Undecryptable)
        );
    }
}
