//! What a backend session presents to its backend: a credential the
//! client gave at create-session, or the access token of an OAuth grant,
//! which the session's grant supplies and keeps fresh. The backend only
//! asks for the token and reports a refusal; it never refreshes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;

use super::error::BackendError;

/// An access token, or why there is none (the user must authorize the
/// backend, say).
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretString, BackendError>> + Send + 'a>>;

/// The access tokens of one session's grant for one backend.
pub trait AccessTokens: Send + Sync {
    /// The token to send now, refreshed first when it is about to expire.
    fn current(&self) -> TokenFuture<'_>;
    /// The backend answered 401 to `used`, with `challenge` (its
    /// `WWW-Authenticate`, if any): a fresher token (refreshed, or another
    /// caller's refresh), or why there is none.
    fn refused<'a>(&'a self, used: &'a SecretString, challenge: Option<&'a str>)
    -> TokenFuture<'a>;
    /// The backend answered 403 with `challenge` (its `WWW-Authenticate`):
    /// when it names scopes the grant lacks, why the user must authorize
    /// again (with them); else None, and the 403 stands.
    fn forbidden<'a>(&'a self, challenge: &'a str) -> StepUpFuture<'a>;
}

/// Why the user must authorize again, if a 403 says so.
pub type StepUpFuture<'a> = Pin<Box<dyn Future<Output = Option<BackendError>> + Send + 'a>>;

/// A backend session's credential.
#[derive(Clone)]
pub enum Credential {
    /// A token or API key, sent as the server's auth scheme says.
    Static(SecretString),
    /// The access token of an OAuth grant, as `Authorization: Bearer`.
    OAuth(Arc<dyn AccessTokens>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Static(_) => "Credential::Static([REDACTED])",
            Credential::OAuth(_) => "Credential::OAuth",
        })
    }
}
