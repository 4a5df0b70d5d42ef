//! Revision 2026-07-28, the stateless one: no handshake and no MCP session.
//! Every request carries its protocol revision and the client's capabilities
//! in `params._meta`, and the HTTP headers `MCP-Protocol-Version`,
//! `Mcp-Method` and `Mcp-Name` mirror the body. Results gain `resultType`,
//! and lists the caching hints `ttlMs` and `cacheScope`.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::request::Method;
use super::version;

/// The stateless revision mcp-mux serves, beside the legacy ones in `version`.
pub const VERSION: &str = "2026-07-28";

/// `_meta` keys of a stateless request, of a result and of a notification.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The headers mirrored from the body.
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

/// Error codes the stateless revision defines.
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Every revision mcp-mux serves, newest first: the stateless one statelessly,
/// the legacy ones after an `initialize`.
pub fn supported_versions() -> Vec<&'static str> {
    std::iter::once(VERSION).chain(version::SUPPORTED).collect()
}

/// The revision a request's `_meta` declares, if any: its presence is what
/// makes a request stateless.
pub fn declared_version(params: Option<&Value>) -> Option<&Value> {
    params?.get("_meta")?.get(META_PROTOCOL_VERSION)
}

/// What a stateless request's `_meta` tells the server, once validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    /// The capabilities the client declares for this request only.
    pub client_capabilities: Map<String, Value>,
    /// The least severe log message the client wants on this request's
    /// stream; None means none at all.
    pub log_level: Option<LogLevel>,
}

/// Why a stateless request is refused before it is handled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error(
        "unsupported protocol version \"{requested}\": stateless requests are served at {VERSION}; earlier revisions need an initialize handshake"
    )]
    UnsupportedVersion { requested: String },
    #[error("header mismatch: {reason}")]
    HeaderMismatch { reason: String },
    #[error("invalid params: {reason}")]
    InvalidMeta { reason: String },
}

impl Refused {
    pub fn code(&self) -> i64 {
        match self {
            Refused::UnsupportedVersion { .. } => UNSUPPORTED_PROTOCOL_VERSION,
            Refused::HeaderMismatch { .. } => HEADER_MISMATCH,
            Refused::InvalidMeta { .. } => super::jsonrpc::INVALID_PARAMS,
        }
    }

    /// The error's `data`, which stateless clients read to pick a version.
    pub fn data(&self) -> Option<Value> {
        match self {
            Refused::UnsupportedVersion { requested } => Some(json!({
                "supported": supported_versions(),
                "requested": requested,
            })),
            Refused::HeaderMismatch { .. } | Refused::InvalidMeta { .. } => None,
        }
    }
}

fn mismatch(reason: impl Into<String>) -> Refused {
    Refused::HeaderMismatch {
        reason: reason.into(),
    }
}

/// Checks a stateless request: its declared revision, the mirrored headers
/// (`header` looks one up by lower-case name; None when absent or not
/// visible ASCII) and its `_meta`.
pub fn check_request<'h>(
    method: &str,
    params: Option<&Value>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<RequestMeta, Refused> {
    let header = |name: &str| header(name).map(str::trim);
    let sent_version = header(super::PROTOCOL_VERSION_HEADER)
        .ok_or_else(|| mismatch("the MCP-Protocol-Version header is missing"))?;
    let meta = params
        .and_then(|params| params.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| Refused::InvalidMeta {
            reason: format!("\"params._meta\" must be an object with \"{META_PROTOCOL_VERSION}\" and \"{META_CLIENT_CAPABILITIES}\""),
        })?;
    let Some(Value::String(declared)) = meta.get(META_PROTOCOL_VERSION) else {
        return Err(Refused::InvalidMeta {
            reason: format!("\"_meta.{META_PROTOCOL_VERSION}\" must be a string"),
        });
    };
    let Some(Value::Object(client_capabilities)) = meta.get(META_CLIENT_CAPABILITIES) else {
        return Err(Refused::InvalidMeta {
            reason: format!("\"_meta.{META_CLIENT_CAPABILITIES}\" must be an object"),
        });
    };
    if sent_version != declared {
        return Err(mismatch(format!(
            "MCP-Protocol-Version header value '{sent_version}' does not match body value '{declared}'"
        )));
    }
    if declared != VERSION {
        return Err(Refused::UnsupportedVersion {
            requested: declared.to_owned(),
        });
    }
    match header(METHOD_HEADER) {
        None => return Err(mismatch("the Mcp-Method header is missing")),
        Some(sent) if sent != method => {
            return Err(mismatch(format!(
                "Mcp-Method header value '{sent}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }
    if let Some(field) = Method::parse(method).and_then(Method::named_by) {
        let body = params
            .and_then(|params| params.get(field))
            .and_then(Value::as_str);
        let sent = header(NAME_HEADER).map(decode_header_value).transpose()?;
        match (sent, body) {
            (None, _) => return Err(mismatch("the Mcp-Name header is missing")),
            (Some(sent), Some(body)) if sent != body => {
                return Err(mismatch(format!(
                    "Mcp-Name header value '{sent}' does not match body value '{body}'"
                )));
            }
            (Some(_), _) => {}
        }
    }
    let log_level =
        match meta.get(META_LOG_LEVEL) {
            None => None,
            Some(level) => Some(level.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                Refused::InvalidMeta {
                    reason: format!(
                        "\"_meta.{META_LOG_LEVEL}\" must be one of {}",
                        LogLevel::NAMES.join(", ")
                    ),
                }
            })?),
        };
    Ok(RequestMeta {
        client_capabilities: client_capabilities.clone(),
        log_level,
    })
}

/// A mirrored header value as the body has it: `=?base64?…?=` decoded.
pub fn decode_header_value(sent: &str) -> Result<String, Refused> {
    let Some(encoded) = sent
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(sent.to_owned());
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| mismatch(format!("header value '{sent}' is not valid base64 UTF-8")))
}

/// Removes the keys of the stateless `_meta` from request params, so that a
/// legacy backend sees the request as a legacy client would send it.
/// Progress tokens, trace context and other keys stay.
pub fn strip_request_meta(params: &mut Map<String, Value>) {
    let Some(Value::Object(meta)) = params.get_mut("_meta") else {
        return;
    };
    for key in [
        META_PROTOCOL_VERSION,
        META_CLIENT_INFO,
        META_CLIENT_CAPABILITIES,
        META_LOG_LEVEL,
    ] {
        meta.remove(key);
    }
    if meta.is_empty() {
        params.remove("_meta");
    }
}

/// Makes a result a complete stateless one: `resultType`, the server's
/// identity in `_meta`, and for cacheable methods `ttlMs` (the backend's own,
/// when valid and at most `max_ttl_ms`; else `default_ttl_ms`) and
/// `cacheScope`. Results mcp-mux serves depend on the session's
/// credentials, so they are never "public".
pub fn complete_result(
    result: &mut Map<String, Value>,
    method: Method,
    default_ttl_ms: u64,
    max_ttl_ms: u64,
) {
    result
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        meta.insert(META_SERVER_INFO.to_owned(), server_info());
    }
    if method.is_cacheable() {
        let ttl = result
            .entry("ttlMs")
            .or_insert_with(|| json!(default_ttl_ms));
        if ttl.as_u64().is_none_or(|backend| backend > max_ttl_ms) {
            *ttl = json!(default_ttl_ms.min(max_ttl_ms));
        }
        result.insert("cacheScope".to_owned(), json!("private"));
    }
}

/// mcp-mux's identity, as results and `server/discover` carry it.
pub fn server_info() -> Value {
    json!({ "name": "mcp-mux", "title": "mcp-mux", "version": env!("CARGO_PKG_VERSION") })
}

/// The interim answer of a request that needs the client's input first.
pub fn input_required_result(input_requests: Map<String, Value>, request_state: &str) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": input_requests,
        "requestState": request_state,
    })
}

/// The client capability a server-to-client request needs.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// Syslog severities, as `notifications/message` and `logLevel` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(u8);

impl LogLevel {
    const NAMES: [&str; 8] = [
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|known| *known == name)
            .map(|index| LogLevel(index as u8))
    }

    /// Whether a `notifications/message` may go to a client that asked for
    /// `wanted` (None: no log messages at all).
    pub fn admits(wanted: Option<LogLevel>, message: &Value) -> bool {
        let level = message
            .pointer("/params/level")
            .and_then(Value::as_str)
            .and_then(LogLevel::parse);
        matches!((wanted, level), (Some(wanted), Some(level)) if level >= wanted)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn stateless_params(extra: Value) -> Value {
        let mut params = json!({
            "_meta": {
                META_PROTOCOL_VERSION: VERSION,
                META_CLIENT_CAPABILITIES: { "sampling": {} },
                META_CLIENT_INFO: { "name": "t", "version": "1" },
            }
        });
        params
            .as_object_mut()
            .expect("well-formed")
            .extend(extra.as_object().expect("well-formed").clone());
        params
    }

    fn check(
        method: &str,
        params: &Value,
        headers: &[(&str, &'static str)],
    ) -> Result<RequestMeta, Refused> {
        let headers: HashMap<&str, &'static str> = headers.iter().copied().collect();
        check_request(method, Some(params), |name| headers.get(name).copied())
    }

    #[test]
    fn a_request_whose_headers_mirror_the_body_is_accepted() {
        let params = stateless_params(json!({ "name": "echo" }));
        let meta = check(
            "tools/call",
            &params,
            &[
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
        )
        .expect("well-formed");
        assert_eq!(
            meta.client_capabilities,
            json!({ "sampling": {} })
                .as_object()
                .expect("well-formed")
                .clone()
        );
        assert_eq!(meta.log_level, None);
    }

    #[test]
    fn each_missing_or_different_header_is_named() {
        let params = stateless_params(json!({ "uri": "file:///a b" }));
        let full = [
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "resources/read"),
            ("mcp-name", "=?base64?ZmlsZTovLy9hIGI=?="),
        ];
        assert!(check("resources/read", &params, &full).is_ok());
        let cases: [(usize, &str, &str); 3] = [
            (
                0,
                "2025-11-25",
                "MCP-Protocol-Version header value '2025-11-25' does not match body value '2026-07-28'",
            ),
            (
                1,
                "tools/call",
                "Mcp-Method header value 'tools/call' does not match body value 'resources/read'",
            ),
            (
                2,
                "file:///a",
                "Mcp-Name header value 'file:///a' does not match body value 'file:///a b'",
            ),
        ];
        for (index, value, reason) in cases {
            let mut headers = full;
            headers[index].1 = value;
            assert_eq!(
                check("resources/read", &params, &headers),
                Err(mismatch(reason))
            );
            let without: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, h)| *h)
                .collect();
            let Err(Refused::HeaderMismatch { reason }) =
                check("resources/read", &params, &without)
            else {
                panic!("a missing header must be refused");
            };
            assert!(reason.ends_with("header is missing"), "{reason}");
        }
    }

    #[test]
    fn an_unsupported_version_lists_the_supported_ones() {
        let mut params = stateless_params(json!({}));
        params["_meta"][META_PROTOCOL_VERSION] = json!("1900-01-01");
        let refused = check(
            "tools/list",
            &params,
            &[
                ("mcp-protocol-version", "1900-01-01"),
                ("mcp-method", "tools/list"),
            ],
        )
        .expect_err("refused");
        assert_eq!(refused.code(), UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            refused.data().expect("well-formed"),
            json!({
                "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
                "requested": "1900-01-01",
            })
        );
    }

    #[test]
    fn the_stateless_meta_is_stripped_and_the_rest_kept() {
        let mut params = stateless_params(json!({ "name": "x" }));
        params["_meta"]["progressToken"] = json!(7);
        let Value::Object(mut params) = params else {
            panic!("an object");
        };
        strip_request_meta(&mut params);
        let kept = json!({ "name": "x", "_meta": { "progressToken": 7 } });
        assert_eq!(Value::Object(params), kept);
        let Value::Object(mut bare) = stateless_params(json!({ "name": "x" })) else {
            panic!("an object");
        };
        strip_request_meta(&mut bare);
        assert_eq!(Value::Object(bare), json!({ "name": "x" }));
    }

    #[test]
    fn a_completed_result_keeps_a_shorter_backend_ttl_and_is_private() {
        let mut result =
            json!({ "tools": [], "ttlMs": 5, "cacheScope": "public", "_meta": { "k": 1 } });
        let result = result.as_object_mut().expect("well-formed");
        complete_result(result, Method::ToolsList, 60_000, 60_000);
        assert_eq!(result["resultType"], "complete");
        assert_eq!(result["ttlMs"], 5);
        assert_eq!(result["cacheScope"], "private");
        assert_eq!(result["_meta"]["k"], 1);
        assert_eq!(result["_meta"][META_SERVER_INFO]["name"], "mcp-mux");

        let mut call = json!({ "content": [], "ttlMs": "soon" });
        let call = call.as_object_mut().expect("well-formed");
        complete_result(call, Method::ToolsCall, 60_000, 60_000);
        assert_eq!(
            call["ttlMs"], "soon",
            "tools/call results carry no caching hints"
        );
        let mut read = json!({ "contents": [], "ttlMs": -1 });
        let read = read.as_object_mut().expect("well-formed");
        complete_result(read, Method::ResourcesRead, 0, u64::MAX);
        assert_eq!(read["ttlMs"], 0);
        let mut listed = json!({ "tools": [] });
        let listed = listed.as_object_mut().expect("well-formed");
        complete_result(listed, Method::ToolsList, 60_000, 60_000);
        assert_eq!(listed["ttlMs"], 60_000);
    }

    #[test]
    fn log_messages_pass_from_the_level_asked_for() {
        let warning =
            json!({ "method": "notifications/message", "params": { "level": "warning" } });
        assert!(LogLevel::admits(LogLevel::parse("info"), &warning));
        assert!(LogLevel::admits(LogLevel::parse("warning"), &warning));
        assert!(!LogLevel::admits(LogLevel::parse("error"), &warning));
        assert!(!LogLevel::admits(None, &warning));
    }
}
