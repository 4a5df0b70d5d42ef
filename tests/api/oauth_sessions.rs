//! Sessions over an OAuth backend: the link in the create-session answer,
//! the callback, calls carrying the grant's token, refresh (once however
//! many calls wait), a refused grant, revocation on delete, and every way
//! a user's link or callback can go wrong, each with its exact answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{RawMcp, TestApp, eventually, first_text, registry_yaml, spawn_app};
use crate::oauth_backend::{AuthServerOptions, Iss, OAuthBackend, spawn_oauth_backend};

/// A gateway over one OAuth backend named `files`, and the backend.
async fn gateway(options: AuthServerOptions) -> (TestApp, OAuthBackend) {
    let backend = spawn_oauth_backend(options).await;
    let app = spawn_app(&registry_yaml(&[(
        "files",
        &backend.mcp_url,
        "auth: { type: oauth }",
    )]))
    .await;
    (app, backend)
}

/// Creates a session over `files` and returns its answer.
async fn create(app: &TestApp, body: Value) -> Value {
    let response = app.post_create_session(&body).await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

/// A browser: follows redirects, keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// Opens a link as a browser would: the status and text of the last page.
async fn open(link: &str) -> (u16, String) {
    let response = browser().get(link).send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// The message a page shows (its paragraph).
fn shown(page: &str) -> &str {
    let start = page
        .find("<p")
        .and_then(|at| page[at..].find('>').map(|end| at + end + 1));
    let start = start.unwrap_or_else(|| panic!("no paragraph in {page}"));
    let end = page[start..].find("</p>").expect("paragraph ends") + start;
    &page[start..end]
}

fn link_of(created: &Value) -> String {
    created["authorization"]["files"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no link in {created}"))
        .to_owned()
}

#[tokio::test]
async fn a_session_connects_an_oauth_backend_through_its_link_then_calls_it() {
    let (app, backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let link = link_of(&created);
    assert_eq!(created["authorization"]["files"]["status"], "needed");
    assert_eq!(
        link,
        format!("{}/session/{id}/authorize/files", app.address)
    );

    // Before: the backend's tools are not listed, and a call says why.
    let mut mcp = app.mcp(&id).await;
    assert_eq!(mcp.tool_names().await, Vec::<String>::new());
    let waiting = mcp.call_tool("files__echo", json!({ "text": "hi" })).await;
    assert_eq!(waiting["result"]["isError"], true);
    assert_eq!(
        first_text(&waiting),
        format!(
            "\"files\" needs authorization: open {}/session/{id}/authorize/files to connect it to this session, then call again",
            app.address
        )
    );
    let shown_before = app.shown_session(&id).await;
    assert_eq!(shown_before["servers"][0]["state"], "needs_authorization");
    assert_eq!(
        shown_before["servers"][0]["authorization"],
        json!({ "status": "needed", "url": link })
    );

    let console = app
        .http
        .get(format!("{}/ui/session/{id}", app.address))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("page");
    assert!(
        console.contains("needs_authorization")
            && console.contains(&format!("<a href=\"{link}\">authorization link</a>")),
        "{console}"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("mcp_mux_session_backends{state=\"needs_authorization\"} 1"),
        "{metrics}"
    );

    let (status, page) = open(&link).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        shown(&page),
        "files is connected to this session; you can close this tab."
    );
    assert_eq!(backend.counts.registrations.load(Ordering::SeqCst), 1);
    assert_eq!(backend.counts.codes_redeemed.load(Ordering::SeqCst), 1);

    // The open MCP session takes the backend up: its tools appear.
    assert!(
        eventually(|| async {
            let mut again = mcp.in_same_session();
            again.tool_names().await.contains(&"files__echo".to_owned())
        })
        .await
    );
    let answered = mcp.call_tool("files__echo", json!({ "text": "hi" })).await;
    assert_eq!(first_text(&answered), "protected: hi");

    let text = app
        .http
        .get(format!("{}/session/{id}", app.address))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    assert!(!text.contains("access-secret"), "a token is shown: {text}");
    assert!(!text.contains("refresh-secret"), "a token is shown: {text}");
    let after: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(after["servers"][0]["state"], "ready");
    assert_eq!(after["servers"][0]["authorization"]["status"], "connected");
    assert!(after["servers"][0]["authorization"]["expires_at"].is_string());
    assert!(after["servers"][0]["authorization"].get("url").is_none());

    // Deleting the session revokes its grant at the server.
    let deleted = app
        .http
        .delete(format!("{}/session/{id}", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);
    assert!(eventually(|| async { backend.counts.revocations.load(Ordering::SeqCst) == 1 }).await);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_takes_url_elicitations_is_asked_to_open_the_link() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id");
    let mut mcp = RawMcp::new(app.mcp_url(id));
    let response = mcp
        .post(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": { "elicitation": { "url": {} } },
                        "clientInfo": { "name": "test", "version": "1" } }
        }))
        .await;
    mcp.session_id = Some(
        response.headers()["mcp-session-id"]
            .to_str()
            .expect("ascii")
            .to_owned(),
    );
    let asked = mcp.call_tool("files__echo", json!({ "text": "hi" })).await;
    let link = format!("{}/session/{id}/authorize/files", app.address);
    let message = format!(
        "\"files\" needs authorization: open {link} to connect it to this session, then call again"
    );
    assert_eq!(asked["error"]["code"], -32042);
    assert_eq!(asked["error"]["message"], message);
    let elicitation = &asked["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert_eq!(elicitation["url"], link);
    assert_eq!(elicitation["message"], message);
    assert!(elicitation["elicitationId"].is_string());

    let (status, _) = open(&link).await;
    assert_eq!(status, 200);
    assert!(
        eventually(|| async {
            let mut again = mcp.in_same_session();
            let answer = again
                .call_tool("files__echo", json!({ "text": "on" }))
                .await;
            answer["result"]["content"][0]["text"] == "protected: on"
        })
        .await
    );
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_however_many_calls_wait_and_rotation_holds() {
    let (app, backend) = gateway(AuthServerOptions {
        expires_in: Duration::from_secs(2),
        ..AuthServerOptions::default()
    })
    .await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    assert_eq!(open(&link_of(&created)).await.0, 200);
    let mcp = app.mcp(&id).await;
    for round in 1..=2 {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let calls = (0..10).map(|call| {
            let mut client = mcp.in_same_session();
            async move {
                let answer = client
                    .call_tool("files__echo", json!({ "text": format!("{round}-{call}") }))
                    .await;
                first_text(&answer).to_owned()
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        for (call, answer) in answers.iter().enumerate() {
            assert_eq!(*answer, format!("protected: {round}-{call}"));
        }
        assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), round);
    }
    assert_eq!(backend.counts.refresh_reuses.load(Ordering::SeqCst), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_refresh_sets_the_backend_back_to_needing_authorization() {
    let (app, backend) = gateway(AuthServerOptions {
        expires_in: Duration::from_secs(1),
        refuse_refresh: true,
        ..AuthServerOptions::default()
    })
    .await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    assert_eq!(open(&link_of(&created)).await.0, 200);
    let mut mcp = app.mcp(&id).await;
    assert_eq!(
        first_text(&mcp.call_tool("files__echo", json!({ "text": "a" })).await),
        "protected: a"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = mcp.call_tool("files__echo", json!({ "text": "b" })).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert!(
        first_text(&refused).starts_with("\"files\" needs authorization: open "),
        "{refused}"
    );
    let shown = app.shown_session(&id).await;
    assert_eq!(shown["servers"][0]["state"], "needs_authorization");
    assert_eq!(shown["servers"][0]["authorization"]["status"], "needed");
    assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_link_of_a_session_with_a_token_needs_the_token_or_its_one_time_key() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"], "require_token": true })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let link = link_of(&created);
    let bare = format!("{}/session/{id}/authorize/files", app.address);
    assert!(link.starts_with(&format!("{bare}?key=")), "{link}");

    let (status, page) = open(&bare).await;
    assert_eq!(status, 401);
    assert_eq!(
        shown(&page),
        "this session requires a token: open the authorization link with its one-time key, as the session&#39;s holder got it"
    );
    let (status, page) = open(&format!("{bare}?key=wrong")).await;
    assert_eq!(status, 403);
    assert_eq!(
        shown(&page),
        "this authorization link was used already or has expired; GET /session/&lt;id&gt; or the tool call&#39;s error gives a new one"
    );
    let (status, page) = open(&format!("{}/session/{id}/authorize/other", app.address)).await;
    assert_eq!(status, 404);
    assert_eq!(
        shown(&page),
        "this session has no OAuth backend &quot;other&quot;"
    );

    assert_eq!(open(&link).await.0, 200);
    // Used once.
    assert_eq!(open(&link).await.0, 403);
    // The session's token opens it too.
    let with_token = browser()
        .get(&bare)
        .bearer_auth(created["session_token"].as_str().expect("token"))
        .send()
        .await
        .expect("answers");
    assert_eq!(with_token.status(), 200);
    app.stop().await;
}

/// Where the authorization server sends the user back, without going
/// there: the link's redirect, then the authorization server's.
async fn authorization_answer(link: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut url = link.to_owned();
    for _ in 0..2 {
        let response = client.get(&url).send().await.expect("answers");
        assert_eq!(response.status(), 302, "{url}");
        url = response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
    }
    url
}

/// A callback URL on the gateway with these parameters.
fn callback(app: &TestApp, query: &str) -> String {
    format!("{}/oauth/callback?{query}", app.address)
}

#[tokio::test]
async fn a_callback_mcp_mux_did_not_ask_for_or_already_took_is_refused() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let (status, page) = open(&callback(&app, "code=x")).await;
    assert_eq!(status, 400);
    assert_eq!(
        shown(&page),
        "the callback carries no state: it did not come from an authorization mcp-mux began"
    );
    let unknown = "this authorization was already completed, has expired (after 10 minutes) or was not begun by this gateway; open the session&#39;s authorization link again";
    let (status, page) = open(&callback(&app, "code=x&state=forged")).await;
    assert_eq!(status, 400);
    assert_eq!(shown(&page), unknown);

    // The authorization server's answer, kept to be replayed.
    let answer = authorization_answer(&link_of(&created)).await;
    assert!(answer.starts_with(&callback(&app, "")), "{answer}");
    let (status, _) = open(&answer).await;
    assert_eq!(status, 200);
    let (status, page) = open(&answer).await;
    assert_eq!(status, 400, "a replayed callback");
    assert_eq!(shown(&page), unknown);
    // The replay changed nothing: the grant the first one made stands.
    let shown_after = app.shown_session(&id).await;
    assert_eq!(shown_after["servers"][0]["state"], "not_opened");
    assert_eq!(
        shown_after["servers"][0]["authorization"]["status"],
        "connected"
    );
    app.stop().await;
}

/// Opens a fresh session's link against a misbehaving authorization
/// server: the page's status and message, and the session's state after.
async fn failed_authorization(options: AuthServerOptions) -> (u16, String, Value) {
    let (app, _backend) = gateway(options).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let (status, page) = open(&link_of(&created)).await;
    let shown_after = app.shown_session(&id).await;
    app.stop().await;
    (status, shown(&page).to_owned(), shown_after)
}

#[tokio::test]
async fn each_misbehaving_authorization_server_is_named_and_nothing_is_stored() {
    let cases: [(AuthServerOptions, u16, &str); 5] = [
        (
            AuthServerOptions {
                s256: false,
                ..Default::default()
            },
            502,
            "does not offer PKCE with S256 (code_challenge_methods_supported lacks S256)",
        ),
        (
            AuthServerOptions {
                refuse_registration: true,
                ..Default::default()
            },
            502,
            "the authorization server refused to register mcp-mux (HTTP 400)",
        ),
        (
            AuthServerOptions {
                iss: Iss::Other,
                ..Default::default()
            },
            400,
            "the answer names issuer https://evil.example, not http://127.0.0.1:",
        ),
        (
            AuthServerOptions {
                iss: Iss::Missing,
                ..Default::default()
            },
            400,
            "the answer does not name its issuer, which http://127.0.0.1:",
        ),
        (
            AuthServerOptions {
                garbage_tokens: true,
                ..Default::default()
            },
            502,
            "redeeming the code failed: the token endpoint http://127.0.0.1:",
        ),
    ];
    for (options, status, message) in cases {
        let (got_status, page, after) = failed_authorization(options).await;
        assert_eq!(got_status, status, "{page}");
        assert!(page.contains(message), "{page} lacks {message}");
        assert_eq!(after["servers"][0]["state"], "needs_authorization");
        assert_eq!(after["servers"][0]["authorization"]["status"], "needed");
    }
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_is_named_on_the_page() {
    let (app, backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    // The authorization server stops once the user is on their way back.
    let answer = authorization_answer(&link_of(&created)).await;
    let issuer = backend.issuer.clone();
    drop(backend);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, page) = open(&answer).await;
    assert_eq!(status, 502);
    assert!(
        shown(&page).starts_with(&format!(
            "redeeming the code failed: cannot reach the token endpoint {issuer}/token"
        )),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_backend_that_wants_more_scope_gets_the_user_asked_for_it() {
    let (app, _backend) = gateway(AuthServerOptions {
        required_scope: Some("admin"),
        ..AuthServerOptions::default()
    })
    .await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    assert_eq!(open(&link_of(&created)).await.0, 200);
    let mut mcp = app.mcp(&id).await;
    // Listing needs the scope too: the backend is down until the user
    // grants it, and a call says so with a link that asks for it.
    let asked = mcp.call_tool("files__echo", json!({ "text": "x" })).await;
    let step_up = format!(
        "{}/session/{id}/authorize/files?scope=echo+admin",
        app.address
    );
    assert_eq!(
        first_text(&asked),
        format!(
            "\"files\" needs authorization: open {step_up} to connect it to this session, then call again"
        )
    );
    // The session's page says so too, with the same link.
    let shown_now = app.shown_session(&id).await;
    assert_eq!(shown_now["servers"][0]["state"], "needs_authorization");
    // The reason names no link: a link may hold a one-time key.
    assert_eq!(
        shown_now["servers"][0]["reason"],
        "backend \"files\" needs authorization: the session's user must open its authorization link"
    );
    assert_eq!(
        shown_now["servers"][0]["authorization"],
        json!({ "status": "needed", "url": step_up })
    );
    let base = format!("{}/session/{id}/authorize/files", app.address);
    let (status, page) = open(&format!("{base}?scope=bad%22scope")).await;
    assert_eq!(status, 400);
    assert_eq!(
        shown(&page),
        "scope: a scope is one word of printable characters, without quotes or backslashes"
    );
    let (status, page) = open(&format!("{step_up}&scope=more")).await;
    assert_eq!(status, 400);
    assert_eq!(shown(&page), "scope: is given twice");
    let (status, page) = open(&callback(&app, "state=a&state=b")).await;
    assert_eq!(status, 400);
    assert_eq!(shown(&page), "state: is given twice");
    assert_eq!(open(&step_up).await.0, 200);
    assert!(
        eventually(|| async {
            let mut again = mcp.in_same_session();
            let answer = again.call_tool("files__echo", json!({ "text": "y" })).await;
            answer["result"]["content"][0]["text"] == "protected: y"
        })
        .await
    );
    app.stop().await;
}

/// POSTs a revision 2026-07-28 request (no MCP session) whose client
/// declares `capabilities`.
async fn stateless_call(url: &str, id: u64, params: Value, capabilities: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let response = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", params["name"].as_str().expect("name"))
        .json(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params }))
        .send()
        .await
        .expect("gateway answers");
    crate::helpers::read_message(response).await
}

#[tokio::test]
async fn a_stateless_client_is_asked_to_authorize_and_its_retry_completes_the_call() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let url = app.mcp_url(&id);
    let link = link_of(&created);
    let message = format!(
        "\"files\" needs authorization: open {link} to connect it to this session, then call again"
    );
    let call = json!({ "name": "files__echo", "arguments": { "text": "late" } });

    // A client without URL elicitation gets the link in a tool error.
    let plain = stateless_call(&url, 1, call.clone(), json!({ "elicitation": {} })).await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    assert_eq!(first_text(&plain), message);
    // So does a script over plain HTTP.
    let scripted = app
        .http
        .post(format!("{}/session/{id}/tools/files__echo", app.address))
        .json(&json!({ "text": "x" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(scripted.status(), 403);
    assert_eq!(
        scripted.json::<Value>().await.expect("JSON"),
        json!({ "error": "needs_authorization", "message": message })
    );

    let takes_url = json!({ "elicitation": { "url": {} } });
    let first = stateless_call(&url, 2, call.clone(), takes_url.clone()).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let requests = first["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    let (key, request) = requests.iter().next().expect("one request");
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "url");
    assert_eq!(request["params"]["url"], link);
    assert_eq!(request["params"]["message"], message);
    let state = first["result"]["requestState"].as_str().expect("state");

    // The user authorizes while the client's retry waits.
    let opening = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        open(&link).await.0
    });
    let mut retry = call.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key: { "action": "accept" } });
    let done = stateless_call(&url, 3, retry, takes_url.clone()).await;
    assert_eq!(opening.await.expect("opened"), 200);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(first_text(&done), "protected: late");
    app.stop().await;
}

#[tokio::test]
async fn a_stateless_client_whose_user_declines_gets_a_tool_error() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let url = app.mcp_url(created["session_id"].as_str().expect("id"));
    let call = json!({ "name": "files__echo", "arguments": { "text": "no" } });
    let takes_url = json!({ "elicitation": { "url": {} } });
    let first = stateless_call(&url, 1, call.clone(), takes_url.clone()).await;
    let key = first["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.keys().next().cloned())
        .expect("an input request");
    let mut retry = call;
    retry["requestState"] = first["result"]["requestState"].clone();
    retry["inputResponses"] = json!({ key: { "action": "decline" } });
    let done = stateless_call(&url, 2, retry, takes_url).await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert_eq!(
        first_text(&done),
        "\"files\" was not authorized: the user did not accept to open its authorization link"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_browser_finishes_only_an_authorization_it_began() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    // Someone opens the link and sends the authorization server's page on
    // to another person's browser, which consents and comes back.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let begun = client.get(link_of(&created)).send().await.expect("answers");
    assert_eq!(begun.status(), 302);
    let cookie = begun.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("mcp_mux_oauth_")
            && cookie.contains("; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=600"),
        "{cookie}"
    );
    let at_server = begun.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let answered = client.get(&at_server).send().await.expect("answers");
    let callback = answered.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();

    let elsewhere = client
        .get(&callback)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .expect("answers");
    assert_eq!(elsewhere.status(), 400);
    assert_eq!(
        shown(&elsewhere.text().await.expect("page")),
        "this authorization was begun in another browser; to connect your account, open the session&#39;s authorization link in this one"
    );
    assert_eq!(
        app.shown_session(&id).await["servers"][0]["state"],
        "needs_authorization"
    );

    // The browser that began it carries the cookie, and finishes it.
    let name_value = cookie.split(';').next().expect("name=value").to_owned();
    let home = client
        .get(&callback)
        .header("sec-fetch-mode", "navigate")
        .header("cookie", name_value)
        .send()
        .await
        .expect("answers");
    assert_eq!(home.status(), 200);
    assert!(
        home.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0"),
        "the cookie is cleared"
    );
    assert_eq!(
        app.shown_session(&id).await["servers"][0]["authorization"]["status"],
        "connected"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_one_time_key_is_not_used_up_by_an_authorization_that_could_not_begin() {
    let (app, _backend) = gateway(AuthServerOptions {
        s256: false,
        ..AuthServerOptions::default()
    })
    .await;
    let created = create(&app, json!({ "servers": ["files"], "require_token": true })).await;
    let link = link_of(&created);
    for _ in 0..2 {
        let (status, page) = open(&link).await;
        assert_eq!(status, 502, "{page}");
        assert!(
            shown(&page).contains("does not offer PKCE with S256"),
            "{page}"
        );
    }
    app.stop().await;
}

/// A session over `files` whose user connected it, and its grant as a
/// backend session of it sees it.
async fn connected_grant(
    options: AuthServerOptions,
) -> (
    TestApp,
    OAuthBackend,
    uuid::Uuid,
    mcp_mux::grants::SessionGrant,
) {
    let (app, backend) = gateway(options).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = uuid::Uuid::parse_str(created["session_id"].as_str().expect("id")).expect("uuid");
    assert_eq!(open(&link_of(&created)).await.0, 200);
    let server = app.mux.registry().server("files").expect("listed").clone();
    let holder = mcp_mux::store::GrantHolder::Session(id);
    let grant = app.mux.grants().for_session(id, &holder, server, false);
    (app, backend, id, grant)
}

#[tokio::test]
async fn a_token_refused_right_after_a_refusal_renewed_it_is_not_renewed_again() {
    use mcp_mux::backend::AccessTokens;
    use secrecy::ExposeSecret;
    let (app, backend, _id, grant) = connected_grant(AuthServerOptions::default()).await;
    let first = grant.current().await.expect("a token");
    // A backend that refuses it gets a renewed one...
    let second = grant.refused(&first, None).await.expect("renewed");
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), 1);
    // ...and refusing that one too says why, without spending another
    // refresh token.
    let refused = grant
        .refused(&second, None)
        .await
        .expect_err("not renewed again");
    assert_eq!(
        refused.to_string(),
        "backend \"files\" has no access token for now: the backend refused an access token issued moments ago, after refusing the one before: the grant may lack a scope, or name another resource (see auth.scopes and auth.resource)"
    );
    assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_token_refused_late_in_its_life_after_a_refusal_is_renewed_as_expired() {
    use mcp_mux::backend::AccessTokens;
    use secrecy::ExposeSecret;
    let (app, backend, _id, grant) = connected_grant(AuthServerOptions {
        expires_in: Duration::from_secs(2),
        ..AuthServerOptions::default()
    })
    .await;
    let first = grant.current().await.expect("a token");
    let second = grant.refused(&first, None).await.expect("renewed");
    // Past half its life, a refusal is the token expiring early (a JWT's
    // whole seconds, the clocks' skew), not a grant the backend refuses.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = grant.refused(&second, None).await.expect("renewed again");
    assert_ne!(second.expose_secret(), third.expose_secret());
    assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), 2);
    app.stop().await;
}

#[tokio::test]
async fn while_another_node_refreshes_a_grant_its_token_serves_until_it_expires() {
    use mcp_mux::backend::AccessTokens;
    use secrecy::ExposeSecret;
    let (app, backend, id, grant) = connected_grant(AuthServerOptions {
        expires_in: Duration::from_secs(3),
        ..AuthServerOptions::default()
    })
    .await;
    let first = grant.current().await.expect("a token");
    // Another node claims the refresh (and, say, dies while at it).
    let now = chrono::Utc::now();
    let stored = app
        .mux
        .store()
        .grant(&id.to_string(), "files")
        .await
        .expect("store answers")
        .expect("a grant");
    assert!(
        app.mux
            .store()
            .claim_refresh(
                &id.to_string(),
                "files",
                stored.version,
                now,
                now + chrono::Duration::seconds(60)
            )
            .await
            .expect("store answers")
    );
    // Due for renewal (a fifth of its life before expiry), not expired.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let meanwhile = grant.current().await.expect("the token in hand");
    assert_eq!(meanwhile.expose_secret(), first.expose_secret());
    assert_eq!(backend.counts.refreshes.load(Ordering::SeqCst), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_callback_without_a_code_or_with_a_refusal_says_so_and_stores_nothing() {
    let (app, _backend) = gateway(AuthServerOptions::default()).await;
    let created = create(&app, json!({ "servers": ["files"] })).await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    // What the authorization server sends back, changed as a refusing or
    // broken server would send it.
    let without = |answer: &str, drop: &str, add: &str| {
        let mut url = url::Url::parse(answer).expect("url");
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != drop)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        format!("{url}{add}")
    };
    let cases = [
        ("code", "", "the callback carries no code"),
        (
            "code",
            "&error=access_denied&error_description=the+user+said+no",
            "the authorization server did not authorize mcp-mux: access_denied (the user said no)",
        ),
    ];
    for (drop, add, message) in cases {
        let answer = authorization_answer(&link_of(&created)).await;
        let (status, page) = open(&without(&answer, drop, add)).await;
        assert_eq!(status, 400, "{page}");
        assert_eq!(shown(&page), message);
    }
    assert_eq!(
        app.shown_session(&id).await["servers"][0]["authorization"]["status"],
        "needed"
    );
    // A link to no session, or to a session that is not one.
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-session".into()] {
        let (status, page) = open(&format!(
            "{}/session/{missing}/authorize/files",
            app.address
        ))
        .await;
        assert_eq!(status, 404);
        assert_eq!(shown(&page), "no such session");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_client_metadata_document_is_served_under_an_https_public_url_only() {
    let backend = spawn_oauth_backend(AuthServerOptions::default()).await;
    let registry = registry_yaml(&[("files", &backend.mcp_url, "auth: { type: oauth }")]);
    let plain = spawn_app(&registry).await;
    let response = plain
        .http
        .get(format!("{}/oauth/client-metadata.json", plain.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({
            "error": "not_found",
            "message": "mcp-mux serves its client metadata document only under an https --public-url",
        })
    );
    plain.stop().await;

    let mut options = crate::helpers::AppOptions::new(registry);
    options.public_url = Some("https://mux.example".into());
    let public = crate::helpers::spawn_app_with(options)
        .await
        .expect("gateway starts");
    let document: Value = public
        .http
        .get(format!("{}/oauth/client-metadata.json", public.address))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        document,
        json!({
            "client_id": "https://mux.example/oauth/client-metadata.json",
            "client_name": "mcp-mux",
            "redirect_uris": ["https://mux.example/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    );
    public.stop().await;
}
