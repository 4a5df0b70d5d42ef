//! How mcp-mux becomes a client of an authorization server: the spec's
//! order, the metadata document, and Dynamic Client Registration.

use mcp_mux::oauth::discovery::ServerMetadata;
use mcp_mux::oauth::registration::{
    Registration, RegistrationError, choose, metadata_document, register,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn server(issuer: &str, registration: bool, documents: bool) -> ServerMetadata {
    let mut metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": documents,
    });
    if registration {
        metadata["registration_endpoint"] = json!(format!("{issuer}/register"));
    }
    serde_json::from_value(metadata).expect("metadata")
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("url")
}

#[test]
fn the_registry_client_comes_first_then_the_document_then_registration() {
    let document = url("https://mux.example/oauth/client.json");
    let both = server("https://auth.example", true, true);
    assert_eq!(
        choose(&both, true, Some(&document)),
        Some(Registration::Registry)
    );
    assert_eq!(
        choose(&both, false, Some(&document)),
        Some(Registration::MetadataDocument)
    );
    // A document needs an https URL to be fetched from.
    assert_eq!(
        choose(
            &both,
            false,
            Some(&url("http://127.0.0.1:8000/oauth/client.json"))
        ),
        Some(Registration::Dynamic)
    );
    assert_eq!(choose(&both, false, None), Some(Registration::Dynamic));
    let neither = server("https://auth.example", false, false);
    assert_eq!(choose(&neither, false, Some(&document)), None);
}

#[test]
fn the_metadata_document_names_its_own_url_and_the_callback() {
    let document = metadata_document(
        &url("https://mux.example/oauth/client.json"),
        &url("https://mux.example/oauth/callback"),
    );
    assert_eq!(
        document,
        json!({
            "client_id": "https://mux.example/oauth/client.json",
            "client_name": "mcp-mux",
            "redirect_uris": ["https://mux.example/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    );
}

#[tokio::test]
async fn dynamic_registration_sends_the_callback_and_keeps_the_client() {
    let auth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/register"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "client_id": "dyn-1", "client_secret": "dyn-secret", "client_id_issued_at": 1,
        })))
        .expect(1)
        .mount(&auth)
        .await;
    let registered = register(
        &reqwest::Client::new(),
        &server(&auth.uri(), true, false),
        &url("http://127.0.0.1:8000/oauth/callback"),
        &["repo".into(), "read:org".into()],
    )
    .await
    .expect("registered");
    assert_eq!(registered.client_id, "dyn-1");
    assert_eq!(
        registered.client_secret.as_ref().map(|s| s.expose_secret()),
        Some("dyn-secret")
    );
    assert!(!format!("{registered:?}").contains("dyn-secret"));
    let sent: Value =
        serde_json::from_slice(&auth.received_requests().await.expect("recorded")[0].body)
            .expect("JSON");
    assert_eq!(
        sent,
        json!({
            "client_name": "mcp-mux",
            "redirect_uris": ["http://127.0.0.1:8000/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "scope": "repo read:org",
        })
    );
}

#[tokio::test]
async fn a_refused_garbled_or_missing_registration_says_what_went_wrong() {
    let auth = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_redirect_uri", "error_description": "not allowed",
        })))
        .mount(&auth)
        .await;
    let callback = url("https://mux.example/oauth/callback");
    let http = reqwest::Client::new();
    assert_eq!(
        register(&http, &server(&auth.uri(), true, false), &callback, &[])
            .await
            .expect_err("refused")
            .to_string(),
        "the authorization server refused to register mcp-mux (HTTP 400): invalid_redirect_uri (not allowed)"
    );

    let garbled = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("<html>"))
        .mount(&garbled)
        .await;
    assert!(matches!(
        register(&http, &server(&garbled.uri(), true, false), &callback, &[]).await,
        Err(RegistrationError::Malformed { .. })
    ));

    let huge = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("x".repeat(70_000)))
        .mount(&huge)
        .await;
    assert_eq!(
        register(&http, &server(&huge.uri(), true, false), &callback, &[])
            .await
            .expect_err("too large"),
        RegistrationError::Malformed {
            url: format!("{}/register", huge.uri()),
            reason: "the answer passes 65536 bytes".into(),
        }
    );

    assert_eq!(
        register(
            &http,
            &server("https://auth.example", false, false),
            &callback,
            &[]
        )
        .await
        .expect_err("not offered"),
        RegistrationError::NotOffered {
            issuer: "https://auth.example".into()
        }
    );
}

#[tokio::test]
async fn a_server_that_refuses_the_scopes_in_a_registration_gets_one_without_them() {
    let auth = MockServer::start().await;
    // oidc-provider's answer to scopes it does not know as its own.
    Mock::given(method("POST"))
        .and(body_string_contains("\"scope\""))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_client_metadata",
            "error_description": "scope must only contain Authorization Server supported scope values",
        })))
        .mount(&auth)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "client_id": "dyn-2" })))
        .mount(&auth)
        .await;
    let registered = register(
        &reqwest::Client::new(),
        &server(&auth.uri(), true, false),
        &url("http://127.0.0.1:8000/oauth/callback"),
        &["mcp:tools".to_owned()],
    )
    .await
    .expect("registered without the scope");
    assert_eq!(registered.client_id, "dyn-2");
    assert_eq!(auth.received_requests().await.expect("recorded").len(), 2);
}
