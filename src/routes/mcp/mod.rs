//! The session's MCP endpoint, `/session/<id>/mcp`, over Streamable HTTP:
//! transport rules (Origin, session and version headers, status codes) here,
//! method handling in the mux. Legacy clients (`initialize`, then an
//! `Mcp-Session-Id`) are served here, stateless 2026-07-28 ones in `stateless`.

mod answer;
pub(super) mod document;
mod forward;
mod headers;
mod stateless;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use answer::{
    Refusal, accepts_event_stream, answer_bytes, answer_response, event_stream, sse_response,
};

use headers::{PROTOCOL_VERSION, SESSION_ID};

use super::body::{read_limited, refuse_unread};
use super::error::ApiError;
use super::rate_limit::charge_session_rate;
use super::session_access::{check_session_access, usable_session};
use super::session_id::{SessionPath, short_id};
use super::sign_in::signed_in_identity;
use super::traced::{serve_traced, trace_header};
use crate::mcp::jsonrpc::{self, INVALID_REQUEST, Message, PARSE_ERROR};
use crate::mcp::request::{ClientNotification, ClientRequest, Method};
use crate::mcp::{nesting, sse, version};
use crate::mux::{CallError, ClientCall, Held, McpSession, Mux, Session};
use crate::traces::{self, RequestFacts, RequestTrace};

/// Largest JSON-RPC message a client may POST.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// An `ApiError` as the MCP endpoint answers it: a JSON-RPC error body.
pub(super) fn refusal_response(error: ApiError) -> HttpResponse {
    Refusal::from(error).into_response()
}

/// Sends the session one JSON-RPC message. `initialize` opens an MCP
/// session (its id comes back in `Mcp-Session-Id`, which every later
/// message carries); at revision 2026-07-28 a request stands alone, its
/// revision in `MCP-Protocol-Version`.
#[utoipa::path(post, path = "/session/{id}/mcp", tag = "mcp", operation_id = "send_mcp_message",
    params(
        ("id" = String, Path, description = "The session's id"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The MCP session, from the answer to `initialize`"),
        ("MCP-Protocol-Version" = Option<String>, Header, description = "The negotiated revision, e.g. `2025-11-25`"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context, passed on to backends (see \"Traces\" in the README)"),
    ),
    request_body(content = document::ClientMessage, content_type = "application/json",
        example = json!({"jsonrpc": "2.0", "id": 1, "method": Method::Initialize.as_str(), "params": {
            "protocolVersion": version::LATEST, "capabilities": {}, "clientInfo": {"name": "swagger-ui", "version": "1.0.0"}}})),
    responses(
        (status = 200, description = "The answer: JSON, or an SSE stream when the request's `Accept` has `text/event-stream` and the backend sends messages before its answer",
            content(
                (document::Answer = "application/json"),
                (String = "text/event-stream"),
            ),
            headers(("Mcp-Session-Id" = String, description = "With the answer to `initialize`: the new MCP session"))),
        (status = 202, description = "A notification or a response, taken"),
        (status = 400, description = "Not JSON, not one JSON-RPC message, no `Mcp-Session-Id`, or an unsupported revision", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: EOF while parsing an object at line 1 column 1"}})),
        (status = 404, description = "No such session, or an unknown or ended MCP session", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "unknown or ended MCP session: initialize again"}})),
        (status = 408, description = "The body did not arrive in time", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "the request body did not arrive within 10 s"}})),
        (status = 413, description = "The message exceeds 4 MiB", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "request body exceeds 4194304 bytes"}})),
        (status = 429, description = "Over the session's `rate_limit`", body = document::Answer,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "too many requests on this session; retry after 1 s"}})),
        (status = 503, description = "No backend could take the request, or the gateway is full", body = document::Answer,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603,
                "message": "mcp-mux has all its 1024 backend connections in use (--max-backend-connections); try again shortly"}})),
    ))]
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
            return refuse_unread(refusal.into_response(), payload.into_inner());
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
    let path = SessionPath::parse(raw_id)?;
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
    let signed_in = signed_in_identity(request);
    let trace = match &message {
        Message::Request(call) => RequestTrace::start(
            mux.traces(),
            |name| trace_header(request, name),
            RequestFacts {
                method: &call.method,
                params: call.params.as_ref(),
                session: || short_id(path.id),
                subject: signed_in
                    .as_deref()
                    .map(|identity| identity.subject.as_str()),
            },
        ),
        Message::Notification(_) | Message::Response(_) => None,
    };
    serve_traced(
        request,
        trace,
        dispatch(request, path, body, message, id.as_ref(), mux),
        |answered| match answered {
            Ok(response) => response.status().as_u16(),
            Err(refusal) => refusal.status().as_u16(),
        },
    )
    .await
}

/// Serves one parsed message: statelessly, as `initialize`, or within the
/// MCP session its header names.
async fn dispatch(
    request: &HttpRequest,
    path: SessionPath<'_>,
    body: &[u8],
    message: Message,
    id: Option<&Value>,
    mux: &Mux,
) -> Result<HttpResponse, Refusal> {
    if stateless::is_stateless(request, &message) {
        // Boxed: a call's future is copied from layer to layer, and each
        // kind of message's path would otherwise add to every other's.
        return Box::pin(dispatch_stateless(request, path, body, message, mux)).await;
    }
    if let Message::Request(initialize) = &message
        && initialize.method == Method::Initialize.as_str()
    {
        // Boxed: opening backend sessions is a large future, which every
        // call's would otherwise carry (and copy from layer to layer).
        return Box::pin(open_mcp_session(request, path, initialize, id, mux)).await;
    }
    let session = find_session(request, path, mux).await?;
    check_protocol_version(request).map_err(|refusal| refusal.with_id(id))?;
    let mcp_session = match find_mcp_session(request, mux, &session, Some(body))
        .await
        .map_err(|refusal| refusal.with_id(id))?
    {
        Found::Here(mcp_session) => mcp_session,
        Found::Answered(answer) => return Ok(answer),
    };
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
            // Boxed, for the size of every call's future, as above.
            Box::pin(mcp_session.handle_notification(ClientNotification::parse(
                &notification.method,
                notification.params.as_ref(),
            )))
            .await;
            Ok(HttpResponse::Accepted().finish())
        }
        Message::Response(response) => {
            mcp_session.handle_response(response).await;
            Ok(HttpResponse::Accepted().finish())
        }
    }
}

/// Answers `initialize`: opens an MCP session.
async fn open_mcp_session(
    request: &HttpRequest,
    path: SessionPath<'_>,
    initialize: &jsonrpc::Request,
    id: Option<&Value>,
    mux: &Mux,
) -> Result<HttpResponse, Refusal> {
    // initialize negotiates the version in its body, whatever the header
    // says. The token is checked before the rate is spent: requests
    // without it must not use up the holder's rate.
    let session = mux
        .current_session(path.id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| path.not_found())?;
    check_session_access(request, &session, || path.not_found())
        .await
        .map_err(|error| Refusal::from(error).with_id(id))?;
    charge_session_rate(request, &session, 1)?;
    initialize_response(mux, &session, initialize)
        .await
        .map_err(|r| r.with_id(id))
}

/// Serves a 2026-07-28 message, which names no MCP session: here, or on
/// the node that holds the session's stateless MCP session.
async fn dispatch_stateless(
    request: &HttpRequest,
    path: SessionPath<'_>,
    body: &[u8],
    message: Message,
    mux: &Mux,
) -> Result<HttpResponse, Refusal> {
    let session = find_session(request, path, mux).await?;
    // A retry for a call another node keeps goes there.
    if !mux.cluster().is_forwarded(request)
        && let Some(node) = stateless::parked_elsewhere(mux, &message)
        && let Some((url, secret)) = mux
            .cluster()
            .other_live_node(node)
            .await
            .map_err(|error| ApiError::from(crate::mux::MuxError::Store(error)))?
        && let Some(answer) = pass_to(request, Some(body), mux, &url, &secret).await
    {
        return Ok(answer);
    }
    // Stateless clients of a session share one MCP session, on one node.
    if !mux.cluster().is_forwarded(request)
        && let Some((url, secret)) = mux
            .stateless_held_elsewhere(&session)
            .await
            .map_err(ApiError::from)?
        && let Some(answer) = pass_to(request, Some(body), mux, &url, &secret).await
    {
        return Ok(answer);
    }
    stateless::handle(request, mux, session, message).await
}

/// Answers a request that may stream. The request runs on its own task, so
/// a client that goes away does not cut a call short on the backend; it is
/// also the cheaper way. Polled within the handler instead, each of the
/// call's wake-ups (the backend's connection, its answer's head, its body)
/// would poll down through every layer of actix's service stack: measured,
/// 4,000 instructions and 8 % of the CPU a call more than this task and
/// its two channels. What
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
    // The task carries the request's trace context, which it does not inherit.
    tokio::spawn(traces::carried(async move {
        let client = ClientCall {
            id: &call_id,
            stream: Some(sender),
        };
        let _ = answer.send(mcp_session.handle_request(asked, &client).await);
    }));
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
        .insert_header((SESSION_ID, mcp_session.id.as_str()))
        .body(jsonrpc::result_response(&request.id, &result)))
}

/// GET opens the client's own SSE stream for an MCP session: list changes,
/// resource updates, log messages and requests that backends send outside
/// any request. Without an `Mcp-Session-Id` there is nothing to listen to:
/// 405, which clients probing the URL expect. Events are not kept for
/// replay, so `Last-Event-ID` resumes nothing: a client that reconnects
/// lists again, which list_changed notifications ask for anyway.
#[utoipa::path(get, path = "/session/{id}/mcp", tag = "mcp", operation_id = "listen_to_mcp_session",
    params(
        ("id" = String, Path, description = "The session's id"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The MCP session to listen to"),
    ),
    responses(
        (status = 200, description = "The stream", content((String = "text/event-stream"))),
        (status = 404, description = "No such session, or an unknown or ended MCP session", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "unknown or ended MCP session: initialize again"}})),
        (status = 405, description = "No `Mcp-Session-Id`: nothing to listen to", body = document::Answer,
            headers(("Allow" = String, description = "POST, DELETE")),
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "method not allowed; use POST, DELETE"}})),
        (status = 429, description = "Over the session's `rate_limit`", body = document::Answer,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "too many requests on this session; retry after 1 s"}})),
    ))]
pub async fn get(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let opened = async {
        let session = find_session(&request, SessionPath::parse(&path)?, &mux).await?;
        if request.headers().get(&SESSION_ID).is_none() {
            return Ok(None);
        }
        match find_mcp_session(&request, &mux, &session, None).await? {
            Found::Here(mcp_session) => {
                Ok::<_, Refusal>(Some(Ok(mcp_session.open_client_stream())))
            }
            Found::Answered(answer) => Ok(Some(Err(answer))),
        }
    };
    match opened.await {
        Ok(Some(Ok(receiver))) => event_stream(receiver, Some(mux.stopping())),
        Ok(Some(Err(answered))) => answered,
        Ok(None) => Refusal::from(ApiError::MethodNotAllowed {
            allow: "POST, DELETE",
        })
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Ends an MCP session.
#[utoipa::path(delete, path = "/session/{id}/mcp", tag = "mcp", operation_id = "end_mcp_session",
    params(
        ("id" = String, Path, description = "The session's id"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The MCP session to end"),
    ),
    responses(
        (status = 200, description = "Ended"),
        (status = 400, description = "No `Mcp-Session-Id`", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "missing Mcp-Session-Id header: send initialize first"}})),
        (status = 404, description = "No such session, or an unknown or ended MCP session", body = document::Answer,
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "unknown or ended MCP session: initialize again"}})),
        (status = 429, description = "Over the session's `rate_limit`", body = document::Answer,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "too many requests on this session; retry after 1 s"}})),
    ))]
pub async fn delete(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let ended = async {
        let session = find_session(&request, SessionPath::parse(&path)?, &mux).await?;
        let id = mcp_session_id(&request)?;
        // Held by another node: ended there, where it lives.
        if !mux.cluster().is_forwarded(&request)
            && let Some((url, secret)) = mux
                .mcp_session_elsewhere(&session, id)
                .await
                .map_err(ApiError::from)?
            && let Some(answer) = pass_to(&request, None, &mux, &url, &secret).await
        {
            return Ok(Some(answer));
        }
        // Ended here and in the store, without reopening it first.
        if !mux
            .end_mcp_session(&session, id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(unknown_mcp_session());
        }
        Ok::<_, Refusal>(None)
    };
    match ended.await {
        Ok(None) => HttpResponse::Ok().finish(),
        Ok(Some(answered)) => answered,
        Err(refusal) => refusal.into_response(),
    }
}

/// Any other method on the MCP endpoint.
pub async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    Refusal::from(ApiError::MethodNotAllowed { allow }).into_response()
}

/// The session a path names, if the request may use it: with its token,
/// when it requires one, and within its rate.
async fn find_session(
    request: &HttpRequest,
    path: SessionPath<'_>,
    mux: &Mux,
) -> Result<Arc<Session>, Refusal> {
    Ok(usable_session(request, path, mux).await?)
}

/// The MCP session a request's `Mcp-Session-Id` names, reopened from the
/// store if this gateway does not have it open (after a restart, say).
async fn find_mcp_session(
    request: &HttpRequest,
    mux: &Mux,
    session: &Session,
    body: Option<&[u8]>,
) -> Result<Found, Refusal> {
    let id = mcp_session_id(request)?;
    // A request another node passed here is served here.
    let may_pass = !mux.cluster().is_forwarded(request);
    match mux
        .mcp_session(session, id, may_pass)
        .await
        .map_err(ApiError::from)?
    {
        Held::Here(mcp_session) => Ok(Found::Here(mcp_session)),
        Held::Unknown => Err(unknown_mcp_session()),
        Held::Elsewhere { url, secret } => {
            match pass_to(request, body, mux, &url, &secret).await {
                Some(answer) => Ok(Found::Answered(answer)),
                // The node that held it is gone: it is reopened here.
                None => {
                    match mux
                        .mcp_session(session, id, false)
                        .await
                        .map_err(ApiError::from)?
                    {
                        Held::Here(mcp_session) => Ok(Found::Here(mcp_session)),
                        Held::Unknown | Held::Elsewhere { .. } => Err(unknown_mcp_session()),
                    }
                }
            }
        }
    }
}

/// The answer of the node at `url` (which takes `secret`) to the request;
/// None when it could not be reached, and the request is served here.
async fn pass_to(
    request: &HttpRequest,
    body: Option<&[u8]>,
    mux: &Mux,
    url: &str,
    secret: &str,
) -> Option<HttpResponse> {
    match forward::forward(request, body, url, secret, mux.cluster().http()).await {
        Ok(answer) => Some(answer),
        Err(forward::Unanswered(error)) => {
            tracing::warn!(%error, "the node holding this request's state did not answer; serving it here");
            None
        }
    }
}

/// The MCP session a request is for: served here, or answered already by
/// the node that holds it.
enum Found {
    Here(Arc<McpSession>),
    Answered(HttpResponse),
}

fn mcp_session_id(request: &HttpRequest) -> Result<&str, Refusal> {
    let Some(raw) = request.headers().get(&SESSION_ID) else {
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
        .get(&PROTOCOL_VERSION)
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
