//! What mcp-mux adds to a tool call: the same `echo` tool on one rmcp backend,
//! called directly and through a gateway session, over plain HTTP with raw
//! JSON-RPC (the client does the same work on both paths, so the difference is
//! the gateway).
//!
//! Run with `cargo bench --bench overhead`. It prints numbers and never
//! asserts them. `BENCH_CALLS` (default 2000) sets the calls per run and
//! `BENCH_CONCURRENCY` (default 16) the concurrent clients.
//!
//! Everything runs in this one process and on the same cores: the client and
//! the backend on a tokio runtime, the gateway on its own actix workers. The
//! numbers include that contention, as a gateway next to its backends would.

use std::error::Error;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use mcp_mux::startup::{Application, Settings};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use secrecy::SecretString;
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A fixed key: the bench needs one, not a secret (base64 of bytes 0..32).
const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PROTOCOL_VERSION: &str = "2025-11-25";
/// The gateway's HTTP workers: fixed so runs on different machines compare.
const GATEWAY_WORKERS: usize = 2;

// ------------------------------------------------------------------ backend
// The echo server of tests/api/helpers.rs (a bench cannot import from tests/).

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoRequest {
    text: String,
}

#[derive(Debug, Clone)]
struct EchoServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl EchoServer {
    #[tool(description = "Echo the text back")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Serves the echo backend on a free loopback port; returns its MCP URL.
async fn spawn_backend() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    // axum leaves Nagle on, and rmcp writes an SSE answer in several small
    // writes: every call would then wait ~40 ms for a delayed ACK, hiding
    // everything else. Real backends (Node, asyncio) set TCP_NODELAY.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service: StreamableHttpService<EchoServer, LocalSessionManager> =
        StreamableHttpService::new(
            || {
                Ok(EchoServer {
                    tool_router: EchoServer::tool_router(),
                })
            },
            Default::default(),
            StreamableHttpServerConfig::default().with_sse_keep_alive(None),
        );
    let router = axum::Router::new().nest_service("/mcp", service);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}/mcp"))
}

// ------------------------------------------------------------------ gateway

/// A gateway in this process; its data directory lives as long as it does.
struct Gateway {
    address: String,
    handle: actix_web::dev::ServerHandle,
    _data_dir: tempfile::TempDir,
}

async fn spawn_gateway(backend_url: &str) -> Result<Gateway> {
    let data_dir = tempfile::tempdir()?;
    let registry = data_dir.path().join("registry.yaml");
    std::fs::write(
        &registry,
        format!("servers:\n  echo:\n    url: {backend_url}\n    auth: {{ type: none }}\n"),
    )?;
    let application = Application::build(Settings {
        bind: "127.0.0.1:0".into(),
        encryption_key: Some(SecretString::from(ENCRYPTION_KEY)),
        workers: Some(GATEWAY_WORKERS),
        ..Settings::new(registry, data_dir.path().to_owned())
    })
    .await?;
    let address = format!("http://{}", application.address());
    let handle = application.handle();
    tokio::spawn(application.run_until_stopped());
    Ok(Gateway {
        address,
        handle,
        _data_dir: data_dir,
    })
}

/// Creates a session over the echo backend; returns its MCP URL.
async fn create_session(gateway: &Gateway) -> Result<String> {
    let response = reqwest::Client::new()
        .post(format!("{}/create-session", gateway.address))
        .json(&json!({ "servers": ["echo"], "credentials": {} }))
        .send()
        .await?;
    if response.status() != 201 {
        return Err(format!("create-session answered {}", response.status()).into());
    }
    let created: Value = response.json().await?;
    let url = created["mcp_url"].as_str().ok_or("no mcp_url")?;
    Ok(url.to_owned())
}

// ------------------------------------------------------------------- client

/// A minimal Streamable HTTP client: one MCP session, raw JSON-RPC, and
/// nothing the two paths would not both need, so it costs them the same.
struct McpClient {
    http: reqwest::Client,
    url: String,
    session_id: String,
    next_id: u64,
}

impl McpClient {
    /// Opens an MCP session (`initialize`, then `notifications/initialized`).
    async fn connect(url: &str) -> Result<Self> {
        // One HTTP client per MCP client: each keeps its own connection, as
        // separate MCP clients would.
        let http = reqwest::Client::new();
        let response = post(&http, url, None, &initialize_message()).await?;
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .ok_or("initialize answered without Mcp-Session-Id")?
            .to_str()?
            .to_owned();
        read_message(response).await?;
        let client = McpClient {
            http,
            url: url.to_owned(),
            session_id,
            next_id: 1,
        };
        let notified = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let response = post(&client.http, url, Some(&client.session_id), &notified).await?;
        if response.status() != 202 {
            return Err(format!("notifications/initialized answered {}", response.status()).into());
        }
        Ok(client)
    }

    /// One request; returns its result and how long the exchange took,
    /// from sending to the whole body read.
    async fn request(&mut self, method: &str, params: Value) -> Result<(Value, Duration)> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let started = Instant::now();
        let response = post(&self.http, &self.url, Some(&self.session_id), &message).await?;
        let mut answer = read_message(response).await?;
        let elapsed = started.elapsed();
        if answer["id"] != json!(id) || answer.get("result").is_none() {
            return Err(format!("{method} failed: {answer}").into());
        }
        Ok((answer["result"].take(), elapsed))
    }

    async fn call_echo(&mut self, tool: &str, text: &str) -> Result<Duration> {
        let params = json!({ "name": tool, "arguments": { "text": text } });
        let (result, elapsed) = self.request("tools/call", params).await?;
        // Checked on every call: a fast wrong answer must not count.
        if result["content"][0]["text"] != text {
            return Err(format!("echo answered {result}").into());
        }
        Ok(elapsed)
    }
}

fn initialize_message() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "overhead-bench", "version": "1" },
        }
    })
}

/// POSTs one message with the MCP session's headers; a non-2xx is an error.
async fn post(
    http: &reqwest::Client,
    url: &str,
    session_id: Option<&str>,
    message: &Value,
) -> Result<reqwest::Response> {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(message);
    if let Some(id) = session_id {
        request = request
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", PROTOCOL_VERSION);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()).into());
    }
    Ok(response)
}

/// The JSON-RPC message of a JSON answer, or the last non-empty event of an
/// SSE answer (rmcp answers in SSE, mcp-mux in JSON; rmcp may send an empty
/// "priming" event first).
async fn read_message(response: reqwest::Response) -> Result<Value> {
    let text = response.text().await?;
    if let Ok(message) = serde_json::from_str(&text) {
        return Ok(message);
    }
    let data = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .ok_or_else(|| format!("neither JSON nor SSE: {text}"))?;
    Ok(serde_json::from_str(data)?)
}

// --------------------------------------------------------------- measuring

/// Latencies of one run, sorted, and the run's wall time.
struct Sample {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Sample {
    fn new(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        latencies.sort_unstable();
        Sample { latencies, wall }
    }

    /// Nearest-rank percentile, in microseconds.
    fn percentile(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        micros(self.latencies[rank.clamp(1, n) - 1])
    }

    fn max(&self) -> f64 {
        self.latencies.last().copied().map_or(0.0, micros)
    }

    fn calls_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// `calls` sequential tools/call on one client, after `warmup` untimed ones
/// (connections opened, caches and the gateway's tool table filled).
async fn sequential_calls(
    client: &mut McpClient,
    tool: &str,
    warmup: usize,
    calls: usize,
) -> Result<Sample> {
    for _ in 0..warmup {
        client.call_echo(tool, "warm").await?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for i in 0..calls {
        latencies.push(client.call_echo(tool, &format!("call {i}")).await?);
    }
    Ok(Sample::new(latencies, started.elapsed()))
}

/// `calls` tools/call spread over `clients` concurrent clients, each its own
/// MCP session (so, through the gateway, its own backend session too).
async fn concurrent_calls(
    url: &str,
    tool: &'static str,
    clients: usize,
    warmup: usize,
    calls: usize,
) -> Result<Sample> {
    let mut ready = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = McpClient::connect(url).await?;
        for _ in 0..warmup {
            client.call_echo(tool, "warm").await?;
        }
        ready.push(client);
    }
    // Every client is connected and warm before the clock starts.
    let started = Instant::now();
    let tasks: Vec<_> = ready
        .into_iter()
        .enumerate()
        .map(|(index, mut client)| {
            let share = calls / clients + usize::from(index < calls % clients);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(share);
                for i in 0..share {
                    latencies.push(client.call_echo(tool, &format!("c{index} {i}")).await?);
                }
                Ok::<_, BoxError>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Sample::new(latencies, started.elapsed()))
}

// -------------------------------------------------------------------- report

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(value) => match value.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name} must be a positive integer, got {value:?}").into()),
        },
        Err(_) => Ok(default),
    }
}

fn print_latency_row(label: &str, sample: &Sample) {
    println!(
        "  {label:<12} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.0}",
        sample.percentile(50.0),
        sample.percentile(90.0),
        sample.percentile(99.0),
        sample.max(),
        sample.calls_per_sec(),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let calls = env_usize("BENCH_CALLS", 2000)?;
    let concurrency = env_usize("BENCH_CONCURRENCY", 16)?;
    let warmup = (calls / 10).clamp(10, 200);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    // Cargo does not tell a target its profile's name; debug assertions are
    // the observable difference between `cargo bench` and a debug build.
    let profile = if cfg!(debug_assertions) {
        "unoptimized (debug assertions on): numbers are not meaningful"
    } else {
        "optimized (bench/release)"
    };
    println!(
        "mcp-mux overhead: {cores} cores, {profile}, gateway workers {GATEWAY_WORKERS}, \
         {calls} calls, {concurrency} concurrent clients, {warmup} warm-up calls"
    );

    let backend_url = spawn_backend().await?;
    let gateway = spawn_gateway(&backend_url).await?;
    let session_url = create_session(&gateway).await?;

    // One initialize each way, measured cold: through the gateway it also
    // opens the backend session (initialize + notifications/initialized).
    let started = Instant::now();
    McpClient::connect(&backend_url).await?;
    let direct_initialize = started.elapsed();
    let started = Instant::now();
    McpClient::connect(&session_url).await?;
    let gateway_initialize = started.elapsed();

    // Sequential latency: the same client code, the same tool.
    let mut direct = McpClient::connect(&backend_url).await?;
    let direct_seq = sequential_calls(&mut direct, "echo", warmup, calls).await?;
    let mut via_mux = McpClient::connect(&session_url).await?;
    let mux_seq = sequential_calls(&mut via_mux, "echo__echo", warmup, calls).await?;

    println!("\ntools/call, sequential, one client (µs)");
    println!(
        "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "", "p50", "p90", "p99", "max", "calls/s"
    );
    print_latency_row("direct", &direct_seq);
    print_latency_row("via mcp-mux", &mux_seq);
    println!(
        "  overhead     p50 {:+.0} µs, p99 {:+.0} µs",
        mux_seq.percentile(50.0) - direct_seq.percentile(50.0),
        mux_seq.percentile(99.0) - direct_seq.percentile(99.0),
    );

    // Throughput under concurrency: each client its own MCP session.
    let per_client_warmup = (warmup / concurrency).max(2);
    let direct_conc =
        concurrent_calls(&backend_url, "echo", concurrency, per_client_warmup, calls).await?;
    let mux_conc = concurrent_calls(
        &session_url,
        "echo__echo",
        concurrency,
        per_client_warmup,
        calls,
    )
    .await?;
    println!("\ntools/call, {concurrency} concurrent clients, {calls} calls in all (µs)");
    println!(
        "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "", "p50", "p90", "p99", "max", "calls/s"
    );
    print_latency_row("direct", &direct_conc);
    print_latency_row("via mcp-mux", &mux_conc);
    println!(
        "  throughput via mcp-mux: {:.0}% of direct",
        100.0 * mux_conc.calls_per_sec() / direct_conc.calls_per_sec()
    );

    // tools/list through the gateway lists the backend every time (the
    // routing table is rebuilt on each call), so it costs two hops.
    for _ in 0..warmup {
        via_mux.request("tools/list", json!({})).await?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        latencies.push(via_mux.request("tools/list", json!({})).await?.1);
    }
    let list = Sample::new(latencies, started.elapsed());
    println!("\nother requests via mcp-mux (µs)");
    println!(
        "  tools/list   p50 {:.0}, p99 {:.0} ({calls} calls)",
        list.percentile(50.0),
        list.percentile(99.0)
    );
    println!(
        "  initialize   {:.0} once, incl. notifications/initialized (direct: {:.0})",
        micros(gateway_initialize),
        micros(direct_initialize)
    );

    gateway.handle.stop(true).await;
    Ok(())
}
