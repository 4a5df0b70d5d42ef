//! Request rates: a token bucket per key (a session, a client address), so
//! that one client flooding the gateway gets `429` and others do not notice.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, web};
use uuid::Uuid;

use super::error::ApiError;

/// Buckets kept before full ones (which mean nothing) are dropped.
const TIDY_ABOVE: usize = 10_000;

pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// `per_second` requests a second on average, `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `key`, or says how long until one is
    /// there.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_n(key, 1)
    }

    /// Takes `n` tokens for `key` at once (a request that causes `n`
    /// requests to backends), or says how long until they are there. More
    /// than the burst is never granted.
    pub fn check_n(&self, key: K, n: u32) -> Result<(), Duration> {
        let n = f64::from(n);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > TIDY_ABOVE {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| bucket.refilled(now, per_second, burst) < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = bucket.refilled(now, self.per_second, self.burst);
        bucket.updated = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(())
        } else {
            let missing = n.min(self.burst) - bucket.tokens;
            Err(Duration::from_secs_f64(missing.max(0.0) / self.per_second))
        }
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, per_second: f64, burst: f64) -> f64 {
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * per_second).min(burst)
    }
}

/// How fast clients may go, from the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Requests a second on one session's MCP endpoint, on average.
    pub session_per_second: f64,
    /// Requests one session's MCP endpoint takes at once.
    pub session_burst: u32,
    /// Sessions one client address may create a minute, on average.
    pub create_session_per_minute: f64,
    /// Sessions one client address may create at once.
    pub create_session_burst: u32,
}

impl Rates {
    /// Limits of `session_per_second` (twice that at once) and
    /// `create_session_per_minute` (that many at once).
    pub fn new(session_per_second: f64, create_session_per_minute: f64) -> Self {
        let burst = |rate: f64| rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        Rates {
            session_per_second,
            session_burst: burst(session_per_second * 2.0),
            create_session_per_minute,
            create_session_burst: burst(create_session_per_minute),
        }
    }
}

impl Default for Rates {
    fn default() -> Self {
        Rates::new(50.0, 30.0)
    }
}

/// The gateway's rate limiters.
pub struct RateLimits {
    session: RateLimiter<Uuid>,
    create_session: RateLimiter<IpAddr>,
}

impl RateLimits {
    pub fn new(rates: Rates) -> Self {
        RateLimits {
            session: RateLimiter::new(rates.session_per_second, rates.session_burst),
            create_session: RateLimiter::new(
                rates.create_session_per_minute / 60.0,
                rates.create_session_burst,
            ),
        }
    }
}

/// Refuses a request to session `id`'s MCP endpoint beyond its rate.
pub fn check_session_rate(request: &HttpRequest, id: Uuid) -> Result<(), ApiError> {
    charge_session_rate(request, id, 1)
}

/// Takes `requests` from session `id`'s rate at once: what a request sends
/// on to backends (a listen stream's resource subscriptions) counts, not
/// only the request itself.
pub fn charge_session_rate(request: &HttpRequest, id: Uuid, requests: u32) -> Result<(), ApiError> {
    let Some(limits) = request.app_data::<web::Data<RateLimits>>() else {
        return Ok(());
    };
    limits
        .session
        .check_n(id, requests)
        .map_err(|wait| ApiError::TooManyRequests {
            retry_after: retry_after_secs(wait),
            what: "requests on this session",
        })
}

/// Refuses a create-session beyond the client address's rate.
pub fn check_create_session_rate(request: &HttpRequest) -> Result<(), ApiError> {
    let (Some(limits), Some(peer)) = (
        request.app_data::<web::Data<RateLimits>>(),
        request.peer_addr(),
    ) else {
        return Ok(());
    };
    limits
        .create_session
        .check(peer.ip())
        .map_err(|wait| ApiError::TooManyRequests {
            retry_after: retry_after_secs(wait),
            what: "sessions created from this address",
        })
}

/// Whole seconds for a `Retry-After` header: at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().clamp(1.0, 24.0 * 3600.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_key() {
        let limiter = RateLimiter::new(0.5, 2);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").expect_err("the burst is spent");
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(2));
        assert_eq!(retry_after_secs(wait), 2);
        assert!(limiter.check("b").is_ok(), "another key has its own bucket");
    }

    #[test]
    fn a_request_that_reaches_several_backends_takes_as_many_tokens() {
        let limiter = RateLimiter::new(1.0, 10);
        assert!(limiter.check_n("a", 8).is_ok());
        let wait = limiter.check_n("a", 4).expect_err("two left");
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2));
        assert!(limiter.check_n("a", 2).is_ok());
    }
}
