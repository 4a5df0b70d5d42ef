//! What bounds one backend's calls: its circuit breaker and its call slots,
//! shared by every session of the gateway, each session's fair share of
//! those slots, and the gateway's budget of connections (of which each
//! session holds its share), so that a backend
//! that hangs or fails, or a session that floods it, holds up neither other
//! backends, other sessions, nor this process.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::breaker::CircuitBreaker;
use super::connections::{ConnectionBudget, SessionConnections};
use super::error::BackendError;
use crate::registry::ServerConfig;

#[derive(Debug)]
pub struct BackendLimits {
    server: String,
    pub breaker: CircuitBreaker,
    calls: Semaphore,
    max_calls: usize,
    /// Calls one session may have in progress on this backend.
    pub max_calls_per_session: usize,
    /// Shared by every backend.
    pub connections: Arc<ConnectionBudget>,
    /// Exchanges sent again after a transient failure.
    pub retries: AtomicU64,
}

/// One session's share of a backend's call slots, shared by every MCP
/// session of that session, with the connections the session holds
/// across all its backends.
#[derive(Debug)]
pub struct SessionShare {
    calls: Semaphore,
    max_calls: usize,
    pub connections: Arc<SessionConnections>,
}

impl SessionShare {
    pub fn new(max_calls: usize, connections: Arc<SessionConnections>) -> Self {
        SessionShare {
            calls: Semaphore::new(max_calls),
            max_calls,
            connections,
        }
    }

    pub fn calls_in_progress(&self) -> usize {
        self.max_calls - self.calls.available_permits()
    }
}

/// The slots one call holds while it runs.
pub struct CallSlot<'a> {
    _session: Option<SemaphorePermit<'a>>,
    _backend: SemaphorePermit<'a>,
}

impl BackendLimits {
    pub fn new(server: &ServerConfig, connections: Arc<ConnectionBudget>) -> Self {
        BackendLimits {
            server: server.name.clone(),
            breaker: CircuitBreaker::new(server.name.clone(), server.circuit_breaker),
            calls: Semaphore::new(server.max_concurrent_calls),
            max_calls: server.max_concurrent_calls,
            max_calls_per_session: server.max_concurrent_calls_per_session,
            connections,
            retries: AtomicU64::new(0),
        }
    }

    /// A slot for one call, first in the session's share, then among the
    /// backend's; `Busy` (or `SessionBusy`) when none frees up within `wait`.
    pub async fn start_call<'a>(
        &'a self,
        share: Option<&'a SessionShare>,
        wait: Duration,
    ) -> Result<CallSlot<'a>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        let session = match share {
            Some(share) => Some(acquire(&share.calls, deadline).await.ok_or_else(|| {
                BackendError::SessionBusy {
                    server: self.server.clone(),
                    limit: share.max_calls,
                }
            })?),
            None => None,
        };
        let backend = acquire(&self.calls, deadline)
            .await
            .ok_or_else(|| BackendError::Busy {
                server: self.server.clone(),
                limit: self.max_calls,
            })?;
        Ok(CallSlot {
            _session: session,
            _backend: backend,
        })
    }

    pub fn calls_in_progress(&self) -> usize {
        self.max_calls - self.calls.available_permits()
    }
}

/// A permit of `slots` by `deadline`, if one frees up.
async fn acquire(slots: &Semaphore, deadline: tokio::time::Instant) -> Option<SemaphorePermit<'_>> {
    // The semaphores are never closed.
    tokio::time::timeout_at(deadline, slots.acquire())
        .await
        .ok()?
        .ok()
}
