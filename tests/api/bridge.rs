//! The bridge from revision 2026-07-28 clients to backends of revision
//! 2025-11-25: what a backend asks mid-call becomes `InputRequiredResult`
//! rounds, each backend session is told exactly the capabilities its
//! requests declare, and `Mcp-Param-*` headers are checked against the
//! tool's `x-mcp-header` declarations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
#[allow(deprecated)] // sampling is deprecated at 2026-07-28, served at 2025-11-25
use rmcp::model::{CreateMessageRequestParams, SamplingMessage};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::stateless::{MODERN, meta, stateless_post};

/// A 2025-11-25 backend whose tools ask their client mid-call, the way a
/// careful server does: only for what the client declared.
#[derive(Clone)]
struct CuriousServer;

#[allow(deprecated)] // sampling and roots are deprecated at 2026-07-28, served at 2025-11-25
async fn sample(peer: &Peer<RoleServer>, question: &str) -> Result<String, ErrorData> {
    let request = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 20);
    let answer = peer
        .create_message(request)
        .await
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    let answer = serde_json::to_value(&answer).unwrap_or_default();
    Ok(answer["content"]["text"].as_str().unwrap_or("?").to_owned())
}

#[allow(deprecated)]
async fn roots(peer: &Peer<RoleServer>) -> Result<String, ErrorData> {
    let listed = peer
        .list_roots()
        .await
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    let listed = serde_json::to_value(&listed).unwrap_or_default();
    Ok(listed["roots"][0]["uri"].as_str().unwrap_or("?").to_owned())
}

fn schema(value: Value) -> Arc<Map<String, Value>> {
    Arc::new(value.as_object().cloned().expect("an object schema"))
}

impl ServerHandler for CuriousServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let empty = schema(json!({ "type": "object" }));
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "survey",
                "Asks two questions and the roots at once",
                empty.clone(),
            ),
            Tool::new(
                "whatever",
                "Asks for the roots, else a sample",
                empty.clone(),
            ),
            Tool::new(
                "ask_then_report",
                "Asks for a sample, then reports progress",
                empty,
            ),
            Tool::new(
                "query",
                "Runs a query in a region",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "region": { "type": "string", "x-mcp-header": "Region" },
                        "limit": { "type": "integer", "x-mcp-header": "Limit" },
                    },
                })),
            ),
            Tool::new(
                "broken",
                "Mirrors a number, which no header may carry",
                schema(json!({
                    "type": "object",
                    "properties": { "ratio": { "type": "number", "x-mcp-header": "Ratio" } },
                })),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let peer = &context.peer;
        let declared = peer
            .peer_info()
            .map(|info| serde_json::to_value(&info.capabilities).unwrap_or_default())
            .unwrap_or_default();
        let text = match request.name.as_ref() {
            "survey" => {
                let (first, second, root) =
                    tokio::join!(sample(peer, "one?"), sample(peer, "two?"), roots(peer));
                format!("{}, {}, {}", first?, second?, root?)
            }
            "whatever" if declared.get("roots").is_some() => format!("root {}", roots(peer).await?),
            "whatever" if declared.get("sampling").is_some() => {
                format!("sampled {}", sample(peer, "anything?").await?)
            }
            "whatever" => "nothing to ask".to_owned(),
            "ask_then_report" => {
                let token = context.meta.get_progress_token();
                let answer = sample(peer, "go?").await?;
                for progress in [1, 2] {
                    let param = serde_json::from_value(
                        json!({ "progressToken": token, "progress": progress }),
                    )
                    .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
                    let _ = peer.notify_progress(param).await;
                }
                format!("reported after {answer}")
            }
            "query" => format!(
                "ran {}",
                Value::Object(request.arguments.unwrap_or_default())
            ),
            other => return Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// A session over one `CuriousServer` (named "q", so its tools are `q__…`),
/// and how many backend sessions the backend has seen open.
async fn curious_session() -> (TestApp, RmcpBackend, String, Arc<AtomicUsize>) {
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = opened.clone();
    let (app, backend, session) = session_over_rmcp("q", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        CuriousServer
    })
    .await;
    (app, backend, session, opened)
}

fn call(name: &str, capabilities: Value) -> Value {
    json!({ "name": name, "arguments": {}, "_meta": meta(capabilities) })
}

fn sampled(text: &str) -> Value {
    json!({ "role": "assistant", "model": "m", "content": { "type": "text", "text": text } })
}

/// The input requests of an `InputRequiredResult`, by method, sorted.
fn methods(result: &Value) -> Vec<String> {
    let mut methods: Vec<String> = result["inputRequests"]
        .as_object()
        .unwrap_or_else(|| panic!("no inputRequests in {result}"))
        .values()
        .map(|request| request["method"].as_str().unwrap_or("?").to_owned())
        .collect();
    methods.sort();
    methods
}

fn key_of(result: &Value, method: &str) -> Vec<String> {
    result["inputRequests"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, request)| request["method"] == method)
        .map(|(key, _)| key.clone())
        .collect()
}

#[tokio::test]
async fn requests_a_backend_sends_at_once_come_in_one_round_and_unanswered_ones_are_asked_again() {
    let (app, _backend, session, _) = curious_session().await;
    let url = app.mcp_url(&session);
    let ask = call("q__survey", json!({ "sampling": {}, "roots": {} }));

    let first = read_message(stateless_post(&url, 1, "tools/call", ask.clone()).await).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        methods(result),
        [
            "roots/list",
            "sampling/createMessage",
            "sampling/createMessage"
        ]
    );
    let questions: Vec<&Value> = key_of(result, "sampling/createMessage")
        .iter()
        .map(|key| &result["inputRequests"][key]["params"]["messages"][0]["content"]["text"])
        .collect();
    assert!(questions.contains(&&json!("one?")) && questions.contains(&&json!("two?")));

    // The samples answered, the roots not: only the roots are asked again,
    // under the key they had.
    let samples = key_of(result, "sampling/createMessage");
    let roots_key = key_of(result, "roots/list").remove(0);
    let mut retry = ask.clone();
    retry["requestState"] = result["requestState"].clone();
    retry["inputResponses"] = json!({ &samples[0]: sampled("A"), &samples[1]: sampled("A") });
    let second = read_message(stateless_post(&url, 2, "tools/call", retry).await).await;
    let result = &second["result"];
    assert_eq!(result["resultType"], "input_required", "{second}");
    assert_eq!(methods(result), ["roots/list"]);
    assert_eq!(
        key_of(result, "roots/list"),
        std::slice::from_ref(&roots_key)
    );
    let state = result["requestState"].clone();

    // A malformed answer is refused before it reaches the backend, and the
    // state stays good for a better retry.
    let mut malformed = ask.clone();
    malformed["requestState"] = state.clone();
    malformed["inputResponses"] = json!({ &roots_key: 12345 });
    let refused = stateless_post(&url, 3, "tools/call", malformed).await;
    assert_eq!(refused.status(), 200);
    let refused = read_message(refused).await;
    assert_eq!(
        refused["error"],
        json!({
            "code": -32602,
            "message": format!("invalid params: \"inputResponses.{roots_key}\" must be an object: the result of the request it answers"),
        })
    );
    let mut not_a_map = ask.clone();
    not_a_map["requestState"] = state.clone();
    not_a_map["inputResponses"] = json!(null);
    let refused = read_message(stateless_post(&url, 4, "tools/call", not_a_map).await).await;
    assert_eq!(
        refused["error"]["message"],
        "invalid params: \"inputResponses\" must be an object"
    );

    let mut last = ask.clone();
    last["requestState"] = state;
    last["inputResponses"] = json!({ &roots_key: { "roots": [{ "uri": "file:///work" }] } });
    let done = read_message(stateless_post(&url, 5, "tools/call", last).await).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(first_text(&done), "A, A, file:///work");
}

#[tokio::test]
async fn progress_after_an_input_round_carries_the_progress_token_of_the_retry() {
    let (app, _backend, session, _) = curious_session().await;
    let url = app.mcp_url(&session);
    let with_token = |token: Value| {
        let mut ask = call("q__ask_then_report", json!({ "sampling": {} }));
        ask["_meta"]["progressToken"] = token;
        ask
    };
    let first =
        read_message(stateless_post(&url, 1, "tools/call", with_token(json!("first"))).await).await;
    let result = &first["result"];
    let key = key_of(result, "sampling/createMessage").remove(0);

    // The backend knows the first request's token; the client expects the
    // retry's.
    let mut retry = with_token(json!("second"));
    retry["requestState"] = result["requestState"].clone();
    retry["inputResponses"] = json!({ key: sampled("S") });
    let stream = stateless_post(&url, 2, "tools/call", retry)
        .await
        .text()
        .await
        .expect("an SSE answer");
    let events: Vec<Value> = stream
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let tokens: Vec<&Value> = events
        .iter()
        .filter(|event| event["method"] == "notifications/progress")
        .map(|event| &event["params"]["progressToken"])
        .collect();
    assert_eq!(tokens, [&json!("second"), &json!("second")], "{stream}");
    let done = events.last().expect("the answer");
    assert_eq!(done["id"], 2);
    assert_eq!(first_text(done), "reported after S");
}

#[tokio::test]
async fn backends_are_told_exactly_what_each_request_declares_and_equal_sets_share() {
    let (app, _backend, session, opened) = curious_session().await;
    let url = app.mcp_url(&session);

    // Roots alone: the backend asks for them, as it would not if it were
    // told of sampling only.
    let roots = read_message(
        stateless_post(
            &url,
            1,
            "tools/call",
            call("q__whatever", json!({ "roots": { "listChanged": true } })),
        )
        .await,
    )
    .await;
    assert_eq!(methods(&roots["result"]), ["roots/list"], "{roots}");

    // Sampling alone, declared twice in other spellings: one set.
    for (id, sampling) in [
        (2, json!({ "sampling": {} })),
        (3, json!({ "sampling": { "x": 1 } })),
    ] {
        let asked = read_message(
            stateless_post(&url, id, "tools/call", call("q__whatever", sampling)).await,
        )
        .await;
        assert_eq!(
            methods(&asked["result"]),
            ["sampling/createMessage"],
            "{asked}"
        );
    }

    // Nothing declared: the backend knows not to ask.
    let plain =
        read_message(stateless_post(&url, 4, "tools/call", call("q__whatever", json!({}))).await)
            .await;
    assert_eq!(first_text(&plain), "nothing to ask");
    assert_eq!(
        opened.load(Ordering::SeqCst),
        3,
        "one backend session per set"
    );
}

#[tokio::test]
async fn a_session_serves_at_most_eight_capability_sets_while_each_is_in_use() {
    let (app, _backend, session, _) = curious_session().await;
    let url = app.mcp_url(&session);
    let samplings = [
        json!({}),
        json!({ "context": {} }),
        json!({ "tools": {} }),
        json!({ "context": {}, "tools": {} }),
    ];
    let mut sets = Vec::new();
    for sampling in &samplings {
        sets.push(json!({ "sampling": sampling }));
        sets.push(json!({ "sampling": sampling, "elicitation": {} }));
    }
    // Each set has a call waiting for its input.
    for (id, capabilities) in sets.into_iter().enumerate() {
        let asked = read_message(
            stateless_post(
                &url,
                id as u64,
                "tools/call",
                call("q__whatever", capabilities),
            )
            .await,
        )
        .await;
        assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    }
    let ninth = stateless_post(&url, 9, "tools/call", call("q__whatever", json!({}))).await;
    assert_eq!(ninth.status(), 503);
    let body: Value = ninth.json().await.expect("JSON-RPC error");
    assert_eq!(body["id"], 9);
    assert_eq!(
        body["error"]["message"],
        "this session serves stateless clients that declare 8 different sets of client capabilities, the most it may, and each set has a call waiting or a stream open; try again once one ends"
    );
}

/// POSTs a call of `q__query` with `arguments` and the extra `headers`.
async fn query(url: &str, arguments: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "q__query");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let params = json!({ "name": "q__query", "arguments": arguments, "_meta": meta(json!({})) });
    request
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }))
        .send()
        .await
        .expect("gateway answers")
}

#[tokio::test]
async fn mcp_param_headers_must_mirror_the_arguments_their_tool_declares() {
    let (app, _backend, session, _) = curious_session().await;
    let url = app.mcp_url(&session);

    // A tool whose x-mcp-header is invalid is left out, as clients must.
    let listed = read_message(stateless_post(&url, 1, "tools/list", json!({})).await).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["q__survey", "q__whatever", "q__ask_then_report", "q__query"]
    );

    let region = json!({ "region": "Hello", "limit": 42 });
    for headers in [
        [("mcp-param-region", "Hello"), ("mcp-param-limit", "42")],
        [
            ("Mcp-Param-Region", "=?base64?SGVsbG8=?="),
            ("MCP-PARAM-LIMIT", "42.0"),
        ],
    ] {
        let done = read_message(query(&url, region.clone(), &headers).await).await;
        assert_eq!(
            first_text(&done),
            r#"ran {"limit":42,"region":"Hello"}"#,
            "{done}"
        );
    }
    // Absent arguments take no header.
    let done = read_message(query(&url, json!({}), &[]).await).await;
    assert_eq!(first_text(&done), "ran {}");

    for (arguments, headers, reason) in [
        (
            json!({ "region": "Hello" }),
            vec![],
            "the Mcp-Param-Region header is missing: the argument \"region\" is in the body",
        ),
        (
            json!({ "region": "Hello" }),
            vec![("mcp-param-region", "Bye")],
            "Mcp-Param-Region header value 'Bye' does not match body value \"Hello\"",
        ),
        (
            json!({ "limit": 42 }),
            vec![("mcp-param-limit", "43")],
            "Mcp-Param-Limit header value '43' does not match body value 42",
        ),
        (
            json!({ "region": "Hello" }),
            vec![("mcp-param-region", "=?base64?SGVsbG8?=")],
            "Mcp-Param-Region: header value '=?base64?SGVsbG8?=' is not valid base64 UTF-8",
        ),
        (
            json!({ "region": "Hello" }),
            vec![("mcp-param-region", "=?base64?SGVs!!!bG8=?=")],
            "Mcp-Param-Region: header value '=?base64?SGVs!!!bG8=?=' is not valid base64 UTF-8",
        ),
        (
            json!({}),
            vec![("mcp-param-region", "Hello")],
            "the Mcp-Param-Region header is sent, but the argument \"region\" is not in the body",
        ),
        (
            json!({ "region": "Hello" }),
            vec![("mcp-param-region", "Hello"), ("mcp-param-region", "Hello")],
            "the Mcp-Param-Region header must be sent once, in visible ASCII (other values as =?base64?…?=)",
        ),
    ] {
        let refused = query(&url, arguments, &headers).await;
        assert_eq!(refused.status(), 400, "{reason}");
        let body: Value = refused.json().await.expect("JSON-RPC error");
        assert_eq!(
            body,
            json!({ "jsonrpc": "2.0", "id": 1, "error": {
                "code": -32020,
                "message": format!("header mismatch: {reason}"),
            } })
        );
    }
}
