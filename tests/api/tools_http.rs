//! A session's tools over plain HTTP: `GET /session/<id>/tools` and
//! `POST /session/<id>/tools/<name>`, with the session's rules, token,
//! audit, and every failure as its HTTP status.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn call(app: &TestApp, session: &str, tool: &str, body: &str) -> (u16, Value) {
    call_with(app, session, tool, body, None).await
}

async fn call_with(
    app: &TestApp,
    session: &str,
    tool: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/session/{session}/tools/{tool}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_script_lists_and_calls_the_tools_its_session_shows() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &alpha.url, "")])).await;
    let session = app
        .create_session(json!({
            "servers": ["alpha"],
            "tools": { "alpha": { "deny": ["add"], "rename": { "echo": "say" } } },
        }))
        .await;
    let listed = app.get_json(&format!("/session/{session}/tools")).await;
    let tools = listed["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["name"], "alpha__say");
    assert_eq!(
        tools[0]["inputSchema"]["properties"]["text"]["type"],
        "string"
    );

    let (status, result) = call(&app, &session, "alpha__say", r#"{"text": "hi"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(result["content"][0]["text"], "alpha: hi");
    assert_eq!(result["isError"], false);

    // Hidden, or never there: the same 404.
    for missing in ["alpha__add", "alpha__nope"] {
        let (status, refused) = call(&app, &session, missing, "{}").await;
        assert_eq!(status, 404);
        assert_eq!(
            refused,
            json!({ "error": "not_found", "message": format!("unknown tool \"{missing}\"") })
        );
    }
    // Arguments that are not a JSON object, or that the tool refuses.
    let (status, refused) = call(&app, &session, "alpha__say", "[1]").await;
    assert_eq!(
        (status, refused),
        (
            400,
            json!({ "error": "bad_request", "field": "body", "message": "body: must be a JSON object of the tool's arguments" })
        )
    );
    let (status, refused) = call(&app, &session, "alpha__say", "{").await;
    assert_eq!(status, 400);
    assert_eq!(refused["field"], "body");
    assert_eq!(
        refused["message"],
        "body: is not valid JSON (EOF while parsing an object at line 1 column 1)"
    );
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(70), "]".repeat(70));
    let (status, refused) = call(&app, &session, "alpha__say", &deep).await;
    assert_eq!(
        (status, refused),
        (
            400,
            json!({ "error": "bad_request", "field": "body", "message": "body: nests arrays and objects deeper than 64 levels" })
        )
    );
    let huge = format!("{{\"text\":\"{}\"}}", "x".repeat(4 * 1024 * 1024));
    let (status, refused) = call(&app, &session, "alpha__say", &huge).await;
    assert_eq!(
        (status, refused),
        (
            413,
            json!({ "error": "payload_too_large", "message": "request body exceeds 4194304 bytes" })
        )
    );

    // rmcp answers arguments it cannot read as a tool error.
    let (status, result) = call(&app, &session, "alpha__say", r#"{"text": 5}"#).await;
    assert_eq!(status, 200);
    assert_eq!(result["isError"], true);

    // The calls are audited like MCP calls.
    assert!(app.audited(&session, "alpha__say", "alpha").await);
    app.stop().await;
}

#[tokio::test]
async fn a_tool_error_is_a_200_and_backend_failures_have_their_status() {
    let server = mock_backend(
        json!([
            { "name": "fail", "inputSchema": { "type": "object" } },
            { "name": "slow", "inputSchema": { "type": "object" } },
            { "name": "refuse", "inputSchema": { "type": "object" } },
            { "name": "strict", "inputSchema": { "type": "object" } },
        ]),
        false,
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "fail" } })))
        .respond_with(JsonRpcAnswer::result(
            json!({ "content": [{ "type": "text", "text": "no" }], "isError": true }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "slow" } })))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "refuse" } })))
        .respond_with(JsonRpcAnswer::error(
            json!({ "code": -32000, "message": "quota exceeded" }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "strict" } })))
        .respond_with(JsonRpcAnswer::error(
            json!({ "code": -32602, "message": "text: must be a string" }),
        ))
        .mount(&server)
        .await;
    let registry = registry_yaml(&[(
        "mock",
        &mock_url(&server),
        "timeout_ms: 300\nretry: { max_elapsed_ms: 0 }",
    )]);
    let app = spawn_app(&registry).await;
    let session = app.create_session(json!({ "servers": ["mock"] })).await;

    let (status, result) = call(&app, &session, "mock__fail", "").await;
    assert_eq!(status, 200);
    assert_eq!(result["isError"], true);
    let (status, refused) = call(&app, &session, "mock__refuse", "{}").await;
    assert_eq!(
        (status, refused),
        (
            502,
            json!({ "error": "backend_error", "message": "quota exceeded" })
        )
    );
    let (status, refused) = call(&app, &session, "mock__strict", r#"{"text": 5}"#).await;
    assert_eq!(
        (status, refused),
        (
            400,
            json!({ "error": "bad_request", "field": "arguments", "message": "arguments: text: must be a string" })
        )
    );
    let (status, refused) = call(&app, &session, "mock__slow", "{}").await;
    assert_eq!(
        (status, refused),
        (
            504,
            json!({ "error": "timeout", "message": "backend \"mock\" did not answer within 300 ms" })
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_backend_is_a_503_and_a_token_session_wants_its_token() {
    let port = unused_port();
    let app = spawn_app(&registry_yaml(&[(
        "gone",
        &format!("http://127.0.0.1:{port}/mcp"),
        "",
    )]))
    .await;
    let response = app
        .post_create_session(&json!({ "servers": ["gone"], "require_token": true }))
        .await;
    let created: Value = response.json().await.expect("JSON");
    let session = created["session_id"].as_str().expect("id").to_owned();
    let token = created["session_token"].as_str().expect("token").to_owned();

    let (status, refused) = call(&app, &session, "gone__echo", "{}").await;
    assert_eq!(
        (status, refused),
        (
            401,
            json!({ "error": "unauthorized", "message": "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth" })
        )
    );
    let listed = app
        .http
        .get(format!("{}/session/{session}/tools", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(listed.status(), 401);

    let (status, refused) = call_with(&app, &session, "gone__echo", "{}", Some(&token)).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "unavailable");
    assert_eq!(
        refused["message"],
        "backend \"gone\" is unreachable: connection refused or failed"
    );
    let (status, _) = call(&app, "not-a-session", "gone__echo", "{}").await;
    assert_eq!(status, 404);
    app.stop().await;
}
