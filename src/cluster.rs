//! The nodes that share one PostgreSQL store. Each says it is alive with a
//! heartbeat row (with the URL the others reach it at), and counts the
//! others: a rate that holds across the gateway is shared out among the
//! live nodes. A request for an MCP session another live node holds is
//! passed to that node (`routes/mcp/forward.rs`), with the secret it
//! published, so that it is served where the session's calls, streams and
//! subscriptions live. A node that changes what others hold in memory (it
//! deleted a session) tells them with a notification (LISTEN/NOTIFY); a
//! node whose listening connection broke checks what it holds against the
//! store once it listens again, since notifications sent meanwhile are
//! lost.
//!
//! A SQLite store belongs to one node: there, this does nothing and the
//! gateway is one node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::OnceLock;

use chrono::Utc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::{NodeRecord, Store, StoreError};

/// The header that carries a request passed from another node: the
/// receiving node's secret.
pub const FORWARDED_HEADER: &str = "mcp-mux-forwarded";
/// Time allowed to reach another node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node silent this long is no longer counted (it died, or lost the store).
const LIVE_WITHIN: Duration = Duration::from_secs(10);
/// Waits before listening again after the connection broke: doubling from
/// the first to the last.
const RELISTEN_FIRST: Duration = Duration::from_millis(200);
const RELISTEN_LAST: Duration = Duration::from_secs(5);
/// Events a slow follower may fall behind by before it checks everything.
const EVENTS: usize = 1024;

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A session was deleted: its MCP sessions end everywhere.
    SessionDeleted(Uuid),
    /// Notifications may have been missed: check what is held against the
    /// store.
    Resync,
    /// This node could not reach the store for as long as the others take
    /// to count it gone: they may have taken over what it holds, so it lets
    /// go of it (told to this node only).
    Fenced,
}

impl ClusterEvent {
    fn payload(&self) -> Option<String> {
        match self {
            ClusterEvent::SessionDeleted(id) => Some(format!("session_deleted {id}")),
            ClusterEvent::Resync | ClusterEvent::Fenced => None,
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(' ')? {
            ("session_deleted", id) => Uuid::try_parse(id).ok().map(ClusterEvent::SessionDeleted),
            _ => None,
        }
    }
}

/// This node, among the nodes sharing its store.
pub struct Cluster {
    node: Uuid,
    started_at: chrono::DateTime<Utc>,
    /// Where the others reach this node, set once it listens.
    url: OnceLock<String>,
    /// What the others show this node when they pass it a request.
    secret: String,
    /// Passes requests to other nodes; follows no redirect.
    http: reqwest::Client,
    store: Store,
    /// Live nodes at the last heartbeat, this one included.
    live: AtomicUsize,
    events: broadcast::Sender<ClusterEvent>,
}

impl Cluster {
    pub fn new(store: Store) -> Self {
        Cluster {
            node: Uuid::new_v4(),
            started_at: Utc::now(),
            url: OnceLock::new(),
            secret: oauth2::CsrfToken::new_random_len(32).into_secret(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .unwrap_or_default(),
            store,
            live: AtomicUsize::new(1),
            events: broadcast::channel(EVENTS).0,
        }
    }

    /// This node's id, for the MCP sessions it holds.
    pub fn node_id(&self) -> Uuid {
        self.node
    }

    /// Where the other nodes reach this one (`--node-url`, else the address
    /// it listens on). Without it, they take over its MCP sessions rather
    /// than pass it their requests.
    pub fn reached_at(&self, url: String) {
        let _ = self.url.set(url);
    }

    /// Whether a request was passed here by another node (it shows this
    /// node's secret): it is served here, and its rate was charged where
    /// it arrived.
    pub fn is_forwarded(&self, request: &actix_web::HttpRequest) -> bool {
        request
            .headers()
            .get(FORWARDED_HEADER)
            .is_some_and(|shown| bool::from(shown.as_bytes().ct_eq(self.secret.as_bytes())))
    }

    /// Where `node` is reached and the secret it takes, if it is another
    /// node, alive, and reachable.
    pub async fn other_live_node(
        &self,
        node: Uuid,
    ) -> Result<Option<(String, String)>, StoreError> {
        if node == self.node || !self.store.is_shared() {
            return Ok(None);
        }
        self.store.live_node(node, live_since(Utc::now())).await
    }

    /// The client that passes requests to other nodes.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The live nodes sharing the store, this one included: at least 1.
    pub fn live_nodes(&self) -> usize {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// What other nodes tell this one.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }

    /// Tells every node sharing the store (a failure is logged: the others
    /// still learn it at their next check against the store).
    pub async fn publish(&self, event: ClusterEvent) {
        let Some(payload) = event.payload() else {
            return;
        };
        if let Err(error) = self.store.notify(&payload).await {
            tracing::warn!(%error, ?event, "could not tell the other nodes");
        }
    }

    /// Heartbeats and listens for as long as the future is polled, when
    /// the store is shared; returns at once otherwise.
    pub async fn run(&self) {
        if !self.store.is_shared() {
            return;
        }
        tokio::join!(self.beat(), self.listen());
    }

    /// Says this node is gone, at the end of a shutdown.
    pub async fn leave(&self) {
        if self.store.is_shared()
            && let Err(error) = self.store.leave(self.node).await
        {
            tracing::warn!(%error, "could not remove this node from the store");
        }
    }

    async fn beat(&self) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        let mut last_beat = std::time::Instant::now();
        let mut fenced = false;
        loop {
            tick.tick().await;
            let now = Utc::now();
            let since = live_since(now);
            let record = NodeRecord {
                id: self.node,
                started_at: self.started_at,
                url: self.url.get().cloned(),
                secret: self.secret.clone(),
            };
            let counted = match self.store.heartbeat(&record, now).await {
                Ok(()) => self.store.live_nodes(since).await,
                Err(error) => Err(error),
            };
            match counted {
                Ok(live) => {
                    last_beat = std::time::Instant::now();
                    fenced = false;
                    let live = usize::try_from(live).unwrap_or(usize::MAX).max(1);
                    if self.live.swap(live, Ordering::Relaxed) != live {
                        tracing::info!(live, "nodes sharing the store");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "heartbeat failed");
                    if !fenced && counted_gone(last_beat.elapsed()) {
                        fenced = true;
                        tracing::warn!(
                            "no heartbeat for 10 s: the other nodes count this one gone and may take over its MCP sessions; letting go of them"
                        );
                        let _ = self.events.send(ClusterEvent::Fenced);
                    }
                }
            }
        }
    }

    async fn listen(&self) {
        let mut wait = RELISTEN_FIRST;
        loop {
            match self.store.listen().await {
                Ok(Some(mut listener)) => {
                    wait = RELISTEN_FIRST;
                    // Whatever was told while no one listened.
                    let _ = self.events.send(ClusterEvent::Resync);
                    // `try_recv` says when the connection broke (`recv` would
                    // reconnect unseen, and what was told meanwhile be lost):
                    // then listen afresh, and check again.
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => {
                                if let Some(event) = ClusterEvent::parse(notification.payload()) {
                                    let _ = self.events.send(event);
                                }
                            }
                            Ok(None) => {
                                tracing::warn!(
                                    "lost the connection that listens to the other nodes"
                                );
                                break;
                            }
                            Err(error) => {
                                tracing::warn!(%error, "lost the connection that listens to the other nodes");
                                break;
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(error) => tracing::warn!(%error, "cannot listen to the other nodes"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RELISTEN_LAST);
        }
    }
}

/// The oldest heartbeat at `now` of a node still counted alive.
pub fn live_since(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    now - chrono::Duration::from_std(LIVE_WITHIN).unwrap_or_default()
}

/// Whether the other nodes count a node gone whose last heartbeat was
/// `since` ago.
fn counted_gone(since: Duration) -> bool {
    since >= LIVE_WITHIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_go_out_and_come_back_as_they_were() {
        let id = Uuid::new_v4();
        let event = ClusterEvent::SessionDeleted(id);
        let payload = event.payload().expect("sent");
        assert_eq!(payload, format!("session_deleted {id}"));
        assert_eq!(ClusterEvent::parse(&payload), Some(event));
        assert_eq!(ClusterEvent::Resync.payload(), None, "never sent");
        assert_eq!(ClusterEvent::Fenced.payload(), None, "never sent");
        for garbage in ["", "session_deleted", "session_deleted x", "other 1"] {
            assert_eq!(ClusterEvent::parse(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_node_lets_go_once_the_others_count_it_gone() {
        assert!(!counted_gone(Duration::from_secs(9)));
        assert!(counted_gone(LIVE_WITHIN));
        assert!(counted_gone(Duration::from_secs(60)));
    }
}
