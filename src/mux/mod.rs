//! The session runtime: sessions loaded from the store and kept in memory,
//! the MCP sessions clients open on them, fan-out to backends, the merged
//! catalogue and the routing of calls.

mod audit;
mod backend_state;
pub mod catalogue;
mod catalogues;
pub mod curation;
pub mod error;
pub mod glob;
pub mod item_kind;
mod mcp_session;
mod mcp_sessions;
mod metrics;
mod paging;
mod payload;
mod registry_reload;
pub mod search;
mod serving;
mod session;
mod stateless;
pub mod subscriptions;
mod tool_calls;

use search::SearchModel;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

pub use crate::backend::breaker::CircuitState;
pub use crate::store::PrefixMode;
pub use backend_state::{Authorization, BackendStatus, ServerState};
use curation::SessionCuration;
pub use curation::{Curation, ItemRules, ToolMode};
pub use error::{CallError, MuxError, Unavailable};
use mcp_session::SessionContext;
pub use mcp_session::{ClientCall, ClientStream, ListedItem, McpSession, Timings, capabilities};
pub use mcp_sessions::Held;
pub use paging::PAGE_SIZE;
pub use payload::Payload;
pub use registry_reload::{RegistryFile, RegistryVersion, ReloadError, Reloaded};
pub use session::{NewSession, Session};
pub use stateless::{RequestFingerprint, StatelessCall, Step, Unpark, stateless_call_id};

use audit::{AuditContext, AuditTrail};
use metrics::{BackendState, Metrics, Snapshot};
use serving::Serving;
use stateless::Stateless;

use crate::backend::connections::{ConnectionBudget, SessionConnections};
use crate::backend::http_client::HttpClients;
use crate::backend::limits::{BackendLimits, SessionShare};
use crate::cluster::{Cluster, ClusterEvent};
use crate::grants::{Callback, CallbackError, Connected, Grants};
use crate::registry::{Registry, ServerConfig};
use crate::store::{
    GrantHolder, Owner, SessionCursor, SessionFilter, SessionRecord, SessionSummary, Store,
    StoredAuditRecord,
};
use crate::traces::Traces;
use search::learning::Learning;

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
    /// The servers sessions may choose; a reload replaces it whole.
    registry: RwLock<Arc<Registry>>,
    /// The file it was read from, and which version when: a reload reads it
    /// again. None for a gateway built from a registry alone.
    registry_file: Option<RegistryFile>,
    store: Store,
    http: HttpClients,
    timings: Timings,
    limits: Limits,
    /// Held from counting the sessions to storing a new one.
    creating: tokio::sync::Mutex<()>,
    /// One per registry server, shared by all sessions.
    backend_limits: RwLock<HashMap<String, Arc<BackendLimits>>>,
    /// Every backend connection of the gateway.
    connections: Arc<ConnectionBudget>,
    audit: Arc<AuditTrail>,
    metrics: Arc<Metrics>,
    sessions: RwLock<HashMap<Uuid, Arc<Session>>>,
    deleted: Mutex<Tombstones>,
    /// Set when the gateway stops, so that open client streams end.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Set when a stop is asked for: the gateway still serves for a while,
    /// but tells load balancers to send it no one new.
    draining: std::sync::atomic::AtomicBool,
    started: Instant,
    /// Set when traces are exported.
    traces: Option<Traces>,
    search_model: Option<Arc<SearchModel>>,
    /// The OAuth grants sessions hold for their backends.
    grants: Arc<Grants>,
    /// The other nodes sharing the store, if any.
    cluster: Arc<Cluster>,
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
            metrics: Arc::new(Metrics::default()),
            limits,
            creating: tokio::sync::Mutex::new(()),
            backend_limits: RwLock::new(backend_limits),
            registry: RwLock::new(registry),
            registry_file: None,
            http,
            timings,
            sessions: RwLock::new(HashMap::new()),
            deleted: Mutex::new(Tombstones::default()),
            stopping: tokio::sync::watch::Sender::new(false),
            draining: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
            traces: None,
            search_model: None,
            grants: Arc::new(Grants::new(store.clone(), None)),
            cluster: Arc::new(Cluster::new(store.clone())),
            store,
        }
    }

    /// This node among the nodes sharing its store.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Acts on what other nodes tell this one, for as long as the future
    /// is polled: a session deleted elsewhere ends here too, within a
    /// notification's time; after notifications may have been missed, every
    /// session held here is checked against the store.
    pub async fn follow_cluster(&self) {
        let mut events = self.cluster.subscribe();
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => ClusterEvent::Resync,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            match event {
                ClusterEvent::SessionDeleted(id) => self.forget_deleted(id),
                // Loaded again from the store on their next request, where
                // their MCP sessions' holders are now written.
                ClusterEvent::Fenced => {
                    let held: Vec<_> = self.write_sessions().drain().map(|(_, s)| s).collect();
                    held.iter().for_each(|session| session.let_go());
                }
                ClusterEvent::Resync => {
                    let held: Vec<Uuid> = self.read_sessions().keys().copied().collect();
                    match self.store.stored_sessions(&held).await {
                        Ok(stored) => held
                            .into_iter()
                            .filter(|id| !stored.contains(id))
                            .for_each(|id| self.forget_deleted(id)),
                        Err(error) => {
                            tracing::warn!(%error, "could not check the sessions held here")
                        }
                    }
                }
            }
        }
    }

    /// Keeps sessions' OAuth grants with `grants` (made with the gateway's
    /// public URL).
    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.grants = Arc::new(grants);
        self
    }

    pub fn grants(&self) -> &Arc<Grants> {
        &self.grants
    }

    /// Completes a backend's authorization for a session, on whichever node
    /// the user's browser lands, and opens the backend in the session's MCP
    /// sessions here: their clients hear of its items.
    pub async fn complete_authorization(
        &self,
        callback: &Callback,
    ) -> Result<Connected, CallbackError> {
        let connected = self.grants.complete(callback, &self.registry()).await?;
        if let Some(session) = self.read_sessions().get(&connected.session_id).cloned() {
            for mcp_session in session.mcp_sessions() {
                mcp_session.reopen(&connected.server);
            }
        }
        Ok(connected)
    }

    /// Exports traces of MCP requests and backend exchanges with `traces`.
    pub fn with_traces(mut self, traces: Option<Traces>) -> Self {
        self.traces = traces;
        self
    }

    /// Ranks search mode's answers with `model` too.
    pub fn with_search_model(mut self, model: Option<Arc<SearchModel>>) -> Self {
        self.search_model = model;
        self
    }

    /// The exporter of traces, when they are exported.
    pub fn traces(&self) -> Option<&Traces> {
        self.traces.as_ref()
    }

    /// Sends the spans ended so far, and waits until they are sent.
    pub async fn flush_traces(&self) {
        if let Some(traces) = &self.traces {
            traces.flush().await;
        }
    }

    /// Sends the last spans and stops exporting, as the gateway stops.
    pub async fn shutdown_traces(&self) {
        if let Some(traces) = &self.traces {
            traces.shutdown().await;
        }
    }

    /// Ends every open client stream: a stream that stays open would hold
    /// a graceful shutdown until its timeout.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the gateway has begun to stop.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Marks the gateway as draining: `/readyz` answers 503 from now on,
    /// while every route still serves until the stop begins.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for and the gateway drains before it.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// How long the gateway has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Resolves once the gateway is stopping.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ok when the store answers.
    pub async fn store_answers(&self) -> Result<(), MuxError> {
        Ok(self.store.ping().await?)
    }

    /// Up to `limit` stored sessions that pass `filter`, newest first,
    /// after `after` when given.
    pub async fn list_sessions(
        &self,
        limit: u64,
        after: Option<SessionCursor>,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, MuxError> {
        Ok(self.store.list_sessions(limit, after, filter).await?)
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

    /// Waits, at most `within`, until the audit records of the calls that
    /// have finished are in the store; false when they are not yet.
    pub async fn audit_settled(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.audit.settled())
            .await
            .is_ok()
    }

    /// Writes the audit records still queued; for the end of a shutdown.
    pub async fn flush_audit_trail(&self) {
        self.audit.flush(&self.store).await;
    }

    /// What an MCP session open on `session` takes from it.
    /// What an MCP session open on `session`, whose backends are told of
    /// `client_capabilities`, takes from it.
    fn session_context(
        &self,
        session: &Session,
        client_capabilities: &serde_json::Value,
    ) -> SessionContext {
        SessionContext {
            audit: Some(AuditContext {
                trail: self.audit.clone(),
                metrics: self.metrics.clone(),
                session_id: session.id,
                subject: session
                    .owner
                    .as_ref()
                    .map(|owner| std::sync::Arc::from(owner.subject.as_str())),
                counted_under: (session.owner.iter())
                    .map(|owner| self.metrics.signed_in_calls(&owner.subject))
                    .chain(
                        session
                            .name
                            .iter()
                            .map(|name| self.metrics.named_session_calls(name)),
                    )
                    .collect(),
            }),
            curation: session.curation.clone(),
            catalogues: session.catalogues_for(client_capabilities, &self.metrics),
            serving: session.serving.clone(),
            learning: session.learning.clone(),
            stateless: false,
            search_model: self.search_model.clone(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text exposition of the gateway's metrics, with the
    /// state of its backends, sessions and audit trail read now.
    pub async fn metrics_text(&self) -> Result<String, MuxError> {
        let sessions_stored = self.store.count_sessions().await?;
        let mut backends: Vec<BackendState> = self
            .lock_backend_limits()
            .iter()
            .map(|(server, limits)| BackendState {
                server: server.clone(),
                retries: limits.retries.load(Ordering::Relaxed),
                circuit: match limits.breaker.state() {
                    CircuitState::Closed { .. } => 0,
                    CircuitState::HalfOpen { .. } => 1,
                    CircuitState::Open { .. } => 2,
                },
                calls_in_progress: limits.calls_in_progress(),
            })
            .collect();
        backends.sort_by(|a, b| a.server.cmp(&b.server));
        let mut mcp_sessions_live = 0;
        let mut backend_sessions_open: Vec<(&'static str, u64)> = Vec::new();
        let sessions: Vec<Arc<Session>> = self.read_sessions().values().cloned().collect();
        let session_backends = self.loaded_backend_states(&sessions);
        for session in sessions {
            for mcp_session in session.mcp_sessions() {
                mcp_sessions_live += 1;
                for transport in mcp_session.open_backend_transports() {
                    match backend_sessions_open
                        .iter_mut()
                        .find(|(t, _)| *t == transport)
                    {
                        Some((_, count)) => *count += 1,
                        None => backend_sessions_open.push((transport, 1)),
                    }
                }
            }
        }
        backend_sessions_open.sort();
        let (audit_written, audit_dropped) = self.audit.counts();
        Ok(self.metrics.encode(Snapshot {
            backends,
            sessions_stored,
            mcp_sessions_live,
            backend_sessions_open,
            session_backends,
            audit_written,
            audit_dropped,
        }))
    }

    /// What all sessions of `server` share: the state of its circuit
    /// breaker and its calls in progress.
    pub fn backend_health(&self, server: &str) -> Option<(CircuitState, usize)> {
        let limits = self.lock_backend_limits().get(server)?.clone();
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
            created_at,
            prefix: new.prefix,
            expires_at: new
                .ttl
                .and_then(|ttl| chrono::Duration::from_std(ttl).ok())
                .and_then(|ttl| created_at.checked_add_signed(ttl)),
            token_digest: new.token_digest,
            rate_limit: new.rate_limit,
            curation: new.curation,
            owner: new.owner,
            name: new.name,
            labels: new.labels,
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
            Some(session) => session,
            // Boxed: the store's futures are large, and every call's
            // future would carry their size for a path few calls take.
            None => return Box::pin(self.load_session(id)).await,
        };
        if session.is_expired(Utc::now()) {
            return Box::pin(self.unless_expired(Some(session))).await;
        }
        Ok(Some(session))
    }

    /// [`Mux::session`] when it is not in memory.
    async fn load_session(&self, id: Uuid) -> Result<Option<Arc<Session>>, MuxError> {
        let session = match self.store.find_session(id).await? {
            Some(record) => self.remember(record),
            None => None,
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

    /// Deletes a session, its credentials, grants and MCP sessions; false
    /// if unknown. A signed-in user's grants go with their last session
    /// over each backend. Grants are revoked in the background where their
    /// authorization servers offer it.
    pub async fn delete_session(&self, id: Uuid) -> Result<bool, MuxError> {
        let cached = self.read_sessions().get(&id).cloned();
        let (owner, servers) = match cached {
            Some(session) => (
                session.owner.clone(),
                session
                    .servers
                    .iter()
                    .map(|server| server.name.clone())
                    .collect(),
            ),
            None => match self.store.find_session(id).await? {
                Some(record) => (record.owner, record.servers),
                None => (None, Vec::new()),
            },
        };
        let mut grants = self
            .store
            .take_grants(&GrantHolder::Session(id).key(), None)
            .await?;
        let deleted = self.store.delete_session(id).await?;
        if let Some(owner) = owner {
            let unused = self.servers_unused_by(&owner, &servers).await?;
            if !unused.is_empty() {
                let holder = GrantHolder::User(owner).key();
                grants.extend(self.store.take_grants(&holder, Some(&unused)).await?);
            }
        }
        self.grants.forget(&grants);
        if !grants.is_empty() {
            let (revoker, registry) = (self.grants.clone(), self.registry());
            tokio::spawn(async move { revoker.revoke(grants, &registry).await });
        }
        let cached = self.forget_deleted_if(id, deleted);
        if deleted {
            self.cluster.publish(ClusterEvent::SessionDeleted(id)).await;
        }
        Ok(deleted || cached)
    }

    /// Ends a session deleted on another node: its MCP sessions here end,
    /// and it is not loaded again.
    fn forget_deleted(&self, id: Uuid) {
        self.forget_deleted_if(id, true);
    }

    /// Drops a deleted session held here and ends its MCP sessions;
    /// remembers it as deleted when `deleted` or when it was held. Returns
    /// whether it was held.
    fn forget_deleted_if(&self, id: Uuid, deleted: bool) -> bool {
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
        cached.is_some()
    }

    /// The OAuth backends among `servers` that no stored session of
    /// `owner` uses.
    async fn servers_unused_by(
        &self,
        owner: &Owner,
        servers: &[String],
    ) -> Result<Vec<String>, MuxError> {
        let owned = self.store.servers_of_owner(owner).await?;
        Ok(servers
            .iter()
            .filter(|name| {
                self.registry()
                    .server(name)
                    .is_some_and(|server| server.auth.oauth().is_some())
            })
            .filter(|name| !owned.iter().any(|servers| servers.contains(name)))
            .cloned()
            .collect())
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
        let purged = self.store.purge_expired_authorization_states(now).await?;
        if purged > 0 {
            tracing::debug!(
                purged,
                "forgot authorization requests and links past their time"
            );
        }
        for id in self.store.expired_sessions(now).await? {
            tracing::info!("session expired; deleting it");
            self.delete_session(id).await?;
        }
        Ok(())
    }

    fn runtime_for(&self, record: SessionRecord) -> Session {
        let registry = self.registry();
        let mut servers: Vec<Arc<ServerConfig>> = Vec::new();
        let mut missing_servers = Vec::new();
        for name in record.servers {
            match registry.server(&name) {
                Some(server) => servers.push(server.clone()),
                None => {
                    tracing::warn!(server = %name, "a stored session names a server the registry no longer lists");
                    missing_servers.push(name);
                }
            }
        }
        // One count of connections for all its backends: the share is of
        // the gateway's whole budget.
        let connections = Arc::new(SessionConnections::new(self.connections.clone()));
        // Fallbacks too: a call that fails over counts in the session's
        // share of the server that takes it.
        let shares = servers
            .iter()
            .flat_map(|server| {
                std::iter::once(server).chain(
                    server
                        .fallback
                        .iter()
                        .filter_map(|name| registry.server(name)),
                )
            })
            .map(|server| {
                let share =
                    SessionShare::new(server.max_concurrent_calls_per_session, connections.clone());
                (server.name.clone(), Arc::new(share))
            })
            .collect();
        Session {
            id: record.id,
            shares,
            serving: Arc::new(Serving::new(servers.len())),
            servers,
            missing_servers,
            created_at: record.created_at,
            expires_at: record.expires_at,
            token_digest: record.token_digest,
            owner: record.owner,
            name: record.name,
            labels: record.labels,
            rate_limit: record.rate_limit,
            prefix: record.prefix,
            curation: Arc::new(SessionCuration::new(record.curation)),
            catalogues: Mutex::default(),
            credentials: record.credentials,
            mcp_sessions: Mutex::new(HashMap::new()),
            learning: Arc::new(Learning::new(record.id, self.store.clone())),
            resuming: tokio::sync::Mutex::new(()),
            stateless: Stateless::default(),
            last_used: Mutex::new(Instant::now()),
            opening: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            elsewhere: Mutex::default(),
        }
    }

    fn lock_backend_limits(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<BackendLimits>>> {
        self.backend_limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
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
            curation: Curation::default(),
            owner: None,
            name: None,
            labels: Default::default(),
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
