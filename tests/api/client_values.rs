//! Every value a client controls that reaches a backend (trace context,
//! other `_meta` keys, names, URIs, credentials), fed CR, LF, NUL,
//! non-ASCII and 1 MiB: each is dropped, passed on as escaped JSON, or
//! refused with an exact error, and none counts against the backend.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::traces::{CLIENT_TRACEPARENT, recording_backend};

/// The hostile values, by name.
fn hostile() -> Vec<(&'static str, String)> {
    vec![
        ("CR", "\r".to_owned()),
        ("LF", "\n".to_owned()),
        ("NUL", "\0".to_owned()),
        ("non-ASCII", "é".to_owned()),
        ("1 MiB", "x".repeat(1 << 20)),
    ]
}

/// The JSON-RPC error for a URI that cannot go on, or `None` when it goes
/// on to its backend.
fn uri_refusal(field: &str, bad: &str) -> Option<Value> {
    let problem = if bad.len() > 64 * 1024 {
        "must be at most 65536 bytes"
    } else if bad.chars().any(char::is_control) {
        "must not contain control characters (CR, LF, NUL, …)"
    } else {
        return None;
    };
    Some(json!({ "code": -32602, "message": format!("invalid params: \"{field}\" {problem}") }))
}

#[tokio::test]
async fn hostile_client_values_are_dropped_or_refused_and_never_count_against_the_backend() {
    let (backend, received) = recording_backend().await;
    let app = spawn_app(&registry_yaml(&[
        (
            "traced",
            &backend.url,
            // One failure counted against the backend would open its circuit.
            "circuit_breaker: { failure_threshold: 1, open_ms: 60000 }",
        ),
        ("secured", &backend.url, "auth: { type: bearer }"),
    ]))
    .await;
    let session = app.create_session(json!({ "servers": ["traced"] })).await;
    let mut mcp = app.mcp(&session).await;
    let echo = |meta: Value| json!({ "name": "traced__echo", "arguments": { "text": "hi" }, "_meta": meta });

    for (what, bad) in hostile() {
        // Trace context that is malformed is dropped; the call goes on.
        let metas = [
            json!({ "traceparent": format!("{CLIENT_TRACEPARENT}{bad}"), "tracestate": "a=b", "k": 1 }),
            json!({ "traceparent": CLIENT_TRACEPARENT, "tracestate": format!("a=b{bad}c"), "k": 1 }),
            json!({ "k": bad }),
        ];
        for meta in metas {
            let answer = mcp.request("tools/call", echo(meta)).await;
            assert_eq!(first_text(&answer), "traced: hi", "{what}");
        }
        let calls = received.lock().expect("lock").drain(..).collect::<Vec<_>>();
        assert_eq!(calls.len(), 3, "{what}");
        assert_eq!(
            (&calls[0].header, &calls[0].tracestate),
            (&None, &None),
            "{what}"
        );
        assert_eq!(calls[0].meta, json!({ "k": 1 }), "{what}");
        assert_eq!(
            calls[1].header.as_deref(),
            Some(CLIENT_TRACEPARENT),
            "{what}"
        );
        assert_eq!(calls[1].tracestate, None, "{what}");
        assert_eq!(
            calls[1].meta,
            json!({ "traceparent": CLIENT_TRACEPARENT, "k": 1 }),
            "{what}"
        );
        // Any other `_meta` key travels as JSON, escaped, as it came.
        assert_eq!(
            (&calls[2].header, &calls[2].tracestate),
            (&None, &None),
            "{what}"
        );
        assert_eq!(calls[2].meta, json!({ "k": bad }), "{what}");

        // Names are looked up, never sent as sent: these name nothing.
        let tool = format!("traced__echo{bad}");
        let answer = mcp.call_tool(&tool, json!({ "text": "hi" })).await;
        assert_eq!(
            answer["error"],
            json!({ "code": -32602, "message": format!("unknown tool \"{tool}\""), "data": { "tool": tool } }),
            "{what}"
        );
        let prompt = format!("traced__greeting{bad}");
        let answer = mcp.request("prompts/get", json!({ "name": prompt })).await;
        assert_eq!(
            answer["error"],
            json!({ "code": -32602, "message": format!("unknown prompt \"{prompt}\""), "data": { "prompt": prompt } }),
            "{what}"
        );

        // A URI goes on without its server part: refused unless it can.
        for (field, uri) in [("uri", format!("traced+file:///a{bad}"))] {
            let answer = mcp.request("resources/read", json!({ "uri": uri })).await;
            // One that goes on reaches the backend, which serves no resources.
            let expected = uri_refusal(field, &uri)
                .unwrap_or_else(|| json!({ "code": -32601, "message": "resources/read" }));
            assert_eq!(answer["error"], expected, "{what}");
        }
        let uri = format!("traced+file:///{{a}}{bad}");
        let reference = json!({ "type": "ref/resource", "uri": uri });
        let answer = mcp
            .request(
                "completion/complete",
                json!({ "ref": reference, "argument": { "name": "a", "value": "" } }),
            )
            .await;
        match uri_refusal("ref.uri", &uri) {
            Some(refused) => assert_eq!(answer["error"], refused, "{what}"),
            // One that goes on reaches the backend, which completes nothing.
            None => assert_eq!(
                answer["result"],
                json!({ "completion": { "values": [] } }),
                "{what}"
            ),
        }

        // A credential that cannot be a header never makes a session.
        let refused = app
            .post_create_session(&json!({
                "servers": ["secured"],
                "credentials": { "secured": { "token": format!("t{bad}k") } }
            }))
            .await;
        let (status, body) = match what {
            // Past the create-session body's 64 KiB first.
            "1 MiB" => (
                413,
                json!({ "error": "payload_too_large", "message": "request body exceeds 65536 bytes" }),
            ),
            _ => {
                let problem = match what {
                    "CR" | "LF" => "must not contain CR or LF",
                    _ => "must be printable ASCII (no control characters)",
                };
                let field = "credentials.secured.token";
                let message = format!("{field}: {problem}");
                (
                    400,
                    json!({ "error": "bad_request", "field": field, "message": message }),
                )
            }
        };
        assert_eq!(refused.status(), status, "{what}");
        assert_eq!(
            refused.json::<Value>().await.expect("JSON body"),
            body,
            "{what}"
        );
    }
    assert!(received.lock().expect("lock").is_empty());

    assert_eq!(
        app.shown_session(&session).await["servers"][0]["circuit"],
        json!({ "state": "closed", "consecutive_failures": 0 })
    );
    let bystander = app.create_session(json!({ "servers": ["traced"] })).await;
    let mut other = app.mcp(&bystander).await;
    let answer = other
        .call_tool("traced__echo", json!({ "text": "hi" }))
        .await;
    assert_eq!(first_text(&answer), "traced: hi");
}

#[tokio::test]
async fn a_trace_context_header_that_is_not_ascii_is_dropped() {
    let (backend, received) = recording_backend().await;
    let app = spawn_app(&registry_yaml(&[("traced", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["traced"] })).await;
    let mcp = app.mcp(&session).await;
    let answer = mcp
        .posting(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "traced__echo", "arguments": { "text": "hi" } }
        }))
        .header("traceparent", CLIENT_TRACEPARENT)
        .header(
            "tracestate",
            reqwest::header::HeaderValue::from_bytes("a=b\u{e9}".as_bytes()).expect("obs-text"),
        )
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(first_text(&read_message(answer).await), "traced: hi");
    let calls = received.lock().expect("lock").clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header.as_deref(), Some(CLIENT_TRACEPARENT));
    assert_eq!(calls[0].tracestate, None);
}

#[tokio::test]
async fn a_plain_http_call_naming_a_tool_with_control_characters_finds_no_tool() {
    let (backend, _received) = recording_backend().await;
    let app = spawn_app(&registry_yaml(&[("traced", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["traced"] })).await;
    let refused = reqwest::Client::new()
        .post(format!(
            "{}/session/{session}/tools/traced__echo%0D%0Ax",
            app.address
        ))
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(refused.status(), 404);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON body"),
        json!({ "error": "not_found", "message": "unknown tool \"traced__echo\r\nx\"" })
    );
}
