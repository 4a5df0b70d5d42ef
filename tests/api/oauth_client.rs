//! One backend's OAuth client against a token endpoint: the authorization
//! URL, redemption, refresh and every way the endpoint can fail.

use std::sync::Arc;

use mcp_mux::oauth::client::{ClientSettings, OAuthClient, TokenError};
use mcp_mux::oauth::discovery::ServerMetadata;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn metadata(issuer: &str) -> Arc<ServerMetadata> {
    Arc::new(
        serde_json::from_value(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "code_challenge_methods_supported": ["S256"],
        }))
        .expect("metadata"),
    )
}

fn client(issuer: &str, resource: Option<&str>) -> OAuthClient {
    OAuthClient::new(
        ClientSettings {
            client_id: "mux-client".into(),
            client_secret: None,
            server: metadata(issuer),
            redirect_uri: Url::parse("https://mux.example/oauth/callback").expect("url"),
            resource: resource.map(str::to_owned),
            scopes: vec!["repo".into(), "read:org".into()],
            authorize_params: vec![("access_type".into(), "offline".into())],
        },
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    )
}

#[test]
fn the_authorization_url_carries_pkce_s256_the_state_the_resource_and_the_extra_parameters() {
    let client = client("https://auth.example", Some("https://mcp.example/mcp"));
    let first = client.authorize(&[]);
    let query: std::collections::HashMap<String, String> =
        first.url.query_pairs().into_owned().collect();
    assert_eq!(first.url.path(), "/authorize");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "mux-client");
    assert_eq!(query["redirect_uri"], "https://mux.example/oauth/callback");
    assert_eq!(query["scope"], "repo read:org");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], "https://mcp.example/mcp");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["state"], first.state.expose_secret());
    assert_eq!(query["code_challenge"].len(), 43, "a SHA-256 in base64url");
    assert!(first.verifier.expose_secret().len() >= 43);
    // Each request is new.
    let second = client.authorize(&[]);
    assert_ne!(first.state.expose_secret(), second.state.expose_secret());
    assert_ne!(
        first.verifier.expose_secret(),
        second.verifier.expose_secret()
    );

    // Scopes a backend's challenge asked for are added once.
    let omitted =
        self::client("https://auth.example", None).authorize(&["repo".into(), "admin".into()]);
    assert!(
        omitted
            .url
            .query_pairs()
            .any(|(name, value)| name == "scope" && value == "repo read:org admin")
    );
    assert!(
        !omitted
            .url
            .query_pairs()
            .any(|(name, _)| name == "resource")
    );
}

#[tokio::test]
async fn a_code_is_redeemed_with_its_verifier_and_the_resource() {
    let auth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier=the-verifier"))
        .and(body_string_contains("client_id=mux-client"))
        .and(body_string_contains(
            "resource=https%3A%2F%2Fmcp.example%2Fmcp",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt-1", "scope": "repo",
        })))
        .expect(1)
        .mount(&auth)
        .await;
    let tokens = client(&auth.uri(), Some("https://mcp.example/mcp"))
        .redeem("the-code", &SecretString::from("the-verifier"))
        .await
        .expect("tokens");
    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(
        tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        Some("rt-1".into())
    );
    assert_eq!(tokens.scopes, ["repo"]);
    let left = tokens.expires_at.expect("an expiry") - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(59) && left <= chrono::Duration::minutes(60));
    let shown = format!("{tokens:?}");
    assert!(
        !shown.contains("at-1") && !shown.contains("rt-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_refresh_keeps_the_old_refresh_token_unless_the_server_rotates_it() {
    let auth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=rt-old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-2", "token_type": "bearer", "expires_in": 60,
        })))
        .mount(&auth)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=rt-rotating"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-3", "token_type": "Bearer", "refresh_token": "rt-next",
        })))
        .mount(&auth)
        .await;
    let client = client(&auth.uri(), None);
    let kept = client
        .refresh(&SecretString::from("rt-old"))
        .await
        .expect("tokens");
    assert_eq!(kept.access_token.expose_secret(), "at-2");
    assert_eq!(
        kept.refresh_token.map(|t| t.expose_secret().to_owned()),
        Some("rt-old".into())
    );
    assert_eq!(kept.scopes, ["repo", "read:org"], "the scopes asked for");
    let rotated = client
        .refresh(&SecretString::from("rt-rotating"))
        .await
        .expect("tokens");
    assert_eq!(
        rotated.refresh_token.map(|t| t.expose_secret().to_owned()),
        Some("rt-next".into())
    );
    assert_eq!(rotated.expires_at, None);
}

#[tokio::test]
async fn a_token_endpoint_that_refuses_answers_garbage_or_is_down_says_which() {
    let auth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=revoked"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "grant revoked",
        })))
        .mount(&auth)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>hi</html>"))
        .mount(&auth)
        .await;
    let client = client(&auth.uri(), None);

    let refused = client
        .refresh(&SecretString::from("revoked"))
        .await
        .expect_err("refused");
    assert!(refused.is_invalid_grant() && !refused.is_transient());
    assert_eq!(
        refused.to_string(),
        "the authorization server refused: invalid_grant (grant revoked)"
    );

    let garbage = client
        .refresh(&SecretString::from("garbage"))
        .await
        .expect_err("garbage");
    assert!(
        matches!(&garbage, TokenError::Malformed { url, .. } if *url == format!("{}/token", auth.uri())),
        "{garbage:?}"
    );
    assert!(
        !garbage.to_string().contains("garbage"),
        "no token in the message: {garbage}"
    );

    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=huge"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(70_000)))
        .mount(&auth)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("refresh_token=moved"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", "https://elsewhere.example/token"),
        )
        .mount(&auth)
        .await;
    for (token, reason) in [
        ("huge", "the answer passes 65536 bytes"),
        ("moved", "the endpoint answered a redirect"),
    ] {
        let refused = client
            .refresh(&SecretString::from(token))
            .await
            .expect_err("refused");
        assert_eq!(
            refused,
            TokenError::Malformed {
                url: format!("{}/token", auth.uri()),
                reason: reason.into(),
            }
        );
        assert!(!refused.is_transient());
    }

    let down = self::client("http://127.0.0.1:9", None)
        .refresh(&SecretString::from("rt"))
        .await
        .expect_err("down");
    assert!(down.is_transient(), "{down:?}");
    assert!(
        down.to_string()
            .starts_with("cannot reach the token endpoint http://127.0.0.1:9/token: "),
        "{down}"
    );
}
