//! The HTTP client backends are called with, one connection pool per
//! thread. A pooled connection is driven by a task on the runtime of the
//! thread that opened it: with one pool for the whole gateway, a call on one
//! actix worker borrows a connection another worker drives, and each call
//! then crosses threads twice and waits on the other worker. With a pool per
//! worker, a call stays on its worker from the client's request to the
//! backend's answer.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Build = dyn Fn() -> Option<reqwest::Client> + Send + Sync;

/// Hands each thread its own `reqwest::Client`, all built alike.
#[derive(Clone)]
pub struct HttpClients {
    /// Tells this gateway's clients from another's in the same process
    /// (tests run many).
    id: u64,
    build: Arc<Build>,
    /// Built at start, which proved the settings work: a thread whose own
    /// build fails uses it, so no request ever meets a build error.
    first: reqwest::Client,
}

thread_local! {
    static CLIENTS: RefCell<Vec<(u64, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl HttpClients {
    /// Clients from `builder`, called once now and once per thread that
    /// calls a backend.
    pub fn new(
        builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self, reqwest::Error> {
        let first = builder().build()?;
        Ok(HttpClients {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            build: Arc::new(move || builder().build().ok()),
            first,
        })
    }

    /// This thread's client.
    pub fn get(&self) -> reqwest::Client {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients.iter().find(|(id, _)| *id == self.id) {
                return client.clone();
            }
            let client = (self.build)().unwrap_or_else(|| self.first.clone());
            clients.push((self.id, client.clone()));
            client
        })
    }
}

impl From<reqwest::Client> for HttpClients {
    /// One client shared by every thread, for tests and embedding.
    fn from(client: reqwest::Client) -> Self {
        let shared = client.clone();
        HttpClients {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            build: Arc::new(move || Some(shared.clone())),
            first: client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn each_thread_builds_one_client_of_its_own() {
        let built = Arc::new(AtomicUsize::new(0));
        let clients = HttpClients::new({
            let built = built.clone();
            move || {
                built.fetch_add(1, Ordering::Relaxed);
                reqwest::Client::builder()
            }
        })
        .expect("builds");
        assert_eq!(built.load(Ordering::Relaxed), 1, "once at start");
        clients.get();
        clients.get();
        assert_eq!(built.load(Ordering::Relaxed), 2, "once for this thread");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                clients.get();
                clients.get();
            });
        });
        assert_eq!(built.load(Ordering::Relaxed), 3, "once for the other");
        let shared = HttpClients::from(reqwest::Client::new());
        shared.get();
        assert_eq!(
            built.load(Ordering::Relaxed),
            3,
            "another gateway's clients are apart"
        );
    }
}
