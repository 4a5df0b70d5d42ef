//! How mcp-mux becomes a client of an authorization server, in the spec's
//! order: the registry's own client id; else a Client ID Metadata Document
//! that mcp-mux serves at an https URL, when the server takes them; else
//! RFC 7591 Dynamic Client Registration.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::discovery::ServerMetadata;
use super::{MAX_ANSWER_BYTES, ReadError, innermost_cause, is_loopback, read_capped};

/// The name authorization servers show their users.
pub const CLIENT_NAME: &str = "mcp-mux";
/// Time allowed for a registration request.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(15);

/// How mcp-mux is known to one authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The registry's `client_id` (and `client_secret`).
    Registry,
    /// mcp-mux's Client ID Metadata Document: its URL is the client id.
    MetadataDocument,
    /// A client registered with the server's `registration_endpoint`.
    Dynamic,
}

/// Which way to use with `server`, given whether the registry names a
/// client and whether mcp-mux has an https URL to serve its document at;
/// None when there is none (the operator must register a client by hand).
pub fn choose(
    server: &ServerMetadata,
    registry_client: bool,
    document_url: Option<&Url>,
) -> Option<Registration> {
    if registry_client {
        Some(Registration::Registry)
    } else if server.client_id_metadata_document_supported
        && document_url.is_some_and(|url| url.scheme() == "https")
    {
        Some(Registration::MetadataDocument)
    } else if server.registration_endpoint.is_some() {
        Some(Registration::Dynamic)
    } else {
        None
    }
}

/// mcp-mux's Client ID Metadata Document: served at `client_id`, which
/// must be that document's own https URL.
pub fn metadata_document(client_id: &Url, redirect_uri: &Url) -> Value {
    json!({
        "client_id": client_id.as_str(),
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A client that Dynamic Client Registration gave.
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why Dynamic Client Registration gave no client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "authorization server {issuer} offers no dynamic client registration; register a client by hand and set auth.client_id"
    )]
    NotOffered { issuer: String },
    #[error("the authorization server refused to register mcp-mux (HTTP {status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("cannot reach the registration endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the registration endpoint {url} answered something that is not a client: {reason}")]
    Malformed { url: String, reason: String },
}

#[derive(Deserialize)]
struct Registered {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Registers mcp-mux with `server` for `redirect_uri` (RFC 7591).
pub async fn register(
    http: &reqwest::Client,
    server: &ServerMetadata,
    redirect_uri: &Url,
    scopes: &[String],
) -> Result<RegisteredClient, RegistrationError> {
    let endpoint =
        server
            .registration_endpoint
            .as_ref()
            .ok_or_else(|| RegistrationError::NotOffered {
                issuer: server.issuer.clone(),
            })?;
    let shown = endpoint.to_string();
    let mut request = json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        // OpenID servers check redirect URIs against the application type:
        // a gateway on this machine is a native one.
        "application_type": if is_loopback(redirect_uri) { "native" } else { "web" },
    });
    if !scopes.is_empty() {
        request["scope"] = json!(scopes.join(" "));
    }
    let body = match send_registration(http, endpoint, &shown, &request).await {
        // Some servers (oidc-provider) take only scopes of their own in a
        // registration: the scopes are asked for at authorization anyway.
        Err(RegistrationError::Refused {
            status: 400,
            reason,
        }) if reason.starts_with("invalid_client_metadata") && request.get("scope").is_some() => {
            tracing::debug!(%reason, "registration refused its scope; registering without");
            if let Some(fields) = request.as_object_mut() {
                fields.remove("scope");
            }
            send_registration(http, endpoint, &shown, &request).await?
        }
        outcome => outcome?,
    };
    let registered: Registered =
        serde_json::from_slice(&body).map_err(|error| RegistrationError::Malformed {
            url: shown,
            reason: error.to_string(),
        })?;
    Ok(RegisteredClient {
        client_id: registered.client_id,
        client_secret: registered.client_secret.map(SecretString::from),
    })
}

/// POSTs one registration request: the answer's body, or why there is none.
async fn send_registration(
    http: &reqwest::Client,
    endpoint: &Url,
    shown: &str,
    request: &Value,
) -> Result<Vec<u8>, RegistrationError> {
    let mut response = http
        .post(endpoint.clone())
        .json(request)
        .timeout(REGISTRATION_TIMEOUT)
        .send()
        .await
        .map_err(|error| RegistrationError::Unreachable {
            url: shown.to_owned(),
            reason: innermost_cause(&error),
        })?;
    let status = response.status();
    let body = read_capped(&mut response)
        .await
        .map_err(|error| match error {
            ReadError::Broken(reason) => RegistrationError::Unreachable {
                url: shown.to_owned(),
                reason,
            },
            ReadError::TooLarge => RegistrationError::Malformed {
                url: shown.to_owned(),
                reason: format!("the answer passes {MAX_ANSWER_BYTES} bytes"),
            },
        })?;
    if !status.is_success() {
        let reason = match serde_json::from_slice::<Refusal>(&body) {
            Ok(refusal) => match refusal.error_description {
                Some(description) => format!("{} ({description})", refusal.error),
                None => refusal.error,
            },
            Err(_) => "no OAuth error in the answer".to_owned(),
        };
        return Err(RegistrationError::Refused {
            status: status.as_u16(),
            reason,
        });
    }
    Ok(body)
}
