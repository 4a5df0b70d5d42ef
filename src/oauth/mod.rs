//! mcp-mux as the OAuth 2.1 client of its backends (the MCP authorization
//! chapter): finding each backend's authorization server.

pub mod discovery;
