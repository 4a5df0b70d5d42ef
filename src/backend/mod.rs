//! One MCP client per backend session: Streamable HTTP with JSON and SSE
//! answers, the session's credential, a timeout on every call, retries, and
//! transparent re-initialization when the backend forgets the session.

pub mod error;
mod retry;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use error::{BackendError, Replay};

use crate::mcp::jsonrpc::{self, ErrorObject, IncomingMessage};
use crate::mcp::sse::SseDecoder;
use crate::mcp::version;
use crate::registry::{AuthScheme, ServerConfig};

const MCP_SESSION_ID: &str = "mcp-session-id";
const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// Largest answer (JSON body or one SSE event) accepted from a backend.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A backend's answer to a request: its result untouched, or its JSON-RPC error.
#[derive(Debug)]
pub enum Reply {
    Result(Box<RawValue>),
    Error(ErrorObject),
}

/// How hard to try opening a backend session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// Retry transient failures under the server's retry policy.
    WithRetries,
    /// One attempt: a client request is waiting on a backend known to be down.
    Once,
}

/// What mcp-mux tells a backend about itself on `initialize`.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub capabilities: Value,
}

/// What the backend said when it was initialized.
#[derive(Debug, Clone, Default)]
pub struct Initialized {
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
}

#[derive(Debug, Default)]
struct Connection {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    /// Bumped by every successful initialize, so that concurrent callers that
    /// all saw the session expire re-initialize it only once.
    generation: u64,
}

/// mcp-mux's MCP session with one backend, on behalf of one client MCP session.
pub struct BackendSession {
    server: Arc<ServerConfig>,
    http: reqwest::Client,
    auth_header: Option<(HeaderName, SecretString)>,
    identity: ClientIdentity,
    connection: std::sync::Mutex<Connection>,
    reinitializing: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for BackendSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendSession")
            .field("server", &self.server.name)
            .finish_non_exhaustive()
    }
}

/// Whether a POST opens the backend session or runs inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initialize,
    InSession,
}

/// Outcome of one HTTP exchange.
enum Answer {
    /// A notification or response was accepted (202).
    Accepted,
    Message {
        message: IncomingMessage,
        session_id: Option<HeaderValue>,
    },
}

impl BackendSession {
    /// A session not yet initialized. `credential` must already satisfy the
    /// server's auth scheme (checked at create-session).
    pub fn new(
        server: Arc<ServerConfig>,
        http: reqwest::Client,
        credential: Option<SecretString>,
        identity: ClientIdentity,
    ) -> Self {
        let auth_header = match (&server.auth, credential) {
            (AuthScheme::Bearer, Some(token)) => Some((
                reqwest::header::AUTHORIZATION,
                SecretString::from(format!("Bearer {}", token.expose_secret())),
            )),
            (AuthScheme::ApiKey { header }, Some(key)) => HeaderName::from_bytes(header.as_bytes())
                .ok()
                .map(|name| (name, key)),
            _ => None,
        };
        BackendSession {
            server,
            http,
            auth_header,
            identity,
            connection: std::sync::Mutex::new(Connection::default()),
            reinitializing: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn server(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// Opens the backend session: `initialize`, then `notifications/initialized`.
    pub async fn initialize(&self, attempts: Attempts) -> Result<Initialized, BackendError> {
        let params = json!({
            "protocolVersion": version::LATEST,
            "capabilities": self.identity.capabilities,
            "clientInfo": { "name": "mcp-mux", "version": env!("CARGO_PKG_VERSION") },
        });
        let attempt = || self.exchange("initialize", Some(&params), Phase::Initialize);
        let (reply, session_id) = match attempts {
            Attempts::WithRetries => {
                retry::with_retries(&self.server.retry, Replay::Safe, attempt).await?
            }
            Attempts::Once => attempt().await?,
        };
        let result = match reply {
            Reply::Result(raw) => raw,
            Reply::Error(error) => {
                return Err(BackendError::Initialize {
                    server: self.server.name.clone(),
                    error,
                });
            }
        };
        let result: Value = serde_json::from_str(result.get())
            .map_err(|_| self.protocol("initialize result is not JSON"))?;
        let protocol_version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| self.protocol("initialize result has no protocolVersion"))?
            .to_owned();
        {
            let mut connection = self.lock_connection();
            connection.session_id = session_id;
            connection.protocol_version = HeaderValue::from_str(&protocol_version).ok();
            connection.generation += 1;
        }
        self.notify("notifications/initialized", None).await?;
        Ok(Initialized {
            protocol_version,
            capabilities: result
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
            server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Sends a request and waits for its answer. Transient failures are
    /// retried as `replay` allows; an expired backend session is
    /// re-initialized once and the request replayed (the backend refused it
    /// unseen, so this cannot run anything twice).
    pub async fn request(
        &self,
        method: &str,
        params: Option<&Value>,
        replay: Replay,
    ) -> Result<Reply, BackendError> {
        let mut reinitialized = false;
        loop {
            let generation = self.lock_connection().generation;
            let outcome = retry::with_retries(&self.server.retry, replay, || {
                self.exchange(method, params, Phase::InSession)
            })
            .await;
            match outcome {
                Ok((reply, _)) => return Ok(reply),
                Err(BackendError::SessionExpired { .. }) if !reinitialized => {
                    reinitialized = true;
                    self.reinitialize(generation).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends a notification; the backend answers 202 with no body.
    pub async fn notify(&self, method: &str, params: Option<&Value>) -> Result<(), BackendError> {
        let body = jsonrpc::request(None, method, params);
        retry::with_retries(&self.server.retry, Replay::Safe, || async {
            match self.post(body.clone(), None, Phase::InSession).await? {
                Answer::Accepted | Answer::Message { .. } => Ok(()),
            }
        })
        .await
    }

    /// Ends the backend session with DELETE, as the transport asks clients to.
    /// Best effort: a backend that is gone has nothing to clean up.
    pub async fn close(&self) {
        let Some(session_id) = self.lock_connection().session_id.clone() else {
            return;
        };
        let mut request = self
            .http
            .delete(self.server.url.clone())
            .timeout(self.server.timeout)
            .header(MCP_SESSION_ID, session_id);
        if let Some(version) = self.lock_connection().protocol_version.clone() {
            request = request.header(MCP_PROTOCOL_VERSION, version);
        }
        if let Some(headers) = self.auth_headers() {
            request = request.headers(headers);
        }
        if let Err(error) = request.send().await {
            tracing::debug!(server = %self.server.name, error = %error.without_url(), "closing backend session failed");
        }
    }

    async fn reinitialize(&self, seen_generation: u64) -> Result<(), BackendError> {
        let _guard = self.reinitializing.lock().await;
        if self.lock_connection().generation != seen_generation {
            return Ok(());
        }
        tracing::info!(server = %self.server.name, "backend session expired; re-initializing");
        self.initialize(Attempts::WithRetries).await.map(|_| ())
    }

    /// One request/response exchange; returns the reply and the session id
    /// the backend issued, if it issued one.
    async fn exchange(
        &self,
        method: &str,
        params: Option<&Value>,
        phase: Phase,
    ) -> Result<(Reply, Option<HeaderValue>), BackendError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = jsonrpc::request(Some(id), method, params);
        match self.post(body, Some(id), phase).await? {
            Answer::Accepted => Err(self.protocol("answered a request with 202 and no response")),
            Answer::Message {
                message,
                session_id,
            } => {
                let reply = match (message.result, message.error) {
                    (Some(result), None) => Reply::Result(result),
                    (None, Some(error)) => Reply::Error(error),
                    _ => return Err(self.protocol("response has neither a result nor an error")),
                };
                Ok((reply, session_id))
            }
        }
    }

    /// POSTs one message within the server's timeout. `expected_id` is the
    /// id of the response to wait for (None for a notification).
    async fn post(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
    ) -> Result<Answer, BackendError> {
        let timeout = self.server.timeout;
        let call = self.post_unbounded(body, expected_id, phase);
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(BackendError::Timeout {
                server: self.server.name.clone(),
                timeout,
            }),
        }
    }

    async fn post_unbounded(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
    ) -> Result<Answer, BackendError> {
        // initialize opens a new backend session: it carries neither the old
        // session's id nor a negotiated version.
        let (session_id, protocol_version) = match phase {
            Phase::Initialize => (None, None),
            Phase::InSession => {
                let connection = self.lock_connection();
                (
                    connection.session_id.clone(),
                    connection.protocol_version.clone(),
                )
            }
        };
        let mut request = self
            .http
            .post(self.server.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body);
        if let Some(session_id) = &session_id {
            request = request.header(MCP_SESSION_ID, session_id.clone());
        }
        if let Some(version) = protocol_version {
            request = request.header(MCP_PROTOCOL_VERSION, version);
        }
        if let Some(headers) = self.auth_headers() {
            request = request.headers(headers);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.send_error(&error))?;
        let status = response.status();
        if status.is_success() {
            return self.read_answer(response, expected_id).await;
        }
        let server = self.server.name.clone();
        let had_session = session_id.is_some();
        match status.as_u16() {
            404 if had_session => Err(BackendError::SessionExpired { server }),
            400 if had_session => {
                // Some backends answer an unknown session with 400 instead of 404.
                let text = read_limited_text(response).await;
                if text.to_ascii_lowercase().contains("session") {
                    Err(BackendError::SessionExpired { server })
                } else {
                    Err(BackendError::Status {
                        server,
                        status: 400,
                        retry_after: None,
                    })
                }
            }
            401 | 403 => Err(BackendError::Unauthorized {
                server,
                status: status.as_u16(),
            }),
            code => Err(BackendError::Status {
                server,
                status: code,
                retry_after: parse_retry_after(response.headers()),
            }),
        }
    }

    async fn read_answer(
        &self,
        response: reqwest::Response,
        expected_id: Option<u64>,
    ) -> Result<Answer, BackendError> {
        let session_id = response.headers().get(MCP_SESSION_ID).cloned();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let Some(expected_id) = expected_id else {
            return Ok(Answer::Accepted);
        };
        if response.status() == reqwest::StatusCode::ACCEPTED {
            return Ok(Answer::Accepted);
        }
        let message = if content_type.starts_with("text/event-stream") {
            self.read_event_stream(response, expected_id).await?
        } else {
            let body = read_limited(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|reason| self.transport(reason))?;
            serde_json::from_slice::<IncomingMessage>(&body)
                .map_err(|_| self.protocol("response body is not a JSON-RPC message"))?
        };
        Ok(Answer::Message {
            message,
            session_id,
        })
    }

    /// Reads SSE events until the response to `expected_id`. Events with
    /// empty data (the "priming" events some servers send first) and messages
    /// that are not that response are skipped.
    async fn read_event_stream(
        &self,
        response: reqwest::Response,
        expected_id: u64,
    ) -> Result<IncomingMessage, BackendError> {
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| self.transport(error.without_url().to_string()))?;
            let events = decoder
                .feed(&chunk)
                .map_err(|error| self.protocol(&error.to_string()))?;
            for event in events {
                if event.data.trim().is_empty() {
                    continue;
                }
                let Ok(message) = serde_json::from_str::<IncomingMessage>(&event.data) else {
                    return Err(self.protocol("event data is not a JSON-RPC message"));
                };
                let answers_us = message.method.is_none()
                    && message.id.as_ref().and_then(Value::as_u64) == Some(expected_id);
                if answers_us {
                    return Ok(message);
                }
                tracing::debug!(server = %self.server.name, method = ?message.method, "skipped a backend message on a request stream");
            }
        }
        Err(self.transport("event stream ended before the response".to_owned()))
    }

    fn auth_headers(&self) -> Option<HeaderMap> {
        let (name, secret) = self.auth_header.as_ref()?;
        let mut value = HeaderValue::from_str(secret.expose_secret()).ok()?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), value);
        Some(headers)
    }

    fn lock_connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // The guarded data stays consistent even if a holder panicked.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn send_error(&self, error: &reqwest::Error) -> BackendError {
        let server = self.server.name.clone();
        if error.is_connect() {
            BackendError::Connect { server }
        } else if error.is_timeout() {
            BackendError::Timeout {
                server,
                timeout: self.server.timeout,
            }
        } else {
            BackendError::Transport {
                server,
                reason: describe(error),
            }
        }
    }

    fn transport(&self, reason: String) -> BackendError {
        BackendError::Transport {
            server: self.server.name.clone(),
            reason,
        }
    }

    fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.server.name.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// A reqwest error with its cause chain but without the URL, which may carry
/// a secret the operator put in the registry.
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::from("request failed");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| describe(&error))?;
        if body.len() + chunk.len() > limit {
            return Err(format!("response body exceeds {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_limited_text(response: reqwest::Response) -> String {
    read_limited(response, 64 * 1024)
        .await
        .map(|body| String::from_utf8_lossy(&body).into_owned())
        .unwrap_or_default()
}

/// `Retry-After` in delta-seconds; an HTTP date is treated as absent.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}
