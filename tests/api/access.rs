//! Who may do what: the admin token on the management routes, a session's
//! own token on its MCP endpoint, and the Host and Origin allow-lists.

use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789";

async fn app_with_admin_token(registry: &str) -> TestApp {
    let mut options = AppOptions::new(registry);
    options.admin_token = Some(ADMIN_TOKEN.into());
    spawn_app_with(options).await.expect("starts")
}

/// Asserts a 401 with its challenge and the exact JSON message.
async fn assert_unauthorized(response: reqwest::Response, realm: &str, message: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!("Bearer realm=\"{realm}\"").as_str()
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({ "error": "unauthorized", "message": message }));
}

#[tokio::test]
async fn with_an_admin_token_every_management_route_needs_it() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = app_with_admin_token(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let base = &app.address;
    let body = json!({ "servers": ["alpha"] });

    let missing = app.post_create_session(&body).await;
    assert_unauthorized(
        missing,
        "mcp-mux admin",
        "this route needs Authorization: Bearer <admin token>",
    )
    .await;
    for wrong in ["Bearer admin-token-012345678", "Basic YWRtaW4=", "Bearer"] {
        let response = app
            .http
            .post(format!("{base}/create-session"))
            .header("authorization", wrong)
            .json(&body)
            .send()
            .await
            .expect("answer");
        let message = if wrong.starts_with("Bearer ") {
            "the admin token is wrong"
        } else {
            "this route needs Authorization: Bearer <admin token>"
        };
        assert_unauthorized(response, "mcp-mux admin", message).await;
    }

    let created: Value = app
        .http
        .post(format!("{base}/create-session"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("created").to_owned();
    for (method, path) in [
        (reqwest::Method::GET, format!("/session/{session}")),
        (reqwest::Method::GET, format!("/session/{session}/audit")),
        (reqwest::Method::DELETE, format!("/session/{session}")),
        (reqwest::Method::GET, "/registry".to_owned()),
    ] {
        let refused = app
            .http
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert_unauthorized(
            refused,
            "mcp-mux admin",
            "this route needs Authorization: Bearer <admin token>",
        )
        .await;
        let allowed = app
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("answer");
        assert_eq!(allowed.status(), 200, "{path}");
    }
    let health = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status(), 200, "health needs no token");
}

#[tokio::test]
async fn the_mcp_endpoint_needs_no_admin_token() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = app_with_admin_token(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: Value = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "servers": ["alpha"] }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let mut mcp = app.mcp(created["session_id"].as_str().expect("id")).await;
    assert_eq!(mcp.tool_names().await.len(), 2);
}

#[tokio::test]
async fn a_gateway_refuses_to_start_with_open_management_routes_or_a_weak_token() {
    let registry = registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")]);
    let mut options = AppOptions::new(registry.clone());
    options.bind = Some("0.0.0.0:0".into());
    let error = spawn_app_with(options).await.err().expect("refused");
    let message = error.to_string();
    assert!(
        message.starts_with("refusing to serve the management routes on 0.0.0.0:")
            && message.ends_with(
                " without an admin token: set MCP_MUX_ADMIN_TOKEN, bind to a loopback address, or pass --insecure-no-admin-token if this network is trusted"
            ),
        "{message}"
    );

    let mut options = AppOptions::new(registry);
    options.admin_token = Some("short".into());
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "MCP_MUX_ADMIN_TOKEN must be at least 16 characters"
    );
}

#[tokio::test]
async fn a_session_token_is_shown_once_and_guards_the_mcp_endpoint() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: Value = app
        .post_create_session(&json!({ "servers": ["alpha"], "require_token": true }))
        .await
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("id").to_owned();
    let token = created["session_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(token.starts_with("mmx_") && token.len() == 47, "{token}");
    assert_eq!(created["require_token"], true);

    let shown = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    assert!(!shown.contains(&token));
    assert_eq!(
        serde_json::from_str::<Value>(&shown).expect("JSON")["require_token"],
        true
    );
    let database = database_bytes(&app.database_file());
    assert!(contains(&database, &session), "searched the right file");
    assert!(!contains(&database, &token), "only a digest is stored");

    let url = app.mcp_url(&session);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    // The client configurations in the answer connect as they are.
    let cursor = created["client_configs"]["cursor"]["mcpServers"]
        .as_object()
        .and_then(|servers| servers.values().next())
        .expect("a Cursor entry")
        .clone();
    assert_eq!(cursor["url"], created["mcp_url"]);
    // Cursor reads the token from the variable the answer names.
    let variable = created["client_configs"]["token_env"]
        .as_str()
        .expect("a variable");
    let header = cursor["headers"]["Authorization"]
        .as_str()
        .expect("a header")
        .replace(&format!("${{env:{variable}}}"), &token);
    let accepted = app
        .http
        .post(cursor["url"].as_str().expect("a URL"))
        .header("accept", "application/json, text/event-stream")
        .header("authorization", header)
        .json(&initialize)
        .send()
        .await
        .expect("answer");
    assert_eq!(accepted.status(), 200);
    let claude_code = created["client_configs"]["claude_code"]
        .as_str()
        .expect("a command");
    assert!(
        claude_code.ends_with(&format!("--header 'Authorization: Bearer {token}'")),
        "{claude_code}"
    );
    for (authorization, message, challenge) in [
        (
            None,
            "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth",
            "Bearer realm=\"mcp-mux session\", error_description=\"this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth\"",
        ),
        (
            Some(format!("Bearer {token}x")),
            "the session token is wrong: send the one create-session showed for this session",
            "Bearer realm=\"mcp-mux session\", error=\"invalid_token\", error_description=\"the session token is wrong: send the one create-session showed for this session\"",
        ),
    ] {
        let mut request = app
            .http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let refused = request.send().await.expect("answer");
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], challenge);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": message } }),
            "refused before the body (and its id) is read"
        );
    }
    let get = app
        .http
        .get(&url)
        .header("mcp-session-id", "0".repeat(32))
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), 401, "GET needs it too");
    let delete = app
        .http
        .delete(&url)
        .header("mcp-session-id", "0".repeat(32))
        .send()
        .await
        .expect("answer");
    assert_eq!(delete.status(), 401, "DELETE needs it too");

    // A real client with the token, as `mcp-remote --header` sends it.
    let client =
        rmcp_client(StreamableHttpClientTransportConfig::with_uri(url).auth_header(token)).await;
    assert_eq!(rmcp_echo(&client, "alpha__echo", "t").await, "alpha: t");
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_on_every_route() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.allowed_hosts = vec!["mux.example.com".into()];
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    for host in ["evil.example", "mux.example.com.evil:80", "10.1.2.3"] {
        for path in ["/healthz", "/readyz", "/registry", "/create-session"] {
            let refused = app
                .http
                .get(format!("{}{path}", app.address))
                .header("host", host)
                .send()
                .await
                .expect("answer");
            assert_eq!(refused.status(), 403, "{host} {path}");
            let body: Value = refused.json().await.expect("JSON");
            assert_eq!(
                body,
                json!({ "error": "forbidden", "message": "Host not allowed" })
            );
        }
        let refused = app
            .http
            .post(app.mcp_url(&session))
            .header("host", host)
            .json(&json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" }))
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["error"]["message"], "Host not allowed");
    }
    let listed = app
        .http
        .get(format!("{}/registry", app.address))
        .header("host", "MUX.example.com:8443")
        .send()
        .await
        .expect("answer");
    assert_eq!(listed.status(), 200, "a listed host passes");
}

/// Spellings of an `Origin` that a loose parser would take for loopback.
fn malformed_origins(port: &str) -> Vec<String> {
    vec![
        format!("http://user@127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}@evil.example"),
        format!("http://127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}/ui"),
        format!("http://127.0.0.1:{port}?x=1"),
        format!("http://127.0.0.1:{port}#x"),
        format!("http://127.1:{port}"),
        format!("http://0x7f.1:{port}"),
        format!("http://0x7f000001:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://0177.0.0.1:{port}"),
        format!("http://localhost.:{port}"),
        format!("http://[::1]evil:{port}"),
        format!("http://[0:0:0:0:0:0:0:1]x"),
        "http://127.0.0.1:".to_owned(),
        "http://127.0.0.1:99999".to_owned(),
        format!("http:127.0.0.1:{port}"),
        format!("ftp://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}, http://127.0.0.1:{port}"),
        "null".to_owned(),
    ]
}

/// A request's status and refusal message, whatever the route kind's body:
/// JSON, JSON-RPC or a console page.
fn refusal_message(answer: &RawAnswer) -> String {
    if answer.body.starts_with("<!doctype html>") {
        return answer
            .body
            .split("<p class=\"error\">")
            .nth(1)
            .and_then(|rest| rest.split("</p>").next())
            .unwrap_or_default()
            .to_owned();
    }
    let body = answer.json();
    body["message"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_malformed_origin_is_refused_on_every_route_kind_as_a_malformed_host_is() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = app_with_admin_token(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: Value = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "servers": ["alpha"] }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("id");
    let port = app.address.rsplit(':').next().expect("a port").to_owned();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let authorization = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let routes = [
        ("POST", format!("/session/{session}/mcp"), ping),
        (
            "POST",
            format!("/session/{session}/tools/alpha__echo"),
            "{}",
        ),
        ("GET", "/healthz".to_owned(), ""),
        ("GET", "/registry".to_owned(), ""),
        ("GET", "/ui".to_owned(), ""),
        ("POST", "/ui/login".to_owned(), "token=x"),
    ];
    let send = |method: &str, path: &str, origins: &[&str], body: &str| {
        let mut lines = vec![
            format!("{method} {path} HTTP/1.1"),
            format!("Host: 127.0.0.1:{port}"),
            "Connection: close".to_owned(),
            authorization.clone(),
            "Content-Type: application/json".to_owned(),
            "Accept: application/json, text/event-stream".to_owned(),
            format!("Content-Length: {}", body.len()),
        ];
        lines.extend(origins.iter().map(|origin| format!("Origin: {origin}")));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let request = http_request(&lines, body);
        let address = app.address.clone();
        async move { raw_http(&address, &request).await }
    };
    let own = format!("http://127.0.0.1:{port}");
    for (method, path, body) in &routes {
        let mut spellings: Vec<Vec<String>> = malformed_origins(&port)
            .into_iter()
            .map(|origin| vec![origin])
            .collect();
        // Two Origin headers, as two Host headers are.
        spellings.push(vec![own.clone(), own.clone()]);
        spellings.push(vec![own.clone(), "https://evil.example".to_owned()]);
        for origins in spellings {
            let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
            let answer = send(method, path, &origins, body).await;
            assert_eq!(answer.status, 403, "{method} {path} {origins:?}");
            assert_eq!(
                refusal_message(&answer),
                "Origin not allowed",
                "{method} {path} {origins:?}"
            );
        }
        // The well-formed loopback origin passes the allow-list.
        let answer = send(method, path, &[&own], body).await;
        assert!(
            !answer.body.contains("Origin not allowed"),
            "{method} {path}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn wrong_admin_tokens_slow_their_address_down_on_every_admin_route_until_the_wait_is_over() {
    let app =
        app_with_admin_token(&registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")])).await;
    let registry = format!("{}/registry", app.address);
    let get = |token: &str| app.http.get(&registry).bearer_auth(token).send();
    let login_page = app
        .http
        .get(format!("{}/ui/login", app.address))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    let form_token = login_page
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form token")
        .to_owned();
    // A browser's login answers 303; this client stays on that answer.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let log_in = |token: &str| {
        let form = format!("token={token}&form_token={form_token}");
        browser
            .post(format!("{}/ui/login", app.address))
            .header("origin", &app.address)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    // The first wrong tokens are only wrong, on the API and the console
    // alike: one count for the address.
    for _ in 0..3 {
        let wrong = get("admin-token-wrong-0000").await.expect("answer");
        assert_unauthorized(wrong, "mcp-mux admin", "the admin token is wrong").await;
    }
    for _ in 0..2 {
        let wrong = log_in("admin-token-wrong-0000").await.expect("answer");
        assert_eq!(wrong.status(), 401);
        assert!(
            wrong
                .text()
                .await
                .expect("body")
                .contains("<p class=\"error\">the admin token is wrong</p>")
        );
    }
    // Then the address waits: even the right token is not looked at.
    let waiting = get(ADMIN_TOKEN).await.expect("answer");
    assert_eq!(waiting.status(), 429);
    assert_eq!(waiting.headers()["retry-after"], "1");
    let body: Value = waiting.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({ "error": "too_many_requests", "message": "too many wrong admin tokens from this address; retry after 1 s" })
    );
    let waiting = log_in(ADMIN_TOKEN).await.expect("answer");
    assert_eq!(waiting.status(), 429);
    assert_eq!(waiting.headers()["retry-after"], "1");
    assert!(waiting.text().await.expect("body").contains(
        "<p class=\"error\">too many wrong admin tokens from this address; retry after 1 s</p>"
    ));
    // Once the wait is over the operator gets in, and starts afresh.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let allowed = get(ADMIN_TOKEN).await.expect("answer");
    assert_eq!(allowed.status(), 200);
    let wrong = get("admin-token-wrong-0000").await.expect("answer");
    assert_unauthorized(wrong, "mcp-mux admin", "the admin token is wrong").await;
    let allowed = log_in(ADMIN_TOKEN).await.expect("answer");
    assert_eq!(allowed.status(), 303, "the count started afresh");
}

#[tokio::test]
async fn a_half_sent_body_without_its_token_is_refused_at_once_on_every_token_route() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = app_with_admin_token(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: Value = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "servers": ["alpha"], "require_token": true }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("id");
    let session_token = created["session_token"].as_str().expect("a token");
    let wrong_session = format!("Authorization: Bearer {session_token}x");
    let wrong_admin = "Authorization: Bearer admin-token-wrong-0000".to_owned();
    let needs_session = "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth";
    let wrong_session_message =
        "the session token is wrong: send the one create-session showed for this session";
    let needs_admin = "this route needs Authorization: Bearer <admin token>";
    let needs_login =
        "this page needs a console login or Authorization: Bearer &lt;admin token&gt;";
    let tool = format!("/session/{session}/tools/alpha__echo");
    let mcp = format!("/session/{session}/mcp");
    let delete = format!("/ui/session/{session}/delete");
    let cases = [
        (tool.as_str(), None, needs_session),
        (
            tool.as_str(),
            Some(wrong_session.as_str()),
            wrong_session_message,
        ),
        (mcp.as_str(), None, needs_session),
        (
            mcp.as_str(),
            Some(wrong_session.as_str()),
            wrong_session_message,
        ),
        ("/create-session", None, needs_admin),
        (
            "/create-session",
            Some(wrong_admin.as_str()),
            "the admin token is wrong",
        ),
        ("/ui/create-session", None, needs_login),
        (delete.as_str(), None, needs_login),
    ];
    let origin = format!("Origin: {}", app.address);
    for (path, authorization, message) in cases {
        let request_line = format!("POST {path} HTTP/1.1");
        let mut lines = vec![
            request_line.as_str(),
            "Host: 127.0.0.1",
            origin.as_str(),
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            // A body that never comes: a gateway that waited for it would
            // answer 408 after its body timeout.
            "Content-Length: 100",
        ];
        lines.extend(authorization);
        let answer = raw_http(&app.address, &http_request(&lines, "{")).await;
        assert_eq!(
            answer.status, 401,
            "{path} {authorization:?}: {}",
            answer.body
        );
        assert_eq!(answer.header("connection"), Some("close"), "{path}");
        assert_eq!(
            refusal_message(&answer),
            message,
            "{path} {authorization:?}"
        );
    }
}
