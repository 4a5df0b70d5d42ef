//! JSON-RPC 2.0 envelopes as MCP uses them: parsing what a peer sent,
//! writing answers, and the standard error codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::client_values;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (MCP also uses it for an unknown tool).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal JSON-RPC error; mcp-mux uses it when a backend cannot answer.
pub const INTERNAL_ERROR: i64 = -32603;
/// Revision 2025-11-25: the request waits on a URL-mode elicitation.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// A message received from a peer, classified by its members.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    /// A result or error answering one of our requests.
    Response(Response),
}

/// A peer's answer to a request we sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Value,
    /// `{"result": …}` or `{"error": …}`, as the peer sent it.
    pub outcome: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// A string or an integer: MCP forbids `null` ids.
    pub id: Value,
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

/// Why a JSON value is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("a JSON-RPC message must be a JSON object")]
    NotAnObject,
    #[error("\"jsonrpc\" must be \"2.0\"")]
    WrongVersion,
    #[error("\"id\" must be a string or an integer")]
    InvalidId,
    #[error("\"method\" must be a non-empty string")]
    InvalidMethod,
    #[error("\"params\" must be an object")]
    InvalidParams,
    #[error("a message needs \"method\", or \"result\" or \"error\" with an \"id\"")]
    Unclassifiable,
}

impl EnvelopeError {
    /// The JSON-RPC code a client gets for this envelope error.
    pub fn code(&self) -> i64 {
        match self {
            EnvelopeError::InvalidParams => INVALID_PARAMS,
            EnvelopeError::NotAnObject
            | EnvelopeError::WrongVersion
            | EnvelopeError::InvalidId
            | EnvelopeError::InvalidMethod
            | EnvelopeError::Unclassifiable => INVALID_REQUEST,
        }
    }
}

/// Returns the request id of `value` when it has a usable one, so an error
/// about the rest of the envelope can still be addressed to the request.
pub fn id_of(value: &Value) -> Option<&Value> {
    value.get("id").filter(|id| is_valid_id(id))
}

fn is_valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Classifies one decoded JSON value as a request, notification or response;
/// malformed trace context in its `params._meta` is dropped.
pub fn parse_message(value: Value) -> Result<Message, EnvelopeError> {
    let Value::Object(mut object) = value else {
        return Err(EnvelopeError::NotAnObject);
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(EnvelopeError::WrongVersion);
    }
    let id = object.remove("id");
    if let Some(id) = &id
        && !is_valid_id(id)
    {
        return Err(EnvelopeError::InvalidId);
    }
    match object.remove("method") {
        Some(Value::String(method)) if !method.is_empty() => {
            let params = match object.remove("params") {
                None => None,
                Some(Value::Object(mut params)) => {
                    // Parsed once here, so nothing later reads or passes
                    // on trace context a backend must not get.
                    client_values::drop_malformed_trace_context(&mut params);
                    Some(Value::Object(params))
                }
                Some(_) => return Err(EnvelopeError::InvalidParams),
            };
            Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            })
        }
        Some(_) => Err(EnvelopeError::InvalidMethod),
        None => match id {
            Some(id) if object.contains_key("result") || object.contains_key("error") => {
                object.remove("jsonrpc");
                Ok(Message::Response(Response {
                    id,
                    outcome: object,
                }))
            }
            _ => Err(EnvelopeError::Unclassifiable),
        },
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

#[derive(Serialize)]
struct ResultEnvelope<'a, R: Serialize + ?Sized> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a R,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: &'a ErrorObject,
}

#[derive(Serialize)]
struct RequestEnvelope<'a, P: Serialize + ?Sized> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a P>,
}

/// Serializes a success response; `result` may be a `RawValue` so that a
/// backend's result travels to the client byte for byte.
pub fn result_response<R: Serialize + ?Sized>(id: &Value, result: &R) -> Vec<u8> {
    to_bytes(&ResultEnvelope {
        jsonrpc: "2.0",
        id,
        result,
    })
}

/// Serializes an error response; `id` is `null` when the request's id is unknown.
pub fn error_response(id: &Value, error: &ErrorObject) -> Vec<u8> {
    to_bytes(&ErrorEnvelope {
        jsonrpc: "2.0",
        id,
        error,
    })
}

/// Serializes a request (with an id) or a notification (without one).
pub fn request<P: Serialize + ?Sized>(
    id: Option<u64>,
    method: &str,
    params: Option<&P>,
) -> Vec<u8> {
    to_bytes(&RequestEnvelope {
        jsonrpc: "2.0",
        id,
        method,
        params,
    })
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these envelopes cannot fail: every member is a plain JSON
    // value with string keys.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// A message received from a backend, with its payloads left undecoded so a
/// result can be passed on without being re-encoded.
#[derive(Debug, Deserialize)]
pub struct IncomingMessage {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<ErrorObject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = parse_message(json!({"jsonrpc":"2.0","id":1,"method":"ping"}));
        assert_eq!(
            request,
            Ok(Message::Request(Request {
                id: json!(1),
                method: "ping".into(),
                params: None
            }))
        );
        let notification =
            parse_message(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert!(matches!(notification, Ok(Message::Notification(_))));
        let response = parse_message(json!({"jsonrpc":"2.0","id":"a","result":{}}));
        let mut outcome = serde_json::Map::new();
        outcome.insert("result".into(), json!({}));
        assert_eq!(
            response,
            Ok(Message::Response(Response {
                id: json!("a"),
                outcome
            }))
        );
    }

    #[test]
    fn malformed_envelopes_are_rejected_with_a_reason() {
        let cases = [
            (json!([1]), EnvelopeError::NotAnObject),
            (json!({"id":1,"method":"ping"}), EnvelopeError::WrongVersion),
            (
                json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
                EnvelopeError::WrongVersion,
            ),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
                EnvelopeError::InvalidId,
            ),
            (
                json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}),
                EnvelopeError::InvalidId,
            ),
            (
                json!({"jsonrpc":"2.0","id":{},"method":"ping"}),
                EnvelopeError::InvalidId,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":7}),
                EnvelopeError::InvalidMethod,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":""}),
                EnvelopeError::InvalidMethod,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
                EnvelopeError::InvalidParams,
            ),
            (
                json!({"jsonrpc":"2.0","id":1}),
                EnvelopeError::Unclassifiable,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_message(value.clone()), Err(expected), "{value}");
        }
    }

    #[test]
    fn a_number_in_params_reaches_the_backend_as_the_nearest_float_to_what_the_client_wrote() {
        // The nearest float to this integer is 1.2342839450617283e22; a
        // parser one unit in the last place off sent ...285e22 on.
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"big":12342839450617283945061,"f":0.1}}}"#;
        let value: Value = serde_json::from_slice(body).expect("valid json");
        let Ok(Message::Request(call)) = parse_message(value) else {
            panic!("a request");
        };
        let nearest: f64 = "12342839450617283945061".parse().expect("a number");
        let params = call.params.expect("params");
        assert_eq!(params["arguments"]["big"].as_f64(), Some(nearest));
        let forwarded = request(Some(7), &call.method, Some(&params));
        let forwarded = std::str::from_utf8(&forwarded).expect("utf-8");
        assert!(
            forwarded.contains(r#""big":1.2342839450617283e+22"#),
            "{forwarded}"
        );
    }

    #[test]
    fn a_raw_result_is_passed_through_byte_for_byte() {
        let raw = RawValue::from_string(r#"{"content":[ {"type":"text","text":"hi"} ]}"#.into())
            .expect("valid json");
        let bytes = result_response(&json!(7), &raw);
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"jsonrpc":"2.0","id":7,"result":{"content":[ {"type":"text","text":"hi"} ]}}"#
        );
    }
}
