//! Stateless (2026-07-28) clients of a session. They open no MCP session,
//! so a session keeps MCP sessions for them, one per set of client
//! capabilities they declare, each opened on first use: a backend is told
//! exactly what its client can do, and never asks it for more. Backends
//! speak the legacy revisions: the requests a backend sends during a call
//! (sampling, elicitation, roots) become one `InputRequiredResult`, and the
//! call waits, parked, until the client retries with its answers (multi
//! round-trip requests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::error::{CallError, MuxError};
use super::mcp_session::{ClientCall, McpSession};
use super::payload::Payload;
use crate::mcp::jsonrpc::{self, ErrorObject};
use crate::mcp::request::{ClientNotification, ClientRequest, Method};
use crate::mcp::stateless::{LogLevel, RequestMeta, capability_for};

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
/// Most sets of client capabilities a session serves at once, each with its
/// own backend sessions.
pub const MAX_CAPABILITY_SETS: usize = 8;
/// Once a backend asked its client something, how long a call waits for
/// another request before it answers with those it has: a backend that asks
/// several things at once sends them within microseconds of each other,
/// and a loaded machine may spread them over milliseconds; a client's input
/// takes far longer than this wait.
const GATHER_QUIET: Duration = Duration::from_millis(50);
/// The longest a call gathers requests before it answers.
const GATHER_MAX: Duration = Duration::from_millis(500);

/// An MCP session of stateless clients that declare one set of
/// capabilities; locked while it opens, so that concurrent first requests
/// open it once.
pub(super) type SetSlot = Arc<tokio::sync::Mutex<Option<Arc<McpSession>>>>;

/// The MCP sessions of a session's stateless clients, and their calls
/// waiting for input.
#[derive(Default)]
pub(super) struct Stateless {
    /// By capability set (see `mcp_sessions::relayable`), as JSON.
    sets: Mutex<HashMap<String, SetSlot>>,
    /// The other node that holds them (its URL and secret), as last found in
    /// the store, and when.
    pub(super) held_elsewhere: Mutex<Option<(String, String, Instant)>>,
    parked: Mutex<HashMap<String, StatelessCall>>,
}

impl Stateless {
    /// The slot of the capability set `key`, added if it is new. A session
    /// at its most sets lets go of one that nothing uses (no stream, no call
    /// waiting), the least recently used; when each is in use, none is added.
    pub(super) fn slot(&self, key: &str) -> Result<SetSlot, MuxError> {
        let mut sets = self.lock_sets();
        if let Some(slot) = sets.get(key) {
            return Ok(slot.clone());
        }
        if sets.len() >= MAX_CAPABILITY_SETS {
            let unused = sets
                .iter()
                .filter_map(|(key, slot)| {
                    let open = slot.try_lock().ok()?;
                    match open.as_ref() {
                        None => Some((key.clone(), None)),
                        Some(mcp_session) if self.is_unused(mcp_session) => {
                            Some((key.clone(), Some(mcp_session.idle_since())))
                        }
                        Some(_) => None,
                    }
                })
                .min_by_key(|(_, idle_since)| *idle_since)
                .map(|(key, _)| key);
            let Some(unused) = unused else {
                return Err(MuxError::CapabilitySets {
                    limit: MAX_CAPABILITY_SETS,
                });
            };
            if let Some(slot) = sets.remove(&unused)
                && let Ok(mut open) = slot.try_lock()
                && let Some(mcp_session) = open.take()
            {
                mcp_session.close();
            }
        }
        let slot = SetSlot::default();
        sets.insert(key.to_owned(), slot.clone());
        Ok(slot)
    }

    /// Every one of its MCP sessions that is open (not opening right now).
    pub(super) fn open(&self) -> Vec<Arc<McpSession>> {
        self.lock_sets()
            .values()
            .filter_map(|slot| slot.try_lock().ok()?.clone())
            .collect()
    }

    /// Whether none of its MCP sessions is open or opening.
    pub(super) fn is_empty(&self) -> bool {
        self.lock_sets()
            .values()
            .all(|slot| slot.try_lock().is_ok_and(|open| open.is_none()))
    }

    /// Ends those of its MCP sessions idle for `idle`, with no stream open
    /// and no call waiting; true if one ended.
    pub(super) fn reap(&self, now: Instant, idle: Duration) -> bool {
        let mut reaped = false;
        self.lock_sets().retain(|_, slot| {
            let Ok(mut open) = slot.try_lock() else {
                return true;
            };
            let reapable = open.as_ref().is_some_and(|mcp_session| {
                now.duration_since(mcp_session.idle_since()) >= idle && self.is_unused(mcp_session)
            });
            if reapable && let Some(mcp_session) = open.take() {
                mcp_session.close();
                reaped = true;
            }
            open.is_some()
        });
        reaped
    }

    /// Whether no stream listens on `mcp_session` and no call on it waits
    /// for input.
    fn is_unused(&self, mcp_session: &Arc<McpSession>) -> bool {
        mcp_session.listeners().is_empty()
            && !self
                .lock_parked()
                .values()
                .any(|call| Arc::ptr_eq(&call.mcp_session, mcp_session))
    }

    /// Keeps a call that awaits the client's input; returns the
    /// `requestState` that resumes it: 128 random bits, so that no other
    /// client can guess it.
    pub(super) fn park(&self, call: StatelessCall) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.park_as(token.clone(), call);
        token
    }

    /// Keeps a call under `token` again: its retry was refused before
    /// anything reached the backend, and the client may retry once more.
    pub(super) fn park_as(&self, token: String, mut call: StatelessCall) {
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
        parked.insert(token, call);
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

    /// Cancels every waiting call and ends its MCP sessions.
    pub(super) fn end(&self) {
        self.lock_parked().clear();
        // One that is opening stays: its opener sees the session ended, or
        // keeps it here where the reaper finds it.
        self.lock_sets().retain(|_, slot| {
            let Ok(mut open) = slot.try_lock() else {
                return true;
            };
            if let Some(mcp_session) = open.take() {
                mcp_session.close();
            }
            false
        });
    }

    fn lock_sets(&self) -> MutexGuard<'_, HashMap<String, SetSlot>> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The progress token a request's params carry, if any.
fn progress_token_of(params: &Map<String, Value>) -> Option<Value> {
    params
        .get("_meta")?
        .get("progressToken")
        .filter(|token| !token.is_null())
        .cloned()
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

/// A message from the backend that the client is to hear of.
enum Considered {
    /// A notification about the call.
    Notification(Value),
    /// A request the client declared it can answer: the key it is shown
    /// under, and the request as `inputRequests` holds it.
    Request(String, Value),
    /// A request for a capability the client did not declare; the backend
    /// was told no.
    Refused(&'static str),
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
    /// Backend requests given to the client that it has not answered yet:
    /// the key it was shown → the request, to show again until answered.
    awaiting: Map<String, Value>,
    /// Of those, the ones the client left unanswered in its last retry:
    /// asked again, with any the backend sends meanwhile.
    unanswered: Map<String, Value>,
    /// Notifications that came while requests were gathered; they go out
    /// before the `InputRequiredResult`, which ends the answer.
    held_back: std::collections::VecDeque<Value>,
    /// The progress token of the client's latest request for this call:
    /// the backend knows the first request's, and each retry may bring
    /// another, under which the client expects progress from then on.
    progress_token: Option<Value>,
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
        let progress_token = progress_token_of(&params);
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
            awaiting: Map::new(),
            unanswered: Map::new(),
            held_back: Default::default(),
            progress_token,
            asked,
            authorizing: None,
            finished: false,
            parked_at: Instant::now(),
        }
    }

    /// Takes up a parked call again with the client's retry: its answers go
    /// to the backend that asked, each under the backend's own id; the
    /// requests it left unanswered are asked again. A retry whose answers
    /// are malformed is refused before any reaches the backend, and the
    /// call given back, to wait for a better retry.
    pub async fn resume(
        mut self,
        params: &Map<String, Value>,
        meta: RequestMeta,
    ) -> Result<Self, (Self, CallError)> {
        let responses = match params.get("inputResponses") {
            None => Map::new(),
            Some(Value::Object(responses)) => responses.clone(),
            Some(_) => {
                let reason = "\"inputResponses\" must be an object".into();
                return Err((self, CallError::InvalidParams { reason }));
            }
        };
        let asked = self
            .awaiting
            .keys()
            .chain(self.authorizing.as_ref().map(|(key, _)| key));
        for key in asked {
            if let Some(answer) = responses.get(key)
                && !answer.is_object()
            {
                let reason = format!(
                    "\"inputResponses.{key}\" must be an object: the result of the request it answers"
                );
                return Err((self, CallError::InvalidParams { reason }));
            }
        }
        self.meta = meta;
        self.progress_token = progress_token_of(params);
        if let Some((key, server)) = self.authorizing.take() {
            return Ok(self.after_authorization(&key, &server, &responses).await);
        }
        for (key, request) in std::mem::take(&mut self.awaiting) {
            match responses.get(&key) {
                Some(result) => {
                    self.answer_backend(&key, json!({ "result": result })).await;
                }
                None => {
                    self.unanswered.insert(key, request);
                }
            }
        }
        Ok(self)
    }

    /// Waits for what the call produces next. Requests the backend sends
    /// at once come out together, as one `NeedsInput`.
    pub async fn next(&mut self) -> Step {
        if let Some(notification) = self.held_back.pop_front() {
            return Step::Notification(notification);
        }
        if !self.unanswered.is_empty() {
            let asked_again = std::mem::take(&mut self.unanswered);
            return self.gather(asked_again).await;
        }
        loop {
            tokio::select! {
                biased;
                Some(bytes) = self.events.recv() => {
                    match self.consider(&bytes).await {
                        Some(Considered::Notification(message)) => {
                            return Step::Notification(message);
                        }
                        Some(Considered::Request(key, request)) => {
                            return self.gather(Map::from_iter([(key, request)])).await;
                        }
                        Some(Considered::Refused(capability)) => {
                            return self.refuse_all(capability).await;
                        }
                        None => {}
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

    /// Adds to `requests` the ones the backend sends right after them,
    /// until it has been quiet a moment, and makes them one `NeedsInput`.
    async fn gather(&mut self, mut requests: Map<String, Value>) -> Step {
        let deadline = tokio::time::Instant::now() + GATHER_MAX;
        loop {
            let quiet = (tokio::time::Instant::now() + GATHER_QUIET).min(deadline);
            let Ok(Some(bytes)) = tokio::time::timeout_at(quiet, self.events.recv()).await else {
                break;
            };
            match self.consider(&bytes).await {
                Some(Considered::Notification(message)) => self.held_back.push_back(message),
                Some(Considered::Request(key, request)) => {
                    requests.insert(key, request);
                }
                Some(Considered::Refused(capability)) => {
                    self.held_back.clear();
                    return self.refuse_all(capability).await;
                }
                None => {}
            }
        }
        match self.held_back.pop_front() {
            // The notifications that came meanwhile go out first, the
            // requests on the step after them.
            Some(notification) => {
                self.unanswered = requests;
                Step::Notification(notification)
            }
            None => {
                self.awaiting.extend(requests.clone());
                Step::NeedsInput(requests)
            }
        }
    }

    /// Ends the call for the client, which lacks `capability` the backend
    /// asked for: the backend's other requests are refused too, and it
    /// finishes on its own.
    async fn refuse_all(&mut self, capability: &'static str) -> Step {
        let refusal = ErrorObject::new(
            jsonrpc::INTERNAL_ERROR,
            format!("the call ended: the client did not declare the capability \"{capability}\""),
        );
        for key in self.take_waiting() {
            self.answer_backend(&key, json!({ "error": refusal })).await;
        }
        self.finished = true;
        Step::MissingCapability(capability)
    }

    /// The keys of the backend requests the client has not answered; the
    /// call forgets them.
    fn take_waiting(&mut self) -> Vec<String> {
        let waiting = self
            .awaiting
            .keys()
            .chain(self.unanswered.keys())
            .cloned()
            .collect();
        self.awaiting.clear();
        self.unanswered.clear();
        waiting
    }

    /// What to make of a message the backend sent during the call: None
    /// when the client is not to see it.
    async fn consider(&mut self, bytes: &[u8]) -> Option<Considered> {
        let mut message = serde_json::from_slice::<Value>(bytes).ok()?;
        let method = message.get("method").and_then(Value::as_str)?.to_owned();
        let Some(Value::String(key)) = message.get("id").cloned() else {
            // Only notifications about this request ride on its answer;
            // changes go to `subscriptions/listen` streams.
            let wanted = match method.as_str() {
                "notifications/progress" => {
                    let token = self.progress_token.clone()?;
                    let params = message.get_mut("params")?.as_object_mut()?;
                    params.insert("progressToken".to_owned(), token);
                    true
                }
                "notifications/message" => LogLevel::admits(self.meta.log_level, &message),
                _ => false,
            };
            return wanted.then_some(Considered::Notification(message));
        };
        match capability_for(&method) {
            Some(capability) if self.meta.client_capabilities.contains_key(capability) => {
                let mut request = json!({ "method": method });
                if let Some(params) = message.get("params") {
                    request["params"] = params.clone();
                }
                Some(Considered::Request(key, request))
            }
            needed => {
                let refusal = ErrorObject::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("the client did not declare support for {method}"),
                );
                self.answer_backend(&key, json!({ "error": refusal })).await;
                // The backend was told no and finishes on its own; the
                // client learns what it lacks.
                needed.map(Considered::Refused)
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
        let awaiting = self.take_waiting();
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
