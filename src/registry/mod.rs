//! `registry.yaml`: the backends an operator offers, read and validated once at
//! start-up. `serde_yaml` is confined to this module: [`raw`] is the document's
//! shape, [`expand`] fills in `${VAR}`, [`validate`] turns the shape into the
//! model below.

mod expand;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use expand::expand_variables;
use raw::RawRegistry;
use validate::InvalidField;
pub use validate::Refusal;

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
    servers: BTreeMap<String, Arc<ServerConfig>>,
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
    LegacySse { url: url::Url },
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio(StdioCommand),
}

impl Endpoint {
    /// The transport that reaches this endpoint.
    pub fn transport(&self) -> Transport {
        match self {
            Endpoint::StreamableHttp { .. } => Transport::StreamableHttp,
            Endpoint::LegacySse { .. } => Transport::Sse,
            Endpoint::Stdio(_) => Transport::Stdio,
        }
    }

    /// The `transport` value that selects this endpoint.
    pub fn transport_name(&self) -> &'static str {
        self.transport().name()
    }

    /// The Streamable HTTP endpoint's URL; None for the other transports.
    pub fn streamable_http_url(&self) -> Option<&url::Url> {
        match self {
            Endpoint::StreamableHttp { url } => Some(url),
            Endpoint::LegacySse { .. } | Endpoint::Stdio(_) => None,
        }
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
}

impl AuthScheme {
    /// The credential field a client must give, if any.
    pub fn credential_field(&self) -> Option<&'static str> {
        match self {
            AuthScheme::None => None,
            AuthScheme::Bearer | AuthScheme::Env { bearer: true, .. } => Some("token"),
            AuthScheme::ApiKey { .. } | AuthScheme::Env { bearer: false, .. } => Some("api_key"),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AuthScheme::None => "none",
            AuthScheme::Bearer | AuthScheme::Env { bearer: true, .. } => "bearer",
            AuthScheme::ApiKey { .. } | AuthScheme::Env { bearer: false, .. } => "api_key",
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

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("registry {path}: {field}: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: Refusal,
    },
}

impl Registry {
    /// Reads and validates the registry at `path`, expanding `${VAR}` from
    /// the environment.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, |name| std::env::var(name).ok())
    }

    /// Validates registry text; `lookup` resolves `${VAR}` references.
    pub fn parse(
        text: &str,
        path: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RegistryError> {
        let not_valid = |source| RegistryError::Parse {
            path: path.to_owned(),
            source,
        };
        let invalid = |InvalidField { field, reason }| RegistryError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(not_valid)?;
        expand_variables(&mut value, "", &lookup).map_err(|unset| invalid(unset.into()))?;
        let raw: RawRegistry = serde_yaml::from_value(value).map_err(not_valid)?;
        validate::registry(raw).map_err(invalid)
    }

    /// The server called `name`, if the registry lists it.
    pub fn server(&self, name: &str) -> Option<&Arc<ServerConfig>> {
        self.servers.get(name)
    }

    /// Every server, ordered by name.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<ServerConfig>> {
        self.servers.values()
    }

    /// The server names, ordered, joined for error messages.
    pub fn server_names(&self) -> String {
        self.servers
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registry, RegistryError> {
        Registry::parse(text, Path::new("registry.yaml"), |var| {
            (var == "PORT").then(|| "3001".to_owned())
        })
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let registry = parse(
            r#"
tool_separator: "__"
servers:
  everything:
    url: http://127.0.0.1:${PORT}/mcp
    description: Reference server
    auth: { type: none }
  huggingface:
    url: https://huggingface.co/mcp
    auth: { type: bearer }
  kb:
    url: https://example.com/mcp
    auth: { type: api_key, header: X-Api-Key }
    timeout_ms: 5000
"#,
        )
        .expect("valid registry");
        let everything = registry.server("everything").expect("listed");
        assert_eq!(
            everything.endpoint,
            Endpoint::StreamableHttp {
                url: url::Url::parse("http://127.0.0.1:3001/mcp").expect("URL")
            }
        );
        assert_eq!(everything.timeout, DEFAULT_TIMEOUT);
        let kb = registry.server("kb").expect("listed");
        assert_eq!(
            kb.auth,
            AuthScheme::ApiKey {
                header: "x-api-key".into()
            }
        );
        assert_eq!(kb.auth.credential_field(), Some("api_key"));
        assert_eq!(kb.timeout, Duration::from_secs(5));
        assert_eq!(registry.server_names(), "everything, huggingface, kb");
    }

    #[test]
    fn stdio_and_legacy_sse_servers_are_accepted() {
        let registry = parse(
            r#"
servers:
  files:
    transport: stdio
    command: /usr/local/bin/npx
    args: ["-y", "@modelcontextprotocol/server-everything", "stdio"]
    env: { LOG_LEVEL: info, PORT: "${PORT}" }
    auth: { type: api_key, env: FILES_TOKEN }
    timeout_ms: 30000
  implied:
    command: server
    auth: { type: bearer, env: TOKEN }
  old:
    transport: sse
    url: http://127.0.0.1:${PORT}/sse
    auth: { type: bearer }
"#,
        )
        .expect("valid registry");
        let files = registry.server("files").expect("listed");
        let Endpoint::Stdio(command) = &files.endpoint else {
            panic!("files is a stdio server: {:?}", files.endpoint);
        };
        assert_eq!(command.command, "/usr/local/bin/npx");
        assert_eq!(command.name(), "npx");
        assert_eq!(command.args.len(), 3);
        assert_eq!(command.env["PORT"], "3001");
        assert_eq!(
            files.auth,
            AuthScheme::Env {
                var: "FILES_TOKEN".into(),
                bearer: false
            }
        );
        assert_eq!(files.auth.credential_field(), Some("api_key"));
        assert_eq!(files.auth.type_name(), "api_key");
        let implied = registry.server("implied").expect("listed");
        assert_eq!(implied.endpoint.transport_name(), "stdio");
        assert_eq!(implied.auth.credential_field(), Some("token"));
        assert_eq!(implied.auth.type_name(), "bearer");
        let old = registry.server("old").expect("listed");
        assert_eq!(old.endpoint.transport_name(), "sse");
        assert_eq!(old.endpoint.streamable_http_url(), None);
        assert_eq!(old.auth, AuthScheme::Bearer);
    }

    #[test]
    fn a_stdio_command_prints_neither_its_arguments_nor_its_environment() {
        let registry = parse(
            "servers:\n  a:\n    command: /opt/bin/server\n    args: [--token, arg-secret]\n    env: { KEY: env-secret }\n",
        )
        .expect("valid registry");
        let printed = format!("{registry:?}");
        assert!(printed.contains("server"), "{printed}");
        assert!(printed.contains("KEY"), "{printed}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(!printed.contains("/opt/bin"), "{printed}");
    }
}
