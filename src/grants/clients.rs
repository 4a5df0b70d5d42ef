//! mcp-mux as the client of each backend's authorization server: what
//! discovery found, how mcp-mux is registered there, and the `oauth2`
//! client made of both, kept a while per backend and callback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use url::Url;

use super::{CALLBACK_PATH, CLIENT_METADATA_PATH, GrantError, under};
use crate::oauth::client::{ClientSettings, OAuthClient};
use crate::oauth::discovery::Discovery;
use crate::oauth::registration::{self, Registration};
use crate::registry::{Endpoint, ServerConfig};
use crate::store::{ClientRegistration, Store};

/// How long a client is used before discovery runs again.
const CLIENT_TTL: Duration = Duration::from_secs(3600);
/// Clients kept at most: one per backend and callback URL in practice.
const MAX_CLIENTS: usize = 1024;

/// Clients by backend and callback URL, with when each was made.
type ClientCache = HashMap<(String, String), (Instant, Arc<OAuthClient>)>;

pub(super) struct Clients {
    discovery: Discovery,
    public_url: Option<Url>,
    cache: Mutex<ClientCache>,
}

impl Clients {
    pub(super) fn new(discovery: Discovery, public_url: Option<Url>) -> Self {
        Clients {
            discovery,
            public_url,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client that speaks for mcp-mux to `server`'s authorization
    /// server, for the callback `redirect_uri`.
    pub(super) async fn get(
        &self,
        store: &Store,
        http: &reqwest::Client,
        server: &ServerConfig,
        redirect_uri: &Url,
    ) -> Result<Arc<OAuthClient>, GrantError> {
        let key = (server.name.clone(), redirect_uri.to_string());
        if let Some((made, client)) = self.lock().get(&key)
            && made.elapsed() < CLIENT_TTL
        {
            return Ok(client.clone());
        }
        let client = Arc::new(self.make(store, http, server, redirect_uri).await?);
        let mut cache = self.lock();
        if cache.len() >= MAX_CLIENTS {
            cache.retain(|_, (made, _)| made.elapsed() < CLIENT_TTL);
            if cache.len() >= MAX_CLIENTS {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), client.clone()));
        Ok(client)
    }

    /// Drops what is known of `server`'s client for `redirect_uri`, and a
    /// dynamic registration the authorization server no longer knows.
    pub(super) async fn forget(
        &self,
        store: &Store,
        server: &str,
        client: &OAuthClient,
    ) -> Result<(), GrantError> {
        let settings = client.settings();
        self.lock()
            .remove(&(server.to_owned(), settings.redirect_uri.to_string()));
        store
            .forget_client_registration(&settings.server.issuer, settings.redirect_uri.as_str())
            .await?;
        Ok(())
    }

    /// Drops every client of `server` kept in memory: the next one is made
    /// from a new discovery.
    pub(super) fn forget_server(&self, server: &str) {
        self.lock().retain(|(name, _), _| name != server);
    }

    async fn make(
        &self,
        store: &Store,
        http: &reqwest::Client,
        server: &ServerConfig,
        redirect_uri: &Url,
    ) -> Result<OAuthClient, GrantError> {
        let oauth = server.auth.oauth().ok_or_else(|| GrantError::NotOAuth {
            server: server.name.clone(),
        })?;
        let url = match &server.endpoint {
            Endpoint::StreamableHttp { url } | Endpoint::HttpSse { url } => url,
            Endpoint::Stdio(_) => {
                return Err(GrantError::NotOAuth {
                    server: server.name.clone(),
                });
            }
        };
        let discovered = self.discovery.discover(url).await?;
        let metadata = discovered.server.clone();
        let scopes = if oauth.scopes.is_empty() {
            discovered.scopes.clone()
        } else {
            oauth.scopes.clone()
        };
        let document_url = self.document_url();
        let registration =
            registration::choose(&metadata, oauth.client_id.is_some(), document_url.as_ref())
                .ok_or_else(|| GrantError::NoRegistration {
                    issuer: metadata.issuer.clone(),
                })?;
        let (client_id, client_secret) = match registration {
            Registration::Registry => (
                oauth.client_id.clone().unwrap_or_default(),
                oauth.client_secret.as_ref().map(|secret| secret.0.clone()),
            ),
            Registration::MetadataDocument => {
                (document_url.map(String::from).unwrap_or_default(), None)
            }
            Registration::Dynamic => {
                match store
                    .client_registration(&metadata.issuer, redirect_uri.as_str())
                    .await?
                {
                    Some(known) => (known.client_id, known.client_secret),
                    None => {
                        let registered =
                            registration::register(http, &metadata, redirect_uri, &scopes).await?;
                        store
                            .save_client_registration(&ClientRegistration {
                                issuer: metadata.issuer.clone(),
                                redirect_uri: redirect_uri.to_string(),
                                client_id: registered.client_id.clone(),
                                client_secret: registered.client_secret.clone(),
                            })
                            .await?;
                        // Another caller may have stored its own first:
                        // that one is the client every grant uses.
                        match store
                            .client_registration(&metadata.issuer, redirect_uri.as_str())
                            .await?
                        {
                            Some(stored) => (stored.client_id, stored.client_secret),
                            None => (registered.client_id, registered.client_secret),
                        }
                    }
                }
            }
        };
        Ok(OAuthClient::new(
            ClientSettings {
                client_id,
                client_secret,
                server: metadata,
                redirect_uri: redirect_uri.clone(),
                resource: oauth.send_resource.then_some(discovered.resource),
                scopes,
                authorize_params: oauth.authorize_params.clone(),
            },
            http.clone(),
        ))
    }

    /// Where mcp-mux's Client ID Metadata Document is served: only under
    /// an https public URL, since the document's URL is the client's id.
    fn document_url(&self) -> Option<Url> {
        let base = self
            .public_url
            .as_ref()
            .filter(|url| url.scheme() == "https")?;
        Url::parse(&under(base, CLIENT_METADATA_PATH)).ok()
    }

    pub(super) fn metadata_document(&self) -> Option<serde_json::Value> {
        let client_id = self.document_url()?;
        let base = self.public_url.as_ref()?;
        let callback = Url::parse(&under(base, CALLBACK_PATH)).ok()?;
        Some(registration::metadata_document(&client_id, &callback))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
