//! Each session's OAuth grants for its backends: the link that sends the
//! session's user to a backend's authorization server, the callback that
//! keeps what they granted, and the access tokens calls carry, refreshed
//! by one caller at a time across every node that shares the store.
//!
//! Everything a node needs to carry on is in the store (pending requests,
//! grants, client registrations): any node takes any callback, and a
//! refresh claimed in the store is made once however many nodes ask.

mod clients;
mod flow;
mod live;
mod service;
mod tokens;

use std::time::Duration;

pub use flow::{Callback, CallbackError, Connected};
pub use service::Grants;
pub use tokens::SessionGrant;

use crate::oauth::client::TokenError;
use crate::oauth::discovery::DiscoveryError;
use crate::oauth::registration::RegistrationError;
use crate::store::StoreError;

/// How long the user has to complete an authorization once it began.
const AUTHORIZATION_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a one-time authorization link stays valid.
const LINK_TTL: Duration = Duration::from_secs(60 * 60);
/// The callback's path on the gateway.
pub const CALLBACK_PATH: &str = "/oauth/callback";
/// Where mcp-mux serves its Client ID Metadata Document under its public URL.
pub const CLIENT_METADATA_PATH: &str = "/oauth/client-metadata.json";

/// Why mcp-mux cannot send the user to authorize a backend, or get it a token.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("{0}")]
    Registration(#[from] RegistrationError),
    #[error(
        "authorization server {issuer} offers no dynamic client registration, and takes no client metadata document at an https --public-url; register a client by hand and set auth.client_id"
    )]
    NoRegistration { issuer: String },
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("backend \"{server}\" does not sign in with OAuth")]
    NotOAuth { server: String },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

/// `path` (from `/`) under `base`, which may or may not end in `/`.
fn under(base: &url::Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}
