//! The HTTP+SSE transport of revision 2024-11-05: a GET opens an event
//! stream whose first `endpoint` event names the URL to POST messages to;
//! responses and the backend's own messages arrive as `message` events on
//! that stream. The stream is the backend session: when it drops, the
//! session is gone.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, oneshot};

use super::channel::{Ends, Link, Outgoing};
use super::connections::ConnectionBudget;
use super::transport::{MAX_RESPONSE_BYTES, describe, is_event_stream, parse_retry_after};
use super::{BackendError, names_an_unknown_session};
use crate::mcp::sse::{SseDecoder, SseEvent};
use crate::registry::ServerConfig;

/// Opens the event stream of a legacy SSE backend, once per connection.
pub(super) struct Connect {
    http: Http,
    url: url::Url,
}

/// What every request to the backend needs.
#[derive(Clone)]
struct Http {
    server: Arc<ServerConfig>,
    client: super::HttpClients,
    auth_header: Option<(HeaderName, SecretString)>,
    connections: Arc<ConnectionBudget>,
}

impl Connect {
    pub(super) fn new(
        server: Arc<ServerConfig>,
        client: super::HttpClients,
        url: url::Url,
        auth_header: Option<(HeaderName, SecretString)>,
        connections: Arc<ConnectionBudget>,
    ) -> Self {
        Connect {
            http: Http {
                server,
                client,
                auth_header,
                connections,
            },
            url,
        }
    }

    /// GETs the event stream and waits for its `endpoint` event, then starts
    /// the tasks that read the stream and POST the link's messages.
    pub(super) async fn open(&self, link: &Arc<Link>, ends: Ends) -> Result<(), BackendError> {
        let http = &self.http;
        let request = http
            .client
            .get()
            .get(self.url.clone())
            .header(ACCEPT, "text/event-stream");
        let response = http
            .with_auth(request)
            .send()
            .await
            .map_err(|error| http.send_error(&error))?;
        if !response.status().is_success() {
            return Err(http.status_error(&response));
        }
        if !is_event_stream(response.headers()) {
            return Err(http.protocol("the SSE URL did not answer with an event stream"));
        }
        let mut decoder = SseDecoder::new(MAX_RESPONSE_BYTES);
        let mut chunks = response.bytes_stream();
        let (endpoint, early) = 'endpoint: loop {
            let Some(chunk) = chunks.next().await else {
                return Err(http.broken("the event stream ended before its endpoint event".into()));
            };
            let chunk = chunk.map_err(|error| http.broken(describe(&error)))?;
            let mut events = decoder
                .feed(&chunk)
                .map_err(|_| http.protocol("an event exceeds the answer size limit"))?
                .into_iter();
            while let Some(event) = events.next() {
                if event.event.as_deref() == Some("endpoint") {
                    let endpoint = self.endpoint_url(&event.data)?;
                    break 'endpoint (endpoint, events.collect::<Vec<_>>());
                }
                if !event.data.trim().is_empty() {
                    return Err(
                        http.protocol("the event stream sent a message before its endpoint event")
                    );
                }
            }
        };
        tokio::spawn(post_messages(http.clone(), endpoint, ends.outgoing));
        let (link, stop, connection) = (Arc::downgrade(link), ends.stop, ends.connection);
        let server = http.server.name.clone();
        tokio::spawn(async move {
            read_events(chunks, decoder, early, link, stop, server).await;
            // The stream's connection is closed.
            drop(connection);
        });
        Ok(())
    }

    /// The POST URL an `endpoint` event names, relative to the SSE URL. It
    /// must stay on the SSE URL's origin: the messages carry the credential,
    /// and the registry alone says where mcp-mux sends it.
    fn endpoint_url(&self, data: &str) -> Result<url::Url, BackendError> {
        let endpoint = self
            .url
            .join(data.trim())
            .map_err(|_| self.http.protocol("the endpoint event does not hold a URL"))?;
        if endpoint.origin() != self.url.origin() {
            return Err(self
                .http
                .protocol("the endpoint event names another origin than the SSE URL"));
        }
        Ok(endpoint)
    }
}

impl Http {
    fn with_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let Some((name, secret)) = &self.auth_header else {
            return request;
        };
        let Ok(mut value) = HeaderValue::from_str(secret.expose_secret()) else {
            return request;
        };
        value.set_sensitive(true);
        request.header(name.clone(), value)
    }

    /// POSTs one message within the server's timeout; the backend answers
    /// 202 and sends any response on the event stream.
    async fn post(&self, endpoint: url::Url, bytes: Vec<u8>) -> Result<(), BackendError> {
        let _connection = self.connections.for_exchange(&self.server.name).await?;
        let request = self
            .client
            .get()
            .post(endpoint)
            .timeout(self.server.timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(bytes);
        let response = self
            .with_auth(request)
            .send()
            .await
            .map_err(|error| self.send_error(&error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let server = self.server.name.clone();
        // The backend forgot the session the endpoint names: it did not act.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(BackendError::SessionExpired { server });
        }
        if status == reqwest::StatusCode::BAD_REQUEST {
            let body = response.text().await.unwrap_or_default();
            if names_an_unknown_session(&body) {
                return Err(BackendError::SessionExpired { server });
            }
            return Err(BackendError::Status {
                server,
                status: status.as_u16(),
                retry_after: None,
            });
        }
        Err(self.status_error(&response))
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

    fn status_error(&self, response: &reqwest::Response) -> BackendError {
        let server = self.server.name.clone();
        match response.status().as_u16() {
            status @ (401 | 403) => BackendError::Unauthorized { server, status },
            status => BackendError::Status {
                server,
                status,
                retry_after: parse_retry_after(response.headers()),
            },
        }
    }

    fn protocol(&self, reason: &str) -> BackendError {
        BackendError::Protocol {
            server: self.server.name.clone(),
            reason: reason.to_owned(),
        }
    }

    fn broken(&self, cause: String) -> BackendError {
        BackendError::Transport {
            server: self.server.name.clone(),
            cause,
        }
    }
}

/// POSTs each message the link sends, each in a task of its own so that a
/// slow POST holds up no other; callers that need order wait for `sent`.
async fn post_messages(
    http: Http,
    endpoint: url::Url,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(Outgoing { bytes, sent }) = outgoing.recv().await {
        let http = http.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let posted = http.post(endpoint, bytes).await;
            if let Err(error) = &posted {
                tracing::debug!(server = %http.server.name, %error, "posting a message to the backend failed");
            }
            if let Some(sent) = sent {
                let _ = sent.send(posted);
            }
        });
    }
}

/// Hands every `message` event to the link until the stream ends (the
/// backend session is then gone) or the link is ended.
async fn read_events<S>(
    mut chunks: S,
    mut decoder: SseDecoder,
    early: Vec<SseEvent>,
    link: Weak<Link>,
    mut stop: oneshot::Receiver<()>,
    server: String,
) where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    if !deliver_all(&link, early, &server) {
        return;
    }
    let error = loop {
        tokio::select! {
            // Returning drops the stream, which closes the connection.
            _ = &mut stop => return,
            chunk = chunks.next() => match chunk {
                Some(Ok(chunk)) => match decoder.feed(&chunk) {
                    Ok(events) => {
                        if !deliver_all(&link, events, &server) {
                            return;
                        }
                    }
                    Err(_) => {
                        break BackendError::Protocol {
                            server: server.clone(),
                            reason: "an event exceeds the answer size limit".into(),
                        }
                    }
                },
                Some(Err(error)) => {
                    break BackendError::Transport {
                        server: server.clone(),
                        cause: describe(&error),
                    }
                }
                None => {
                    break BackendError::Transport {
                        server: server.clone(),
                        cause: "the backend's event stream ended".into(),
                    }
                }
            },
        }
    };
    if let Some(link) = link.upgrade() {
        link.lose(error);
    }
}

/// Delivers `message` events (those without a type are messages too); false
/// once the link is gone.
fn deliver_all(link: &Weak<Link>, events: Vec<SseEvent>, server: &str) -> bool {
    for event in events {
        match event.event.as_deref() {
            None | Some("message") => {
                let Some(link) = link.upgrade() else {
                    return false;
                };
                link.deliver(&event.data);
            }
            Some(other) => {
                tracing::debug!(server, event = other, "skipped an event of an unknown type")
            }
        }
    }
    true
}
