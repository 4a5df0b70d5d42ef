//! Traces over OpenTelemetry: the OTLP/HTTP exporter, the spans of MCP
//! requests and backend exchanges, and W3C trace context taken from clients
//! and passed on to backends (even with tracing off, when none is exported).

use std::future::Future;

use futures_util::future::Either;
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde_json::{Map, Value};

use crate::mcp::client_values::{self, TraceContext};
pub use crate::mcp::client_values::{TRACEPARENT, TRACESTATE};
use crate::mcp::request::Method;

/// The service name spans carry unless `OTEL_SERVICE_NAME` (or
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
const SERVICE_NAME: &str = "mcp-mux";
/// Longest tool name put on a span: the name is client input.
const MAX_TOOL_NAME_CHARS: usize = 128;

/// How spans are sent to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`, the default.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// Where traces go. The exporter reads the other standard variables itself
/// (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION`, their
/// `_TRACES_` forms, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`,
/// `OTEL_RESOURCE_ATTRIBUTES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// The full URL spans are POSTed to; `None` leaves it to
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// with `/v1/traces` appended.
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
}

/// Why traces cannot be set up. Never carries a variable's value: the
/// endpoint and the headers may hold credentials.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "{variable}=grpc is not supported: mcp-mux exports traces over OTLP/HTTP; set it to http/protobuf or http/json"
    )]
    Grpc { variable: &'static str },
    #[error("{variable} must be http/protobuf or http/json")]
    UnknownProtocol { variable: &'static str },
    #[error("{variable} must be text")]
    NotText { variable: &'static str },
    #[error(
        "cannot set up the OTLP trace exporter: check OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS"
    )]
    Exporter,
}

impl TraceSettings {
    /// Spans POSTed to `endpoint` (the full URL, `…/v1/traces`) in protobuf.
    pub fn to_endpoint(endpoint: impl Into<String>) -> Self {
        TraceSettings {
            endpoint: Some(endpoint.into()),
            protocol: OtlpProtocol::HttpProtobuf,
        }
    }

    /// From the standard variables: `None` (tracing off) unless
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// is set, or when `OTEL_SDK_DISABLED=true`.
    pub fn from_env() -> Result<Option<Self>, TraceError> {
        Self::from_variables(std::env::var)
    }

    fn from_variables(
        read: impl Fn(&'static str) -> Result<String, std::env::VarError>,
    ) -> Result<Option<Self>, TraceError> {
        let text = |variable: &'static str| match read(variable) {
            Ok(value) if !value.trim().is_empty() => Ok(Some(value.trim().to_owned())),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(TraceError::NotText { variable }),
        };
        if text("OTEL_SDK_DISABLED")?.is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?.is_none()
            && text("OTEL_EXPORTER_OTLP_ENDPOINT")?.is_none()
        {
            return Ok(None);
        }
        let mut protocol = OtlpProtocol::HttpProtobuf;
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            let Some(value) = text(variable)? else {
                continue;
            };
            protocol = match value.to_ascii_lowercase().as_str() {
                "http/protobuf" => OtlpProtocol::HttpProtobuf,
                "http/json" => OtlpProtocol::HttpJson,
                "grpc" => return Err(TraceError::Grpc { variable }),
                _ => return Err(TraceError::UnknownProtocol { variable }),
            };
            break;
        }
        Ok(Some(TraceSettings {
            endpoint: None,
            protocol,
        }))
    }
}

/// The gateway's tracer and the provider that batches and exports its spans.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Traces {
    /// Starts the exporter; its batches are sent from a task on the current
    /// tokio runtime.
    pub fn start(settings: &TraceSettings) -> Result<Self, TraceError> {
        let protocol = match settings.protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        };
        let mut exporter = SpanExporter::builder().with_http().with_protocol(protocol);
        if let Some(endpoint) = &settings.endpoint {
            exporter = exporter.with_endpoint(endpoint.clone());
        }
        let exporter = exporter.build().map_err(|_| TraceError::Exporter)?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource())
            .build();
        let tracer = provider.tracer(SERVICE_NAME);
        Ok(Traces { provider, tracer })
    }

    /// Sends the spans ended so far, and waits until they are sent.
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        // The SDK blocks this thread until the exporting task has sent them.
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }

    /// Sends the last spans and stops the exporter.
    pub async fn shutdown(&self) {
        let provider = self.provider.clone();
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        // The SDK shuts down on drop by blocking until the exporting task
        // answers, which never happens if this thread is the one that runs
        // it: shut down on a thread of its own (a no-op once shut down).
        let provider = self.provider.clone();
        let _ = std::thread::Builder::new()
            .name("traces-shutdown".into())
            .spawn(move || provider.shutdown());
    }
}

/// The resource spans carry: the SDK's (from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`), named `mcp-mux` when those name nothing.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    }
}

/// This gateway's tracer, carried in a request's context so that the
/// backend layer starts its spans with it. A request's context (its span,
/// or with tracing off only the client's) travels as OpenTelemetry's task
/// context ([`FutureExt::with_context`]), so the layers between the route
/// and the backend transports are not handed it.
#[derive(Clone)]
struct ActiveTracer(SdkTracer);

/// One MCP request as traced: its span when tracing is on, or only the
/// client's trace context to pass on when it is off.
pub struct RequestTrace {
    context: Context,
}

/// What a request's span says about it.
pub struct RequestFacts<'a, S> {
    /// The JSON-RPC method, as the client sent it.
    pub method: &'a str,
    pub params: Option<&'a Value>,
    /// The session's id cut to 8 characters, made only for a span.
    pub session: S,
    /// The signed-in user whose session it is (`enduser.id`), if any.
    pub subject: Option<&'a str>,
}

impl RequestTrace {
    /// The trace of a request: a server span, child of the client's trace
    /// context when it sent one, when `traces` is on; the client's context
    /// alone when off; `None` when off and the client sent none, which costs
    /// nothing further. The context is read from `params._meta` (revision
    /// 2026-07-28's carrier) when it holds a `traceparent`, else from the
    /// `traceparent` and `tracestate` headers.
    pub fn start<'h>(
        traces: Option<&Traces>,
        header: impl Fn(&str) -> Option<&'h str>,
        facts: RequestFacts<'_, impl FnOnce() -> String>,
    ) -> Option<Self> {
        let meta = facts
            .params
            .and_then(|params| params.get("_meta"))
            .and_then(Value::as_object)
            .filter(|meta| meta.get(TRACEPARENT).is_some_and(Value::is_string));
        let Some(traces) = traces else {
            // Off: the client's context, if any, is passed on unchanged.
            if meta.is_none() && header(TRACEPARENT).is_none() {
                return None;
            }
            let parent = extract(meta, &header);
            return parent
                .span()
                .span_context()
                .is_valid()
                .then_some(RequestTrace { context: parent });
        };
        let parent = extract(meta, &header);
        let (method, is_tool_call) = span_method(facts.method);
        let mut attributes = vec![
            KeyValue::new("rpc.system", "jsonrpc"),
            KeyValue::new("mcp.method.name", method),
            KeyValue::new("mcp_mux.session.id", (facts.session)()),
        ];
        if let Some(subject) = facts.subject {
            attributes.push(KeyValue::new("enduser.id", subject.to_owned()));
        }
        if is_tool_call && let Some(tool) = facts.params.and_then(tool_name) {
            attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
            attributes.push(KeyValue::new("gen_ai.tool.name", tool));
        }
        let span = traces
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&traces.tracer, &parent);
        Some(RequestTrace {
            context: parent
                .with_span(span)
                .with_value(ActiveTracer(traces.tracer.clone())),
        })
    }

    /// The id of the trace the request belongs to, as 32 hex digits.
    pub fn trace_id(&self) -> String {
        self.context.span().span_context().trace_id().to_string()
    }

    /// Ends the span with the HTTP status of the answer.
    pub fn finish(self, status: u16) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 400 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }
}

/// Runs `work` within `trace`, so that backend exchanges it makes are
/// traced (or carry the client's context); as it is without one.
pub fn within<F: Future>(
    trace: Option<&RequestTrace>,
    work: F,
) -> Either<opentelemetry::context::WithContext<F>, F> {
    match trace {
        Some(trace) => Either::Left(work.with_context(trace.context.clone())),
        None => Either::Right(work),
    }
}

/// `work`, to be spawned, within the current trace context if there is one:
/// a spawned task does not inherit it.
pub fn carried<F: Future>(work: F) -> Either<opentelemetry::context::WithContext<F>, F> {
    if has_current_trace() {
        Either::Left(work.with_current_context())
    } else {
        Either::Right(work)
    }
}

/// The trace and span ids of the current trace context, as hex, when a
/// traced request is being served: for log lines written meanwhile.
pub fn current_ids() -> Option<(String, String)> {
    Context::map_current(|context| {
        let span = context.span();
        let ids = span.span_context();
        ids.is_valid()
            .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
    })
}

fn has_current_trace() -> bool {
    Context::map_current(|context| context.span().span_context().is_valid())
}

/// One exchange with a backend within a traced request: a client span,
/// child of the request's, when tracing is on; the client's context alone
/// when it is off.
pub struct ExchangeTrace {
    context: Context,
    traced: bool,
}

impl ExchangeTrace {
    /// `None` outside any trace context (tracing off and no client context),
    /// at the cost of one thread-local read. `attempt` counts from 1.
    pub fn start(server: &str, method: &str, params: Option<&Value>, attempt: u32) -> Option<Self> {
        Context::map_current(|current| {
            if !current.span().span_context().is_valid() {
                return None;
            }
            let Some(ActiveTracer(tracer)) = current.get::<ActiveTracer>() else {
                return Some(ExchangeTrace {
                    context: current.clone(),
                    traced: false,
                });
            };
            let (method, is_tool_call) = span_method(method);
            let mut attributes = vec![
                KeyValue::new("rpc.system", "jsonrpc"),
                KeyValue::new("mcp.method.name", method),
                KeyValue::new("mcp_mux.server", server.to_owned()),
                KeyValue::new("mcp_mux.attempt", i64::from(attempt)),
            ];
            if is_tool_call && let Some(tool) = params.and_then(tool_name) {
                attributes.push(KeyValue::new("gen_ai.tool.name", tool));
            }
            let span = tracer
                .span_builder(format!("{method} {server}"))
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start_with_context(tracer, current);
            Some(ExchangeTrace {
                context: current.with_span(span),
                traced: true,
            })
        })
    }

    /// Runs the exchange within this context: its HTTP requests carry it.
    pub fn within<F: Future>(&self, work: F) -> opentelemetry::context::WithContext<F> {
        work.with_context(self.context.clone())
    }

    /// The params to send: with a span of ours, a `_meta.traceparent` the
    /// client put there names our span instead (and `tracestate` follows),
    /// so that the backend's spans nest under it; its other `_meta` keys
    /// stay. `None` when the params go as they are.
    pub fn params(&self, params: Option<&Value>) -> Option<Value> {
        if !self.traced {
            return None;
        }
        let mut params = params?.clone();
        let meta = params.get_mut("_meta")?.as_object_mut()?;
        if !meta.contains_key(TRACEPARENT) {
            return None;
        }
        meta.remove(TRACESTATE);
        inject(&self.context, meta);
        Some(params)
    }

    /// Ends the span: `outcome` and `error_class` are the names the audit
    /// trail and the metrics use.
    pub fn finish(self, outcome: &'static str, error_class: Option<&'static str>) {
        if !self.traced {
            return;
        }
        let span = self.context.span();
        span.set_attribute(KeyValue::new("mcp_mux.outcome", outcome));
        if let Some(class) = error_class {
            span.set_attribute(KeyValue::new("error.type", class));
            span.set_status(Status::error(class));
        }
        span.end();
    }
}

/// The trace context headers of the current context (an exchange's span,
/// or the client's context), for an HTTP request to a backend.
pub fn current_headers() -> Vec<(&'static str, String)> {
    Context::map_current(|current| {
        let mut headers = HeaderPairs(Vec::new());
        if current.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(current, &mut headers);
        }
        headers.0
    })
}

/// The client's trace context from `_meta`, or else from the headers; an
/// empty context when it is malformed, and without a malformed `tracestate`.
fn extract<'h>(
    meta: Option<&Map<String, Value>>,
    header: &impl Fn(&str) -> Option<&'h str>,
) -> Context {
    let text = |key: &str| match meta {
        Some(meta) => meta.get(key).and_then(Value::as_str),
        None => header(key),
    };
    match TraceContext::parse(text(TRACEPARENT), text(TRACESTATE)) {
        Some(context) => TraceContextPropagator::new().extract(&ContextCarrier(context)),
        None => Context::new(),
    }
}

fn inject(context: &Context, meta: &mut Map<String, Value>) {
    TraceContextPropagator::new().inject_context(context, &mut MetaCarrier(meta));
}

/// A method name as a span name: one mcp-mux knows, or `unknown`, so that a
/// client cannot name spans at will; and whether it is a tool call.
fn span_method(method: &str) -> (&'static str, bool) {
    match Method::parse(method) {
        Some(method) => (method.as_str(), method == Method::ToolsCall),
        None => ("unknown", false),
    }
}

/// The `name` of a `tools/call`, cut to a bounded length.
fn tool_name(params: &Value) -> Option<String> {
    let name = params.get("name")?.as_str()?;
    Some(name.chars().take(MAX_TOOL_NAME_CHARS).collect())
}

/// A client's trace context, checked, for the propagator to read.
struct ContextCarrier<'a>(TraceContext<'a>);

impl Extractor for ContextCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.0.traceparent),
            TRACESTATE => self.0.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

struct MetaCarrier<M>(M);

impl Injector for MetaCarrier<&mut Map<String, Value>> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator sets an empty `tracestate` when there is none.
        if !value.is_empty() {
            self.0.insert(key.to_owned(), Value::String(value));
        }
    }
}

struct HeaderPairs(Vec<(&'static str, String)>);

impl Injector for HeaderPairs {
    fn set(&mut self, key: &str, value: String) {
        // Checked again as it leaves: a header that cannot be sent would
        // fail the request before it reaches the backend.
        let key = match key {
            _ if value.is_empty() => return,
            TRACEPARENT if client_values::is_valid_traceparent(&value) => TRACEPARENT,
            TRACESTATE if client_values::is_valid_tracestate(&value) => TRACESTATE,
            _ => return,
        };
        self.0.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&'static str) -> Result<String, std::env::VarError> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
                .ok_or(std::env::VarError::NotPresent)
        }
    }

    #[test]
    fn tracing_is_off_without_an_endpoint() {
        let settings = TraceSettings::from_variables(variables(&[(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/protobuf",
        )]));
        assert_eq!(settings.ok().flatten(), None);
    }

    #[test]
    fn either_endpoint_turns_tracing_on_with_protobuf_by_default() {
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let pairs: &'static [(&'static str, &'static str)] = match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => {
                    &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]
                }
                _ => &[(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4318/v1/traces",
                )],
            };
            let settings = TraceSettings::from_variables(variables(pairs));
            assert_eq!(
                settings.ok().flatten(),
                Some(TraceSettings {
                    endpoint: None,
                    protocol: OtlpProtocol::HttpProtobuf
                })
            );
        }
    }

    #[test]
    fn the_traces_protocol_beats_the_general_one() {
        let settings = TraceSettings::from_variables(variables(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ]));
        assert_eq!(
            settings.ok().flatten().map(|settings| settings.protocol),
            Some(OtlpProtocol::HttpJson)
        );
    }

    #[test]
    fn grpc_is_refused_naming_the_variable() {
        let refused = TraceSettings::from_variables(variables(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert_eq!(
            refused.err().map(|error| error.to_string()).as_deref(),
            Some(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: mcp-mux exports traces over OTLP/HTTP; set it to http/protobuf or http/json"
            )
        );
    }

    #[test]
    fn an_unknown_protocol_is_refused() {
        let refused = TraceSettings::from_variables(variables(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
        ]));
        assert_eq!(
            refused.err().map(|error| error.to_string()).as_deref(),
            Some("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be http/protobuf or http/json")
        );
    }

    #[test]
    fn the_sdk_can_be_disabled() {
        let settings = TraceSettings::from_variables(variables(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]));
        assert_eq!(settings.ok().flatten(), None);
    }

    #[test]
    fn with_tracing_off_a_client_context_is_passed_on_unchanged() {
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
        let header = |name: &str| match name {
            TRACEPARENT => Some(traceparent),
            TRACESTATE => Some("vendor=1"),
            _ => None,
        };
        let facts = RequestFacts {
            method: Method::ToolsCall.as_str(),
            params: None,
            session: || "01234567".to_owned(),
            subject: None,
        };
        let trace = RequestTrace::start(None, header, facts).expect("a client context");
        let _attached = trace.context.clone().attach();
        let exchange =
            ExchangeTrace::start("a", Method::ToolsCall.as_str(), None, 1).expect("an exchange");
        let _inner = exchange.context.clone().attach();
        assert_eq!(
            current_headers(),
            vec![
                (TRACEPARENT, traceparent.to_owned()),
                (TRACESTATE, "vendor=1".to_owned())
            ]
        );
    }

    #[test]
    fn with_tracing_off_malformed_trace_context_is_never_passed_on() {
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
        let passed_on = |parent: &'static str, state: &'static str| {
            let header = move |name: &str| match name {
                TRACEPARENT => Some(parent),
                TRACESTATE => Some(state),
                _ => None,
            };
            let facts = RequestFacts {
                method: Method::ToolsCall.as_str(),
                params: None,
                session: || "01234567".to_owned(),
                subject: None,
            };
            let Some(trace) = RequestTrace::start(None, header, facts) else {
                return Vec::new();
            };
            let _attached = trace.context.clone().attach();
            current_headers()
        };
        assert_eq!(
            passed_on(traceparent, "a=b\nc"),
            vec![(TRACEPARENT, traceparent.to_owned())]
        );
        assert_eq!(
            passed_on(
                "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01\n",
                "a=b"
            ),
            Vec::new()
        );
        assert_eq!(
            passed_on(
                "00-0AF7651916CD43DD8448EB211C80319C-00f067aa0ba902b7-01",
                "a=b"
            ),
            Vec::new()
        );
    }

    #[test]
    fn without_tracing_or_a_client_context_nothing_is_done() {
        let facts = RequestFacts {
            method: Method::ToolsCall.as_str(),
            params: None,
            session: || "01234567".to_owned(),
            subject: None,
        };
        assert!(RequestTrace::start(None, |_| None, facts).is_none());
        assert!(ExchangeTrace::start("a", Method::ToolsCall.as_str(), None, 1).is_none());
        assert!(current_headers().is_empty());
    }
}
