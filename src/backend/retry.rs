//! Exponential backoff with jitter around one backend exchange. The `backoff`
//! crate is confined to this file.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use backoff::ExponentialBackoffBuilder;

use super::error::{BackendError, Replay};
use crate::registry::RetryPolicy;

/// Runs `attempt` until it succeeds, fails in a way `replay` does not allow
/// retrying, or the policy's time budget is spent. A `Retry-After` the budget
/// cannot honour ends the retries at once instead of being shortened.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    replay: Replay,
    retries: &AtomicU64,
    mut attempt: F,
) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BackendError>>,
{
    let started = Instant::now();
    let backoff = ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.initial_interval)
        .with_max_interval(policy.max_interval)
        .with_max_elapsed_time(Some(policy.max_elapsed))
        .with_multiplier(2.0)
        .with_randomization_factor(0.5)
        .build();
    let operation = || {
        let next = attempt();
        async move {
            next.await.map_err(|error| {
                if !error.is_retryable(replay) {
                    return backoff::Error::permanent(error);
                }
                match error.retry_after() {
                    // The crate would honour any Retry-After, even past the budget.
                    Some(wait)
                        if started
                            .elapsed()
                            .checked_add(wait)
                            .is_none_or(|end| end > policy.max_elapsed) =>
                    {
                        backoff::Error::permanent(error)
                    }
                    Some(wait) => backoff::Error::retry_after(error, wait),
                    None => backoff::Error::transient(error),
                }
            })
        }
    };
    backoff::future::retry_notify(backoff, operation, |error: BackendError, wait| {
        retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(server = error.server(), %error, ?wait, "retrying backend call");
    })
    .await
}
