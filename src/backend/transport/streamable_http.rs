//! The Streamable HTTP transport: POST each message and read its answer as
//! JSON or as an SSE stream (resumed with GET and `Last-Event-ID` when the
//! stream is lost), listen on the backend's own stream with GET, DELETE the
//! backend session, all within the call timeout.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use tokio::sync::watch;

use super::exchange::{MAX_RESPONSE_BYTES, Phase, Received};
use super::http::{Http, SESSION_ID, SessionHeaders, describe, is_event_stream, read_limited};
use crate::backend::deadline::Deadline;
use crate::backend::error::BackendError;
use crate::backend::relay::{Relay, Relayed, ToClient, answer_to_server_request};
use crate::mcp::LAST_EVENT_ID_HEADER;
use crate::mcp::jsonrpc::IncomingMessage;
use crate::mcp::sse::SseDecoder;

const PROGRESS: &str = "notifications/progress";
/// How often one answer stream may be resumed before mcp-mux gives up on it.
const MAX_RESUMPTIONS: usize = 10;
/// Longest `retry:` wait honoured before resuming a stream.
const MAX_RESUME_DELAY: Duration = Duration::from_secs(5);
/// The first pause before listening on the backend's own stream again; it
/// doubles with each failure, up to `MAX_LISTEN_PAUSE`.
const LISTEN_PAUSE: Duration = Duration::from_millis(500);
const MAX_LISTEN_PAUSE: Duration = Duration::from_secs(30);

/// A backend reached with a POST per message at one URL.
pub(crate) struct StreamableHttp {
    http: Http,
    url: url::Url,
    /// The backend session the last `initialize` opened, which messages
    /// other than `initialize` are placed in.
    session: Mutex<SessionHeaders>,
}

/// How reading one stream connection ended.
enum StreamEnd {
    Reply(IncomingMessage),
    /// The connection ended or broke before the reply.
    Lost(String),
}

impl StreamableHttp {
    pub(super) fn new(http: Http, url: url::Url) -> Self {
        StreamableHttp {
            http,
            url,
            session: Mutex::new(SessionHeaders::default()),
        }
    }

    /// Places later messages in the backend session an `initialize` opened.
    pub(super) fn enter_session(&self, session_id: Option<HeaderValue>, protocol_version: &str) {
        *self.lock_session() = SessionHeaders {
            session_id,
            protocol_version: HeaderValue::from_str(protocol_version).ok(),
        };
    }

    /// POSTs one message within the server's timeout. `expected_id` is the
    /// id of the response to wait for (None for a notification or response).
    pub(super) async fn post(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
        relay: Option<&Relay>,
    ) -> Result<Received, BackendError> {
        let headers = match phase {
            // initialize opens a new backend session: it carries neither the
            // old session's id nor a negotiated version.
            Phase::Initialize => SessionHeaders::default(),
            Phase::InSession => self.lock_session().clone(),
        };
        self.post_within_timeout(body, expected_id, headers, relay)
            .await
    }

    /// DELETEs the backend session held, if any, and forgets it.
    pub(super) async fn end_session(&self) {
        let headers = {
            let mut session = self.lock_session();
            SessionHeaders {
                session_id: session.session_id.take(),
                protocol_version: session.protocol_version.clone(),
            }
        };
        if headers.session_id.is_none() {
            return;
        }
        if let Err(reason) = self.delete(&headers).await {
            tracing::debug!(server = %self.http.server.name, %reason, "closing the backend session failed");
        }
    }

    /// DELETEs a backend session, within the server's timeout.
    async fn delete(&self, headers: &SessionHeaders) -> Result<(), String> {
        let _connection = self
            .http
            .connections
            .for_closing(&self.http.server.name)
            .await
            .map_err(|error| error.to_string())?;
        let request = self
            .http
            .request(Method::DELETE, self.url.clone())
            .await
            .map_err(|error| error.to_string())?
            .timeout(self.http.server.timeout);
        headers
            .apply(request)
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
    ) -> Result<Received, BackendError> {
        let _connection = self
            .http
            .connections
            .for_exchange(&self.http.server.name)
            .await?;
        let deadline = Deadline::start(self.http.server.timeout, self.http.server.max_timeout);
        let exchange = self.post_unbounded(body, expected_id, headers, relay, &deadline);
        match deadline.run(exchange).await {
            Some(answer) => answer,
            None => Err(BackendError::Timeout {
                server: self.http.server.name.clone(),
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
    ) -> Result<Received, BackendError> {
        let body = bytes::Bytes::from(body);
        let response = self
            .http
            .send(Method::POST, &self.url, |request| {
                headers.apply(
                    request
                        .header(CONTENT_TYPE, "application/json")
                        .header(ACCEPT, "application/json, text/event-stream")
                        .body(body.clone()),
                )
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self
                .http
                .status_error(response, headers.session_id.is_some())
                .await);
        }
        let Some(expected_id) = expected_id else {
            return Ok(Received::Accepted);
        };
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(Received::Accepted);
        }
        let issued_session = response.headers().get(&SESSION_ID).cloned();
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
                .map_err(|error| self.http.read_error(error))?;
            let message = serde_json::from_slice::<IncomingMessage>(&body).map_err(|_| {
                self.http
                    .protocol("response body is not a JSON-RPC message")
            })?;
            if message.id.as_ref().and_then(Value::as_u64) != Some(expected_id) {
                return Err(self.http.protocol("response answers another request id"));
            }
            message
        };
        Ok(Received::Message {
            message,
            session_id: issued_session,
        })
    }

    /// Reads SSE events until the response to `expected_id`. A stream lost
    /// before the response, after an event id, is resumed with GET and
    /// `Last-Event-ID` as the transport specifies. The request was accepted,
    /// so every failure from here on is `Transport`: ambiguous, never a
    /// reason to send the request again unless it is safe to repeat.
    async fn read_event_stream(
        &self,
        mut response: reqwest::Response,
        expected_id: u64,
        headers: SessionHeaders,
        relay: Option<&Relay>,
        deadline: &Deadline,
    ) -> Result<IncomingMessage, BackendError> {
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut resumptions = 0;
        loop {
            let lost = match self
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
                StreamEnd::Reply(message) => return Ok(message),
                StreamEnd::Lost(reason) => reason,
            };
            let last_event_id = match decoder.last_event_id() {
                Some(id) if resumptions < MAX_RESUMPTIONS => id.to_owned(),
                _ => return Err(self.http.broken(lost)),
            };
            resumptions += 1;
            tokio::time::sleep(
                decoder
                    .retry()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_RESUME_DELAY),
            )
            .await;
            decoder.reconnected();
            response = self.resume(&last_event_id, &headers).await?;
        }
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
            let events = decoder.feed(&chunk).map_err(|_| {
                self.http
                    .protocol("an event exceeds the 16 MiB answer size limit")
            })?;
            for event in events {
                if event.data.trim().is_empty() {
                    continue;
                }
                let message = serde_json::from_str::<IncomingMessage>(&event.data)
                    .map_err(|_| self.http.protocol("event data is not a JSON-RPC message"))?;
                if message.method.as_deref() == Some(PROGRESS) {
                    deadline.extend();
                }
                match (&message.method, &message.id, relay) {
                    (None, Some(id), _) if id.as_u64() == Some(expected_id) => {
                        return Ok(StreamEnd::Reply(message));
                    }
                    (Some(_), _, Some(relay)) => {
                        let whole: Value = serde_json::from_str(&event.data).map_err(|_| {
                            self.http.protocol("event data is not a JSON-RPC message")
                        })?;
                        (relay.to_client)(match message.id {
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
                            tracing::debug!(server = %self.http.server.name, %error, "could not answer a backend request");
                        }
                    }
                    _ => {
                        tracing::debug!(server = %self.http.server.name, method = ?message.method, "skipped a backend message on a response stream")
                    }
                }
            }
        }
        Ok(StreamEnd::Lost(
            "the event stream ended before the response".to_owned(),
        ))
    }

    /// Listens on the backend's own stream until the session is `closed`
    /// (the stream ends with it) or the backend turns out to have none;
    /// reconnects with a growing pause.
    pub(super) async fn listen(&self, to_client: ToClient, closed: &watch::Sender<bool>) {
        let mut closing = closed.subscribe();
        tokio::select! {
            () = self.listen_until_gone(to_client, closed) => {}
            _ = closing.wait_for(|closed| *closed) => {}
        }
    }

    async fn listen_until_gone(&self, to_client: ToClient, closed: &watch::Sender<bool>) {
        let mut pause = LISTEN_PAUSE;
        while !*closed.borrow() {
            match self.listen_once(to_client.as_ref()).await {
                Ok(false) => return,
                Ok(true) => pause = LISTEN_PAUSE,
                Err(error) => {
                    tracing::debug!(server = %self.http.server.name, %error, "backend stream failed");
                    pause = (pause * 2).min(MAX_LISTEN_PAUSE);
                }
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Listens on the backend's own stream (GET), for what it sends outside
    /// any request: list changes, resource updates, log messages, requests.
    /// Returns when the stream ends; `Ok(false)` when the backend has none.
    /// The stream holds one of the gateway's backend connections while open.
    async fn listen_once(
        &self,
        to_client: &(dyn Fn(Relayed) + Send + Sync),
    ) -> Result<bool, BackendError> {
        let server = &self.http.server;
        let _connection = self.http.connections.for_stream(&server.name, 1)?;
        let headers = self.lock_session().clone();
        let connect = self.http.send(Method::GET, &self.url, |request| {
            headers.apply(request.header(ACCEPT, "text/event-stream"))
        });
        // Only connecting is bounded: the stream itself is meant to stay open.
        let response = tokio::time::timeout(server.timeout, connect)
            .await
            .map_err(|_| BackendError::Timeout {
                server: server.name.clone(),
                timeout: server.timeout,
            })??;
        if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(false);
        }
        if !response.status().is_success() {
            return Err(self
                .http
                .status_error(response, headers.session_id.is_some())
                .await);
        }
        if !is_event_stream(response.headers()) {
            return Ok(false);
        }
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut chunks = response.bytes_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            let events = decoder.feed(&chunk).map_err(|_| {
                self.http
                    .protocol("an event exceeds the 16 MiB answer size limit")
            })?;
            for event in events {
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) if message.get("method").is_some() => {
                        to_client(match message.get("id") {
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
        // Through `send`: an OAuth backend's token may have expired since
        // the request began.
        let response =
            self.http
                .send(Method::GET, &self.url, |request| {
                    headers.apply(
                        request
                            .header(ACCEPT, "text/event-stream")
                            .header(LAST_EVENT_ID_HEADER, last_event_id),
                    )
                })
                .await
                .map_err(|error| match error {
                    BackendError::AuthorizationNeeded { .. }
                    | BackendError::NoAccessToken { .. } => error,
                    other => self
                        .http
                        .broken(format!("resuming the stream failed: {other}")),
                })?;
        if !response.status().is_success() {
            return Err(self.http.broken(format!(
                "resuming the stream was refused with HTTP {}",
                response.status().as_u16()
            )));
        }
        if !is_event_stream(response.headers()) {
            return Err(self
                .http
                .broken("a resumed stream is not an event stream".to_owned()));
        }
        Ok(response)
    }

    fn lock_session(&self) -> MutexGuard<'_, SessionHeaders> {
        // The guarded data stays consistent even if a holder panicked.
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
