//! The access tokens calls carry. Each node keeps a grant's current token
//! in memory; when it nears expiry, or a backend refuses it, one caller on
//! the node renews it, and across nodes the store lets one of them claim
//! the refresh: the others wait for the version it stores. The rotated
//! refresh token is stored before the new access token is used.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::live::Live;
use super::service::Grants;
use crate::backend::{AccessTokens, BackendError, StepUpFuture, TokenFuture};
use crate::oauth::client::{OAuthClient, TOKEN_TIMEOUT, Tokens};
use crate::oauth::discovery::parse_bearer_challenge;
use crate::registry::ServerConfig;
use crate::store::{GrantHolder, StoreError, StoredGrant};

/// Longest a refresh claimed in the store holds: a node that died while
/// refreshing leaves it to another after this.
const CLAIM: Duration = Duration::from_secs(60);
/// How long a claimed refresh may keep trying the token endpoint: well
/// within the claim, so that no other node claims the same refresh token
/// while this one may still use it.
const REFRESH_BUDGET: Duration = Duration::from_secs(25);
/// How often a caller looks for a refresh another node claimed.
const CLAIM_POLL: Duration = Duration::from_millis(200);
/// Attempts at storing a refreshed grant: the rotated refresh token exists
/// nowhere else.
const STORE_ATTEMPTS: u32 = 3;

/// Why a grant gave no token.
enum Renewal {
    /// The user must authorize again (no grant, or it was refused for good).
    NeedsAuthorization,
    Failed(String),
}

impl Grants {
    /// The access token for `server` of a session, renewed when due. The
    /// renewal runs on a task of its own: a caller that goes away (its call
    /// timed out, its client left) must not cut a refresh off between the
    /// token endpoint's answer and the store.
    async fn access_token(
        self: &Arc<Self>,
        live: &Arc<Live>,
        holder: &str,
        server: &Arc<ServerConfig>,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, Renewal> {
        if let Some(token) = live.fresh_unless(refused) {
            return Ok(token);
        }
        let (grants, live, holder, server, refused) = (
            self.clone(),
            live.clone(),
            holder.to_owned(),
            server.clone(),
            refused.cloned(),
        );
        let renewal = tokio::spawn(async move {
            let _renewing = live.renewing.lock().await;
            if let Some(token) = live.fresh_unless(refused.as_ref()) {
                return Ok(token);
            }
            if live.refused_again(refused.as_ref()) {
                return Err(Renewal::Failed(
                    "the backend refused an access token issued moments ago, after refusing the one before: the grant may lack a scope, or name another resource (see auth.scopes and auth.resource)".into(),
                ));
            }
            let held = live.version();
            match grants.renew(&holder, &server, held, refused.as_ref()).await {
                Ok(grant) => {
                    live.replace(&grant, refused.is_some());
                    Ok(grant.access_token)
                }
                Err(Renewal::NeedsAuthorization) => {
                    live.clear();
                    Err(Renewal::NeedsAuthorization)
                }
                // The token in hand still works until it expires.
                Err(Renewal::Failed(reason)) => match live.usable_unless(refused.as_ref()) {
                    Some(token) => {
                        tracing::warn!(server = %server.name, %reason, "renewing an access token failed; using it until it expires");
                        Ok(token)
                    }
                    None => Err(Renewal::Failed(reason)),
                },
            }
        });
        renewal
            .await
            .unwrap_or_else(|_| Err(Renewal::Failed("the renewal was interrupted".into())))
    }

    /// A grant whose token may be used and is not `refused`: the stored
    /// one when it is another version than `held` (the one found due or
    /// refused here), else a refresh of it, made here or on another node.
    async fn renew(
        &self,
        holder: &str,
        server: &ServerConfig,
        held: Option<i64>,
        refused: Option<&SecretString>,
    ) -> Result<StoredGrant, Renewal> {
        let failed = |error: StoreError| Renewal::Failed(error.to_string());
        let waited_until = tokio::time::Instant::now() + CLAIM + CLAIM;
        loop {
            let grant = self
                .store
                .grant(holder, &server.name)
                .await
                .map_err(failed)?
                .ok_or(Renewal::NeedsAuthorization)?;
            let was_refused = refused
                .is_some_and(|used| used.expose_secret() == grant.access_token.expose_secret());
            let expired = grant.expires_at.is_some_and(|at| at <= Utc::now());
            let another = held.is_none_or(|held| grant.version != held);
            if another && !was_refused && !expired {
                return Ok(grant);
            }
            let Some(refresh_token) = grant.refresh_token.clone() else {
                if !was_refused && !expired {
                    // Nothing to renew it with: it serves until it expires.
                    return Ok(grant);
                }
                self.drop_grant(&grant).await;
                return Err(Renewal::NeedsAuthorization);
            };
            // Made before claiming: discovery and registration take time
            // the claim must not spend.
            let client = match self.client_of(server, &grant).await {
                Ok(client) => client,
                Err(renewal) => return Err(renewal),
            };
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(CLAIM).unwrap_or_default();
            let claimed = self
                .store
                .claim_refresh(holder, &server.name, grant.version, now, until)
                .await
                .map_err(failed)?;
            if claimed {
                return self.refresh(server, &client, grant, &refresh_token).await;
            }
            // Another caller refreshes it. Until its version comes, the
            // token in hand serves while it lasts: calls need not wait on
            // another node (nor on one that died while refreshing).
            if !was_refused && !expired {
                return Ok(grant);
            }
            if tokio::time::Instant::now() >= waited_until {
                return Err(Renewal::Failed(
                    "another node's refresh of the grant did not finish".into(),
                ));
            }
            tokio::time::sleep(CLAIM_POLL).await;
        }
    }

    /// The client that refreshes `grant`: the one registered for its
    /// callback with the authorization server that granted it. A backend
    /// that moved to another authorization server needs authorization
    /// again: its refresh token must not go to the new one (RFC 9207's
    /// mix-up).
    async fn client_of(
        &self,
        server: &ServerConfig,
        grant: &StoredGrant,
    ) -> Result<Arc<OAuthClient>, Renewal> {
        let redirect_uri = url::Url::parse(&grant.redirect_uri)
            .map_err(|_| Renewal::Failed("the grant names no valid callback".into()))?;
        let client = self
            .clients
            .get(&self.store, &self.http, server, &redirect_uri)
            .await
            .map_err(|error| Renewal::Failed(error.to_string()))?;
        if client.settings().server.issuer != grant.issuer {
            tracing::warn!(server = %grant.server, "the backend's authorization server changed; the user must authorize again");
            self.drop_grant(grant).await;
            return Err(Renewal::NeedsAuthorization);
        }
        Ok(client)
    }

    /// Refreshes a grant whose refresh this caller claimed, and stores it
    /// before anyone uses the new access token.
    async fn refresh(
        &self,
        server: &ServerConfig,
        client: &Arc<OAuthClient>,
        grant: StoredGrant,
        refresh_token: &SecretString,
    ) -> Result<StoredGrant, Renewal> {
        let tokens = match self
            .request_refresh(server, client, &grant, refresh_token)
            .await
        {
            Ok(tokens) => tokens,
            Err(RefreshFailure::Refused) => {
                self.drop_grant(&grant).await;
                return Err(Renewal::NeedsAuthorization);
            }
            Err(RefreshFailure::Failed(reason)) => {
                self.release_claim(&grant).await;
                return Err(Renewal::Failed(reason));
            }
        };
        let refreshed = StoredGrant {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            scopes: tokens.scopes,
            version: grant.version + 1,
            ..grant.clone()
        };
        let mut attempt = 1;
        let stored = loop {
            match self.store.complete_refresh(&refreshed, grant.version).await {
                Ok(stored) => break stored,
                Err(error) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(server = %grant.server, %error, attempt, "storing a refreshed grant failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => {
                    self.release_claim(&grant).await;
                    return Err(Renewal::Failed(error.to_string()));
                }
            }
        };
        if !stored {
            // Authorized again or deleted meanwhile: what the store holds wins.
            return match self.store.grant(&grant.holder, &grant.server).await {
                Ok(Some(current)) => Ok(current),
                Ok(None) => Err(Renewal::NeedsAuthorization),
                Err(error) => Err(Renewal::Failed(error.to_string())),
            };
        }
        tracing::info!(server = %grant.server, version = refreshed.version, "refreshed a backend's access token");
        Ok(refreshed)
    }

    /// Asks the token endpoint, again with backoff while it cannot be
    /// reached, within [`REFRESH_BUDGET`].
    async fn request_refresh(
        &self,
        server: &ServerConfig,
        client: &Arc<OAuthClient>,
        grant: &StoredGrant,
        refresh_token: &SecretString,
    ) -> Result<Tokens, RefreshFailure> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match client.refresh(refresh_token).await {
                Ok(tokens) => return Ok(tokens),
                Err(error) if error.is_invalid_grant() => {
                    tracing::warn!(server = %grant.server, %error, "the authorization server refused the grant; the user must authorize again");
                    return Err(RefreshFailure::Refused);
                }
                Err(error)
                    if error.is_transient()
                        && started.elapsed() + pause + TOKEN_TIMEOUT < REFRESH_BUDGET =>
                {
                    tracing::warn!(server = %grant.server, %error, attempt, "refreshing failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                Err(error) => {
                    self.forget_unknown_client(server, client, &error).await;
                    if error.is_invalid_client() {
                        return Err(RefreshFailure::Refused);
                    }
                    return Err(RefreshFailure::Failed(error.to_string()));
                }
            }
        }
    }

    /// Ends this caller's claim on a refresh that did not happen.
    async fn release_claim(&self, grant: &StoredGrant) {
        if let Err(error) = self
            .store
            .release_refresh(&grant.holder, &grant.server, grant.version)
            .await
        {
            tracing::warn!(server = %grant.server, %error, "could not release a refresh claim");
        }
    }

    /// Deletes a grant that can no longer give tokens, unless it changed
    /// meanwhile (the user authorized again): the backend needs
    /// authorization again, and discovery runs again first (the backend
    /// may have moved to another authorization server).
    async fn drop_grant(&self, grant: &StoredGrant) {
        self.clients.forget_server(&grant.server);
        if let Err(error) = self
            .store
            .delete_grant_at(&grant.holder, &grant.server, grant.version)
            .await
        {
            tracing::warn!(server = %grant.server, %error, "could not delete a refused grant");
        }
    }
}

enum RefreshFailure {
    /// `invalid_grant` (or the client is unknown): authorize again.
    Refused,
    Failed(String),
}

/// One session's grant for one backend, as its backend sessions see it.
pub struct SessionGrant {
    pub(super) grants: Arc<Grants>,
    /// The grant's token in memory, found once: calls read it without a
    /// lookup.
    live: Arc<Live>,
    pub(super) session_id: Uuid,
    /// Whose grant it is: the session's, or its signed-in user's.
    holder: String,
    pub(super) server: Arc<ServerConfig>,
    /// Whether the session requires a token or a sign-in: its links then
    /// need a key.
    pub(super) keyed_links: bool,
}

impl Grants {
    /// The access tokens of `server` for a session, held by `holder`;
    /// `keyed_links` when the session requires a token or a sign-in (its
    /// authorization links need a key).
    pub fn for_session(
        self: &Arc<Self>,
        session_id: Uuid,
        holder: &GrantHolder,
        server: Arc<ServerConfig>,
        keyed_links: bool,
    ) -> SessionGrant {
        let holder = holder.key();
        SessionGrant {
            grants: self.clone(),
            live: self.live(&holder, &server.name),
            session_id,
            holder,
            server,
            keyed_links,
        }
    }
}

impl SessionGrant {
    /// The token to send, or why there is none. `challenge` is the 401's,
    /// whose scopes the link asks for when the user must authorize again.
    async fn token(
        &self,
        refused: Option<&SecretString>,
        challenge: Option<&str>,
    ) -> Result<SecretString, BackendError> {
        match self
            .grants
            .access_token(&self.live, &self.holder, &self.server, refused)
            .await
        {
            Ok(token) => Ok(token),
            Err(Renewal::NeedsAuthorization) => {
                let scope = challenge
                    .and_then(parse_bearer_challenge)
                    .and_then(|challenge| challenge.scope);
                Err(BackendError::AuthorizationNeeded {
                    server: self.server.name.clone(),
                    url: self.link(scope.as_deref()).await,
                    scope,
                })
            }
            Err(Renewal::Failed(reason)) => Err(BackendError::NoAccessToken {
                server: self.server.name.clone(),
                reason,
            }),
        }
    }

    /// The link that asks the user to authorize the backend (for `scope`
    /// besides the usual ones, when the backend asked for more).
    async fn link(&self, scope: Option<&str>) -> String {
        let key = if self.keyed_links {
            match self
                .grants
                .issue_link_key(self.session_id, &self.server.name)
                .await
            {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::warn!(%error, "could not issue an authorization link");
                    None
                }
            }
        } else {
            None
        };
        self.grants
            .link(self.session_id, &self.server.name, key.as_deref(), scope)
    }
}

impl AccessTokens for SessionGrant {
    fn current(&self) -> TokenFuture<'_> {
        Box::pin(self.token(None, None))
    }

    fn refused<'a>(
        &'a self,
        used: &'a SecretString,
        challenge: Option<&'a str>,
    ) -> TokenFuture<'a> {
        Box::pin(self.token(Some(used), challenge))
    }

    fn forbidden<'a>(&'a self, challenge: &'a str) -> StepUpFuture<'a> {
        Box::pin(self.step_up(challenge))
    }
}

impl SessionGrant {
    /// A 403 `insufficient_scope` naming scopes: the user must authorize
    /// them, through a link that asks for them too.
    async fn step_up(&self, challenge: &str) -> Option<BackendError> {
        let challenge = parse_bearer_challenge(challenge)?;
        if challenge.error.as_deref() != Some("insufficient_scope") {
            return None;
        }
        let scope = challenge.scope?;
        tracing::info!(server = %self.server.name, %scope, "the backend wants scopes the grant lacks; the user must authorize them");
        Some(BackendError::AuthorizationNeeded {
            server: self.server.name.clone(),
            url: self.link(Some(&scope)).await,
            scope: Some(scope),
        })
    }
}
