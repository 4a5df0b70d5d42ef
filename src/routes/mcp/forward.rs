//! Passing a request to the node that holds its MCP session: behind a
//! balancer without affinity, consecutive requests of one client land on
//! any node, while its calls in progress, its GET stream, subscriptions
//! and log level live on the node that opened (or last reopened) the MCP
//! session. The request goes there as it came (method, path, headers,
//! body), with that node's secret, which tells it that the request was
//! checked and charged here; the answer, streamed or not, comes back as
//! it is sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt;

use crate::cluster::FORWARDED_HEADER;

/// Headers of one connection only (RFC 9110, section 7.6.1), never passed
/// on; nor the length, which the body passed on sets again.
fn passes(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    ) && name != FORWARDED_HEADER
}

/// The other node could not be reached: the request never got there, and
/// the caller serves it itself.
#[derive(Debug)]
pub struct Unanswered(pub String);

/// Sends `request` (with `body`, for a POST) to the node at `url`, which
/// takes `secret`, and answers what it answers.
pub async fn forward(
    request: &HttpRequest,
    body: Option<&[u8]>,
    url: &str,
    secret: &str,
    http: &reqwest::Client,
) -> Result<HttpResponse, Unanswered> {
    let target = format!(
        "{}{}",
        url.trim_end_matches('/'),
        request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str())
    );
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|error| Unanswered(error.to_string()))?;
    let mut outgoing = http.request(method, &target);
    for (name, value) in request.headers() {
        if passes(name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    outgoing = outgoing.header(FORWARDED_HEADER, secret);
    if let Some(body) = body {
        outgoing = outgoing.body(body.to_vec());
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) if error.is_connect() => return Err(Unanswered(error.to_string())),
        // It got there, and may have run: serving it here could run a call
        // twice. The client hears so, and decides.
        Err(error) => {
            tracing::warn!(%error, "the node holding an MCP session went away during a request");
            return Ok(went_away());
        }
    };
    let mut response = HttpResponse::build(
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in answer.headers() {
        if !passes(name.as_str()) || matches!(name.as_str(), "date" | "server") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.append_header((name, value));
        }
    }
    let body = answer
        .bytes_stream()
        .map_ok(web::Bytes::from)
        .map_err(|error| std::io::Error::other(error.to_string()));
    Ok(response.streaming(body))
}

/// The answer when the node holding the MCP session went away while it had
/// the request: 502, a JSON-RPC error saying that it may have run.
fn went_away() -> HttpResponse {
    let error = crate::mcp::jsonrpc::ErrorObject {
        code: crate::mcp::jsonrpc::INTERNAL_ERROR,
        message: "the gateway node holding this MCP session went away during the request, which may have run there; check before sending it again (the session moves to another node)".into(),
        data: None,
    };
    HttpResponse::BadGateway()
        .content_type("application/json")
        .body(crate::mcp::jsonrpc::error_response(
            &serde_json::Value::Null,
            &error,
        ))
}
