//! Floods and outsized input: no rate limit unless one is set, request rates
//! per session and per client address answered with 429 and `Retry-After`
//! once set, and nesting too deep to parse.

use mcp_mux::routes::rate_limit::{Rate, Rates};
use serde_json::{Value, json};

use crate::helpers::*;

/// A gateway over one rmcp backend with `rates`.
async fn app_with(rates: Rates) -> (TestApp, RmcpBackend) {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &backend.url, "")]));
    options.rates = rates;
    (spawn_app_with(options).await.expect("starts"), backend)
}

#[tokio::test]
async fn a_session_past_its_request_rate_gets_429_and_others_do_not() {
    // Three requests at once, then one every 100 s.
    let rates = Rates {
        session: Some(Rate {
            per_second: 0.01,
            burst: 3,
        }),
        ..Rates::default()
    };
    let (app, _backend) = app_with(rates).await;
    let flooded = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut mcp = app.mcp(&flooded).await; // initialize and initialized: two
    assert_eq!(mcp.tool_names().await.len(), 2);
    let refused = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list" }))
        .await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=100).contains(&wait), "{wait}");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({ "jsonrpc": "2.0", "id": null, "error": {
            "code": -32600,
            "message": format!("too many requests on this session; retry after {wait} s"),
        } })
    );

    let calm = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut other = app.mcp(&calm).await;
    assert_eq!(
        other.tool_names().await.len(),
        2,
        "another session is not slowed"
    );
}

#[tokio::test]
async fn at_default_settings_one_session_is_never_throttled() {
    let (app, _backend) = app_with(Rates::default()).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mcp = app.mcp(&session).await;
    // Far past the 50 a second (100 at once) that used to be the default.
    let answers = futures_util::future::join_all((0..300).map(|id| {
        let mcp = &mcp;
        async move {
            mcp.post(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" }))
                .await
                .status()
        }
    }))
    .await;
    let refused = answers.iter().filter(|status| **status != 200).count();
    assert_eq!(refused, 0, "{answers:?}");
    for _ in 0..40 {
        app.create_session(json!({ "servers": ["alpha"] })).await;
    }
}

#[tokio::test]
async fn a_session_created_with_a_rate_limit_keeps_it_and_others_are_free() {
    let (app, _backend) = app_with(Rates::default()).await;
    let response = app
        .post_create_session(&json!({ "servers": ["alpha"], "rate_limit": 1 }))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    assert_eq!(created["rate_limit"], 1);
    let limited = created["session_id"].as_str().expect("id").to_owned();
    assert_eq!(app.shown_session(&limited).await["rate_limit"], 1);
    let stored = app
        .mux
        .store()
        .find_session(limited.parse().expect("uuid"))
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(stored.rate_limit, Some(1), "kept across restarts");

    // One a second, two at once: initialize and initialized spend both.
    let mcp = app.mcp(&limited).await;
    let refused = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list" }))
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body["error"],
        json!({ "code": -32600, "message": "too many requests on this session; retry after 1 s" })
    );

    let free = app.create_session(json!({ "servers": ["alpha"] })).await;
    assert_eq!(app.shown_session(&free).await["rate_limit"], Value::Null);
    let mut other = app.mcp(&free).await;
    for _ in 0..5 {
        assert_eq!(other.tool_names().await.len(), 2);
    }
}

#[tokio::test]
async fn a_rate_flag_that_is_not_a_positive_number_stops_the_gateway_with_its_reason() {
    for (flag, value) in [
        ("--session-rate", "0"),
        ("--session-rate", "-3"),
        ("--session-rate", "fast"),
        ("--create-session-rate", "inf"),
        ("--create-session-rate", "NaN"),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-mux"))
            .args(["serve", &format!("{flag}={value}")])
            .env_clear()
            .output()
            .await
            .expect("mcp-mux runs");
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let placeholder = flag
            .trim_start_matches("--")
            .replace('-', "_")
            .to_uppercase();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.lines().next(),
            Some(
                format!(
                    "error: invalid value '{value}' for '{flag} <{placeholder}>': \"{value}\" is not a positive number"
                )
                .as_str()
            ),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_client_address_creating_sessions_too_fast_gets_429_and_nothing_is_stored() {
    let rates = Rates {
        create_session: Some(Rate {
            per_second: 0.5 / 60.0,
            burst: 2,
        }),
        ..Rates::default()
    };
    let (app, _backend) = app_with(rates).await;
    for _ in 0..2 {
        app.create_session(json!({ "servers": ["alpha"] })).await;
    }
    let refused = app
        .post_create_session(&json!({ "servers": ["alpha"] }))
        .await;
    assert_eq!(refused.status(), 429);
    let wait = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({
            "error": "too_many_requests",
            "message": format!("too many sessions created from this address; retry after {wait} s"),
        })
    );
    assert_eq!(app.mux.store().count_sessions().await.expect("count"), 2);
}

#[tokio::test]
async fn json_nested_past_the_limit_is_refused_before_it_is_parsed() {
    let (app, _backend) = app_with(Rates::default()).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mcp = app.mcp(&session).await;
    let deep = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));

    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"alpha__echo","arguments":{{"text":"x","deep":{}}}}}}}"#,
        deep(70)
    );
    let refused = mcp
        .http
        .post(&mcp.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", mcp.session_id.clone().expect("id"))
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 400);
    let answer: Value = refused.json().await.expect("JSON");
    assert_eq!(
        answer["error"],
        json!({ "code": -32600, "message": "the message nests arrays and objects deeper than 64 levels" })
    );

    let refused = app
        .http
        .post(format!("{}/create-session", app.address))
        .header("content-type", "application/json")
        .body(format!(r#"{{"servers":["alpha"],"x":{}}}"#, deep(100)))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 400);
    let answer: Value = refused.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({ "error": "bad_request", "field": "body", "message": "body: nests arrays and objects deeper than 64 levels" })
    );
}

#[tokio::test]
async fn requests_without_the_session_token_do_not_spend_the_holders_rate() {
    let rates = Rates {
        session: Some(Rate {
            per_second: 0.01,
            burst: 3,
        }),
        ..Rates::default()
    };
    let (app, _backend) = app_with(rates).await;
    let created: Value = app
        .post_create_session(&json!({ "servers": ["alpha"], "require_token": true }))
        .await
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("id");
    let token = created["session_token"].as_str().expect("token");
    for _ in 0..20 {
        let refused = app
            .http
            .post(app.mcp_url(session))
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {} }))
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 401);
    }
    let initialize = app
        .http
        .post(app.mcp_url(session))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } }))
        .send()
        .await
        .expect("answer");
    assert_eq!(initialize.status(), 200, "the holder's rate is untouched");
}
