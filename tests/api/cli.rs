//! The `mcp-mux` binary as an operator starts it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

#[tokio::test]
async fn log_format_json_writes_one_json_object_a_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("registry.yaml");
    std::fs::write(
        &registry,
        registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]),
    )
    .expect("registry written");
    let mut gateway = mcp_mux()
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
        .arg("--registry")
        .arg(&registry)
        .arg("--data-dir")
        .arg(dir.path())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mcp-mux runs");
    let mut lines = BufReader::new(gateway.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stderr reads") {
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not one JSON object: {line}"));
            let listening = event["message"] == "mcp-mux listening";
            seen.push(event);
            if listening {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(listening, Ok(true), "{seen:?}");
    let last = seen.last().expect("a line");
    assert_eq!(last["level"], "INFO");
    assert!(
        last["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{last}"
    );
    assert!(last["timestamp"].is_string(), "{last}");
}

/// `mcp-mux registry check` over `registry`, with `extra` arguments: its
/// exit code, stdout and stderr.
async fn registry_check(registry: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    registry_check_in(&dir, registry, extra).await
}

async fn registry_check_in(
    dir: &tempfile::TempDir,
    registry: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let path = dir.path().join("registry.yaml");
    std::fs::write(&path, registry).expect("registry written");
    finished(
        mcp_mux()
            .args(["registry", "check", "--registry"])
            .arg(&path)
            .args(extra),
    )
    .await
}

/// The binary, with an empty environment.
fn mcp_mux() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-mux"));
    command.env_clear();
    command
}

/// A gateway run as its binary over `registry`, with `extra` arguments,
/// answering `/readyz`.
struct Served {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    base: String,
    registry: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn serve(registry: &str, extra: &[&str], stderr: Stdio) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.yaml");
    std::fs::write(&path, registry).expect("registry written");
    let port = unused_port();
    let child = mcp_mux()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(extra)
        .arg("--registry")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("mcp-mux runs");
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(|| async {
        reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
    assert!(up, "mcp-mux answers");
    Served {
        child,
        base,
        registry: path,
        _dir: dir,
    }
}

/// Sends `signal` (TERM, HUP) to the gateway through kill(1), as an
/// orchestrator would: the tests keep to safe Rust.
fn send_signal(gateway: &tokio::process::Child, signal: &str) -> bool {
    let pid = gateway.id().expect("a pid").to_string();
    std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .is_ok_and(|status| status.success())
}

/// A command's exit code, stdout and stderr once it ends.
async fn finished(command: &mut tokio::process::Command) -> (Option<i32>, String, String) {
    let output = command.output().await.expect("mcp-mux runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn registry_check_opens_each_backend_and_exits_1_when_one_does_not_answer() {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let backend = spawn_rmcp_backend("alpha", None).await;
    let tools = rmcp_client(StreamableHttpClientTransportConfig::with_uri(
        backend.url.clone(),
    ))
    .await
    .list_all_tools()
    .await
    .expect("tools")
    .len();
    let registry = registry_yaml(&[
        ("alpha", &backend.url, ""),
        ("gone", "http://127.0.0.1:9/mcp", ""),
    ]);
    let (code, stdout, stderr) = registry_check(&registry, &["--json"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let checks: Value = serde_json::from_str(&stdout).expect("JSON");
    let alpha = &checks[0];
    assert_eq!(alpha["server"], "alpha");
    assert_eq!(alpha["transport"], "streamable_http");
    assert_eq!(alpha["reachable"], true);
    assert_eq!(alpha["tools"], tools);
    assert!(alpha["revision"].is_string(), "{alpha}");
    assert_eq!(alpha["problem"], Value::Null);
    let gone = &checks[1];
    assert_eq!(gone["server"], "gone");
    assert_eq!(gone["reachable"], false);
    assert_eq!(
        gone["problem"],
        "backend \"gone\" is unreachable: connection refused or failed"
    );

    let (code, stdout, _) =
        registry_check(&registry_yaml(&[("alpha", &backend.url, "")]), &[]).await;
    assert_eq!(code, Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("server  transport        reachable"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("alpha   streamable_http  yes"),
        "{stdout}"
    );
}

#[tokio::test]
async fn registry_check_of_an_invalid_registry_is_one_line_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) =
        registry_check_in(&dir, "servers:\n  Bad_Name:\n    url: http://a/mcp\n", &[]).await;
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "mcp-mux: registry {}: servers.Bad_Name: server names are 1 to 32 characters \
             from a-z 0-9 - and start with a letter or digit\n",
            dir.path().join("registry.yaml").display()
        )
    );
}

/// `mcp-mux sessions …` against `app`, with its admin token `token`.
async fn sessions(app: &TestApp, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    finished(
        mcp_mux()
            .args(["sessions", "--url", &app.address])
            .args(args)
            .env("MCP_MUX_ADMIN_TOKEN", token),
    )
    .await
}

/// The admin token of the gateways the `sessions` commands talk to.
const TOKEN: &str = "admin-token-0123456789";

/// A gateway over `registry` that requires [`TOKEN`].
async fn gateway_with_admin_token(registry: String) -> TestApp {
    let mut options = AppOptions::new(registry);
    options.admin_token = Some(TOKEN.into());
    spawn_app_with(options).await.expect("starts")
}

#[tokio::test]
async fn sessions_commands_create_list_show_and_delete_through_the_api() {
    let app = gateway_with_admin_token(registry_yaml(&[(
        "alpha",
        "http://127.0.0.1:9/mcp",
        "auth: { type: bearer }",
    )]))
    .await;

    let (code, stdout, stderr) = sessions(
        &app,
        TOKEN,
        &[
            "create",
            "--server",
            "alpha",
            "--credential",
            "alpha.token=s3cret",
            "--require-token",
            "--name",
            "nightly",
            "--label",
            "team=platform",
            "--label",
            "env=ci",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let id = stdout
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("session "))
        .expect("the session first")
        .to_owned();
    assert!(
        stdout.contains(&format!("MCP URL: {}/session/{id}/mcp", app.address)),
        "{stdout}"
    );
    assert!(
        stdout.contains("session token (shown this once): mmx_"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Claude Code:\nclaude mcp add --transport http"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "the credential is never shown");

    let (code, stdout, _) = sessions(&app, TOKEN, &["list"]).await;
    assert_eq!(code, Some(0));
    let row = stdout
        .lines()
        .find(|line| line.starts_with(&id))
        .expect("listed");
    assert!(row.contains("  yes  ") && row.ends_with("alpha"), "{row}");
    assert!(row.contains("  nightly  env=ci,team=platform  "), "{row}");
    let (code, stdout, _) = sessions(
        &app,
        TOKEN,
        &["list", "--label", "team=platform", "--name", "NIGHT"],
    )
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let (code, stdout, _) = sessions(&app, TOKEN, &["list", "--label", "team=web"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
    let (code, _, stderr) = sessions(&app, TOKEN, &["list", "--label", "team"]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("invalid value 'team' for '--label <LABELS>': \"team\" is not key=value"),
        "{stderr}"
    );
    let (code, _, stderr) = sessions(&app, TOKEN, &["list", "--label", "te am=x"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "mcp-mux: the gateway answered 400: label: \"te am=x\" is no label key: use 1 to 63 letters, digits and . _ - /, starting with a letter or digit\n"
    );

    let (code, stdout, _) = sessions(&app, TOKEN, &["show", &id]).await;
    assert_eq!(code, Some(0));
    let shown: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown["session_id"], id.as_str());

    let (code, stdout, _) = sessions(&app, TOKEN, &["delete", &id]).await;
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), format!("deleted {id}").as_str())
    );
    let (code, stdout, stderr) = sessions(&app, TOKEN, &["show", &id]).await;
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("mcp-mux: the gateway answered 404: no session \"{id}\"\n")
    );

    let (code, _, stderr) = sessions(&app, "wrong-token-0123456789", &["list"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "mcp-mux: the gateway answered 401: the admin token is wrong\n"
    );
}

#[tokio::test]
async fn a_sessions_command_with_no_gateway_there_says_so_in_one_line() {
    let (code, _, stderr) =
        finished(mcp_mux().args(["sessions", "--url", "http://127.0.0.1:9", "list"])).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mcp-mux: cannot reach the gateway at http://127.0.0.1:9: "),
        "{stderr}"
    );
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-mux"))
        .args([
            "sessions",
            "create",
            "--server",
            "a",
            "--credential",
            "a.token",
        ])
        .env_clear()
        .output()
        .await
        .expect("mcp-mux runs");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).lines().next(),
        Some(
            "error: invalid value 'a.token' for '--credential <CREDENTIALS>': expected server.field=value"
        )
    );
}

#[tokio::test]
async fn registry_check_counts_a_backend_that_wants_a_credential_as_reachable() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let guarded = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&guarded)
        .await;
    let registry = registry_yaml(&[("guarded", &mock_url(&guarded), "auth: { type: bearer }")]);
    let (code, stdout, stderr) = registry_check(&registry, &["--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let checks: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(checks[0]["reachable"], true);
    assert_eq!(checks[0]["tools"], Value::Null);
    assert_eq!(
        checks[0]["problem"],
        "answered HTTP 401 without a credential; sessions bring theirs"
    );
}

#[tokio::test]
async fn a_sessions_command_whose_url_answers_something_else_says_so() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let not_a_gateway = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>hello</html>"))
        .mount(&not_a_gateway)
        .await;
    let (code, stdout, stderr) =
        finished(mcp_mux().args(["sessions", "--url", &not_a_gateway.uri(), "list"])).await;
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        "mcp-mux: the gateway answered 200 with a body that is not JSON\n"
    );
}

#[tokio::test]
async fn a_metrics_address_that_cannot_be_bound_stops_the_gateway_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let mut options = AppOptions::new(registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]));
    options.metrics_bind = Some(address.clone());
    let Err(error) = spawn_app_with(options).await else {
        panic!("the gateway started on a taken metrics address");
    };
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot listen on {address}: ")),
        "{error}"
    );
}

#[tokio::test]
async fn otlp_over_grpc_is_refused_at_start_naming_the_variable() {
    for variable in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ] {
        let (code, _, stderr) = finished(
            mcp_mux()
                .args(["serve", "--bind", "127.0.0.1:0"])
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
                .env(variable, "grpc"),
        )
        .await;
        assert_eq!(code, Some(1));
        assert_eq!(
            stderr,
            format!(
                "mcp-mux: {variable}=grpc is not supported: mcp-mux exports traces over OTLP/HTTP; set it to http/protobuf or http/json\n"
            )
        );
    }
}

#[tokio::test]
async fn an_unknown_otlp_protocol_is_refused_at_start() {
    let (code, _, stderr) = finished(
        mcp_mux()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces",
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "mcp-mux: OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json\n"
    );
}

#[tokio::test]
async fn a_session_id_that_is_not_a_uuid_is_refused_before_any_request() {
    let app = spawn_app(&registry_yaml(&[(
        "alpha",
        "http://127.0.0.1:9/mcp",
        "auth: { type: none }",
    )]))
    .await;
    let id = app.create_session(json!({"servers": ["alpha"]})).await;
    let other = app.create_session(json!({"servers": ["alpha"]})).await;

    for (command, given) in [
        ("delete", format!("{other}/../{id}")),
        ("delete", format!("x/../{id}")),
        ("show", "../registry".to_owned()),
        ("show", format!("{id}/mcp")),
        ("show", format!("{id}?x=1")),
    ] {
        let (code, stdout, stderr) = sessions(&app, "", &[command, &given]).await;
        assert_eq!((code, stdout.as_str()), (Some(2), ""), "{command} {given}");
        assert_eq!(
            stderr,
            format!(
                "error: invalid value '{given}' for '<ID>': a session id is a UUID, \
                 such as 0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21\n\n\
                 For more information, try '--help'.\n"
            ),
            "{command} {given}"
        );
    }
    // Both sessions are still there.
    app.shown_session(&id).await;
    app.shown_session(&other).await;
}

#[tokio::test]
async fn a_sessions_command_whose_reader_has_gone_ends_quietly() {
    let app = spawn_app(&registry_yaml(&[(
        "alpha",
        "http://127.0.0.1:9/mcp",
        "auth: { type: none }",
    )]))
    .await;
    let id = app.create_session(json!({"servers": ["alpha"]})).await;
    for args in [vec!["show", id.as_str()], vec!["list"]] {
        let mut child = mcp_mux()
            .args(["sessions", "--url", &app.address])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mcp-mux runs");
        // The reader goes before the answer is written (`… | head -0`).
        drop(child.stdout.take());
        let output = child.wait_with_output().await.expect("mcp-mux ends");
        assert_eq!(
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).as_ref()
            ),
            (Some(0), ""),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn after_sigterm_readyz_fails_at_once_while_the_gateway_serves_until_the_drain_ends() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(listener, crate::timeouts::SlowServer::new, None);
    let Served {
        child: mut gateway,
        base,
        ..
    } = serve(
        &registry_yaml(&[("slow", &backend.url, "")]),
        &["--drain-seconds", "3"],
        Stdio::null(),
    )
    .await;
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            match http.get(format!("{base}{path}")).send().await {
                Ok(response) => Some((response.status().as_u16(), response.text().await.ok()?)),
                Err(_) => None,
            }
        }
    };
    let created: Value = http
        .post(format!("{base}/create-session"))
        .json(&json!({ "servers": ["slow"] }))
        .send()
        .await
        .expect("created")
        .json()
        .await
        .expect("JSON");
    let mut mcp = RawMcp::new(format!(
        "{base}{}",
        created["mcp_endpoint"].as_str().expect("endpoint")
    ));
    mcp.initialize("2025-11-25").await;
    // A call of four seconds, in flight when the signal comes and when the
    // three-second drain ends.
    let mut caller = mcp.in_same_session();
    let in_flight =
        tokio::spawn(async move { crate::timeouts::work(&mut caller, 4, 1000, false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(send_signal(&gateway, "TERM"), "SIGTERM sent");
    // As soon as the signal is handled.
    assert!(
        eventually(|| async { status("/readyz").await.is_some_and(|(code, _)| code == 503) }).await
    );
    let (_, body) = status("/readyz").await.expect("still answering");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["message"],
        "mcp-mux is draining before it stops: it serves requests, but takes no new clients"
    );
    // Liveness holds, and new requests are still served while it drains.
    assert_eq!(status("/healthz").await.map(|(code, _)| code), Some(200));
    assert_eq!(
        first_text(&crate::timeouts::work(&mut mcp, 1, 1, false).await),
        "1 steps done"
    );
    let done = in_flight.await.expect("the call ends");
    assert_eq!(first_text(&done), "4 steps done", "{done}");

    let exited = tokio::time::timeout(Duration::from_secs(30), gateway.wait())
        .await
        .expect("mcp-mux stops after the drain")
        .expect("exit status");
    assert!(exited.success(), "{exited:?}");
    assert_eq!(status("/healthz").await, None, "no longer listening");
}

/// A gateway writing JSON logs with `extra` arguments, over a backend that
/// never answers, and its log lines as they come.
async fn json_logging_gateway(
    extra: &[&str],
) -> (
    Served,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut args = vec!["--log-format", "json"];
    args.extend_from_slice(extra);
    let registry = registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]);
    let mut served = serve(&registry, &args, Stdio::piped()).await;
    let stderr = served.child.stderr.take().expect("stderr");
    (served, BufReader::new(stderr).lines())
}

/// The next log line `wanted` accepts, within 10 s.
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.expect("stderr reads") {
            let event: Value = serde_json::from_str(&line).expect("one JSON object a line");
            if wanted(&event) {
                return Some(event);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn each_request_gets_an_access_line_and_lines_of_a_traced_request_carry_its_ids() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";
    let (served, mut lines) = json_logging_gateway(&[]).await;
    let base = served.base.clone();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/create-session"))
        .json(&json!({ "servers": ["a"] }))
        .send()
        .await
        .expect("created")
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("an id").to_owned();
    // The readiness probe that saw it up.
    let healthz = next_line(&mut lines, |event| event["route"] == "/readyz")
        .await
        .expect("an access line for /readyz");
    assert_eq!(healthz["level"], "INFO");
    assert_eq!(healthz["message"], "request");
    assert_eq!(healthz["method"], "GET");
    assert_eq!(healthz["status"], 200);
    assert!(healthz["elapsed_ms"].is_string(), "{healthz}");
    assert!(healthz.get("trace_id").is_none(), "{healthz}");

    // A traced request: the backend it opens cannot be reached, and that
    // warning, written while the request is served, carries its ids.
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } },
    });
    let answered = http
        .post(format!("{base}/session/{session}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("traceparent", format!("00-{TRACE}-{SPAN}-01"))
        .json(&initialize)
        .send()
        .await
        .expect("answered");
    assert_eq!(answered.status(), 200);
    let warned = next_line(&mut lines, |event| event["level"] == "WARN")
        .await
        .expect("a warning while the backend opens");
    assert_eq!(warned["trace_id"], TRACE, "{warned}");
    assert_eq!(warned["span_id"], SPAN, "{warned}");
    let access = next_line(&mut lines, |event| event["route"] == "/session/{id}/mcp")
        .await
        .expect("the access line of the MCP request");
    assert_eq!(access["trace_id"], TRACE, "{access}");
    assert_eq!(access["session"], format!("{}…", &session[..8]));
}

#[tokio::test]
async fn with_the_access_log_off_only_refused_requests_are_logged() {
    let (served, mut lines) = json_logging_gateway(&["--access-log", "false"]).await;
    let base = served.base.clone();
    let missing = reqwest::get(format!("{base}/no-such-route"))
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
    let logged = next_line(&mut lines, |event| event["message"] == "request")
        .await
        .expect("the refused request's line");
    // The readiness probes that answered 200 before it wrote no line.
    assert_eq!(logged["status"], 404, "{logged}");
    assert_eq!(logged["route"], "-");
}

#[tokio::test]
async fn sighup_reloads_the_registry_and_a_broken_file_keeps_the_one_served() {
    let Served {
        child: gateway,
        base,
        registry,
        _dir,
    } = serve(
        &registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]),
        &[],
        Stdio::null(),
    )
    .await;
    let servers = || async {
        let listed: Value = reqwest::get(format!("{base}/registry"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let names: Vec<String> = listed["servers"]
            .as_array()?
            .iter()
            .filter_map(|server| server["name"].as_str().map(str::to_owned))
            .collect();
        Some(names)
    };

    std::fs::write(
        &registry,
        registry_yaml(&[
            ("a", "http://127.0.0.1:9/mcp", ""),
            ("b", "http://127.0.0.1:9/mcp", ""),
        ]),
    )
    .expect("registry rewritten");
    assert!(send_signal(&gateway, "HUP"));
    assert!(eventually(|| async { servers().await == Some(vec!["a".into(), "b".into()]) }).await);
    std::fs::write(&registry, "servers: [").expect("registry broken");
    assert!(send_signal(&gateway, "HUP"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(servers().await, Some(vec!["a".into(), "b".into()]));
}

#[tokio::test]
async fn sessions_commands_list_a_sessions_tools_call_one_and_show_its_audit() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = gateway_with_admin_token(registry_yaml(&[("alpha", &backend.url, "")])).await;

    let rules = r#"{"alpha": {"allow": ["echo"], "rename": {"echo": "say"}}}"#;
    let create = "create --server alpha --rate-limit 50 --json --tools";
    let mut args: Vec<&str> = create.split(' ').collect();
    args.push(rules);
    let (code, stdout, stderr) = sessions(&app, TOKEN, &args).await;
    assert_eq!(code, Some(0), "{stderr}");
    let created: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(created["rate_limit"], 50);
    let id = created["session_id"].as_str().expect("an id").to_owned();

    let (code, stdout, stderr) = sessions(&app, TOKEN, &["tools", &id]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim_end(),
        "tool        description\nalpha__say  Echo the text back, prefixed with the backend's label"
    );

    let (code, stdout, stderr) = sessions(
        &app,
        TOKEN,
        &[
            "call",
            &id,
            "alpha__say",
            "--arguments",
            r#"{"text": "hi"}"#,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let result: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(result["content"][0]["text"], "alpha: hi");

    // The audit trail is written a moment after the call.
    assert!(
        eventually(|| async {
            sessions(&app, TOKEN, &["audit", &id])
                .await
                .1
                .lines()
                .count()
                > 1
        })
        .await
    );
    let (code, stdout, stderr) = sessions(&app, TOKEN, &["audit", &id]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("at  ") || lines[0].starts_with("at "),
        "{stdout}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[1..5], ["alpha__say", "alpha", "ok", "-"], "{stdout}");
    assert_eq!(row.last(), Some(&"ms"), "{stdout}");
    // Aligned: each column starts where its header does.
    assert_eq!(
        lines[0].find("tool"),
        lines[1].find("alpha__say"),
        "{stdout}"
    );

    // Arguments that are no JSON object, and a name that is no tool name,
    // are refused before anything is sent.
    let (code, _, stderr) = sessions(
        &app,
        TOKEN,
        &["call", &id, "alpha__say", "--arguments", "[1]"],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("expected a JSON object, such as {\"message\": \"hi\"}"),
        "{stderr}"
    );
    let (code, _, stderr) = sessions(
        &app,
        TOKEN,
        &["call", &id, "alpha__say", "--arguments", "{bad"],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("not JSON: key must be a string"),
        "{stderr}"
    );
    let (code, _, stderr) = sessions(&app, TOKEN, &["call", &id, "../registry"]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"../registry\" is not a tool name"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_gateway_url_without_a_scheme_or_with_a_path_is_refused_with_what_to_give() {
    for (url, says) in [
        (
            "127.0.0.1:8000",
            "\"127.0.0.1:8000\" has no scheme: give http://127.0.0.1:8000 (or https:// for a gateway behind TLS)",
        ),
        (
            "http://127.0.0.1:8000/session/x/mcp",
            "\"http://127.0.0.1:8000/session/x/mcp\" has a path: give the gateway's base URL alone, such as http://127.0.0.1:8000",
        ),
    ] {
        let (code, _, stderr) = finished(mcp_mux().args(["sessions", "--url", url, "list"])).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // https against a gateway that speaks plain HTTP.
    let app = spawn_app(&registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")])).await;
    let https = app.address.replacen("http://", "https://", 1);
    let (code, _, stderr) = finished(mcp_mux().args(["sessions", "--url", &https, "list"])).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!(
            "(the gateway may speak plain HTTP: try {})",
            app.address
        )),
        "{stderr}"
    );
}
