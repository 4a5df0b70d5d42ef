//! Tokens found valid lately, so that a host's every call does not verify
//! its signature again (tens of microseconds for RS256) or ask its issuer
//! again: by SHA-256 of the token and the audiences it was checked for
//! (the token itself is not kept), until its `exp` and five minutes at
//! most, so that an introspected token revoked at its issuer stops working
//! soon. Scopes are checked on every use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::validate::{Identity, Verified};

/// Longest a token is taken as valid without checking it again.
const KEEP_AT_MOST: Duration = Duration::from_secs(5 * 60);
/// Most tokens kept; beyond, the expired go, then all.
const MAX_KEPT: usize = 10_000;

/// Who a known token proves the caller is, and until when that holds.
type Known = (Arc<Identity>, Instant);

#[derive(Default)]
pub struct KnownTokens {
    tokens: Mutex<HashMap<[u8; 32], Known>>,
}

/// The key of `token` checked for `audiences`.
pub fn key(token: &str, audiences: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    for audience in audiences {
        // A byte no token or URL holds, so that no two lists make one key.
        hasher.update([0]);
        hasher.update(audience.as_bytes());
    }
    hasher.finalize().into()
}

impl KnownTokens {
    /// Who the token of `key` proved the caller is, while that holds.
    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<Identity>> {
        let tokens = self.lock();
        let (identity, until) = tokens.get(key)?;
        (*until > Instant::now()).then(|| identity.clone())
    }

    /// Keeps a token found valid; returns who it proves the caller is.
    pub fn keep(&self, key: [u8; 32], verified: Verified) -> Arc<Identity> {
        let now = Instant::now();
        let left = verified.expires_at - chrono::Utc::now().timestamp();
        let until = now + Duration::from_secs(u64::try_from(left).unwrap_or(0)).min(KEEP_AT_MOST);
        let identity = Arc::new(verified.identity);
        let mut tokens = self.lock();
        if tokens.len() >= MAX_KEPT {
            tokens.retain(|_, (_, until)| *until > now);
            if tokens.len() >= MAX_KEPT {
                tokens.clear();
            }
        }
        tokens.insert(key, (identity.clone(), until));
        identity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Known>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
