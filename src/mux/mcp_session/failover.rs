//! Failover: the fallbacks of an MCP session's backends, each with a
//! backend session opened on the first request that needs it and kept
//! after, and the requests that go on to them when their backend cannot
//! take them.

use std::sync::Arc;

use serde_json::Value;

use super::slot::{BackendSlot, Listed};
use super::to_client::Signals;
use super::{ClientCall, McpSession};
use crate::backend::{Attempts, BackendSession, Replay, Reply};
use crate::mux::catalogues::Catalogues;
use crate::mux::error::{CallError, Unavailable};
use crate::mux::item_kind::Listing;

/// A fallback of one backend of an MCP session.
pub(super) struct Fallback {
    /// The index of the backend it stands in for.
    of: usize,
    /// Its place in that backend's `fallback` list, from 1.
    rank: usize,
    pub(super) slot: Arc<BackendSlot>,
    /// Set once its backend session was first opened. Afterwards the slot
    /// opens it again by itself after a failure, as a backend's does.
    opened: tokio::sync::OnceCell<()>,
}

impl Fallback {
    /// The fallbacks of an MCP session's backends, none open: their slots
    /// are numbered after the backends' and use their backend's prefix.
    pub(super) fn slots(
        sessions: Vec<(usize, BackendSession)>,
        primaries: &[(BackendSession, String)],
        signals: &Arc<Signals>,
        catalogues: &Arc<Catalogues>,
    ) -> Vec<Fallback> {
        let mut fallbacks: Vec<Fallback> = Vec::with_capacity(sessions.len());
        for (position, (of, session)) in sessions.into_iter().enumerate() {
            let prefix = primaries
                .get(of)
                .map(|(_, prefix)| prefix.clone())
                .unwrap_or_default();
            let mut slot = BackendSlot::new(
                primaries.len() + position,
                session,
                prefix,
                signals.clone(),
                catalogues.clone(),
            );
            slot.is_fallback = true;
            let rank = 1 + fallbacks.iter().filter(|earlier| earlier.of == of).count();
            fallbacks.push(Fallback {
                of,
                rank,
                slot: Arc::new(slot),
                opened: tokio::sync::OnceCell::new(),
            });
        }
        fallbacks
    }

    /// Opens its backend session unless it was opened before; one attempt,
    /// since its backend already spent the call's retries.
    async fn open_once(&self) {
        self.opened
            .get_or_init(|| self.slot.clone().open(Attempts::Once))
            .await;
    }
}

/// Whether a request that failed so may go on to a fallback: the backend
/// session was not there to take it, or the exchange failed in a way that
/// lets another backend take it under `replay`
/// ([`crate::backend::BackendError::fails_over`]).
fn fails_over(error: &CallError, replay: Replay) -> bool {
    match error {
        CallError::BackendUnavailable(Unavailable::Opening { .. }) => true,
        // The request was not sent at all: repeating it is safe.
        CallError::BackendUnavailable(Unavailable::Failed(error)) => error.fails_over(Replay::Safe),
        CallError::Backend(error) => error.fails_over(replay),
        CallError::MethodNotFound { .. }
        | CallError::InvalidParams { .. }
        | CallError::Unknown { .. }
        | CallError::UnknownResource { .. }
        | CallError::Interrupted
        | CallError::Relayed { .. } => false,
    }
}

impl McpSession {
    /// Sends a request to backend `index`; when that fails in a way that
    /// lets another backend take it, to its fallbacks in order, opening
    /// each one's backend session on first use, until one answers or fails
    /// in a way that ends the call. Returns the slot whose outcome it is:
    /// the one that answered, else the backend when every fallback failed
    /// as it did, else the fallback whose failure ended the call. The name
    /// in `params` is the backend's own, which its fallbacks share.
    pub(super) async fn send_failing_over(
        &self,
        index: usize,
        method: &str,
        params: serde_json::Map<String, Value>,
        replay: Replay,
        call: &ClientCall<'_>,
    ) -> (&Arc<BackendSlot>, Result<Reply, CallError>) {
        let primary = &self.backends[index];
        let params = Value::Object(params);
        let error = match self
            .send_to_slot(primary, method, &params, replay, call)
            .await
        {
            Ok(reply) => {
                self.serving.note(index, 0);
                return (primary, Ok(reply));
            }
            Err(error) if fails_over(&error, replay) => error,
            Err(error) => return (primary, Err(error)),
        };
        for fallback in self
            .fallbacks
            .iter()
            .filter(|fallback| fallback.of == index)
        {
            fallback.open_once().await;
            tracing::info!(server = primary.name(), fallback = fallback.slot.name(), %error, "{method} fails over");
            match self
                .send_to_slot(&fallback.slot, method, &params, replay, call)
                .await
            {
                Ok(reply) => {
                    self.serving.note(index, fallback.rank);
                    return (&fallback.slot, Ok(reply));
                }
                Err(failed) if fails_over(&failed, replay) => {
                    tracing::warn!(server = fallback.slot.name(), error = %failed, "fallback could not take {method} either");
                }
                Err(failed) => return (&fallback.slot, Err(failed)),
            }
        }
        (primary, Err(error))
    }

    /// Lists the items of backend `index`, or of its first fallback that
    /// can when the backend cannot: each within twice its call timeout.
    pub(super) async fn list_failing_over(
        &self,
        index: usize,
        listing: Listing,
    ) -> Result<Listed, CallError> {
        let primary = &self.backends[index];
        let error = match self.list_within_deadline(primary, listing).await {
            Err(error) if fails_over(&error, Replay::Safe) => error,
            listed => return listed,
        };
        for fallback in self
            .fallbacks
            .iter()
            .filter(|fallback| fallback.of == index)
        {
            fallback.open_once().await;
            if let Ok(listed) = self.list_within_deadline(&fallback.slot, listing).await {
                tracing::info!(server = primary.name(), fallback = fallback.slot.name(), %error, "listed by a fallback");
                return Ok(listed);
            }
        }
        Err(error)
    }
}
