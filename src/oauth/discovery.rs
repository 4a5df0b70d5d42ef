//! Finding a backend's authorization server, in the order the MCP
//! authorization chapter sets: the backend's 401 challenge, its RFC 9728
//! protected resource metadata, then its issuer's RFC 8414 (or OpenID)
//! metadata, checked before anything is sent there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::{MAX_ANSWER_BYTES, ReadError, innermost_cause, is_loopback, read_capped};

/// How long an issuer's metadata is kept before it is fetched again.
pub const METADATA_LIFETIME: Duration = Duration::from_secs(3600);
/// Most issuers whose metadata is kept at once.
pub const MAX_CACHED_ISSUERS: usize = 256;
/// Time allowed for each metadata request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";

/// Why a backend's authorization server could not be found or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered a redirect; metadata must be served where it is asked for")]
    Redirected { url: String },
    #[error("{url} answered more than {limit} bytes", limit = MAX_ANSWER_BYTES)]
    TooLarge { url: String },
    #[error("{url} is not valid metadata: {reason}")]
    Malformed { url: String, reason: String },
    #[error("{url} is on another origin than the backend {backend}")]
    OtherOrigin { url: String, backend: String },
    #[error("{url} must use https (http only on a loopback address)")]
    NotHttps { url: String },
    #[error("no protected resource metadata for {backend}; tried {tried}")]
    NoResourceMetadata { backend: String, tried: String },
    #[error(
        "the protected resource metadata at {url} is for {resource}, not for the backend {backend}"
    )]
    OtherResource {
        url: String,
        resource: String,
        backend: String,
    },
    #[error("the protected resource metadata at {url} names no authorization server")]
    NoAuthorizationServer { url: String },
    #[error("no authorization server metadata for issuer {issuer}; tried {tried}")]
    NoServerMetadata { issuer: String, tried: String },
    #[error("the metadata at {url} names issuer {found}, not {expected}")]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error(
        "authorization server {issuer} does not offer PKCE with S256 (code_challenge_methods_supported lacks S256)"
    )]
    NoS256 { issuer: String },
}

/// What a backend's `WWW-Authenticate: Bearer …` challenge says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

/// Reads the `Bearer` challenge of a `WWW-Authenticate` value, which may
/// hold several challenges (RFC 9110 §11.6.1); None if it has none.
pub fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let mut challenge: Option<BearerChallenge> = None;
    let mut rest = header.trim_start();
    let mut in_bearer = false;
    while !rest.is_empty() {
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(value_start) = after.strip_prefix('=')
            && !value_start.starts_with('=')
        {
            // An auth-param of the current challenge.
            let (value, remainder) = read_param_value(value_start.trim_start());
            if in_bearer {
                let bearer = challenge.get_or_insert_with(BearerChallenge::default);
                match token.to_ascii_lowercase().as_str() {
                    "resource_metadata" => bearer.resource_metadata = Some(value),
                    "scope" => bearer.scope = Some(value),
                    "error" => bearer.error = Some(value),
                    _ => {}
                }
            }
            rest = remainder.trim_start().trim_start_matches(',').trim_start();
        } else if token.is_empty() {
            // Padding of a token68 (`abc==`) or a stray separator: skipped,
            // so that every turn of the loop moves on.
            rest = after.trim_start_matches([',', '=']).trim_start();
        } else {
            // A new challenge's scheme (token68 values are skipped with it).
            in_bearer = token.eq_ignore_ascii_case("bearer");
            if in_bearer && challenge.is_some() {
                break;
            }
            if in_bearer {
                challenge = Some(BearerChallenge::default());
            }
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    challenge
}

/// An auth-param's value, quoted or not, and what follows it.
fn read_param_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[index + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text.find(',').unwrap_or(text.len());
        (text[..end].trim().to_owned(), &text[end..])
    }
}

/// The `Bearer` challenge of a 401, if it gives one.
fn challenge_of(response: &reqwest::Response) -> Option<BearerChallenge> {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(parse_bearer_challenge)
}

/// RFC 9728 protected resource metadata: the fields mcp-mux uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata: the fields mcp-mux uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    #[serde(default)]
    pub registration_endpoint: Option<Url>,
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// What discovery found for one backend.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The canonical URI of the backend, as its metadata names it: the
    /// RFC 8707 `resource` of every authorization and token request.
    pub resource: String,
    /// The scopes to ask for when the registry names none: the challenge's,
    /// else the resource's `scopes_supported`.
    pub scopes: Vec<String>,
    pub server: Arc<ServerMetadata>,
}

/// Finds authorization servers, keeping each issuer's metadata a while.
pub struct Discovery {
    http: reqwest::Client,
    servers: Mutex<HashMap<String, (Instant, Arc<ServerMetadata>)>>,
}

impl Discovery {
    /// Discovery over `http`, which must not follow redirects.
    pub fn new(http: reqwest::Client) -> Self {
        Discovery {
            http,
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// The authorization server of the MCP server at `backend`, probed
    /// without a token, and what to ask it for.
    pub async fn discover(&self, backend: &Url) -> Result<Discovered, DiscoveryError> {
        let challenge = self.probe(backend).await;
        let resource = self.resource_metadata(backend, challenge.as_ref()).await?;
        let (url, metadata) = resource;
        let issuer = metadata
            .authorization_servers
            .first()
            .ok_or_else(|| DiscoveryError::NoAuthorizationServer { url: url.clone() })?;
        let server = self.server_metadata(issuer).await?;
        let scopes = challenge
            .and_then(|challenge| challenge.scope)
            .map(|scope| scope.split_whitespace().map(str::to_owned).collect())
            .or(metadata.scopes_supported)
            .unwrap_or_default();
        Ok(Discovered {
            resource: metadata.resource,
            scopes,
            server,
        })
    }

    /// The backend's challenge to a request without a token, if it gives
    /// one: to `initialize`, or, when a backend lets that through (some
    /// protect only their tools), to `tools/list` in the session it opened.
    async fn probe(&self, backend: &Url) -> Option<BearerChallenge> {
        let version = crate::mcp::version::LATEST;
        let initialize = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": { "name": "mcp-mux", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let response = self.post_probe(backend, &initialize, None).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return challenge_of(&response);
        }
        if !response.status().is_success() {
            return None;
        }
        let session = response
            .headers()
            .get(crate::mcp::SESSION_ID_HEADER)
            .cloned();
        let list = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
        let listed = self.post_probe(backend, &list, session.as_ref()).await;
        if let Some(session) = session {
            // The probe's session is of no further use to anyone.
            let _ = self
                .http
                .delete(backend.clone())
                .header(crate::mcp::SESSION_ID_HEADER, session)
                .header(crate::mcp::PROTOCOL_VERSION_HEADER, version)
                .timeout(FETCH_TIMEOUT)
                .send()
                .await;
        }
        let listed = listed?;
        (listed.status() == reqwest::StatusCode::UNAUTHORIZED)
            .then(|| challenge_of(&listed))
            .flatten()
    }

    /// POSTs one probe message, in `session` when given.
    async fn post_probe(
        &self,
        backend: &Url,
        message: &serde_json::Value,
        session: Option<&reqwest::header::HeaderValue>,
    ) -> Option<reqwest::Response> {
        let mut request = self
            .http
            .post(backend.clone())
            .header("accept", "application/json, text/event-stream")
            .json(message)
            .timeout(FETCH_TIMEOUT);
        if let Some(session) = session {
            request = request
                .header(crate::mcp::SESSION_ID_HEADER, session.clone())
                .header(
                    crate::mcp::PROTOCOL_VERSION_HEADER,
                    crate::mcp::version::LATEST,
                );
        }
        request.send().await.ok()
    }

    /// The backend's protected resource metadata and where it was found:
    /// the challenge's `resource_metadata`, else the well-known URI with the
    /// backend's path, else the one at its root.
    async fn resource_metadata(
        &self,
        backend: &Url,
        challenge: Option<&BearerChallenge>,
    ) -> Result<(String, ResourceMetadata), DiscoveryError> {
        let candidates = match challenge.and_then(|c| c.resource_metadata.as_deref()) {
            Some(named) => {
                let url = parse_url(named)?;
                if url.origin() != backend.origin() {
                    return Err(DiscoveryError::OtherOrigin {
                        url: named.to_owned(),
                        backend: backend.to_string(),
                    });
                }
                vec![url]
            }
            None => resource_metadata_urls(backend),
        };
        let mut tried = Vec::new();
        for url in candidates {
            match self.fetch::<ResourceMetadata>(&url).await {
                Ok(metadata) => {
                    check_resource(&url, &metadata.resource, backend)?;
                    return Ok((url.to_string(), metadata));
                }
                Err(DiscoveryError::Status { status: 404, .. }) => {
                    tried.push(url.to_string());
                }
                Err(error) => return Err(error),
            }
        }
        Err(DiscoveryError::NoResourceMetadata {
            backend: backend.to_string(),
            tried: tried.join(", "),
        })
    }

    /// The issuer's metadata, from the cache or fetched and checked.
    pub async fn server_metadata(
        &self,
        issuer: &str,
    ) -> Result<Arc<ServerMetadata>, DiscoveryError> {
        if let Some((fetched, metadata)) = self.lock_servers().get(issuer)
            && fetched.elapsed() < METADATA_LIFETIME
        {
            return Ok(metadata.clone());
        }
        let issuer_url = parse_url(issuer)?;
        require_https(&issuer_url)?;
        let mut tried = Vec::new();
        for url in server_metadata_urls(&issuer_url) {
            match self.fetch::<ServerMetadata>(&url).await {
                Ok(metadata) => {
                    let metadata = check_server(&url, issuer, metadata)?;
                    let mut servers = self.lock_servers();
                    if servers.len() >= MAX_CACHED_ISSUERS {
                        servers.retain(|_, (fetched, _)| fetched.elapsed() < METADATA_LIFETIME);
                        if servers.len() >= MAX_CACHED_ISSUERS {
                            servers.clear();
                        }
                    }
                    servers.insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
                    return Ok(metadata);
                }
                Err(DiscoveryError::Status { status: 404, .. }) => {
                    tried.push(url.to_string());
                }
                Err(error) => return Err(error),
            }
        }
        Err(DiscoveryError::NoServerMetadata {
            issuer: issuer.to_owned(),
            tried: tried.join(", "),
        })
    }

    fn lock_servers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<ServerMetadata>)>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A JSON document, refused when it redirects, fails or is too large.
    pub async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<T, DiscoveryError> {
        let shown = url.to_string();
        let mut response = self
            .http
            .get(url.clone())
            .header("accept", "application/json")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|error| DiscoveryError::Unreachable {
                url: shown.clone(),
                reason: innermost_cause(&error),
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(DiscoveryError::Redirected { url: shown });
        }
        if !status.is_success() {
            return Err(DiscoveryError::Status {
                url: shown,
                status: status.as_u16(),
            });
        }
        let body = read_capped(&mut response)
            .await
            .map_err(|error| match error {
                ReadError::Broken(reason) => DiscoveryError::Unreachable {
                    url: shown.clone(),
                    reason,
                },
                ReadError::TooLarge => DiscoveryError::TooLarge { url: shown.clone() },
            })?;
        serde_json::from_slice(&body).map_err(|error| DiscoveryError::Malformed {
            url: shown,
            reason: error.to_string(),
        })
    }
}

/// The well-known URIs of a backend's protected resource metadata, in the
/// order they are tried: with the backend's path, then at the root.
pub fn resource_metadata_urls(backend: &Url) -> Vec<Url> {
    let path = backend.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(with_path(backend, &format!("{PROTECTED_RESOURCE}{path}")));
    }
    urls.push(with_path(backend, PROTECTED_RESOURCE));
    urls
}

/// The well-known URIs of an issuer's metadata, in the order they are
/// tried (RFC 8414 §3.1 with path insertion, then OpenID Connect).
pub fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            with_path(issuer, AUTHORIZATION_SERVER),
            with_path(issuer, OPENID_CONFIGURATION),
        ]
    } else {
        vec![
            with_path(issuer, &format!("{AUTHORIZATION_SERVER}{path}")),
            with_path(issuer, &format!("{OPENID_CONFIGURATION}{path}")),
            with_path(issuer, &format!("{path}{OPENID_CONFIGURATION}")),
        ]
    }
}

fn with_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn parse_url(text: &str) -> Result<Url, DiscoveryError> {
    Url::parse(text).map_err(|error| DiscoveryError::Malformed {
        url: text.to_owned(),
        reason: error.to_string(),
    })
}

/// Authorization server endpoints are https, or http on a loopback
/// address (a server on the same machine).
pub fn require_https(url: &Url) -> Result<(), DiscoveryError> {
    if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url)) {
        Ok(())
    } else {
        Err(DiscoveryError::NotHttps {
            url: url.to_string(),
        })
    }
}

/// RFC 9728 §3.3: the metadata must be about the backend. A resource on
/// the backend's origin whose path is the backend's or a parent of it
/// (a server's metadata at its root, say) is the backend's.
fn check_resource(url: &Url, resource: &str, backend: &Url) -> Result<(), DiscoveryError> {
    let other = || DiscoveryError::OtherResource {
        url: url.to_string(),
        resource: resource.to_owned(),
        backend: backend.to_string(),
    };
    let named = Url::parse(resource).map_err(|_| other())?;
    if named.origin() != backend.origin() || named.fragment().is_some() {
        return Err(other());
    }
    let named_path = named.path().trim_end_matches('/');
    let backend_path = backend.path().trim_end_matches('/');
    let covers = backend_path == named_path
        || backend_path
            .strip_prefix(named_path)
            .is_some_and(|rest| rest.starts_with('/'));
    if covers { Ok(()) } else { Err(other()) }
}

/// RFC 8414 §3.3: the issuer named must be the one asked for, exactly;
/// and mcp-mux only uses servers that offer PKCE with S256.
fn check_server(
    url: &Url,
    issuer: &str,
    metadata: ServerMetadata,
) -> Result<Arc<ServerMetadata>, DiscoveryError> {
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            url: url.to_string(),
            found: metadata.issuer,
            expected: issuer.to_owned(),
        });
    }
    if !metadata
        .code_challenge_methods_supported
        .iter()
        .any(|method| method == "S256")
    {
        return Err(DiscoveryError::NoS256 {
            issuer: issuer.to_owned(),
        });
    }
    require_https(&metadata.authorization_endpoint)?;
    require_https(&metadata.token_endpoint)?;
    for endpoint in [
        &metadata.registration_endpoint,
        &metadata.revocation_endpoint,
    ]
    .into_iter()
    .flatten()
    {
        require_https(endpoint)?;
    }
    Ok(Arc::new(metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token68_challenges_and_stray_padding_end_the_parse() {
        // Each once looped for ever: padding that no branch moved past.
        for header in [
            "Negotiate abc==",
            "Basic YWxh==",
            "Bearer ==",
            "==",
            ", =, =",
        ] {
            let parsed = parse_bearer_challenge(header);
            assert!(parsed.is_none() || header.starts_with("Bearer"), "{header}");
        }
        assert_eq!(
            parse_bearer_challenge(r#"Basic YWxh==, Bearer scope="a b""#)
                .and_then(|challenge| challenge.scope),
            Some("a b".to_owned())
        );
    }

    #[test]
    fn a_bearer_challenge_is_read_among_others() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Basic realm="x", Bearer resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="files:read repo", error="invalid_token""#
            ),
            Some(BearerChallenge {
                resource_metadata: Some(
                    "https://a.example/.well-known/oauth-protected-resource/mcp".into()
                ),
                scope: Some("files:read repo".into()),
                error: Some("invalid_token".into()),
            })
        );
        assert_eq!(
            parse_bearer_challenge(r#"bearer scope=repo, realm="a\"b""#),
            Some(BearerChallenge {
                scope: Some("repo".into()),
                ..Default::default()
            })
        );
        assert_eq!(
            parse_bearer_challenge("Bearer"),
            Some(BearerChallenge::default())
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge(""), None);
    }

    #[test]
    fn well_known_uris_insert_the_path_first() {
        let urls = |text: &str, of: fn(&Url) -> Vec<Url>| {
            of(&Url::parse(text).expect("url"))
                .iter()
                .map(Url::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            urls("https://mcp.example/public/mcp?x=1", resource_metadata_urls),
            [
                "https://mcp.example/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            urls("https://mcp.example/", resource_metadata_urls),
            ["https://mcp.example/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            urls("https://auth.example/tenant1", server_metadata_urls),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example/.well-known/openid-configuration/tenant1",
                "https://auth.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://auth.example", server_metadata_urls),
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn resource_metadata_must_be_about_the_backend() {
        let backend = Url::parse("https://mcp.example/public/mcp").expect("url");
        let url =
            Url::parse("https://mcp.example/.well-known/oauth-protected-resource").expect("url");
        for fine in [
            "https://mcp.example/public/mcp",
            "https://mcp.example/public/mcp/",
            "https://mcp.example/public",
            "https://mcp.example",
            "https://MCP.example/",
        ] {
            assert_eq!(check_resource(&url, fine, &backend), Ok(()), "{fine}");
        }
        for other in [
            "https://mcp.example/public/mcpx",
            "https://mcp.example/other",
            "https://evil.example/public/mcp",
            "http://mcp.example/public/mcp",
            "https://mcp.example:8443/public/mcp",
            "https://mcp.example/public/mcp#f",
            "not a url",
        ] {
            assert_eq!(
                check_resource(&url, other, &backend),
                Err(DiscoveryError::OtherResource {
                    url: url.to_string(),
                    resource: other.into(),
                    backend: backend.to_string(),
                }),
                "{other}"
            );
        }
    }

    #[test]
    fn authorization_servers_are_https_or_on_this_machine() {
        for fine in [
            "https://auth.example/token",
            "http://127.0.0.1:9000/token",
            "http://localhost/token",
            "http://[::1]/token",
        ] {
            assert_eq!(
                require_https(&Url::parse(fine).expect("url")),
                Ok(()),
                "{fine}"
            );
        }
        for insecure in ["http://auth.example/token", "ftp://auth.example/token"] {
            assert_eq!(
                require_https(&Url::parse(insecure).expect("url")),
                Err(DiscoveryError::NotHttps {
                    url: insecure.into()
                })
            );
        }
    }
}
