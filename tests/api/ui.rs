//! The operators' console at /ui: its pages, its login, its forms' checks,
//! and that no secret ever reaches a page.

use std::time::Duration;

use mcp_mux::routes::rate_limit::{Rate, Rates};
use reqwest::redirect::Policy;
use serde_json::json;
use sha2::Digest;

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789";
const CREDENTIAL: &str = "kb-credential-5f1e9a";
const HOSTILE: &str = "<script>alert(1)</script>";

/// A gateway with backends `alpha` (no auth) and `kb` (a bearer token),
/// both real rmcp servers; with the admin token when `admin` is set.
struct Console {
    app: TestApp,
    /// Never follows a redirect: the tests look at each answer.
    http: reqwest::Client,
    _alpha: RmcpBackend,
    kb: RmcpBackend,
    /// `Cookie` of a console login, once logged in.
    cookie: Option<String>,
}

async fn console(admin: bool) -> Console {
    console_with(admin, Rates::default()).await
}

/// [`console`], with the gateway's default request rates.
async fn console_with(admin: bool, rates: Rates) -> Console {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let kb = spawn_rmcp_backend("kb", Some(CREDENTIAL)).await;
    let registry = registry_yaml(&[
        (
            "alpha",
            &alpha.url,
            &format!("description: \"Alpha {}\"", HOSTILE.replace('"', "\\\"")),
        ),
        ("kb", &kb.url, "auth: { type: bearer }"),
    ]);
    let mut options = AppOptions::new(registry);
    options.admin_token = admin.then(|| ADMIN_TOKEN.to_owned());
    options.rates = rates;
    Console {
        app: spawn_app_with(options).await.expect("starts"),
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
        _alpha: alpha,
        kb,
        cookie: None,
    }
}

impl Console {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.address)
    }

    /// GET as a browser: with the login cookie, if any.
    async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("answer")
    }

    /// POSTs a form as a browser on the console's page does: with its
    /// Origin, the form token of the page it was on, and the login cookie,
    /// if any.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let token = self.form_token(path).await;
        let mut fields = form.to_vec();
        fields.push(("form_token", &token));
        self.post_as(path, &fields, Some(&self.app.address)).await
    }

    /// POSTs exactly these fields, from `origin`, with the login cookie if
    /// any.
    async fn post_as(
        &self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("answer")
    }

    /// The form token of the page a browser would post `path` from: the
    /// login page's for the login form, any console page's otherwise.
    async fn form_token(&self, path: &str) -> String {
        let page_path = if path == "/ui/login" {
            "/ui/login"
        } else {
            "/ui/create-session"
        };
        let page = self.get(page_path).await.text().await.expect("body");
        hidden_form_token(&page).unwrap_or_else(|| panic!("no form token on {page_path}: {page}"))
    }

    async fn log_in(&mut self) {
        let answer = self.post("/ui/login", &[("token", ADMIN_TOKEN)]).await;
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/ui");
        let set_cookie = answer.headers()["set-cookie"].to_str().expect("text");
        let cookie = set_cookie.split(';').next().expect("a cookie").to_owned();
        self.cookie = Some(cookie);
    }

    /// Creates a session over the JSON API.
    async fn create_session(&self, body: serde_json::Value) -> serde_json::Value {
        let answer = self
            .http
            .post(self.url("/create-session"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 201);
        answer.json().await.expect("JSON")
    }
}

/// A page's status and body, after checking that it is HTML.
async fn page(answer: reqwest::Response) -> (u16, String) {
    let status = answer.status().as_u16();
    assert_eq!(
        answer.headers()["content-type"],
        "text/html; charset=utf-8",
        "status {status}"
    );
    assert_eq!(answer.headers()["cache-control"], "no-store");
    assert!(
        answer.headers()["content-security-policy"]
            .to_str()
            .is_ok_and(|policy| policy.starts_with("default-src 'none';"))
    );
    // Under `no-referrer` a browser's form says `Origin: null`, and is refused.
    assert_eq!(answer.headers()["referrer-policy"], "same-origin");
    (status, answer.text().await.expect("body"))
}

/// The form token of the first form on a page.
fn hidden_form_token(page: &str) -> Option<String> {
    page.split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// The message of a refusal page.
fn error_message(body: &str) -> &str {
    body.split("<p class=\"error\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no error on the page: {body}"))
}

#[tokio::test]
async fn the_pages_show_sessions_backends_health_audit_and_registry() {
    let console = console(false).await;
    let created = console
        .create_session(
            json!({ "servers": ["alpha", "kb"], "credentials": { "kb": { "token": CREDENTIAL } } }),
        )
        .await;
    let id = created["session_id"].as_str().expect("id");
    let mut mcp = console.app.mcp(id).await;
    mcp.call_tool("alpha__echo", json!({ "text": "hi" })).await;

    let (status, list) = page(console.get("/ui").await).await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("href=\"/ui/session/{id}\"")),
        "{list}"
    );
    assert!(list.contains("<code>alpha</code> <span class=\"state closed\">closed</span>"));
    assert!(list.contains("<code>kb</code>"));

    assert!(
        eventually(|| async {
            let (_, shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
            shown.contains("<td><code>alpha__echo</code></td><td>ok</td>")
        })
        .await,
        "the call shows in the session's audit"
    );
    let (status, shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert_eq!(status, 200);
    assert!(shown.contains(&format!("<code>/session/{id}/mcp</code>")));
    assert!(shown.contains("<td><code>kb</code></td><td>bearer</td><td><span class=\"state\">ready</span> <span class=\"muted\">&quot;kb&quot; answers</span></td><td><span class=\"state closed\">closed</span></td><td>0</td>"), "{shown}");
    assert!(shown.contains("<td>ok</td>"));

    let (status, registry) = page(console.get("/ui/registry").await).await;
    assert_eq!(status, 200);
    assert!(registry.contains("<td><code>kb</code></td>"));
    assert!(registry.contains("<td>bearer</td><td>token</td>"));
    assert!(registry.contains("streamable_http"), "{registry}");
}

#[tokio::test]
async fn a_browser_logs_in_with_the_admin_token_and_out_again() {
    let mut console = console(true).await;

    let (status, refused) = page(console.get("/ui").await).await;
    assert_eq!(status, 401);
    assert_eq!(
        error_message(&refused),
        "this page needs a console login or Authorization: Bearer &lt;admin token&gt;"
    );
    assert!(
        refused.contains("action=\"/ui/login\""),
        "offers the login form"
    );

    let (status, form) = page(console.get("/ui/login").await).await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"token\""));

    let (status, wrong) = page(
        console
            .post("/ui/login", &[("token", "admin-token-012345678")])
            .await,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error_message(&wrong), "the admin token is wrong");

    let answer = console.post("/ui/login", &[("token", ADMIN_TOKEN)]).await;
    let set_cookie = answer.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        set_cookie.starts_with("mcp_mux_console=mmc_"),
        "{set_cookie}"
    );
    for attribute in ["; Path=/ui", "; HttpOnly", "; SameSite=Strict"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(!set_cookie.contains(ADMIN_TOKEN));
    console.log_in().await;
    let cookie = console.cookie.clone().expect("logged in");

    let (status, list) = page(console.get("/ui").await).await;
    assert_eq!(status, 200);
    assert!(list.contains("action=\"/ui/logout\""), "offers to log out");

    // The login's token is no admin token: the JSON API refuses it.
    let login_token = cookie.trim_start_matches("mcp_mux_console=");
    let api = console
        .http
        .get(console.url("/sessions"))
        .bearer_auth(login_token)
        .send()
        .await
        .expect("answer");
    assert_eq!(api.status(), 401);

    let out = console.post("/ui/logout", &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/ui/login");
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .expect("text")
            .contains("Max-Age=0")
    );
    let (status, after) = page(console.get("/ui").await).await;
    assert_eq!(status, 401);
    assert_eq!(
        error_message(&after),
        "the console login has expired; log in again"
    );

    let metrics = console
        .http
        .get(console.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    for refusal in [
        r#"mcp_mux_refusals_total{route="console",status="401",reason="unauthorized"} 2"#,
        r#"mcp_mux_refusals_total{route="console_login",status="401",reason="unauthorized"} 1"#,
    ] {
        assert!(metrics.contains(refusal), "{refusal} in {metrics}");
    }
}

#[tokio::test]
async fn scripts_fetch_pages_with_the_admin_token_as_a_bearer_header() {
    let console = console(true).await;
    let answer = console
        .http
        .get(console.url("/ui/registry"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    let (status, _) = page(answer).await;
    assert_eq!(status, 200);

    let answer = console
        .http
        .get(console.url("/ui"))
        .bearer_auth("admin-token-wrong-0000")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        answer.headers()["www-authenticate"],
        "Bearer realm=\"mcp-mux admin\""
    );
    let (status, refused) = page(answer).await;
    assert_eq!(status, 401);
    assert_eq!(error_message(&refused), "the admin token is wrong");
}

#[tokio::test]
async fn a_form_without_an_allowed_origin_is_refused_and_changes_nothing() {
    for admin in [true, false] {
        let mut console = console(admin).await;
        if admin {
            console.log_in().await;
        }
        let created = console
            .create_session(json!({ "servers": ["alpha"] }))
            .await;
        let id = created["session_id"].as_str().expect("id");
        let delete = console.url(&format!("/ui/session/{id}/delete"));

        let mut request = console.http.post(&delete);
        if let Some(cookie) = &console.cookie {
            request = request.header("cookie", cookie);
        }
        let (status, refused) = page(request.send().await.expect("answer")).await;
        assert_eq!(status, 403, "admin token: {admin}");
        assert_eq!(
            error_message(&refused),
            "a console form must carry an Origin header; send it from the console"
        );

        let mut request = console
            .http
            .post(&delete)
            .header("origin", "https://evil.example");
        if let Some(cookie) = &console.cookie {
            request = request.header("cookie", cookie);
        }
        let (status, refused) = page(request.send().await.expect("answer")).await;
        assert_eq!(status, 403);
        assert_eq!(error_message(&refused), "Origin not allowed");

        let (status, _) = page(console.get(&format!("/ui/session/{id}")).await).await;
        assert_eq!(status, 200, "the session is still there");
    }
}

#[tokio::test]
async fn a_session_created_in_the_console_shows_its_token_once_and_is_deleted_there() {
    let mut console = console(true).await;
    console.log_in().await;
    let (status, form) = page(console.get("/ui/create-session").await).await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"servers\" value=\"kb\""));
    assert!(form.contains("name=\"credential.kb\""));

    let (status, created) = page(
        console
            .post(
                "/ui/create-session",
                &[
                    ("servers", "alpha"),
                    ("servers", "kb"),
                    ("credential.kb", CREDENTIAL),
                    ("require_token", "on"),
                    ("ttl_seconds", "3600"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let id = created
        .split("href=\"/ui/session/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the session")
        .to_owned();
    let token = created
        .split("<code>mmx_")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .map(|rest| format!("mmx_{rest}"))
        .expect("the session token");
    assert!(created.contains("Claude Desktop"));
    assert!(created.contains(&format!("/session/{id}/mcp")));

    // The session works, with the credential given in the form.
    let shown = console
        .http
        .get(console.url(&format!("/session/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer")
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    assert_eq!(shown["require_token"], true);
    assert!(shown["expires_at"].is_string());
    let mut mcp = RawMcp::new(console.app.mcp_url(&id));
    mcp.http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");
    mcp.initialize("2025-11-25").await;
    let echoed = mcp.call_tool("kb__echo", json!({ "text": "hi" })).await;
    assert_eq!(first_text(&echoed), "kb: hi");

    let (_, detail) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert!(!detail.contains(&token), "the token is shown once only");
    let (_, list) = page(console.get("/ui").await).await;
    assert!(!list.contains(&token));

    let deleted = console
        .post(&format!("/ui/session/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(
        deleted.headers()["location"],
        format!("/ui?deleted={id}").as_str()
    );
    let (_, list) = page(console.get("/ui").await).await;
    assert!(
        !list.contains(&format!("/ui/session/{id}")),
        "deleted sessions are not listed"
    );
    let (status, gone) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&gone), format!("no session &quot;{id}&quot;"));
}

#[tokio::test]
async fn bad_form_input_is_refused_naming_the_field_and_keeps_no_credential() {
    let console = console(false).await;
    for (form, message) in [
        (
            vec![("credential.kb", CREDENTIAL)],
            "servers: must name at least one server".to_owned(),
        ),
        (
            vec![("servers", "kb")],
            "credentials.kb: is required: server &quot;kb&quot; needs {&quot;token&quot;: &quot;…&quot;}".to_owned(),
        ),
        (
            vec![("servers", "alpha"), ("credential.kb", CREDENTIAL)],
            "credentials.kb: names a server that is not in servers".to_owned(),
        ),
        (
            vec![("servers", "alpha"), ("ttl_seconds", "soon")],
            "ttl_seconds: must be a whole number of seconds from 1 to 31536000".to_owned(),
        ),
        (
            vec![("servers", "alpha"), ("colour", "red")],
            "colour: unknown field; expected servers, name, labels, credentials, prefix, ttl_seconds, require_token, access, owner, rate_limit, tools, prompts, tool_mode".to_owned(),
        ),
        (
            vec![("servers", HOSTILE)],
            "servers[0]: unknown server &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;; known: alpha, kb".to_owned(),
        ),
    ] {
        let (status, refused) = page(console.post("/ui/create-session", &form).await).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(error_message(&refused), message);
        assert!(!refused.contains(CREDENTIAL), "a credential is never sent back");
        assert!(!refused.contains(HOSTILE));
    }
    let (status, kept) = page(
        console
            .post(
                "/ui/create-session",
                &[
                    ("servers", "kb"),
                    ("require_token", "on"),
                    ("ttl_seconds", "x\"><b>"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        kept.contains("name=\"servers\" value=\"kb\" checked"),
        "the choice is kept"
    );
    assert!(kept.contains("name=\"require_token\" checked"));
    assert!(kept.contains("value=\"x&quot;&gt;&lt;b&gt;\""), "{kept}");
}

#[tokio::test]
async fn hostile_strings_are_escaped_on_every_page() {
    let console = console(false).await;
    let created = console
        .create_session(json!({ "servers": ["alpha"] }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let mut mcp = console.app.mcp(id).await;
    mcp.call_tool(HOSTILE, json!({})).await;
    assert!(
        eventually(|| async {
            let (_, shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
            shown.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>")
        })
        .await,
        "the hostile tool name shows escaped in the audit"
    );
    for path in [
        "/ui",
        &format!("/ui/session/{id}"),
        "/ui/registry",
        "/ui/create-session",
    ] {
        let (status, body) = page(console.get(path).await).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains(HOSTILE), "{path}");
    }
    let (_, registry) = page(console.get("/ui/registry").await).await;
    assert!(registry.contains("Alpha &lt;script&gt;alert(1)&lt;/script&gt;"));
    let (status, missing) = page(console.get("/ui/session/%3Cb%3E").await).await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&missing), "no session &quot;&lt;b&gt;&quot;");
}

#[tokio::test]
async fn no_secret_reaches_any_page() {
    let mut console = console(true).await;
    console.log_in().await;
    let created = console
        .create_session(json!({ "servers": ["alpha", "kb"], "credentials": { "kb": { "token": CREDENTIAL } }, "require_token": true }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let session_token = created["session_token"].as_str().expect("token");
    let digest = hex::encode(sha2::Sha256::digest(session_token.as_bytes()));
    let backend_url = console.kb.url.clone();

    let mut bodies = Vec::new();
    for path in [
        "/ui".to_owned(),
        format!("/ui/session/{id}"),
        "/ui/registry".to_owned(),
        "/ui/create-session".to_owned(),
        format!("/ui/session/{id}/delete"),
        "/ui/login".to_owned(),
        "/ui/no-such-page".to_owned(),
    ] {
        bodies.push((path.clone(), page(console.get(&path).await).await.1));
    }
    let created_page = console
        .post(
            "/ui/create-session",
            &[("servers", "kb"), ("credential.kb", CREDENTIAL)],
        )
        .await;
    bodies.push(("created".into(), page(created_page).await.1));
    let tried = console
        .post(
            &format!("/ui/session/{id}/call"),
            &[("tool", "kb__echo"), ("arguments", r#"{"text": "hi"}"#)],
        )
        .await;
    bodies.push(("tried".into(), page(tried).await.1));
    let refused = console
        .post("/ui/login", &[("token", "admin-token-0123456788")])
        .await;
    bodies.push(("refused login".into(), page(refused).await.1));

    for (path, body) in &bodies {
        for secret in [
            CREDENTIAL,
            ADMIN_TOKEN,
            session_token,
            &digest,
            &backend_url,
        ] {
            assert!(!body.contains(secret), "{secret} on {path}");
        }
    }
}

#[tokio::test]
async fn unknown_console_paths_and_methods_answer_html() {
    let console = console(false).await;
    let (status, missing) = page(console.get("/ui/nothing/here").await).await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&missing), "no such console page");
    let answer = console
        .http
        .delete(console.url("/ui/registry"))
        .header("origin", &console.app.address)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.headers()["allow"], "GET");
    let (status, refused) = page(answer).await;
    assert_eq!(status, 405);
    assert_eq!(error_message(&refused), "method not allowed; use GET");
}

#[tokio::test]
async fn no_spelling_of_a_console_path_passes_without_a_login() {
    let console = console(true).await;
    let created = console
        .create_session(json!({ "servers": ["alpha"] }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let session = format!("/ui/session/{id}");
    let delete = format!("/ui/session/{id}/delete");
    let spellings = [
        ("GET", "/ui/"),
        ("GET", "//ui"),
        ("GET", "/ui//registry"),
        ("GET", "/%75i/registry"),
        ("GET", "/ui/%72egistry"),
        ("GET", "/UI/registry"),
        ("GET", "/x/../ui/registry"),
        ("GET", "/ui/./registry"),
        ("GET", "/ui/registry;a=b"),
        ("GET", "/ui%2Fregistry"),
        ("GET", session.as_str()),
        ("GET", "/ui/session/x/../../registry"),
        ("POST", delete.as_str()),
        ("POST", "/ui//create-session"),
    ];
    for (method, path) in spellings {
        let request_line = format!("{method} {path} HTTP/1.1");
        let origin = format!("Origin: {}", console.app.address);
        let answer = raw_http(
            &console.app.address,
            &http_request(
                &[
                    request_line.as_str(),
                    "Host: 127.0.0.1",
                    origin.as_str(),
                    "Connection: close",
                    "Content-Type: application/x-www-form-urlencoded",
                    "Content-Length: 13",
                ],
                "servers=alpha",
            ),
        )
        .await;
        assert!(
            answer.status == 401 || answer.status == 404,
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
    }
    let (status, _) = page(console.get(&session).await).await;
    assert_eq!(status, 401);
    let kept = console
        .http
        .get(console.url(&format!("/session/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(kept.status(), 200, "nothing was deleted");
}

/// Every console form, as (path, fields) on a gateway with session `id`.
fn every_form(id: &str) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (format!("/ui/session/{id}/delete"), vec![("confirm", "yes")]),
        (
            format!("/ui/session/{id}/call"),
            vec![("tool", "alpha__echo"), ("arguments", "{}")],
        ),
        ("/ui/create-session".into(), vec![("servers", "alpha")]),
        ("/ui/logout".into(), vec![]),
        ("/ui/login".into(), vec![("token", ADMIN_TOKEN)]),
    ]
}

/// Nothing a refused form could have done happened: the session is there,
/// no other was made, and the browser is still logged in.
async fn assert_unchanged(console: &Console, id: &str) {
    let (status, _) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert_eq!(status, 200, "the session is still there, the login open");
    assert_eq!(
        console
            .app
            .mux
            .store()
            .count_sessions()
            .await
            .expect("count"),
        1,
        "no session was made"
    );
    let session = uuid::Uuid::parse_str(id).expect("id");
    assert!(
        console.app.mux.audit_settled(Duration::from_secs(10)).await,
        "the audit trail is written"
    );
    assert!(
        console
            .app
            .mux
            .store()
            .audit_records(session, 10, None)
            .await
            .expect("audit")
            .is_empty(),
        "no tool was called"
    );
}

#[tokio::test]
async fn a_form_from_another_origin_of_the_same_host_is_refused_and_changes_nothing() {
    for admin in [true, false] {
        let mut console = console(admin).await;
        if admin {
            console.log_in().await;
        }
        let created = console
            .create_session(json!({ "servers": ["alpha"] }))
            .await;
        let id = created["session_id"].as_str().expect("id").to_owned();
        let port = console.app.address.rsplit(':').next().expect("a port");
        let other_port = unused_port();
        let origins = [
            // Another port of the same host: SameSite lets the cookie through.
            format!("http://127.0.0.1:{other_port}"),
            // The same port under another loopback name or address.
            format!("http://localhost:{port}"),
            format!("http://127.0.0.2:{port}"),
            format!("http://[::1]:{port}"),
            // Another scheme: another origin.
            format!("https://127.0.0.1:{port}"),
            // The default port, which the console is not on.
            "http://127.0.0.1".to_owned(),
        ];
        for (path, fields) in every_form(&id) {
            if path == "/ui/login" && !admin {
                continue;
            }
            let token = console.form_token(&path).await;
            let mut fields = fields.clone();
            fields.push(("form_token", &token));
            for origin in &origins {
                let answer = console.post_as(&path, &fields, Some(origin)).await;
                let (status, refused) = page(answer).await;
                assert_eq!(status, 403, "{path} from {origin}");
                assert_eq!(
                    error_message(&refused),
                    "a console form must come from the console&#39;s own origin",
                    "{path} from {origin}"
                );
            }
            assert_unchanged(&console, &id).await;
        }
    }
}

#[tokio::test]
async fn a_form_without_its_form_token_is_refused_and_changes_nothing() {
    for admin in [true, false] {
        let mut console = console(admin).await;
        if admin {
            console.log_in().await;
        }
        let created = console
            .create_session(json!({ "servers": ["alpha"] }))
            .await;
        let id = created["session_id"].as_str().expect("id").to_owned();
        let mut wrong_tokens = vec![String::new(), "mmf_x".to_owned()];
        if admin {
            // Another browser's login: its token is no token of this one;
            // nor is the one of forms shown without a login.
            let first = console.cookie.take();
            console.log_in().await;
            wrong_tokens.push(console.form_token("/ui").await);
            console.cookie = first;
        }
        let without_login = if admin {
            Some(console.form_token("/ui/login").await)
        } else {
            None
        };
        for (path, fields) in every_form(&id) {
            if !admin && (path == "/ui/login" || path == "/ui/logout") {
                // No login to open or end.
                continue;
            }
            let mut bodies = vec![fields.clone()];
            let login_form = path == "/ui/login";
            let wrong = wrong_tokens
                .iter()
                .chain(without_login.iter().filter(|_| !login_form));
            for wrong in wrong {
                let mut with = fields.clone();
                with.push(("form_token", wrong.as_str()));
                bodies.push(with);
            }
            for body in bodies {
                let answer = console
                    .post_as(&path, &body, Some(&console.app.address))
                    .await;
                let (status, refused) = page(answer).await;
                assert_eq!(status, 403, "{path} {body:?}");
                assert_eq!(
                    error_message(&refused),
                    "the console form&#39;s token is missing or wrong; reload the page and send the form again",
                    "{path} {body:?}"
                );
            }
            assert_unchanged(&console, &id).await;
        }
        // The page's own token passes, once the form is right.
        let deleted = console
            .post(&format!("/ui/session/{id}/delete"), &[("confirm", "yes")])
            .await;
        assert_eq!(deleted.status(), 303);
    }
}

#[tokio::test]
async fn every_page_of_every_route_carries_the_safe_headers() {
    let console = console(true).await;
    let created = console
        .create_session(json!({ "servers": ["alpha"] }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let mut html_routes = Vec::new();
    for route in mcp_mux::routes::Route::ALL {
        if !route.methods().any(|method| method == "GET") {
            continue;
        }
        let path = route
            .pattern()
            .replace("{id}", id)
            .replace("{file}", "")
            .replace("{rest}", "nothing");
        for token in [Some(ADMIN_TOKEN), None] {
            let mut request = console.http.get(console.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.expect("answer");
            let headers = answer.headers();
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            let html = headers
                .get("content-type")
                .is_some_and(|kind| kind.as_bytes().starts_with(b"text/html"));
            if html {
                html_routes.push(path.clone());
                assert_eq!(headers["x-frame-options"], "DENY", "{path}");
                assert_eq!(headers["cache-control"], "no-store", "{path}");
                let policy = headers["content-security-policy"].to_str().expect("text");
                assert!(
                    policy.contains("frame-ancestors 'none'"),
                    "{path}: {policy}"
                );
            }
        }
    }
    // Swagger UI's page, where an operator may type the admin token.
    assert!(
        html_routes.contains(&"/docs/".to_owned()),
        "{html_routes:?}"
    );
    let docs = console
        .http
        .get(console.url("/docs/"))
        .send()
        .await
        .expect("answer");
    assert_eq!(docs.status(), 200);
    assert_eq!(
        docs.headers()["content-security-policy"],
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    );
    assert!(html_routes.contains(&"/ui".to_owned()));

    // Answers no route makes: a path no route serves, a method a route
    // does not answer, and a Host refused before any route.
    let unrouted = [
        console.http.get(console.url("/nowhere")),
        console.http.put(console.url("/healthz")),
        console
            .http
            .get(console.url("/nowhere"))
            .header("host", "evil.example"),
    ];
    for (request, status) in unrouted.into_iter().zip([404, 405, 403]) {
        let answer = request.send().await.expect("answer");
        assert_eq!(answer.status(), status);
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{status}"
        );
    }
}

/// The session's `GET /session/<id>` answer.
async fn session_json(console: &Console, id: &str) -> serde_json::Value {
    console
        .http
        .get(console.url(&format!("/session/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON")
}

/// The session's audit records, once the trail has written every call
/// that has finished.
async fn audit_records(console: &Console, id: &str) -> Vec<serde_json::Value> {
    assert!(console.app.mux.audit_settled(Duration::from_secs(10)).await);
    let answer: serde_json::Value = console
        .http
        .get(console.url(&format!("/session/{id}/audit")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    answer["records"].as_array().expect("records").clone()
}

#[tokio::test]
async fn a_session_page_shows_its_tools_prompts_rules_and_unmatched_rules() {
    let console = console(false).await;
    let created = console
        .create_session(json!({
            "servers": ["alpha", "kb"],
            "credentials": { "kb": { "token": CREDENTIAL } },
            "rate_limit": 50,
            "tools": {
                "alpha": {
                    "deny": ["add"],
                    "rename": { "echo": "say" },
                    "description": { "echo": format!("Says it back {HOSTILE}") },
                },
                "kb": { "allow": ["echo", "nothing-*"] },
            },
        }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let (status, shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert_eq!(status, 200);
    for expected in [
        // Tools: the name clients use, where it comes from, the rules.
        "<tr><td><code>alpha__say</code></td><td><code>alpha</code> <span class=\"muted\">as</span> <code>echo</code></td><td>Says it back &lt;script&gt;alert(1)&lt;/script&gt;",
        "<td><code>tools.alpha.rename.echo</code><br><code>tools.alpha.description.echo</code></td>",
        "<tr><td><code>kb__echo</code></td><td><code>kb</code> <span class=\"muted\">as</span> <code>echo</code></td><td>Echo the text back, prefixed with the backend&#39;s label",
        // Prompts.
        "<tr><td><code>alpha__greeting</code></td><td><code>alpha</code> <span class=\"muted\">as</span> <code>greeting</code></td><td>Greet someone, from this backend</td><td></td></tr>",
        "No resources listed.",
        // Rules, mode and rate.
        "<tr><th>Tool mode</th><td>direct</td></tr>",
        "<tr><th>Rate limit</th><td>50 requests a second</td></tr>",
        "<tr><td><code>tools.alpha</code></td><td><span class=\"muted\">all</span></td><td><code>add</code></td><td><code>echo</code> → say</td>",
        "<tr><td><code>tools.kb</code></td><td><code>echo</code> <code>nothing-*</code></td><td></td><td></td><td></td></tr>",
        "<li><code>tools.kb.allow[1] (&quot;nothing-*&quot;)</code></li>",
        // Backends, with state and reason.
        "<td><code>kb</code></td><td>bearer</td><td><span class=\"state\">ready</span> <span class=\"muted\">&quot;kb&quot; answers</span></td>",
        // The form to try a tool offers the tools shown.
        "<option value=\"alpha__say\">alpha__say</option>",
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    for hidden in ["alpha__add", "kb__add", HOSTILE] {
        assert!(!shown.contains(hidden), "{hidden} is not shown");
    }
    // The page lists tools without using the session's calls: no record.
    assert!(audit_records(&console, id).await.is_empty());
}

#[tokio::test]
async fn trying_a_tool_shows_its_result_and_its_audit_record() {
    let console = console(false).await;
    let created = console
        .create_session(json!({
            "servers": ["alpha"],
            "tools": { "alpha": { "rename": { "echo": "say" } } },
        }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let (status, tried) = page(
        console
            .post(
                &format!("/ui/session/{id}/call"),
                &[("tool", "alpha__say"), ("arguments", r#"{"text": "hi"}"#)],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{tried}");
    assert!(
        tried.contains("&quot;text&quot;: &quot;alpha: hi&quot;"),
        "the result: {tried}"
    );
    assert!(
        tried.contains("<td>alpha</td><td><code>alpha__say</code></td><td>ok</td><td></td>"),
        "the audit record: {tried}"
    );
    assert!(
        tried.contains("<textarea name=\"arguments\" rows=\"5\" cols=\"70\" spellcheck=\"false\">{&quot;text&quot;: &quot;hi&quot;}</textarea>"),
        "the form again, filled in: {tried}"
    );
    assert!(tried.contains("<option value=\"alpha__say\" selected>"));
    // The same record as a client's call gets, under the session.
    let records = audit_records(&console, id).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["tool"], "alpha__say");
    assert_eq!(records[0]["backend"], "alpha");
    assert_eq!(records[0]["outcome"], "ok");

    // A tool's own failure is a result, recorded as such.
    let (status, failed) = page(
        console
            .post(
                &format!("/ui/session/{id}/call"),
                &[("tool", "alpha__add"), ("arguments", r#"{"a": "x"}"#)],
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert!(failed.contains("&quot;isError&quot;: true"), "{failed}");
    assert!(
        failed
            .contains("<td>alpha</td><td><code>alpha__add</code></td><td>tool_error</td><td></td>"),
        "{failed}"
    );
}

#[tokio::test]
async fn try_it_refuses_bad_arguments_and_unknown_tools_by_name() {
    let console = console(false).await;
    let created = console
        .create_session(json!({ "servers": ["alpha"], "tools": { "alpha": { "deny": ["add"] } } }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let call = format!("/ui/session/{id}/call");
    for (form, message) in [
        (
            vec![("tool", "alpha__echo"), ("arguments", r#"{"text":"#)],
            "arguments: is not valid JSON (EOF while parsing a value at line 1 column 8)",
        ),
        (
            vec![("tool", "alpha__echo"), ("arguments", "[1]")],
            "arguments: must be a JSON object of the tool&#39;s arguments",
        ),
        (
            vec![("tool", "alpha__echo"), ("arguments", "\"hi\"")],
            "arguments: must be a JSON object of the tool&#39;s arguments",
        ),
        (
            vec![("tool", ""), ("arguments", "{}")],
            "tool: is required: the name of one of the session&#39;s tools",
        ),
    ] {
        let (status, refused) = page(console.post(&call, &form).await).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(error_message(&refused), message);
        assert!(
            refused.contains("action=\"/ui/session/"),
            "the form is shown again"
        );
    }
    assert!(
        audit_records(&console, id).await.is_empty(),
        "nothing was called"
    );

    // A name the session does not show is unknown, as to a client; the
    // call is recorded, as a client's is.
    for (tool, message) in [
        ("alpha__add", "unknown tool &quot;alpha__add&quot;"),
        (
            HOSTILE,
            "unknown tool &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;",
        ),
    ] {
        let (status, refused) = page(
            console
                .post(&call, &[("tool", tool), ("arguments", "{}")])
                .await,
        )
        .await;
        assert_eq!(status, 404, "{tool}");
        assert_eq!(error_message(&refused), message);
        assert!(!refused.contains(HOSTILE));
    }
    let records = audit_records(&console, id).await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|record| record["error_class"] == "unknown_tool")
    );

    let (status, missing) = page(
        console
            .post(
                "/ui/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/call",
                &[("tool", "alpha__echo")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        error_message(&missing),
        "no session &quot;0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61&quot;"
    );
}

#[tokio::test]
async fn the_create_form_sets_rules_mode_and_rate_and_the_session_page_shows_them() {
    let console = console(false).await;
    let (status, form) = page(console.get("/ui/create-session").await).await;
    assert_eq!(status, 200);
    for field in [
        "name=\"tools.alpha.allow\"",
        "name=\"tools.alpha.deny\"",
        "name=\"tools.alpha.rename\"",
        "name=\"tools.alpha.description\"",
        "name=\"rate_limit\"",
        "name=\"tool_mode\"",
    ] {
        assert!(form.contains(field), "{field} in {form}");
    }
    let (status, created) = page(
        console
            .post(
                "/ui/create-session",
                &[
                    ("servers", "alpha"),
                    ("tools.alpha.allow", "echo, add,\nget-*"),
                    ("tools.alpha.deny", ""),
                    ("tools.alpha.rename", "echo=say\n\n"),
                    (
                        "tools.alpha.description",
                        "add = Adds two integers, exactly.",
                    ),
                    ("tools.kb.allow", ""),
                    ("rate_limit", "7"),
                    ("tool_mode", "search"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created
        .split("href=\"/ui/session/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the session")
        .to_owned();
    let shown = session_json(&console, &id).await;
    assert_eq!(
        shown["tools"],
        json!({ "alpha": {
            "allow": ["echo", "add", "get-*"],
            "rename": { "echo": "say" },
            "description": { "add": "Adds two integers, exactly." },
        } })
    );
    assert_eq!(shown["tool_mode"], "search");
    assert_eq!(shown["rate_limit"], 7);

    let (_, page_shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
    for expected in [
        "<tr><th>Rate limit</th><td>7 requests a second</td></tr>",
        "<tr><th>Tool mode</th><td>search</td></tr>",
        "<code>search_tools</code>",
        "<td><code>echo</code> <code>add</code> <code>get-*</code></td>",
        "<td><code>echo</code> → say</td><td><code>add</code> : Adds two integers, exactly.</td>",
        "<tr><td><code>alpha__say</code></td>",
        "<li><code>tools.alpha.allow[2] (&quot;get-*&quot;)</code></li>",
    ] {
        assert!(page_shown.contains(expected), "{expected} in {page_shown}");
    }
}

#[tokio::test]
async fn a_bad_rule_in_the_create_form_is_refused_naming_its_field_and_kept() {
    let console = console(false).await;
    for (form, message) in [
        (
            vec![
                ("servers", "alpha"),
                ("tools.alpha.rename", "echo=bad name!"),
            ],
            "tools.alpha.rename.echo: makes the tool name &quot;alpha__bad name!&quot;, which is not 1 to 64 of A-Z a-z 0-9 _ -",
        ),
        (
            vec![("servers", "alpha"), ("tools.alpha.description", "echo")],
            "tools.alpha.description.echo: must be a non-empty string",
        ),
        (
            vec![("servers", "alpha"), ("tools.kb.deny", "add")],
            "tools.kb: names a server that is not in servers",
        ),
        (
            vec![("servers", "alpha"), ("tools.alpha.colour", "red")],
            "tools.alpha.colour: unknown field; expected allow, deny, rename, description",
        ),
        (
            vec![("servers", "alpha"), ("rate_limit", "0")],
            "rate_limit: must be a whole number of requests a second from 1 to 1000000",
        ),
        (
            vec![("servers", "alpha"), ("rate_limit", "fast")],
            "rate_limit: must be a whole number of requests a second from 1 to 1000000",
        ),
        (
            vec![("servers", "alpha"), ("tool_mode", "fast")],
            "tool_mode: must be &quot;direct&quot; or &quot;search&quot;",
        ),
    ] {
        let (status, refused) = page(console.post("/ui/create-session", &form).await).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(error_message(&refused), message, "{form:?}");
    }
    let (status, kept) = page(
        console
            .post(
                "/ui/create-session",
                &[
                    ("servers", "alpha"),
                    ("tools.alpha.rename", "echo=<b>\"x\""),
                    ("rate_limit", "3"),
                    ("tool_mode", "search"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        kept.contains("<details class=\"indent\" open><summary>Tool rules for <code>alpha</code>"),
        "the filled-in rules are open: {kept}"
    );
    assert!(
        kept.contains("name=\"tools.alpha.rename\" rows=\"2\" cols=\"60\" spellcheck=\"false\">echo=&lt;b&gt;&quot;x&quot;</textarea>"),
        "{kept}"
    );
    assert!(kept.contains("name=\"rate_limit\" min=\"1\" value=\"3\""));
    assert!(kept.contains("<option value=\"search\" selected>"));
    assert_eq!(
        console
            .app
            .mux
            .store()
            .count_sessions()
            .await
            .expect("count"),
        0,
        "no session was made"
    );
}

#[tokio::test]
async fn deleting_asks_first_and_then_says_it_is_done() {
    let console = console(false).await;
    let created = console
        .create_session(json!({ "servers": ["alpha"] }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let (_, shown) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert!(shown.contains(&format!(
        "<a class=\"danger\" href=\"/ui/session/{id}/delete\">Delete</a>"
    )));

    let (status, asked) = page(console.get(&format!("/ui/session/{id}/delete")).await).await;
    assert_eq!(status, 200);
    assert!(asked.contains(&format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/session/{id}/delete\">"
    )));
    assert!(asked.contains("<input type=\"hidden\" name=\"confirm\" value=\"yes\">"));

    for form in [vec![], vec![("confirm", "no")]] {
        let (status, refused) = page(
            console
                .post(&format!("/ui/session/{id}/delete"), &form)
                .await,
        )
        .await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(
            error_message(&refused),
            "confirm: must be &quot;yes&quot; to delete the session: confirm on this page"
        );
        assert!(
            refused.contains("name=\"confirm\" value=\"yes\""),
            "asks again"
        );
        assert_eq!(session_json(&console, id).await["status"], "active");
    }

    let deleted = console
        .post(&format!("/ui/session/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status(), 303);
    let location = deleted.headers()["location"].to_str().expect("text");
    assert_eq!(location, format!("/ui?deleted={id}"));
    let (status, list) = page(console.get(location).await).await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!(
        "<p class=\"notice\">Session <code>{id}</code> is deleted.</p>"
    )));

    for path in [
        format!("/ui/session/{id}/delete"),
        format!("/ui/session/{id}"),
    ] {
        let (status, gone) = page(console.get(&path).await).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_message(&gone), format!("no session &quot;{id}&quot;"));
    }
    let (status, gone) = page(
        console
            .post(&format!("/ui/session/{id}/delete"), &[("confirm", "yes")])
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&gone), format!("no session &quot;{id}&quot;"));
}

/// The session ids a list page links to, in order.
fn listed_ids(list: &str) -> Vec<String> {
    list.split("<a href=\"/ui/session/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        // Not the delete links.
        .filter(|path| !path.contains('/'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_list_is_newest_first_filtered_by_name_label_backend_and_owner() {
    let console = console(false).await;
    let mut ids = Vec::new();
    for body in [
        json!({ "servers": ["alpha"], "name": "Nightly build", "labels": { "team": "platform", "env": "ci" } }),
        json!({ "servers": ["alpha", "kb"], "credentials": { "kb": { "token": CREDENTIAL } }, "name": "nightly <b>", "labels": { "team": "search" } }),
        json!({ "servers": ["alpha"] }),
    ] {
        let created = console.create_session(body).await;
        ids.push(created["session_id"].as_str().expect("id").to_owned());
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let (status, list) = page(console.get("/ui").await).await;
    assert_eq!(status, 200);
    assert_eq!(listed_ids(&list), newest_first);
    assert!(list.contains(&format!(
        "<tr><td><strong>Nightly build</strong><br><a href=\"/ui/session/{}\">",
        ids[0]
    )));
    assert!(list.contains("<td><code>env=ci</code> <code>team=platform</code></td>"));
    assert!(list.contains("<strong>nightly &lt;b&gt;</strong>"));
    assert!(list.contains("<form class=\"filter\" method=\"get\" action=\"/ui\">"));

    for (query, wanted) in [
        // Empty fields, as the form sends them, filter nothing.
        ("name=&label=&server=&owner=", newest_first.clone()),
        ("name=NIGHTLY", vec![ids[1].clone(), ids[0].clone()]),
        ("name=nightly&label=team%3Dplatform", vec![ids[0].clone()]),
        ("label=team%3Dsearch&label=env%3Dci", vec![]),
        ("server=kb", vec![ids[1].clone()]),
        ("owner=someone", vec![]),
    ] {
        let (status, list) = page(console.get(&format!("/ui?{query}")).await).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(listed_ids(&list), wanted, "{query}");
        if wanted.is_empty() {
            assert!(list.contains("No session passes the filter."), "{query}");
        }
    }
    let (_, kept) = page(
        console
            .get("/ui?name=%22x%3C&label=team%3Dsearch&server=kb")
            .await,
    )
    .await;
    assert!(
        kept.contains("name=\"name\" value=\"&quot;x&lt;\""),
        "{kept}"
    );
    assert!(kept.contains("name=\"label\" placeholder=\"key=value\" value=\"team=search\""));
    assert!(kept.contains("<option value=\"kb\" selected>kb</option>"));
    assert!(kept.contains("<a href=\"/ui\">Show all</a>"));

    for (query, message) in [
        (
            "label=team",
            "label: must be key=value, as in label=team=platform",
        ),
        (
            "colour=red",
            "colour: unknown parameter; expected limit, after, name, label, server, owner",
        ),
        (
            "after=x",
            "after: must be the next_after of an earlier answer",
        ),
    ] {
        let (status, refused) = page(console.get(&format!("/ui?{query}")).await).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error_message(&refused), message, "{query}");
        assert!(
            refused.contains("<form class=\"filter\""),
            "the filter form again"
        );
    }
}

#[tokio::test]
async fn the_list_pages_keep_their_filter() {
    let console = console(false).await;
    let mut ids = Vec::new();
    for n in 0..101 {
        let created = console
            .create_session(json!({ "servers": ["alpha"], "name": format!("bulk {n}") }))
            .await;
        ids.push(created["session_id"].as_str().expect("id").to_owned());
    }
    console
        .create_session(json!({ "servers": ["alpha"], "name": "other" }))
        .await;
    let (_, first) = page(console.get("/ui?name=bulk").await).await;
    let listed = listed_ids(&first);
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0], ids[100], "newest first");
    let next = first
        .split("<p><a href=\"/ui?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    assert!(next.starts_with("name=bulk&after="), "{next}");
    let (status, second) = page(console.get(&format!("/ui?{next}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(listed_ids(&second), vec![ids[0].clone()]);
    assert!(!second.contains("Next page"));
}

#[tokio::test]
async fn the_create_form_sets_a_name_and_labels_and_refuses_bad_ones_by_field() {
    let console = console(false).await;
    let (status, created) = page(
        console
            .post(
                "/ui/create-session",
                &[
                    ("name", "Nightly <b>"),
                    ("labels", "team=platform\n\nenv = ci\n"),
                    ("servers", "alpha"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.contains("<tr><th>Name</th><td>Nightly &lt;b&gt;</td></tr>"));
    assert!(
        created.contains(
            "<tr><th>Labels</th><td><code>env=ci</code> <code>team=platform</code></td></tr>"
        ),
        "{created}"
    );
    let id = created
        .split("href=\"/ui/session/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the session")
        .to_owned();
    let shown = session_json(&console, &id).await;
    assert_eq!(shown["name"], "Nightly <b>");
    assert_eq!(shown["labels"], json!({ "team": "platform", "env": "ci" }));
    let (_, detail) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert!(detail.contains("<tr><th>Name</th><td>Nightly &lt;b&gt;</td></tr>"));
    assert!(detail.contains(
        "<tr><th>Labels</th><td><code>env=ci</code> <code>team=platform</code></td></tr>"
    ));

    for (form, message) in [
        (
            vec![("servers", "alpha"), ("labels", "team=plat form")],
            "labels.team: is no label value: use 0 to 63 letters, digits and . _ - / : @",
        ),
        (
            vec![("servers", "alpha"), ("labels", "-team=x")],
            "labels: key &quot;-team&quot; is no label key: use 1 to 63 letters, digits and . _ - /, starting with a letter or digit",
        ),
        (
            vec![("servers", "alpha"), ("name", &"n".repeat(65))],
            "name: must be at most 64 characters",
        ),
    ] {
        let (status, refused) = page(console.post("/ui/create-session", &form).await).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(error_message(&refused), message, "{form:?}");
    }
    let (_, kept) = page(
        console
            .post(
                "/ui/create-session",
                &[("servers", "alpha"), ("name", "x\"y"), ("labels", "a=<b>")],
            )
            .await,
    )
    .await;
    assert!(
        kept.contains("name=\"name\" size=\"40\" value=\"x&quot;y\""),
        "{kept}"
    );
    assert!(kept.contains("spellcheck=\"false\">a=&lt;b&gt;</textarea>"));
    assert_eq!(
        console
            .app
            .mux
            .store()
            .count_sessions()
            .await
            .expect("count"),
        1,
        "only the good one was made"
    );
}

#[tokio::test]
async fn try_it_takes_the_session_s_rate_as_a_client_s_call_does() {
    // One request, then one every 100 s.
    let console = console_with(
        false,
        Rates {
            session: Some(Rate {
                per_second: 0.01,
                burst: 1,
            }),
            ..Rates::default()
        },
    )
    .await;
    let created = console
        .create_session(json!({ "servers": ["alpha"] }))
        .await;
    let id = created["session_id"].as_str().expect("id");
    let call = format!("/ui/session/{id}/call");
    // Refused arguments use none of it; nor does the session's page.
    let (status, _) = page(
        console
            .post(&call, &[("tool", "alpha__echo"), ("arguments", "[]")])
            .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = page(console.get(&format!("/ui/session/{id}")).await).await;
    assert_eq!(status, 200);
    let form = [("tool", "alpha__echo"), ("arguments", r#"{"text": "hi"}"#)];
    let (status, _) = page(console.post(&call, &form).await).await;
    assert_eq!(status, 200);
    let refused = console.post(&call, &form).await;
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=100).contains(&wait), "{wait}");
    let (status, refused) = page(refused).await;
    assert_eq!(status, 429);
    assert_eq!(
        error_message(&refused),
        format!("too many requests on this session; retry after {wait} s")
    );
    assert_eq!(
        audit_records(&console, id).await.len(),
        1,
        "one call was made"
    );
}
