//! The Streamable HTTP rules of a session's MCP endpoint: headers, statuses,
//! version negotiation and JSON-RPC errors.

use serde_json::{Value, json};

use crate::helpers::*;

async fn one_backend() -> (TestApp, RmcpBackend, String) {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &alpha.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    (app, alpha, session)
}

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    };
    (status, body)
}

#[tokio::test]
async fn initialize_answers_with_the_gateway_identity_and_an_mcp_session_id() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = RawMcp::new(app.mcp_url(&session));
    let result = mcp.initialize("2025-11-25").await;
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert_eq!(result["serverInfo"]["name"], "mcp-mux");
    assert_eq!(
        result["capabilities"]["tools"],
        json!({ "listChanged": true })
    );
    assert!(
        result["instructions"]
            .as_str()
            .expect("instructions")
            .contains("alpha (prefix \"alpha__\")")
    );
    let id = mcp.session_id.clone().expect("issued");
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test]
async fn version_negotiation_echoes_known_revisions_and_answers_others_with_the_latest() {
    let (app, _alpha, session) = one_backend().await;
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2026-07-28", "2025-11-25"),
        ("2024-01-01", "2025-11-25"),
    ] {
        let mut mcp = RawMcp::new(app.mcp_url(&session));
        assert_eq!(
            mcp.initialize(asked).await["protocolVersion"],
            answered,
            "asked {asked}"
        );
    }
}

#[tokio::test]
async fn ping_notifications_and_responses_are_answered_locally() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(mcp.request("ping", json!({})).await["result"], json!({}));
    for message in [
        json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 9 } }),
        json!({ "jsonrpc": "2.0", "id": "s-1", "result": {} }),
    ] {
        let (status, body) = status_and_body(mcp.post(&message).await).await;
        assert_eq!((status, body), (202, Value::Null), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_method_is_method_not_found() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = app.mcp(&session).await;
    let answer = mcp.request("resources/frobnicate", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({ "code": -32601, "message": "method not found: resources/frobnicate" })
    );
}

#[tokio::test]
async fn an_unknown_tool_is_an_error_naming_the_tool() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = app.mcp(&session).await;
    let answer = mcp.call_tool("alpha__nope", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({ "code": -32602, "message": "unknown tool \"alpha__nope\"", "data": { "tool": "alpha__nope" } })
    );
    let unprefixed = mcp.call_tool("echo", json!({ "text": "x" })).await;
    assert_eq!(unprefixed["error"]["message"], "unknown tool \"echo\"");
}

#[tokio::test]
async fn malformed_tool_calls_are_invalid_params() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = app.mcp(&session).await;
    let no_name = mcp.request("tools/call", json!({ "arguments": {} })).await;
    assert_eq!(
        no_name["error"],
        json!({ "code": -32602, "message": "invalid params: \"name\" must be a string" })
    );
    let cursor = mcp
        .request("tools/list", json!({ "cursor": "bogus" }))
        .await;
    assert_eq!(
        cursor["error"],
        json!({ "code": -32602, "message": "invalid params: invalid or expired cursor for tools/list; list again without one" })
    );
    let again = mcp
        .request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }))
        .await;
    // An initialize with a session id opens a new MCP session rather than failing.
    assert_eq!(again["result"]["serverInfo"]["name"], "mcp-mux");
}

#[tokio::test]
async fn transport_errors_have_their_status_and_a_json_rpc_body() {
    let (app, _alpha, session) = one_backend().await;
    let url = app.mcp_url(&session);
    let http = reqwest::Client::new();
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });

    let missing = http.post(&url).json(&ping).send().await.expect("answer");
    assert_eq!(
        status_and_body(missing).await,
        (
            400,
            json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32600, "message": "missing Mcp-Session-Id header: send initialize first" } })
        )
    );

    let unknown = http
        .post(&url)
        .header("mcp-session-id", "f".repeat(32))
        .json(&ping)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(unknown).await,
        (
            404,
            json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32600, "message": "unknown or ended MCP session: initialize again" } })
        )
    );

    let mcp = app.mcp(&session).await;
    let mcp_session = mcp.session_id.clone().expect("id");
    let bad_version = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&ping)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(bad_version).await,
        (
            400,
            json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32600, "message": "unsupported MCP-Protocol-Version; supported: 2025-11-25, 2025-06-18, 2025-03-26" } })
        )
    );

    let evil_origin = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .header("origin", "http://evil.example")
        .json(&ping)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(evil_origin).await,
        (
            403,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "Origin not allowed" } })
        )
    );
    let local_origin = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .header("origin", "http://localhost:6274")
        .json(&ping)
        .send()
        .await
        .expect("answer");
    assert_eq!(local_origin.status(), 200);

    let parse_error = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .body("{not json")
        .send()
        .await
        .expect("answer");
    let (status, body) = status_and_body(parse_error).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32700)));
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("parse error: ")
    );

    let batch = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .json(&json!([ping]))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(batch).await,
        (
            400,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "JSON-RPC batches are not supported: send one message per POST (protocol revision 2025-06-18 and later)" } })
        )
    );

    let wrong_version = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .json(&json!({ "jsonrpc": "1.0", "id": 7, "method": "ping" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(wrong_version).await,
        (
            400,
            json!({ "jsonrpc": "2.0", "id": 7, "error": { "code": -32600, "message": "\"jsonrpc\" must be \"2.0\"" } })
        )
    );

    let too_large = http
        .post(&url)
        .header("mcp-session-id", &mcp_session)
        .body(vec![b' '; 5 * 1024 * 1024])
        .send()
        .await
        .expect("answer");
    assert_eq!(
        status_and_body(too_large).await,
        (
            413,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "request body exceeds 4194304 bytes" } })
        )
    );
}

#[tokio::test]
async fn an_unknown_session_is_404_on_every_method() {
    let (app, _alpha, _session) = one_backend().await;
    let http = reqwest::Client::new();
    for id in [
        "0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61",
        "not-a-uuid",
        "..%2F..%2Fetc",
    ] {
        let url = app.mcp_url(id);
        for response in [
            http.post(&url)
                .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {} }))
                .send()
                .await,
            http.get(&url).send().await,
            http.delete(&url).send().await,
        ] {
            let (status, body) = status_and_body(response.expect("answer")).await;
            assert_eq!(status, 404, "{id}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .expect("message")
                    .starts_with("no session \""),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn server_discover_without_a_session_is_a_4xx_so_clients_fall_back_to_initialize() {
    let (app, _alpha, session) = one_backend().await;
    let response = reqwest::Client::new()
        .post(app.mcp_url(&session))
        .json(&json!({ "jsonrpc": "2.0", "id": "discover-1", "method": "server/discover", "params": {} }))
        .send()
        .await
        .expect("answer");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["id"], "discover-1");
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn get_opens_the_client_stream_and_delete_ends_the_mcp_session() {
    let (app, _alpha, session) = one_backend().await;
    let mut mcp = app.mcp(&session).await;
    let mcp_session = mcp.session_id.clone().expect("id");
    let http = reqwest::Client::new();

    let probe = http.get(&mcp.url).send().await.expect("answer");
    assert_eq!(
        probe.status(),
        405,
        "without an MCP session there is nothing to listen to"
    );
    assert_eq!(probe.headers()["allow"], "POST, DELETE");
    let get = http
        .get(&mcp.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &mcp_session)
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "text/event-stream");
    drop(get);
    let unknown = http
        .get(&mcp.url)
        .header("mcp-session-id", "f".repeat(32))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404);

    let missing = http.delete(&mcp.url).send().await.expect("answer");
    assert_eq!(missing.status(), 400);

    let deleted = http
        .delete(&mcp.url)
        .header("mcp-session-id", &mcp_session)
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    let after = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert_eq!(after.status(), 404);
    let again = http
        .delete(&mcp.url)
        .header("mcp-session-id", &mcp_session)
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status(), 404);

    // The session itself lives on: a new MCP session works.
    mcp.initialize("2025-11-25").await;
    assert_eq!(mcp.request("ping", json!({})).await["result"], json!({}));
}

#[tokio::test]
async fn origins_that_are_not_loopback_are_refused_on_every_route() {
    let (app, _alpha, session) = one_backend().await;
    let http = reqwest::Client::new();
    let mcp = app.mcp(&session).await;
    for origin in [
        "http://evil.example",
        "null",
        "not an origin",
        "http://127.0.0.1.evil.example",
    ] {
        for request in [
            http.post(&mcp.url)
                .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" })),
            http.get(&mcp.url),
            http.delete(&mcp.url),
        ] {
            let response = request
                .header("origin", origin)
                .header("mcp-session-id", mcp.session_id.clone().expect("id"))
                .send()
                .await
                .expect("answer");
            assert_eq!(
                status_and_body(response).await,
                (
                    403,
                    json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "Origin not allowed" } })
                ),
                "{origin}"
            );
        }
        let management = [
            http.post(format!("{}/create-session", app.address))
                .json(&json!({ "servers": ["alpha"] })),
            http.get(format!("{}/session/{session}", app.address)),
            http.delete(format!("{}/session/{session}", app.address)),
            http.get(format!("{}/registry", app.address)),
            http.get(format!("{}/healthz", app.address)),
        ];
        for request in management {
            let response = request
                .header("origin", origin)
                .send()
                .await
                .expect("answer");
            assert_eq!(
                status_and_body(response).await,
                (
                    403,
                    json!({ "error": "forbidden", "message": "Origin not allowed" })
                ),
                "{origin}"
            );
        }
    }
    for origin in [
        "http://localhost:6274",
        "http://127.0.0.1",
        "http://[::1]:3000",
    ] {
        let response = mcp
            .http
            .post(&mcp.url)
            .header("origin", origin)
            .header("mcp-session-id", mcp.session_id.clone().expect("id"))
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{origin}");
    }
}

#[tokio::test]
async fn initialize_negotiates_whatever_protocol_version_header_it_carries() {
    let (app, _alpha, session) = one_backend().await;
    let response = reqwest::Client::new()
        .post(app.mcp_url(&session))
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } }))
        .send()
        .await
        .expect("answer");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn a_tool_call_without_params_is_invalid_params() {
    let (app, _alpha, session) = one_backend().await;
    let mcp = app.mcp(&session).await;
    let response = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call" }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        read_message(response).await,
        json!({ "jsonrpc": "2.0", "id": 4, "error": { "code": -32602, "message": "invalid params: tools/call needs params with a \"name\"" } })
    );
}

#[tokio::test]
async fn other_methods_are_405_with_allow_and_a_json_body() {
    let (app, _alpha, session) = one_backend().await;
    let http = reqwest::Client::new();
    let mcp_put = http
        .put(app.mcp_url(&session))
        .send()
        .await
        .expect("answer");
    assert_eq!(mcp_put.headers()["allow"], "POST, GET, DELETE");
    assert_eq!(
        status_and_body(mcp_put).await,
        (
            405,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "method not allowed; use POST, GET, DELETE" } })
        )
    );
    for (method, path, allow) in [
        (
            reqwest::Method::PUT,
            format!("/session/{session}"),
            "GET, DELETE",
        ),
        (reqwest::Method::GET, "/create-session".to_owned(), "POST"),
        (reqwest::Method::POST, "/registry".to_owned(), "GET"),
        (reqwest::Method::DELETE, "/healthz".to_owned(), "GET"),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_eq!(
            status_and_body(response).await,
            (
                405,
                json!({ "error": "method_not_allowed", "message": format!("method not allowed; use {allow}") })
            ),
            "{method} {path}"
        );
    }
}
