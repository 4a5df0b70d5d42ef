//! mcp-mux as the OAuth 2.1 client of its backends (the MCP authorization
//! chapter): finding each backend's authorization server, becoming its
//! client, then the authorization code flow and refresh.

pub mod client;
pub mod discovery;
pub mod registration;

/// The innermost cause of a failed request, which names what went wrong
/// (connection refused, say).
fn innermost_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
