//! Hosts that sign in to mcp-mux: the access tokens they present, checked
//! against the authorization servers the operator trusts. A JWT is
//! verified with its issuer's published keys (an asymmetric algorithm
//! only, never `none` or a shared secret), for its issuer, audience, time
//! and scopes; what it proves is an [`Identity`].

mod issuer;
mod validate;

pub use issuer::TrustedIssuer;
pub use validate::{Identity, TokenRefusal, Validator};
