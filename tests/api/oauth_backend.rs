//! A protected MCP backend with its own authorization server, for the
//! session sign-in tests: an rmcp server behind a bearer check, RFC 9728
//! and RFC 8414 metadata, dynamic registration, an authorization endpoint
//! that approves at once, a token endpoint with PKCE, rotating refresh
//! tokens and reuse detection, and revocation. Each way a real server
//! misbehaves is an option.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::EchoServer;

/// How the authorization server behaves.
#[derive(Clone)]
pub struct AuthServerOptions {
    /// Whether its metadata offers PKCE with S256.
    pub s256: bool,
    /// Access tokens' lifetime.
    pub expires_in: Duration,
    /// Whether a refresh is refused with `invalid_grant`.
    pub refuse_refresh: bool,
    /// Whether the token endpoint answers something that is not JSON.
    pub garbage_tokens: bool,
    /// Whether dynamic registration is refused.
    pub refuse_registration: bool,
    /// The `iss` the callback carries: the issuer, another, or none.
    pub iss: Iss,
    /// A scope calls need: a token without it gets 403 `insufficient_scope`.
    pub required_scope: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Iss {
    Issuer,
    Other,
    Missing,
}

impl Default for AuthServerOptions {
    fn default() -> Self {
        AuthServerOptions {
            s256: true,
            expires_in: Duration::from_secs(3600),
            refuse_refresh: false,
            garbage_tokens: false,
            refuse_registration: false,
            iss: Iss::Issuer,
            required_scope: None,
        }
    }
}

/// What the authorization server and the backend saw.
#[derive(Default)]
pub struct Counts {
    pub registrations: AtomicUsize,
    pub codes_redeemed: AtomicUsize,
    pub refreshes: AtomicUsize,
    pub refresh_reuses: AtomicUsize,
    pub revocations: AtomicUsize,
    pub refused_calls: AtomicUsize,
}

struct AuthState {
    options: AuthServerOptions,
    origin: String,
    counts: Arc<Counts>,
    next: AtomicUsize,
    /// Code → its PKCE challenge and the scope asked for.
    codes: Mutex<HashMap<String, (String, String)>>,
    /// Access tokens the backend takes, until when, with their scope.
    access: Mutex<HashMap<String, (Instant, String)>>,
    /// The scope of the grant each refresh token continues.
    refresh_scopes: Mutex<HashMap<String, String>>,
    /// The refresh token each grant may use now, and those used before.
    refresh: Mutex<(HashSet<String>, HashSet<String>)>,
}

pub struct OAuthBackend {
    pub mcp_url: String,
    pub issuer: String,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OAuthBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the backend and its authorization server on one free port.
pub async fn spawn_oauth_backend(options: AuthServerOptions) -> OAuthBackend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    let counts = Arc::new(Counts::default());
    let state = Arc::new(AuthState {
        options,
        origin: origin.clone(),
        counts: counts.clone(),
        next: AtomicUsize::new(1),
        codes: Mutex::default(),
        access: Mutex::default(),
        refresh_scopes: Mutex::default(),
        refresh: Mutex::default(),
    });
    let mcp: StreamableHttpService<EchoServer, LocalSessionManager> = StreamableHttpService::new(
        || Ok(EchoServer::new("protected")),
        Default::default(),
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
    );
    let guarded =
        axum::Router::new()
            .nest_service("/mcp", mcp)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                bearer_check,
            ));
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .with_state(state)
        .merge(guarded);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    OAuthBackend {
        mcp_url: format!("{origin}/mcp"),
        issuer: origin,
        counts,
        task,
    }
}

type Shared = State<Arc<AuthState>>;

fn challenge_header(state: &AuthState) -> String {
    format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        state.origin
    )
}

async fn bearer_check(
    State(state): Shared,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let granted = presented.and_then(|token| {
        state
            .access
            .lock()
            .expect("lock")
            .get(&token)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, scope)| scope.clone())
    });
    if let Some(scope) = granted {
        match state.options.required_scope {
            Some(needed) if !scope.split(' ').any(|s| s == needed) => {
                let challenge = format!(
                    r#"Bearer error="insufficient_scope", scope="{scope} {needed}", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
                    state.origin
                );
                return (
                    StatusCode::FORBIDDEN,
                    [(header::WWW_AUTHENTICATE, challenge)],
                    "insufficient_scope",
                )
                    .into_response();
            }
            _ => return next.run(request).await,
        }
    }
    state.counts.refused_calls.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge_header(&state))],
        "invalid_token",
    )
        .into_response()
}

async fn resource_metadata(State(state): Shared) -> Response {
    axum_json(
        StatusCode::OK,
        json!({
            "resource": format!("{}/mcp", state.origin),
            "authorization_servers": [state.origin],
            "scopes_supported": ["echo"],
        }),
    )
}

async fn server_metadata(State(state): Shared) -> Response {
    let origin = &state.origin;
    let methods = if state.options.s256 {
        vec!["S256"]
    } else {
        vec!["plain"]
    };
    axum_json(
        StatusCode::OK,
        json!({
            "issuer": origin,
            "authorization_endpoint": format!("{origin}/authorize"),
            "token_endpoint": format!("{origin}/token"),
            "registration_endpoint": format!("{origin}/register"),
            "revocation_endpoint": format!("{origin}/revoke"),
            "code_challenge_methods_supported": methods,
            "authorization_response_iss_parameter_supported": true,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }),
    )
}

async fn register(State(state): Shared, body: Bytes) -> Response {
    if state.options.refuse_registration {
        return axum_json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_redirect_uri", "error_description": "redirect URIs must be https" }),
        );
    }
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    state.counts.registrations.fetch_add(1, Ordering::SeqCst);
    let id = state.next.fetch_add(1, Ordering::SeqCst);
    axum_json(
        StatusCode::CREATED,
        json!({ "client_id": format!("client-{id}"), "redirect_uris": request["redirect_uris"] }),
    )
}

fn query_of(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Approves at once: back to the client with a code, its state and `iss`.
async fn authorize(State(state): Shared, uri: Uri) -> Response {
    let query = query_of(&uri);
    let code = format!("code-{}", state.next.fetch_add(1, Ordering::SeqCst));
    state.codes.lock().expect("lock").insert(
        code.clone(),
        (
            query.get("code_challenge").cloned().unwrap_or_default(),
            query.get("scope").cloned().unwrap_or_default(),
        ),
    );
    let mut location = url::Url::parse(&query["redirect_uri"]).expect("redirect_uri");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map_or("", String::as_str));
    match state.options.iss {
        Iss::Issuer => {
            location.query_pairs_mut().append_pair("iss", &state.origin);
        }
        Iss::Other => {
            location
                .query_pairs_mut()
                .append_pair("iss", "https://evil.example");
        }
        Iss::Missing => {}
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

async fn token(State(state): Shared, body: Bytes) -> Response {
    if state.options.garbage_tokens {
        return (StatusCode::OK, "<html>not a token</html>").into_response();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let refused = |description: &str| {
        axum_json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_grant", "error_description": description }),
        )
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some((challenge, scope)) = form
                .get("code")
                .and_then(|code| state.codes.lock().expect("lock").remove(code))
            else {
                return refused("unknown code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return refused("code_verifier does not match the challenge");
            }
            state.counts.codes_redeemed.fetch_add(1, Ordering::SeqCst);
            issue(&state, scope)
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let mut refresh = state.refresh.lock().expect("lock");
            if refresh.1.contains(&presented) {
                // Reuse of a rotated token: the grant is revoked.
                state.counts.refresh_reuses.fetch_add(1, Ordering::SeqCst);
                refresh.0.clear();
                return refused("refresh token already used");
            }
            if state.options.refuse_refresh || !refresh.0.remove(&presented) {
                return refused("refresh token not found");
            }
            refresh.1.insert(presented.clone());
            drop(refresh);
            state.counts.refreshes.fetch_add(1, Ordering::SeqCst);
            let scope = state
                .refresh_scopes
                .lock()
                .expect("lock")
                .remove(&presented)
                .unwrap_or_default();
            issue(&state, scope)
        }
        _ => axum_json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unsupported_grant_type" }),
        ),
    }
}

/// New tokens: an access token the backend takes until it expires, and a
/// refresh token usable once.
fn issue(state: &AuthState, scope: String) -> Response {
    let id = state.next.fetch_add(1, Ordering::SeqCst);
    let access = format!("access-secret-{id}");
    let refresh = format!("refresh-secret-{id}");
    state.access.lock().expect("lock").insert(
        access.clone(),
        (Instant::now() + state.options.expires_in, scope.clone()),
    );
    state
        .refresh
        .lock()
        .expect("lock")
        .0
        .insert(refresh.clone());
    state
        .refresh_scopes
        .lock()
        .expect("lock")
        .insert(refresh.clone(), scope.clone());
    axum_json(
        StatusCode::OK,
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": state.options.expires_in.as_secs(),
            "refresh_token": refresh,
            "scope": scope,
        }),
    )
}

async fn revoke(State(state): Shared) -> Response {
    state.counts.revocations.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK.into_response()
}

fn axum_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
