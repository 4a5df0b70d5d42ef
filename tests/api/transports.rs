//! The stdio and legacy HTTP+SSE backend transports, against real peers: an
//! rmcp server run as a child process (the `stdio_peer` example), and an
//! rmcp server behind a small implementation of the 2024-11-05 HTTP+SSE
//! transport (rmcp has no server for that transport).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, DuplexStream, WriteHalf};

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

// ---------------------------------------------------------------- HTTP+SSE

/// What the legacy backend does when a client GETs its event stream.
#[derive(Clone)]
enum Opening {
    /// Sends `endpoint` naming its own POST URL, then the messages.
    Endpoint,
    /// Sends `endpoint` with this data instead.
    EndpointData(&'static str),
    /// Sends a message before any endpoint.
    MessageFirst,
    /// Answers JSON, not an event stream.
    NotAStream,
    /// Ends the stream before any endpoint.
    EndsAtOnce,
}

/// One client connection of the legacy backend: the rmcp server's input,
/// and the signal that hangs its event stream up.
#[derive(Clone)]
struct LegacyConnection {
    to_server: Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>,
    hang_up: Arc<tokio::sync::Notify>,
}

struct LegacyState {
    opening: Opening,
    bearer: Option<&'static str>,
    connections: Mutex<HashMap<String, LegacyConnection>>,
    opened: AtomicUsize,
}

/// A faithful, small server of the HTTP+SSE transport (revision
/// 2024-11-05): `GET /sse` opens an event stream whose first event is
/// `endpoint` (`/message?sessionId=<id>`); each POST there is one JSON-RPC
/// message, answered 202, whose response comes as a `message` event on the
/// stream. Behind each stream runs the rmcp `EchoServer` labelled `legacy`,
/// spoken to in newline-delimited JSON over an in-memory pipe.
struct HttpSseBackend {
    url: String,
    state: Arc<LegacyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpSseBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpSseBackend {
    async fn start(opening: Opening, bearer: Option<&'static str>) -> Self {
        let state = Arc::new(LegacyState {
            opening,
            bearer,
            connections: Mutex::new(HashMap::new()),
            opened: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .route("/sse", axum::routing::get(open_event_stream))
            .route("/message", axum::routing::post(take_message))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HttpSseBackend {
            url: format!("http://{address}/sse"),
            state,
            task,
        }
    }

    /// Hangs up every event stream, forgetting its session, as a server
    /// restart would.
    fn drop_streams(&self) {
        let connections = std::mem::take(&mut *self.state.connections.lock().expect("lock"));
        for connection in connections.values() {
            connection.hang_up.notify_one();
        }
    }

    fn streams_opened(&self) -> usize {
        self.state.opened.load(Ordering::SeqCst)
    }
}

fn authorized(state: &LegacyState, headers: &HeaderMap) -> bool {
    state.bearer.is_none_or(|token| {
        headers
            .get("authorization")
            .is_some_and(|value| value.as_bytes() == format!("Bearer {token}").as_bytes())
    })
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .expect("response")
}

async fn open_event_stream(State(state): State<Arc<LegacyState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
    }
    let number = state.opened.fetch_add(1, Ordering::SeqCst) + 1;
    let endpoint = match &state.opening {
        Opening::Endpoint => format!("/message?sessionId=s{number}"),
        Opening::EndpointData(data) => (*data).to_owned(),
        Opening::MessageFirst => {
            return event_stream(Body::from(
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n",
            ));
        }
        Opening::NotAStream => {
            return ([("content-type", "application/json")], "{}").into_response();
        }
        Opening::EndsAtOnce => return event_stream(Body::from(": nothing\n\n")),
    };
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = EchoServer::new("legacy")
            .serve(tokio::io::split(theirs))
            .await
        {
            let _ = running.waiting().await;
        }
    });
    let (from_server, to_server) = tokio::io::split(ours);
    let hang_up = Arc::new(tokio::sync::Notify::new());
    state.connections.lock().expect("lock").insert(
        format!("s{number}"),
        LegacyConnection {
            to_server: Arc::new(tokio::sync::Mutex::new(to_server)),
            hang_up: hang_up.clone(),
        },
    );
    let first = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(format!(
            "event: endpoint\ndata: {endpoint}\n\n"
        )))
    });
    let lines = tokio::io::BufReader::new(from_server).lines();
    let messages =
        futures_util::stream::unfold((lines, hang_up), |(mut lines, hang_up)| async move {
            tokio::select! {
                _ = hang_up.notified() => None,
                line = lines.next_line() => match line {
                    Ok(Some(line)) => Some((
                        Ok(Bytes::from(format!("event: message\ndata: {line}\n\n"))),
                        (lines, hang_up),
                    )),
                    _ => None,
                },
            }
        });
    event_stream(Body::from_stream(first.chain(messages)))
}

async fn take_message(
    State(state): State<Arc<LegacyState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&state, &headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
    }
    let session = uri
        .query()
        .and_then(|query| query.strip_prefix("sessionId="))
        .unwrap_or_default();
    let connection = state
        .connections
        .lock()
        .expect("lock")
        .get(session)
        .cloned();
    let Some(connection) = connection else {
        return (StatusCode::NOT_FOUND, "Could not find session").into_response();
    };
    let mut to_server = connection.to_server.lock().await;
    let written = async {
        to_server.write_all(&body).await?;
        to_server.write_all(b"\n").await?;
        to_server.flush().await
    }
    .await;
    match written {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "Could not find session").into_response(),
    }
}

fn legacy_registry(backend: &HttpSseBackend, extra: &str) -> String {
    let mut yaml = format!(
        "servers:\n  old:\n    transport: sse\n    url: {}\n",
        backend.url
    );
    for line in extra.lines().filter(|line| !line.trim().is_empty()) {
        yaml.push_str(&format!("    {}\n", line.trim()));
    }
    yaml
}

async fn legacy_session(
    backend: &HttpSseBackend,
    extra: &str,
    credentials: Value,
) -> (TestApp, RawMcp) {
    let app = spawn_app(&legacy_registry(backend, extra)).await;
    let session = app
        .create_session(json!({ "servers": ["old"], "credentials": credentials }))
        .await;
    let mcp = app.mcp(&session).await;
    (app, mcp)
}

#[tokio::test]
async fn tools_of_an_http_sse_backend_are_listed_and_called_with_the_credential() {
    let backend = HttpSseBackend::start(Opening::Endpoint, Some("t0ken")).await;
    let (_app, mut mcp) = legacy_session(
        &backend,
        "auth: { type: bearer }",
        json!({ "old": { "token": "t0ken" } }),
    )
    .await;
    let names = mcp.tool_names().await;
    assert!(names.contains(&"old__echo".to_owned()), "{names:?}");
    let answer = mcp.call_tool("old__echo", json!({ "text": "hi" })).await;
    assert_eq!(first_text(&answer), "legacy: hi");
    let sum = mcp.call_tool("old__add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(first_text(&sum), "5");
    assert_eq!(backend.streams_opened(), 1);
}

#[tokio::test]
async fn a_dropped_http_sse_stream_is_reopened_by_the_next_request() {
    let backend = HttpSseBackend::start(Opening::Endpoint, None).await;
    let (_app, mut mcp) = legacy_session(&backend, "", json!({})).await;
    let answer = mcp.call_tool("old__echo", json!({ "text": "one" })).await;
    assert_eq!(first_text(&answer), "legacy: one");
    backend.drop_streams();
    let answer = mcp.call_tool("old__echo", json!({ "text": "two" })).await;
    assert_eq!(first_text(&answer), "legacy: two");
    assert_eq!(backend.streams_opened(), 2);
}

/// The error a call gets when the legacy backend could not be opened.
async fn legacy_failure(opening: Opening, credential: Option<&str>) -> String {
    let backend = HttpSseBackend::start(opening, Some("t0ken")).await;
    let (_app, mut mcp) = legacy_session(
        &backend,
        "auth: { type: bearer }",
        json!({ "old": { "token": credential.unwrap_or("t0ken") } }),
    )
    .await;
    let answer = mcp.call_tool("old__echo", json!({ "text": "x" })).await;
    assert_eq!(answer["error"]["data"]["server"], "old", "{answer}");
    error_message(&answer).to_owned()
}

#[tokio::test]
async fn an_endpoint_event_naming_another_origin_is_refused() {
    for data in [
        "http://127.0.0.2:9/message?sessionId=s1",
        "//other.invalid/message",
        "https://localhost/message",
    ] {
        assert_eq!(
            legacy_failure(Opening::EndpointData(data), None).await,
            "backend \"old\" sent an invalid answer: the endpoint event names another origin than the SSE URL",
            "{data}"
        );
    }
}

#[tokio::test]
async fn an_http_sse_backend_that_breaks_the_transport_is_reported_exactly() {
    let cases = [
        (
            Opening::EndpointData("http://[::1"),
            "backend \"old\" sent an invalid answer: the endpoint event does not hold a URL",
        ),
        (
            Opening::MessageFirst,
            "backend \"old\" sent an invalid answer: the event stream sent a message before its endpoint event",
        ),
        (
            Opening::NotAStream,
            "backend \"old\" sent an invalid answer: the SSE URL did not answer with an event stream",
        ),
        (
            Opening::EndsAtOnce,
            "backend \"old\" connection broke before the answer was complete",
        ),
    ];
    for (opening, expected) in cases {
        assert_eq!(legacy_failure(opening, None).await, expected);
    }
}

#[tokio::test]
async fn an_http_sse_backend_that_refuses_the_credential_is_reported() {
    assert_eq!(
        legacy_failure(Opening::Endpoint, Some("wrong")).await,
        "backend \"old\" refused the session's credential (HTTP 401)"
    );
}
