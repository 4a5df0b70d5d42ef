//! The gateway's budget of backend connections, shared by every backend and
//! session: each exchange in flight and each long-lived stream (a backend's
//! own stream, a stdio child, an HTTP+SSE stream) holds a permit, so that
//! no client can make mcp-mux open more sockets than the process can
//! afford. Streams may take at most half of the budget, so calls always
//! find room.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
            }),
            // The semaphores are never closed.
            Ok(Err(_)) | Err(_) => None,
        }
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
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections in use now.
    pub fn in_use(&self) -> usize {
        self.max - self.all.available_permits()
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
}
