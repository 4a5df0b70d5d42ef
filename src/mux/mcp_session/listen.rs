//! `subscriptions/listen` streams (revision 2026-07-28) on an MCP
//! session, and the backend resource subscriptions they hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::{ClientCall, McpSession};
use crate::mcp::request::{ClientRequest, Method};
use crate::mux::subscriptions::Filter;

/// An open `subscriptions/listen` stream; dropping it ends the stream and
/// the backend subscriptions no other stream needs.
pub struct Subscription {
    mcp_session: Arc<McpSession>,
    key: u64,
    /// What the stream carries, as acknowledged.
    pub filter: Filter,
    /// The tagged notifications, serialized.
    pub receiver: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

impl McpSession {
    /// Opens a `subscriptions/listen` stream. Resource URIs are subscribed
    /// at their backends first; the acknowledged filter names only those a
    /// backend took.
    pub async fn listen(
        self: &Arc<Self>,
        subscription_id: Value,
        mut filter: Filter,
    ) -> Subscription {
        self.touch();
        let mut honoured = Vec::new();
        for uri in std::mem::take(&mut filter.uris) {
            if self.listeners().watches(&uri)
                || self
                    .resource_subscription(Method::ResourcesSubscribe, &uri)
                    .await
            {
                honoured.push(uri);
            }
        }
        filter.uris = honoured;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let key = self
            .listeners()
            .add(subscription_id, filter.clone(), sender);
        Subscription {
            mcp_session: self.clone(),
            key,
            filter,
            receiver,
        }
    }

    /// Subscribes to (or unsubscribes from) a resource at its backend;
    /// false when the backend refused or could not be reached.
    async fn resource_subscription(&self, method: Method, uri: &str) -> bool {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = json!(format!("listen-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let call = ClientCall {
            id: &id,
            stream: None,
        };
        let request = ClientRequest::of(method, Some(json!({ "uri": uri })));
        match async { self.handle_request(request?, &call).await }.await {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!(method = method.as_str(), %error, "resource subscription not honoured");
                false
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let listeners = self.mcp_session.listeners();
        listeners.remove(self.key);
        let unwatched: Vec<String> = self
            .filter
            .uris
            .iter()
            .filter(|uri| !listeners.watches(uri))
            .cloned()
            .collect();
        if unwatched.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mcp_session = self.mcp_session.clone();
        runtime.spawn(async move {
            for uri in unwatched {
                mcp_session
                    .resource_subscription(Method::ResourcesUnsubscribe, &uri)
                    .await;
            }
        });
    }
}
