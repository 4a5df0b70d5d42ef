//! Call timeouts that progress pushes back, up to a maximum, and bounds on
//! a backend's calls in progress: a hung backend holds up nothing else.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ProgressNotificationParam, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct WorkRequest {
    steps: u32,
    step_ms: u64,
    /// Whether to send a progress notification after each step.
    report: bool,
}

/// A backend whose one tool works in steps, reporting progress if asked.
#[derive(Debug, Clone)]
pub struct SlowServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl SlowServer {
    pub fn new() -> Self {
        SlowServer {
            tool_router: SlowServer::tool_router(),
        }
    }

    #[tool(description = "Work in steps")]
    async fn work(
        &self,
        Parameters(WorkRequest {
            steps,
            step_ms,
            report,
        }): Parameters<WorkRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let token = context.meta.get_progress_token();
        for step in 1..=steps {
            tokio::time::sleep(Duration::from_millis(step_ms)).await;
            if let (true, Some(token)) = (report, token.clone()) {
                let progress = ProgressNotificationParam::new(token, f64::from(step));
                let _ = context.peer.notify_progress(progress).await;
            }
        }
        Ok(format!("{steps} steps done"))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SlowServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A gateway over the slow backend with `extra` registry keys, and a client.
async fn slow_session(extra: &str) -> (TestApp, RmcpBackend, RawMcp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(listener, SlowServer::new, None);
    let app = spawn_app(&registry_yaml(&[("slow", &backend.url, extra)])).await;
    let session = app.create_session(json!({ "servers": ["slow"] })).await;
    let mcp = app.mcp(&session).await;
    (app, backend, mcp)
}

pub async fn work(mcp: &mut RawMcp, steps: u32, step_ms: u64, report: bool) -> Value {
    mcp.request(
        "tools/call",
        json!({
            "name": "slow__work",
            "arguments": { "steps": steps, "step_ms": step_ms, "report": report },
            "_meta": { "progressToken": "p1" },
        }),
    )
    .await
}

#[tokio::test]
async fn progress_keeps_a_call_alive_past_its_timeout() {
    let (_app, _backend, mut mcp) = slow_session("timeout_ms: 800").await;
    // Six steps of 300 ms: 1.8 s in all, never 800 ms without progress.
    let done = work(&mut mcp, 6, 300, true).await;
    assert_eq!(first_text(&done), "6 steps done", "{done}");
}

#[tokio::test]
async fn a_call_without_progress_ends_at_its_timeout() {
    let (_app, _backend, mut mcp) = slow_session("timeout_ms: 300").await;
    let failed = work(&mut mcp, 1, 3000, false).await;
    assert_eq!(
        failed["error"]["message"],
        "backend \"slow\" did not answer within 300 ms"
    );
    assert_eq!(failed["error"]["data"], json!({ "server": "slow" }));
}

#[tokio::test]
async fn progress_extends_a_call_no_further_than_its_maximum() {
    let (_app, _backend, mut mcp) = slow_session("timeout_ms: 400\n    max_timeout_ms: 900").await;
    let failed = work(&mut mcp, 20, 200, true).await;
    assert_eq!(
        failed["error"]["message"],
        "backend \"slow\" did not answer within 900 ms"
    );
}

#[tokio::test]
async fn a_hung_backend_holds_up_neither_other_backends_nor_other_sessions() {
    let hung = wiremock::MockServer::start().await;
    mock_handshake(
        &hung,
        JsonRpcAnswer::result(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "hung", "version": "1" }
        }))
        .with_session("s1"),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(JsonRpcAnswer::result(json!({ "tools": [
            { "name": "wait", "inputSchema": { "type": "object" } }
        ] })))
        .mount(&hung)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&hung)
        .await;
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[
        (
            "hung",
            &mock_url(&hung),
            "max_concurrent_calls: 1\n    retry: { initial_interval_ms: 20, max_interval_ms: 50, max_elapsed_ms: 200 }",
        ),
        ("alpha", &alpha.url, ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["hung", "alpha"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let stuck_url = mcp.url.clone();
    let stuck_id = mcp.session_id.clone();
    let stuck = tokio::spawn(async move {
        let mut stuck = RawMcp::new(stuck_url);
        stuck.session_id = stuck_id;
        stuck.call_tool("hung__wait", json!({})).await
    });
    assert!(
        eventually(|| async {
            app.shown_session(&session).await["servers"][0]["calls_in_progress"] == 1
        })
        .await,
        "the hung call is in progress"
    );

    // The same session's other backend, and another session, still answer.
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "a" })).await),
        "alpha: a"
    );
    let other = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut other = app.mcp(&other).await;
    assert_eq!(
        first_text(&other.call_tool("alpha__echo", json!({ "text": "b" })).await),
        "alpha: b"
    );
    // A second call to the hung backend finds no free slot and says which:
    // the session's own share, or, from another session, the backend's.
    let busy = mcp.call_tool("hung__wait", json!({})).await;
    assert_eq!(
        busy["error"]["message"],
        "this session already has 1 calls in progress on backend \"hung\" (max_concurrent_calls_per_session); try again later"
    );
    let third = app.create_session(json!({ "servers": ["hung"] })).await;
    let mut third = app.mcp(&third).await;
    let busy = third.call_tool("hung__wait", json!({})).await;
    assert_eq!(
        busy["error"]["message"],
        "backend \"hung\" already has 1 calls in progress (max_concurrent_calls); try again later"
    );
    assert_eq!(requests_for(&hung, "tools/call").await, 1);
    stuck.abort();
}
