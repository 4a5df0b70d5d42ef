//! Opaque access tokens, checked by asking their issuer (RFC 7662) with
//! the gateway's own client credentials, through the `oauth2` crate. An
//! active answer is kept for the token's remaining life, five minutes at
//! most, so that a revoked token stops working soon and a busy session
//! does not ask on every call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthType, ClientId, ClientSecret, IntrospectionUrl, RequestTokenError,
    TokenIntrospectionResponse,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::validate::{Identity, LEEWAY_SECONDS, TokenRefusal, check_scopes};
use crate::oauth::client::TokenHttp;

/// Longest an active answer is trusted without asking again.
const KEEP_AT_MOST: Duration = Duration::from_secs(5 * 60);
/// Most answers kept; beyond, expired ones go, then all.
const MAX_KEPT: usize = 10_000;

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

/// What an active token was found to be, and until when that holds.
#[derive(Clone)]
struct Answer {
    identity: Identity,
    audiences: Vec<String>,
    kept_until: Instant,
}

/// Introspects tokens at their issuers, keeping active answers.
pub struct Introspection {
    client: IntrospectionClient,
    http: reqwest::Client,
    /// By SHA-256 of the token: the token itself is not kept.
    answers: Mutex<HashMap<[u8; 32], Answer>>,
}

impl Introspection {
    pub fn new(client: IntrospectionClient, http: reqwest::Client) -> Self {
        Introspection {
            client,
            http,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// Who `token` proves the caller is, asking `endpoints` (issuer,
    /// introspection endpoint) in turn until one knows it as active.
    pub async fn check(
        &self,
        token: &str,
        endpoints: &[(&str, &url::Url)],
        audiences: &[&str],
        required: &[String],
    ) -> Result<Identity, TokenRefusal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let kept = self.lock().get(&digest).cloned();
        let answer = match kept.filter(|answer| answer.kept_until > Instant::now()) {
            Some(answer) => answer,
            None => {
                let answer = self.ask(token, endpoints).await?;
                let mut answers = self.lock();
                if answers.len() >= MAX_KEPT {
                    let now = Instant::now();
                    answers.retain(|_, answer| answer.kept_until > now);
                    if answers.len() >= MAX_KEPT {
                        answers.clear();
                    }
                }
                answers.insert(digest, answer.clone());
                answer
            }
        };
        if !answer
            .audiences
            .iter()
            .any(|audience| audiences.contains(&audience.as_str()))
        {
            return Err(TokenRefusal::WrongAudience);
        }
        check_scopes(&answer.identity.scopes, required)?;
        Ok(answer.identity)
    }

    async fn ask(
        &self,
        token: &str,
        endpoints: &[(&str, &url::Url)],
    ) -> Result<Answer, TokenRefusal> {
        let mut last = TokenRefusal::Inactive;
        for (issuer, endpoint) in endpoints {
            match self.ask_one(token, issuer, endpoint).await {
                Ok(answer) => return Ok(answer),
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
    ) -> Result<Answer, TokenRefusal> {
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
        let remaining = (exp - now).to_std().unwrap_or_default();
        Ok(Answer {
            identity: Identity {
                issuer: issuer.to_owned(),
                subject,
                scopes: answer
                    .scopes()
                    .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
                    .unwrap_or_default(),
            },
            audiences: answer.aud().cloned().unwrap_or_default(),
            kept_until: Instant::now() + remaining.min(KEEP_AT_MOST),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Answer>> {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
