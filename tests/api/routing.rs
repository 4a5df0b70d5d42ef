//! Tools of real rmcp backends, merged and routed through a session.

use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::helpers::*;

async fn two_backend_app() -> (TestApp, RmcpBackend, RmcpBackend) {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", Some("beta-token")).await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, "auth: { type: none }"),
        ("beta", &beta.url, "auth: { type: bearer }"),
    ]))
    .await;
    (app, alpha, beta)
}

#[tokio::test]
async fn an_rmcp_client_lists_and_calls_tools_of_both_backends() {
    let (app, _alpha, _beta) = two_backend_app().await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "beta"], "credentials": { "beta": { "token": "beta-token" } } }))
        .await;
    let client = rmcp_client(StreamableHttpClientTransportConfig::with_uri(
        app.mcp_url(&session),
    ))
    .await;

    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("mcp-mux")
    );

    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["alpha__add", "alpha__echo", "beta__add", "beta__echo"]
    );

    for (tool, expected) in [("alpha__echo", "alpha: hi"), ("beta__echo", "beta: hi")] {
        assert_eq!(rmcp_echo(&client, tool, "hi").await, expected, "{tool}");
    }
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn same_named_tools_are_routed_to_the_owning_backend_under_their_own_name() {
    let (app, _alpha, _beta) = two_backend_app().await;
    let session = app
        .create_session(json!({ "servers": ["beta", "alpha"], "credentials": { "beta": { "token": "beta-token" } } }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let names = mcp.tool_names().await;
    let (mut first, mut second) = (names[..2].to_vec(), names[2..].to_vec());
    first.sort();
    second.sort();
    assert_eq!(
        first,
        ["beta__add", "beta__echo"],
        "backends in the session's order"
    );
    assert_eq!(second, ["alpha__add", "alpha__echo"]);

    let alpha = mcp.call_tool("alpha__echo", json!({ "text": "one" })).await;
    assert_eq!(first_text(&alpha), "alpha: one");
    let beta = mcp.call_tool("beta__echo", json!({ "text": "two" })).await;
    assert_eq!(first_text(&beta), "beta: two");
    let sum = mcp.call_tool("beta__add", json!({ "a": 2, "b": 40 })).await;
    assert_eq!(first_text(&sum), "42");
}

#[tokio::test]
async fn tool_descriptions_and_schemas_are_passed_through_untouched() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &alpha.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;

    let direct = raw_tools_of(&alpha.url).await;
    let mut mcp = app.mcp(&session).await;
    let merged = mcp.request("tools/list", json!({})).await["result"]["tools"].clone();
    let mut merged: Vec<Value> = merged.as_array().expect("array").clone();
    for tool in &mut merged {
        let name = tool["name"]
            .as_str()
            .expect("name")
            .trim_start_matches("alpha__")
            .to_owned();
        tool["name"] = json!(name);
    }
    assert_eq!(merged, direct);
}

#[tokio::test]
async fn the_session_credential_reaches_the_backend_and_a_wrong_one_is_named() {
    let (app, _alpha, _beta) = two_backend_app().await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "beta"], "credentials": { "beta": { "token": "not-the-token" } } }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(
        names,
        ["alpha__add", "alpha__echo"],
        "beta's tools are missing, alpha's work"
    );
    let refused = mcp.call_tool("beta__echo", json!({ "text": "x" })).await;
    assert_eq!(refused["error"]["code"], -32603);
    assert_eq!(
        refused["error"]["message"],
        "backend \"beta\" refused the session's credential (HTTP 401)"
    );
    assert_eq!(refused["error"]["data"]["server"], "beta");
    assert!(!refused.to_string().contains("not-the-token"));
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "ok" })).await),
        "alpha: ok"
    );
}

/// The backend's own tools/list, straight from the backend.
async fn raw_tools_of(url: &str) -> Vec<Value> {
    let mut direct = RawMcp::new(url.to_owned());
    direct.initialize("2025-11-25").await;
    let listed = direct.request("tools/list", json!({})).await;
    listed["result"]["tools"].as_array().expect("array").clone()
}

#[tokio::test]
async fn prompts_of_both_backends_are_listed_with_a_prefix_and_got_from_the_owner() {
    let (app, _alpha, _beta) = two_backend_app().await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "beta"], "credentials": { "beta": { "token": "beta-token" } } }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let initialized = mcp.initialize("2025-11-25").await;
    assert_eq!(
        initialized["capabilities"]["prompts"],
        json!({ "listChanged": true })
    );

    let listed = mcp.request("prompts/list", json!({})).await;
    let prompts = listed["result"]["prompts"].as_array().expect("prompts");
    let names: Vec<_> = prompts
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alpha__greeting", "beta__greeting"]);
    assert_eq!(
        prompts[0]["description"],
        "Greet someone, from this backend"
    );
    assert_eq!(prompts[0]["arguments"][0]["name"], "name");

    for (prompt, expected) in [
        ("alpha__greeting", "alpha greets Ada"),
        ("beta__greeting", "beta greets Ada"),
    ] {
        let got = mcp
            .request(
                "prompts/get",
                json!({ "name": prompt, "arguments": { "name": "Ada" } }),
            )
            .await;
        assert_eq!(
            got["result"]["messages"][0]["content"]["text"], expected,
            "{got}"
        );
    }
    let unknown = mcp
        .request("prompts/get", json!({ "name": "alpha__nope" }))
        .await;
    assert_eq!(
        unknown["error"],
        json!({ "code": -32602, "message": "unknown prompt \"alpha__nope\"", "data": { "prompt": "alpha__nope" } })
    );
    let no_params = read_message(
        mcp.post(&json!({ "jsonrpc": "2.0", "id": 9, "method": "prompts/get" }))
            .await,
    )
    .await;
    assert_eq!(
        no_params["error"]["message"],
        "invalid params: prompts/get needs params with a \"name\""
    );
}

#[tokio::test]
async fn a_merged_list_longer_than_a_page_is_paged_with_the_gateways_own_cursor() {
    use wiremock::Mock;
    use wiremock::matchers::{body_partial_json, method};
    let page = mcp_mux::mux::PAGE_SIZE;
    let count = 2 * page + 3;
    let tools: Vec<Value> = (0..count)
        .map(|i| json!({ "name": format!("t{i}"), "inputSchema": { "type": "object" } }))
        .collect();
    let server = mock_backend(json!(tools), false).await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "tools/call", "params": { "name": format!("t{}", count - 1) } }),
        ))
        .respond_with(JsonRpcAnswer::result(
            json!({ "content": [{ "type": "text", "text": "last" }] }),
        ))
        .mount(&server)
        .await;
    let (_app, mut mcp) = session_over_mock("big", &server).await;

    let mut names = Vec::new();
    let mut pages = 0;
    let mut params = json!({});
    loop {
        let listed = mcp.request("tools/list", params).await;
        pages += 1;
        names.extend(
            listed["result"]["tools"]
                .as_array()
                .expect("tools")
                .iter()
                .map(|t| t["name"].clone()),
        );
        match listed["result"]["nextCursor"].as_str() {
            Some(cursor) => params = json!({ "cursor": cursor }),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<Value> = (0..count).map(|i| json!(format!("big__t{i}"))).collect();
    assert_eq!(names, expected, "every tool once, in order");
    assert_eq!(
        requests_for(&server, "tools/list").await,
        1,
        "pages come from the gateway's snapshot"
    );
    let last = mcp
        .call_tool(&format!("big__t{}", count - 1), json!({}))
        .await;
    assert_eq!(first_text(&last), "last");
}

#[tokio::test]
async fn a_single_backend_session_without_prefix_is_a_transparent_proxy() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("beta", &beta.url, ""),
    ]))
    .await;

    let single = app
        .create_session(json!({ "servers": ["alpha"], "prefix": "when_needed" }))
        .await;
    let mut mcp = app.mcp(&single).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(names, ["add", "echo"]);
    assert_eq!(
        first_text(&mcp.call_tool("echo", json!({ "text": "plain" })).await),
        "alpha: plain"
    );
    let prompts = mcp.request("prompts/list", json!({})).await;
    assert_eq!(prompts["result"]["prompts"][0]["name"], "greeting");

    // With two backends, names need their prefix even when only needed.
    let double = app
        .create_session(json!({ "servers": ["alpha", "beta"], "prefix": "when_needed" }))
        .await;
    let mut mcp = app.mcp(&double).await;
    let mut names = mcp.tool_names().await;
    names.sort();
    assert_eq!(
        names,
        ["alpha__add", "alpha__echo", "beta__add", "beta__echo"]
    );
}
