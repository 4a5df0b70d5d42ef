//! The MCP protocol vocabulary, with no I/O: JSON-RPC envelopes and error codes,
//! protocol revisions (the legacy ones and the stateless 2026-07-28, with its
//! mirrored `Mcp-Param-*` headers), the Server-Sent Events codec, the qualified-name rule, and the checks every
//! client value passes before it is sent on to a backend.

pub mod client_values;
pub mod jsonrpc;
pub mod naming;
pub mod nesting;
pub mod param_headers;
pub mod request;
pub mod sse;
pub mod stateless;
pub mod version;

/// Streamable HTTP header naming the MCP session.
pub const SESSION_ID_HEADER: &str = "mcp-session-id";
/// Streamable HTTP header naming the negotiated protocol revision.
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// SSE header a client sends to resume a stream after the last event it saw.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";
