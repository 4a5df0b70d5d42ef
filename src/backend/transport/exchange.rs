//! What one exchange means on every transport: whether the message opens the
//! backend session or runs inside it, what came back from the backend, and
//! the largest reply taken.

use reqwest::header::HeaderValue;

use crate::mcp::jsonrpc::IncomingMessage;

/// Largest answer (JSON body, one SSE event, or one stdio line) accepted
/// from a backend.
pub(super) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Whether a message opens the backend session or runs inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Initialize,
    InSession,
}

/// What one exchange received from the backend.
pub(crate) enum Received {
    /// A notification or response was accepted (202).
    Accepted,
    Message {
        message: IncomingMessage,
        /// The backend session a Streamable HTTP backend issued with its
        /// answer; the other transports' connection is the backend session.
        session_id: Option<HeaderValue>,
    },
}
