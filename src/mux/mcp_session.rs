//! One client's MCP session on a session URL: its backend sessions, opened
//! all at once, its merged catalogue, and the handling of each request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::audit::{AuditContext, AuditedCall};
use super::catalogue::{
    BackendItems, Catalogue, Listing, NamedKind, RESOURCE_TEMPLATES, RESOURCES, Route,
};
use super::error::{CallError, Unavailable};
use super::paging::Pager;
use super::subscriptions::Listeners;
use crate::backend::{
    Attempts, BackendError, BackendSession, Initialized, Relay, Relayed, Replay, Reply,
};
use crate::mcp::jsonrpc;
use crate::mcp::request::{
    ByName, ByUri, ClientNotification, ClientRequest, Completion, CompletionTarget, Method,
};
use crate::mcp::{modern, naming, version};

/// How long the runtime waits on backends before answering without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Longest `initialize` waits for backends; one still opening after
    /// that finishes in the background and its tools appear in a later list.
    pub initialize_wait: Duration,
    /// How long a backend that failed stays failed before a client request
    /// triggers another attempt (in the background), so that calls naming
    /// it fail at once instead of waiting on it.
    pub recheck_interval: Duration,
    /// A call naming an unknown tool lists the backends again only if the
    /// list is older than this, so that typos do not fan out to every backend.
    pub miss_refresh_interval: Duration,
    /// How long a stateless (2026-07-28) client may cache a merged list
    /// (`ttlMs`); 0 while a backend is still missing from it.
    pub list_ttl: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            initialize_wait: Duration::from_secs(10),
            recheck_interval: Duration::from_secs(5),
            miss_refresh_interval: Duration::from_secs(2),
            list_ttl: Duration::from_secs(60),
        }
    }
}

/// Most pages mcp-mux follows in one backend list.
const MAX_LIST_PAGES: usize = 100;

/// Where a client's stream answer goes: serialized JSON-RPC messages.
pub type ClientStream = tokio::sync::mpsc::UnboundedSender<Vec<u8>>;

/// Backend requests awaiting a client's answer, per MCP session.
const MAX_PENDING_SERVER_REQUESTS: usize = 256;

/// The client side of one request: its id, and, when the client reads an
/// SSE answer, where the backend's notifications and requests go.
pub struct ClientCall<'a> {
    pub id: &'a Value,
    pub stream: Option<ClientStream>,
}

/// A backend's answer, passed to the client as it came.
fn passed_on(reply: Reply) -> Result<Payload, CallError> {
    match reply {
        Reply::Result(raw) => Ok(Payload::Raw(raw)),
        Reply::Error(error) => Err(CallError::Relayed { error }),
    }
}

/// A successful answer: either a value mcp-mux built or a backend's result,
/// passed on as the bytes it sent.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Json(Value),
    Raw(Box<RawValue>),
}

enum SlotState {
    Opening,
    Ready(Initialized),
    Down { error: BackendError, since: Instant },
}

/// One backend of an MCP session and the state of its backend session.
struct BackendSlot {
    /// Position in the MCP session's backend list.
    index: usize,
    session: BackendSession,
    prefix: String,
    state: Mutex<SlotState>,
    rechecking: AtomicBool,
    closing: AtomicBool,
    /// Set when its backend session opened and its own stream is still to
    /// open (which waits until the client's `initialize` is answered).
    listen_later: AtomicBool,
    signals: Arc<Signals>,
}

/// What an MCP session's backends tell its client outside any request, and
/// what they mark for refresh.
#[derive(Default)]
struct Signals {
    /// The client's own stream (its GET), while it has one open.
    client: Mutex<Option<ClientStream>>,
    /// Set once `initialize` is answered: a backend that opens later is
    /// announced with list_changed notifications.
    answered: AtomicBool,
    stale_tools: AtomicBool,
    stale_prompts: AtomicBool,
    /// Id given to the client → the backend that asked and its own id.
    server_requests: Mutex<HashMap<String, (usize, Value)>>,
    next_server_request: AtomicU64,
    /// The `subscriptions/listen` streams of stateless clients.
    listeners: Listeners,
}

impl Signals {
    /// Sends a message on the client's own stream and to the listeners that
    /// asked for it; false when the client has no stream of its own.
    fn send(&self, message: &Value) -> bool {
        self.listeners.dispatch(message);
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = client.as_ref() else {
            return false;
        };
        let Ok(bytes) = serde_json::to_vec(message) else {
            return true;
        };
        if sender.send(bytes).is_err() {
            *client = None;
            return false;
        }
        true
    }

    /// Gives a backend's request to the client under an id of mcp-mux's, so
    /// that two backends' request ids never collide; None when too many
    /// already await an answer.
    fn adopt_request(&self, index: usize, id: Value, mut message: Value) -> Option<Value> {
        let mut pending = self
            .server_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING_SERVER_REQUESTS {
            tracing::warn!("too many backend requests await the client; one is dropped");
            return None;
        }
        let ours = format!(
            "mux-{}",
            self.next_server_request.fetch_add(1, Ordering::Relaxed) + 1
        );
        pending.insert(ours.clone(), (index, id));
        message["id"] = Value::String(ours);
        Some(message)
    }

    /// The lists changed: the next use refreshes them, and the client hears.
    fn lists_changed(&self) {
        self.stale_tools.store(true, Ordering::Release);
        self.stale_prompts.store(true, Ordering::Release);
        for list in ["tools", "prompts", "resources"] {
            self.send(&json!({ "jsonrpc": "2.0", "method": format!("notifications/{list}/list_changed") }));
        }
    }
}

impl BackendSlot {
    fn name(&self) -> &str {
        &self.session.server().name
    }

    fn lock_state(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or re-opens) the backend session and records the outcome. A
    /// session closed meanwhile is ended by `initialize` itself.
    async fn open(self: Arc<Self>, attempts: Attempts) {
        let outcome = self.session.initialize(attempts).await;
        if outcome.is_ok() {
            // The backend's own stream opens once the client's `initialize`
            // is answered: streams opening meanwhile would hold up the
            // other backends' `initialize` on a shared backend host.
            self.listen_later.store(true, Ordering::SeqCst);
            if self.signals.answered.load(Ordering::SeqCst) {
                self.clone().listen_if_pending();
                tracing::info!(
                    server = self.name(),
                    "backend session opened late; its items are announced"
                );
                self.signals.lists_changed();
            }
        }
        *self.lock_state() = match outcome {
            Ok(initialized) => SlotState::Ready(initialized),
            Err(error) => {
                if !self.session.is_closed() {
                    tracing::warn!(server = self.name(), %error, "backend session did not open");
                }
                SlotState::Down {
                    error,
                    since: Instant::now(),
                }
            }
        };
        self.rechecking.store(false, Ordering::Release);
    }

    /// Opens the backend's own stream, unless it is open or opening. The
    /// slot's `open` and the MCP session's may both call this, and
    /// `listen_later` lets exactly one of them through.
    fn listen_if_pending(self: Arc<Self>) {
        if self.listen_later.swap(false, Ordering::SeqCst) {
            tokio::spawn(async move {
                let forward = self.clone().backend_stream_forwarder();
                self.session.listen(forward).await;
            });
        }
    }

    /// Handles what the backend sends on its own stream: list changes mark
    /// the merged list for refresh and reach the client, resource updates
    /// reach it under the URI it knows, requests get an id of mcp-mux's.
    fn backend_stream_forwarder(self: Arc<Self>) -> Arc<dyn Fn(Relayed) + Send + Sync> {
        Arc::new(move |relayed| match relayed {
            Relayed::Notification(mut message) => {
                self.note_change(&mut message);
                self.signals.send(&message);
            }
            Relayed::Request { id, message } => {
                let has_stream = self
                    .signals
                    .client
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some();
                if !has_stream {
                    self.refuse_request(id);
                } else if let Some(message) = self.signals.adopt_request(self.index, id, message) {
                    self.signals.send(&message);
                }
            }
        })
    }

    /// Takes note of a change a backend announced, wherever it came: a list
    /// change marks the merged list for refresh, and a resource update gets
    /// the URI clients know. Returns whether the message is such a change.
    fn note_change(&self, message: &mut Value) -> bool {
        match message.get("method").and_then(Value::as_str) {
            Some("notifications/tools/list_changed") => {
                self.signals.stale_tools.store(true, Ordering::Release)
            }
            Some("notifications/prompts/list_changed") => {
                self.signals.stale_prompts.store(true, Ordering::Release)
            }
            Some("notifications/resources/list_changed") => {}
            Some("notifications/resources/updated") => {
                if let Some(Value::String(uri)) = message.pointer_mut("/params/uri") {
                    *uri = self.qualify_uri(uri);
                }
            }
            _ => return false,
        }
        true
    }

    /// Answers a request the backend sent outside any call when no client
    /// stream can take it, so that the backend does not wait for nothing.
    fn refuse_request(self: &Arc<Self>, id: Value) {
        let slot = self.clone();
        tokio::spawn(async move {
            let error = jsonrpc::ErrorObject::new(
                jsonrpc::METHOD_NOT_FOUND,
                "the client has no stream open to take requests outside a call",
            );
            let mut outcome = serde_json::Map::new();
            outcome.insert("error".into(), json!(error));
            if let Err(error) = slot.session.respond(id, outcome).await {
                tracing::debug!(server = slot.name(), %error, "could not refuse a backend request");
            }
        });
    }

    /// Ok when the backend session can take requests. A backend that failed
    /// more than `recheck_interval` ago is tried again in the background;
    /// this call does not wait for it.
    fn availability(self: &Arc<Self>, recheck_interval: Duration) -> Result<(), Unavailable> {
        let state = self.lock_state();
        match &*state {
            SlotState::Ready(_) => Ok(()),
            SlotState::Opening => Err(Unavailable::Opening {
                server: self.name().to_owned(),
            }),
            SlotState::Down { error, since } => {
                if since.elapsed() >= recheck_interval
                    && !self.session.is_closed()
                    && !self.rechecking.swap(true, Ordering::AcqRel)
                {
                    tokio::spawn(self.clone().open(Attempts::Once));
                }
                Err(Unavailable::Failed(error.clone()))
            }
        }
    }

    /// The URI clients see for one of this backend's URIs: with the server
    /// in front, unless the session does not prefix this backend.
    fn qualify_uri(&self, uri: &str) -> String {
        if self.prefix.is_empty() {
            uri.to_owned()
        } else {
            naming::qualify_uri(self.name(), uri)
        }
    }

    fn declares(&self, capability: &str) -> bool {
        matches!(&*self.lock_state(), SlotState::Ready(initialized) if initialized.capabilities.get(capability).is_some())
    }

    /// Ends the backend session in the background: clients do not wait on
    /// backends to acknowledge a DELETE. One still opening is ended once it
    /// has opened (see `BackendSession::initialize`).
    fn close_in_background(self: &Arc<Self>) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Without a runtime (the process is ending) there is no one to send it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let slot = self.clone();
            runtime.spawn(async move { slot.session.close().await });
        }
    }

    /// Every item the backend lists, following its pagination to the end.
    async fn list(&self, listing: Listing) -> Result<Vec<Value>, CallError> {
        if !self.declares(listing.capability) {
            return Ok(Vec::new());
        }
        let method = listing.method.as_str();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor.as_ref().map(|cursor| json!({ "cursor": cursor }));
            let mut page: Value = match self
                .session
                .request(method, params.as_ref(), Replay::Safe)
                .await?
            {
                Reply::Result(raw) => serde_json::from_str(raw.get())
                    .map_err(|_| self.protocol(&format!("{method} result is not JSON")))?,
                Reply::Error(error) => return Err(CallError::Relayed { error }),
            };
            match page.get_mut(listing.key).map(Value::take) {
                Some(Value::Array(page_items)) => items.extend(page_items),
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(self
                        .protocol(&format!("{method} result is not a list"))
                        .into());
                }
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                None => return Ok(items),
                Some(next) if seen_cursors.insert(next.to_owned()) => {
                    cursor = Some(next.to_owned())
                }
                Some(_) => {
                    return Err(self
                        .protocol(&format!("{method} pagination returned a cursor twice"))
                        .into());
                }
            }
        }
        Err(self
            .protocol(&format!("{method} has more than {MAX_LIST_PAGES} pages"))
            .into())
    }

    fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.name().to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Closes the backend sessions of an MCP session whose `initialize` was
/// abandoned (the client went away) before the MCP session was handed out.
struct OpeningGuard<'a> {
    slots: &'a [Arc<BackendSlot>],
    armed: bool,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.slots.iter().for_each(BackendSlot::close_in_background);
        }
    }
}

/// What mcp-mux offers a client, whichever backends turn out to answer.
/// Prompts are offered even when no backend has any (yet): the list is then
/// empty, and a backend that opens late can add some.
pub fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "prompts": { "listChanged": true },
        "resources": { "listChanged": true, "subscribe": true },
        "completions": {},
        "logging": {},
    })
}

/// A client's MCP session.
pub struct McpSession {
    pub id: String,
    pub protocol_version: &'static str,
    timings: Timings,
    backends: Vec<Arc<BackendSlot>>,
    tools: tokio::sync::RwLock<Option<Arc<Catalogue>>>,
    prompts: tokio::sync::RwLock<Option<Arc<Catalogue>>>,
    pager: Pager,
    /// Client request id → the backend running it and that backend's id.
    in_flight: Mutex<HashMap<String, (usize, Arc<AtomicU64>)>>,
    signals: Arc<Signals>,
    last_seen: Mutex<Instant>,
    /// Where its `tools/call`s are recorded.
    audit: Option<AuditContext>,
}

impl McpSession {
    /// Opens one backend session per backend, all at once, and answers the
    /// client's `initialize`. A backend that fails leaves the others working;
    /// one slower than `timings.initialize_wait` goes on opening in the background.
    pub(super) async fn open(
        timings: Timings,
        backends: Vec<(BackendSession, String)>,
        id: String,
        requested_version: Option<&str>,
        audit: Option<AuditContext>,
    ) -> (Self, Value) {
        let signals = Arc::new(Signals::default());
        let slots: Vec<Arc<BackendSlot>> = backends
            .into_iter()
            .enumerate()
            .map(|(index, (session, prefix))| {
                Arc::new(BackendSlot {
                    index,
                    signals: signals.clone(),
                    session,
                    prefix,
                    state: Mutex::new(SlotState::Opening),
                    rechecking: AtomicBool::new(false),
                    closing: AtomicBool::new(false),
                    listen_later: AtomicBool::new(false),
                })
            })
            .collect();
        let mut guard = OpeningGuard {
            slots: &slots,
            armed: true,
        };
        let opening: Vec<_> = slots
            .iter()
            .map(|slot| tokio::spawn(slot.clone().open(Attempts::WithRetries)))
            .collect();
        if tokio::time::timeout(timings.initialize_wait, join_all(opening))
            .await
            .is_err()
        {
            tracing::warn!(
                "a backend is still opening its session; answering initialize without it"
            );
        }
        guard.armed = false;
        signals.answered.store(true, Ordering::SeqCst);
        drop(guard);
        for slot in &slots {
            slot.clone().listen_if_pending();
        }

        let protocol_version = version::negotiate(requested_version);
        let mcp_session = McpSession {
            id,
            protocol_version,
            timings,
            backends: slots,
            tools: tokio::sync::RwLock::new(None),
            prompts: tokio::sync::RwLock::new(None),
            pager: Pager::default(),
            in_flight: Mutex::new(HashMap::new()),
            signals,
            last_seen: Mutex::new(Instant::now()),
            audit,
        };
        let result = json!({
            "protocolVersion": protocol_version,
            "capabilities": capabilities(),
            "serverInfo": modern::server_info(),
            "instructions": mcp_session.instructions(),
        });
        (mcp_session, result)
    }

    /// Tells the model which backend each tool prefix stands for.
    pub fn instructions(&self) -> String {
        let mut text = String::from(
            "Tools of several MCP servers, each tool name prefixed with its server's name:",
        );
        for slot in &self.backends {
            text.push_str(&format!("\n- {} (prefix \"{}\")", slot.name(), slot.prefix));
            if let Some(description) = &slot.session.server().description {
                text.push_str(&format!(": {description}"));
            }
            if let SlotState::Ready(Initialized {
                instructions: Some(instructions),
                ..
            }) = &*slot.lock_state()
            {
                text.push_str(&format!("\n  {}", instructions.replace('\n', "\n  ")));
            }
        }
        text
    }

    /// Marks the session as used now, for idle reaping.
    pub fn touch(&self) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    pub fn idle_since(&self) -> Instant {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether every backend failed to open for want of a connection of
    /// mcp-mux's own: the MCP session would serve nothing.
    pub fn found_no_connection(&self) -> bool {
        self.backends.iter().all(|slot| {
            matches!(
                &*slot.lock_state(),
                SlotState::Down {
                    error: BackendError::NoConnection { .. },
                    ..
                }
            )
        })
    }

    /// How long a client may consider a merged list fresh: not at all while
    /// a backend is missing from it, since it may come back any moment.
    pub fn list_ttl(&self) -> Duration {
        let all_ready = self
            .backends
            .iter()
            .all(|slot| matches!(&*slot.lock_state(), SlotState::Ready(_)));
        if all_ready {
            self.timings.list_ttl
        } else {
            Duration::ZERO
        }
    }

    /// The `subscriptions/listen` streams open on this MCP session.
    pub fn listeners(&self) -> &Listeners {
        &self.signals.listeners
    }

    /// Subscribes to (or unsubscribes from) a resource at its backend;
    /// false when the backend refused or could not be reached.
    pub(super) async fn resource_subscription(&self, method: Method, uri: &str) -> bool {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = json!(format!("listen-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let call = ClientCall {
            id: &id,
            stream: None,
        };
        let request = ClientRequest::of(method, Some(json!({ "uri": uri })));
        match async { self.handle_request(request?, &call).await }.await {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!(method = method.as_str(), %error, "resource subscription not honoured");
                false
            }
        }
    }

    /// Answers one client request. Notifications and requests a backend
    /// sends while answering go to `call.stream`, when the client has one.
    pub async fn handle_request(
        &self,
        request: ClientRequest,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        self.touch();
        // Each method's future is boxed: inline, the largest of them would
        // set the size of this one and of every future that holds it, and
        // each move of those (a spawn, actix's service layers) would copy
        // tens of kilobytes per request.
        match request {
            ClientRequest::Ping => Ok(Payload::Json(json!({}))),
            ClientRequest::List { method, cursor } => Box::pin(self.list(method, cursor)).await,
            ClientRequest::CallTool(tool) => {
                Box::pin(self.use_item(NamedKind::Tool, tool, call)).await
            }
            ClientRequest::GetPrompt(prompt) => {
                Box::pin(self.use_item(NamedKind::Prompt, prompt, call)).await
            }
            ClientRequest::ReadResource(resource) => {
                Box::pin(self.read_resource(resource, call)).await
            }
            ClientRequest::Subscribe(resource) => {
                Box::pin(self.route_by_uri(Method::ResourcesSubscribe, resource, call)).await
            }
            ClientRequest::Unsubscribe(resource) => {
                Box::pin(self.route_by_uri(Method::ResourcesUnsubscribe, resource, call)).await
            }
            ClientRequest::Complete(completion) => Box::pin(self.complete(completion, call)).await,
            ClientRequest::SetLogLevel { params } => Box::pin(self.set_log_level(params)).await,
            // The route answers these itself: `initialize` opens the MCP
            // session, the others belong to revision 2026-07-28's route.
            request @ (ClientRequest::Initialize { .. }
            | ClientRequest::ServerDiscover
            | ClientRequest::SubscriptionsListen { .. }) => Err(CallError::MethodNotFound {
                method: request.method().as_str().to_owned(),
            }),
        }
    }

    /// A client notification: cancellations reach the backend running the
    /// request, a change of roots reaches every backend; others need nothing.
    pub async fn handle_notification(&self, notification: ClientNotification) {
        self.touch();
        match notification {
            ClientNotification::Cancelled { request_id, reason } => {
                let target = self.lock_in_flight().get(&request_id.to_string()).cloned();
                let Some((index, sent_id)) = target else {
                    return;
                };
                let mut forwarded = json!({ "requestId": sent_id.load(Ordering::Relaxed) });
                if let Some(reason) = reason {
                    forwarded["reason"] = reason;
                }
                let slot = &self.backends[index];
                if let Err(error) = slot
                    .session
                    .notify(ClientNotification::CANCELLED, Some(&forwarded))
                    .await
                {
                    tracing::debug!(server = slot.name(), %error, "could not forward a cancellation");
                }
            }
            ClientNotification::RootsListChanged => {
                let ready = self
                    .backends
                    .iter()
                    .filter(|slot| slot.availability(self.timings.recheck_interval).is_ok());
                join_all(ready.map(|slot| {
                    slot.session
                        .notify(ClientNotification::ROOTS_LIST_CHANGED, None)
                }))
                .await;
            }
            ClientNotification::Other => {}
        }
    }

    /// The client's answer to a request a backend made through mcp-mux: it
    /// goes back to that backend under the backend's own request id.
    pub async fn handle_response(&self, response: jsonrpc::Response) {
        self.touch();
        let key = match &response.id {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        };
        let target = self
            .signals
            .server_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        let Some((index, backend_id)) = target else {
            tracing::debug!("a response to no pending backend request; ignored");
            return;
        };
        let slot = &self.backends[index];
        if let Err(error) = slot.session.respond(backend_id, response.outcome).await {
            tracing::warn!(server = slot.name(), %error, "could not pass the client's answer to the backend");
        }
    }

    /// Sends a request to backend `index`, relaying what it sends meanwhile
    /// to the client's stream, and keeping the request cancellable.
    async fn forward(
        &self,
        index: usize,
        method: &str,
        params: serde_json::Map<String, Value>,
        replay: Replay,
        call: &ClientCall<'_>,
    ) -> Result<Reply, CallError> {
        let slot = &self.backends[index];
        slot.availability(self.timings.recheck_interval)?;
        let sent_id = Arc::new(AtomicU64::new(0));
        let relay = call.stream.clone().map(|client| Relay {
            forward: self.relay_to(index, client),
            sent_id: sent_id.clone(),
        });
        let key = call.id.to_string();
        self.lock_in_flight().insert(key.clone(), (index, sent_id));
        let outcome = slot
            .session
            .request_relaying(method, Some(&Value::Object(params)), replay, relay.as_ref())
            .await;
        self.lock_in_flight().remove(&key);
        Ok(outcome?)
    }

    /// Passes a backend's stream messages to the client's answer stream:
    /// notifications as they are, requests under an id of mcp-mux's. A
    /// change a backend announces there also reaches the listeners.
    fn relay_to(&self, index: usize, client: ClientStream) -> Arc<dyn Fn(Relayed) + Send + Sync> {
        let slot = self.backends[index].clone();
        Arc::new(move |relayed| {
            let message = match relayed {
                Relayed::Notification(mut message) => {
                    if slot.note_change(&mut message) {
                        slot.signals.listeners.dispatch(&message);
                    }
                    Some(message)
                }
                Relayed::Request { id, message } => slot.signals.adopt_request(index, id, message),
            };
            if let Some(bytes) = message.and_then(|message| serde_json::to_vec(&message).ok()) {
                let _ = client.send(bytes);
            }
        })
    }

    /// Opens the client's own stream (its GET): what backends send outside
    /// any request goes there from now on, replacing an earlier stream.
    pub fn open_client_stream(&self) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        self.touch();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        *self
            .signals
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sender);
        receiver
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, HashMap<String, (usize, Arc<AtomicU64>)>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A page of a merged list: the first, freshly merged, or the one
    /// `cursor` names.
    async fn list(&self, method: Method, cursor: Option<String>) -> Result<Payload, CallError> {
        let listing = match method {
            Method::ToolsList => NamedKind::Tool.listing(),
            Method::PromptsList => NamedKind::Prompt.listing(),
            Method::ResourceTemplatesList => RESOURCE_TEMPLATES,
            _ => RESOURCES,
        };
        if let Some(cursor) = cursor {
            return Ok(Payload::Json(self.pager.next_page(listing, &cursor)?));
        }
        let items = match method {
            Method::ToolsList => self.refresh_catalogue(NamedKind::Tool).await.items.clone(),
            Method::PromptsList => self
                .refresh_catalogue(NamedKind::Prompt)
                .await
                .items
                .clone(),
            Method::ResourceTemplatesList => self.merged_resources(listing, "uriTemplate").await,
            _ => self.merged_resources(listing, "uri").await,
        };
        Ok(Payload::Json(self.pager.first_page(listing, items)))
    }

    /// `tools/call` or `prompts/get`: routed to the owning backend under the
    /// item's own name; the backend's result is passed back as it came.
    async fn use_item(
        &self,
        kind: NamedKind,
        item: ByName,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let ByName { name, mut params } = item;
        let audited = match (kind, &self.audit) {
            (NamedKind::Tool, Some(context)) => Some(AuditedCall::start(context, &self.id, &name)),
            _ => None,
        };
        let (backend, outcome) = match self.route_named(kind, name).await {
            Ok(route) => {
                params.insert("name".into(), Value::String(route.name));
                let outcome = self
                    .forward(
                        route.backend,
                        kind.use_method().as_str(),
                        params,
                        route.replay,
                        call,
                    )
                    .await
                    .and_then(passed_on);
                (Some(self.backends[route.backend].name()), outcome)
            }
            Err(error) => (None, Err(error)),
        };
        if let Some(audited) = audited {
            audited.finish(backend, &outcome);
        }
        outcome
    }

    /// Where a qualified name leads, listing the backends again if the name
    /// is unknown and the list is old enough.
    async fn route_named(&self, kind: NamedKind, name: String) -> Result<Route, CallError> {
        let mut catalogue = self.current_catalogue(kind).await;
        if let Some(route) = catalogue.route(&name) {
            return Ok(route.clone());
        }
        if catalogue.built_at.elapsed() >= self.timings.miss_refresh_interval {
            catalogue = self.refresh_catalogue(kind).await;
            if let Some(route) = catalogue.route(&name) {
                return Ok(route.clone());
            }
        }
        Err(self.missing(kind, name, &catalogue))
    }

    /// Why a name leads nowhere: its backend (by prefix, or the only one)
    /// is unavailable right now, or its list failed (it is busy, say), or
    /// else no backend has it.
    fn missing(&self, kind: NamedKind, name: String, catalogue: &Catalogue) -> CallError {
        for slot in &self.backends {
            if !(slot.prefix.is_empty() || name.starts_with(&slot.prefix)) {
                continue;
            }
            if let Err(unavailable) = slot.availability(self.timings.recheck_interval) {
                return unavailable.into();
            }
            if let Some(error) = catalogue.left_out(slot.index) {
                return CallError::Backend(error.clone());
            }
        }
        CallError::Unknown { kind, name }
    }

    /// `resources/list` or `resources/templates/list`, merged: every URI (or
    /// URI template) becomes `<server>+<uri>`, so equal URIs of two backends
    /// stay apart and any URI a client expands from a template routes back.
    async fn merged_resources(&self, listing: Listing, uri_key: &str) -> Arc<Vec<Value>> {
        let mut merged = Vec::new();
        for (slot, items) in self.list_everywhere(listing).await {
            merged.extend(items.into_iter().map(|mut item| {
                if let Some(Value::String(uri)) = item.get_mut(uri_key) {
                    *uri = slot.qualify_uri(uri);
                }
                item
            }));
        }
        Arc::new(merged)
    }

    /// The backend that owns a URI a client sent (its index), and the
    /// backend's own URI. A URI without a server part (one a tool result
    /// linked to, say) goes to the only backend offering resources, if there
    /// is just one.
    fn resolve_uri(&self, uri: &str) -> Result<(usize, String), CallError> {
        // A session that does not prefix its one backend passes URIs through.
        if let [only] = self.backends.as_slice()
            && only.prefix.is_empty()
        {
            return Ok((0, uri.to_owned()));
        }
        if let Some((server, original)) = naming::split_uri(uri)
            && let Some(index) = self.backends.iter().position(|slot| slot.name() == server)
        {
            return Ok((index, original.to_owned()));
        }
        let mut offering =
            (0..self.backends.len()).filter(|&index| self.backends[index].declares("resources"));
        match (offering.next(), offering.next()) {
            (Some(only), None) => Ok((only, uri.to_owned())),
            _ => Err(CallError::UnknownResource {
                uri: uri.to_owned(),
            }),
        }
    }

    /// Routes a request about a resource to the backend that owns it;
    /// returns that backend's index and its answer.
    async fn send_by_uri(
        &self,
        method: Method,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<(usize, Reply), CallError> {
        let ByUri { uri, mut params } = resource;
        let (index, original) = self.resolve_uri(&uri)?;
        params.insert("uri".into(), Value::String(original));
        let reply = self
            .forward(index, method.as_str(), params, Replay::Safe, call)
            .await?;
        Ok((index, reply))
    }

    async fn route_by_uri(
        &self,
        method: Method,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        passed_on(self.send_by_uri(method, resource, call).await?.1)
    }

    /// `resources/read`, routed by URI; the URIs in the contents are given
    /// the server part again, so they match what `resources/list` showed.
    async fn read_resource(
        &self,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let (index, reply) = self
            .send_by_uri(Method::ResourcesRead, resource, call)
            .await?;
        let slot = &self.backends[index];
        let raw = match reply {
            Reply::Result(raw) => raw,
            Reply::Error(error) => return Err(CallError::Relayed { error }),
        };
        let mut result: Value = serde_json::from_str(raw.get())
            .map_err(|_| slot.protocol("resources/read result is not JSON"))?;
        if let Some(Value::Array(contents)) = result.get_mut("contents") {
            for content in contents {
                if let Some(Value::String(uri)) = content.get_mut("uri") {
                    *uri = slot.qualify_uri(uri);
                }
            }
        }
        Ok(Payload::Json(result))
    }

    /// `completion/complete`, routed by its reference: a prompt's qualified
    /// name or a resource template's qualified URI.
    async fn complete(
        &self,
        completion: Completion,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let Completion {
            target,
            mut reference,
            mut params,
        } = completion;
        let index = match target {
            CompletionTarget::Prompt { name } => {
                let route = self.route_named(NamedKind::Prompt, name).await?;
                reference.insert("name".into(), Value::String(route.name));
                route.backend
            }
            CompletionTarget::Resource { uri } => {
                let (index, original) = self.resolve_uri(&uri)?;
                reference.insert("uri".into(), Value::String(original));
                index
            }
        };
        params.insert("ref".into(), Value::Object(reference));
        passed_on(
            self.forward(
                index,
                Method::CompletionComplete.as_str(),
                params,
                Replay::Safe,
                call,
            )
            .await?,
        )
    }

    /// `logging/setLevel`, told to every available backend that logs; the
    /// messages they send come back as `notifications/message`.
    async fn set_log_level(&self, params: Map<String, Value>) -> Result<Payload, CallError> {
        let params = Value::Object(params);
        let method = Method::LoggingSetLevel.as_str();
        let logging = self.backends.iter().filter(|slot| {
            slot.availability(self.timings.recheck_interval).is_ok() && slot.declares("logging")
        });
        let outcomes = join_all(logging.map(|slot| async {
            (
                slot.name(),
                slot.session
                    .request(method, Some(&params), Replay::Safe)
                    .await,
            )
        }))
        .await;
        for (server, outcome) in outcomes {
            match outcome {
                Ok(Reply::Result(_)) => {}
                Ok(Reply::Error(error)) => {
                    tracing::debug!(server, message = %error.message, "backend refused logging/setLevel")
                }
                Err(error) => {
                    tracing::warn!(server, %error, "logging/setLevel did not reach the backend")
                }
            }
        }
        Ok(Payload::Json(json!({})))
    }

    fn catalogue_of(&self, kind: NamedKind) -> &tokio::sync::RwLock<Option<Arc<Catalogue>>> {
        match kind {
            NamedKind::Tool => &self.tools,
            NamedKind::Prompt => &self.prompts,
        }
    }

    async fn current_catalogue(&self, kind: NamedKind) -> Arc<Catalogue> {
        let stale = match kind {
            NamedKind::Tool => &self.signals.stale_tools,
            NamedKind::Prompt => &self.signals.stale_prompts,
        };
        if !stale.swap(false, Ordering::AcqRel)
            && let Some(catalogue) = self.catalogue_of(kind).read().await.clone()
        {
            return catalogue;
        }
        self.refresh_catalogue(kind).await
    }

    /// One list from every available backend at once, each within twice its
    /// call timeout. A backend that is unavailable or fails to list is left
    /// out, and logged.
    async fn list_everywhere(&self, listing: Listing) -> Vec<(&Arc<BackendSlot>, Vec<Value>)> {
        self.list_everywhere_noting_failures(listing).await.0
    }

    /// [`Self::list_everywhere`], with the backends whose exchange failed
    /// and why.
    async fn list_everywhere_noting_failures(
        &self,
        listing: Listing,
    ) -> (
        Vec<(&Arc<BackendSlot>, Vec<Value>)>,
        Vec<(usize, BackendError)>,
    ) {
        let lists = join_all(self.backends.iter().map(|slot| async move {
            slot.availability(self.timings.recheck_interval)?;
            let deadline = slot.session.server().timeout * 2;
            match tokio::time::timeout(deadline, slot.list(listing)).await {
                Ok(listed) => listed,
                Err(_) => Err(CallError::Backend(BackendError::Timeout {
                    server: slot.name().to_owned(),
                    timeout: deadline,
                })),
            }
        }))
        .await;
        let mut listed = Vec::new();
        let mut failed = Vec::new();
        for (slot, list) in self.backends.iter().zip(lists) {
            match list {
                Ok(items) => listed.push((slot, items)),
                Err(error) => {
                    tracing::warn!(server = slot.name(), method = listing.method.as_str(), %error, "backend left out of the list");
                    if let CallError::Backend(error) = error {
                        failed.push((slot.index, error));
                    }
                }
            }
        }
        (listed, failed)
    }

    /// Lists the items of `kind` of every available backend and rebuilds
    /// the routing table.
    async fn refresh_catalogue(&self, kind: NamedKind) -> Arc<Catalogue> {
        let (listed, left_out) = self.list_everywhere_noting_failures(kind.listing()).await;
        let sources = listed
            .into_iter()
            .map(|(slot, items)| BackendItems {
                backend: slot.index,
                server: slot.name(),
                prefix: slot.prefix.clone(),
                items,
            })
            .collect();
        let mut catalogue = Catalogue::build(kind, sources);
        catalogue.left_out = left_out;
        let catalogue = Arc::new(catalogue);
        *self.catalogue_of(kind).write().await = Some(catalogue.clone());
        catalogue
    }

    /// Ends every backend session with DELETE, in the background.
    pub fn close(&self) {
        self.backends
            .iter()
            .for_each(BackendSlot::close_in_background);
    }
}

impl Drop for McpSession {
    /// A safety net: an MCP session dropped without being ended (opened on
    /// a session forgotten meanwhile, say) still ends its backend sessions.
    /// Ending twice is harmless.
    fn drop(&mut self) {
        self.close();
    }
}
