//! The way from the backends to the client outside the answer of a
//! request: the client's own stream (its GET), the `subscriptions/listen`
//! streams, and the backend requests waiting for the client's answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use crate::mux::subscriptions::Listeners;

/// Where a client's stream answer goes: serialized JSON-RPC messages.
pub type ClientStream = tokio::sync::mpsc::UnboundedSender<Vec<u8>>;

/// Backend requests awaiting a client's answer, per MCP session.
const MAX_PENDING_SERVER_REQUESTS: usize = 256;

/// What an MCP session's backends tell its client outside any request.
#[derive(Default)]
pub(super) struct Signals {
    /// The client's own stream (its GET), while it has one open.
    pub(super) client: Mutex<Option<ClientStream>>,
    /// Set once `initialize` is answered: a backend that opens later is
    /// announced with list_changed notifications.
    pub(super) answered: AtomicBool,
    /// Id given to the client → the backend that asked and its own id.
    pub(super) server_requests: Mutex<HashMap<String, (usize, Value)>>,
    pub(super) next_server_request: AtomicU64,
    /// The `subscriptions/listen` streams of stateless clients.
    pub(super) listeners: Listeners,
}

impl Signals {
    /// Sends a message to the listeners that asked for it and on the
    /// client's own stream.
    pub(super) fn send(&self, message: &Value) {
        self.listeners.dispatch(message);
        self.send_to_client_stream(message);
    }

    /// Sends a message on the client's own stream, if it has one open.
    pub(super) fn send_to_client_stream(&self, message: &Value) {
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = client.as_ref() else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(message) else {
            return;
        };
        if sender.send(bytes).is_err() {
            *client = None;
        }
    }

    /// Ends the client's own stream and its `subscriptions/listen` streams:
    /// their receivers see the end once the senders are gone.
    pub(super) fn end_streams(&self) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.listeners.clear();
    }

    pub(super) fn has_client_stream(&self) -> bool {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Gives a backend's request to the client under an id of mcp-mux's, so
    /// that two backends' request ids never collide; None when too many
    /// already await an answer.
    pub(super) fn adopt_request(
        &self,
        index: usize,
        id: Value,
        mut message: Value,
    ) -> Option<Value> {
        let mut pending = self
            .server_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING_SERVER_REQUESTS {
            tracing::warn!("too many backend requests await the client; one is dropped");
            return None;
        }
        let ours = format!(
            "mux-{}",
            self.next_server_request.fetch_add(1, Ordering::Relaxed) + 1
        );
        pending.insert(ours.clone(), (index, id));
        message["id"] = Value::String(ours);
        Some(message)
    }

    /// Tells the client and the listeners that every list changed.
    pub(super) fn announce_lists_changed(&self) {
        for list in ["tools", "prompts", "resources"] {
            self.send(&json!({ "jsonrpc": "2.0", "method": format!("notifications/{list}/list_changed") }));
        }
    }
}
