//! Backends that misbehave: SSE quirks, transient errors, timeouts, expired
//! sessions. Retries must never run a tool twice.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const FAST_RETRY: &str =
    "retry: { initial_interval_ms: 20, max_interval_ms: 100, max_elapsed_ms: 2000 }";

fn tools() -> Value {
    json!([
        { "name": "write", "inputSchema": { "type": "object" } },
        { "name": "read", "inputSchema": { "type": "object" }, "annotations": { "readOnlyHint": true } },
    ])
}

fn call(tool: &str) -> Value {
    json!({ "method": "tools/call", "params": { "name": tool } })
}

fn ok_result(text: &str) -> JsonRpcAnswer {
    JsonRpcAnswer::result(
        json!({ "content": [{ "type": "text", "text": text }], "isError": false }),
    )
}

/// Answers the first call of `tool` with `first`, every later one with `then`.
async fn fail_once_then(
    server: &wiremock::MockServer,
    tool: &str,
    first: ResponseTemplate,
    then: JsonRpcAnswer,
) {
    Mock::given(method("POST"))
        .and(body_partial_json(call(tool)))
        .respond_with(first)
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(call(tool)))
        .respond_with(then)
        .mount(server)
        .await;
}

async fn session_over(server: &wiremock::MockServer, extra: &str) -> (TestApp, RawMcp) {
    let app = spawn_app(&registry_yaml(&[("flaky", &mock_url(server), extra)])).await;
    let session = app.create_session(json!({ "servers": ["flaky"] })).await;
    let mcp = app.mcp(&session).await;
    (app, mcp)
}

#[tokio::test]
async fn sse_answers_with_priming_events_are_read() {
    let server = mock_backend(tools(), true).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(ok_result("written").in_sse())
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(names, ["flaky__read", "flaky__write"]);
    assert_eq!(
        first_text(&mcp.call_tool("flaky__write", json!({})).await),
        "written"
    );
}

#[tokio::test]
async fn a_result_is_passed_back_unchanged_and_a_backend_error_is_relayed() {
    let server = mock_backend(tools(), false).await;
    let odd_result = json!({ "content": [{ "type": "text", "text": "x" }], "structuredContent": { "n": 1.5, "nested": [null, true] }, "_meta": { "k": "v" } });
    Mock::given(method("POST"))
        .and(body_partial_json(call("read")))
        .respond_with(JsonRpcAnswer::result(odd_result.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(JsonRpcAnswer::error(
            json!({ "code": -32099, "message": "disk full", "data": { "free": 0 } }),
        ))
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    assert_eq!(
        mcp.call_tool("flaky__read", json!({})).await["result"],
        odd_result
    );
    assert_eq!(
        mcp.call_tool("flaky__write", json!({})).await["error"],
        json!({ "code": -32099, "message": "disk full", "data": { "free": 0 } })
    );
}

#[tokio::test]
async fn a_503_then_200_is_retried_even_for_a_tool_with_effects() {
    let server = mock_backend(tools(), false).await;
    fail_once_then(
        &server,
        "write",
        ResponseTemplate::new(503),
        ok_result("written"),
    )
    .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    assert_eq!(
        first_text(&mcp.call_tool("flaky__write", json!({})).await),
        "written"
    );
    assert_eq!(requests_for(&server, "tools/call").await, 2);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let server = mock_backend(tools(), false).await;
    fail_once_then(
        &server,
        "read",
        ResponseTemplate::new(429).insert_header("retry-after", "1"),
        ok_result("read"),
    )
    .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    assert_eq!(
        first_text(&mcp.call_tool("flaky__read", json!({})).await),
        "read"
    );
    assert_eq!(requests_for(&server, "tools/call").await, 2);
}

/// Each answer a backend gives once and for all: reported to the client
/// naming the backend, sent to the backend exactly once, and never taken
/// for an expired session.
#[tokio::test]
async fn final_refusals_are_reported_after_one_attempt() {
    let cases = [
        // A 500 says nothing about whether the tool ran.
        (
            "write",
            ResponseTemplate::new(500),
            "backend \"flaky\" answered HTTP 500",
        ),
        // A Retry-After past the retry budget ends the retries at once...
        (
            "read",
            ResponseTemplate::new(429).insert_header("retry-after", "3600"),
            "backend \"flaky\" answered HTTP 429",
        ),
        // ...however large, without overflowing.
        (
            "read",
            ResponseTemplate::new(503).insert_header("retry-after", "18446744073709551615"),
            "backend \"flaky\" answered HTTP 503",
        ),
        // Only a 400 that names the session means the session expired.
        (
            "write",
            ResponseTemplate::new(400).set_body_string("invalid session_name argument"),
            "backend \"flaky\" answered HTTP 400",
        ),
    ];
    for (tool, refusal, message) in cases {
        let server = mock_backend(tools(), false).await;
        Mock::given(method("POST"))
            .and(body_partial_json(call(tool)))
            .respond_with(refusal)
            .mount(&server)
            .await;
        let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
        let answer = mcp.call_tool(&format!("flaky__{tool}"), json!({})).await;
        assert_eq!(
            answer["error"],
            json!({ "code": -32603, "message": message, "data": { "server": "flaky" } })
        );
        assert_eq!(requests_for(&server, "tools/call").await, 1, "{message}");
        assert_eq!(requests_for(&server, "initialize").await, 1, "{message}");
        assert_eq!(
            mcp.request("ping", json!({})).await["result"],
            json!({}),
            "the gateway still serves"
        );
    }
}

#[tokio::test]
async fn a_504_is_retried_for_a_read_only_tool_but_never_for_a_tool_with_effects() {
    let server = mock_backend(tools(), false).await;
    for tool in ["write", "read"] {
        fail_once_then(&server, tool, ResponseTemplate::new(504), ok_result(tool)).await;
    }
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    let write = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        write["error"]["message"],
        "backend \"flaky\" answered HTTP 504"
    );
    assert_eq!(
        requests_for(&server, "tools/call").await,
        1,
        "the tool with effects ran at most once"
    );

    assert_eq!(
        first_text(&mcp.call_tool("flaky__read", json!({})).await),
        "read"
    );
    assert_eq!(requests_for(&server, "tools/call").await, 3);
}

#[tokio::test]
async fn a_slow_backend_hits_its_timeout_once() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(ok_result("late").after(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, &format!("timeout_ms: 300\n{FAST_RETRY}")).await;
    let answer = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({ "code": -32603, "message": "backend \"flaky\" did not answer within 300 ms", "data": { "server": "flaky" } })
    );
    assert_eq!(requests_for(&server, "tools/call").await, 1);
}

async fn expired_session_backend(expired: ResponseTemplate) -> wiremock::MockServer {
    let server = mock_backend(tools(), false).await;
    let initialized = |version: &str| {
        JsonRpcAnswer::result(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "mock", "version": version }
        }))
    };
    // The first initialize issues s1, every later one s2.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "initialize" })))
        .respond_with(initialized("1").with_session("s1"))
        .with_priority(1)
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "initialize" })))
        .respond_with(initialized("2").with_session("s2"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .and(header("mcp-session-id", "s1"))
        .respond_with(expired)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .and(header("mcp-session-id", "s2"))
        .respond_with(ok_result("after re-initialize"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn an_expired_backend_session_is_reinitialized_and_the_call_replayed() {
    for expired in [
        ResponseTemplate::new(404),
        // Some backends answer an unknown session with 400.
        ResponseTemplate::new(400)
            .set_body_json(json!({ "error": "Bad Request: Session not found" })),
    ] {
        let server = expired_session_backend(expired).await;
        let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
        let answer = mcp.call_tool("flaky__write", json!({})).await;
        assert_eq!(first_text(&answer), "after re-initialize", "{answer}");
        assert_eq!(requests_for(&server, "initialize").await, 2);
        assert_eq!(
            requests_for(&server, "tools/call").await,
            2,
            "refused unseen, then replayed once"
        );
    }
}

#[tokio::test]
async fn a_backend_refusing_connections_then_coming_up_is_reached_by_retries() {
    let port = unused_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    // A generous budget: the backend starts 300 ms in, however slow the machine.
    let retry = "retry: { initial_interval_ms: 20, max_interval_ms: 200, max_elapsed_ms: 20000 }";
    let app = spawn_app(&registry_yaml(&[("late", &url, retry)])).await;
    let session = app.create_session(json!({ "servers": ["late"] })).await;
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("port still free");
        serve_rmcp_backend(listener, "late", None)
    });
    let mut mcp = app.mcp(&session).await;
    let _backend = starter.await.expect("backend started");
    assert_eq!(
        first_text(&mcp.call_tool("late__echo", json!({ "text": "up" })).await),
        "late: up"
    );
}

#[tokio::test]
async fn a_backend_that_stays_down_does_not_fail_the_session() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let down = format!("http://127.0.0.1:{}/mcp", unused_port());
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        (
            "down",
            &down,
            "retry: { initial_interval_ms: 10, max_interval_ms: 20, max_elapsed_ms: 100 }",
        ),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "down"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(names, ["alpha__add", "alpha__echo"]);
    let answer = mcp.call_tool("down__echo", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({
            "code": -32603,
            "message": "backend \"down\" is unreachable: connection refused or failed",
            "data": { "server": "down" }
        })
    );
}

#[tokio::test]
async fn every_page_of_a_backend_list_is_merged() {
    let server = wiremock::MockServer::start().await;
    let initialized = json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": {} }, "serverInfo": { "name": "paged", "version": "1" } });
    mock_handshake(&server, JsonRpcAnswer::result(initialized)).await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "tools/list", "params": { "cursor": "page-2" } }),
        ))
        .and(header("mcp-protocol-version", "2025-06-18"))
        .respond_with(JsonRpcAnswer::result(
            json!({ "tools": [{ "name": "c", "inputSchema": {} }] }),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(json!({ "tools": [{ "name": "a", "inputSchema": {} }, { "name": "b", "inputSchema": {} }], "nextCursor": "page-2" })))
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    assert_eq!(mcp.tool_names().await, ["flaky__a", "flaky__b", "flaky__c"]);
}

#[tokio::test]
async fn invalid_backend_answers_are_errors_that_name_the_backend_and_are_not_retried() {
    let server = mock_backend(tools(), false).await;
    let too_large = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(17 * 1024 * 1024)
    );
    Mock::given(method("POST"))
        .and(body_partial_json(call("read")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(too_large, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("event: message\ndata: {not json\n\n", "text/event-stream"),
        )
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    let answer = mcp.call_tool("flaky__read", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({ "code": -32603, "message": "backend \"flaky\" sent an invalid answer: the answer exceeds the 16 MiB size limit", "data": { "server": "flaky" } })
    );
    assert_eq!(
        requests_for(&server, "tools/call").await,
        1,
        "a read-only call is not fetched again"
    );
    let answer = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        answer["error"]["message"],
        "backend \"flaky\" sent an invalid answer: event data is not a JSON-RPC message"
    );
}

#[tokio::test]
async fn a_json_answer_to_another_request_id_is_refused() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "jsonrpc": "2.0", "id": 999, "result": {} })),
        )
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    let answer = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        answer["error"]["message"],
        "backend \"flaky\" sent an invalid answer: response answers another request id"
    );
}

/// A backend whose `write` answer stream carries a sampling request and a
/// progress notification before the result.
async fn chatty_backend() -> wiremock::MockServer {
    let server = mock_backend(tools(), false).await;
    // mcp-mux numbers its requests to a backend: initialize 1, tools/list 2, tools/call 3.
    let stream = concat!(
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"sampling/createMessage\",\"params\":{\"maxTokens\":5}}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p-1\",\"progress\":1}}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n",
    );
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(stream, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_json_only_client_gets_the_result_and_backend_requests_are_refused() {
    let server = chatty_backend().await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "id": "srv-1", "error": { "code": -32601 } }),
        ))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    mcp.tool_names().await;
    let response = mcp
        .http
        .post(&mcp.url)
        .header("accept", "application/json")
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .json(&json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "flaky__write" } }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(first_text(&answer), "done");
}

#[tokio::test]
async fn a_streaming_client_receives_backend_messages_first_and_its_answer_reaches_the_backend() {
    let server = chatty_backend().await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "id": "srv-1", "result": { "role": "assistant" } }),
        ))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    mcp.tool_names().await;
    let response = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": { "name": "flaky__write", "_meta": { "progressToken": "p-1" } } }))
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("body");
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("JSON event"))
        .collect();
    assert_eq!(messages.len(), 3, "{text}");
    assert_eq!(
        messages[0],
        json!({ "jsonrpc": "2.0", "id": "mux-1", "method": "sampling/createMessage", "params": { "maxTokens": 5 } }),
        "the backend's request, under an id of the gateway's"
    );
    assert_eq!(messages[1]["method"], "notifications/progress");
    assert_eq!(messages[1]["params"]["progressToken"], "p-1");
    assert_eq!(messages[2]["id"], 8);
    assert_eq!(first_text(&messages[2]), "done");

    let answered = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": "mux-1", "result": { "role": "assistant", "content": { "type": "text", "text": "hi" }, "model": "m" } }))
        .await;
    assert_eq!(answered.status(), 202);
    // wiremock checks on drop that the backend got the answer under its own id.
}

#[tokio::test]
async fn an_answer_stream_closed_early_is_resumed_with_last_event_id() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("id: ev-1\nretry: 10\ndata:\n\n", "text/event-stream"),
        )
        .mount(&server)
        .await;
    // The id of the resumed answer is tools/call's: initialize 1, tools/list 2, tools/call 3.
    Mock::given(method("GET"))
        .and(header("last-event-id", "ev-1"))
        .and(header("mcp-session-id", "s1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "id: ev-2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"resumed\"}]}}\n\n",
            "text/event-stream",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    mcp.tool_names().await;
    assert_eq!(
        first_text(&mcp.call_tool("flaky__write", json!({})).await),
        "resumed"
    );
    assert_eq!(
        requests_for(&server, "tools/call").await,
        1,
        "resumed, not sent again"
    );
}

#[tokio::test]
async fn a_backend_whose_list_fails_is_left_out_and_the_others_are_listed() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let refusing = wiremock::MockServer::start().await;
    let looping = wiremock::MockServer::start().await;
    for server in [&refusing, &looping] {
        let initialized = json!({ "protocolVersion": "2025-11-25", "capabilities": { "tools": {} }, "serverInfo": { "name": "m", "version": "1" } });
        mock_handshake(server, JsonRpcAnswer::result(initialized)).await;
    }
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::error(
            json!({ "code": -32603, "message": "listing is broken" }),
        ))
        .mount(&refusing)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(
            json!({ "tools": [{ "name": "x", "inputSchema": {} }], "nextCursor": "same" }),
        ))
        .mount(&looping)
        .await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("refusing", &mock_url(&refusing), FAST_RETRY),
        ("looping", &mock_url(&looping), FAST_RETRY),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "refusing", "looping"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(names, ["alpha__add", "alpha__echo"]);
    assert_eq!(
        requests_for(&looping, "tools/list").await,
        2,
        "the repeated cursor ends the listing"
    );
}

/// A backend whose answer to `write` is a stream that ends after its first
/// event id, and whose resume GET is answered with `resumed`.
async fn stream_lost_backend(resumed: ResponseTemplate) -> wiremock::MockServer {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("id: ev-1\nretry: 10\ndata:\n\n", "text/event-stream"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(resumed)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_failed_resume_never_sends_a_tool_with_effects_again() {
    for (refusal, message) in [
        (
            503,
            "backend \"flaky\" connection broke before the answer was complete",
        ),
        // A 404 here must not pass for an expired session to re-open and replay.
        (
            404,
            "backend \"flaky\" connection broke before the answer was complete",
        ),
        (
            405,
            "backend \"flaky\" connection broke before the answer was complete",
        ),
    ] {
        let server = stream_lost_backend(ResponseTemplate::new(refusal)).await;
        let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
        let answer = mcp.call_tool("flaky__write", json!({})).await;
        assert_eq!(
            answer["error"]["message"], message,
            "resume refused with {refusal}"
        );
        assert_eq!(
            requests_for(&server, "tools/call").await,
            1,
            "resume refused with {refusal}"
        );
        assert_eq!(
            requests_for(&server, "initialize").await,
            1,
            "resume refused with {refusal}"
        );
    }
}

/// The JSON-RPC methods a mock backend was sent, in order. GETs are left
/// out: wiremock reuses its servers' ports across tests, and another
/// test's gateway may still be reconnecting a stream to this one.
async fn posted_in_order(server: &wiremock::MockServer) -> Vec<String> {
    let received = server.received_requests().await.unwrap_or_default();
    received
        .iter()
        .filter(|request| request.method == wiremock::http::Method::POST)
        .filter_map(|request| {
            serde_json::from_slice::<Value>(&request.body)
                .ok()
                .and_then(|body| body["method"].as_str().map(str::to_owned))
        })
        .collect()
}

/// A backend that answers `initialize` with the session "s1", and its
/// `notifications/initialized` with `notice`.
async fn backend_answering_its_notice(notice: ResponseTemplate) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "initialize" })))
        .respond_with(
            JsonRpcAnswer::result(json!({ "protocolVersion": "2025-11-25", "capabilities": { "tools": {} }, "serverInfo": { "name": "m", "version": "1" } }))
                .with_session("s1"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "notifications/initialized" }),
        ))
        .respond_with(notice)
        .mount(&server)
        .await;
    server
}

/// A backend whose `notifications/initialized` is taken only after `delay`
/// (busy with other sessions' notices, say).
async fn backend_taking_its_notice_after(delay: Duration) -> wiremock::MockServer {
    let server = backend_answering_its_notice(ResponseTemplate::new(202).set_delay(delay)).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(json!({ "tools": tools() })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(405))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn initialize_is_answered_while_a_backend_has_yet_to_take_its_notice() {
    let server = backend_taking_its_notice_after(Duration::from_secs(600)).await;
    // The client's initialize does not wait for the notice (nor time out
    // on it): the backend answered initialize, and the notice follows.
    let (_app, _mcp) = session_over(&server, "").await;
    assert!(
        eventually(|| async { requests_for(&server, "notifications/initialized").await == 1 })
            .await
    );
    // Nothing else goes to the backend until it takes the notice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        posted_in_order(&server).await,
        ["initialize", "notifications/initialized"]
    );
}

#[tokio::test]
async fn no_message_to_a_backend_overtakes_its_notice() {
    let server = backend_taking_its_notice_after(Duration::from_secs(2)).await;
    let (_app, mut mcp) = session_over(&server, "").await;
    assert_eq!(mcp.tool_names().await, ["flaky__write", "flaky__read"]);
    let received = posted_in_order(&server).await;
    assert_eq!(&received[..2], ["initialize", "notifications/initialized"]);
    assert!(received.contains(&"tools/list".to_owned()), "{received:?}");
}

#[tokio::test]
async fn a_backend_that_cannot_complete_initialize_has_its_new_session_deleted() {
    let server = backend_answering_its_notice(ResponseTemplate::new(500)).await;
    Mock::given(method("DELETE"))
        .and(header("mcp-session-id", "s1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    assert_eq!(mcp.tool_names().await, Vec::<String>::new());
    let answer = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        answer["error"]["message"],
        "backend \"flaky\" answered HTTP 500"
    );
}

#[tokio::test]
async fn a_cancellation_reaches_the_backend_under_its_own_request_id() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(ok_result("too late").after(Duration::from_millis(800)))
        .mount(&server)
        .await;
    // mcp-mux numbers its requests to a backend: initialize 1, tools/list 2, tools/call 3.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "notifications/cancelled", "params": { "requestId": 3, "reason": "user" } })))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "notifications/roots/list_changed" }),
        ))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over(&server, FAST_RETRY).await;
    mcp.tool_names().await;
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cancelled = mcp
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "call-1", "reason": "user" } }))
            .await;
        assert_eq!(cancelled.status(), 202);
    };
    let call = async {
        mcp.post(&json!({ "jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": { "name": "flaky__write" } }))
            .await
    };
    let (answer, ()) = tokio::join!(call, canceller);
    assert_eq!(answer.status(), 200);
    let roots = mcp
        .post(&json!({ "jsonrpc": "2.0", "method": "notifications/roots/list_changed" }))
        .await;
    assert_eq!(roots.status(), 202);
    // wiremock checks on drop that each backend got exactly one of both.
}

async fn circuit_of(app: &TestApp, session: &str) -> Value {
    app.shown_session(session).await["servers"][0]["circuit"].clone()
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_and_calls_then_fail_at_once() {
    let server = mock_backend(tools(), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(call("write")))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let app = spawn_app(&registry_yaml(&[(
        "flaky",
        &mock_url(&server),
        "circuit_breaker: { failure_threshold: 2, open_ms: 60000 }",
    )]))
    .await;
    let session = app.create_session(json!({ "servers": ["flaky"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        circuit_of(&app, &session).await,
        json!({ "state": "closed", "consecutive_failures": 0 })
    );
    for _ in 0..2 {
        let failed = mcp.call_tool("flaky__write", json!({})).await;
        assert_eq!(
            failed["error"]["message"],
            "backend \"flaky\" answered HTTP 500"
        );
    }
    let circuit = circuit_of(&app, &session).await;
    assert_eq!(circuit["state"], "open");
    assert_eq!(circuit["consecutive_failures"], 2);
    let retry_in = circuit["retry_in_ms"].as_u64().expect("retry_in_ms");
    assert!(retry_in > 0 && retry_in <= 60_000, "{circuit}");

    let refused = mcp.call_tool("flaky__write", json!({})).await;
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(
        message
            .starts_with("backend \"flaky\" failed 2 times in a row; calls to it are paused for ")
            && message.ends_with(" ms (circuit breaker open)"),
        "{message}"
    );
    assert_eq!(refused["error"]["data"], json!({ "server": "flaky" }));
    assert_eq!(
        requests_for(&server, "tools/call").await,
        2,
        "an open circuit sends nothing"
    );
}

#[tokio::test]
async fn after_the_pause_a_probe_that_succeeds_closes_the_circuit() {
    let server = mock_backend(tools(), false).await;
    fail_once_then(
        &server,
        "write",
        ResponseTemplate::new(503),
        ok_result("back"),
    )
    .await;
    let app = spawn_app(&registry_yaml(&[(
        "flaky",
        &mock_url(&server),
        "circuit_breaker: { failure_threshold: 1, open_ms: 1 }\n    retry: { initial_interval_ms: 20, max_interval_ms: 20, max_elapsed_ms: 1 }",
    )]))
    .await;
    let session = app.create_session(json!({ "servers": ["flaky"] })).await;
    let mut mcp = app.mcp(&session).await;
    let failed = mcp.call_tool("flaky__write", json!({})).await;
    assert_eq!(
        failed["error"]["message"],
        "backend \"flaky\" answered HTTP 503"
    );
    assert!(
        eventually(|| async { circuit_of(&app, &session).await["retry_in_ms"] == 0 }).await,
        "the pause ends"
    );
    assert_eq!(
        first_text(&mcp.call_tool("flaky__write", json!({})).await),
        "back"
    );
    assert_eq!(
        circuit_of(&app, &session).await,
        json!({ "state": "closed", "consecutive_failures": 0 })
    );
}
