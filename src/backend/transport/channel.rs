//! The transports that carry every message over one duplex connection, a
//! stdio child process or an HTTP+SSE stream: messages go out through
//! one writer, and a reader routes each response to the call waiting on its
//! id and everything else (notifications, requests from the backend) to the
//! call it concerns or to the session's listener.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::exchange::{Phase, Received};
use crate::backend::connections::{ConnectionPermit, SessionConnections};
use crate::backend::deadline::Deadline;
use crate::backend::error::BackendError;
use crate::backend::relay::{Relay, Relayed, ToClient, answer_to_server_request};
use crate::mcp::jsonrpc::{self, IncomingMessage};
use crate::registry::ServerConfig;
use crate::traces;

/// One message for the transport to write, and where to tell whether it left.
pub(crate) struct Outgoing {
    pub bytes: Vec<u8>,
    pub sent: Option<oneshot::Sender<Result<(), BackendError>>>,
    /// The trace context of the exchange it belongs to, for a transport
    /// that writes it in a task of its own (HTTP+SSE's POST headers).
    pub trace_headers: Vec<(&'static str, String)>,
}

/// The transport's ends of a new link: the messages to write, the signal
/// to stop (sent, or dropped with the link), and the gateway connection the
/// link's process or stream holds until it ends.
pub(crate) struct Ends {
    pub outgoing: mpsc::UnboundedReceiver<Outgoing>,
    pub stop: oneshot::Receiver<()>,
    pub connection: ConnectionPermit,
}

/// How a transport of this kind opens a connection: a stdio child process
/// or an HTTP+SSE stream. A trait rather than an enum so that each channel
/// transport is a type of its own, `Channel<Stdio>` or `Channel<HttpSse>`,
/// dispatched statically.
pub(crate) trait Open {
    /// The open files one connection holds, counted against the gateway's
    /// budget of backend connections.
    const DESCRIPTORS: u32;

    /// Opens a connection for `link` and starts the tasks that carry its
    /// messages through `ends`.
    fn open(
        &self,
        link: &Arc<Link>,
        ends: Ends,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// A backend reached over one duplex connection, opened anew by each
/// `initialize`: a connection that is lost is like a backend session that
/// expired.
pub(crate) struct Channel<O> {
    server: Arc<ServerConfig>,
    opener: O,
    link: Mutex<Option<Arc<Link>>>,
    listener: Arc<Mutex<Option<ToClient>>>,
    /// Set once the backend session is closed for good.
    ended: watch::Sender<bool>,
    connections: Arc<SessionConnections>,
}

impl<O: Open> Channel<O> {
    pub(super) fn new(
        server: Arc<ServerConfig>,
        opener: O,
        connections: Arc<SessionConnections>,
    ) -> Self {
        Channel {
            server,
            opener,
            link: Mutex::new(None),
            listener: Arc::new(Mutex::new(None)),
            ended: watch::Sender::new(false),
            connections,
        }
    }

    /// One exchange within the server's timeout. `initialize` opens a new
    /// connection (ending the previous one); everything else uses the
    /// current one, and finds the backend session expired if it is lost.
    /// A request that times out is cancelled at the backend; each progress
    /// notification for it starts its timeout again, up to the maximum.
    pub(super) async fn exchange(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
        relay: Option<&Relay>,
    ) -> Result<Received, BackendError> {
        let deadline = Arc::new(Deadline::start(
            self.server.timeout,
            self.server.max_timeout,
        ));
        let mut used = None;
        let exchange =
            self.exchange_unbounded(body, expected_id, phase, relay, &deadline, &mut used);
        match deadline.run(exchange).await {
            Some(answer) => answer,
            None => {
                if let (Some(link), Some(id)) = (used, expected_id) {
                    link.cancel(id);
                }
                Err(BackendError::Timeout {
                    server: self.server.name.clone(),
                    timeout: deadline.allowed(),
                })
            }
        }
    }

    async fn exchange_unbounded(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
        relay: Option<&Relay>,
        deadline: &Arc<Deadline>,
        used: &mut Option<Arc<Link>>,
    ) -> Result<Received, BackendError> {
        let link = match phase {
            Phase::Initialize => self.connect().await?,
            Phase::InSession => self.current().ok_or_else(|| self.expired())?,
        };
        *used = Some(link.clone());
        let Some(id) = expected_id else {
            link.write(body).await?;
            return Ok(Received::Accepted);
        };
        let message = link.call(id, body, relay, deadline).await?;
        // A backend that refused initialize has no use for its connection.
        if phase == Phase::Initialize && message.error.is_some() {
            self.drop_link(&link);
        }
        Ok(Received::Message {
            message,
            session_id: None,
        })
    }

    /// Opens a new connection and makes it the current one.
    async fn connect(&self) -> Result<Arc<Link>, BackendError> {
        let connection = self
            .connections
            .for_stream(&self.server.name, O::DESCRIPTORS)?;
        let (link, ends) = Link::new(self.server.name.clone(), self.listener.clone(), connection);
        self.opener.open(&link, ends).await?;
        let previous = self.lock_link().replace(link.clone());
        if let Some(previous) = previous {
            previous.shut(self.broken("the connection was replaced by a new one"));
        }
        Ok(link)
    }

    fn current(&self) -> Option<Arc<Link>> {
        self.lock_link().clone().filter(|link| !link.is_lost())
    }

    /// Makes `listen` pass what no call takes to `to_client`, until the
    /// backend session is closed for good; connections opened later pass
    /// there too.
    pub(super) async fn listen(&self, to_client: ToClient) {
        *lock(&self.listener) = Some(to_client);
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
        *lock(&self.listener) = None;
    }

    /// Ends the current connection (a stdio child gets end of input, then is
    /// killed if it lingers); `for_good` when the backend session is closed.
    pub(super) fn disconnect(&self, for_good: bool) {
        if for_good {
            self.ended.send_replace(true);
        }
        let link = self.lock_link().take();
        if let Some(link) = link {
            link.shut(if for_good {
                BackendError::Closed {
                    server: self.server.name.clone(),
                }
            } else {
                self.broken("the connection was closed")
            });
        }
    }

    fn drop_link(&self, link: &Arc<Link>) {
        let mut current = self.lock_link();
        if current.as_ref().is_some_and(|held| Arc::ptr_eq(held, link)) {
            *current = None;
        }
        drop(current);
        link.shut(self.broken("the connection was closed"));
    }

    fn lock_link(&self) -> MutexGuard<'_, Option<Arc<Link>>> {
        lock(&self.link)
    }

    fn expired(&self) -> BackendError {
        BackendError::SessionExpired {
            server: self.server.name.clone(),
        }
    }

    fn broken(&self, cause: &str) -> BackendError {
        BackendError::Transport {
            server: self.server.name.clone(),
            cause: cause.to_owned(),
        }
    }
}

/// A call waiting for its response.
struct Pending {
    answer: oneshot::Sender<Result<IncomingMessage, BackendError>>,
    relay: Option<Relay>,
    /// The request's `_meta.progressToken`: its progress notifications push
    /// `deadline` back and go to `relay`.
    progress_token: Option<Value>,
    deadline: Arc<Deadline>,
}

#[derive(Default)]
struct LinkState {
    pending: HashMap<u64, Pending>,
    lost: bool,
}

/// One open connection: the writer's queue, the calls waiting on it, and
/// the signal that stops the transport's tasks. The transport's tasks hold
/// it weakly, so dropping the last handle stops them (and kills a child).
pub(crate) struct Link {
    server: String,
    outbox: Mutex<Option<mpsc::UnboundedSender<Outgoing>>>,
    state: Mutex<LinkState>,
    listener: Arc<Mutex<Option<ToClient>>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Link {
    fn new(
        server: String,
        listener: Arc<Mutex<Option<ToClient>>>,
        connection: ConnectionPermit,
    ) -> (Arc<Self>, Ends) {
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let link = Arc::new(Link {
            server,
            outbox: Mutex::new(Some(outbox)),
            state: Mutex::new(LinkState::default()),
            listener,
            stop: Mutex::new(Some(stop)),
        });
        let ends = Ends {
            outgoing,
            stop: stopped,
            connection,
        };
        (link, ends)
    }

    fn is_lost(&self) -> bool {
        self.lock_state().lost
    }

    /// Writes one message and waits until it has left. A message that could
    /// not be written never reached the backend: its session is as good as
    /// expired, and a new connection may carry the message again.
    async fn write(&self, bytes: Vec<u8>) -> Result<(), BackendError> {
        let (sent, written) = oneshot::channel();
        if !self.enqueue(Outgoing {
            bytes,
            sent: Some(sent),
            trace_headers: traces::current_headers(),
        }) {
            return Err(self.expired());
        }
        written.await.unwrap_or_else(|_| Err(self.expired()))
    }

    /// Queues a message without waiting; false when the writer is gone.
    fn enqueue(&self, outgoing: Outgoing) -> bool {
        let outbox = lock(&self.outbox);
        outbox
            .as_ref()
            .is_some_and(|outbox| outbox.send(outgoing).is_ok())
    }

    /// Sends request `id` and waits for its response.
    async fn call(
        &self,
        id: u64,
        body: Vec<u8>,
        relay: Option<&Relay>,
        deadline: &Arc<Deadline>,
    ) -> Result<IncomingMessage, BackendError> {
        let progress_token = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|body| body.pointer("/params/_meta/progressToken").cloned());
        let (answer, answered) = oneshot::channel();
        {
            let mut state = self.lock_state();
            if state.lost {
                return Err(self.expired());
            }
            state.pending.insert(
                id,
                Pending {
                    answer,
                    relay: relay.cloned(),
                    progress_token,
                    deadline: deadline.clone(),
                },
            );
        }
        // Forgets the call however this ends, a timeout included.
        let _pending = PendingGuard { link: self, id };
        self.write(body).await?;
        answered.await.unwrap_or_else(|_| {
            Err(BackendError::Transport {
                server: self.server.clone(),
                cause: "the connection closed before the answer".into(),
            })
        })
    }

    /// Tells the backend that mcp-mux no longer waits for request `id`.
    fn cancel(&self, id: u64) {
        let params = json!({ "requestId": id, "reason": "mcp-mux stopped waiting: timeout" });
        let bytes = jsonrpc::request(None, "notifications/cancelled", Some(&params));
        self.enqueue(Outgoing {
            bytes,
            sent: None,
            trace_headers: Vec::new(),
        });
    }

    /// Routes one message the backend sent: a response to its call, a
    /// `ping` answered here, a progress notification to the call that asked
    /// for progress, a request to the only call in flight that relays, and
    /// everything else to the listener. A request nobody can take is refused.
    pub(super) fn deliver(&self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let Ok(message) = serde_json::from_str::<IncomingMessage>(text) else {
            tracing::warn!(server = %self.server, "skipped a backend message that is not JSON-RPC");
            return;
        };
        match (message.method.clone(), message.id.clone()) {
            (None, Some(id)) => {
                let pending = id
                    .as_u64()
                    .and_then(|id| self.lock_state().pending.remove(&id));
                match pending {
                    Some(pending) => {
                        let _ = pending.answer.send(Ok(message));
                    }
                    None => {
                        tracing::debug!(server = %self.server, %id, "a response to no call in flight; ignored")
                    }
                }
            }
            (Some(method), id) => {
                let Ok(whole) = serde_json::from_str::<Value>(text) else {
                    return;
                };
                match id {
                    Some(id) => self.take_request(&method, id, whole),
                    None => self.take_notification(&method, whole),
                }
            }
            (None, None) => {
                tracing::debug!(server = %self.server, "skipped a backend message without id or method")
            }
        }
    }

    fn take_request(&self, method: &str, id: Value, message: Value) {
        if method == "ping" {
            self.enqueue(Outgoing {
                bytes: jsonrpc::result_response(&id, &json!({})),
                sent: None,
                trace_headers: Vec::new(),
            });
            return;
        }
        // Over one connection a request does not say which call it serves;
        // with a single call in flight that relays, it can only be that one.
        let relaying: Vec<_> = self
            .lock_state()
            .pending
            .values()
            .filter_map(|pending| pending.relay.as_ref().map(|relay| relay.to_client.clone()))
            .collect();
        let target = match relaying.as_slice() {
            [only] => Some(only.clone()),
            _ => lock(&self.listener).clone(),
        };
        match target {
            Some(to_client) => to_client(Relayed::Request { id, message }),
            None => {
                self.enqueue(Outgoing {
                    bytes: answer_to_server_request(&id, method),
                    sent: None,
                    trace_headers: Vec::new(),
                });
            }
        }
    }

    fn take_notification(&self, method: &str, message: Value) {
        let progress_of_a_call = (method == "notifications/progress")
            .then(|| message.pointer("/params/progressToken"))
            .flatten()
            .and_then(|token| {
                let state = self.lock_state();
                let pending = state
                    .pending
                    .values()
                    .find(|pending| pending.progress_token.as_ref() == Some(token))?;
                pending.deadline.extend();
                pending.relay.as_ref().map(|relay| relay.to_client.clone())
            });
        let target = progress_of_a_call.or_else(|| lock(&self.listener).clone());
        match target {
            Some(to_client) => to_client(Relayed::Notification(message)),
            None => {
                tracing::debug!(server = %self.server, method, "no one listens; a backend notification is dropped")
            }
        }
    }

    /// The transport lost the connection: every call waiting gets `error`,
    /// and the next request finds the backend session expired. A link that
    /// mcp-mux ended itself is not reported lost again.
    pub(super) fn lose(&self, error: BackendError) {
        if self.is_lost() {
            return;
        }
        if let BackendError::Transport { cause, .. } = &error {
            tracing::warn!(server = %self.server, %cause, "backend connection lost");
        } else {
            tracing::warn!(server = %self.server, %error, "backend connection given up");
        }
        lock(&self.outbox).take();
        self.fail_pending(error);
    }

    /// Ends the link from mcp-mux's side: the writer stops (a child reads end
    /// of input) and the transport's tasks are told to stop.
    fn shut(&self, error: BackendError) {
        lock(&self.outbox).take();
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        self.fail_pending(error);
    }

    fn fail_pending(&self, error: BackendError) {
        let pending = {
            let mut state = self.lock_state();
            state.lost = true;
            std::mem::take(&mut state.pending)
        };
        for (_, pending) in pending {
            let _ = pending.answer.send(Err(error.clone()));
        }
    }

    fn expired(&self) -> BackendError {
        BackendError::SessionExpired {
            server: self.server.clone(),
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, LinkState> {
        lock(&self.state)
    }
}

/// Removes a call from the pending ones when it ends, however it ends.
struct PendingGuard<'a> {
    link: &'a Link,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.link.lock_state().pending.remove(&self.id);
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
