//! The test harness: the gateway on port 0 with its own data directory, real
//! MCP backends built with rmcp, and a raw JSON-RPC client for protocol checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
// Sampling is deprecated at 2026-07-28; backends still use it at 2025-11-25.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequestParams, PromptMessage, Role, SamplingMessage, ServerCapabilities,
    ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, schemars,
    tool, tool_handler, tool_router,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;

use mcp_mux::identity::SignInSettings;
use mcp_mux::mux::{Limits, Mux, Timings};
use mcp_mux::routes::rate_limit::Rates;
use mcp_mux::startup::{Application, Settings, StartupError};
use mcp_mux::traces::TraceSettings;

/// A fixed test key, so that tests can restart on the same database.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A running gateway.
pub struct TestApp {
    pub address: String,
    pub mux: Arc<Mux>,
    pub http: reqwest::Client,
    pub data_dir: Arc<TempDir>,
    /// `http://<address>` of the `--metrics-bind` listener, when asked for.
    pub metrics_address: Option<String>,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How to start a gateway.
pub struct AppOptions {
    pub registry_yaml: String,
    /// A sentence model's directory, for search mode's semantic ranking.
    pub search_model: Option<PathBuf>,
    /// Reuse a data directory (restart tests); a new one otherwise.
    pub data_dir: Option<Arc<TempDir>>,
    pub database_url: Option<String>,
    pub encryption_key: Option<String>,
    /// `MCP_MUX_PREVIOUS_KEYS`.
    pub previous_keys: Option<String>,
    pub timings: Timings,
    /// Where to listen (restart tests reuse an address); any free port otherwise.
    pub bind: Option<String>,
    pub limits: Limits,
    pub admin_token: Option<String>,
    pub allowed_hosts: Vec<String>,
    pub rates: Rates,
    pub public_url: Option<String>,
    pub body_timeout: Duration,
    pub metrics_bind: Option<String>,
    /// Where the gateway exports traces; none by default.
    pub traces: Option<TraceSettings>,
    /// The issuers hosts sign in with; none by default.
    pub sign_in: SignInSettings,
}

impl AppOptions {
    pub fn new(registry_yaml: impl Into<String>) -> Self {
        AppOptions {
            registry_yaml: registry_yaml.into(),
            search_model: None,
            data_dir: None,
            database_url: None,
            encryption_key: Some(TEST_KEY.to_owned()),
            previous_keys: None,
            timings: Timings::default(),
            bind: None,
            limits: Limits::default(),
            admin_token: None,
            allowed_hosts: Vec::new(),
            rates: Rates::default(),
            public_url: None,
            body_timeout: Duration::from_secs(10),
            metrics_bind: None,
            traces: None,
            sign_in: SignInSettings::default(),
        }
    }
}

pub async fn spawn_app(registry_yaml: &str) -> TestApp {
    spawn_app_with(AppOptions::new(registry_yaml))
        .await
        .expect("gateway starts")
}

pub async fn spawn_app_with(options: AppOptions) -> Result<TestApp, StartupError> {
    let data_dir = options
        .data_dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    let registry = data_dir.path().join("registry.yaml");
    std::fs::write(&registry, options.registry_yaml).expect("registry written");
    let settings = Settings {
        bind: options.bind.unwrap_or_else(|| "127.0.0.1:0".into()),
        registry,
        search_model: options.search_model,
        database_url: options.database_url,
        data_dir: data_dir.path().to_owned(),
        encryption_key: options.encryption_key.map(SecretString::from),
        previous_keys: options.previous_keys.map(SecretString::from),
        mcp_session_idle: Duration::from_secs(600),
        workers: Some(1),
        timings: options.timings,
        limits: options.limits,
        admin_token: options.admin_token.map(SecretString::from),
        allow_open_admin: false,
        allowed_hosts: options.allowed_hosts,
        allowed_origins: Vec::new(),
        rates: options.rates,
        public_url: options
            .public_url
            .map(|url| url::Url::parse(&url).expect("a public URL")),
        node_url: None,
        body_timeout: options.body_timeout,
        drain: Duration::from_secs(5),
        access_log: true,
        metrics_bind: options.metrics_bind,
        traces: options.traces,
        sign_in: options.sign_in,
    };
    let application = Application::build(settings).await?;
    let address = format!("http://{}", application.address());
    let metrics_address = application
        .metrics_address()
        .map(|address| format!("http://{address}"));
    let mux = application.mux();
    let handle = application.handle();
    let task = tokio::spawn(application.run_until_stopped());
    Ok(TestApp {
        address,
        mux,
        http: reqwest::Client::new(),
        data_dir,
        metrics_address,
        handle,
        task,
    })
}

impl TestApp {
    /// Stops the gateway and waits until its socket is closed.
    pub async fn stop(self) -> Arc<TempDir> {
        self.mux.begin_shutdown();
        self.handle.stop(true).await;
        let _ = self.task.await;
        self.data_dir
    }

    pub fn database_file(&self) -> PathBuf {
        self.data_dir.path().join("mcp-mux.db")
    }

    pub async fn post_create_session(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/create-session", self.address))
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// Creates a session and returns its id.
    pub async fn create_session(&self, body: Value) -> String {
        let response = self.post_create_session(&body).await;
        assert_eq!(response.status(), 201, "create-session {body}");
        let created: Value = response.json().await.expect("JSON body");
        created["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned()
    }

    /// `GET /session/<id>` of a session that exists, as JSON.
    pub async fn shown_session(&self, session_id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/session/{session_id}", self.address))
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(response.status(), 200, "GET /session/{session_id}");
        response.json().await.expect("JSON body")
    }

    /// `GET <path>` on the gateway, answered with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("gateway answers")
            .json()
            .await
            .expect("JSON body")
    }

    /// `GET <path>` on the gateway, answered with text.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("gateway answers")
            .text()
            .await
            .expect("text body")
    }

    /// Whether the session's audit trail (its newest page) has a record
    /// of `tool` that reached `backend`, once the trail has written it.
    pub async fn audited(&self, session_id: &str, tool: &str, backend: &str) -> bool {
        eventually(|| async {
            let audit = self.get_json(&format!("/session/{session_id}/audit")).await;
            audit["records"].as_array().is_some_and(|records| {
                records
                    .iter()
                    .any(|record| record["tool"] == tool && record["backend"] == backend)
            })
        })
        .await
    }

    pub fn mcp_url(&self, session_id: &str) -> String {
        format!("{}/session/{session_id}/mcp", self.address)
    }

    /// A raw MCP client on a session, already initialized.
    pub async fn mcp(&self, session_id: &str) -> RawMcp {
        let mut mcp = RawMcp::new(self.mcp_url(session_id));
        mcp.initialize("2025-11-25").await;
        mcp
    }
}

/// A JSON-RPC client that shows every status and body, for protocol tests.
pub struct RawMcp {
    pub url: String,
    pub http: reqwest::Client,
    pub session_id: Option<String>,
    next_id: u64,
}

impl RawMcp {
    pub fn new(url: String) -> Self {
        RawMcp {
            url,
            http: reqwest::Client::new(),
            session_id: None,
            next_id: 1,
        }
    }

    /// The same client, sending `Authorization: Bearer <token>` with every request.
    pub fn with_bearer(mut self, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        self.http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        self
    }

    /// Another client in the same MCP session: for requests made while
    /// this one is borrowed (in a closure, or at once).
    pub fn in_same_session(&self) -> RawMcp {
        let mut other = RawMcp::new(self.url.clone());
        other.session_id = self.session_id.clone();
        other
    }

    /// Initializes and returns the result; keeps the MCP session id.
    pub async fn initialize(&mut self, version: &str) -> Value {
        let response = self
            .post(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": { "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } }
            }))
            .await;
        assert_eq!(response.status(), 200);
        self.session_id = Some(
            response.headers()["mcp-session-id"]
                .to_str()
                .expect("ascii")
                .to_owned(),
        );
        let body = read_message(response).await;
        let notified = self
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        assert_eq!(notified.status(), 202);
        body["result"].clone()
    }

    /// POSTs a message with the MCP session's headers.
    pub async fn post(&self, message: &Value) -> reqwest::Response {
        self.posting(message)
            .send()
            .await
            .unwrap_or_else(|error| panic!("gateway answers: {error:?}"))
    }

    /// The POST of a message with the MCP session's headers, unsent: for a
    /// test that adds to it (a header, a timeout).
    pub fn posting(&self, message: &Value) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(message);
        match &self.session_id {
            Some(id) => request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25"),
            None => request,
        }
    }

    /// Opens the MCP session's own stream (GET).
    pub async fn open_stream(&self) -> reqwest::Response {
        self.http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header(
                "mcp-session-id",
                self.session_id.clone().expect("initialized"),
            )
            .send()
            .await
            .expect("gateway answers")
    }

    /// Sends a request and returns the whole JSON-RPC response.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let response = self
            .post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        assert_eq!(response.status(), 200, "{method}");
        let body = read_message(response).await;
        assert_eq!(body["id"], json!(id));
        body
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }

    pub async fn tool_names(&mut self) -> Vec<String> {
        let listed = self.request("tools/list", json!({})).await;
        listed["result"]["tools"]
            .as_array()
            .expect("tools array")
            .iter()
            .map(|tool| tool["name"].as_str().expect("name").to_owned())
            .collect()
    }
}

/// The JSON-RPC message of an answer in JSON, or the last non-empty event of an SSE answer.
pub async fn read_message(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    if let Ok(message) = serde_json::from_str(&text) {
        return message;
    }
    let data = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .unwrap_or_else(|| panic!("neither JSON nor SSE: {text}"));
    serde_json::from_str(data).expect("JSON event data")
}

/// The text of the first content item of a tool result.
pub fn first_text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"))
}

/// A registry listing `servers` as (name, url, auth yaml).
pub fn registry_yaml(servers: &[(&str, &str, &str)]) -> String {
    let mut yaml = String::from("servers:\n");
    for (name, url, extra) in servers {
        yaml.push_str(&format!("  {name}:\n    url: {url}\n"));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            yaml.push_str(&format!("    {}\n", line.trim()));
        }
    }
    yaml
}

// ---------------------------------------------------------------- rmcp backends

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoRequest {
    pub text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AddRequest {
    pub a: i64,
    pub b: i64,
}

#[derive(Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
pub struct GreetingRequest {
    pub name: String,
}

/// A real MCP server whose `echo` tool and `greeting` prompt say which
/// backend answered.
#[derive(Debug, Clone)]
pub struct EchoServer {
    label: &'static str,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

#[tool_router]
impl EchoServer {
    #[tool(description = "Echo the text back, prefixed with the backend's label")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        format!("{}: {text}", self.label)
    }

    #[tool(description = "Add two integers", annotations(read_only_hint = true))]
    fn add(&self, Parameters(AddRequest { a, b }): Parameters<AddRequest>) -> String {
        (a + b).to_string()
    }
}

#[prompt_router]
impl EchoServer {
    #[prompt(name = "greeting", description = "Greet someone, from this backend")]
    async fn greeting(
        &self,
        Parameters(GreetingRequest { name }): Parameters<GreetingRequest>,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!("{} greets {name}", self.label),
        )]
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build(),
        )
        .with_instructions(format!("The {} test backend", self.label))
    }
}

impl EchoServer {
    pub fn new(label: &'static str) -> Self {
        EchoServer {
            label,
            tool_router: EchoServer::tool_router(),
            prompt_router: EchoServer::prompt_router(),
        }
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AskRequest {
    question: String,
}

/// A backend whose tool asks the client's model before it answers.
#[derive(Debug, Clone)]
pub struct AskingServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
#[allow(deprecated)] // sampling is deprecated at 2026-07-28, served at 2025-11-25
impl AskingServer {
    pub fn new() -> Self {
        AskingServer {
            tool_router: AskingServer::tool_router(),
        }
    }

    #[tool(description = "Ask the client's model a question")]
    async fn ask(
        &self,
        Parameters(AskRequest { question }): Parameters<AskRequest>,
        client: Peer<RoleServer>,
    ) -> Result<String, ErrorData> {
        let request =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 50);
        let answer = client
            .create_message(request)
            .await
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        Ok(format!(
            "the model said: {}",
            answer["content"]["text"].as_str().unwrap_or("?")
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AskingServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A running rmcp backend.
pub struct RmcpBackend {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl RmcpBackend {
    /// A backend served by `task` at `url`, stopped when dropped.
    pub fn from_task(url: String, task: tokio::task::JoinHandle<()>) -> Self {
        RmcpBackend { url, task }
    }
}

impl Drop for RmcpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a real MCP server labelled `label` on a free port; when
/// `bearer` is set, requests without `Authorization: Bearer <bearer>` get 401.
pub async fn spawn_rmcp_backend(label: &'static str, bearer: Option<&'static str>) -> RmcpBackend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_rmcp_backend(listener, label, bearer)
}

/// Serves an rmcp backend on an already bound listener.
pub fn serve_rmcp_backend(
    listener: tokio::net::TcpListener,
    label: &'static str,
    bearer: Option<&'static str>,
) -> RmcpBackend {
    serve_rmcp_service(listener, move || EchoServer::new(label), bearer)
}

/// Serves any rmcp server on an already bound listener, at `/mcp`.
pub fn serve_rmcp_service<S>(
    listener: tokio::net::TcpListener,
    make: impl Fn() -> S + Send + Sync + 'static,
    bearer: Option<&'static str>,
) -> RmcpBackend
where
    S: ServerHandler + Send + 'static,
{
    let address = listener.local_addr().expect("address");
    let service: StreamableHttpService<S, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(make()),
        Default::default(),
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
    );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    if let Some(token) = bearer {
        router = router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                let expected = format!("Bearer {token}");
                let authorized = request
                    .headers()
                    .get("authorization")
                    .is_some_and(|value| value.as_bytes() == expected.as_bytes());
                if authorized {
                    next.run(request).await
                } else {
                    axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::UNAUTHORIZED,
                        "missing or wrong bearer token",
                    ))
                }
            },
        ));
    }
    // rmcp writes an SSE answer in several small writes; without
    // TCP_NODELAY each call would wait for a delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    RmcpBackend {
        url: format!("http://{address}/mcp"),
        task,
    }
}

/// A gateway whose registry lists one rmcp server (made by `make`) as
/// `name`, that server, and the id of a session over it.
pub async fn session_over_rmcp<S>(
    name: &str,
    make: impl Fn() -> S + Send + Sync + 'static,
) -> (TestApp, RmcpBackend, String)
where
    S: ServerHandler + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(listener, make, None);
    let app = spawn_app(&registry_yaml(&[(name, &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": [name] })).await;
    (app, backend, session)
}

/// rmcp's own client on a session URL (Streamable HTTP, the 2025-11-25
/// handshake), configured by `config` (an auth header, say).
pub async fn rmcp_client(
    config: rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig,
) -> rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig> {
    use rmcp::ServiceExt;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
    rmcp::model::ClientConfig::default()
        .serve(transport)
        .await
        .expect("rmcp client connects")
}

/// Calls an `echo` tool through an rmcp client; returns the text it answered.
pub async fn rmcp_echo(
    client: &rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
    tool: &str,
    text: &str,
) -> String {
    let arguments = json!({ "text": text })
        .as_object()
        .cloned()
        .expect("object");
    let result = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
        )
        .await
        .expect("tools/call");
    let result = serde_json::to_value(&result).expect("serializable");
    result["content"][0]["text"]
        .as_str()
        .expect("a text answer")
        .to_owned()
}

/// Waits, at most 10 s, until `check` holds: for what the gateway does in
/// the background, such as closing backend sessions.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Reserves a loopback port that nothing listens on yet.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Bytes of every file of the SQLite database (main file, WAL and journal).
pub fn database_bytes(database_file: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = PathBuf::from(format!("{}{suffix}", database_file.display()));
        if let Ok(content) = std::fs::read(path) {
            bytes.extend(content);
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

// ------------------------------------------------------------ wiremock backends

/// Answers a JSON-RPC request with `result` (or `error`), echoing its id, as
/// JSON or as SSE with an empty priming event first.
pub struct JsonRpcAnswer {
    pub body: Value,
    pub sse: bool,
    pub session_id: Option<&'static str>,
    pub delay: Option<Duration>,
}

impl JsonRpcAnswer {
    pub fn result(result: Value) -> Self {
        JsonRpcAnswer {
            body: json!({ "result": result }),
            sse: false,
            session_id: None,
            delay: None,
        }
    }

    pub fn error(error: Value) -> Self {
        JsonRpcAnswer {
            body: json!({ "error": error }),
            sse: false,
            session_id: None,
            delay: None,
        }
    }

    pub fn in_sse(mut self) -> Self {
        self.sse = true;
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn with_session(mut self, id: &'static str) -> Self {
        self.session_id = Some(id);
        self
    }
}

impl wiremock::Respond for JsonRpcAnswer {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let incoming: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut message = json!({ "jsonrpc": "2.0", "id": incoming["id"] });
        if let (Some(message), Some(extra)) = (message.as_object_mut(), self.body.as_object()) {
            message.extend(extra.clone());
        }
        let mut template = wiremock::ResponseTemplate::new(200);
        if let Some(delay) = self.delay {
            template = template.set_delay(delay);
        }
        if let Some(id) = self.session_id {
            template = template.insert_header("mcp-session-id", id);
        }
        if self.sse {
            let stream =
                format!("id: prime-1\ndata:\n\nevent: message\nid: ev-2\ndata: {message}\n\n");
            template.set_body_raw(stream, "text/event-stream")
        } else {
            template.set_body_json(message)
        }
    }
}

/// A wiremock MCP backend that initializes (session `s1`), accepts
/// notifications and lists `tools`; tests mount `tools/call` behaviour.
pub async fn mock_backend(tools: Value, sse: bool) -> wiremock::MockServer {
    use wiremock::matchers::{body_partial_json, method};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    let mut initialize = JsonRpcAnswer::result(json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "tools": {} },
        "serverInfo": { "name": "mock", "version": "1" }
    }))
    .with_session("s1");
    let mut listed = JsonRpcAnswer::result(json!({ "tools": tools }));
    if sse {
        initialize = initialize.in_sse();
        listed = listed.in_sse();
    }
    mock_handshake(&server, initialize).await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "tools/list" })))
        .respond_with(listed)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The MCP endpoint of a mock backend.
pub fn mock_url(server: &wiremock::MockServer) -> String {
    format!("{}/mcp", server.uri())
}

/// A gateway whose registry lists one mock backend as `name`, a session
/// over it, and a raw client with an MCP session open on it.
pub async fn session_over_mock(name: &str, server: &wiremock::MockServer) -> (TestApp, RawMcp) {
    let app = spawn_app(&registry_yaml(&[(name, &mock_url(server), "")])).await;
    let session = app.create_session(json!({ "servers": [name] })).await;
    let mcp = app.mcp(&session).await;
    (app, mcp)
}

/// Mounts the opening of an MCP session on a mock backend: `initialize`
/// answered with `initialize`, and `notifications/initialized` accepted.
pub async fn mock_handshake(server: &wiremock::MockServer, initialize: JsonRpcAnswer) {
    use wiremock::matchers::{body_partial_json, method};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "method": "initialize" })))
        .respond_with(initialize)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "method": "notifications/initialized" }),
        ))
        .respond_with(ResponseTemplate::new(202))
        .mount(server)
        .await;
}

/// How many requests a mock backend received that `matches` accepts.
pub async fn count_requests(
    server: &wiremock::MockServer,
    matches: impl Fn(&wiremock::Request) -> bool,
) -> usize {
    let received = server.received_requests().await.unwrap_or_default();
    received.iter().filter(|request| matches(request)).count()
}

/// How many requests a mock backend received for a JSON-RPC method.
pub async fn requests_for(server: &wiremock::MockServer, rpc_method: &str) -> usize {
    count_requests(server, |request| {
        serde_json::from_slice::<Value>(&request.body)
            .is_ok_and(|body| body["method"] == rpc_method)
    })
    .await
}

// ------------------------------------------------------------ raw HTTP

/// An HTTP answer read off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

/// Sends `request` byte for byte (no client tidies its path or headers)
/// to the gateway at `address` and reads one answer; the request should
/// carry `Connection: close`.
pub async fn raw_http(address: &str, request: &[u8]) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream.write_all(request).await.expect("request sent");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .expect("the gateway answers and closes")
        .expect("read");
    parse_answer(&bytes)
}

/// A request line and headers (each line without its CRLF), then the body.
pub fn http_request(lines: &[&str], body: &str) -> Vec<u8> {
    let mut request = lines.join("\r\n");
    request.push_str("\r\n\r\n");
    request.push_str(body);
    request.into_bytes()
}

fn parse_answer(bytes: &[u8]) -> RawAnswer {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    RawAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

// ------------------------------------------------------- a sticky backend

/// A backend that holds on: its own stream (GET) never ends by itself, and
/// it ignores DELETE, so only mcp-mux can close what it opened. It counts
/// its open streams. Tools: `echo` (`text`), and `wait` (`ms`), which takes
/// that long.
pub struct StickyBackend {
    pub url: String,
    pub open_streams: Arc<std::sync::atomic::AtomicUsize>,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StickyBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StickyBackend {
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Decrements a counter when the stream holding it is dropped.
struct StreamGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub async fn spawn_sticky_backend() -> StickyBackend {
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let open_streams = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let post = move |body: axum::body::Bytes| {
        let calls = counted.clone();
        async move {
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let result = match message["method"].as_str() {
                Some("initialize") => json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": { "tools": {} },
                    "serverInfo": { "name": "sticky", "version": "1" },
                }),
                Some("tools/list") => json!({ "tools": [
                    { "name": "echo", "inputSchema": { "type": "object" } },
                    { "name": "wait", "inputSchema": { "type": "object" } },
                ] }),
                Some("tools/call") => {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let arguments = &message["params"]["arguments"];
                    if message["params"]["name"] == "wait" {
                        let ms = arguments["ms"].as_u64().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    json!({ "content": [{ "type": "text", "text": arguments["text"].as_str().unwrap_or("done") }] })
                }
                _ => return StatusCode::ACCEPTED.into_response(),
            };
            let answer = json!({ "jsonrpc": "2.0", "id": message["id"], "result": result });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header("mcp-session-id", "sticky-session")
                .body(axum::body::Body::from(answer.to_string()))
                .unwrap_or_default()
        }
    };
    let streams = open_streams.clone();
    let get = move || {
        let streams = streams.clone();
        async move {
            streams.fetch_add(1, Ordering::SeqCst);
            let guard = StreamGuard(streams);
            // A comment now and then: writing is how a server notices that
            // the client has gone.
            let events = futures_util::stream::unfold(guard, |guard| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(b":\n\n")),
                    guard,
                ))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(axum::body::Body::from_stream(events))
                .unwrap_or_default()
        }
    };
    let router = axum::Router::new().route(
        "/mcp",
        axum::routing::post(post)
            .get(get)
            // Ignored: the session and its stream stay.
            .delete(|| async { StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    StickyBackend {
        url,
        open_streams,
        calls,
        task,
    }
}
