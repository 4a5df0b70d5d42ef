//! When backend sessions open and close: all at once on initialize, and
//! closed with DELETE when an MCP session or a session ends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use mcp_mux::mux::Timings;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn tools() -> Value {
    json!([{ "name": "t", "inputSchema": { "type": "object" } }])
}

/// DELETEs the mock backend received for its backend session `s1`.
async fn deletes_of(server: &wiremock::MockServer) -> usize {
    count_requests(server, |request| {
        request.method == wiremock::http::Method::DELETE
            && request
                .headers
                .get("mcp-session-id")
                .is_some_and(|id| id == "s1")
    })
    .await
}

/// Expects exactly `count` DELETEs of backend session `s1`: wiremock checks
/// when the mock server is dropped, so extras that come late fail too.
async fn expect_deletes(server: &wiremock::MockServer, count: u64) {
    Mock::given(method("DELETE"))
        .and(wiremock::matchers::header("mcp-session-id", "s1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(count)
        .with_priority(1)
        .mount(server)
        .await;
}

/// Waits for `count` DELETEs, which the gateway sends in the background.
async fn wait_for_deletes(server: &wiremock::MockServer, count: usize) {
    assert!(eventually(|| async { deletes_of(server).await == count }).await);
}

async fn mocked_session() -> (wiremock::MockServer, TestApp, String) {
    let server = mock_backend(tools(), false).await;
    let app = spawn_app(&registry_yaml(&[("mock", &mock_url(&server), "")])).await;
    let session = app.create_session(json!({ "servers": ["mock"] })).await;
    (server, app, session)
}

#[tokio::test]
async fn ending_an_mcp_session_closes_its_backend_session() {
    let (server, app, session) = mocked_session().await;
    expect_deletes(&server, 1).await;
    let mcp = app.mcp(&session).await;
    let ended = reqwest::Client::new()
        .delete(&mcp.url)
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ended.status(), 200);
    wait_for_deletes(&server, 1).await;
}

#[tokio::test]
async fn idle_mcp_sessions_are_reaped_with_their_backend_sessions() {
    let (server, app, session) = mocked_session().await;
    expect_deletes(&server, 1).await;
    let mcp = app.mcp(&session).await;
    assert_eq!(
        app.mux.reap_idle(Duration::from_secs(3600)).await,
        0,
        "a fresh MCP session stays"
    );
    assert_eq!(app.mux.reap_idle(Duration::ZERO).await, 1);
    wait_for_deletes(&server, 1).await;
    let after = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert_eq!(after.status(), 404);
}

#[tokio::test]
async fn deleting_a_session_closes_the_backend_sessions_of_all_its_mcp_sessions() {
    let (server, app, session) = mocked_session().await;
    expect_deletes(&server, 2).await;
    let _first = app.mcp(&session).await;
    let _second = app.mcp(&session).await;
    let deleted = app
        .http
        .delete(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    wait_for_deletes(&server, 2).await;
}

/// A backend whose initialize only answers once `barrier` has been reached
/// by every backend sharing it: opened one after the other, the first would
/// wait past its timeout.
async fn barrier_backend(barrier: Arc<Barrier>) -> (String, tokio::task::JoinHandle<()>) {
    let handler = move |body: Bytes| {
        let barrier = barrier.clone();
        async move {
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let result = match message["method"].as_str() {
                Some("initialize") => {
                    if tokio::time::timeout(Duration::from_secs(30), barrier.wait())
                        .await
                        .is_err()
                    {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    json!({ "protocolVersion": "2025-11-25", "capabilities": { "tools": {} }, "serverInfo": { "name": "b", "version": "1" } })
                }
                Some("tools/list") => json!({ "tools": tools() }),
                _ => return StatusCode::ACCEPTED.into_response(),
            };
            let answer = json!({ "jsonrpc": "2.0", "id": message["id"], "result": result });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(answer.to_string()))
                .unwrap_or_default()
        }
    };
    let router = axum::Router::new().route("/mcp", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, task)
}

#[tokio::test]
async fn initialize_opens_every_backend_session_at_once() {
    let barrier = Arc::new(Barrier::new(3));
    let (one, _a) = barrier_backend(barrier.clone()).await;
    let (two, _b) = barrier_backend(barrier.clone()).await;
    let (three, _c) = barrier_backend(barrier).await;
    let limits = "timeout_ms: 10000";
    let app = spawn_app(&registry_yaml(&[
        ("one", &one, limits),
        ("two", &two, limits),
        ("three", &three, limits),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["one", "two", "three"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(mcp.tool_names().await, ["one__t", "two__t", "three__t"]);
}

#[tokio::test]
async fn opening_more_mcp_sessions_than_the_limit_ends_the_least_recently_used() {
    let (server, app, session) = mocked_session().await;
    expect_deletes(&server, 1).await;
    let first = app.mcp(&session).await;
    for _ in 1..mcp_mux::mux::Limits::default().max_mcp_sessions_per_session {
        app.mcp(&session).await;
    }
    let shown = app.shown_session(&session).await;
    assert_eq!(
        shown["mcp_sessions"],
        mcp_mux::mux::Limits::default().max_mcp_sessions_per_session
    );
    app.mcp(&session).await;
    let evicted = first
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert_eq!(evicted.status(), 404);
    wait_for_deletes(&server, 1).await;
}

fn with_timings(registry: String, timings: Timings) -> AppOptions {
    let mut options = AppOptions::new(registry);
    options.timings = timings;
    options
}

#[tokio::test]
async fn a_call_in_flight_when_its_mcp_session_ends_does_not_reopen_the_backend() {
    let server = mock_backend(tools(), false).await;
    // The backend forgets s1 when it is deleted; the call in flight then gets 404.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(ResponseTemplate::new(404).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over_mock("mock", &server).await;
    mcp.tool_names().await;
    let ender = mcp
        .http
        .delete(&mcp.url)
        .header("mcp-session-id", mcp.session_id.clone().expect("id"));
    let (answer, ended) = tokio::join!(mcp.call_tool("mock__t", json!({})), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ender.send().await
    });
    assert_eq!(ended.expect("answer").status(), 200);
    assert_eq!(
        answer["error"]["message"],
        "the MCP session ended; backend \"mock\" was closed"
    );
    assert_eq!(
        requests_for(&server, "initialize").await,
        1,
        "no backend session was opened again"
    );
}

#[tokio::test]
async fn initialize_answers_without_a_backend_slower_than_the_wait_and_lists_it_later() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let slow = wiremock::MockServer::start().await;
    let initialized = json!({ "protocolVersion": "2025-11-25", "capabilities": { "tools": {} }, "serverInfo": { "name": "slow", "version": "1" } });
    mock_handshake(
        &slow,
        JsonRpcAnswer::result(initialized)
            .with_session("s1")
            .after(Duration::from_millis(800)),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(json!({ "tools": tools() })))
        .mount(&slow)
        .await;
    let timings = Timings {
        initialize_wait: Duration::from_millis(100),
        ..Timings::default()
    };
    let registry = registry_yaml(&[("alpha", &alpha.url, ""), ("slow", &mock_url(&slow), "")]);
    let app = spawn_app_with(with_timings(registry, timings))
        .await
        .expect("starts");
    let session = app
        .create_session(json!({ "servers": ["alpha", "slow"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(
        names,
        ["alpha__add", "alpha__echo"],
        "slow is still opening"
    );
    let early = mcp.call_tool("slow__t", json!({})).await;
    assert_eq!(
        early["error"]["message"],
        "backend \"slow\" is still opening its session"
    );
    let mut listed_later = false;
    for _ in 0..100 {
        if mcp.tool_names().await.contains(&"slow__t".to_owned()) {
            listed_later = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed_later, "slow's tools appear once it has opened");
}

#[tokio::test]
async fn a_backend_that_was_down_is_tried_again_in_the_background_and_comes_back() {
    let port = unused_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let timings = Timings {
        recheck_interval: Duration::from_millis(50),
        ..Timings::default()
    };
    let retry = "retry: { initial_interval_ms: 10, max_interval_ms: 20, max_elapsed_ms: 50 }";
    let app = spawn_app_with(with_timings(
        registry_yaml(&[("late", &url, retry)]),
        timings,
    ))
    .await
    .expect("starts");
    let session = app.create_session(json!({ "servers": ["late"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(mcp.tool_names().await, Vec::<String>::new());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("port still free");
    let _backend = serve_rmcp_backend(listener, "late", None);
    let mut back = false;
    for _ in 0..100 {
        if mcp.tool_names().await.contains(&"late__echo".to_owned()) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the backend's tools came back");
    assert_eq!(
        first_text(
            &mcp.call_tool("late__echo", json!({ "text": "again" }))
                .await
        ),
        "late: again"
    );
}

#[tokio::test]
async fn unknown_tool_names_list_the_backends_again_only_when_the_list_is_old() {
    for (miss_refresh_interval, expected_lists) in
        [(Duration::from_secs(3600), 1), (Duration::ZERO, 4)]
    {
        let server = mock_backend(tools(), false).await;
        let timings = Timings {
            miss_refresh_interval,
            ..Timings::default()
        };
        let registry = registry_yaml(&[("mock", &mock_url(&server), "")]);
        let app = spawn_app_with(with_timings(registry, timings))
            .await
            .expect("starts");
        let session = app.create_session(json!({ "servers": ["mock"] })).await;
        let mut mcp = app.mcp(&session).await;
        for _ in 0..3 {
            let answer = mcp.call_tool("mock__typo", json!({})).await;
            assert_eq!(answer["error"]["message"], "unknown tool \"mock__typo\"");
        }
        assert_eq!(
            requests_for(&server, "tools/list").await,
            expected_lists,
            "{miss_refresh_interval:?}"
        );
    }
}

/// Reads a gateway SSE stream until `wanted` methods have all been seen, or
/// 10 s have passed; returns every message read.
async fn read_events_until(response: reqwest::Response, wanted: &[&str]) -> Vec<Value> {
    use futures_util::StreamExt;
    let mut messages: Vec<Value> = Vec::new();
    let mut buffer = String::new();
    let mut chunks = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !wanted
        .iter()
        .all(|w| messages.iter().any(|m| m["method"] == *w))
    {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, chunks.next()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for data in event.lines().filter_map(|line| line.strip_prefix("data: ")) {
                messages.push(serde_json::from_str(data).expect("JSON event"));
            }
        }
    }
    messages
}

#[tokio::test]
async fn what_a_backend_sends_on_its_own_stream_reaches_the_clients_stream() {
    let server = mock_backend(tools(), false).await;
    let events = concat!(
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"file:///readme.md\"}}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hello\"}}\n\n",
    );
    Mock::given(method("GET"))
        .and(wiremock::matchers::header("mcp-session-id", "s1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(events, "text/event-stream"))
        .mount(&server)
        .await;
    let (_app, mcp) = session_over_mock("mock", &server).await;
    let stream = mcp.open_stream().await;
    let messages = read_events_until(
        stream,
        &[
            "notifications/tools/list_changed",
            "notifications/resources/updated",
            "notifications/message",
        ],
    )
    .await;
    let updated = messages
        .iter()
        .find(|m| m["method"] == "notifications/resources/updated")
        .unwrap_or_else(|| panic!("no resources/updated in {messages:?}"));
    assert_eq!(
        updated["params"]["uri"], "mock+file:///readme.md",
        "the URI the client knows"
    );
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "notifications/tools/list_changed"),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m["params"]["data"] == "hello"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn a_backend_that_opens_late_is_announced_on_the_clients_stream() {
    let slow = wiremock::MockServer::start().await;
    let initialized = json!({ "protocolVersion": "2025-11-25", "capabilities": { "tools": {} }, "serverInfo": { "name": "slow", "version": "1" } });
    mock_handshake(
        &slow,
        JsonRpcAnswer::result(initialized)
            .with_session("s1")
            .after(Duration::from_millis(800)),
    )
    .await;
    let timings = Timings {
        initialize_wait: Duration::from_millis(100),
        ..Timings::default()
    };
    let registry = registry_yaml(&[("slow", &mock_url(&slow), "")]);
    let app = spawn_app_with(with_timings(registry, timings))
        .await
        .expect("starts");
    let session = app.create_session(json!({ "servers": ["slow"] })).await;
    let mcp = app.mcp(&session).await;
    let stream = mcp.open_stream().await;
    let messages = read_events_until(stream, &["notifications/tools/list_changed"]).await;
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "notifications/tools/list_changed"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn once_shutdown_begins_new_requests_get_503_and_calls_in_flight_finish() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(
            JsonRpcAnswer::result(json!({ "content": [{ "type": "text", "text": "done" }] }))
                .in_sse()
                .after(Duration::from_millis(600)),
        )
        .mount(&server)
        .await;
    let (app, mut mcp) = session_over_mock("mock", &server).await;
    mcp.tool_names().await;
    let url = mcp.url.clone();
    let (answer, ()) = tokio::join!(mcp.call_tool("mock__t", json!({})), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.mux.begin_shutdown();
        let refused = app
            .post_create_session(&json!({ "servers": ["mock"] }))
            .await;
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "1");
        assert_eq!(
            refused.json::<Value>().await.expect("JSON"),
            json!({ "error": "shutting_down", "message": "mcp-mux is shutting down; try again shortly" })
        );
        let refused = reqwest::Client::new()
            .post(&url)
            .json(&json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list" }))
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "1");
        let body: Value = refused.json().await.expect("JSON-RPC");
        assert_eq!(body["error"]["code"], -32603);
        assert_eq!(
            body["error"]["message"],
            "mcp-mux is shutting down; try again shortly"
        );
    });
    assert_eq!(answer["result"]["content"][0]["text"], "done", "{answer}");
}
