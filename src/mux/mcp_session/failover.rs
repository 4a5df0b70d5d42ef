//! Failover: the requests and lists that go on to a backend's fallbacks
//! (see `slot::Fallback`) when the backend cannot take them.

use std::sync::Arc;

use serde_json::Value;

use super::slot::{BackendSlot, Listed};
use super::{ClientCall, McpSession};
use crate::backend::{Replay, Reply};
use crate::mux::error::{CallError, Unavailable};
use crate::mux::item_kind::Listing;

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
        | CallError::UrlElicitationRequired { .. }
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
