//! The HTTP+SSE transport of revision 2024-11-05: a GET opens an event
//! stream whose first `endpoint` event names the URL to POST messages to;
//! responses and the backend's own messages arrive as `message` events on
//! that stream. The stream is the backend session: when it drops, the
//! session is gone.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::{mpsc, oneshot};

use super::channel::{Ends, Link, Open, Outgoing};
use super::exchange::MAX_RESPONSE_BYTES;
use super::http::{Http, describe, is_event_stream, with_trace_headers};
use crate::backend::error::BackendError;
use crate::mcp::sse::{SseDecoder, SseEvent};

/// Opens the event stream of an HTTP+SSE backend, once per connection.
pub(crate) struct HttpSse {
    /// Shared with the tasks that POST each connection's messages.
    http: Arc<Http>,
    url: url::Url,
}

impl HttpSse {
    pub(super) fn new(http: Http, url: url::Url) -> Self {
        HttpSse {
            http: Arc::new(http),
            url,
        }
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

impl Open for HttpSse {
    /// The event stream holds one socket.
    const DESCRIPTORS: u32 = 1;

    /// GETs the event stream and waits for its `endpoint` event, then starts
    /// the tasks that read the stream and POST the link's messages.
    async fn open(&self, link: &Arc<Link>, ends: Ends) -> Result<(), BackendError> {
        let http = &self.http;
        let response = http
            .send(Method::GET, &self.url, |request| {
                request.header(ACCEPT, "text/event-stream")
            })
            .await?;
        if !response.status().is_success() {
            return Err(http.status_error(response, false).await);
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
}

/// POSTs one message within the server's timeout; the backend answers 202
/// and sends any response on the event stream.
async fn post(
    http: &Http,
    endpoint: url::Url,
    bytes: Vec<u8>,
    trace_headers: Vec<(&'static str, String)>,
) -> Result<(), BackendError> {
    let _connection = http.connections.for_exchange(&http.server.name).await?;
    let body = bytes::Bytes::from(bytes);
    let response = http
        .send(Method::POST, &endpoint, |request| {
            with_trace_headers(request, trace_headers.clone())
                .timeout(http.server.timeout)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
    if response.status().is_success() {
        return Ok(());
    }
    // The endpoint names the backend session, which a refusal may show the
    // backend has forgotten: then it did not act.
    Err(http.status_error(response, true).await)
}

/// POSTs each message the link sends, each in a task of its own so that a
/// slow POST holds up no other; callers that need order wait for `sent`.
async fn post_messages(
    http: Arc<Http>,
    endpoint: url::Url,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(Outgoing {
        bytes,
        sent,
        trace_headers,
    }) = outgoing.recv().await
    {
        let http = http.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let posted = post(&http, endpoint, bytes, trace_headers).await;
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
