//! Who may use a session: its session token when it requires one, its
//! owner's access token when it belongs to a signed-in user
//! (`sign_in.rs`), or anyone who knows its URL when it requires neither.
//! Checked before a body is read, and again where the session is used.

use std::sync::Arc;

use actix_web::{HttpMessage, HttpRequest};
use subtle::ConstantTimeEq;

use super::access::{bearer_token, token_digest};
use super::error::ApiError;
use super::rate_limit::charge_session_rate;
use super::session_id::SessionPath;
use super::sign_in::check_owner;
use crate::mux::{Mux, Session};

const SESSION_CHALLENGE: &str = "Bearer realm=\"mcp-mux session\"";
/// A static-token session's 401 says what it needs, in words a person
/// reads in a host's error: no OAuth sign-in will help it.
const SESSION_TOKEN_NEEDED: &str = "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth";
const SESSION_TOKEN_WRONG: &str =
    "the session token is wrong: send the one create-session showed for this session";

/// Checks the bearer token a session requires on its MCP endpoint, if it
/// requires one (`digest` is the stored SHA-256 of it).
fn check_session_token(request: &HttpRequest, digest: Option<&[u8; 32]>) -> Result<(), ApiError> {
    let Some(digest) = digest else {
        return Ok(());
    };
    match bearer_token(request) {
        None => Err(session_token_missing()),
        Some(presented) if bool::from(token_digest(presented).ct_eq(digest)) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized {
            challenge: format!(
                "{SESSION_CHALLENGE}, error=\"invalid_token\", error_description=\"{SESSION_TOKEN_WRONG}\""
            )
            .into(),
            message: SESSION_TOKEN_WRONG.into(),
        }),
    }
}

/// The 401 of a session that requires its token, asked without one.
pub(super) fn session_token_missing() -> ApiError {
    ApiError::Unauthorized {
        challenge: format!("{SESSION_CHALLENGE}, error_description=\"{SESSION_TOKEN_NEEDED}\"")
            .into(),
        message: SESSION_TOKEN_NEEDED.into(),
    }
}

/// A session the guard looked up and let the request use, kept in the
/// request's extensions so that the handler need neither look again nor
/// check the token again (None: there is no such session).
#[derive(Clone)]
struct LookedUp(uuid::Uuid, Option<Arc<Session>>);

/// The session token, or the owner's access token, of the session a path
/// names, before the body is read: a client without it gets its 401 at
/// once, not after sending (or failing to send) a whole body. A path that
/// names no session, or a store that does not answer, is left to the
/// handler.
pub async fn check_session_access_first(
    request: &HttpRequest,
    raw_id: &str,
    mux: &Mux,
) -> Result<(), ApiError> {
    let Ok(path) = SessionPath::parse(raw_id) else {
        return Ok(());
    };
    let Ok(session) = mux.session(path.id).await else {
        return Ok(());
    };
    if let Some(session) = &session {
        check_session_access(request, session, || path.not_found()).await?;
    }
    request.extensions_mut().insert(LookedUp(path.id, session));
    Ok(())
}

/// The session a path names, if the request may use it: with its token,
/// when it requires one (or its owner's access token), and within its
/// rate. The token is checked first: requests without it must not use up
/// the holder's rate.
pub async fn usable_session(
    request: &HttpRequest,
    path: SessionPath<'_>,
    mux: &Mux,
) -> Result<Arc<Session>, ApiError> {
    let looked_up = request
        .extensions()
        .get::<LookedUp>()
        .filter(|looked_up| looked_up.0 == path.id)
        .cloned();
    // A session the guard looked up had its token checked there already.
    let (session, token_checked) = match looked_up {
        Some(LookedUp(_, session)) => (session, true),
        None => (mux.session(path.id).await?, false),
    };
    let session = session.ok_or_else(|| path.not_found())?;
    if !token_checked {
        check_session_access(request, &session, || path.not_found()).await?;
    }
    charge_session_rate(request, &session, 1)?;
    Ok(session)
}

/// Whether a request may use `session`: with its session token when it
/// requires one, with its owner's access token when it belongs to a
/// signed-in user (another user's gets `not_found`, an unknown session's
/// answer).
pub async fn check_session_access(
    request: &HttpRequest,
    session: &Session,
    not_found: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    if session.needs_sign_in() {
        // Boxed: token validation may fetch keys, a future far larger than
        // the session-token check most calls take.
        Box::pin(check_owner(request, session, not_found))
            .await
            .map(drop)
    } else {
        check_session_token(request, session.token_digest.as_ref())
    }
}
