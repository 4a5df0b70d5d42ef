//! What each backend of a session is doing, in one word and a reason:
//! ready, not yet opened, waiting for its user's authorization, refusing
//! the session's credential, unreachable, or behind an open circuit.

use chrono::{DateTime, Utc};

use super::session::Session;
use super::{CircuitState, Mux, MuxError};
use crate::backend::BackendError;

/// A backend's state in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Ready,
    NotOpened,
    NeedsAuthorization,
    CredentialRefused,
    Unreachable,
    CircuitOpen,
}

impl ServerState {
    pub const ALL: [ServerState; 6] = [
        ServerState::Ready,
        ServerState::NotOpened,
        ServerState::NeedsAuthorization,
        ServerState::CredentialRefused,
        ServerState::Unreachable,
        ServerState::CircuitOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Ready => "ready",
            ServerState::NotOpened => "not_opened",
            ServerState::NeedsAuthorization => "needs_authorization",
            ServerState::CredentialRefused => "credential_refused",
            ServerState::Unreachable => "unreachable",
            ServerState::CircuitOpen => "circuit_open",
        }
    }
}

/// Where an OAuth backend's authorization stands for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// With the scopes the backend asked for besides the usual ones, when
    /// it wants more than the grant has.
    Needed { scope: Option<String> },
    /// Its access token lasts until `expires_at`, if the server said.
    Connected { expires_at: Option<DateTime<Utc>> },
}

/// One backend of a session: its state, why, and for an OAuth backend
/// where its authorization stands.
#[derive(Debug, Clone)]
pub struct BackendStatus {
    pub state: ServerState,
    pub reason: String,
    pub authorization: Option<Authorization>,
}

impl Mux {
    /// The state of each of `session`'s backends, in its order. An OAuth
    /// backend's grant is read from the store (any node may have taken its
    /// callback); the rest is what this node's MCP sessions saw.
    pub async fn backend_states(&self, session: &Session) -> Result<Vec<BackendStatus>, MuxError> {
        let mut states = Vec::with_capacity(session.servers.len());
        for server in &session.servers {
            let authorization = match server.auth.oauth() {
                None => None,
                Some(_) => Some(
                    match self
                        .grants
                        .status(&session.grant_holder(), &server.name)
                        .await?
                    {
                        Some(expires_at) => Authorization::Connected { expires_at },
                        None => Authorization::Needed { scope: None },
                    },
                ),
            };
            let (state, reason, error) = if matches!(
                authorization,
                Some(Authorization::Needed { .. })
            ) {
                (
                    ServerState::NeedsAuthorization,
                    format!(
                        "\"{}\" waits for the session's user to authorize mcp-mux at its authorization link",
                        server.name
                    ),
                    None,
                )
            } else {
                self.observed_state(session, &server.name)
            };
            // Connected, but the backend wants more: the user is asked again.
            let authorization = match (authorization, error) {
                (Some(_), Some(BackendError::AuthorizationNeeded { scope, .. })) => {
                    Some(Authorization::Needed { scope })
                }
                (authorization, _) => authorization,
            };
            states.push(BackendStatus {
                state,
                reason,
                authorization,
            });
        }
        Ok(states)
    }

    /// How many backends of the loaded `sessions` are in each state, as
    /// this node's MCP sessions saw them (no store read: metrics are
    /// scraped often).
    pub(super) fn loaded_backend_states(
        &self,
        sessions: &[std::sync::Arc<Session>],
    ) -> Vec<(&'static str, u64)> {
        let mut counts = [0u64; ServerState::ALL.len()];
        for session in sessions {
            for server in &session.servers {
                let (state, _, _) = self.observed_state(session, &server.name);
                if let Some(at) = ServerState::ALL.iter().position(|s| *s == state) {
                    counts[at] += 1;
                }
            }
        }
        ServerState::ALL
            .iter()
            .zip(counts)
            .map(|(state, count)| (state.as_str(), count))
            .collect()
    }

    /// What this node's MCP sessions of `session` saw of `server`, and
    /// the error that shows it is not ready, if any.
    fn observed_state(
        &self,
        session: &Session,
        server: &str,
    ) -> (ServerState, String, Option<BackendError>) {
        if let Some((circuit @ CircuitState::Open { .. }, _)) = self.backend_health(server) {
            return (
                ServerState::CircuitOpen,
                format!(
                    "calls to \"{server}\" fail at once for {} ms after failures in a row",
                    circuit.retry_in_ms().unwrap_or_default()
                ),
                None,
            );
        }
        let outcomes: Vec<_> = session
            .mcp_sessions()
            .iter()
            .flat_map(|mcp_session| mcp_session.backend_outcomes(server))
            .collect();
        if outcomes.iter().any(Result::is_ok) {
            return (ServerState::Ready, format!("\"{server}\" answers"), None);
        }
        match outcomes.into_iter().find_map(Result::err) {
            Some(error) => (state_of(&error), error.to_string(), Some(error)),
            None => (
                ServerState::NotOpened,
                format!("no MCP session on this gateway has opened \"{server}\" yet"),
                None,
            ),
        }
    }
}

/// The state a backend that failed so is in.
fn state_of(error: &BackendError) -> ServerState {
    match error {
        BackendError::AuthorizationNeeded { .. } => ServerState::NeedsAuthorization,
        BackendError::Unauthorized { .. } => ServerState::CredentialRefused,
        BackendError::CircuitOpen { .. } => ServerState::CircuitOpen,
        _ => ServerState::Unreachable,
    }
}
