//! The `mcp-mux` command: parses arguments and starts the gateway, or
//! re-seals stored credentials with a new key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

use mcp_mux::identity::{IntrospectionClient, SignInSettings};
use mcp_mux::logging::gathered::{self, GatheredLines, LogFlush};
use mcp_mux::logging::text::TextFormat;

/// mimalloc rather than the system's allocator: a call allocates and frees
/// a few hundred small blocks across threads (the request, its JSON, the
/// backend's answer, the audit record), and glibc's malloc spent about a
/// sixth of a call's instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use mcp_mux::mux::{Limits, Timings};
use mcp_mux::rotation::RotationSettings;
use mcp_mux::routes::rate_limit::{Rate, Rates};
use mcp_mux::startup::{Application, Settings};
use mcp_mux::traces::TraceSettings;
use mcp_mux::{check, remote};

#[derive(Parser)]
#[command(name = "mcp-mux", version, about = "Per-session MCP multiplexer")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `serve` runs with these arguments.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and the session MCP endpoints (the default).
    Serve(Box<ServeArgs>),
    /// Seal every stored credential again with the current key
    /// (MCP_MUX_ENCRYPTION_KEY), opening each with whichever configured key
    /// sealed it (MCP_MUX_PREVIOUS_KEYS).
    RotateKey(RotateKeyArgs),
    /// Work with the registry file.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Create, list, show and delete sessions on a running gateway.
    Sessions(SessionsArgs),
}

#[derive(clap::Args)]
struct SessionsArgs {
    /// The gateway's address. Its admin token, if it has one, is read from
    /// MCP_MUX_ADMIN_TOKEN.
    #[arg(
        long,
        env = "MCP_MUX_URL",
        default_value = "http://127.0.0.1:8000",
        global = true,
        value_parser = remote::parse_gateway_url
    )]
    url: String,
    /// Print the gateway's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Create a session; prints its URL and client configurations.
    Create {
        /// A backend from the registry (repeat for several).
        #[arg(long = "server", required = true)]
        servers: Vec<String>,
        /// A credential, as server.field=value (repeat for several).
        #[arg(long = "credential", value_parser = remote::parse_credential)]
        credentials: Vec<(String, String, String)>,
        /// Require a session token on the MCP endpoint.
        #[arg(long)]
        require_token: bool,
        /// End the session after this many seconds.
        #[arg(long)]
        ttl_seconds: Option<u64>,
        /// How clients see the tools: `direct` (each tool) or `search`
        /// (search_tools, describe_tool and call_tool).
        #[arg(long, value_parser = ["direct", "search"])]
        tool_mode: Option<String>,
        /// Requests a second the session takes.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// Tool rules by server, as create-session's "tools" takes them:
        /// '{"github": {"allow": ["get_*"], "rename": {"get_me": "whoami"}}}'.
        #[arg(long, value_parser = parse_json_object)]
        tools: Option<serde_json::Value>,
        /// What to call the session in lists and the console.
        #[arg(long)]
        name: Option<String>,
        /// A label, as key=value (repeat for several).
        #[arg(long = "label", value_parser = remote::parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List the stored sessions, newest first.
    List {
        /// Only sessions whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// Only sessions with this label, as key=value (repeat: all must hold).
        #[arg(long = "label", value_parser = remote::parse_label)]
        labels: Vec<(String, String)>,
        /// Only sessions over this backend.
        #[arg(long)]
        server: Option<String>,
        /// Only sessions of the signed-in user with this subject.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List a session's tools, after its rules (with MCP_MUX_SESSION_TOKEN
    /// for a session that requires its token).
    Tools {
        #[arg(value_parser = remote::parse_session_id)]
        id: uuid::Uuid,
    },
    /// Call one tool of a session as a client would: its rules, audit and
    /// retries apply. Prints the tool's result.
    Call {
        #[arg(value_parser = remote::parse_session_id)]
        id: uuid::Uuid,
        /// The tool's name, as `sessions tools` lists it.
        #[arg(value_parser = |text: &str| remote::parse_tool_name(text).map(str::to_owned))]
        tool: String,
        /// The tool's arguments, a JSON object.
        #[arg(long, default_value = "{}", value_parser = parse_json_object)]
        arguments: serde_json::Value,
    },
    /// Show a session's latest recorded tool calls, newest first.
    Audit {
        #[arg(value_parser = remote::parse_session_id)]
        id: uuid::Uuid,
        /// How many (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one session.
    Show {
        #[arg(value_parser = remote::parse_session_id)]
        id: uuid::Uuid,
    },
    /// Delete one session, its credentials and its MCP sessions.
    Delete {
        #[arg(value_parser = remote::parse_session_id)]
        id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Validate the registry and open each backend once (initialize, then
    /// tools/list). Exits 1 when the registry is invalid or a backend does
    /// not answer.
    Check(RegistryCheckArgs),
}

#[derive(clap::Args)]
struct RegistryCheckArgs {
    /// The registry of backends.
    #[arg(long, env = "MCP_MUX_REGISTRY", default_value = "registry.yaml")]
    registry: PathBuf,
    /// Print JSON (an array, one object per backend) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RotateKeyArgs {
    /// sqlite://path?mode=rw or postgres://…; default: SQLite in the data directory.
    #[arg(long, env = "MCP_MUX_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of the SQLite database and the generated encryption key.
    #[arg(long, env = "MCP_MUX_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCP_MUX_BIND", default_value = "127.0.0.1:8000")]
    bind: String,
    /// The registry of backends.
    #[arg(long, env = "MCP_MUX_REGISTRY", default_value = "registry.yaml")]
    registry: PathBuf,
    /// A sentence-embedding model's directory (config.json, tokenizer.json,
    /// model.safetensors), with which search mode ranks by meaning too.
    #[arg(long, env = "MCP_MUX_SEARCH_MODEL")]
    search_model: Option<PathBuf>,
    /// sqlite://path?mode=rwc or postgres://…; default: SQLite in the data directory.
    #[arg(long, env = "MCP_MUX_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory for the SQLite database and the generated encryption key.
    #[arg(long, env = "MCP_MUX_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Seconds after which an unused MCP session is ended.
    #[arg(long, env = "MCP_MUX_MCP_SESSION_IDLE_SECS", default_value_t = 1800)]
    mcp_session_idle_secs: u64,
    /// Most sessions the store may hold; create-session answers 503 beyond.
    #[arg(long, env = "MCP_MUX_MAX_SESSIONS", default_value_t = Limits::default().max_sessions)]
    max_sessions: u64,
    /// Most MCP sessions open at once on one session; another ends the least recently used.
    #[arg(long, env = "MCP_MUX_MAX_MCP_SESSIONS", default_value_t = Limits::default().max_mcp_sessions_per_session)]
    max_mcp_sessions: usize,
    /// Days a tools/call audit record is kept.
    #[arg(long, env = "MCP_MUX_AUDIT_RETENTION_DAYS", default_value_t = 30)]
    audit_retention_days: u64,
    /// Host names (besides loopback) requests may carry in `Host`, comma-separated.
    #[arg(long, env = "MCP_MUX_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Origins (besides loopback) browser requests may come from, comma-separated.
    #[arg(long, env = "MCP_MUX_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Serve the management routes on a non-loopback address without
    /// MCP_MUX_ADMIN_TOKEN: anyone who reaches the port may create, read and
    /// delete sessions.
    #[arg(long)]
    insecure_no_admin_token: bool,
    /// Requests a second one session's MCP endpoint may take (twice that at
    /// once), unless the session sets its own `rate_limit`. Off by default.
    #[arg(long, env = "MCP_MUX_SESSION_RATE", value_parser = positive_rate)]
    session_rate: Option<f64>,
    /// Sessions one client address may create a minute (as many at once).
    /// Off by default.
    #[arg(long, env = "MCP_MUX_CREATE_SESSION_RATE", value_parser = positive_rate)]
    create_session_rate: Option<f64>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "MCP_MUX_WORKERS")]
    workers: Option<usize>,
    /// Backend connections (calls in flight and open streams, at most half
    /// of them streams) across the gateway; fewer if the open-file limit
    /// cannot hold them. Beyond, MCP requests get 503 with Retry-After.
    #[arg(long, env = "MCP_MUX_MAX_BACKEND_CONNECTIONS", default_value_t = Limits::default().max_backend_connections)]
    max_backend_connections: usize,
    /// Seconds a client may take to send a whole request body; a slower one
    /// gets 408 and its connection is closed.
    #[arg(long, env = "MCP_MUX_BODY_TIMEOUT_SECS", default_value_t = 10)]
    body_timeout_secs: u64,
    /// The URL clients reach the gateway at, when a proxy stands in front
    /// (https://mux.example.com): session URLs are built on it. Without it
    /// they are built on the request's Host; forwarded headers are never
    /// trusted.
    #[arg(long, env = "MCP_MUX_PUBLIC_URL", value_parser = parse_public_url)]
    public_url: Option<url::Url>,
    /// Serve GET /metrics on this address of its own too, with no admin
    /// token (127.0.0.1:9100, say); it stays on the main address, behind
    /// the admin token.
    #[arg(long, env = "MCP_MUX_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// Seconds the gateway still serves after SIGTERM, with /readyz
    /// answering 503 so that a load balancer sends it no one new; then it
    /// stops taking connections and lets requests in progress finish. A
    /// second SIGTERM ends the wait.
    #[arg(long, env = "MCP_MUX_DRAIN_SECONDS", default_value_t = 5)]
    drain_seconds: u64,
    /// Whether each answered request is logged at info level (method,
    /// route, short session id, status, milliseconds, trace id); refused
    /// and failed requests are logged whatever this says.
    #[arg(long, env = "MCP_MUX_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
    /// How log lines are written to stderr.
    #[arg(long, env = "MCP_MUX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where the other nodes sharing a PostgreSQL store reach this one
    /// (http://10.0.0.5:8000), to pass it requests for the MCP sessions it
    /// holds. Default: the address it listens on, unless that is 0.0.0.0
    /// or [::].
    #[arg(long, env = "MCP_MUX_NODE_URL", value_parser = parse_public_url)]
    node_url: Option<url::Url>,
    /// An OAuth authorization server whose access tokens hosts sign in
    /// with (repeat for several; the environment variable is
    /// comma-separated). Its metadata is discovered at start.
    #[arg(long = "oauth-issuer", env = "MCP_MUX_OAUTH_ISSUERS", value_delimiter = ',', value_parser = parse_issuer)]
    oauth_issuers: Vec<String>,
    /// An audience accepted in hosts' tokens besides the session URL
    /// itself (an id, for servers whose tokens name one).
    #[arg(long, env = "MCP_MUX_OAUTH_AUDIENCE")]
    oauth_audience: Option<String>,
    /// Scopes every signed-in session URL requires, space-separated.
    #[arg(long, env = "MCP_MUX_OAUTH_SCOPES", value_parser = parse_scopes)]
    oauth_scopes: Option<Scopes>,
    /// A scope that lets a signed-in user create, list and delete their
    /// own sessions with their token.
    #[arg(long, env = "MCP_MUX_OAUTH_SESSIONS_SCOPE", value_parser = parse_scope)]
    oauth_sessions_scope: Option<String>,
}

/// An issuer: an https URL (http on a loopback address, for tests), as
/// written: tokens name it exactly so.
fn parse_issuer(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err("must be an https URL".into());
    }
    Ok(text.trim().to_owned())
}

/// Scopes, space-separated: one value to clap, which would take a bare
/// `Vec` as a flag given several times.
#[derive(Clone, Debug)]
struct Scopes(Vec<String>);

/// Scopes, space-separated, each one word.
fn parse_scopes(text: &str) -> Result<Scopes, String> {
    text.split_whitespace()
        .map(parse_scope)
        .collect::<Result<_, _>>()
        .map(Scopes)
}

fn parse_scope(text: &str) -> Result<String, String> {
    let scope = text.trim();
    if mcp_mux::oauth::is_scope(scope) {
        Ok(scope.to_owned())
    } else {
        Err(format!(
            "{scope:?} is not a scope: one word of printable characters, without quotes or backslashes"
        ))
    }
}

/// A rate flag: a positive, finite number.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// A public URL: http or https, with a host, and nothing after its path.
fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no credentials, query or fragment".into());
    }
    Ok(url)
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// For people.
    Text,
    /// One JSON object a line, for log pipelines.
    Json,
}

/// Starts writing log lines to stderr; the lines still gathered are
/// written when the answer is dropped.
fn init_logging(format: LogFormat) -> LogFlush {
    let (lines, flush) = GatheredLines::new(std::io::stderr(), gathered::GATHER);
    let logger = tracing_subscriber::fmt()
        .with_env_filter(
            // The store's migrations say each step at info; they are
            // the store's business, at debug (RUST_LOG shows them).
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sea_orm_migration=warn")),
        )
        .with_writer(lines);
    match format {
        LogFormat::Text => logger
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .event_format(TextFormat::default())
            .init(),
        LogFormat::Json => logger
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format().json().flatten_event(true),
            ))
            .init(),
    }
    flush
}

/// A JSON log line written while a traced request is served gets the
/// trace's `trace_id` and `span_id`, so that a log pipeline can join lines
/// to spans.
struct WithTraceIds<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = mcp_mux::traces::current_ids() else {
            return self.0.format_event(context, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(
            context,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        // The JSON formatter writes one object and a newline.
        match line.trim_end().strip_suffix('}') {
            Some(fields) => writeln!(
                writer,
                "{fields},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            None => writer.write_str(&line),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::RotateKey(args)) => {
            let _flush = init_logging(LogFormat::Text);
            return rotate_key(args);
        }
        Some(Command::Registry(RegistryCommand::Check(args))) => return check_registry(args),
        Some(Command::Sessions(args)) => return sessions(args),
        None => cli.serve,
    };
    let _flush = init_logging(args.log_format);
    let (encryption_key, previous_keys) = match keys_from_env() {
        Ok(keys) => keys,
        Err(message) => {
            eprintln!("mcp-mux: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Read from the environment only, like the encryption key.
    let admin_token = match std::env::var("MCP_MUX_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => Some(SecretString::from(token)),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            eprintln!("mcp-mux: MCP_MUX_ADMIN_TOKEN must be text");
            return ExitCode::FAILURE;
        }
    };
    let introspection = match introspection_client_from_env() {
        Ok(client) => client,
        Err(message) => {
            eprintln!("mcp-mux: {message}");
            return ExitCode::FAILURE;
        }
    };
    let traces = match TraceSettings::from_env() {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("mcp-mux: {error}");
            return ExitCode::FAILURE;
        }
    };
    let settings = Settings {
        bind: args.bind,
        registry: args.registry,
        search_model: args.search_model,
        database_url: args.database_url,
        data_dir: args.data_dir,
        encryption_key,
        previous_keys,
        mcp_session_idle: Duration::from_secs(args.mcp_session_idle_secs.max(1)),
        workers: args.workers,
        timings: Timings::default(),
        limits: Limits {
            max_sessions: args.max_sessions,
            max_mcp_sessions_per_session: args.max_mcp_sessions.max(1),
            audit_retention: Duration::from_secs(args.audit_retention_days.max(1) * 24 * 3600),
            max_backend_connections: args.max_backend_connections.max(2),
        },
        admin_token,
        allow_open_admin: args.insecure_no_admin_token,
        allowed_hosts: args.allowed_hosts,
        allowed_origins: args.allowed_origins,
        rates: Rates {
            session: args.session_rate.map(Rate::per_second),
            create_session: args.create_session_rate.map(Rate::per_minute),
        },
        public_url: args.public_url,
        node_url: args.node_url,
        body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
        drain: Duration::from_secs(args.drain_seconds),
        access_log: args.access_log,
        metrics_bind: args.metrics_bind,
        traces,
        sign_in: SignInSettings {
            issuers: args.oauth_issuers,
            audience: args.oauth_audience,
            scopes: args.oauth_scopes.map(|scopes| scopes.0).unwrap_or_default(),
            sessions_scope: args.oauth_sessions_scope,
            introspection,
        },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-mux: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let application = match Application::build(settings).await {
            Ok(application) => application,
            Err(error) => {
                tracing::error!("cannot start: {error}");
                eprintln!("mcp-mux: {error}");
                return ExitCode::FAILURE;
            }
        };
        match application.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("mcp-mux: server stopped: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The gateway's client at the issuers' introspection endpoints, from
/// MCP_MUX_OAUTH_INTROSPECTION_CLIENT_ID and _SECRET: both or neither.
/// Read from the environment only: a flag would show in `ps`.
fn introspection_client_from_env() -> Result<Option<IntrospectionClient>, String> {
    let read = |name: &str| match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(Some(value)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} must be text")),
    };
    match (
        read("MCP_MUX_OAUTH_INTROSPECTION_CLIENT_ID")?,
        read("MCP_MUX_OAUTH_INTROSPECTION_SECRET")?,
    ) {
        (Some(client_id), Some(secret)) => Ok(Some(IntrospectionClient {
            client_id,
            secret: SecretString::from(secret),
        })),
        (None, None) => Ok(None),
        _ => Err("set both MCP_MUX_OAUTH_INTROSPECTION_CLIENT_ID and MCP_MUX_OAUTH_INTROSPECTION_SECRET, or neither".into()),
    }
}

/// The current and the previous encryption keys. Read from the environment
/// only: a flag would show in `ps`.
fn keys_from_env() -> Result<(Option<SecretString>, Option<SecretString>), &'static str> {
    let read = |name, message| match std::env::var(name) {
        Ok(value) => Ok(Some(SecretString::from(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(message),
    };
    Ok((
        read(
            "MCP_MUX_ENCRYPTION_KEY",
            "MCP_MUX_ENCRYPTION_KEY must be the base64 encoding of exactly 32 bytes",
        )?,
        read(
            "MCP_MUX_PREVIOUS_KEYS",
            "MCP_MUX_PREVIOUS_KEYS must be base64 keys separated by commas",
        )?,
    ))
}

/// The runtime of the one-shot commands; None (said on stderr) if it cannot
/// start.
fn one_thread_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("mcp-mux: cannot start the async runtime: {error}");
            None
        }
    }
}

/// Prints a command's answer and a newline on standard output. A reader
/// that has gone (`… | head`) ends the command quietly, as Unix tools do,
/// where `println!` would panic.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", text.trim_end()).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-mux: cannot write the answer: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A JSON object given on the command line.
fn parse_json_object(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("expected a JSON object, such as {\"message\": \"hi\"}".to_owned()),
        Err(error) => Err(format!("not JSON: {error}")),
    }
}

/// Runs a `sessions` command against the gateway at `--url`.
fn sessions(args: SessionsArgs) -> ExitCode {
    let gateway = remote::Gateway::new(&args.url, std::env::var("MCP_MUX_ADMIN_TOKEN").ok())
        .with_session_token(std::env::var("MCP_MUX_SESSION_TOKEN").ok());
    let Some(runtime) = one_thread_runtime() else {
        return ExitCode::FAILURE;
    };
    let pretty =
        |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let printed = runtime.block_on(async {
        Ok::<_, remote::RemoteError>(match args.command {
            SessionsCommand::Create {
                servers,
                credentials,
                require_token,
                ttl_seconds,
                tool_mode,
                rate_limit,
                tools,
                name,
                labels,
            } => {
                let created = gateway
                    .create(&remote::NewSession {
                        servers,
                        credentials,
                        require_token,
                        ttl_seconds,
                        tool_mode,
                        rate_limit,
                        tools,
                        name,
                        labels,
                    })
                    .await?;
                if args.json {
                    pretty(&created)
                } else {
                    remote::describe_created(&created)
                }
            }
            SessionsCommand::List {
                name,
                labels,
                server,
                owner,
            } => {
                let mut filter: Vec<(&str, String)> = labels
                    .into_iter()
                    .map(|(key, value)| ("label", format!("{key}={value}")))
                    .collect();
                filter.extend(name.map(|name| ("name", name)));
                filter.extend(server.map(|server| ("server", server)));
                filter.extend(owner.map(|owner| ("owner", owner)));
                let sessions = gateway.list(&filter).await?;
                if args.json {
                    pretty(&serde_json::Value::Array(sessions))
                } else {
                    remote::sessions_table(&sessions)
                }
            }
            SessionsCommand::Show { id } => pretty(&gateway.show(id).await?),
            SessionsCommand::Tools { id } => {
                let tools = gateway.tools(id).await?;
                if args.json {
                    pretty(&serde_json::Value::Array(tools))
                } else {
                    remote::tools_table(&tools)
                }
            }
            SessionsCommand::Call {
                id,
                tool,
                arguments,
            } => pretty(&gateway.call_tool(id, &tool, &arguments).await?),
            SessionsCommand::Audit { id, limit } => {
                let records = gateway.audit(id, limit.clamp(1, 1000)).await?;
                if args.json {
                    pretty(&serde_json::Value::Array(records))
                } else {
                    remote::audit_table(&records)
                }
            }
            SessionsCommand::Delete { id } => {
                let deleted = gateway.delete(id).await?;
                if args.json {
                    pretty(&deleted)
                } else {
                    format!("deleted {id}")
                }
            }
        })
    });
    match printed {
        Ok(text) => print_out(&text),
        Err(error) => {
            eprintln!("mcp-mux: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `registry check`: prints the table (or JSON), exits 1 unless every
/// backend answered.
fn check_registry(args: RegistryCheckArgs) -> ExitCode {
    let Some(runtime) = one_thread_runtime() else {
        return ExitCode::FAILURE;
    };
    let checks = match runtime.block_on(check::check_registry(&args.registry)) {
        Ok(checks) => checks,
        Err(error) => {
            eprintln!("mcp-mux: {error}");
            return ExitCode::FAILURE;
        }
    };
    let printed = if args.json {
        print_out(&serde_json::to_string_pretty(&checks).unwrap_or_default())
    } else {
        print_out(&check::table(&checks))
    };
    if printed == ExitCode::SUCCESS && check::all_reachable(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `rotate-key`: prints what it re-sealed, or the error.
fn rotate_key(args: RotateKeyArgs) -> ExitCode {
    let (encryption_key, previous_keys) = match keys_from_env() {
        Ok(keys) => keys,
        Err(message) => {
            eprintln!("mcp-mux: {message}");
            return ExitCode::FAILURE;
        }
    };
    let settings = RotationSettings {
        database_url: args.database_url,
        data_dir: args.data_dir,
        encryption_key,
        previous_keys,
    };
    let Some(runtime) = one_thread_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(mcp_mux::rotation::rotate_key(settings)) {
        Ok(rotation) => print_out(&rotation.to_string()),
        Err(error) => {
            eprintln!("mcp-mux: {error}");
            ExitCode::FAILURE
        }
    }
}
