//! A circuit breaker per backend, shared by every session of this gateway:
//! after repeated failures calls fail at once instead of each waiting out
//! its retries, and one probe at a time finds out when the backend is back.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::error::{BackendError, millis_rounded_up};
use crate::mcp::request::Method;
use crate::registry::BreakerPolicy;

/// The breaker's state as `GET /session/<id>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through; `failures` is the current run of failed ones.
    Closed { failures: u32 },
    /// Calls fail at once for `retry_in`.
    Open { failures: u32, retry_in: Duration },
    /// One probe call is allowed through; its outcome closes or reopens.
    HalfOpen { failures: u32 },
}

impl CircuitState {
    /// How long calls stay refused, in whole milliseconds rounded up, while
    /// the circuit is open: 0 only once the pause is over.
    pub fn retry_in_ms(&self) -> Option<u64> {
        match self {
            CircuitState::Open { retry_in, .. } => Some(millis_rounded_up(*retry_in)),
            CircuitState::Closed { .. } | CircuitState::HalfOpen { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            CircuitState::Closed { .. } => "closed",
            CircuitState::Open { .. } => "open",
            CircuitState::HalfOpen { .. } => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Failures in a row; reset by any exchange the backend answered.
    failures: u32,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    server: String,
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
}

/// What one exchange told about the backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The backend answered, whatever it answered (an error result, a
    /// refused credential, an unknown session): it is up.
    Answered,
    /// It could not be reached, timed out, or failed as a server.
    Failed,
}

/// What a request asks of a backend, which decides what its timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A handshake or a list: a healthy backend answers at once, so a
    /// timeout is a failure.
    Bookkeeping,
    /// A tool call, a prompt, a resource read or a completion: the work
    /// itself may outlast the timeout, which then says nothing of the
    /// backend's health. One session's slow calls must not open the circuit
    /// for every other session.
    Task,
}

impl Work {
    pub fn of(method: &str) -> Self {
        if Method::parse(method).is_some_and(Method::is_routed_to_one_backend) {
            Work::Task
        } else {
            Work::Bookkeeping
        }
    }
}

impl Health {
    pub fn of<T>(outcome: &Result<T, BackendError>, work: Work) -> Option<Health> {
        let Err(error) = outcome else {
            return Some(Health::Answered);
        };
        match error {
            BackendError::Timeout { .. } if work == Work::Task => None,
            BackendError::Connect { .. }
            | BackendError::Timeout { .. }
            | BackendError::Transport { .. }
            | BackendError::Protocol { .. }
            | BackendError::Spawn { .. } => Some(Health::Failed),
            BackendError::Status { status, .. } if *status >= 500 => Some(Health::Failed),
            BackendError::Status { .. }
            | BackendError::Unauthorized { .. }
            | BackendError::SessionExpired { .. }
            | BackendError::Initialize { .. } => Some(Health::Answered),
            // Says nothing of the backend: mcp-mux's own bounds, or a
            // session that ended.
            BackendError::Closed { .. }
            | BackendError::Removed { .. }
            | BackendError::CircuitOpen { .. }
            | BackendError::Busy { .. }
            | BackendError::SessionBusy { .. }
            | BackendError::NoConnection { .. }
            | BackendError::SessionConnections { .. } => None,
            // Never left mcp-mux, or waits on the user's authorization.
            BackendError::Unsent { .. }
            | BackendError::AuthorizationNeeded { .. }
            | BackendError::NoAccessToken { .. } => None,
        }
    }
}

/// Leave to run one exchange; a probe that is dropped without an outcome
/// (its caller went away) lets the next call probe instead.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    /// Records how the exchange went.
    pub fn settle(mut self, health: Option<Health>) {
        self.settled = true;
        self.breaker.record(self.probe, health);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.record(self.probe, None);
        }
    }
}

impl CircuitBreaker {
    pub fn new(server: String, policy: BreakerPolicy) -> Self {
        CircuitBreaker {
            server,
            policy,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
            }),
        }
    }

    /// Leave for one exchange, or the error to fail it with at once.
    pub fn admit(&self) -> Result<Permit<'_>, BackendError> {
        let mut inner = self.lock();
        let now = Instant::now();
        let probe = match inner.state {
            State::Closed => false,
            State::Open { until } if now < until => {
                return Err(self.open_error(inner.failures, until - now));
            }
            State::Open { .. } | State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                tracing::info!(server = %self.server, "circuit half open: probing the backend");
                true
            }
            State::HalfOpen { probing: true } => {
                return Err(self.open_error(inner.failures, Duration::ZERO));
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    pub fn state(&self) -> CircuitState {
        let inner = self.lock();
        let failures = inner.failures;
        match inner.state {
            State::Closed => CircuitState::Closed { failures },
            State::Open { until } => CircuitState::Open {
                failures,
                retry_in: until.saturating_duration_since(Instant::now()),
            },
            State::HalfOpen { .. } => CircuitState::HalfOpen { failures },
        }
    }

    fn record(&self, probe: bool, health: Option<Health>) {
        let mut inner = self.lock();
        match health {
            Some(Health::Answered) => {
                if !matches!(inner.state, State::Closed) {
                    tracing::info!(server = %self.server, "circuit closed: the backend answers again");
                }
                inner.state = State::Closed;
                inner.failures = 0;
            }
            Some(Health::Failed) => {
                inner.failures = inner.failures.saturating_add(1);
                let trips = match inner.state {
                    State::Closed => inner.failures >= self.policy.failure_threshold,
                    State::HalfOpen { .. } => probe,
                    State::Open { .. } => false,
                };
                if trips {
                    tracing::warn!(
                        server = %self.server,
                        failures = inner.failures,
                        "circuit open: calls to the backend fail at once for {} ms",
                        self.policy.open_for.as_millis()
                    );
                    inner.state = State::Open {
                        until: Instant::now() + self.policy.open_for,
                    };
                }
            }
            None => {
                if probe && matches!(inner.state, State::HalfOpen { probing: true }) {
                    inner.state = State::HalfOpen { probing: false };
                }
            }
        }
    }

    fn open_error(&self, failures: u32, retry_in: Duration) -> BackendError {
        BackendError::CircuitOpen {
            server: self.server.clone(),
            failures,
            retry_in,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_for: Duration) -> CircuitBreaker {
        CircuitBreaker::new(
            "b".into(),
            BreakerPolicy {
                failure_threshold: threshold,
                open_for,
            },
        )
    }

    fn fail(breaker: &CircuitBreaker) {
        breaker
            .admit()
            .expect("admitted")
            .settle(Some(Health::Failed));
    }

    #[test]
    fn failures_inside_mcp_mux_say_nothing_of_the_backend() {
        let server = || "b".to_owned();
        let inside = [
            BackendError::Unsent {
                server: server(),
                field: "a header".into(),
                problem: "holds a value that cannot be sent".into(),
            },
            BackendError::NoConnection {
                server: server(),
                limit: 1,
            },
            BackendError::Closed { server: server() },
        ];
        for error in inside {
            for work in [Work::Bookkeeping, Work::Task] {
                assert_eq!(Health::of::<()>(&Err(error.clone()), work), None, "{error}");
            }
        }
    }

    #[test]
    fn it_opens_after_the_threshold_of_failures_in_a_row() {
        let breaker = breaker(3, Duration::from_secs(60));
        fail(&breaker);
        fail(&breaker);
        breaker
            .admit()
            .expect("admitted")
            .settle(Some(Health::Answered));
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 0 });
        for _ in 0..3 {
            fail(&breaker);
        }
        assert_eq!(breaker.state().name(), "open");
        let Err(error) = breaker.admit() else {
            panic!("an open circuit admits nothing");
        };
        assert!(
            error
                .to_string()
                .starts_with("backend \"b\" failed 3 times in a row; calls to it are paused for ")
        );
    }

    #[test]
    fn after_the_pause_one_probe_goes_through_and_its_outcome_decides() {
        let breaker = breaker(1, Duration::ZERO);
        fail(&breaker);
        let probe = breaker.admit().expect("the probe");
        assert_eq!(breaker.state(), CircuitState::HalfOpen { failures: 1 });
        assert!(breaker.admit().is_err(), "one probe at a time");
        probe.settle(Some(Health::Failed));
        assert_eq!(breaker.state().name(), "open");

        let probe = breaker.admit().expect("the next probe");
        drop(probe);
        let probe = breaker.admit().expect("a dropped probe frees the slot");
        probe.settle(Some(Health::Answered));
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 0 });
    }

    #[test]
    fn a_refused_credential_is_an_answer_not_a_failure() {
        let error = BackendError::Unauthorized {
            server: "b".into(),
            status: 401,
        };
        assert_eq!(
            Health::of::<()>(&Err(error), Work::Bookkeeping),
            Some(Health::Answered)
        );
        let error = BackendError::Status {
            server: "b".into(),
            status: 503,
            retry_after: None,
        };
        assert_eq!(
            Health::of::<()>(&Err(error), Work::Task),
            Some(Health::Failed)
        );
    }

    #[test]
    fn a_slow_tool_call_is_no_failure_but_a_slow_list_is() {
        let timeout = || {
            Err::<(), _>(BackendError::Timeout {
                server: "b".into(),
                timeout: Duration::from_secs(1),
            })
        };
        assert_eq!(Health::of(&timeout(), Work::of("tools/call")), None);
        assert_eq!(
            Health::of(&timeout(), Work::of("tools/list")),
            Some(Health::Failed)
        );
        let exhausted = Err::<(), _>(BackendError::NoConnection {
            server: "b".into(),
            limit: 8,
        });
        assert_eq!(Health::of(&exhausted, Work::Bookkeeping), None);
    }
}
