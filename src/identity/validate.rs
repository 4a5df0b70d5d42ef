//! Whether a host's access token proves who it says: a JWT signed by a
//! trusted issuer's published key with an asymmetric algorithm, for one
//! of the accepted audiences, within its time (a minute's leeway), with
//! the scopes asked for.

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::issuer::TrustedIssuer;
use crate::oauth::discovery::Discovery;

/// Longest token looked at: real ones are one or two KiB.
pub(super) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock difference allowed on `exp` and `nbf`.
pub(super) const LEEWAY_SECONDS: u64 = 60;
/// The signature algorithms accepted: public-key ones only. `none` and
/// the HMAC family never are, so that a token cannot be signed with a
/// published key taken as a shared secret.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub scopes: Vec<String>,
}

/// A token found valid for the audiences asked for, and until when.
#[derive(Debug, Clone)]
pub struct Verified {
    pub identity: Identity,
    /// Its `exp`, in seconds since 1970.
    pub expires_at: i64,
}

/// Why a token proves nothing; the message is what the challenge says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("the token is over {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token is not a JWT mcp-mux can read: {0}")]
    Malformed(String),
    #[error("the token is signed with {0}, which is not accepted (public-key signatures only)")]
    Algorithm(String),
    #[error("the token's issuer is not one this gateway trusts")]
    UnknownIssuer,
    #[error("the token names a key its issuer does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token lacks scopes; it needs {0}")]
    InsufficientScope(String),
    #[error("the authorization server does not know the token, or it is no longer active")]
    Inactive,
    #[error("the token could not be checked: {0}")]
    Unchecked(String),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    scope: Option<String>,
    /// Entra and others: the scopes as a list (or a string).
    #[serde(default)]
    scp: Option<serde_json::Value>,
}

/// Only the issuer, read before the signature is checked: to choose the
/// keys that check it.
#[derive(Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    iss: Option<String>,
}

/// Checks tokens against the trusted issuers.
pub struct Validator {
    issuers: Vec<TrustedIssuer>,
    discovery: Discovery,
}

impl Validator {
    pub fn new(issuers: Vec<TrustedIssuer>, discovery: Discovery) -> Self {
        Validator { issuers, discovery }
    }

    /// Who `token` (a JWT: see [`jwt_algorithm`]) proves the caller is,
    /// when it is for one of `audiences` and carries every scope of
    /// `required`.
    pub async fn validate(
        &self,
        token: &str,
        audiences: &[&str],
        required: &[String],
    ) -> Result<Identity, TokenRefusal> {
        let verified = self.verify(token, audiences).await?;
        check_scopes(&verified.identity.scopes, required)?;
        Ok(verified.identity)
    }

    /// Who `token` proves the caller is, when it is for one of
    /// `audiences`, whatever its scopes.
    pub async fn verify(&self, token: &str, audiences: &[&str]) -> Result<Verified, TokenRefusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRefusal::TooLarge);
        }
        let Some(algorithm) = jwt_algorithm(token) else {
            return Err(TokenRefusal::Malformed("it is not a JWT".into()));
        };
        if !ACCEPTED
            .iter()
            .any(|accepted| format!("{accepted:?}") == algorithm)
        {
            return Err(TokenRefusal::Algorithm(algorithm));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| TokenRefusal::Malformed(error.to_string()))?;
        let issuer = self.issuer_of(token)?.ok_or(TokenRefusal::UnknownIssuer)?;
        let jwk = issuer
            .key(&self.discovery, header.kid.as_deref())
            .await
            .ok_or(TokenRefusal::UnknownKey)?;
        // A key published for one algorithm verifies no other.
        if let Some(published) = jwk.common.key_algorithm
            && format!("{published:?}") != format!("{:?}", header.alg)
        {
            return Err(TokenRefusal::Algorithm(format!("{:?}", header.alg)));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenRefusal::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| refusal_of(error.kind()))?
            .claims;
        Ok(Verified {
            identity: Identity {
                scopes: scopes_of(&claims),
                issuer: claims.iss,
                subject: claims.sub,
            },
            expires_at: claims.exp,
        })
    }

    /// The trusted issuer the token's (unverified) `iss` names, if any.
    fn issuer_of(&self, token: &str) -> Result<Option<&TrustedIssuer>, TokenRefusal> {
        let payload = token
            .split('.')
            .nth(1)
            .ok_or_else(|| TokenRefusal::Malformed("it has no claims".into()))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRefusal::Malformed("its claims are not base64url".into()))?;
        let claims: IssuerOnly = serde_json::from_slice(&bytes)
            .map_err(|_| TokenRefusal::Malformed("its claims are not JSON".into()))?;
        Ok(claims
            .iss
            .and_then(|iss| self.issuers.iter().find(|trusted| trusted.issuer == iss)))
    }
}

/// The `alg` of a token shaped as a JWT (three base64url parts, the first
/// a JSON header naming one); None for any other token, which may be an
/// opaque one for introspection.
pub fn jwt_algorithm(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, _, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// Every scope of `required` among `granted`, or the refusal naming the
/// whole set needed (a client asks for all of them again at once).
pub fn check_scopes(granted: &[String], required: &[String]) -> Result<(), TokenRefusal> {
    if required.iter().all(|scope| granted.contains(scope)) {
        Ok(())
    } else {
        Err(TokenRefusal::InsufficientScope(required.join(" ")))
    }
}

/// The scopes a token grants: `scope` (space-separated), else `scp`.
fn scopes_of(claims: &Claims) -> Vec<String> {
    if let Some(scope) = &claims.scope {
        return scope.split_whitespace().map(str::to_owned).collect();
    }
    match &claims.scp {
        Some(serde_json::Value::String(scope)) => {
            scope.split_whitespace().map(str::to_owned).collect()
        }
        Some(serde_json::Value::Array(scopes)) => scopes
            .iter()
            .filter_map(|scope| scope.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn refusal_of(kind: &ErrorKind) -> TokenRefusal {
    match kind {
        ErrorKind::ExpiredSignature => TokenRefusal::Expired,
        ErrorKind::ImmatureSignature => TokenRefusal::NotYetValid,
        ErrorKind::InvalidAudience => TokenRefusal::WrongAudience,
        ErrorKind::InvalidIssuer => TokenRefusal::UnknownIssuer,
        ErrorKind::InvalidSignature => TokenRefusal::BadSignature,
        ErrorKind::InvalidAlgorithm => TokenRefusal::Algorithm("another algorithm".into()),
        ErrorKind::MissingRequiredClaim(claim) => {
            TokenRefusal::Malformed(format!("it has no \"{claim}\" claim"))
        }
        other => TokenRefusal::Malformed(format!("{other:?}")),
    }
}
