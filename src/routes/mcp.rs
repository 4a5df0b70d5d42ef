//! The session's MCP endpoint, `/session/<id>/mcp`, over Streamable HTTP:
//! transport rules (Origin, session and version headers, status codes) here,
//! method handling in the mux.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::body::{BodyError, read_limited};
use super::error::ApiError;
use super::sessions::find_session;
use crate::mcp::jsonrpc::{
    self, ErrorObject, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Message,
    PARSE_ERROR,
};
use crate::mcp::version;
use crate::mux::{CallError, McpSession, Mux, Payload, Session};

const MCP_SESSION_ID: &str = "mcp-session-id";
const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// Largest JSON-RPC message a client may POST.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A transport-level refusal: an HTTP status with a JSON-RPC error body, the
/// shape MCP clients parse.
struct Refusal {
    status: StatusCode,
    id: Value,
    error: ErrorObject,
}

impl Refusal {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Refusal {
            status,
            id: Value::Null,
            error: ErrorObject::new(code, message),
        }
    }

    fn with_id(mut self, id: Option<Value>) -> Self {
        self.id = id.unwrap_or(Value::Null);
        self
    }

    fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("application/json")
            .body(jsonrpc::error_response(&self.id, &self.error))
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        match &error {
            ApiError::NotFound { .. } => {
                Refusal::new(StatusCode::NOT_FOUND, INVALID_REQUEST, error.to_string())
            }
            ApiError::BadRequest { .. } => {
                Refusal::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, error.to_string())
            }
            ApiError::PayloadTooLarge { .. } => Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
                error.to_string(),
            ),
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "MCP request failed");
                Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    INTERNAL_ERROR,
                    error.to_string(),
                )
            }
        }
    }
}

pub async fn post(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    mux: web::Data<Mux>,
) -> HttpResponse {
    match handle_post(&request, &path, payload, &mux).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle_post(
    request: &HttpRequest,
    raw_id: &str,
    payload: web::Payload,
    mux: &Mux,
) -> Result<HttpResponse, Refusal> {
    check_origin(request)?;
    let session = find_session(raw_id, mux).await?;
    let body = read_limited(payload, MAX_MESSAGE_BYTES)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge { .. } => Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
                error.to_string(),
            ),
            BodyError::Broken => {
                Refusal::new(StatusCode::BAD_REQUEST, PARSE_ERROR, error.to_string())
            }
        })?;
    let value: Value = serde_json::from_slice(&body).map_err(|error| {
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
        Refusal::new(StatusCode::BAD_REQUEST, error.code(), error.to_string()).with_id(id.clone())
    })?;
    check_protocol_version(request).map_err(|refusal| refusal.with_id(id.clone()))?;

    if let Message::Request(initialize) = &message
        && initialize.method == "initialize"
    {
        return Ok(initialize_response(mux, &session, initialize).await);
    }
    let mcp_session =
        find_mcp_session(request, &session).map_err(|refusal| refusal.with_id(id.clone()))?;
    match message {
        Message::Request(call) => {
            let outcome = mcp_session.handle_request(&call.method, call.params).await;
            Ok(answer(&call.id, outcome))
        }
        Message::Notification(_) | Message::Response => {
            mcp_session.touch();
            Ok(HttpResponse::Accepted().finish())
        }
    }
}

async fn initialize_response(
    mux: &Mux,
    session: &Session,
    request: &jsonrpc::Request,
) -> HttpResponse {
    let (mcp_session, result) = mux.open_mcp_session(session, request.params.as_ref()).await;
    tracing::info!(
        session = %super::sessions::short_id(session.id),
        protocol_version = mcp_session.protocol_version,
        "MCP session opened"
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((MCP_SESSION_ID, mcp_session.id.as_str()))
        .body(jsonrpc::result_response(&request.id, &result))
}

fn answer(id: &Value, outcome: Result<Payload, CallError>) -> HttpResponse {
    let body = match outcome {
        Ok(payload) => jsonrpc::result_response(id, &payload),
        Err(error) => jsonrpc::error_response(id, &to_jsonrpc_error(error)),
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// The one place a failed MCP request becomes a JSON-RPC error.
fn to_jsonrpc_error(error: CallError) -> ErrorObject {
    let message = error.to_string();
    match error {
        CallError::MethodNotFound { .. } => ErrorObject::new(METHOD_NOT_FOUND, message),
        CallError::InvalidParams { .. } => ErrorObject::new(INVALID_PARAMS, message),
        CallError::UnknownTool { name } => {
            ErrorObject::new(INVALID_PARAMS, message).with_data(json!({ "tool": name }))
        }
        CallError::BackendDown { server, .. } => {
            ErrorObject::new(INTERNAL_ERROR, message).with_data(json!({ "server": server }))
        }
        CallError::Backend(backend) => ErrorObject::new(INTERNAL_ERROR, message)
            .with_data(json!({ "server": backend.server() })),
        CallError::Relayed(error) => error,
    }
}

pub async fn get(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let checked = async {
        check_origin(&request)?;
        find_session(&path, &mux).await?;
        Ok::<_, Refusal>(())
    };
    match checked.await {
        // No server-initiated stream yet: the transport allows 405 here.
        Ok(()) => method_not_allowed().await,
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn delete(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> HttpResponse {
    let ended = async {
        check_origin(&request)?;
        let session = find_session(&path, &mux).await?;
        let mcp_session = find_mcp_session(&request, &session)?;
        session.close_mcp_session(&mcp_session.id).await;
        Ok::<_, Refusal>(())
    };
    match ended.await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST, DELETE"))
        .json(json!({ "error": "method_not_allowed", "message": "use POST for MCP messages and DELETE to end an MCP session" }))
}

fn find_mcp_session(request: &HttpRequest, session: &Session) -> Result<Arc<McpSession>, Refusal> {
    let Some(raw) = request.headers().get(MCP_SESSION_ID) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "missing Mcp-Session-Id header: send initialize first",
        ));
    };
    raw.to_str()
        .ok()
        .and_then(|id| session.mcp_session(id))
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                INVALID_REQUEST,
                "unknown or ended MCP session: initialize again",
            )
        })
}

fn check_protocol_version(request: &HttpRequest) -> Result<(), Refusal> {
    match request
        .headers()
        .get(MCP_PROTOCOL_VERSION)
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

/// Refuses a browser page from another site (DNS rebinding): a present
/// Origin must be a loopback origin.
fn check_origin(request: &HttpRequest) -> Result<(), Refusal> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .is_some_and(|url| {
            matches!(url.host(), Some(url::Host::Domain("localhost")))
                || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        });
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::FORBIDDEN,
            INVALID_REQUEST,
            "Origin not allowed",
        ))
    }
}
