//! When backend sessions open and close: all at once on initialize, and
//! closed with DELETE when an MCP session or a session ends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Barrier;

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

async fn mocked_session() -> (wiremock::MockServer, TestApp, String) {
    let server = mock_backend(tools(), false).await;
    let app = spawn_app(&registry_yaml(&[(
        "mock",
        &format!("{}/mcp", server.uri()),
        "",
    )]))
    .await;
    let session = app.create_session(json!({ "servers": ["mock"] })).await;
    (server, app, session)
}

#[tokio::test]
async fn ending_an_mcp_session_closes_its_backend_session() {
    let (server, app, session) = mocked_session().await;
    let mcp = app.mcp(&session).await;
    let ended = reqwest::Client::new()
        .delete(&mcp.url)
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ended.status(), 200);
    assert!(eventually(|| async { deletes_of(&server).await == 1 }).await);
}

#[tokio::test]
async fn idle_mcp_sessions_are_reaped_with_their_backend_sessions() {
    let (server, app, session) = mocked_session().await;
    let mcp = app.mcp(&session).await;
    assert_eq!(
        app.mux.reap_idle(Duration::from_secs(3600)),
        0,
        "a fresh MCP session stays"
    );
    assert_eq!(app.mux.reap_idle(Duration::ZERO), 1);
    assert!(eventually(|| async { deletes_of(&server).await == 1 }).await);
    let after = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert_eq!(after.status(), 404);
}

#[tokio::test]
async fn deleting_a_session_closes_the_backend_sessions_of_all_its_mcp_sessions() {
    let (server, app, session) = mocked_session().await;
    let _first = app.mcp(&session).await;
    let _second = app.mcp(&session).await;
    let deleted = app
        .http
        .delete(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    assert!(eventually(|| async { deletes_of(&server).await == 2 }).await);
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
    let first = app.mcp(&session).await;
    for _ in 1..mcp_mux::mux::MAX_MCP_SESSIONS_PER_SESSION {
        app.mcp(&session).await;
    }
    let shown: Value = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        shown["mcp_sessions"],
        mcp_mux::mux::MAX_MCP_SESSIONS_PER_SESSION
    );
    app.mcp(&session).await;
    let evicted = first
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert_eq!(evicted.status(), 404);
    assert!(eventually(|| async { deletes_of(&server).await == 1 }).await);
}
