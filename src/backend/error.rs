//! What can go wrong talking to a backend, and which failures a retry may cover.

use std::time::Duration;

use crate::mcp::jsonrpc::ErrorObject;

/// A failed exchange with one backend. Messages name the backend and never
/// carry a credential or the backend's URL (which may hold one).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("backend \"{server}\" is unreachable: connection refused or failed")]
    Connect { server: String },
    #[error("backend \"{server}\" did not answer within {} ms", timeout.as_millis())]
    Timeout { server: String, timeout: Duration },
    #[error("backend \"{server}\" answered HTTP {status}")]
    Status {
        server: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("backend \"{server}\" refused the session's credential (HTTP {status})")]
    Unauthorized { server: String, status: u16 },
    #[error("backend \"{server}\" no longer knows its MCP session")]
    SessionExpired { server: String },
    /// An OAuth backend that the session's user has not authorized (or
    /// whose grant was revoked): `url` is the link that asks them. The
    /// message leaves it out: it may hold a one-time key, which logs and
    /// states must not show; a call's answer gives it.
    #[error(
        "backend \"{server}\" needs authorization: the session's user must open its authorization link"
    )]
    AuthorizationNeeded {
        server: String,
        url: String,
        /// Scopes the backend asked for besides the usual ones, if it did.
        scope: Option<String>,
    },
    /// An OAuth backend's grant could not give an access token for now
    /// (its token endpoint does not answer, say).
    #[error("backend \"{server}\" has no access token for now: {reason}")]
    NoAccessToken { server: String, reason: String },
    /// The cause (an I/O error chain) is logged, never sent to clients.
    #[error("backend \"{server}\" connection broke before the answer was complete")]
    Transport { server: String, cause: String },
    #[error("backend \"{server}\" sent an invalid answer: {reason}")]
    Protocol { server: String, reason: String },
    #[error("backend \"{server}\" refused initialize: {}", error.message)]
    Initialize { server: String, error: ErrorObject },
    /// A stdio backend's command could not be started; `transient` when
    /// another attempt may succeed (not for a missing or forbidden command).
    #[error("backend \"{server}\" could not start its command \"{command}\": {reason}")]
    Spawn {
        server: String,
        command: String,
        reason: String,
        transient: bool,
    },
    /// The client's MCP session ended while this request was under way.
    #[error("the MCP session ended; backend \"{server}\" was closed")]
    Closed { server: String },
    /// A reload of the registry removed the server the session chose.
    #[error(
        "backend \"{server}\" was removed from the registry; its session cannot open it again (create a session without it)"
    )]
    Removed { server: String },
    #[error(
        "backend \"{server}\" already has {limit} calls in progress (max_concurrent_calls); try again later"
    )]
    Busy { server: String, limit: usize },
    #[error(
        "this session already has {limit} calls in progress on backend \"{server}\" (max_concurrent_calls_per_session); try again later"
    )]
    SessionBusy { server: String, limit: usize },
    /// mcp-mux itself has no connection to spare: not the backend's fault.
    #[error(
        "mcp-mux has all its {limit} backend connections in use (--max-backend-connections); try again shortly"
    )]
    NoConnection { server: String, limit: usize },
    /// mcp-mux could not build the request from what it was given (a
    /// value that cannot be a header): it never left mcp-mux, and says
    /// nothing of the backend.
    #[error("the request to backend \"{server}\" was not sent: {field} {problem}")]
    Unsent {
        server: String,
        field: String,
        problem: String,
    },
    /// The session holds its share of mcp-mux's connections (`what`:
    /// "backend connections" or "backend streams"): its own doing.
    #[error(
        "this session already holds its share of mcp-mux's {what} ({share} of {limit}: half of those other sessions leave free); try again shortly"
    )]
    SessionConnections {
        server: String,
        what: &'static str,
        share: usize,
        limit: usize,
    },
    #[error(
        "backend \"{server}\" failed {failures} times in a row; calls to it are paused for {} ms (circuit breaker open)",
        millis_rounded_up(*retry_in)
    )]
    CircuitOpen {
        server: String,
        failures: u32,
        retry_in: Duration,
    },
}

/// Whether a request may be sent again when it is unknown if the backend
/// acted on the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Running it twice changes nothing: listing, ping, idempotent tools.
    Safe,
    /// It may have effects (a tool without `idempotentHint`/`readOnlyHint`):
    /// retried only when it certainly never reached the backend.
    OnlyIfUnsent,
}

impl BackendError {
    /// The backend this error is about.
    pub fn server(&self) -> &str {
        match self {
            BackendError::Connect { server }
            | BackendError::Timeout { server, .. }
            | BackendError::Status { server, .. }
            | BackendError::Unauthorized { server, .. }
            | BackendError::AuthorizationNeeded { server, .. }
            | BackendError::NoAccessToken { server, .. }
            | BackendError::SessionExpired { server }
            | BackendError::Transport { server, .. }
            | BackendError::Protocol { server, .. }
            | BackendError::Initialize { server, .. }
            | BackendError::Spawn { server, .. }
            | BackendError::Closed { server }
            | BackendError::Removed { server }
            | BackendError::CircuitOpen { server, .. }
            | BackendError::Busy { server, .. }
            | BackendError::SessionBusy { server, .. }
            | BackendError::NoConnection { server, .. }
            | BackendError::Unsent { server, .. }
            | BackendError::SessionConnections { server, .. } => server,
        }
    }

    /// A short name for the kind of failure, for the audit trail.
    pub fn class(&self) -> &'static str {
        match self {
            BackendError::Connect { .. } => "unreachable",
            BackendError::Timeout { .. } => "timeout",
            BackendError::Status { .. } => "http_status",
            BackendError::Unauthorized { .. } => "unauthorized",
            BackendError::AuthorizationNeeded { .. } => "needs_authorization",
            BackendError::NoAccessToken { .. } => "no_access_token",
            BackendError::SessionExpired { .. } => "session_expired",
            BackendError::Transport { .. } => "connection_lost",
            BackendError::Protocol { .. } => "invalid_answer",
            BackendError::Initialize { .. } => "initialize_refused",
            BackendError::Spawn { .. } => "spawn_failed",
            BackendError::Closed { .. } => "closed",
            BackendError::Removed { .. } => "removed",
            BackendError::CircuitOpen { .. } => "circuit_open",
            BackendError::Busy { .. } => "busy",
            BackendError::SessionBusy { .. } => "session_busy",
            BackendError::NoConnection { .. } => "gateway_busy",
            BackendError::Unsent { .. } => "unsent",
            BackendError::SessionConnections { .. } => "connection_share",
        }
    }

    /// Whether another attempt may follow this failure under `replay`.
    /// A timeout is never retried: the call already used its whole budget.
    pub fn is_retryable(&self, replay: Replay) -> bool {
        match self {
            // The request never left mcp-mux.
            BackendError::Connect { .. } => true,
            BackendError::Spawn { transient, .. } => *transient,
            // Rate limited or the backend is not serving: it did not run the request.
            BackendError::Status {
                status: 429 | 502 | 503,
                ..
            } => true,
            // A gateway timeout may come after the request reached the backend.
            BackendError::Status { status: 504, .. } | BackendError::Transport { .. } => {
                replay == Replay::Safe
            }
            BackendError::Status { .. }
            | BackendError::Timeout { .. }
            | BackendError::Unauthorized { .. }
            | BackendError::AuthorizationNeeded { .. }
            | BackendError::NoAccessToken { .. }
            | BackendError::SessionExpired { .. }
            | BackendError::Protocol { .. }
            | BackendError::Initialize { .. }
            | BackendError::Closed { .. }
            | BackendError::Removed { .. }
            | BackendError::CircuitOpen { .. }
            | BackendError::Busy { .. }
            | BackendError::SessionBusy { .. }
            | BackendError::NoConnection { .. }
            | BackendError::SessionConnections { .. } => false,
            // Sending it again would fail the same way.
            BackendError::Unsent { .. } => false,
        }
    }

    /// Whether a call that failed so may be sent to a fallback of the
    /// backend under `replay`. The same line as retries draw: what certainly
    /// never reached the backend goes on, what may have run goes on only
    /// when it is safe to repeat. Beyond retries: a timeout (the fallback
    /// has a budget of its own), any other failed status and an invalid
    /// answer when safe, and the bounds that stopped the call before it was
    /// sent (an open circuit, a busy backend, a session that would not open).
    pub fn fails_over(&self, replay: Replay) -> bool {
        self.is_retryable(replay)
            || match self {
                BackendError::Connect { .. }
                | BackendError::CircuitOpen { .. }
                | BackendError::Busy { .. }
                | BackendError::SessionBusy { .. }
                | BackendError::SessionExpired { .. }
                | BackendError::Initialize { .. }
                | BackendError::Spawn { .. } => true,
                BackendError::Timeout { .. }
                | BackendError::Status { .. }
                | BackendError::Transport { .. }
                | BackendError::Protocol { .. } => replay == Replay::Safe,
                // The session's credential, the MCP session ending,
                // mcp-mux's own connections (the session's share of them
                // included) or a request it cannot build: another backend
                // would not help.
                BackendError::Unauthorized { .. }
                | BackendError::AuthorizationNeeded { .. }
                | BackendError::NoAccessToken { .. }
                | BackendError::Closed { .. }
                | BackendError::Removed { .. }
                | BackendError::NoConnection { .. }
                | BackendError::SessionConnections { .. }
                | BackendError::Unsent { .. } => false,
            }
    }

    /// The wait the backend asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BackendError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
/// Whole milliseconds of `duration`, rounded up: a pause that has not
/// quite ended is never shown as 0 ms.
pub fn millis_rounded_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_that_never_reached_the_backend_fail_over_unless_safe_to_repeat() {
        let server = || "b".to_owned();
        let status = |status| BackendError::Status {
            server: server(),
            status,
            retry_after: None,
        };
        let unsent = [
            BackendError::Connect { server: server() },
            status(503),
            BackendError::CircuitOpen {
                server: server(),
                failures: 5,
                retry_in: Duration::from_secs(1),
            },
        ];
        let maybe_run = [
            BackendError::Timeout {
                server: server(),
                timeout: Duration::from_secs(1),
            },
            status(500),
            status(504),
            BackendError::Transport {
                server: server(),
                cause: "reset".into(),
            },
        ];
        for error in unsent {
            assert!(error.fails_over(Replay::OnlyIfUnsent), "{error}");
            assert!(error.fails_over(Replay::Safe), "{error}");
        }
        for error in maybe_run {
            assert!(!error.fails_over(Replay::OnlyIfUnsent), "{error}");
            assert!(error.fails_over(Replay::Safe), "{error}");
        }
        let refused = BackendError::Unauthorized {
            server: server(),
            status: 401,
        };
        assert!(!refused.fails_over(Replay::Safe));
    }

    #[test]
    fn a_request_that_was_never_sent_is_neither_retried_nor_failed_over() {
        let unsent = BackendError::Unsent {
            server: "b".into(),
            field: "a header".into(),
            problem: "holds a value that cannot be sent".into(),
        };
        for replay in [Replay::Safe, Replay::OnlyIfUnsent] {
            assert!(!unsent.is_retryable(replay));
            assert!(!unsent.fails_over(replay));
        }
        assert_eq!(
            unsent.to_string(),
            "the request to backend \"b\" was not sent: a header holds a value that cannot be sent"
        );
    }

    #[test]
    fn a_pause_not_quite_over_is_never_shown_as_0_ms() {
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(millis_rounded_up(Duration::from_micros(300)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(2)), 2);
        let open = BackendError::CircuitOpen {
            server: "b".into(),
            failures: 3,
            retry_in: Duration::from_micros(300),
        };
        assert_eq!(
            open.to_string(),
            "backend \"b\" failed 3 times in a row; calls to it are paused for 1 ms (circuit breaker open)"
        );
    }
}
