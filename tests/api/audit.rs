//! The audit trail: every `tools/call` recorded with its outcome, never its
//! arguments or result, readable per session and pruned by age.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::Mock;
use wiremock::matchers::{body_partial_json, method};

use crate::helpers::*;

const SECRET_ARGUMENT: &str = "argument-that-must-not-be-recorded-4711";

async fn audit(app: &TestApp, session: &str, query: &str) -> (u16, Value) {
    let response = app
        .http
        .get(format!("{}/session/{session}/audit{query}", app.address))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Whether the session's audit trail comes to hold `count` records.
async fn recorded(app: &TestApp, session: &str, count: usize) -> bool {
    eventually(|| async {
        audit(app, session, "").await.1["records"]
            .as_array()
            .is_some_and(|records| records.len() == count)
    })
    .await
}

/// A gateway over a real rmcp backend `alpha` and a mock `mock` whose tool
/// `fails` answers `isError: true`.
async fn audited_app(
    limits: mcp_mux::mux::Limits,
) -> (TestApp, RmcpBackend, wiremock::MockServer, String) {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let mock = mock_backend(
        json!([{ "name": "fails", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/call" })))
        .respond_with(JsonRpcAnswer::result(json!({
            "content": [{ "type": "text", "text": "it failed" }],
            "isError": true
        })))
        .mount(&mock)
        .await;
    let mut options = AppOptions::new(registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("mock", &mock_url(&mock), ""),
    ]));
    options.limits = limits;
    let app = spawn_app_with(options).await.expect("starts");
    let session = app
        .create_session(json!({ "servers": ["alpha", "mock"] }))
        .await;
    (app, alpha, mock, session)
}

#[tokio::test]
async fn every_tool_call_is_recorded_with_its_outcome_and_never_its_arguments() {
    let (app, _alpha, _mock, session) = audited_app(Default::default()).await;
    let mut mcp = app.mcp(&session).await;
    let echoed = mcp
        .call_tool("alpha__echo", json!({ "text": SECRET_ARGUMENT }))
        .await;
    assert!(first_text(&echoed).contains(SECRET_ARGUMENT));
    mcp.call_tool("mock__fails", json!({})).await;
    mcp.call_tool("alpha__nope", json!({ "text": SECRET_ARGUMENT }))
        .await;
    mcp.request("tools/list", json!({})).await;

    assert!(
        recorded(&app, &session, 3).await,
        "three calls recorded, the listing not"
    );
    let (status, answer) = audit(&app, &session, "").await;
    assert_eq!(status, 200);
    let shape: Vec<Value> = answer["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            json!([
                record["backend"],
                record["tool"],
                record["outcome"],
                record["error_class"]
            ])
        })
        .collect();
    assert_eq!(
        shape,
        [
            json!([null, "alpha__nope", "error", "unknown_tool"]),
            json!(["mock", "mock__fails", "tool_error", null]),
            json!(["alpha", "alpha__echo", "ok", null]),
        ],
        "newest first"
    );
    let first = &answer["records"][2];
    assert_eq!(
        first["mcp_session"],
        mcp.session_id.clone().expect("id")[..8]
    );
    assert!(first["duration_ms"].as_i64().is_some_and(|ms| ms >= 0));
    assert!(first["at"].is_string());
    assert_eq!(answer["next_before"], Value::Null);
    assert!(!answer.to_string().contains(SECRET_ARGUMENT));
    assert!(!contains(
        &database_bytes(&app.database_file()),
        SECRET_ARGUMENT
    ));

    // Paging: two, then the rest.
    let (_, page) = audit(&app, &session, "?limit=2").await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(2));
    let before = page["next_before"].as_i64().expect("more to come");
    let (_, rest) = audit(&app, &session, &format!("?limit=2&before={before}")).await;
    assert_eq!(rest["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["records"][0]["tool"], "alpha__echo");
}

#[tokio::test]
async fn bad_audit_queries_are_400s_naming_the_parameter() {
    let (app, _alpha, _mock, session) = audited_app(Default::default()).await;
    for (query, field, reason) in [
        ("?limit=0", "limit", "must be a whole number from 1 to 1000"),
        (
            "?limit=1001",
            "limit",
            "must be a whole number from 1 to 1000",
        ),
        (
            "?limit=ten",
            "limit",
            "must be a whole number from 1 to 1000",
        ),
        (
            "?before=x",
            "before",
            "must be a record id from an earlier answer",
        ),
        (
            "?since=1",
            "since",
            "unknown parameter; expected limit, before",
        ),
    ] {
        let (status, answer) = audit(&app, &session, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(
            answer,
            json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") }),
            "{query}"
        );
    }
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, answer) = audit(&app, unknown, "").await;
    assert_eq!(status, 404);
    assert_eq!(answer["message"], format!("no session \"{unknown}\""));
}

#[tokio::test]
async fn audit_records_past_their_retention_are_pruned() {
    let limits = mcp_mux::mux::Limits {
        audit_retention: Duration::ZERO,
        ..Default::default()
    };
    let (app, _alpha, _mock, session) = audited_app(limits).await;
    let mut mcp = app.mcp(&session).await;
    mcp.call_tool("alpha__echo", json!({ "text": "x" })).await;
    assert!(recorded(&app, &session, 1).await);
    app.mux.reap_idle(Duration::from_secs(3600)).await;
    let (_, answer) = audit(&app, &session, "").await;
    assert_eq!(answer["records"], json!([]));
}

#[tokio::test]
async fn an_unknown_tool_name_of_any_length_is_recorded_cut_and_escaped() {
    let (app, _alpha, _mock, session) = audited_app(Default::default()).await;
    let mut mcp = app.mcp(&session).await;
    let before = database_bytes(&app.database_file()).len();
    // Two megabytes a name, with control characters in it.
    let huge = format!("\u{7}\n{}", "x".repeat(2 * 1024 * 1024));
    for _ in 0..5 {
        let refused = mcp.call_tool(&huge, json!({})).await;
        assert_eq!(refused["error"]["code"], -32602);
    }
    assert!(recorded(&app, &session, 5).await);
    let (_, answer) = audit(&app, &session, "?limit=1000").await;
    let tool = answer["records"][0]["tool"].as_str().expect("a name");
    let (kept, hash) = tool.split_once('…').expect("cut, with a hash");
    assert_eq!(kept, format!("\\u{{7}}\\n{}", "x".repeat(128 - 7)));
    assert!(
        hash.len() == 17
            && hash.starts_with('#')
            && hash[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    assert!(
        answer.to_string().len() < 10_000,
        "the answer does not grow with the names"
    );
    let grown = database_bytes(&app.database_file())
        .len()
        .saturating_sub(before);
    assert!(grown < 1024 * 1024, "the database grew by {grown} bytes");
}

/// A client that hangs up while its call runs does not cut the call short:
/// it ends on the backend, and its record holds the backend's outcome.
#[tokio::test]
async fn a_call_whose_client_hangs_up_runs_to_the_end() {
    let backend = spawn_sticky_backend().await;
    let app = spawn_app_with(AppOptions::new(registry_yaml(&[(
        "sticky",
        &backend.url,
        "",
    )])))
    .await
    .expect("starts");
    let session = app.create_session(json!({ "servers": ["sticky"] })).await;
    let mcp = app.mcp(&session).await;
    let hung_up = mcp
        .posting(&json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "sticky__wait", "arguments": { "ms": 1500 } } }))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        hung_up.is_err_and(|error| error.is_timeout()),
        "the client left first"
    );
    assert!(recorded(&app, &session, 1).await, "the call was recorded");
    let (_, answer) = audit(&app, &session, "").await;
    let record = &answer["records"][0];
    assert_eq!(record["tool"], "sticky__wait");
    assert_eq!(record["outcome"], "ok", "{record}");
    assert!(
        record["duration_ms"].as_i64().is_some_and(|ms| ms >= 1500),
        "{record}"
    );
}
