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
    assert_eq!(shown["clashing_rules"], json!([]));
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
    // The shape that froze a gateway: many long patterns that backtrack.
    let too_many_patterns: Vec<String> = (0..1300)
        .map(|n| format!("{}*Q{n}", "*L".repeat(12)))
        .collect();
    let too_many_renames: serde_json::Map<String, Value> = (0..1001)
        .map(|n| (format!("p{n}"), json!(format!("q{n}"))))
        .collect();
    let too_many_descriptions: serde_json::Map<String, Value> =
        (0..1001).map(|n| (format!("t{n}"), json!("d"))).collect();
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
            json!({ "tools": { "alpha": { "allow": ["add", "echo"], "rename": { "add": "echo" } } } }),
            "tools.alpha.rename.add",
            "makes \"alpha__echo\", which tool \"echo\" has (named in tools.alpha.allow[1])",
        ),
        (
            json!({ "tools": { "alpha": { "rename": { "add": "echo" }, "description": { "echo": "Says it." } } } }),
            "tools.alpha.rename.add",
            "makes \"alpha__echo\", which tool \"echo\" has (named in tools.alpha.description.echo)",
        ),
        (
            json!({ "prompts": { "beta": { "allow": ["*"], "rename": { "x": "greeting" }, "description": { "greeting": "Hi." } } } }),
            "prompts.beta.rename.x",
            "makes \"beta__greeting\", which prompt \"greeting\" has (named in prompts.beta.description.greeting)",
        ),
        (
            json!({ "tools": { "alpha": { "deny": too_many_patterns } } }),
            "tools.alpha.deny",
            "holds 1300 patterns; at most 100 are allowed",
        ),
        (
            json!({ "tools": { "alpha": { "allow": vec!["x"; 101] } } }),
            "tools.alpha.allow",
            "holds 101 patterns; at most 100 are allowed",
        ),
        (
            json!({ "prompts": { "beta": { "rename": too_many_renames } } }),
            "prompts.beta.rename",
            "holds 1001 names; at most 1000 are allowed",
        ),
        (
            json!({ "tools": { "alpha": { "description": too_many_descriptions } } }),
            "tools.alpha.description",
            "holds 1001 names; at most 1000 are allowed",
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
        app.mux
            .list_sessions(10, None, &Default::default())
            .await
            .expect("list")
            .len(),
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rename_onto_a_name_the_backend_lists_keeps_both_tools_and_is_reported() {
    let (app, _alpha, _beta) = two_backends().await;
    // Nothing in the rules says alpha has `echo`: only its list does.
    let session = app
        .create_session(json!({
            "servers": ["alpha", "beta"],
            "tools": { "alpha": { "rename": { "add": "echo" } } },
        }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let tools = listed(&mut mcp, "tools/list", "tools").await;
    assert_eq!(
        names(&tools),
        ["alpha__add", "alpha__echo", "beta__add", "beta__echo"]
    );
    assert_eq!(
        first_text(&mcp.call_tool("alpha__add", json!({ "a": 2, "b": 3 })).await),
        "5"
    );
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "hi" })).await),
        "alpha: hi"
    );
    let shown = app.shown_session(&session).await;
    assert_eq!(
        shown["clashing_rules"],
        json!([
            "tools.alpha.rename.add (makes \"alpha__echo\", which tool \"echo\" has; not applied)"
        ])
    );
    assert_eq!(shown["unmatched_rules"], json!([]));
    app.stop().await;
}

/// Tools a backend lists in the tests of heavy rules.
pub const MANY_TOOLS: usize = 2_000;

/// A backend listing [`MANY_TOOLS`] tools with long names of `L`s.
pub async fn many_tools_backend() -> wiremock::MockServer {
    let tools: Vec<Value> = (0..MANY_TOOLS)
        .map(|n| json!({ "name": format!("{}Q{n}", "L".repeat(40)), "inputSchema": { "type": "object" } }))
        .collect();
    mock_backend(json!(tools), false).await
}

/// As many deny patterns as a session may hold, each built to make a
/// matcher work: twelve `*L`s that every name satisfies, then a run that
/// none holds, so every pattern is tried on every name to its end.
pub fn heavy_deny_rules() -> Vec<String> {
    (0..100)
        .map(|n| format!("{}*Z{n}*", "*L".repeat(12)))
        .collect()
}

/// A gateway over the heavy backend (`big`) and a real one (`alpha`).
pub async fn heavy_and_bystander() -> (TestApp, wiremock::MockServer, RmcpBackend) {
    let big = many_tools_backend().await;
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("big", &mock_url(&big), ""),
        ("alpha", &alpha.url, ""),
    ]))
    .await;
    (app, big, alpha)
}

/// `/healthz`'s status and `status` field, and a bystander's echo.
pub async fn health_and_bystander(app: &TestApp, bystander: &str) -> (u16, Value, String) {
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("gateway answers");
    let status = health.status().as_u16();
    let health: Value = health.json().await.expect("JSON");
    let mut mcp = app.mcp(bystander).await;
    let echoed = mcp
        .call_tool("alpha__echo", json!({ "text": "still here" }))
        .await;
    (
        status,
        health["status"].clone(),
        first_text(&echoed).to_owned(),
    )
}

#[tokio::test]
async fn sessions_listing_under_heavy_rules_leave_health_and_bystanders_answering() {
    let (app, _big, _alpha) = heavy_and_bystander().await;
    let heavy = json!({
        "servers": ["big"],
        "tools": { "big": { "deny": heavy_deny_rules() } },
    });
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(app.create_session(heavy.clone()).await);
    }
    let bystander = app.create_session(json!({ "servers": ["alpha"] })).await;
    // The rules are merged on the blocking pool, so the worker that
    // answers everyone is free while three sessions list at once.
    let listings = futures_util::future::join_all(sessions.iter().map(|session| {
        app.http
            .get(format!("{}/session/{session}/tools", app.address))
            .send()
    }));
    let (listings, (health, health_status, echoed)) =
        tokio::join!(listings, health_and_bystander(&app, &bystander));
    assert_eq!((health, health_status), (200, json!("ok")));
    assert_eq!(echoed, "alpha: still here");
    for listing in listings {
        let listing = listing.expect("gateway answers");
        assert_eq!(listing.status(), 200);
        let listing: Value = listing.json().await.expect("JSON");
        let tools = listing["tools"].as_array().expect("tools");
        assert_eq!(tools.len(), MANY_TOOLS);
        assert_eq!(tools[7]["name"], format!("big__{}Q7", "L".repeat(40)));
    }
    let shown = app.shown_session(&sessions[0]).await;
    let unmatched = shown["unmatched_rules"].as_array().expect("unmatched");
    assert_eq!(unmatched.len(), 100);
    assert_eq!(
        unmatched[99],
        format!("tools.big.deny[99] (\"{}*Z99*\")", "*L".repeat(12))
    );
    app.stop().await;
}
