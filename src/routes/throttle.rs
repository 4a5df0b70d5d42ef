//! Slows down a client address that keeps presenting wrong admin tokens:
//! after a few failures each further one shuts the address out for twice
//! as long as the last (up to a minute), so guessing goes at a few tries a
//! minute while the operator, once the short wait is over, gets in with the
//! right token. An address is forgotten after a quiet quarter of an hour;
//! the table is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong tokens an address may present before it has to wait.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; each further failure doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait: the operator is never shut out for longer.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// An address without a failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses kept at most; past it the quietest one is dropped.
const MAX_ADDRESSES: usize = 4096;

/// Failed admin tokens by client address.
#[derive(Default)]
pub struct Throttle {
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

struct Failures {
    count: u32,
    last: Instant,
    /// No token from this address is looked at before then.
    until: Instant,
}

impl Throttle {
    /// How long `address` must still wait before a token of its is looked
    /// at, if it must. While it waits even the right token is refused:
    /// otherwise the refusal would tell a right guess from a wrong one.
    pub fn wait(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let addresses = self.lock();
        let failures = addresses.get(&key(address))?;
        (failures.until > now).then(|| failures.until - now)
    }

    /// Counts a wrong token from `address`.
    pub fn fail(&self, address: IpAddr, now: Instant) {
        let address = key(address);
        let mut addresses = self.lock();
        if !addresses.contains_key(&address) && addresses.len() >= MAX_ADDRESSES {
            addresses.retain(|_, failures| now.duration_since(failures.last) < FORGET_AFTER);
            if addresses.len() >= MAX_ADDRESSES
                && let Some(quietest) = addresses
                    .iter()
                    .min_by_key(|(_, failures)| failures.last)
                    .map(|(address, _)| *address)
            {
                addresses.remove(&quietest);
            }
        }
        let failures = addresses.entry(address).or_insert(Failures {
            count: 0,
            last: now,
            until: now,
        });
        if now.duration_since(failures.last) >= FORGET_AFTER {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if let Some(beyond) = failures.count.checked_sub(FREE_FAILURES) {
            let doubled = FIRST_WAIT.saturating_mul(1u32 << beyond.min(16));
            failures.until = now + doubled.min(MAX_WAIT);
        }
    }

    /// Forgets the failures of `address`: it presented the right token.
    pub fn succeed(&self, address: IpAddr) {
        let mut addresses = self.lock();
        if !addresses.is_empty() {
            addresses.remove(&key(address));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key of an address: an IPv6 client holds a whole /64, so it counts
/// as one; an IPv4-mapped one as its IPv4 address.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_few_failures_are_free_then_each_doubles_the_wait_up_to_a_minute() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for n in 1..FREE_FAILURES {
            throttle.fail(HOME, start);
            assert_eq!(throttle.wait(HOME, start), None, "failure {n} is free");
        }
        let mut now = start;
        for expected in [1, 2, 4, 8, 16, 32, 60, 60] {
            throttle.fail(HOME, now);
            assert_eq!(
                throttle.wait(HOME, now),
                Some(Duration::from_secs(expected))
            );
            now += Duration::from_secs(expected);
            assert_eq!(throttle.wait(HOME, now), None, "the wait ends");
        }
        throttle.succeed(HOME);
        throttle.fail(HOME, now);
        assert_eq!(
            throttle.wait(HOME, now),
            None,
            "the right token starts afresh"
        );
    }

    #[test]
    fn a_quiet_address_is_forgotten_and_others_are_apart() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES {
            throttle.fail(HOME, start);
        }
        assert!(throttle.wait(HOME, start).is_some());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(throttle.wait(other, start), None);
        let later = start + FORGET_AFTER;
        throttle.fail(HOME, later);
        assert_eq!(throttle.wait(HOME, later), None, "counted from one again");
    }

    #[test]
    fn an_ipv6_client_counts_once_for_its_64_and_the_table_is_bounded() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for n in 0..FREE_FAILURES {
            let address: IpAddr = format!("2001:db8::{n}").parse().expect("an address");
            throttle.fail(address, now);
        }
        let neighbour: IpAddr = "2001:db8::ffff".parse().expect("an address");
        assert!(throttle.wait(neighbour, now).is_some());
        for n in 0..=MAX_ADDRESSES as u32 {
            throttle.fail(IpAddr::V4(n.into()), now + Duration::from_millis(n.into()));
        }
        assert_eq!(throttle.lock().len(), MAX_ADDRESSES);
    }
}
