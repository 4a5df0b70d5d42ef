//! The rules both HTTP transports follow: every request carries the
//! session's credential, a request names its backend session in headers,
//! and a failed or refused request becomes one `BackendError` (a 404, or a
//! 400 that says so, means the backend forgot the session).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, RequestBuilder, Response, ResponseBuilderExt};
use secrecy::{ExposeSecret, SecretString};

use crate::backend::connections::SessionConnections;
use crate::backend::credential::{AccessTokens, Credential};
use crate::backend::error::BackendError;
use crate::backend::http_client::{self, HttpClients};
use crate::mcp::{PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER};
use crate::registry::{AuthScheme, ServerConfig};
use crate::traces;

/// Longest `Retry-After` taken from a backend; anything longer is past every
/// retry budget anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How much of a 400 body is read to find whether it names an unknown session.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// What every request to an HTTP backend needs.
pub(super) struct Http {
    pub(super) server: Arc<ServerConfig>,
    clients: HttpClients,
    auth: Auth,
    /// Shared by every backend.
    pub(super) connections: Arc<SessionConnections>,
}

/// How requests carry the session's credential.
enum Auth {
    None,
    /// The same header on every request.
    Header(HeaderName, SecretString),
    /// `Authorization: Bearer` with the grant's current access token.
    Grant(Arc<dyn AccessTokens>),
}

/// The headers that place a message in a backend session.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionHeaders {
    pub(super) session_id: Option<HeaderValue>,
    pub(super) protocol_version: Option<HeaderValue>,
}

/// Why a body could not be read.
pub(super) enum ReadError {
    TooLarge,
    Broken(String),
}

impl Http {
    /// `credential` must already satisfy the server's auth scheme (checked
    /// at create-session): a bearer token or an API key becomes a header.
    pub(super) fn new(
        server: Arc<ServerConfig>,
        clients: HttpClients,
        credential: Option<Credential>,
        connections: Arc<SessionConnections>,
    ) -> Self {
        let auth = match (&server.auth, credential) {
            (AuthScheme::Bearer, Some(Credential::Static(token))) => Auth::Header(
                reqwest::header::AUTHORIZATION,
                SecretString::from(format!("Bearer {}", token.expose_secret())),
            ),
            (AuthScheme::ApiKey { header }, Some(Credential::Static(key))) => {
                match HeaderName::from_bytes(header.as_bytes()) {
                    Ok(name) => Auth::Header(name, key),
                    Err(_) => Auth::None,
                }
            }
            (AuthScheme::OAuth(_), Some(Credential::OAuth(tokens))) => Auth::Grant(tokens),
            _ => Auth::None,
        };
        Http {
            server,
            clients,
            auth,
            connections,
        }
    }

    /// A request from this thread's client, carrying the session's
    /// credential and the trace context of the exchange it is made in.
    /// Refused, unsent, when the credential cannot be a header (checked at
    /// create-session, so only a session stored before that check), or
    /// when an OAuth backend's grant has no access token to give.
    pub(super) async fn request(
        &self,
        method: Method,
        url: url::Url,
    ) -> Result<RequestBuilder, BackendError> {
        Ok(self.request_with_token(method, url).await?.0)
    }

    /// [`Http::request`], and the OAuth access token it carries.
    async fn request_with_token(
        &self,
        method: Method,
        url: url::Url,
    ) -> Result<(RequestBuilder, Option<SecretString>), BackendError> {
        let request = self.traced(method, url);
        match &self.auth {
            Auth::None => Ok((request, None)),
            Auth::Header(name, secret) => Ok((self.with_header(request, name, secret)?, None)),
            Auth::Grant(tokens) => {
                let token = tokens.current().await?;
                let request = self.with_bearer(request, &token)?;
                Ok((request, Some(token)))
            }
        }
    }

    /// Sends a request that `finish` completes (headers, body) and returns
    /// its answer. An OAuth backend that refuses the access token (401) is
    /// asked once more with a fresher one: it did not act on the first.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &url::Url,
        finish: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, BackendError> {
        let (request, token) = self.request_with_token(method.clone(), url.clone()).await?;
        let response = self.dispatch(finish(request)).await?;
        let (Auth::Grant(tokens), Some(used)) = (&self.auth, token) else {
            return Ok(response);
        };
        let status = response.status();
        if status != reqwest::StatusCode::FORBIDDEN && status != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        // Read only for a refusal: most answers are not.
        let challenges: Vec<String> = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        if status == reqwest::StatusCode::FORBIDDEN {
            for challenge in &challenges {
                if let Some(error) = tokens.forbidden(challenge).await {
                    return Err(error);
                }
            }
            return Ok(response);
        }
        let fresh = tokens
            .refused(&used, challenges.first().map(String::as_str))
            .await?;
        let request = self.traced(method, url.clone());
        self.dispatch(finish(self.with_bearer(request, &fresh)?))
            .await
    }

    /// Sends a built request: over plain HTTP through this thread's
    /// hyper-util client (see `http_client`), else through reqwest.
    async fn dispatch(&self, request: RequestBuilder) -> Result<Response, BackendError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|error| self.send_error(&error))?;
        let plain = request.url().scheme() == "http" && request.timeout().is_none();
        let Some(direct) = plain.then(|| self.clients.direct()).flatten() else {
            return client
                .execute(request)
                .await
                .map_err(|error| self.send_error(&error));
        };
        let url = request.url().clone();
        let mut request: http::Request<reqwest::Body> = request
            .try_into()
            .map_err(|error| self.send_error(&error))?;
        request
            .headers_mut()
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(http_client::USER_AGENT));
        match direct.request(request).await {
            Ok(response) => Ok(answered_from(url, response.map(reqwest::Body::wrap))),
            Err(error) if error.is_connect() => Err(BackendError::Connect {
                server: self.server.name.clone(),
            }),
            Err(error) => Err(self.broken(describe(&error))),
        }
    }

    /// A request from this thread's client with the trace context of the
    /// exchange it is made in, and no credential yet.
    fn traced(&self, method: Method, url: url::Url) -> RequestBuilder {
        with_trace_headers(
            self.clients.get().request(method, url),
            traces::current_headers(),
        )
    }

    fn with_header(
        &self,
        request: RequestBuilder,
        name: &HeaderName,
        secret: &SecretString,
    ) -> Result<RequestBuilder, BackendError> {
        let Ok(mut value) = HeaderValue::from_str(secret.expose_secret()) else {
            return Err(self.unsent(
                "the session's credential",
                "cannot be sent in a header; create the session again",
            ));
        };
        value.set_sensitive(true);
        Ok(request.header(name.clone(), value))
    }

    fn with_bearer(
        &self,
        request: RequestBuilder,
        token: &SecretString,
    ) -> Result<RequestBuilder, BackendError> {
        let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        else {
            return Err(self.unsent(
                "the access token",
                "the authorization server issued one that cannot be sent in a header",
            ));
        };
        value.set_sensitive(true);
        Ok(request.header(reqwest::header::AUTHORIZATION, value))
    }

    /// The error for a request that could not be built: it never left.
    pub(super) fn unsent(&self, field: &str, problem: &str) -> BackendError {
        BackendError::Unsent {
            server: self.server.name.clone(),
            field: field.to_owned(),
            problem: problem.to_owned(),
        }
    }

    /// The error for a request that got no answer.
    pub(super) fn send_error(&self, error: &reqwest::Error) -> BackendError {
        let server = self.server.name.clone();
        if error.is_builder() {
            // Every value a client controls is checked before it gets here
            // (`mcp::client_values`); should one slip through, the request
            // still never left and the backend is not to blame.
            tracing::warn!(server = %server, cause = %describe(error), "a backend request could not be built");
            self.unsent("a header", "holds a value that cannot be sent")
        } else if error.is_connect() {
            BackendError::Connect { server }
        } else if error.is_timeout() {
            BackendError::Timeout {
                server,
                timeout: self.server.timeout,
            }
        } else {
            self.broken(describe(error))
        }
    }

    /// The error for a request the backend refused: it did not act on it.
    /// `in_session` when the request named a backend session, which a 404,
    /// or a 400 whose body says so, shows the backend has forgotten.
    pub(super) async fn status_error(&self, response: Response, in_session: bool) -> BackendError {
        let server = self.server.name.clone();
        let status = response.status().as_u16();
        match status {
            404 if in_session => BackendError::SessionExpired { server },
            400 if in_session => {
                let body = read_limited(response, MAX_REFUSAL_BYTES)
                    .await
                    .unwrap_or_default();
                if names_an_unknown_session(&String::from_utf8_lossy(&body)) {
                    BackendError::SessionExpired { server }
                } else {
                    BackendError::Status {
                        server,
                        status,
                        retry_after: None,
                    }
                }
            }
            401 | 403 => BackendError::Unauthorized { server, status },
            _ => BackendError::Status {
                server,
                status,
                retry_after: parse_retry_after(response.headers()),
            },
        }
    }

    pub(super) fn read_error(&self, error: ReadError) -> BackendError {
        match error {
            ReadError::TooLarge => self.protocol("the answer exceeds the 16 MiB size limit"),
            ReadError::Broken(reason) => self.broken(reason),
        }
    }

    pub(super) fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.server.name.clone(),
            reason: reason.to_owned(),
        }
    }

    /// The connection broke mid-exchange: the backend may or may not have
    /// acted. The cause is logged here, not sent to the client.
    pub(super) fn broken(&self, cause: String) -> BackendError {
        tracing::warn!(server = %self.server.name, %cause, "backend connection broke");
        BackendError::Transport {
            server: self.server.name.clone(),
            cause,
        }
    }
}

/// The MCP headers as names: a header named by a `&str` has its name parsed
/// anew, on every request and answer.
pub(super) const SESSION_ID: HeaderName = HeaderName::from_static(SESSION_ID_HEADER);
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static(PROTOCOL_VERSION_HEADER);

impl SessionHeaders {
    pub(super) fn apply(&self, mut request: RequestBuilder) -> RequestBuilder {
        if let Some(session_id) = &self.session_id {
            request = request.header(SESSION_ID, session_id.clone());
        }
        if let Some(version) = &self.protocol_version {
            request = request.header(PROTOCOL_VERSION, version.clone());
        }
        request
    }
}

/// `request` with W3C trace context headers; one that cannot be a header
/// is left out, as malformed trace context is, rather than fail the request.
pub(super) fn with_trace_headers(
    mut request: RequestBuilder,
    headers: Vec<(&'static str, String)>,
) -> RequestBuilder {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            request = request.header(name, value);
        }
    }
    request
}

pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// reqwest's answer around hyper-util's, marked with the URL it answers.
/// Unmarked, reqwest parses a placeholder URL for every answer.
fn answered_from(url: url::Url, response: http::Response<reqwest::Body>) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut marked = http::response::Builder::new().url(url);
    if let Some(mark) = marked.extensions_mut() {
        parts.extensions.extend(std::mem::take(mark));
    }
    Response::from(http::Response::from_parts(parts, body))
}

/// An HTTP client's error with its cause chain but without the URL, which
/// may carry a secret the operator put in the registry.
pub(super) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::from("request failed");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) async fn read_limited(response: Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| ReadError::Broken(describe(&error)))?;
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` in delta-seconds, capped; an HTTP date is treated as absent.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// Whether a 400 body says the MCP session is unknown, as some backends do
/// instead of answering 404.
fn names_an_unknown_session(body: &str) -> bool {
    const PHRASES: [&str; 6] = [
        "session not found",
        "no valid session",
        "invalid session id",
        "unknown session",
        "session expired",
        "session has expired",
    ];
    let body = body.to_ascii_lowercase();
    PHRASES.iter().any(|phrase| body.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_400_about_the_mcp_session_counts_as_expired() {
        assert!(names_an_unknown_session(
            r#"{"error":"Bad Request: No valid session ID provided"}"#
        ));
        assert!(names_an_unknown_session("Session not found"));
        assert!(!names_an_unknown_session("invalid session_name argument"));
        assert!(!names_an_unknown_session("bad request"));
    }
}
