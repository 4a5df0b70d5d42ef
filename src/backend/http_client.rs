//! The HTTP client backends are called with, one connection pool per
//! thread. A pooled connection is driven by a task on the runtime of the
//! thread that opened it: with one pool for the whole gateway, a call on one
//! actix worker borrows a connection another worker drives, and each call
//! then crosses threads twice and waits on the other worker. With a pool per
//! worker, a call stays on its worker from the client's request to the
//! backend's answer.
//!
//! Idle connections hold descriptors, which the connection plan reserves
//! per backend host: the workers' pools share that reserve, and any other
//! thread (the reaper ending MCP sessions, say) keeps one idle connection.
//!
//! A backend reached over plain HTTP is called through hyper-util's client
//! itself, beside reqwest's: reqwest's own layers (its redirect policy
//! parses the URL twice even with redirects off, then its proxy matcher and
//! retry layer) took a tenth of a call's instructions. TLS, a proxy from
//! the environment and requests with a timeout of their own stay with
//! reqwest.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type Build = dyn Fn(usize) -> Option<reqwest::Client> + Send + Sync;

/// hyper-util's client for plain HTTP backends, sending reqwest's bodies.
pub type DirectClient = hyper_util::client::legacy::Client<HttpConnector, reqwest::Body>;

/// What every backend request carries as its `User-Agent`.
pub const USER_AGENT: &str = concat!("mcp-mux/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Below the 5 s after which Node's and uvicorn's servers close an idle
/// connection: a call sent on one they are closing fails unanswered, and a
/// tool call is not sent again.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Hands each thread its own `reqwest::Client`, all built alike.
#[derive(Clone)]
pub struct HttpClients {
    /// Tells this gateway's clients from another's in the same process
    /// (tests run many).
    id: u64,
    build: Arc<Build>,
    /// Idle connections per backend host in a worker's pool.
    worker_idle: usize,
    /// Built at start, which proved the settings work: a thread whose own
    /// build fails uses it, so no request ever meets a build error.
    first: reqwest::Client,
    /// Whether plain HTTP goes through hyper-util's client: not when the
    /// environment names a proxy, which only reqwest honours.
    direct: bool,
}

/// Idle connections per backend host in the pool of a thread that is not
/// one of the server's workers.
const OTHER_IDLE: usize = 1;

thread_local! {
    static CLIENTS: RefCell<Vec<(u64, reqwest::Client, DirectClient)>> = const { RefCell::new(Vec::new()) };
    static SERVER_WORKER: Cell<bool> = const { Cell::new(false) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl HttpClients {
    /// The clients mcp-mux calls backends with, keeping `idle_per_host`
    /// idle connections per host across `workers`.
    pub fn for_backends(idle_per_host: usize, workers: usize) -> Result<Self, reqwest::Error> {
        HttpClients::new(
            |idle| {
                reqwest::Client::builder()
                    // A backend must not send mcp-mux, and the session's
                    // credential, to an address the registry does not name.
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .pool_max_idle_per_host(idle)
                    .user_agent(USER_AGENT)
            },
            idle_per_host,
            workers,
        )
        .map(|clients| HttpClients {
            direct: !proxy_in_environment(),
            ..clients
        })
    }

    /// Clients from `builder`, given the idle connections per host its
    /// pool may keep: called once now and once per thread that calls a
    /// backend. A worker's pool keeps `idle_per_host / workers`.
    pub fn new(
        builder: impl Fn(usize) -> reqwest::ClientBuilder + Send + Sync + 'static,
        idle_per_host: usize,
        workers: usize,
    ) -> Result<Self, reqwest::Error> {
        let worker_idle = (idle_per_host / workers.max(1)).max(1);
        let first = builder(OTHER_IDLE).build()?;
        Ok(HttpClients {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            build: Arc::new(move |idle| builder(idle).build().ok()),
            worker_idle,
            first,
            direct: false,
        })
    }

    /// Marks the calling thread as one of the server's workers, whose pool
    /// keeps the workers' share of idle connections. The app factory runs
    /// once on each worker's thread, before it serves.
    pub fn on_server_worker() {
        SERVER_WORKER.with(|worker| worker.set(true));
    }

    /// This thread's client.
    pub fn get(&self) -> reqwest::Client {
        self.with_own(|client, _| client.clone())
    }

    /// This thread's hyper-util client for plain HTTP, unless requests go
    /// through a proxy.
    pub fn direct(&self) -> Option<DirectClient> {
        self.direct
            .then(|| self.with_own(|_, direct| direct.clone()))
    }

    fn with_own<T>(&self, take: impl FnOnce(&reqwest::Client, &DirectClient) -> T) -> T {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client, direct)) = clients.iter().find(|(id, ..)| *id == self.id) {
                return take(client, direct);
            }
            let idle = if SERVER_WORKER.with(Cell::get) {
                self.worker_idle
            } else {
                OTHER_IDLE
            };
            let client = (self.build)(idle).unwrap_or_else(|| self.first.clone());
            let direct = direct_client(idle);
            let taken = take(&client, &direct);
            clients.push((self.id, client, direct));
            taken
        })
    }
}

impl From<reqwest::Client> for HttpClients {
    /// One client shared by every thread, for tests and embedding.
    fn from(client: reqwest::Client) -> Self {
        let shared = client.clone();
        HttpClients {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            build: Arc::new(move |_| Some(shared.clone())),
            worker_idle: OTHER_IDLE,
            first: client,
            direct: false,
        }
    }
}

/// A client for plain HTTP with the settings reqwest's have.
fn direct_client(idle: usize) -> DirectClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(idle)
        .build(connector)
}

/// Whether the environment names a proxy, as reqwest reads it.
fn proxy_in_environment() -> bool {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn each_thread_builds_one_client_of_its_own_with_its_share_of_idle_connections() {
        let built = Arc::new(AtomicUsize::new(0));
        let idles = Arc::new(std::sync::Mutex::new(Vec::new()));
        let clients = HttpClients::new(
            {
                let (built, idles) = (built.clone(), idles.clone());
                move |idle| {
                    built.fetch_add(1, Ordering::Relaxed);
                    idles.lock().expect("not poisoned").push(idle);
                    reqwest::Client::builder()
                }
            },
            32,
            2,
        )
        .expect("builds");
        assert_eq!(built.load(Ordering::Relaxed), 1, "once at start");
        clients.get();
        clients.get();
        assert_eq!(built.load(Ordering::Relaxed), 2, "once for this thread");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                HttpClients::on_server_worker();
                clients.get();
                clients.get();
            });
        });
        assert_eq!(built.load(Ordering::Relaxed), 3, "once for the other");
        assert_eq!(
            *idles.lock().expect("not poisoned"),
            [OTHER_IDLE, OTHER_IDLE, 16],
            "a worker keeps its half of the reserve, other threads one"
        );
        let shared = HttpClients::from(reqwest::Client::new());
        shared.get();
        assert_eq!(
            built.load(Ordering::Relaxed),
            3,
            "another gateway's clients are apart"
        );
    }
}
