//! Hosts that sign in: session URLs as OAuth protected resources, checked
//! against a trusted issuer served by wiremock (its discovery, keys and
//! introspection) with tokens signed by the test keys. Each refusal's exact
//! status, challenge and message; sessions that belong to a user; and
//! backend grants that follow the user from one session to the next.

use std::sync::atomic::Ordering;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_mux::identity::{IntrospectionClient, SignInSettings};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    AppOptions, RawMcp, TestApp, eventually, registry_yaml, spawn_app_with, spawn_rmcp_backend,
};
use crate::identity::{KEY_1, KEY_2, PUBLIC_1, issuer, now, signed};
use crate::oauth_backend::{AuthServerOptions, spawn_oauth_backend};

const ADMIN: &str = "an-admin-token-long-enough";
const SESSIONS_SCOPE: &str = "mcp:sessions";

/// A gateway over `registry` trusting `issuer`, requiring `mcp:tools` on
/// session URLs, with the sessions scope and an admin token.
async fn gateway(registry: &str, issuer: &MockServer, introspection: bool) -> TestApp {
    let mut options = AppOptions::new(registry);
    options.admin_token = Some(ADMIN.into());
    options.sign_in = SignInSettings {
        issuers: vec![issuer.uri()],
        audience: None,
        scopes: vec!["mcp:tools".into()],
        sessions_scope: Some(SESSIONS_SCOPE.into()),
        introspection: introspection.then(|| IntrospectionClient {
            client_id: "mcp-mux".into(),
            secret: SecretString::from("introspection-secret"),
        }),
    };
    spawn_app_with(options).await.expect("gateway starts")
}

/// A token of `sub` from `issuer` for `aud`, with `scope`, changed by `change`.
fn token_for(issuer: &MockServer, sub: &str, aud: &str, scope: &str) -> String {
    token_with(issuer, |claims| {
        claims["sub"] = json!(sub);
        claims["aud"] = json!(aud);
        claims["scope"] = json!(scope);
    })
}

fn token_with(issuer: &MockServer, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({
        "iss": issuer.uri(), "sub": "alice", "aud": "",
        "iat": now(), "exp": now() + 300, "scope": "mcp:tools",
    });
    change(&mut claims);
    signed(&claims, "key-1", KEY_1)
}

/// Creates a session as the admin for `owner` (or none), returning its answer.
async fn create_as_admin(app: &TestApp, body: Value) -> Value {
    let response = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

/// A POST of `initialize` to `url` with `token`, if any.
async fn initialize(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "1"}}
        }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("answers")
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().expect("text").to_owned())
        .unwrap_or_default()
}

async fn error_message(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON");
    body["error"]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_signed_in_session_url_is_a_protected_resource_with_its_metadata() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, false).await;
    let created = create_as_admin(
        &app,
        json!({"servers": ["a"], "access": "oauth",
               "owner": {"issuer": issuer.uri(), "subject": "alice"}}),
    )
    .await;
    let id = created["session_id"].as_str().expect("id");
    let url = created["mcp_url"].as_str().expect("url").to_owned();
    assert_eq!(created["access"], "oauth");
    assert_eq!(
        created["owner"],
        json!({"issuer": issuer.uri(), "subject": "alice"})
    );
    // Hosts sign in by themselves: no header in the configs.
    assert!(
        !created["client_configs"]
            .to_string()
            .contains("Authorization"),
        "{}",
        created["client_configs"]
    );

    let metadata_url = format!(
        "{}/.well-known/oauth-protected-resource/session/{id}/mcp",
        app.address
    );
    let response = app.http.get(&metadata_url).send().await.expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let metadata: Value = response.json().await.expect("JSON");
    assert_eq!(
        metadata,
        json!({
            "resource": url,
            "authorization_servers": [issuer.uri()],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
        })
    );
    // Any origin may read it, preflight included.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &metadata_url)
        .header("origin", "https://claude.ai")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .expect("answers");
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let from_elsewhere = app
        .http
        .get(&metadata_url)
        .header("origin", "https://claude.ai")
        .send()
        .await
        .expect("answers");
    assert_eq!(from_elsewhere.status(), 200);

    let root: Value = app
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            app.address
        ))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        root,
        json!({
            "resource": app.address,
            "authorization_servers": [issuer.uri()],
            "scopes_supported": [SESSIONS_SCOPE],
            "bearer_methods_supported": ["header"],
        })
    );

    // No token: 401 naming the metadata and the scopes.
    let missing = initialize(&app, &url, None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        www_authenticate(&missing),
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp:tools\"")
    );
    assert_eq!(
        error_message(missing).await,
        format!(
            "this session needs an OAuth access token: sign in (its resource metadata is at {metadata_url}) and send Authorization: Bearer <access token>"
        )
    );
    // The same on a GET stream, a DELETE and the plain HTTP tools.
    for (method, target) in [
        (reqwest::Method::GET, url.clone()),
        (reqwest::Method::DELETE, url.clone()),
        (
            reqwest::Method::GET,
            format!("{}/session/{id}/tools", app.address),
        ),
        (
            reqwest::Method::POST,
            format!("{}/session/{id}/tools/a__echo", app.address),
        ),
    ] {
        let response = app
            .http
            .request(method.clone(), &target)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 401, "{method} {target}");
        assert!(
            www_authenticate(&response).contains(&metadata_url),
            "{method} {target}"
        );
    }

    // Alice's token for this URL: she is in, and her calls work.
    let alice = token_for(&issuer, "alice", &url, "mcp:tools");
    let mut mcp = RawMcp::new(url.clone()).with_bearer(&alice);
    mcp.initialize("2025-11-25").await;
    let echoed = mcp.call_tool("a__echo", json!({"text": "hi"})).await;
    assert_eq!(echoed["result"]["isError"], false, "{echoed}");
    let tools = app
        .http
        .get(format!("{}/session/{id}/tools", app.address))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("answers");
    assert_eq!(tools.status(), 200);

    // Her calls carry her subject: audit, console, metrics.
    assert!(
        eventually(|| async {
            let audit: Value = app
                .http
                .get(format!("{}/session/{id}/audit", app.address))
                .bearer_auth(ADMIN)
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("JSON");
            audit["records"][0]["subject"] == "alice"
        })
        .await
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.address))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("mcp_mux_signed_in_tool_calls_total{subject=\"alice\"} 1"),
        "{metrics}"
    );
    let console = app
        .http
        .get(format!("{}/ui/session/{id}", app.address))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("page");
    assert!(
        console.contains(&format!(
            "signed in as <code>alice</code> <span class=\"muted\">at {}</span>",
            issuer.uri()
        )),
        "{console}"
    );
    // Never the token: not in the log-facing answers, nor the console.
    assert!(!console.contains(&alice));
    app.stop().await;
}

#[tokio::test]
async fn each_bad_token_gets_its_exact_challenge() {
    let issuer = issuer(None).await;
    let stranger = crate::identity::issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, false).await;
    let created = create_as_admin(
        &app,
        json!({"servers": ["a"], "access": "oauth",
               "owner": {"issuer": issuer.uri(), "subject": "alice"}}),
    )
    .await;
    let id = created["session_id"].as_str().expect("id");
    let url = created["mcp_url"].as_str().expect("url").to_owned();
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/session/{id}/mcp",
        app.address
    );
    let invalid = |description: &str| {
        format!(
            "Bearer error=\"invalid_token\", error_description=\"{description}\", resource_metadata=\"{metadata}\", scope=\"mcp:tools\""
        )
    };
    let public_pem = PUBLIC_1;
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".into());
        let claims = json!({"iss": issuer.uri(), "sub": "alice", "aud": url,
                            "exp": now() + 300, "scope": "mcp:tools"});
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(public_pem))
            .expect("signed")
    };
    let none = {
        use base64::Engine;
        let b64 = |value: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"iss": issuer.uri(), "sub": "alice", "aud": url,
                       "exp": now() + 300, "scope": "mcp:tools"}))
        )
    };
    let cases = [
        (
            "expired",
            token_with(&issuer, |c| {
                c["aud"] = json!(url);
                c["exp"] = json!(now() - 600);
            }),
            invalid("the token has expired"),
        ),
        (
            "not yet valid",
            token_with(&issuer, |c| {
                c["aud"] = json!(url);
                c["nbf"] = json!(now() + 600);
            }),
            invalid("the token is not valid yet"),
        ),
        (
            "another issuer",
            token_with(&issuer, |c| {
                c["aud"] = json!(url);
                c["iss"] = json!(stranger.uri());
            }),
            invalid("the token's issuer is not one this gateway trusts"),
        ),
        (
            "another audience",
            token_with(&issuer, |c| c["aud"] = json!(format!("{}/", app.address))),
            invalid("the token is for another audience"),
        ),
        (
            "a key the issuer does not publish",
            signed(
                &json!({"iss": issuer.uri(), "sub": "alice", "aud": url,
                        "exp": now() + 300, "scope": "mcp:tools"}),
                "key-2",
                KEY_2,
            ),
            invalid("the token names a key its issuer does not publish"),
        ),
        (
            "key 1's id, key 2's signature",
            signed(
                &json!({"iss": issuer.uri(), "sub": "alice", "aud": url,
                        "exp": now() + 300, "scope": "mcp:tools"}),
                "key-1",
                KEY_2,
            ),
            invalid("the token's signature does not verify"),
        ),
        (
            "alg none",
            none,
            invalid(
                "the token is signed with none, which is not accepted (public-key signatures only)",
            ),
        ),
        (
            "HS256 keyed with the public key",
            hs256,
            invalid(
                "the token is signed with HS256, which is not accepted (public-key signatures only)",
            ),
        ),
        (
            "opaque, without introspection",
            "an-opaque-token".to_owned(),
            invalid(
                "the token is not a JWT mcp-mux can read: it is not a JWT, and this gateway takes opaque tokens from no issuer",
            ),
        ),
    ];
    for (case, token, challenge) in cases {
        let response = initialize(&app, &url, Some(&token)).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(www_authenticate(&response), challenge, "{case}");
    }

    // Too few scopes: 403, naming every scope needed.
    let short = token_for(&issuer, "alice", &url, "read");
    let response = initialize(&app, &url, Some(&short)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        www_authenticate(&response),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"the token lacks scopes; it needs mcp:tools\", resource_metadata=\"{metadata}\", scope=\"mcp:tools\""
        )
    );

    // A 64 KiB token is refused unread.
    let huge = format!("eyJhbGciOiJSUzI1NiJ9.{}.x", "a".repeat(64 * 1024));
    let response = initialize(&app, &url, Some(&huge)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        invalid("the token is over 16384 bytes")
    );

    // Tokens in the query string are refused, even a good one.
    let good = token_for(&issuer, "alice", &url, "mcp:tools");
    let response = initialize(&app, &format!("{url}?access_token={good}"), Some(&good)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        error_message(response).await,
        "access_token: tokens are not taken in the query string; send Authorization: Bearer <token>"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_key_the_issuer_rotates_in_is_taken_at_once_and_unknown_keys_cost_one_fetch_a_minute() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, false).await;
    let created = create_as_admin(
        &app,
        json!({"servers": ["a"], "owner": {"issuer": issuer.uri(), "subject": "alice"}}),
    )
    .await;
    let url = created["mcp_url"].as_str().expect("url").to_owned();
    // The issuer now publishes key 2 as well.
    issuer.reset().await;
    let jwks: Value = json!({"keys": [
        serde_json::from_str::<Value>(crate::identity::JWK_1).expect("JWK"),
        serde_json::from_str::<Value>(include_str!("../fixtures/identity/rsa2.jwk.json")).expect("JWK"),
    ]});
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(&issuer)
        .await;
    let claims = json!({"iss": issuer.uri(), "sub": "alice", "aud": url,
                        "exp": now() + 300, "scope": "mcp:tools"});
    let rotated = signed(&claims, "key-2", KEY_2);
    assert_eq!(initialize(&app, &url, Some(&rotated)).await.status(), 200);
    // A made-up key: refused, and no fetch within the minute.
    for _ in 0..3 {
        let made_up = signed(&claims, "key-9", KEY_2);
        assert_eq!(initialize(&app, &url, Some(&made_up)).await.status(), 401);
    }
    let fetches = issuer
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|request| request.url.path() == "/jwks")
        .count();
    assert_eq!(fetches, 1, "one fetch for key-2, none for key-9");
    app.stop().await;
}

#[tokio::test]
async fn two_users_each_see_and_use_only_their_own_sessions() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, false).await;
    let for_gateway = |sub: &str| token_for(&issuer, sub, &app.address, SESSIONS_SCOPE);
    let (alice, bob) = (for_gateway("alice"), for_gateway("bob"));
    let create = |token: String, body: Value| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/create-session", app.address))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("answers")
        }
    };
    let created = create(alice.clone(), json!({"servers": ["a"]})).await;
    assert_eq!(created.status(), 201);
    let alices: Value = created.json().await.expect("JSON");
    assert_eq!(alices["access"], "oauth");
    assert_eq!(
        alices["owner"],
        json!({"issuer": issuer.uri(), "subject": "alice"})
    );
    let bobs: Value = create(bob.clone(), json!({"servers": ["a"]}))
        .await
        .json()
        .await
        .expect("JSON");
    let alice_id = alices["session_id"].as_str().expect("id").to_owned();
    let bob_id = bobs["session_id"].as_str().expect("id").to_owned();

    let listed = |token: String| {
        let app = &app;
        async move {
            let list: Value = app
                .http
                .get(format!("{}/sessions", app.address))
                .bearer_auth(token)
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("JSON");
            let mut ids: Vec<String> = list["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .map(|session| session["session_id"].as_str().expect("id").to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(listed(alice.clone()).await, vec![alice_id.clone()]);
    assert_eq!(listed(bob.clone()).await, vec![bob_id.clone()]);
    let mut both = vec![alice_id.clone(), bob_id.clone()];
    both.sort();
    assert_eq!(listed(ADMIN.into()).await, both);

    // Bob's token on Alice's session: what an unknown session gets.
    let alice_url = alices["mcp_url"].as_str().expect("url").to_owned();
    let bob_on_alice = token_for(&issuer, "bob", &alice_url, "mcp:tools");
    let before = initialize(&app, &alice_url, Some(&bob_on_alice)).await;
    let (status, body) = (before.status(), before.text().await.expect("body"));
    assert_eq!(status, 404);
    for (method, path) in [
        (reqwest::Method::GET, format!("/session/{alice_id}")),
        (reqwest::Method::DELETE, format!("/session/{alice_id}")),
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(&bob)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            error_message(response).await,
            format!("no session \"{alice_id}\""),
            "{method} {path}"
        );
    }
    // Alice's own token works on her URL, and she may delete her session.
    let alice_on_alice = token_for(&issuer, "alice", &alice_url, "mcp:tools");
    assert_eq!(
        initialize(&app, &alice_url, Some(&alice_on_alice))
            .await
            .status(),
        200
    );
    let shown = app
        .http
        .get(format!("{}/session/{alice_id}", app.address))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("answers");
    assert_eq!(shown.status(), 200);
    let deleted = app
        .http
        .delete(format!("{}/session/{alice_id}", app.address))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);
    // Once it is gone, Bob gets exactly what he got before.
    let after = initialize(&app, &alice_url, Some(&bob_on_alice)).await;
    assert_eq!(after.status(), status);
    assert_eq!(after.text().await.expect("body"), body);

    // Without the sessions scope, or for another audience: refused.
    let no_scope = token_for(&issuer, "alice", &app.address, "read");
    let response = create(no_scope, json!({"servers": ["a"]})).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        www_authenticate(&response),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"the token lacks scopes; it needs {SESSIONS_SCOPE}\", resource_metadata=\"{}/.well-known/oauth-protected-resource\", scope=\"{SESSIONS_SCOPE}\"",
            app.address
        )
    );
    // Without a token: the admin's challenge, and where a user signs in.
    let response = app
        .http
        .get(format!("{}/sessions", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        format!(
            "Bearer realm=\"mcp-mux admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource\", scope=\"{SESSIONS_SCOPE}\"",
            app.address
        )
    );
    let session_audience = token_for(&issuer, "alice", &alice_url, SESSIONS_SCOPE);
    let response = create(session_audience, json!({"servers": ["a"]})).await;
    assert_eq!(response.status(), 401);
    // A user may not name an owner, nor open a session to everyone; the
    // audit and registry stay the admin's.
    let response = create(
        alice.clone(),
        json!({"servers": ["a"], "owner": {"issuer": issuer.uri(), "subject": "bob"}}),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        error_message(response).await,
        "owner: only the admin token may name an owner: a signed-in user's sessions are their own"
    );
    let response = create(alice.clone(), json!({"servers": ["a"], "access": "open"})).await;
    assert_eq!(
        error_message(response).await,
        "access: a signed-in user's session is not open: use \"oauth\" or \"token\""
    );
    let audit = app
        .http
        .get(format!("{}/session/{bob_id}/audit", app.address))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("answers");
    assert_eq!(audit.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_names_each_field_that_cannot_make_a_signed_in_session() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let app = gateway(&registry, &issuer, false).await;
    let cases = [
        (
            json!({"servers": ["a"], "access": "oauth"}),
            "owner: is required with \"access\": \"oauth\" and the admin token: the issuer and subject of the user the session belongs to",
        ),
        (
            json!({"servers": ["a"], "access": "everyone"}),
            "access: must be \"open\", \"token\" or \"oauth\"",
        ),
        (
            json!({"servers": ["a"], "access": "oauth", "require_token": true}),
            "access: conflicts with \"require_token\": true; give one of them",
        ),
        (
            json!({"servers": ["a"], "owner": {"issuer": "https://elsewhere.example", "subject": "a"}}),
            &format!(
                "owner.issuer: is not an issuer this gateway trusts; it trusts {}",
                issuer.uri()
            ),
        ),
        (
            json!({"servers": ["a"], "owner": {"issuer": issuer.uri()}}),
            "owner.subject: is required: a string of 1 to 1024 characters",
        ),
        (
            json!({"servers": ["a"], "owner": {"issuer": issuer.uri(), "subject": "a", "email": "x"}}),
            "owner.email: unknown field; expected issuer, subject",
        ),
        (
            json!({"servers": ["a"], "access": "open", "owner": {"issuer": issuer.uri(), "subject": "a"}}),
            "access: a session with an owner is not open: use \"oauth\" or \"token\"",
        ),
    ];
    for (body, message) in cases {
        let response = app
            .http
            .post(format!("{}/create-session", app.address))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_message(response).await, message, "{body}");
    }
    assert_eq!(
        app.http
            .get(format!("{}/sessions", app.address))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("answers")
            .json::<Value>()
            .await
            .expect("JSON")["sessions"],
        json!([]),
        "nothing was stored"
    );
    app.stop().await;

    // Without an issuer, no session signs in, and there is no metadata.
    let mut options = AppOptions::new(&registry);
    options.admin_token = Some(ADMIN.into());
    let plain = spawn_app_with(options).await.expect("starts");
    let response = plain
        .http
        .post(format!("{}/create-session", plain.address))
        .bearer_auth(ADMIN)
        .json(&json!({"servers": ["a"], "access": "oauth", "owner": {"issuer": issuer.uri(), "subject": "a"}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        error_message(response).await,
        "access: needs an OAuth issuer: start mcp-mux with --oauth-issuer"
    );
    let root = plain
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            plain.address
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(root.status(), 404);
    plain.stop().await;
}

#[tokio::test]
async fn a_static_token_sessions_401_says_how_to_pass_its_token_and_has_no_metadata() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, false).await;
    let created = create_as_admin(&app, json!({"servers": ["a"], "require_token": true})).await;
    assert_eq!(created["access"], "token");
    let url = created["mcp_url"].as_str().expect("url");
    let id = created["session_id"].as_str().expect("id");
    let needed = "this session needs its session token: send Authorization: Bearer <session token> (create-session showed it once); it does not sign in with OAuth";
    let response = initialize(&app, url, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer realm=\"mcp-mux session\", error_description=\"{needed}\"")
    );
    assert_eq!(error_message(response).await, needed);
    let response = initialize(&app, url, Some("mmx_wrong")).await;
    assert_eq!(
        www_authenticate(&response),
        "Bearer realm=\"mcp-mux session\", error=\"invalid_token\", error_description=\"the session token is wrong: send the one create-session showed for this session\""
    );
    // No metadata invites an OAuth sign-in for it.
    let metadata = app
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/session/{id}/mcp",
            app.address
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(metadata.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_the_answer_kept_for_the_tokens_life() {
    let issuer = issuer(None).await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer.uri(),
            "authorization_endpoint": format!("{}/authorize", issuer.uri()),
            "token_endpoint": format!("{}/token", issuer.uri()),
            "jwks_uri": format!("{}/jwks", issuer.uri()),
            "introspection_endpoint": format!("{}/introspect", issuer.uri()),
        })))
        .with_priority(1)
        .mount(&issuer)
        .await;
    let backend = spawn_rmcp_backend("a", None).await;
    let app = gateway(&registry_yaml(&[("a", &backend.url, "")]), &issuer, true).await;
    let created = create_as_admin(
        &app,
        json!({"servers": ["a"], "owner": {"issuer": issuer.uri(), "subject": "carol"}}),
    )
    .await;
    let url = created["mcp_url"].as_str().expect("url").to_owned();
    // base64("mcp-mux:introspection-secret")
    let basic = "Basic bWNwLW11eDppbnRyb3NwZWN0aW9uLXNlY3JldA==";
    let active = |token: &str, aud: &str| {
        Mock::given(method("POST"))
            .and(path("/introspect"))
            .and(header("authorization", basic))
            .and(wiremock::matchers::body_string_contains(format!(
                "token={token}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "active": true, "sub": "carol", "aud": aud, "scope": "mcp:tools",
                "exp": now() + 120, "client_id": "host",
            })))
    };
    active("good-opaque", &url).mount(&issuer).await;
    active("elsewhere-opaque", "https://elsewhere.example/mcp")
        .mount(&issuer)
        .await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"active": false})))
        .with_priority(10)
        .mount(&issuer)
        .await;

    for _ in 0..3 {
        assert_eq!(
            initialize(&app, &url, Some("good-opaque")).await.status(),
            200
        );
    }
    let asked = issuer
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|request| {
            request.url.path() == "/introspect"
                && String::from_utf8_lossy(&request.body).contains("good-opaque")
        })
        .count();
    assert_eq!(asked, 1, "the active answer is kept");
    let response = initialize(&app, &url, Some("revoked-opaque")).await;
    assert_eq!(response.status(), 401);
    assert!(
        www_authenticate(&response).contains(
            "error_description=\"the authorization server does not know the token, or it is no longer active\""
        ),
        "{}",
        www_authenticate(&response)
    );
    let response = initialize(&app, &url, Some("elsewhere-opaque")).await;
    assert!(
        www_authenticate(&response)
            .contains("error_description=\"the token is for another audience\"")
    );
    // An issuer that fails to answer leaves the token unjudged: 503, to
    // come back, rather than a 401 that would send the host to sign in.
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(wiremock::matchers::body_string_contains(
            "token=unanswered-opaque",
        ))
        .respond_with(ResponseTemplate::new(500).set_body_string("down"))
        .with_priority(1)
        .mount(&issuer)
        .await;
    let response = initialize(&app, &url, Some("unanswered-opaque")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(www_authenticate(&response), "");
    assert_eq!(
        error_message(response).await,
        format!(
            "the token could not be checked: the authorization server {} did not answer",
            issuer.uri()
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn a_backend_grant_belongs_to_the_user_and_follows_them_to_their_next_session() {
    let issuer = issuer(None).await;
    let backend = spawn_oauth_backend(AuthServerOptions::default()).await;
    let app = gateway(
        &registry_yaml(&[("files", &backend.mcp_url, "auth: { type: oauth }")]),
        &issuer,
        false,
    )
    .await;
    let alice = token_for(&issuer, "alice", &app.address, SESSIONS_SCOPE);
    let create = || async {
        let response = app
            .http
            .post(format!("{}/create-session", app.address))
            .bearer_auth(&alice)
            .json(&json!({"servers": ["files"]}))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.expect("JSON")
    };
    let first = create().await;
    assert_eq!(first["authorization"]["files"]["status"], "needed");
    // Her link carries a one-time key: the session is hers alone.
    let link = first["authorization"]["files"]["url"]
        .as_str()
        .expect("link")
        .to_owned();
    assert!(link.contains("?key="), "{link}");
    let page = reqwest::get(&link).await.expect("answers");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(
        page.contains("files is connected to this session"),
        "{page}"
    );
    let second = create().await;
    assert_eq!(second["authorization"]["files"]["status"], "connected");
    let second_url = second["mcp_url"].as_str().expect("url").to_owned();
    let token = token_for(&issuer, "alice", &second_url, "mcp:tools");
    let mut mcp = RawMcp::new(second_url).with_bearer(&token);
    mcp.initialize("2025-11-25").await;
    let echoed = mcp.call_tool("files__echo", json!({"text": "hi"})).await;
    assert_eq!(echoed["result"]["isError"], false, "{echoed}");

    // Bob's session over the same backend is not connected by Alice's grant.
    let bob = token_for(&issuer, "bob", &app.address, SESSIONS_SCOPE);
    let bobs: Value = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(&bob)
        .json(&json!({"servers": ["files"]}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(bobs["authorization"]["files"]["status"], "needed");

    // Deleting one of her sessions keeps the grant; the last one revokes it.
    let delete = |id: &Value| {
        let url = format!("{}/session/{}", app.address, id.as_str().expect("id"));
        let request = app.http.delete(url).bearer_auth(&alice);
        async move { request.send().await.expect("answers").status() }
    };
    assert_eq!(delete(&first["session_id"]).await, StatusCode::OK);
    assert_eq!(backend.counts.revocations.load(Ordering::SeqCst), 0);
    let third = create().await;
    assert_eq!(third["authorization"]["files"]["status"], "connected");
    assert_eq!(delete(&second["session_id"]).await, StatusCode::OK);
    assert_eq!(delete(&third["session_id"]).await, StatusCode::OK);
    assert!(eventually(|| async { backend.counts.revocations.load(Ordering::SeqCst) == 1 }).await);
    let fourth = create().await;
    assert_eq!(fourth["authorization"]["files"]["status"], "needed");
    app.stop().await;
}

#[tokio::test]
async fn a_signed_in_session_on_a_gateway_that_trusts_no_issuer_now_says_so() {
    let issuer = issuer(None).await;
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let app = gateway(&registry, &issuer, false).await;
    let created = create_as_admin(
        &app,
        json!({"servers": ["a"], "owner": {"issuer": issuer.uri(), "subject": "alice"}}),
    )
    .await;
    let id = created["session_id"].as_str().expect("id").to_owned();
    let data_dir = app.stop().await;
    // Started again without --oauth-issuer: nobody can sign in to it.
    let mut options = AppOptions::new(&registry);
    options.data_dir = Some(data_dir);
    let restarted = spawn_app_with(options).await.expect("starts");
    let token = token_for(&issuer, "alice", &restarted.mcp_url(&id), "mcp:tools");
    let response = initialize(&restarted, &restarted.mcp_url(&id), Some(&token)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        "Bearer realm=\"mcp-mux session\""
    );
    assert_eq!(
        error_message(response).await,
        "this session belongs to a signed-in user, and this gateway trusts no OAuth issuer now (--oauth-issuer)"
    );
    restarted.stop().await;
}
