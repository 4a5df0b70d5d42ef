//! The MCP sessions of a session: opened for a client's `initialize`,
//! reopened from the store after a restart, and the one its stateless
//! clients share.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Mux;
use super::error::MuxError;
use super::mcp_session::{BackendSessions, McpSession, SessionContext};
use super::session::{Opening, Session};
use crate::backend::limits::BackendLimits;
use crate::backend::{BackendError, BackendSession, Credential};
use crate::mcp::version;
use crate::registry::ServerConfig;
use crate::store::McpSessionRecord;
use secrecy::SecretString;

/// The stored record of `session`'s MCP session for stateless clients:
/// its id names no MCP session a client may ask for (those are 32 hex
/// digits).
fn stateless_record_id(session: &Session) -> String {
    format!("stateless-{}", session.id.simple())
}

/// Where an MCP session is held.
pub enum Held {
    Here(Arc<McpSession>),
    /// By another live node: its URL, and the secret it takes.
    Elsewhere {
        url: String,
        secret: String,
    },
    /// Nowhere: it ended, or never was.
    Unknown,
}

impl Mux {
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
        let client_capabilities = relayable(
            initialize_params
                .and_then(|params| params.get("capabilities"))
                .and_then(Value::as_object),
        );
        let context = self.session_context(session, &client_capabilities);
        let backends = self.backend_sessions(session, client_capabilities.clone());
        let now = Utc::now();
        let record = McpSessionRecord {
            id: Uuid::new_v4().simple().to_string(),
            session_id: session.id,
            protocol_version: version::negotiate(requested).to_owned(),
            client_capabilities,
            created_at: now,
            last_seen_at: now,
            node: Some(self.cluster.node_id()),
        };
        // The record is written while the backends open, not after: the
        // client waits for the slowest backend alone.
        let ((mcp_session, result), stored) = tokio::join!(
            McpSession::open(
                self.timings,
                backends,
                record.id.clone(),
                requested,
                context
            ),
            self.store.insert_mcp_session(&record)
        );
        if let Err(error) = stored {
            tracing::warn!(%error, "the MCP session is not stored; it will not outlive a restart");
        }
        let refused = if let Some(error) = mcp_session.found_no_connection() {
            mcp_session.close();
            Err(match error {
                BackendError::SessionConnections {
                    what, share, limit, ..
                } => MuxError::SessionConnections { what, share, limit },
                _ => MuxError::NoConnection {
                    limit: self.connections.max(),
                },
            })
        } else {
            let mcp_session = Arc::new(mcp_session);
            self.register(session, mcp_session.clone()).await.map(|()| {
                mcp_session.prepare_search();
                (mcp_session, result)
            })
        };
        if refused.is_err()
            && let Err(error) = self.store.delete_mcp_session(session.id, &record.id).await
        {
            tracing::warn!(%error, "could not forget a refused MCP session in the store");
        }
        refused
    }

    /// The MCP session `id` of `session`: open here; or held by another
    /// live node (when `may_pass` it on: the request was not passed here
    /// already), whose URL and secret this gives; or else reopened here
    /// from the store, as after a restart or when the node that held it
    /// is gone, and held here from then on. A reopened MCP session opens
    /// its backend sessions anew.
    pub async fn mcp_session(
        &self,
        session: &Session,
        id: &str,
        may_pass: bool,
    ) -> Result<Held, MuxError> {
        if let Some(open) = session.mcp_session(id) {
            return Ok(Held::Here(open));
        }
        if may_pass && let Some((url, secret)) = session.held_elsewhere(id) {
            return Ok(Held::Elsewhere { url, secret });
        }
        // Boxed: the store's futures are large, and every call's future
        // would carry their size (and copy it) for a path few calls take.
        Box::pin(self.reopen_mcp_session(session, id, may_pass)).await
    }

    /// [`Mux::mcp_session`] when the MCP session is not open here.
    async fn reopen_mcp_session(
        &self,
        session: &Session,
        id: &str,
        may_pass: bool,
    ) -> Result<Held, MuxError> {
        let _opening = Opening::start(session);
        let _resuming = session.resuming.lock().await;
        if let Some(open) = session.mcp_session(id) {
            return Ok(Held::Here(open));
        }
        let Some(record) = self.store.find_mcp_session(session.id, id).await? else {
            return Ok(Held::Unknown);
        };
        if may_pass
            && let Some((url, secret)) = self.found_elsewhere(session, id, record.node).await?
        {
            return Ok(Held::Elsewhere { url, secret });
        }
        let context = self.session_context(session, &record.client_capabilities);
        let backends = self.backend_sessions(session, record.client_capabilities);
        let (mcp_session, _) = McpSession::open(
            self.timings,
            backends,
            record.id,
            Some(&record.protocol_version),
            context,
        )
        .await;
        let mcp_session = Arc::new(mcp_session);
        self.register(session, mcp_session.clone()).await?;
        if self.store.is_shared() {
            self.store
                .hold_mcp_session(&mcp_session.id, self.cluster.node_id())
                .await?;
        }
        tracing::info!("MCP session reopened from the store");
        Ok(Held::Here(mcp_session))
    }

    /// Where the MCP session `id` of `session` is held, when another live
    /// node holds it and it is not open here.
    pub async fn mcp_session_elsewhere(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<Option<(String, String)>, MuxError> {
        if session.mcp_session(id).is_some() || !self.store.is_shared() {
            return Ok(None);
        }
        if let Some(held) = session.held_elsewhere(id) {
            return Ok(Some(held));
        }
        let node = self
            .store
            .find_mcp_session(session.id, id)
            .await?
            .and_then(|record| record.node);
        self.found_elsewhere(session, id, node).await
    }

    /// Where `node`, the stored holder of the MCP session `id`, is reached,
    /// when it is another live node; remembered for the session's next
    /// requests.
    async fn found_elsewhere(
        &self,
        session: &Session,
        id: &str,
        node: Option<Uuid>,
    ) -> Result<Option<(String, String)>, MuxError> {
        let Some(node) = node else {
            return Ok(None);
        };
        let elsewhere = self.cluster.other_live_node(node).await?;
        if let Some((url, secret)) = &elsewhere {
            session.note_held_elsewhere(id, url, secret);
        }
        Ok(elsewhere)
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

    /// The MCP session that serves those of `session`'s stateless clients
    /// that declare `client_capabilities`, opened on first use (and again
    /// after it was reaped). Its backends are told what those clients can
    /// do (what mcp-mux can relay of it), so that none asks for more.
    pub async fn stateless_mcp_session(
        &self,
        session: &Session,
        client_capabilities: &Map<String, Value>,
    ) -> Result<Arc<McpSession>, MuxError> {
        let _opening = Opening::start(session);
        let capabilities = relayable(Some(client_capabilities));
        let slot = session.stateless.slot(&capabilities.to_string())?;
        let mut shared = slot.lock().await;
        if let Some(mcp_session) = shared.as_ref() {
            mcp_session.touch();
            return Ok(mcp_session.clone());
        }
        if session.ended.load(Ordering::Acquire) {
            return Err(MuxError::SessionEnded);
        }
        let context = SessionContext {
            stateless: true,
            ..self.session_context(session, &capabilities)
        };
        let backends = self.backend_sessions(session, capabilities);
        let id = Uuid::new_v4().simple().to_string();
        let (mcp_session, _) = McpSession::open(self.timings, backends, id, None, context).await;
        let mcp_session = Arc::new(mcp_session);
        // Deleted while it opened: `end` could not take it, so it ends here.
        if session.ended.load(Ordering::Acquire) {
            mcp_session.close();
            return Err(MuxError::SessionEnded);
        }
        *shared = Some(mcp_session.clone());
        // Opened here: the other nodes pass its requests here from now on.
        if self.store.is_shared()
            && let Err(error) = self
                .store
                .hold_mcp_session(&stateless_record_id(session), self.cluster.node_id())
                .await
        {
            tracing::warn!(%error, "could not say that this node serves the session's stateless clients");
        }
        Ok(mcp_session)
    }

    /// The other node that holds `session`'s MCP session for stateless
    /// clients (its URL and secret), if one does: their requests go there,
    /// so that a `subscriptions/listen` stream hears what any of them
    /// does, and the lists they see are one. This node becomes its holder
    /// when none is alive. A node that holds it open pays no store round
    /// trip; another finds the holder in the store once every few seconds.
    pub async fn stateless_held_elsewhere(
        &self,
        session: &Session,
    ) -> Result<Option<(String, String)>, MuxError> {
        if !self.store.is_shared() {
            return Ok(None);
        }
        if !session.stateless.is_empty() {
            return Ok(None);
        }
        Box::pin(self.stateless_held_by_another(session)).await
    }

    /// [`Mux::stateless_held_elsewhere`] when this node holds none of the
    /// session's stateless MCP sessions.
    async fn stateless_held_by_another(
        &self,
        session: &Session,
    ) -> Result<Option<(String, String)>, MuxError> {
        const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
        {
            let held = session
                .stateless
                .held_elsewhere
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((url, secret, at)) = held.as_ref()
                && at.elapsed() < RECHECK
            {
                return Ok(Some((url.clone(), secret.clone())));
            }
        }
        let now = chrono::Utc::now();
        let record = McpSessionRecord {
            id: stateless_record_id(session),
            session_id: session.id,
            protocol_version: crate::mcp::stateless::VERSION.to_owned(),
            // Each set of capabilities has its own MCP session on the holder.
            client_capabilities: Value::Object(Map::new()),
            created_at: now,
            last_seen_at: now,
            node: None,
        };
        let holder = self
            .store
            .claim_mcp_session(
                &record,
                self.cluster.node_id(),
                crate::cluster::live_since(now),
            )
            .await?;
        let elsewhere = self.cluster.other_live_node(holder).await?;
        *session
            .stateless
            .held_elsewhere
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = elsewhere
            .clone()
            .map(|(url, secret)| (url, secret, std::time::Instant::now()));
        Ok(elsewhere)
    }

    /// One backend session (not yet open) per backend of `session`, with
    /// the prefix its names get, and one per fallback of each, with the
    /// index of the backend it stands in for.
    fn backend_sessions(&self, session: &Session, client_capabilities: Value) -> BackendSessions {
        // The registry as it is now: a server it changed opens with its new
        // settings, one it removed does not open.
        let registry = self.registry();
        let backend_session = |server: &Arc<ServerConfig>, credential: Option<&SecretString>| {
            // An OAuth backend carries the session's grant, whatever else it holds.
            let credential = if server.auth.oauth().is_some() {
                let grant = self.grants.for_session(
                    session.id,
                    &session.grant_holder(),
                    server.clone(),
                    session.token_digest.is_some() || session.owner.is_some(),
                );
                Some(Credential::OAuth(Arc::new(grant)))
            } else {
                credential.cloned().map(Credential::Static)
            };
            let limits = self
                .backend_limits
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&server.name)
                .cloned()
                .unwrap_or_else(|| Arc::new(BackendLimits::new(server, self.connections.clone())));
            BackendSession::new(
                server.clone(),
                limits,
                session.shares.get(&server.name).cloned(),
                self.http.clone(),
                credential,
                client_capabilities.clone(),
            )
        };
        let mut sessions = BackendSessions::default();
        for (index, chosen) in session.servers.iter().enumerate() {
            let credential = session.credentials.get(&chosen.name);
            let (server, primary) = match registry.server(&chosen.name) {
                Some(current) => (current, backend_session(current, credential)),
                None => (
                    chosen,
                    backend_session(chosen, credential).of_removed_server(),
                ),
            };
            sessions.primaries.push((
                primary,
                session.prefix_for(server, &registry.tool_separator),
            ));
            for fallback in server
                .fallback
                .iter()
                .filter_map(|name| registry.server(name))
            {
                // Its own credential when the session holds one (it takes
                // it differently, or is one of the session's servers too),
                // else the primary's, which it takes the same way.
                let own = session.credentials.get(&fallback.name);
                let credential = own.or(credential.filter(|_| fallback.auth == server.auth));
                sessions
                    .fallbacks
                    .push((index, backend_session(fallback, credential)));
            }
        }
        sessions
    }
}

/// The client capabilities a backend may be told of: those the client
/// declared and mcp-mux can relay (requests on a response stream, or in an
/// `InputRequiredResult`), with only the fields this revision defines, in
/// one order: clients that declare the same share backend sessions and
/// lists, and a client cannot make up sets without end.
fn relayable(declared: Option<&Map<String, Value>>) -> Value {
    /// Each relayed capability and the fields of it that are kept.
    const RELAYED: [(&str, &[&str]); 3] = [
        ("sampling", &["context", "tools"]),
        ("elicitation", &["form", "url"]),
        ("roots", &["listChanged"]),
    ];
    let mut kept = Map::new();
    for (name, fields) in RELAYED {
        let Some(Value::Object(declared)) = declared.and_then(|declared| declared.get(name)) else {
            continue;
        };
        let fields: Map<String, Value> = fields
            .iter()
            .filter_map(|field| {
                let value = match declared.get(*field)? {
                    Value::Bool(flag) => Value::Bool(*flag),
                    Value::Object(_) => Value::Object(Map::new()),
                    _ => return None,
                };
                Some(((*field).to_owned(), value))
            })
            .collect();
        kept.insert(name.to_owned(), Value::Object(fields));
    }
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn backends_are_told_what_the_client_declared_in_one_shape() {
        let told = |declared: Value| relayable(declared.as_object());
        assert_eq!(told(json!({})), json!({}));
        // The order the client used, unknown capabilities and fields, and
        // the contents of a field's object do not matter: equal sets are
        // one key.
        let full = told(json!({
            "roots": { "listChanged": true, "extra": 1 },
            "experimental": { "x": {} },
            "elicitation": { "url": { "a": 1 }, "form": {} },
            "sampling": { "tools": {}, "context": { "b": 2 } },
        }));
        let plain = told(json!({
            "sampling": { "context": {}, "tools": {} },
            "elicitation": { "form": {}, "url": {} },
            "roots": { "listChanged": true },
        }));
        assert_eq!(full.to_string(), plain.to_string());
        assert_eq!(
            full,
            json!({
                "sampling": { "context": {}, "tools": {} },
                "elicitation": { "form": {}, "url": {} },
                "roots": { "listChanged": true },
            })
        );
        // A capability that is not an object is not declared.
        assert_eq!(told(json!({ "roots": true, "sampling": null })), json!({}));
    }
}
