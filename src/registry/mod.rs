//! `registry.yaml`: the backends an operator offers, read and validated once at
//! start-up. `serde_yaml` is confined to this module: [`raw`] is the document's
//! shape, [`expand`] fills in `${VAR}`, [`validate`] turns the shape into the
//! model in [`model`].

mod expand;
mod model;
mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use expand::expand_variables;
use raw::RawRegistry;
use validate::InvalidField;

pub use model::{
    AuthScheme, BreakerPolicy, ClientSecret, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_TIMEOUT,
    DEFAULT_TIMEOUT, Endpoint, OAuthSettings, Registry, RetryPolicy, ServerConfig, StdioCommand,
    Transport,
};
pub use validate::Refusal;

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

/// A registry as read from its file, with when and which version of it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub registry: Arc<Registry>,
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 of the file's bytes, as hex: which version of it is served.
    pub sha256: String,
}

impl Registry {
    /// Reads and validates the registry at `path`, expanding `${VAR}` from
    /// the environment.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        Ok(Arc::unwrap_or_clone(Self::load_versioned(path)?.registry))
    }

    /// [`Registry::load`], noting when and which version of the file.
    pub fn load_versioned(path: &Path) -> Result<Loaded, RegistryError> {
        use sha2::{Digest, Sha256};
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        let registry = Self::parse(&text, path, |name| std::env::var(name).ok())?;
        Ok(Loaded {
            registry: Arc::new(registry),
            loaded_at: chrono::Utc::now(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
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
    use std::time::Duration;

    /// A registry as the tests of this module and its parts read one:
    /// `${PORT}` is 3001, every other variable unset.
    pub(super) fn parse(text: &str) -> Result<Registry, RegistryError> {
        Registry::parse(text, Path::new("registry.yaml"), |var| {
            (var == "PORT").then(|| "3001".to_owned())
        })
    }

    /// Why `text` is refused.
    pub(super) fn error_of(text: &str) -> String {
        parse(text).expect_err("must be rejected").to_string()
    }

    /// The README's "Try it" starts from it: the reference server over
    /// stdio, with nothing else running.
    #[test]
    fn the_shipped_registry_is_valid_and_runs_the_reference_server_itself() {
        let registry = Registry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("registry.yaml"))
            .expect("the shipped registry loads");
        let everything = registry.server("everything").expect("everything");
        let Endpoint::Stdio(command) = &everything.endpoint else {
            panic!("everything runs over stdio: {:?}", everything.endpoint);
        };
        assert_eq!(command.command, "npx");
        assert!(
            command
                .args
                .contains(&"@modelcontextprotocol/server-everything@2026.8.31".to_owned()),
            "the version is pinned: {:?}",
            command.args
        );
        assert_eq!(everything.auth, AuthScheme::None);
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
    fn stdio_and_http_sse_servers_are_accepted() {
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
        assert!(
            matches!(&old.endpoint, Endpoint::HttpSse { url } if url.as_str().starts_with("http")),
            "{:?}",
            old.endpoint
        );
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
