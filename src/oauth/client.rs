//! One backend's OAuth client: the authorization URL (PKCE S256, a random
//! `state`, RFC 8707 `resource`), the code's redemption and the grant's
//! refresh. The protocol is the `oauth2` crate's, sent over mcp-mux's own
//! reqwest client, which follows no redirect.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::discovery::ServerMetadata;
use super::{MAX_ANSWER_BYTES, ReadError, innermost_cause, read_capped};

/// Time allowed for one request to the token endpoint.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// What one backend's OAuth client is.
pub struct ClientSettings {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub server: Arc<ServerMetadata>,
    /// mcp-mux's callback, `<public URL>/oauth/callback`.
    pub redirect_uri: Url,
    /// The RFC 8707 `resource` of every request; None where the
    /// authorization server rejects it (`resource: omit`).
    pub resource: Option<String>,
    pub scopes: Vec<String>,
    /// Added to the authorization URL (`access_type=offline`, say).
    pub authorize_params: Vec<(String, String)>,
}

/// An authorization request, ready for the user's browser.
pub struct Authorization {
    pub url: Url,
    /// Ties the callback to this request; single-use.
    pub state: SecretString,
    /// Proves, at redemption, that the code went to whoever asked for it.
    pub verifier: SecretString,
}

/// What the token endpoint granted.
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted, when the server says (else those asked for).
    pub scopes: Vec<String>,
}

// Tokens are secrets: a Debug print shows that they are there, not them.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why the token endpoint gave no tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// An OAuth error response (RFC 6749 §5.2): `invalid_grant` means the
    /// user must authorize again.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error("cannot reach the token endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the token endpoint {url} answered something that is not a token response: {reason}")]
    Malformed { url: String, reason: String },
}

impl TokenError {
    /// Whether the grant is gone for good (revoked, expired, rotated away).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenError::Refused { error, .. } if error == "invalid_grant")
    }

    /// Whether the server does not know the client (it forgot a dynamic
    /// registration, say).
    pub fn is_invalid_client(&self) -> bool {
        matches!(self, TokenError::Refused { error, .. } if error == "invalid_client")
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Unreachable { .. } => true,
            // RFC 6749 §4.1.2.1's codes for a server that cannot answer now.
            TokenError::Refused { error, .. } => {
                matches!(error.as_str(), "temporarily_unavailable" | "server_error")
            }
            TokenError::Malformed { .. } => false,
        }
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;
type Granted = StandardTokenResponse<EmptyExtraTokenFields, BasicTokenType>;

/// One backend's OAuth client, for one authorization server.
pub struct OAuthClient {
    settings: ClientSettings,
    client: Client,
    http: reqwest::Client,
}

impl OAuthClient {
    pub fn new(settings: ClientSettings, http: reqwest::Client) -> Self {
        let server = &settings.server;
        let mut client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(server.authorization_endpoint.clone()))
            .set_token_uri(TokenUrl::from_url(server.token_endpoint.clone()))
            .set_redirect_uri(RedirectUrl::from_url(settings.redirect_uri.clone()));
        if let Some(secret) = &settings.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        // Basic authentication unless the server takes only the body form.
        let methods = server.token_endpoint_auth_methods_supported.as_deref();
        if methods.is_some_and(|methods| {
            !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post")
        }) || settings.client_secret.is_none()
        {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        OAuthClient {
            settings,
            client,
            http,
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// A new authorization request: its URL, `state` and PKCE verifier.
    /// `more_scopes` are asked for besides the client's own (a backend's
    /// `insufficient_scope` challenge named them).
    pub fn authorize(&self, more_scopes: &[String]) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut scopes = self.settings.scopes.clone();
        for scope in more_scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(scopes.into_iter().map(Scope::new));
        if let Some(resource) = &self.settings.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        for (name, value) in &self.settings.authorize_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let (url, state) = request.url();
        Authorization {
            url,
            state: SecretString::from(state.secret().clone()),
            verifier: SecretString::from(verifier.secret().clone()),
        }
    }

    /// Redeems an authorization code with its PKCE verifier.
    pub async fn redeem(&self, code: &str, verifier: &SecretString) -> Result<Tokens, TokenError> {
        let mut request = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
        if let Some(resource) = &self.settings.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let granted = request.request_async(&TokenHttp(&self.http)).await;
        self.tokens(granted, None)
    }

    /// A fresh access token for `refresh_token`. A server that does not
    /// rotate refresh tokens answers without one: the old one stays.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, TokenError> {
        let refresh = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let mut request = self.client.exchange_refresh_token(&refresh);
        if let Some(resource) = &self.settings.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let granted = request.request_async(&TokenHttp(&self.http)).await;
        self.tokens(granted, Some(refresh_token))
    }

    /// Revokes `token` (RFC 7009) where the server offers revocation:
    /// false when it does not. `hint` is `refresh_token` or `access_token`.
    pub async fn revoke(&self, token: &SecretString, hint: &str) -> Result<bool, TokenError> {
        let Some(endpoint) = &self.settings.server.revocation_endpoint else {
            return Ok(false);
        };
        let mut form = vec![
            ("token", token.expose_secret().to_owned()),
            ("token_type_hint", hint.to_owned()),
            ("client_id", self.settings.client_id.clone()),
        ];
        if let Some(secret) = &self.settings.client_secret {
            form.push(("client_secret", secret.expose_secret().to_owned()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let url = endpoint.to_string();
        let response = self
            .http
            .post(endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await
            .map_err(|error| TokenError::Unreachable {
                url: url.clone(),
                reason: innermost_cause(&error),
            })?;
        // RFC 7009 §2.2: 200 whether or not the token was still valid.
        if response.status().is_success() {
            Ok(true)
        } else {
            Err(TokenError::Refused {
                error: format!("HTTP {}", response.status().as_u16()),
                description: None,
            })
        }
    }

    fn tokens(
        &self,
        granted: Result<
            Granted,
            RequestTokenError<SendError, StandardErrorResponse<BasicErrorResponseType>>,
        >,
        kept_refresh_token: Option<&SecretString>,
    ) -> Result<Tokens, TokenError> {
        let url = self.settings.server.token_endpoint.to_string();
        let granted = granted.map_err(|error| match error {
            RequestTokenError::ServerResponse(response) => TokenError::Refused {
                error: response.error().as_ref().to_owned(),
                description: response.error_description().cloned(),
            },
            RequestTokenError::Request(SendError::Http(reason)) => TokenError::Unreachable {
                url: url.clone(),
                reason,
            },
            // An endpoint that answers too much, or elsewhere, did answer:
            // trying again would meet the same answer.
            RequestTokenError::Request(error) => TokenError::Malformed {
                url: url.clone(),
                reason: error.to_string(),
            },
            RequestTokenError::Parse(error, _) => TokenError::Malformed {
                url: url.clone(),
                reason: error.to_string(),
            },
            RequestTokenError::Other(reason) => TokenError::Malformed {
                url: url.clone(),
                reason,
            },
        })?;
        let expires_at = granted
            .expires_in()
            .and_then(|lifetime| chrono::Duration::from_std(lifetime).ok())
            // An absurd lifetime from the server reads as none, not a panic.
            .and_then(|lifetime| Utc::now().checked_add_signed(lifetime));
        Ok(Tokens {
            access_token: SecretString::from(granted.access_token().secret().clone()),
            refresh_token: granted
                .refresh_token()
                .map(|token| SecretString::from(token.secret().clone()))
                .or_else(|| kept_refresh_token.cloned()),
            expires_at,
            scopes: granted
                .scopes()
                .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
                .unwrap_or_else(|| self.settings.scopes.clone()),
        })
    }
}

/// Why a request to the token endpoint went unanswered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Http(String),
    #[error("the answer passes {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the endpoint answered a redirect")]
    Redirected,
}

/// The `oauth2` crate's requests, sent with mcp-mux's reqwest client. A
/// type rather than a closure, so that the futures it makes are `Send`
/// for every lifetime (tokens are refreshed on any runtime thread).
pub(crate) struct TokenHttp<'a>(pub(crate) &'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = SendError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, SendError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

/// Sends one of the `oauth2` crate's requests with reqwest.
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, SendError> {
    let (parts, body) = request.into_parts();
    let mut response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(TOKEN_TIMEOUT)
        .send()
        .await
        .map_err(|error| SendError::Http(innermost_cause(&error)))?;
    if response.status().is_redirection() {
        return Err(SendError::Redirected);
    }
    let body = read_capped(&mut response)
        .await
        .map_err(|error| match error {
            ReadError::Broken(reason) => SendError::Http(reason),
            ReadError::TooLarge => SendError::TooLarge,
        })?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    answer
        .body(body)
        .map_err(|error| SendError::Http(error.to_string()))
}
