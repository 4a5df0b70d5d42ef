//! The grants of every session, as one node holds them: what it knows of
//! each backend's authorization server, the access tokens it holds, and the
//! links that send a session's user to authorize a backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use url::Url;
use uuid::Uuid;

use super::clients::Clients;
use super::live::Live;
use super::{LINK_TTL, under};
use crate::oauth::discovery::Discovery;
use crate::store::{Store, StoreError};

/// The grants of every session, and what mcp-mux knows of each backend's
/// authorization server.
pub struct Grants {
    pub(super) store: Store,
    /// Follows no redirect: metadata and token answers must come from
    /// where they were asked for.
    pub(super) http: reqwest::Client,
    pub(super) clients: Clients,
    /// The base of authorization links shown outside a request (in an
    /// error a call gets): `--public-url`, else the address listened on.
    link_base: Mutex<Option<Url>>,
    /// By holder key and server.
    live: Mutex<HashMap<(String, String), Arc<Live>>>,
}

impl Grants {
    /// `public_url` is `--public-url`: under an https one, mcp-mux serves
    /// its Client ID Metadata Document.
    pub fn new(store: Store, public_url: Option<Url>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Grants {
            store,
            clients: Clients::new(Discovery::new(http.clone()), public_url.clone()),
            http,
            link_base: Mutex::new(public_url),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the base of authorization links when no public URL is set:
    /// the address mcp-mux listens on.
    pub fn listening_on(&self, address: std::net::SocketAddr) {
        let mut base = self
            .link_base
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if base.is_none() {
            // Listening on every interface: this machine, as its own users reach it.
            let host = if address.ip().is_unspecified() {
                format!("localhost:{}", address.port())
            } else {
                address.to_string()
            };
            *base = Url::parse(&format!("http://{host}")).ok();
        }
    }

    /// The path of the link that sends the user to authorize `server` for
    /// a session (a one-time `key` when the session needs a token; `scope`
    /// when the backend asked for more than the grant has).
    pub fn link_path(
        session_id: Uuid,
        server: &str,
        key: Option<&str>,
        scope: Option<&str>,
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(key) = key {
            query.append_pair("key", key);
        }
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
        let query = query.finish();
        let path = format!("/session/{session_id}/authorize/{server}");
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }

    /// The link to authorize `server` as mcp-mux shows it outside a request.
    pub(super) fn link(
        &self,
        session_id: Uuid,
        server: &str,
        key: Option<&str>,
        scope: Option<&str>,
    ) -> String {
        let path = Self::link_path(session_id, server, key, scope);
        match &*self
            .link_base
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(base) => under(base, &path),
            None => path,
        }
    }

    /// A one-time key for the authorization link of `server`, for a
    /// session that requires a token: its holder may open the link once.
    pub async fn issue_link_key(
        &self,
        session_id: Uuid,
        server: &str,
    ) -> Result<String, StoreError> {
        let key = oauth2::CsrfToken::new_random_len(32).into_secret();
        let expires_at = chrono::Utc::now()
            + chrono::Duration::from_std(LINK_TTL).unwrap_or_else(|_| chrono::Duration::hours(1));
        self.store
            .insert_authorization_link(&key.clone().into(), session_id, server, expires_at)
            .await?;
        Ok(key)
    }

    /// Whether a link's one-time key opens `server` of the session, without
    /// using it up (a link checker that opens it, or a failure before the
    /// user reaches the authorization server, must not waste it).
    pub async fn link_key_opens(
        &self,
        key: &str,
        session_id: Uuid,
        server: &str,
    ) -> Result<bool, StoreError> {
        self.store
            .authorization_link_opens(key, session_id, server, chrono::Utc::now())
            .await
    }

    /// Uses up a link's one-time key; true if it opens `server` of the session.
    pub async fn take_link_key(
        &self,
        key: &str,
        session_id: Uuid,
        server: &str,
    ) -> Result<bool, StoreError> {
        self.store
            .take_authorization_link(key, session_id, server, chrono::Utc::now())
            .await
    }

    /// mcp-mux's Client ID Metadata Document, when it has an https public URL.
    pub fn client_metadata_document(&self) -> Option<serde_json::Value> {
        self.clients.metadata_document()
    }

    fn lock_live(&self) -> MutexGuard<'_, HashMap<(String, String), Arc<Live>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The in-memory state of one grant.
    pub(super) fn live(&self, holder: &str, server: &str) -> Arc<Live> {
        self.lock_live()
            .entry((holder.to_owned(), server.to_owned()))
            .or_default()
            .clone()
    }

    /// Forgets grants taken out of the store, in memory.
    pub fn forget(&self, grants: &[crate::store::StoredGrant]) {
        let mut live = self.lock_live();
        for grant in grants {
            live.remove(&(grant.holder.clone(), grant.server.clone()));
        }
    }
}
