//! Hosts' access tokens against a trusted issuer served by wiremock: a
//! valid JWT, and each way one is refused, with the exact refusal. The
//! keys in tests/fixtures/identity are test keys made for these tests.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_mux::identity::{Identity, TokenRefusal, TrustedIssuer, Validator};
use mcp_mux::oauth::discovery::{Discovery, DiscoveryError};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const KEY_1: &[u8] = include_bytes!("../fixtures/identity/rsa1.der");
pub(crate) const KEY_2: &[u8] = include_bytes!("../fixtures/identity/rsa2.der");
pub(crate) const PUBLIC_1: &[u8] = include_bytes!("../fixtures/identity/rsa1_public.pem");
pub(crate) const JWK_1: &str = include_str!("../fixtures/identity/rsa1.jwk.json");
const AUDIENCE: &str = "http://127.0.0.1:8000/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/mcp";

pub(crate) fn discovery() -> Discovery {
    Discovery::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    )
}

/// An issuer at a mock server publishing key 1; `metadata_issuer` is the
/// issuer its metadata names.
pub(crate) async fn issuer(metadata_issuer: Option<&str>) -> MockServer {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": metadata_issuer.unwrap_or(&uri),
            "authorization_endpoint": format!("{uri}/authorize"),
            "token_endpoint": format!("{uri}/token"),
            "jwks_uri": format!("{uri}/jwks"),
        })))
        .mount(&server)
        .await;
    let jwk: Value = serde_json::from_str(JWK_1).expect("JWK");
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": [jwk] })))
        .mount(&server)
        .await;
    server
}

async fn validator(server: &MockServer) -> Validator {
    let discovery = discovery();
    let trusted = TrustedIssuer::discover(&discovery, &server.uri())
        .await
        .expect("the issuer is found");
    Validator::new(vec![trusted], discovery)
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Claims of a valid token of `sub` from `iss`, changed by `change`.
fn claims(iss: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut claims = json!({
        "iss": iss, "sub": "alice", "aud": AUDIENCE,
        "iat": now(), "exp": now() + 300, "scope": "mcp:tools read",
    });
    change(&mut claims);
    claims
}

pub(crate) fn signed(claims: &Value, kid: &str, key: &[u8]) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(key)).expect("signed")
}

#[tokio::test]
async fn a_valid_token_proves_its_subject_and_scopes() {
    let server = issuer(None).await;
    let validator = validator(&server).await;
    let token = signed(&claims(&server.uri(), |_| {}), "key-1", KEY_1);
    assert_eq!(
        validator
            .validate(&token, &[AUDIENCE], &["mcp:tools".into()])
            .await,
        Ok(Identity {
            issuer: server.uri(),
            subject: "alice".into(),
            scopes: vec!["mcp:tools".into(), "read".into()],
        })
    );
    // Within the minute's leeway, an expired token still passes.
    let late = signed(
        &claims(&server.uri(), |c| c["exp"] = json!(now() - 30)),
        "key-1",
        KEY_1,
    );
    assert!(validator.validate(&late, &[AUDIENCE], &[]).await.is_ok());
}

#[tokio::test]
async fn each_bad_token_is_refused_for_its_reason() {
    let server = issuer(None).await;
    let validator = validator(&server).await;
    let iss = server.uri();
    let cases: Vec<(&str, String, TokenRefusal)> = vec![
        (
            "expired",
            signed(
                &claims(&iss, |c| c["exp"] = json!(now() - 120)),
                "key-1",
                KEY_1,
            ),
            TokenRefusal::Expired,
        ),
        (
            "not yet valid",
            signed(
                &claims(&iss, |c| c["nbf"] = json!(now() + 120)),
                "key-1",
                KEY_1,
            ),
            TokenRefusal::NotYetValid,
        ),
        (
            "another issuer",
            signed(&claims("https://evil.example", |_| {}), "key-1", KEY_1),
            TokenRefusal::UnknownIssuer,
        ),
        (
            "another audience",
            signed(
                &claims(&iss, |c| c["aud"] = json!("https://other.example/mcp")),
                "key-1",
                KEY_1,
            ),
            TokenRefusal::WrongAudience,
        ),
        (
            "a key the issuer does not publish",
            signed(&claims(&iss, |_| {}), "key-9", KEY_2),
            TokenRefusal::UnknownKey,
        ),
        (
            "signed by another key under key 1's name",
            signed(&claims(&iss, |_| {}), "key-1", KEY_2),
            TokenRefusal::BadSignature,
        ),
        (
            "HS256 with the issuer's public key as the secret",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("key-1".into());
                jsonwebtoken::encode(
                    &header,
                    &claims(&iss, |_| {}),
                    &EncodingKey::from_secret(PUBLIC_1),
                )
                .expect("signed")
            },
            TokenRefusal::Algorithm("HS256".into()),
        ),
        ("64 KiB", "x".repeat(64 * 1024), TokenRefusal::TooLarge),
    ];
    for (case, token, refusal) in cases {
        assert_eq!(
            validator.validate(&token, &[AUDIENCE], &[]).await,
            Err(refusal),
            "{case}"
        );
    }
    // Missing scopes are named.
    let token = signed(&claims(&iss, |_| {}), "key-1", KEY_1);
    assert_eq!(
        validator
            .validate(
                &token,
                &[AUDIENCE],
                &["mcp:tools".into(), "admin".into(), "write".into()]
            )
            .await,
        Err(TokenRefusal::InsufficientScope(
            "mcp:tools admin write".into()
        ))
    );
    assert_eq!(
        TokenRefusal::InsufficientScope("mcp:tools admin write".into()).to_string(),
        "the token lacks scopes; it needs mcp:tools admin write"
    );
}

#[tokio::test]
async fn alg_none_and_a_token_that_is_not_a_jwt_are_refused() {
    let server = issuer(None).await;
    let validator = validator(&server).await;
    let b64 = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims(&server.uri(), |_| {}))
    );
    assert_eq!(
        validator.validate(&unsigned, &[AUDIENCE], &[]).await,
        Err(TokenRefusal::Algorithm("none".into()))
    );
    assert_eq!(
        TokenRefusal::Algorithm("none".into()).to_string(),
        "the token is signed with none, which is not accepted (public-key signatures only)"
    );
    for token in ["not-a-jwt", "a.b.c"] {
        assert!(
            matches!(
                validator.validate(token, &[AUDIENCE], &[]).await,
                Err(TokenRefusal::Malformed(_))
            ),
            "{token}"
        );
    }
}

#[tokio::test]
async fn unknown_keys_fetch_the_issuers_keys_again_at_most_once_a_minute() {
    let server = issuer(None).await;
    let validator = validator(&server).await;
    for _ in 0..3 {
        let token = signed(&claims(&server.uri(), |_| {}), "key-9", KEY_2);
        assert_eq!(
            validator.validate(&token, &[AUDIENCE], &[]).await,
            Err(TokenRefusal::UnknownKey)
        );
    }
    let key_fetches = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|request| request.url.path() == "/jwks")
        .count();
    assert_eq!(
        key_fetches, 2,
        "fetched at discovery, and again once for the first unknown key"
    );
}

#[tokio::test]
async fn an_issuer_whose_metadata_names_another_is_not_trusted() {
    let server = issuer(Some("https://evil.example")).await;
    let refused = TrustedIssuer::discover(&discovery(), &server.uri())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&refused, DiscoveryError::IssuerMismatch { found, .. } if found == "https://evil.example"),
        "{refused}"
    );
}
