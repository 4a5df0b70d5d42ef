//! Revision 2026-07-28 on the session URL: stateless requests with their
//! revision in `_meta`, `server/discover`, the mirrored headers and
//! `subscriptions/listen`, beside the legacy handshake on the same URL.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolRequestParams, GetPromptRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, ServerNotification, SubscriptionFilter,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

pub(crate) const MODERN: &str = "2026-07-28";

/// The `_meta` every stateless request carries.
pub(crate) fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// POSTs a stateless request with the headers that mirror it.
pub(crate) async fn stateless_post(
    url: &str,
    id: u64,
    rpc_method: &str,
    mut params: Value,
) -> reqwest::Response {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(json!({}));
    }
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", rpc_method);
    if let Some(name) = params.get("name").or_else(|| params.get("uri")) {
        request = request.header("mcp-name", name.as_str().expect("string"));
    }
    request
        .json(&json!({ "jsonrpc": "2.0", "id": id, "method": rpc_method, "params": params }))
        .send()
        .await
        .expect("gateway answers")
}

async fn stateless_client(url: String) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    ().serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("a stateless rmcp client connects")
}

#[tokio::test]
async fn a_stateless_rmcp_client_lists_calls_and_prompts_without_a_handshake() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("beta", &beta.url, ""),
    ]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["alpha", "beta"] }))
        .await;
    let client = stateless_client(app.mcp_url(&session)).await;

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

    let arguments = json!({ "text": "hi" }).as_object().cloned();
    let mut call = CallToolRequestParams::new("beta__echo");
    call.arguments = arguments;
    let result = serde_json::to_value(client.call_tool(call).await.expect("tools/call"))
        .expect("well-formed");
    assert_eq!(result["content"][0]["text"], "beta: hi");

    let mut prompt = GetPromptRequestParams::new("alpha__greeting");
    prompt.arguments = json!({ "name": "Ada" }).as_object().cloned();
    let prompt = serde_json::to_value(client.get_prompt(prompt).await.expect("prompts/get"))
        .expect("well-formed");
    assert_eq!(prompt["messages"][0]["content"]["text"], "alpha greets Ada");
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn discover_and_lists_carry_what_the_stateless_revision_requires() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &alpha.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let url = app.mcp_url(&session);

    let response = stateless_post(&url, 1, "server/discover", json!({})).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let discovered = read_message(response).await;
    let result = &discovered["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-mux"
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");
    assert!(
        result["instructions"]
            .as_str()
            .expect("well-formed")
            .contains("The alpha test backend")
    );

    let listed = read_message(stateless_post(&url, 2, "tools/list", json!({})).await).await;
    assert_eq!(listed["result"]["ttlMs"], 60_000);
    assert_eq!(listed["result"]["cacheScope"], "private");
    assert_eq!(listed["result"]["resultType"], "complete");

    let called = stateless_post(
        &url,
        3,
        "tools/call",
        json!({ "name": "alpha__add", "arguments": { "a": 2, "b": 3 } }),
    )
    .await;
    let called = read_message(called).await;
    assert_eq!(called["id"], 3);
    assert_eq!(called["result"]["content"][0]["text"], "5");
    assert_eq!(called["result"]["resultType"], "complete");
    assert!(
        called["result"].get("ttlMs").is_none(),
        "tools/call is not cacheable"
    );

    // The same URL still serves the legacy handshake.
    let mut legacy = app.mcp(&session).await;
    assert_eq!(legacy.tool_names().await.len(), 2);
}

#[tokio::test]
async fn malformed_stateless_requests_are_refused_and_reach_no_backend() {
    let backend = mock_backend(
        json!([{ "name": "t", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&backend)
        .await;
    let app = spawn_app(&registry_yaml(&[("m", &mock_url(&backend), "")])).await;
    let session = app.create_session(json!({ "servers": ["m"] })).await;
    let url = app.mcp_url(&session);
    let call = json!({ "name": "m__t", "_meta": meta(json!({})) });
    let with_version = |version: &str| {
        let mut params = call.clone();
        params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(version);
        params
    };
    let without = |key: &str| {
        let mut params = call.clone();
        params["_meta"]
            .as_object_mut()
            .expect("well-formed")
            .remove(key);
        params
    };
    // (headers: protocol version, method, name; params; status; code; message)
    type Case<'a> = (
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        Value,
        u16,
        i64,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            None,
            "tools/call",
            Some("m__t"),
            call.clone(),
            400,
            -32020,
            "header mismatch: the MCP-Protocol-Version header is missing",
        ),
        (
            Some(MODERN),
            "tools/call",
            Some("m__t"),
            json!({ "name": "m__t" }),
            400,
            -32602,
            "invalid params: \"params._meta\" must be an object with \"io.modelcontextprotocol/protocolVersion\" and \"io.modelcontextprotocol/clientCapabilities\"",
        ),
        (
            Some(MODERN),
            "tools/call",
            Some("m__t"),
            without("io.modelcontextprotocol/clientCapabilities"),
            400,
            -32602,
            "invalid params: \"_meta.io.modelcontextprotocol/clientCapabilities\" must be an object",
        ),
        (
            Some(MODERN),
            "tools/call",
            Some("m__t"),
            with_version("v999"),
            400,
            -32020,
            "header mismatch: MCP-Protocol-Version header value '2026-07-28' does not match body value 'v999'",
        ),
        (
            Some("v999"),
            "tools/call",
            Some("m__t"),
            with_version("v999"),
            400,
            -32022,
            "unsupported protocol version \"v999\": stateless requests are served at 2026-07-28; earlier revisions need an initialize handshake",
        ),
        (
            Some(MODERN),
            "tools/list",
            Some("m__t"),
            call.clone(),
            400,
            -32020,
            "header mismatch: Mcp-Method header value 'tools/list' does not match body value 'tools/call'",
        ),
        (
            Some(MODERN),
            "tools/call",
            Some("other"),
            call.clone(),
            400,
            -32020,
            "header mismatch: Mcp-Name header value 'other' does not match body value 'm__t'",
        ),
        (
            Some(MODERN),
            "tools/call",
            None,
            call.clone(),
            400,
            -32020,
            "header mismatch: the Mcp-Name header is missing",
        ),
    ];
    for (id, (version, rpc_method, name, params, status, code, message)) in
        cases.into_iter().enumerate()
    {
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", rpc_method);
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let response = request
            .json(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params }))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), status, "{message}");
        let body: Value = response.json().await.expect("JSON-RPC error");
        assert_eq!(body["id"], id, "{message}");
        assert_eq!(body["error"]["code"], code, "{message}");
        assert_eq!(body["error"]["message"], message);
        if code == -32022 {
            assert_eq!(body["error"]["data"]["requested"], "v999");
            assert_eq!(body["error"]["data"]["supported"][0], MODERN);
        }
    }
    // Methods this revision removed are unknown to it, even initialize.
    for (id, removed) in [
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "initialize",
    ]
    .into_iter()
    .enumerate()
    {
        let response = stateless_post(&url, 100 + id as u64, removed, json!({})).await;
        assert_eq!(response.status(), 404, "{removed}");
        let body: Value = response.json().await.expect("JSON-RPC error");
        assert_eq!(body["error"]["code"], -32601);
        assert_eq!(
            body["error"]["message"],
            format!("method not found: {removed} is not served at revision 2026-07-28")
        );
    }
    assert_eq!(requests_for(&backend, "tools/call").await, 0);
    assert_eq!(
        requests_for(&backend, "initialize").await,
        0,
        "no backend was even opened"
    );
}

#[tokio::test]
async fn a_backend_request_the_client_did_not_declare_is_a_missing_capability() {
    let (app, _backend, session) = session_over_rmcp("oracle", AskingServer::new).await;
    let url = app.mcp_url(&session);

    let params = json!({ "name": "oracle__ask", "arguments": { "question": "?" } });
    let response = stateless_post(&url, 7, "tools/call", params).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON-RPC error");
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32021);
    assert_eq!(
        body["error"]["message"],
        "the backend needs the client capability \"sampling\", which this request did not declare"
    );
    assert_eq!(
        body["error"]["data"],
        json!({ "requiredCapabilities": { "sampling": {} } })
    );

    // A requestState mcp-mux never gave resumes nothing.
    let forged = json!({
        "name": "oracle__ask", "arguments": { "question": "?" },
        "requestState": "0123456789abcdef", "inputResponses": {},
        "_meta": meta(json!({ "sampling": {} })),
    });
    let body = read_message(stateless_post(&url, 8, "tools/call", forged).await).await;
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(
        body["error"]["message"],
        "invalid params: \"requestState\" is unknown or expired: send the request again without it"
    );
}

#[tokio::test]
async fn a_backend_request_becomes_input_required_and_the_retry_completes_the_call() {
    let (app, _backend, session) = session_over_rmcp("oracle", AskingServer::new).await;
    let url = app.mcp_url(&session);

    let ask = json!({
        "name": "oracle__ask", "arguments": { "question": "why?" },
        "_meta": meta(json!({ "sampling": {} })),
    });
    let first = read_message(stateless_post(&url, 1, "tools/call", ask.clone()).await).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let requests = result["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1);
    let (key, request) = requests.iter().next().expect("well-formed");
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(request["params"]["messages"][0]["content"]["text"], "why?");
    let state = result["requestState"].as_str().expect("requestState");

    let mut retry = ask.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key: {
        "role": "assistant", "model": "m",
        "content": { "type": "text", "text": "because" },
    }});
    let done = read_message(stateless_post(&url, 2, "tools/call", retry.clone()).await).await;
    assert_eq!(done["id"], 2);
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "the model said: because"
    );

    // A state resumes its call once.
    let again = read_message(stateless_post(&url, 3, "tools/call", retry).await).await;
    assert_eq!(again["error"]["code"], -32602);
}

/// A backend whose `change` tool announces that its tools changed.
#[derive(Debug, Clone)]
struct ChangingServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl ChangingServer {
    #[tool(description = "Announce that the tool list changed")]
    async fn change(&self, client: Peer<RoleServer>) -> String {
        match client.notify_tool_list_changed().await {
            Ok(()) => "announced".into(),
            Err(error) => format!("not announced: {error}"),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ChangingServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }
}

#[tokio::test]
async fn listen_streams_carry_the_changes_each_asked_for() {
    let (app, _backend, session) = session_over_rmcp("live", || ChangingServer {
        tool_router: ChangingServer::tool_router(),
    })
    .await;
    let client = stateless_client(app.mcp_url(&session)).await;

    let mut tools = client
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .expect("subscriptions/listen");
    assert_eq!(tools.acknowledged().tools_list_changed, Some(true));
    let mut prompts = client
        .listen(SubscriptionFilter::builder().prompts_list_changed().build())
        .await
        .expect("a second stream");

    let said = client
        .call_tool(CallToolRequestParams::new("live__change"))
        .await
        .expect("tools/call");
    assert_eq!(
        serde_json::to_value(said).expect("well-formed")["content"][0]["text"],
        "announced"
    );
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), tools.next())
        .await
        .expect("the change arrives")
        .expect("stream open")
        .expect("a notification");
    assert!(
        matches!(heard, ServerNotification::ToolListChangedNotification(_)),
        "{heard:?}"
    );
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), prompts.next()).await;
    assert!(
        quiet.is_err(),
        "a prompts stream hears no tool change: {quiet:?}"
    );
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn the_other_stateless_refusals_name_their_reason() {
    let (app, _backend, session) = session_over_rmcp("oracle", AskingServer::new).await;
    let url = app.mcp_url(&session);
    let ask = json!({
        "name": "oracle__ask", "arguments": { "question": "?" },
        "_meta": meta(json!({ "sampling": {} })),
    });
    let first = read_message(stateless_post(&url, 1, "tools/call", ask.clone()).await).await;
    let state = first["result"]["requestState"].clone();
    assert!(state.is_string(), "{first}");

    // A requestState presented with another tool's name, other arguments
    // or another method is refused, and not spent.
    let key = first["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.keys().next().cloned())
        .expect("an input request");
    let mut retry = ask.clone();
    retry["requestState"] = state.clone();
    retry["inputResponses"] = json!({ key: {
        "role": "assistant", "model": "m",
        "content": { "type": "text", "text": "because" },
    }});
    let mut other_tool = retry.clone();
    other_tool["name"] = json!("oracle__other");
    let mut other_arguments = retry.clone();
    other_arguments["arguments"] = json!({ "question": "something else?" });
    for (method, mismatch) in [
        ("tools/call", other_tool),
        ("tools/call", other_arguments),
        ("prompts/get", retry.clone()),
    ] {
        let body = read_message(stateless_post(&url, 2, method, mismatch).await).await;
        assert_eq!(
            body["error"],
            json!({
                "code": -32602,
                "message": "invalid params: \"requestState\" belongs to another request: retry with the method, name and arguments it was issued for",
            }),
            "{method}"
        );
    }
    let done = read_message(stateless_post(&url, 2, "tools/call", retry).await).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "the model said: because",
        "the state still resumes its own call: {done}"
    );
    let mut numeric = ask.clone();
    numeric["requestState"] = json!(5);
    let body = read_message(stateless_post(&url, 3, "tools/call", numeric).await).await;
    assert_eq!(
        body["error"]["message"],
        "invalid params: \"requestState\" must be a string"
    );

    let listen = json!({ "notifications": { "toolsListChanged": "yes" } });
    let body = read_message(stateless_post(&url, 4, "subscriptions/listen", listen).await).await;
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(
        body["error"]["message"],
        "invalid params: \"notifications.toolsListChanged\" must be a boolean"
    );

    let stateless_headers = |request: reqwest::RequestBuilder| {
        request
            .header("mcp-protocol-version", MODERN)
            .header("accept", "application/json, text/event-stream")
    };
    let notified = stateless_headers(reqwest::Client::new().post(&url))
        .json(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": {} }))
        .send()
        .await
        .expect("answers");
    assert_eq!(notified.status(), 202);
    let answered = stateless_headers(reqwest::Client::new().post(&url))
        .json(&json!({ "jsonrpc": "2.0", "id": 5, "result": {} }))
        .send()
        .await
        .expect("answers");
    assert_eq!(answered.status(), 400);
    let body: Value = answered.json().await.expect("JSON-RPC error");
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(
        body["error"]["message"],
        "clients of revision 2026-07-28 send no responses: answers to input requests go in the retried request's \"inputResponses\""
    );
}

/// A backend whose resources anyone may subscribe to.
async fn subscribable_backend() -> wiremock::MockServer {
    use wiremock::matchers::body_partial_json;
    let server = wiremock::MockServer::start().await;
    mock_handshake(
        &server,
        JsonRpcAnswer::result(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "resources": { "subscribe": true } },
            "serverInfo": { "name": "files", "version": "1" }
        }))
        .with_session("s1"),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "resources/subscribe" }),
        ))
        .respond_with(JsonRpcAnswer::result(json!({})))
        .mount(&server)
        .await;
    server
}

fn listen_params(uris: usize) -> Value {
    let uris: Vec<String> = (0..uris).map(|n| format!("files+file:///{n}")).collect();
    json!({ "notifications": { "resourceSubscriptions": uris } })
}

#[tokio::test]
async fn a_listen_stream_names_few_uris_and_each_new_one_counts_against_the_rate() {
    let backend = subscribable_backend().await;
    let mut options = AppOptions::new(registry_yaml(&[("files", &mock_url(&backend), "")]));
    options.rates = mcp_mux::routes::rate_limit::Rates {
        session: Some(mcp_mux::routes::rate_limit::Rate {
            per_second: 0.01,
            burst: 10,
        }),
        ..Default::default()
    };
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["files"] })).await;
    let url = app.mcp_url(&session);

    let too_many =
        read_message(stateless_post(&url, 1, "subscriptions/listen", listen_params(33)).await)
            .await;
    assert_eq!(
        too_many["error"],
        json!({ "code": -32602, "message": "invalid params: \"notifications.resourceSubscriptions\" may name at most 32 URIs" })
    );
    // Twenty subscriptions would be twenty requests to the backend: more
    // than the session may send at once.
    let refused = stateless_post(&url, 2, "subscriptions/listen", listen_params(20)).await;
    assert_eq!(refused.status(), 429);
    let message = read_message(refused).await["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    assert!(
        message.starts_with("too many requests on this session; retry after "),
        "{message}"
    );
    assert_eq!(requests_for(&backend, "resources/subscribe").await, 0);

    let mut listening = stateless_post(&url, 3, "subscriptions/listen", listen_params(5)).await;
    assert_eq!(listening.status(), 200);
    let acknowledged = listening.chunk().await.expect("read").expect("an event");
    assert!(
        String::from_utf8_lossy(&acknowledged).contains("notifications/subscriptions/acknowledged")
    );
    assert_eq!(requests_for(&backend, "resources/subscribe").await, 5);
}

#[tokio::test]
async fn a_session_holds_at_most_64_listen_streams() {
    let backend = subscribable_backend().await;
    let app = spawn_app(&registry_yaml(&[("files", &mock_url(&backend), "")])).await;
    let session = app.create_session(json!({ "servers": ["files"] })).await;
    let url = app.mcp_url(&session);
    let mut open = Vec::new();
    for id in 0..64 {
        let mut listening = stateless_post(&url, id, "subscriptions/listen", json!({})).await;
        assert_eq!(listening.status(), 200);
        listening
            .chunk()
            .await
            .expect("read")
            .expect("acknowledged");
        open.push(listening);
    }
    let refused = stateless_post(&url, 64, "subscriptions/listen", json!({})).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        read_message(refused).await,
        json!({ "jsonrpc": "2.0", "id": 64, "error": {
            "code": -32603,
            "message": "this session has 64 subscriptions/listen streams open, the most it may; close one first",
        } })
    );
    // Closing one makes room.
    drop(open.pop());
    assert!(
        eventually(|| async {
            stateless_post(&url, 65, "subscriptions/listen", json!({}))
                .await
                .status()
                == 200
        })
        .await
    );
}

/// Everything a stream still sends until it ends; None if it is still
/// open after a while (the gateway's keep-alive would hold it forever).
async fn rest_of_stream(mut stream: reqwest::Response) -> Option<String> {
    let mut received = Vec::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.expect("readable") {
            received.extend_from_slice(&chunk);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn deleting_a_session_ends_its_clients_streams_at_once() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let url = app.mcp_url(&session);

    let listen = json!({ "notifications": { "toolsListChanged": true } });
    let mut listening = stateless_post(&url, 7, "subscriptions/listen", listen).await;
    assert_eq!(listening.status(), 200);
    let acknowledged = listening.chunk().await.expect("read").expect("an event");
    assert!(
        String::from_utf8_lossy(&acknowledged).contains("notifications/subscriptions/acknowledged")
    );
    let legacy = app.mcp(&session).await;
    let own_stream = legacy.open_stream().await;
    assert_eq!(own_stream.status(), 200);

    let deleted = app
        .http
        .delete(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);

    let listened = rest_of_stream(listening)
        .await
        .expect("the listen stream ends with its session");
    let closing: Value = serde_json::from_str(
        listened
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .expect("a closing answer"),
    )
    .expect("JSON");
    assert_eq!(
        closing,
        json!({ "jsonrpc": "2.0", "id": 7, "result": {
            "resultType": "complete",
            "_meta": { "io.modelcontextprotocol/subscriptionId": 7 },
        } })
    );
    assert_eq!(
        rest_of_stream(own_stream).await.as_deref(),
        Some(""),
        "the GET stream ends with its session"
    );
}
