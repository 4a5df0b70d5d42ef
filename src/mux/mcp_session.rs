//! One client's MCP session on a session URL: its backend sessions, opened
//! all at once, its merged catalogue, and the handling of each request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::catalogue::{BackendTools, Catalogue};
use super::error::CallError;
use crate::backend::{Attempts, BackendError, BackendSession, Initialized, Replay, Reply};
use crate::mcp::version;

/// Most pages mcp-mux follows in one backend list before giving up on it.
const MAX_LIST_PAGES: usize = 1000;

/// A successful answer: either a value mcp-mux built or a backend's result,
/// passed on as the bytes it sent.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Json(Value),
    Raw(Box<RawValue>),
}

/// How long a backend that failed stays failed before a client request may
/// try it again, so that calls to a down backend fail at once.
const DOWN_RECHECK_INTERVAL: Duration = Duration::from_secs(5);

enum SlotState {
    Ready(Initialized),
    Down { error: BackendError, since: Instant },
}

impl SlotState {
    fn from_outcome(outcome: Result<Initialized, BackendError>) -> Self {
        match outcome {
            Ok(initialized) => SlotState::Ready(initialized),
            Err(error) => SlotState::Down {
                error,
                since: Instant::now(),
            },
        }
    }
}

struct BackendSlot {
    session: BackendSession,
    prefix: String,
    state: tokio::sync::Mutex<SlotState>,
}

impl BackendSlot {
    fn name(&self) -> &str {
        &self.session.server().name
    }

    /// Re-opens a backend session that failed a while ago; returns why it is
    /// still down.
    async fn ensure_ready(&self) -> Result<(), BackendError> {
        let mut state = self.state.lock().await;
        if let SlotState::Down { since, .. } = &*state
            && since.elapsed() >= DOWN_RECHECK_INTERVAL
        {
            *state = SlotState::from_outcome(self.session.initialize(Attempts::Once).await);
        }
        match &*state {
            SlotState::Ready(_) => Ok(()),
            SlotState::Down { error, .. } => Err(error.clone()),
        }
    }

    async fn has_tools(&self) -> bool {
        match &*self.state.lock().await {
            SlotState::Ready(initialized) => initialized.capabilities.get("tools").is_some(),
            SlotState::Down { .. } => false,
        }
    }

    /// Every tool of the backend, following its pagination to the end.
    async fn list_tools(&self) -> Result<Vec<Value>, CallError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tools: Vec<Value>,
            #[serde(rename = "nextCursor", default)]
            next_cursor: Option<String>,
        }
        self.ensure_ready().await?;
        if !self.has_tools().await {
            return Ok(Vec::new());
        }
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor.as_ref().map(|cursor| json!({ "cursor": cursor }));
            let page = match self
                .session
                .request("tools/list", params.as_ref(), Replay::Safe)
                .await?
            {
                Reply::Result(raw) => {
                    serde_json::from_str::<Page>(raw.get()).map_err(|_| BackendError::Protocol {
                        server: self.name().to_owned(),
                        reason: "tools/list result is not a tool list".into(),
                    })?
                }
                Reply::Error(error) => return Err(CallError::Relayed(error)),
            };
            tools.extend(page.tools);
            match page.next_cursor {
                None => return Ok(tools),
                Some(next) if seen_cursors.insert(next.clone()) => cursor = Some(next),
                Some(_) => break,
            }
        }
        Err(BackendError::Protocol {
            server: self.name().to_owned(),
            reason: "tools/list pagination does not end".into(),
        }
        .into())
    }
}

/// A client's MCP session.
pub struct McpSession {
    pub id: String,
    pub protocol_version: &'static str,
    backends: Vec<BackendSlot>,
    catalogue: tokio::sync::RwLock<Option<Arc<Catalogue>>>,
    last_seen: Mutex<Instant>,
}

impl McpSession {
    /// Opens one backend session per backend, all at once, and answers the
    /// client's `initialize`. A backend that fails leaves the others working.
    pub(super) async fn open(
        backends: Vec<(BackendSession, String)>,
        requested_version: Option<&str>,
    ) -> (Self, Value) {
        let outcomes = join_all(
            backends
                .iter()
                .map(|(session, _)| session.initialize(Attempts::WithRetries)),
        )
        .await;
        let mut slots = Vec::with_capacity(backends.len());
        for ((session, prefix), outcome) in backends.into_iter().zip(outcomes) {
            if let Err(error) = &outcome {
                tracing::warn!(server = %session.server().name, %error, "backend failed to initialize");
            }
            let state = SlotState::from_outcome(outcome);
            slots.push(BackendSlot {
                session,
                prefix,
                state: tokio::sync::Mutex::new(state),
            });
        }
        let protocol_version = version::negotiate(requested_version);
        let mcp_session = McpSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            protocol_version,
            backends: slots,
            catalogue: tokio::sync::RwLock::new(None),
            last_seen: Mutex::new(Instant::now()),
        };
        let result = json!({
            "protocolVersion": protocol_version,
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": {
                "name": "mcp-mux",
                "title": "mcp-mux",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "instructions": mcp_session.instructions().await,
        });
        (mcp_session, result)
    }

    /// Tells the model which backend each tool prefix stands for.
    async fn instructions(&self) -> String {
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
            }) = &*slot.state.lock().await
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

    /// Answers one client request.
    pub async fn handle_request(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Payload, CallError> {
        self.touch();
        match method {
            "ping" => Ok(Payload::Json(json!({}))),
            "tools/list" => self.list_tools(params).await,
            "tools/call" => self.call_tool(params).await,
            _ => Err(CallError::MethodNotFound {
                method: method.to_owned(),
            }),
        }
    }

    async fn list_tools(&self, params: Option<Value>) -> Result<Payload, CallError> {
        if params
            .as_ref()
            .and_then(|p| p.get("cursor"))
            .is_some_and(|c| !c.is_null())
        {
            // The whole list fits in one page, so no cursor was ever handed out.
            return Err(CallError::InvalidParams {
                reason: "unknown cursor".into(),
            });
        }
        let catalogue = self.refresh_catalogue().await;
        Ok(Payload::Json(json!({ "tools": catalogue.tools })))
    }

    async fn call_tool(&self, params: Option<Value>) -> Result<Payload, CallError> {
        let Some(Value::Object(mut params)) = params else {
            return Err(CallError::InvalidParams {
                reason: "tools/call needs params with a \"name\"".into(),
            });
        };
        let Some(name) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(CallError::InvalidParams {
                reason: "\"name\" must be a string".into(),
            });
        };
        let route = match self.current_catalogue().await.route(&name) {
            Some(route) => route.clone(),
            // The list may have changed since it was built: look once more.
            None => match self.refresh_catalogue().await.route(&name) {
                Some(route) => route.clone(),
                None => return Err(self.missing_tool(name).await),
            },
        };
        let slot = &self.backends[route.backend];
        slot.ensure_ready()
            .await
            .map_err(|error| CallError::BackendDown {
                server: slot.name().to_owned(),
                reason: error.to_string(),
            })?;
        params.insert("name".into(), Value::String(route.name));
        match slot
            .session
            .request("tools/call", Some(&Value::Object(params)), route.replay)
            .await?
        {
            Reply::Result(raw) => Ok(Payload::Raw(raw)),
            Reply::Error(error) => Err(CallError::Relayed(error)),
        }
    }

    /// An unknown tool, or one of a backend that is down right now.
    async fn missing_tool(&self, name: String) -> CallError {
        for slot in &self.backends {
            if !slot.prefix.is_empty()
                && name.starts_with(&slot.prefix)
                && let SlotState::Down { error, .. } = &*slot.state.lock().await
            {
                return CallError::BackendDown {
                    server: slot.name().to_owned(),
                    reason: error.to_string(),
                };
            }
        }
        CallError::UnknownTool { name }
    }

    async fn current_catalogue(&self) -> Arc<Catalogue> {
        if let Some(catalogue) = self.catalogue.read().await.clone() {
            return catalogue;
        }
        self.refresh_catalogue().await
    }

    /// Lists every backend's tools at once and rebuilds the routing table.
    /// A backend that fails to list is left out and logged.
    async fn refresh_catalogue(&self) -> Arc<Catalogue> {
        let lists = join_all(self.backends.iter().map(BackendSlot::list_tools)).await;
        let mut sources = Vec::new();
        for (index, (slot, list)) in self.backends.iter().zip(lists).enumerate() {
            match list {
                Ok(tools) => sources.push(BackendTools {
                    backend: index,
                    server: slot.name(),
                    prefix: slot.prefix.clone(),
                    tools,
                }),
                Err(error) => {
                    tracing::warn!(server = slot.name(), %error, "backend tools left out of the list")
                }
            }
        }
        let catalogue = Arc::new(Catalogue::build(sources));
        *self.catalogue.write().await = Some(catalogue.clone());
        catalogue
    }

    /// Ends every backend session with DELETE.
    pub async fn close(&self) {
        join_all(self.backends.iter().map(|slot| slot.session.close())).await;
    }
}
