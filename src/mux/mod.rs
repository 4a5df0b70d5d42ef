//! The session runtime: sessions loaded from the store and kept in memory,
//! the MCP sessions clients open on them, fan-out to backends, the merged
//! catalogue and the routing of calls.

mod audit;
pub mod catalogue;
pub mod error;
mod mcp_session;
mod paging;
mod payload;
mod stateless;
pub mod subscriptions;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

pub use crate::backend::breaker::CircuitState;
pub use crate::store::PrefixMode;
pub use error::{CallError, MuxError, Unavailable};
pub use mcp_session::{ClientCall, ClientStream, McpSession, Timings, capabilities};
pub use paging::PAGE_SIZE;
pub use payload::Payload;
pub use stateless::{ModernCall, RequestFingerprint, Step, Unpark, stateless_call_id};

use audit::{AuditContext, AuditTrail};
use stateless::Stateless;

use crate::backend::BackendSession;
use crate::backend::connections::ConnectionBudget;
use crate::backend::http_client::HttpClients;
use crate::backend::limits::{BackendLimits, SessionShare};
use crate::credentials::Credentials;
use crate::mcp::version;
use crate::registry::{Registry, ServerConfig};
use crate::store::{McpSessionRecord, STATUS_ACTIVE, SessionRecord, Store, StoredAuditRecord};

/// Bounds on what clients may hold on this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions in the store; create-session is refused beyond.
    pub max_sessions: u64,
    /// MCP sessions open at once on one session; opening another ends the
    /// least recently used (clients such as mcp-remote open sessions they
    /// never end).
    pub max_mcp_sessions_per_session: usize,
    /// How long audit records are kept.
    pub audit_retention: Duration,
    /// Backend connections (exchanges in flight and open streams) across
    /// the gateway; at most half of them streams.
    pub max_backend_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 10_000,
            max_mcp_sessions_per_session: 32,
            audit_retention: Duration::from_secs(30 * 24 * 3600),
            max_backend_connections: 1024,
        }
    }
}
/// How long a deleted session's id is remembered, so that a load from the
/// store that raced with the delete cannot bring the session back.
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

/// What a client asks for at create-session, validated against the
/// registry.
pub struct NewSession {
    /// Backend names, in the client's order.
    pub servers: Vec<String>,
    pub credentials: Credentials,
    pub prefix: PrefixMode,
    /// How long the session lives, if not until it is deleted.
    pub ttl: Option<Duration>,
    /// SHA-256 of the token its MCP endpoint will require, if any.
    pub token_digest: Option<[u8; 32]>,
    /// Requests a second its MCP endpoint takes, if limited.
    pub rate_limit: Option<u32>,
}

/// A session: its backends and credentials, and the MCP sessions open on it.
pub struct Session {
    pub id: Uuid,
    /// The chosen backends that the registry still lists, in the client's order.
    pub servers: Vec<Arc<ServerConfig>>,
    /// Chosen backends the registry no longer lists.
    pub missing_servers: Vec<String>,
    pub created_at: chrono::DateTime<Utc>,
    /// When the session ends by itself, if its creator set `ttl_seconds`.
    pub expires_at: Option<chrono::DateTime<Utc>>,
    /// SHA-256 of the token its MCP endpoint requires, if any.
    pub token_digest: Option<[u8; 32]>,
    /// Requests a second its MCP endpoint takes, if its creator set a limit.
    pub rate_limit: Option<u32>,
    pub status: String,
    pub prefix: PrefixMode,
    credentials: Credentials,
    /// Per backend: the session's share of its call slots.
    shares: HashMap<String, Arc<SessionShare>>,
    mcp_sessions: Mutex<HashMap<String, Arc<McpSession>>>,
    /// Held while an MCP session is reopened from the store, so that two
    /// requests carrying its id reopen it once.
    resuming: tokio::sync::Mutex<()>,
    /// What its stateless (2026-07-28) clients share.
    stateless: Stateless,
    last_used: Mutex<Instant>,
    /// MCP sessions being opened: the session stays in memory meanwhile.
    opening: AtomicUsize,
    /// Set once the session is deleted: no MCP session may open on it after.
    ended: AtomicBool,
}

impl Session {
    pub fn mcp_session(&self, id: &str) -> Option<Arc<McpSession>> {
        self.lock_mcp_sessions().get(id).cloned()
    }

    pub fn mcp_session_count(&self) -> usize {
        self.lock_mcp_sessions().len()
    }

    /// The calls this session has in progress on `server`.
    pub fn calls_in_progress(&self, server: &str) -> usize {
        self.shares
            .get(server)
            .map_or(0, |share| share.calls_in_progress())
    }

    pub fn is_expired(&self, now: chrono::DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Ends an MCP session and, in the background, its backend sessions;
    /// false if it was unknown.
    fn close_mcp_session(&self, id: &str) -> bool {
        let removed = self.lock_mcp_sessions().remove(id);
        removed.map(|mcp_session| mcp_session.close()).is_some()
    }

    /// Adds an opened MCP session, ending the least recently used one when
    /// the session is at its limit; returns the id of the one ended. Fails
    /// when the session was deleted meanwhile.
    fn register(
        &self,
        mcp_session: Arc<McpSession>,
        limit: usize,
    ) -> Result<Option<String>, MuxError> {
        let mut open = self.lock_mcp_sessions();
        let mut evicted_id = None;
        if self.ended.load(Ordering::Acquire) {
            return Err(MuxError::SessionEnded);
        }
        if open.len() >= limit.max(1)
            && let Some(oldest) = open
                .values()
                .min_by_key(|s| s.idle_since())
                .map(|s| s.id.clone())
            && let Some(evicted) = open.remove(&oldest)
        {
            tracing::info!("MCP session limit reached; ended the least recently used one");
            evicted.close();
            evicted_id = Some(oldest);
        }
        open.insert(mcp_session.id.clone(), mcp_session);
        Ok(evicted_id)
    }

    /// What names of `server`'s items start with in this session.
    fn prefix_for(&self, server: &ServerConfig, separator: &str) -> String {
        match self.prefix {
            PrefixMode::WhenNeeded if self.servers.len() == 1 => String::new(),
            PrefixMode::Always | PrefixMode::WhenNeeded => format!("{}{separator}", server.name),
        }
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        let all: Vec<_> = self.lock_mcp_sessions().drain().map(|(_, s)| s).collect();
        all.iter().for_each(|mcp_session| mcp_session.close());
        self.stateless.end();
    }

    /// Keeps a stateless client's call that awaits its input; returns the
    /// `requestState` that resumes it.
    pub fn park(&self, call: ModernCall) -> String {
        self.stateless.park(call)
    }

    /// The parked call a `requestState` names, taken out of the waiting
    /// list if the retry asks what the call asked.
    pub fn unpark(
        &self,
        request_state: &str,
        request: RequestFingerprint,
    ) -> Result<ModernCall, Unpark> {
        self.stateless.unpark(request_state, request)
    }

    /// Ends the shared MCP session of stateless clients if it has been idle
    /// for `idle` with no stream open and no call waiting; true if it ended.
    fn reap_stateless(&self, now: Instant, idle: Duration) -> bool {
        let Ok(mut shared) = self.stateless.mcp_session.try_lock() else {
            return false;
        };
        let reapable = shared.as_ref().is_some_and(|mcp_session| {
            now.duration_since(mcp_session.idle_since()) >= idle
                && mcp_session.listeners().is_empty()
        }) && !self.stateless.has_parked();
        if let (true, Some(mcp_session)) = (reapable, shared.take()) {
            mcp_session.close();
        }
        reapable
    }

    fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Whether the session can be dropped from memory: nothing open or
    /// opening on it, and unused for `idle`.
    fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        let last_used = *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.opening.load(Ordering::Acquire) == 0
            && self.mcp_session_count() == 0
            && self
                .stateless
                .mcp_session
                .try_lock()
                .is_ok_and(|shared| shared.is_none())
            && now.duration_since(last_used) >= idle
    }

    fn lock_mcp_sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<McpSession>>> {
        self.mcp_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts an MCP session being opened on a session for as long as it lives.
struct Opening<'a>(&'a Session);

impl<'a> Opening<'a> {
    fn start(session: &'a Session) -> Self {
        session.opening.fetch_add(1, Ordering::AcqRel);
        Opening(session)
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ids of recently deleted sessions, oldest first.
#[derive(Default)]
struct Tombstones {
    order: VecDeque<(Instant, Uuid)>,
    ids: std::collections::HashSet<Uuid>,
}

impl Tombstones {
    fn add(&mut self, id: Uuid, now: Instant) {
        while let Some((at, old)) = self.order.front().copied()
            && now.duration_since(at) >= TOMBSTONE_TTL
        {
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if self.ids.insert(id) {
            self.order.push_back((now, id));
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }
}

/// Owns every loaded session; shared by all request handlers.
pub struct Mux {
    registry: Arc<Registry>,
    store: Store,
    http: HttpClients,
    timings: Timings,
    limits: Limits,
    /// Held from counting the sessions to storing a new one.
    creating: tokio::sync::Mutex<()>,
    /// One per registry server, shared by all sessions.
    backend_limits: HashMap<String, Arc<BackendLimits>>,
    /// Every backend connection of the gateway.
    connections: Arc<ConnectionBudget>,
    audit: Arc<AuditTrail>,
    sessions: RwLock<HashMap<Uuid, Arc<Session>>>,
    deleted: Mutex<Tombstones>,
    /// Set when the gateway stops, so that open client streams end.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Mux {
    pub fn new(
        registry: Arc<Registry>,
        store: Store,
        http: HttpClients,
        timings: Timings,
        limits: Limits,
    ) -> Self {
        let connections = Arc::new(ConnectionBudget::new(limits.max_backend_connections));
        let backend_limits = registry
            .servers()
            .map(|server| {
                let limits = BackendLimits::new(server, connections.clone());
                (server.name.clone(), Arc::new(limits))
            })
            .collect();
        Mux {
            connections,
            audit: Arc::new(AuditTrail::default()),
            limits,
            creating: tokio::sync::Mutex::new(()),
            backend_limits,
            registry,
            store,
            http,
            timings,
            sessions: RwLock::new(HashMap::new()),
            deleted: Mutex::new(Tombstones::default()),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every open client stream: a stream that stays open would hold
    /// a graceful shutdown until its timeout.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once the gateway is stopping.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ok when the store answers.
    pub async fn store_answers(&self) -> Result<(), MuxError> {
        Ok(self.store.ping().await?)
    }

    /// The latest `limit` audit records of `session`, newest first, older
    /// than record `before` when given.
    pub async fn audit_records(
        &self,
        session: &Session,
        limit: u64,
        before: Option<i64>,
    ) -> Result<Vec<StoredAuditRecord>, MuxError> {
        Ok(self.store.audit_records(session.id, limit, before).await?)
    }

    /// Writes the audit trail to the store; runs for as long as the gateway.
    pub async fn write_audit_trail(&self) {
        self.audit.write_to(&self.store).await;
    }

    /// Writes the audit records still queued; for the end of a shutdown.
    pub async fn flush_audit_trail(&self) {
        self.audit.flush(&self.store).await;
    }

    fn audit_context(&self, session: &Session) -> AuditContext {
        AuditContext {
            trail: self.audit.clone(),
            session_id: session.id,
        }
    }

    /// What all sessions of `server` share: the state of its circuit
    /// breaker and its calls in progress.
    pub fn backend_health(&self, server: &str) -> Option<(CircuitState, usize)> {
        let limits = self.backend_limits.get(server)?;
        Some((limits.breaker.state(), limits.calls_in_progress()))
    }

    /// The gateway's backend connections: in use, and the most it opens.
    pub fn backend_connections(&self) -> (usize, usize) {
        (self.connections.in_use(), self.connections.max())
    }

    /// Records a new session, already validated against the registry.
    pub async fn create_session(&self, new: NewSession) -> Result<Arc<Session>, MuxError> {
        let created_at = Utc::now();
        let record = SessionRecord {
            id: Uuid::new_v4(),
            servers: new.servers,
            credentials: new.credentials,
            status: STATUS_ACTIVE.to_owned(),
            created_at,
            prefix: new.prefix,
            expires_at: new
                .ttl
                .and_then(|ttl| chrono::Duration::from_std(ttl).ok())
                .and_then(|ttl| created_at.checked_add_signed(ttl)),
            token_digest: new.token_digest,
            rate_limit: new.rate_limit,
        };
        {
            let _creating = self.creating.lock().await;
            let limit = self.limits.max_sessions;
            if self.store.count_sessions().await? >= limit {
                return Err(MuxError::AtCapacity { limit });
            }
            self.store.insert_session(&record).await?;
        }
        let session = Arc::new(self.runtime_for(record));
        self.write_sessions().insert(session.id, session.clone());
        Ok(session)
    }

    /// The session `id`, from memory or else from the store (so session URLs
    /// outlive a restart).
    pub async fn session(&self, id: Uuid) -> Result<Option<Arc<Session>>, MuxError> {
        let session = match self.cached(id) {
            Some(session) => Some(session),
            None => match self.store.find_session(id).await? {
                Some(record) => self.remember(record),
                None => None,
            },
        };
        self.unless_expired(session).await
    }

    /// `session`, unless its time is up: then it is deleted, as if its
    /// client had deleted it.
    async fn unless_expired(
        &self,
        session: Option<Arc<Session>>,
    ) -> Result<Option<Arc<Session>>, MuxError> {
        match session {
            Some(session) if session.is_expired(Utc::now()) => {
                tracing::info!("session expired; deleting it");
                self.delete_session(session.id).await?;
                Ok(None)
            }
            session => Ok(session),
        }
    }

    /// The session `id` as the store has it now. MCP sessions open through
    /// this, so that a session deleted by another node sharing the store
    /// stops working at its next `initialize`. While the store does not
    /// answer, the copy in memory serves.
    pub async fn current_session(&self, id: Uuid) -> Result<Option<Arc<Session>>, MuxError> {
        match self.store.find_session(id).await {
            Ok(Some(record)) => {
                let session = self.cached(id).or_else(|| self.remember(record));
                self.unless_expired(session).await
            }
            Ok(None) => {
                if let Some(session) = self.write_sessions().remove(&id) {
                    session.end();
                }
                Ok(None)
            }
            Err(error) => match self.cached(id) {
                Some(session) => {
                    tracing::warn!(%error, "the store does not answer; using the session in memory");
                    Ok(Some(session))
                }
                None => Err(error.into()),
            },
        }
    }

    fn cached(&self, id: Uuid) -> Option<Arc<Session>> {
        let session = self.read_sessions().get(&id).cloned()?;
        session.touch();
        Some(session)
    }

    /// Caches a session read from the store, unless it was deleted while the
    /// read was under way. Two loads of one session keep the first.
    fn remember(&self, record: SessionRecord) -> Option<Arc<Session>> {
        let id = record.id;
        let loaded = Arc::new(self.runtime_for(record));
        let mut sessions = self.write_sessions();
        if self.lock_deleted().contains(&id) {
            return None;
        }
        Some(sessions.entry(id).or_insert(loaded).clone())
    }

    /// Deletes a session, its credentials and its MCP sessions; false if unknown.
    pub async fn delete_session(&self, id: Uuid) -> Result<bool, MuxError> {
        let deleted = self.store.delete_session(id).await?;
        let cached = {
            let mut sessions = self.write_sessions();
            let cached = sessions.remove(&id);
            if deleted || cached.is_some() {
                self.lock_deleted().add(id, Instant::now());
            }
            cached
        };
        if let Some(session) = &cached {
            session.end();
        }
        Ok(deleted || cached.is_some())
    }

    /// Opens an MCP session on `session` for a client's `initialize`, and
    /// records it so that its id outlives a restart of the gateway.
    pub async fn open_mcp_session(
        &self,
        session: &Session,
        initialize_params: Option<&Value>,
    ) -> Result<(Arc<McpSession>, Value), MuxError> {
        let _opening = Opening::start(session);
        let requested = initialize_params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let client_capabilities = relayable_capabilities(initialize_params);
        let backends = self.backend_sessions(session, client_capabilities.clone());
        let now = Utc::now();
        let record = McpSessionRecord {
            id: Uuid::new_v4().simple().to_string(),
            session_id: session.id,
            protocol_version: version::negotiate(requested).to_owned(),
            client_capabilities,
            created_at: now,
            last_seen_at: now,
        };
        let audit = Some(self.audit_context(session));
        // The record is written while the backends open, not after: the
        // client waits for the slowest backend alone.
        let ((mcp_session, result), stored) = tokio::join!(
            McpSession::open(self.timings, backends, record.id.clone(), requested, audit),
            self.store.insert_mcp_session(&record)
        );
        if let Err(error) = stored {
            tracing::warn!(%error, "the MCP session is not stored; it will not outlive a restart");
        }
        let refused = if mcp_session.found_no_connection() {
            mcp_session.close();
            Err(MuxError::NoConnection {
                limit: self.connections.max(),
            })
        } else {
            let mcp_session = Arc::new(mcp_session);
            self.register(session, mcp_session.clone())
                .await
                .map(|()| (mcp_session, result))
        };
        if refused.is_err()
            && let Err(error) = self.store.delete_mcp_session(session.id, &record.id).await
        {
            tracing::warn!(%error, "could not forget a refused MCP session in the store");
        }
        refused
    }

    /// The MCP session `id` of `session`: open here, or else reopened from
    /// the store, as after a restart or on another node sharing the store.
    /// A reopened MCP session opens its backend sessions anew.
    pub async fn mcp_session(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<Option<Arc<McpSession>>, MuxError> {
        if let Some(open) = session.mcp_session(id) {
            return Ok(Some(open));
        }
        let _opening = Opening::start(session);
        let _resuming = session.resuming.lock().await;
        if let Some(open) = session.mcp_session(id) {
            return Ok(Some(open));
        }
        let Some(record) = self.store.find_mcp_session(session.id, id).await? else {
            return Ok(None);
        };
        let backends = self.backend_sessions(session, record.client_capabilities);
        let (mcp_session, _) = McpSession::open(
            self.timings,
            backends,
            record.id,
            Some(&record.protocol_version),
            Some(self.audit_context(session)),
        )
        .await;
        let mcp_session = Arc::new(mcp_session);
        self.register(session, mcp_session.clone()).await?;
        tracing::info!("MCP session reopened from the store");
        Ok(Some(mcp_session))
    }

    /// Ends the MCP session `id` of `session`, here and in the store; false
    /// if it was unknown to both.
    pub async fn end_mcp_session(&self, session: &Session, id: &str) -> Result<bool, MuxError> {
        let was_open = session.close_mcp_session(id);
        // Only the session's own: another session's id names nothing here.
        let was_stored = self.store.delete_mcp_session(session.id, id).await?;
        Ok(was_open || was_stored)
    }

    /// Adds an opened MCP session to `session`; the one it pushes out, if
    /// any, is forgotten by the store too.
    async fn register(
        &self,
        session: &Session,
        mcp_session: Arc<McpSession>,
    ) -> Result<(), MuxError> {
        if let Some(evicted) =
            session.register(mcp_session, self.limits.max_mcp_sessions_per_session)?
            && let Err(error) = self.store.delete_mcp_session(session.id, &evicted).await
        {
            tracing::warn!(%error, "could not forget an ended MCP session in the store");
        }
        Ok(())
    }

    /// The MCP session that serves `session`'s stateless clients, opened on
    /// first use (and again after it was reaped).
    pub async fn stateless_mcp_session(
        &self,
        session: &Session,
    ) -> Result<Arc<McpSession>, MuxError> {
        let _opening = Opening::start(session);
        let mut shared = session.stateless.mcp_session.lock().await;
        if let Some(mcp_session) = shared.as_ref() {
            mcp_session.touch();
            return Ok(mcp_session.clone());
        }
        if session.ended.load(Ordering::Acquire) {
            return Err(MuxError::SessionEnded);
        }
        let backends = self.backend_sessions(session, stateless::backend_capabilities());
        let id = Uuid::new_v4().simple().to_string();
        let audit = Some(self.audit_context(session));
        let (mcp_session, _) = McpSession::open(self.timings, backends, id, None, audit).await;
        let mcp_session = Arc::new(mcp_session);
        // Deleted while it opened: `end` could not take it, so it ends here.
        if session.ended.load(Ordering::Acquire) {
            mcp_session.close();
            return Err(MuxError::SessionEnded);
        }
        *shared = Some(mcp_session.clone());
        Ok(mcp_session)
    }

    /// One backend session (not yet open) per backend of `session`, with
    /// the prefix its names get.
    fn backend_sessions(
        &self,
        session: &Session,
        client_capabilities: Value,
    ) -> Vec<(BackendSession, String)> {
        session
            .servers
            .iter()
            .map(|server| {
                let limits = self
                    .backend_limits
                    .get(&server.name)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(BackendLimits::new(server, self.connections.clone()))
                    });
                let backend = BackendSession::new(
                    server.clone(),
                    limits,
                    session.shares.get(&server.name).cloned(),
                    self.http.clone(),
                    session.credentials.get(&server.name).cloned(),
                    client_capabilities.clone(),
                );
                (
                    backend,
                    session.prefix_for(server, &self.registry.tool_separator),
                )
            })
            .collect()
    }

    /// Ends MCP sessions unused for `idle`, here and in the store, forgets
    /// loaded sessions with none left (the store still has them), deletes
    /// expired sessions, and prunes stored MCP sessions nobody used for
    /// `idle` (their gateway stopped before reaping them). Returns how many
    /// MCP sessions ended here.
    pub async fn reap_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let sessions: Vec<_> = self.read_sessions().values().cloned().collect();
        let mut reaped = Vec::new();
        let mut live = Vec::new();
        for session in &sessions {
            let (stale, fresh): (Vec<_>, Vec<_>) = session
                .lock_mcp_sessions()
                .values()
                .map(|s| (s.id.clone(), now.duration_since(s.idle_since()) >= idle))
                .partition(|(_, stale)| *stale);
            reaped.extend(
                stale
                    .into_iter()
                    .map(|(id, _)| id)
                    .filter(|id| session.close_mcp_session(id))
                    .map(|id| (session.id, id)),
            );
            live.extend(fresh.into_iter().map(|(id, _)| id));
            if session.reap_stateless(now, idle) {
                tracing::debug!("idle stateless MCP session ended");
            }
        }
        self.write_sessions()
            .retain(|_, session| !session.is_idle(now, idle));
        if let Err(error) = self.tidy_store(&reaped, &live, idle).await {
            tracing::warn!(%error, "could not tidy the store; trying again later");
        }
        reaped.len()
    }

    async fn tidy_store(
        &self,
        reaped: &[(Uuid, String)],
        live: &[String],
        idle: Duration,
    ) -> Result<(), MuxError> {
        for (session_id, id) in reaped {
            self.store.delete_mcp_session(*session_id, id).await?;
        }
        let now = Utc::now();
        self.store.touch_mcp_sessions(live, now).await?;
        let cutoff = chrono::Duration::from_std(idle)
            .ok()
            .and_then(|idle| now.checked_sub_signed(idle))
            .unwrap_or(now);
        let pruned = self.store.prune_mcp_sessions(cutoff).await?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot stored MCP sessions nobody resumed");
        }
        let kept_since = chrono::Duration::from_std(self.limits.audit_retention)
            .ok()
            .and_then(|retention| now.checked_sub_signed(retention))
            .unwrap_or(now);
        let pruned = self.store.prune_audit_records(kept_since).await?;
        if pruned > 0 {
            tracing::info!(pruned, "deleted audit records past their retention");
        }
        for id in self.store.expired_sessions(now).await? {
            tracing::info!("session expired; deleting it");
            self.delete_session(id).await?;
        }
        Ok(())
    }

    fn runtime_for(&self, record: SessionRecord) -> Session {
        let mut servers: Vec<Arc<ServerConfig>> = Vec::new();
        let mut missing_servers = Vec::new();
        for name in record.servers {
            match self.registry.server(&name) {
                Some(server) => servers.push(server.clone()),
                None => {
                    tracing::warn!(server = %name, "a stored session names a server the registry no longer lists");
                    missing_servers.push(name);
                }
            }
        }
        let shares = servers
            .iter()
            .map(|server| {
                let share = SessionShare::new(server.max_concurrent_calls_per_session);
                (server.name.clone(), Arc::new(share))
            })
            .collect();
        Session {
            id: record.id,
            shares,
            servers,
            missing_servers,
            created_at: record.created_at,
            expires_at: record.expires_at,
            token_digest: record.token_digest,
            rate_limit: record.rate_limit,
            status: record.status,
            prefix: record.prefix,
            credentials: record.credentials,
            mcp_sessions: Mutex::new(HashMap::new()),
            resuming: tokio::sync::Mutex::new(()),
            stateless: Stateless::default(),
            last_used: Mutex::new(Instant::now()),
            opening: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
        }
    }

    fn read_sessions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<Session>>> {
        self.sessions.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_sessions(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Arc<Session>>> {
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_deleted(&self) -> MutexGuard<'_, Tombstones> {
        self.deleted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The client capabilities a backend may be told of: those the client
/// declared and mcp-mux can relay (requests on a response stream).
fn relayable_capabilities(initialize_params: Option<&Value>) -> Value {
    const RELAYED: [&str; 3] = ["sampling", "elicitation", "roots"];
    let declared = initialize_params
        .and_then(|params| params.get("capabilities"))
        .and_then(Value::as_object);
    let kept: serde_json::Map<String, Value> = declared
        .into_iter()
        .flatten()
        .filter(|(name, _)| RELAYED.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::{EncryptionKey, KeySource};

    /// A session over `servers` with no credentials and the defaults.
    fn new_session(servers: Vec<String>) -> NewSession {
        NewSession {
            servers,
            credentials: Credentials::default(),
            prefix: PrefixMode::default(),
            ttl: None,
            token_digest: None,
            rate_limit: None,
        }
    }

    async fn test_mux(dir: &tempfile::TempDir) -> Mux {
        let registry = Registry::parse(
            "servers:\n  a:\n    url: http://127.0.0.1:9/mcp\n",
            std::path::Path::new("registry.yaml"),
            |_| None,
        )
        .expect("valid registry");
        let key = EncryptionKey::from_base64(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            KeySource::Environment,
        )
        .expect("valid key");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mux.db").display());
        let store = Store::connect(&url, key).await.expect("store opens");
        Mux::new(
            Arc::new(registry),
            store,
            reqwest::Client::new().into(),
            Timings::default(),
            Limits::default(),
        )
    }

    #[tokio::test]
    async fn a_load_that_read_the_store_before_a_delete_does_not_bring_the_session_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mux = test_mux(&dir).await;
        let id = mux
            .create_session(new_session(vec!["a".into()]))
            .await
            .expect("created")
            .id;
        mux.reap_idle(Duration::ZERO).await;
        // What a concurrent request read just before the delete went through.
        let record = mux
            .store
            .find_session(id)
            .await
            .expect("query")
            .expect("stored");
        assert!(mux.delete_session(id).await.expect("deleted"));
        assert!(mux.remember(record).is_none());
        assert!(mux.session(id).await.expect("query").is_none());
    }

    #[tokio::test]
    async fn a_session_deleted_elsewhere_is_dropped_at_the_next_initialize() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mux = test_mux(&dir).await;
        let id = mux
            .create_session(new_session(vec!["a".into()]))
            .await
            .expect("created")
            .id;
        // Another gateway node sharing the store deletes it.
        assert!(mux.store.delete_session(id).await.expect("deleted"));
        assert!(
            mux.session(id).await.expect("query").is_some(),
            "still cached here"
        );
        assert!(mux.current_session(id).await.expect("query").is_none());
        assert!(mux.session(id).await.expect("query").is_none());
    }
}
