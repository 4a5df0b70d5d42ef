//! Resources, resource templates and completion through a session: URIs
//! become `<server>+<uri>`, so two backends with equal URIs stay apart.

use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{body_partial_json, method};

use crate::helpers::*;

/// A backend with one resource `file:///readme.md`, a template
/// `file:///{path}` and completions, each answer naming `label`.
async fn resource_backend(label: &str) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    let initialized = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "resources": { "subscribe": true }, "completions": {} },
        "serverInfo": { "name": label, "version": "1" }
    });
    mock_handshake(
        &server,
        JsonRpcAnswer::result(initialized).with_session("s1"),
    )
    .await;
    let answers = [
        (
            json!({ "method": "resources/list" }),
            json!({ "resources": [{ "uri": "file:///readme.md", "name": "readme", "mimeType": "text/markdown" }] }),
        ),
        (
            json!({ "method": "resources/templates/list" }),
            json!({ "resourceTemplates": [{ "uriTemplate": "file:///{path}", "name": "files" }] }),
        ),
        (
            json!({ "method": "resources/read", "params": { "uri": "file:///readme.md" } }),
            json!({ "contents": [{ "uri": "file:///readme.md", "mimeType": "text/markdown", "text": format!("{label} readme") }] }),
        ),
        (
            json!({ "method": "resources/read", "params": { "uri": "file:///docs/a.md" } }),
            json!({ "contents": [{ "uri": "file:///docs/a.md", "text": format!("{label} a") }] }),
        ),
        (
            json!({ "method": "resources/subscribe", "params": { "uri": "file:///readme.md" } }),
            json!({}),
        ),
        (
            json!({ "method": "completion/complete", "params": { "ref": { "type": "ref/resource", "uri": "file:///{path}" } } }),
            json!({ "completion": { "values": [format!("{label}.md")], "hasMore": false } }),
        ),
    ];
    for (matcher, result) in answers {
        Mock::given(method("POST"))
            .and(body_partial_json(matcher))
            .respond_with(JsonRpcAnswer::result(result))
            .mount(&server)
            .await;
    }
    server
}

async fn two_resource_backends() -> (wiremock::MockServer, wiremock::MockServer, TestApp, RawMcp) {
    let one = resource_backend("one").await;
    let two = resource_backend("two").await;
    let app = spawn_app(&registry_yaml(&[
        ("one", &mock_url(&one), ""),
        ("two", &mock_url(&two), ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["one", "two"] }))
        .await;
    let mcp = app.mcp(&session).await;
    (one, two, app, mcp)
}

#[tokio::test]
async fn equal_uris_of_two_backends_are_listed_apart_and_read_from_their_owner() {
    let (_one, _two, _app, mut mcp) = two_resource_backends().await;
    let listed = mcp.request("resources/list", json!({})).await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "one+file:///readme.md", "name": "readme", "mimeType": "text/markdown" },
            { "uri": "two+file:///readme.md", "name": "readme", "mimeType": "text/markdown" },
        ])
    );
    for (uri, text) in [
        ("one+file:///readme.md", "one readme"),
        ("two+file:///readme.md", "two readme"),
    ] {
        let read = mcp.request("resources/read", json!({ "uri": uri })).await;
        assert_eq!(
            read["result"]["contents"],
            json!([{ "uri": uri, "mimeType": "text/markdown", "text": text }])
        );
    }
}

#[tokio::test]
async fn a_uri_expanded_from_a_template_reaches_the_template_owner() {
    let (_one, _two, _app, mut mcp) = two_resource_backends().await;
    let templates = mcp.request("resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"],
        json!([
            { "uriTemplate": "one+file:///{path}", "name": "files" },
            { "uriTemplate": "two+file:///{path}", "name": "files" },
        ])
    );
    let read = mcp
        .request("resources/read", json!({ "uri": "two+file:///docs/a.md" }))
        .await;
    assert_eq!(
        read["result"]["contents"][0],
        json!({ "uri": "two+file:///docs/a.md", "text": "two a" })
    );
}

#[tokio::test]
async fn subscriptions_and_completions_are_routed_by_uri() {
    let (one, two, _app, mut mcp) = two_resource_backends().await;
    let subscribed = mcp
        .request(
            "resources/subscribe",
            json!({ "uri": "one+file:///readme.md" }),
        )
        .await;
    assert_eq!(subscribed["result"], json!({}));
    assert_eq!(requests_for(&one, "resources/subscribe").await, 1);
    assert_eq!(requests_for(&two, "resources/subscribe").await, 0);

    let completed = mcp
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/resource", "uri": "two+file:///{path}" }, "argument": { "name": "path", "value": "t" } }),
        )
        .await;
    assert_eq!(
        completed["result"]["completion"]["values"],
        json!(["two.md"])
    );
}

#[tokio::test]
async fn uris_that_name_no_backend_are_invalid_params() {
    let (_one, _two, _app, mut mcp) = two_resource_backends().await;
    for uri in ["file:///readme.md", "three+file:///readme.md"] {
        let read = mcp.request("resources/read", json!({ "uri": uri })).await;
        assert_eq!(
            read["error"],
            json!({
                "code": -32602,
                "message": format!("unknown resource \"{uri}\": this session's resource URIs are <server>+<uri>, as resources/list shows them"),
                "data": { "uri": uri }
            })
        );
    }
    let no_uri = mcp.request("resources/read", json!({})).await;
    assert_eq!(
        no_uri["error"]["message"],
        "invalid params: \"uri\" must be a string"
    );
    let bad_ref = mcp
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/other" } }),
        )
        .await;
    assert_eq!(bad_ref["error"]["code"], -32602);
}

#[tokio::test]
async fn with_one_resource_backend_an_unqualified_uri_still_reaches_it() {
    let one = resource_backend("one").await;
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("one", &mock_url(&one), ""),
        ("alpha", &alpha.url, ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["one", "alpha"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    // A tool result may link to the backend's own URI.
    let read = mcp
        .request("resources/read", json!({ "uri": "file:///readme.md" }))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "one readme");
    assert_eq!(
        read["result"]["contents"][0]["uri"],
        "one+file:///readme.md"
    );
}

/// A backend with one prompt `greet` whose completions name `label`.
async fn prompt_backend(label: &str) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    let initialized = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "prompts": {}, "completions": {} },
        "serverInfo": { "name": label, "version": "1" }
    });
    mock_handshake(&server, JsonRpcAnswer::result(initialized)).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "prompts/list" })))
        .respond_with(JsonRpcAnswer::result(
            json!({ "prompts": [{ "name": "greet", "arguments": [{ "name": "who" }] }] }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "completion/complete", "params": { "ref": { "type": "ref/prompt", "name": "greet" } } })))
        .respond_with(JsonRpcAnswer::result(json!({ "completion": { "values": [label], "hasMore": false } })))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn prompt_completions_are_routed_by_the_prompt_name() {
    let one = prompt_backend("one").await;
    let two = prompt_backend("two").await;
    let app = spawn_app(&registry_yaml(&[
        ("one", &mock_url(&one), ""),
        ("two", &mock_url(&two), ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["one", "two"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let completed = mcp
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "two__greet" }, "argument": { "name": "who", "value": "A" } }),
        )
        .await;
    assert_eq!(completed["result"]["completion"]["values"], json!(["two"]));
    assert_eq!(requests_for(&one, "completion/complete").await, 0);
    let unknown = mcp
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "two__nope" }, "argument": { "name": "who", "value": "" } }),
        )
        .await;
    assert_eq!(unknown["error"]["message"], "unknown prompt \"two__nope\"");
}

#[tokio::test]
async fn a_single_backend_session_without_prefix_passes_uris_through() {
    let one = resource_backend("one").await;
    let app = spawn_app(&registry_yaml(&[("one", &mock_url(&one), "")])).await;
    let session = app
        .create_session(json!({ "servers": ["one"], "prefix": "when_needed" }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let listed = mcp.request("resources/list", json!({})).await;
    assert_eq!(listed["result"]["resources"][0]["uri"], "file:///readme.md");
    let read = mcp
        .request("resources/read", json!({ "uri": "file:///docs/a.md" }))
        .await;
    assert_eq!(
        read["result"]["contents"][0],
        json!({ "uri": "file:///docs/a.md", "text": "one a" })
    );
}

#[tokio::test]
async fn the_log_level_is_told_to_every_backend_that_logs() {
    let one = resource_backend("one").await;
    let logging = wiremock::MockServer::start().await;
    let initialized = json!({ "protocolVersion": "2025-11-25", "capabilities": { "logging": {} }, "serverInfo": { "name": "l", "version": "1" } });
    mock_handshake(&logging, JsonRpcAnswer::result(initialized)).await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "logging/setLevel", "params": { "level": "debug" } }),
        ))
        .respond_with(JsonRpcAnswer::result(json!({})))
        .expect(1)
        .mount(&logging)
        .await;
    let app = spawn_app(&registry_yaml(&[
        ("one", &mock_url(&one), ""),
        ("logs", &mock_url(&logging), ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["one", "logs"] }))
        .await;
    let mut mcp = app.mcp(&session).await;
    let set = mcp
        .request("logging/setLevel", json!({ "level": "debug" }))
        .await;
    assert_eq!(set["result"], json!({}));
    assert_eq!(
        requests_for(&one, "logging/setLevel").await,
        0,
        "one does not log"
    );
    let bad = mcp.request("logging/setLevel", json!({ "level": 3 })).await;
    assert_eq!(
        bad["error"]["message"],
        "invalid params: \"level\" must be a string"
    );
}

#[tokio::test]
async fn malformed_routed_requests_are_invalid_params_naming_what_is_wrong() {
    let (one, two, _app, mut mcp) = two_resource_backends().await;
    let cases = [
        (
            "resources/read",
            json!({}),
            "invalid params: \"uri\" must be a string",
        ),
        (
            "resources/read",
            json!({ "uri": 5 }),
            "invalid params: \"uri\" must be a string",
        ),
        (
            "resources/subscribe",
            json!({ "url": "one+file:///readme.md" }),
            "invalid params: \"uri\" must be a string",
        ),
        (
            "completion/complete",
            json!({}),
            "invalid params: \"ref\" must be an object",
        ),
        (
            "completion/complete",
            json!({ "ref": "one+file:///{path}" }),
            "invalid params: \"ref\" must be an object",
        ),
        (
            "completion/complete",
            json!({ "ref": { "type": "ref/resource" } }),
            "invalid params: \"ref\" must be {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}",
        ),
        (
            "logging/setLevel",
            json!({}),
            "invalid params: \"level\" must be a string",
        ),
        (
            "resources/list",
            json!({ "cursor": 7 }),
            "invalid params: \"cursor\" must be a string",
        ),
        (
            "resources/templates/list",
            json!({ "cursor": "bm9wZQ" }),
            "invalid params: invalid or expired cursor for resources/templates/list; list again without one",
        ),
        (
            "prompts/get",
            json!({ "arguments": {} }),
            "invalid params: \"name\" must be a string",
        ),
    ];
    for (method, params, message) in cases {
        let answer = mcp.request(method, params.clone()).await;
        assert_eq!(
            answer["error"],
            json!({ "code": -32602, "message": message }),
            "{method} {params}"
        );
    }
    for method in ["resources/read", "completion/complete", "logging/setLevel"] {
        let answer = read_message(
            mcp.post(&json!({ "jsonrpc": "2.0", "id": 1, "method": method }))
                .await,
        )
        .await;
        assert_eq!(answer["error"]["code"], -32602, "{method} without params");
        assert!(
            answer["error"]["message"]
                .as_str()
                .expect("message")
                .contains("needs params"),
            "{answer}"
        );
    }
    for server in [&one, &two] {
        assert_eq!(
            requests_for(server, "resources/read").await,
            0,
            "nothing malformed was forwarded"
        );
        assert_eq!(requests_for(server, "completion/complete").await, 0);
    }
}
