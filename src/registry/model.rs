//! What a validated registry holds: each backend server, how to reach it,
//! its credentials' scheme and its retry and circuit-breaker policies.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Default time allowed for one outbound call to a backend.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest a call may run while the backend reports progress.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Default bound on one backend's calls in progress on this gateway.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;

/// The validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub tool_separator: String,
    pub(super) servers: BTreeMap<String, Arc<ServerConfig>>,
}

/// One backend as the operator configured it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    /// How mcp-mux reaches the backend.
    pub endpoint: Endpoint,
    pub description: Option<String>,
    pub auth: AuthScheme,
    /// Limit for each outbound call (connect, send, full answer), counted
    /// again from each progress notification the backend sends.
    pub timeout: Duration,
    /// Limit for a call however much progress the backend reports.
    pub max_timeout: Duration,
    /// Calls to this backend in progress at once, across all sessions;
    /// more wait (within the retry budget) for one to finish.
    pub max_concurrent_calls: usize,
    /// Of those, how many one session may hold: its fair share, so that one
    /// session cannot take every slot of a shared backend.
    pub max_concurrent_calls_per_session: usize,
    pub retry: RetryPolicy,
    pub circuit_breaker: BreakerPolicy,
    /// Other servers of the registry offering the same tools, in the order
    /// calls fail over to them. Their own fallbacks are never followed.
    pub fallback: Vec<String>,
}

impl ServerConfig {
    /// Whether, as a fallback of `primary`, this server needs a credential
    /// of its own: it takes one, in another way than `primary` does.
    /// Otherwise a call that fails over carries the primary's.
    pub fn needs_own_credential_as_fallback_of(&self, primary: &ServerConfig) -> bool {
        self.auth.credential_field().is_some() && self.auth != primary.auth
    }
}

/// When a backend's circuit breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failed exchanges in a row (unreachable, timed out, 5xx) that open it.
    pub failure_threshold: u32,
    /// How long calls fail at once before one probe may go through.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

/// How mcp-mux reaches a backend: the `transport` key and what it takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// Streamable HTTP (revision 2025-03-26 and later) at `url`.
    StreamableHttp { url: url::Url },
    /// The HTTP+SSE transport of revision 2024-11-05: `url` is the SSE stream.
    HttpSse { url: url::Url },
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio(StdioCommand),
}

impl Endpoint {
    /// The transport that reaches this endpoint.
    pub fn transport(&self) -> Transport {
        match self {
            Endpoint::StreamableHttp { .. } => Transport::StreamableHttp,
            Endpoint::HttpSse { .. } => Transport::Sse,
            Endpoint::Stdio(_) => Transport::Stdio,
        }
    }

    /// The `transport` value that selects this endpoint.
    pub fn transport_name(&self) -> &'static str {
        self.transport().name()
    }
}

/// The values of a server's `transport` key. Each is spelled only in
/// [`Transport::name`], which both reading the registry and its messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp,
    Sse,
    Stdio,
}

impl Transport {
    /// Every transport, in the order the registry documents them.
    pub const ALL: [Transport; 3] = [Transport::StreamableHttp, Transport::Sse, Transport::Stdio];

    /// The `transport` value that selects this transport.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable_http",
            Transport::Sse => "sse",
            Transport::Stdio => "stdio",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The command a stdio backend runs, once per backend session.
#[derive(Clone, PartialEq)]
pub struct StdioCommand {
    pub command: String,
    pub args: Vec<String>,
    /// Set in the child's environment, over the few variables it inherits.
    pub env: BTreeMap<String, String>,
}

impl StdioCommand {
    /// The command's file name, without its directory: what may be shown.
    pub fn name(&self) -> &str {
        Path::new(&self.command)
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or(&self.command)
    }
}

// The arguments and the environment may carry secrets (`${VAR}` expands to
// anything): a Debug print shows neither.
impl std::fmt::Debug for StdioCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioCommand")
            .field("command", &self.name())
            .field("args", &format_args!("[{} redacted]", self.args.len()))
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How a backend expects its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `<header>: <api_key>`.
    ApiKey {
        header: String,
    },
    /// A stdio backend's credential, set as the environment variable `var`
    /// of its process: the `token` of `bearer`, or the `api_key` of `api_key`.
    Env {
        var: String,
        bearer: bool,
    },
    /// mcp-mux is the backend's OAuth client: each session holds a grant,
    /// which its user gives by following the session's authorization link.
    OAuth(OAuthSettings),
}

/// How mcp-mux signs in to an OAuth backend (`auth: { type: oauth }`).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// A client registered by hand; else mcp-mux registers itself.
    pub client_id: Option<String>,
    pub client_secret: Option<ClientSecret>,
    /// Asked for at authorization; else those the backend names.
    pub scopes: Vec<String>,
    /// Added to the authorization URL (`access_type: offline`, say).
    pub authorize_params: Vec<(String, String)>,
    /// Whether authorization and token requests carry RFC 8707 `resource`
    /// (`resource: omit` for servers that refuse it).
    pub send_resource: bool,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("scopes", &self.scopes)
            .field("authorize_params", &self.authorize_params)
            .field("send_resource", &self.send_resource)
            .finish()
    }
}

/// A client secret from the registry (`${VAR}`): compared, never shown.
#[derive(Clone)]
pub struct ClientSecret(pub secrecy::SecretString);

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for ClientSecret {}

impl AuthScheme {
    /// The credential field a client must give, if any.
    pub fn credential_field(&self) -> Option<&'static str> {
        match self {
            AuthScheme::None | AuthScheme::OAuth(_) => None,
            AuthScheme::Bearer | AuthScheme::Env { bearer: true, .. } => Some("token"),
            AuthScheme::ApiKey { .. } | AuthScheme::Env { bearer: false, .. } => Some("api_key"),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AuthScheme::None => "none",
            AuthScheme::Bearer | AuthScheme::Env { bearer: true, .. } => "bearer",
            AuthScheme::ApiKey { .. } | AuthScheme::Env { bearer: false, .. } => "api_key",
            AuthScheme::OAuth(_) => "oauth",
        }
    }

    /// The OAuth settings of a backend mcp-mux signs in to.
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        match self {
            AuthScheme::OAuth(settings) => Some(settings),
            _ => None,
        }
    }
}

/// Exponential backoff bounds for retrying a backend call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial_interval: Duration,
    pub max_interval: Duration,
    /// No new attempt starts once this much time has passed since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(5),
        }
    }
}
