//! The MCP protocol vocabulary, with no I/O: JSON-RPC envelopes and error codes,
//! protocol revisions, the Server-Sent Events codec and the qualified-name rule.

pub mod jsonrpc;
pub mod naming;
pub mod sse;
pub mod version;
