//! mcp-mux as the OAuth 2.1 client of its backends (the MCP authorization
//! chapter): finding each backend's authorization server, becoming its
//! client, then the authorization code flow and refresh.

pub mod client;
pub mod discovery;
pub mod registration;

/// Most bytes an authorization server's answer or a metadata document may
/// have: real ones are a few KiB.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Whether `scope` is one OAuth scope: RFC 6749 §3.3 allows printable
/// ASCII but space, `"` and `\`.
pub fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
}

/// Why an answer's body was not read.
enum ReadError {
    /// The connection broke: its innermost cause.
    Broken(String),
    /// It passes [`MAX_ANSWER_BYTES`].
    TooLarge,
}

/// An answer's body, refused past [`MAX_ANSWER_BYTES`] without reading on.
async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| ReadError::Broken(innermost_cause(&error)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `url` names this machine (`localhost` or a loopback address).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The innermost cause of a failed request, which names what went wrong
/// (connection refused, say).
fn innermost_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
