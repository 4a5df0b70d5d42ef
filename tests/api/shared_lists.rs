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
    // One connection pool for all of them, as a proxy in front would have.
    // Its idle connections are dropped before the gateway's keep-alive
    // (5 s) closes them, so that none is used as it closes on a busy machine.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client");
    let mut clients = join_all((0..100).map(|_| async {
        let mut mcp = RawMcp::new(app.mcp_url(&session));
        mcp.http = http.clone();
        mcp.initialize("2025-11-25").await;
        mcp
    }))
    .await;
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

/// A backend that lists `sample` only to clients that can sample, as the
/// reference server lists `trigger-sampling-request`.
#[derive(Clone)]
struct CapabilityAware;

impl rmcp::ServerHandler for CapabilityAware {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let schema = std::sync::Arc::new(serde_json::Map::from_iter([(
            "type".to_owned(),
            json!("object"),
        )]));
        let mut tools = vec![rmcp::model::Tool::new("base", "always", schema.clone())];
        let samples = context
            .peer
            .peer_info()
            .is_some_and(|info| info.capabilities.sampling.is_some());
        if samples {
            tools.push(rmcp::model::Tool::new("sample", "with sampling", schema));
        }
        Ok(rmcp::model::ListToolsResult::with_all_items(tools))
    }
}

#[tokio::test]
async fn clients_that_tell_backends_different_capabilities_do_not_share_a_list() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(listener, || CapabilityAware, None);
    let app = spawn_app(&registry_yaml(&[("aware", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["aware"] })).await;

    let mut plain = app.mcp(&session).await;
    assert_eq!(plain.tool_names().await, ["aware__base"]);
    let mut sampling = RawMcp::new(app.mcp_url(&session));
    let answer = sampling
        .post(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": { "sampling": {} },
                        "clientInfo": { "name": "test", "version": "1" } }
        }))
        .await;
    assert_eq!(answer.status(), 200);
    sampling.session_id = answer
        .headers()
        .get("mcp-session-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        sampling.tool_names().await,
        ["aware__base", "aware__sample"]
    );
    // And the first client's list is still its own.
    assert_eq!(plain.tool_names().await, ["aware__base"]);
    app.stop().await;
}
