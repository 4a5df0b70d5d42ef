//! Builds the application from settings (registry, key, store, HTTP client,
//! routes) on a listener that tests can bind to port 0.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use secrecy::{ExposeSecret, SecretString};

use crate::backend::http_client::HttpClients;
use crate::capacity::{self, ConnectionPlan};
use crate::grants::Grants;
use crate::identity::{HostSignIn, SignInError, SignInSettings};
use crate::mux::search::SearchModel;
use crate::mux::{Limits, Mux, Timings};
use crate::registry::{Registry, RegistryError};
use crate::routes;
use crate::routes::BodyTimeout;
use crate::routes::access::{Access, MIN_ADMIN_TOKEN_LEN};
use crate::routes::rate_limit::{RateLimits, Rates};
use crate::store::crypto::{KeyError, KeyFile, Keyring};
use crate::store::{Store, StoreError};
use crate::traces::{TraceError, TraceSettings, Traces};

/// Everything the gateway needs to start.
pub struct Settings {
    pub bind: String,
    pub registry: PathBuf,
    /// A sentence model's files, for search mode's semantic ranking.
    pub search_model: Option<PathBuf>,
    /// `None`: SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// `None`: the key file in `data_dir`, created on first start.
    pub encryption_key: Option<SecretString>,
    /// Comma-separated older keys that still open what they sealed.
    pub previous_keys: Option<SecretString>,
    /// MCP sessions unused this long are ended.
    pub mcp_session_idle: Duration,
    /// HTTP worker threads; `None` for one per core.
    pub workers: Option<usize>,
    /// How long to wait on backends before answering without them.
    pub timings: Timings,
    pub limits: Limits,
    /// Needed on the management routes when set.
    pub admin_token: Option<SecretString>,
    /// Set only when the operator says so: serve the management routes on a
    /// non-loopback address without an admin token.
    pub allow_open_admin: bool,
    /// `Host` names allowed besides loopback ones.
    pub allowed_hosts: Vec<String>,
    /// `Origin`s allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Where clients reach the gateway, if not at the address they connect
    /// to (behind a proxy): the base of the session URLs it hands out.
    pub public_url: Option<url::Url>,
    /// Where the other nodes sharing the store reach this one; `None`: the
    /// address it listens on, unless that is unspecified.
    pub node_url: Option<url::Url>,
    pub rates: Rates,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Whether every answered request gets an access line at info level.
    pub access_log: bool,
    /// How long the gateway still serves after SIGTERM, with `/readyz`
    /// answering 503, before it stops taking connections.
    pub drain: Duration,
    /// An address of its own for `GET /metrics`, with no admin token:
    /// reaching it is the access control.
    pub metrics_bind: Option<String>,
    /// Where to export traces; `None` exports none.
    pub traces: Option<TraceSettings>,
    /// The issuers hosts sign in with, and what their tokens need.
    pub sign_in: SignInSettings,
}

impl Settings {
    /// The defaults `mcp-mux serve` starts with, for `registry` and a data
    /// directory `data_dir`.
    pub fn new(registry: PathBuf, data_dir: PathBuf) -> Self {
        Settings {
            bind: "127.0.0.1:8000".into(),
            registry,
            search_model: None,
            database_url: None,
            data_dir,
            encryption_key: None,
            previous_keys: None,
            mcp_session_idle: Duration::from_secs(1800),
            workers: None,
            timings: Timings::default(),
            limits: Limits::default(),
            admin_token: None,
            allow_open_admin: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            public_url: None,
            node_url: None,
            rates: Rates::default(),
            body_timeout: BodyTimeout::default().0,
            drain: Duration::from_secs(5),
            access_log: true,
            metrics_bind: None,
            traces: None,
            sign_in: SignInSettings::default(),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.data_dir, "rwc"))
    }
}

/// The URL of the SQLite database in `data_dir`, opened in `mode` (`rwc`
/// creates it, `rw` needs it to exist).
pub fn sqlite_url(data_dir: &Path, mode: &str) -> String {
    // The driver percent-decodes the path: escape what it would misread.
    let path = data_dir.join("mcp-mux.db").display().to_string();
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{escaped}?mode={mode}")
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("encryption key: {0}")]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error(
        "refusing to serve the management routes on {bind} without an admin token: \
         set MCP_MUX_ADMIN_TOKEN, bind to a loopback address, or pass \
         --insecure-no-admin-token if this network is trusted"
    )]
    OpenAdmin { bind: String },
    #[error("MCP_MUX_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LEN} characters")]
    WeakAdminToken,
    #[error(transparent)]
    Traces(#[from] TraceError),
    #[error(transparent)]
    SearchModel(#[from] crate::embedding::ModelError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
}

/// A gateway bound to its socket, ready to run.
pub struct Application {
    server: Server,
    address: SocketAddr,
    /// The `--metrics-bind` listener, when there is one.
    metrics: Option<(Server, SocketAddr)>,
    mux: web::Data<Mux>,
    mcp_session_idle: Duration,
    drain: Duration,
}

impl Application {
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        if settings
            .admin_token
            .as_ref()
            .is_some_and(|token| token.expose_secret().chars().count() < MIN_ADMIN_TOKEN_LEN)
        {
            return Err(StartupError::WeakAdminToken);
        }
        let loaded = Registry::load_versioned(&settings.registry)?;
        let registry = loaded.registry.clone();
        let sign_in = HostSignIn::start(std::mem::take(&mut settings.sign_in))
            .await?
            .map(Arc::new);
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartupError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        let keys = Keyring::load(
            settings.encryption_key.as_ref(),
            settings.previous_keys.as_ref(),
            &settings.data_dir,
            KeyFile::CreateIfMissing,
        )?;
        let store = Store::connect(&settings.database_url(), keys).await?;
        let open_files = capacity::raise_open_file_limit().map(|(before, after)| {
            tracing::info!(
                soft = after.soft,
                hard = after.hard,
                soft_before = before.soft,
                "open-file limit"
            );
            after.soft
        });
        let workers = settings.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let plan = ConnectionPlan::new(
            open_files,
            settings.limits.max_backend_connections,
            registry.servers().count(),
            workers,
        );
        tracing::info!(
            backend_connections = plan.backend_connections,
            client_connections_per_worker = plan.client_connections_per_worker,
            workers,
            "connection plan"
        );
        let limits = Limits {
            max_backend_connections: plan.backend_connections,
            ..settings.limits
        };
        // Idle connections hold descriptors outside the connection budget:
        // the workers' pools share the plan's reserve per host.
        let http = HttpClients::for_backends(capacity::IDLE_CONNECTIONS_PER_HOST, workers)
            .map_err(StartupError::HttpClient)?;
        let traces = settings.traces.as_ref().map(Traces::start).transpose()?;
        let search_model = match &settings.search_model {
            None => None,
            Some(dir) => {
                let model = crate::embedding::SentenceModel::load(dir)?;
                tracing::info!(model = %dir.display(), dimensions = model.dimensions(), "search mode ranks with a sentence model too");
                Some(Arc::new(SearchModel::new(model)))
            }
        };
        let mux = web::Data::new(
            Mux::new(
                registry.clone(),
                store.clone(),
                http,
                settings.timings,
                limits,
            )
            .with_traces(traces)
            .with_search_model(search_model)
            .with_grants(Grants::new(store.clone(), settings.public_url.clone()))
            .with_registry_file(&settings.registry, &loaded),
        );

        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            bind: settings.bind.clone(),
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            bind: settings.bind.clone(),
            source,
        })?;
        if !address.ip().is_loopback() && settings.admin_token.is_none() {
            if !settings.allow_open_admin {
                return Err(StartupError::OpenAdmin {
                    bind: address.to_string(),
                });
            }
            tracing::warn!(%address, "the management routes are open to anyone who can reach this address");
        }
        mux.grants().listening_on(address);
        match (&settings.node_url, address.ip().is_unspecified()) {
            (Some(url), _) => mux
                .cluster()
                .reached_at(url.as_str().trim_end_matches('/').to_owned()),
            (None, false) => mux.cluster().reached_at(format!("http://{address}")),
            (None, true) if store.is_shared() => tracing::warn!(
                %address,
                "no --node-url: the other nodes cannot pass this one requests for its MCP sessions, and take them over instead"
            ),
            (None, true) => {}
        }
        let access = web::Data::new(
            Access::new(
                settings.admin_token.clone(),
                &settings.allowed_hosts,
                &settings.allowed_origins,
                settings.public_url.clone(),
            )
            .with_sign_in(sign_in),
        );
        let rate_limits = web::Data::new(RateLimits::new(settings.rates));
        let body_timeout = web::Data::new(BodyTimeout(settings.body_timeout));
        let access_log = web::Data::new(routes::AccessLog(settings.access_log));
        let app_mux = mux.clone();
        let server = HttpServer::new(move || {
            // Runs on each worker's thread: its calls to backends keep a
            // pool of that thread's own.
            HttpClients::on_server_worker();
            App::new()
                .app_data(app_mux.clone())
                .app_data(access.clone())
                .app_data(rate_limits.clone())
                .app_data(body_timeout.clone())
                .app_data(access_log.clone())
                .wrap(actix_web::middleware::from_fn(routes::log_request))
                .configure(routes::configure)
        })
        .workers(workers)
        .max_connections(plan.client_connections_per_worker)
        // A client that closes its side is gone: its streams end at once
        // and free what they hold, instead of at their next write.
        .h1_allow_half_closed(false)
        // Streamed answers go out in several writes; with Nagle's algorithm
        // each would wait for the client's delayed ACK (~40 ms).
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        // The first request's head may take this long after the connection
        // opens (actix: 5 s, then a 408). A client that opened a connection
        // it did not need yet (hyper's pool does, when another connection
        // freed up first) finds that 408 in front of its next request.
        .client_request_timeout(Duration::from_secs(30))
        .shutdown_timeout(10)
        // Signals are handled in `run_until_stopped`, which first ends the
        // open client streams.
        .disable_signals();
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                bind: settings.bind.clone(),
                source,
            })?
            .run();
        let metrics = settings
            .metrics_bind
            .as_deref()
            .map(|bind| metrics_server(bind, mux.clone()))
            .transpose()?;
        tracing::info!(
            %address,
            servers = %registry.server_names(),
            database = store.backend_name(),
            "mcp-mux listening"
        );
        Ok(Application {
            server,
            address,
            metrics,
            mux,
            mcp_session_idle: settings.mcp_session_idle,
            drain: settings.drain,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `--metrics-bind` serves `GET /metrics`, if it is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    /// The session runtime, for embedding and tests.
    pub fn mux(&self) -> Arc<Mux> {
        self.mux.clone().into_inner()
    }

    /// Stops the server from another task.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (signal or handle), reaping idle MCP sessions.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mux = self.mux.clone();
        let idle = self.mcp_session_idle;
        let writer = self.mux.clone();
        let audit_writer = async move { writer.write_audit_trail().await };
        // With a shared store: heartbeats, and what the other nodes tell.
        let member = self.mux.clone();
        let cluster = async move {
            tokio::join!(member.cluster().run(), member.follow_cluster());
            // On a store no other node shares, there is nothing to follow.
            std::future::pending::<()>().await
        };
        let reaper = async move {
            let mut tick = tokio::time::interval(
                (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)),
            );
            loop {
                tick.tick().await;
                let reaped = mux.reap_idle(idle).await;
                if reaped > 0 {
                    tracing::info!(reaped, "idle MCP sessions ended");
                }
            }
        };
        let handle = self.server.handle();
        let stopper = self.mux.clone();
        let (metrics_server, metrics_handle) = match self.metrics {
            Some((server, _)) => {
                let handle = server.handle();
                (Some(server), Some(handle))
            }
            None => (None, None),
        };
        let drain = self.drain;
        let on_signal = async move {
            stop_signal().await;
            // Load balancers see /readyz fail and send no one new, while
            // the clients they sent still get answers; a second signal
            // cuts the wait short.
            stopper.begin_drain();
            tracing::info!(
                seconds = drain.as_secs(),
                "draining: /readyz answers 503; serving until the drain ends"
            );
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                () = stop_signal() => tracing::info!("a second stop signal: the drain ends now"),
            }
            tracing::info!("stopping: ending client streams, finishing requests");
            stopper.begin_shutdown();
            handle.stop(true).await;
        };
        // SIGHUP reads the registry again (the log says what changed, or
        // why the served one stays).
        let reloader = self.mux.clone();
        let reloads = async move {
            reload_signals(|| {
                let _ = reloader.reload_registry();
            })
            .await;
        };
        // Runs beside the gateway, and ends with it.
        let metrics = async move {
            match metrics_server {
                Some(server) => {
                    if let Err(error) = server.await {
                        tracing::error!(%error, "the metrics listener stopped");
                    }
                }
                None => std::future::pending().await,
            }
        };
        let server = self.server;
        tokio::pin!(server);
        let stopped = tokio::select! {
            result = &mut server => result,
            () = reaper => Ok(()),
            () = audit_writer => Ok(()),
            () = cluster => Ok(()),
            () = reloads => server.await,
            () = metrics => server.await,
            () = on_signal => server.await,
        };
        if let Some(handle) = metrics_handle {
            handle.stop(false).await;
        }
        self.mux.flush_audit_trail().await;
        self.mux.cluster().leave().await;
        self.mux.shutdown_traces().await;
        stopped
    }
}

/// A one-worker server for `GET /metrics` alone on `bind`.
fn metrics_server(bind: &str, mux: web::Data<Mux>) -> Result<(Server, SocketAddr), StartupError> {
    let failed = |source| StartupError::Bind {
        bind: bind.to_owned(),
        source,
    };
    let listener = TcpListener::bind(bind).map_err(failed)?;
    let address = listener.local_addr().map_err(failed)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(mux.clone())
            .route("/metrics", web::get().to(routes::metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(failed)?
    .run();
    tracing::info!(%address, "metrics listening");
    Ok((server, address))
}

/// Calls `reload` on each SIGHUP; never ends where there is no SIGHUP.
async fn reload_signals(reload: impl Fn()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the registry");
                reload();
            }
        }
    }
    std::future::pending::<()>().await;
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
