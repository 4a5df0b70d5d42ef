//! `"tool_mode": "search"`: a session that lists three tools which search,
//! describe and call its whole catalogue.

use serde_json::{Value, json};

use crate::helpers::*;

async fn search_session() -> (TestApp, RmcpBackend, RmcpBackend, String) {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("beta", &beta.url, ""),
    ]))
    .await;
    let session = app
        .create_session(json!({
            "servers": ["alpha", "beta"],
            "tool_mode": "search",
            "tools": { "beta": { "deny": ["add"] } },
        }))
        .await;
    (app, alpha, beta, session)
}

/// The JSON a search-mode tool answered as its text.
fn text_json(answer: &Value) -> Value {
    serde_json::from_str(first_text(answer)).expect("JSON text")
}

#[tokio::test]
async fn a_search_session_lists_three_tools_that_reach_the_rest() {
    let (app, _alpha, _beta, session) = search_session().await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        mcp.tool_names().await,
        ["search_tools", "describe_tool", "call_tool"]
    );

    let found = mcp
        .call_tool(
            "search_tools",
            json!({ "query": "add two integers", "limit": 2 }),
        )
        .await;
    let hits = text_json(&found);
    let names: Vec<&str> = hits["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().expect("name"))
        .collect();
    // beta's add is hidden by the session's rules; echo does not match.
    assert_eq!(names, ["alpha__add"]);
    // A compact hit: name, one line of description and score, no schema.
    assert_eq!(hits["tools"][0]["description"], "Add two integers");
    assert!(hits["tools"][0]["score"].as_f64().is_some_and(|s| s > 0.0));
    assert!(hits["tools"][0].get("inputSchema").is_none());
    let full = text_json(
        &mcp.call_tool(
            "search_tools",
            json!({ "query": "add two integers", "limit": 1, "detail": "full" }),
        )
        .await,
    );
    assert_eq!(full["tools"][0]["name"], "alpha__add");
    assert!(full["tools"][0]["inputSchema"]["properties"]["a"].is_object());

    let described = text_json(
        &mcp.call_tool("describe_tool", json!({ "name": "beta__echo" }))
            .await,
    );
    assert_eq!(described["name"], "beta__echo");
    assert!(described["inputSchema"]["properties"]["text"].is_object());

    let called = mcp
        .call_tool(
            "call_tool",
            json!({ "name": "beta__echo", "arguments": { "text": "hi" } }),
        )
        .await;
    assert_eq!(first_text(&called), "beta: hi");
    let summed = mcp
        .call_tool(
            "call_tool",
            json!({ "name": "alpha__add", "arguments": { "a": 2, "b": 3 } }),
        )
        .await;
    assert_eq!(first_text(&summed), "5");

    // The same errors as direct calls, and clear ones for the three tools.
    for (tool, arguments, error) in [
        (
            "call_tool",
            json!({ "name": "beta__add", "arguments": {} }),
            json!({ "code": -32602, "message": "unknown tool \"beta__add\"", "data": { "tool": "beta__add" } }),
        ),
        (
            "describe_tool",
            json!({ "name": "nope" }),
            json!({ "code": -32602, "message": "unknown tool \"nope\"", "data": { "tool": "nope" } }),
        ),
        (
            "search_tools",
            json!({}),
            json!({ "code": -32602, "message": "invalid params: arguments.query must be a non-empty string" }),
        ),
        (
            "search_tools",
            json!({ "query": "add", "limit": 0 }),
            json!({ "code": -32602, "message": "invalid params: arguments.limit must be a whole number from 1 to 50" }),
        ),
        (
            "search_tools",
            json!({ "query": "add", "detail": "schema" }),
            json!({ "code": -32602, "message": "invalid params: arguments.detail must be \"compact\" or \"full\"" }),
        ),
        (
            "search_tools",
            json!({ "query": "add", "detail": 2 }),
            json!({ "code": -32602, "message": "invalid params: arguments.detail must be \"compact\" or \"full\"" }),
        ),
        (
            "call_tool",
            json!({ "name": "alpha__echo", "arguments": [1] }),
            json!({ "code": -32602, "message": "invalid params: arguments.arguments must be an object" }),
        ),
    ] {
        let answer = mcp.call_tool(tool, arguments.clone()).await;
        assert_eq!(answer["error"], error, "{tool} {arguments}");
    }

    // The audit records the tool that ran, not call_tool.
    assert!(app.audited(&session, "beta__echo", "beta").await);
    assert_eq!(app.shown_session(&session).await["tool_mode"], "search");

    // Scripts over plain HTTP still see and call the tools themselves.
    let listed = app.get_json(&format!("/session/{session}/tools")).await;
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alpha__add", "alpha__echo", "beta__echo"]);
    app.stop().await;
}

#[tokio::test]
async fn searches_over_long_lists_leave_health_and_bystanders_answering() {
    use crate::curation::{
        MANY_TOOLS, health_and_bystander, heavy_and_bystander, heavy_deny_rules,
    };
    let (app, _big, _alpha) = heavy_and_bystander().await;
    let heavy = json!({
        "servers": ["big"],
        "tool_mode": "search",
        "tools": { "big": { "deny": heavy_deny_rules() } },
    });
    let mut clients = Vec::new();
    for _ in 0..3 {
        let session = app.create_session(heavy.clone()).await;
        clients.push(app.mcp(&session).await);
    }
    let bystander = app.create_session(json!({ "servers": ["alpha"] })).await;
    // Each first search merges the list and builds its index, both on the
    // blocking pool.
    let searches = futures_util::future::join_all(
        clients
            .iter_mut()
            .map(|mcp| mcp.call_tool("search_tools", json!({ "query": "7", "limit": 1 }))),
    );
    let (found, (health, health_status, echoed)) =
        tokio::join!(searches, health_and_bystander(&app, &bystander));
    assert_eq!((health, health_status), (200, json!("ok")));
    assert_eq!(echoed, "alpha: still here");
    let expected = format!("big__{}Q7", "L".repeat(40));
    for found in &found {
        let hits = text_json(found);
        assert_eq!(hits["tools"][0]["name"], expected, "{hits}");
    }
    let tools = app
        .get_json(&format!(
            "/session/{}/tools",
            app.create_session(heavy).await
        ))
        .await;
    assert_eq!(tools["tools"].as_array().map(Vec::len), Some(MANY_TOOLS));
    app.stop().await;
}
