//! Failover to a replica: a call that never reached its backend (or one
//! safe to repeat) goes to the backend's first fallback that can take it,
//! under the backend's own tool names, and the session shows who answers.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// Retries that give up at once, so that a failed backend fails over fast.
const NO_RETRIES: &str = "retry: { initial_interval_ms: 1, max_interval_ms: 1, max_elapsed_ms: 1 }";

/// The tools the mock backends list: `echo`, which may have effects, and
/// `add`, which says it only reads.
fn tools() -> Value {
    json!([
        { "name": "echo", "inputSchema": { "type": "object" } },
        {
            "name": "add",
            "inputSchema": { "type": "object" },
            "annotations": { "readOnlyHint": true }
        },
    ])
}

/// A mock backend whose every tool call is answered with `text`.
async fn mock_answering(text: &str) -> wiremock::MockServer {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(JsonRpcAnswer::result(
            json!({ "content": [{ "type": "text", "text": text }] }),
        ))
        .mount(&server)
        .await;
    server
}

/// A mock backend whose tool calls get `answer`.
async fn mock_failing(answer: impl wiremock::Respond + 'static) -> wiremock::MockServer {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// A registry of `primary` at `primary_url` (with `primary_extra`
/// settings) falling back to `replica` at `replica_url`.
fn failover_registry(primary_url: &str, primary_extra: &str, replica_url: &str) -> String {
    registry_yaml(&[
        (
            "primary",
            primary_url,
            &format!("fallback: [replica]\n{NO_RETRIES}\n{primary_extra}"),
        ),
        ("replica", replica_url, ""),
    ])
}

async fn session_over_primary(app: &TestApp) -> (String, RawMcp) {
    let session = app
        .create_session(json!({ "servers": ["primary"], "prefix": "always" }))
        .await;
    let mcp = app.mcp(&session).await;
    (session, mcp)
}

async fn audit_records(app: &TestApp, session: &str) -> Value {
    let audit: Value = app
        .http
        .get(format!("{}/session/{session}/audit", app.address))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    audit["records"].clone()
}

fn error_message(answer: &Value) -> &str {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {answer}"))
}

#[tokio::test]
async fn a_backend_that_is_down_is_served_by_its_fallback_under_its_own_names() {
    let replica = spawn_rmcp_backend("replica", None).await;
    let down = format!("http://127.0.0.1:{}/mcp", unused_port());
    let app = spawn_app(&failover_registry(&down, "", &replica.url)).await;
    let (session, mut mcp) = session_over_primary(&app).await;

    let names = mcp.tool_names().await;
    assert!(names.contains(&"primary__echo".to_owned()), "{names:?}");
    assert!(
        !names.iter().any(|name| name.starts_with("replica")),
        "{names:?}"
    );
    let answer = mcp
        .call_tool("primary__echo", json!({ "text": "hi" }))
        .await;
    assert_eq!(first_text(&answer), "replica: hi");
    let prompt = mcp
        .request(
            "prompts/get",
            json!({ "name": "primary__greeting", "arguments": { "name": "Ada" } }),
        )
        .await;
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "replica greets Ada"
    );

    let shown = app.shown_session(&session).await;
    let servers = shown["servers"].as_array().expect("servers");
    assert_eq!(
        servers.len(),
        1,
        "a fallback is not one of the session's servers"
    );
    assert_eq!(servers[0]["name"], "primary");
    assert_eq!(servers[0]["serving"], "replica");

    assert!(
        eventually(|| async { audit_records(&app, &session).await[0]["backend"] == "replica" })
            .await,
        "the audit names the server that answered: {}",
        audit_records(&app, &session).await
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("mcp_mux_tool_calls_total{")
                && line.contains("server=\"replica\"")
                && line.contains("outcome=\"ok\"")
                && line.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_list_a_fallback_made_is_kept_while_its_backend_is_down() {
    let replica = mock_answering("replica").await;
    let down = format!("http://127.0.0.1:{}/mcp", unused_port());
    let app = spawn_app(&failover_registry(&down, "", &mock_url(&replica))).await;
    let (_session, mut mcp) = session_over_primary(&app).await;
    for _ in 0..3 {
        let answer = mcp.call_tool("primary__echo", json!({})).await;
        assert_eq!(first_text(&answer), "replica");
    }
    assert_eq!(requests_for(&replica, "tools/list").await, 1);
    assert_eq!(requests_for(&replica, "tools/call").await, 3);
}

#[tokio::test]
async fn a_session_serves_from_its_own_server_while_that_answers() {
    let primary = spawn_rmcp_backend("primary", None).await;
    let replica = mock_answering("replica").await;
    let app = spawn_app(&failover_registry(&primary.url, "", &mock_url(&replica))).await;
    let (session, mut mcp) = session_over_primary(&app).await;
    let answer = mcp
        .call_tool("primary__echo", json!({ "text": "hi" }))
        .await;
    assert_eq!(first_text(&answer), "primary: hi");
    assert_eq!(
        app.shown_session(&session).await["servers"][0]["serving"],
        "primary"
    );
    assert_eq!(
        requests_for(&replica, "initialize").await,
        0,
        "opened only when needed"
    );
}

#[tokio::test]
async fn a_503_fails_over_and_the_fallback_keeps_its_backend_session() {
    let primary = mock_failing(ResponseTemplate::new(503)).await;
    let replica = mock_answering("replica").await;
    let app = spawn_app(&failover_registry(
        &mock_url(&primary),
        "",
        &mock_url(&replica),
    ))
    .await;
    let (_session, mut mcp) = session_over_primary(&app).await;
    for _ in 0..2 {
        let answer = mcp.call_tool("primary__echo", json!({})).await;
        assert_eq!(first_text(&answer), "replica");
    }
    assert_eq!(requests_for(&primary, "tools/call").await, 2);
    assert_eq!(requests_for(&replica, "tools/call").await, 2);
    assert_eq!(requests_for(&replica, "initialize").await, 1);
}

#[tokio::test]
async fn an_open_circuit_fails_over_but_a_500_that_may_have_run_the_call_does_not() {
    let primary = mock_failing(ResponseTemplate::new(500)).await;
    let replica = mock_answering("replica").await;
    let app = spawn_app(&failover_registry(
        &mock_url(&primary),
        "circuit_breaker: { failure_threshold: 1, open_ms: 60000 }",
        &mock_url(&replica),
    ))
    .await;
    let (session, mut mcp) = session_over_primary(&app).await;
    let failed = mcp.call_tool("primary__echo", json!({})).await;
    assert_eq!(
        error_message(&failed),
        "backend \"primary\" answered HTTP 500"
    );
    assert_eq!(requests_for(&replica, "tools/call").await, 0);
    assert_eq!(
        app.shown_session(&session).await["servers"][0]["circuit"]["state"],
        "open"
    );

    let answer = mcp.call_tool("primary__echo", json!({})).await;
    assert_eq!(first_text(&answer), "replica");
    assert_eq!(
        requests_for(&primary, "tools/call").await,
        1,
        "the open circuit sent nothing"
    );
    assert_eq!(
        app.shown_session(&session).await["servers"][0]["serving"],
        "replica"
    );
}

#[tokio::test]
async fn a_timed_out_call_goes_to_the_fallback_only_when_the_tool_is_safe_to_repeat() {
    let primary =
        mock_failing(JsonRpcAnswer::result(json!({ "content": [] })).after(Duration::from_secs(5)))
            .await;
    let replica = mock_answering("replica").await;
    let app = spawn_app(&failover_registry(
        &mock_url(&primary),
        "timeout_ms: 200",
        &mock_url(&replica),
    ))
    .await;
    let (_session, mut mcp) = session_over_primary(&app).await;

    let failed = mcp.call_tool("primary__echo", json!({})).await;
    assert_eq!(
        error_message(&failed),
        "backend \"primary\" did not answer within 200 ms"
    );
    assert_eq!(
        requests_for(&replica, "tools/call").await,
        0,
        "echo may have run"
    );

    let answer = mcp.call_tool("primary__add", json!({})).await;
    assert_eq!(first_text(&answer), "replica");
    assert_eq!(requests_for(&replica, "tools/call").await, 1);
    assert_eq!(requests_for(&primary, "tools/call").await, 2);
}

#[tokio::test]
async fn every_fallback_failing_before_it_was_reached_gives_the_backends_own_error() {
    let down = |port: u16| format!("http://127.0.0.1:{port}/mcp");
    let app = spawn_app(&registry_yaml(&[
        (
            "primary",
            &down(unused_port()),
            &format!("fallback: [replica]\n{NO_RETRIES}"),
        ),
        ("replica", &down(unused_port()), NO_RETRIES),
    ]))
    .await;
    let (_session, mut mcp) = session_over_primary(&app).await;
    let failed = mcp
        .request(
            "tools/call",
            json!({ "name": "primary__echo", "arguments": {} }),
        )
        .await;
    assert_eq!(
        error_message(&failed),
        "backend \"primary\" is unreachable: connection refused or failed"
    );
}

/// A registry where `a` and `b` take bearer tokens and are down; `a-copy`
/// takes its credential the same way as `a`, `b-copy` another way.
async fn credential_registry() -> (String, wiremock::MockServer, wiremock::MockServer) {
    let a_copy = mock_answering("a-copy").await;
    let b_copy = mock_answering("b-copy").await;
    let down = || format!("http://127.0.0.1:{}/mcp", unused_port());
    let registry = registry_yaml(&[
        (
            "a",
            &down(),
            &format!("auth: {{ type: bearer }}\nfallback: [a-copy]\n{NO_RETRIES}"),
        ),
        ("a-copy", &mock_url(&a_copy), "auth: { type: bearer }"),
        (
            "b",
            &down(),
            &format!("auth: {{ type: bearer }}\nfallback: [b-copy]\n{NO_RETRIES}"),
        ),
        (
            "b-copy",
            &mock_url(&b_copy),
            "auth: { type: api_key, header: x-copy-key }",
        ),
    ]);
    (registry, a_copy, b_copy)
}

#[tokio::test]
async fn a_fallback_that_takes_its_credential_another_way_must_be_given_one() {
    let (registry, _a_copy, _b_copy) = credential_registry().await;
    let app = spawn_app(&registry).await;
    let listing: Value = app
        .http
        .get(format!("{}/registry", app.address))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let fallback_of = |name: &str| {
        listing["servers"]
            .as_array()
            .and_then(|servers| servers.iter().find(|server| server["name"] == name))
            .map(|server| server["fallback"].clone())
    };
    assert_eq!(
        fallback_of("a"),
        Some(json!([{ "name": "a-copy", "own_credential": false }]))
    );
    assert_eq!(
        fallback_of("b"),
        Some(json!([{ "name": "b-copy", "own_credential": true }]))
    );
    assert_eq!(fallback_of("b-copy"), Some(Value::Null), "absent when none");
    let cases = [
        (
            json!({ "servers": ["b"], "credentials": { "b": { "token": "tb" } } }),
            "credentials.b-copy",
            "is required: server \"b-copy\", the fallback of \"b\", takes its credential in another way and needs {\"api_key\": \"…\"}",
        ),
        (
            json!({ "servers": ["b"], "credentials": { "b": { "token": "tb" }, "b-copy": { "token": "x" } } }),
            "credentials.b-copy.token",
            "unknown field; expected api_key",
        ),
        (
            json!({ "servers": ["a"], "credentials": { "a": { "token": "ta" }, "a-copy": { "token": "x" } } }),
            "credentials.a-copy",
            "names a server that is not in servers",
        ),
    ];
    for (body, field, reason) in cases {
        let response = app.post_create_session(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(
            answer,
            json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") }),
            "{body}"
        );
    }
}

/// The value of `header` on each `tools/call` a mock backend received.
async fn headers_of_calls(server: &wiremock::MockServer, header: &str) -> Vec<Option<String>> {
    let received = server.received_requests().await.unwrap_or_default();
    received
        .iter()
        .filter(|request| {
            serde_json::from_slice::<Value>(&request.body)
                .is_ok_and(|body| body["method"] == "tools/call")
        })
        .map(|request| {
            request
                .headers
                .get(header)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_fallback_gets_the_primarys_credential_unless_it_takes_its_own() {
    let (registry, a_copy, b_copy) = credential_registry().await;
    let app = spawn_app(&registry).await;
    let session = app
        .create_session(json!({
            "servers": ["a", "b"],
            "credentials": {
                "a": { "token": "ta" },
                "b": { "token": "tb" },
                "b-copy": { "api_key": "copy-key" },
            },
        }))
        .await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("a__echo", json!({})).await),
        "a-copy"
    );
    assert_eq!(
        first_text(&mcp.call_tool("b__echo", json!({})).await),
        "b-copy"
    );

    assert_eq!(
        headers_of_calls(&a_copy, "authorization").await,
        [Some("Bearer ta".to_owned())]
    );
    assert_eq!(
        headers_of_calls(&b_copy, "x-copy-key").await,
        [Some("copy-key".to_owned())]
    );
    assert_eq!(headers_of_calls(&b_copy, "authorization").await, [None]);
}

#[tokio::test]
async fn stateless_clients_and_plain_http_calls_fail_over_too() {
    let replica = spawn_rmcp_backend("replica", None).await;
    let down = format!("http://127.0.0.1:{}/mcp", unused_port());
    let app = spawn_app(&failover_registry(&down, "", &replica.url)).await;
    let session = app.create_session(json!({ "servers": ["primary"] })).await;

    // A request of revision 2026-07-28, standing alone.
    let answer: Value = app
        .http
        .post(app.mcp_url(&session))
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "primary__echo")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": "primary__echo", "arguments": { "text": "stateless" },
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["result"]["content"][0]["text"], "replica: stateless");

    let called: Value = app
        .http
        .post(format!(
            "{}/session/{session}/tools/primary__echo",
            app.address
        ))
        .json(&json!({ "text": "plain" }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(called["content"][0]["text"], "replica: plain");
    assert_eq!(
        app.shown_session(&session).await["servers"][0]["serving"],
        "replica"
    );
    assert!(app.audited(&session, "primary__echo", "replica").await);
}
