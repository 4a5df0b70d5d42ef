//! One HTTP exchange with a backend: POST a message and read its answer as
//! JSON or as an SSE stream (resumed with GET and `Last-Event-ID` when the
//! stream is lost), DELETE a session, all within the call timeout.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::deadline::Deadline;
use super::{
    BackendError, BackendSession, Relay, Relayed, answer_to_server_request,
    names_an_unknown_session,
};
use crate::mcp::jsonrpc::IncomingMessage;
use crate::mcp::sse::SseDecoder;
use crate::mcp::{LAST_EVENT_ID_HEADER, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER};

const PROGRESS: &str = "notifications/progress";
/// Largest answer (JSON body or one SSE event) accepted from a backend.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// How often one answer stream may be resumed before mcp-mux gives up on it.
const MAX_RESUMPTIONS: usize = 10;
/// Longest `retry:` wait honoured before resuming a stream.
const MAX_RESUME_DELAY: Duration = Duration::from_secs(5);
/// Longest `Retry-After` taken from a backend; anything longer is past every
/// retry budget anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Whether a POST opens the backend session or runs inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Initialize,
    InSession,
}

/// The headers that place a message in a backend session.
#[derive(Debug, Clone, Default)]
struct SessionHeaders {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
}

/// Outcome of one HTTP exchange.
pub(super) enum Answer {
    /// A notification or response was accepted (202).
    Accepted,
    Message {
        message: IncomingMessage,
        session_id: Option<HeaderValue>,
    },
}

/// Why a body could not be read.
enum ReadError {
    TooLarge,
    Broken(String),
}

/// How reading one stream connection ended.
enum StreamEnd {
    Answer(IncomingMessage),
    /// The connection ended or broke before the answer.
    Lost(String),
}

impl BackendSession {
    /// POSTs one message within the server's timeout. `expected_id` is the
    /// id of the response to wait for (None for a notification or response).
    pub(super) async fn post(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
        relay: Option<&Relay>,
    ) -> Result<Answer, BackendError> {
        let headers = match phase {
            // initialize opens a new backend session: it carries neither the
            // old session's id nor a negotiated version.
            Phase::Initialize => SessionHeaders::default(),
            Phase::InSession => {
                let connection = self.lock_connection();
                SessionHeaders {
                    session_id: connection.session_id.clone(),
                    protocol_version: connection.protocol_version.clone(),
                }
            }
        };
        self.post_within_timeout(body, expected_id, headers, relay)
            .await
    }

    /// DELETEs a backend session, within the server's timeout.
    pub(super) async fn delete(
        &self,
        session_id: HeaderValue,
        version: Option<HeaderValue>,
    ) -> Result<(), String> {
        let url = self.mcp_url().map_err(|error| error.to_string())?;
        let _connection = self
            .limits
            .connections
            .for_exchange(&self.server.name)
            .await
            .map_err(|error| error.to_string())?;
        let mut request = self
            .http
            .get()
            .delete(url)
            .timeout(self.server.timeout)
            .header(SESSION_ID_HEADER, session_id);
        if let Some(version) = version {
            request = request.header(PROTOCOL_VERSION_HEADER, version);
        }
        request = self.with_auth(request);
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| describe(&error))
    }

    async fn post_within_timeout(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        headers: SessionHeaders,
        relay: Option<&Relay>,
    ) -> Result<Answer, BackendError> {
        let _connection = self
            .limits
            .connections
            .for_exchange(&self.server.name)
            .await?;
        let deadline = Deadline::start(self.server.timeout, self.server.max_timeout);
        let exchange = self.post_unbounded(body, expected_id, headers, relay, &deadline);
        match deadline.run(exchange).await {
            Some(answer) => answer,
            None => Err(BackendError::Timeout {
                server: self.server.name.clone(),
                timeout: deadline.allowed(),
            }),
        }
    }

    async fn post_unbounded(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        headers: SessionHeaders,
        relay: Option<&Relay>,
        deadline: &Deadline,
    ) -> Result<Answer, BackendError> {
        let mut request = self
            .http
            .get()
            .post(self.mcp_url()?)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body);
        request = with_session_headers(request, &headers);
        let response = self
            .with_auth(request)
            .send()
            .await
            .map_err(|error| self.send_error(&error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self
                .status_error(response, headers.session_id.is_some())
                .await);
        }
        let Some(expected_id) = expected_id else {
            return Ok(Answer::Accepted);
        };
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(Answer::Accepted);
        }
        let issued_session = response.headers().get(SESSION_ID_HEADER).cloned();
        let message = if is_event_stream(response.headers()) {
            let stream_headers = SessionHeaders {
                session_id: issued_session.clone().or(headers.session_id),
                protocol_version: headers.protocol_version,
            };
            self.read_event_stream(response, expected_id, stream_headers, relay, deadline)
                .await?
        } else {
            let body = read_limited(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|error| self.read_error(error))?;
            let message = serde_json::from_slice::<IncomingMessage>(&body)
                .map_err(|_| self.protocol("response body is not a JSON-RPC message"))?;
            if message.id.as_ref().and_then(Value::as_u64) != Some(expected_id) {
                return Err(self.protocol("response answers another request id"));
            }
            message
        };
        Ok(Answer::Message {
            message,
            session_id: issued_session,
        })
    }

    /// The error for a POST the backend refused: it did not act on it.
    async fn status_error(&self, response: reqwest::Response, had_session: bool) -> BackendError {
        let server = self.server.name.clone();
        let status = response.status().as_u16();
        match status {
            404 if had_session => BackendError::SessionExpired { server },
            400 if had_session => {
                let body = read_limited(response, 64 * 1024).await.unwrap_or_default();
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

    /// Reads SSE events until the response to `expected_id`. A stream lost
    /// before the response, after an event id, is resumed with GET and
    /// `Last-Event-ID` as the transport specifies. The request was accepted,
    /// so every failure from here on is `Transport`: ambiguous, never a
    /// reason to send the request again unless it is safe to repeat.
    async fn read_event_stream(
        &self,
        response: reqwest::Response,
        expected_id: u64,
        headers: SessionHeaders,
        relay: Option<&Relay>,
        deadline: &Deadline,
    ) -> Result<IncomingMessage, BackendError> {
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut lost = match self
            .read_stream(
                response,
                expected_id,
                &mut decoder,
                &headers,
                relay,
                deadline,
            )
            .await?
        {
            StreamEnd::Answer(message) => return Ok(message),
            StreamEnd::Lost(reason) => reason,
        };
        for _ in 0..MAX_RESUMPTIONS {
            let Some(last_event_id) = decoder.last_event_id().map(str::to_owned) else {
                break;
            };
            tokio::time::sleep(
                decoder
                    .retry()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_RESUME_DELAY),
            )
            .await;
            decoder.reconnected();
            let response = self.resume(&last_event_id, &headers).await?;
            lost = match self
                .read_stream(
                    response,
                    expected_id,
                    &mut decoder,
                    &headers,
                    relay,
                    deadline,
                )
                .await?
            {
                StreamEnd::Answer(message) => return Ok(message),
                StreamEnd::Lost(reason) => reason,
            };
        }
        Err(self.broken(lost))
    }

    /// Reads one stream connection. Events with empty data (the "priming"
    /// events some servers send first) are skipped. Notifications and
    /// requests from the backend go to `relay`; without one, notifications
    /// are dropped and requests answered here. A progress notification
    /// pushes the call's deadline back.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        expected_id: u64,
        decoder: &mut SseDecoder,
        headers: &SessionHeaders,
        relay: Option<&Relay>,
        deadline: &Deadline,
    ) -> Result<StreamEnd, BackendError> {
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => return Ok(StreamEnd::Lost(describe(&error))),
            };
            let events = decoder
                .feed(&chunk)
                .map_err(|_| self.protocol("an event exceeds the 16 MiB answer size limit"))?;
            for event in events {
                if event.data.trim().is_empty() {
                    continue;
                }
                let message = serde_json::from_str::<IncomingMessage>(&event.data)
                    .map_err(|_| self.protocol("event data is not a JSON-RPC message"))?;
                if message.method.as_deref() == Some(PROGRESS) {
                    deadline.extend();
                }
                match (&message.method, &message.id, relay) {
                    (None, Some(id), _) if id.as_u64() == Some(expected_id) => {
                        return Ok(StreamEnd::Answer(message));
                    }
                    (Some(_), _, Some(relay)) => {
                        let whole: Value = serde_json::from_str(&event.data)
                            .map_err(|_| self.protocol("event data is not a JSON-RPC message"))?;
                        (relay.forward)(match message.id {
                            Some(id) => Relayed::Request { id, message: whole },
                            None => Relayed::Notification(whole),
                        });
                    }
                    (Some(method), Some(id), None) => {
                        let answer = answer_to_server_request(id, method);
                        // Boxed: posting the answer may itself read a stream.
                        let posted =
                            Box::pin(self.post_within_timeout(answer, None, headers.clone(), None))
                                .await;
                        if let Err(error) = posted {
                            tracing::debug!(server = %self.server.name, %error, "could not answer a backend request");
                        }
                    }
                    _ => {
                        tracing::debug!(server = %self.server.name, method = ?message.method, "skipped a backend message on a response stream")
                    }
                }
            }
        }
        Ok(StreamEnd::Lost(
            "the event stream ended before the response".to_owned(),
        ))
    }

    /// Listens on the backend's own stream (GET), for what it sends outside
    /// any request: list changes, resource updates, log messages, requests.
    /// Returns when the stream ends; `Ok(false)` when the backend has none.
    /// The stream holds one of the gateway's backend connections while open.
    pub(super) async fn listen_once(
        &self,
        forward: &(dyn Fn(Relayed) + Send + Sync),
    ) -> Result<bool, BackendError> {
        let _connection = self.limits.connections.for_stream(&self.server.name, 1)?;
        let headers = {
            let connection = self.lock_connection();
            SessionHeaders {
                session_id: connection.session_id.clone(),
                protocol_version: connection.protocol_version.clone(),
            }
        };
        let request = self
            .http
            .get()
            .get(self.mcp_url()?)
            .header(ACCEPT, "text/event-stream");
        let request = self.with_auth(with_session_headers(request, &headers));
        // Only connecting is bounded: the stream itself is meant to stay open.
        let response = tokio::time::timeout(self.server.timeout, request.send())
            .await
            .map_err(|_| BackendError::Timeout {
                server: self.server.name.clone(),
                timeout: self.server.timeout,
            })?
            .map_err(|error| self.send_error(&error))?;
        if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(false);
        }
        if !response.status().is_success() {
            return Err(self
                .status_error(response, headers.session_id.is_some())
                .await);
        }
        if !is_event_stream(response.headers()) {
            return Ok(false);
        }
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut chunks = response.bytes_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            let events = decoder
                .feed(&chunk)
                .map_err(|_| self.protocol("an event exceeds the 16 MiB answer size limit"))?;
            for event in events {
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) if message.get("method").is_some() => {
                        forward(match message.get("id") {
                            Some(id) => Relayed::Request {
                                id: id.clone(),
                                message: message.clone(),
                            },
                            None => Relayed::Notification(message),
                        })
                    }
                    _ => {}
                }
            }
        }
        Ok(true)
    }

    /// Reopens an answer stream after `last_event_id` with GET. Any failure
    /// is `Transport`: the request itself was already accepted.
    async fn resume(
        &self,
        last_event_id: &str,
        headers: &SessionHeaders,
    ) -> Result<reqwest::Response, BackendError> {
        let request = self
            .http
            .get()
            .get(self.mcp_url()?)
            .header(ACCEPT, "text/event-stream")
            .header(LAST_EVENT_ID_HEADER, last_event_id);
        let request = self.with_auth(with_session_headers(request, headers));
        let response = request.send().await.map_err(|error| {
            self.broken(format!("resuming the stream failed: {}", describe(&error)))
        })?;
        if !response.status().is_success() {
            return Err(self.broken(format!(
                "resuming the stream was refused with HTTP {}",
                response.status().as_u16()
            )));
        }
        if !is_event_stream(response.headers()) {
            return Err(self.broken("a resumed stream is not an event stream".to_owned()));
        }
        Ok(response)
    }

    /// The Streamable HTTP endpoint; the other transports never come here.
    fn mcp_url(&self) -> Result<url::Url, BackendError> {
        self.server
            .endpoint
            .streamable_http_url()
            .cloned()
            .ok_or_else(|| self.protocol("the server has no Streamable HTTP endpoint"))
    }

    fn with_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let Some((name, secret)) = &self.auth_header else {
            return request;
        };
        // Checked at create-session, so this only fails for a value that
        // cannot be a header at all.
        let Ok(mut value) = HeaderValue::from_str(secret.expose_secret()) else {
            return request;
        };
        value.set_sensitive(true);
        request.header(name.clone(), value)
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
            self.broken(describe(error))
        }
    }

    fn read_error(&self, error: ReadError) -> BackendError {
        match error {
            ReadError::TooLarge => self.protocol("the answer exceeds the 16 MiB size limit"),
            ReadError::Broken(reason) => self.broken(reason),
        }
    }

    /// The connection broke mid-exchange: the backend may or may not have
    /// acted. The cause is logged here, not sent to the client.
    fn broken(&self, cause: String) -> BackendError {
        tracing::warn!(server = %self.server.name, %cause, "backend connection broke");
        BackendError::Transport {
            server: self.server.name.clone(),
            cause,
        }
    }
}

fn with_session_headers(
    mut request: reqwest::RequestBuilder,
    headers: &SessionHeaders,
) -> reqwest::RequestBuilder {
    if let Some(session_id) = &headers.session_id {
        request = request.header(SESSION_ID_HEADER, session_id.clone());
    }
    if let Some(version) = &headers.protocol_version {
        request = request.header(PROTOCOL_VERSION_HEADER, version.clone());
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

/// A reqwest error with its cause chain but without the URL, which may carry
/// a secret the operator put in the registry.
pub(super) fn describe(error: &reqwest::Error) -> String {
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

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
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
pub(super) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}
