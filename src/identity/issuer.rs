//! An authorization server the operator trusts: its metadata (RFC 8414,
//! else OpenID discovery, whose `issuer` must be the one configured) and
//! its signing keys, fetched at start, kept by `kid` and fetched again for
//! a key they do not hold, at most once a minute: a key the issuer rotates
//! in is taken at once, a made-up one costs one fetch a minute.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use url::Url;

use crate::oauth::discovery::{Discovery, DiscoveryError, require_https, server_metadata_urls};

/// Shortest time between two fetches of an issuer's keys for a `kid` it
/// did not publish: a token naming a made-up key costs one fetch a minute.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// The issuer metadata fields a resource server uses.
#[derive(Debug, Deserialize)]
struct IssuerMetadata {
    issuer: String,
    jwks_uri: Url,
    #[serde(default)]
    introspection_endpoint: Option<Url>,
}

/// An authorization server whose tokens mcp-mux accepts.
pub struct TrustedIssuer {
    pub issuer: String,
    pub jwks_uri: Url,
    /// For opaque tokens (RFC 7662), when the server offers it.
    pub introspection_endpoint: Option<Url>,
    keys: Mutex<Keys>,
}

struct Keys {
    set: JwkSet,
    /// When a token's unknown `kid` last made them be fetched again.
    refetched_at: Option<Instant>,
}

impl TrustedIssuer {
    /// Finds `issuer`'s metadata and keys.
    pub async fn discover(discovery: &Discovery, issuer: &str) -> Result<Self, DiscoveryError> {
        let issuer_url = Url::parse(issuer).map_err(|error| DiscoveryError::Malformed {
            url: issuer.to_owned(),
            reason: error.to_string(),
        })?;
        require_https(&issuer_url)?;
        let mut tried = Vec::new();
        for url in server_metadata_urls(&issuer_url) {
            match discovery.fetch::<IssuerMetadata>(&url).await {
                Ok(metadata) => {
                    if metadata.issuer != issuer {
                        return Err(DiscoveryError::IssuerMismatch {
                            url: url.to_string(),
                            found: metadata.issuer,
                            expected: issuer.to_owned(),
                        });
                    }
                    require_https(&metadata.jwks_uri)?;
                    let keys = discovery.fetch::<JwkSet>(&metadata.jwks_uri).await?;
                    let trusted = TrustedIssuer {
                        issuer: metadata.issuer,
                        jwks_uri: metadata.jwks_uri,
                        introspection_endpoint: metadata.introspection_endpoint,
                        keys: Mutex::new(Keys {
                            set: keys,
                            refetched_at: None,
                        }),
                    };
                    return Ok(trusted);
                }
                Err(DiscoveryError::Status { status: 404, .. }) => tried.push(url.to_string()),
                Err(error) => return Err(error),
            }
        }
        Err(DiscoveryError::NoServerMetadata {
            issuer: issuer.to_owned(),
            tried: tried.join(", "),
        })
    }

    /// The key `kid` names (or the only key, when the token names none),
    /// fetching the keys again for one not known yet, at most once a minute.
    pub async fn key(&self, discovery: &Discovery, kid: Option<&str>) -> Option<Jwk> {
        if let Some(key) = self.known_key(kid) {
            return Some(key);
        }
        {
            // Noted before the fetch: a failing one is not tried again at once either.
            let mut keys = self.lock();
            if keys
                .refetched_at
                .is_some_and(|at| at.elapsed() < REFETCH_AT_MOST_EVERY)
            {
                return None;
            }
            keys.refetched_at = Some(Instant::now());
        }
        if let Err(error) = self.refetch_keys(discovery).await {
            tracing::warn!(issuer = %self.issuer, %error, "could not fetch the issuer's keys");
        }
        self.known_key(kid)
    }

    fn known_key(&self, kid: Option<&str>) -> Option<Jwk> {
        let keys = self.lock();
        match kid {
            Some(kid) => keys.set.find(kid).cloned(),
            None if keys.set.keys.len() == 1 => keys.set.keys.first().cloned(),
            None => None,
        }
    }

    async fn refetch_keys(&self, discovery: &Discovery) -> Result<(), DiscoveryError> {
        let set = discovery.fetch::<JwkSet>(&self.jwks_uri).await?;
        self.lock().set = set;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
