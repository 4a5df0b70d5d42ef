//! Why a client's MCP request could not be answered with a result.

use super::item_kind::NamedKind;
use crate::backend::BackendError;
use crate::mcp::jsonrpc::ErrorObject;
use crate::mcp::request::RequestError;
use crate::store::StoreError;

/// A failed MCP request; `routes::mcp` maps each variant to a JSON-RPC error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("method not found: {method}")]
    MethodNotFound { method: String },
    #[error("invalid params: {reason}")]
    InvalidParams { reason: String },
    #[error("unknown {} \"{name}\"", kind.noun())]
    Unknown { kind: NamedKind, name: String },
    #[error(
        "unknown resource \"{uri}\": this session's resource URIs are <server>+<uri>, as resources/list shows them"
    )]
    UnknownResource { uri: String },
    /// The backend that owns the tool has no working backend session.
    #[error(transparent)]
    BackendUnavailable(#[from] Unavailable),
    /// The exchange with the backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The task running the call ended without an answer.
    #[error("the call ended without an answer")]
    Interrupted,
    /// The call's backend waits for its user's authorization, and the
    /// client takes URL elicitations (revision 2025-11-25): it is asked to
    /// open `url`, then to call again.
    #[error("{message}")]
    UrlElicitationRequired {
        server: String,
        url: String,
        message: String,
    },
    /// The backend's own JSON-RPC error, passed on unchanged.
    #[error("{}", .error.message)]
    Relayed { error: ErrorObject },
}

impl From<RequestError> for CallError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::MethodNotFound { method } => CallError::MethodNotFound { method },
            RequestError::InvalidParams { reason } => CallError::InvalidParams { reason },
        }
    }
}

impl CallError {
    /// Whether mcp-mux itself ran out of backend connections: the request
    /// may succeed shortly, and the backend is not to blame.
    pub fn is_gateway_exhausted(&self) -> bool {
        matches!(
            self,
            CallError::Backend(BackendError::NoConnection { .. })
                | CallError::BackendUnavailable(Unavailable::Failed(
                    BackendError::NoConnection { .. }
                ))
        )
    }

    /// Whether the session already held its share of mcp-mux's backend
    /// connections: the request may succeed once its own calls end.
    pub fn is_over_connection_share(&self) -> bool {
        matches!(
            self,
            CallError::Backend(BackendError::SessionConnections { .. })
                | CallError::BackendUnavailable(Unavailable::Failed(
                    BackendError::SessionConnections { .. }
                ))
        )
    }
}

/// Why a backend of an MCP session cannot take requests right now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("backend \"{server}\" is still opening its session")]
    Opening { server: String },
    #[error(transparent)]
    Failed(BackendError),
}

impl Unavailable {
    pub fn server(&self) -> &str {
        match self {
            Unavailable::Opening { server } => server,
            Unavailable::Failed(error) => error.server(),
        }
    }
}

/// A session-level operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session was deleted")]
    SessionEnded,
    #[error("the gateway holds its maximum of {limit} sessions; delete one or try again later")]
    AtCapacity { limit: u64 },
    /// No backend of a new MCP session could get a connection.
    #[error(
        "mcp-mux has all its {limit} backend connections in use (--max-backend-connections); try again shortly"
    )]
    NoConnection { limit: usize },
    /// No backend of a new MCP session could get a connection within the
    /// session's share of them.
    #[error(
        "this session already holds its share of mcp-mux's {what} ({share} of {limit}: half of those other sessions leave free); try again shortly"
    )]
    SessionConnections {
        what: &'static str,
        share: usize,
        limit: usize,
    },
    /// Stateless clients declared more sets of capabilities than a
    /// session serves at once, and each set has a call or stream in use.
    #[error(
        "this session serves stateless clients that declare {limit} different sets of client capabilities, the most it may, and each set has a call waiting or a stream open; try again once one ends"
    )]
    CapabilitySets { limit: usize },
}
