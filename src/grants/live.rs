//! A grant's access token as one node holds it: the token, the version
//! of the grant it came from, and when to renew it.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::store::StoredGrant;

/// Most ahead of expiry a token is renewed; less for short-lived ones
/// (a fifth of their life), so that a token is not renewed at every call.
const MAX_RENEW_AHEAD: Duration = Duration::from_secs(60);
/// How soon after a renewal that a refusal caused a second refusal means
/// renewing will not help (the grant lacks a scope, or names another
/// resource) rather than bad luck. Never more than half the token's life:
/// a refusal later than that is its expiry, come early by the clocks'
/// skew or by a JWT's whole seconds.
const REFUSED_AGAIN_WITHIN: Duration = Duration::from_secs(30);

/// A grant's access token as this node holds it.
#[derive(Default)]
pub(super) struct Live {
    current: Mutex<Option<Current>>,
    /// Held while this node renews the token: one renewal at a time.
    pub(super) renewing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Current {
    token: SecretString,
    /// The grant's version it came from.
    version: i64,
    /// When to renew it: some time before it expires.
    renew_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    /// Until when a refusal of it means the grant itself is refused: set
    /// when a refusal of the one before brought it.
    suspect_until: Option<std::time::Instant>,
}

/// When to renew a grant's access token: a fifth of its remaining life
/// before it expires, at most [`MAX_RENEW_AHEAD`]; never if it does not expire.
pub(super) fn renew_at(grant: &StoredGrant, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    grant.expires_at.map(|expires_at| {
        let life = (expires_at - now).max(chrono::TimeDelta::zero());
        let most = chrono::Duration::from_std(MAX_RENEW_AHEAD).unwrap_or_default();
        expires_at - (life / 5).min(most)
    })
}

impl Live {
    /// Holds `grant`'s token from now; `after_refusal` when a backend's
    /// refusal of the one before brought it.
    pub(super) fn replace(&self, grant: &StoredGrant, after_refusal: bool) {
        let now = Utc::now();
        let suspect_until = after_refusal.then(|| {
            let half_life = grant
                .expires_at
                .and_then(|at| (at - now).to_std().ok())
                .map_or(REFUSED_AGAIN_WITHIN, |life| life / 2);
            std::time::Instant::now() + half_life.min(REFUSED_AGAIN_WITHIN)
        });
        *self.lock() = Some(Current {
            token: grant.access_token.clone(),
            version: grant.version,
            renew_at: renew_at(grant, now),
            expires_at: grant.expires_at,
            suspect_until,
        });
    }

    /// Whether `refused` is the token a refusal brought moments ago: then
    /// a backend refuses the grant itself, and renewing again would only
    /// spend refresh tokens.
    pub(super) fn refused_again(&self, refused: Option<&SecretString>) -> bool {
        let (Some(refused), Some(current)) = (refused, self.lock().clone()) else {
            return false;
        };
        current
            .suspect_until
            .is_some_and(|until| std::time::Instant::now() < until)
            && refused.expose_secret() == current.token.expose_secret()
    }

    /// The version of the grant its token came from, if it holds one.
    pub(super) fn version(&self) -> Option<i64> {
        self.lock().as_ref().map(|current| current.version)
    }

    pub(super) fn clear(&self) {
        *self.lock() = None;
    }

    /// The token, unless it is time to renew it or it is `refused`. Read
    /// by every call: only the token is copied out.
    pub(super) fn fresh_unless(&self, refused: Option<&SecretString>) -> Option<SecretString> {
        let current = self.lock();
        let current = current.as_ref()?;
        let due = current.renew_at.is_some_and(|at| at <= Utc::now());
        let was_refused =
            refused.is_some_and(|used| used.expose_secret() == current.token.expose_secret());
        (!due && !was_refused).then(|| current.token.clone())
    }

    /// The token while it has not expired and is not `refused`, even if
    /// it is due for renewal: what calls use while a renewal fails.
    pub(super) fn usable_unless(&self, refused: Option<&SecretString>) -> Option<SecretString> {
        let current = self.lock().clone()?;
        let expired = current.expires_at.is_some_and(|at| at <= Utc::now());
        let was_refused =
            refused.is_some_and(|used| used.expose_secret() == current.token.expose_secret());
        (!expired && !was_refused).then_some(current.token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
