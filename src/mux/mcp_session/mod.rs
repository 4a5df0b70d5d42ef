//! One client's MCP session on a session URL: its backend sessions, opened
//! all at once, and the handling of each request. Its parts: `slot`, one
//! backend and its backend session (and a backend's fallback); `to_client`,
//! the way from backends to the client outside an answer; `items`, the
//! merged lists and the use of an item; `listen`, the `subscriptions/listen`
//! streams; `failover`, the requests that go on to a fallback.

mod failover;
mod items;
mod listen;
mod search_mode;
mod slot;
mod to_client;

use crate::mux::search::SearchModel;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::audit::AuditContext;
use super::catalogues::Catalogues;
use super::curation::{SharedCuration, ToolMode};
use super::error::{CallError, Unavailable};
use super::item_kind::NamedKind;
use super::paging::Pager;
use super::payload::Payload;
use super::search::learning::Learning;
use super::serving::Serving;
use super::subscriptions::Listeners;
use crate::backend::{
    Attempts, BackendError, BackendSession, Initialized, Relay, Relayed, Replay, Reply,
};
use crate::mcp::jsonrpc;
use crate::mcp::request::{ClientNotification, ClientRequest, Method};
use crate::mcp::{stateless, version};
use crate::traces;
pub use items::ListedItem;
use slot::{BackendSlot, Fallback, OpeningGuard, SlotState};
pub use to_client::ClientStream;
use to_client::Signals;

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

/// The client side of one request: its id, and, when the client reads an
/// SSE answer, where the backend's notifications and requests go.
pub struct ClientCall<'a> {
    pub id: &'a Value,
    pub stream: Option<ClientStream>,
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

/// What an MCP session takes from the session it is open on.
pub(crate) struct SessionContext {
    /// Where its `tools/call`s are recorded.
    pub audit: Option<AuditContext>,
    /// What it shows of its backends' tools and prompts.
    pub curation: SharedCuration,
    /// The merged lists it shares with the session's other MCP sessions.
    pub catalogues: Arc<Catalogues>,
    /// Where it notes which server answered a call: a backend or a fallback.
    pub serving: Arc<Serving>,
    /// What search mode learned from the session's choices.
    pub learning: Arc<Learning>,
    /// Whether it is the MCP session a session's stateless (2026-07-28)
    /// clients share: each of their calls says what the client can do.
    pub stateless: bool,
    /// The sentence model search mode ranks with too, if the operator
    /// gave one.
    pub search_model: Option<Arc<SearchModel>>,
}

/// The backend sessions of an MCP session, none open yet.
#[derive(Default)]
pub(crate) struct BackendSessions {
    /// One per backend, with the prefix its names get.
    pub primaries: Vec<(BackendSession, String)>,
    /// One per fallback of each backend, with that backend's index, in the
    /// order of its `fallback` list.
    pub fallbacks: Vec<(usize, BackendSession)>,
}

/// A client's MCP session.
pub struct McpSession {
    pub id: String,
    pub protocol_version: &'static str,
    timings: Timings,
    backends: Vec<Arc<BackendSlot>>,
    /// The backends' fallbacks; each slot's index follows the backends'.
    fallbacks: Vec<Fallback>,
    catalogues: Arc<Catalogues>,
    pager: Pager,
    /// Client request id → the backend running it and that backend's id.
    in_flight: Mutex<HashMap<String, (usize, Arc<AtomicU64>)>>,
    signals: Arc<Signals>,
    last_seen: Mutex<Instant>,
    /// Where its `tools/call`s are recorded.
    audit: Option<AuditContext>,
    curation: SharedCuration,
    serving: Arc<Serving>,
    learning: Arc<Learning>,
    /// See [`SessionContext::stateless`].
    stateless: bool,
    /// See [`SessionContext::search_model`].
    search_model: Option<Arc<SearchModel>>,
}

impl McpSession {
    /// Opens one backend session per backend, all at once, and answers the
    /// client's `initialize`. A backend that fails leaves the others working;
    /// one slower than `timings.initialize_wait` goes on opening in the background.
    pub(super) async fn open(
        timings: Timings,
        backends: BackendSessions,
        id: String,
        requested_version: Option<&str>,
        context: SessionContext,
    ) -> (Self, Value) {
        let signals = Arc::new(Signals::default());
        let catalogues = context.catalogues.clone();
        let fallbacks = Fallback::slots(
            backends.fallbacks,
            &backends.primaries,
            &signals,
            &catalogues,
        );
        let slots: Vec<Arc<BackendSlot>> = backends
            .primaries
            .into_iter()
            .enumerate()
            .map(|(index, (session, prefix))| {
                Arc::new(BackendSlot::new(
                    index,
                    session,
                    prefix,
                    signals.clone(),
                    catalogues.clone(),
                ))
            })
            .collect();
        let mut guard = OpeningGuard {
            slots: &slots,
            armed: true,
        };
        let opening: Vec<_> = slots
            .iter()
            .map(|slot| tokio::spawn(traces::carried(slot.clone().open(Attempts::WithRetries))))
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
            slot.clone().follow_up_if_pending();
        }

        let protocol_version = version::negotiate(requested_version);
        let mcp_session = McpSession::new(
            id,
            protocol_version,
            timings,
            (slots, fallbacks),
            signals,
            context,
        );
        let result = json!({
            "protocolVersion": protocol_version,
            "capabilities": capabilities(),
            "serverInfo": stateless::server_info(),
            "instructions": mcp_session.instructions(),
        });
        (mcp_session, result)
    }

    fn new(
        id: String,
        protocol_version: &'static str,
        timings: Timings,
        (backends, fallbacks): (Vec<Arc<BackendSlot>>, Vec<Fallback>),
        signals: Arc<Signals>,
        context: SessionContext,
    ) -> Self {
        McpSession {
            id,
            protocol_version,
            timings,
            backends,
            fallbacks,
            catalogues: context.catalogues,
            pager: Pager::default(),
            in_flight: Mutex::new(HashMap::new()),
            signals,
            last_seen: Mutex::new(Instant::now()),
            audit: context.audit,
            curation: context.curation,
            serving: context.serving,
            learning: context.learning,
            stateless: context.stateless,
            search_model: context.search_model,
        }
    }

    /// The transport of each backend session open on it.
    pub fn open_backend_transports(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.backends
            .iter()
            .chain(self.fallbacks.iter().map(|fallback| &fallback.slot))
            .filter(|slot| matches!(*slot.lock_state(), SlotState::Ready(_)))
            .map(|slot| slot.session.server().endpoint.transport_name())
    }

    /// What each backend slot of `server` is doing: ready, or why not;
    /// None when it is still opening.
    pub fn backend_outcomes(&self, server: &str) -> Vec<Result<(), BackendError>> {
        // A backend that opened may still have refused its list for want
        // of authorization (more scopes, say).
        let listed = self.catalogues.latest(NamedKind::Tool);
        self.backends
            .iter()
            .filter(|slot| slot.name() == server)
            .filter_map(|slot| match &*slot.lock_state() {
                SlotState::Ready(_) => match listed.as_ref().and_then(|c| c.left_out(slot.index)) {
                    Some(error @ BackendError::AuthorizationNeeded { .. }) => {
                        Some(Err(error.clone()))
                    }
                    _ => Some(Ok(())),
                },
                SlotState::Opening => None,
                SlotState::Down { error, .. } => Some(Err(error.clone())),
            })
            .collect()
    }

    /// Opens again, in the background, the backend sessions of `server`
    /// that are down (its user has just authorized it): once open, clients
    /// hear that its items were added.
    pub fn reopen(&self, server: &str) {
        for slot in self.backends.iter().filter(|slot| slot.name() == server) {
            let down = matches!(*slot.lock_state(), SlotState::Down { .. });
            if down && !slot.session.is_closed() && !slot.rechecking.swap(true, Ordering::AcqRel) {
                tokio::spawn(slot.clone().open(Attempts::Once));
            }
        }
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

    /// Why the MCP session would serve nothing, when every backend failed
    /// to open for want of a connection of mcp-mux's own (or of the
    /// session's share of them): the first backend's failure.
    pub fn found_no_connection(&self) -> Option<BackendError> {
        let mut found = None;
        for slot in &self.backends {
            match &*slot.lock_state() {
                SlotState::Down {
                    error:
                        error @ (BackendError::NoConnection { .. }
                        | BackendError::SessionConnections { .. }),
                    ..
                } => {
                    found.get_or_insert_with(|| error.clone());
                }
                _ => return None,
            }
        }
        found
    }

    /// How long a client may consider a merged list fresh: not at all while
    /// a backend is missing from it, since it may come back any moment. A
    /// backend whose fallback is open is not missing: the fallback listed
    /// the same items.
    pub fn list_ttl(&self) -> Duration {
        let ready = |slot: &BackendSlot| matches!(&*slot.lock_state(), SlotState::Ready(_));
        let all_ready = self.backends.iter().all(|slot| {
            ready(slot)
                || self
                    .fallbacks
                    .iter()
                    .any(|fallback| fallback.of == slot.index && ready(&fallback.slot))
        });
        if all_ready {
            self.timings.list_ttl
        } else {
            Duration::ZERO
        }
    }

    /// A call whose backend waits for its user's authorization: a client
    /// that takes URL elicitations (revision 2025-11-25) is asked to open
    /// the link; any other gets a tool error holding it, which the model
    /// can show its user.
    fn ask_for_authorization(
        &self,
        outcome: Result<Payload, CallError>,
    ) -> Result<Payload, CallError> {
        let (Err(CallError::Backend(BackendError::AuthorizationNeeded { server, url, .. }))
        | Err(CallError::BackendUnavailable(Unavailable::Failed(
            BackendError::AuthorizationNeeded { server, url, .. },
        )))) = &outcome
        else {
            return outcome;
        };
        let message = format!(
            "\"{server}\" needs authorization: open {url} to connect it to this session, then call again"
        );
        let takes_url_elicitation = self.backends.first().is_some_and(|slot| {
            slot.session
                .client_capabilities()
                .pointer("/elicitation/url")
                .is_some()
        });
        // A stateless call asks its own client, if it can (`StatelessCall`).
        // Revisions are dates: they compare as strings.
        let has_url_elicitation = self.protocol_version >= version::URL_ELICITATION;
        if self.stateless || (has_url_elicitation && takes_url_elicitation) {
            return Err(CallError::UrlElicitationRequired {
                server: server.clone(),
                url: url.clone(),
                message,
            });
        }
        Ok(Payload::tool_error(&message))
    }

    /// The `subscriptions/listen` streams open on this MCP session.
    pub fn listeners(&self) -> &Listeners {
        &self.signals.listeners
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
            ClientRequest::List {
                method: Method::ToolsList,
                ..
            } if self.curation.rules.tool_mode == ToolMode::Search => Ok(self.search_mode_list()),
            ClientRequest::List { method, cursor } => Box::pin(self.list(method, cursor)).await,
            ClientRequest::CallTool(tool) if self.curation.rules.tool_mode == ToolMode::Search => {
                Box::pin(self.search_mode_call(tool, call)).await
            }
            ClientRequest::CallTool(tool) => {
                let outcome = Box::pin(self.use_item(NamedKind::Tool, tool, call)).await;
                self.ask_for_authorization(outcome)
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
                let mut cancellation = json!({ "requestId": sent_id.load(Ordering::Relaxed) });
                if let Some(reason) = reason {
                    cancellation["reason"] = reason;
                }
                let Some(slot) = self.slot(index) else {
                    return;
                };
                if let Err(error) = slot
                    .session
                    .notify(ClientNotification::CANCELLED, Some(&cancellation))
                    .await
                {
                    tracing::debug!(server = slot.name(), %error, "could not pass a cancellation on");
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
        let Some(slot) = self.slot(index) else {
            return;
        };
        if let Err(error) = slot.session.respond(backend_id, response.outcome).await {
            tracing::warn!(server = slot.name(), %error, "could not pass the client's answer to the backend");
        }
    }

    /// Sends a request to backend `index`, or to a fallback of it when the
    /// backend cannot take it (see [`McpSession::send_failing_over`]).
    async fn send_to_backend(
        &self,
        index: usize,
        method: &str,
        params: serde_json::Map<String, Value>,
        replay: Replay,
        call: &ClientCall<'_>,
    ) -> Result<Reply, CallError> {
        self.send_failing_over(index, method, params, replay, call)
            .await
            .1
    }

    /// Sends a request to one backend session, relaying what the backend
    /// sends meanwhile to the client's stream, and keeping the request
    /// cancellable.
    async fn send_to_slot(
        &self,
        slot: &Arc<BackendSlot>,
        method: &str,
        params: &Value,
        replay: Replay,
        call: &ClientCall<'_>,
    ) -> Result<Reply, CallError> {
        slot.availability(self.timings.recheck_interval)?;
        let sent_id = Arc::new(AtomicU64::new(0));
        let relay = call.stream.clone().map(|client| Relay {
            to_client: {
                let slot = slot.clone();
                Arc::new(move |relayed: Relayed| slot.pass_to_client(relayed, Some(&client)))
            },
            sent_id: sent_id.clone(),
        });
        let _attending = match &call.stream {
            Some(stream) if self.stateless => Some(slot.attend(stream.clone())),
            _ => None,
        };
        let key = call.id.to_string();
        self.lock_in_flight()
            .insert(key.clone(), (slot.index, sent_id));
        let outcome = slot
            .session
            .request_relaying(method, Some(params), replay, relay.as_ref())
            .await;
        self.lock_in_flight().remove(&key);
        Ok(outcome?)
    }

    /// The backend session at `index`: a backend's, or past those, a
    /// fallback's.
    fn slot(&self, index: usize) -> Option<&Arc<BackendSlot>> {
        match index.checked_sub(self.backends.len()) {
            None => self.backends.get(index),
            Some(fallback) => self.fallbacks.get(fallback).map(|fallback| &fallback.slot),
        }
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

    /// Ends the client's streams at once, and every backend session with
    /// DELETE in the background.
    pub fn close(&self) {
        self.signals.end_streams();
        self.backends
            .iter()
            .chain(self.fallbacks.iter().map(|fallback| &fallback.slot))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::backend::connections::ConnectionBudget;
    use crate::backend::limits::BackendLimits;
    use crate::registry::Registry;

    /// An MCP session over backends that never opened a connection: each
    /// `(name, prefix, capabilities)` is ready as if its `initialize` had
    /// declared them, and its client stream is `client`, if any.
    fn session_over(backends: &[(&str, &str, Value)], client: Option<ClientStream>) -> McpSession {
        let yaml = backends
            .iter()
            .map(|(name, _, _)| format!("  {name}:\n    url: http://127.0.0.1:9/mcp\n"))
            .collect::<String>();
        let registry = Registry::parse(
            &format!("servers:\n{yaml}"),
            std::path::Path::new("registry.yaml"),
            |_| None,
        )
        .expect("valid registry");
        let connections = Arc::new(ConnectionBudget::new(8));
        let signals = Arc::new(Signals::default());
        *signals.client.lock().expect("unpoisoned") = client;
        let catalogues = Arc::new(Catalogues::default());
        let slots = backends
            .iter()
            .enumerate()
            .map(|(index, (name, prefix, capabilities))| {
                let server = registry.server(name).expect("listed").clone();
                let session = BackendSession::new(
                    server.clone(),
                    Arc::new(BackendLimits::new(&server, connections.clone())),
                    None,
                    reqwest::Client::new().into(),
                    None,
                    json!({}),
                );
                let slot = BackendSlot::new(
                    index,
                    session,
                    (*prefix).to_owned(),
                    signals.clone(),
                    catalogues.clone(),
                );
                *slot.lock_state() = SlotState::Ready(Initialized {
                    protocol_version: version::LATEST.to_owned(),
                    capabilities: capabilities.clone(),
                    instructions: None,
                });
                Arc::new(slot)
            })
            .collect();
        McpSession::new(
            "0123456789abcdef0123456789abcdef".into(),
            version::LATEST,
            Timings::default(),
            (slots, Vec::new()),
            signals,
            SessionContext {
                audit: None,
                curation: SharedCuration::default(),
                catalogues,
                serving: Arc::new(Serving::new(backends.len())),
                learning: Arc::default(),
                stateless: false,
                search_model: None,
            },
        )
    }

    fn received(client: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<Value> {
        std::iter::from_fn(|| client.try_recv().ok())
            .map(|bytes| serde_json::from_slice(&bytes).expect("JSON"))
            .collect()
    }

    #[test]
    fn a_uri_routes_by_its_server_part_or_else_to_the_only_backend_with_resources() {
        let resources = json!({ "resources": {} });
        let mcp = session_over(
            &[("a", "a__", resources.clone()), ("b", "b__", json!({}))],
            None,
        );
        assert_eq!(
            mcp.resolve_uri("b+file:///x").ok(),
            Some((1, "file:///x".to_owned()))
        );
        // Linked from a tool result, without a server part: only `a`
        // offers resources.
        assert_eq!(
            mcp.resolve_uri("file:///y").ok(),
            Some((0, "file:///y".to_owned()))
        );
        let both = session_over(
            &[("a", "a__", resources.clone()), ("b", "b__", resources)],
            None,
        );
        assert!(matches!(
            both.resolve_uri("file:///y"),
            Err(CallError::UnknownResource { uri }) if uri == "file:///y"
        ));
        // One backend, not prefixed: URIs pass through as they are.
        let single = session_over(&[("a", "", json!({}))], None);
        assert_eq!(
            single.resolve_uri("a+file:///z").ok(),
            Some((0, "a+file:///z".to_owned()))
        );
    }

    #[tokio::test]
    async fn backend_requests_reach_the_client_under_ids_of_the_gateway_that_remember_their_backend()
     {
        let (sender, mut client) = tokio::sync::mpsc::unbounded_channel();
        let mcp = session_over(
            &[("a", "a__", json!({})), ("b", "b__", json!({}))],
            Some(sender),
        );
        let ask = |id: u64| json!({ "jsonrpc": "2.0", "id": id, "method": "roots/list" });
        for slot in &mcp.backends {
            slot.pass_to_client(
                Relayed::Request {
                    id: json!(7),
                    message: ask(7),
                },
                None,
            );
        }
        let sent = received(&mut client);
        let ids: Vec<&Value> = sent.iter().map(|message| &message["id"]).collect();
        // Both backends used id 7; the client sees two different ids.
        assert_eq!(ids, [&json!("mux-1"), &json!("mux-2")]);
        let pending = mcp.signals.server_requests.lock().expect("unpoisoned");
        assert_eq!(pending.get("mux-1"), Some(&(0, json!(7))));
        assert_eq!(pending.get("mux-2"), Some(&(1, json!(7))));
    }

    #[tokio::test]
    async fn a_backend_request_with_no_client_stream_to_take_it_is_not_kept() {
        let mcp = session_over(&[("a", "a__", json!({}))], None);
        mcp.backends[0].pass_to_client(
            Relayed::Request {
                id: json!(1),
                message: json!({ "jsonrpc": "2.0", "id": 1, "method": "roots/list" }),
            },
            None,
        );
        assert!(
            mcp.signals
                .server_requests
                .lock()
                .expect("unpoisoned")
                .is_empty()
        );
    }

    #[test]
    fn list_changes_mark_only_their_own_list_stale_and_updates_get_the_uri_the_client_knows() {
        let (sender, mut client) = tokio::sync::mpsc::unbounded_channel();
        let mcp = session_over(&[("a", "a__", json!({}))], Some(sender));
        let slot = &mcp.backends[0];
        let notify = |method: &str, params: Value| {
            Relayed::Notification(json!({ "jsonrpc": "2.0", "method": method, "params": params }))
        };
        slot.pass_to_client(
            notify("notifications/prompts/list_changed", json!({})),
            None,
        );
        assert_eq!(mcp.catalogues.changes(NamedKind::Prompt), 1);
        assert_eq!(mcp.catalogues.changes(NamedKind::Tool), 0);
        slot.pass_to_client(notify("notifications/tools/list_changed", json!({})), None);
        assert_eq!(mcp.catalogues.changes(NamedKind::Tool), 1);
        let (answer, mut answered) = tokio::sync::mpsc::unbounded_channel();
        slot.pass_to_client(
            notify(
                "notifications/resources/updated",
                json!({ "uri": "file:///x" }),
            ),
            Some(&answer),
        );
        // On the call's answer stream, not the client's own.
        assert_eq!(
            received(&mut answered)[0]["params"]["uri"],
            json!("a+file:///x")
        );
        let own = received(&mut client);
        assert_eq!(own.len(), 2, "the two list changes: {own:?}");
    }
}
