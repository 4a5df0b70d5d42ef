//! A session's tools over plain HTTP, for scripts that do not speak MCP:
//! `GET /session/<id>/tools` lists them (after the session's rules) and
//! `POST /session/<id>/tools/<name>` calls one with a JSON object of
//! arguments. Both take the session's token where it requires one, and a
//! call goes the way an MCP `tools/call` goes: the same rules, retries,
//! audit and metrics, on the MCP session the session's stateless clients
//! share.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::body::{read_limited, refuse_unread};
use super::error::{ApiError, ErrorBody};
use super::mcp::MAX_MESSAGE_BYTES;
use super::session_access::usable_session;
use super::session_id::SessionPath;
use super::sign_in::signed_in_identity;
use super::traced::{serve_traced, trace_header};
use crate::backend::BackendError;
use crate::mcp::jsonrpc::INVALID_PARAMS;
use crate::mcp::nesting;
use crate::mcp::request::{ClientRequest, Method};
use crate::mux::{CallError, ClientCall, McpSession, Mux, Payload, Session, Unavailable};
use crate::traces::{RequestFacts, RequestTrace};

/// The session's tools, as `tools/list` shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    /// MCP tool definitions, each under the name that calls it.
    #[schema(value_type = Vec<Object>)]
    tools: Arc<Vec<Value>>,
}

/// A tool's arguments by name, as its `inputSchema` describes them.
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)] // Documents the body, which `arguments` reads.
pub struct ToolArguments(Map<String, Value>);

/// Lists the session's tools, after its rules, with their input schemas.
#[utoipa::path(get, path = "/session/{id}/tools", tag = "tools", operation_id = "list_session_tools",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The tools", body = ToolList),
        (status = 404, description = "No such session", body = ErrorBody,
            example = json!({"error": "not_found", "message": "no session \"0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61\""})),
        (status = 429, description = "Over the session's `rate_limit`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"error": "too_many_requests", "message": "too many requests on this session; retry after 1 s"})),
    ))]
pub async fn list(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let mcp_session = open(&request, &path, &mux).await?;
    Ok(HttpResponse::Ok().json(ToolList {
        tools: mcp_session.tools().await,
    }))
}

/// Calls one tool of the session with a JSON object of its arguments, and
/// answers the tool's result (`content`, `structuredContent`, `isError`).
#[utoipa::path(post, path = "/session/{id}/tools/{name}", tag = "tools", operation_id = "call_session_tool",
    params(
        ("id" = String, Path, description = "The session's id"),
        ("name" = String, Path, description = "The tool's name, as the list shows it", example = "everything__echo"),
    ),
    // By reference: the body is optional (an empty one is no arguments),
    // and `Option<ToolArguments>` would document `null` too, which is refused.
    request_body(content = ref("#/components/schemas/ToolArguments"), content_type = "application/json",
        description = "The tool's arguments; an empty body is none",
        example = json!({"message": "hi"})),
    responses(
        (status = 200, description = "The tool's result; a tool that failed says `isError`", body = Object,
            example = json!({"content": [{"type": "text", "text": "Echo: hi"}]})),
        (status = 400, description = "The arguments are not a JSON object, or the tool refused them", body = ErrorBody,
            example = json!({"error": "bad_request", "field": "body", "message": "body: must be a JSON object of the tool's arguments"})),
        (status = 404, description = "No such session, or no such tool", body = ErrorBody,
            example = json!({"error": "not_found", "message": "unknown tool \"everything__nope\""})),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody,
            example = json!({"error": "request_timeout", "message": "the request body did not arrive within 10 s"})),
        (status = 413, description = "The body exceeds 4 MiB", body = ErrorBody,
            example = json!({"error": "payload_too_large", "message": "request body exceeds 4194304 bytes"})),
        (status = 429, description = "Over the session's `rate_limit`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"error": "too_many_requests", "message": "too many requests on this session; retry after 1 s"})),
        (status = 502, description = "The backend failed or answered an error", body = ErrorBody,
            example = json!({"error": "http_status", "message": "backend \"everything\" answered HTTP 500"})),
        (status = 503, description = "The backend is unavailable (opening, circuit open, busy)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"error": "unavailable", "message": "backend \"everything\" is still opening its session"})),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody,
            example = json!({"error": "timeout", "message": "backend \"everything\" did not answer within 30000 ms"})),
    ))]
pub async fn call(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let body = match read_limited(&request, &mut payload, MAX_MESSAGE_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            return Ok(refuse_unread(
                ApiError::from(error).error_response(),
                payload.into_inner(),
            ));
        }
    };
    let (id, name) = path.into_inner();
    let mcp_session = open(&request, &id, &mux).await?;
    let arguments = arguments("body", &body)?;
    let result = call_tool(&request, &mux, &mcp_session, &id, name, arguments).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Calls tool `name` with `arguments` on a session's MCP session, the way
/// an MCP `tools/call` goes (rules, retries, audit, metrics) and traced as
/// one, with its backend exchanges within. `id` is the session's id, as
/// the request named it. The console's "try it" calls here too.
pub(crate) async fn call_tool(
    request: &HttpRequest,
    mux: &Mux,
    mcp_session: &McpSession,
    id: &str,
    name: String,
    arguments: Map<String, Value>,
) -> Result<Payload, ApiError> {
    let params = json!({ "name": name, "arguments": arguments });
    let signed_in = signed_in_identity(request);
    let trace = RequestTrace::start(
        mux.traces(),
        |header| trace_header(request, header),
        RequestFacts {
            method: Method::ToolsCall.as_str(),
            params: Some(&params),
            session: || id.chars().take(8).collect(),
            subject: signed_in
                .as_deref()
                .map(|identity| identity.subject.as_str()),
        },
    );
    let work = async {
        let asked = ClientRequest::of(Method::ToolsCall, Some(params))
            .map_err(|error| call_failed(error.into()))?;
        let call = ClientCall {
            id: &Value::Null,
            stream: None,
        };
        mcp_session
            .handle_request(asked, &call)
            .await
            .map_err(call_failed)
    };
    serve_traced(request, trace, work, |answered| match answered {
        Ok(_) => StatusCode::OK.as_u16(),
        Err(error) => error.status_code().as_u16(),
    })
    .await
}

/// The MCP session that serves the session's plain HTTP calls, once the
/// request may use the session: with its token, within its rate.
async fn open(request: &HttpRequest, id: &str, mux: &Mux) -> Result<Arc<McpSession>, ApiError> {
    let session = usable_session(request, SessionPath::parse(id)?, mux).await?;
    plain_calls_mcp_session(mux, &session).await
}

/// The MCP session a session's plain HTTP calls share (the one its
/// stateless clients that declare no capabilities share).
pub(crate) async fn plain_calls_mcp_session(
    mux: &Mux,
    session: &Session,
) -> Result<Arc<McpSession>, ApiError> {
    // Its caller answers no request of a backend: none is told it could.
    Ok(mux
        .stateless_mcp_session(session, &serde_json::Map::new())
        .await?)
}

/// The arguments a body (or a form's `field`) holds: a JSON object, or
/// none when it is empty. Every refusal names `field`.
pub(crate) fn arguments(field: &str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if nesting::exceeds_depth(body, nesting::MAX_DEPTH) {
        return Err(ApiError::bad_request(
            field,
            format!(
                "nests arrays and objects deeper than {} levels",
                nesting::MAX_DEPTH
            ),
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(arguments)) => Ok(arguments),
        Ok(_) => Err(ApiError::bad_request(
            field,
            "must be a JSON object of the tool's arguments",
        )),
        Err(error) => Err(ApiError::bad_request(
            field,
            format!("is not valid JSON ({error})"),
        )),
    }
}

/// A failed call as an HTTP status: the client's mistake is a 4xx, a
/// backend that could not be reached or did not answer a 503 or 504, and
/// one that failed or answered an error a 502.
fn call_failed(error: CallError) -> ApiError {
    let failed = |status: StatusCode, class: &'static str, error: &dyn std::fmt::Display| {
        ApiError::CallFailed {
            status,
            class,
            message: error.to_string(),
        }
    };
    match error {
        CallError::Unknown { .. } => ApiError::NotFound {
            message: error.to_string(),
        },
        CallError::InvalidParams { reason } => ApiError::bad_request("arguments", reason),
        CallError::Relayed { error } if error.code == INVALID_PARAMS => {
            ApiError::bad_request("arguments", error.message)
        }
        CallError::Relayed { ref error } => {
            failed(StatusCode::BAD_GATEWAY, "backend_error", &error.message)
        }
        // The backend session could not open within the session's share
        // of connections: the session's own doing, as for a call.
        CallError::BackendUnavailable(Unavailable::Failed(
            ref backend @ BackendError::SessionConnections { .. },
        )) => failed(StatusCode::TOO_MANY_REQUESTS, backend.class(), backend),
        CallError::BackendUnavailable(ref unavailable) => {
            failed(StatusCode::SERVICE_UNAVAILABLE, "unavailable", unavailable)
        }
        CallError::Backend(ref backend) => {
            let status = match backend {
                BackendError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                // It never left mcp-mux: what the client sent is at fault.
                BackendError::Unsent { .. } => StatusCode::BAD_REQUEST,
                BackendError::Connect { .. }
                | BackendError::CircuitOpen { .. }
                | BackendError::Busy { .. }
                | BackendError::SessionBusy { .. }
                | BackendError::NoConnection { .. } => StatusCode::SERVICE_UNAVAILABLE,
                BackendError::SessionConnections { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_GATEWAY,
            };
            failed(status, backend.class(), backend)
        }
        CallError::MethodNotFound { .. } | CallError::UnknownResource { .. } => {
            failed(StatusCode::BAD_GATEWAY, "backend_error", &error)
        }
        CallError::Interrupted => failed(StatusCode::BAD_GATEWAY, "interrupted", &error),
        CallError::UrlElicitationRequired { .. } => {
            failed(StatusCode::FORBIDDEN, "needs_authorization", &error)
        }
    }
}
