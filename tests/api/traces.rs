//! Traces: the gateway exports the spans of MCP requests and backend
//! exchanges over OTLP/HTTP to a receiver in the test, and passes W3C trace
//! context on to backends, in headers and in `params._meta`.

use std::sync::{Arc, Mutex};

use mcp_mux::traces::TraceSettings;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::*;

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
pub(crate) const CLIENT_TRACEPARENT: &str =
    "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";

/// An OTLP/HTTP receiver: keeps the spans POSTed to `/v1/traces` in
/// protobuf, with the service name of the resource that sent them.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let kept = spans.clone();
        let router = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let request =
                        ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|resource| &resource.attributes)
                            .find(|attribute| attribute.key == "service.name")
                            .and_then(|attribute| string_of(attribute.value.as_ref()?))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                kept.lock().expect("lock").push((service.clone(), span));
                            }
                        }
                    }
                    // An empty ExportTraceServiceResponse.
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url: format!("http://{address}/v1/traces"),
            spans,
            task,
        }
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().expect("lock").clone()
    }
}

fn string_of(value: &opentelemetry_proto::tonic::common::v1::AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        AnyValue::StringValue(text) => Some(text.clone()),
        AnyValue::IntValue(number) => Some(number.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| string_of(attribute.value.as_ref()?))
}

/// What the backend received with each `tools/call`: its `traceparent`
/// and `tracestate` headers and its `params._meta`.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) header: Option<String>,
    pub(crate) tracestate: Option<String>,
    pub(crate) meta: Value,
}

/// The echo backend, recording what each `tools/call` carried.
pub(crate) async fn recording_backend() -> (RmcpBackend, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let record = received.clone();
    let service: rmcp::transport::streamable_http_server::StreamableHttpService<
        EchoServer,
        rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
    > = rmcp::transport::streamable_http_server::StreamableHttpService::new(
        || Ok(EchoServer::new("traced")),
        Default::default(),
        rmcp::transport::streamable_http_server::StreamableHttpServerConfig::default()
            .with_sse_keep_alive(None),
    );
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let record = record.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let bytes = axum::body::to_bytes(body, usize::MAX)
                            .await
                            .expect("a body");
                        let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        if message["method"] == "tools/call" {
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .map(|value| value.to_str().expect("ascii").to_owned())
                            };
                            record.lock().expect("lock").push(Received {
                                header: header("traceparent"),
                                tracestate: header("tracestate"),
                                meta: message["params"]["_meta"].clone(),
                            });
                        }
                        let request = axum::extract::Request::from_parts(parts, bytes.into());
                        next.run(request).await
                    }
                },
            ));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let backend = RmcpBackend::from_task(format!("http://{address}/mcp"), task);
    (backend, received)
}

/// A gateway exporting to `receiver` (none when `None`), over the
/// recording backend as `traced`, and a session on it.
async fn traced_gateway(
    receiver: Option<&Receiver>,
) -> (TestApp, RmcpBackend, Arc<Mutex<Vec<Received>>>, String) {
    traced_gateway_with(receiver, "").await
}

/// [`traced_gateway`], with `extra` registry settings for the backend.
async fn traced_gateway_with(
    receiver: Option<&Receiver>,
    extra: &str,
) -> (TestApp, RmcpBackend, Arc<Mutex<Vec<Received>>>, String) {
    let (backend, received) = recording_backend().await;
    let mut options = AppOptions::new(registry_yaml(&[("traced", &backend.url, extra)]));
    options.traces = receiver.map(|receiver| TraceSettings::to_endpoint(&receiver.url));
    let app = spawn_app_with(options).await.expect("gateway starts");
    let session = app.create_session(json!({ "servers": ["traced"] })).await;
    (app, backend, received, session)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The `tools/call` request span and the exchange span under it.
fn call_spans(spans: &[(String, Span)]) -> (Span, Span) {
    let request = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "tools/call")
        .unwrap_or_else(|| panic!("no tools/call span in {spans:?}"))
        .clone();
    let exchange = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "tools/call traced")
        .unwrap_or_else(|| panic!("no exchange span in {spans:?}"))
        .clone();
    (request, exchange)
}

#[tokio::test]
async fn a_tools_call_is_traced_under_the_clients_trace_and_the_backend_nests_under_it() {
    let receiver = Receiver::start().await;
    let (app, _backend, received, session) = traced_gateway(Some(&receiver)).await;
    let mcp = app.mcp(&session).await;
    let answer = mcp
        .post(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "traced__echo", "arguments": { "text": "hi" } }
        }))
        .await;
    assert_eq!(answer.status(), 200);
    let _ = read_message(answer).await;
    // Sent again with the client's trace context in the header.
    let answer = mcp
        .http
        .post(&mcp.url)
        .header("accept", "application/json, text/event-stream")
        .header(
            "mcp-session-id",
            mcp.session_id.clone().expect("initialized"),
        )
        .header("mcp-protocol-version", "2025-11-25")
        .header("traceparent", CLIENT_TRACEPARENT)
        .header("tracestate", "vendor=1")
        .json(&json!({
            "jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": { "name": "traced__echo", "arguments": { "text": "hi" } }
        }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(first_text(&read_message(answer).await), "traced: hi");
    app.mux.flush_traces().await;

    let spans: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|(_, span)| hex(&span.trace_id) == CLIENT_TRACE)
        .collect();
    let (request, exchange) = call_spans(&spans);
    assert!(spans.iter().all(|(service, _)| service == "mcp-mux"));
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(
        attribute(&request, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attribute(&request, "gen_ai.tool.name").as_deref(),
        Some("traced__echo")
    );
    assert_eq!(
        attribute(&request, "mcp_mux.session.id"),
        Some(session.replace('-', "")[..8].to_owned())
    );
    assert_eq!(
        attribute(&request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(exchange.parent_span_id, request.span_id);
    assert_eq!(exchange.kind, 3, "a client span");
    assert_eq!(
        attribute(&exchange, "mcp_mux.server").as_deref(),
        Some("traced")
    );
    assert_eq!(
        attribute(&exchange, "gen_ai.tool.name").as_deref(),
        Some("echo")
    );
    assert_eq!(
        attribute(&exchange, "mcp_mux.attempt").as_deref(),
        Some("1")
    );
    assert_eq!(
        attribute(&exchange, "mcp_mux.outcome").as_deref(),
        Some("ok")
    );
    // Neither arguments nor whole ids reach a span.
    for span in [&request, &exchange] {
        for attribute in &span.attributes {
            let value = attribute
                .value
                .as_ref()
                .and_then(string_of)
                .unwrap_or_default();
            assert!(
                !value.contains("hi") && !value.contains(&session),
                "{attribute:?}"
            );
        }
    }

    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 2, "{received:?}");
    // The first call had no client context: its own trace, still nested.
    assert!(received[0].header.is_some());
    assert_eq!(
        received[1].header.as_deref(),
        Some(format!("00-{CLIENT_TRACE}-{}-01", hex(&exchange.span_id)).as_str())
    );
    // The client put nothing in `_meta`: nothing is added there.
    assert_eq!(received[1].meta, Value::Null);
}

#[tokio::test]
async fn a_stateless_request_s_meta_traceparent_is_honoured_and_passed_on() {
    let receiver = Receiver::start().await;
    let (app, _backend, received, session) = traced_gateway(Some(&receiver)).await;
    let answer = reqwest::Client::new()
        .post(app.mcp_url(&session))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "traced__echo")
        // The header names another trace: `_meta` wins.
        .header(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01",
        )
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": "traced__echo",
                "arguments": { "text": "hi" },
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "traceparent": CLIENT_TRACEPARENT,
                    "com.example/kept": 1,
                }
            }
        }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(first_text(&read_message(answer).await), "traced: hi");
    app.mux.flush_traces().await;

    let spans = receiver.spans();
    let (request, exchange) = call_spans(&spans);
    assert_eq!(hex(&request.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(exchange.parent_span_id, request.span_id);
    let passed_on = format!("00-{CLIENT_TRACE}-{}-01", hex(&exchange.span_id));
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].header.as_deref(), Some(passed_on.as_str()));
    assert_eq!(
        received[0].meta,
        json!({ "traceparent": passed_on, "com.example/kept": 1 })
    );
}

#[tokio::test]
async fn with_tracing_off_the_clients_trace_context_reaches_the_backend_unchanged() {
    let (app, _backend, received, session) = traced_gateway(None).await;
    let mcp = app.mcp(&session).await;
    let answer = mcp
        .http
        .post(&mcp.url)
        .header("accept", "application/json, text/event-stream")
        .header(
            "mcp-session-id",
            mcp.session_id.clone().expect("initialized"),
        )
        .header("mcp-protocol-version", "2025-11-25")
        .header("traceparent", CLIENT_TRACEPARENT)
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": "traced__echo",
                "arguments": { "text": "hi" },
                "_meta": { "traceparent": CLIENT_TRACEPARENT }
            }
        }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(answer.status(), 200);
    let _ = read_message(answer).await;
    // Without a client context, nothing is sent.
    let mut mcp = mcp;
    let _ = mcp.call_tool("traced__echo", json!({ "text": "hi" })).await;

    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].header.as_deref(), Some(CLIENT_TRACEPARENT));
    assert_eq!(
        received[0].meta,
        json!({ "traceparent": CLIENT_TRACEPARENT })
    );
    assert_eq!(received[1].header, None);
}

#[tokio::test]
async fn an_otlp_endpoint_that_is_no_url_stops_the_gateway_without_showing_it() {
    let mut options = AppOptions::new(registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]));
    options.traces = Some(TraceSettings::to_endpoint(
        "http://user:secret@ bad/v1/traces",
    ));
    let Err(error) = spawn_app_with(options).await else {
        panic!("the gateway started with an endpoint that is no URL");
    };
    assert_eq!(
        error.to_string(),
        "cannot set up the OTLP trace exporter: check OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS"
    );
}

#[tokio::test]
async fn each_attempt_of_a_retried_call_is_an_exchange_span_with_its_outcome() {
    use wiremock::matchers::{body_partial_json, method};
    use wiremock::{Mock, ResponseTemplate};
    let receiver = Receiver::start().await;
    let server = mock_backend(
        json!([{ "name": "write", "inputSchema": { "type": "object" } }]),
        false,
    )
    .await;
    let call = json!({ "method": "tools/call", "params": { "name": "write" } });
    Mock::given(method("POST"))
        .and(body_partial_json(&call))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(&call))
        .respond_with(JsonRpcAnswer::result(
            json!({ "content": [{ "type": "text", "text": "written" }] }),
        ))
        .mount(&server)
        .await;
    let mut options = AppOptions::new(registry_yaml(&[(
        "flaky",
        &mock_url(&server),
        "retry: { initial_interval_ms: 20, max_interval_ms: 100, max_elapsed_ms: 2000 }",
    )]));
    options.traces = Some(TraceSettings::to_endpoint(&receiver.url));
    let app = spawn_app_with(options).await.expect("gateway starts");
    let session = app.create_session(json!({ "servers": ["flaky"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("flaky__write", json!({})).await),
        "written"
    );
    app.mux.flush_traces().await;

    let spans = receiver.spans();
    let request = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "tools/call")
        .expect("a tools/call span");
    let mut attempts: Vec<_> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| span.name == "tools/call flaky")
        .map(|span| {
            assert_eq!(span.parent_span_id, request.span_id);
            (
                attribute(span, "mcp_mux.attempt"),
                attribute(span, "mcp_mux.outcome"),
                attribute(span, "error.type"),
                hex(&span.span_id),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts
            .iter()
            .map(|(attempt, outcome, class, _)| (attempt.clone(), outcome.clone(), class.clone()))
            .collect::<Vec<_>>(),
        vec![
            (
                Some("1".into()),
                Some("error".into()),
                Some("http_status".into())
            ),
            (Some("2".into()), Some("ok".into()), None),
        ]
    );
    // Each attempt told the backend its own span.
    let sent: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| String::from_utf8_lossy(&request.body).contains("tools/call"))
        .filter_map(|request| {
            Some(
                request
                    .headers
                    .get("traceparent")?
                    .to_str()
                    .ok()?
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        attempts
            .iter()
            .map(|(_, _, _, span)| format!("00-{}-{span}-01", hex(&request.trace_id)))
            .collect::<Vec<_>>()
    );
}

/// A stateless `tools/call` of `traced__echo` on `session`, with `meta`
/// beside the `_meta` keys revision 2026-07-28 requires.
async fn stateless_echo(app: &TestApp, session: &str, meta: Value) -> reqwest::Response {
    let mut full = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    if let (Some(full), Value::Object(meta)) = (full.as_object_mut(), meta) {
        full.extend(meta);
    }
    reqwest::Client::new()
        .post(app.mcp_url(session))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "traced__echo")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "traced__echo", "arguments": { "text": "hi" }, "_meta": full }
        }))
        .send()
        .await
        .expect("gateway answers")
}

/// The whole answer to [`stateless_echo`].
fn echoed() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1,
        "result": {
            "_meta": { "io.modelcontextprotocol/serverInfo": {
                "name": "mcp-mux", "title": "mcp-mux", "version": env!("CARGO_PKG_VERSION")
            } },
            "content": [{ "type": "text", "text": "traced: hi" }],
            "isError": false,
            "resultType": "complete"
        }
    })
}

#[tokio::test]
async fn a_malformed_tracestate_is_dropped_and_never_opens_the_backend_s_circuit() {
    let receiver = Receiver::start().await;
    for exporting in [None, Some(&receiver)] {
        let (app, _backend, received, session) = traced_gateway_with(
            exporting,
            "circuit_breaker: { failure_threshold: 5, open_ms: 60000 }",
        )
        .await;
        let bystander = app.create_session(json!({ "servers": ["traced"] })).await;
        // More calls than the breaker's threshold: before, each one failed
        // to leave mcp-mux and was counted against the backend.
        for _ in 0..6 {
            let meta = json!({ "traceparent": CLIENT_TRACEPARENT, "tracestate": "a=b\nc" });
            let answer = stateless_echo(&app, &session, meta).await;
            assert_eq!(answer.status(), 200);
            assert_eq!(read_message(answer).await, echoed());
        }
        let received = received.lock().expect("lock").clone();
        assert_eq!(received.len(), 6, "{received:?}");
        for call in &received {
            // The client's trace goes on, without the malformed tracestate.
            assert_eq!(call.tracestate, None);
            let traceparent = call.header.clone().expect("a traceparent");
            match exporting {
                None => assert_eq!(traceparent, CLIENT_TRACEPARENT),
                Some(_) => {
                    assert!(traceparent.starts_with(&format!("00-{CLIENT_TRACE}-")));
                    assert_ne!(traceparent, CLIENT_TRACEPARENT);
                }
            }
            assert_eq!(call.meta, json!({ "traceparent": traceparent }));
        }
        assert_eq!(
            app.shown_session(&session).await["servers"][0]["circuit"],
            json!({ "state": "closed", "consecutive_failures": 0 })
        );
        let answer = stateless_echo(&app, &bystander, json!({})).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(read_message(answer).await, echoed());
    }
}

#[tokio::test]
async fn a_malformed_traceparent_takes_its_tracestate_with_it_and_a_valid_one_goes_on() {
    let (app, _backend, received, session) = traced_gateway(None).await;
    for traceparent in [
        format!("{CLIENT_TRACEPARENT}\n"),
        CLIENT_TRACEPARENT.to_uppercase(),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
    ] {
        let meta = json!({ "traceparent": traceparent, "tracestate": "vendor=1" });
        let answer = stateless_echo(&app, &session, meta).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(read_message(answer).await, echoed());
    }
    let meta = json!({ "traceparent": CLIENT_TRACEPARENT, "tracestate": "vendor=1,x@y=z w" });
    let answer = stateless_echo(&app, &session, meta).await;
    assert_eq!(answer.status(), 200);
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 4, "{received:?}");
    for dropped in &received[..3] {
        assert_eq!((&dropped.header, &dropped.tracestate), (&None, &None));
        assert_eq!(dropped.meta, Value::Null);
    }
    assert_eq!(received[3].header.as_deref(), Some(CLIENT_TRACEPARENT));
    assert_eq!(received[3].tracestate.as_deref(), Some("vendor=1,x@y=z w"));
    assert_eq!(
        received[3].meta,
        json!({ "traceparent": CLIENT_TRACEPARENT, "tracestate": "vendor=1,x@y=z w" })
    );
}

#[tokio::test]
async fn a_plain_http_tool_call_is_traced_as_a_tools_call_is() {
    let receiver = Receiver::start().await;
    let (app, _backend, _received, session) = traced_gateway(Some(&receiver)).await;
    let answer = app
        .http
        .post(format!(
            "{}/session/{session}/tools/traced__echo",
            app.address
        ))
        .header("traceparent", CLIENT_TRACEPARENT)
        .json(&json!({ "text": "plain" }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(answer.status(), 200);
    app.mux.flush_traces().await;

    let spans: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|(_, span)| hex(&span.trace_id) == CLIENT_TRACE)
        .collect();
    let (request, exchange) = call_spans(&spans);
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(
        attribute(&request, "gen_ai.tool.name").as_deref(),
        Some("traced__echo")
    );
    assert_eq!(
        attribute(&request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(exchange.parent_span_id, request.span_id);
}
