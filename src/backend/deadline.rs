//! The time one call to a backend may take: the server's timeout, pushed
//! back by each progress notification the backend sends, up to a maximum.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub struct Deadline {
    started: Instant,
    /// Time allowed since the start or the latest progress.
    timeout: Duration,
    /// Time allowed since the start, however much progress is reported.
    max_timeout: Duration,
    at: Mutex<Instant>,
}

impl Deadline {
    pub fn start(timeout: Duration, max_timeout: Duration) -> Self {
        let started = Instant::now();
        Deadline {
            started,
            timeout,
            max_timeout,
            at: Mutex::new(started + timeout.min(max_timeout)),
        }
    }

    /// The backend reported progress: it gets another whole timeout, within
    /// the maximum.
    pub fn extend(&self) {
        let at = (Instant::now() + self.timeout).min(self.started + self.max_timeout);
        let mut current = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        *current = (*current).max(at);
    }

    pub fn at(&self) -> Instant {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long the call had when it was given up.
    pub fn allowed(&self) -> Duration {
        self.at().saturating_duration_since(self.started)
    }

    /// Runs `work` until it finishes or the deadline passes (None), however
    /// often the deadline moves meanwhile.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            let at = self.at();
            tokio::select! {
                done = &mut work => return Some(done),
                () = tokio::time::sleep_until(at) => {
                    if self.at() <= Instant::now() {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn progress_pushes_the_deadline_back_up_to_the_maximum() {
        let deadline = Deadline::start(Duration::from_secs(10), Duration::from_secs(25));
        let work = async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(8)).await;
                deadline.extend();
            }
        };
        // Each step is within the timeout, but the five take 40 s.
        assert_eq!(deadline.run(work).await, None);
        assert_eq!(deadline.allowed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_reports_progress_in_time_finishes() {
        let deadline = Deadline::start(Duration::from_secs(10), Duration::from_secs(60));
        let work = async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(8)).await;
                deadline.extend();
            }
            "done"
        };
        assert_eq!(deadline.run(work).await, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn without_progress_the_timeout_holds() {
        let deadline = Deadline::start(Duration::from_secs(10), Duration::from_secs(60));
        let slow = tokio::time::sleep(Duration::from_secs(11));
        assert_eq!(deadline.run(slow).await, None);
        assert_eq!(deadline.allowed(), Duration::from_secs(10));
    }
}
