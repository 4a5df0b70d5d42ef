//! One MCP client per backend session: Streamable HTTP with JSON and SSE
//! answers (or a stdio child process, or the HTTP+SSE transport), the
//! session's credential, a timeout on every call, retries, and transparent
//! re-initialization when the backend forgets the session.

pub mod breaker;
pub mod connections;
mod credential;
mod deadline;
pub mod error;
pub mod http_client;
pub mod limits;
mod relay;
mod retry;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use reqwest::header::HeaderValue;
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use credential::{AccessTokens, Credential, StepUpFuture, TokenFuture};
pub use error::{BackendError, Replay};
pub use relay::{Relay, Relayed};

use crate::mcp::jsonrpc::{self, ErrorObject};
use crate::mcp::version;
use crate::registry::ServerConfig;
use crate::traces::ExchangeTrace;
use breaker::{Health, Work};
use connections::SessionConnections;
use http_client::HttpClients;
use limits::{BackendLimits, SessionShare};
use transport::{Phase, Received, Transport};

/// A backend's answer to a request: its result untouched, or its JSON-RPC error.
#[derive(Debug)]
pub enum Reply {
    Result(Box<RawValue>),
    Error(ErrorObject),
}

/// How hard to try opening a backend session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// Retry transient failures under the server's retry policy.
    WithRetries,
    /// One attempt: the backend is known to have failed recently.
    Once,
}

/// Where the backend session's `notifications/initialized` is: every other
/// message waits until the backend took it.
#[derive(Debug, Clone)]
enum Notice {
    Taken,
    Pending,
    /// It failed: the backend session was ended, and messages get why
    /// until it is initialized again.
    Failed(BackendError),
}

/// What the backend said when it was initialized.
#[derive(Debug, Clone, Default)]
pub struct Initialized {
    /// The revision the backend chose.
    pub protocol_version: String,
    pub capabilities: Value,
    pub instructions: Option<String>,
}

/// mcp-mux's MCP session with one backend, on behalf of one client MCP session.
pub struct BackendSession {
    server: Arc<ServerConfig>,
    /// Shared with every other session of the backend.
    limits: Arc<BackendLimits>,
    /// The session's share of the backend's call slots, shared with the
    /// session's other MCP sessions.
    share: Option<Arc<SessionShare>>,
    /// How messages reach the backend, with what places them in the backend
    /// session there.
    transport: Transport,
    /// Bumped by every successful initialize, so that concurrent callers that
    /// all saw the session expire re-initialize it only once.
    generation: AtomicU64,
    reinitializing: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    /// Set by `close`: the session is never opened again, one that finishes
    /// opening afterwards is ended at once, and its streams and requests in
    /// flight end.
    closed: tokio::sync::watch::Sender<bool>,
    /// Whether the backend took `notifications/initialized` since the last
    /// `initialize`.
    notice: tokio::sync::watch::Sender<Notice>,
    /// The capabilities told to the backend on `initialize`.
    client_capabilities: Value,
    /// Set when the registry no longer lists the server: the session is
    /// never opened.
    removed: bool,
}

impl std::fmt::Debug for BackendSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendSession")
            .field("server", &self.server.name)
            .finish_non_exhaustive()
    }
}

impl BackendSession {
    /// A session not yet initialized. `credential` must already satisfy the
    /// server's auth scheme (checked at create-session).
    pub fn new(
        server: Arc<ServerConfig>,
        limits: Arc<BackendLimits>,
        share: Option<Arc<SessionShare>>,
        http: HttpClients,
        credential: Option<Credential>,
        client_capabilities: Value,
    ) -> Self {
        // Without a session (a registry check), it counts as a session alone.
        let connections = share.as_ref().map_or_else(
            || Arc::new(SessionConnections::new(limits.connections.clone())),
            |share| share.connections.clone(),
        );
        let transport = Transport::for_server(&server, http, credential, connections);
        BackendSession {
            server,
            limits,
            share,
            transport,
            generation: AtomicU64::new(0),
            reinitializing: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            closed: tokio::sync::watch::Sender::new(false),
            notice: tokio::sync::watch::Sender::new(Notice::Taken),
            client_capabilities,
            removed: false,
        }
    }

    /// This session, of a server a reload removed from the registry: it
    /// fails to open, saying so.
    pub fn of_removed_server(mut self) -> Self {
        self.removed = true;
        self
    }

    pub fn server(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// The client capabilities told to the backend: those of mcp-mux's
    /// client that mcp-mux relays.
    pub fn client_capabilities(&self) -> &Value {
        &self.client_capabilities
    }

    /// Opens the backend session: `initialize`, then `notifications/initialized`.
    /// A session that cannot be completed, or that was closed meanwhile, is
    /// ended with DELETE rather than left open on the backend.
    pub async fn initialize(&self, attempts: Attempts) -> Result<Initialized, BackendError> {
        let initialized = self.initialize_noticing_later(attempts).await?;
        self.send_initialized_notice().await?;
        Ok(initialized)
    }

    /// [`BackendSession::initialize`] up to the backend's answer, so that
    /// the client's answer need not wait for `notifications/initialized`
    /// to be taken: the caller sends it next, with
    /// [`BackendSession::send_initialized_notice`], and every other message
    /// waits for it.
    pub async fn initialize_noticing_later(
        &self,
        attempts: Attempts,
    ) -> Result<Initialized, BackendError> {
        if self.removed {
            return Err(BackendError::Removed {
                server: self.server.name.clone(),
            });
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let params = json!({
            "protocolVersion": version::LATEST,
            // Only what the client itself declared: mcp-mux relays those
            // requests to it, and must not invite others.
            "capabilities": self.client_capabilities,
            "clientInfo": { "name": "mcp-mux", "version": env!("CARGO_PKG_VERSION") },
        });
        let attempts_made = AtomicU32::new(0);
        let attempt = || {
            let number = attempts_made.fetch_add(1, Ordering::Relaxed) + 1;
            self.exchange("initialize", Some(&params), Phase::Initialize, None, number)
        };
        // Not cut short by `close`: a backend session it opened meanwhile is
        // ended below, once its id is known.
        let (reply, session_id) = self
            .guarded(Work::Bookkeeping, async {
                match attempts {
                    Attempts::WithRetries => {
                        retry::with_retries(
                            &self.server.retry,
                            Replay::Safe,
                            &self.limits.retries,
                            attempt,
                        )
                        .await
                    }
                    Attempts::Once => attempt().await,
                }
            })
            .await?;
        let result = match reply {
            Reply::Result(raw) => raw,
            Reply::Error(error) => {
                return Err(BackendError::Initialize {
                    server: self.server.name.clone(),
                    error,
                });
            }
        };
        let result: Value = serde_json::from_str(result.get())
            .map_err(|_| self.protocol("initialize result is not JSON"))?;
        let protocol_version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| self.protocol("initialize result has no protocolVersion"))?;
        self.notice.send_replace(Notice::Pending);
        self.transport.enter_session(session_id, protocol_version);
        self.generation.fetch_add(1, Ordering::Release);
        // `close` ran while this was opening: it may have missed the new id.
        if self.is_closed() {
            self.notice
                .send_replace(Notice::Failed(self.closed_error()));
            self.end_current_session().await;
            return Err(self.closed_error());
        }
        Ok(Initialized {
            protocol_version: protocol_version.to_owned(),
            capabilities: result
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Sends `notifications/initialized` after
    /// [`BackendSession::initialize_noticing_later`], and lets the messages
    /// that wait for it go. A backend that does not take it has its new
    /// session ended, and those messages get why.
    pub async fn send_initialized_notice(&self) -> Result<(), BackendError> {
        let sent = self
            .send_notification("notifications/initialized", None)
            .await;
        let failed = match sent {
            Ok(()) if !self.is_closed() => None,
            // `close` ran meanwhile: it may have missed the new id.
            Ok(()) => Some(self.closed_error()),
            Err(error) => Some(error),
        };
        let Some(error) = failed else {
            self.notice.send_replace(Notice::Taken);
            return Ok(());
        };
        self.end_current_session().await;
        self.notice.send_replace(Notice::Failed(error.clone()));
        Err(error)
    }

    /// Waits until the backend took `notifications/initialized`, as every
    /// message after `initialize` must; the reason, when it did not.
    async fn after_notice(&self) -> Result<(), BackendError> {
        if matches!(*self.notice.borrow(), Notice::Taken) {
            return Ok(());
        }
        let mut notice = self.notice.subscribe();
        let settled = notice
            .wait_for(|notice| !matches!(notice, Notice::Pending))
            .await
            .map(|notice| notice.clone());
        match settled {
            Ok(Notice::Taken) => Ok(()),
            Ok(Notice::Failed(error)) => Err(error),
            // The sender lives as long as `self`.
            Ok(Notice::Pending) | Err(_) => Err(self.closed_error()),
        }
    }

    /// Sends a request and waits for its answer. Transient failures are
    /// retried as `replay` allows; an expired backend session is
    /// re-initialized once and the request replayed (the backend refused it
    /// unseen, so this cannot run anything twice).
    pub async fn request(
        &self,
        method: &str,
        params: Option<&Value>,
        replay: Replay,
    ) -> Result<Reply, BackendError> {
        self.request_relaying(method, params, replay, None).await
    }

    /// [`BackendSession::request`], with the notifications and requests the
    /// backend sends before its response handed to `relay`. Ends at once
    /// when the backend session is closed.
    pub async fn request_relaying(
        &self,
        method: &str,
        params: Option<&Value>,
        replay: Replay,
        relay: Option<&Relay>,
    ) -> Result<Reply, BackendError> {
        let mut closed = self.closed.subscribe();
        tokio::select! {
            outcome = self.request_until_answered(method, params, replay, relay) => outcome,
            _ = closed.wait_for(|closed| *closed) => Err(self.closed_error()),
        }
    }

    async fn request_until_answered(
        &self,
        method: &str,
        params: Option<&Value>,
        replay: Replay,
        relay: Option<&Relay>,
    ) -> Result<Reply, BackendError> {
        let mut reinitialized = false;
        let attempts_made = AtomicU32::new(0);
        loop {
            self.after_notice().await?;
            let generation = self.generation.load(Ordering::Acquire);
            let outcome = self
                .guarded(
                    Work::of(method),
                    retry::with_retries(&self.server.retry, replay, &self.limits.retries, || {
                        let number = attempts_made.fetch_add(1, Ordering::Relaxed) + 1;
                        self.exchange(method, params, Phase::InSession, relay, number)
                    }),
                )
                .await;
            match outcome {
                Ok((reply, _)) => return Ok(reply),
                Err(BackendError::SessionExpired { .. }) if !reinitialized => {
                    reinitialized = true;
                    self.reinitialize(generation).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends a notification; the backend answers 202 with no body.
    pub async fn notify(&self, method: &str, params: Option<&Value>) -> Result<(), BackendError> {
        self.after_notice().await?;
        self.send_notification(method, params).await
    }

    async fn send_notification(
        &self,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), BackendError> {
        let body = jsonrpc::request(None, method, params);
        retry::with_retries(
            &self.server.retry,
            Replay::Safe,
            &self.limits.retries,
            || async {
                self.transport
                    .send(body.clone(), None, Phase::InSession, None)
                    .await
                    .map(|_| ())
            },
        )
        .await
    }

    /// Ends the backend session with DELETE, as the transport asks clients to,
    /// and for good: it is never re-opened. Best effort: a backend that is
    /// gone has nothing to clean up.
    pub async fn close(&self) {
        self.closed.send_replace(true);
        self.end_current_session().await;
    }

    /// Sends the client's answer to a request the backend made on a
    /// response stream; `outcome` is its `result` or `error` member.
    pub async fn respond(
        &self,
        id: Value,
        outcome: serde_json::Map<String, Value>,
    ) -> Result<(), BackendError> {
        self.after_notice().await?;
        let mut message = outcome;
        message.insert("jsonrpc".into(), Value::from("2.0"));
        message.insert("id".into(), id);
        let body = serde_json::to_vec(&message).unwrap_or_default();
        self.transport
            .send(body, None, Phase::InSession, None)
            .await
            .map(|_| ())
    }

    /// Listens on the backend's own stream until the session is closed (the
    /// stream ends with it) or the backend turns out to have none;
    /// reconnects with a growing pause.
    pub async fn listen(&self, to_client: Arc<dyn Fn(Relayed) + Send + Sync>) {
        if self.after_notice().await.is_err() {
            return;
        }
        self.transport.listen(to_client, &self.closed).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn closed_error(&self) -> BackendError {
        BackendError::Closed {
            server: self.server.name.clone(),
        }
    }

    /// Ends the backend session currently held, if any; for good once the
    /// session is closed.
    async fn end_current_session(&self) {
        self.transport.end_session(self.is_closed()).await;
    }

    async fn reinitialize(&self, seen_generation: u64) -> Result<(), BackendError> {
        let _guard = self.reinitializing.lock().await;
        if self.generation.load(Ordering::Acquire) != seen_generation {
            return Ok(());
        }
        tracing::info!(server = %self.server.name, "backend session expired; re-initializing");
        self.initialize(Attempts::WithRetries).await.map(|_| ())
    }

    /// Runs one call, all its attempts included, within the backend's
    /// shared limits: not while its circuit is open, and only with a free
    /// slot in the session's share and among the backend's calls in
    /// progress, waited for within the retry budget. The breaker learns how
    /// the call ended: retries that end in success are no failure, and a
    /// task that outlasts its timeout says nothing of the backend.
    async fn guarded<T>(
        &self,
        work: Work,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let permit = self.limits.breaker.admit()?;
        let _slot = self
            .limits
            .start_call(self.share.as_deref(), self.server.retry.max_elapsed)
            .await?;
        let outcome = call.await;
        permit.settle(Health::of(&outcome, work));
        outcome
    }

    /// One request/response exchange, attempt number `attempt` of its
    /// call, traced when the request it serves is; returns the reply and the
    /// session id the backend issued, if it issued one.
    async fn exchange(
        &self,
        method: &str,
        params: Option<&Value>,
        phase: Phase,
        relay: Option<&Relay>,
        attempt: u32,
    ) -> Result<(Reply, Option<HeaderValue>), BackendError> {
        let Some(trace) = ExchangeTrace::start(&self.server.name, method, params, attempt) else {
            return self.exchange_untraced(method, params, phase, relay).await;
        };
        let traced_params = trace.params(params);
        let params = traced_params.as_ref().or(params);
        let outcome = trace
            .within(self.exchange_untraced(method, params, phase, relay))
            .await;
        // The names the audit trail and the metrics give outcomes.
        let (name, class) = match &outcome {
            Ok((Reply::Result(_), _)) => ("ok", None),
            Ok((Reply::Error(_), _)) => ("error", Some("backend_error")),
            Err(error) => ("error", Some(error.class())),
        };
        trace.finish(name, class);
        outcome
    }

    async fn exchange_untraced(
        &self,
        method: &str,
        params: Option<&Value>,
        phase: Phase,
        relay: Option<&Relay>,
    ) -> Result<(Reply, Option<HeaderValue>), BackendError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = jsonrpc::request(Some(id), method, params);
        if let Some(relay) = relay {
            relay.sent_id.store(id, Ordering::Relaxed);
        }
        match self.transport.send(body, Some(id), phase, relay).await? {
            Received::Accepted => Err(self.protocol("answered a request with 202 and no response")),
            Received::Message {
                message,
                session_id,
            } => {
                let reply = match (message.result, message.error) {
                    (Some(result), None) => Reply::Result(result),
                    (None, Some(error)) => Reply::Error(error),
                    _ => return Err(self.protocol("response has neither a result nor an error")),
                };
                Ok((reply, session_id))
            }
        }
    }

    fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.server.name.clone(),
            reason: reason.to_owned(),
        }
    }
}
