//! Revision 2026-07-28 on the same endpoint (a "dual-era" server): a
//! request that carries its revision in `_meta` is served statelessly, with
//! no `initialize` and no `Mcp-Session-Id`, on the session's shared MCP
//! session.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::answer::{
    Refusal, accepts_event_stream, answer_builder, sse_response, to_jsonrpc_error,
};
use super::headers::{PROTOCOL_VERSION, SESSION_ID};
use crate::mcp::jsonrpc::{self, ErrorObject, METHOD_NOT_FOUND, Message};
use crate::mcp::param_headers::{self, Sent};
use crate::mcp::request::{ClientRequest, Method};
use crate::mcp::sse;
use crate::mcp::stateless::{self, MISSING_REQUIRED_CLIENT_CAPABILITY, RequestMeta};
use crate::mux::subscriptions::{self, Filter};
use crate::mux::{
    CallError, ClientCall, McpSession, Mux, Payload, RequestFingerprint, Session, StatelessCall,
    Step, Unpark,
};
use crate::routes::error::ApiError;
use crate::routes::rate_limit::charge_session_rate;

/// The tag this node starts each `requestState` it gives with: the 32 hex
/// digits of its id, so that a retry reaching another node is passed back
/// to the one that keeps the call.
fn node_tag(request: &HttpRequest) -> String {
    request
        .app_data::<web::Data<Mux>>()
        .map(|mux| mux.cluster().node_id().simple().to_string())
        .unwrap_or_default()
}

/// The node that keeps the call a retry's `requestState` resumes, when it
/// is another node's.
pub(super) fn parked_elsewhere(mux: &Mux, message: &Message) -> Option<uuid::Uuid> {
    let Message::Request(call) = message else {
        return None;
    };
    let state = call.params.as_ref()?.get("requestState")?.as_str()?;
    let node = uuid::Uuid::try_parse(state.get(..32)?).ok()?;
    (node != mux.cluster().node_id()).then_some(node)
}

/// How often a quiet `subscriptions/listen` stream gets a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Whether a POST belongs to the stateless era: a request whose `_meta` names
/// a revision (legacy clients never put one there), or, with no MCP
/// session, a message other than `initialize` whose `MCP-Protocol-Version`
/// header names the stateless one. An `initialize` without that `_meta` is
/// legacy whatever its header says (rmcp asks for 2026-07-28 in it).
pub(super) fn is_stateless(request: &HttpRequest, message: &Message) -> bool {
    match message {
        Message::Request(call) if stateless::declared_version(call.params.as_ref()).is_some() => {
            true
        }
        Message::Request(call) if call.method == Method::Initialize.as_str() => false,
        _ => {
            request.headers().get(&SESSION_ID).is_none()
                && request
                    .headers()
                    .get(&PROTOCOL_VERSION)
                    .is_some_and(|version| version == stateless::VERSION)
        }
    }
}

pub(super) async fn handle(
    request: &HttpRequest,
    mux: &Mux,
    session: std::sync::Arc<Session>,
    message: Message,
) -> Result<HttpResponse, Refusal> {
    // This revision defines no client notification on HTTP (closing a
    // stream cancels), and clients send no responses.
    let call = match message {
        Message::Request(call) => call,
        Message::Notification(_) => return Ok(HttpResponse::Accepted().finish()),
        Message::Response(_) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "clients of revision 2026-07-28 send no responses: answers to input requests go in the retried request's \"inputResponses\"",
            ));
        }
    };
    let id = call.id.clone();
    let meta = stateless::check_request(&call.method, call.params.as_ref(), |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| HeaderValue::to_str(value).ok())
    })
    .map_err(|refused| {
        let mut refusal =
            Refusal::new(StatusCode::BAD_REQUEST, refused.code(), refused.to_string());
        if let Some(data) = refused.data() {
            refusal.error = Box::new(refusal.error.with_data(data));
        }
        refusal.with_id(Some(&id))
    })?;
    // The envelope parser let through only an object or nothing.
    let mut params = match call.params {
        Some(Value::Object(params)) => params,
        _ => Map::new(),
    };
    stateless::strip_request_meta(&mut params);
    let Some(method) = Method::parse(&call.method).filter(|method| method.is_served_statelessly())
    else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            METHOD_NOT_FOUND,
            format!(
                "method not found: {} is not served at revision 2026-07-28",
                call.method
            ),
        )
        .with_id(Some(&id)));
    };
    let mcp_session = mux
        .stateless_mcp_session(&session, &meta.client_capabilities)
        .await
        .map_err(|error| Refusal::from(ApiError::from(error)).with_id(Some(&id)))?;
    if method == Method::ToolsCall {
        check_param_headers(request, &mcp_session, &params)
            .await
            .map_err(|refusal| refusal.with_id(Some(&id)))?;
    }
    if method.may_need_input() {
        return run_call(request, session, mcp_session, id, method, params, meta).await;
    }
    match ClientRequest::of(method, Some(Value::Object(params))) {
        Ok(ClientRequest::ServerDiscover) => Ok(json_answer(
            &id,
            method,
            Ok(discover(&mcp_session)),
            &mcp_session,
        )),
        Ok(ClientRequest::SubscriptionsListen { params }) => {
            listen(request, mux, &session, &mcp_session, id, params).await
        }
        Ok(served) => {
            let internal_id = crate::mux::stateless_call_id();
            let client = ClientCall {
                id: &internal_id,
                stream: None,
            };
            let outcome = mcp_session.handle_request(served, &client).await;
            Ok(json_answer(&id, method, outcome, &mcp_session))
        }
        Err(error) => Ok(json_answer(&id, method, Err(error.into()), &mcp_session)),
    }
}

/// Refuses a `tools/call` whose `Mcp-Param-*` headers do not mirror the
/// arguments its tool's `inputSchema` marks with `x-mcp-header`.
async fn check_param_headers(
    request: &HttpRequest,
    mcp_session: &McpSession,
    params: &Map<String, Value>,
) -> Result<(), Refusal> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(declared) = mcp_session.param_headers(name).await else {
        return Ok(());
    };
    param_headers::check(&declared, params.get("arguments"), |name| {
        let mut sent = request.headers().get_all(name);
        match (sent.next(), sent.next()) {
            (None, _) => Sent::Absent,
            (Some(value), None) => value.to_str().map_or(Sent::Invalid, Sent::Value),
            (Some(_), Some(_)) => Sent::Invalid,
        }
    })
    .map_err(|refused| Refusal::new(StatusCode::BAD_REQUEST, refused.code(), refused.to_string()))
}

/// The `server/discover` result: every revision served, and what the
/// merged session offers.
fn discover(mcp_session: &McpSession) -> Payload {
    Payload::Json(json!({
        "supportedVersions": stateless::supported_versions(),
        "capabilities": crate::mux::capabilities(),
        "instructions": mcp_session.instructions(),
    }))
}

/// A JSON answer, completed as this revision wants results.
fn json_answer(
    id: &Value,
    method: Method,
    outcome: Result<Payload, CallError>,
    mcp_session: &McpSession,
) -> HttpResponse {
    answer_builder(&outcome)
        .content_type("application/json")
        .body(answer_bytes(id, method, outcome, mcp_session))
}

fn answer_bytes(
    id: &Value,
    method: Method,
    outcome: Result<Payload, CallError>,
    mcp_session: &McpSession,
) -> Vec<u8> {
    let result = outcome.and_then(|payload| match payload {
        Payload::Json(Value::Object(result)) => Ok(result),
        Payload::Raw(raw) => {
            serde_json::from_str::<Map<String, Value>>(raw.get()).map_err(|_| CallError::Relayed {
                error: ErrorObject::new(
                    jsonrpc::INTERNAL_ERROR,
                    "the backend answered with a result that is not a JSON object",
                ),
            })
        }
        Payload::Json(_) => Ok(Map::new()),
    });
    match result {
        Ok(mut result) => {
            // Merged lists are mcp-mux's to cache; anything else keeps the
            // backend's hint, if it gave one.
            let list_ttl = mcp_session.list_ttl().as_millis() as u64;
            let (default_ttl, max_ttl) = if method == Method::ResourcesRead {
                (0, u64::MAX)
            } else {
                (list_ttl, list_ttl)
            };
            stateless::complete_result(&mut result, method, default_ttl, max_ttl);
            jsonrpc::result_response(id, &result)
        }
        Err(error) => jsonrpc::error_response(id, &to_jsonrpc_error(error)),
    }
}

/// `subscriptions/listen`: an SSE stream that opens with the
/// acknowledgment, carries the notifications asked for, and ends with a
/// response when mcp-mux stops.
async fn listen(
    request: &HttpRequest,
    mux: &Mux,
    session: &Session,
    mcp_session: &std::sync::Arc<McpSession>,
    id: Value,
    params: Map<String, Value>,
) -> Result<HttpResponse, Refusal> {
    let filter = match Filter::parse(Some(&Value::Object(params))) {
        Ok(filter) => filter,
        Err(error) => {
            return Ok(json_answer(
                &id,
                Method::SubscriptionsListen,
                Err(error),
                mcp_session,
            ));
        }
    };
    let listeners = mcp_session.listeners();
    if listeners.len() >= subscriptions::MAX_LISTEN_STREAMS {
        return Err(Refusal::from(ApiError::AtCapacity {
            message: format!(
                "this session has {} subscriptions/listen streams open, the most it may; close one first",
                subscriptions::MAX_LISTEN_STREAMS
            ),
        })
        .with_id(Some(&id)));
    }
    // Each URI no stream watches yet is a request to a backend: the
    // session's rate pays for each.
    let new_uris = filter
        .uris
        .iter()
        .filter(|uri| !listeners.watches(uri))
        .count();
    if new_uris > 0 {
        charge_session_rate(request, session, new_uris as u32)
            .map_err(|error| Refusal::from(error).with_id(Some(&id)))?;
    }
    let subscription = mcp_session.listen(id.clone(), filter).await;
    let first = subscriptions::acknowledgment(&id, &subscription.filter);
    let state = (Some(first), subscription, mux.stopping(), id, false);
    let events = futures_util::stream::unfold(
        state,
        |(first, mut subscription, mut stopping, id, ended)| async move {
            if ended {
                return None;
            }
            if let Some(first) = first {
                let bytes = serde_json::to_vec(&first).unwrap_or_default();
                return Some((sse_event(&bytes), (None, subscription, stopping, id, false)));
            }
            // The receiver ends when its MCP session does (the session was
            // deleted, say): the stream closes as it does when the node stops.
            let next = tokio::select! {
                message = subscription.receiver.recv() => message,
                _ = stopping.wait_for(|stopping| *stopping) => None,
                _ = tokio::time::sleep(KEEP_ALIVE) => Some(Vec::new()),
            };
            let (event, ended) = match next {
                Some(keep_alive) if keep_alive.is_empty() => {
                    (Ok(web::Bytes::from_static(b":\n\n")), false)
                }
                Some(message) => (sse_event(&message), false),
                None => {
                    let closing = subscriptions::closing_response(&id);
                    (
                        sse_event(&serde_json::to_vec(&closing).unwrap_or_default()),
                        true,
                    )
                }
            };
            Some((event, (None, subscription, stopping, id, ended)))
        },
    );
    Ok(sse_response(events))
}

fn sse_event(message: &[u8]) -> Result<web::Bytes, std::convert::Infallible> {
    Ok(web::Bytes::from(sse::frame_message(message)))
}

/// `tools/call`, `prompts/get` or `resources/read`: started, or taken up
/// again when the client retries with the `requestState` of an
/// `InputRequiredResult`.
async fn run_call(
    request: &HttpRequest,
    session: std::sync::Arc<Session>,
    mcp_session: std::sync::Arc<McpSession>,
    id: Value,
    method: Method,
    mut params: Map<String, Value>,
    meta: RequestMeta,
) -> Result<HttpResponse, Refusal> {
    let invalid = |reason: &str| {
        json_answer(
            &id,
            method,
            Err(CallError::InvalidParams {
                reason: reason.to_owned(),
            }),
            &mcp_session,
        )
    };
    let mut running = match params.remove("requestState") {
        None => {
            params.remove("inputResponses");
            StatelessCall::start(mcp_session.clone(), method, params, meta)
        }
        Some(Value::String(state)) => {
            let asked = RequestFingerprint::of(method, Some(&params));
            // Given here: a retry for a call another node keeps was passed
            // there before (`parked_elsewhere`).
            let token = state.strip_prefix(&node_tag(request)).unwrap_or(&state);
            let parked = match session.unpark(token, asked) {
                Ok(parked) => parked,
                Err(Unpark::Unknown) => {
                    return Ok(invalid(
                        "\"requestState\" is unknown or expired: send the request again without it",
                    ));
                }
                // Not spent: the request it belongs to may still come.
                Err(Unpark::OtherRequest) => {
                    return Ok(invalid(
                        "\"requestState\" belongs to another request: retry with the method, name and arguments it was issued for",
                    ));
                }
            };
            match parked.resume(&params, meta).await {
                Ok(running) => running,
                Err((parked, error)) => {
                    session.park_again(token, parked);
                    return Ok(json_answer(&id, method, Err(error), &mcp_session));
                }
            }
        }
        Some(_) => return Ok(invalid("\"requestState\" must be a string")),
    };
    let streaming = accepts_event_stream(request);
    // The first step decides the status: a capability the client lacks is
    // a 400, whatever comes later rides on a 200.
    let first = loop {
        match running.next().await {
            Step::Notification(_) if !streaming => continue,
            step => break step,
        }
    };
    if let Step::MissingCapability(capability) = first {
        return Ok(missing_capability(&id, capability).into_response());
    }
    let mut answering = Answering {
        call: Some(running),
        node: node_tag(request),
        session,
        mcp_session,
        id,
        method,
    };
    if !streaming {
        let mut step = first;
        loop {
            if let Some(bytes) = answering.render(step) {
                return Ok(HttpResponse::Ok()
                    .content_type("application/json")
                    .body(bytes));
            }
            step = answering.next().await;
        }
    }
    // A call in flight is let finish when shutdown begins (actix's
    // graceful stop bounds it).
    let events = futures_util::stream::unfold(
        (Some(first), answering),
        |(first, mut answering)| async move {
            answering.call.as_ref()?;
            let step = match first {
                Some(step) => step,
                None => answering.next().await,
            };
            let bytes = match step {
                Step::Notification(message) => serde_json::to_vec(&message).unwrap_or_default(),
                step => answering.render(step).unwrap_or_default(),
            };
            Some((sse_event(&bytes), (None, answering)))
        },
    );
    Ok(sse_response(events))
}

fn missing_capability(id: &Value, capability: &str) -> Refusal {
    let mut refusal = Refusal::new(
        StatusCode::BAD_REQUEST,
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!(
            "the backend needs the client capability \"{capability}\", which this request did not declare"
        ),
    );
    refusal.error = Box::new(
        refusal
            .error
            .with_data(json!({ "requiredCapabilities": { capability: {} } })),
    );
    refusal.with_id(Some(id))
}

/// A call being answered; `call` is None once its answer has gone out.
struct Answering {
    call: Option<StatelessCall>,
    /// This node's tag, which starts each `requestState` it gives.
    node: String,
    session: std::sync::Arc<Session>,
    mcp_session: std::sync::Arc<McpSession>,
    id: Value,
    method: Method,
}

impl Answering {
    async fn next(&mut self) -> Step {
        match self.call.as_mut() {
            Some(call) => call.next().await,
            None => Step::Done(Err(CallError::Interrupted)),
        }
    }

    /// The answer a final step makes (parking the call when it needs the
    /// client's input); None for a notification.
    fn render(&mut self, step: Step) -> Option<Vec<u8>> {
        let bytes = match step {
            Step::Notification(_) => return None,
            Step::NeedsInput(requests) => {
                let call = self.call.take()?;
                let state = format!("{}{}", self.node, self.session.park(call));
                jsonrpc::result_response(
                    &self.id,
                    &stateless::input_required_result(requests, &state),
                )
            }
            Step::MissingCapability(capability) => {
                let refusal = missing_capability(&self.id, capability);
                jsonrpc::error_response(&self.id, &refusal.error)
            }
            Step::Done(outcome) => answer_bytes(&self.id, self.method, outcome, &self.mcp_session),
        };
        self.call = None;
        Some(bytes)
    }
}
