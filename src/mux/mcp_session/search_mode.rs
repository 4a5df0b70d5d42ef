//! A session in search mode (`"tool_mode": "search"`) lists three tools
//! instead of its whole catalogue: `search_tools` ranks the catalogue's
//! tools for a task, `describe_tool` shows one, and `call_tool` calls one,
//! routed like a direct call (rules, retries, audit, progress and errors
//! alike), and teaches the session which tool its last search meant. A
//! direct call by a tool's own name still works, as over plain HTTP.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{ClientCall, McpSession};
use crate::mcp::request::ByName;
use crate::mux::curation::ToolMode;
use crate::mux::error::CallError;
use crate::mux::item_kind::NamedKind;
use crate::mux::payload::Payload;
use crate::mux::search::{
    CALL_TOOL, DEFAULT_LIMIT, DESCRIBE_TOOL, Detail, FUSED_DEPTH, MAX_LIMIT, SEARCH_TOOLS, fuse,
    search_mode_tools, search_result, tool_summary,
};

/// How long a search waits for its list's embeddings while a sentence
/// model makes them; then it ranks by words alone.
const SEMANTIC_WAIT: Duration = Duration::from_secs(5);

impl McpSession {
    /// With a sentence model, a search-mode MCP session lists its tools and
    /// starts making their embeddings as soon as it opens, so that its
    /// first search finds them made, or on their way.
    pub(crate) fn prepare_search(self: &Arc<Self>) {
        let Some(model) = self.search_model.clone() else {
            return;
        };
        if self.curation.rules.tool_mode != ToolMode::Search {
            return;
        }
        let mcp_session = self.clone();
        tokio::spawn(async move {
            let catalogue = mcp_session.current_catalogue(NamedKind::Tool).await;
            catalogue.semantic_index(&model);
        });
    }

    /// The three tools a search-mode session lists.
    pub(super) fn search_mode_list(&self) -> Payload {
        Payload::Json(json!({ "tools": search_mode_tools() }))
    }

    /// A `tools/call` in a search-mode session.
    pub(super) async fn search_mode_call(
        &self,
        tool: ByName,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let arguments = tool
            .params
            .get("arguments")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match tool.name.as_str() {
            SEARCH_TOOLS => {
                let query = required_text(&arguments, "query")?;
                let limit = match arguments.get("limit") {
                    None | Some(Value::Null) => DEFAULT_LIMIT,
                    Some(limit) => limit
                        .as_u64()
                        .and_then(|limit| usize::try_from(limit).ok())
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| CallError::InvalidParams {
                            reason: format!(
                                "arguments.limit must be a whole number from 1 to {MAX_LIMIT}"
                            ),
                        })?,
                };
                let detail = match arguments.get("detail") {
                    None | Some(Value::Null) => Detail::default(),
                    Some(detail) => detail.as_str().and_then(Detail::parse).ok_or_else(|| {
                        CallError::InvalidParams {
                            reason: format!("arguments.detail must be {}", Detail::VALUES),
                        }
                    })?,
                };
                let lifts = self.learning.searched(query).await;
                let catalogue = self.current_catalogue(NamedKind::Tool).await;
                let query = query.to_owned();
                // The first search of a list builds its index: CPU work that
                // belongs on the blocking pool, not on a worker that answers
                // other requests.
                let model = self.search_model.clone();
                if let Some(model) = &model {
                    catalogue.await_semantic_index(model, SEMANTIC_WAIT).await;
                }
                let found = tokio::task::spawn_blocking(move || {
                    let lifts: Vec<(&str, f64)> = lifts
                        .iter()
                        .map(|(tool, by)| (tool.as_str(), *by))
                        .collect();
                    let semantic = model.as_ref().and_then(|model| {
                        let index = catalogue.semantic_index(model)?;
                        match model.query(&query) {
                            Ok(embedding) => Some(index.nearest(&embedding, FUSED_DEPTH)),
                            Err(error) => {
                                tracing::warn!(%error, "this search ranks by words alone");
                                None
                            }
                        }
                    });
                    let index = catalogue.index();
                    let hits = match semantic {
                        None => index.search_lifted(&query, limit, &lifts),
                        Some(nearest) => {
                            let lexical = index.search_lifted(&query, FUSED_DEPTH, &lifts);
                            fuse(&lexical, &nearest, limit)
                        }
                    };
                    search_result(&catalogue.items, &hits, detail)
                })
                .await
                .map_err(|error| {
                    tracing::error!(%error, "searching the tools failed");
                    CallError::Interrupted
                })?;
                Ok(Payload::Json(found))
            }
            DESCRIBE_TOOL => {
                let name = required_text(&arguments, "name")?;
                let catalogue = self.current_catalogue(NamedKind::Tool).await;
                let item = catalogue.item(name).ok_or_else(|| CallError::Unknown {
                    kind: NamedKind::Tool,
                    name: name.to_owned(),
                })?;
                let text = tool_summary(item).to_string();
                Ok(Payload::Json(
                    json!({ "content": [{ "type": "text", "text": text }] }),
                ))
            }
            CALL_TOOL => {
                let name = required_text(&arguments, "name")?.to_owned();
                let mut params = Map::new();
                match arguments.get("arguments") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(inner)) => {
                        params.insert("arguments".into(), Value::Object(inner.clone()));
                    }
                    Some(_) => {
                        return Err(CallError::InvalidParams {
                            reason: "arguments.arguments must be an object".into(),
                        });
                    }
                }
                // The call's own `_meta` (its progress token) goes with it.
                if let Some(meta) = tool.params.get("_meta") {
                    params.insert("_meta".into(), meta.clone());
                }
                let called = self
                    .use_item(
                        NamedKind::Tool,
                        ByName {
                            name: name.clone(),
                            params,
                        },
                        call,
                    )
                    .await;
                if called.is_ok() {
                    self.learning.called(&name).await;
                }
                called
            }
            _ => self.use_item(NamedKind::Tool, tool, call).await,
        }
    }
}

/// A required, non-empty string argument.
fn required_text<'a>(arguments: &'a Map<String, Value>, key: &str) -> Result<&'a str, CallError> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| CallError::InvalidParams {
            reason: format!("arguments.{key} must be a non-empty string"),
        })
}
