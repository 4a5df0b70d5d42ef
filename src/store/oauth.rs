//! What mcp-mux keeps as its backends' OAuth client: authorization requests
//! awaiting their callback (single-use, short-lived), the grants they yield
//! (refreshed by one node at a time), and client registrations per
//! authorization server. Every secret is sealed like a session's credentials.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entity::{oauth_client, oauth_grant, oauth_link, oauth_state};
use super::{Owner, Store, StoreError};

/// An authorization request waiting for its callback.
pub struct PendingAuthorization {
    pub session_id: Uuid,
    pub server: String,
    /// The issuer the request went to: the callback's `iss` must be it.
    pub issuer: String,
    pub verifier: SecretString,
    pub expires_at: DateTime<Utc>,
    /// The callback the request named.
    pub redirect_uri: String,
}

/// Whose a grant is: a session's own, or a signed-in user's, which every
/// session of that user shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantHolder {
    Session(Uuid),
    User(Owner),
}

impl GrantHolder {
    /// The holder of a session's grants: its owner, if it has one.
    pub fn of_session(session_id: Uuid, owner: Option<&Owner>) -> Self {
        match owner {
            Some(owner) => GrantHolder::User(owner.clone()),
            None => GrantHolder::Session(session_id),
        }
    }

    /// Its key in the store: the session's id, or `user:` and a digest of
    /// the issuer and subject (each after its length, so that no two pairs
    /// make one key).
    pub fn key(&self) -> String {
        match self {
            GrantHolder::Session(id) => id.to_string(),
            GrantHolder::User(owner) => {
                let mut hasher = Sha256::new();
                for part in [&owner.issuer, &owner.subject] {
                    hasher.update((part.len() as u64).to_be_bytes());
                    hasher.update(part.as_bytes());
                }
                format!("user:{}", hex::encode(hasher.finalize()))
            }
        }
    }
}

/// A user's authorization of one backend, held by a session or a user.
#[derive(Clone)]
pub struct StoredGrant {
    /// The holder's key (see [`GrantHolder::key`]).
    pub holder: String,
    pub server: String,
    pub issuer: String,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    /// Refreshes so far: a refresh is stored only over the version it began from.
    pub version: i64,
    /// The callback it was granted to, which names its client with the issuer.
    pub redirect_uri: String,
}

impl std::fmt::Debug for StoredGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredGrant")
            .field("holder", &self.holder)
            .field("server", &self.server)
            .field("issuer", &self.issuer)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A client registered with an authorization server for one redirect URI.
#[derive(Clone)]
pub struct ClientRegistration {
    pub issuer: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct SealedTokens {
    access_token: String,
    refresh_token: Option<String>,
}

fn hex_sha256(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator no part holds, so that ("ab", "c") ≠ ("a", "bc").
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn grant_context(holder: &str, server: &str) -> String {
    format!("oauth-grant:{holder}:{server}")
}

impl Store {
    /// Keeps an authorization request under its `state`, of which only a
    /// digest is stored.
    pub async fn insert_authorization_state(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        let digest = hex_sha256(&[state.expose_secret()]);
        let key = self.keys.current();
        let row = oauth_state::ActiveModel {
            verifier: Set(key.seal(
                pending.verifier.expose_secret().as_bytes(),
                format!("oauth-state:{digest}").as_bytes(),
            )),
            state_digest: Set(digest),
            session_id: Set(pending.session_id.to_string()),
            server: Set(pending.server.clone()),
            issuer: Set(pending.issuer.clone()),
            key_id: Set(key.id().to_owned()),
            expires_at: Set(pending.expires_at),
            redirect_uri: Set(pending.redirect_uri.clone()),
        };
        oauth_state::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    /// Takes the authorization request `state` names, once: None when it is
    /// unknown, already taken, or expired. Of two nodes taking it at once,
    /// only one gets it.
    pub async fn take_authorization_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let digest = hex_sha256(&[state]);
        let Some(row) = oauth_state::Entity::find_by_id(digest.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let taken = oauth_state::Entity::delete_by_id(digest.clone())
            .exec(&self.db)
            .await?;
        if taken.rows_affected == 0 || row.expires_at <= now {
            return Ok(None);
        }
        let corrupt = |reason| StoreError::Corrupt {
            id: format!("authorization state {}", &digest[..8]),
            reason,
        };
        let verifier = self
            .keys
            .find(&row.key_id)
            .ok_or_else(|| corrupt("sealed with a key that is not configured"))?
            .open(&row.verifier, format!("oauth-state:{digest}").as_bytes())
            .map_err(|_| corrupt("does not open with the key that sealed it"))?;
        let verifier = String::from_utf8(verifier.expose_secret().clone())
            .map_err(|_| corrupt("verifier is not text"))?;
        Ok(Some(PendingAuthorization {
            session_id: Uuid::parse_str(&row.session_id)
                .map_err(|_| corrupt("session id is not a UUID"))?,
            server: row.server,
            issuer: row.issuer,
            verifier: SecretString::from(verifier),
            expires_at: row.expires_at,
            redirect_uri: row.redirect_uri,
        }))
    }

    /// Forgets authorization requests and links whose time is up; how many.
    pub async fn purge_expired_authorization_states(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let states = oauth_state::Entity::delete_many()
            .filter(oauth_state::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        let links = oauth_link::Entity::delete_many()
            .filter(oauth_link::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(states.rows_affected + links.rows_affected)
    }

    /// Keeps a one-time authorization link's key (only its digest) for
    /// `server` of a session.
    pub async fn insert_authorization_link(
        &self,
        key: &SecretString,
        session_id: Uuid,
        server: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = oauth_link::ActiveModel {
            key_digest: Set(hex_sha256(&[key.expose_secret()])),
            session_id: Set(session_id.to_string()),
            server: Set(server.to_owned()),
            expires_at: Set(expires_at),
        };
        oauth_link::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    /// Whether the link `key` opens `server` of a session (issued for them,
    /// not used, not expired), without using it up.
    pub async fn authorization_link_opens(
        &self,
        key: &str,
        session_id: Uuid,
        server: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let found = oauth_link::Entity::find_by_id(hex_sha256(&[key]))
            .filter(oauth_link::Column::SessionId.eq(session_id.to_string()))
            .filter(oauth_link::Column::Server.eq(server))
            .filter(oauth_link::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?;
        Ok(found.is_some())
    }

    /// Uses up the link `key` opens for `server` of a session: true once,
    /// while it has not expired, if it was issued for them.
    pub async fn take_authorization_link(
        &self,
        key: &str,
        session_id: Uuid,
        server: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let taken = oauth_link::Entity::delete_many()
            .filter(oauth_link::Column::KeyDigest.eq(hex_sha256(&[key])))
            .filter(oauth_link::Column::SessionId.eq(session_id.to_string()))
            .filter(oauth_link::Column::Server.eq(server))
            .filter(oauth_link::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Stores a new grant (a new authorization), replacing an older one.
    pub async fn save_grant(&self, grant: &StoredGrant) -> Result<(), StoreError> {
        let row = self.grant_row(grant, grant.version);
        oauth_grant::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([oauth_grant::Column::Holder, oauth_grant::Column::Server])
                    .update_columns([
                        oauth_grant::Column::Issuer,
                        oauth_grant::Column::Tokens,
                        oauth_grant::Column::KeyId,
                        oauth_grant::Column::ExpiresAt,
                        oauth_grant::Column::Scopes,
                        oauth_grant::Column::Version,
                        oauth_grant::Column::RefreshingUntil,
                        oauth_grant::Column::UpdatedAt,
                        oauth_grant::Column::RedirectUri,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    fn grant_row(&self, grant: &StoredGrant, version: i64) -> oauth_grant::ActiveModel {
        let key = self.keys.current();
        let tokens = SealedTokens {
            access_token: grant.access_token.expose_secret().to_owned(),
            refresh_token: grant
                .refresh_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
        };
        let plaintext = serde_json::to_vec(&tokens).unwrap_or_default();
        oauth_grant::ActiveModel {
            tokens: Set(key.seal(
                &plaintext,
                grant_context(&grant.holder, &grant.server).as_bytes(),
            )),
            holder: Set(grant.holder.clone()),
            server: Set(grant.server.clone()),
            issuer: Set(grant.issuer.clone()),
            key_id: Set(key.id().to_owned()),
            expires_at: Set(grant.expires_at),
            scopes: Set(serde_json::to_string(&grant.scopes).unwrap_or_default()),
            version: Set(version),
            refreshing_until: Set(None),
            updated_at: Set(Utc::now()),
            redirect_uri: Set(grant.redirect_uri.clone()),
        }
    }

    /// The grant `holder` holds for `server`, if any.
    pub async fn grant(
        &self,
        holder: &str,
        server: &str,
    ) -> Result<Option<StoredGrant>, StoreError> {
        let row = oauth_grant::Entity::find_by_id((holder.to_owned(), server.to_owned()))
            .one(&self.db)
            .await?;
        row.map(|row| self.open_grant(row)).transpose()
    }

    fn open_grant(&self, row: oauth_grant::Model) -> Result<StoredGrant, StoreError> {
        let corrupt = |reason| StoreError::Corrupt {
            id: format!("grant of {} for {}", row.holder, row.server),
            reason,
        };
        let plaintext = self
            .keys
            .find(&row.key_id)
            .ok_or_else(|| corrupt("sealed with a key that is not configured"))?
            .open(
                &row.tokens,
                grant_context(&row.holder, &row.server).as_bytes(),
            )
            .map_err(|_| corrupt("does not open with the key that sealed it"))?;
        let tokens: SealedTokens = serde_json::from_slice(plaintext.expose_secret())
            .map_err(|_| corrupt("tokens are not the stored form"))?;
        Ok(StoredGrant {
            holder: row.holder,
            server: row.server,
            issuer: row.issuer,
            access_token: SecretString::from(tokens.access_token),
            refresh_token: tokens.refresh_token.map(SecretString::from),
            expires_at: row.expires_at,
            scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
            version: row.version,
            redirect_uri: row.redirect_uri,
        })
    }

    /// Claims the refresh of a grant still at `version`, until `until`:
    /// true for exactly one caller across every node, however many ask at
    /// once. A claim whose node died lapses at `until`.
    pub async fn claim_refresh(
        &self,
        holder: &str,
        server: &str,
        version: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = oauth_grant::Entity::update_many()
            .col_expr(oauth_grant::Column::RefreshingUntil, Expr::value(until))
            .filter(oauth_grant::Column::Holder.eq(holder))
            .filter(oauth_grant::Column::Server.eq(server))
            .filter(oauth_grant::Column::Version.eq(version))
            .filter(
                Condition::any()
                    .add(oauth_grant::Column::RefreshingUntil.is_null())
                    .add(oauth_grant::Column::RefreshingUntil.lte(now)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Stores a refreshed grant over the version its claim began from, and
    /// ends the claim; false if the grant changed meanwhile (it was
    /// authorized again, or deleted), in which case nothing is written.
    pub async fn complete_refresh(
        &self,
        refreshed: &StoredGrant,
        claimed_version: i64,
    ) -> Result<bool, StoreError> {
        let row = self.grant_row(refreshed, claimed_version + 1);
        let result = oauth_grant::Entity::update_many()
            .set(row)
            .filter(oauth_grant::Column::Holder.eq(refreshed.holder.as_str()))
            .filter(oauth_grant::Column::Server.eq(refreshed.server.as_str()))
            .filter(oauth_grant::Column::Version.eq(claimed_version))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Ends a claim whose refresh failed, so that another may try.
    pub async fn release_refresh(
        &self,
        holder: &str,
        server: &str,
        claimed_version: i64,
    ) -> Result<(), StoreError> {
        oauth_grant::Entity::update_many()
            .col_expr(
                oauth_grant::Column::RefreshingUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(oauth_grant::Column::Holder.eq(holder))
            .filter(oauth_grant::Column::Server.eq(server))
            .filter(oauth_grant::Column::Version.eq(claimed_version))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes a session's grant for `server` if it is still at `version`
    /// (it was refused for good, and nobody authorized again meanwhile);
    /// true if it was deleted.
    pub async fn delete_grant_at(
        &self,
        holder: &str,
        server: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        let result = oauth_grant::Entity::delete_many()
            .filter(oauth_grant::Column::Holder.eq(holder))
            .filter(oauth_grant::Column::Server.eq(server))
            .filter(oauth_grant::Column::Version.eq(version))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Takes the grants of `holder` (every one, or those for `servers`)
    /// out of the store, returning them (to revoke them at their servers).
    pub async fn take_grants(
        &self,
        holder: &str,
        servers: Option<&[String]>,
    ) -> Result<Vec<StoredGrant>, StoreError> {
        let mut held = Condition::all().add(oauth_grant::Column::Holder.eq(holder));
        if let Some(servers) = servers {
            held = held.add(oauth_grant::Column::Server.is_in(servers.iter().map(String::as_str)));
        }
        let rows = oauth_grant::Entity::find()
            .filter(held.clone())
            .all(&self.db)
            .await?;
        oauth_grant::Entity::delete_many()
            .filter(held)
            .exec(&self.db)
            .await?;
        // A row that no longer opens cannot be revoked; it is gone all the same.
        Ok(rows
            .into_iter()
            .filter_map(|row| self.open_grant(row).ok())
            .collect())
    }

    /// The client registered with `issuer` for `redirect_uri`, if any.
    pub async fn client_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<ClientRegistration>, StoreError> {
        let id = hex_sha256(&[issuer, redirect_uri]);
        let Some(row) = oauth_client::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let corrupt = |reason| StoreError::Corrupt {
            id: format!("client registration with {issuer}"),
            reason,
        };
        let client_secret = match &row.client_secret {
            Some(sealed) => {
                let plaintext = self
                    .keys
                    .find(&row.key_id)
                    .ok_or_else(|| corrupt("sealed with a key that is not configured"))?
                    .open(sealed, format!("oauth-client:{id}").as_bytes())
                    .map_err(|_| corrupt("does not open with the key that sealed it"))?;
                Some(SecretString::from(
                    String::from_utf8(plaintext.expose_secret().clone())
                        .map_err(|_| corrupt("client secret is not text"))?,
                ))
            }
            None => None,
        };
        Ok(Some(ClientRegistration {
            issuer: row.issuer,
            redirect_uri: row.redirect_uri,
            client_id: row.client_id,
            client_secret,
        }))
    }

    /// Keeps a client registration, replacing an earlier one for the same
    /// issuer and redirect URI.
    pub async fn save_client_registration(
        &self,
        registration: &ClientRegistration,
    ) -> Result<(), StoreError> {
        let id = hex_sha256(&[&registration.issuer, &registration.redirect_uri]);
        let key = self.keys.current();
        let row = oauth_client::ActiveModel {
            client_secret: Set(registration.client_secret.as_ref().map(|secret| {
                key.seal(
                    secret.expose_secret().as_bytes(),
                    format!("oauth-client:{id}").as_bytes(),
                )
            })),
            id: Set(id),
            issuer: Set(registration.issuer.clone()),
            redirect_uri: Set(registration.redirect_uri.clone()),
            client_id: Set(registration.client_id.clone()),
            key_id: Set(key.id().to_owned()),
            registered_at: Set(Utc::now()),
        };
        // The first registration stored wins: of two callers (or nodes)
        // that registered at once, every grant must use one client.
        oauth_client::Entity::insert(row)
            .on_conflict(
                OnConflict::column(oauth_client::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets a registration the server no longer knows (`invalid_client`).
    pub async fn forget_client_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<(), StoreError> {
        oauth_client::Entity::delete_by_id(hex_sha256(&[issuer, redirect_uri]))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Seals every OAuth record again with the current key, as
    /// `rotate_key` does sessions; how many it re-sealed. Each update
    /// applies only if the row still holds what was read, so a refresh
    /// stored meanwhile is kept (and is sealed with the current key).
    pub(super) async fn reseal_oauth_records(&self) -> Result<u64, StoreError> {
        let current = self.keys.current();
        let mut resealed = 0;
        let opened = |key_id: &str, sealed: &str, context: &str, what: &str| {
            let corrupt = |reason| StoreError::Corrupt {
                id: what.to_owned(),
                reason,
            };
            self.keys
                .find(key_id)
                .ok_or_else(|| corrupt("sealed with a key that is not configured"))?
                .open(sealed, context.as_bytes())
                .map_err(|_| corrupt("does not open with the key that sealed it"))
        };
        for row in oauth_state::Entity::find()
            .filter(oauth_state::Column::KeyId.ne(current.id()))
            .all(&self.db)
            .await?
        {
            let context = format!("oauth-state:{}", row.state_digest);
            let plain = opened(
                &row.key_id,
                &row.verifier,
                &context,
                "an authorization state",
            )?;
            resealed += oauth_state::Entity::update_many()
                .col_expr(
                    oauth_state::Column::Verifier,
                    Expr::value(current.seal(plain.expose_secret(), context.as_bytes())),
                )
                .col_expr(oauth_state::Column::KeyId, Expr::value(current.id()))
                .filter(oauth_state::Column::StateDigest.eq(row.state_digest.as_str()))
                .filter(oauth_state::Column::Verifier.eq(row.verifier.as_str()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        for row in oauth_grant::Entity::find()
            .filter(oauth_grant::Column::KeyId.ne(current.id()))
            .all(&self.db)
            .await?
        {
            let context = grant_context(&row.holder, &row.server);
            let what = format!("grant of {} for {}", row.holder, row.server);
            let plain = opened(&row.key_id, &row.tokens, &context, &what)?;
            resealed += oauth_grant::Entity::update_many()
                .col_expr(
                    oauth_grant::Column::Tokens,
                    Expr::value(current.seal(plain.expose_secret(), context.as_bytes())),
                )
                .col_expr(oauth_grant::Column::KeyId, Expr::value(current.id()))
                .filter(oauth_grant::Column::Holder.eq(row.holder.as_str()))
                .filter(oauth_grant::Column::Server.eq(row.server.as_str()))
                .filter(oauth_grant::Column::Tokens.eq(row.tokens.as_str()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        for row in oauth_client::Entity::find()
            .filter(oauth_client::Column::KeyId.ne(current.id()))
            .all(&self.db)
            .await?
        {
            let context = format!("oauth-client:{}", row.id);
            let sealed = match &row.client_secret {
                Some(sealed) => {
                    let what = format!("client registration with {}", row.issuer);
                    let plain = opened(&row.key_id, sealed, &context, &what)?;
                    Some(current.seal(plain.expose_secret(), context.as_bytes()))
                }
                None => None,
            };
            resealed += oauth_client::Entity::update_many()
                .col_expr(oauth_client::Column::ClientSecret, Expr::value(sealed))
                .col_expr(oauth_client::Column::KeyId, Expr::value(current.id()))
                .filter(oauth_client::Column::Id.eq(row.id.as_str()))
                .filter(oauth_client::Column::KeyId.eq(row.key_id.as_str()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(resealed)
    }
}
