//! Opaque access tokens, checked by asking their issuer (RFC 7662) with
//! the gateway's own client credentials, through the `oauth2` crate.

use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthType, ClientId, ClientSecret, IntrospectionUrl, RequestTokenError,
    TokenIntrospectionResponse,
};
use secrecy::{ExposeSecret, SecretString};

use super::validate::{Identity, LEEWAY_SECONDS, TokenRefusal, Verified};
use crate::oauth::client::TokenHttp;

/// The gateway's client at the issuers' introspection endpoints.
pub struct IntrospectionClient {
    pub client_id: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("client_id", &self.client_id)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Introspects tokens at their issuers.
pub struct Introspection {
    client: IntrospectionClient,
    http: reqwest::Client,
}

impl Introspection {
    pub fn new(client: IntrospectionClient, http: reqwest::Client) -> Self {
        Introspection { client, http }
    }

    /// Who `token` proves the caller is, when it is for one of
    /// `audiences`: `endpoints` (issuer, introspection endpoint) are asked
    /// in turn until one knows it as active.
    pub async fn check(
        &self,
        token: &str,
        endpoints: &[(&str, &url::Url)],
        audiences: &[&str],
    ) -> Result<Verified, TokenRefusal> {
        let mut last = TokenRefusal::Inactive;
        for (issuer, endpoint) in endpoints {
            match self.ask_one(token, issuer, endpoint, audiences).await {
                Ok(verified) => return Ok(verified),
                Err(refusal) => last = refusal,
            }
        }
        Err(last)
    }

    async fn ask_one(
        &self,
        token: &str,
        issuer: &str,
        endpoint: &url::Url,
        audiences: &[&str],
    ) -> Result<Verified, TokenRefusal> {
        let client = BasicClient::new(ClientId::new(self.client.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client.secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::BasicAuth)
            .set_introspection_url(IntrospectionUrl::from_url(endpoint.clone()));
        let answer = client
            .introspect(&AccessToken::new(token.to_owned()))
            .request_async(&TokenHttp(&self.http))
            .await
            .map_err(|error| {
                let error = match error {
                    RequestTokenError::Request(error) => error.to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(issuer, %error, "token introspection failed");
                TokenRefusal::Unchecked(format!("the authorization server {issuer} did not answer"))
            })?;
        if !answer.active() {
            return Err(TokenRefusal::Inactive);
        }
        if answer.iss().is_some_and(|iss| iss != issuer) {
            return Err(TokenRefusal::UnknownIssuer);
        }
        let now = Utc::now();
        let leeway = chrono::Duration::seconds(LEEWAY_SECONDS as i64);
        let Some(exp) = answer.exp() else {
            return Err(TokenRefusal::Malformed(
                "its introspection gives no exp".into(),
            ));
        };
        if exp + leeway <= now {
            return Err(TokenRefusal::Expired);
        }
        if answer.nbf().is_some_and(|nbf| nbf - leeway > now) {
            return Err(TokenRefusal::NotYetValid);
        }
        let subject = answer
            .sub()
            .or(answer.username())
            .map(str::to_owned)
            .or_else(|| answer.client_id().map(|id| id.as_str().to_owned()))
            .ok_or_else(|| TokenRefusal::Malformed("its introspection names no subject".into()))?;
        let for_us = answer
            .aud()
            .is_some_and(|aud| aud.iter().any(|aud| audiences.contains(&aud.as_str())));
        if !for_us {
            return Err(TokenRefusal::WrongAudience);
        }
        Ok(Verified {
            identity: Identity {
                issuer: issuer.to_owned(),
                subject,
                scopes: answer
                    .scopes()
                    .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
                    .unwrap_or_default(),
            },
            expires_at: exp.timestamp(),
        })
    }
}
