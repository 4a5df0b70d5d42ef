//! Hostile input, table-driven: each bad request gets its exact status and
//! JSON-RPC code, and none of them stores anything or reaches a backend.

use serde_json::{Value, json};

use crate::helpers::*;

/// What one bad request must get: an HTTP status, and the JSON-RPC error
/// code and message of its body (None for a plain JSON error body).
struct Case {
    name: &'static str,
    body: Vec<u8>,
    status: u16,
    code: Option<i64>,
    message: &'static str,
}

fn case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: i64,
    message: &'static str,
) -> Case {
    Case {
        name,
        body: body.into(),
        status,
        code: Some(code),
        message,
    }
}

fn deep(levels: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

fn cases() -> Vec<Case> {
    let mut huge = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
    huge.extend(br#""}}"#);
    vec![
        case(
            "malformed JSON",
            r#"{"jsonrpc":"2.0","id":1,"method":"#,
            400,
            -32700,
            "parse error: EOF while parsing a value at line 1 column 33",
        ),
        case(
            "empty body",
            "",
            400,
            -32700,
            "parse error: EOF while parsing a value at line 1 column 0",
        ),
        case(
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}".to_vec(),
            400,
            -32700,
            "parse error: invalid unicode code point at line 1 column 35",
        ),
        case(
            "not an object",
            "42",
            400,
            -32600,
            "a JSON-RPC message must be a JSON object",
        ),
        case(
            "a batch",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            400,
            -32600,
            "JSON-RPC batches are not supported: send one message per POST (protocol revision 2025-06-18 and later)",
        ),
        case(
            "wrong jsonrpc",
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            400,
            -32600,
            "\"jsonrpc\" must be \"2.0\"",
        ),
        case(
            "missing jsonrpc",
            r#"{"id":1,"method":"ping"}"#,
            400,
            -32600,
            "\"jsonrpc\" must be \"2.0\"",
        ),
        case(
            "id an object",
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
            400,
            -32600,
            "\"id\" must be a string or an integer",
        ),
        case(
            "id a float",
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            400,
            -32600,
            "\"id\" must be a string or an integer",
        ),
        case(
            "id a boolean",
            r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
            400,
            -32600,
            "\"id\" must be a string or an integer",
        ),
        case(
            "id past 64 bits",
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#,
            400,
            -32600,
            "\"id\" must be a string or an integer",
        ),
        case(
            "method a number",
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            400,
            -32600,
            "\"method\" must be a non-empty string",
        ),
        case(
            "method empty",
            r#"{"jsonrpc":"2.0","id":1,"method":""}"#,
            400,
            -32600,
            "\"method\" must be a non-empty string",
        ),
        case(
            "params an array",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x"]}"#,
            400,
            -32602,
            "\"params\" must be an object",
        ),
        case(
            "neither method nor result",
            r#"{"jsonrpc":"2.0","id":1}"#,
            400,
            -32600,
            "a message needs \"method\", or \"result\" or \"error\" with an \"id\"",
        ),
        case(
            "nested too deep",
            deep(80),
            400,
            -32600,
            "the message nests arrays and objects deeper than 64 levels",
        ),
        case(
            "over 4 MiB",
            huge,
            413,
            -32600,
            "request body exceeds 4194304 bytes",
        ),
    ]
}

#[tokio::test]
async fn every_bad_message_gets_its_exact_status_and_code_and_reaches_no_backend() {
    let server = mock_backend(
        json!([{ "name": "t", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    let (app, mcp) = session_over_mock("mock", &server).await;
    // Messages are POSTs: the backend's own stream (a GET) opens on its own
    // time, and its notice follows initialize's answer.
    let posts = |request: &wiremock::Request| request.method == wiremock::http::Method::POST;
    assert!(
        eventually(|| async { requests_for(&server, "notifications/initialized").await == 1 })
            .await,
        "the backend took its notice"
    );
    let forwarded = count_requests(&server, posts).await;
    for case in cases() {
        let response = mcp
            .http
            .post(&mcp.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", mcp.session_id.clone().expect("id"))
            .header("mcp-protocol-version", "2025-11-25")
            .body(case.body)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["jsonrpc"], "2.0", "{}", case.name);
        assert_eq!(body["error"]["code"], json!(case.code), "{}", case.name);
        assert_eq!(body["error"]["message"], case.message, "{}", case.name);
    }
    assert_eq!(
        count_requests(&server, posts).await,
        forwarded,
        "nothing reached the backend"
    );
    // Well-formed requests the gateway answers itself, with JSON-RPC errors.
    let mut mcp = mcp;
    for (method, params, code, message) in [
        (
            "no/such/method",
            json!({}),
            -32601,
            "method not found: no/such/method",
        ),
        (
            "tools/call",
            json!({ "name": 5 }),
            -32602,
            "invalid params: \"name\" must be a string",
        ),
        (
            "tools/call",
            json!({}),
            -32602,
            "invalid params: \"name\" must be a string",
        ),
        (
            "tools/call",
            json!({ "name": "mock__nope" }),
            -32602,
            "unknown tool \"mock__nope\"",
        ),
    ] {
        let answer = mcp.request(method, params.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{method} {params}");
        assert_eq!(answer["error"]["message"], message, "{method} {params}");
    }
    assert_eq!(
        requests_for(&server, "tools/call").await,
        0,
        "no call reached the backend"
    );
    drop(app);
}

#[tokio::test]
async fn path_tricks_in_the_session_id_name_no_session() {
    let server = mock_backend(json!([]), false).await;
    let (app, _mcp) = session_over_mock("mock", &server).await;
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    for path in [
        "/session/..%2F..%2Fetc%2Fpasswd/mcp",
        "/session/%00/mcp",
        "/session/00000000-0000-4000-8000-000000000000%00/mcp",
        "/session/00000000-0000-4000-8000-000000000000/mcp",
        "/session/not-a-uuid/mcp",
        "/session/%7B00000000-0000-4000-8000-000000000000%7D/mcp",
    ] {
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .json(&ping)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.expect("JSON");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(message.starts_with("no session \""), "{path}: {message}");
        assert!(
            !message.chars().any(char::is_control),
            "{path}: the message carries no control characters"
        );
    }
    // A client resolves dot segments before sending; what is left is a route
    // or nothing, never a file.
    for (path, status) in [
        ("/session/../../etc/passwd", 404),
        ("/session//mcp", 404),
        // Resolved to /registry by the client, as browsers do.
        ("/session/%2E%2E/registry", 200),
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{path}");
        let text = response.text().await.expect("body");
        assert!(!text.contains("root:"), "{path} reads no file");
    }
}

#[tokio::test]
async fn hostile_create_session_bodies_store_nothing() {
    let app = spawn_app(&registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")])).await;
    let mut huge = br#"{"servers":["alpha"],"pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend(br#""}"#);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"{".to_vec(),
            400,
            "body: is not valid JSON (EOF while parsing an object at line 1 column 1)",
        ),
        (
            b"\xff\xfe".to_vec(),
            400,
            "body: is not valid JSON (expected value at line 1 column 1)",
        ),
        (
            format!(
                r#"{{"servers":["alpha"],"x":{}1{}}}"#,
                "[".repeat(70),
                "]".repeat(70)
            )
            .into_bytes(),
            400,
            "body: nests arrays and objects deeper than 64 levels",
        ),
        (huge, 413, "request body exceeds 65536 bytes"),
        (
            br#"{"servers":["alpha\u0000"]}"#.to_vec(),
            400,
            "servers[0]: unknown server \"alpha\\0\"; known: alpha",
        ),
    ];
    for (body, status, message) in cases {
        let response = app
            .http
            .post(format!("{}/create-session", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{message}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(answer["message"], message);
    }
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 0);
}
