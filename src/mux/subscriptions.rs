//! `subscriptions/listen` (revision 2026-07-28): long-lived streams that
//! carry only the change notifications each client opted in to, tagged with
//! the id of the request that opened the stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value, json};

use super::error::CallError;
use crate::mcp::stateless::META_SUBSCRIPTION_ID;

/// Most URIs one `subscriptions/listen` may name: each new one is a request
/// to a backend.
pub const MAX_RESOURCE_SUBSCRIPTIONS: usize = 32;
/// Most `subscriptions/listen` streams open at once on one session.
pub const MAX_LISTEN_STREAMS: usize = 64;

/// The notifications a listener asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    /// URIs as the client knows them (`<server>+<uri>`).
    pub uris: Vec<String>,
}

impl Filter {
    /// Reads `params.notifications`; every field is optional.
    pub fn parse(params: Option<&Value>) -> Result<Filter, CallError> {
        let invalid = |reason: &str| CallError::InvalidParams {
            reason: reason.to_owned(),
        };
        let notifications = match params.and_then(|params| params.get("notifications")) {
            None => return Ok(Filter::default()),
            Some(Value::Object(notifications)) => notifications,
            Some(_) => return Err(invalid("\"notifications\" must be an object")),
        };
        let flag = |key: &str| match notifications.get(key) {
            None => Ok(false),
            Some(Value::Bool(wanted)) => Ok(*wanted),
            Some(_) => Err(invalid(&format!(
                "\"notifications.{key}\" must be a boolean"
            ))),
        };
        let uris = match notifications.get("resourceSubscriptions") {
            None => Vec::new(),
            Some(Value::Array(uris)) if uris.len() <= MAX_RESOURCE_SUBSCRIPTIONS => uris
                .iter()
                .map(|uri| uri.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid("\"notifications.resourceSubscriptions\" must be a list of URIs")
                })?,
            Some(Value::Array(_)) => {
                return Err(invalid(&format!(
                    "\"notifications.resourceSubscriptions\" may name at most {MAX_RESOURCE_SUBSCRIPTIONS} URIs"
                )));
            }
            Some(_) => {
                return Err(invalid(
                    "\"notifications.resourceSubscriptions\" must be a list of URIs",
                ));
            }
        };
        Ok(Filter {
            tools: flag("toolsListChanged")?,
            prompts: flag("promptsListChanged")?,
            resources: flag("resourcesListChanged")?,
            uris,
        })
    }

    /// The filter as the acknowledgment states it: only what was asked for
    /// and is honoured.
    pub fn acknowledged(&self) -> Value {
        let mut honoured = Map::new();
        for (wanted, key) in [
            (self.tools, "toolsListChanged"),
            (self.prompts, "promptsListChanged"),
            (self.resources, "resourcesListChanged"),
        ] {
            if wanted {
                honoured.insert(key.to_owned(), Value::Bool(true));
            }
        }
        if !self.uris.is_empty() {
            honoured.insert("resourceSubscriptions".to_owned(), json!(self.uris));
        }
        Value::Object(honoured)
    }

    fn admits(&self, message: &Value) -> bool {
        match message.get("method").and_then(Value::as_str) {
            Some("notifications/tools/list_changed") => self.tools,
            Some("notifications/prompts/list_changed") => self.prompts,
            Some("notifications/resources/list_changed") => self.resources,
            Some("notifications/resources/updated") => message
                .pointer("/params/uri")
                .and_then(Value::as_str)
                .is_some_and(|uri| self.uris.iter().any(|wanted| wanted == uri)),
            _ => false,
        }
    }
}

/// The `notifications/subscriptions/acknowledged` that opens a stream.
pub fn acknowledgment(subscription_id: &Value, filter: &Filter) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {
            "_meta": { META_SUBSCRIPTION_ID: subscription_id },
            "notifications": filter.acknowledged(),
        },
    })
}

/// The response that ends a stream gracefully (on shutdown, say).
pub fn closing_response(subscription_id: &Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": subscription_id,
        "result": {
            "resultType": "complete",
            "_meta": { META_SUBSCRIPTION_ID: subscription_id },
        },
    })
}

struct Listener {
    key: u64,
    subscription_id: Value,
    filter: Filter,
    sender: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

/// The open `subscriptions/listen` streams of one MCP session.
#[derive(Default)]
pub struct Listeners {
    open: Mutex<Vec<Listener>>,
    next_key: AtomicU64,
}

impl Listeners {
    /// Adds a stream; the returned key removes it.
    pub(super) fn add(
        &self,
        subscription_id: Value,
        filter: Filter,
        sender: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    ) -> u64 {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Listener {
            key,
            subscription_id,
            filter,
            sender,
        });
        key
    }

    pub(super) fn remove(&self, key: u64) {
        self.lock().retain(|listener| listener.key != key);
    }

    /// Drops every stream's sender, which ends the stream.
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether any open stream watches `uri`.
    pub fn watches(&self, uri: &str) -> bool {
        self.lock()
            .iter()
            .any(|listener| listener.filter.uris.iter().any(|wanted| wanted == uri))
    }

    /// Sends a notification to every stream that asked for its kind,
    /// tagged with that stream's subscription id.
    pub(super) fn dispatch(&self, message: &Value) {
        let mut open = self.lock();
        if open.is_empty() {
            return;
        }
        open.retain(|listener| {
            if !listener.filter.admits(message) {
                return true;
            }
            let mut tagged = message.clone();
            if !tagged.get("params").is_some_and(Value::is_object) {
                tagged["params"] = json!({});
            }
            let params = &mut tagged["params"];
            if !params.get("_meta").is_some_and(Value::is_object) {
                params["_meta"] = json!({});
            }
            params["_meta"][META_SUBSCRIPTION_ID] = listener.subscription_id.clone();
            serde_json::to_vec(&tagged)
                .map(|bytes| listener.sender.send(bytes).is_ok())
                .unwrap_or(true)
        });
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Listener>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_read_and_acknowledged_as_asked() {
        let params = json!({ "notifications": {
            "toolsListChanged": true,
            "promptsListChanged": false,
            "resourceSubscriptions": ["a+file:///x"],
        }});
        let filter = Filter::parse(Some(&params)).expect("well-formed");
        assert_eq!(
            filter.acknowledged(),
            json!({ "toolsListChanged": true, "resourceSubscriptions": ["a+file:///x"] })
        );
        assert_eq!(Filter::parse(None).expect("well-formed"), Filter::default());
    }

    #[test]
    fn a_malformed_filter_names_its_field() {
        for (notifications, reason) in [
            (json!(1), "\"notifications\" must be an object"),
            (
                json!({ "toolsListChanged": "yes" }),
                "\"notifications.toolsListChanged\" must be a boolean",
            ),
            (
                json!({ "resourceSubscriptions": [1] }),
                "\"notifications.resourceSubscriptions\" must be a list of URIs",
            ),
        ] {
            let error = Filter::parse(Some(&json!({ "notifications": notifications })))
                .expect_err("refused");
            assert_eq!(error.to_string(), format!("invalid params: {reason}"));
        }
    }

    #[test]
    fn each_stream_gets_what_it_asked_for_under_its_own_id() {
        let listeners = Listeners::default();
        let (tools_sender, mut tools) = tokio::sync::mpsc::unbounded_channel();
        let (uri_sender, mut uri) = tokio::sync::mpsc::unbounded_channel();
        let tools_only = Filter {
            tools: true,
            ..Filter::default()
        };
        let one_uri = Filter {
            uris: vec!["a+file:///x".into()],
            ..Filter::default()
        };
        listeners.add(json!(1), tools_only, tools_sender);
        let key = listeners.add(json!("s"), one_uri, uri_sender);
        assert!(listeners.watches("a+file:///x"));

        listeners
            .dispatch(&json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }));
        listeners.dispatch(&json!({ "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": { "uri": "a+file:///y" } }));
        listeners.dispatch(&json!({ "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": { "uri": "a+file:///x" } }));

        let got: Value =
            serde_json::from_slice(&tools.try_recv().expect("well-formed")).expect("well-formed");
        assert_eq!(got["params"]["_meta"][META_SUBSCRIPTION_ID], 1);
        assert!(tools.try_recv().is_err());
        let got: Value =
            serde_json::from_slice(&uri.try_recv().expect("well-formed")).expect("well-formed");
        assert_eq!(got["params"]["uri"], "a+file:///x");
        assert_eq!(got["params"]["_meta"][META_SUBSCRIPTION_ID], "s");
        assert!(uri.try_recv().is_err());

        listeners.remove(key);
        assert!(!listeners.watches("a+file:///x"));
    }
}
