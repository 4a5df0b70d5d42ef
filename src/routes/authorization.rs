//! The pages a session's user opens in a browser to connect an OAuth
//! backend: `GET /session/<id>/authorize/<server>` sends them to the
//! backend's authorization server, and `GET /oauth/callback` is where it
//! sends them back. `GET /oauth/client-metadata.json` is mcp-mux's Client
//! ID Metadata Document, for authorization servers that take one.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use url::Url;
use utoipa::IntoParams;

use super::access::{Access, bearer_token};
use super::headers::request_cookie;
use super::session_access::check_session_access;
use super::session_id::{SessionPath, short_id};
use super::ui::html::{esc, page};
use crate::grants::{CALLBACK_PATH, Callback, CallbackError};
use crate::mux::Mux;

/// What a used, expired or foreign one-time key gets.
const LINK_USED: &str = "this authorization link was used already or has expired; GET /session/<id> or the tool call's error gives a new one";

/// The page for a store that does not answer.
fn store_unavailable(error: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(%error, "the store did not answer an authorization link");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Cannot authorize",
        None,
        r#"<p class="error">the gateway's store does not answer; try again shortly</p>"#,
    )
}

/// The parameters of a query, each given once: a second value is refused
/// rather than one of them silently taken.
fn query_params(request: &HttpRequest) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(request.query_string().as_bytes()) {
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(format!("{name}: is given twice"));
        }
    }
    Ok(params)
}

/// The one-time key of an authorization link.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query, which `query_params` reads.
pub struct LinkQuery {
    /// Needed when the session requires a token (unless the request
    /// carries it): the link's one-time key.
    #[serde(default)]
    key: Option<String>,
    /// Scopes to ask for besides the usual ones, space-separated: those a
    /// backend said the grant lacks.
    #[serde(default)]
    scope: Option<String>,
}

/// Sends the user to the authorization server of one of the session's
/// OAuth backends. A session that requires a token needs it here too, or
/// the link's one-time key.
#[utoipa::path(get, path = "/session/{id}/authorize/{server}", tag = "authorization",
    operation_id = "authorize_session_backend",
    params(
        ("id" = String, Path, description = "The session's id"),
        ("server" = String, Path, description = "One of the session's OAuth backends"),
        LinkQuery,
    ),
    responses(
        (status = 302, description = "To the backend's authorization server", headers(("Location" = String))),
        (status = 401, description = "The session requires its token or the link's key", content_type = "text/html", body = String),
        (status = 403, description = "The link's key was used already, has expired, or is for another session or server", content_type = "text/html", body = String),
        (status = 404, description = "No such session, or no such OAuth backend in it", content_type = "text/html", body = String),
        (status = 502, description = "The backend's authorization server could not be found or used", content_type = "text/html", body = String),
    ))]
pub async fn authorize(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> HttpResponse {
    let (id, server_name) = path.into_inner();
    let refuse = |status, message: &str| {
        page(
            status,
            "Cannot authorize",
            None,
            &format!(r#"<p class="error">{}</p>"#, esc(message)),
        )
    };
    let mut query = match query_params(&request) {
        Ok(query) => query,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let (key, scope) = (query.remove("key"), query.remove("scope"));
    let Ok(path) = SessionPath::parse(&id) else {
        return refuse(StatusCode::NOT_FOUND, "no such session");
    };
    let session = match mux.session(path.id).await {
        Ok(Some(session)) => session,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "no such session"),
        Err(error) => return store_unavailable(&error),
    };
    let Some(server) = session
        .servers
        .iter()
        .find(|server| server.name == server_name && server.auth.oauth().is_some())
    else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("this session has no OAuth backend \"{server_name}\""),
        );
    };
    // A session with a token or an owner: its link is for its holder only.
    if session.token_digest.is_some() || session.owner.is_some() {
        let allowed = match (&key, bearer_token(&request)) {
            (Some(key), _) => match mux
                .grants()
                .link_key_opens(key, session.id, &server.name)
                .await
            {
                Ok(opens) => opens,
                Err(error) => return store_unavailable(&error),
            },
            (None, Some(_)) => {
                access.check_admin(&request).is_ok()
                    || check_session_access(&request, &session, || {
                        super::error::ApiError::NotFound {
                            message: String::new(),
                        }
                    })
                    .await
                    .is_ok()
            }
            (None, None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "this session requires a token: open the authorization link with its one-time key, as the session's holder got it",
                );
            }
        };
        if !allowed {
            return refuse(StatusCode::FORBIDDEN, LINK_USED);
        }
    }
    let Ok(redirect_uri) = Url::parse(&access.public_url(&request, CALLBACK_PATH)) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the request's Host cannot make a callback URL",
        );
    };
    let more_scopes: Vec<String> = scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect();
    if !more_scopes
        .iter()
        .all(|scope| crate::oauth::is_scope(scope))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "scope: a scope is one word of printable characters, without quotes or backslashes",
        );
    }
    match mux
        .grants()
        .begin(
            session.id,
            &session.grant_holder(),
            server,
            &redirect_uri,
            &more_scopes,
        )
        .await
    {
        Ok(url) => {
            // The key is used up once the user is on their way; of two
            // openings at once, one goes.
            if let Some(key) = &key {
                match mux
                    .grants()
                    .take_link_key(key, session.id, &server.name)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return refuse(StatusCode::FORBIDDEN, LINK_USED),
                    Err(error) => return store_unavailable(&error),
                }
            }
            tracing::info!(session = %short_id(session.id), server = %server.name, "authorization begun");
            let mut found = HttpResponse::Found();
            found.insert_header((header::LOCATION, url.as_str()));
            if let Some((_, state)) = url.query_pairs().find(|(name, _)| name == "state") {
                found.insert_header((
                    header::SET_COOKIE,
                    browser_cookie(&state, access.is_https(), false),
                ));
            }
            found.finish()
        }
        Err(error) => {
            tracing::warn!(server = %server.name, %error, "an authorization could not begin");
            refuse(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "mcp-mux cannot send you to \"{}\"'s authorization server: {error}",
                    server.name
                ),
            )
        }
    }
}

/// Where the authorization server sends the user back: the `state` must
/// be one mcp-mux issued (once, within 10 minutes) and `iss` its issuer.
#[utoipa::path(get, path = "/oauth/callback", tag = "authorization",
    operation_id = "finish_backend_authorization",
    params(
        ("state" = Option<String>, Query, description = "The state mcp-mux sent"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("iss" = Option<String>, Query, description = "RFC 9207: the issuer that answered"),
        ("error" = Option<String>, Query, description = "Why the authorization server did not authorize"),
        ("error_description" = Option<String>, Query, description = "Its words on why"),
    ),
    responses(
        (status = 200, description = "The backend is connected to the session", content_type = "text/html", body = String),
        (status = 400, description = "The callback is not one mcp-mux can use: unknown, used or expired state, another issuer, a refusal", content_type = "text/html", body = String),
        (status = 502, description = "The token endpoint refused, failed or answered garbage", content_type = "text/html", body = String),
    ))]
pub async fn callback(
    request: HttpRequest,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> HttpResponse {
    let outcome = match query_params(&request) {
        Ok(mut query) => {
            let callback = Callback {
                state: query.remove("state"),
                code: query.remove("code"),
                iss: query.remove("iss"),
                error: query.remove("error"),
                error_description: query.remove("error_description"),
            };
            match &callback.state {
                Some(state) if !began_in_this_browser(&request, state) => {
                    Err(CallbackError::OtherBrowser)
                }
                _ => mux.complete_authorization(&callback).await,
            }
        }
        Err(message) => Err(CallbackError::Query(message)),
    };
    match outcome {
        Ok(connected) => with_cookie_cleared(
            &request,
            &access,
            page(
                StatusCode::OK,
                "Connected",
                None,
                &format!(
                    "<p>{} is connected to this session; you can close this tab.</p>",
                    esc(&connected.server)
                ),
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "an authorization callback failed");
            let status = if error.is_bad_callback() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            page(
                status,
                "Not connected",
                None,
                &format!(r#"<p class="error">{}</p>"#, esc(&error.to_string())),
            )
        }
    }
}

/// The name of the cookie that ties an authorization to the browser that
/// began it: named after its `state`, so that several may run at once.
fn browser_cookie_name(state: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(state.as_bytes()));
    format!("mcp_mux_oauth_{}", &digest[..16])
}

/// The `Set-Cookie` value of that cookie, sent only to the callback, or
/// the one that clears it once the callback used it.
fn browser_cookie(state: &str, secure: bool, clear: bool) -> String {
    format!(
        "{}={}; Path={CALLBACK_PATH}; HttpOnly; SameSite=Lax; Max-Age={}{}",
        browser_cookie_name(state),
        if clear { "" } else { "1" },
        if clear { 0 } else { 600 },
        if secure { "; Secure" } else { "" }
    )
}

/// Whether the callback comes from the browser that opened the link. A
/// browser (which says so in `Sec-Fetch-Mode`) must carry the cookie the
/// link set: else someone sent it an authorization begun elsewhere, whose
/// end would attach this browser's account to another's session. A script
/// (curl, an SDK) sends no fetch metadata, keeps no cookies, and opens
/// only links it was given.
fn began_in_this_browser(request: &HttpRequest, state: &str) -> bool {
    request.headers().get("sec-fetch-mode").is_none()
        || request_cookie(request, &browser_cookie_name(state)).is_some()
}

fn with_cookie_cleared(
    request: &HttpRequest,
    access: &Access,
    mut page: HttpResponse,
) -> HttpResponse {
    let state = query_params(request)
        .ok()
        .and_then(|mut query| query.remove("state"));
    if let Some(state) = state
        && let Ok(value) =
            header::HeaderValue::from_str(&browser_cookie(&state, access.is_https(), true))
    {
        page.headers_mut().append(header::SET_COOKIE, value);
    }
    page
}

/// mcp-mux's Client ID Metadata Document: its URL is mcp-mux's client id
/// with authorization servers that take one. Served under an https
/// `--public-url` only.
#[utoipa::path(get, path = "/oauth/client-metadata.json", tag = "authorization",
    operation_id = "get_oauth_client_metadata",
    responses(
        (status = 200, description = "The document", content_type = "application/json", body = Object),
        (status = 404, description = "No https --public-url: mcp-mux has no such document", body = super::error::ErrorBody,
            example = json!({"error": "not_found", "message": "mcp-mux serves its client metadata document only under an https --public-url"})),
    ))]
pub async fn client_metadata(mux: web::Data<Mux>) -> HttpResponse {
    match mux.grants().client_metadata_document() {
        Some(document) => HttpResponse::Ok().json(document),
        None => actix_web::ResponseError::error_response(&super::error::ApiError::NotFound {
            message: "mcp-mux serves its client metadata document only under an https --public-url"
                .into(),
        }),
    }
}
