//! What a backend sends besides its answers, notifications and requests to
//! the client, and where they go: to the call they concern, to the session's
//! listener, or, for a request no client can take, an answer from mcp-mux.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde_json::{Value, json};

use crate::mcp::jsonrpc::{self, ErrorObject};

/// A message a backend sent on a response stream before the response.
#[derive(Debug, Clone, PartialEq)]
pub enum Relayed {
    Notification(Value),
    /// A request to the client (sampling, elicitation, roots): `id` is the
    /// backend's, `message` the whole request.
    Request {
        id: Value,
        message: Value,
    },
}

/// Where the messages of a request's response stream go, and the id the
/// request last went out with (retries change it), for cancellation.
#[derive(Clone)]
pub struct Relay {
    pub to_client: Arc<dyn Fn(Relayed) + Send + Sync>,
    pub sent_id: Arc<AtomicU64>,
}

/// Where a backend's messages that no call takes go: `BackendSession::listen`'s `to_client`.
pub(super) type ToClient = Arc<dyn Fn(Relayed) + Send + Sync>;

/// Answers a request a backend sent on a response stream: `ping` is answered,
/// anything else refused, so the backend never waits on a client that cannot
/// be asked.
pub(super) fn answer_to_server_request(id: &Value, method: &str) -> Vec<u8> {
    if method == "ping" {
        return jsonrpc::result_response(id, &json!({}));
    }
    let error = ErrorObject::new(
        jsonrpc::METHOD_NOT_FOUND,
        format!("mcp-mux does not relay {method} to its clients"),
    );
    jsonrpc::error_response(id, &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_ping_is_answered_and_other_requests_refused() {
        let pong: Value =
            serde_json::from_slice(&answer_to_server_request(&json!(3), "ping")).expect("JSON");
        assert_eq!(pong, json!({ "jsonrpc": "2.0", "id": 3, "result": {} }));
        let refused: Value = serde_json::from_slice(&answer_to_server_request(
            &json!("r"),
            "sampling/createMessage",
        ))
        .expect("JSON");
        assert_eq!(refused["error"]["code"], -32601);
        assert_eq!(refused["id"], "r");
    }
}
