//! What every session of one backend shares on this gateway: its circuit
//! breaker and its bound on calls in progress, so that a backend that hangs
//! or fails holds up neither other backends nor this process.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::breaker::CircuitBreaker;
use super::error::BackendError;
use crate::registry::ServerConfig;

#[derive(Debug)]
pub struct BackendLimits {
    server: String,
    pub breaker: CircuitBreaker,
    calls: Semaphore,
    max_calls: usize,
}

impl BackendLimits {
    pub fn new(server: &ServerConfig) -> Self {
        BackendLimits {
            server: server.name.clone(),
            breaker: CircuitBreaker::new(server.name.clone(), server.circuit_breaker),
            calls: Semaphore::new(server.max_concurrent_calls),
            max_calls: server.max_concurrent_calls,
        }
    }

    /// A slot for one call, or `Busy` when none frees up within `wait`.
    pub async fn start_call(&self, wait: Duration) -> Result<SemaphorePermit<'_>, BackendError> {
        match tokio::time::timeout(wait, self.calls.acquire()).await {
            Ok(Ok(slot)) => Ok(slot),
            // Never closed; a closed semaphore would be as busy as a full one.
            Ok(Err(_)) | Err(_) => Err(BackendError::Busy {
                server: self.server.clone(),
                limit: self.max_calls,
            }),
        }
    }

    pub fn calls_in_progress(&self) -> usize {
        self.max_calls - self.calls.available_permits()
    }
}
