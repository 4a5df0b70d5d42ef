//! Random tokens and how they are compared: every token the gateway hands
//! out (session, console login, form) is made and checked here.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits, URL-safe, after `prefix`.
pub fn random_token(prefix: &str) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of a token: what the store keeps of a session token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two secrets in constant time: their digests, so that neither
/// the contents nor the length of the expected one leaks through timing.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    token_digest(presented)
        .ct_eq(&token_digest(expected))
        .into()
}
