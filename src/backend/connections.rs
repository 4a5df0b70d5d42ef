//! The gateway's budget of backend connections, shared by every backend and
//! session: each exchange in flight and each long-lived stream (a backend's
//! own stream, a stdio child, an HTTP+SSE stream) holds a permit, so that
//! no client can make mcp-mux open more sockets than the process can
//! afford. Streams may take at most half of the budget, so calls always
//! find room; and each session may hold only its share of the budget, so
//! that one session cannot take it all.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::error::BackendError;

/// How long an exchange waits for a connection to free up before it is
/// refused: long enough to ride out a burst, short enough to answer.
const EXCHANGE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct ConnectionBudget {
    all: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    max: usize,
}

/// One backend connection in use; dropping it gives it back.
#[derive(Debug)]
pub struct ConnectionPermit {
    _connection: OwnedSemaphorePermit,
    _stream: Option<OwnedSemaphorePermit>,
    _held: Option<Held>,
}

/// The backend connections one session holds, within its share of the
/// gateway's budget, for every MCP session and backend of the session.
///
/// A session may hold at most half of what is free or already its own,
/// counted apart for exchanges (of all connections) and for streams (of
/// the stream slots), so that its streams never leave its own calls
/// without room. A session alone may so take half, and each further one at
/// most half of what the others leave: one that holds nothing yet always
/// finds a connection while the others keep to their shares. It needs no
/// more than the session's own counts and the number free: no list of
/// sessions, no weights, no shares to revise as sessions come and go. A
/// session that holds none may always take one, and one whose share
/// shrank since keeps what it took: exchanges are short, so holdings soon
/// settle to the shares of the moment. Many sessions of one client are
/// bounded elsewhere (`--max-sessions`, `--create-session-rate`).
#[derive(Debug)]
pub struct SessionConnections {
    budget: Arc<ConnectionBudget>,
    held: Mutex<Counts>,
    /// Told whenever the session gives a connection back.
    freed: Notify,
}

/// What a session holds: exchanges in flight, and stream slots (a stdio
/// child's pipes count each).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub exchanges: usize,
    pub streams: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exchange,
    Stream,
}

impl Counts {
    fn of(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Exchange => &mut self.exchanges,
            Kind::Stream => &mut self.streams,
        }
    }
}

/// Connections counted against a session until dropped.
#[derive(Debug)]
struct Held {
    session: Arc<SessionConnections>,
    kind: Kind,
    count: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        *self.session.lock().of(self.kind) -= self.count;
        self.session.freed.notify_waiters();
    }
}

impl ConnectionBudget {
    /// A budget of `max` connections (at least 2: one stream, one call).
    pub fn new(max: usize) -> Self {
        let max = max.max(2);
        ConnectionBudget {
            all: Arc::new(Semaphore::new(max)),
            streams: Arc::new(Semaphore::new(max / 2)),
            max,
        }
    }

    /// A connection for one exchange with `server`.
    pub async fn for_exchange(&self, server: &str) -> Result<ConnectionPermit, BackendError> {
        self.exchange(EXCHANGE_WAIT)
            .await
            .ok_or_else(|| self.exhausted(server))
    }

    /// A long-lived stream of `server` that holds `descriptors` open files
    /// (a socket is one, a child process's three pipes are three), if they
    /// are free now.
    pub fn for_stream(
        &self,
        server: &str,
        descriptors: u32,
    ) -> Result<ConnectionPermit, BackendError> {
        self.stream(descriptors)
            .ok_or_else(|| self.exhausted(server))
    }

    fn exhausted(&self, server: &str) -> BackendError {
        BackendError::NoConnection {
            server: server.to_owned(),
            limit: self.max,
        }
    }

    /// A connection for one exchange, waited for up to `wait`.
    async fn exchange(&self, wait: Duration) -> Option<ConnectionPermit> {
        let acquired = tokio::time::timeout(wait, self.all.clone().acquire_owned()).await;
        match acquired {
            Ok(Ok(connection)) => Some(ConnectionPermit {
                _connection: connection,
                _stream: None,
                _held: None,
            }),
            // The semaphores are never closed.
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// A connection for one exchange, if one is free now.
    fn try_exchange(&self) -> Option<ConnectionPermit> {
        let connection = self.all.clone().try_acquire_owned().ok()?;
        Some(ConnectionPermit {
            _connection: connection,
            _stream: None,
            _held: None,
        })
    }

    /// A connection for a long-lived stream, only if one is free now: a
    /// stream that cannot open is tried again later, and calls never wait
    /// behind streams.
    fn stream(&self, descriptors: u32) -> Option<ConnectionPermit> {
        let stream = self
            .streams
            .clone()
            .try_acquire_many_owned(descriptors)
            .ok()?;
        let connection = self.all.clone().try_acquire_many_owned(descriptors).ok()?;
        Some(ConnectionPermit {
            _connection: connection,
            _stream: Some(stream),
            _held: None,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Stream slots: half of the connections.
    pub fn max_streams(&self) -> usize {
        self.max / 2
    }

    /// Connections in use now.
    pub fn in_use(&self) -> usize {
        self.max - self.all.available_permits()
    }
}

/// The most a session holding `held` may hold while `free` others are.
fn share(held: usize, free: usize) -> usize {
    ((held + free) / 2).max(1)
}

impl SessionConnections {
    pub fn new(budget: Arc<ConnectionBudget>) -> Self {
        SessionConnections {
            budget,
            held: Mutex::default(),
            freed: Notify::new(),
        }
    }

    /// A connection for one exchange with `server`, within the session's
    /// share: waited for up to 2 s, for the gateway to free one or the
    /// session to give one back.
    pub async fn for_exchange(
        self: &Arc<Self>,
        server: &str,
    ) -> Result<ConnectionPermit, BackendError> {
        let deadline = tokio::time::Instant::now() + EXCHANGE_WAIT;
        loop {
            // Enabled before the share is checked, so that a connection
            // given back meanwhile is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let refused = match self.try_exchange() {
                Ok(Some(permit)) => return Ok(permit),
                Err(refused) => refused,
                // None free: wait for one, then see whether the session
                // may have it.
                Ok(None) => {
                    let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let Some(permit) = self.budget.exchange(wait).await else {
                        return Err(self.budget.exhausted(server));
                    };
                    let mut counts = self.lock();
                    match self.within_share(&counts, Kind::Exchange, 1, 1) {
                        Ok(()) => return Ok(self.count(&mut counts, permit, Kind::Exchange, 1)),
                        Err(refused) => refused,
                    }
                }
            };
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(refused.error(server));
            }
        }
    }

    /// A connection for one exchange if one is free now and within the
    /// session's share; checked and taken at once, so that the session's
    /// own requests running alongside never skew its share.
    fn try_exchange(self: &Arc<Self>) -> Result<Option<ConnectionPermit>, OverShare> {
        let mut counts = self.lock();
        self.within_share(&counts, Kind::Exchange, 1, 0)?;
        Ok(self
            .budget
            .try_exchange()
            .map(|permit| self.count(&mut counts, permit, Kind::Exchange, 1)))
    }

    /// A connection for the exchange that ends a backend session of
    /// `server`: outside the session's share, since ending it is what
    /// gives the session's connections back.
    pub async fn for_closing(&self, server: &str) -> Result<ConnectionPermit, BackendError> {
        self.budget.for_exchange(server).await
    }

    /// A long-lived stream of `server` holding `descriptors` open files,
    /// if they are free now and within the session's share of streams.
    pub fn for_stream(
        self: &Arc<Self>,
        server: &str,
        descriptors: u32,
    ) -> Result<ConnectionPermit, BackendError> {
        let count = descriptors as usize;
        let mut counts = self.lock();
        self.within_share(&counts, Kind::Stream, count, 0)
            .map_err(|refused| refused.error(server))?;
        let permit = self.budget.for_stream(server, descriptors)?;
        Ok(self.count(&mut counts, permit, Kind::Stream, count))
    }

    /// Whether the session may take `count` more connections of `kind`,
    /// `taken` of which it already took from the budget.
    fn within_share(
        &self,
        counts: &Counts,
        kind: Kind,
        count: usize,
        taken: usize,
    ) -> Result<(), OverShare> {
        let (held, free, limit) = match kind {
            Kind::Exchange => (
                counts.exchanges,
                self.budget.all.available_permits(),
                self.budget.max,
            ),
            Kind::Stream => (
                counts.streams,
                self.budget.streams.available_permits(),
                self.budget.max_streams(),
            ),
        };
        let share = share(held, free + taken);
        if held > 0 && held + count > share {
            return Err(OverShare { kind, share, limit });
        }
        Ok(())
    }

    /// Counts `permit`, of `count` connections of `kind`, against the
    /// session until it is dropped.
    fn count(
        self: &Arc<Self>,
        counts: &mut Counts,
        mut permit: ConnectionPermit,
        kind: Kind,
        count: usize,
    ) -> ConnectionPermit {
        *counts.of(kind) += count;
        permit._held = Some(Held {
            session: self.clone(),
            kind,
            count,
        });
        permit
    }

    /// What the session holds now.
    pub fn held(&self) -> Counts {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's refusal: it holds its `share` of the `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OverShare {
    kind: Kind,
    share: usize,
    limit: usize,
}

impl OverShare {
    fn error(self, server: &str) -> BackendError {
        BackendError::SessionConnections {
            server: server.to_owned(),
            what: match self.kind {
                Kind::Exchange => "backend connections",
                Kind::Stream => "backend streams",
            },
            share: self.share,
            limit: self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_take_at_most_half_and_calls_wait_for_a_free_connection() {
        let budget = ConnectionBudget::new(4);
        let first = budget.stream(1).expect("a stream");
        let _second = budget.stream(1).expect("a second stream");
        assert!(budget.stream(1).is_none(), "streams are held to half");
        let call = budget
            .exchange(Duration::ZERO)
            .await
            .expect("calls find room");
        let _other_call = budget.exchange(Duration::ZERO).await.expect("room");
        assert_eq!(budget.in_use(), 4);
        assert!(budget.exchange(Duration::from_millis(10)).await.is_none());
        drop(call);
        assert!(budget.exchange(Duration::ZERO).await.is_some());
        drop(first);
        assert!(budget.stream(1).is_some(), "a stream given back is reused");
        assert!(budget.stream(2).is_none(), "a child's pipes count each");
    }

    #[tokio::test]
    async fn a_lone_session_takes_half_the_budget_and_the_next_half_of_the_rest() {
        let budget = Arc::new(ConnectionBudget::new(32));
        let hog = Arc::new(SessionConnections::new(budget.clone()));
        let mut held = Vec::new();
        for _ in 0..16 {
            held.push(hog.for_exchange("a").await.expect("within the share"));
        }
        let refused = hog.try_exchange().expect_err("over the share");
        assert_eq!(
            refused.error("a").to_string(),
            "this session already holds its share of mcp-mux's backend connections \
             (16 of 32: half of those other sessions leave free); try again shortly"
        );
        assert_eq!(budget.in_use(), 16);

        // A call over the share waits for one of the session's own to end.
        let waiting = tokio::spawn({
            let hog = hog.clone();
            async move { hog.for_exchange("a").await }
        });
        tokio::task::yield_now().await;
        drop(held.pop());
        held.push(waiting.await.expect("task").expect("given back to it"));
        assert_eq!(hog.held().exchanges, 16);

        let next = Arc::new(SessionConnections::new(budget.clone()));
        let mut others = Vec::new();
        for _ in 0..8 {
            others.push(next.for_exchange("b").await.expect("within the share"));
        }
        let refused = next.try_exchange().expect_err("over the share");
        assert_eq!(refused.share, 8);
        let newcomer = Arc::new(SessionConnections::new(budget.clone()));
        let _one = newcomer
            .for_exchange("c")
            .await
            .expect("one is always left");
        drop(held);
        assert_eq!(hog.held(), Counts::default());
        assert_eq!(budget.in_use(), 9);
    }

    #[tokio::test]
    async fn a_sessions_streams_have_a_share_of_their_own_and_leave_its_calls_room() {
        let budget = Arc::new(ConnectionBudget::new(32));
        let session = Arc::new(SessionConnections::new(budget.clone()));
        let streams: Vec<_> = (0..8)
            .map(|_| session.for_stream("a", 1).expect("within the share"))
            .collect();
        let refused = session.for_stream("a", 1).expect_err("over the share");
        assert_eq!(
            refused.to_string(),
            "this session already holds its share of mcp-mux's backend streams \
             (8 of 16: half of those other sessions leave free); try again shortly"
        );
        let _call = session.for_exchange("a").await.expect("calls have room");
        assert_eq!(
            session.held(),
            Counts {
                exchanges: 1,
                streams: 8
            }
        );
        let other = Arc::new(SessionConnections::new(budget.clone()));
        let _child = other.for_stream("b", 3).expect("a stdio child of another");
        drop(streams);
        assert_eq!(session.held().streams, 0);
    }
}
