//! Finding a backend's authorization server: the spec's order, and every
//! document that must not be trusted.

use mcp_mux::oauth::MAX_ANSWER_BYTES;
use mcp_mux::oauth::discovery::{Discovery, DiscoveryError};
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn discovery() -> Discovery {
    Discovery::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    )
}

fn server_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
    })
}

/// A backend at `/mcp` that answers 401 with `challenge`, if any.
async fn protected_backend(challenge: Option<String>) -> MockServer {
    let backend = MockServer::start().await;
    let mut refused = ResponseTemplate::new(401);
    if let Some(challenge) = challenge {
        refused = refused.insert_header("www-authenticate", challenge.as_str());
    }
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .respond_with(refused)
        .mount(&backend)
        .await;
    backend
}

async fn serve(server: &MockServer, at: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

fn mcp_url(backend: &MockServer) -> Url {
    Url::parse(&format!("{}/mcp", backend.uri())).expect("url")
}

#[tokio::test]
async fn the_challenges_metadata_leads_to_the_issuer_and_its_scope_is_asked_for() {
    let auth = MockServer::start().await;
    let issuer = format!("{}/tenant", auth.uri());
    serve(
        &auth,
        "/.well-known/oauth-authorization-server/tenant",
        server_metadata(&issuer),
    )
    .await;
    let backend = MockServer::start().await;
    let metadata_url = format!("{}/meta/resource", backend.uri());
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer resource_metadata="{metadata_url}", scope="read write""#).as_str(),
        ))
        .mount(&backend)
        .await;
    serve(
        &backend,
        "/meta/resource",
        json!({ "resource": mcp_url(&backend).as_str(), "authorization_servers": [issuer], "scopes_supported": ["other"] }),
    )
    .await;

    let found = discovery()
        .discover(&mcp_url(&backend))
        .await
        .expect("found");
    assert_eq!(found.resource, mcp_url(&backend).as_str());
    assert_eq!(found.scopes, ["read", "write"]);
    assert_eq!(found.server.issuer, issuer);
    assert_eq!(
        found.server.token_endpoint.as_str(),
        format!("{issuer}/token")
    );
}

#[tokio::test]
async fn without_a_challenge_the_path_inserted_uri_comes_before_the_root_and_openid_after_oauth() {
    let backend = protected_backend(None).await;
    // Only the root document and OpenID discovery exist: both fallbacks.
    serve(
        &backend,
        "/.well-known/oauth-protected-resource",
        json!({ "resource": backend.uri(), "authorization_servers": [backend.uri()], "scopes_supported": ["mcp"] }),
    )
    .await;
    serve(
        &backend,
        "/.well-known/openid-configuration",
        server_metadata(&backend.uri()),
    )
    .await;

    let found = discovery()
        .discover(&mcp_url(&backend))
        .await
        .expect("found");
    assert_eq!(found.resource, backend.uri());
    assert_eq!(found.scopes, ["mcp"]);
    let asked: Vec<String> = backend
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|request| format!("{} {}", request.method, request.url.path()))
        .collect();
    assert_eq!(
        asked,
        [
            "POST /mcp",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-protected-resource",
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/openid-configuration",
        ]
    );
}

/// A backend whose root metadata names `issuer`, served by `auth`.
async fn backend_naming(issuer: &str) -> MockServer {
    let backend = protected_backend(None).await;
    serve(
        &backend,
        "/.well-known/oauth-protected-resource",
        json!({ "resource": mcp_url(&backend).as_str(), "authorization_servers": [issuer] }),
    )
    .await;
    backend
}

#[tokio::test]
async fn an_authorization_server_without_s256_is_refused() {
    let auth = MockServer::start().await;
    let mut metadata = server_metadata(&auth.uri());
    metadata["code_challenge_methods_supported"] = json!(["plain"]);
    serve(&auth, "/.well-known/oauth-authorization-server", metadata).await;
    let backend = backend_naming(&auth.uri()).await;
    let error = discovery()
        .discover(&mcp_url(&backend))
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "authorization server {} does not offer PKCE with S256 (code_challenge_methods_supported lacks S256)",
            auth.uri()
        )
    );
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let auth = MockServer::start().await;
    serve(
        &auth,
        "/.well-known/oauth-authorization-server",
        server_metadata("https://honest.example"),
    )
    .await;
    let backend = backend_naming(&auth.uri()).await;
    let error = discovery()
        .discover(&mcp_url(&backend))
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        DiscoveryError::IssuerMismatch {
            url: format!("{}/.well-known/oauth-authorization-server", auth.uri()),
            found: "https://honest.example".into(),
            expected: auth.uri(),
        }
    );
}

#[tokio::test]
async fn huge_redirecting_and_foreign_metadata_is_refused() {
    // Huge.
    let auth = MockServer::start().await;
    let mut huge = server_metadata(&auth.uri());
    huge["padding"] = json!("x".repeat(MAX_ANSWER_BYTES));
    serve(&auth, "/.well-known/oauth-authorization-server", huge).await;
    let backend = backend_naming(&auth.uri()).await;
    assert_eq!(
        discovery()
            .discover(&mcp_url(&backend))
            .await
            .expect_err("refused"),
        DiscoveryError::TooLarge {
            url: format!("{}/.well-known/oauth-authorization-server", auth.uri())
        }
    );

    // Redirected.
    let auth = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example/m"),
        )
        .mount(&auth)
        .await;
    let backend = backend_naming(&auth.uri()).await;
    assert_eq!(
        discovery()
            .discover(&mcp_url(&backend))
            .await
            .expect_err("refused"),
        DiscoveryError::Redirected {
            url: format!("{}/.well-known/oauth-authorization-server", auth.uri())
        }
    );

    // The challenge's metadata on another host.
    let elsewhere = MockServer::start().await;
    let backend = protected_backend(Some(format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource""#,
        elsewhere.uri()
    )))
    .await;
    assert_eq!(
        discovery()
            .discover(&mcp_url(&backend))
            .await
            .expect_err("refused"),
        DiscoveryError::OtherOrigin {
            url: format!("{}/.well-known/oauth-protected-resource", elsewhere.uri()),
            backend: mcp_url(&backend).to_string(),
        }
    );

    // Resource metadata about another server.
    let backend = protected_backend(None).await;
    serve(
        &backend,
        "/.well-known/oauth-protected-resource/mcp",
        json!({ "resource": "https://evil.example/mcp", "authorization_servers": [backend.uri()] }),
    )
    .await;
    assert_eq!(
        discovery()
            .discover(&mcp_url(&backend))
            .await
            .expect_err("refused"),
        DiscoveryError::OtherResource {
            url: format!("{}/.well-known/oauth-protected-resource/mcp", backend.uri()),
            resource: "https://evil.example/mcp".into(),
            backend: mcp_url(&backend).to_string(),
        }
    );
    assert!(
        elsewhere
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
}

#[tokio::test]
async fn a_backend_without_metadata_says_where_it_looked() {
    let backend = protected_backend(None).await;
    assert_eq!(
        discovery()
            .discover(&mcp_url(&backend))
            .await
            .expect_err("refused"),
        DiscoveryError::NoResourceMetadata {
            backend: mcp_url(&backend).to_string(),
            tried: format!(
                "{0}/.well-known/oauth-protected-resource/mcp, {0}/.well-known/oauth-protected-resource",
                backend.uri()
            ),
        }
    );
}

#[tokio::test]
async fn an_issuers_metadata_is_fetched_once_while_it_is_fresh() {
    let auth = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_metadata(&auth.uri())))
        .expect(1)
        .mount(&auth)
        .await;
    let discovery = discovery();
    for _ in 0..3 {
        discovery.server_metadata(&auth.uri()).await.expect("found");
    }
}
