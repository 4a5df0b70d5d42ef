//! Per-session tool and prompt rules: which are shown, under what names and
//! descriptions, on every way in, kept across a restart, and refused with
//! the field named when they are wrong.

use serde_json::{Value, json};

use crate::helpers::*;

/// `alpha` shows `echo` renamed `say` with its own description and hides
/// `add`; `beta` shows everything but its `greeting` prompt.
fn rules() -> Value {
    json!({
        "servers": ["alpha", "beta"],
        "tools": {
            "alpha": {
                "allow": ["ec*", "gone-*"],
                "deny": ["add"],
                "rename": { "echo": "say" },
                "description": { "echo": "Says the text back." },
            },
        },
        "prompts": { "beta": { "deny": ["greeting"] } },
    })
}

async fn two_backends() -> (TestApp, RmcpBackend, RmcpBackend) {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let registry = registry_yaml(&[("alpha", &alpha.url, ""), ("beta", &beta.url, "")]);
    (spawn_app(&registry).await, alpha, beta)
}

async fn listed(mcp: &mut RawMcp, method: &str, key: &str) -> Vec<Value> {
    let answer = mcp.request(method, json!({})).await;
    answer["result"][key].as_array().expect("a list").clone()
}

fn names(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|item| item["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn a_session_shows_and_calls_only_what_its_rules_allow() {
    let (app, _alpha, _beta) = two_backends().await;
    let session = app.create_session(rules()).await;
    let mut mcp = app.mcp(&session).await;

    let tools = listed(&mut mcp, "tools/list", "tools").await;
    assert_eq!(names(&tools), ["alpha__say", "beta__add", "beta__echo"]);
    assert_eq!(tools[0]["description"], "Says the text back.");
    assert_eq!(
        tools[2]["description"],
        "Echo the text back, prefixed with the backend's label"
    );
    let prompts = listed(&mut mcp, "prompts/list", "prompts").await;
    assert_eq!(names(&prompts), ["alpha__greeting"]);

    // The new name reaches the backend under its own.
    assert_eq!(
        first_text(&mcp.call_tool("alpha__say", json!({ "text": "hi" })).await),
        "alpha: hi"
    );
    // A hidden tool, the old name of a renamed one and a hidden prompt are
    // answered as names that never existed.
    for hidden in ["alpha__add", "alpha__echo"] {
        let answer = mcp
            .call_tool(hidden, json!({ "a": 1, "b": 2, "text": "x" }))
            .await;
        assert_eq!(
            answer["error"],
            json!({ "code": -32602, "message": format!("unknown tool \"{hidden}\""), "data": { "tool": hidden } }),
        );
    }
    let answer = mcp
        .request(
            "prompts/get",
            json!({ "name": "beta__greeting", "arguments": { "name": "Ada" } }),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32602);
    assert_eq!(
        answer["error"]["message"],
        "unknown prompt \"beta__greeting\""
    );

    // GET /session shows the rules and the pattern that matched nothing.
    let shown = app.shown_session(&session).await;
    assert_eq!(shown["tools"], rules()["tools"]);
    assert_eq!(shown["prompts"], rules()["prompts"]);
    assert_eq!(shown["tool_mode"], "direct");
    assert_eq!(
        shown["unmatched_rules"],
        json!(["tools.alpha.allow[1] (\"gone-*\")"])
    );
    app.stop().await;
}

#[tokio::test]
async fn stateless_clients_see_the_same_rules() {
    let (app, _alpha, _beta) = two_backends().await;
    let session = app.create_session(rules()).await;
    let url = app.mcp_url(&session);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let post = |method: &'static str, name: Option<&'static str>, params: Value| {
        let mut request = app
            .http
            .post(&url)
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        request
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
            .send()
    };
    let listed: Value = post("tools/list", None, json!({ "_meta": meta }))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let tools = listed["result"]["tools"].as_array().expect("tools");
    assert_eq!(names(tools), ["alpha__say", "beta__add", "beta__echo"]);
    let called: Value = post(
        "tools/call",
        Some("alpha__say"),
        json!({ "name": "alpha__say", "arguments": { "text": "hi" }, "_meta": meta }),
    )
    .await
    .expect("answer")
    .json()
    .await
    .expect("JSON");
    assert_eq!(called["result"]["content"][0]["text"], "alpha: hi");
    let hidden: Value = post(
        "tools/call",
        Some("alpha__add"),
        json!({ "name": "alpha__add", "arguments": { "a": 1, "b": 2 }, "_meta": meta }),
    )
    .await
    .expect("answer")
    .json()
    .await
    .expect("JSON");
    assert_eq!(hidden["error"]["message"], "unknown tool \"alpha__add\"");
    app.stop().await;
}

#[tokio::test]
async fn rules_outlive_a_restart() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let registry = registry_yaml(&[("alpha", &alpha.url, ""), ("beta", &beta.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app.create_session(rules()).await;
    let data_dir = app.stop().await;

    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    let app = spawn_app_with(options).await.expect("restarts");
    let mut mcp = app.mcp(&session).await;
    let tools = listed(&mut mcp, "tools/list", "tools").await;
    assert_eq!(names(&tools), ["alpha__say", "beta__add", "beta__echo"]);
    app.stop().await;
}

#[tokio::test]
async fn a_one_server_session_without_prefixes_renames_to_the_bare_name() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &alpha.url, "")])).await;
    let session = app
        .create_session(json!({
            "servers": ["alpha"],
            "prefix": "when_needed",
            "tools": { "alpha": { "rename": { "add": "plus" } } },
        }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let tools = listed(&mut mcp, "tools/list", "tools").await;
    assert_eq!(names(&tools), ["plus", "echo"]);
    assert_eq!(
        first_text(&mcp.call_tool("plus", json!({ "a": 2, "b": 3 })).await),
        "5"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_rules_are_refused_with_the_field_and_nothing_is_stored() {
    let (app, _alpha, _beta) = two_backends().await;
    let long = "x".repeat(129);
    let cases = [
        (
            json!({ "tools": [] }),
            "tools",
            "must be an object keyed by server name",
        ),
        (
            json!({ "tools": { "gamma": {} } }),
            "tools.gamma",
            "names a server that is not in servers",
        ),
        (
            json!({ "tools": { "alpha": [] } }),
            "tools.alpha",
            "must be an object with allow, deny, rename, description",
        ),
        (
            json!({ "tools": { "alpha": { "hide": ["x"] } } }),
            "tools.alpha.hide",
            "unknown field; expected allow, deny, rename, description",
        ),
        (
            json!({ "tools": { "alpha": { "allow": "echo" } } }),
            "tools.alpha.allow",
            "must be an array of names or * patterns",
        ),
        (
            json!({ "tools": { "alpha": { "deny": ["add", ""] } } }),
            "tools.alpha.deny[1]",
            "must be a name or * pattern of 1 to 128 characters",
        ),
        (
            json!({ "tools": { "alpha": { "deny": [long] } } }),
            "tools.alpha.deny[0]",
            "must be a name or * pattern of 1 to 128 characters",
        ),
        (
            json!({ "tools": { "alpha": { "rename": ["add"] } } }),
            "tools.alpha.rename",
            "must be an object keyed by the backend's own names",
        ),
        (
            json!({ "tools": { "alpha": { "rename": { "add": "plus one" } } } }),
            "tools.alpha.rename.add",
            "makes the tool name \"alpha__plus one\", which is not 1 to 64 of A-Z a-z 0-9 _ -",
        ),
        (
            json!({ "tools": { "alpha": { "rename": { "add": "p".repeat(58) } } } }),
            "tools.alpha.rename.add",
            &format!(
                "makes the tool name \"alpha__{}\"…, which is not 1 to 64 of A-Z a-z 0-9 _ -",
                "p".repeat(57)
            ),
        ),
        (
            json!({ "tools": { "alpha": { "rename": { "add": 5 } } } }),
            "tools.alpha.rename.add",
            "must be a non-empty string",
        ),
        (
            json!({ "tools": { "alpha": { "rename": { "add": "same", "echo": "same" } } } }),
            "tools.alpha.rename.echo",
            "makes \"alpha__same\", which tools.alpha.rename.add makes too",
        ),
        (
            json!({ "tools": { "alpha": { "description": { "add": "" } } } }),
            "tools.alpha.description.add",
            "must be a non-empty string",
        ),
        (
            json!({ "tools": { "alpha": { "description": { "add": "d".repeat(4097) } } } }),
            "tools.alpha.description.add",
            "must be at most 4096 characters",
        ),
        (
            json!({ "prompts": { "beta": { "rename": { "greeting": "hi there" } } } }),
            "prompts.beta.rename.greeting",
            "makes the prompt name \"beta__hi there\", which is not 1 to 64 of A-Z a-z 0-9 _ -",
        ),
        (
            json!({ "tool_mode": "all" }),
            "tool_mode",
            "must be \"direct\" or \"search\"",
        ),
    ];
    for (extra, field, reason) in cases {
        let mut body = json!({ "servers": ["alpha", "beta"] });
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        let response = app.post_create_session(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.json::<Value>().await.expect("JSON"),
            json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") }),
            "{body}"
        );
    }
    assert_eq!(
        app.mux.list_sessions(10, None).await.expect("list").len(),
        0
    );
    app.stop().await;
}
