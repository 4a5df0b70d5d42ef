//! One backend of an MCP session: its backend session, whether that is
//! open, and what the backend sends on its own; and a backend's fallback.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::to_client::{ClientStream, Signals};
use crate::backend::{Attempts, BackendError, BackendSession, Initialized, Relayed, Replay, Reply};
use crate::mcp::jsonrpc;
use crate::mcp::naming;
use crate::mux::catalogues::Catalogues;
use crate::mux::error::{CallError, Unavailable};
use crate::mux::item_kind::{Listing, NamedKind};

/// Most pages mcp-mux follows in one backend list.
const MAX_LIST_PAGES: usize = 100;

pub(super) enum SlotState {
    Opening,
    Ready(Initialized),
    Down { error: BackendError, since: Instant },
}

/// What a backend listed.
pub(super) struct Listed {
    pub items: Vec<Value>,
    /// How long the backend said its list stays valid, if it said.
    pub ttl: Option<Duration>,
}

/// One backend of an MCP session and the state of its backend session.
pub(super) struct BackendSlot {
    /// Position in the MCP session's backend list.
    pub(super) index: usize,
    pub(super) session: BackendSession,
    pub(super) prefix: String,
    pub(super) state: Mutex<SlotState>,
    pub(super) rechecking: AtomicBool,
    pub(super) closing: AtomicBool,
    /// Set when its backend session opened and its notice and own stream
    /// are still to go (they wait until the client's `initialize` is
    /// answered).
    pub(super) follow_up_later: AtomicBool,
    pub(super) signals: Arc<Signals>,
    /// The MCP session's merged lists, which a change it announces marks
    /// stale.
    pub(super) catalogues: Arc<Catalogues>,
    /// For a backend's fallback, that backend's name: its items are the
    /// backend's, so its opening changes no list, and its URIs are shown
    /// under the backend's name.
    pub(super) fallback_of: Option<String>,
    /// The answer streams of the stateless calls in progress at this
    /// backend, by a key each call's guard holds: such a client has no
    /// stream of its own, so a request the backend sends outside any call
    /// goes to the call in progress, when there is one alone.
    call_streams: Mutex<Vec<(u64, ClientStream)>>,
    next_call_stream: AtomicU64,
}

/// A call in progress at a backend whose answer stream takes the requests
/// the backend sends outside any call; dropped when the call ends there.
pub(super) struct AttendingCall {
    slot: Arc<BackendSlot>,
    key: u64,
}

impl Drop for AttendingCall {
    fn drop(&mut self) {
        self.slot
            .lock_call_streams()
            .retain(|(key, _)| *key != self.key);
    }
}

impl BackendSlot {
    /// Backend `index` of an MCP session, its backend session not yet open.
    pub(super) fn new(
        index: usize,
        session: BackendSession,
        prefix: String,
        signals: Arc<Signals>,
        catalogues: Arc<Catalogues>,
    ) -> Self {
        BackendSlot {
            index,
            session,
            prefix,
            state: Mutex::new(SlotState::Opening),
            rechecking: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            follow_up_later: AtomicBool::new(false),
            signals,
            catalogues,
            fallback_of: None,
            call_streams: Mutex::new(Vec::new()),
            next_call_stream: AtomicU64::new(0),
        }
    }

    /// Notes a stateless call in progress here, whose answer `stream` may
    /// take what the backend asks outside any call, until the guard drops.
    pub(super) fn attend(self: &Arc<Self>, stream: ClientStream) -> AttendingCall {
        let key = self.next_call_stream.fetch_add(1, Ordering::Relaxed);
        self.lock_call_streams().push((key, stream));
        AttendingCall {
            slot: self.clone(),
            key,
        }
    }

    /// The answer stream of the one stateless call in progress here, if
    /// exactly one is: a request with no call of its own can only be its.
    fn sole_call_stream(&self) -> Option<ClientStream> {
        match self.lock_call_streams().as_slice() {
            [(_, stream)] => Some(stream.clone()),
            _ => None,
        }
    }

    fn lock_call_streams(&self) -> MutexGuard<'_, Vec<(u64, ClientStream)>> {
        self.call_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn name(&self) -> &str {
        &self.session.server().name
    }

    pub(super) fn lock_state(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or re-opens) the backend session and records the outcome. A
    /// session closed meanwhile is ended by `initialize` itself.
    pub(super) async fn open(self: Arc<Self>, attempts: Attempts) {
        let outcome = self.session.initialize_noticing_later(attempts).await;
        let opened = outcome.is_ok();
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
        if opened {
            self.follow_up_later.store(true, Ordering::SeqCst);
            if self.signals.answered.load(Ordering::SeqCst) {
                self.clone().follow_up_if_pending();
                if self.fallback_of.is_none() {
                    tracing::info!(
                        server = self.name(),
                        "backend session opened late; its items are announced"
                    );
                    self.catalogues.mark_all_stale();
                    self.signals.announce_lists_changed();
                }
            }
        }
        self.rechecking.store(false, Ordering::Release);
    }

    /// Sends the opened backend session's `notifications/initialized`, then
    /// opens the backend's own stream, unless that is done or under way.
    /// Both wait until the client's `initialize` is answered: on a backend
    /// host that several of the session's backends share, they would hold
    /// up the other backends' answers to `initialize`, which the client
    /// waits for. The backend session's other messages wait for the
    /// notice. The slot's `open` and the MCP session's may both call this,
    /// and `follow_up_later` lets exactly one of them through. A backend
    /// that does not take the notice is down, for the reason it gave.
    pub(super) fn follow_up_if_pending(self: Arc<Self>) {
        if !self.follow_up_later.swap(false, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(async move {
            if let Err(error) = self.session.send_initialized_notice().await {
                if !self.session.is_closed() {
                    tracing::warn!(server = self.name(), %error, "backend session did not open");
                }
                *self.lock_state() = SlotState::Down {
                    error,
                    since: Instant::now(),
                };
                return;
            }
            let slot = self.clone();
            let to_client: Arc<dyn Fn(Relayed) + Send + Sync> =
                Arc::new(move |relayed| slot.pass_to_client(relayed, None));
            self.session.listen(to_client).await;
        });
    }

    /// Passes what the backend sends to the client: on `answer`, the SSE
    /// answer of the request it came with, or else on the client's own
    /// stream; a request sent outside any call to a stateless client, which
    /// has no stream of its own, goes on the answer of the one stateless
    /// call in progress at this backend, if one alone is. On either path a list change marks the merged list for
    /// refresh, a resource update gets the URI the client knows, the
    /// listeners hear what they asked for, and a backend request gets an id
    /// of mcp-mux's; one with nowhere to go is refused, so that the backend
    /// does not wait for nothing.
    pub(super) fn pass_to_client(
        self: &Arc<Self>,
        relayed: Relayed,
        answer: Option<&ClientStream>,
    ) {
        let sole;
        let answer = match (answer, &relayed) {
            (None, Relayed::Request { .. }) if !self.signals.has_client_stream() => {
                sole = self.sole_call_stream();
                sole.as_ref()
            }
            (answer, _) => answer,
        };
        let message = match relayed {
            Relayed::Notification(mut message) => {
                self.note_change(&mut message);
                self.signals.listeners.dispatch(&message);
                message
            }
            Relayed::Request { id, message } => {
                if answer.is_none() && !self.signals.has_client_stream() {
                    self.refuse_request(id);
                    return;
                }
                let Some(message) = self.signals.adopt_request(self.index, id, message) else {
                    return;
                };
                message
            }
        };
        match answer {
            Some(answer) => {
                if let Ok(bytes) = serde_json::to_vec(&message) {
                    let _ = answer.send(bytes);
                }
            }
            None => {
                self.signals.send_to_client_stream(&message);
            }
        }
    }

    /// Takes note of a change a backend announced, wherever it came: a list
    /// change marks the merged list for refresh, and a resource update gets
    /// the URI clients know. Returns whether the message is such a change.
    pub(super) fn note_change(&self, message: &mut Value) -> bool {
        match message.get("method").and_then(Value::as_str) {
            Some("notifications/tools/list_changed") => self.catalogues.mark_stale(NamedKind::Tool),
            Some("notifications/prompts/list_changed") => {
                self.catalogues.mark_stale(NamedKind::Prompt)
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
    pub(super) fn availability(
        self: &Arc<Self>,
        recheck_interval: Duration,
    ) -> Result<(), Unavailable> {
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
    pub(super) fn qualify_uri(&self, uri: &str) -> String {
        if self.prefix.is_empty() {
            uri.to_owned()
        } else {
            let server = self.fallback_of.as_deref().unwrap_or(self.name());
            naming::qualify_uri(server, uri)
        }
    }

    pub(super) fn declares(&self, capability: &str) -> bool {
        matches!(&*self.lock_state(), SlotState::Ready(initialized) if initialized.capabilities.get(capability).is_some())
    }

    /// Ends the backend session in the background: clients do not wait on
    /// backends to acknowledge a DELETE. One still opening is ended once it
    /// has opened (see `BackendSession::initialize`).
    pub(super) fn close_in_background(self: &Arc<Self>) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Without a runtime (the process is ending) there is no one to send it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let slot = self.clone();
            runtime.spawn(async move { slot.session.close().await });
        }
    }

    /// Every item the backend lists, following its pagination to the end,
    /// and the shortest `ttlMs` its pages gave (revision 2026-07-28).
    pub(super) async fn list(&self, listing: Listing) -> Result<Listed, CallError> {
        let mut listed = Listed {
            items: Vec::new(),
            ttl: None,
        };
        if !self.declares(listing.capability) {
            return Ok(listed);
        }
        let method = listing.method.as_str();
        let items = &mut listed.items;
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
            if let Some(ttl) = page.get("ttlMs").and_then(Value::as_u64) {
                let ttl = Duration::from_millis(ttl);
                listed.ttl = Some(listed.ttl.map_or(ttl, |shortest| shortest.min(ttl)));
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                None => return Ok(listed),
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

    pub(super) fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.name().to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// A fallback of one backend of an MCP session: a slot whose backend
/// session opens on the first request that needs it, and is kept after.
pub(super) struct Fallback {
    /// The index of the backend it stands in for.
    pub(super) of: usize,
    /// Its place in that backend's `fallback` list, from 1.
    pub(super) rank: usize,
    pub(super) slot: Arc<BackendSlot>,
    /// Set once its backend session was first opened. Afterwards the slot
    /// opens it again by itself after a failure, as a backend's does.
    opened: tokio::sync::OnceCell<()>,
}

impl Fallback {
    /// The fallbacks of an MCP session's backends, none open: their slots
    /// are numbered after the backends' and use their backend's prefix.
    pub(super) fn slots(
        sessions: Vec<(usize, BackendSession)>,
        primaries: &[(BackendSession, String)],
        signals: &Arc<Signals>,
        catalogues: &Arc<Catalogues>,
    ) -> Vec<Fallback> {
        let mut fallbacks: Vec<Fallback> = Vec::with_capacity(sessions.len());
        for (position, (of, session)) in sessions.into_iter().enumerate() {
            let prefix = primaries
                .get(of)
                .map(|(_, prefix)| prefix.clone())
                .unwrap_or_default();
            let mut slot = BackendSlot::new(
                primaries.len() + position,
                session,
                prefix,
                signals.clone(),
                catalogues.clone(),
            );
            slot.fallback_of = primaries
                .get(of)
                .map(|(primary, _)| primary.server().name.clone());
            let rank = 1 + fallbacks.iter().filter(|earlier| earlier.of == of).count();
            fallbacks.push(Fallback {
                of,
                rank,
                slot: Arc::new(slot),
                opened: tokio::sync::OnceCell::new(),
            });
        }
        fallbacks
    }

    /// Opens its backend session unless it was opened before; one attempt,
    /// since its backend already spent the call's retries.
    pub(super) async fn open_once(&self) {
        self.opened
            .get_or_init(|| self.slot.clone().open(Attempts::Once))
            .await;
    }
}

/// Closes the backend sessions of an MCP session whose `initialize` was
/// abandoned (the client went away) before the MCP session was handed out.
pub(super) struct OpeningGuard<'a> {
    pub(super) slots: &'a [Arc<BackendSlot>],
    pub(super) armed: bool,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.slots.iter().for_each(BackendSlot::close_in_background);
        }
    }
}
