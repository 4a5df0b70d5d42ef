//! Hosts that sign in: each signed-in session's URL is an OAuth protected
//! resource (RFC 9728 metadata, RFC 6750 challenges), and the management
//! routes take a signed-in user's token for their own sessions.
//!
//! - A session URL takes only its owner's access tokens, issued for that
//!   URL (or the operator's audience) with the scopes it requires. Without
//!   one: 401 naming the metadata; a bad one: 401 `invalid_token`; too few
//!   scopes: 403 `insufficient_scope`; another user's: the unknown
//!   session's 404, so that a session's existence does not leak.
//! - `POST /create-session`, `GET /sessions` and `GET`/`DELETE
//!   /session/<id>` take a token for the gateway itself with the sessions
//!   scope: the caller sees and deletes only their own sessions.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::{Access, bearer_token};
use super::error::ApiError;
use super::route::Route;
use super::session_id::{SessionPath, mcp_endpoint};
use crate::identity::{Identity, TokenRefusal};
use crate::mux::{Mux, Session};
use crate::store::Owner;

/// Where Protected Resource Metadata lives; a resource's path follows it.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Who a request's access token proved the caller is, for the session it
/// names; kept in the request's extensions by the guard.
#[derive(Clone)]
pub struct SignedIn {
    pub session: uuid::Uuid,
    pub identity: Arc<Identity>,
}

/// Who called a management route.
#[derive(Clone)]
pub enum Caller {
    /// The admin token, or no admin token is set.
    Admin,
    /// A signed-in user, with the sessions scope: their own sessions only.
    User(Arc<Identity>),
}

impl Caller {
    /// The owner whose sessions the caller may see: None for the admin (all).
    pub fn owner(&self) -> Option<Owner> {
        match self {
            Caller::Admin => None,
            Caller::User(identity) => Some(owner_of(identity)),
        }
    }

    /// Whether the caller may see and delete `session`'s.
    pub fn may_use(&self, owner: Option<&Owner>) -> bool {
        match self {
            Caller::Admin => true,
            Caller::User(identity) => owner.is_some_and(|owner| *owner == owner_of(identity)),
        }
    }
}

/// The caller a management route's guard let in (the admin, when none is
/// recorded: a route reached without the guard, in a unit test).
pub fn caller(request: &HttpRequest) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Admin)
}

pub fn owner_of(identity: &Identity) -> Owner {
    Owner {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
    }
}

/// The URL a session's hosts use, the `resource` their tokens are for.
pub fn session_resource(access: &Access, request: &HttpRequest, id: uuid::Uuid) -> String {
    access.public_url(request, &mcp_endpoint(id))
}

/// The gateway's own URL, without a trailing slash: the management API's
/// resource.
fn gateway_resource(access: &Access, request: &HttpRequest) -> String {
    access.public_url(request, "")
}

/// A `WWW-Authenticate: Bearer` challenge: `error` (with its description)
/// when a token was presented, where the resource's metadata is, and the
/// scopes needed.
fn challenge(metadata: &str, scopes: &[String], refusal: Option<&TokenRefusal>) -> String {
    let mut parts = Vec::new();
    if let Some(refusal) = refusal {
        let error = match refusal {
            TokenRefusal::InsufficientScope(_) => "insufficient_scope",
            _ => "invalid_token",
        };
        parts.push(format!("error=\"{error}\""));
        parts.push(format!(
            "error_description=\"{}\"",
            refusal.to_string().replace(['"', '\\'], "'")
        ));
    }
    parts.push(format!("resource_metadata=\"{metadata}\""));
    if !scopes.is_empty() {
        parts.push(format!("scope=\"{}\"", scopes.join(" ")));
    }
    format!("Bearer {}", parts.join(", "))
}

/// The answer to a missing or refused token for a resource.
fn refused(
    metadata: &str,
    scopes: &[String],
    refusal: Option<TokenRefusal>,
    what: &str,
) -> ApiError {
    let challenge = challenge(metadata, scopes, refusal.as_ref());
    match refusal {
        None => ApiError::Unauthorized {
            challenge: challenge.into(),
            message: format!(
                "{what} needs an OAuth access token: sign in (its resource metadata is at {metadata}) and send Authorization: Bearer <access token>"
            )
            .into(),
        },
        Some(refusal @ TokenRefusal::InsufficientScope(_)) => ApiError::InsufficientScope {
            challenge,
            message: refusal.to_string(),
        },
        Some(refusal @ TokenRefusal::Unchecked(_)) => ApiError::IssuerUnavailable {
            message: refusal.to_string(),
        },
        Some(refusal) => ApiError::Unauthorized {
            challenge: challenge.into(),
            message: refusal.to_string().into(),
        },
    }
}

/// Whether a request may use a signed-in session: its owner's token for
/// its URL with the scopes it requires. Another user's valid token gets
/// `not_found`, what an unknown session gets.
pub async fn check_owner(
    request: &HttpRequest,
    session: &Session,
    not_found: impl FnOnce() -> ApiError,
) -> Result<Arc<Identity>, ApiError> {
    if let Some(signed_in) = request.extensions().get::<SignedIn>()
        && signed_in.session == session.id
    {
        return Ok(signed_in.identity.clone());
    }
    let Some(access) = request.app_data::<web::Data<Access>>() else {
        return Err(not_found());
    };
    let Some(sign_in) = access.sign_in() else {
        return Err(ApiError::Unauthorized {
            challenge: "Bearer realm=\"mcp-mux session\"".into(),
            message: "this session belongs to a signed-in user, and this gateway trusts no OAuth issuer now (--oauth-issuer)".into(),
        });
    };
    let metadata = access.public_url(request, &session_metadata_path(session.id));
    let scopes = sign_in.session_scopes();
    let Some(token) = bearer_token(request) else {
        return Err(refused(&metadata, scopes, None, "this session"));
    };
    let resource = session_resource(access, request, session.id);
    let identity = sign_in
        .check(token, &[&resource], scopes)
        .await
        .map_err(|refusal| refused(&metadata, scopes, Some(refusal), "this session"))?;
    if !session
        .owner
        .as_ref()
        .is_some_and(|owner| *owner == owner_of(&identity))
    {
        return Err(not_found());
    }
    request.extensions_mut().insert(SignedIn {
        session: session.id,
        identity: identity.clone(),
    });
    Ok(identity)
}

/// Who may call a management route: the admin token (or anyone, when none
/// is set and no token is sent), or, on the routes a user may call, a
/// signed-in user's token for the gateway with the sessions scope.
pub async fn check_management(
    access: &Access,
    request: &HttpRequest,
    route: Route,
) -> Result<Caller, ApiError> {
    let self_service = matches!(
        route,
        Route::CreateSession | Route::Sessions | Route::Session
    );
    let sign_in = access
        .sign_in()
        .filter(|sign_in| self_service && sign_in.sessions_scope().is_some());
    let Some(sign_in) = sign_in else {
        return access.check_admin(request).map(|()| Caller::Admin);
    };
    let metadata = access.public_url(request, METADATA_PATH);
    let scopes: Vec<String> = sign_in
        .sessions_scope()
        .map(str::to_owned)
        .into_iter()
        .collect();
    let Some(token) = bearer_token(request) else {
        // Say where a user signs in, beside the admin token.
        return access.check_admin(request).map(|()| Caller::Admin).map_err(|error| match error {
            ApiError::Unauthorized { challenge, .. } => ApiError::Unauthorized {
                challenge: format!(
                    "{challenge}, resource_metadata=\"{metadata}\", scope=\"{}\"",
                    scopes.join(" ")
                )
                .into(),
                message: format!(
                    "this route needs Authorization: Bearer <admin token>, or a signed-in user's access token with the scope {} (its resource metadata is at {metadata})",
                    scopes.join(" ")
                )
                .into(),
            },
            other => other,
        });
    };
    if access.is_admin_token(token) {
        return access.check_admin(request).map(|()| Caller::Admin);
    }
    access.check_not_throttled(request)?;
    let resource = gateway_resource(access, request);
    let with_slash = format!("{resource}/");
    match sign_in
        .check(token, &[&resource, &with_slash], &scopes)
        .await
    {
        Ok(identity) => Ok(Caller::User(identity)),
        Err(refusal) => {
            // An issuer that did not answer says nothing of the caller.
            if !matches!(refusal, TokenRefusal::Unchecked(_)) {
                access.note_wrong_token(request);
            }
            Err(refused(&metadata, &scopes, Some(refusal), "this route"))
        }
    }
}

/// The Protected Resource Metadata path of a session's URL.
pub fn session_metadata_path(id: uuid::Uuid) -> String {
    format!("{METADATA_PATH}{}", mcp_endpoint(id))
}

/// RFC 9728 Protected Resource Metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceMetadata {
    /// The URL the metadata is about, exactly as clients use it.
    resource: String,
    /// The issuers whose tokens it takes.
    authorization_servers: Vec<String>,
    /// The scopes its tokens need; left out when none is (a client would
    /// otherwise ask for an empty scope).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    /// Only the `Authorization` header carries a token.
    // utoipa puts a list's examples on its items.
    #[schema(examples("header"))]
    bearer_methods_supported: Vec<&'static str>,
}

fn metadata_response(metadata: ResourceMetadata) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .json(metadata)
}

fn not_found(message: &str) -> HttpResponse {
    use actix_web::ResponseError;
    let mut response = ApiError::NotFound {
        message: message.into(),
    }
    .error_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

/// The management API as a protected resource: the audience of the tokens
/// signed-in users manage their own sessions with.
#[utoipa::path(get, path = "/.well-known/oauth-protected-resource", tag = "sign-in",
    operation_id = "get_gateway_resource_metadata",
    responses(
        (status = 200, description = "The management API's metadata", body = ResourceMetadata),
        (status = 404, description = "No OAuth issuer is configured", body = super::error::ErrorBody,
            example = json!({"error": "not_found", "message": "this gateway trusts no OAuth issuer"})),
    ))]
pub async fn gateway_metadata(request: HttpRequest, access: web::Data<Access>) -> HttpResponse {
    let Some(sign_in) = access.sign_in() else {
        return not_found("this gateway trusts no OAuth issuer");
    };
    metadata_response(ResourceMetadata {
        resource: gateway_resource(&access, &request),
        authorization_servers: sign_in.issuers().to_vec(),
        scopes_supported: sign_in
            .sessions_scope()
            .map(str::to_owned)
            .into_iter()
            .collect(),
        bearer_methods_supported: vec!["header"],
    })
}

/// A signed-in session's URL as a protected resource; unknown sessions and
/// sessions that need no sign-in (they take a session token, or nothing)
/// have none.
#[utoipa::path(get, path = "/.well-known/oauth-protected-resource/session/{id}/mcp", tag = "sign-in",
    operation_id = "get_session_resource_metadata",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session URL's metadata", body = ResourceMetadata),
        (status = 404, description = "No such signed-in session", body = super::error::ErrorBody,
            example = json!({"error": "not_found", "message": "no session signs in at this URL"})),
    ))]
pub async fn session_metadata(
    request: HttpRequest,
    path: web::Path<String>,
    access: web::Data<Access>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    const NONE: &str = "no session signs in at this URL";
    let Some(sign_in) = access.sign_in() else {
        return Ok(not_found(NONE));
    };
    let Ok(path) = SessionPath::parse(&path) else {
        return Ok(not_found(NONE));
    };
    match mux.session(path.id).await? {
        Some(session) if session.needs_sign_in() => Ok(metadata_response(ResourceMetadata {
            resource: session_resource(&access, &request, session.id),
            authorization_servers: sign_in.issuers().to_vec(),
            scopes_supported: sign_in.session_scopes().to_vec(),
            bearer_methods_supported: vec!["header"],
        })),
        _ => Ok(not_found(NONE)),
    }
}

/// A browser's preflight for the metadata.
#[utoipa::path(options, path = "/.well-known/oauth-protected-resource", tag = "sign-in",
    operation_id = "preflight_gateway_resource_metadata",
    responses((status = 204, description = "Any origin may GET it")))]
pub async fn gateway_metadata_preflight() -> HttpResponse {
    metadata_preflight()
}

/// A browser's preflight for a session URL's metadata.
#[utoipa::path(options, path = "/.well-known/oauth-protected-resource/session/{id}/mcp", tag = "sign-in",
    operation_id = "preflight_session_resource_metadata",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 204, description = "Any origin may GET it")))]
pub async fn session_metadata_preflight() -> HttpResponse {
    metadata_preflight()
}

/// The answer to a browser's preflight (a client that sends
/// `MCP-Protocol-Version` with its GET causes one): any origin may read.
fn metadata_preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "*"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// A token in the query string (`access_token`, RFC 6750 §2.3) is refused
/// on every route: URLs end up in logs and browser histories.
pub fn refuse_query_token(request: &HttpRequest) -> Result<(), ApiError> {
    let carries_token = url::form_urlencoded::parse(request.query_string().as_bytes())
        .any(|(name, _)| name == "access_token");
    if carries_token {
        Err(query_token_refused())
    } else {
        Ok(())
    }
}

/// The 400 of a request with `access_token` in its query string.
pub(super) fn query_token_refused() -> ApiError {
    ApiError::bad_request(
        "access_token",
        "tokens are not taken in the query string; send Authorization: Bearer <token>",
    )
}

/// Who the request's token proved its caller is, if it was checked: for
/// spans and log lines, which show the subject, never the token.
pub fn signed_in_identity(request: &HttpRequest) -> Option<Arc<Identity>> {
    request
        .extensions()
        .get::<SignedIn>()
        .map(|signed_in| signed_in.identity.clone())
}
