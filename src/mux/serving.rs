//! Which server answers for each of a session's servers: the server itself,
//! or the fallback that answered the last call made to it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Per server of a session, in the session's order: 0 while the server
/// itself answers, `n` once its `n`-th fallback answered the last call.
/// Shared by the session's MCP sessions.
pub struct Serving(Box<[AtomicUsize]>);

impl Serving {
    pub fn new(servers: usize) -> Self {
        Serving((0..servers).map(|_| AtomicUsize::new(0)).collect())
    }

    /// Notes that `rank` answered a call made to server `index`. A load
    /// alone while nothing changes: the cache line stays shared between
    /// the threads serving the session.
    pub fn note(&self, index: usize, rank: usize) {
        if let Some(cell) = self.0.get(index)
            && cell.load(Ordering::Relaxed) != rank
        {
            cell.store(rank, Ordering::Relaxed);
        }
    }

    /// Who answered the last call to server `index`: 0 for itself, `n` for
    /// its `n`-th fallback.
    pub fn rank(&self, index: usize) -> usize {
        self.0
            .get(index)
            .map_or(0, |cell| cell.load(Ordering::Relaxed))
    }
}
