//! One merged list for every client of a session: many clients connecting
//! to one session cause one fan-out of `tools/list`, until a backend's
//! `ttlMs` or the gateway's bound runs out.

use futures_util::future::join_all;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer};

use crate::helpers::*;

/// A gateway over one mock backend, with the gateway's list bound `ttl`.
async fn gateway(server: &MockServer, ttl: std::time::Duration) -> (TestApp, String) {
    let mut options = AppOptions::new(registry_yaml(&[("mock", &mock_url(server), "")]));
    options.timings.list_ttl = ttl;
    options.limits.max_mcp_sessions_per_session = 128;
    let app = spawn_app_with(options).await.expect("gateway starts");
    let session = app.create_session(json!({ "servers": ["mock"] })).await;
    (app, session)
}

#[tokio::test]
async fn a_hundred_clients_of_one_session_cause_one_listing() {
    let server = mock_backend(
        json!([{ "name": "echo", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    let (app, session) = gateway(&server, std::time::Duration::from_secs(600)).await;
    let mut clients = join_all((0..100).map(|_| app.mcp(&session))).await;
    let listings_before = requests_for(&server, "tools/list").await;
    let lists = join_all(clients.iter_mut().map(RawMcp::tool_names)).await;
    assert!(
        lists.iter().all(|names| names == &["mock__echo"]),
        "{lists:?}"
    );
    let listings = requests_for(&server, "tools/list").await - listings_before;
    println!("100 clients of one session listed their tools: {listings} backend listing(s)");
    assert_eq!(listings, 1);

    // A later client, and a call by name, use the same list.
    let mut late = app.mcp(&session).await;
    assert_eq!(late.tool_names().await, ["mock__echo"]);
    assert_eq!(
        requests_for(&server, "tools/list").await - listings_before,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_list_is_listed_again_once_its_time_to_live_runs_out() {
    // The gateway keeps a list no time at all: every listing goes out.
    let server = mock_backend(
        json!([{ "name": "echo", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    let (app, session) = gateway(&server, std::time::Duration::ZERO).await;
    let mut mcp = app.mcp(&session).await;
    let before = requests_for(&server, "tools/list").await;
    mcp.tool_names().await;
    mcp.tool_names().await;
    assert_eq!(requests_for(&server, "tools/list").await - before, 2);
    app.stop().await;

    // A backend's own `ttlMs` of 0 (revision 2026-07-28) does the same
    // within a long bound.
    let server = MockServer::start().await;
    mock_handshake(
        &server,
        JsonRpcAnswer::result(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "mock", "version": "1" }
        })),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(json!({
            "tools": [{ "name": "echo", "inputSchema": { "type": "object" } }],
            "ttlMs": 0,
        })))
        .mount(&server)
        .await;
    let (app, session) = gateway(&server, std::time::Duration::from_secs(600)).await;
    let mut mcp = app.mcp(&session).await;
    let before = requests_for(&server, "tools/list").await;
    mcp.tool_names().await;
    mcp.tool_names().await;
    assert_eq!(requests_for(&server, "tools/list").await - before, 2);
    app.stop().await;
}
