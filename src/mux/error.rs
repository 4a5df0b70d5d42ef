//! Why a client's MCP request could not be answered with a result.

use crate::backend::BackendError;
use crate::mcp::jsonrpc::ErrorObject;
use crate::store::StoreError;

/// A failed MCP request; `routes::mcp` maps each variant to a JSON-RPC error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("method not found: {method}")]
    MethodNotFound { method: String },
    #[error("invalid params: {reason}")]
    InvalidParams { reason: String },
    #[error("unknown tool \"{name}\"")]
    UnknownTool { name: String },
    #[error("backend \"{server}\" is unavailable: {reason}")]
    BackendDown { server: String, reason: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend's own JSON-RPC error, passed on unchanged.
    #[error("{}", .0.message)]
    Relayed(ErrorObject),
}

/// A session-level operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}
