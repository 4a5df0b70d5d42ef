//! Every bound run past its limit: request bodies that never finish, backend
//! streams of ended MCP sessions, the gateway's backend connections, each
//! session's share of a backend's calls. Each is refused with its exact
//! status and message, the backend is not blamed, and a bystander session
//! and `/healthz` go on answering.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// A call that holds a connection and a slot of the sticky backend for `ms`.
fn hold(mcp: &RawMcp, ms: u64) -> tokio::task::JoinHandle<Value> {
    let mut client = RawMcp::new(mcp.url.clone());
    client.session_id = mcp.session_id.clone();
    tokio::spawn(async move { client.call_tool("sticky__wait", json!({ "ms": ms })).await })
}

async fn assert_healthy(app: &TestApp) {
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_and_its_connection_closed() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.body_timeout = Duration::from_millis(300);
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mcp_path = format!("/session/{session}/mcp");

    let half_sent = |path: &str| {
        http_request(
            &[
                &format!("POST {path} HTTP/1.1"),
                "Host: 127.0.0.1",
                "Content-Type: application/json",
                "Content-Length: 100",
            ],
            "{",
        )
    };
    let never_ending = |path: &str| {
        http_request(
            &[
                &format!("POST {path} HTTP/1.1"),
                "Host: 127.0.0.1",
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            ],
            "1\r\n{\r\n",
        )
    };
    for request in [
        half_sent("/create-session"),
        never_ending("/create-session"),
    ] {
        // Read to the end: the gateway closes the connection after its answer.
        let answer = raw_http(&app.address, &request).await;
        assert_eq!(answer.status, 408);
        assert_eq!(answer.header("connection"), Some("close"));
        assert_eq!(
            answer.json(),
            json!({ "error": "request_timeout", "message": "the request body did not arrive within 0.3 s" })
        );
    }
    for request in [half_sent(&mcp_path), never_ending(&mcp_path)] {
        let answer = raw_http(&app.address, &request).await;
        assert_eq!(answer.status, 408);
        assert_eq!(answer.header("connection"), Some("close"));
        assert_eq!(
            answer.json(),
            json!({ "jsonrpc": "2.0", "id": null, "error": {
                "code": -32600, "message": "the request body did not arrive within 0.3 s",
            } })
        );
    }
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 1);
    assert_healthy(&app).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(mcp.tool_names().await.len(), 2, "the session still works");
}

#[tokio::test]
async fn ending_mcp_sessions_closes_their_backend_streams_even_when_the_backend_ignores_delete() {
    let backend = spawn_sticky_backend().await;
    let mut options = AppOptions::new(registry_yaml(&[("sticky", &backend.url, "")]));
    options.limits.max_mcp_sessions_per_session = 3;
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(app.mcp(&session).await);
    }
    assert!(eventually(|| async { backend.open_streams() == 3 }).await);

    // The client ends one MCP session: its stream closes.
    let ended = clients.pop().expect("three");
    let deleted = ended
        .http
        .delete(&ended.url)
        .header("mcp-session-id", ended.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);
    assert!(eventually(|| async { backend.open_streams() == 2 }).await);

    // Past the limit, the least recently used one ends, and its stream too.
    for _ in 0..3 {
        clients.push(app.mcp(&session).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(eventually(|| async { backend.open_streams() == 3 }).await);

    // The session is deleted: every stream closes.
    let deleted = app
        .http
        .delete(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);
    assert!(
        eventually(|| async { backend.open_streams() == 0 }).await,
        "{} streams still open",
        backend.open_streams()
    );

    // Idle MCP sessions are reaped, streams included.
    let session = app.create_session(json!({ "servers": ["sticky"] })).await;
    let _idle = app.mcp(&session).await;
    assert!(eventually(|| async { backend.open_streams() == 1 }).await);
    assert_eq!(app.mux.reap_idle(Duration::ZERO).await, 1);
    assert!(eventually(|| async { backend.open_streams() == 0 }).await);
}

#[tokio::test]
async fn backend_connections_are_bounded_and_beyond_them_requests_get_503_without_blaming_the_backend()
 {
    let backend = spawn_sticky_backend().await;
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[
        (
            "sticky",
            &backend.url,
            "timeout_ms: 20000\n    circuit_breaker: { failure_threshold: 1 }",
        ),
        ("alpha", &alpha.url, ""),
    ]));
    options.limits.max_backend_connections = 6;
    let app = spawn_app_with(options).await.expect("starts");
    let bystander = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut bystander = app.mcp(&bystander).await;

    // A flood of sessions, each with an MCP session: streams may take half
    // of the connections, one of which the bystander's backend stream
    // holds. (One session alone would be held to its share first.)
    let mut flooded = Vec::new();
    let mut flood = Vec::new();
    for _ in 0..5 {
        let session = app.create_session(json!({ "servers": ["sticky"] })).await;
        flood.push(app.mcp(&session).await);
        flooded.push(session);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backend.open_streams(), 2, "streams are held to half");
    assert_eq!(app.mux.backend_connections(), (3, 6));
    assert_eq!(
        first_text(
            &bystander
                .call_tool("alpha__echo", json!({ "text": "b" }))
                .await
        ),
        "alpha: b",
        "calls still find a connection"
    );
    assert_healthy(&app).await;

    // Three long calls take the other half: the next request finds none.
    let held = [
        hold(&flood[0], 8000),
        hold(&flood[1], 8000),
        hold(&flood[2], 8000),
    ];
    assert!(eventually(|| async { backend.calls() == 3 }).await);
    let refused = flood[3]
        .post(&json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "sticky__echo", "arguments": { "text": "x" } } }))
        .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let message = "mcp-mux has all its 6 backend connections in use (--max-backend-connections); try again shortly";
    assert_eq!(
        read_message(refused).await,
        json!({ "jsonrpc": "2.0", "id": 7, "error": {
            "code": -32603, "message": message, "data": { "server": "sticky" },
        } })
    );
    let newcomer = RawMcp::new(app.mcp_url(&flooded[3]));
    let initialize = newcomer
        .post(&json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } }))
        .await;
    assert_eq!(initialize.status(), 503);
    assert_eq!(initialize.headers()["retry-after"], "1");
    assert_eq!(
        read_message(initialize).await["error"],
        json!({ "code": -32603, "message": message })
    );
    assert_healthy(&app).await;

    // mcp-mux's own shortage is not the backend's failure.
    let circuit = &app.shown_session(&flooded[3]).await["servers"][0]["circuit"];
    assert_eq!(circuit["state"], "closed");
    assert_eq!(circuit["consecutive_failures"], 0);
    for call in held {
        assert_eq!(first_text(&call.await.expect("the call ends")), "done");
    }
    assert_eq!(
        first_text(
            &flood[3]
                .call_tool("sticky__echo", json!({ "text": "x" }))
                .await
        ),
        "x",
        "once connections free up, calls go through"
    );
}

/// A wiremock backend with one tool, `work`, answered after `delay`, and
/// no stream of its own (GET is 405), so that only calls hold connections.
async fn backend_answering_after(delay: Duration) -> wiremock::MockServer {
    use wiremock::matchers::{body_partial_json, method};
    use wiremock::{Mock, ResponseTemplate};
    let server = mock_backend(
        json!([{ "name": "work", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(405))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(
            JsonRpcAnswer::result(json!({ "content": [{ "type": "text", "text": "worked" }] }))
                .after(delay),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn one_session_holds_only_its_share_of_backend_connections_and_a_bystander_still_gets_one() {
    // Slow enough to outlast every refusal below; the test never waits
    // for them to end.
    let slow_a = backend_answering_after(Duration::from_secs(120)).await;
    let slow_b = backend_answering_after(Duration::from_secs(120)).await;
    let quick = backend_answering_after(Duration::ZERO).await;
    let slow = "timeout_ms: 300000\n    max_timeout_ms: 300000";
    let mut options = AppOptions::new(registry_yaml(&[
        ("slow-a", &mock_url(&slow_a), slow),
        ("slow-b", &mock_url(&slow_b), slow),
        ("quick", &mock_url(&quick), ""),
    ]));
    options.limits.max_backend_connections = 32;
    let app = spawn_app_with(options).await.expect("starts");
    let hog = app
        .create_session(json!({ "servers": ["slow-a", "slow-b"] }))
        .await;
    let hog_mcp = app.mcp(&hog).await;
    let bystander = app.create_session(json!({ "servers": ["quick"] })).await;
    let mut bystander = app.mcp(&bystander).await;

    // Each backend's cap for one session is 16: 32 calls at once would take
    // the whole budget. Half of it is the session's share; the calls past
    // it wait 2 s for one of the session's own to end, then are refused.
    let (finished, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for id in 0..32u64 {
        let mut client = RawMcp::new(hog_mcp.url.clone());
        client.session_id = hog_mcp.session_id.clone();
        let server = if id % 2 == 0 { "slow-a" } else { "slow-b" };
        let finished = finished.clone();
        tokio::spawn(async move {
            let answer = client
                .post(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": { "name": format!("{server}__work"), "arguments": {} } }))
                .await;
            let status = answer.status();
            let retry_after = answer.headers().get("retry-after").cloned();
            let _ = finished.send((id, server, status, retry_after, read_message(answer).await));
        });
    }
    let share = "this session already holds its share of mcp-mux's backend connections \
        (16 of 32: half of those other sessions leave free); try again shortly";
    for _ in 0..16 {
        let (id, server, status, retry_after, body) = answers.recv().await.expect("an answer");
        assert_eq!(status, 429, "{body}");
        assert_eq!(
            retry_after.as_ref().map(|value| value.as_bytes()),
            Some(&b"1"[..])
        );
        assert_eq!(
            body,
            json!({ "jsonrpc": "2.0", "id": id, "error": {
                "code": -32603, "message": share, "data": { "server": server },
            } })
        );
    }
    let reached = || async {
        requests_for(&slow_a, "tools/call").await + requests_for(&slow_b, "tools/call").await
    };
    assert!(eventually(|| async { reached().await == 16 }).await);
    assert!(eventually(|| async { app.mux.backend_connections() == (16, 32) }).await);

    // The bystander on a third backend still gets a connection, at once.
    let answer = bystander.call_tool("quick__work", json!({})).await;
    assert_eq!(first_text(&answer), "worked");

    // Over plain HTTP, and for a new MCP session of the hog, the same.
    let refused = app
        .http
        .post(format!("{}/session/{hog}/tools/slow-a__work", app.address))
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({ "error": "connection_share", "message": share })
    );
    let initialize = RawMcp::new(app.mcp_url(&hog))
        .post(&json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } }))
        .await;
    assert_eq!(initialize.status(), 429);
    assert_eq!(initialize.headers()["retry-after"], "1");
    assert_eq!(
        read_message(initialize).await,
        json!({ "jsonrpc": "2.0", "id": 0, "error": { "code": -32600, "message": share } })
    );

    // The session's own excess blames neither backend.
    for server in app.shown_session(&hog).await["servers"]
        .as_array()
        .expect("servers")
    {
        assert_eq!(server["circuit"]["state"], "closed", "{server}");
        assert_eq!(server["circuit"]["consecutive_failures"], 0, "{server}");
    }
    let answer = bystander.call_tool("quick__work", json!({})).await;
    assert_eq!(first_text(&answer), "worked");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn one_session_cannot_take_every_slot_of_a_shared_backend_and_busy_is_said_as_busy() {
    let backend = spawn_sticky_backend().await;
    let app = spawn_app(&registry_yaml(&[(
        "sticky",
        &backend.url,
        "max_concurrent_calls: 3\n    max_concurrent_calls_per_session: 2\n    retry: { initial_interval_ms: 20, max_interval_ms: 50, max_elapsed_ms: 300 }",
    )]))
    .await;
    let greedy = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mut greedy = app.mcp(&greedy).await;
    greedy.tool_names().await;
    let other = app.create_session(json!({ "servers": ["sticky"] })).await;
    // Open before the flood, its list not read yet.
    let other = app.mcp(&other).await;
    let late = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mut late = app.mcp(&late).await;

    let held = [hold(&greedy, 3000), hold(&greedy, 3000)];
    assert!(eventually(|| async { backend.calls() == 2 }).await);
    let refused = greedy
        .call_tool("sticky__echo", json!({ "text": "g" }))
        .await;
    assert_eq!(
        refused["error"],
        json!({
            "code": -32603,
            "message": "this session already has 2 calls in progress on backend \"sticky\" (max_concurrent_calls_per_session); try again later",
            "data": { "server": "sticky" },
        })
    );
    // Another session still has the backend's last slot.
    let third = hold(&other, 3000);
    assert!(eventually(|| async { backend.calls() == 3 }).await);

    // Now the backend is full: a session whose list needs it hears that it
    // is busy, not that its tool does not exist.
    let busy = late.call_tool("sticky__echo", json!({ "text": "l" })).await;
    assert_eq!(
        busy["error"],
        json!({
            "code": -32603,
            "message": "backend \"sticky\" already has 3 calls in progress (max_concurrent_calls); try again later",
            "data": { "server": "sticky" },
        })
    );
    let circuit = &app
        .shown_session(late.url.split('/').nth(4).expect("id"))
        .await["servers"][0]["circuit"];
    assert_eq!(circuit["state"], "closed");
    for call in held.into_iter().chain([third]) {
        assert_eq!(first_text(&call.await.expect("ends")), "done");
    }
    assert_eq!(
        first_text(&late.call_tool("sticky__echo", json!({ "text": "l" })).await),
        "l"
    );
    assert_healthy(&app).await;
}

#[tokio::test]
async fn slow_tool_calls_do_not_open_the_circuit_for_every_session() {
    let backend = spawn_sticky_backend().await;
    let app = spawn_app(&registry_yaml(&[(
        "sticky",
        &backend.url,
        "timeout_ms: 200\n    circuit_breaker: { failure_threshold: 2, open_ms: 60000 }",
    )]))
    .await;
    let slow = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mut slow_client = app.mcp(&slow).await;
    for _ in 0..3 {
        let timed_out = slow_client
            .call_tool("sticky__wait", json!({ "ms": 1000 }))
            .await;
        assert_eq!(
            timed_out["error"]["message"],
            "backend \"sticky\" did not answer within 200 ms"
        );
    }
    let circuit = &app.shown_session(&slow).await["servers"][0]["circuit"];
    assert_eq!(circuit["state"], "closed", "{circuit}");
    let bystander = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mut bystander = app.mcp(&bystander).await;
    assert_eq!(
        first_text(
            &bystander
                .call_tool("sticky__echo", json!({ "text": "b" }))
                .await
        ),
        "b"
    );
}
