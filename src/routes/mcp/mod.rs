//! The session's MCP endpoint, `/session/<id>/mcp`, over Streamable HTTP:
//! transport rules (Origin, session and version headers, status codes) here,
//! method handling in the mux. Legacy clients (`initialize`, then an
//! `Mcp-Session-Id`) are served here, stateless 2026-07-28 ones in `modern`.

mod modern;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};

use super::access::check_session_token;
use super::body::{read_limited, refuse_unread};
use super::error::{ApiError, cause_chain};
use super::rate_limit::charge_session_rate;
use super::sessions::{parse_session_id, short_id};
use crate::mcp::jsonrpc::{
    self, ErrorObject, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Message,
    PARSE_ERROR,
};
use crate::mcp::request::{ClientNotification, ClientRequest, Method};
use crate::mcp::{PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER, nesting, sse, version};
use crate::mux::{CallError, ClientCall, McpSession, Mux, Payload, Session};

/// Largest JSON-RPC message a client may POST.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A transport-level refusal: an HTTP status with a JSON-RPC error body, the
/// shape MCP clients parse.
struct Refusal {
    status: StatusCode,
    id: Value,
    // Boxed: a refusal travels in `Result`s, which should stay small.
    pub(super) error: Box<ErrorObject>,
    header: Option<RefusalHeader>,
}

/// The header some refusals carry.
enum RefusalHeader {
    /// `Allow`, of a 405.
    Allow(&'static str),
    /// `WWW-Authenticate`, of a 401.
    Challenge(&'static str),
    /// `Retry-After` seconds, of a 429 or 503.
    RetryAfter(u64),
}

impl Refusal {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Refusal {
            status,
            id: Value::Null,
            error: Box::new(ErrorObject::new(code, message)),
            header: None,
        }
    }

    fn with_id(mut self, id: Option<&Value>) -> Self {
        self.id = id.cloned().unwrap_or(Value::Null);
        self
    }

    fn into_response(self) -> HttpResponse {
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
        response
            .content_type("application/json")
            .body(jsonrpc::error_response(&self.id, &self.error))
    }
}

/// An `ApiError` as the MCP endpoint answers it: a JSON-RPC error body.
pub(super) fn refusal_response(error: ApiError) -> HttpResponse {
    Refusal::from(error).into_response()
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
        refusal.header = match error {
            ApiError::MethodNotAllowed { allow } => Some(RefusalHeader::Allow(allow)),
            _ => error
                .challenge()
                .map(RefusalHeader::Challenge)
                .or_else(|| error.retry_after().map(RefusalHeader::RetryAfter)),
        };
        refusal
    }
}

pub async fn post(
    request: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let body = match read_limited(&request, &mut payload, MAX_MESSAGE_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            let refusal = match ApiError::from(error) {
                ApiError::BadRequest { .. } => Refusal::new(
                    StatusCode::BAD_REQUEST,
                    PARSE_ERROR,
                    "request body could not be read",
                ),
                other => Refusal::from(other),
            };
            return refuse_unread(refusal.into_response(), payload);
        }
    };
    match handle_post(&request, &path, &body, &mux).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle_post(
    request: &HttpRequest,
    raw_id: &str,
    body: &[u8],
    mux: &Mux,
) -> Result<HttpResponse, Refusal> {
    let session_id = parse_session_id(raw_id)?;
    if nesting::exceeds_depth(body, nesting::MAX_DEPTH) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            format!(
                "the message nests arrays and objects deeper than {} levels",
                nesting::MAX_DEPTH
            ),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            PARSE_ERROR,
            format!("parse error: {error}"),
        )
    })?;
    if value.is_array() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "JSON-RPC batches are not supported: send one message per POST (protocol revision 2025-06-18 and later)",
        ));
    }
    let id = jsonrpc::id_of(&value).cloned();
    let message = jsonrpc::parse_message(value).map_err(|error| {
        Refusal::new(StatusCode::BAD_REQUEST, error.code(), error.to_string()).with_id(id.as_ref())
    })?;

    if modern::is_modern(request, &message) {
        let session = find_session(request, raw_id, mux).await?;
        return modern::handle(request, mux, session, message).await;
    }
    if let Message::Request(initialize) = &message
        && initialize.method == Method::Initialize.as_str()
    {
        // initialize negotiates the version in its body, whatever the header
        // says. The token is checked before the rate is spent: requests
        // without it must not use up the holder's rate.
        let session = mux
            .current_session(session_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| no_session(raw_id))?;
        check_session_token(request, session.token_digest.as_ref())
            .map_err(|error| Refusal::from(error).with_id(id.as_ref()))?;
        charge_session_rate(request, &session, 1)?;
        return initialize_response(mux, &session, initialize)
            .await
            .map_err(|r| r.with_id(id.as_ref()));
    }
    let session = find_session(request, raw_id, mux).await?;
    check_protocol_version(request).map_err(|refusal| refusal.with_id(id.as_ref()))?;
    let mcp_session = find_mcp_session(request, mux, &session)
        .await
        .map_err(|refusal| refusal.with_id(id.as_ref()))?;
    match message {
        Message::Request(call) => {
            let asked = match ClientRequest::parse(&call.method, call.params) {
                Ok(asked) => asked,
                Err(error) => return Ok(answer_response(&call.id, Err(error.into()))),
            };
            if asked.method().is_routed_to_one_backend() && accepts_event_stream(request) {
                return Ok(streamed_answer(mcp_session, call.id, asked).await);
            }
            let client = ClientCall {
                id: &call.id,
                stream: None,
            };
            let outcome = mcp_session.handle_request(asked, &client).await;
            Ok(answer_response(&call.id, outcome))
        }
        Message::Notification(notification) => {
            mcp_session
                .handle_notification(ClientNotification::parse(
                    &notification.method,
                    notification.params.as_ref(),
                ))
                .await;
            Ok(HttpResponse::Accepted().finish())
        }
        Message::Response(response) => {
            mcp_session.handle_response(response).await;
            Ok(HttpResponse::Accepted().finish())
        }
    }
}

fn accepts_event_stream(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/event-stream"))
}

/// Answers a request that may stream. The request runs on its own task, so
/// a client that goes away does not cut a call short on the backend. What
/// comes first decides the answer: the outcome alone is plain JSON (or a
/// refusal with its status); a notification or request the backend sends
/// before it opens an SSE stream that passes each on as it arrives, and
/// that the response closes.
async fn streamed_answer(
    mcp_session: Arc<McpSession>,
    id: Value,
    asked: ClientRequest,
) -> HttpResponse {
    let (sender, mut relayed) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (answer, mut outcome) = tokio::sync::oneshot::channel();
    let call_id = id.clone();
    tokio::spawn(async move {
        let client = ClientCall {
            id: &call_id,
            stream: Some(sender),
        };
        let _ = answer.send(mcp_session.handle_request(asked, &client).await);
    });
    // Relayed messages are sent before the outcome, and `biased` reads
    // them first: none is lost or overtaken.
    let first = tokio::select! {
        biased;
        Some(message) = relayed.recv() => message,
        finished = &mut outcome => {
            return answer_response(&id, finished.unwrap_or(Err(CallError::Interrupted)));
        }
    };
    let events = futures_util::stream::unfold(
        (Some(first), relayed, Some(outcome), id),
        |(next, mut relayed, outcome, id)| async move {
            let (message, outcome) = match (next, outcome) {
                (Some(message), outcome) => (message, outcome),
                (None, None) => return None,
                (None, Some(mut outcome)) => tokio::select! {
                    biased;
                    Some(message) = relayed.recv() => (message, Some(outcome)),
                    finished = &mut outcome => {
                        let finished = finished.unwrap_or(Err(CallError::Interrupted));
                        (answer_bytes(&id, finished), None)
                    }
                },
            };
            let event =
                Ok::<_, std::convert::Infallible>(web::Bytes::from(sse::frame_message(&message)));
            Some((event, (None, relayed, outcome, id)))
        },
    );
    // An answer in flight is let finish when shutdown begins (actix's
    // graceful stop bounds it): only open-ended streams end then.
    sse_response(events)
}

/// The answer to a request, in JSON.
fn answer_response(id: &Value, outcome: Result<Payload, CallError>) -> HttpResponse {
    answer_builder(&outcome)
        .content_type("application/json")
        .body(answer_bytes(id, outcome))
}

/// The status a JSON answer goes out with: `200` with its result or
/// JSON-RPC error, or `503` with `Retry-After` when mcp-mux had no backend
/// connection to spare: the client should come back shortly, and the
/// backend is not to blame.
fn answer_builder(outcome: &Result<Payload, CallError>) -> actix_web::HttpResponseBuilder {
    if outcome
        .as_ref()
        .err()
        .is_some_and(CallError::is_gateway_exhausted)
    {
        let mut response = HttpResponse::ServiceUnavailable();
        response.insert_header((header::RETRY_AFTER, "1"));
        response
    } else {
        HttpResponse::Ok()
    }
}

/// An SSE response carrying each message `receiver` yields, until every
/// sender is gone or, given `stopping`, until shutdown begins.
fn event_stream(
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
fn sse_response<S>(events: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<web::Bytes, std::convert::Infallible>> + 'static,
{
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events)
}

async fn initialize_response(
    mux: &Mux,
    session: &Session,
    request: &jsonrpc::Request,
) -> Result<HttpResponse, Refusal> {
    let (mcp_session, result) = mux
        .open_mcp_session(session, request.params.as_ref())
        .await
        .map_err(ApiError::from)?;
    tracing::info!(
        session = %short_id(session.id),
        protocol_version = mcp_session.protocol_version,
        "MCP session opened"
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((SESSION_ID_HEADER, mcp_session.id.as_str()))
        .body(jsonrpc::result_response(&request.id, &result)))
}

fn answer_bytes(id: &Value, outcome: Result<Payload, CallError>) -> Vec<u8> {
    match outcome {
        Ok(payload) => jsonrpc::result_response(id, &payload),
        Err(error) => jsonrpc::error_response(id, &to_jsonrpc_error(error)),
    }
}

/// The one place a failed MCP request becomes a JSON-RPC error.
fn to_jsonrpc_error(error: CallError) -> ErrorObject {
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
        CallError::Backend(backend) => {
            tracing::warn!(server = backend.server(), error = %cause_chain(&backend), "backend call failed");
            ErrorObject::new(INTERNAL_ERROR, message)
                .with_data(json!({ "server": backend.server() }))
        }
        CallError::Interrupted => ErrorObject::new(INTERNAL_ERROR, message),
        CallError::Relayed { error } => error,
    }
}

/// GET opens the client's own SSE stream for an MCP session: list changes,
/// resource updates, log messages and requests that backends send outside
/// any request. Without an `Mcp-Session-Id` there is nothing to listen to:
/// 405, which clients probing the URL expect. Events are not kept for
/// replay, so `Last-Event-ID` resumes nothing: a client that reconnects
/// lists again, which list_changed notifications ask for anyway.
pub async fn get(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let opened = async {
        let session = find_session(&request, &path, &mux).await?;
        if request.headers().get(SESSION_ID_HEADER).is_none() {
            return Ok(None);
        }
        let mcp_session = find_mcp_session(&request, &mux, &session).await?;
        Ok::<_, Refusal>(Some(mcp_session.open_client_stream()))
    };
    match opened.await {
        Ok(Some(receiver)) => event_stream(receiver, Some(mux.stopping())),
        Ok(None) => Refusal::from(ApiError::MethodNotAllowed {
            allow: "POST, DELETE",
        })
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn delete(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let ended = async {
        let session = find_session(&request, &path, &mux).await?;
        // Ended here and in the store, without reopening it first.
        let id = mcp_session_id(&request)?;
        if !mux
            .end_mcp_session(&session, id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(unknown_mcp_session());
        }
        Ok::<_, Refusal>(())
    };
    match ended.await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Any other method on the MCP endpoint.
pub async fn method_not_allowed() -> HttpResponse {
    Refusal::from(ApiError::MethodNotAllowed {
        allow: "POST, GET, DELETE",
    })
    .into_response()
}

/// The session a path names, if the request may use it: with its token,
/// when it requires one, and within its rate.
async fn find_session(
    request: &HttpRequest,
    raw_id: &str,
    mux: &Mux,
) -> Result<Arc<Session>, Refusal> {
    let id = parse_session_id(raw_id)?;
    let session = mux
        .session(id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| no_session(raw_id))?;
    // The token first: requests without it must not use up the holder's rate.
    check_session_token(request, session.token_digest.as_ref())?;
    charge_session_rate(request, &session, 1)?;
    Ok(session)
}

fn no_session(raw_id: &str) -> Refusal {
    Refusal::from(super::sessions::no_session(raw_id))
}

/// The MCP session a request's `Mcp-Session-Id` names, reopened from the
/// store if this gateway does not have it open (after a restart, say).
async fn find_mcp_session(
    request: &HttpRequest,
    mux: &Mux,
    session: &Session,
) -> Result<Arc<McpSession>, Refusal> {
    let id = mcp_session_id(request)?;
    mux.mcp_session(session, id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(unknown_mcp_session)
}

fn mcp_session_id(request: &HttpRequest) -> Result<&str, Refusal> {
    let Some(raw) = request.headers().get(SESSION_ID_HEADER) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "missing Mcp-Session-Id header: send initialize first",
        ));
    };
    // Ids mcp-mux issues are 32 hex digits; anything else names none.
    raw.to_str()
        .ok()
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(unknown_mcp_session)
}

fn unknown_mcp_session() -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        INVALID_REQUEST,
        "unknown or ended MCP session: initialize again",
    )
}

fn check_protocol_version(request: &HttpRequest) -> Result<(), Refusal> {
    match request
        .headers()
        .get(PROTOCOL_VERSION_HEADER)
        .map(HeaderValue::to_str)
    {
        None => Ok(()),
        Some(Ok(version)) if version::is_supported(version) => Ok(()),
        Some(_) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            format!(
                "unsupported MCP-Protocol-Version; supported: {}",
                version::SUPPORTED.join(", ")
            ),
        )),
    }
}
