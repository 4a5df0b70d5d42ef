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
    pub url: url::Url,
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
}

impl AuthScheme {
    /// The credential field a client must give, if any.
    pub fn credential_field(&self) -> Option<&'static str> {
        match self {
            AuthScheme::None => None,
            AuthScheme::Bearer => Some("token"),
            AuthScheme::ApiKey { .. } => Some("api_key"),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AuthScheme::None => "none",
            AuthScheme::Bearer => "bearer",
            AuthScheme::ApiKey { .. } => "api_key",
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
    url: String,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
enum RawAuth {
    None,
    Bearer,
    ApiKey { header: String },
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
            let url = url::Url::parse(&server.url)
                .map_err(|error| invalid(field("url"), format!("not a URL: {error}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    field("url"),
                    "must be an http or https URL with a host".into(),
                ));
            }
            let auth = match server.auth.unwrap_or(RawAuth::None) {
                RawAuth::None => AuthScheme::None,
                RawAuth::Bearer => AuthScheme::Bearer,
                RawAuth::ApiKey { header } => {
                    let header = header.to_ascii_lowercase();
                    if header.is_empty()
                        || !header
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        return Err(invalid(
                            field("auth.header"),
                            "must be an HTTP header name".into(),
                        ));
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
                        return Err(invalid(
                            field("auth.header"),
                            format!("{header} is set by the MCP transport itself"),
                        ));
                    }
                    AuthScheme::ApiKey { header }
                }
            };
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
                    url,
                    description: server.description,
                    auth,
                    timeout,
                    max_timeout,
                    max_concurrent_calls,
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
        assert_eq!(everything.url.as_str(), "http://127.0.0.1:3001/mcp");
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
    fn unknown_keys_and_auth_types_are_refused() {
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    urll: x\n")
                .contains("unknown field")
        );
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    auth: { type: oauth }\n")
                .contains("unknown variant")
        );
    }
}
