//! Access follows the route that serves a request, whatever the spelling of
//! its path: percent-encoded letters, case, doubled and trailing slashes,
//! dot segments, `;` parameters and encoded slashes either reach the route
//! with the same checks as the plain path, or no route at all.

use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

/// Every way of spelling `path` that a client might try, with a name.
fn spellings(path: &str) -> Vec<(&'static str, String)> {
    let encode_first_letters = |path: &str| {
        path.split('/')
            .map(|segment| match segment.chars().next() {
                Some(first) if first.is_ascii_alphabetic() => {
                    format!("%{:02x}{}", first as u8, &segment[1..])
                }
                _ => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let encode_all_letters: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("%{:02X}", c as u8)
            } else {
                c.to_string()
            }
        })
        .collect();
    vec![
        ("first letters percent-encoded", encode_first_letters(path)),
        ("every letter percent-encoded", encode_all_letters),
        ("upper case", path.to_uppercase()),
        ("doubled leading slash", format!("/{path}")),
        (
            "doubled inner slash",
            path.replacen('/', "//", 2).replacen("//", "/", 1),
        ),
        ("trailing slash", format!("{path}/")),
        ("dot-dot segment", format!("/x/..{path}")),
        ("dot segment", format!("/.{path}")),
        ("semicolon parameter", format!("{path};a=b")),
        ("encoded slash", encode_second_slash(path)),
        (
            "double encoding",
            encode_first_letters(path).replace('%', "%25"),
        ),
    ]
}

/// `path` with its second `/` (or its last, if it has one) as `%2F`.
fn encode_second_slash(path: &str) -> String {
    match path[1..].find('/') {
        Some(at) => format!("{}%2F{}", &path[..=at], &path[at + 2..]),
        None => format!("{path}%2F"),
    }
}

/// One request with its path exactly as given.
async fn send(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> RawAnswer {
    let request_line = format!("{method} {path} HTTP/1.1");
    let authorization = token.map(|token| format!("Authorization: Bearer {token}"));
    let body = if method == "POST" {
        json!({ "servers": ["alpha"] }).to_string()
    } else {
        String::new()
    };
    let length = format!("Content-Length: {}", body.len());
    let mut lines = vec![
        request_line.as_str(),
        "Host: 127.0.0.1",
        "Connection: close",
        "Content-Type: application/json",
        length.as_str(),
    ];
    if let Some(authorization) = &authorization {
        lines.push(authorization);
    }
    raw_http(&app.address, &http_request(&lines, &body)).await
}

fn no_route() -> Value {
    json!({ "error": "not_found", "message": "no such route" })
}

#[tokio::test]
async fn no_spelling_of_a_management_path_passes_without_the_admin_token() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.admin_token = Some(ADMIN_TOKEN.into());
    let app = spawn_app_with(options).await.expect("starts");
    let created = send(&app, "POST", "/create-session", Some(ADMIN_TOKEN)).await;
    assert_eq!(created.status, 201);
    let session = created.json()["session_id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let routes = [
        ("GET", "/registry".to_owned()),
        ("POST", "/create-session".to_owned()),
        ("GET", format!("/session/{session}")),
        ("GET", format!("/session/{session}/audit")),
        ("DELETE", format!("/session/{session}")),
    ];
    let unauthorized = json!({
        "error": "unauthorized",
        "message": "this route needs Authorization: Bearer <admin token>",
    });
    for (method, path) in &routes {
        let plain = send(&app, method, path, None).await;
        assert_eq!(plain.status, 401, "{method} {path}");
        assert_eq!(plain.json(), unauthorized);
        for (spelling, spelled) in spellings(path) {
            let answer = send(&app, method, &spelled, None).await;
            match answer.status {
                401 => {
                    assert_eq!(
                        answer.json(),
                        unauthorized,
                        "{spelling}: {method} {spelled}"
                    );
                    assert_eq!(
                        answer.header("www-authenticate"),
                        Some("Bearer realm=\"mcp-mux admin\"")
                    );
                }
                404 => assert_eq!(answer.json(), no_route(), "{spelling}: {method} {spelled}"),
                other => panic!(
                    "{spelling}: {method} {spelled} answered {other}: {}",
                    answer.body
                ),
            }
        }
    }
    // The spellings the router decodes reach the route, and its check.
    for path in [
        "/regis%74ry".to_owned(),
        "/create-sessio%6e".to_owned(),
        format!("/%73ession/{session}"),
        format!("/%73ession/{session}/audit"),
    ] {
        assert_eq!(send(&app, "GET", &path, None).await.status, 401, "{path}");
    }
    let deleted = send(&app, "DELETE", &format!("/%73ession/{session}"), None).await;
    assert_eq!(deleted.status, 401);
    assert_eq!(deleted.json(), unauthorized);

    // Nothing changed: the one session is still there, and none was added.
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 1);
    let shown = send(
        &app,
        "GET",
        &format!("/session/{session}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(shown.status, 200);

    // With the token, a spelling the router decodes is the route itself.
    let listed = send(&app, "GET", "/regis%74ry", Some(ADMIN_TOKEN)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["servers"][0]["name"], "alpha");
    let deleted = send(
        &app,
        "DELETE",
        &format!("/%73ession/{session}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 0);
}

#[tokio::test]
async fn no_spelling_of_an_mcp_path_passes_without_the_session_token() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: Value = app
        .post_create_session(&json!({ "servers": ["alpha"], "require_token": true }))
        .await
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("an id");
    let path = format!("/session/{session}/mcp");
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    })
    .to_string();
    let refused = json!({ "jsonrpc": "2.0", "id": null, "error": {
        "code": -32600,
        "message": "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth",
    }});
    let mut reached = Vec::new();
    for (spelling, spelled) in std::iter::once(("plain", path.clone())).chain(spellings(&path)) {
        let length = format!("Content-Length: {}", initialize.len());
        let request_line = format!("POST {spelled} HTTP/1.1");
        let request = http_request(
            &[
                &request_line,
                "Host: 127.0.0.1",
                "Connection: close",
                "Content-Type: application/json",
                "Accept: application/json, text/event-stream",
                &length,
            ],
            &initialize,
        );
        let answer = raw_http(&app.address, &request).await;
        match answer.status {
            401 => {
                assert_eq!(answer.json(), refused, "{spelling}: {spelled}");
                assert_eq!(
                    answer.header("www-authenticate"),
                    Some(
                        "Bearer realm=\"mcp-mux session\", error_description=\"this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth\""
                    )
                );
                reached.push(spelling);
            }
            // `/session/<id>%2Fmcp` names no session; the rest no route.
            404 => assert!(
                answer.json() == no_route()
                    || answer.json()["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with("no session ")),
                "{spelling}: {spelled}: {}",
                answer.body
            ),
            other => panic!("{spelling}: {spelled} answered {other}: {}", answer.body),
        }
    }
    assert_eq!(
        reached,
        [
            "plain",
            "first letters percent-encoded",
            "every letter percent-encoded"
        ],
        "the spellings the router decodes reach the endpoint and its check"
    );
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 1);
}

#[tokio::test]
async fn hosts_with_trailing_text_and_absolute_targets_elsewhere_are_refused() {
    let app = spawn_app(&registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")])).await;
    let forbidden = json!({ "error": "forbidden", "message": "Host not allowed" });
    for lines in [
        vec!["GET /registry HTTP/1.1", "Host: [::1]evil.com"],
        vec!["GET /registry HTTP/1.1", "Host: localhost@evil.com"],
        vec!["GET http://evil.com/registry HTTP/1.1", "Host: 127.0.0.1"],
        vec![
            "GET http://evil.com/no-such-route HTTP/1.1",
            "Host: 127.0.0.1",
        ],
    ] {
        let mut lines = lines.clone();
        lines.push("Connection: close");
        let answer = raw_http(&app.address, &http_request(&lines, "")).await;
        assert_eq!(answer.status, 403, "{lines:?}");
        assert_eq!(answer.json(), forbidden, "{lines:?}");
    }
    // Two Host headers: the HTTP parser refuses the request outright.
    let doubled = http_request(
        &[
            "GET /registry HTTP/1.1",
            "Host: 127.0.0.1",
            "Host: evil.com",
            "Connection: close",
        ],
        "",
    );
    assert_eq!(raw_http(&app.address, &doubled).await.status, 400);
    let allowed = raw_http(
        &app.address,
        &http_request(
            &[
                "GET http://localhost/registry HTTP/1.1",
                "Host: localhost",
                "Connection: close",
            ],
            "",
        ),
    )
    .await;
    assert_eq!(allowed.status, 200, "an allowed authority passes");
}

/// Every log line the gateways of this test binary write, from the moment a
/// test asks for them.
fn captured_log() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOG: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static std::sync::Mutex<Vec<u8>> =
            Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || CapturedWriter(log))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        log
    })
}

struct CapturedWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for CapturedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_request_log_names_the_route_and_only_8_characters_of_a_session_id() {
    let log = captured_log();
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    for path in [
        format!("/%73ession/{session}"),
        format!("/session/{session}/mc%70"),
        format!("/session/{session}/audit?limit=1"),
    ] {
        let request_line = format!("GET {path} HTTP/1.1");
        raw_http(
            &app.address,
            &http_request(&[&request_line, "Host: 127.0.0.1", "Connection: close"], ""),
        )
        .await;
    }
    let text = String::from_utf8_lossy(
        &log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    assert!(!text.contains(&session), "a whole session id was logged");
    let short = &session[..8];
    // Served and refused (a GET on an endpoint without streams), each an
    // access line at info level.
    for (route, status, level) in [
        ("/session/{id}", 200, " INFO"),
        ("/session/{id}/mcp", 405, " INFO"),
        ("/session/{id}/audit", 200, " INFO"),
    ] {
        assert!(
            text.lines().any(|line| line.contains(level)
                && line.contains(&format!("route={route} "))
                && line.contains(&format!("session={short}… "))
                && line.contains(&format!("status={status}"))),
            "no {level} request line for {route} with {status} in:\n{text}"
        );
    }
}
