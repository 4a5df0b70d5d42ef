//! Request rates, where the operator or a session's creator sets them: a
//! token bucket per key (a session, a client address), so that one client
//! past its rate gets `429` and others do not notice. None is set by
//! default: the gateway's bounds (calls in progress, bodies, MCP sessions,
//! connections) already keep one client from taking it down.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, web};
use uuid::Uuid;

use super::error::ApiError;
use crate::mux::{Mux, Session};

/// Buckets kept before idle ones are dropped.
const TIDY_ABOVE: usize = 10_000;
const TIDY_IDLE: Duration = Duration::from_secs(60);

/// A rate: `per_second` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `n` requests a second, twice that at once.
    pub fn per_second(n: f64) -> Rate {
        Rate {
            per_second: n,
            burst: whole(n * 2.0),
        }
    }

    /// This node's share of a rate that holds across `nodes` nodes: with
    /// requests spread over them (a round-robin balancer), together they
    /// allow about the rate, not `nodes` times it.
    pub fn shared_by(self, nodes: usize) -> Rate {
        let nodes = nodes.max(1) as f64;
        Rate {
            per_second: self.per_second / nodes,
            burst: whole(f64::from(self.burst) / nodes),
        }
    }

    /// `n` requests a minute, as many at once.
    pub fn per_minute(n: f64) -> Rate {
        Rate {
            per_second: n / 60.0,
            burst: whole(n),
        }
    }
}

fn whole(n: f64) -> u32 {
    n.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Token buckets, one per key; each check names the key's rate, so that
/// keys may have rates of their own.
pub struct RateLimiter<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// Takes `n` tokens for `key` at `rate` (a request that causes `n`
    /// requests to backends), or says how long until they are there. More
    /// than the burst is never granted.
    pub fn check_n(&self, key: K, n: u32, rate: Rate) -> Result<(), Duration> {
        let n = f64::from(n);
        let per_second = rate.per_second.max(f64::MIN_POSITIVE);
        let burst = f64::from(rate.burst.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > TIDY_ABOVE {
            // A bucket idle for a minute has refilled at any rate worth
            // having; a new one starts full, so dropping it changes nothing.
            buckets.retain(|_, bucket| now.duration_since(bucket.updated) < TIDY_IDLE);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(())
        } else {
            let missing = n.min(burst) - bucket.tokens;
            Err(Duration::from_secs_f64(missing.max(0.0) / per_second))
        }
    }
}

/// How fast clients may go: no limit unless the operator sets one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Requests on one session's MCP endpoint, unless the session has a
    /// `rate_limit` of its own.
    pub session: Option<Rate>,
    /// Sessions one client address may create.
    pub create_session: Option<Rate>,
}

/// The gateway's rate limiters.
#[derive(Default)]
pub struct RateLimits {
    rates: Rates,
    session: RateLimiter<Uuid>,
    create_session: RateLimiter<IpAddr>,
}

impl RateLimits {
    pub fn new(rates: Rates) -> Self {
        RateLimits {
            rates,
            ..RateLimits::default()
        }
    }
}

/// Takes `requests` from `session`'s rate at once: what a request sends on
/// to backends (a listen stream's resource subscriptions) counts, not only
/// the request itself. The session's own `rate_limit` beats the gateway's.
pub fn charge_session_rate(
    request: &HttpRequest,
    session: &Session,
    requests: u32,
) -> Result<(), ApiError> {
    let Some(limits) = request.app_data::<web::Data<RateLimits>>() else {
        return Ok(());
    };
    let rate = session
        .rate_limit
        .map(|n| Rate::per_second(f64::from(n)))
        .or(limits.rates.session);
    let Some(rate) = rate else {
        return Ok(());
    };
    let mux = request.app_data::<web::Data<Mux>>();
    // Passed here by the node it reached, which charged it.
    if mux.is_some_and(|mux| mux.cluster().is_forwarded(request)) {
        return Ok(());
    }
    let nodes = mux.map_or(1, |mux| mux.cluster().live_nodes());
    limits
        .session
        .check_n(session.id, requests, rate.shared_by(nodes))
        .map_err(|wait| ApiError::TooManyRequests {
            retry_after: retry_after_secs(wait),
            what: "requests on this session",
        })
}

/// Refuses a create-session beyond the client address's rate, if the
/// operator set one.
pub fn check_create_session_rate(request: &HttpRequest) -> Result<(), ApiError> {
    let (Some(limits), Some(peer)) = (
        request.app_data::<web::Data<RateLimits>>(),
        request.peer_addr(),
    ) else {
        return Ok(());
    };
    let Some(rate) = limits.rates.create_session else {
        return Ok(());
    };
    limits
        .create_session
        .check_n(peer.ip(), 1, rate)
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
        let limiter = RateLimiter::default();
        let rate = Rate {
            per_second: 0.5,
            burst: 2,
        };
        assert!(limiter.check_n("a", 1, rate).is_ok());
        assert!(limiter.check_n("a", 1, rate).is_ok());
        let wait = limiter
            .check_n("a", 1, rate)
            .expect_err("the burst is spent");
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(2));
        assert_eq!(retry_after_secs(wait), 2);
        assert!(
            limiter.check_n("b", 1, rate).is_ok(),
            "another key has its own bucket"
        );
        assert!(
            limiter.check_n("c", 1, Rate::per_second(100.0)).is_ok(),
            "and may have its own rate"
        );
    }

    #[test]
    fn rates_from_the_flags_keep_a_burst_of_at_least_one() {
        assert_eq!(
            Rate::per_second(50.0),
            Rate {
                per_second: 50.0,
                burst: 100
            }
        );
        assert_eq!(Rate::per_minute(0.5).burst, 1);
        assert_eq!(Rates::default().session, None, "off unless set");
    }

    #[test]
    fn nodes_share_a_rate_out_and_each_keeps_a_burst_of_one() {
        assert_eq!(
            Rate::per_second(50.0).shared_by(3),
            Rate {
                per_second: 50.0 / 3.0,
                burst: 34
            }
        );
        assert_eq!(Rate::per_second(50.0).shared_by(0), Rate::per_second(50.0));
        assert_eq!(Rate::per_minute(1.0).shared_by(4).burst, 1);
    }

    #[test]
    fn a_request_that_reaches_several_backends_takes_as_many_tokens() {
        let limiter = RateLimiter::default();
        let rate = Rate {
            per_second: 1.0,
            burst: 10,
        };
        assert!(limiter.check_n("a", 8, rate).is_ok());
        let wait = limiter.check_n("a", 4, rate).expect_err("two left");
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2));
        assert!(limiter.check_n("a", 2, rate).is_ok());
    }
}
