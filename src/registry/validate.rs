//! From the registry's raw shape to the model: every rule an entry must keep,
//! and when it does not, the field to blame and a [`Refusal`] saying why.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::expand::{UnsetVariable, is_env_var_name};
use super::model::{
    AuthScheme, BreakerPolicy, ClientSecret, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_TIMEOUT,
    DEFAULT_TIMEOUT, Endpoint, OAuthSettings, Registry, RetryPolicy, ServerConfig, StdioCommand,
    Transport,
};
use super::raw::{RawAuth, RawBreaker, RawOAuth, RawRegistry, RawRetry, RawServer};
use crate::mcp::naming;

const DEFAULT_TOOL_SEPARATOR: &str = "__";
const MAX_TOOL_SEPARATOR_LEN: usize = 4;
const MAX_SERVER_NAME_LEN: usize = 32;

/// Why a value of the registry is refused: the message after the field's path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("must be 1 to {MAX_TOOL_SEPARATOR_LEN} characters from A-Z a-z 0-9 _ -")]
    ToolSeparator,
    #[error("must list at least one server")]
    NoServers,
    #[error(
        "server names are 1 to {MAX_SERVER_NAME_LEN} characters from a-z 0-9 - and start with a letter or digit"
    )]
    ServerName,
    #[error("environment variable {var} is not set")]
    UnsetVariable { var: String },
    /// `url` (HTTP transports) or `command` (stdio) is missing.
    #[error("is required for transport {transport}")]
    RequiredForTransport { transport: Transport },
    /// `command`, `args` or `env` on a server reached over HTTP.
    #[error("not allowed for transport {transport} (only stdio servers run a command)")]
    CommandOverHttp { transport: Transport },
    #[error(
        "not allowed for transport {stdio} (a stdio server runs a command)",
        stdio = Transport::Stdio
    )]
    UrlForStdio,
    #[error("must not be empty")]
    Empty,
    #[error("must not contain a NUL character")]
    NulCharacter,
    #[error("not an environment variable name: A-Z a-z 0-9 _, not starting with a digit")]
    NotEnvVarName,
    #[error("not a URL: {error}")]
    NotUrl { error: url::ParseError },
    #[error("must be an http or https URL with a host")]
    NotHttpUrl,
    /// `auth.env` on a server reached over HTTP.
    #[error(
        "not allowed for transport {transport} (only a stdio server takes its credential in an environment variable)"
    )]
    CredentialEnvOverHttp { transport: Transport },
    #[error("is required for an api_key server over transport {transport}")]
    HeaderRequired { transport: Transport },
    #[error("must be an HTTP header name")]
    NotHeaderName,
    #[error("{header} is set by the MCP transport itself")]
    ReservedHeader { header: String },
    #[error(
        "not allowed for transport {stdio} (a stdio server takes its credential in auth.env)",
        stdio = Transport::Stdio
    )]
    HeaderForStdio,
    #[error("is required for a stdio server: the environment variable that carries the credential")]
    CredentialEnvRequired,
    #[error("{var} is also set in env; the credential must have a variable of its own")]
    CredentialEnvAlsoInEnv { var: String },
    #[error("must be above 0")]
    Zero,
    #[error("must be at least timeout_ms")]
    MaxTimeoutBelowTimeout,
    #[error("must be from 1 to max_concurrent_calls ({max_concurrent_calls})")]
    CallsPerSessionOutOfRange { max_concurrent_calls: usize },
    #[error("initial_interval_ms must be above 0 and at most max_interval_ms")]
    RetryIntervals,
    #[error("unknown server \"{name}\"; known: {known}")]
    UnknownFallback { name: String, known: String },
    #[error("a server cannot be its own fallback")]
    OwnFallback,
    #[error("\"{name}\" is listed twice")]
    DuplicateFallback { name: String },
    #[error(
        "not allowed for transport {stdio} (an OAuth backend is reached over HTTP)",
        stdio = Transport::Stdio
    )]
    OAuthOverStdio,
    #[error("needs auth.client_id: a secret belongs to a client registered by hand")]
    SecretWithoutClient,
    #[error("a scope is one word, without spaces or quotes")]
    NotScope,
    #[error("{name} is set by mcp-mux itself")]
    ReservedAuthorizeParam { name: String },
    #[error("must be an URL query parameter name: A-Z a-z 0-9 . _ -")]
    NotParamName,
    #[error("the only value is omit (leave RFC 8707 resource out of OAuth requests)")]
    NotOmit,
}

/// A refused value: its field, as a path from the part being checked
/// (`url`, `args[1]`; `servers.a.url` once the whole document is), and why.
#[derive(Debug, PartialEq)]
pub(super) struct InvalidField {
    pub field: String,
    pub reason: Refusal,
}

impl InvalidField {
    fn new(field: impl Into<String>, reason: Refusal) -> Self {
        InvalidField {
            field: field.into(),
            reason,
        }
    }

    /// The same refusal, its field named from `parent` down.
    fn under(self, parent: &str) -> Self {
        InvalidField {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

impl From<UnsetVariable> for InvalidField {
    fn from(UnsetVariable { field, var }: UnsetVariable) -> Self {
        InvalidField::new(field, Refusal::UnsetVariable { var })
    }
}

/// Blames `field` for a refusal.
fn at(field: &str) -> impl FnOnce(Refusal) -> InvalidField {
    move |reason| InvalidField::new(field, reason)
}

/// The registry a document describes, or the first field it must not have.
pub(super) fn registry(raw: RawRegistry) -> Result<Registry, InvalidField> {
    let tool_separator = tool_separator(raw.tool_separator).map_err(at("tool_separator"))?;
    if raw.servers.is_empty() {
        return Err(InvalidField::new("servers", Refusal::NoServers));
    }
    let mut servers = BTreeMap::new();
    for (name, raw) in raw.servers {
        let entry = format!("servers.{name}");
        if !is_valid_server_name(&name) {
            return Err(InvalidField::new(entry, Refusal::ServerName));
        }
        let server = server(name.clone(), raw).map_err(|invalid| invalid.under(&entry))?;
        servers.insert(name, Arc::new(server));
    }
    for server in servers.values() {
        check_fallbacks(server, &servers)
            .map_err(|invalid| invalid.under(&format!("servers.{}", server.name)))?;
    }
    Ok(Registry {
        tool_separator,
        servers,
    })
}

/// A server's `fallback` list names other servers of the registry, each
/// once. Any server may be a fallback, whatever its transport, and may have
/// fallbacks of its own: those are not followed, so no chain or cycle forms.
fn check_fallbacks(
    server: &ServerConfig,
    servers: &BTreeMap<String, Arc<ServerConfig>>,
) -> Result<(), InvalidField> {
    for (index, name) in server.fallback.iter().enumerate() {
        let field = format!("fallback[{index}]");
        if *name == server.name {
            return Err(InvalidField::new(field, Refusal::OwnFallback));
        }
        if !servers.contains_key(name) {
            let known = servers.keys().map(String::as_str).collect::<Vec<_>>();
            return Err(InvalidField::new(
                field,
                Refusal::UnknownFallback {
                    name: name.clone(),
                    known: known.join(", "),
                },
            ));
        }
        if server.fallback[..index].contains(name) {
            return Err(InvalidField::new(
                field,
                Refusal::DuplicateFallback { name: name.clone() },
            ));
        }
    }
    Ok(())
}

fn tool_separator(separator: Option<String>) -> Result<String, Refusal> {
    let separator = separator.unwrap_or_else(|| DEFAULT_TOOL_SEPARATOR.to_owned());
    if separator.is_empty()
        || separator.len() > MAX_TOOL_SEPARATOR_LEN
        || !separator.chars().all(naming::is_name_char)
    {
        return Err(Refusal::ToolSeparator);
    }
    Ok(separator)
}

fn is_valid_server_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_SERVER_NAME_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One server entry; a refusal names the key under the entry.
fn server(name: String, raw: RawServer) -> Result<ServerConfig, InvalidField> {
    let endpoint = endpoint(&raw)?;
    let auth = auth(raw.auth, &endpoint).map_err(|invalid| invalid.under("auth"))?;
    let timeout = timeout(raw.timeout_ms).map_err(at("timeout_ms"))?;
    let max_timeout = max_timeout(raw.max_timeout_ms, timeout).map_err(at("max_timeout_ms"))?;
    let max_concurrent_calls =
        max_concurrent_calls(raw.max_concurrent_calls).map_err(at("max_concurrent_calls"))?;
    let max_concurrent_calls_per_session = max_concurrent_calls_per_session(
        raw.max_concurrent_calls_per_session,
        max_concurrent_calls,
    )
    .map_err(at("max_concurrent_calls_per_session"))?;
    let retry = raw
        .retry
        .map_or(Ok(RetryPolicy::default()), retry_policy)
        .map_err(at("retry"))?;
    let circuit_breaker = raw
        .circuit_breaker
        .map_or(Ok(BreakerPolicy::default()), breaker_policy)
        .map_err(|invalid| invalid.under("circuit_breaker"))?;
    Ok(ServerConfig {
        name,
        endpoint,
        description: raw.description,
        auth,
        timeout,
        max_timeout,
        max_concurrent_calls,
        max_concurrent_calls_per_session,
        retry,
        circuit_breaker,
        fallback: raw.fallback.unwrap_or_default(),
    })
}

/// The endpoint a server entry describes. An error names the key under the
/// server's entry and says why.
fn endpoint(server: &RawServer) -> Result<Endpoint, InvalidField> {
    match transport(server) {
        Transport::Stdio => stdio_command(server).map(Endpoint::Stdio),
        Transport::StreamableHttp => {
            http_url(server, Transport::StreamableHttp).map(|url| Endpoint::StreamableHttp { url })
        }
        Transport::Sse => http_url(server, Transport::Sse).map(|url| Endpoint::HttpSse { url }),
    }
}

/// The `transport` key, or when it is absent, stdio for an entry with a
/// `command` and no `url`, Streamable HTTP otherwise.
fn transport(server: &RawServer) -> Transport {
    server
        .transport
        .unwrap_or(if server.url.is_none() && server.command.is_some() {
            Transport::Stdio
        } else {
            Transport::StreamableHttp
        })
}

fn stdio_command(server: &RawServer) -> Result<StdioCommand, InvalidField> {
    if server.url.is_some() {
        return Err(InvalidField::new("url", Refusal::UrlForStdio));
    }
    let Some(command) = &server.command else {
        return Err(InvalidField::new(
            "command",
            Refusal::RequiredForTransport {
                transport: Transport::Stdio,
            },
        ));
    };
    if command.trim().is_empty() {
        return Err(InvalidField::new("command", Refusal::Empty));
    }
    check_no_nul(command).map_err(at("command"))?;
    let args = server.args.clone().unwrap_or_default();
    for (index, arg) in args.iter().enumerate() {
        check_no_nul(arg).map_err(at(&format!("args[{index}]")))?;
    }
    let env = server.env.clone().unwrap_or_default();
    for (key, value) in &env {
        let field = format!("env.{key}");
        if !is_env_var_name(key) {
            return Err(InvalidField::new(field, Refusal::NotEnvVarName));
        }
        check_no_nul(value).map_err(at(&field))?;
    }
    Ok(StdioCommand {
        command: command.clone(),
        args,
        env,
    })
}

/// The URL of a server reached over HTTP by `transport`.
fn http_url(server: &RawServer, transport: Transport) -> Result<url::Url, InvalidField> {
    for (key, present) in [
        ("command", server.command.is_some()),
        ("args", server.args.is_some()),
        ("env", server.env.is_some()),
    ] {
        if present {
            return Err(InvalidField::new(
                key,
                Refusal::CommandOverHttp { transport },
            ));
        }
    }
    let Some(url) = &server.url else {
        return Err(InvalidField::new(
            "url",
            Refusal::RequiredForTransport { transport },
        ));
    };
    let url = url::Url::parse(url)
        .map_err(|error| InvalidField::new("url", Refusal::NotUrl { error }))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(InvalidField::new("url", Refusal::NotHttpUrl));
    }
    Ok(url)
}

fn check_no_nul(value: &str) -> Result<(), Refusal> {
    if value.contains('\0') {
        return Err(Refusal::NulCharacter);
    }
    Ok(())
}

/// How the server takes its credential: in a header over HTTP, in an
/// environment variable of its process over stdio. A refusal names the key
/// under `auth`.
fn auth(auth: Option<RawAuth>, endpoint: &Endpoint) -> Result<AuthScheme, InvalidField> {
    let (bearer, header, env) = match auth.unwrap_or(RawAuth::None) {
        RawAuth::None => return Ok(AuthScheme::None),
        RawAuth::Bearer { env } => (true, None, env),
        RawAuth::ApiKey { header, env } => (false, header, env),
        RawAuth::Oauth(raw) => {
            if matches!(endpoint, Endpoint::Stdio(_)) {
                return Err(InvalidField::new("type", Refusal::OAuthOverStdio));
            }
            return oauth(raw).map(AuthScheme::OAuth);
        }
    };
    match endpoint {
        Endpoint::Stdio(command) => credential_env(bearer, header, env, command),
        Endpoint::StreamableHttp { .. } | Endpoint::HttpSse { .. } => {
            credential_header(bearer, header, env, endpoint.transport())
        }
    }
}

/// The authorization parameters mcp-mux sets itself, which
/// `authorize_params` cannot replace.
const RESERVED_AUTHORIZE_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "resource",
];

/// How mcp-mux signs in to an OAuth backend.
fn oauth(raw: RawOAuth) -> Result<OAuthSettings, InvalidField> {
    if let Some(client_id) = &raw.client_id
        && client_id.trim().is_empty()
    {
        return Err(InvalidField::new("client_id", Refusal::Empty));
    }
    let client_secret = match raw.client_secret {
        Some(_) if raw.client_id.is_none() => {
            return Err(InvalidField::new(
                "client_secret",
                Refusal::SecretWithoutClient,
            ));
        }
        Some(secret) if secret.is_empty() => {
            return Err(InvalidField::new("client_secret", Refusal::Empty));
        }
        secret => secret.map(|secret| ClientSecret(secret.into())),
    };
    let scopes = raw.scopes.unwrap_or_default();
    for (index, scope) in scopes.iter().enumerate() {
        if !crate::oauth::is_scope(scope) {
            return Err(InvalidField::new(
                format!("scopes[{index}]"),
                Refusal::NotScope,
            ));
        }
    }
    let authorize_params = raw.authorize_params.unwrap_or_default();
    for (name, value) in &authorize_params {
        let field = format!("authorize_params.{name}");
        let is_param_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || !name.chars().all(is_param_char) {
            return Err(InvalidField::new(field, Refusal::NotParamName));
        }
        if RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) {
            return Err(InvalidField::new(
                field,
                Refusal::ReservedAuthorizeParam { name: name.clone() },
            ));
        }
        check_no_nul(value).map_err(at(&field))?;
    }
    let send_resource = match raw.resource.as_deref() {
        None => true,
        Some("omit") => false,
        Some(_) => return Err(InvalidField::new("resource", Refusal::NotOmit)),
    };
    Ok(OAuthSettings {
        client_id: raw.client_id,
        client_secret,
        scopes,
        authorize_params: authorize_params.into_iter().collect(),
        send_resource,
    })
}

/// The credential of a server reached over HTTP, sent in a header.
fn credential_header(
    bearer: bool,
    header: Option<String>,
    env: Option<String>,
    transport: Transport,
) -> Result<AuthScheme, InvalidField> {
    if env.is_some() {
        return Err(InvalidField::new(
            "env",
            Refusal::CredentialEnvOverHttp { transport },
        ));
    }
    if bearer {
        return Ok(AuthScheme::Bearer);
    }
    let Some(header) = header else {
        return Err(InvalidField::new(
            "header",
            Refusal::HeaderRequired { transport },
        ));
    };
    let header = header_name(&header).map_err(at("header"))?;
    Ok(AuthScheme::ApiKey { header })
}

fn header_name(header: &str) -> Result<String, Refusal> {
    let header = header.to_ascii_lowercase();
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Refusal::NotHeaderName);
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
        return Err(Refusal::ReservedHeader { header });
    }
    Ok(header)
}

/// The credential of a stdio server, set in its process's environment.
fn credential_env(
    bearer: bool,
    header: Option<String>,
    env: Option<String>,
    command: &StdioCommand,
) -> Result<AuthScheme, InvalidField> {
    if header.is_some() {
        return Err(InvalidField::new("header", Refusal::HeaderForStdio));
    }
    let Some(var) = env else {
        return Err(InvalidField::new("env", Refusal::CredentialEnvRequired));
    };
    if !is_env_var_name(&var) {
        return Err(InvalidField::new("env", Refusal::NotEnvVarName));
    }
    if command.env.contains_key(&var) {
        return Err(InvalidField::new(
            "env",
            Refusal::CredentialEnvAlsoInEnv { var },
        ));
    }
    Ok(AuthScheme::Env { var, bearer })
}

fn timeout(ms: Option<u64>) -> Result<Duration, Refusal> {
    match ms {
        None => Ok(DEFAULT_TIMEOUT),
        Some(0) => Err(Refusal::Zero),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn max_timeout(ms: Option<u64>, timeout: Duration) -> Result<Duration, Refusal> {
    match ms.map(Duration::from_millis) {
        None => Ok(DEFAULT_MAX_TIMEOUT.max(timeout)),
        Some(max_timeout) if max_timeout < timeout => Err(Refusal::MaxTimeoutBelowTimeout),
        Some(max_timeout) => Ok(max_timeout),
    }
}

fn max_concurrent_calls(calls: Option<usize>) -> Result<usize, Refusal> {
    match calls {
        None => Ok(DEFAULT_MAX_CONCURRENT_CALLS),
        Some(0) => Err(Refusal::Zero),
        Some(calls) => Ok(calls),
    }
}

/// A session's share of the backend's calls: a quarter of them unless set.
fn max_concurrent_calls_per_session(
    calls: Option<usize>,
    max_concurrent_calls: usize,
) -> Result<usize, Refusal> {
    match calls {
        None => Ok((max_concurrent_calls / 4).max(1)),
        Some(calls) if calls == 0 || calls > max_concurrent_calls => {
            Err(Refusal::CallsPerSessionOutOfRange {
                max_concurrent_calls,
            })
        }
        Some(calls) => Ok(calls),
    }
}

/// The retry policy, each bound the default unless set.
fn retry_policy(raw: RawRetry) -> Result<RetryPolicy, Refusal> {
    let defaults = RetryPolicy::default();
    let policy = RetryPolicy {
        initial_interval: raw
            .initial_interval_ms
            .map_or(defaults.initial_interval, Duration::from_millis),
        max_interval: raw
            .max_interval_ms
            .map_or(defaults.max_interval, Duration::from_millis),
        max_elapsed: raw
            .max_elapsed_ms
            .map_or(defaults.max_elapsed, Duration::from_millis),
    };
    if policy.initial_interval.is_zero() || policy.initial_interval > policy.max_interval {
        return Err(Refusal::RetryIntervals);
    }
    Ok(policy)
}

/// The circuit breaker policy, each setting the default unless set. A
/// refusal names the key under `circuit_breaker`.
fn breaker_policy(raw: RawBreaker) -> Result<BreakerPolicy, InvalidField> {
    let defaults = BreakerPolicy::default();
    let failure_threshold = match raw.failure_threshold {
        None => defaults.failure_threshold,
        Some(0) => return Err(InvalidField::new("failure_threshold", Refusal::Zero)),
        Some(threshold) => threshold,
    };
    Ok(BreakerPolicy {
        failure_threshold,
        open_for: raw.open_ms.map_or(defaults.open_for, Duration::from_millis),
    })
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::error_of;

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
    fn fallback_mistakes_are_refused_naming_the_field() {
        let two = "servers:\n  a:\n    url: http://a/mcp\n  b:\n    url: http://b/mcp\n";
        let cases = [
            (
                format!("{two}    fallback: [a, c]\n"),
                "servers.b.fallback[1]: unknown server \"c\"; known: a, b",
            ),
            (
                format!("{two}    fallback: [b]\n"),
                "servers.b.fallback[0]: a server cannot be its own fallback",
            ),
            (
                format!("{two}    fallback: [a, a]\n"),
                "servers.b.fallback[1]: \"a\" is listed twice",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                error_of(&text),
                format!("registry registry.yaml: {expected}"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn fallbacks_may_point_at_each_other_and_differ_in_transport() {
        let registry = crate::registry::tests::parse(
            "servers:\n  a:\n    url: http://a/mcp\n    fallback: [b, c]\n  \
             b:\n    url: http://b/mcp\n    fallback: [a]\n  \
             c:\n    command: x\n",
        )
        .expect("valid registry");
        let a = registry.server("a").expect("a");
        assert_eq!(a.fallback, ["b", "c"]);
    }

    #[test]
    fn an_oauth_backend_takes_its_keys_validated() {
        let registry = crate::registry::tests::parse(
            "servers:\n  gh:\n    url: http://a/mcp\n    auth:\n      type: oauth\n      \
             client_id: mux\n      client_secret: s${PORT}\n      scopes: [repo, 'read:org']\n      \
             authorize_params: { access_type: offline, prompt: consent }\n      resource: omit\n  \
             plain:\n    url: http://b/mcp\n    auth: { type: oauth }\n",
        )
        .expect("valid registry");
        let oauth = registry
            .server("gh")
            .expect("gh")
            .auth
            .oauth()
            .expect("oauth");
        assert_eq!(oauth.client_id.as_deref(), Some("mux"));
        assert!(oauth.client_secret.is_some());
        assert_eq!(oauth.scopes, ["repo", "read:org"]);
        assert_eq!(
            oauth.authorize_params,
            [
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "consent".to_owned())
            ]
        );
        assert!(!oauth.send_resource);
        // The secret stays out of a Debug print.
        assert!(!format!("{oauth:?}").contains("s3001"));
        let plain = registry.server("plain").expect("plain");
        assert_eq!(plain.auth.type_name(), "oauth");
        assert_eq!(plain.auth.credential_field(), None);
        assert!(plain.auth.oauth().expect("oauth").send_resource);
    }

    #[test]
    fn oauth_mistakes_are_refused_naming_the_field() {
        let http = "servers:\n  a:\n    url: http://a/mcp\n    auth:\n      type: oauth\n";
        let cases = [
            (
                "servers:\n  a:\n    command: x\n    auth: { type: oauth }\n".to_owned(),
                "servers.a.auth.type: not allowed for transport stdio (an OAuth backend is reached over HTTP)",
            ),
            (
                format!("{http}      client_secret: s\n"),
                "servers.a.auth.client_secret: needs auth.client_id: a secret belongs to a client registered by hand",
            ),
            (
                format!("{http}      client_id: ' '\n"),
                "servers.a.auth.client_id: must not be empty",
            ),
            (
                format!("{http}      client_id: c\n      client_secret: ''\n"),
                "servers.a.auth.client_secret: must not be empty",
            ),
            (
                format!("{http}      client_secret: ${{UNSET_SECRET}}\n"),
                "servers.a.auth.client_secret: environment variable UNSET_SECRET is not set",
            ),
            (
                format!("{http}      scopes: [repo, 'two words']\n"),
                "servers.a.auth.scopes[1]: a scope is one word, without spaces or quotes",
            ),
            (
                format!("{http}      authorize_params: {{ state: x }}\n"),
                "servers.a.auth.authorize_params.state: state is set by mcp-mux itself",
            ),
            (
                format!("{http}      authorize_params: {{ 'a b': x }}\n"),
                "servers.a.auth.authorize_params.a b: must be an URL query parameter name: A-Z a-z 0-9 . _ -",
            ),
            (
                format!("{http}      resource: keep\n"),
                "servers.a.auth.resource: the only value is omit (leave RFC 8707 resource out of OAuth requests)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                error_of(&text),
                format!("registry registry.yaml: {expected}"),
                "{text:?}"
            );
        }
        assert!(error_of(&format!("{http}      scope: repo\n")).contains("unknown field `scope`"));
    }
}
