//! A POST body on the MCP endpoint, through the steps `handle_post` takes
//! before any I/O: decode, refuse batches, find the id, classify the
//! envelope, check a stateless request's `_meta`; and the same bytes as a
//! backend's answer. Nothing may panic, and what is parsed and written back
//! must hold to the envelope rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_mux::mcp::jsonrpc::{
    self, ErrorObject, INVALID_PARAMS, INVALID_REQUEST, IncomingMessage, Message,
};
use mcp_mux::mcp::stateless;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    check_backend_answer(body);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if value.is_array() {
        // The endpoint refuses batches before looking inside.
        return;
    }
    let id = jsonrpc::id_of(&value).cloned();
    if let Some(id) = &id {
        assert!(is_id(id), "id_of let through {id}");
    }
    match jsonrpc::parse_message(value.clone()) {
        Ok(Message::Request(request)) => {
            assert!(is_id(&request.id));
            assert_eq!(
                id.as_ref(),
                Some(&request.id),
                "id_of and the request differ"
            );
            assert!(!request.method.is_empty());
            assert!(request.params.as_ref().is_none_or(Value::is_object));
            check_request_round_trip(&request);
            check_stateless(&request);
            let answer = written(jsonrpc::result_response(&request.id, &value));
            assert_eq!(answer["id"], request.id);
            assert_eq!(answer["result"], value);
        }
        Ok(Message::Notification(notification)) => {
            assert!(value.get("id").is_none(), "a notification with an id");
            assert!(!notification.method.is_empty());
            assert!(notification.params.as_ref().is_none_or(Value::is_object));
        }
        Ok(Message::Response(response)) => {
            assert_eq!(
                id.as_ref(),
                Some(&response.id),
                "id_of and the response differ"
            );
            assert!(value.get("method").is_none(), "a response with a method");
            assert!(
                response.outcome.contains_key("result") || response.outcome.contains_key("error")
            );
            assert!(!response.outcome.contains_key("jsonrpc"));
            assert!(!response.outcome.contains_key("id"));
        }
        Err(error) => {
            assert!(matches!(error.code(), INVALID_REQUEST | INVALID_PARAMS));
            // The refusal the client gets, addressed to the id when it is usable.
            let refusal_id = id.unwrap_or(Value::Null);
            let refusal = written(jsonrpc::error_response(
                &refusal_id,
                &ErrorObject::new(error.code(), error.to_string()),
            ));
            assert_eq!(refusal["id"], refusal_id);
            assert_eq!(refusal["error"]["code"], error.code());
        }
    }
});

fn is_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Bytes mcp-mux writes: always one JSON object with `"jsonrpc": "2.0"`.
fn written(bytes: Vec<u8>) -> Value {
    let value: Value = serde_json::from_slice(&bytes).expect("mcp-mux wrote invalid JSON");
    assert_eq!(value["jsonrpc"], "2.0", "{value}");
    value
}

/// A request written back in its plain form parses to the same request.
fn check_request_round_trip(request: &jsonrpc::Request) {
    let mut plain = serde_json::Map::new();
    plain.insert("jsonrpc".into(), "2.0".into());
    plain.insert("id".into(), request.id.clone());
    plain.insert("method".into(), request.method.clone().into());
    if let Some(params) = &request.params {
        plain.insert("params".into(), params.clone());
    }
    let again = jsonrpc::parse_message(Value::Object(plain));
    assert_eq!(again, Ok(Message::Request(request.clone())));
}

/// The checks of a 2026-07-28 request, with its headers mirroring the body
/// and without headers; `_meta` stripped for a legacy backend keeps none of
/// the stateless keys.
fn check_stateless(request: &jsonrpc::Request) {
    let params = request.params.as_ref();
    let declared = stateless::declared_version(params).and_then(Value::as_str);
    let name = params
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str);
    let mirrored = |header: &str| match header {
        mcp_mux::mcp::PROTOCOL_VERSION_HEADER => declared,
        stateless::METHOD_HEADER => Some(request.method.as_str()),
        stateless::NAME_HEADER => name,
        _ => None,
    };
    let checked = stateless::check_request(&request.method, params, mirrored);
    if let Err(refused) = &checked {
        let _ = (refused.code(), refused.data(), refused.to_string());
    }
    if checked.is_ok() {
        assert_eq!(declared, Some(stateless::VERSION), "another revision passed");
    }
    let unheaded = stateless::check_request(&request.method, params, |_| None);
    assert!(unheaded.is_err(), "a stateless request passed without headers");
    if let Some(name) = name {
        let _ = stateless::decode_header_value(name);
    }
    if let Some(Value::Object(params)) = &request.params {
        let mut stripped = params.clone();
        stateless::strip_request_meta(&mut stripped);
        if let Some(Value::Object(meta)) = stripped.get("_meta") {
            assert!(!meta.is_empty(), "an empty _meta was left behind");
            for key in [
                stateless::META_PROTOCOL_VERSION,
                stateless::META_CLIENT_INFO,
                stateless::META_CLIENT_CAPABILITIES,
                stateless::META_LOG_LEVEL,
            ] {
                assert!(!meta.contains_key(key), "{key} was left in _meta");
            }
        }
    }
}

/// The same bytes as a backend's answer: a raw result is written back to
/// the client byte for byte, however deep or spaced out it is.
fn check_backend_answer(body: &[u8]) {
    let Ok(message) = serde_json::from_slice::<IncomingMessage>(body) else {
        return;
    };
    let id = message.id.unwrap_or(Value::Null);
    if let Some(result) = &message.result {
        let id_text = serde_json::to_string(&id).expect("an id serializes");
        let expected = format!(
            r#"{{"jsonrpc":"2.0","id":{id_text},"result":{}}}"#,
            result.get()
        );
        let answer = jsonrpc::result_response(&id, result);
        assert_eq!(
            String::from_utf8_lossy(&answer),
            expected,
            "a raw result was not passed on byte for byte"
        );
    }
    if let Some(error) = &message.error {
        let answer = written(jsonrpc::error_response(&id, error));
        assert_eq!(answer["error"]["code"], error.code);
    }
}
