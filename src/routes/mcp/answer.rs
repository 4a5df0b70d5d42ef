//! What the MCP endpoint answers: a request's outcome as JSON or as an SSE
//! stream, and a refusal as an HTTP status with a JSON-RPC error body. The
//! one place a failed request becomes a JSON-RPC error.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};

use crate::backend::BackendError;
use crate::mcp::jsonrpc::{
    self, ErrorObject, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    PARSE_ERROR, URL_ELICITATION_REQUIRED,
};
use crate::mcp::sse;
use crate::mcp::stateless::MISSING_REQUIRED_CLIENT_CAPABILITY;
use crate::mux::{CallError, Payload};
use crate::routes::error::{ApiError, RefusalReason, cause_chain};

/// A transport-level refusal: an HTTP status with a JSON-RPC error body, the
/// shape MCP clients parse.
pub(super) struct Refusal {
    status: StatusCode,
    id: Value,
    // Boxed: a refusal travels in `Result`s, which should stay small.
    pub(super) error: Box<ErrorObject>,
    header: Option<RefusalHeader>,
    /// For the refusals metric.
    reason: &'static str,
}

/// The header some refusals carry.
pub(super) enum RefusalHeader {
    /// `Allow`, of a 405.
    Allow(&'static str),
    /// `WWW-Authenticate`, of a 401 or an `insufficient_scope` 403.
    Challenge(String),
    /// `Retry-After` seconds, of a 429 or 503.
    RetryAfter(u64),
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Refusal {
            status,
            id: Value::Null,
            error: Box::new(ErrorObject::new(code, message)),
            header: None,
            reason: match code {
                PARSE_ERROR => "parse_error",
                METHOD_NOT_FOUND => "method_not_found",
                MISSING_REQUIRED_CLIENT_CAPABILITY => "missing_capability",
                _ if status == StatusCode::NOT_FOUND => "unknown_mcp_session",
                _ => "invalid_request",
            },
        }
    }

    pub(super) fn with_id(mut self, id: Option<&Value>) -> Self {
        self.id = id.cloned().unwrap_or(Value::Null);
        self
    }

    /// The HTTP status it is answered with.
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    pub(super) fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        match self.header {
            Some(RefusalHeader::Allow(allow)) => response.insert_header((header::ALLOW, allow)),
            Some(RefusalHeader::Challenge(challenge)) => {
                response.insert_header((header::WWW_AUTHENTICATE, challenge))
            }
            Some(RefusalHeader::RetryAfter(seconds)) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()))
            }
            None => &mut response,
        };
        let mut response = response
            .content_type("application/json")
            .body(jsonrpc::error_response(&self.id, &self.error));
        response.extensions_mut().insert(RefusalReason(self.reason));
        response
    }
}

impl From<ApiError> for Refusal {
    /// The status `ApiError` gives, with the same message in a JSON-RPC error.
    fn from(error: ApiError) -> Self {
        error.log_if_internal();
        let status = error.status_code();
        let code = if status.is_server_error() {
            INTERNAL_ERROR
        } else {
            INVALID_REQUEST
        };
        let mut refusal = Refusal::new(status, code, error.to_string());
        refusal.reason = error.kind();
        refusal.header = error
            .allow()
            .map(RefusalHeader::Allow)
            .or_else(|| {
                error
                    .challenge()
                    .map(|c| RefusalHeader::Challenge(c.to_owned()))
            })
            .or_else(|| error.retry_after().map(RefusalHeader::RetryAfter));
        refusal
    }
}

/// Whether an `Accept` of the request names `text/event-stream`, in any
/// case; compared in place, as every call asks.
pub(super) fn accepts_event_stream(request: &HttpRequest) -> bool {
    const EVENT_STREAM: &[u8] = b"text/event-stream";
    request.headers().get_all(header::ACCEPT).any(|value| {
        value
            .as_bytes()
            .windows(EVENT_STREAM.len())
            .any(|window| window.eq_ignore_ascii_case(EVENT_STREAM))
    })
}

/// The answer to a request, in JSON.
pub(super) fn answer_response(id: &Value, outcome: Result<Payload, CallError>) -> HttpResponse {
    answer_builder(&outcome)
        .content_type("application/json")
        .body(answer_bytes(id, outcome))
}

/// The status a JSON answer goes out with: `200` with its result or
/// JSON-RPC error, `503` with `Retry-After` when mcp-mux had no backend
/// connection to spare, or `429` with `Retry-After` when the session held
/// its share of them: the client should come back shortly, and the
/// backend is not to blame.
pub(super) fn answer_builder(
    outcome: &Result<Payload, CallError>,
) -> actix_web::HttpResponseBuilder {
    let mut response = match outcome.as_ref().err() {
        Some(error) if error.is_gateway_exhausted() => HttpResponse::ServiceUnavailable(),
        Some(error) if error.is_over_connection_share() => HttpResponse::TooManyRequests(),
        _ => return HttpResponse::Ok(),
    };
    response.insert_header((header::RETRY_AFTER, "1"));
    response
}

/// An SSE response carrying each message `receiver` yields, until every
/// sender is gone or, given `stopping`, until shutdown begins.
pub(super) fn event_stream(
    receiver: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    stopping: Option<tokio::sync::watch::Receiver<bool>>,
) -> HttpResponse {
    let events = futures_util::stream::unfold(
        (receiver, stopping),
        |(mut receiver, mut stopping)| async move {
            let shutdown = async {
                match stopping.as_mut() {
                    Some(stopping) => drop(stopping.wait_for(|stopping| *stopping).await),
                    None => std::future::pending().await,
                }
            };
            let message = tokio::select! {
                message = receiver.recv() => message?,
                _ = shutdown => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(web::Bytes::from(sse::frame_message(&message))),
                (receiver, stopping),
            ))
        },
    );
    sse_response(events)
}

/// A `text/event-stream` response that proxies do not buffer.
pub(super) fn sse_response<S>(events: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<web::Bytes, std::convert::Infallible>> + 'static,
{
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events)
}

pub(super) fn answer_bytes(id: &Value, outcome: Result<Payload, CallError>) -> Vec<u8> {
    match outcome {
        Ok(payload) => jsonrpc::result_response(id, &payload),
        Err(error) => jsonrpc::error_response(id, &to_jsonrpc_error(error)),
    }
}

/// The one place a failed MCP request becomes a JSON-RPC error.
pub(super) fn to_jsonrpc_error(error: CallError) -> ErrorObject {
    let message = error.to_string();
    match error {
        CallError::MethodNotFound { .. } => ErrorObject::new(METHOD_NOT_FOUND, message),
        CallError::InvalidParams { .. } => ErrorObject::new(INVALID_PARAMS, message),
        CallError::Unknown { kind, name } => {
            ErrorObject::new(INVALID_PARAMS, message).with_data(json!({ kind.noun(): name }))
        }
        CallError::UnknownResource { uri } => {
            ErrorObject::new(INVALID_PARAMS, message).with_data(json!({ "uri": uri }))
        }
        CallError::BackendUnavailable(unavailable) => ErrorObject::new(INTERNAL_ERROR, message)
            .with_data(json!({ "server": unavailable.server() })),
        // The request never left mcp-mux: what the client sent is at fault.
        CallError::Backend(backend @ BackendError::Unsent { .. }) => {
            ErrorObject::new(INVALID_PARAMS, message)
                .with_data(json!({ "server": backend.server() }))
        }
        CallError::Backend(backend) => {
            tracing::warn!(server = backend.server(), error = %cause_chain(&backend), "backend call failed");
            ErrorObject::new(INTERNAL_ERROR, message)
                .with_data(json!({ "server": backend.server() }))
        }
        CallError::Interrupted => ErrorObject::new(INTERNAL_ERROR, message),
        CallError::UrlElicitationRequired { server, url, .. } => {
            ErrorObject::new(URL_ELICITATION_REQUIRED, message.clone()).with_data(json!({
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": uuid::Uuid::new_v4().to_string(),
                    "url": url,
                    "message": message,
                }],
                "server": server,
            }))
        }
        CallError::Relayed { error } => error,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::accepts_event_stream;

    #[test]
    fn an_accept_naming_event_streams_in_any_case_or_place_asks_for_them() {
        let accepts = |values: &[&str]| {
            let request = values
                .iter()
                .fold(TestRequest::default(), |request, value| {
                    request.append_header(("accept", *value))
                })
                .to_http_request();
            accepts_event_stream(&request)
        };
        assert!(accepts(&["application/json, text/event-stream"]));
        assert!(accepts(&["Text/Event-Stream"]));
        assert!(accepts(&["application/json", "text/event-stream;q=0.5"]));
        assert!(!accepts(&["application/json"]));
        assert!(!accepts(&["text/event"]));
        assert!(!accepts(&[]));
    }
}
