//! The authorization code flow for one backend of one session: the link
//! sends the user to the authorization server with a `state` kept in the
//! store, and the callback, on whichever node it lands, checks it, redeems
//! the code and keeps the grant.

use std::sync::Arc;

use chrono::Utc;
use secrecy::SecretString;
use url::Url;
use uuid::Uuid;

use super::service::Grants;
use super::{AUTHORIZATION_TTL, GrantError};
use crate::oauth::client::TokenError;
use crate::registry::{Registry, ServerConfig};
use crate::store::{GrantHolder, PendingAuthorization, StoredGrant};

/// What the authorization server sends the user back with.
#[derive(Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    /// RFC 9207: the issuer that answered.
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

// The code and the state are secrets: a Debug print shows whether they came.
impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("state", &self.state.as_ref().map(|_| "[REDACTED]"))
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

/// A backend the user connected to a session.
#[derive(Debug, Clone)]
pub struct Connected {
    pub session_id: Uuid,
    pub server: String,
}

/// Why a callback connected nothing; the message is what the user reads.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// A parameter given twice, say.
    #[error("{0}")]
    Query(String),
    #[error("the callback carries no state: it did not come from an authorization mcp-mux began")]
    NoState,
    #[error(
        "this authorization was begun in another browser; to connect your account, open the session's authorization link in this one"
    )]
    OtherBrowser,
    #[error(
        "this authorization was already completed, has expired (after 10 minutes) or was not begun by this gateway; open the session's authorization link again"
    )]
    UnknownState,
    #[error("the registry no longer lists backend \"{server}\"")]
    ServerGone { server: String },
    #[error("the session was deleted while you were away; nothing was connected")]
    SessionGone,
    #[error(
        "the answer names issuer {found}, not {expected}, which the authorization was asked of; it was not used"
    )]
    WrongIssuer { expected: String, found: String },
    #[error(
        "the backend's authorization server changed while you were away (now {found}, before {expected}); open the session's authorization link again"
    )]
    IssuerChanged { expected: String, found: String },
    #[error(
        "the answer does not name its issuer, which {expected} says it always does; it was not used"
    )]
    NoIssuer { expected: String },
    #[error("the authorization server did not authorize mcp-mux: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the callback carries no code")]
    NoCode,
    #[error("redeeming the code failed: {0}")]
    Grant(#[from] GrantError),
}

impl CallbackError {
    /// Whether the callback itself is at fault (a 400), rather than the
    /// authorization server or the store (a 502).
    pub fn is_bad_callback(&self) -> bool {
        !matches!(self, CallbackError::Grant(_))
    }
}

impl Grants {
    /// Begins an authorization of `server` for a session: the URL of its
    /// authorization server to send the user to, which comes back to
    /// `redirect_uri` (mcp-mux's callback). `more_scopes` are asked for
    /// besides the usual ones (the backend said the grant lacks them).
    pub async fn begin(
        &self,
        session_id: Uuid,
        holder: &GrantHolder,
        server: &ServerConfig,
        redirect_uri: &Url,
        more_scopes: &[String],
    ) -> Result<Url, GrantError> {
        let client = self
            .clients
            .get(&self.store, &self.http, server, redirect_uri)
            .await?;
        // Asking for more keeps what the grant has: a new authorization
        // replaces it.
        let mut more_scopes = more_scopes.to_vec();
        if !more_scopes.is_empty()
            && let Some(grant) = self.store.grant(&holder.key(), &server.name).await?
        {
            more_scopes.extend(grant.scopes);
        }
        let authorization = client.authorize(&more_scopes);
        let expires_at =
            Utc::now() + chrono::Duration::from_std(AUTHORIZATION_TTL).unwrap_or_default();
        self.store
            .insert_authorization_state(
                &authorization.state,
                &PendingAuthorization {
                    session_id,
                    server: server.name.clone(),
                    issuer: client.settings().server.issuer.clone(),
                    verifier: authorization.verifier,
                    expires_at,
                    redirect_uri: redirect_uri.to_string(),
                },
            )
            .await
            .map_err(GrantError::from)?;
        Ok(authorization.url)
    }

    /// Completes an authorization: checks the `state` (once, not expired)
    /// and the issuer, redeems the code and keeps the grant, sealed.
    pub async fn complete(
        &self,
        callback: &Callback,
        registry: &Registry,
    ) -> Result<Connected, CallbackError> {
        let state = callback.state.as_deref().ok_or(CallbackError::NoState)?;
        let pending = self
            .store
            .take_authorization_state(state, Utc::now())
            .await
            .map_err(GrantError::from)?
            .ok_or(CallbackError::UnknownState)?;
        let server = registry
            .server(&pending.server)
            .ok_or_else(|| CallbackError::ServerGone {
                server: pending.server.clone(),
            })?;
        if let Some(found) = &callback.iss
            && *found != pending.issuer
        {
            return Err(CallbackError::WrongIssuer {
                expected: pending.issuer,
                found: found.clone(),
            });
        }
        let redirect_uri =
            Url::parse(&pending.redirect_uri).map_err(|_| CallbackError::UnknownState)?;
        let client = self
            .clients
            .get(&self.store, &self.http, server, &redirect_uri)
            .await?;
        let metadata = &client.settings().server;
        // The code goes only to the server the authorization was asked of.
        if metadata.issuer != pending.issuer {
            return Err(CallbackError::IssuerChanged {
                expected: pending.issuer,
                found: metadata.issuer.clone(),
            });
        }
        if callback.iss.is_none() && metadata.authorization_response_iss_parameter_supported {
            return Err(CallbackError::NoIssuer {
                expected: pending.issuer,
            });
        }
        if let Some(error) = &callback.error {
            return Err(CallbackError::Denied {
                error: error.clone(),
                description: callback.error_description.clone(),
            });
        }
        let code = callback.code.as_deref().ok_or(CallbackError::NoCode)?;
        // A signed-in user's session: the grant is the user's, for each of
        // their sessions over this backend.
        let session = self
            .store
            .find_session(pending.session_id)
            .await
            .map_err(GrantError::from)?
            .ok_or(CallbackError::SessionGone)?;
        let holder = GrantHolder::of_session(session.id, session.owner.as_ref()).key();
        let tokens = match client.redeem(code, &pending.verifier).await {
            Ok(tokens) => tokens,
            Err(error) => {
                self.forget_unknown_client(server, &client, &error).await;
                return Err(GrantError::from(error).into());
            }
        };
        // Another version than any a node may hold, so that each takes it up.
        let version = self
            .store
            .grant(&holder, &server.name)
            .await
            .map_err(GrantError::from)?
            .map_or(0, |earlier| earlier.version + 1);
        let grant = StoredGrant {
            holder,
            server: server.name.clone(),
            issuer: pending.issuer,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            scopes: tokens.scopes,
            version,
            redirect_uri: pending.redirect_uri,
        };
        self.store
            .save_grant(&grant)
            .await
            .map_err(GrantError::from)?;
        self.live(&grant.holder, &grant.server)
            .replace(&grant, false);
        tracing::info!(server = %grant.server, "a backend was authorized for a session");
        Ok(Connected {
            session_id: pending.session_id,
            server: grant.server,
        })
    }

    /// A dynamically registered client that the authorization server no
    /// longer knows is registered again next time.
    pub(super) async fn forget_unknown_client(
        &self,
        server: &ServerConfig,
        client: &Arc<crate::oauth::client::OAuthClient>,
        error: &TokenError,
    ) {
        let unknown = error.is_invalid_client();
        let registered_by_hand = server
            .auth
            .oauth()
            .is_some_and(|oauth| oauth.client_id.is_some());
        if unknown
            && !registered_by_hand
            && let Err(error) = self.clients.forget(&self.store, &server.name, client).await
        {
            tracing::warn!(server = %server.name, %error, "could not forget an unknown client registration");
        }
    }

    /// Whether `holder` holds a grant for `server`, and until when its
    /// access token lasts.
    pub async fn status(
        &self,
        holder: &GrantHolder,
        server: &str,
    ) -> Result<Option<Option<chrono::DateTime<Utc>>>, crate::store::StoreError> {
        Ok(self
            .store
            .grant(&holder.key(), server)
            .await?
            .map(|grant| grant.expires_at))
    }

    /// Revokes grants taken out of the store (of a deleted session, or
    /// that no session of their user uses any more) where their servers
    /// offer revocation (RFC 7009).
    pub async fn revoke(&self, grants: Vec<StoredGrant>, registry: &Registry) {
        for grant in grants {
            let Some(server) = registry.server(&grant.server) else {
                continue;
            };
            let Ok(redirect_uri) = Url::parse(&grant.redirect_uri) else {
                continue;
            };
            let client = match self
                .clients
                .get(&self.store, &self.http, server, &redirect_uri)
                .await
            {
                // Its tokens go only to the server that issued them.
                Ok(client) if client.settings().server.issuer == grant.issuer => client,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(server = %grant.server, %error, "could not revoke a deleted session's grant");
                    continue;
                }
            };
            // The refresh token, when there is one, ends the whole grant.
            let (token, hint): (&SecretString, _) = match &grant.refresh_token {
                Some(refresh) => (refresh, "refresh_token"),
                None => (&grant.access_token, "access_token"),
            };
            match client.revoke(token, hint).await {
                Ok(true) => {
                    tracing::info!(server = %grant.server, "revoked a deleted session's grant")
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(server = %grant.server, %error, "could not revoke a deleted session's grant")
                }
            }
        }
    }
}
