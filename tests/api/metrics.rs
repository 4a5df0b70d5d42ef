//! `GET /metrics`: exact counts after known calls, the gateway's state at
//! the scrape, the admin token in front of it, and series that a backend
//! cannot grow without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// The metrics text, and the value of each sample line by its name and
/// labels as written.
async fn scrape(app: &TestApp) -> (String, std::collections::HashMap<String, f64>) {
    let response = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect();
    (text, samples)
}

fn tool_result(text: &str, is_error: bool) -> JsonRpcAnswer {
    JsonRpcAnswer::result(
        json!({ "content": [{ "type": "text", "text": text }], "isError": is_error }),
    )
}

#[tokio::test]
async fn calls_retries_refusals_and_state_are_counted_exactly() {
    let server = mock_backend(
        json!([
            { "name": "write", "inputSchema": { "type": "object" } },
            { "name": "fail", "inputSchema": { "type": "object" } },
        ]),
        false,
    )
    .await;
    // The first write meets a 503 and is retried; the second goes through.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "write" } })))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "write" } })))
        .respond_with(tool_result("written", false))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "params": { "name": "fail" } })))
        .respond_with(tool_result("no", true))
        .mount(&server)
        .await;
    let (app, mut mcp) = session_over_mock("mock", &server).await;
    for name in ["mock__write", "mock__write", "mock__fail", "mock__nope"] {
        mcp.call_tool(name, json!({})).await;
    }
    let missing = app
        .http
        .get(format!("{}/session/not-a-session", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    // An MCP request naming no MCP session: a protocol refusal.
    let unknown = app
        .http
        .post(&mcp.url)
        .header("mcp-session-id", "0".repeat(32))
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404);
    // A body that is not JSON, and a 2026-07-28 method that does not exist.
    let unparsed = app
        .http
        .post(&mcp.url)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("answer");
    assert_eq!(unparsed.status(), 400);
    let stateless = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/delete",
        "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        } },
    });
    let missing_method = app
        .http
        .post(&mcp.url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/delete")
        .json(&stateless)
        .send()
        .await
        .expect("answer");
    assert_eq!(missing_method.status(), 404);

    let (text, samples) = scrape(&app).await;
    let expected = [
        (
            r#"mcp_mux_tool_calls_total{server="mock",tool="write",outcome="ok",error_class=""}"#,
            2.0,
        ),
        (
            r#"mcp_mux_tool_calls_total{server="mock",tool="fail",outcome="tool_error",error_class=""}"#,
            1.0,
        ),
        (
            r#"mcp_mux_tool_calls_total{server="",tool="",outcome="error",error_class="unknown_tool"}"#,
            1.0,
        ),
        (
            r#"mcp_mux_tool_call_duration_seconds_count{server="mock"}"#,
            3.0,
        ),
        (r#"mcp_mux_backend_retries_total{server="mock"}"#, 1.0),
        (r#"mcp_mux_circuit_state{server="mock"}"#, 0.0),
        (r#"mcp_mux_calls_in_progress{server="mock"}"#, 0.0),
        (
            r#"mcp_mux_refusals_total{route="management",status="404",reason="not_found"}"#,
            1.0,
        ),
        (
            r#"mcp_mux_refusals_total{route="mcp",status="404",reason="unknown_mcp_session"}"#,
            1.0,
        ),
        (
            r#"mcp_mux_refusals_total{route="mcp",status="400",reason="parse_error"}"#,
            1.0,
        ),
        (
            r#"mcp_mux_refusals_total{route="mcp",status="404",reason="method_not_found"}"#,
            1.0,
        ),
        ("mcp_mux_sessions_stored", 1.0),
        ("mcp_mux_mcp_sessions_live", 1.0),
        (
            r#"mcp_mux_backend_sessions_open{transport="streamable_http"}"#,
            1.0,
        ),
        (r#"mcp_mux_session_backends{state="ready"}"#, 1.0),
        (
            r#"mcp_mux_session_backends{state="needs_authorization"}"#,
            0.0,
        ),
        ("mcp_mux_audit_records_dropped_total", 0.0),
    ];
    for (sample, value) in expected {
        assert_eq!(samples.get(sample), Some(&value), "{sample} in\n{text}");
    }
    // Only these tool labels: a name that led nowhere is not one.
    let tool_series = samples
        .keys()
        .filter(|name| name.starts_with("mcp_mux_tool_calls_total"))
        .count();
    assert_eq!(tool_series, 3, "{text}");
    assert!(!text.contains("nope"), "{text}");

    // The audit writer writes in batches: all four records, eventually.
    assert!(
        eventually(|| async {
            scrape(&app)
                .await
                .1
                .get("mcp_mux_audit_records_written_total")
                == Some(&4.0)
        })
        .await,
        "every call is audited"
    );
}

#[tokio::test]
async fn metrics_bind_serves_them_on_an_address_of_their_own_without_the_token() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.admin_token = Some("admin-token-0123456789".into());
    options.metrics_bind = Some("127.0.0.1:0".into());
    let app = spawn_app_with(options).await.expect("starts");
    let own = app.metrics_address.clone().expect("a metrics address");
    let scraped = app
        .http
        .get(format!("{own}/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .expect("text")
            .contains(r#"mcp_mux_circuit_state{server="alpha"} 0"#)
    );
    // Nothing else is served there.
    let other = app
        .http
        .get(format!("{own}/registry"))
        .send()
        .await
        .expect("answer");
    assert_eq!(other.status(), 404);
    // The main address still wants the token.
    let refused = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.admin_token = Some("admin-token-0123456789".into());
    let app = spawn_app_with(options).await.expect("starts");
    let refused = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"], "unauthorized");
    let allowed = app
        .http
        .get(format!("{}/metrics", app.address))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("answer");
    assert_eq!(allowed.status(), 200);
    let text = allowed.text().await.expect("text");
    assert!(
        text.contains(
            r#"mcp_mux_refusals_total{route="management",status="401",reason="unauthorized"} 1"#
        ),
        "{text}"
    );
}

/// A backend that names new tools at every listing, keeping the old ones,
/// each name 20,000 characters long; once `shrunk`, it lists two only.
struct EverNewTools {
    listings: AtomicUsize,
    shrunk: Arc<AtomicBool>,
}

const NEW_TOOLS_PER_LISTING: usize = 10;

fn long_tool_name(n: usize) -> String {
    format!("t{n}-{}", "x".repeat(20_000))
}

impl wiremock::Respond for EverNewTools {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let listing = self.listings.fetch_add(1, Ordering::SeqCst) + 1;
        let count = if self.shrunk.load(Ordering::SeqCst) {
            2
        } else {
            listing * NEW_TOOLS_PER_LISTING
        };
        let tools: Vec<Value> = (0..count)
            .map(|n| json!({ "name": long_tool_name(n), "inputSchema": { "type": "object" } }))
            .collect();
        JsonRpcAnswer::result(json!({ "tools": tools })).respond(request)
    }
}

/// The tool label of each `tool_calls` series of `server`, sorted.
fn tool_labels(samples: &std::collections::HashMap<String, f64>, server: &str) -> Vec<String> {
    let prefix = format!(r#"mcp_mux_tool_calls_total{{server="{server}",tool=""#);
    let mut labels: Vec<String> = samples
        .keys()
        .filter_map(|name| name.strip_prefix(&prefix))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect();
    labels.sort();
    labels
}

#[tokio::test]
async fn a_backend_listing_ever_new_long_tool_names_cannot_grow_the_metrics() {
    let server = wiremock::MockServer::start().await;
    mock_handshake(
        &server,
        JsonRpcAnswer::result(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "hostile", "version": "1" },
        }))
        .with_session("s1"),
    )
    .await;
    let shrunk = Arc::new(AtomicBool::new(false));
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(EverNewTools {
            listings: AtomicUsize::new(0),
            shrunk: shrunk.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(tool_result("ok", false))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut options = AppOptions::new(registry_yaml(&[("hostile", &mock_url(&server), "")]));
    // Every name the list lacks makes it listed again.
    options.timings.miss_refresh_interval = std::time::Duration::ZERO;
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["hostile"] })).await;
    let mut mcp = app.mcp(&session).await;

    // Each round: a name no backend has lists the backend again, with new
    // tools, and every tool not called yet is called once.
    let mut called = std::collections::HashSet::new();
    let mut misses = 0;
    for _ in 0..30 {
        if called.len() > 120 {
            break;
        }
        misses += 1;
        mcp.call_tool("hostile__nope", json!({})).await;
        for name in mcp.tool_names().await {
            if called.insert(name.clone()) {
                assert_eq!(first_text(&mcp.call_tool(&name, json!({})).await), "ok");
            }
        }
    }
    assert!(called.len() > 120, "{} tools called", called.len());

    let (text, samples) = scrape(&app).await;
    // At most 100 tools of a server have series of their own; the others
    // count under `other`. Each label is cut to 128 characters.
    let labels = tool_labels(&samples, "hostile");
    assert_eq!(labels.len(), 101, "{labels:?}");
    assert!(labels.contains(&"other".to_owned()));
    assert!(labels.iter().all(|label| label.chars().count() <= 128));
    let cut = |n: usize| long_tool_name(n).chars().take(128).collect::<String>();
    let series = |tool: &str| {
        format!(
            r#"mcp_mux_tool_calls_total{{server="hostile",tool="{tool}",outcome="ok",error_class=""}}"#
        )
    };
    assert_eq!(samples.get(&series(&cut(0))), Some(&1.0), "{text}");
    assert_eq!(
        samples.get(&series("other")),
        Some(&((called.len() - 100) as f64))
    );
    // 120 and more names of 20,000 characters, yet the whole text is small.
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());

    // The backend no longer lists the others: their series are retired.
    shrunk.store(true, Ordering::SeqCst);
    misses += 1;
    mcp.call_tool("hostile__nope", json!({})).await;
    assert_eq!(mcp.tool_names().await.len(), 2);
    let (_, samples) = scrape(&app).await;
    assert_eq!(
        tool_labels(&samples, "hostile"),
        ["other".to_owned(), cut(0), cut(1)]
    );

    // Once no session lists the backend, none of its tool series is left.
    let deleted = app
        .http
        .delete(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    assert!(
        eventually(|| async { tool_labels(&scrape(&app).await.1, "hostile").is_empty() }).await,
        "the series of a session no longer there are retired"
    );
    // Names that led nowhere still count, in their one series.
    let (_, samples) = scrape(&app).await;
    assert_eq!(
        samples.get(
            r#"mcp_mux_tool_calls_total{server="",tool="",outcome="error",error_class="unknown_tool"}"#
        ),
        Some(&(misses as f64))
    );
}

#[tokio::test]
async fn requests_are_counted_by_route_with_their_latency_beside_the_build_and_the_process() {
    let app = spawn_app(&registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")])).await;
    for _ in 0..3 {
        let answer = app
            .http
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
    }
    let missing = app
        .http
        .get(format!("{}/session/{}", app.address, uuid::Uuid::new_v4()))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    let (text, samples) = scrape(&app).await;
    assert_eq!(
        samples[r#"mcp_mux_http_requests_total{route="/healthz",method="GET",status="200"}"#],
        3.0
    );
    assert_eq!(
        samples[r#"mcp_mux_http_requests_total{route="/session/{id}",method="GET",status="404"}"#],
        1.0
    );
    assert_eq!(
        samples[r#"mcp_mux_http_request_duration_seconds_count{route="/healthz",method="GET"}"#],
        3.0
    );
    assert_eq!(
        samples[&format!(
            r#"mcp_mux_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )],
        1.0
    );
    assert!(samples["process_cpu_seconds_total"] > 0.0, "{text}");
    assert!(samples["process_resident_memory_bytes"] > 1e6, "{text}");
    assert!(samples["process_open_fds"] >= 3.0, "{text}");
}
