//! What checking a signed-in host's token adds to a call: a JWT's
//! signature verified with the issuer's keys already fetched (RS256), the
//! same token once it is known (what every call after the first costs),
//! an opaque token whose introspection is kept, and, for scale, a session
//! token's digest compared. The issuer is served by wiremock on loopback;
//! after the first checks no request reaches it.
//!
//! Run with `cargo bench --bench sign_in`. It prints numbers and never
//! asserts them.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_mux::identity::{
    HostSignIn, IntrospectionClient, SignInSettings, TrustedIssuer, Validator,
};
use mcp_mux::oauth::discovery::Discovery;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &[u8] = include_bytes!("../tests/fixtures/identity/rsa1.der");
const JWK: &str = include_str!("../tests/fixtures/identity/rsa1.jwk.json");
const AUDIENCE: &str = "http://127.0.0.1:8000/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/mcp";
/// Checks timed per measurement; the median of `RUNS` is printed.
const CHECKS: u32 = 2_000;
const RUNS: usize = 7;

async fn issuer() -> MockServer {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": uri,
            "authorization_endpoint": format!("{uri}/authorize"),
            "token_endpoint": format!("{uri}/token"),
            "jwks_uri": format!("{uri}/jwks"),
            "introspection_endpoint": format!("{uri}/introspect"),
        })))
        .mount(&server)
        .await;
    let jwk: Value = serde_json::from_str(JWK).expect("JWK");
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": [jwk] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true, "sub": "alice", "aud": AUDIENCE, "scope": "mcp:tools",
            "exp": now() + 3600,
        })))
        .mount(&server)
        .await;
    server
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// The median time of one check, over `RUNS` runs of `CHECKS` checks.
async fn per_check(sign_in: &HostSignIn, token: &str) -> Duration {
    let scopes = vec!["mcp:tools".to_owned()];
    sign_in
        .check(token, &[AUDIENCE], &scopes)
        .await
        .expect("the token is valid");
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..CHECKS {
            black_box(
                sign_in
                    .check(black_box(token), &[AUDIENCE], &scopes)
                    .await
                    .is_ok(),
            );
        }
        times.push(started.elapsed() / CHECKS);
    }
    times.sort();
    times[RUNS / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let profile = if cfg!(debug_assertions) {
        "unoptimized (debug assertions on): times are not meaningful"
    } else {
        "optimized (bench/release)"
    };
    println!("mcp-mux host sign-in, the cost of one check: {profile}");
    let server = issuer().await;
    let sign_in = HostSignIn::start(SignInSettings {
        issuers: vec![server.uri()],
        scopes: vec!["mcp:tools".into()],
        introspection: Some(IntrospectionClient {
            client_id: "mcp-mux".into(),
            secret: SecretString::from("secret"),
        }),
        ..SignInSettings::default()
    })
    .await
    .expect("the issuer is found")
    .expect("an issuer is set");
    let claims = json!({
        "iss": server.uri(), "sub": "alice", "aud": AUDIENCE,
        "iat": now(), "exp": now() + 3600, "scope": "mcp:tools",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key-1".into());
    let jwt =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(KEY)).expect("signed");
    let discovery = Discovery::new(reqwest::Client::new());
    let trusted = TrustedIssuer::discover(&discovery, &server.uri())
        .await
        .expect("the issuer is found");
    let validator = Validator::new(vec![trusted], discovery);
    let scopes = vec!["mcp:tools".to_owned()];
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..CHECKS / 10 {
            black_box(
                validator
                    .validate(black_box(&jwt), &[AUDIENCE], &scopes)
                    .await
                    .is_ok(),
            );
        }
        times.push(started.elapsed() / (CHECKS / 10));
    }
    times.sort();
    println!(
        "  RS256 JWT ({} bytes), signature verified: {:>8.1} µs",
        jwt.len(),
        times[RUNS / 2].as_secs_f64() * 1e6
    );
    let asked_before = server.received_requests().await.map_or(0, |r| r.len());
    let time = per_check(&sign_in, &jwt).await;
    println!(
        "  the same JWT, known (every later call):  {:>8.1} µs",
        time.as_secs_f64() * 1e6
    );
    let time = per_check(&sign_in, "an-opaque-token-of-forty-characters-xx").await;
    println!(
        "  opaque token, introspection kept:         {:>8.1} µs",
        time.as_secs_f64() * 1e6
    );
    let asked = server.received_requests().await.map_or(0, |r| r.len()) - asked_before;
    println!("  requests to the issuer while timing:       {asked:>8} (the first introspection)");

    let digest: [u8; 32] = Sha256::digest(b"mmx_a-session-token").into();
    let started = Instant::now();
    for _ in 0..CHECKS * 100 {
        let presented: [u8; 32] = Sha256::digest(black_box(b"mmx_a-session-token")).into();
        black_box(presented == digest);
    }
    println!(
        "  session token digest compared:            {:>8.1} µs",
        (started.elapsed() / (CHECKS * 100)).as_secs_f64() * 1e6
    );
}
