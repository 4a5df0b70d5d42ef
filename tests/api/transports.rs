//! The stdio backend transport, against a real peer: an rmcp server run as
//! a child process (the `stdio_peer` example).

use std::path::PathBuf;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::streaming::ModelClient;

// ---------------------------------------------------------------- stdio

/// The stdio test server that `cargo test` builds beside the test binary.
fn stdio_peer() -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    // target/debug/deps/api-<hash> → target/debug/examples/stdio_peer
    let peer = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("stdio_peer"))
        .expect("a target directory");
    assert!(
        peer.is_file(),
        "{} is missing: run the whole `cargo test` (which builds the examples) or `cargo build --example stdio_peer` first",
        peer.display()
    );
    peer
}

/// A registry with the stdio peer as the backend `files`; `extra` adds keys.
fn stdio_registry(extra: &str) -> String {
    let mut yaml = format!(
        "servers:\n  files:\n    transport: stdio\n    command: {}\n",
        stdio_peer().display()
    );
    for line in extra.lines().filter(|line| !line.trim().is_empty()) {
        yaml.push_str(&format!("    {}\n", line.trim()));
    }
    yaml
}

/// A gateway over the stdio peer and a raw client with an MCP session on it.
async fn stdio_session(extra: &str, credentials: Value) -> (TestApp, RawMcp) {
    let app = spawn_app(&stdio_registry(extra)).await;
    let session = app
        .create_session(json!({ "servers": ["files"], "credentials": credentials }))
        .await;
    let mcp = app.mcp(&session).await;
    (app, mcp)
}

fn process_exists(pid: &str) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

async fn backend_pid(mcp: &mut RawMcp) -> String {
    let answer = mcp.call_tool("files__pid", json!({})).await;
    let pid = first_text(&answer).to_owned();
    assert!(process_exists(&pid), "the backend process {pid} runs");
    pid
}

fn error_message(answer: &Value) -> &str {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[tokio::test]
async fn tools_of_a_stdio_backend_are_listed_and_called_through_a_session() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let names = mcp.tool_names().await;
    for expected in ["files__echo", "files__pid", "files__ask"] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }
    let answer = mcp
        .call_tool("files__echo", json!({ "text": "hello" }))
        .await;
    assert_eq!(first_text(&answer), "stdio: hello");
}

#[tokio::test]
async fn the_registry_shows_a_stdio_command_by_name_only() {
    let app = spawn_app(&stdio_registry(
        "args: [--flag, arg-secret]\nenv: { LOG_LEVEL: env-secret }",
    ))
    .await;
    let text = app
        .http
        .get(format!("{}/registry", app.address))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains("/examples/"), "{text}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        body["servers"][0],
        json!({
            "name": "files", "description": null, "transport": "stdio", "command": "stdio_peer",
            "auth": "none", "credential_fields": []
        })
    );
}

#[tokio::test]
async fn a_stdio_backend_gets_the_credential_and_its_env_but_not_the_gateways_environment() {
    assert!(
        std::env::var("CARGO_MANIFEST_DIR").is_ok(),
        "cargo sets this variable for the test process"
    );
    let (_app, mut mcp) = stdio_session(
        "env: { LOG_LEVEL: info }\nauth: { type: api_key, env: PEER_TOKEN }",
        json!({ "files": { "api_key": "s3cret-for-files" } }),
    )
    .await;
    for (name, value) in [
        ("PEER_TOKEN", "s3cret-for-files"),
        ("LOG_LEVEL", "info"),
        ("CARGO_MANIFEST_DIR", "(unset)"),
    ] {
        let answer = mcp.call_tool("files__env", json!({ "name": name })).await;
        assert_eq!(first_text(&answer), value, "{name}");
    }
    let path = mcp.call_tool("files__env", json!({ "name": "PATH" })).await;
    assert_ne!(first_text(&path), "(unset)", "PATH is inherited");
}

#[tokio::test]
async fn the_child_is_gone_once_the_mcp_session_is_deleted() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let pid = backend_pid(&mut mcp).await;
    let ended = reqwest::Client::new()
        .delete(&mcp.url)
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ended.status(), 200);
    assert!(
        eventually(|| async { !process_exists(&pid) }).await,
        "process {pid} still exists after the MCP session ended"
    );
}

#[tokio::test]
async fn a_child_that_outlives_its_end_of_input_is_killed_once_the_mcp_session_is_deleted() {
    let (_app, mut mcp) = stdio_session("env: { PEER_LINGER: '1' }", json!({})).await;
    let pid = backend_pid(&mut mcp).await;
    let ended = reqwest::Client::new()
        .delete(&mcp.url)
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ended.status(), 200);
    assert!(
        eventually(|| async { !process_exists(&pid) }).await,
        "process {pid} still exists after the MCP session ended"
    );
}

#[tokio::test]
async fn a_child_killed_mid_session_is_respawned_on_the_next_call() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let first = backend_pid(&mut mcp).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    // Gone from /proc means mcp-mux reaped it: it knows the child died.
    assert!(eventually(|| async { !process_exists(&first) }).await);
    let answer = mcp
        .call_tool("files__echo", json!({ "text": "again" }))
        .await;
    assert_eq!(first_text(&answer), "stdio: again");
    let second = backend_pid(&mut mcp).await;
    assert_ne!(first, second, "a new process answers");
}

#[tokio::test]
async fn a_child_that_dies_during_a_call_fails_that_call_and_the_next_one_respawns_it() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let first = backend_pid(&mut mcp).await;
    // The call may have had effects before the process died: not replayed.
    let died = mcp.call_tool("files__exit", json!({})).await;
    assert_eq!(
        error_message(&died),
        "backend \"files\" connection broke before the answer was complete"
    );
    let answer = mcp
        .call_tool("files__echo", json!({ "text": "back" }))
        .await;
    assert_eq!(first_text(&answer), "stdio: back");
    assert_ne!(backend_pid(&mut mcp).await, first);
}

#[tokio::test]
async fn a_stdio_command_that_does_not_exist_fails_at_once_naming_the_backend() {
    let registry = "servers:\n  files:\n    command: /nonexistent/mcp-mux-test-server\n";
    let app = spawn_app(registry).await;
    let session = app.create_session(json!({ "servers": ["files"] })).await;
    let mut mcp = app.mcp(&session).await;
    let answer = mcp.call_tool("files__echo", json!({ "text": "x" })).await;
    assert_eq!(answer["error"]["code"], -32603);
    assert_eq!(
        error_message(&answer),
        "backend \"files\" could not start its command \"mcp-mux-test-server\": No such file or directory (os error 2)"
    );
    assert_eq!(answer["error"]["data"]["server"], "files");
}

#[tokio::test]
async fn an_over_long_line_from_a_stdio_backend_is_a_clear_error_and_the_next_call_works() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let answer = mcp
        .call_tool("files__big", json!({ "bytes": 16 * 1024 * 1024 + 1 }))
        .await;
    assert_eq!(
        error_message(&answer),
        "backend \"files\" sent an invalid answer: a message is longer than the 16777216-byte limit"
    );
    let answer = mcp
        .call_tool("files__echo", json!({ "text": "after" }))
        .await;
    assert_eq!(first_text(&answer), "stdio: after");
}

#[tokio::test]
async fn a_timed_out_call_is_cancelled_at_the_stdio_backend() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let log = scratch.path().join("peer.log");
    let (_app, mut mcp) = stdio_session(
        &format!("timeout_ms: 1500\nenv: {{ PEER_LOG: '{}' }}", log.display()),
        json!({}),
    )
    .await;
    let answer = mcp.call_tool("files__wait", json!({ "ms": 60_000 })).await;
    assert_eq!(
        error_message(&answer),
        "backend \"files\" did not answer within 1500 ms"
    );
    assert!(
        eventually(|| async {
            std::fs::read_to_string(&log).is_ok_and(|text| text == "cancelled\n")
        })
        .await,
        "the backend was not told that the call was cancelled"
    );
    let answer = mcp
        .call_tool("files__echo", json!({ "text": "still" }))
        .await;
    assert_eq!(first_text(&answer), "stdio: still");
}

#[tokio::test]
async fn a_stdio_backends_notifications_reach_the_clients_stream() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let mut stream = mcp.open_stream().await;
    assert_eq!(stream.status(), 200);
    let answer = mcp.call_tool("files__announce", json!({})).await;
    assert_eq!(first_text(&answer), "announced");
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "no list_changed on the client's stream");
}

#[tokio::test]
async fn a_stdio_backends_ping_is_answered_and_its_progress_reaches_the_call() {
    let (_app, mut mcp) = stdio_session("", json!({})).await;
    let answer = mcp.call_tool("files__ping_client", json!({})).await;
    assert_eq!(first_text(&answer), "the client answered ping");

    let response = mcp
        .post(&json!({
            "jsonrpc": "2.0", "id": 77, "method": "tools/call",
            "params": { "name": "files__progress", "arguments": {}, "_meta": { "progressToken": "p-1" } }
        }))
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let progress: Vec<_> = messages
        .iter()
        .filter(|message| message["method"] == "notifications/progress")
        .map(|message| {
            (
                message["params"]["progressToken"].clone(),
                message["params"]["progress"].clone(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        vec![(json!("p-1"), json!(1.0)), (json!("p-1"), json!(2.0))],
        "{text}"
    );
    let last = messages.last().expect("a response");
    assert_eq!(last["id"], 77);
    assert_eq!(last["result"]["content"][0]["text"], "progressed");
}

#[tokio::test]
async fn a_stdio_backend_asks_the_clients_model_during_a_call() {
    let app = spawn_app(&stdio_registry("")).await;
    let session = app.create_session(json!({ "servers": ["files"] })).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url(&session)),
    );
    let client = ModelClient
        .serve(transport)
        .await
        .expect("rmcp client connects");
    let arguments = json!({ "question": "the answer?" }).as_object().cloned();
    let mut call = CallToolRequestParams::new("files__ask");
    call.arguments = arguments;
    let result = client.call_tool(call).await.expect("tools/call");
    let result = serde_json::to_value(&result).expect("serializable");
    assert_eq!(
        result["content"][0]["text"],
        "the model said: 42, to \"the answer?\""
    );
    client.cancel().await.expect("client closes");
}
