//! How messages reach a backend, one file per transport behind
//! [`Transport`]: Streamable HTTP POSTs each message; stdio and HTTP+SSE
//! carry every message over one connection, a `Channel`. What the
//! two HTTP transports share is in `http`.

mod channel;
mod exchange;
mod http;
mod http_sse;
mod stdio;
mod streamable_http;

use std::sync::Arc;

use reqwest::header::HeaderValue;
use tokio::sync::watch;

pub(super) use exchange::{Phase, Received};

use crate::backend::connections::SessionConnections;
use crate::backend::credential::Credential;
use crate::backend::error::BackendError;
use crate::backend::http_client::HttpClients;
use crate::backend::relay::{Relay, ToClient};
use crate::registry::{Endpoint, ServerConfig};
use channel::Channel;
use http::Http;
use http_sse::HttpSse;
use stdio::Stdio;
use streamable_http::StreamableHttp;

/// A backend session's transport, as the server's endpoint names it. Each
/// variant holds that transport's own state, and every call dispatches with
/// one `match`, without a trait object.
pub(super) enum Transport {
    StreamableHttp(StreamableHttp),
    HttpSse(Channel<HttpSse>),
    Stdio(Channel<Stdio>),
}

impl Transport {
    /// The transport of `server`, carrying `credential` as its auth scheme
    /// says: a header on every HTTP request, or a variable in a stdio
    /// process's environment.
    pub(super) fn for_server(
        server: &Arc<ServerConfig>,
        clients: HttpClients,
        credential: Option<Credential>,
        connections: Arc<SessionConnections>,
    ) -> Self {
        match &server.endpoint {
            Endpoint::StreamableHttp { url } => {
                let http = Http::new(server.clone(), clients, credential, connections);
                Transport::StreamableHttp(StreamableHttp::new(http, url.clone()))
            }
            Endpoint::HttpSse { url } => {
                let http = Http::new(server.clone(), clients, credential, connections.clone());
                let sse = HttpSse::new(http, url.clone());
                Transport::HttpSse(Channel::new(server.clone(), sse, connections))
            }
            Endpoint::Stdio(command) => {
                let secret = match credential {
                    Some(Credential::Static(secret)) => Some(secret),
                    Some(Credential::OAuth(_)) | None => None,
                };
                let stdio = Stdio::new(server.clone(), command.clone(), secret);
                Transport::Stdio(Channel::new(server.clone(), stdio, connections))
            }
        }
    }

    /// Sends one message: a POST for Streamable HTTP, the channel for the
    /// others. `expected_id` is the id of the response to wait for (None for
    /// a notification or response).
    pub(super) async fn send(
        &self,
        body: Vec<u8>,
        expected_id: Option<u64>,
        phase: Phase,
        relay: Option<&Relay>,
    ) -> Result<Received, BackendError> {
        // Boxed, so that the retries, deadlines and races that hold this
        // future stay small (see `McpSession::handle_request`).
        match self {
            Transport::StreamableHttp(http) => {
                Box::pin(http.post(body, expected_id, phase, relay)).await
            }
            Transport::HttpSse(channel) => {
                Box::pin(channel.exchange(body, expected_id, phase, relay)).await
            }
            Transport::Stdio(channel) => {
                Box::pin(channel.exchange(body, expected_id, phase, relay)).await
            }
        }
    }

    /// Places later messages in the backend session an `initialize` opened:
    /// Streamable HTTP names it in headers, the other transports' connection
    /// is the backend session.
    pub(super) fn enter_session(&self, session_id: Option<HeaderValue>, protocol_version: &str) {
        match self {
            Transport::StreamableHttp(http) => http.enter_session(session_id, protocol_version),
            Transport::HttpSse(_) | Transport::Stdio(_) => {}
        }
    }

    /// Ends the backend session currently held, if any: DELETE for
    /// Streamable HTTP, the end of the connection for the others (a stdio
    /// child gets end of input). `for_good` when the session is closed.
    pub(super) async fn end_session(&self, for_good: bool) {
        match self {
            Transport::StreamableHttp(http) => http.end_session().await,
            Transport::HttpSse(channel) => channel.disconnect(for_good),
            Transport::Stdio(channel) => channel.disconnect(for_good),
        }
    }

    /// Hands what the backend sends outside any request to `to_client` until
    /// the session is `closed`.
    pub(super) async fn listen(&self, to_client: ToClient, closed: &watch::Sender<bool>) {
        match self {
            Transport::StreamableHttp(http) => http.listen(to_client, closed).await,
            // `close` ends a channel's listening through `end_session`.
            Transport::HttpSse(channel) => channel.listen(to_client).await,
            Transport::Stdio(channel) => channel.listen(to_client).await,
        }
    }
}
