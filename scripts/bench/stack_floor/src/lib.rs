//! What both floors share: hyper-util's client, as mcp-mux sends plain HTTP
//! backend requests, and the forwarding of one body.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type Backend = Client<HttpConnector, Full<Bytes>>;

/// `BIND BACKEND_URL` from the command line.
pub fn arguments() -> Result<(String, String), String> {
    let mut arguments = std::env::args().skip(1);
    match (arguments.next(), arguments.next()) {
        (Some(bind), Some(backend)) => Ok((bind, backend)),
        _ => Err("usage: BIND BACKEND_URL".into()),
    }
}

/// A client for the calling thread's runtime, with mcp-mux's settings.
pub fn backend_client() -> Backend {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// POSTs `body` to `url` and reads the whole answer's body; None when the
/// backend cannot be reached or its answer cannot be read.
pub async fn forward(client: &Backend, url: &str, body: Bytes) -> Option<Bytes> {
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(body))
        .ok()?;
    let answer = client.request(request).await.ok()?;
    Some(answer.into_body().collect().await.ok()?.to_bytes())
}
