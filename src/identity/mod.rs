//! Hosts that sign in to mcp-mux: the access tokens they present, checked
//! against the authorization servers the operator trusts. A JWT is
//! verified with its issuer's published keys (an asymmetric algorithm
//! only, never `none` or a shared secret); any other token is asked about
//! at its issuer's introspection endpoint (RFC 7662). Either way it must be
//! for the resource asked for (RFC 8707), within its time, with the scopes
//! needed; what it proves is an [`Identity`].

mod introspection;
mod issuer;
mod known;
mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use introspection::IntrospectionClient;
pub use issuer::TrustedIssuer;
pub use validate::{Identity, TokenRefusal, Validator, Verified, jwt_algorithm};

use crate::oauth::discovery::{Discovery, DiscoveryError};
use introspection::Introspection;
use known::KnownTokens;
use validate::check_scopes;

/// Time allowed for one request to an issuer (metadata, keys, introspection).
const ISSUER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the operator set for hosts that sign in.
#[derive(Debug, Default)]
pub struct SignInSettings {
    /// The issuers whose tokens are accepted; none turns sign-in off.
    pub issuers: Vec<String>,
    /// Accepted as `aud` besides the resource itself (an id, for servers
    /// such as Entra whose tokens name one).
    pub audience: Option<String>,
    /// Scopes every session URL requires.
    pub scopes: Vec<String>,
    /// The scope that lets a token create, list and delete its own sessions.
    pub sessions_scope: Option<String>,
    /// For opaque tokens.
    pub introspection: Option<IntrospectionClient>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("OAuth issuer {issuer}: {source}")]
    Issuer {
        issuer: String,
        source: DiscoveryError,
    },
    #[error("cannot build the HTTP client for the OAuth issuers: {0}")]
    Http(#[source] reqwest::Error),
}

/// The trusted issuers and what their tokens must hold.
pub struct HostSignIn {
    jwt: Validator,
    introspection: Option<Introspection>,
    /// (issuer, introspection endpoint) of each issuer that offers one.
    introspection_endpoints: Vec<(String, url::Url)>,
    issuers: Vec<String>,
    audience: Option<String>,
    scopes: Vec<String>,
    sessions_scope: Option<String>,
    known: KnownTokens,
}

impl HostSignIn {
    /// Finds each issuer's metadata and keys; None when no issuer is set.
    pub async fn start(settings: SignInSettings) -> Result<Option<Self>, SignInError> {
        if settings.issuers.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ISSUER_TIMEOUT)
            .build()
            .map_err(SignInError::Http)?;
        let discovery = Discovery::new(http.clone());
        let mut trusted = Vec::new();
        for issuer in &settings.issuers {
            let found = TrustedIssuer::discover(&discovery, issuer)
                .await
                .map_err(|source| SignInError::Issuer {
                    issuer: issuer.clone(),
                    source,
                })?;
            tracing::info!(
                issuer,
                introspection = found.introspection_endpoint.is_some(),
                "trusting OAuth issuer"
            );
            trusted.push(found);
        }
        let introspection_endpoints: Vec<(String, url::Url)> = trusted
            .iter()
            .filter_map(|issuer| {
                let endpoint = issuer.introspection_endpoint.clone()?;
                Some((issuer.issuer.clone(), endpoint))
            })
            .collect();
        if settings.introspection.is_some() && introspection_endpoints.is_empty() {
            tracing::warn!(
                "an introspection client is set, but no trusted issuer offers introspection: only JWTs are accepted"
            );
        }
        Ok(Some(HostSignIn {
            jwt: Validator::new(trusted, discovery),
            introspection: settings
                .introspection
                .map(|client| Introspection::new(client, http)),
            introspection_endpoints,
            issuers: settings.issuers,
            audience: settings.audience,
            scopes: settings.scopes,
            sessions_scope: settings.sessions_scope,
            known: KnownTokens::default(),
        }))
    }

    /// The trusted issuers, as configured.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    pub fn trusts(&self, issuer: &str) -> bool {
        self.issuers.iter().any(|trusted| trusted == issuer)
    }

    /// The scopes every session URL requires.
    pub fn session_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scope that lets a token manage its own sessions, if one is set.
    pub fn sessions_scope(&self) -> Option<&str> {
        self.sessions_scope.as_deref()
    }

    /// Who `token` proves the caller is, when it is for one of `resources`
    /// (or the operator's audience) and carries every scope of `required`.
    /// A token found valid lately is not checked again (`known.rs`).
    pub async fn check(
        &self,
        token: &str,
        resources: &[&str],
        required: &[String],
    ) -> Result<Arc<Identity>, TokenRefusal> {
        let mut audiences = resources.to_vec();
        audiences.extend(self.audience.as_deref());
        let key = known::key(token, &audiences);
        if let Some(identity) = self.known.get(&key) {
            check_scopes(&identity.scopes, required)?;
            return Ok(identity);
        }
        let verified = if jwt_algorithm(token).is_some() || token.len() > validate::MAX_TOKEN_BYTES
        {
            self.jwt.verify(token, &audiences).await?
        } else {
            let Some(introspection) = &self.introspection else {
                return Err(TokenRefusal::Malformed(
                    "it is not a JWT, and this gateway takes opaque tokens from no issuer".into(),
                ));
            };
            let endpoints: Vec<(&str, &url::Url)> = self
                .introspection_endpoints
                .iter()
                .map(|(issuer, endpoint)| (issuer.as_str(), endpoint))
                .collect();
            introspection.check(token, &endpoints, &audiences).await?
        };
        check_scopes(&verified.identity.scopes, required)?;
        Ok(self.known.keep(key, verified))
    }
}
