//! A session as the gateway holds it in memory: its backends and
//! credentials, and the MCP sessions open on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use super::catalogues::Catalogues;
use super::curation::{Curation, SharedCuration};
use super::error::MuxError;
use super::mcp_session::McpSession;
use super::metrics::Metrics;
use super::serving::Serving;
use super::stateless::{RequestFingerprint, Stateless, StatelessCall, Unpark};
use crate::backend::limits::SessionShare;
use crate::credentials::Credentials;
use crate::registry::ServerConfig;
use crate::store::{GrantHolder, Labels, Owner, PrefixMode};

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
    /// What it shows of its backends' tools and prompts.
    pub curation: Curation,
    /// The signed-in user it belongs to, if any.
    pub owner: Option<Owner>,
    /// What its creator calls it, if they named it.
    pub name: Option<String>,
    pub labels: Labels,
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
    /// The signed-in user it belongs to, if any: without a session token,
    /// its MCP endpoint takes only that user's access tokens.
    pub owner: Option<Owner>,
    /// What its creator calls it, if they named it.
    pub name: Option<String>,
    pub labels: Labels,
    /// Requests a second its MCP endpoint takes, if its creator set a limit.
    pub rate_limit: Option<u32>,
    pub prefix: PrefixMode,
    /// What it shows of its backends' tools and prompts, shared with its
    /// MCP sessions, which note the rules that matched nothing.
    pub curation: SharedCuration,
    /// Its merged tool and prompt lists, shared by its MCP sessions whose
    /// backends are told of the same client capabilities (keyed by their
    /// JSON): a backend may list more tools to a client that can sample.
    pub(super) catalogues: Mutex<HashMap<String, Arc<Catalogues>>>,
    pub(super) credentials: Credentials,
    /// Per backend (fallbacks included): the session's share of its call slots.
    pub(super) shares: HashMap<String, Arc<SessionShare>>,
    /// Which server answers for each of `servers`: itself or a fallback.
    pub(super) serving: Arc<Serving>,
    pub(super) mcp_sessions: Mutex<HashMap<String, Arc<McpSession>>>,
    /// Held while an MCP session is reopened from the store, so that two
    /// requests carrying its id reopen it once.
    pub(super) resuming: tokio::sync::Mutex<()>,
    /// What its stateless (2026-07-28) clients share.
    pub(super) stateless: Stateless,
    pub(super) last_used: Mutex<Instant>,
    /// MCP sessions being opened: the session stays in memory meanwhile.
    pub(super) opening: AtomicUsize,
    /// Set once the session is deleted: no MCP session may open on it after.
    pub(super) ended: AtomicBool,
    /// MCP sessions other nodes hold, by id: where (URL, secret) and since
    /// when, so that their requests are passed on without asking the store
    /// each time.
    pub(super) elsewhere: Mutex<HashMap<String, (String, String, Instant)>>,
}

/// How long a node found holding an MCP session is taken to hold it
/// without asking the store again (a holder that died meanwhile is found
/// out when a passed request cannot reach it).
const ELSEWHERE_FOR: Duration = Duration::from_secs(5);
/// Most MCP sessions of other nodes remembered per session.
const MAX_ELSEWHERE: usize = 1024;

impl Session {
    /// Where another node holds the MCP session `id`, if it was found there
    /// lately.
    pub(super) fn held_elsewhere(&self, id: &str) -> Option<(String, String)> {
        let elsewhere = self
            .elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (url, secret, at) = elsewhere.get(id)?;
        (at.elapsed() < ELSEWHERE_FOR).then(|| (url.clone(), secret.clone()))
    }

    pub(super) fn note_held_elsewhere(&self, id: &str, url: &str, secret: &str) {
        let mut elsewhere = self
            .elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if elsewhere.len() >= MAX_ELSEWHERE {
            elsewhere.retain(|_, (_, _, at)| at.elapsed() < ELSEWHERE_FOR);
            if elsewhere.len() >= MAX_ELSEWHERE {
                elsewhere.clear();
            }
        }
        elsewhere.insert(
            id.to_owned(),
            (url.to_owned(), secret.to_owned(), Instant::now()),
        );
    }

    /// Whether its MCP endpoint takes its owner's access tokens (it has an
    /// owner and no session token).
    pub fn needs_sign_in(&self) -> bool {
        self.owner.is_some() && self.token_digest.is_none()
    }

    /// Whose its backend grants are: its owner's, or its own.
    pub fn grant_holder(&self) -> GrantHolder {
        GrantHolder::of_session(self.id, self.owner.as_ref())
    }

    pub fn mcp_session(&self, id: &str) -> Option<Arc<McpSession>> {
        self.lock_mcp_sessions().get(id).cloned()
    }

    pub fn mcp_session_count(&self) -> usize {
        self.lock_mcp_sessions().len()
    }

    /// Every MCP session open on it: its clients', and those its stateless
    /// clients share (but those opening right now).
    pub fn mcp_sessions(&self) -> Vec<Arc<McpSession>> {
        let mut open: Vec<_> = self.lock_mcp_sessions().values().cloned().collect();
        open.extend(self.stateless.open());
        open
    }

    /// The server answering for the session's server `index`: the one that
    /// answered the last call made to it (itself until a call fails over).
    pub fn serving(&self, index: usize) -> Option<&str> {
        let server = self.servers.get(index)?;
        match self.serving.rank(index) {
            0 => Some(&server.name),
            rank => server.fallback.get(rank - 1).map(String::as_str),
        }
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
    pub(super) fn close_mcp_session(&self, id: &str) -> bool {
        let removed = self.lock_mcp_sessions().remove(id);
        removed.map(|mcp_session| mcp_session.close()).is_some()
    }

    /// Adds an opened MCP session, ending the least recently used one when
    /// the session is at its limit; returns the id of the one ended. Fails
    /// when the session was deleted meanwhile.
    pub(super) fn register(
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

    /// The merged lists shared by its MCP sessions whose backends are told
    /// of `client_capabilities`; new ones note their tools in `metrics`.
    pub(super) fn catalogues_for(
        &self,
        client_capabilities: &serde_json::Value,
        metrics: &Metrics,
    ) -> Arc<Catalogues> {
        self.catalogues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(client_capabilities.to_string())
            .or_insert_with(|| Arc::new(Catalogues::noting_tools_in(metrics.tool_listings())))
            .clone()
    }

    /// What names of `server`'s items start with in this session.
    pub(super) fn prefix_for(&self, server: &ServerConfig, separator: &str) -> String {
        self.prefix
            .prefix(&server.name, self.servers.len(), separator)
    }

    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.let_go();
    }

    /// Closes its MCP sessions here, the session itself staying: another
    /// node may hold them now.
    pub(super) fn let_go(&self) {
        let all: Vec<_> = self.lock_mcp_sessions().drain().map(|(_, s)| s).collect();
        all.iter().for_each(|mcp_session| mcp_session.close());
        self.stateless.end();
    }

    /// Keeps a stateless client's call that awaits its input; returns the
    /// `requestState` that resumes it.
    pub fn park(&self, call: StatelessCall) -> String {
        self.stateless.park(call)
    }

    /// Keeps a call again under the `requestState` it was taken up with:
    /// its retry was refused before anything reached the backend.
    pub fn park_again(&self, request_state: &str, call: StatelessCall) {
        self.stateless.park_as(request_state.to_owned(), call)
    }

    /// The parked call a `requestState` names, taken out of the waiting
    /// list if the retry asks what the call asked.
    pub fn unpark(
        &self,
        request_state: &str,
        request: RequestFingerprint,
    ) -> Result<StatelessCall, Unpark> {
        self.stateless.unpark(request_state, request)
    }

    /// Ends the MCP sessions of stateless clients idle for `idle` with no
    /// stream open and no call waiting; true if one ended.
    pub(super) fn reap_stateless(&self, now: Instant, idle: Duration) -> bool {
        self.stateless.reap(now, idle)
    }

    pub(super) fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Whether the session can be dropped from memory: nothing open or
    /// opening on it, and unused for `idle`.
    pub(super) fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        let last_used = *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.opening.load(Ordering::Acquire) == 0
            && self.mcp_session_count() == 0
            && self.stateless.is_empty()
            && now.duration_since(last_used) >= idle
    }

    pub(super) fn lock_mcp_sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<McpSession>>> {
        self.mcp_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts an MCP session being opened on a session for as long as it lives.
pub(super) struct Opening<'a>(&'a Session);

impl<'a> Opening<'a> {
    pub(super) fn start(session: &'a Session) -> Self {
        session.opening.fetch_add(1, Ordering::AcqRel);
        Opening(session)
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.fetch_sub(1, Ordering::AcqRel);
    }
}
