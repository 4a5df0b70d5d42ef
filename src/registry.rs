//! `registry.yaml`: the backends an operator offers, read and validated once at
//! start-up. `serde_yaml` is confined to this module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::mcp::naming;

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
    /// The `transport` value that selects this endpoint.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Endpoint::StreamableHttp { .. } => "streamable_http",
            Endpoint::LegacySse { .. } => "sse",
            Endpoint::Stdio(_) => "stdio",
        }
    }

    /// The Streamable HTTP endpoint's URL; None for the other transports.
    pub fn streamable_http_url(&self) -> Option<&url::Url> {
        match self {
            Endpoint::StreamableHttp { url } => Some(url),
            Endpoint::LegacySse { .. } | Endpoint::Stdio(_) => None,
        }
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
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    tool_separator: Option<String>,
    #[serde(default)]
    servers: BTreeMap<String, RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    transport: Option<RawTransport>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_timeout_ms: Option<u64>,
    #[serde(default)]
    max_concurrent_calls: Option<usize>,
    #[serde(default)]
    max_concurrent_calls_per_session: Option<usize>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    circuit_breaker: Option<RawBreaker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    #[serde(default)]
    failure_threshold: Option<u32>,
    #[serde(default)]
    open_ms: Option<u64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawTransport {
    StreamableHttp,
    Sse,
    Stdio,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
enum RawAuth {
    None,
    Bearer {
        #[serde(default)]
        env: Option<String>,
    },
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        env: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    #[serde(default)]
    initial_interval_ms: Option<u64>,
    #[serde(default)]
    max_interval_ms: Option<u64>,
    #[serde(default)]
    max_elapsed_ms: Option<u64>,
}

const MAX_SERVER_NAME_LEN: usize = 32;

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
        let invalid = |field: String, reason: String| RegistryError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };
        let mut value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|source| RegistryError::Parse {
                path: path.to_owned(),
                source,
            })?;
        expand_variables(&mut value, "", &lookup).map_err(|(field, var)| {
            invalid(field, format!("environment variable {var} is not set"))
        })?;
        let raw: RawRegistry =
            serde_yaml::from_value(value).map_err(|source| RegistryError::Parse {
                path: path.to_owned(),
                source,
            })?;

        let tool_separator = raw.tool_separator.unwrap_or_else(|| "__".to_owned());
        if tool_separator.is_empty()
            || tool_separator.len() > 4
            || !tool_separator.chars().all(naming::is_name_char)
        {
            return Err(invalid(
                "tool_separator".into(),
                "must be 1 to 4 characters from A-Z a-z 0-9 _ -".into(),
            ));
        }
        if raw.servers.is_empty() {
            return Err(invalid(
                "servers".into(),
                "must list at least one server".into(),
            ));
        }

        let mut servers = BTreeMap::new();
        for (name, server) in raw.servers {
            let field = |key: &str| format!("servers.{name}.{key}");
            if !is_valid_server_name(&name) {
                return Err(invalid(
                    format!("servers.{name}"),
                    format!(
                        "server names are 1 to {MAX_SERVER_NAME_LEN} characters from a-z 0-9 - and start with a letter or digit"
                    ),
                ));
            }
            let endpoint =
                parse_endpoint(&server).map_err(|(key, reason)| invalid(field(&key), reason))?;
            let auth = parse_auth(server.auth, &endpoint)
                .map_err(|(key, reason)| invalid(field(&key), reason))?;
            let timeout = match server.timeout_ms {
                None => DEFAULT_TIMEOUT,
                Some(0) => return Err(invalid(field("timeout_ms"), "must be above 0".into())),
                Some(ms) => Duration::from_millis(ms),
            };
            let max_timeout = match server.max_timeout_ms {
                None => DEFAULT_MAX_TIMEOUT.max(timeout),
                Some(ms) if Duration::from_millis(ms) < timeout => {
                    return Err(invalid(
                        field("max_timeout_ms"),
                        "must be at least timeout_ms".into(),
                    ));
                }
                Some(ms) => Duration::from_millis(ms),
            };
            let max_concurrent_calls = match server.max_concurrent_calls {
                None => DEFAULT_MAX_CONCURRENT_CALLS,
                Some(0) => {
                    return Err(invalid(
                        field("max_concurrent_calls"),
                        "must be above 0".into(),
                    ));
                }
                Some(calls) => calls,
            };
            let max_concurrent_calls_per_session = match server.max_concurrent_calls_per_session {
                None => (max_concurrent_calls / 4).max(1),
                Some(calls) if calls == 0 || calls > max_concurrent_calls => {
                    return Err(invalid(
                        field("max_concurrent_calls_per_session"),
                        format!("must be from 1 to max_concurrent_calls ({max_concurrent_calls})"),
                    ));
                }
                Some(calls) => calls,
            };
            let defaults = RetryPolicy::default();
            let retry = match server.retry {
                None => defaults,
                Some(retry) => {
                    let policy = RetryPolicy {
                        initial_interval: retry
                            .initial_interval_ms
                            .map_or(defaults.initial_interval, Duration::from_millis),
                        max_interval: retry
                            .max_interval_ms
                            .map_or(defaults.max_interval, Duration::from_millis),
                        max_elapsed: retry
                            .max_elapsed_ms
                            .map_or(defaults.max_elapsed, Duration::from_millis),
                    };
                    if policy.initial_interval.is_zero()
                        || policy.initial_interval > policy.max_interval
                    {
                        return Err(invalid(
                            field("retry"),
                            "initial_interval_ms must be above 0 and at most max_interval_ms"
                                .into(),
                        ));
                    }
                    policy
                }
            };
            let defaults = BreakerPolicy::default();
            let circuit_breaker = match server.circuit_breaker {
                None => defaults,
                Some(raw) => BreakerPolicy {
                    failure_threshold: match raw.failure_threshold {
                        None => defaults.failure_threshold,
                        Some(0) => {
                            return Err(invalid(
                                field("circuit_breaker.failure_threshold"),
                                "must be above 0".into(),
                            ));
                        }
                        Some(threshold) => threshold,
                    },
                    open_for: raw.open_ms.map_or(defaults.open_for, Duration::from_millis),
                },
            };
            servers.insert(
                name.clone(),
                Arc::new(ServerConfig {
                    name,
                    endpoint,
                    description: server.description,
                    auth,
                    timeout,
                    max_timeout,
                    max_concurrent_calls,
                    max_concurrent_calls_per_session,
                    retry,
                    circuit_breaker,
                }),
            );
        }
        Ok(Registry {
            tool_separator,
            servers,
        })
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

/// The endpoint a server entry describes. An error names the key under the
/// server's entry and says why.
fn parse_endpoint(server: &RawServer) -> Result<Endpoint, (String, String)> {
    let transport =
        server
            .transport
            .unwrap_or(if server.url.is_none() && server.command.is_some() {
                RawTransport::Stdio
            } else {
                RawTransport::StreamableHttp
            });
    let transport_name = match transport {
        RawTransport::StreamableHttp => "streamable_http",
        RawTransport::Sse => "sse",
        RawTransport::Stdio => "stdio",
    };
    if transport == RawTransport::Stdio {
        if server.url.is_some() {
            return Err((
                "url".into(),
                "not allowed for transport stdio (a stdio server runs a command)".into(),
            ));
        }
        let Some(command) = &server.command else {
            return Err(("command".into(), "is required for transport stdio".into()));
        };
        if command.trim().is_empty() {
            return Err(("command".into(), "must not be empty".into()));
        }
        check_no_nul("command", command)?;
        let args = server.args.clone().unwrap_or_default();
        for (index, arg) in args.iter().enumerate() {
            check_no_nul(&format!("args[{index}]"), arg)?;
        }
        let env = server.env.clone().unwrap_or_default();
        for (key, value) in &env {
            if !is_env_var_name(key) {
                return Err((
                    format!("env.{key}"),
                    "not an environment variable name: A-Z a-z 0-9 _, not starting with a digit"
                        .into(),
                ));
            }
            check_no_nul(&format!("env.{key}"), value)?;
        }
        return Ok(Endpoint::Stdio(StdioCommand {
            command: command.clone(),
            args,
            env,
        }));
    }
    for (key, present) in [
        ("command", server.command.is_some()),
        ("args", server.args.is_some()),
        ("env", server.env.is_some()),
    ] {
        if present {
            return Err((
                key.into(),
                format!(
                    "not allowed for transport {transport_name} (only stdio servers run a command)"
                ),
            ));
        }
    }
    let Some(url) = &server.url else {
        return Err((
            "url".into(),
            format!("is required for transport {transport_name}"),
        ));
    };
    let url =
        url::Url::parse(url).map_err(|error| ("url".to_owned(), format!("not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err((
            "url".into(),
            "must be an http or https URL with a host".into(),
        ));
    }
    Ok(match transport {
        RawTransport::Sse => Endpoint::LegacySse { url },
        RawTransport::StreamableHttp | RawTransport::Stdio => Endpoint::StreamableHttp { url },
    })
}

/// How the server takes its credential: in a header over HTTP, in an
/// environment variable of its process over stdio.
fn parse_auth(auth: Option<RawAuth>, endpoint: &Endpoint) -> Result<AuthScheme, (String, String)> {
    let transport = endpoint.transport_name();
    let (bearer, header, env) = match auth.unwrap_or(RawAuth::None) {
        RawAuth::None => return Ok(AuthScheme::None),
        RawAuth::Bearer { env } => (true, None, env),
        RawAuth::ApiKey { header, env } => (false, header, env),
    };
    let Endpoint::Stdio(command) = endpoint else {
        if env.is_some() {
            return Err((
                "auth.env".into(),
                format!(
                    "not allowed for transport {transport} (only a stdio server takes its credential in an environment variable)"
                ),
            ));
        }
        if bearer {
            return Ok(AuthScheme::Bearer);
        }
        let Some(header) = header else {
            return Err((
                "auth.header".into(),
                format!("is required for an api_key server over transport {transport}"),
            ));
        };
        return parse_header_name(&header).map(|header| AuthScheme::ApiKey { header });
    };
    if header.is_some() {
        return Err((
            "auth.header".into(),
            "not allowed for transport stdio (a stdio server takes its credential in auth.env)"
                .into(),
        ));
    }
    let Some(var) = env else {
        return Err((
            "auth.env".into(),
            "is required for a stdio server: the environment variable that carries the credential"
                .into(),
        ));
    };
    if !is_env_var_name(&var) {
        return Err((
            "auth.env".into(),
            "not an environment variable name: A-Z a-z 0-9 _, not starting with a digit".into(),
        ));
    }
    if command.env.contains_key(&var) {
        return Err((
            "auth.env".into(),
            format!("{var} is also set in env; the credential must have a variable of its own"),
        ));
    }
    Ok(AuthScheme::Env { var, bearer })
}

fn parse_header_name(header: &str) -> Result<String, (String, String)> {
    let header = header.to_ascii_lowercase();
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(("auth.header".into(), "must be an HTTP header name".into()));
    }
    if matches!(
        header.as_str(),
        "mcp-session-id"
            | "mcp-protocol-version"
            | "content-type"
            | "accept"
            | "host"
            | "content-length"
    ) {
        return Err((
            "auth.header".into(),
            format!("{header} is set by the MCP transport itself"),
        ));
    }
    Ok(header)
}

fn check_no_nul(key: &str, value: &str) -> Result<(), (String, String)> {
    if value.contains('\0') {
        return Err((key.into(), "must not contain a NUL character".into()));
    }
    Ok(())
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_valid_server_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_SERVER_NAME_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Replaces `${VAR}` in every string of the document. On a missing variable
/// returns the field where it was found and the variable's name.
fn expand_variables(
    value: &mut serde_yaml::Value,
    field: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        serde_yaml::Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                let Some(end) = rest[start..].find('}') else {
                    break;
                };
                let var = &rest[start + 2..start + end];
                let replacement = lookup(var).ok_or_else(|| (field.to_owned(), var.to_owned()))?;
                out.push_str(&rest[..start]);
                out.push_str(&replacement);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        serde_yaml::Value::Mapping(map) => {
            for (key, child) in map.iter_mut() {
                let key = key.as_str().unwrap_or("?");
                let child_field = if field.is_empty() {
                    key.to_owned()
                } else {
                    format!("{field}.{key}")
                };
                expand_variables(child, &child_field, lookup)?;
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                expand_variables(child, &format!("{field}[{index}]"), lookup)?;
            }
        }
        serde_yaml::Value::Tagged(tagged) => expand_variables(&mut tagged.value, field, lookup)?,
        serde_yaml::Value::Null | serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registry, RegistryError> {
        Registry::parse(text, Path::new("registry.yaml"), |var| {
            (var == "PORT").then(|| "3001".to_owned())
        })
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err("must be rejected").to_string()
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
    fn invalid_registries_are_refused_naming_the_field() {
        let cases = [
            (
                "servers:\n  Bad_Name:\n    url: http://a/mcp\n",
                "servers.Bad_Name: server names are",
            ),
            (
                "servers:\n  a.b:\n    url: http://a/mcp\n",
                "servers.a.b: server names are",
            ),
            (
                "servers:\n  a:\n    url: ftp://a/mcp\n",
                "servers.a.url: must be an http or https URL",
            ),
            (
                "servers:\n  a:\n    url: not a url\n",
                "servers.a.url: not a URL",
            ),
            (
                "servers:\n  a:\n    url: http://${MISSING}/mcp\n",
                "servers.a.url: environment variable MISSING is not set",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    auth: { type: api_key, header: 'x y' }\n",
                "servers.a.auth.header: must be an HTTP header name",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    timeout_ms: 0\n",
                "servers.a.timeout_ms: must be above 0",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    timeout_ms: 5000\n    max_timeout_ms: 4999\n",
                "servers.a.max_timeout_ms: must be at least timeout_ms",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    max_concurrent_calls: 0\n",
                "servers.a.max_concurrent_calls: must be above 0",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    max_concurrent_calls: 8\n    max_concurrent_calls_per_session: 9\n",
                "servers.a.max_concurrent_calls_per_session: must be from 1 to max_concurrent_calls (8)",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    max_concurrent_calls_per_session: 0\n",
                "servers.a.max_concurrent_calls_per_session: must be from 1 to max_concurrent_calls (64)",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    circuit_breaker: { failure_threshold: 0 }\n",
                "servers.a.circuit_breaker.failure_threshold: must be above 0",
            ),
            (
                "tool_separator: \".\"\nservers:\n  a:\n    url: http://a/mcp\n",
                "tool_separator: must be 1 to 4 characters",
            ),
            ("servers: {}\n", "servers: must list at least one server"),
        ];
        for (text, expected) in cases {
            let message = error_of(text);
            assert!(message.contains(expected), "{text:?} gave {message:?}");
        }
    }

    #[test]
    fn transport_mistakes_are_refused_naming_the_field() {
        let cases = [
            (
                "servers:\n  a:\n    description: nothing else\n",
                "servers.a.url: is required for transport streamable_http",
            ),
            (
                "servers:\n  a:\n    transport: sse\n",
                "servers.a.url: is required for transport sse",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    command: npx\n",
                "servers.a.command: not allowed for transport streamable_http (only stdio servers run a command)",
            ),
            (
                "servers:\n  a:\n    transport: sse\n    url: http://a/sse\n    env: { A: b }\n",
                "servers.a.env: not allowed for transport sse (only stdio servers run a command)",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    args: [x]\n",
                "servers.a.args: not allowed for transport streamable_http (only stdio servers run a command)",
            ),
            (
                "servers:\n  a:\n    transport: stdio\n",
                "servers.a.command: is required for transport stdio",
            ),
            (
                "servers:\n  files:\n    command: '  '\n",
                "servers.files.command: must not be empty",
            ),
            (
                "servers:\n  a:\n    transport: stdio\n    url: http://a/mcp\n    command: x\n",
                "servers.a.url: not allowed for transport stdio (a stdio server runs a command)",
            ),
            (
                "servers:\n  a:\n    command: x\n    args: [ok, \"b\\0d\"]\n",
                "servers.a.args[1]: must not contain a NUL character",
            ),
            (
                "servers:\n  a:\n    command: x\n    env: { 1X: y }\n",
                "servers.a.env.1X: not an environment variable name: A-Z a-z 0-9 _, not starting with a digit",
            ),
            (
                "servers:\n  a:\n    command: x\n    auth: { type: api_key, header: x-key }\n",
                "servers.a.auth.header: not allowed for transport stdio (a stdio server takes its credential in auth.env)",
            ),
            (
                "servers:\n  a:\n    command: x\n    auth: { type: bearer }\n",
                "servers.a.auth.env: is required for a stdio server: the environment variable that carries the credential",
            ),
            (
                "servers:\n  a:\n    command: x\n    auth: { type: api_key, env: 'A-B' }\n",
                "servers.a.auth.env: not an environment variable name: A-Z a-z 0-9 _, not starting with a digit",
            ),
            (
                "servers:\n  a:\n    command: x\n    env: { TOKEN: t }\n    auth: { type: api_key, env: TOKEN }\n",
                "servers.a.auth.env: TOKEN is also set in env; the credential must have a variable of its own",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    auth: { type: api_key, env: TOKEN }\n",
                "servers.a.auth.env: not allowed for transport streamable_http (only a stdio server takes its credential in an environment variable)",
            ),
            (
                "servers:\n  a:\n    transport: sse\n    url: http://a/sse\n    auth: { type: bearer, env: TOKEN }\n",
                "servers.a.auth.env: not allowed for transport sse (only a stdio server takes its credential in an environment variable)",
            ),
            (
                "servers:\n  a:\n    url: http://a/mcp\n    auth: { type: api_key }\n",
                "servers.a.auth.header: is required for an api_key server over transport streamable_http",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                error_of(text),
                format!("registry registry.yaml: {expected}"),
                "{text:?}"
            );
        }
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

    #[test]
    fn unknown_keys_and_auth_types_are_refused() {
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    urll: x\n")
                .contains("unknown field")
        );
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    auth: { type: oauth }\n")
                .contains("unknown variant")
        );
        assert!(
            error_of("servers:\n  a:\n    transport: websocket\n    url: http://a/mcp\n")
                .contains("unknown variant")
        );
    }
}
