//! Stateless (2026-07-28) clients of a session. They open no MCP session,
//! so every session keeps one shared MCP session for them, opened on first
//! use. Backends speak the legacy revisions: a request a backend sends
//! during a call (sampling, elicitation, roots) becomes an
//! `InputRequiredResult`, and the call waits, parked, until the client
//! retries with its answers (multi round-trip requests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::error::CallError;
use super::mcp_session::{ClientCall, McpSession};
use super::payload::Payload;
use crate::mcp::jsonrpc::{self, ErrorObject};
use crate::mcp::request::{ClientNotification, ClientRequest, Method};
use crate::mcp::stateless::{LogLevel, RequestMeta, capability_for};

/// What backends of the shared MCP session are told the client can do:
/// each request's own capabilities are checked when a backend asks.
pub fn backend_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": {} })
}

/// How long a call waits for the client to retry with its input.
pub const PARKED_CALL_TTL: Duration = Duration::from_secs(600);
/// How long a client's retry waits, once its user accepted to authorize a
/// backend, for the authorization to complete.
const AUTHORIZATION_WAIT: Duration = Duration::from_secs(300);
/// How often a waiting retry looks whether the backend is connected.
const AUTHORIZATION_POLL: Duration = Duration::from_millis(250);
/// Most calls of one session that may wait for input at once; more end the
/// oldest.
pub const MAX_PARKED_CALLS: usize = 256;

/// The shared MCP session of a session's stateless clients, and their calls
/// waiting for input.
#[derive(Default)]
pub(super) struct Stateless {
    /// Locked while the MCP session opens, so concurrent first requests
    /// open it once.
    pub(super) mcp_session: tokio::sync::Mutex<Option<Arc<McpSession>>>,
    /// The other node that holds it (its URL and secret), as last found in
    /// the store, and when.
    pub(super) held_elsewhere: Mutex<Option<(String, String, Instant)>>,
    parked: Mutex<HashMap<String, StatelessCall>>,
}

impl Stateless {
    /// Keeps a call that awaits the client's input; returns the
    /// `requestState` that resumes it: 128 random bits, so that no other
    /// client can guess it.
    pub(super) fn park(&self, mut call: StatelessCall) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        call.parked_at = Instant::now();
        let mut parked = self.lock_parked();
        expire(&mut parked);
        if parked.len() >= MAX_PARKED_CALLS
            && let Some(oldest) = parked
                .iter()
                .min_by_key(|(_, call)| call.parked_at)
                .map(|(token, _)| token.clone())
        {
            tracing::warn!("too many calls await input; the oldest is cancelled");
            parked.remove(&oldest);
        }
        parked.insert(token.clone(), call);
        token
    }

    /// The parked call `token` names, taken out of the waiting list if the
    /// retry asks what it asked; a mismatch leaves it waiting.
    pub(super) fn unpark(
        &self,
        token: &str,
        request: RequestFingerprint,
    ) -> Result<StatelessCall, Unpark> {
        let mut parked = self.lock_parked();
        expire(&mut parked);
        match parked.get(token) {
            None => Err(Unpark::Unknown),
            Some(call) if call.request != request => Err(Unpark::OtherRequest),
            Some(_) => parked.remove(token).ok_or(Unpark::Unknown),
        }
    }

    pub(super) fn has_parked(&self) -> bool {
        let mut parked = self.lock_parked();
        expire(&mut parked);
        !parked.is_empty()
    }

    /// Cancels every waiting call and ends the shared MCP session.
    pub(super) fn end(&self) {
        self.lock_parked().clear();
        if let Ok(mut mcp_session) = self.mcp_session.try_lock()
            && let Some(mcp_session) = mcp_session.take()
        {
            mcp_session.close();
        }
    }

    fn lock_parked(&self) -> MutexGuard<'_, HashMap<String, StatelessCall>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a `requestState` took up no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpark {
    /// Never issued, already used, or expired.
    Unknown,
    /// It belongs to a request with another method, name or arguments.
    OtherRequest,
}

/// Drops (and so cancels) calls the client never came back for.
fn expire(parked: &mut HashMap<String, StatelessCall>) {
    parked.retain(|_, call| call.parked_at.elapsed() < PARKED_CALL_TTL);
}

/// An id for a stateless client's request on the shared MCP session:
/// unique, where the ids of different clients are not.
pub fn stateless_call_id() -> Value {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    json!(format!(
        "stateless-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// What a running call produced next.
#[derive(Debug)]
pub enum Step {
    /// A notification for the client's answer stream (progress, a log
    /// message at or above the level the client asked for).
    Notification(Value),
    /// The backend asked for input the client declared it can give, keyed
    /// as `inputRequests` wants them. The call should be parked.
    NeedsInput(Map<String, Value>),
    /// The backend asked for something the client did not declare; the
    /// backend was told no.
    MissingCapability(&'static str),
    /// The call's outcome.
    Done(Result<Payload, CallError>),
}

/// A `tools/call`, `prompts/get` or `resources/read` of a stateless client,
/// running on the shared MCP session. Dropped before it is done (the
/// client went away, or never came back with its input), it is cancelled at
/// the backend.
pub struct StatelessCall {
    mcp_session: Arc<McpSession>,
    /// The id the call runs under on the shared MCP session: unique, unlike
    /// the ids of different clients.
    internal_id: Value,
    /// What was asked: a retry must ask the same to take the call up.
    request: RequestFingerprint,
    meta: RequestMeta,
    events: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    outcome: tokio::sync::oneshot::Receiver<Result<Payload, CallError>>,
    /// Backend requests given to the client (by the key it was shown) that
    /// it has not answered yet.
    awaiting: Vec<String>,
    /// What was asked, to ask again once a backend the call needed is
    /// authorized.
    asked: (Method, Map<String, Value>),
    /// Set while the client is asked to authorize a backend: the key of
    /// that URL elicitation and the backend.
    authorizing: Option<(String, String)>,
    finished: bool,
    parked_at: Instant,
}

impl StatelessCall {
    /// Starts a call; its outcome and what the backend sends meanwhile come
    /// from `next`.
    pub fn start(
        mcp_session: Arc<McpSession>,
        method: Method,
        params: Map<String, Value>,
        meta: RequestMeta,
    ) -> Self {
        let internal_id = stateless_call_id();
        let request = RequestFingerprint::of(method, Some(&params));
        let asked = (method, params.clone());
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        let (answer, outcome) = tokio::sync::oneshot::channel();
        let running = mcp_session.clone();
        let id = internal_id.clone();
        // The call runs on its own task: parked, it outlives the HTTP
        // request that started it.
        // It carries the request's trace context, which a task does not inherit.
        tokio::spawn(crate::traces::carried(async move {
            let call = ClientCall {
                id: &id,
                stream: Some(sender),
            };
            let outcome = match ClientRequest::of(method, Some(Value::Object(params))) {
                Ok(request) => running.handle_request(request, &call).await,
                Err(error) => Err(error.into()),
            };
            let _ = answer.send(outcome);
        }));
        StatelessCall {
            mcp_session,
            internal_id,
            request,
            meta,
            events,
            outcome,
            awaiting: Vec::new(),
            asked,
            authorizing: None,
            finished: false,
            parked_at: Instant::now(),
        }
    }

    /// Takes up a parked call again with the client's retry: its answers go
    /// to the backend that asked, each under the backend's own id.
    pub async fn resume(
        mut self,
        params: &Map<String, Value>,
        meta: RequestMeta,
    ) -> Result<Self, CallError> {
        let responses = match params.get("inputResponses") {
            None => Map::new(),
            Some(Value::Object(responses)) => responses.clone(),
            Some(_) => {
                return Err(CallError::InvalidParams {
                    reason: "\"inputResponses\" must be an object".into(),
                });
            }
        };
        self.meta = meta;
        if let Some((key, server)) = self.authorizing.take() {
            return Ok(self.after_authorization(&key, &server, &responses).await);
        }
        for key in std::mem::take(&mut self.awaiting) {
            let outcome = match responses.get(&key) {
                Some(result) => json!({ "result": result }),
                None => json!({ "error": ErrorObject::new(
                    jsonrpc::INVALID_PARAMS,
                    "the client did not answer this request",
                ) }),
            };
            self.answer_backend(&key, outcome).await;
        }
        Ok(self)
    }

    /// Waits for what the call produces next.
    pub async fn next(&mut self) -> Step {
        loop {
            tokio::select! {
                biased;
                Some(bytes) = self.events.recv() => {
                    let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
                        continue;
                    };
                    if let Some(step) = self.consider(message).await {
                        return step;
                    }
                }
                outcome = &mut self.outcome => {
                    self.finished = true;
                    let outcome = outcome.unwrap_or(Err(CallError::Interrupted));
                    return self.ask_for_authorization(outcome);
                }
            }
        }
    }

    /// What to make of a message the backend sent during the call: None
    /// when the client is not to see it.
    async fn consider(&mut self, message: Value) -> Option<Step> {
        let method = message.get("method").and_then(Value::as_str)?.to_owned();
        let Some(Value::String(key)) = message.get("id").cloned() else {
            // Only notifications about this request ride on its answer;
            // changes go to `subscriptions/listen` streams.
            let wanted = match method.as_str() {
                "notifications/progress" => true,
                "notifications/message" => LogLevel::admits(self.meta.log_level, &message),
                _ => false,
            };
            return wanted.then_some(Step::Notification(message));
        };
        match capability_for(&method) {
            Some(capability) if self.meta.client_capabilities.contains_key(capability) => {
                self.awaiting.push(key.clone());
                let mut request = json!({ "method": method });
                if let Some(params) = message.get("params") {
                    request["params"] = params.clone();
                }
                Some(Step::NeedsInput(Map::from_iter([(key, request)])))
            }
            needed => {
                let refusal = ErrorObject::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("the client did not declare support for {method}"),
                );
                self.answer_backend(&key, json!({ "error": refusal })).await;
                let capability = needed?;
                // The backend was told no and finishes on its own; the
                // client learns what it lacks.
                self.finished = true;
                Some(Step::MissingCapability(capability))
            }
        }
    }

    /// A call whose backend waits for its user's authorization: a client
    /// that takes URL elicitations is asked to open the link (the call is
    /// parked, and asked again once the user is done); any other gets the
    /// tool error that holds it.
    fn ask_for_authorization(&mut self, outcome: Result<Payload, CallError>) -> Step {
        let Err(CallError::UrlElicitationRequired {
            server,
            url,
            message,
        }) = outcome
        else {
            return Step::Done(outcome);
        };
        let takes_url = self
            .meta
            .client_capabilities
            .get("elicitation")
            .is_some_and(|elicitation| elicitation.get("url").is_some());
        if !takes_url {
            return Step::Done(Ok(Payload::tool_error(&message)));
        }
        let key = format!("mcp-mux-authorize-{}", uuid::Uuid::new_v4().simple());
        let request = json!({
            "method": "elicitation/create",
            "params": {
                "mode": "url",
                "message": message,
                "url": url,
                "elicitationId": uuid::Uuid::new_v4().to_string(),
            },
        });
        self.authorizing = Some((key.clone(), server));
        Step::NeedsInput(Map::from_iter([(key, request)]))
    }

    /// Takes the call up again once the client answered the URL
    /// elicitation `key`: when its user accepted, waits (a while) for
    /// `server` to be connected, then asks again; else the call ends with
    /// a tool error saying so.
    async fn after_authorization(
        self,
        key: &str,
        server: &str,
        responses: &Map<String, Value>,
    ) -> Self {
        let action = responses
            .get(key)
            .and_then(|response| response.get("action"))
            .and_then(Value::as_str);
        let (method, params) = self.asked.clone();
        if action != Some("accept") {
            let text = format!(
                "\"{server}\" was not authorized: the user did not accept to open its authorization link"
            );
            return self.ending_with(Ok(Payload::tool_error(&text)));
        }
        let deadline = Instant::now() + AUTHORIZATION_WAIT;
        while Instant::now() < deadline {
            if self
                .mcp_session
                .backend_outcomes(server)
                .iter()
                .any(Result::is_ok)
            {
                break;
            }
            // Authorized on another node: the backend opens here at its
            // next attempt.
            self.mcp_session.reopen(server);
            tokio::time::sleep(AUTHORIZATION_POLL).await;
        }
        StatelessCall::start(self.mcp_session.clone(), method, params, self.meta.clone())
    }

    /// This call, ended with `outcome` without running again.
    fn ending_with(mut self, outcome: Result<Payload, CallError>) -> Self {
        let (answer, receiver) = tokio::sync::oneshot::channel();
        let _ = answer.send(outcome);
        self.outcome = receiver;
        self.finished = false;
        self
    }

    async fn answer_backend(&self, key: &str, outcome: Value) {
        let Value::Object(outcome) = outcome else {
            return;
        };
        self.mcp_session
            .handle_response(jsonrpc::Response {
                id: Value::String(key.to_owned()),
                outcome,
            })
            .await;
    }
}

impl Drop for StatelessCall {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mcp_session = self.mcp_session.clone();
        let internal_id = self.internal_id.clone();
        let awaiting = std::mem::take(&mut self.awaiting);
        runtime.spawn(async move {
            for key in awaiting {
                let refusal =
                    ErrorObject::new(jsonrpc::INTERNAL_ERROR, "the request was cancelled");
                let mut outcome = Map::new();
                outcome.insert("error".into(), json!(refusal));
                mcp_session
                    .handle_response(jsonrpc::Response {
                        id: Value::String(key),
                        outcome,
                    })
                    .await;
            }
            mcp_session
                .handle_notification(ClientNotification::Cancelled {
                    request_id: internal_id,
                    reason: Some(json!("the client went away")),
                })
                .await;
        });
    }
}

/// A digest of what a request asks: its method, and its params but for
/// `requestState`, `inputResponses` and `_meta`, which a retry changes. A
/// `requestState` takes up only the call whose retry asks the same thing:
/// the same tool, prompt or resource, with the same arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    pub fn of(method: Method, params: Option<&Map<String, Value>>) -> Self {
        use sha2::{Digest, Sha256};
        let asked: Map<String, Value> = params
            .into_iter()
            .flatten()
            .filter(|(key, _)| !matches!(key.as_str(), "requestState" | "inputResponses" | "_meta"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        // serde_json's maps are ordered by key: equal params, equal bytes.
        let bytes = serde_json::to_vec(&(method.as_str(), asked)).unwrap_or_default();
        RequestFingerprint(Sha256::digest(bytes).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_matches_only_the_same_method_name_and_arguments() {
        let params = |value: Value| value.as_object().cloned().expect("object");
        let first = RequestFingerprint::of(
            Method::ToolsCall,
            Some(&params(
                json!({ "name": "a__add", "arguments": { "a": 1, "b": 2 } }),
            )),
        );
        let retry = RequestFingerprint::of(
            Method::ToolsCall,
            Some(&params(json!({
                "arguments": { "b": 2, "a": 1 },
                "name": "a__add",
                "requestState": "s",
                "inputResponses": { "mux-1": {} },
                "_meta": { "progressToken": 3 },
            }))),
        );
        assert_eq!(first, retry);
        for other in [
            json!({ "name": "a__add", "arguments": { "a": 1, "b": 3 } }),
            json!({ "name": "a__echo", "arguments": { "a": 1, "b": 2 } }),
            json!({ "name": "a__add" }),
        ] {
            assert_ne!(
                first,
                RequestFingerprint::of(Method::ToolsCall, Some(&params(other)))
            );
        }
        assert_ne!(
            first,
            RequestFingerprint::of(
                Method::PromptsGet,
                Some(&params(
                    json!({ "name": "a__add", "arguments": { "a": 1, "b": 2 } })
                ))
            )
        );
    }
}
