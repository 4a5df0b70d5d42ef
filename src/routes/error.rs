//! Errors of the HTTP API and the one place that gives each its status.
//! Management routes answer them as JSON naming the field and the reason;
//! the MCP endpoint wraps the same message in a JSON-RPC error.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use super::body::BodyError;
use crate::mux::MuxError;

/// Why a request was refused, kept in the response's extensions for the
/// refusals metric: an `ApiError`'s kind, or what a protocol refusal says.
#[derive(Debug, Clone, Copy)]
pub struct RefusalReason(pub &'static str);

/// The body of every error a management or public route answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The kind of error: `bad_request`, `not_found`, `unauthorized`,
    /// `forbidden`, `insufficient_scope`, `issuer_unavailable`, `method_not_allowed`, `payload_too_large`,
    /// `request_timeout`, `unavailable`, `internal`, `shutting_down`,
    /// `at_capacity`, `too_many_requests` or `connection_share`; for a failed tool call over
    /// plain HTTP, the audit's error class (`timeout`, `unreachable`, …).
    pub error: &'static str,
    /// The field of the request that is wrong, for `bad_request`; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// What is wrong, and for a field why.
    pub message: String,
}

/// What an internal error says: its cause is only in the gateway's log.
const INTERNAL_MESSAGE: &str = "internal error; see the gateway log";

impl ErrorBody {
    /// The body of an internal error, for an answer made without an
    /// [`ApiError`].
    pub fn internal() -> Self {
        ErrorBody {
            error: "internal",
            field: None,
            message: INTERNAL_MESSAGE.into(),
        }
    }
}

/// An error answered by a route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Unauthorized {
        /// The `WWW-Authenticate` value: which token is wanted.
        challenge: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    /// A signed-in caller's token lacks scopes the route needs (RFC 6750
    /// `insufficient_scope`): 403 with the challenge naming them.
    #[error("{message}")]
    InsufficientScope { challenge: String, message: String },
    /// A host's token could not be checked: its authorization server did
    /// not answer. 503: the token may well be good, and the host should
    /// come back rather than sign in again.
    #[error("{message}")]
    IssuerUnavailable { message: String },
    #[error("{reason}")]
    Forbidden { reason: &'static str },
    /// The registry's file is not valid; the registry served stays.
    #[error("{message}")]
    RegistryInvalid { message: String },
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {} s", timeout.as_secs_f64())]
    RequestTimeout { timeout: std::time::Duration },
    #[error("the database is unavailable")]
    Unavailable { source: MuxError },
    #[error("{}", INTERNAL_MESSAGE)]
    Internal { source: MuxError },
    #[error("mcp-mux is shutting down; try again shortly")]
    ShuttingDown,
    #[error("{message}")]
    AtCapacity { message: String },
    /// The session already holds its share of backend connections.
    #[error("{message}")]
    ConnectionShare { message: String },
    #[error("too many {what}; retry after {retry_after} s")]
    TooManyRequests {
        retry_after: u64,
        what: &'static str,
    },
    /// A call routed to a backend failed there or on the way: 502, 503 or
    /// 504, with the audit's error class as its kind.
    #[error("{message}")]
    CallFailed {
        status: StatusCode,
        class: &'static str,
        message: String,
    },
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The body a management or public route answers it with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.kind(),
            field: match self {
                ApiError::BadRequest { field, .. } => Some(field.clone()),
                _ => None,
            },
            message: self.to_string(),
        }
    }

    /// The short machine-readable name of the error, in JSON bodies and in
    /// the refusals metric.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::RegistryInvalid { .. } => "registry_invalid",
            ApiError::InsufficientScope { .. } => "insufficient_scope",
            ApiError::IssuerUnavailable { .. } => "issuer_unavailable",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal { .. } => "internal",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::AtCapacity { .. } => "at_capacity",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::ConnectionShare { .. } => "connection_share",
            ApiError::CallFailed { class, .. } => class,
        }
    }

    /// The `Retry-After` seconds of a 429 or 503.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            // mcp-mux stopping, full, or its store unreachable: all pass;
            // so does a session's hold on its share of connections.
            _ if matches!(
                self.status_code(),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            ) =>
            {
                Some(1)
            }
            _ => None,
        }
    }

    /// The `Allow` value of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` value of a 401, or of a 403 for scopes.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            ApiError::Unauthorized { challenge, .. } => Some(challenge),
            ApiError::InsufficientScope { challenge, .. } => Some(challenge),
            _ => None,
        }
    }

    /// Logs an error the client cannot fix, with its whole cause chain.
    pub fn log_if_internal(&self) {
        if let ApiError::Unavailable { source } | ApiError::Internal { source } = self {
            tracing::error!(error = %source, chain = %cause_chain(source), "request failed");
        }
    }
}

/// A client-supplied string for an error message: cut short and escaped, so
/// a message never carries control characters or a whole pasted secret.
pub fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Every cause of `error`, outermost first, joined for a log line.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

impl From<MuxError> for ApiError {
    fn from(error: MuxError) -> Self {
        match error {
            MuxError::Store(ref store) if store.is_unavailable() => {
                ApiError::Unavailable { source: error }
            }
            MuxError::Store(_) => ApiError::Internal { source: error },
            MuxError::SessionEnded => ApiError::NotFound {
                message: "the session was deleted".into(),
            },
            error @ (MuxError::AtCapacity { .. }
            | MuxError::NoConnection { .. }
            | MuxError::CapabilitySets { .. }) => ApiError::AtCapacity {
                message: error.to_string(),
            },
            error @ MuxError::SessionConnections { .. } => ApiError::ConnectionShare {
                message: error.to_string(),
            },
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            BodyError::Broken => ApiError::bad_request("body", "could not be read"),
            BodyError::TimedOut { timeout } => ApiError::RequestTimeout { timeout },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::InsufficientScope { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RegistryInvalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ShuttingDown
            | ApiError::AtCapacity { .. }
            | ApiError::IssuerUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } | ApiError::ConnectionShare { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::CallFailed { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log_if_internal();
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, *allow));
        }
        if let Some(challenge) = self.challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        let mut response = response.json(self.body());
        response.extensions_mut().insert(RefusalReason(self.kind()));
        response
    }
}
