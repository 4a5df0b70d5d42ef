//! The session runtime: sessions loaded from the store and kept in memory,
//! the MCP sessions clients open on them, fan-out to backends, the merged
//! catalogue and the routing of calls.

pub mod catalogue;
pub mod error;
mod mcp_session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

pub use error::{CallError, MuxError};
pub use mcp_session::{McpSession, Payload};

use crate::backend::{BackendSession, ClientIdentity};
use crate::credentials::Credentials;
use crate::registry::{Registry, ServerConfig};
use crate::store::{STATUS_ACTIVE, SessionRecord, Store};

/// A session: its backends and credentials, and the MCP sessions open on it.
pub struct Session {
    pub id: Uuid,
    /// The chosen backends that the registry still lists, in the client's order.
    pub servers: Vec<Arc<ServerConfig>>,
    /// Chosen backends the registry no longer lists.
    pub missing_servers: Vec<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub status: String,
    credentials: Credentials,
    mcp_sessions: Mutex<HashMap<String, Arc<McpSession>>>,
}

impl Session {
    pub fn mcp_session(&self, id: &str) -> Option<Arc<McpSession>> {
        self.lock_mcp_sessions().get(id).cloned()
    }

    pub fn mcp_session_count(&self) -> usize {
        self.lock_mcp_sessions().len()
    }

    /// Ends an MCP session and its backend sessions; false if it was unknown.
    pub async fn close_mcp_session(&self, id: &str) -> bool {
        let removed = self.lock_mcp_sessions().remove(id);
        match removed {
            Some(mcp_session) => {
                mcp_session.close().await;
                true
            }
            None => false,
        }
    }

    fn lock_mcp_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<McpSession>>> {
        self.mcp_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn close_all(&self) {
        let all: Vec<_> = self.lock_mcp_sessions().drain().map(|(_, s)| s).collect();
        join_all(all.iter().map(|s| s.close())).await;
    }
}

/// Owns every loaded session; shared by all request handlers.
pub struct Mux {
    registry: Arc<Registry>,
    store: Store,
    http: reqwest::Client,
    sessions: RwLock<HashMap<Uuid, Arc<Session>>>,
}

impl Mux {
    pub fn new(registry: Arc<Registry>, store: Store, http: reqwest::Client) -> Self {
        Mux {
            registry,
            store,
            http,
            sessions: RwLock::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records a new session. `servers` and `credentials` are already
    /// validated against the registry.
    pub async fn create_session(
        &self,
        servers: Vec<String>,
        credentials: Credentials,
    ) -> Result<Arc<Session>, MuxError> {
        let record = SessionRecord {
            id: Uuid::new_v4(),
            servers,
            credentials,
            status: STATUS_ACTIVE.to_owned(),
            created_at: Utc::now(),
        };
        self.store.insert_session(&record).await?;
        let session = Arc::new(self.runtime_for(record));
        self.write_sessions().insert(session.id, session.clone());
        Ok(session)
    }

    /// The session `id`, from memory or else from the store (so session URLs
    /// outlive a restart).
    pub async fn session(&self, id: Uuid) -> Result<Option<Arc<Session>>, MuxError> {
        if let Some(session) = self.read_sessions().get(&id) {
            return Ok(Some(session.clone()));
        }
        let Some(record) = self.store.find_session(id).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(self.runtime_for(record));
        // Two requests may load the same session at once: keep the first.
        Ok(Some(
            self.write_sessions().entry(id).or_insert(loaded).clone(),
        ))
    }

    /// Deletes a session, its credentials and its MCP sessions; false if unknown.
    pub async fn delete_session(&self, id: Uuid) -> Result<bool, MuxError> {
        let cached = self.write_sessions().remove(&id);
        let deleted = self.store.delete_session(id).await?;
        if let Some(session) = &cached {
            session.close_all().await;
        }
        Ok(deleted || cached.is_some())
    }

    /// Opens an MCP session on `session` for a client's `initialize`.
    pub async fn open_mcp_session(
        &self,
        session: &Session,
        initialize_params: Option<&Value>,
    ) -> (Arc<McpSession>, Value) {
        let requested = initialize_params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        // Backends are offered no client capabilities yet: mcp-mux does not
        // relay server-to-client requests, so it must not invite them.
        let identity = ClientIdentity {
            capabilities: json!({}),
        };
        let backends = session
            .servers
            .iter()
            .map(|server| {
                let backend = BackendSession::new(
                    server.clone(),
                    self.http.clone(),
                    session.credentials.get(&server.name).cloned(),
                    identity.clone(),
                );
                (
                    backend,
                    format!("{}{}", server.name, self.registry.tool_separator),
                )
            })
            .collect();
        let (mcp_session, result) = McpSession::open(backends, requested).await;
        let mcp_session = Arc::new(mcp_session);
        session
            .lock_mcp_sessions()
            .insert(mcp_session.id.clone(), mcp_session.clone());
        (mcp_session, result)
    }

    /// Ends MCP sessions unused for `idle`; returns how many. Clients such as
    /// mcp-remote open MCP sessions they never end.
    pub async fn reap_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let sessions: Vec<_> = self.read_sessions().values().cloned().collect();
        let mut reaped = 0;
        for session in sessions {
            let stale: Vec<String> = session
                .lock_mcp_sessions()
                .iter()
                .filter(|(_, s)| now.duration_since(s.idle_since()) >= idle)
                .map(|(id, _)| id.clone())
                .collect();
            for id in stale {
                if session.close_mcp_session(&id).await {
                    reaped += 1;
                }
            }
        }
        reaped
    }

    fn runtime_for(&self, record: SessionRecord) -> Session {
        let mut servers = Vec::new();
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
        Session {
            id: record.id,
            servers,
            missing_servers,
            created_at: record.created_at,
            status: record.status,
            credentials: record.credentials,
            mcp_sessions: Mutex::new(HashMap::new()),
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
}
